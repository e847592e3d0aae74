"""Order placement as a saga: a Standard workflow EXECUTED by moto's Step Functions interpreter sends
task-token commands to the participants' own SQS queues, and the real inventory, payment and order
apps (on loopback, with their real PostgreSQL, Redis and moto DynamoDB) answer them. The order writes
its events to an event store table (`ORDER_EVENTS_NAME`, the outbox a table-stream pipe publishes)."""

from __future__ import annotations

import contextlib
import json
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import httpx
import pytest
from moto import mock_aws

from contracts import validate_event
from tests.apps.servers import LoopbackServer, Postgres, Redis
from tests.apps.support import REGION

PARTICIPANTS = ("inventory", "payment", "order")


def _command(queue: str, step: str, result: str | None, catch: str | None, nxt: str | None) -> dict[str, Any]:
    state: dict[str, Any] = {
        "Type": "Task",
        "Resource": "arn:aws:states:::sqs:sendMessage.waitForTaskToken",
        "Parameters": {
            "QueueUrl": queue,
            "MessageBody": {
                "saga": "order-placement",
                "sagaId.$": "$$.Execution.Name",
                "step": step,
                "command": step,
                "idempotencyKey.$": f"States.Format('{{}}:{step}', $$.Execution.Name)",
                "taskToken.$": "$$.Task.Token",
                "input.$": "$.input",
                "results.$": "$.results",
            },
        },
        "ResultPath": f"$.results.{result}" if result else None,
        "TimeoutSeconds": 30,
    }
    if catch:
        state["Catch"] = [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": catch}]
    state.update({"Next": nxt} if nxt else {"End": True})
    return state


def saga_definition(queues: dict[str, str]) -> dict[str, Any]:
    """Reserve -> authorize -> confirm; a failure compensates the completed steps in reverse, then cancels."""
    return {
        "StartAt": "Begin",
        "States": {
            "Begin": {"Type": "Pass", "Parameters": {"input.$": "$.input", "results": {}}, "Next": "ReserveInventory"},
            "ReserveInventory": _command(
                queues["inventory"], "ReserveInventory", "ReserveInventory", "CancelOrder", "AuthorizePayment"
            ),
            "AuthorizePayment": _command(
                queues["payment"], "AuthorizePayment", "AuthorizePayment", "ReleaseInventory", "ConfirmOrder"
            ),
            "ConfirmOrder": _command(queues["order"], "ConfirmOrder", "ConfirmOrder", "VoidPayment", None),
            "VoidPayment": _command(queues["payment"], "VoidPayment", None, None, "ReleaseInventory"),
            "ReleaseInventory": _command(queues["inventory"], "ReleaseInventory", None, None, "CancelOrder"),
            "CancelOrder": _command(queues["order"], "CancelOrder", None, None, "SagaFailed"),
            "SagaFailed": {"Type": "Fail", "Error": "SagaFailed"},
        },
    }


@pytest.fixture(scope="module")
def saga(postgres: Postgres, redis_srv: Redis) -> Iterator[dict[str, Any]]:
    postgres.create_database("saga_users")
    postgres.create_database("saga_inventory")
    config = {"stepfunctions": {"execute_state_machine": True}}
    with mock_aws(config=config), pytest.MonkeyPatch.context() as env, contextlib.ExitStack() as stack:  # type: ignore[arg-type]
        for key, value in {
            **postgres.env("USERS_DB", "saga_users"),
            **postgres.env("INVENTORY_DB", "saga_inventory"),
            **redis_srv.env("PAYMENT_CACHE"),
            "PAYMENT_PROVIDER_API_KEY": "test-provider-key",
            "PAYMENT_DECLINE_ABOVE": "1000",
            "AWS_REGION": REGION,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "EVENT_WAIT_SECONDS": "1",
        }.items():
            env.setenv(key, value)
        sqs = boto3.client("sqs", region_name=REGION)
        sfn = boto3.client("stepfunctions", region_name=REGION)
        dynamodb = boto3.client("dynamodb", region_name=REGION)
        queues = {p: sqs.create_queue(QueueName=f"ms-test-{p}-saga-commands")["QueueUrl"] for p in PARTICIPANTS}
        machine = sfn.create_state_machine(
            name="ms-test-order-placement",
            definition=json.dumps(saga_definition(queues)),
            roleArn="arn:aws:iam::123456789012:role/ms-test-order-placement",
            type="STANDARD",
        )["stateMachineArn"]
        dynamodb.create_table(
            TableName="ms-test-orders",
            KeySchema=[{"AttributeName": "orderId", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "orderId", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        dynamodb.create_table(
            TableName="ms-test-order-events",
            KeySchema=[
                {"AttributeName": "aggregateId", "KeyType": "HASH"},
                {"AttributeName": "sequence", "KeyType": "RANGE"},
            ],
            AttributeDefinitions=[
                {"AttributeName": "aggregateId", "AttributeType": "S"},
                {"AttributeName": "sequence", "AttributeType": "N"},
            ],
            BillingMode="PAY_PER_REQUEST",
        )
        from apps.inventory.app import build as inventory_app
        from apps.order.app import build as order_app
        from apps.payment.app import build as payment_app
        from apps.user.app import build as user_app

        urls = {"user": stack.enter_context(LoopbackServer(user_app())).url}
        for name, build in (("inventory", inventory_app), ("payment", payment_app)):
            env.setenv("SAGA_COMMAND_QUEUE_URL", queues[name])  # each app reads its own queue at build
            urls[name] = stack.enter_context(LoopbackServer(build())).url
        for key, value in {
            "SAGA_COMMAND_QUEUE_URL": queues["order"],
            "ORDER_PLACEMENT_SAGA_ARN": machine,
            "ORDERS_TABLE_NAME": "ms-test-orders",
            "ORDER_EVENTS_NAME": "ms-test-order-events",
            "USER_SERVICE_URL": urls["user"],
        }.items():
            env.setenv(key, value)
        env.delenv("INVENTORY_SERVICE_URL", raising=False)
        env.delenv("PAYMENT_SERVICE_URL", raising=False)
        urls["order"] = stack.enter_context(LoopbackServer(order_app())).url
        user = httpx.post(f"{urls['user']}/users", json={"email": "saga@example.org"}).json()
        yield {**urls, "user_id": user["userId"], "sfn": sfn, "machine": machine, "dynamodb": dynamodb}


def eventually(check: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.2)


def place(saga: dict[str, Any], sku: str, quantity: int, price: str = "10") -> dict[str, Any]:
    httpx.put(f"{saga['inventory']}/inventory/{sku}", json={"available": 5}).raise_for_status()
    body = {
        "userId": saga["user_id"],
        "items": [{"sku": sku, "quantity": quantity, "unitPrice": {"value": price, "currency": "EUR"}}],
    }
    answer = httpx.post(f"{saga['order']}/orders", json=body, headers={"Idempotency-Key": f"saga-{uuid.uuid4().hex}"})
    assert answer.status_code == 202, answer.text
    assert answer.json()["status"] == "PENDING"
    return dict(answer.json())


def finished(saga: dict[str, Any], order: dict[str, Any]) -> dict[str, Any]:
    arn = f"{saga['machine'].replace(':stateMachine:', ':execution:')}:{order['orderId']}"
    eventually(lambda: saga["sfn"].describe_execution(executionArn=arn)["status"] != "RUNNING")
    return dict(saga["sfn"].describe_execution(executionArn=arn))


def events(saga: dict[str, Any], order_id: str) -> list[dict[str, Any]]:
    items = saga["dynamodb"].query(
        TableName="ms-test-order-events",
        KeyConditionExpression="aggregateId = :id",
        ExpressionAttributeValues={":id": {"S": order_id}},
    )["Items"]
    return [
        {"sequence": int(i["sequence"]["N"]), "type": i["detailType"]["S"], "detail": json.loads(i["detail"]["S"])}
        for i in items
    ]


def stock(saga: dict[str, Any], sku: str) -> dict[str, Any]:
    return dict(httpx.get(f"{saga['inventory']}/inventory/{sku}").json())


def test_the_saga_confirms_the_order(saga: dict[str, Any]) -> None:
    order = place(saga, "SKU-SAGA-1", 2)
    execution = finished(saga, order)
    assert execution["status"] == "SUCCEEDED", execution
    results = json.loads(execution["output"])["results"]
    assert results["ConfirmOrder"] == {"orderId": order["orderId"], "status": "CONFIRMED"}
    confirmed = httpx.get(f"{saga['order']}/orders/{order['orderId']}").json()
    assert confirmed["status"] == "CONFIRMED" and confirmed["paymentId"] == results["AuthorizePayment"]["paymentId"]
    assert stock(saga, "SKU-SAGA-1") == {"sku": "SKU-SAGA-1", "available": 3, "reserved": 2}
    payment = httpx.get(f"{saga['payment']}/payments/{confirmed['paymentId']}").json()
    assert payment["status"] == "AUTHORIZED"
    [placed] = events(saga, order["orderId"])
    assert (placed["sequence"], placed["type"]) == (1, "OrderPlaced")
    validate_event("OrderPlaced", 2, placed["detail"])


def test_a_declined_payment_releases_the_stock_and_cancels_the_order(saga: dict[str, Any]) -> None:
    order = place(saga, "SKU-SAGA-2", 2, price="900")
    execution = finished(saga, order)
    assert execution["status"] == "FAILED" and execution.get("error") == "SagaFailed"
    cancelled = httpx.get(f"{saga['order']}/orders/{order['orderId']}").json()
    assert cancelled["status"] == "CANCELLED" and cancelled["cancelReason"] == "payment_failed"
    assert stock(saga, "SKU-SAGA-2") == {"sku": "SKU-SAGA-2", "available": 5, "reserved": 0}
    [event] = events(saga, order["orderId"])
    assert event["type"] == "OrderCancelled"
    validate_event("OrderCancelled", 1, event["detail"])


def test_short_stock_cancels_without_charging(saga: dict[str, Any]) -> None:
    order = place(saga, "SKU-SAGA-3", 9)
    assert finished(saga, order)["status"] == "FAILED"
    cancelled = httpx.get(f"{saga['order']}/orders/{order['orderId']}").json()
    assert cancelled["status"] == "CANCELLED" and cancelled["cancelReason"] == "out_of_stock"
    assert "paymentId" not in cancelled
    assert stock(saga, "SKU-SAGA-3")["available"] == 5


def test_a_pending_order_cannot_be_cancelled_by_the_api(saga: dict[str, Any]) -> None:
    import asyncio

    from apps.order.app import OrderService

    service = OrderService()
    asyncio.run(service.start())
    pending = {
        "orderId": f"o{uuid.uuid4().hex}",
        "userId": saga["user_id"],
        "status": "PENDING",
        "items": [],
        "total": {"value": "1", "currency": "EUR"},
    }
    asyncio.run(service._write(pending, None, None))
    answer = httpx.post(f"{saga['order']}/orders/{pending['orderId']}/cancel")
    assert answer.status_code == 409
