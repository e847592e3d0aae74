"""Payment service: idempotent authorize and void, keyed by the caller's idempotency key.

    POST /payments/authorizations   Idempotency-Key: <key>   {"orderId", "amount": {"value", "currency"}}
         -> 201 payment {"paymentId", "orderId", "status": "AUTHORIZED", "amount", ...}; 402 declined
    GET  /payments/{paymentId}         -> 200 payment, 404 if unknown
    POST /payments/{paymentId}/void    [Idempotency-Key]  -> 200 payment (VOIDED; voiding again is a no-op)

Saga participant (`SAGA_COMMAND_QUEUE_URL`): `AuthorizePayment` (the order's `total`, keyed by the
command's idempotency key; a decline is the `Payment.Declined` refusal) and `VoidPayment` (the
payment the `AuthorizePayment` step returned; nothing to void is a success).

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
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from apps.runtime import ReadinessCheck, create_app, require_env
from apps.runtime.app import problem, read_json_object
from apps.runtime.events import now_iso
from apps.runtime.saga import COMMAND_QUEUE_ENV, SagaParticipant, SagaRefusal
from apps.runtime.stores import aws_client, redis_client

STORE = "payment-cache"
IDEMPOTENCY_TTL_SECONDS = 24 * 3600
AUTHORIZATION_TTL_SECONDS = 7 * 24 * 3600
MONEY = re.compile(r"^(0|[1-9][0-9]{0,11})(\.[0-9]{1,3})?$")
CURRENCY = re.compile(r"^[A-Z]{3}$")
KEY = re.compile(r"^[A-Za-z0-9._:-]{8,128}$")
ORDER_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


class Conflict(Exception):
    pass


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

    # --- idempotent operations (shared by the HTTP API and the saga commands) ------------------------

    async def once(self, key: str, fingerprint_of: Any, action: Any) -> tuple[int, dict[str, Any], bool]:
        """Run `action` once per key: returns (status, body, replayed). Raises Conflict for a reused key."""
        fingerprint = hashlib.sha256(json.dumps(fingerprint_of, sort_keys=True).encode()).hexdigest()
        slot = f"payment:idem:{key}"
        claimed = await self.redis.set(
            slot, json.dumps({"fingerprint": fingerprint, "pending": True}), nx=True, ex=IDEMPOTENCY_TTL_SECONDS
        )
        if not claimed:
            stored = json.loads(await self.redis.get(slot) or "{}")
            if stored.get("fingerprint") != fingerprint:
                raise Conflict("this Idempotency-Key was used for a different request")
            if stored.get("pending"):
                raise Conflict("a request with this Idempotency-Key is in progress; retry later")
            return int(stored["status"]), dict(stored["body"]), True
        try:
            status, answer = await action()
        except BaseException:
            await self.redis.delete(slot)  # let the caller retry the same key
            raise
        record = {"fingerprint": fingerprint, "pending": False, "status": status, "body": answer}
        await self.redis.set(slot, json.dumps(record), ex=IDEMPOTENCY_TTL_SECONDS)
        return status, answer, False

    async def authorize(self, key: str, order_id: str, amount: dict[str, str]) -> tuple[int, dict[str, Any], bool]:
        async def action() -> tuple[int, dict[str, Any]]:
            payment_id = f"pay_{uuid.uuid4().hex}"
            declined = Decimal(amount["value"]) > self.decline_above
            reference = hmac.new(
                self.provider_key, f"{payment_id}:{order_id}:{amount['value']}".encode(), hashlib.sha256
            ).hexdigest()[:24]
            record = {
                "paymentId": payment_id,
                "orderId": order_id,
                "amount": {"value": amount["value"], "currency": amount["currency"]},
                "status": "DECLINED" if declined else "AUTHORIZED",
                "providerReference": reference,
                "createdAt": now_iso(),
            }
            await self.redis.set(f"payment:auth:{payment_id}", json.dumps(record), ex=AUTHORIZATION_TTL_SECONDS)
            return (402 if declined else 201), record

        return await self.once(key, {"authorize": order_id, "amount": amount}, action)

    async def void_payment(self, payment_id: str) -> tuple[int, dict[str, Any]]:
        """Naturally idempotent: voiding a voided payment returns it unchanged."""
        slot = f"payment:auth:{payment_id}"
        raw = await self.redis.get(slot)
        if raw is None:
            return 404, {}
        record = json.loads(raw)
        if record["status"] == "DECLINED":
            return 409, record
        if record["status"] != "VOIDED":
            record = {**record, "status": "VOIDED", "voidedAt": now_iso()}
            await self.redis.set(slot, json.dumps(record), ex=AUTHORIZATION_TTL_SECONDS)
        return 200, record

    # --- HTTP ---------------------------------------------------------------------------------

    async def http_authorize(self, request: Request) -> Response:
        key = request.headers.get("idempotency-key", "")
        if not KEY.match(key):
            raise HTTPException(400, "Idempotency-Key header: 8 to 128 characters [A-Za-z0-9._:-] are required")
        order_id, amount = _validate_authorization(await read_json_object(request))
        try:
            status, record, replayed = await self.authorize(key, order_id, amount)
        except Conflict as exc:
            raise HTTPException(409, str(exc)) from None
        headers = {"idempotent-replayed": "true"} if replayed else None
        if status == 402:
            return problem(402, f"payment {record['paymentId']} declined by the processor", headers)
        return JSONResponse(record, status_code=status, headers=headers)

    async def http_get(self, request: Request) -> JSONResponse:
        raw = await self.redis.get(f"payment:auth:{request.path_params['payment_id']}")
        if raw is None:
            raise HTTPException(404, "no such payment")
        return JSONResponse(json.loads(raw))

    async def http_void(self, request: Request) -> JSONResponse:
        status, record = await self.void_payment(request.path_params["payment_id"])
        if status == 404:
            raise HTTPException(404, "no such payment")
        if status == 409:
            raise HTTPException(409, "a declined payment cannot be voided")
        return JSONResponse(record, status_code=status)

    # --- saga commands --------------------------------------------------------------------------

    async def saga_authorize(self, command: dict[str, Any]) -> dict[str, Any]:
        order = command["input"]
        total = order["total"]
        amount = total if isinstance(total, dict) else {"value": str(total), "currency": order.get("currency", "EUR")}
        try:
            status, record, _ = await self.authorize(str(command["idempotencyKey"]), str(order["orderId"]), amount)
        except Conflict as exc:
            raise SagaRefusal("Payment.Conflict", str(exc)) from None
        if status == 402:
            raise SagaRefusal("Payment.Declined", f"payment {record['paymentId']} declined by the processor")
        return {"paymentId": record["paymentId"], "status": record["status"]}

    async def saga_void(self, command: dict[str, Any]) -> dict[str, Any]:
        authorized = (command.get("results") or {}).get("AuthorizePayment") or {}
        payment_id = authorized.get("paymentId") if isinstance(authorized, dict) else None
        if not payment_id:
            return {"status": "NOTHING_TO_VOID"}
        status, record = await self.void_payment(str(payment_id))
        return {"paymentId": payment_id, "status": record.get("status", "NOT_FOUND") if status != 404 else "NOT_FOUND"}


def _validate_authorization(body: dict[str, Any]) -> tuple[str, dict[str, str]]:
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
    return order_id, {"value": amount["value"], "currency": amount["currency"]}


def build(participate: bool | None = None) -> Any:
    """`participate`: answer saga commands (default: when `SAGA_COMMAND_QUEUE_URL` is set)."""
    service = PaymentService()
    background = []
    if participate if participate is not None else bool(os.environ.get(COMMAND_QUEUE_ENV)):
        handlers = {"AuthorizePayment": service.saga_authorize, "VoidPayment": service.saga_void}
        background.append(SagaParticipant(aws_client("sqs"), aws_client("stepfunctions"), handlers).run)
    app = create_app(
        "payment",
        [
            Route("/payments/authorizations", service.http_authorize, methods=["POST"]),
            Route("/payments/{payment_id:str}", service.http_get, methods=["GET"]),
            Route("/payments/{payment_id:str}/void", service.http_void, methods=["POST"]),
        ],
        checks=[ReadinessCheck(STORE, service.ping)],
        on_startup=[service.start],
        on_shutdown=[service.stop],
        background=background,
    )
    app.state.payment = service
    return app


app = build()
