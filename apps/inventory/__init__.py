"""Inventory service: stock and reservations in its own PostgreSQL database; consumes order events."""
