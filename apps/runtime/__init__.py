"""The service template: what every reference service gets without writing it.

* `create_app()` (app.py): a Starlette app with `/health` (liveness) and `/ready` (readiness: the
  service's own stores answer), request context (correlation and X-Ray trace ids) and JSON access logs.
* `configure_logging()` (logs.py): one JSON object per line on stdout with `correlation_id` and
  `trace_id` on every record.
* `ServiceClient` (client.py): calls another service through the Envoy sidecar's local listener
  (`<NAME>_SERVICE_URL`), with timeouts, bounded jittered retries on idempotent calls only, and
  trace/correlation header propagation. Discovery and mTLS are Envoy's job, not the app's.
* `Settings`, `require_env()` (settings.py): configuration and secrets from the environment that ECS
  injects (Secrets Manager values arrive as environment variables through the task's `secrets`).
* `serve()` (serve.py): uvicorn with graceful SIGTERM shutdown within the task's stop timeout.
* `apps/probe.py` (outside this package, so it imports nothing heavy): the container health check.
"""

from apps.runtime.app import ReadinessCheck, create_app
from apps.runtime.client import ServiceClient, ServiceError, UpstreamUnavailable
from apps.runtime.context import current_correlation_id, current_trace_header
from apps.runtime.logs import configure_logging
from apps.runtime.settings import MissingSetting, Settings, require_env

__all__ = [
    "MissingSetting",
    "ReadinessCheck",
    "ServiceClient",
    "ServiceError",
    "Settings",
    "UpstreamUnavailable",
    "configure_logging",
    "create_app",
    "current_correlation_id",
    "current_trace_header",
    "require_env",
]
