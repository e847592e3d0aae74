"""The service template against real HTTP: health/readiness, JSON logs with correlation and trace ids,
the mesh client's timeouts, retries and header propagation, the health probe, SIGTERM shutdown."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from apps.probe import main as probe_main
from apps.runtime import ReadinessCheck, ServiceClient, ServiceError, UpstreamUnavailable, create_app
from apps.runtime.client import IDEMPOTENCY_HEADER
from apps.runtime.context import continue_trace, trace_root
from apps.runtime.logs import configure_logging
from apps.runtime.settings import MissingSetting, upstream_url
from apps.runtime.stores import ElastiCacheIAMProvider
from tests.apps.servers import LoopbackServer, free_port

ROOT = Path(__file__).resolve().parents[2]
TRACE = "Root=1-67891233-abcdef012345678912345678;Parent=53995c3f42cd8ad8;Sampled=1"


class Upstream:
    """A test upstream that fails the first `fail` calls per path with `status` (or sleeps)."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []
        self.fail = 0
        self.status = 503
        self.sleep = 0.0

    async def handle(self, request: Request) -> Response:
        self.calls.append({"method": request.method, "headers": dict(request.headers)})
        if self.sleep:
            await asyncio.sleep(self.sleep)
        if len(self.calls) <= self.fail:
            return JSONResponse({"error": "try again"}, status_code=self.status)
        return JSONResponse({"ok": True, "n": len(self.calls)})


@pytest.fixture(scope="module")
def upstream_server() -> Any:
    upstream = Upstream()
    app = create_app("upstream", [Route("/thing", upstream.handle, methods=["GET", "POST"])])
    with LoopbackServer(app) as server:
        yield upstream, server


@pytest.fixture
def upstream(upstream_server: Any) -> Any:
    state, server = upstream_server
    state.calls.clear()
    state.fail, state.status, state.sleep = 0, 503, 0.0
    return state, server.url


def call(coro: Any) -> Any:
    return asyncio.run(coro)


async def _request(url: str, method: str, **kwargs: Any) -> Any:
    client = ServiceClient("upstream", url, backoff_base=0.01, backoff_cap=0.02, **kwargs.pop("client", {}))
    try:
        return await client.request(method, "/thing", **kwargs)
    finally:
        await client.aclose()


def test_get_is_retried_until_it_succeeds(upstream: Any) -> None:
    state, url = upstream
    state.fail = 2
    assert call(_request(url, "GET")) == {"ok": True, "n": 3}
    assert len(state.calls) == 3


def test_retries_are_bounded(upstream: Any) -> None:
    state, url = upstream
    state.fail = 10
    with pytest.raises(ServiceError) as error:
        call(_request(url, "GET"))
    assert error.value.status == 503
    assert len(state.calls) == 3  # max_attempts


def test_post_without_idempotency_key_is_sent_once(upstream: Any) -> None:
    state, url = upstream
    state.fail = 1
    with pytest.raises(ServiceError):
        call(_request(url, "POST", json={"a": 1}))
    assert len(state.calls) == 1


def test_post_with_idempotency_key_is_retried_with_the_same_key(upstream: Any) -> None:
    state, url = upstream
    state.fail = 1
    assert call(_request(url, "POST", json={"a": 1}, idempotency_key="order-1-authorize"))["n"] == 2
    keys = [c["headers"][IDEMPOTENCY_HEADER.lower()] for c in state.calls]
    assert keys == ["order-1-authorize", "order-1-authorize"]


def test_client_errors_are_not_retried(upstream: Any) -> None:
    state, url = upstream
    state.fail, state.status = 5, 404
    with pytest.raises(ServiceError) as error:
        call(_request(url, "GET"))
    assert (error.value.status, len(state.calls)) == (404, 1)


def test_timeout_per_attempt_then_unavailable(upstream: Any) -> None:
    state, url = upstream
    state.sleep = 0.5
    started = time.monotonic()
    with pytest.raises(UpstreamUnavailable) as error:
        call(_request(url, "GET", client={"timeout": 0.1, "max_attempts": 2}))
    assert error.value.attempts == 2
    assert len(state.calls) == 2
    assert time.monotonic() - started < 1.0  # two 0.1 s attempts, not two 0.5 s answers


def test_overall_deadline_stops_retrying(upstream: Any) -> None:
    state, url = upstream
    state.sleep = 0.2
    with pytest.raises(UpstreamUnavailable):
        call(_request(url, "GET", client={"timeout": 0.05, "max_attempts": 10, "deadline": 0.3}))
    assert len(state.calls) < 10


def test_connection_refused_is_retried_then_unavailable() -> None:
    with pytest.raises(UpstreamUnavailable) as error:
        call(_request(f"http://127.0.0.1:{free_port()}", "GET"))
    assert error.value.attempts == 3


def test_backoff_is_jittered_and_capped() -> None:
    client = ServiceClient("x", "http://127.0.0.1:1", backoff_base=0.1, backoff_cap=0.5)
    for attempt in range(6):
        pauses = [client.backoff(attempt) for _ in range(200)]
        assert all(0 <= p <= min(0.5, 0.1 * 2**attempt) for p in pauses)
        assert len({round(p, 6) for p in pauses}) > 100  # random, not a fixed schedule


def test_correlation_and_trace_headers_are_propagated(upstream: Any) -> None:
    """An incoming request's ids travel on the outbound call (same trace Root, new Parent)."""
    state, url = upstream

    async def relay(request: Request) -> JSONResponse:
        client = ServiceClient("upstream", url)
        try:
            return JSONResponse(await client.get("/thing"))
        finally:
            await client.aclose()

    app = create_app("caller", [Route("/relay", relay)])
    with LoopbackServer(app) as caller:
        answer = httpx.get(f"{caller.url}/relay", headers={"x-correlation-id": "corr-123", "x-amzn-trace-id": TRACE})
    assert answer.status_code == 200
    assert answer.headers["x-correlation-id"] == "corr-123"
    sent = state.calls[-1]["headers"]
    assert sent["x-correlation-id"] == "corr-123"
    assert trace_root(sent["x-amzn-trace-id"]) == "1-67891233-abcdef012345678912345678"
    assert "Parent=53995c3f42cd8ad8" not in sent["x-amzn-trace-id"]
    assert "Sampled=1" in sent["x-amzn-trace-id"]


def test_a_request_without_ids_gets_new_ones() -> None:
    header = continue_trace(None)
    assert trace_root(header) is not None
    assert trace_root("Root=bogus") is None


def test_upstream_url_comes_from_the_envoy_listener_variable() -> None:
    assert upstream_url("inventory", {"INVENTORY_SERVICE_URL": "http://127.0.0.1:15001"}) == "http://127.0.0.1:15001"
    with pytest.raises(MissingSetting, match="PAYMENT_SERVICE_URL"):
        upstream_url("payment", {})


def test_health_and_readiness() -> None:
    healthy = {"db": True}

    async def check() -> None:
        if not healthy["db"]:
            raise ConnectionError("connection refused")

    app = create_app("svc", [], checks=[ReadinessCheck("db", check)])
    with LoopbackServer(app) as server:
        assert httpx.get(f"{server.url}/health").json() == {"status": "ok", "service": "svc"}
        assert httpx.get(f"{server.url}/ready").status_code == 200
        healthy["db"] = False
        ready = httpx.get(f"{server.url}/ready")
        assert ready.status_code == 503
        assert "connection refused" in ready.json()["failing"]["db"]
        assert httpx.get(f"{server.url}/health").status_code == 200  # liveness ignores the store


def test_logs_are_json_with_correlation_and_trace_ids() -> None:
    stream = io.StringIO()
    configure_logging("svc", "test", stream=stream)

    async def hello(request: Request) -> JSONResponse:
        logging.getLogger("apps.test").info("hello", extra={"order_id": "o-1"})
        return JSONResponse({})

    app = create_app("svc", [Route("/hello", hello)])
    try:
        with LoopbackServer(app) as server:
            httpx.get(f"{server.url}/hello", headers={"x-request-id": "req-9", "x-amzn-trace-id": TRACE})
    finally:
        logging.getLogger().handlers.clear()
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    hello_line = next(line for line in lines if line["message"] == "hello")
    assert hello_line["correlation_id"] == "req-9"  # Envoy's x-request-id when no X-Correlation-Id
    assert hello_line["trace_id"] == "1-67891233-abcdef012345678912345678"
    assert hello_line["service"] == "svc" and hello_line["order_id"] == "o-1" and hello_line["level"] == "INFO"
    access = next(line for line in lines if line["message"] == "request")
    assert access["path"] == "/hello" and access["status"] == 200 and access["correlation_id"] == "req-9"


def test_probe_exit_codes() -> None:
    app = create_app("svc", [])
    with LoopbackServer(app) as server:
        assert probe_main([f"{server.url}/health"]) == 0
        assert probe_main([f"{server.url}/missing"]) == 1
    assert probe_main([f"http://127.0.0.1:{free_port()}/health"]) == 1


def test_sigterm_finishes_in_flight_requests_then_exits() -> None:
    port = free_port()
    env = {**os.environ, "PORT": str(port), "SERVICE_NAME": "slow", "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen(
        [sys.executable, "-m", "apps.runtime.serve", "tests.apps.slow_app:app"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 20
        while probe_main([f"http://127.0.0.1:{port}/health"]) != 0:
            assert process.poll() is None and time.monotonic() < deadline, "server did not start"
            time.sleep(0.05)

        async def in_flight() -> httpx.Response:
            async with httpx.AsyncClient() as client:
                request = asyncio.create_task(client.get(f"http://127.0.0.1:{port}/slow?seconds=1"))
                await asyncio.sleep(0.3)
                process.send_signal(signal.SIGTERM)
                return await request

        response = asyncio.run(in_flight())
        assert response.status_code == 200 and response.json() == {"done": True}
        # uvicorn re-raises the captured SIGTERM once it has shut down cleanly, so the process ends
        # "killed by SIGTERM" after the lifespan shutdown ran (checked in the log below).
        assert process.wait(timeout=15) in (0, -signal.SIGTERM)
    finally:
        if process.poll() is None:
            process.kill()
    output = process.stdout.read().decode() if process.stdout else ""
    messages = [json.loads(line)["message"] for line in output.splitlines() if line.startswith("{")]
    # The in-flight request finished, then the shutdown hooks ran, then the app stopped.
    assert messages.index("request") < messages.index("closing pools") < messages.index("stopped"), output
    assert "color_message" not in output


def test_elasticache_iam_token_is_a_presigned_connect_request() -> None:
    import botocore.session

    session = botocore.session.Session()
    session.set_credentials("AKIDEXAMPLE", "secret", "session-token")
    provider = ElastiCacheIAMProvider("dev-payment-cache-app", "dev-payment-cache", "eu-west-1", session=session)
    user, token = provider.get_credentials()
    assert user == "dev-payment-cache-app"
    host, _, query = token.partition("/?")
    params = dict(p.split("=", 1) for p in query.split("&"))
    assert host == "dev-payment-cache"
    assert params["Action"] == "connect" and params["User"] == "dev-payment-cache-app"
    assert params["X-Amz-Algorithm"] == "AWS4-HMAC-SHA256" and params["X-Amz-Expires"] == "900"
    assert "%2Feu-west-1%2Felasticache%2Faws4_request" in params["X-Amz-Credential"]
    assert "X-Amz-Signature" in params and "X-Amz-Security-Token" in params
    assert provider.get_credentials() == (user, token)  # cached until the refresh interval
