"""The inventory service over HTTP on loopback, against a real PostgreSQL server, consuming its moto SQS
queue (OrderPlaced / OrderCancelled, delivered at least once) and publishing InventoryLow."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import httpx
import pytest
from moto import mock_aws

from contracts import validate_event
from tests.apps.servers import LoopbackServer, Postgres
from tests.apps.support import REGION, captured_events, event_bus


@pytest.fixture(scope="module")
def inventory(postgres: Postgres) -> Iterator[dict[str, Any]]:
    postgres.create_database("inventory")
    with mock_aws(), pytest.MonkeyPatch.context() as env:
        settings = event_bus("inventory")
        sqs = boto3.client("sqs", region_name=REGION)
        queue = sqs.create_queue(QueueName="ms-test-inventory")["QueueUrl"]
        settings |= {**postgres.env("INVENTORY_DB", "inventory"), "EVENT_QUEUE_URLS": queue, "EVENT_WAIT_SECONDS": "1"}
        settings["LOW_STOCK_THRESHOLD"] = "2"
        for key, value in settings.items():
            env.setenv(key, value)
        from apps.inventory.app import build

        with LoopbackServer(build()) as server:
            yield {"url": server.url, "sqs": sqs, "queue": queue}


KEY = {"Idempotency-Key": "test-reservation-key"}


def stock(url: str, sku: str, available: int) -> None:
    assert httpx.put(f"{url}/inventory/{sku}", json={"available": available}).status_code == 200


def item(url: str, sku: str) -> dict[str, Any]:
    return dict(httpx.get(f"{url}/inventory/{sku}").json())


def eventually(check: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.1)


def queue_counts(api: dict[str, Any]) -> tuple[int, int]:
    """(visible, in flight) messages of the inventory queue."""
    names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    attributes = api["sqs"].get_queue_attributes(QueueUrl=api["queue"], AttributeNames=names)["Attributes"]
    return int(attributes[names[0]]), int(attributes[names[1]])


def send(api: dict[str, Any], detail_type: str, detail: dict[str, Any]) -> None:
    body = {
        "id": f"evt-{time.monotonic_ns()}",
        "source": "microservices.order",
        "detail-type": detail_type,
        "detail": detail,
    }
    api["sqs"].send_message(QueueUrl=api["queue"], MessageBody=json.dumps(body))


def test_reserve_and_release_over_http(inventory: dict[str, Any]) -> None:
    url = inventory["url"]
    stock(url, "SKU-100", 10)
    body = {"orderId": "order-a", "items": [{"sku": "SKU-100", "quantity": 3}, {"sku": "SKU-100", "quantity": 1}]}
    assert httpx.post(f"{url}/inventory/reservations", json=body).status_code == 400  # Idempotency-Key required
    created = httpx.post(f"{url}/inventory/reservations", json=body, headers=KEY)
    assert created.status_code == 201 and created.json()["status"] == "RESERVED"
    assert created.json()["reservationId"] == "order-a"
    assert item(url, "SKU-100") == {"sku": "SKU-100", "available": 6, "reserved": 4}
    # Idempotent per order: the same reservation again changes nothing.
    assert httpx.post(f"{url}/inventory/reservations", json=body, headers=KEY).status_code == 201
    assert item(url, "SKU-100")["available"] == 6
    released = httpx.post(f"{url}/inventory/reservations/order-a/release")
    assert released.json()["status"] == "RELEASED"
    assert httpx.post(f"{url}/inventory/reservations/order-a/release").json()["status"] == "RELEASED"
    assert item(url, "SKU-100") == {"sku": "SKU-100", "available": 10, "reserved": 0}


def test_short_stock_is_409_and_changes_nothing(inventory: dict[str, Any]) -> None:
    url = inventory["url"]
    stock(url, "SKU-200", 5)
    stock(url, "SKU-201", 1)
    body = {"orderId": "order-b", "items": [{"sku": "SKU-200", "quantity": 2}, {"sku": "SKU-201", "quantity": 2}]}
    answer = httpx.post(f"{url}/inventory/reservations", json=body, headers=KEY)
    assert answer.status_code == 409 and "SKU-201" in answer.json()["detail"]
    assert item(url, "SKU-200")["available"] == 5  # the whole reservation rolled back
    assert httpx.get(f"{url}/inventory/reservations/order-b").status_code == 404


def test_order_events_from_the_queue_are_applied_once(inventory: dict[str, Any]) -> None:
    url = inventory["url"]
    stock(url, "SKU-300", 8)
    placed = {
        "version": 2,
        "correlationId": "c-1",
        "occurredAt": "2026-11-29T06:00:00Z",
        "orderId": "order-c",
        "userId": "u-1",
        "items": [{"sku": "SKU-300", "quantity": 2, "unitPrice": {"value": "1", "currency": "EUR"}}],
        "total": {"value": "2", "currency": "EUR"},
    }
    send(inventory, "OrderPlaced", placed)
    send(inventory, "OrderPlaced", placed)  # at-least-once delivery: a duplicate
    eventually(lambda: httpx.get(f"{url}/inventory/reservations/order-c").status_code == 200)
    assert httpx.get(f"{url}/inventory/reservations/order-c").json()["status"] == "RESERVED"
    eventually(lambda: queue_counts(inventory) == (0, 0))  # both copies consumed and deleted
    assert item(url, "SKU-300") == {"sku": "SKU-300", "available": 6, "reserved": 2}
    cancelled = {
        "version": 1,
        "correlationId": "c-1",
        "occurredAt": "2026-11-29T06:01:00Z",
        "orderId": "order-c",
        "userId": "u-1",
        "reason": "customer_request",
    }
    send(inventory, "OrderCancelled", cancelled)
    send(inventory, "OrderCancelled", cancelled)
    eventually(lambda: httpx.get(f"{url}/inventory/reservations/order-c").json()["status"] == "RELEASED")
    # Every message (duplicates included) was handled and deleted: nothing is left for the DLQ.
    eventually(lambda: queue_counts(inventory) == (0, 0))
    assert item(url, "SKU-300") == {"sku": "SKU-300", "available": 8, "reserved": 0}


def test_unreadable_message_is_left_for_the_dead_letter_queue(inventory: dict[str, Any]) -> None:
    sqs = inventory["sqs"]
    sqs.send_message(QueueUrl=inventory["queue"], MessageBody="not json")
    # Received (in flight, invisible until its visibility timeout ends) but never deleted: SQS will
    # redeliver it and, after maxReceiveCount, move it to the DLQ.
    eventually(lambda: queue_counts(inventory) == (0, 1))
    time.sleep(0.5)
    assert queue_counts(inventory) == (0, 1)
    sqs.purge_queue(QueueUrl=inventory["queue"])


def test_low_stock_publishes_inventory_low(inventory: dict[str, Any]) -> None:
    url = inventory["url"]
    stock(url, "SKU-400", 3)
    body = {"orderId": "order-d", "items": [{"sku": "SKU-400", "quantity": 2}]}
    assert httpx.post(f"{url}/inventory/reservations", json=body, headers=KEY).status_code == 201
    low = [e for e in captured_events(inventory["sqs"], "InventoryLow") if e["detail"]["sku"] == "SKU-400"]
    assert len(low) == 1 and low[0]["source"] == "microservices.inventory"
    validate_event("InventoryLow", 1, low[0]["detail"])
    assert low[0]["detail"]["quantityOnHand"] == 1 and low[0]["detail"]["reorderThreshold"] == 2


@pytest.mark.parametrize(
    "body",
    [
        {"orderId": "x", "items": []},
        {"orderId": "x", "items": [{"sku": "bad sku", "quantity": 1}]},
        {"orderId": "x", "items": [{"sku": "SKU-1", "quantity": 0}]},
        {"items": [{"sku": "SKU-100", "quantity": 1}]},
    ],
)
def test_invalid_reservations_are_422(inventory: dict[str, Any], body: dict[str, Any]) -> None:
    assert httpx.post(f"{inventory['url']}/inventory/reservations", json=body, headers=KEY).status_code == 422
