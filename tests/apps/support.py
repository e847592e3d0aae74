"""moto helpers shared by the service tests: a bus whose events land in an SQS queue we can read."""

from __future__ import annotations

import json
from typing import Any

import boto3

REGION = "us-east-1"


def event_bus(service: str, bus_name: str = "ms-test-bus") -> dict[str, str]:
    """Create (in moto) a bus with a catch-all rule into a capture queue; return the publisher's env."""
    events = boto3.client("events", region_name=REGION)
    sqs = boto3.client("sqs", region_name=REGION)
    arn = events.create_event_bus(Name=bus_name)["EventBusArn"]
    queue = sqs.create_queue(QueueName=f"{bus_name}-capture")["QueueUrl"]
    _seen.pop(queue, None)  # a new moto account: forget what an earlier test module captured
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(
        Name=f"{bus_name}-all", EventBusName=bus_name, EventPattern=json.dumps({"source": [{"prefix": ""}]})
    )
    events.put_targets(Rule=f"{bus_name}-all", EventBusName=bus_name, Targets=[{"Id": "capture", "Arn": queue_arn}])
    return {
        "EVENT_BUS_ARN": arn,
        "EVENT_SOURCE": f"microservices.{service}",
        "AWS_REGION": REGION,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "CAPTURE_QUEUE_URL": queue,
    }


_seen: dict[str, list[dict[str, Any]]] = {}


def captured_events(sqs: Any, detail_type: str | None = None, bus_name: str = "ms-test-bus") -> list[dict[str, Any]]:
    """Every event put on the bus so far (drained from the capture queue and remembered)."""
    url = sqs.get_queue_url(QueueName=f"{bus_name}-capture")["QueueUrl"]
    seen = _seen.setdefault(url, [])
    while True:
        batch = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get("Messages", [])
        if not batch:
            break
        for message in batch:
            seen.append(json.loads(message["Body"]))
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    return [e for e in seen if detail_type is None or e["detail-type"] == detail_type]
