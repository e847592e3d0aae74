"""Payment service: idempotent authorize/void, state in its own Valkey cache."""
