"""`create_app()`: a Starlette app with the template's endpoints, middleware and lifecycle.

* `GET /health`: liveness. 200 while the process serves requests; it checks nothing else, so a
  slow database never gets healthy tasks killed (the ECS container health check and the load
  balancer's target health check call it).
* `GET /ready`: readiness. 200 when every `ReadinessCheck` (the service's own stores) answers
  within its timeout, else 503 naming the failing check. It also turns 503 as soon as shutdown starts.
* Every request runs with its correlation id and X-Ray trace header bound (see `context.py`), echoes
  both in the response, and is logged as one JSON access line.
* Errors: `HTTPException` becomes an RFC 9457 problem document (`application/problem+json`,
  `{"type", "title", "status", "detail"}`); anything else is logged with its traceback and answered
  500 without internals.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from apps.runtime import context

log = logging.getLogger("apps.http")

Hook = Callable[[], Awaitable[None]]


@dataclass(frozen=True)
class ReadinessCheck:
    name: str
    check: Callable[[], Awaitable[object]]
    timeout: float = 2.0


class RequestContextMiddleware:
    """Binds the correlation id and trace header for the request, echoes them, logs one access line."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        correlation = context.pick_correlation_id(
            headers.get(context.CORRELATION_HEADER), headers.get(context.REQUEST_ID_HEADER)
        )
        trace = context.continue_trace(headers.get(context.TRACE_HEADER))
        tokens = context.bind(correlation, trace)
        status = 500
        started = time.perf_counter()

        async def send_with_ids(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message.setdefault("headers", [])
                message["headers"] = [
                    *message["headers"],
                    (b"x-correlation-id", correlation.encode()),
                    (b"x-amzn-trace-id", trace.encode()),
                ]
            await send(message)

        try:
            await self.app(scope, receive, send_with_ids)
        finally:
            path = scope.get("path", "")
            if path not in ("/health", "/ready") or status >= 400:
                log.info(
                    "request",
                    extra={
                        "method": scope.get("method"),
                        "path": path,
                        "status": status,
                        "duration_ms": round((time.perf_counter() - started) * 1000, 1),
                    },
                )
            context.unbind(tokens)


async def read_json_object(request: Request) -> dict[str, Any]:
    """The request body as a JSON object, or a 400/422 `HTTPException` saying what is wrong."""
    try:
        body = await request.json()
    except ValueError:
        raise HTTPException(400, "the body must be JSON") from None
    if not isinstance(body, dict):
        raise HTTPException(422, "the body must be a JSON object")
    return body


def problem(status: int, detail: str, headers: dict[str, str] | None = None) -> JSONResponse:
    """An RFC 9457 problem document (`application/problem+json`), the error shape of every API."""
    title = HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else "Error"
    return JSONResponse(
        {"type": "about:blank", "title": title, "status": status, "detail": detail},
        status_code=status,
        headers=headers,
        media_type="application/problem+json",
    )


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code in (204, 304):
        return Response(status_code=exc.status_code)
    return problem(exc.status_code, str(exc.detail), dict(exc.headers or {}))


async def _server_error(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error", extra={"path": request.url.path})
    return problem(500, "internal error")


def create_app(
    service: str,
    routes: Sequence[BaseRoute],
    *,
    checks: Sequence[ReadinessCheck] = (),
    on_startup: Sequence[Hook] = (),
    on_shutdown: Sequence[Hook] = (),
    background: Sequence[Callable[[asyncio.Event], Coroutine[Any, Any, None]]] = (),
) -> Starlette:
    """The service's ASGI app.

    `on_startup` hooks run in order before the first request (open pools, create tables);
    `background` tasks get a stop event and run until shutdown (e.g. a queue consumer);
    `on_shutdown` hooks run in reverse after in-flight requests finished (close pools).
    """
    state: dict[str, Any] = {"draining": False}

    async def health(request: Request) -> Response:
        return JSONResponse({"status": "ok", "service": service})

    async def ready(request: Request) -> Response:
        if state["draining"]:
            return JSONResponse({"status": "draining", "service": service}, status_code=503)
        failures = {}
        for item in checks:
            try:
                await asyncio.wait_for(item.check(), timeout=item.timeout)
            except Exception as exc:
                failures[item.name] = f"{type(exc).__name__}: {exc}"[:200]
        if failures:
            log.warning("not ready", extra={"failures": failures})
            return JSONResponse({"status": "unavailable", "service": service, "failing": failures}, status_code=503)
        return JSONResponse({"status": "ready", "service": service, "checks": [c.name for c in checks]})

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        for hook in on_startup:
            await hook()
        stop = asyncio.Event()
        tasks = [asyncio.create_task(run(stop), name=getattr(run, "__name__", "task")) for run in background]
        log.info("started", extra={"background_tasks": len(tasks)})
        try:
            yield
        finally:
            state["draining"] = True
            stop.set()
            if tasks:
                _, pending = await asyncio.wait(tasks, timeout=10)
                for task in pending:
                    task.cancel()
            for hook in reversed(on_shutdown):
                try:
                    await hook()
                except Exception:
                    log.exception("shutdown hook failed")
            log.info("stopped")

    app = Starlette(
        routes=[Route("/health", health), Route("/ready", ready), *routes],
        lifespan=lifespan,
        exception_handlers={HTTPException: _http_error, Exception: _server_error},
    )
    app.add_middleware(RequestContextMiddleware)
    app.state.service = service
    app.state.lifecycle = state
    return app
