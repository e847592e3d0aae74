"""User service: accounts in its own PostgreSQL database."""
