"""The order-history read model: the generic projection run against moto's DynamoDB with duplicate and
out-of-order events, the handler's partial batch failures, and the declared resources."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from components.patterns.readmodel import projection_environment
from offline.plan import Plan
from services import load_catalog
from services.projections import handler
from services.projections.handler import Projection
from tests.conftest import only
from tests.notification_events import detail

ORDER = next(s for s in load_catalog() if s.name == "order")
MODEL = ORDER.read_models[0]


@pytest.fixture
def projection() -> Iterator[Projection]:
    with mock_aws():
        dynamodb = boto3.resource("dynamodb", region_name="us-east-1")
        dynamodb.create_table(
            TableName="order-history",
            KeySchema=[
                {"AttributeName": "userId", "KeyType": "HASH"},
                {"AttributeName": "orderId", "KeyType": "RANGE"},
            ],
            AttributeDefinitions=[
                {"AttributeName": "userId", "AttributeType": "S"},
                {"AttributeName": "orderId", "AttributeType": "S"},
            ],
            BillingMode="PAY_PER_REQUEST",
        )
        environ = {"TABLE_NAME": "order-history", **projection_environment(MODEL)}
        yield Projection.from_environment(environ, resource=dynamodb)


def event(event_id: str, detail_type: str, **fields: Any) -> dict[str, Any]:
    return {
        "id": event_id,
        "source": "microservices.order",
        "detail-type": detail_type,
        "detail": detail(detail_type, 2 if detail_type == "OrderPlaced" else 1, orderId="ord-1", **fields),
    }


def item(projection: Projection) -> dict[str, Any]:
    return projection.table.get_item(Key={"userId": "usr_7f3a9c", "orderId": "ord-1"})["Item"]


def test_the_spec_configures_the_projection() -> None:
    assert projection_environment(MODEL) == {
        "READ_MODEL": "order-history",
        "KEY_FIELDS": "userId,orderId",
        "COPY_FIELDS": "total,items,occurredAt,reason",
        "LIFECYCLE": "OrderPlaced,OrderCancelled",
    }


def test_in_order_events_build_the_history(projection: Projection) -> None:
    assert projection.apply(event("e1", "OrderPlaced")) == "applied"
    assert item(projection)["status"] == "OrderPlaced" and item(projection)["total"] == {
        "value": "48.30",
        "currency": "EUR",
    }
    assert projection.apply(event("e2", "OrderCancelled")) == "applied"
    stored = item(projection)
    assert stored["status"] == "OrderCancelled" and stored["reason"] == "customer_request"
    assert stored["appliedEventIds"] == {"e1", "e2"} and stored["revision"] == 2


def test_a_duplicate_event_changes_nothing(projection: Projection) -> None:
    projection.apply(event("e1", "OrderPlaced"))
    before = item(projection)
    assert projection.apply(event("e1", "OrderPlaced")) == "duplicate"
    assert item(projection) == before


def test_an_out_of_order_event_fills_in_but_never_moves_the_status_back(projection: Projection) -> None:
    assert projection.apply(event("e2", "OrderCancelled")) == "applied"
    assert "total" not in item(projection)
    assert projection.apply(event("e1", "OrderPlaced")) == "late"
    stored = item(projection)
    assert stored["status"] == "OrderCancelled", "a late OrderPlaced must not revive a cancelled order"
    assert stored["total"] == {"value": "48.30", "currency": "EUR"} and len(stored["items"]) == 2
    assert projection.apply(event("e1", "OrderPlaced")) == "duplicate"


def test_the_handler_reports_only_the_bad_records(projection: Projection) -> None:
    records = [
        {"messageId": "m1", "body": json.dumps(event("e1", "OrderPlaced"))},
        {"messageId": "m2", "body": json.dumps({**event("e9", "OrderPlaced"), "detail": {"orderId": "x"}})},
        {"messageId": "m3", "body": json.dumps({**event("e3", "OrderPlaced"), "detail-type": "OrderShipped"})},
        {"messageId": "m4", "body": json.dumps(event("e1", "OrderPlaced"))},
    ]
    answer = handler.handle({"Records": records}, projection=projection)
    assert answer == {"batchItemFailures": [{"itemIdentifier": "m2"}, {"itemIdentifier": "m3"}]}
    assert item(projection)["appliedEventIds"] == {"e1"}


def test_the_read_model_is_fed_through_its_own_queue_and_writes_only_its_table(stack_plan: Plan) -> None:
    table = only(stack_plan, "aws:dynamodb/table:Table", "-order-order-history")
    function = only(stack_plan, "aws:lambda/function:Function", "order-history-read-model-projection")
    variables = function.inputs["environment"]["variables"]
    assert variables["TABLE_NAME"] == table.outputs["name"] and variables["LIFECYCLE"] == "OrderPlaced,OrderCancelled"
    assert function.inputs["tracingConfig"] == {"mode": "Active"} and function.inputs["kmsKeyArn"]
    queue = only(stack_plan, "aws:sqs/queue:Queue", "order-history-read-model-queue")
    assert queue.inputs["kmsMasterKeyId"] and "deadLetterTargetArn" in queue.inputs["redrivePolicy"]
    mapping = only(stack_plan, "aws:lambda/eventSourceMapping:EventSourceMapping", "order-history-read-model-trigger")
    assert mapping.inputs["eventSourceArn"] == queue.outputs["arn"]
    assert mapping.inputs["functionResponseTypes"] == ["ReportBatchItemFailures"]
    policy = json.loads(
        only(stack_plan, "aws:iam/rolePolicy:RolePolicy", "order-history-read-model-policy").inputs["policy"]
    )
    grants = {s["Sid"]: s for s in policy["Statement"]}
    assert grants["ProjectIntoReadModel"] == {
        "Sid": "ProjectIntoReadModel",
        "Effect": "Allow",
        "Action": ["dynamodb:GetItem", "dynamodb:PutItem"],
        "Resource": [table.outputs["arn"]],
    }
    assert grants["ConsumeOwnQueue"]["Resource"] == [queue.outputs["arn"]]
    rule = only(stack_plan, "aws:cloudwatch/eventRule:EventRule", "order-history-read-model-order")
    assert json.loads(rule.inputs["eventPattern"]) == {
        "source": ["microservices.order"],
        "detail-type": ["OrderPlaced", "OrderCancelled"],
    }
