"""Order service: place, read and cancel orders, in its own DynamoDB table (`orders-table`).

    POST /orders                 Idempotency-Key  {"userId", "items": [{"sku", "quantity", "unitPrice"}]}
         -> 201 order CONFIRMED (synchronous mode) or 202 order PENDING (saga mode); 422 unknown user
            or bad body; 409 out of stock; 402 payment declined; 503 a participant is unavailable
    GET  /orders/{orderId}       -> 200 order, 404
    POST /orders/{orderId}/cancel  {"reason"?}  -> 200 order (CANCELLED; again is a no-op); 409 while PENDING

Errors are RFC 9457 problem documents. The `Idempotency-Key` makes the order id deterministic (UUIDv5
of the key), so a retried POST returns the same order and never reserves or charges twice.

Two ways to place an order, chosen by what the platform gives the task:

* **Saga** (`ORDER_PLACEMENT_SAGA_ARN` set: the order-placement Step Functions workflow exists). The
  order is written PENDING and the saga is started with the order id as the execution name (a second
  start of the same name is refused by Step Functions, so a retried POST never runs it twice); the
  answer is 202. The workflow sends ReserveInventory and AuthorizePayment to the participants' queues,
  then `ConfirmOrder` to this service (PENDING -> CONFIRMED + `OrderPlaced`), or on failure, after the
  compensations, `CancelOrder` (PENDING -> CANCELLED + `OrderCancelled`, reason `out_of_stock` or
  `payment_failed`). This service answers those commands from `SAGA_COMMAND_QUEUE_URL`.
* **Synchronous** (no saga): a small orchestration over the mesh (each call through the Envoy
  sidecar's local listener `<NAME>_SERVICE_URL`, retried only with an idempotency key derived from the
  order id): check the user, reserve stock, authorize the payment, write the order CONFIRMED; a failed
  step runs the compensations of the steps before it in reverse (void, release).

Both check the user first (`GET /users/{id}` through the mesh).

Outbox: a state change and its event (`OrderPlaced` v2 / `OrderCancelled` v1 contracts) are written in
ONE DynamoDB `TransactWriteItems`, so an order never changes without its event or the reverse:
* by default the event is an `outbox#<eventId>` item of the orders table (`recordType`, `detailType`,
  `detail`, `aggregateId`, `createdAt`, `expiresAt`). With `OUTBOX_RELAY=stream` (what the platform
  sets when the spec declares the table as its outbox) the table's stream and an EventBridge Pipe
  publish it; otherwise the app relays it right after the commit, plus a sweep every
  `OUTBOX_SWEEP_SECONDS` for anything a crash left behind (at-least-once; consumers are idempotent
  per (type, orderId));
* with a separate event-store table (`ORDER_EVENTS_NAME`), the event is an item `{aggregateId,
  sequence, eventId, detailType, detail, occurredAt}` put with `attribute_not_exists(sequence)`.
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
from apps.runtime.saga import COMMAND_QUEUE_ENV, SagaParticipant, SagaRefusal

log = logging.getLogger("apps.order")

STORE = "orders-table"
SAGA_ENV = "ORDER_PLACEMENT_SAGA_ARN"
EVENT_STORE_ENV = "ORDER_EVENTS_NAME"
OUTBOX_PREFIX = "outbox#"
OUTBOX_TTL_SECONDS = 7 * 24 * 3600
ORDER_NAMESPACE = uuid.UUID("5b0d6a52-8a55-4e5e-9c1a-6f1f1a3c2b7e")
SKU = re.compile(r"^[A-Z0-9][A-Z0-9-]{2,31}$")
ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
KEY = re.compile(r"^[A-Za-z0-9._:-]{8,128}$")
MONEY = re.compile(r"^(0|[1-9][0-9]{0,11})(\.[0-9]{1,3})?$")
CURRENCY = re.compile(r"^[A-Z]{3}$")
CANCEL_REASONS = ("customer_request", "payment_failed", "out_of_stock", "fraud_suspected")


def money(value: Decimal) -> str:
    """A contract money string: up to 3 decimals, no exponent, no trailing zeros."""
    text = format(value.quantize(Decimal("0.001")), "f").rstrip("0").rstrip(".")
    return text or "0"


class StaleOrder(Exception):
    """The order changed under us (a concurrent writer won the conditional write)."""


class OrderService:
    def __init__(self) -> None:
        self.dynamodb: Any = None
        self.sfn: Any = None
        self.table = ""
        self.event_store: str | None = None
        self.saga_arn: str | None = None
        self.events: EventPublisher | None = None
        self.sweep_seconds = 30.0
        self.inventory: ServiceClient | None = None
        self.payment: ServiceClient | None = None
        self.user: ServiceClient | None = None

    async def start(self) -> None:
        from apps.runtime.stores import aws_client

        self.table = require_env("ORDERS_TABLE_NAME", what="the order service's DynamoDB table")
        self.dynamodb = aws_client("dynamodb")
        self.event_store = os.environ.get(EVENT_STORE_ENV) or None
        self.saga_arn = os.environ.get(SAGA_ENV) or None
        if self.saga_arn:
            self.sfn = aws_client("stepfunctions")
        self.sweep_seconds = float(os.environ.get("OUTBOX_SWEEP_SECONDS", "30"))
        # OUTBOX_RELAY=stream: the orders table's stream and an EventBridge Pipe publish the outbox items
        # (components/patterns/outbox.py); the task role then has no events:PutEvents at all.
        relay = os.environ.get("OUTBOX_RELAY", "app")
        if self.event_store is None and relay == "app" and os.environ.get("EVENT_BUS_ARN"):
            self.events = EventPublisher(aws_client("events"))
        self.user = ServiceClient("user")
        if not self.saga_arn or os.environ.get("INVENTORY_SERVICE_URL"):
            self.inventory = ServiceClient("inventory")
        if not self.saga_arn or os.environ.get("PAYMENT_SERVICE_URL"):
            self.payment = ServiceClient("payment")

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

    def _outbox_put(self, detail_type: str, detail: dict[str, Any], sequence: int = 1) -> tuple[str, dict[str, Any]]:
        """The transaction item that records one event (event store or orders-table outbox)."""
        event_id = uuid.uuid4().hex
        body = json.dumps(detail, separators=(",", ":"))
        if self.event_store:
            item = {
                "aggregateId": {"S": str(detail["orderId"])},
                "sequence": {"N": str(sequence)},
                "eventId": {"S": event_id},
                "detailType": {"S": detail_type},
                "detail": {"S": body},
                "occurredAt": {"S": str(detail["occurredAt"])},
            }
            condition = "attribute_not_exists(#seq)"
            return event_id, {
                "Put": {
                    "TableName": self.event_store,
                    "Item": item,
                    "ConditionExpression": condition,
                    "ExpressionAttributeNames": {"#seq": "sequence"},
                }
            }
        item = {
            "orderId": {"S": f"{OUTBOX_PREFIX}{event_id}"},
            "recordType": {"S": "outbox"},
            "detailType": {"S": detail_type},
            "detail": {"S": body},
            "aggregateId": {"S": str(detail["orderId"])},
            "createdAt": {"S": now_iso()},
            "expiresAt": {"N": str(int(time.time()) + OUTBOX_TTL_SECONDS)},
        }
        return event_id, {
            "Put": {"TableName": self.table, "Item": item, "ConditionExpression": "attribute_not_exists(orderId)"}
        }

    async def _write(
        self, order: dict[str, Any], expected_status: str | None, event: tuple[str, dict[str, Any]] | None
    ) -> str | None:
        """Write the order (new, or from `expected_status`) and its event in one transaction."""
        if expected_status is None:
            condition: dict[str, Any] = {"ConditionExpression": "attribute_not_exists(orderId)"}
        else:
            condition = {
                "ConditionExpression": "#s = :expected",
                "ExpressionAttributeNames": {"#s": "status"},
                "ExpressionAttributeValues": {":expected": {"S": expected_status}},
            }
        items = [
            {
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
        ]
        event_id = None
        if event is not None:
            order["eventCount"] = int(order.get("eventCount", 0)) + 1
            items[0]["Put"]["Item"]["document"] = {"S": json.dumps(order, separators=(",", ":"))}
            event_id, put = self._outbox_put(event[0], event[1], order["eventCount"])
            items.append(put)
        from botocore.exceptions import ClientError

        try:
            await asyncio.to_thread(self.dynamodb.transact_write_items, TransactItems=items)
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "TransactionCanceledException":
                raise StaleOrder(order["orderId"]) from None
            raise
        if event_id is not None and self.events is not None:
            await self._relay_now(event_id)
        return event_id

    async def publish_pending(self, event_ids: list[str] | None = None) -> int:
        """Relay orders-table outbox items to the bus (the given ones, or every unpublished one)."""
        if self.events is None:
            return 0
        keys = (
            await asyncio.to_thread(self._scan_pending)
            if event_ids is None
            else [f"{OUTBOX_PREFIX}{e}" for e in event_ids]
        )
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
        key = request.headers.get("idempotency-key", "")
        if not KEY.match(key):
            raise HTTPException(400, "Idempotency-Key header: 8 to 128 characters [A-Za-z0-9._:-] are required")
        body = await read_json_object(request)
        user_id, items, total, currency = _validate_order(body)
        order_id = uuid.uuid5(ORDER_NAMESPACE, key).hex
        existing = await self._load(order_id)
        if existing is not None:
            status = 202 if existing["status"] == "PENDING" else 201
            return JSONResponse(existing, status_code=status, headers={"idempotent-replayed": "true"})
        await self._check_user(user_id)
        amount = {"value": money(total), "currency": currency}
        order: dict[str, Any] = {
            "orderId": order_id,
            "userId": user_id,
            "status": "PENDING",
            "items": items,
            "total": amount,
            "createdAt": now_iso(),
        }
        if self.saga_arn:
            return await self._place_with_saga(order)
        return await self._place_synchronously(order)

    async def _check_user(self, user_id: str) -> None:
        assert self.user
        try:
            await self.user.get(f"/users/{user_id}")
        except ServiceError as exc:
            if exc.status == 404:
                raise HTTPException(422, "userId: no such user") from None
            raise HTTPException(502, f"user service answered {exc.status}") from None
        except UpstreamUnavailable:
            raise HTTPException(503, "user service unavailable") from None

    async def _place_with_saga(self, order: dict[str, Any]) -> JSONResponse:
        with contextlib.suppress(StaleOrder):  # a concurrent retry of the same key wrote it first
            await self._write(order, None, None)
        try:
            await asyncio.to_thread(
                self.sfn.start_execution,
                stateMachineArn=self.saga_arn,
                name=order["orderId"],
                input=json.dumps({"input": order}),
            )
        except Exception as exc:
            if getattr(exc, "response", {}).get("Error", {}).get("Code") != "ExecutionAlreadyExists":
                raise
        return JSONResponse(order, status_code=202, headers={"location": f"/orders/{order['orderId']}"})

    async def _place_synchronously(self, order: dict[str, Any]) -> JSONResponse:
        assert self.inventory and self.payment
        order_id = order["orderId"]
        reservation = {
            "orderId": order_id,
            "items": [{"sku": i["sku"], "quantity": i["quantity"]} for i in order["items"]],
        }
        try:
            await self.inventory.post("/inventory/reservations", reservation, idempotency_key=f"{order_id}-reserve")
        except ServiceError as exc:
            if exc.status == 409:
                raise HTTPException(409, "out of stock") from None
            raise HTTPException(502, f"inventory answered {exc.status}") from None
        except UpstreamUnavailable:
            await self._release(order_id)
            raise HTTPException(503, "inventory unavailable") from None
        try:
            payment = await self.payment.post(
                "/payments/authorizations",
                {"orderId": order_id, "amount": order["total"]},
                idempotency_key=f"{order_id}-authorize",
            )
        except ServiceError as exc:
            await self._release(order_id)
            if exc.status == 402:
                raise HTTPException(402, "payment declined") from None
            raise HTTPException(503, f"payment unavailable: {exc}") from None
        except UpstreamUnavailable as exc:
            await self._release(order_id)
            raise HTTPException(503, f"payment unavailable: {exc}") from None
        confirmed = {**order, "status": "CONFIRMED", "paymentId": payment["paymentId"]}
        try:
            await self._write(confirmed, None, ("OrderPlaced", self._placed_event(confirmed)))
        except Exception:
            await self._void(order_id, payment["paymentId"])
            await self._release(order_id)
            raise
        return JSONResponse(confirmed, status_code=201, headers={"location": f"/orders/{order_id}"})

    @staticmethod
    def _placed_event(order: dict[str, Any]) -> dict[str, Any]:
        return event_detail(
            2,
            {"orderId": order["orderId"], "userId": order["userId"], "items": order["items"], "total": order["total"]},
        )

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
        if order["status"] == "PENDING":
            raise HTTPException(409, "the order is still being placed; cancel it once it is confirmed")
        if self.payment is None or self.inventory is None:
            raise HTTPException(503, "cancelling needs the payment and inventory services (calls)")
        await self._void(order_id, order["paymentId"])
        await self._release(order_id)
        cancelled = {**order, "status": "CANCELLED", "cancelReason": reason, "cancelledAt": now_iso()}
        detail = event_detail(1, {"orderId": order_id, "userId": order["userId"], "reason": reason})
        try:
            await self._write(cancelled, "CONFIRMED", ("OrderCancelled", detail))
        except StaleOrder:
            return JSONResponse(await self._load(order_id))  # a concurrent cancel won
        return JSONResponse(cancelled)

    async def _release(self, order_id: str) -> None:
        if self.inventory is None:
            return
        try:
            await self.inventory.post(
                f"/inventory/reservations/{order_id}/release", idempotency_key=f"{order_id}-release"
            )
        except ServiceError as exc:
            if exc.status != 404:
                log.error("compensation failed: stock not released", extra={"order_id": order_id, "status": exc.status})
        except UpstreamUnavailable:
            log.error("compensation failed: stock not released", extra={"order_id": order_id})

    async def _void(self, order_id: str, payment_id: str) -> None:
        if self.payment is None:
            return
        try:
            await self.payment.post(f"/payments/{payment_id}/void", {}, idempotency_key=f"{order_id}-void")
        except (ServiceError, UpstreamUnavailable) as exc:
            log.error("compensation failed: payment not voided", extra={"order_id": order_id, "error": str(exc)})

    # --- saga commands (this service is the saga's last participant) ------------------------------

    async def saga_confirm(self, command: dict[str, Any]) -> dict[str, Any]:
        order = await self._load(str(command["input"]["orderId"]))
        if order is None:
            raise SagaRefusal("Order.NotFound", "no such order")
        if order["status"] == "CONFIRMED":
            return {"orderId": order["orderId"], "status": "CONFIRMED"}  # a redelivered command
        if order["status"] != "PENDING":
            raise SagaRefusal("Order.NotPending", f"the order is {order['status']}")
        payment = (command.get("results") or {}).get("AuthorizePayment") or {}
        confirmed = {**order, "status": "CONFIRMED", "paymentId": payment.get("paymentId")}
        try:
            await self._write(confirmed, "PENDING", ("OrderPlaced", self._placed_event(confirmed)))
        except StaleOrder:
            return await self.saga_confirm(command)
        return {"orderId": order["orderId"], "status": "CONFIRMED"}

    async def saga_cancel(self, command: dict[str, Any]) -> dict[str, Any]:
        order = await self._load(str(command["input"]["orderId"]))
        if order is None or order["status"] == "CANCELLED":
            return {"orderId": command["input"]["orderId"], "status": "CANCELLED"}
        results = command.get("results") or {}
        reason = "out_of_stock" if "ReserveInventory" not in results else "payment_failed"
        cancelled = {**order, "status": "CANCELLED", "cancelReason": reason, "cancelledAt": now_iso()}
        detail = event_detail(1, {"orderId": order["orderId"], "userId": order["userId"], "reason": reason})
        try:
            await self._write(cancelled, order["status"], ("OrderCancelled", detail))
        except StaleOrder:
            return await self.saga_cancel(command)
        return {"orderId": order["orderId"], "status": "CANCELLED", "reason": reason}


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


def build(participate: bool | None = None) -> Any:
    """`participate`: answer saga commands (default: when `SAGA_COMMAND_QUEUE_URL` is set)."""
    from apps.runtime.stores import aws_client

    service = OrderService()
    background = [service.sweep]
    if participate if participate is not None else bool(os.environ.get(COMMAND_QUEUE_ENV)):
        handlers = {"ConfirmOrder": service.saga_confirm, "CancelOrder": service.saga_cancel}
        background.append(SagaParticipant(aws_client("sqs"), aws_client("stepfunctions"), handlers).run)
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
        background=background,
    )
    app.state.order = service
    return app


app = build()
