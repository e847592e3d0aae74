"""Payment service: idempotent authorize and void, keyed by the caller's idempotency key.

    POST /payments/authorizations              Idempotency-Key: <key>   {"orderId", "amount": {"value", "currency"}}
         -> 201 {"authorizationId", "status": "AUTHORIZED"|"DECLINED", ...}
    GET  /payments/authorizations/{id}         -> 200 authorization, 404 if unknown
    POST /payments/authorizations/{id}/void    Idempotency-Key: <key>   -> 200 {"status": "VOIDED", ...}

State lives in the service's own Valkey (`payment-cache`; ElastiCache with IAM auth in AWS, any
Redis/Valkey locally). Idempotency: the first request with a key stores its request fingerprint and
response under `payment:idem:<key>` (SET NX, 24 h); a repeat with the same body gets the stored
response again (same status, header `Idempotent-Replayed: true`) and never reaches the processor
twice; a repeat with a different body is 409. Concurrent duplicates: the loser of SET NX sees the
`pending` marker and gets 409 "in progress" (the caller's retry then replays the stored answer).

The card processor is simulated: the provider API key (`PAYMENT_PROVIDER_API_KEY`, injected by ECS
from the service's Secrets Manager secret) is required to start and signs each authorization
reference with HMAC-SHA256; amounts above `PAYMENT_DECLINE_ABOVE` (default 10000) are declined.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import uuid
from decimal import Decimal
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from apps.runtime import ReadinessCheck, create_app, require_env
from apps.runtime.app import read_json_object
from apps.runtime.events import now_iso
from apps.runtime.stores import redis_client

STORE = "payment-cache"
IDEMPOTENCY_TTL_SECONDS = 24 * 3600
AUTHORIZATION_TTL_SECONDS = 7 * 24 * 3600
MONEY = re.compile(r"^(0|[1-9][0-9]{0,11})(\.[0-9]{1,3})?$")
CURRENCY = re.compile(r"^[A-Z]{3}$")
KEY = re.compile(r"^[A-Za-z0-9._:-]{8,128}$")
ORDER_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


class PaymentService:
    def __init__(self) -> None:
        self.redis: Any = None
        self.provider_key = b""
        self.decline_above = Decimal("10000")

    async def start(self) -> None:
        self.provider_key = require_env(
            "PAYMENT_PROVIDER_API_KEY", what="injected by ECS from the payment provider key secret"
        ).encode()
        self.decline_above = Decimal(os.environ.get("PAYMENT_DECLINE_ABOVE", "10000"))
        self.redis = redis_client(STORE)

    async def stop(self) -> None:
        if self.redis is not None:
            await self.redis.aclose()

    async def ping(self) -> None:
        await self.redis.ping()

    async def _idempotent(self, request: Request, body: dict[str, Any], action: Any) -> JSONResponse:
        key = request.headers.get("idempotency-key", "")
        if not KEY.match(key):
            raise HTTPException(400, "Idempotency-Key header: 8 to 128 characters [A-Za-z0-9._:-] are required")
        fingerprint = hashlib.sha256(
            f"{request.method} {request.url.path} {json.dumps(body, sort_keys=True)}".encode()
        ).hexdigest()
        slot = f"payment:idem:{key}"
        claimed = await self.redis.set(
            slot, json.dumps({"fingerprint": fingerprint, "pending": True}), nx=True, ex=IDEMPOTENCY_TTL_SECONDS
        )
        if not claimed:
            stored = json.loads(await self.redis.get(slot) or "{}")
            if stored.get("fingerprint") != fingerprint:
                raise HTTPException(409, "this Idempotency-Key was used for a different request")
            if stored.get("pending"):
                raise HTTPException(409, "a request with this Idempotency-Key is in progress; retry later")
            return JSONResponse(stored["body"], status_code=stored["status"], headers={"idempotent-replayed": "true"})
        try:
            status, answer = await action()
        except BaseException:
            await self.redis.delete(slot)  # let the caller retry the same key
            raise
        record = {"fingerprint": fingerprint, "pending": False, "status": status, "body": answer}
        await self.redis.set(slot, json.dumps(record), ex=IDEMPOTENCY_TTL_SECONDS)
        return JSONResponse(answer, status_code=status)

    async def authorize(self, request: Request) -> JSONResponse:
        body = await read_json_object(request)
        order_id = body.get("orderId")
        amount = body.get("amount")
        if not isinstance(order_id, str) or not ORDER_ID.match(order_id):
            raise HTTPException(422, "orderId: 1 to 64 characters [A-Za-z0-9_-]")
        if (
            not isinstance(amount, dict)
            or not MONEY.match(str(amount.get("value", "")))
            or not CURRENCY.match(str(amount.get("currency", "")))
        ):
            raise HTTPException(422, "amount: {'value': decimal string, 'currency': ISO 4217 code}")

        async def action() -> tuple[int, dict[str, Any]]:
            authorization_id = uuid.uuid4().hex
            declined = Decimal(amount["value"]) > self.decline_above
            reference = hmac.new(
                self.provider_key, f"{authorization_id}:{order_id}:{amount['value']}".encode(), hashlib.sha256
            ).hexdigest()[:24]
            record = {
                "authorizationId": authorization_id,
                "orderId": order_id,
                "amount": {"value": amount["value"], "currency": amount["currency"]},
                "status": "DECLINED" if declined else "AUTHORIZED",
                "providerReference": reference,
                "createdAt": now_iso(),
            }
            await self.redis.set(f"payment:auth:{authorization_id}", json.dumps(record), ex=AUTHORIZATION_TTL_SECONDS)
            return 201, record

        return await self._idempotent(request, body, action)

    async def get(self, request: Request) -> JSONResponse:
        raw = await self.redis.get(f"payment:auth:{request.path_params['authorization_id']}")
        if raw is None:
            raise HTTPException(404, "no such authorization")
        return JSONResponse(json.loads(raw))

    async def void(self, request: Request) -> JSONResponse:
        authorization_id = request.path_params["authorization_id"]

        async def action() -> tuple[int, dict[str, Any]]:
            slot = f"payment:auth:{authorization_id}"
            raw = await self.redis.get(slot)
            if raw is None:
                return 404, {"error": "no such authorization"}
            record = json.loads(raw)
            if record["status"] == "DECLINED":
                return 409, {"error": "a declined authorization cannot be voided"}
            if record["status"] != "VOIDED":
                record = {**record, "status": "VOIDED", "voidedAt": now_iso()}
                await self.redis.set(slot, json.dumps(record), ex=AUTHORIZATION_TTL_SECONDS)
            return 200, record

        return await self._idempotent(request, {"void": authorization_id}, action)


def build() -> Any:
    service = PaymentService()
    return create_app(
        "payment",
        [
            Route("/payments/authorizations", service.authorize, methods=["POST"]),
            Route("/payments/authorizations/{authorization_id:str}", service.get, methods=["GET"]),
            Route("/payments/authorizations/{authorization_id:str}/void", service.void, methods=["POST"]),
        ],
        checks=[ReadinessCheck(STORE, service.ping)],
        on_startup=[service.start],
        on_shutdown=[service.stop],
    )


app = build()
