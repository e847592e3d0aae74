"""Per-request context: the correlation id and the X-Ray trace header, in context variables.

The middleware in `app.py` sets them from the incoming request; the log filter and the
`ServiceClient` read them, so every log line carries them and every outbound call propagates them.

* Correlation id: `X-Correlation-Id` from the caller, else Envoy's `x-request-id`, else a new UUID.
* X-Ray: `X-Amzn-Trace-Id: Root=1-<8 hex epoch>-<24 hex>;Parent=<16 hex>;Sampled=<0|1>` (format from the
  AWS X-Ray developer guide, "Tracing header"). The ALB adds one at the edge; a request without one
  gets a new Root. Outbound calls keep the Root and Sampled decision.
"""

from __future__ import annotations

import re
import secrets
import time
import uuid
from contextvars import ContextVar

CORRELATION_HEADER = "x-correlation-id"
REQUEST_ID_HEADER = "x-request-id"
TRACE_HEADER = "x-amzn-trace-id"

_ROOT = re.compile(r"(?:^|;)\s*Root=(1-[0-9a-f]{8}-[0-9a-f]{24})(?:;|$)")
_SAMPLED = re.compile(r"(?:^|;)\s*Sampled=([01?])(?:;|$)")
_SAFE_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")

_correlation_id: ContextVar[str | None] = ContextVar("correlation_id", default=None)
_trace_header: ContextVar[str | None] = ContextVar("trace_header", default=None)


def new_trace_root(now: float | None = None) -> str:
    """A new X-Ray trace id: `1-<epoch seconds, 8 hex>-<96 random bits, 24 hex>`."""
    return f"1-{int(now if now is not None else time.time()):08x}-{secrets.token_hex(12)}"


def trace_root(header: str | None) -> str | None:
    """The `Root=` of an X-Ray trace header, or None when absent or malformed."""
    if not header:
        return None
    match = _ROOT.search(header)
    return match.group(1) if match else None


def continue_trace(header: str | None) -> str:
    """The trace header for this request: the caller's Root and Sampled decision, or a new Root."""
    root = trace_root(header) or new_trace_root()
    sampled = _SAMPLED.search(header or "")
    return f"Root={root}" + (f";Sampled={sampled.group(1)}" if sampled else "")


def outbound_trace_header() -> str:
    """The header to send downstream: same Root and Sampled, this hop as the Parent."""
    current = _trace_header.get() or continue_trace(None)
    return f"{current};Parent={secrets.token_hex(8)}"


def pick_correlation_id(correlation: str | None, request_id: str | None) -> str:
    for candidate in (correlation, request_id):
        if candidate and _SAFE_ID.match(candidate):
            return candidate
    return str(uuid.uuid4())


def bind(correlation_id: str, trace_header: str) -> tuple[object, object]:
    return _correlation_id.set(correlation_id), _trace_header.set(trace_header)


def unbind(tokens: tuple[object, object]) -> None:
    _correlation_id.reset(tokens[0])  # type: ignore[arg-type]
    _trace_header.reset(tokens[1])  # type: ignore[arg-type]


def current_correlation_id() -> str | None:
    return _correlation_id.get()


def current_trace_header() -> str | None:
    return _trace_header.get()


def current_trace_id() -> str | None:
    return trace_root(_trace_header.get())
