"""The order service over HTTP on loopback, calling the real user, inventory and payment services (each on
loopback with its real PostgreSQL or Redis) through `<NAME>_SERVICE_URL`, with its table, bus and outbox
in moto's DynamoDB and EventBridge."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import boto3
import httpx
import pytest
from moto import mock_aws

from apps.order.app import money
from contracts import validate_event
from tests.apps.servers import LoopbackServer, Postgres, Redis, free_port
from tests.apps.support import REGION, captured_events, event_bus

TABLE = "ms-test-orders"


@pytest.fixture(scope="module")
def system(postgres: Postgres, redis_srv: Redis) -> Iterator[dict[str, Any]]:
    postgres.create_database("order_users")
    postgres.create_database("order_inventory")
    with mock_aws(), pytest.MonkeyPatch.context() as env, contextlib.ExitStack() as stack:
        for key, value in {
            **postgres.env("USERS_DB", "order_users"),
            **postgres.env("INVENTORY_DB", "order_inventory"),
            **redis_srv.env("PAYMENT_CACHE"),
            "PAYMENT_PROVIDER_API_KEY": "test-provider-key",
            "PAYMENT_DECLINE_ABOVE": "1000",
            "AWS_REGION": REGION,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
        }.items():
            env.setenv(key, value)
        from apps.inventory.app import build as inventory_app
        from apps.order.app import build as order_app
        from apps.payment.app import build as payment_app
        from apps.user.app import build as user_app

        urls = {
            name: stack.enter_context(LoopbackServer(build())).url
            for name, build in (("user", user_app), ("inventory", inventory_app), ("payment", payment_app))
        }
        boto3.client("dynamodb", region_name=REGION).create_table(
            TableName=TABLE,
            KeySchema=[{"AttributeName": "orderId", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "orderId", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        for key, value in {
            **event_bus("order"),
            "ORDERS_TABLE_NAME": TABLE,
            "USER_SERVICE_URL": urls["user"],
            "INVENTORY_SERVICE_URL": urls["inventory"],
            "PAYMENT_SERVICE_URL": urls["payment"],
        }.items():
            env.setenv(key, value)
        app = order_app()
        order = stack.enter_context(LoopbackServer(app))
        user = httpx.post(f"{urls['user']}/users", json={"email": "buyer@example.org"}).json()
        yield {
            **urls,
            "order": order.url,
            "app": app,
            "user_id": user["userId"],
            "sqs": boto3.client("sqs", region_name=REGION),
            "dynamodb": boto3.client("dynamodb", region_name=REGION),
        }


def key(value: str | None = None) -> dict[str, str]:
    import uuid

    return {"Idempotency-Key": value or f"checkout-{uuid.uuid4().hex}"}


def restock(system: dict[str, Any], sku: str, available: int) -> None:
    httpx.put(f"{system['inventory']}/inventory/{sku}", json={"available": available}).raise_for_status()


def available(system: dict[str, Any], sku: str) -> int:
    return int(httpx.get(f"{system['inventory']}/inventory/{sku}").json()["available"])


def order_body(system: dict[str, Any], sku: str, quantity: int = 2, price: str = "19.99") -> dict[str, Any]:
    return {
        "userId": system["user_id"],
        "items": [{"sku": sku, "quantity": quantity, "unitPrice": {"value": price, "currency": "EUR"}}],
    }


def outbox(system: dict[str, Any], order_id: str) -> list[dict[str, Any]]:
    items = system["dynamodb"].scan(TableName=TABLE)["Items"]
    return [i for i in items if i["recordType"]["S"] == "outbox" and i["aggregateId"]["S"] == order_id]


def test_place_get_cancel(system: dict[str, Any]) -> None:
    restock(system, "SKU-ORD-1", 10)
    placed = httpx.post(
        f"{system['order']}/orders",
        json=order_body(system, "SKU-ORD-1"),
        headers={"x-correlation-id": "checkout-1", **key("checkout-1")},
    )
    assert placed.status_code == 201, placed.text
    order = placed.json()
    assert order["status"] == "CONFIRMED" and order["total"] == {"value": "39.98", "currency": "EUR"}
    assert available(system, "SKU-ORD-1") == 8
    payment = httpx.get(f"{system['payment']}/payments/{order['paymentId']}").json()
    assert payment["status"] == "AUTHORIZED" and payment["orderId"] == order["orderId"]
    assert httpx.get(f"{system['order']}/orders/{order['orderId']}").json() == order

    # Order and event were written together, and the relay published the event and marked it.
    [event_item] = outbox(system, order["orderId"])
    assert event_item["detailType"]["S"] == "OrderPlaced" and "publishedAt" in event_item
    [event] = [e for e in captured_events(system["sqs"], "OrderPlaced") if e["detail"]["orderId"] == order["orderId"]]
    assert event["source"] == "microservices.order"
    validate_event("OrderPlaced", 2, event["detail"])
    assert event["detail"]["correlationId"] == "checkout-1"

    cancelled = httpx.post(f"{system['order']}/orders/{order['orderId']}/cancel", json={"reason": "customer_request"})
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "CANCELLED"
    assert available(system, "SKU-ORD-1") == 10
    assert httpx.get(f"{system['payment']}/payments/{order['paymentId']}").json()["status"] == "VOIDED"
    again = httpx.post(f"{system['order']}/orders/{order['orderId']}/cancel")
    assert again.status_code == 200 and again.json()["cancelledAt"] == cancelled.json()["cancelledAt"]
    [cancel_event] = [
        e for e in captured_events(system["sqs"], "OrderCancelled") if e["detail"]["orderId"] == order["orderId"]
    ]
    validate_event("OrderCancelled", 1, cancel_event["detail"])
    assert len(outbox(system, order["orderId"])) == 2


def test_client_idempotency_key_returns_the_same_order(system: dict[str, Any]) -> None:
    restock(system, "SKU-ORD-2", 10)
    headers = {"Idempotency-Key": "checkout-attempt-42"}
    first = httpx.post(f"{system['order']}/orders", json=order_body(system, "SKU-ORD-2"), headers=headers)
    second = httpx.post(f"{system['order']}/orders", json=order_body(system, "SKU-ORD-2"), headers=headers)
    assert first.status_code == second.status_code == 201
    assert first.json() == second.json() and second.headers["idempotent-replayed"] == "true"
    assert available(system, "SKU-ORD-2") == 8  # reserved once


def test_out_of_stock_is_409_and_nothing_is_written(system: dict[str, Any]) -> None:
    restock(system, "SKU-ORD-3", 1)
    answer = httpx.post(f"{system['order']}/orders", json=order_body(system, "SKU-ORD-3", quantity=5), headers=key())
    assert answer.status_code == 409
    assert available(system, "SKU-ORD-3") == 1


def test_declined_payment_releases_the_stock(system: dict[str, Any]) -> None:
    restock(system, "SKU-ORD-4", 10)
    answer = httpx.post(
        f"{system['order']}/orders", json=order_body(system, "SKU-ORD-4", quantity=2, price="900"), headers=key()
    )
    assert answer.status_code == 402 and answer.headers["content-type"] == "application/problem+json"
    assert available(system, "SKU-ORD-4") == 10  # compensated


def test_payment_unavailable_releases_the_stock(system: dict[str, Any]) -> None:
    restock(system, "SKU-ORD-5", 10)
    service = system["app"].state.order
    real = service.payment.base_url
    from apps.runtime import ServiceClient

    service.payment = ServiceClient("payment", f"http://127.0.0.1:{free_port()}", backoff_base=0.01)
    try:
        answer = httpx.post(f"{system['order']}/orders", json=order_body(system, "SKU-ORD-5"), headers=key())
    finally:
        service.payment = ServiceClient("payment", real)
    assert answer.status_code == 503 and "payment unavailable" in answer.json()["detail"]
    assert available(system, "SKU-ORD-5") == 10


def test_unknown_user_is_422(system: dict[str, Any]) -> None:
    body = {**order_body(system, "SKU-ORD-1"), "userId": "nobody"}
    answer = httpx.post(f"{system['order']}/orders", json=body, headers=key())
    assert answer.status_code == 422 and "no such user" in answer.json()["detail"]
    missing_key = httpx.post(f"{system['order']}/orders", json=order_body(system, "SKU-ORD-1"))
    assert missing_key.status_code == 400 and "Idempotency-Key" in missing_key.json()["detail"]


def test_the_sweep_publishes_what_a_crash_left_in_the_outbox(system: dict[str, Any]) -> None:
    import asyncio

    service = system["app"].state.order
    marker = {
        "version": 1,
        "correlationId": "c",
        "occurredAt": "2026-11-29T06:00:00Z",
        "orderId": "crashed-order",
        "userId": "u",
        "reason": "fraud_suspected",
    }
    _, put = service._outbox_put("OrderCancelled", marker)
    system["dynamodb"].put_item(**{k: v for k, v in put["Put"].items() if k != "ConditionExpression"})
    assert asyncio.run(service.publish_pending()) == 1
    assert asyncio.run(service.publish_pending()) == 0  # marked published
    assert [e for e in captured_events(system["sqs"], "OrderCancelled") if e["detail"]["orderId"] == "crashed-order"]


@pytest.mark.parametrize(("value", "text"), [("39.980", "39.98"), ("0", "0"), ("100", "100"), ("0.001", "0.001")])
def test_money_strings_follow_the_contract(value: str, text: str) -> None:
    assert money(Decimal(value)) == text


def test_stream_relay_leaves_publishing_to_the_pipe(system: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    import asyncio

    from apps.order.app import OrderService

    monkeypatch.setenv("OUTBOX_RELAY", "stream")
    service = OrderService()
    asyncio.run(service.start())
    assert service.events is None  # no PutEvents from the app: the table stream's pipe publishes
    monkeypatch.setenv("OUTBOX_RELAY", "app")
    service = OrderService()
    asyncio.run(service.start())
    assert service.events is not None
