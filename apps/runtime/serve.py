"""Entry point of every reference image: `python -m apps.runtime.serve apps.<service>.app:app`.

uvicorn handles SIGTERM (what ECS sends when it stops a task) gracefully: it stops accepting
connections, lets in-flight requests finish for up to `GRACEFUL_SECONDS`, then runs the app's
lifespan shutdown (background consumers stop, pools close). `GRACEFUL_SECONDS` plus the shutdown
hooks stay inside the task's `stopTimeout` (30 s, components/microservice.py), after which ECS sends
SIGKILL. The task runs with `initProcessEnabled`, so signals reach this process through an init.
"""

from __future__ import annotations

import sys

import uvicorn

from apps.runtime.logs import configure_logging
from apps.runtime.settings import MissingSetting, Settings

GRACEFUL_SECONDS = 20


def serve(app_path: str) -> int:
    service = app_path.split(".")[1] if app_path.startswith("apps.") else app_path
    try:
        settings = Settings.from_env(service)
    except MissingSetting as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    configure_logging(settings.service_name, settings.environment, settings.log_level)
    config = uvicorn.Config(
        app_path,
        host=settings.host,
        port=settings.port,
        lifespan="on",
        log_config=None,
        access_log=False,
        server_header=False,
        proxy_headers=False,
        timeout_graceful_shutdown=GRACEFUL_SECONDS,
        timeout_keep_alive=75,
    )
    server = uvicorn.Server(config)
    server.run()
    return 0 if server.started else 1


if __name__ == "__main__":
    if len(sys.argv) != 2:
        print("usage: python -m apps.runtime.serve apps.<service>.app:app", file=sys.stderr)
        sys.exit(2)
    sys.exit(serve(sys.argv[1]))
