"""Generic projection of a CQRS read model: EventBridge events (through the read model's own SQS queue)
-> one DynamoDB item per aggregate. Configured only by environment (from the `ReadModel` spec):

    TABLE_NAME   the read model's table            KEY_FIELDS   detail fields of the item key (hash[,range])
    COPY_FIELDS  detail fields copied to the item  LIFECYCLE    detail-types in rank order

Item: the key attributes, the copied fields (first value wins), `status` (the detail-type of the
highest-ranked event applied), `rank`, `appliedEventIds` (a string set) and `revision`.

Idempotency and ordering:
* an event whose EventBridge `id` is already in `appliedEventIds` changes nothing (duplicates:
  SQS at-least-once delivery, rule retries);
* `status` only moves forward in the lifecycle: an OrderPlaced delivered after the OrderCancelled of
  the same order fills in the fields it carries but never turns the order back to placed;
* every write is a PutItem conditioned on the `revision` it read (optimistic concurrency), retried on
  conflict, so two pollers working on the same aggregate cannot lose an update.
Failed records are reported with `batchItemFailures` (the event source mapping uses
ReportBatchItemFailures): only they are retried, and after maxReceiveCount they go to the DLQ.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import boto3
from botocore.exceptions import ClientError

LOGGER = logging.getLogger("projection")
LOGGER.setLevel(logging.INFO)
MAX_CONFLICT_RETRIES = 5


class Projection:
    def __init__(self, table: Any, key_fields: list[str], copy_fields: list[str], lifecycle: list[str]) -> None:
        if not key_fields or not lifecycle:
            raise ValueError("projection: KEY_FIELDS and LIFECYCLE must not be empty")
        self.table = table
        self.key_fields = key_fields
        self.copy_fields = copy_fields
        self.lifecycle = lifecycle

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] = os.environ, resource: Any = None) -> Projection:
        dynamodb = resource or boto3.resource("dynamodb")

        def split(name: str) -> list[str]:
            return [v for v in environ.get(name, "").split(",") if v]

        return cls(dynamodb.Table(environ["TABLE_NAME"]), split("KEY_FIELDS"), split("COPY_FIELDS"), split("LIFECYCLE"))

    def apply(self, event: Mapping[str, Any]) -> str:
        """Apply one EventBridge event; returns what happened: applied, duplicate or ignored."""
        detail_type = event.get("detail-type")
        detail = event.get("detail")
        event_id = event.get("id")
        if detail_type not in self.lifecycle or not isinstance(detail, Mapping) or not event_id:
            raise ValueError(f"not an event of this read model: detail-type {detail_type!r}, id {event_id!r}")
        key = {}
        for name in self.key_fields:
            if not isinstance(detail.get(name), str) or not detail[name]:
                raise ValueError(f"{detail_type} {event_id}: key field {name!r} missing from the detail")
            key[name] = detail[name]
        rank = self.lifecycle.index(detail_type) + 1
        for _ in range(MAX_CONFLICT_RETRIES):
            current = self.table.get_item(Key=key, ConsistentRead=True).get("Item")
            applied = set(current.get("appliedEventIds", set())) if current else set()
            if event_id in applied:
                return "duplicate"
            item = dict(current) if current else dict(key)
            for name in self.copy_fields:
                if name in detail and name not in item:
                    item[name] = _to_dynamo(detail[name])
            outcome = "ignored"
            if rank > int(item.get("rank", 0)):
                item["status"] = detail_type
                item["rank"] = rank
                item["lastEventId"] = event_id
                outcome = "applied"
            item["appliedEventIds"] = applied | {event_id}
            revision = int(current["revision"]) if current else 0
            item["revision"] = revision + 1
            try:
                if current is None:
                    self.table.put_item(Item=item, ConditionExpression="attribute_not_exists(revision)")
                else:
                    self.table.put_item(
                        Item=item, ConditionExpression="revision = :seen", ExpressionAttributeValues={":seen": revision}
                    )
                return outcome if outcome == "applied" else "late"
            except ClientError as error:
                if error.response["Error"]["Code"] != "ConditionalCheckFailedException":
                    raise
        raise RuntimeError(f"{detail_type} {event_id}: the item kept changing; retry later")


def _to_dynamo(value: Any) -> Any:
    """JSON values as DynamoDB accepts them (numbers as Decimal, no floats)."""
    return json.loads(json.dumps(value), parse_float=Decimal)


_projection: Projection | None = None


def handle(event: Mapping[str, Any], context: Any = None, projection: Projection | None = None) -> dict[str, Any]:
    """SQS batch -> partial batch failures."""
    global _projection
    if projection is None:
        if _projection is None:
            _projection = Projection.from_environment()
        projection = _projection
    failures = []
    for record in event.get("Records", []):
        try:
            outcome = projection.apply(json.loads(record["body"]))
            LOGGER.info(json.dumps({"messageId": record.get("messageId"), "outcome": outcome}))
        except Exception as error:  # one bad record must not fail the batch
            LOGGER.error(json.dumps({"messageId": record.get("messageId"), "error": str(error)}))
            failures.append({"itemIdentifier": record["messageId"]})
    return {"batchItemFailures": failures}
