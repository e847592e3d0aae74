"""Notification service Lambda: event contracts, the SQS and direct EventBridge paths, SNS publishing.

AWS is moto (`mock_aws`): a real SNS topic with SQS subscribers, so the assertions are on the
messages SNS actually delivered, and moto's EventBridge rule matcher for the routing patterns.
"""

from __future__ import annotations

import copy
import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError, EndpointConnectionError
from jsonschema import Draft202012Validator, FormatChecker
from moto import mock_aws

import contracts
from services.notification import handler
from tests.notification_events import detail, envelope, sqs_event, sqs_record

REGION = "us-east-1"
PACKAGE_DIR = Path(handler.__file__).resolve().parent
"""The notification function's own code folder (the contracts it validates against live in `contracts/`)."""
PLATFORM_EVENTS = {
    ("OrderPlaced", 1),
    ("OrderPlaced", 2),
    ("OrderCancelled", 1),
    ("PaymentCaptured", 1),
    ("UserRegistered", 1),
    ("InventoryLow", 1),
}


# --------------------------------------------------------------------------------------------------
# Fixtures and helpers


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Fake credentials, one region, no leftovers from the developer's shell or a previous test."""
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_REGION", "_X_AMZN_TRACE_ID", "LOG_LEVEL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "notification")
    handler.sns_client.cache_clear()
    yield
    handler.sns_client.cache_clear()


@dataclass
class Topic:
    """The notification topic with two SQS subscribers: raw delivery (body = our message, attributes
    as SQS attributes) and a filtered, non-raw one that only wants PaymentCaptured (SNS envelope)."""

    arn: str
    raw_queue: str
    payments_queue: str

    def drain(self, queue_url: str) -> list[dict[str, Any]]:
        sqs = boto3.client("sqs", region_name=REGION)
        messages: list[dict[str, Any]] = []
        while batch := sqs.receive_message(
            QueueUrl=queue_url, MaxNumberOfMessages=10, MessageAttributeNames=["All"], WaitTimeSeconds=0
        ).get("Messages", []):
            messages.extend(batch)
            for message in batch:
                sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
        return messages

    def delivered(self) -> dict[str, dict[str, Any]]:
        """Raw deliveries by correlationId: {"body": <parsed JSON>, "attributes": {name: value}}."""
        out = {}
        for message in self.drain(self.raw_queue):
            body = json.loads(message["Body"])
            attributes = {k: v["StringValue"] for k, v in message.get("MessageAttributes", {}).items()}
            out[attributes["correlationId"]] = {"body": body, "attributes": attributes}
        return out


@pytest.fixture
def topic(aws_env: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[Topic]:
    with mock_aws():
        sns = boto3.client("sns", region_name=REGION)
        sqs = boto3.client("sqs", region_name=REGION)
        arn = sns.create_topic(Name="dev-notifications")["TopicArn"]
        urls = []
        for name, attributes in (
            ("raw-subscriber", {"RawMessageDelivery": "true"}),
            ("payments-subscriber", {"FilterPolicy": json.dumps({"eventType": ["PaymentCaptured"]})}),
        ):
            url = sqs.create_queue(QueueName=name)["QueueUrl"]
            queue_arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
            sns.subscribe(TopicArn=arn, Protocol="sqs", Endpoint=queue_arn, Attributes=attributes)
            urls.append(url)
        monkeypatch.setenv(handler.TOPIC_ARN_ENV, arn)
        yield Topic(arn=arn, raw_queue=urls[0], payments_queue=urls[1])


def log_lines(capsys: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    """Every stdout line must be one JSON object (that is the logging contract)."""
    out = capsys.readouterr().out
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def failed_ids(response: dict[str, Any]) -> list[str]:
    assert set(response) == {"batchItemFailures"}, response
    return [failure["itemIdentifier"] for failure in response["batchItemFailures"]]


# --------------------------------------------------------------------------------------------------
# Contracts: the schema files


def test_the_platform_events_have_contracts() -> None:
    assert set(contracts.KNOWN_CONTRACTS) == PLATFORM_EVENTS
    assert list(contracts.KNOWN_CONTRACTS) == sorted(contracts.KNOWN_CONTRACTS)
    assert {t for t, _ in contracts.KNOWN_CONTRACTS} == set(contracts.PUBLISHERS)


def test_publishers_match_the_service_catalogue() -> None:
    """contracts.PUBLISHERS is duplicated here because the Lambda package cannot import the specs."""
    from services import load_catalog

    # Every event with a contract is published by the service the Lambda expects; services may publish
    # other events too (a new service's events need no notification contract).
    published = {t: spec.event_source for spec in load_catalog() for t in spec.publishes}
    assert {t: published.get(t) for t in contracts.PUBLISHERS} == dict(contracts.PUBLISHERS)


@pytest.mark.parametrize(("detail_type", "version"), sorted(PLATFORM_EVENTS))
def test_schema_is_a_valid_draft_2020_12_schema(detail_type: str, version: int) -> None:
    path = contracts.SCHEMA_DIR / detail_type / f"v{version}.json"
    schema = json.loads(path.read_text())
    Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"].endswith(f"/{detail_type}/v{version}.json"), schema["$id"]
    assert schema["properties"]["version"] == {"const": version}
    assert {"version", "correlationId", "occurredAt"} <= set(schema["required"])
    assert schema["properties"]["occurredAt"] == {"type": "string", "format": "date-time"}
    # ...and the built-in validator accepts to load it (it rejects keywords it does not implement).
    assert contracts.load_schema(detail_type, version) == schema


def test_built_in_validator_refuses_keywords_it_does_not_implement(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "Weird").mkdir()
    (tmp_path / "Weird" / "v1.json").write_text(
        json.dumps({"$schema": contracts.SCHEMA_DIALECT, "type": "object", "oneOf": [{"required": ["a"]}]})
    )
    monkeypatch.setattr(contracts, "SCHEMA_DIR", tmp_path)
    contracts.load_schema.cache_clear()
    try:
        with pytest.raises(contracts.SchemaDefinitionError, match="oneOf not supported"):
            contracts.load_schema("Weird", 1)
    finally:
        contracts.load_schema.cache_clear()


# --------------------------------------------------------------------------------------------------
# Contracts: the built-in validator agrees with jsonschema


def _reference_date_time(value: object) -> bool:
    """RFC 3339 date-time, written independently of contracts.is_date_time (jsonschema needs the
    optional rfc3339-validator package to check this format, which the project does not install)."""
    if not isinstance(value, str):
        return True
    if not re.fullmatch(r"\d{4}-\d\d-\d\d[Tt]\d\d:\d\d:\d\d(\.\d+)?([Zz]|[+-]\d\d:\d\d)", value):
        return False
    try:
        datetime.fromisoformat(value.upper().replace("Z", "+00:00"))
    except ValueError:
        return False
    return True


_FORMATS = FormatChecker(formats=())
_FORMATS.checks("date-time")(_reference_date_time)

_REPLACEMENTS: list[Any] = [
    None,
    True,
    0,
    2,
    3.0,
    1.5,
    -1,
    "",
    "x",
    "SKU-OK",
    "EUR",
    "eur",
    "12.345",
    "1.2345",
    "card",
    "a@b.co",
    "2025-02-30T10:00:00Z",
    "2025-01-01T10:00:00",
    "2025-01-01T10:00:00.5-03:30",
    [],
    {},
]


def _paths(node: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield path
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _paths(value, (*path, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _paths(value, (*path, index))


def _edited(document: Any, path: tuple[Any, ...], edit: Any) -> Any:
    """A deep copy of `document` with `edit(parent, key)` applied at `path` (path must not be empty)."""
    copied = copy.deepcopy(document)
    parent = copied
    for step in path[:-1]:
        parent = parent[step]
    edit(parent, path[-1])
    return copied


def _mutations(document: dict[str, Any]) -> Iterator[Any]:
    """Each node replaced by each replacement, each object member deleted, each object and array grown."""
    yield from _REPLACEMENTS  # the whole detail replaced
    for path in _paths(document):
        if path:
            for replacement in _REPLACEMENTS:
                yield _edited(document, path, lambda parent, key, r=replacement: parent.__setitem__(key, r))
            if isinstance(path[-1], str):
                yield _edited(document, path, lambda parent, key: parent.__delitem__(key))
        node: Any = document
        for step in path:
            node = node[step]
        if isinstance(node, dict):
            yield _edited(document, (*path, "unexpected"), lambda parent, key: parent.__setitem__(key, "x"))
        elif isinstance(node, list):
            yield _edited(document, (*path, 0), lambda parent, key: parent.extend(copy.deepcopy(parent) or [1]))


@pytest.mark.parametrize(("detail_type", "version"), sorted(PLATFORM_EVENTS))
def test_built_in_validator_agrees_with_jsonschema(detail_type: str, version: int) -> None:
    schema = json.loads((contracts.SCHEMA_DIR / detail_type / f"v{version}.json").read_text())
    reference = Draft202012Validator(schema, format_checker=_FORMATS)
    samples = [detail(detail_type, version), *_mutations(detail(detail_type, version))]
    verdicts = {"valid": 0, "invalid": 0}
    for sample in samples:
        try:
            contracts.validate_event(detail_type, version, sample)
            ours = True
        except contracts.ContractError:
            ours = False
        assert ours == reference.is_valid(sample), (
            f"{detail_type} v{version}: built-in says {'valid' if ours else 'invalid'}, jsonschema disagrees "
            f"for {json.dumps(sample)}"
        )
        verdicts["valid" if ours else "invalid"] += 1
    # The corpus must exercise both verdicts, or the comparison proves nothing.
    assert verdicts["valid"] >= 5 and verdicts["invalid"] >= 50, verdicts


@pytest.mark.parametrize(
    ("value", "valid"),
    [
        ("2025-03-14T09:26:53Z", True),
        ("2025-03-14t09:26:53z", True),
        ("2025-03-14T09:26:53.589123456+05:30", True),
        ("2016-12-31T23:59:60Z", True),
        ("2025-03-14T09:26:53", False),
        ("2025-03-14 09:26:53Z", False),
        ("2025-03-14", False),
        ("2025-02-29T10:00:00Z", False),
        ("2025-03-14T24:00:00Z", False),
        ("2025-03-14T09:26:53+0100", False),
        ("14/03/2025 09:26", False),
        ("\uff12\uff10\uff12\uff15-03-14T09:26:53Z", False),  # fullwidth digits: \d matches them unless re.ASCII
    ],
)
def test_date_time_format(value: str, valid: bool) -> None:
    assert contracts.is_date_time(value) is valid


# --------------------------------------------------------------------------------------------------
# Contracts: validate_event


def test_validate_event_names_every_violation_with_its_path() -> None:
    bad = detail("OrderPlaced", 1)
    bad["total"]["currency"] = "eur"
    bad["items"][1]["quantity"] = 0
    del bad["userId"]
    with pytest.raises(contracts.ContractError) as caught:
        contracts.validate_event("OrderPlaced", 1, bad)
    message = str(caught.value)
    assert message.startswith("OrderPlaced v1 contract violated: ")
    assert "detail.total.currency: \"eur\" does not match '^[A-Z]{3}$'" in message
    assert "detail.items[1].quantity: 0 is less than the minimum 1" in message
    assert "detail.userId: required property is missing" in message
    assert len(caught.value.errors) == 3
    assert (caught.value.detail_type, caught.value.version) == ("OrderPlaced", 1)


def test_validate_event_unknown_type_and_version() -> None:
    with pytest.raises(
        contracts.ContractError, match=r"unknown event type 'OrderShipped'; known event types: .*OrderPlaced"
    ):
        contracts.validate_event("OrderShipped", 1, {})
    with pytest.raises(
        contracts.ContractError, match=r"no contract for OrderPlaced v9; known versions of OrderPlaced: v1, v2$"
    ):
        contracts.validate_event("OrderPlaced", 9, detail("OrderPlaced", 9))
    with pytest.raises(contracts.ContractError, match="event version 'two' is not a positive integer"):
        contracts.validate_event("OrderPlaced", "two", detail("OrderPlaced"))


@pytest.mark.parametrize("version", [2, "2", "v2", "V2"])
def test_validate_event_accepts_version_spellings(version: str | int) -> None:
    contracts.validate_event("OrderPlaced", version, detail("OrderPlaced", 2))


def test_the_version_argument_must_match_the_detail() -> None:
    with pytest.raises(contracts.ContractError, match=r"detail\.version: must be 1, got 2"):
        contracts.validate_event("OrderPlaced", 1, detail("OrderPlaced", 1) | {"version": 2})


# --------------------------------------------------------------------------------------------------
# Contracts: OrderPlaced v1 -> v2 is backward compatible


def test_order_placed_v1_event_validates_under_v1() -> None:
    v1 = detail("OrderPlaced", 1)
    assert "estimatedDeliveryAt" not in v1
    contracts.validate_event("OrderPlaced", 1, v1)


def test_order_placed_v2_with_and_without_the_new_field() -> None:
    with_field = detail("OrderPlaced", 2)
    assert with_field["estimatedDeliveryAt"] == "2025-03-17T18:00:00+01:00"
    contracts.validate_event("OrderPlaced", 2, with_field)
    without = {k: v for k, v in with_field.items() if k != "estimatedDeliveryAt"}
    contracts.validate_event("OrderPlaced", 2, without)
    with pytest.raises(contracts.ContractError, match=r"detail\.estimatedDeliveryAt: .* is not an RFC 3339 date-time"):
        contracts.validate_event("OrderPlaced", 2, with_field | {"estimatedDeliveryAt": "next tuesday"})


def test_every_v1_order_placed_payload_is_a_valid_v2_payload() -> None:
    """Backward compatibility: v2 only adds an optional field, so a v2 reader accepts v1 data."""
    v1_payloads = [detail("OrderPlaced", 1)] + [
        m for m in _mutations(detail("OrderPlaced", 1)) if isinstance(m, dict) and _valid("OrderPlaced", 1, m)
    ]
    assert len(v1_payloads) > 5
    for payload in v1_payloads:
        contracts.validate_event("OrderPlaced", 2, payload | {"version": 2})


def test_the_v2_field_is_not_part_of_v1() -> None:
    with pytest.raises(contracts.ContractError, match=r"detail\.estimatedDeliveryAt: unexpected property"):
        contracts.validate_event("OrderPlaced", 1, detail("OrderPlaced", 1, estimatedDeliveryAt="2025-03-17T18:00:00Z"))


def _valid(detail_type: str, version: int, document: Any) -> bool:
    try:
        contracts.validate_event(detail_type, version, document)
    except contracts.ContractError:
        return False
    return True


# --------------------------------------------------------------------------------------------------
# Event patterns (moto's real EventBridge matcher)


def test_event_pattern_shape() -> None:
    assert contracts.event_pattern(["microservices.order"], ["OrderPlaced", "OrderCancelled", "OrderPlaced"]) == {
        "source": ["microservices.order"],
        "detail-type": ["OrderPlaced", "OrderCancelled"],
    }
    with pytest.raises(ValueError, match="detail_types must list at least one value"):
        contracts.event_pattern(["microservices.order"], [])
    with pytest.raises(ValueError, match="sources must be non-empty strings"):
        contracts.event_pattern([" "], ["OrderPlaced"])


def test_event_pattern_routes_exactly_the_matching_events_end_to_end(topic: Topic) -> None:
    events = boto3.client("events", region_name=REGION)
    sqs = boto3.client("sqs", region_name=REGION)
    bus = "dev-domain-events"
    events.create_event_bus(Name=bus)
    queue_url = sqs.create_queue(QueueName="dev-notification-events")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    pattern = contracts.event_pattern(["microservices.order"], ["OrderPlaced", "OrderCancelled"])
    assert pattern == {"source": ["microservices.order"], "detail-type": ["OrderPlaced", "OrderCancelled"]}
    events.put_rule(Name="order-to-notification", EventBusName=bus, EventPattern=json.dumps(pattern))
    events.put_targets(Rule="order-to-notification", EventBusName=bus, Targets=[{"Id": "queue", "Arn": queue_arn}])

    def put(source: str, detail_type: str, correlation_id: str, event_bus: str = bus) -> None:
        known = detail_type in contracts.PUBLISHERS
        body = detail(detail_type, correlation_id=correlation_id) if known else {"correlationId": correlation_id}
        entry = {"Source": source, "DetailType": detail_type, "Detail": json.dumps(body), "EventBusName": event_bus}
        assert events.put_events(Entries=[entry])["FailedEntryCount"] == 0

    put("microservices.order", "OrderPlaced", "match-placed")
    put("microservices.order", "OrderCancelled", "match-cancelled")
    put("microservices.payment", "PaymentCaptured", "other-source-and-type")
    put("microservices.user", "OrderPlaced", "spoofed-source")
    put("microservices.order", "OrderShipped", "unrouted-type")
    put("microservices.orders", "OrderPlaced", "source-prefix-is-not-a-match")
    put("microservices.order", "OrderPlaced", "default-bus", event_bus="default")

    delivered = Topic.drain(topic, queue_url)  # the routing queue, drained the same way
    bodies = {json.loads(m["Body"])["detail"]["correlationId"]: json.loads(m["Body"]) for m in delivered}
    assert set(bodies) == {"match-placed", "match-cancelled"}
    assert bodies["match-placed"]["detail-type"] == "OrderPlaced"
    assert bodies["match-cancelled"]["source"] == "microservices.order"

    # What EventBridge delivered to SQS is exactly what the handler consumes.
    records = [sqs_record(m["Body"], message_id=m["MessageId"]) for m in delivered]
    assert failed_ids(handler.handle(sqs_event(*records), None)) == []
    published = topic.delivered()
    assert set(published) == {"match-placed", "match-cancelled"}
    assert published["match-placed"]["body"]["eventId"] == bodies["match-placed"]["id"]


# --------------------------------------------------------------------------------------------------
# Handler: SQS batches


def test_sqs_batch_all_published_with_attributes_and_correlation_id(
    topic: Topic, capsys: pytest.CaptureFixture[str]
) -> None:
    placed_v1 = envelope("OrderPlaced", detail("OrderPlaced", 1, correlation_id="corr-placed-v1"))
    placed_v2 = envelope("OrderPlaced", detail("OrderPlaced", 2, correlation_id="corr-placed-v2"))
    payment = envelope("PaymentCaptured", detail("PaymentCaptured", correlation_id="corr-payment"))
    response = handler.handle(sqs_event(sqs_record(placed_v1), sqs_record(placed_v2), sqs_record(payment)), None)

    assert failed_ids(response) == []
    delivered = topic.delivered()
    assert set(delivered) == {"corr-placed-v1", "corr-placed-v2", "corr-payment"}
    first = delivered["corr-placed-v1"]
    assert first["attributes"] == {
        "eventType": "OrderPlaced",
        "eventVersion": "1",
        "correlationId": "corr-placed-v1",
        "source": "microservices.order",
    }
    assert first["body"] == {
        "eventType": "OrderPlaced",
        "eventVersion": 1,
        "source": "microservices.order",
        "eventId": placed_v1["id"],
        "correlationId": "corr-placed-v1",
        "occurredAt": "2025-03-14T09:26:53.589Z",
        "detail": placed_v1["detail"],
    }
    assert delivered["corr-placed-v2"]["attributes"]["eventVersion"] == "2"
    assert delivered["corr-placed-v2"]["body"]["detail"]["estimatedDeliveryAt"] == "2025-03-17T18:00:00+01:00"

    # The attributes are usable by SNS filter policies: the filtered subscriber got only the payment.
    filtered = topic.drain(topic.payments_queue)
    assert len(filtered) == 1
    envelope_in_sqs = json.loads(filtered[0]["Body"])
    assert envelope_in_sqs["Subject"] == "PaymentCaptured v1"
    assert envelope_in_sqs["MessageAttributes"]["correlationId"] == {"Type": "String", "Value": "corr-payment"}
    assert envelope_in_sqs["MessageAttributes"]["eventVersion"] == {"Type": "Number", "Value": "1"}
    assert json.loads(envelope_in_sqs["Message"])["eventId"] == payment["id"]

    published = [line for line in log_lines(capsys) if line["message"] == "notification published"]
    assert {line["correlationId"] for line in published} == {"corr-placed-v1", "corr-placed-v2", "corr-payment"}
    assert all(line["level"] == "INFO" and line["service"] == "notification" for line in published)


def test_only_the_malformed_and_the_invalid_records_fail(topic: Topic, capsys: pytest.CaptureFixture[str]) -> None:
    good_1 = sqs_record(envelope("UserRegistered", detail("UserRegistered", correlation_id="corr-good-1")))
    not_json = sqs_record('{"detail-type": "OrderPlaced", "detail": {', message_id="msg-not-json")
    invalid_detail = detail("OrderCancelled", correlation_id="corr-invalid", reason="changed_my_mind")
    invalid = sqs_record(envelope("OrderCancelled", invalid_detail), message_id="msg-invalid")
    good_2 = sqs_record(envelope("InventoryLow", detail("InventoryLow", correlation_id="corr-good-2")))

    response = handler.handle(sqs_event(good_1, not_json, invalid, good_2), None)

    assert failed_ids(response) == ["msg-not-json", "msg-invalid"]
    assert set(topic.delivered()) == {"corr-good-1", "corr-good-2"}
    errors = {line.get("messageId"): line for line in log_lines(capsys) if line["level"] == "ERROR"}
    assert set(errors) == {"msg-not-json", "msg-invalid"}
    assert errors["msg-not-json"]["message"].startswith("record rejected: body is not JSON")
    assert errors["msg-invalid"]["correlationId"] == "corr-invalid"
    assert errors["msg-invalid"]["eventType"] == "OrderCancelled"
    assert 'detail.reason: "changed_my_mind" is not one of' in errors["msg-invalid"]["message"]


def test_unknown_event_version_is_reported_failed_and_logged(topic: Topic, capsys: pytest.CaptureFixture[str]) -> None:
    future = sqs_record(
        envelope("OrderPlaced", detail("OrderPlaced", 9, correlation_id="corr-v9")), message_id="msg-v9"
    )
    current = sqs_record(envelope("OrderPlaced", detail("OrderPlaced", 2, correlation_id="corr-v2")))

    assert failed_ids(handler.handle(sqs_event(future, current), None)) == ["msg-v9"]
    assert set(topic.delivered()) == {"corr-v2"}
    [line] = [line for line in log_lines(capsys) if line.get("messageId") == "msg-v9"]
    assert line["level"] == "ERROR"
    assert "no contract for OrderPlaced v9; known versions of OrderPlaced: v1, v2" in line["message"]
    assert (line["eventType"], line["eventVersion"], line["correlationId"]) == ("OrderPlaced", 9, "corr-v9")


def test_wrong_source_and_missing_version_are_contract_failures(
    topic: Topic, capsys: pytest.CaptureFixture[str]
) -> None:
    spoofed = sqs_record(envelope("OrderPlaced", source="microservices.user"), message_id="msg-spoofed")
    no_version = detail("InventoryLow")
    del no_version["version"]
    unversioned = sqs_record(envelope("InventoryLow", no_version), message_id="msg-unversioned")

    assert failed_ids(handler.handle(sqs_event(spoofed, unversioned), None)) == ["msg-spoofed", "msg-unversioned"]
    assert topic.delivered() == {}
    messages = {line.get("messageId"): line["message"] for line in log_lines(capsys)}
    assert (
        "OrderPlaced must be published by 'microservices.order', got source 'microservices.user'"
        in messages["msg-spoofed"]
    )
    assert "detail.version is missing" in messages["msg-unversioned"]


def test_correlation_id_falls_back_to_the_event_id_in_logs(topic: Topic, capsys: pytest.CaptureFixture[str]) -> None:
    no_correlation = detail("PaymentCaptured")
    del no_correlation["correlationId"]
    record = sqs_record(envelope("PaymentCaptured", no_correlation, event_id="evt-123"), message_id="msg-nocorr")

    assert failed_ids(handler.handle(sqs_event(record), None)) == ["msg-nocorr"]
    [line] = [line for line in log_lines(capsys) if line.get("messageId") == "msg-nocorr"]
    assert line["correlationId"] == "evt-123"
    assert "detail.correlationId: required property is missing" in line["message"]


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (ClientError({"Error": {"Code": "Throttling", "Message": "Rate exceeded"}}, "Publish"), "Throttling"),
        (EndpointConnectionError(endpoint_url="https://sns.us-east-1.amazonaws.com/"), "EndpointConnectionError"),
        (RuntimeError("unexpected response"), "RuntimeError"),
    ],
)
def test_a_failed_publish_fails_only_its_record(
    topic: Topic, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], error: Exception, code: str
) -> None:
    client = handler.sns_client(REGION)
    real_publish = client.publish

    def flaky_publish(**kwargs: Any) -> Any:
        if kwargs["MessageAttributes"]["correlationId"]["StringValue"] == "corr-failing":
            raise error
        return real_publish(**kwargs)

    monkeypatch.setattr(client, "publish", flaky_publish)
    ok = sqs_record(envelope("OrderPlaced", detail("OrderPlaced", correlation_id="corr-ok")))
    failing = sqs_record(
        envelope("OrderPlaced", detail("OrderPlaced", correlation_id="corr-failing")), message_id="msg-failing"
    )

    assert failed_ids(handler.handle(sqs_event(failing, ok), None)) == ["msg-failing"]
    assert set(topic.delivered()) == {"corr-ok"}
    [line] = [line for line in log_lines(capsys) if line.get("messageId") == "msg-failing"]
    assert (line["level"], line["errorCode"], line["correlationId"]) == ("ERROR", code, "corr-failing")
    assert line["message"].startswith("publish to SNS failed: ")


def test_a_broken_schema_file_fails_only_the_events_it_governs(
    topic: Topic, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    schemas = tmp_path / "schemas"
    shutil.copytree(contracts.SCHEMA_DIR, schemas)
    (schemas / "OrderPlaced" / "v1.json").write_text('{"$schema": "https://json-schema.org/draft/2020-12/schema", ')
    monkeypatch.setattr(contracts, "SCHEMA_DIR", schemas)
    contracts.load_schema.cache_clear()
    try:
        placed = sqs_record(envelope("OrderPlaced"), message_id="msg-placed")
        payment = sqs_record(envelope("PaymentCaptured", detail("PaymentCaptured", correlation_id="corr-payment")))
        assert failed_ids(handler.handle(sqs_event(placed, payment), None)) == ["msg-placed"]
    finally:
        contracts.load_schema.cache_clear()
    assert set(topic.delivered()) == {"corr-payment"}
    [line] = [line for line in log_lines(capsys) if line.get("messageId") == "msg-placed"]
    assert (line["errorCode"], line["eventType"]) == ("SchemaDefinitionError", "OrderPlaced")
    assert "cannot read contract" in line["message"]


def test_a_topic_that_does_not_exist_fails_every_record_without_crashing(
    topic: Topic, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv(handler.TOPIC_ARN_ENV, f"arn:aws:sns:{REGION}:123456789012:deleted-topic")
    records = [sqs_record(envelope("UserRegistered"), message_id=f"msg-{i}") for i in range(2)]

    assert failed_ids(handler.handle(sqs_event(*records), None)) == ["msg-0", "msg-1"]
    assert topic.delivered() == {}
    codes = [line["errorCode"] for line in log_lines(capsys) if line["level"] == "ERROR"]
    assert codes == ["NotFound", "NotFound"]


def test_fifo_batch_stops_at_the_first_failure(topic: Topic) -> None:
    fifo_arn = f"arn:aws:sqs:{REGION}:123456789012:dev-notification-events.fifo"
    first = sqs_record(envelope("OrderPlaced", detail("OrderPlaced", correlation_id="corr-1")), queue_arn=fifo_arn)
    broken = sqs_record("not json", message_id="msg-broken", queue_arn=fifo_arn)
    later = sqs_record(
        envelope("OrderCancelled", detail("OrderCancelled", correlation_id="corr-3")),
        message_id="msg-later",
        queue_arn=fifo_arn,
    )

    assert failed_ids(handler.handle(sqs_event(first, broken, later), None)) == ["msg-broken", "msg-later"]
    assert set(topic.delivered()) == {"corr-1"}


def test_logs_carry_the_xray_trace_id_and_request_id(
    topic: Topic, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("_X_AMZN_TRACE_ID", "Root=1-67d3f5a1-4c2b8e0f9d1a2b3c4d5e6f70;Parent=53995c3f42cd8ad8;Sampled=1")
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "notification-dev")
    context = type("Context", (), {"aws_request_id": "req-42"})()

    handler.handle(sqs_event(sqs_record(envelope("InventoryLow"))), context)

    lines = log_lines(capsys)
    assert lines, "the handler logged nothing"
    for line in lines:
        assert line["xrayTraceId"] == "1-67d3f5a1-4c2b8e0f9d1a2b3c4d5e6f70"
        assert line["requestId"] == "req-42"
        assert line["service"] == "notification-dev"
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", line["timestamp"])


def test_log_level_filters_info_lines(
    topic: Topic, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("LOG_LEVEL", "error")
    handler.handle(sqs_event(sqs_record(envelope("InventoryLow")), sqs_record("{", message_id="msg-bad")), None)
    lines = log_lines(capsys)
    assert [line["level"] for line in lines] == ["ERROR"]
    assert lines[0]["messageId"] == "msg-bad"


def test_an_unknown_log_level_warns_and_falls_back_to_info(
    topic: Topic, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("LOG_LEVEL", "verbose")
    handler.handle(sqs_event(sqs_record(envelope("InventoryLow"))), None)
    lines = log_lines(capsys)
    assert lines[0]["level"] == "WARN"  # Lambda's level vocabulary, so its JSON log filter understands it
    assert lines[0]["message"] == "LOG_LEVEL = 'VERBOSE' is not a log level; using INFO"
    assert {line["level"] for line in lines[1:]} == {"INFO"}
    assert any(line["message"] == "notification published" for line in lines[1:])


# --------------------------------------------------------------------------------------------------
# Handler: direct EventBridge invocation


def test_direct_invocation_publishes(topic: Topic) -> None:
    event = envelope("UserRegistered", detail("UserRegistered", correlation_id="corr-direct"), event_id="evt-direct")
    result = handler.handle(event, None)

    assert result["status"] == "published"
    assert result["eventId"] == "evt-direct"
    delivered = topic.delivered()
    assert set(delivered) == {"corr-direct"}
    assert delivered["corr-direct"]["attributes"]["source"] == "microservices.user"
    assert delivered["corr-direct"]["body"]["detail"]["email"] == "ada@example.com"


def test_direct_invocation_raises_on_contract_failure(topic: Topic, capsys: pytest.CaptureFixture[str]) -> None:
    """Raising is what sends an async invocation to Lambda's retries and then its on-failure DLQ."""
    event = envelope("PaymentCaptured", detail("PaymentCaptured", correlation_id="corr-bad", method="cash"))
    with pytest.raises(contracts.ContractError, match=r'detail\.method: "cash" is not one of'):
        handler.handle(event, None)
    assert topic.delivered() == {}
    [line] = log_lines(capsys)
    assert (line["level"], line["correlationId"], line["eventType"]) == ("ERROR", "corr-bad", "PaymentCaptured")


def test_direct_invocation_raises_when_publish_fails(topic: Topic, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(handler.TOPIC_ARN_ENV, f"arn:aws:sns:{REGION}:123456789012:deleted-topic")
    with pytest.raises(ClientError, match="NotFound"):
        handler.handle(envelope("InventoryLow"), None)


# --------------------------------------------------------------------------------------------------
# Handler: configuration and unsupported input


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (None, "NOTIFICATION_TOPIC_ARN is not set"),
        ("  ", "NOTIFICATION_TOPIC_ARN is not set"),
        ("dev-notifications", "NOTIFICATION_TOPIC_ARN = 'dev-notifications' is not an SNS topic ARN"),
        ("arn:aws:sqs:us-east-1:123456789012:q", "is not an SNS topic ARN"),
    ],
)
def test_topic_arn_is_required(aws_env: None, monkeypatch: pytest.MonkeyPatch, value: str | None, message: str) -> None:
    if value is None:
        monkeypatch.delenv(handler.TOPIC_ARN_ENV, raising=False)
    else:
        monkeypatch.setenv(handler.TOPIC_ARN_ENV, value)
    with pytest.raises(handler.ConfigurationError, match=re.escape(message)):
        handler.handle(sqs_event(sqs_record(envelope("InventoryLow"))), None)


def test_client_region_comes_from_the_topic_arn(aws_env: None) -> None:
    config = handler.load_config({handler.TOPIC_ARN_ENV: "arn:aws:sns:eu-west-1:123456789012:prod-notifications"})
    assert (config.region, config.service_name, config.log_level) == ("eu-west-1", "notification", "INFO")
    assert handler.sns_client(config.region).meta.region_name == "eu-west-1"


@pytest.mark.parametrize("event", [{}, {"Records": [{"eventSource": "aws:sns", "Sns": {}}]}, {"Records": []}, []])
def test_unsupported_invocations_raise(topic: Topic, event: Any) -> None:
    with pytest.raises(handler.UnsupportedEventError, match="expected an SQS batch or an EventBridge event"):
        handler.handle(event, None)


# --------------------------------------------------------------------------------------------------
# The directory works as a Lambda package on its own


def test_the_directory_runs_as_a_lambda_package(tmp_path: Path) -> None:
    """Copy the directory the way the component packages it and import `handler` as Lambda does,
    with jsonschema, pydantic and the rest of the repository made unimportable."""
    task = tmp_path / "task"
    # Mirrors what components/notification.py leaves out of the archive (infra-only spec, package init).
    shutil.copytree(
        PACKAGE_DIR,
        task,
        ignore=shutil.ignore_patterns("__pycache__", "tests", "service.py", "__init__.py", "conftest.py"),
    )
    # ... and adds the shared contracts package beside the handler.
    shutil.copytree(Path(contracts.__file__).parent, task / "contracts", ignore=shutil.ignore_patterns("__pycache__"))
    assert (task / "handler.py").is_file() and (task / "contracts" / "schemas" / "OrderPlaced" / "v2.json").is_file()
    event = envelope("OrderPlaced", detail("OrderPlaced", 2, correlation_id="corr-packaged"))
    script = textwrap.dedent(
        """
        import json, os, sys
        import boto3
        from moto import mock_aws
        for blocked in ("jsonschema", "pydantic", "pulumi", "pulumi_aws", "yaml", "services", "components", "tests"):
            sys.modules[blocked] = None  # importing it now raises ImportError
        sys.path.insert(0, os.getcwd())
        with mock_aws():
            os.environ["NOTIFICATION_TOPIC_ARN"] = boto3.client("sns").create_topic(Name="t")["TopicArn"]
            import handler
            assert handler.contracts.__file__.startswith(os.getcwd()), handler.contracts.__file__
            result = handler.handle(json.loads(sys.argv[1]), None)
            bad = dict(json.loads(sys.argv[1]), detail={"version": 1})
            try:
                handler.handle(bad, None)
            except handler.contracts.ContractError:
                print("RESULT " + json.dumps(result))
        """
    )
    env = {
        "PATH": os.environ.get("PATH", ""),
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
    }
    run = subprocess.run(
        [sys.executable, "-c", script, json.dumps(event)], cwd=task, env=env, capture_output=True, text=True, timeout=60
    )
    assert run.returncode == 0, run.stderr[-3000:]
    [result] = [line for line in run.stdout.splitlines() if line.startswith("RESULT ")]
    assert json.loads(result.removeprefix("RESULT "))["status"] == "published"
