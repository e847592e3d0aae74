"""Configuration from the environment ECS injects into the app container.

The task definition gives plain settings as `environment` (SERVICE_NAME, ENVIRONMENT, PORT,
AWS_REGION, store endpoints such as `USERS_DB_HOST`, `<NAME>_SERVICE_URL` for each upstream) and
secrets as `secrets`: ECS reads them from Secrets Manager when the task starts and sets them as
environment variables (e.g. `USERS_DB_PASSWORD`, `PAYMENT_PROVIDER_API_KEY`). The app therefore
reads both the same way and never calls Secrets Manager itself; a rotated secret reaches the app with
the next deployment. A missing value is one clear error naming the variable, raised at start-up.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass


class MissingSetting(RuntimeError):
    """A required environment variable is not set (or is empty)."""


def require_env(name: str, environ: Mapping[str, str] | None = None, *, what: str = "") -> str:
    env = os.environ if environ is None else environ
    value = env.get(name, "")
    if not value:
        hint = f" ({what})" if what else ""
        raise MissingSetting(f"environment variable {name} is not set{hint}")
    return value


def upstream_url(service: str, environ: Mapping[str, str] | None = None) -> str:
    """`<NAME>_SERVICE_URL`: the Envoy sidecar's local listener for `service` (e.g. http://127.0.0.1:15001)."""
    return require_env(
        f"{service.upper().replace('-', '_')}_SERVICE_URL",
        environ,
        what=f"the local mesh listener for '{service}'; the service must declare it in `calls`",
    )


@dataclass(frozen=True)
class Settings:
    service_name: str
    environment: str
    port: int
    host: str
    region: str
    log_level: str

    @classmethod
    def from_env(cls, default_service: str, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        port = env.get("PORT", "8080")
        if not port.isdigit() or not 1024 <= int(port) <= 65535:
            raise MissingSetting(f"environment variable PORT = {port!r}: must be a port number from 1024 to 65535")
        return cls(
            service_name=env.get("SERVICE_NAME", default_service),
            environment=env.get("ENVIRONMENT", "local"),
            port=int(port),
            # The Envoy sidecar reaches the app on 127.0.0.1; nothing else needs to. Set HOST=0.0.0.0
            # to publish the port of a container run locally.
            host=env.get("HOST", "127.0.0.1"),
            region=env.get("AWS_REGION", env.get("AWS_DEFAULT_REGION", "us-east-1")),
            log_level=env.get("LOG_LEVEL", "INFO"),
        )
