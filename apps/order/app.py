"""Order service: place, read and cancel orders, in its own DynamoDB table (`orders-table`).

    POST /orders                 [Idempotency-Key]  {"userId", "items": [{"sku", "quantity", "unitPrice"}]}
         -> 201 order (PLACED); 422 unknown user or bad body; 409 out of stock; 402 payment declined;
            503 a participant is unavailable (what was done is compensated)
    GET  /orders/{orderId}       -> 200 order, 404
    POST /orders/{orderId}/cancel  {"reason"?}  -> 200 order (CANCELLED; cancelling again is a no-op)

Placing an order is a small orchestrated saga over the mesh (each call through the Envoy sidecar's
local listener, `<NAME>_SERVICE_URL`): check the user, reserve stock (inventory), authorize the
payment (payment), then write the order. A failed step runs the compensations of the steps before
it in reverse (void the payment, release the stock). Every call carries an idempotency key derived
from the order id, so the client's retries and a replayed request never reserve or charge twice. A
client `Idempotency-Key` makes the order id itself deterministic (UUIDv5), so a retried POST returns
the same order.

Outbox: the order's state change and its event (`OrderPlaced` v2 / `OrderCancelled` v1 contracts) are
written in ONE DynamoDB `TransactWriteItems` (the order item and an outbox item `outbox#<eventId>`
in the same table), so an order never exists without its event or the reverse. The relay then puts
pending outbox items on the bus and marks them `publishedAt`: right after the commit, and a sweep
every `OUTBOX_SWEEP_SECONDS` retries anything a crash left behind. With `OUTBOX_RELAY=stream` the app
leaves publishing to a DynamoDB-stream pipe instead. Consumers are idempotent per (type, orderId),
so the at-least-once relay cannot double-apply an event.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import re
import time
import uuid
from decimal import Decimal
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from apps.runtime import ReadinessCheck, ServiceClient, ServiceError, UpstreamUnavailable, create_app, require_env
from apps.runtime.app import read_json_object
from apps.runtime.events import EventPublisher, event_detail, now_iso

log = logging.getLogger("apps.order")

STORE = "orders-table"
OUTBOX_PREFIX = "outbox#"
OUTBOX_TTL_SECONDS = 7 * 24 * 3600
ORDER_NAMESPACE = uuid.UUID("5b0d6a52-8a55-4e5e-9c1a-6f1f1a3c2b7e")
SKU = re.compile(r"^[A-Z0-9][A-Z0-9-]{2,31}$")
ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
MONEY = re.compile(r"^(0|[1-9][0-9]{0,11})(\.[0-9]{1,3})?$")
CURRENCY = re.compile(r"^[A-Z]{3}$")
CANCEL_REASONS = ("customer_request", "payment_failed", "out_of_stock", "fraud_suspected")


def money(value: Decimal) -> str:
    """A contract money string: up to 3 decimals, no exponent, no trailing zeros."""
    text = format(value.quantize(Decimal("0.001")), "f").rstrip("0").rstrip(".")
    return text or "0"


class OrderService:
    def __init__(self) -> None:
        self.dynamodb: Any = None
        self.table = ""
        self.events: EventPublisher | None = None
        self.relay = "app"
        self.sweep_seconds = 30.0
        self.inventory: ServiceClient | None = None
        self.payment: ServiceClient | None = None
        self.user: ServiceClient | None = None

    async def start(self) -> None:
        from apps.runtime.stores import aws_client

        self.table = require_env("ORDERS_TABLE_NAME", what="the order service's DynamoDB table")
        self.dynamodb = aws_client("dynamodb")
        self.relay = os.environ.get("OUTBOX_RELAY", "app")
        self.sweep_seconds = float(os.environ.get("OUTBOX_SWEEP_SECONDS", "30"))
        if self.relay == "app" and os.environ.get("EVENT_BUS_ARN"):
            self.events = EventPublisher(aws_client("events"))
        self.inventory = ServiceClient("inventory")
        self.payment = ServiceClient("payment")
        self.user = ServiceClient("user")

    async def stop(self) -> None:
        for client in (self.inventory, self.payment, self.user):
            if client is not None:
                await client.aclose()

    async def ping(self) -> None:
        await asyncio.to_thread(self.dynamodb.describe_table, TableName=self.table)

    # --- storage --------------------------------------------------------------------------------

    async def _load(self, order_id: str) -> dict[str, Any] | None:
        answer = await asyncio.to_thread(
            self.dynamodb.get_item, TableName=self.table, Key={"orderId": {"S": order_id}}, ConsistentRead=True
        )
        item = answer.get("Item")
        return json.loads(item["document"]["S"]) if item else None

    def _outbox_put(self, detail_type: str, detail: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        event_id = uuid.uuid4().hex
        item = {
            "orderId": {"S": f"{OUTBOX_PREFIX}{event_id}"},
            "recordType": {"S": "outbox"},
            "detailType": {"S": detail_type},
            "detail": {"S": json.dumps(detail, separators=(",", ":"))},
            "aggregateId": {"S": str(detail["orderId"])},
            "createdAt": {"S": now_iso()},
            "expiresAt": {"N": str(int(time.time()) + OUTBOX_TTL_SECONDS)},
        }
        return event_id, {
            "Put": {"TableName": self.table, "Item": item, "ConditionExpression": "attribute_not_exists(orderId)"}
        }

    async def _commit(
        self, order: dict[str, Any], condition: dict[str, Any], detail_type: str, detail: dict[str, Any]
    ) -> str:
        """Write the order and its outbox event in one transaction; returns the event id."""
        event_id, outbox = self._outbox_put(detail_type, detail)
        order_put = {
            "Put": {
                "TableName": self.table,
                "Item": {
                    "orderId": {"S": order["orderId"]},
                    "recordType": {"S": "order"},
                    "status": {"S": order["status"]},
                    "document": {"S": json.dumps(order, separators=(",", ":"))},
                },
                **condition,
            }
        }
        await asyncio.to_thread(self.dynamodb.transact_write_items, TransactItems=[order_put, outbox])
        return event_id

    async def publish_pending(self, event_ids: list[str] | None = None) -> int:
        """Relay outbox items to the bus (the given ones, or every unpublished one); returns how many."""
        if self.events is None:
            return 0
        if event_ids is None:
            keys = await asyncio.to_thread(self._scan_pending)
        else:
            keys = [f"{OUTBOX_PREFIX}{e}" for e in event_ids]
        published = 0
        for key in keys:
            answer = await asyncio.to_thread(
                self.dynamodb.get_item, TableName=self.table, Key={"orderId": {"S": key}}, ConsistentRead=True
            )
            item = answer.get("Item")
            if not item or "publishedAt" in item:
                continue
            await self.events.publish(item["detailType"]["S"], json.loads(item["detail"]["S"]))
            await asyncio.to_thread(
                self.dynamodb.update_item,
                TableName=self.table,
                Key={"orderId": {"S": key}},
                UpdateExpression="SET publishedAt = :now",
                ExpressionAttributeValues={":now": {"S": now_iso()}},
            )
            published += 1
        return published

    def _scan_pending(self) -> list[str]:
        keys: list[str] = []
        kwargs: dict[str, Any] = {
            "TableName": self.table,
            "FilterExpression": "recordType = :outbox AND attribute_not_exists(publishedAt)",
            "ExpressionAttributeValues": {":outbox": {"S": "outbox"}},
            "ProjectionExpression": "orderId",
        }
        while True:
            page = self.dynamodb.scan(**kwargs)
            keys += [i["orderId"]["S"] for i in page.get("Items", [])]
            if "LastEvaluatedKey" not in page:
                return keys
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    async def sweep(self, stop: asyncio.Event) -> None:
        """Background relay: publish whatever a crash between commit and publish left behind."""
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=self.sweep_seconds)
            if stop.is_set():
                return
            try:
                count = await self.publish_pending()
                if count:
                    log.info("outbox sweep published events", extra={"count": count})
            except Exception:
                log.exception("outbox sweep failed")

    async def _relay_now(self, event_id: str) -> None:
        try:
            await self.publish_pending([event_id])
        except Exception:
            log.exception("event left in the outbox for the sweep", extra={"event_id": event_id})

    # --- API ------------------------------------------------------------------------------------

    async def place(self, request: Request) -> JSONResponse:
        body = await read_json_object(request)
        user_id, items, total, currency = _validate_order(body)
        key = request.headers.get("idempotency-key")
        order_id = uuid.uuid5(ORDER_NAMESPACE, key).hex if key else uuid.uuid4().hex
        existing = await self._load(order_id)
        if existing is not None:
            return JSONResponse(existing, status_code=201, headers={"idempotent-replayed": "true"})
        assert self.user and self.inventory and self.payment
        try:
            await self.user.get(f"/users/{user_id}")
        except ServiceError as exc:
            if exc.status == 404:
                raise HTTPException(422, "userId: no such user") from None
            raise HTTPException(502, f"user service answered {exc.status}") from None
        except UpstreamUnavailable:
            raise HTTPException(503, "user service unavailable") from None
        reservation = {"orderId": order_id, "items": [{"sku": i["sku"], "quantity": i["quantity"]} for i in items]}
        try:
            await self.inventory.post("/inventory/reservations", reservation, idempotency_key=f"{order_id}-reserve")
        except ServiceError as exc:
            if exc.status == 409:
                raise HTTPException(409, "out of stock") from None
            raise HTTPException(502, f"inventory answered {exc.status}") from None
        except UpstreamUnavailable:
            await self._release(order_id)
            raise HTTPException(503, "inventory unavailable") from None
        amount = {"value": money(total), "currency": currency}
        try:
            authorization = await self.payment.post(
                "/payments/authorizations",
                {"orderId": order_id, "amount": amount},
                idempotency_key=f"{order_id}-authorize",
            )
        except (ServiceError, UpstreamUnavailable) as exc:
            await self._release(order_id)
            raise HTTPException(503, f"payment unavailable: {exc}") from None
        if authorization.get("status") != "AUTHORIZED":
            await self._release(order_id)
            raise HTTPException(402, "payment declined")
        order = {
            "orderId": order_id,
            "userId": user_id,
            "status": "PLACED",
            "items": items,
            "total": amount,
            "authorizationId": authorization["authorizationId"],
            "createdAt": now_iso(),
        }
        detail = event_detail(2, {"orderId": order_id, "userId": user_id, "items": items, "total": amount})
        try:
            event_id = await self._commit(
                order, {"ConditionExpression": "attribute_not_exists(orderId)"}, "OrderPlaced", detail
            )
        except Exception:
            await self._void(order_id, authorization["authorizationId"])
            await self._release(order_id)
            raise
        await self._relay_now(event_id)
        return JSONResponse(order, status_code=201, headers={"location": f"/orders/{order_id}"})

    async def get(self, request: Request) -> JSONResponse:
        order_id = request.path_params["order_id"]
        order = await self._load(order_id) if ID.match(order_id) else None
        if order is None:
            raise HTTPException(404, "no such order")
        return JSONResponse(order)

    async def cancel(self, request: Request) -> JSONResponse:
        order_id = request.path_params["order_id"]
        body = await read_json_object(request) if await request.body() else {}
        reason = body.get("reason", "customer_request")
        if reason not in CANCEL_REASONS:
            raise HTTPException(422, f"reason: one of {', '.join(CANCEL_REASONS)}")
        order = await self._load(order_id) if ID.match(order_id) else None
        if order is None:
            raise HTTPException(404, "no such order")
        if order["status"] == "CANCELLED":
            return JSONResponse(order)
        await self._void(order_id, order["authorizationId"])
        await self._release(order_id)
        cancelled = {**order, "status": "CANCELLED", "cancelReason": reason, "cancelledAt": now_iso()}
        detail = event_detail(1, {"orderId": order_id, "userId": order["userId"], "reason": reason})
        from botocore.exceptions import ClientError

        try:
            event_id = await self._commit(
                cancelled,
                {
                    "ConditionExpression": "#s = :placed",
                    "ExpressionAttributeNames": {"#s": "status"},
                    "ExpressionAttributeValues": {":placed": {"S": "PLACED"}},
                },
                "OrderCancelled",
                detail,
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "TransactionCanceledException":
                raise
            return JSONResponse(await self._load(order_id))  # a concurrent cancel won
        await self._relay_now(event_id)
        return JSONResponse(cancelled)

    async def _release(self, order_id: str) -> None:
        assert self.inventory
        try:
            await self.inventory.post(
                f"/inventory/reservations/{order_id}/release", idempotency_key=f"{order_id}-release"
            )
        except ServiceError as exc:
            if exc.status != 404:
                log.error("compensation failed: stock not released", extra={"order_id": order_id, "status": exc.status})
        except UpstreamUnavailable:
            log.error("compensation failed: stock not released", extra={"order_id": order_id})

    async def _void(self, order_id: str, authorization_id: str) -> None:
        assert self.payment
        try:
            await self.payment.post(
                f"/payments/authorizations/{authorization_id}/void", {}, idempotency_key=f"{order_id}-void"
            )
        except (ServiceError, UpstreamUnavailable) as exc:
            log.error("compensation failed: payment not voided", extra={"order_id": order_id, "error": str(exc)})


def _validate_order(body: dict[str, Any]) -> tuple[str, list[dict[str, Any]], Decimal, str]:
    user_id = body.get("userId")
    if not isinstance(user_id, str) or not ID.match(user_id):
        raise HTTPException(422, "userId: 1 to 64 characters [A-Za-z0-9_-]")
    items = body.get("items")
    if not isinstance(items, list) or not 1 <= len(items) <= 100:
        raise HTTPException(422, "items: 1 to 100 items")
    clean, total, currencies = [], Decimal(0), set()
    for item in items:
        if not isinstance(item, dict):
            raise HTTPException(422, "items[]: objects with sku, quantity and unitPrice")
        sku, quantity, price = item.get("sku"), item.get("quantity"), item.get("unitPrice")
        if not isinstance(sku, str) or not SKU.match(sku):
            raise HTTPException(422, "items[].sku: 3 to 32 characters [A-Z0-9-]")
        if not isinstance(quantity, int) or isinstance(quantity, bool) or not 1 <= quantity <= 1000:
            raise HTTPException(422, "items[].quantity: an integer from 1 to 1000")
        if (
            not isinstance(price, dict)
            or not MONEY.match(str(price.get("value", "")))
            or not CURRENCY.match(str(price.get("currency", "")))
        ):
            raise HTTPException(422, "items[].unitPrice: {'value': decimal string, 'currency': ISO 4217 code}")
        currencies.add(price["currency"])
        total += Decimal(price["value"]) * quantity
        clean.append(
            {"sku": sku, "quantity": quantity, "unitPrice": {"value": price["value"], "currency": price["currency"]}}
        )
    if len(currencies) != 1:
        raise HTTPException(422, "items[].unitPrice.currency: one currency per order")
    return user_id, clean, total, currencies.pop()


def build() -> Any:
    service = OrderService()
    app = create_app(
        "order",
        [
            Route("/orders", service.place, methods=["POST"]),
            Route("/orders/{order_id:str}", service.get, methods=["GET"]),
            Route("/orders/{order_id:str}/cancel", service.cancel, methods=["POST"]),
        ],
        checks=[ReadinessCheck(STORE, service.ping)],
        on_startup=[service.start],
        on_shutdown=[service.stop],
        background=[service.sweep],
    )
    app.state.order = service
    return app


app = build()
