"""`ServiceClient`: the seed's ServiceClient, adapted to the mesh.

The seed's client discovers an instance through Cloud Map, then POSTs with a trace id. Here discovery,
load balancing, mTLS and the callee's identity check are the Envoy sidecar's job: the app calls
`<NAME>_SERVICE_URL` (a 127.0.0.1 listener of its own sidecar) in plain HTTP. The client keeps what
only the app can decide:

* **Timeouts**: a connect timeout and a per-attempt total timeout, plus an overall deadline.
* **Retries, bounded and jittered, on idempotent calls only**: GET/HEAD/OPTIONS/PUT/DELETE, or any
  call that carries an `Idempotency-Key` (the callee deduplicates it). A POST without a key is sent
  once: retrying it could apply it twice. Retried on connection errors, timeouts, 429, 502, 503 and
  504; the pause before retry n is uniform in [0, min(cap, base * 2**n)] ("full jitter", AWS
  Architecture Blog, "Exponential Backoff And Jitter"). Envoy itself retries only connection
  failures that never reached the upstream app (components/envoy.py), so the two do not multiply
  into a retry storm.
* **Propagation**: `X-Correlation-Id` and `X-Amzn-Trace-Id` (same Root, this hop as Parent) from the
  current request's context, so logs on both sides and the Envoy access logs line up.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Mapping
from typing import Any

import httpx

from apps.runtime.context import CORRELATION_HEADER, TRACE_HEADER, current_correlation_id, outbound_trace_header
from apps.runtime.settings import upstream_url

log = logging.getLogger("apps.client")

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
RETRYABLE_STATUS = frozenset({429, 502, 503, 504})
IDEMPOTENCY_HEADER = "Idempotency-Key"


class ServiceError(Exception):
    """The callee answered with an error status (after any retries)."""

    def __init__(self, service: str, method: str, path: str, status: int, body: Any) -> None:
        super().__init__(f"{service} {method} {path}: HTTP {status}")
        self.service, self.status, self.body = service, status, body


class UpstreamUnavailable(Exception):
    """The callee could not be reached, or did not answer in time, after every allowed attempt."""

    def __init__(self, service: str, method: str, path: str, attempts: int, cause: BaseException) -> None:
        super().__init__(f"{service} {method} {path}: unavailable after {attempts} attempt(s): {cause!r}")
        self.service, self.attempts = service, attempts


class ServiceClient:
    """Calls one upstream service through the local Envoy listener."""

    def __init__(
        self,
        service: str,
        base_url: str | None = None,
        *,
        connect_timeout: float = 1.0,
        timeout: float = 3.0,
        deadline: float = 8.0,
        max_attempts: int = 3,
        backoff_base: float = 0.1,
        backoff_cap: float = 1.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        self.service = service
        self.base_url = base_url or upstream_url(service)
        self.max_attempts = max_attempts
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self.deadline = deadline
        self._http = httpx.AsyncClient(
            base_url=self.base_url,
            timeout=httpx.Timeout(timeout, connect=connect_timeout),
            transport=transport,
            headers={"user-agent": f"apps-service-client ({service})"},
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    def backoff(self, attempt: int) -> float:
        """Full jitter: uniform in [0, min(cap, base * 2**attempt)]."""
        return random.uniform(0.0, min(self.backoff_cap, self.backoff_base * 2**attempt))

    async def get(self, path: str, **kwargs: Any) -> Any:
        return await self.request("GET", path, **kwargs)

    async def post(self, path: str, json: Any = None, *, idempotency_key: str | None = None, **kwargs: Any) -> Any:
        return await self.request("POST", path, json=json, idempotency_key=idempotency_key, **kwargs)

    async def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        idempotency_key: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Any:
        """Send the call and return the parsed JSON body (None for an empty body).

        Raises `ServiceError` for an error status and `UpstreamUnavailable` when no attempt got an answer.
        """
        method = method.upper()
        sent = dict(headers or {})
        if idempotency_key:
            sent[IDEMPOTENCY_HEADER] = idempotency_key
        correlation = current_correlation_id()
        if correlation:
            sent[CORRELATION_HEADER] = correlation
        sent[TRACE_HEADER] = outbound_trace_header()
        retryable = method in IDEMPOTENT_METHODS or bool(idempotency_key)
        attempts = self.max_attempts if retryable else 1
        loop = asyncio.get_running_loop()
        give_up_at = loop.time() + self.deadline
        last_error: BaseException | None = None
        response: httpx.Response | None = None
        for attempt in range(attempts):
            try:
                response = await self._http.request(method, path, json=json, headers=sent)
            except (httpx.TimeoutException, httpx.TransportError) as exc:
                last_error, response = exc, None
            else:
                if response.status_code not in RETRYABLE_STATUS:
                    return _result(self.service, method, path, response)
            pause = self.backoff(attempt)
            if attempt + 1 >= attempts or loop.time() + pause >= give_up_at:
                break
            log.warning(
                "retrying call",
                extra={
                    "upstream": self.service,
                    "method": method,
                    "path": path,
                    "attempt": attempt + 1,
                    "status": response.status_code if response is not None else None,
                    "error": repr(last_error) if response is None else None,
                    "pause_s": round(pause, 3),
                },
            )
            await asyncio.sleep(pause)
        if response is not None:
            return _result(self.service, method, path, response)
        assert last_error is not None
        raise UpstreamUnavailable(self.service, method, path, attempt + 1, last_error)


def _result(service: str, method: str, path: str, response: httpx.Response) -> Any:
    body: Any = None
    if response.content:
        try:
            body = response.json()
        except ValueError:
            body = response.text
    if response.status_code >= 400:
        raise ServiceError(service, method, path, response.status_code, body)
    return body
