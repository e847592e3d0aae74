"""Inventory service: stock levels and reservations in its own PostgreSQL database (`inventory-db`).

    GET  /inventory/{sku}                     -> 200 {"sku", "available", "reserved"}, 404 if unknown
    PUT  /inventory/{sku}   {"available"}     -> 200 (set the stock on hand; restocking, operators)
    POST /inventory/reservations   Idempotency-Key   {"orderId", "items": [{"sku", "quantity"}]}
                                              -> 201 reservation {"reservationId", "orderId", "status"}, 409 short
    GET  /inventory/reservations/{reservationId}          -> 200 reservation, 404
    POST /inventory/reservations/{reservationId}/release  -> 200 reservation (RELEASED)

One reservation per order (its id is the order id), so every call is idempotent: reserving an order
again returns the existing reservation (201 again, no double decrement), releasing twice returns the
same released reservation. All stock changes of one call happen in one transaction with row locks
taken in SKU order (no deadlock between two orders that share SKUs).

Events (queue `EVENT_QUEUE_URLS`, fed by the bus): `OrderPlaced` makes sure the order's stock is
reserved (reserving it if no reservation call ever arrived), `OrderCancelled` releases it. Each
(detail-type, orderId) is applied once: `processed_events` records it in the same transaction as the
stock change, so a redelivered or replayed event is a no-op.

Saga participant (`SAGA_COMMAND_QUEUE_URL`): `ReserveInventory` (short stock is the
`Inventory.OutOfStock` refusal) and `ReleaseInventory`, both keyed by the order id.
When stock on hand falls to `LOW_STOCK_THRESHOLD` (default 5) or below, `InventoryLow` is published.
"""

from __future__ import annotations

import logging
import os
import re
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from apps.runtime import ReadinessCheck, create_app
from apps.runtime.app import read_json_object
from apps.runtime.events import EventPublisher, QueueConsumer, event_detail
from apps.runtime.saga import COMMAND_QUEUE_ENV, SagaParticipant, SagaRefusal
from apps.runtime.stores import aws_client, postgres_pool

log = logging.getLogger("apps.inventory")

STORE = "inventory-db"
SKU = re.compile(r"^[A-Z0-9][A-Z0-9-]{2,31}$")
ORDER_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
KEY = re.compile(r"^[A-Za-z0-9._:-]{8,128}$")
WAREHOUSE = "main"

SCHEMA = """
CREATE TABLE IF NOT EXISTS stock (
    sku        text PRIMARY KEY,
    available  integer NOT NULL CHECK (available >= 0),
    reserved   integer NOT NULL DEFAULT 0 CHECK (reserved >= 0),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS reservations (
    order_id   text PRIMARY KEY,
    status     text NOT NULL CHECK (status IN ('RESERVED', 'RELEASED')),
    items      jsonb NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS processed_events (
    event_key    text PRIMARY KEY,
    processed_at timestamptz NOT NULL DEFAULT now()
);
"""


class OutOfStock(Exception):
    def __init__(self, sku: str) -> None:
        super().__init__(f"not enough stock for {sku}")
        self.sku = sku


class InventoryService:
    def __init__(self) -> None:
        self.pool: Any = None
        self.events: EventPublisher | None = None
        self.low_stock = 5

    async def start(self) -> None:
        self.low_stock = int(os.environ.get("LOW_STOCK_THRESHOLD", "5"))
        self.pool = await postgres_pool(STORE)
        async with self.pool.acquire() as conn:
            await conn.execute(SCHEMA)
        if os.environ.get("EVENT_BUS_ARN"):
            self.events = EventPublisher(aws_client("events"))

    async def stop(self) -> None:
        if self.pool is not None:
            await self.pool.close()

    async def ping(self) -> None:
        await self.pool.fetchval("SELECT 1")

    # --- stock -----------------------------------------------------------------------------

    async def get_item(self, request: Request) -> JSONResponse:
        row = await self.pool.fetchrow("SELECT * FROM stock WHERE sku = $1", request.path_params["sku"])
        if row is None:
            raise HTTPException(404, "unknown sku")
        return JSONResponse(_item(row))

    async def put_item(self, request: Request) -> JSONResponse:
        sku = request.path_params["sku"]
        if not SKU.match(sku):
            raise HTTPException(422, "sku: 3 to 32 characters [A-Z0-9-]")
        body = await read_json_object(request)
        available = body.get("available")
        if not isinstance(available, int) or isinstance(available, bool) or not 0 <= available <= 10_000_000:
            raise HTTPException(422, "available: an integer from 0 to 10000000")
        row = await self.pool.fetchrow(
            "INSERT INTO stock (sku, available) VALUES ($1, $2) "
            "ON CONFLICT (sku) DO UPDATE SET available = EXCLUDED.available, updated_at = now() RETURNING *",
            sku,
            available,
        )
        return JSONResponse(_item(row))

    # --- reservations ------------------------------------------------------------------------

    async def reserve(
        self, order_id: str, items: list[dict[str, Any]], conn: Any = None
    ) -> tuple[dict[str, Any], list[Any]]:
        """Reserve the items for the order (idempotent); returns the reservation and rows now low on stock."""
        async with self.pool.acquire() if conn is None else _Borrowed(conn) as c, c.transaction():
            existing = await c.fetchrow("SELECT * FROM reservations WHERE order_id = $1 FOR UPDATE", order_id)
            if existing is not None:
                return _reservation(existing), []
            wanted: dict[str, int] = {}
            for item in items:
                wanted[item["sku"]] = wanted.get(item["sku"], 0) + item["quantity"]
            low = []
            for sku in sorted(wanted):
                row = await c.fetchrow(
                    "UPDATE stock SET available = available - $2, reserved = reserved + $2, updated_at = now() "
                    "WHERE sku = $1 AND available >= $2 RETURNING *",
                    sku,
                    wanted[sku],
                )
                if row is None:
                    raise OutOfStock(sku)
                if row["available"] <= self.low_stock:
                    low.append(row)
            saved = await c.fetchrow(
                "INSERT INTO reservations (order_id, status, items) VALUES ($1, 'RESERVED', $2::jsonb) RETURNING *",
                order_id,
                _json([{"sku": s, "quantity": q} for s, q in sorted(wanted.items())]),
            )
            return _reservation(saved), low

    async def release(self, order_id: str, conn: Any = None) -> dict[str, Any] | None:
        async with self.pool.acquire() if conn is None else _Borrowed(conn) as c, c.transaction():
            row = await c.fetchrow("SELECT * FROM reservations WHERE order_id = $1 FOR UPDATE", order_id)
            if row is None:
                return None
            if row["status"] != "RELEASED":
                for item in sorted(_load(row["items"]), key=lambda i: i["sku"]):
                    await c.execute(
                        "UPDATE stock SET available = available + $2, reserved = reserved - $2, updated_at = now() "
                        "WHERE sku = $1",
                        item["sku"],
                        item["quantity"],
                    )
                row = await c.fetchrow(
                    "UPDATE reservations SET status = 'RELEASED', updated_at = now() WHERE order_id = $1 RETURNING *",
                    order_id,
                )
            return _reservation(row)

    async def create_reservation(self, request: Request) -> JSONResponse:
        if not KEY.match(request.headers.get("idempotency-key", "")):
            raise HTTPException(400, "Idempotency-Key header: 8 to 128 characters [A-Za-z0-9._:-] are required")
        body = await read_json_object(request)
        order_id, items = _validate_reservation(body)
        try:
            reservation, low = await self.reserve(order_id, items)
        except OutOfStock as exc:
            raise HTTPException(409, f"insufficient stock for {exc.sku}") from None
        await self._report_low(low)
        return JSONResponse(reservation, status_code=201)

    async def get_reservation(self, request: Request) -> JSONResponse:
        row = await self.pool.fetchrow(
            "SELECT * FROM reservations WHERE order_id = $1", request.path_params["reservation_id"]
        )
        if row is None:
            raise HTTPException(404, "no reservation for this order")
        return JSONResponse(_reservation(row))

    async def release_reservation(self, request: Request) -> JSONResponse:
        reservation = await self.release(request.path_params["reservation_id"])
        if reservation is None:
            raise HTTPException(404, "no reservation for this order")
        return JSONResponse(reservation)

    # --- events ------------------------------------------------------------------------------

    async def on_event(self, detail_type: str, detail: dict[str, Any], event: dict[str, Any]) -> None:
        """OrderPlaced / OrderCancelled from the order service, each applied once per order."""
        order_id = str(detail["orderId"])
        key = f"{detail_type}:{order_id}"
        low: list[Any] = []
        async with self.pool.acquire() as conn, conn.transaction():
            first = await conn.fetchval(
                "INSERT INTO processed_events (event_key) VALUES ($1) ON CONFLICT DO NOTHING RETURNING event_key", key
            )
            if first is None:
                log.info("duplicate event ignored", extra={"event_key": key})
                return
            if detail_type == "OrderPlaced":
                items = [{"sku": i["sku"], "quantity": int(i["quantity"])} for i in detail["items"]]
                try:
                    _, low = await self.reserve(order_id, items, conn)
                except OutOfStock:
                    # The order was accepted without our reservation and stock is gone: record it; the
                    # saga's compensation (or an operator) cancels the order.
                    log.error("placed order cannot be reserved", extra={"order_id": order_id})
                    return
            elif detail_type == "OrderCancelled":
                await self.release(order_id, conn)
            else:
                log.warning("event type not handled", extra={"detail_type": detail_type})
        await self._report_low(low)

    # --- saga commands --------------------------------------------------------------------------

    async def saga_reserve(self, command: dict[str, Any]) -> dict[str, Any]:
        order = command["input"]
        items = [{"sku": str(i["sku"]), "quantity": int(i["quantity"])} for i in order["items"]]
        try:
            reservation, low = await self.reserve(str(order["orderId"]), items)
        except OutOfStock as exc:
            raise SagaRefusal("Inventory.OutOfStock", str(exc)) from None
        await self._report_low(low)
        return {"reservationId": reservation["reservationId"], "status": reservation["status"]}

    async def saga_release(self, command: dict[str, Any]) -> dict[str, Any]:
        reservation = await self.release(str(command["input"]["orderId"]))
        return {"status": reservation["status"] if reservation else "NOTHING_RESERVED"}

    async def _report_low(self, rows: list[Any]) -> None:
        if self.events is None:
            return
        for row in rows:
            detail = event_detail(
                1,
                {
                    "sku": row["sku"],
                    "warehouseId": WAREHOUSE,
                    "quantityOnHand": row["available"],
                    "reorderThreshold": self.low_stock,
                },
            )
            try:
                await self.events.publish("InventoryLow", detail)
            except Exception:
                log.exception("InventoryLow not published", extra={"sku": row["sku"]})


class _Borrowed:
    """`async with` over a connection the caller already holds (inside its transaction)."""

    def __init__(self, conn: Any) -> None:
        self.conn = conn

    async def __aenter__(self) -> Any:
        return self.conn

    async def __aexit__(self, *exc: object) -> None:
        return None


def _validate_reservation(body: dict[str, Any]) -> tuple[str, list[dict[str, Any]]]:
    order_id = body.get("orderId")
    if not isinstance(order_id, str) or not ORDER_ID.match(order_id):
        raise HTTPException(422, "orderId: 1 to 64 characters [A-Za-z0-9_-]")
    items = body.get("items")
    if not isinstance(items, list) or not 1 <= len(items) <= 100:
        raise HTTPException(422, "items: 1 to 100 items")
    clean = []
    for item in items:
        sku = item.get("sku") if isinstance(item, dict) else None
        quantity = item.get("quantity") if isinstance(item, dict) else None
        if not isinstance(sku, str) or not SKU.match(sku):
            raise HTTPException(422, "items[].sku: 3 to 32 characters [A-Z0-9-]")
        if not isinstance(quantity, int) or isinstance(quantity, bool) or not 1 <= quantity <= 1000:
            raise HTTPException(422, "items[].quantity: an integer from 1 to 1000")
        clean.append({"sku": sku, "quantity": quantity})
    return order_id, clean


def _json(value: Any) -> str:
    import json

    return json.dumps(value, separators=(",", ":"))


def _load(value: Any) -> list[dict[str, Any]]:
    import json

    return json.loads(value) if isinstance(value, str) else list(value)


def _item(row: Any) -> dict[str, Any]:
    return {"sku": row["sku"], "available": row["available"], "reserved": row["reserved"]}


def _reservation(row: Any) -> dict[str, Any]:
    return {
        "reservationId": row["order_id"],
        "orderId": row["order_id"],
        "status": row["status"],
        "items": _load(row["items"]),
    }


def build(consume: bool | None = None, participate: bool | None = None) -> Any:
    """`consume`: run the event queue consumer (default: when `EVENT_QUEUE_URLS` is set);
    `participate`: answer saga commands (default: when `SAGA_COMMAND_QUEUE_URL` is set)."""
    service = InventoryService()
    background = []
    if consume if consume is not None else bool(os.environ.get("EVENT_QUEUE_URLS")):
        consumer = QueueConsumer(aws_client("sqs"), service.on_event)
        background.append(consumer.run)
    if participate if participate is not None else bool(os.environ.get(COMMAND_QUEUE_ENV)):
        handlers = {"ReserveInventory": service.saga_reserve, "ReleaseInventory": service.saga_release}
        background.append(SagaParticipant(aws_client("sqs"), aws_client("stepfunctions"), handlers).run)
    app = create_app(
        "inventory",
        [
            Route("/inventory/reservations", service.create_reservation, methods=["POST"]),
            Route("/inventory/reservations/{reservation_id:str}", service.get_reservation, methods=["GET"]),
            Route(
                "/inventory/reservations/{reservation_id:str}/release", service.release_reservation, methods=["POST"]
            ),
            Route("/inventory/{sku:str}", service.get_item, methods=["GET"]),
            Route("/inventory/{sku:str}", service.put_item, methods=["PUT"]),
        ],
        checks=[ReadinessCheck(STORE, service.ping)],
        on_startup=[service.start],
        on_shutdown=[service.stop],
        background=background,
    )
    app.state.inventory = service
    return app


app = build()
