"""The order service's outbox: the planned EventBridge Pipe checked against botocore's `pipes` API
model (and accepted by moto's CreatePipe), and the path of one event executed piece by piece against
moto: the order and its event written in ONE transaction to DynamoDB, the real stream records read
back, the pipe's filter evaluated with moto's EventBridge pattern matcher, the decoder enrichment
EXECUTED by moto's Step Functions interpreter, and the event put on a bus whose rule delivers it to a
consumer queue. (moto does not run pipes themselves; the test applies the pipe's target parameters,
three JSON paths, between those steps.)"""

from __future__ import annotations

import json
import re
import time
from typing import Any

import boto3
import botocore.session
import jsonschema
import pytest
from botocore.config import Config
from botocore.model import Shape, StructureShape
from botocore.validate import ParamValidator
from moto import mock_aws
from moto.events.models import EventPattern

from components.patterns.outbox import (
    TARGET_DETAIL_TYPE,
    TARGET_INPUT_TEMPLATE,
    TARGET_TIME,
    decoder_definition,
    filter_pattern,
)
from contracts import SCHEMA_DIR, event_pattern
from offline.plan import Plan
from tests.conftest import only
from tests.notification_events import detail as order_detail

REGION = "us-east-1"
PIPE = "aws:pipes/pipe:Pipe"


def _to_api(value: Any, shape: Shape, where: str = "CreatePipe") -> Any:
    """Pulumi's camelCase inputs -> the API's member names, matched case-insensitively against the
    botocore shape (an input the model does not know fails the test)."""
    if isinstance(shape, StructureShape):
        members = {name.lower(): name for name in shape.members}
        out = {}
        for key, item in value.items():
            if key in ("__defaults", "tags", "tagsAll", "region", "name", "namePrefix"):
                continue
            member = members.get(key.lower())
            assert member is not None, f"{where}.{key}: not a member of {shape.name} in the botocore pipes model"
            out[member] = _to_api(item, shape.members[member], f"{where}.{member}")
        return out
    if shape.type_name == "list":
        return [_to_api(item, shape.member, f"{where}[]") for item in value]
    return value


@pytest.fixture(scope="module")
def pipes_model() -> Any:
    return botocore.session.get_session().get_service_model("pipes")


def test_the_planned_pipe_is_a_valid_create_pipe_request(stack_plan: Plan, pipes_model: Any) -> None:
    pipe = only(stack_plan, PIPE, "order-outbox-pipe")
    shape = pipes_model.operation_model("CreatePipe").input_shape
    request = {"Name": pipe.inputs["name"], **_to_api(pipe.inputs, shape)}
    report = ParamValidator().validate(request, shape)
    assert not report.has_errors(), report.generate_report()
    source = request["SourceParameters"]
    assert source["DynamoDBStreamParameters"]["StartingPosition"] == "TRIM_HORIZON"
    assert source["DynamoDBStreamParameters"]["DeadLetterConfig"]["Arn"].startswith("arn:aws:sqs:")
    assert json.loads(source["FilterCriteria"]["Filters"][0]["Pattern"]) == filter_pattern(
        ["OrderCancelled", "OrderPlaced"]
    )
    assert request["KmsKeyIdentifier"].startswith("arn:aws:kms:")
    assert request["Source"].endswith("/stream/2026-11-27T00:00:00.000") and ":table/" in request["Source"]
    assert request["Enrichment"].startswith("arn:aws:states:") and request["Target"].startswith("arn:aws:events:")
    assert request["TargetParameters"]["EventBridgeEventBusParameters"]["Source"] == "microservices.order"
    with mock_aws():
        client = boto3.client("pipes", region_name=REGION)  # validates the request against the same model
        client.create_pipe(**request)
        assert client.describe_pipe(Name=request["Name"])["SourceParameters"] == source


def test_the_outbox_table_streams_new_images_and_only_the_pipe_role_publishes_order_events(dev_plan: Plan) -> None:
    table = only(dev_plan, "aws:dynamodb/table:Table", "ms-dev-order-orders-table")
    assert table.inputs["streamEnabled"] is True and table.inputs["streamViewType"] == "NEW_IMAGE"
    pipe = only(dev_plan, PIPE, "order-outbox-pipe")
    assert pipe.inputs["source"] == table.outputs["streamArn"]
    role = only(dev_plan, "aws:iam/role:Role", "ms-dev-order-outbox-role")
    grants = {
        s["Sid"]: s
        for s in json.loads(
            only(dev_plan, "aws:iam/rolePolicy:RolePolicy", "ms-dev-order-outbox-policy").inputs["policy"]
        )["Statement"]
    }
    assert grants["ReadOwnEventStream"]["Resource"] == [table.outputs["streamArn"]]
    bus_policy = json.loads(only(dev_plan, "aws:cloudwatch/eventBusPolicy:EventBusPolicy").inputs["policy"])
    publish = next(s for s in bus_policy["Statement"] if s["Sid"] == "PublishOrder")
    assert publish["Principal"] == {"AWS": role.outputs["arn"]}
    task = only(dev_plan, "aws:iam/rolePolicy:RolePolicy", "ms-dev-order-task")
    assert "events:PutEvents" not in task.inputs["policy"], "the order app publishes through its outbox only"


def _outbox_item(event_id: str, detail_type: str, detail: dict[str, Any]) -> dict[str, Any]:
    """An outbox item exactly as apps/order/app.py writes it (`OrderService._outbox_put`)."""
    return {
        "orderId": {"S": f"outbox#{event_id}"},
        "recordType": {"S": "outbox"},
        "detailType": {"S": detail_type},
        "detail": {"S": json.dumps(detail, separators=(",", ":"))},
        "aggregateId": {"S": str(detail["orderId"])},
        "createdAt": {"S": detail["occurredAt"]},
        "expiresAt": {"N": "1900000000"},
    }


def test_an_order_and_its_event_travel_from_one_transaction_to_a_consumer_queue() -> None:
    placed = order_detail("OrderPlaced", 2, orderId="ord-7", correlation_id="corr-7")
    schema = json.loads((SCHEMA_DIR / "OrderPlaced" / "v2.json").read_text())
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
        dynamodb = boto3.client("dynamodb", region_name=REGION)
        dynamodb.create_table(
            TableName="orders",
            KeySchema=[{"AttributeName": "orderId", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "orderId", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
            StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_IMAGE"},
        )
        # The app's write: the order and its outbox item in one transaction.
        order_item = {"orderId": {"S": "ord-7"}, "recordType": {"S": "order"}, "status": {"S": "PLACED"}}
        dynamodb.transact_write_items(
            TransactItems=[
                {
                    "Put": {
                        "TableName": "orders",
                        "Item": order_item,
                        "ConditionExpression": "attribute_not_exists(orderId)",
                    }
                },
                {
                    "Put": {
                        "TableName": "orders",
                        "Item": _outbox_item("e7", "OrderPlaced", placed),
                        "ConditionExpression": "attribute_not_exists(orderId)",
                    }
                },
            ]
        )
        # Neither a later update of the outbox item nor an outbox item of a type the service does not
        # publish may pass the filter (and the order item itself is no event).
        dynamodb.update_item(
            TableName="orders",
            Key={"orderId": {"S": "outbox#e7"}},
            UpdateExpression="SET publishedAt = :t",
            ExpressionAttributeValues={":t": {"S": "2025-03-14T09:27:00Z"}},
        )
        dynamodb.put_item(TableName="orders", Item=_outbox_item("e8", "OrderShipped", placed))

        # moto routes account-id-based endpoints to DynamoDB itself: ask botocore for the streams endpoint.
        streams = boto3.client(
            "dynamodbstreams", region_name=REGION, config=Config(account_id_endpoint_mode="disabled")
        )
        stream_arn = dynamodb.describe_table(TableName="orders")["Table"]["LatestStreamArn"]
        shard = streams.describe_stream(StreamArn=stream_arn)["StreamDescription"]["Shards"][0]["ShardId"]
        iterator = streams.get_shard_iterator(StreamArn=stream_arn, ShardId=shard, ShardIteratorType="TRIM_HORIZON")
        records = streams.get_records(ShardIterator=iterator["ShardIterator"])["Records"]
        assert [r["eventName"] for r in records] == ["INSERT", "INSERT", "MODIFY", "INSERT"]

        pattern = EventPattern.load(json.dumps(filter_pattern(["OrderPlaced", "OrderCancelled"])))
        wire = [json.loads(json.dumps(r, default=str)) for r in records]
        passed = [r for r in wire if pattern.matches_event(r)]
        assert len(passed) == 1 and passed[0]["dynamodb"]["NewImage"]["orderId"]["S"] == "outbox#e7"

        # The enrichment: the decoder workflow, run by moto's interpreter on the batch the pipe passes.
        sfn = boto3.client("stepfunctions", region_name=REGION)
        machine = sfn.create_state_machine(
            name="decoder", definition=json.dumps(decoder_definition()), roleArn="arn:aws:iam::123456789012:role/d"
        )["stateMachineArn"]
        execution = sfn.start_execution(stateMachineArn=machine, input=json.dumps(passed))["executionArn"]
        for _ in range(200):
            status = sfn.describe_execution(executionArn=execution)
            if status["status"] != "RUNNING":
                break
            time.sleep(0.02)
        assert status["status"] == "SUCCEEDED", status
        (decoded,) = json.loads(status["output"])
        assert decoded["aggregateId"] == "ord-7" and decoded["detail"] == placed
        assert decoded["occurredAt"] == placed["occurredAt"]
        jsonschema.validate(decoded["detail"], schema)

        # The pipe's target parameters (JSON paths into the decoded record) -> PutEvents on the bus.
        assert (TARGET_DETAIL_TYPE, TARGET_TIME, TARGET_INPUT_TEMPLATE) == (
            "$.detailType",
            "$.occurredAt",
            "<$.detail>",
        )
        events = boto3.client("events", region_name=REGION)
        sqs = boto3.client("sqs", region_name=REGION)
        events.create_event_bus(Name="bus")
        queue = sqs.create_queue(QueueName="inventory")["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        events.put_rule(
            Name="inventory-order",
            EventBusName="bus",
            EventPattern=json.dumps(event_pattern(["microservices.order"], ["OrderPlaced", "OrderCancelled"])),
        )
        events.put_targets(Rule="inventory-order", EventBusName="bus", Targets=[{"Id": "q", "Arn": queue_arn}])
        put = events.put_events(
            Entries=[
                {
                    "EventBusName": "bus",
                    "Source": "microservices.order",
                    "DetailType": decoded["detailType"],
                    "Time": decoded["occurredAt"],
                    "Detail": json.dumps(decoded["detail"]),
                }
            ]
        )
        assert put["FailedEntryCount"] == 0
        (message,) = sqs.receive_message(QueueUrl=queue)["Messages"]
        delivered = json.loads(message["Body"])
        assert delivered["detail-type"] == "OrderPlaced" and delivered["detail"] == placed


def test_the_offline_mocks_answer_pipes_and_state_machines_with_real_arn_formats(
    dev_plan: Plan, pipes_model: Any
) -> None:
    """The ARNs the mocks return for the new types follow AWS's formats (botocore's PipeArn pattern;
    Step Functions' `arn:aws:states:<region>:<account>:stateMachine:<name>`)."""
    pattern = pipes_model.shape_for("PipeArn").metadata["pattern"]
    pipe = only(dev_plan, PIPE, "order-outbox-pipe")
    assert re.fullmatch(pattern, pipe.outputs["arn"]), pipe.outputs["arn"]
    assert pipe.outputs["arn"] == f"arn:aws:pipes:us-east-1:123456789012:pipe/{pipe.inputs['name']}"
    for machine in dev_plan.of_type("aws:sfn/stateMachine:StateMachine"):
        assert machine.outputs["arn"] == f"arn:aws:states:us-east-1:123456789012:stateMachine:{machine.inputs['name']}"
        assert re.fullmatch(pattern, machine.outputs["arn"])  # the generic ARN grammar of the same model
