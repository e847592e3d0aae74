"""JSON logs: one object per line on stdout, with the request's correlation and X-Ray trace ids.

Built on python-json-logger. CloudWatch Logs keeps each line as one event and Logs Insights parses
the fields (`fields correlation_id, trace_id | filter level = "ERROR"`); the Envoy sidecar's access
log carries the same `trace_id` and `request_id`, so one request can be followed across the mesh.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

from pythonjsonlogger.json import JsonFormatter

from apps.runtime.context import current_correlation_id, current_trace_id

_FIELDS = ("time", "level", "logger", "message")


class _ContextFilter(logging.Filter):
    def __init__(self, service: str, environment: str) -> None:
        super().__init__()
        self.service = service
        self.environment = environment

    def filter(self, record: logging.LogRecord) -> bool:
        record.service = self.service
        record.environment = self.environment
        record.correlation_id = current_correlation_id()
        record.trace_id = current_trace_id()
        record.__dict__.pop("color_message", None)  # uvicorn's ANSI-coloured duplicate of the message
        return True


def json_formatter() -> JsonFormatter:
    return JsonFormatter(
        "{asctime}{levelname}{name}{message}{service}{environment}{correlation_id}{trace_id}",
        style="{",
        rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
        datefmt="%Y-%m-%dT%H:%M:%S%z",
    )


def configure_logging(service: str, environment: str, level: str = "INFO", stream: Any = None) -> None:
    """Route every logger (ours, uvicorn's, botocore's) through one JSON handler."""
    handler = logging.StreamHandler(stream or sys.stdout)
    handler.setFormatter(json_formatter())
    handler.addFilter(_ContextFilter(service, environment))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper() if level.upper() in logging.getLevelNamesMapping() else "INFO")
    for noisy in ("botocore", "boto3", "urllib3", "httpx", "httpcore"):
        logging.getLogger(noisy).setLevel("WARNING")
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
