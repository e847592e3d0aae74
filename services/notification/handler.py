"""Notification service Lambda: validate domain events against their contracts, publish them to SNS.

Entry point ``handler.handle`` (runtime python3.12). The deployment package is this directory with
``handler.py`` at its root (minus tests and the infrastructure-only ``service.py``), so this module
imports only the standard library, boto3/botocore (shipped by the Lambda runtime) and the
``contracts`` package (the repository's event contracts, copied into every Lambda package next to the
handler); see ``contracts`` for why JSON Schema validation is built in rather than done with
``jsonschema``.

Two ways in:

* **SQS** (``Order Service -> EventBridge -> SQS -> Notification``): each record body is the full
  EventBridge event. The function answers with a partial batch response (the event source mapping
  must enable ``ReportBatchItemFailures``): a record whose body is not JSON, whose event breaks its
  contract (unknown type or version, bad detail, wrong source) or whose SNS publish fails is listed
  in ``batchItemFailures``; the others are deleted. Failed records are retried by SQS and, after the
  queue's ``maxReceiveCount``, moved to its dead-letter queue: never lost, and one bad message never
  fails its neighbours. On a FIFO queue, every record after the first failure is reported too, so
  the order within a message group is kept.
* **Direct EventBridge invocation** (the rule targets the function): the event itself. Such calls
  are asynchronous, so a *returned* value is simply discarded: if a broken event returned normally,
  it would count as delivered and vanish. Raising instead makes Lambda retry it (twice) and then
  hand it to the function's on-failure destination / dead-letter queue, where it can be inspected
  and replayed. A contract failure will not heal on retry, but the retries are cheap and the DLQ is
  the one place where rejected events are collected.

Configuration (environment):

* ``NOTIFICATION_TOPIC_ARN`` (required): the SNS topic to publish to. Missing or malformed, every
  invocation fails with a message naming it (and SQS keeps the messages).
* ``POWERTOOLS_SERVICE_NAME`` (optional, default ``notification``): the ``service`` field of logs.
* ``LOG_LEVEL`` (optional, default ``INFO``): DEBUG, INFO, WARN (or WARNING) or ERROR; an unknown
  value logs a warning and falls back to INFO.

Logs are one JSON object per line on stdout (CloudWatch Logs keeps each line as one event) with
``level``, ``message``, ``service``, ``correlationId``, ``eventType`` and, when the function runs
with X-Ray tracing, ``xrayTraceId`` (the Root of ``_X_AMZN_TRACE_ID``). Levels use Lambda's
vocabulary (DEBUG, INFO, WARN, ERROR), so Lambda's own JSON log-level filtering understands them.
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from typing import Any, Final

import boto3
from botocore.config import Config as BotoConfig
from botocore.exceptions import ClientError

import contracts  # the repository's top-level `contracts/` package, shipped inside the Lambda package

TOPIC_ARN_ENV: Final = "NOTIFICATION_TOPIC_ARN"
SERVICE_NAME_ENV: Final = "POWERTOOLS_SERVICE_NAME"
LOG_LEVEL_ENV: Final = "LOG_LEVEL"
TRACE_ID_ENV: Final = "_X_AMZN_TRACE_ID"
DEFAULT_SERVICE_NAME: Final = "notification"

_SNS_TOPIC_ARN = re.compile(r"^arn:aws[a-z-]*:sns:([a-z0-9-]+):(\d{12}):([A-Za-z0-9_-]{1,256}(\.fifo)?)$")
_LEVELS: Final = {"DEBUG": 10, "INFO": 20, "WARNING": 30, "WARN": 30, "ERROR": 40, "CRITICAL": 50}


class ConfigurationError(RuntimeError):
    """The function's environment is wrong; every invocation fails until it is fixed."""


class UnsupportedEventError(ValueError):
    """The function was invoked with something that is neither an SQS batch nor an EventBridge event."""


@dataclass(frozen=True)
class Config:
    topic_arn: str
    region: str
    service_name: str
    log_level: str


def load_config(environ: Mapping[str, str] | None = None) -> Config:
    """Read and check the environment; raise ConfigurationError naming the variable and the fix."""
    env = os.environ if environ is None else environ
    topic_arn = env.get(TOPIC_ARN_ENV, "").strip()
    if not topic_arn:
        raise ConfigurationError(
            f"{TOPIC_ARN_ENV} is not set: set it to the ARN of the notification SNS topic "
            "(arn:aws:sns:<region>:<account>:<name>)"
        )
    match = _SNS_TOPIC_ARN.match(topic_arn)
    if not match:
        raise ConfigurationError(
            f"{TOPIC_ARN_ENV} = {topic_arn!r} is not an SNS topic ARN (arn:aws:sns:<region>:<account>:<name>)"
        )
    level = env.get(LOG_LEVEL_ENV, "INFO").strip().upper() or "INFO"
    return Config(
        topic_arn=topic_arn,
        region=match.group(1),
        service_name=env.get(SERVICE_NAME_ENV, "").strip() or DEFAULT_SERVICE_NAME,
        log_level=level,
    )


# --------------------------------------------------------------------------------------------------
# Structured logging


def _xray_trace_id() -> str | None:
    """The Root of `_X_AMZN_TRACE_ID` (set per invocation by Lambda when tracing is on)."""
    header = os.environ.get(TRACE_ID_ENV, "")
    for part in header.split(";"):
        key, _, value = part.partition("=")
        if key.strip() == "Root" and value:
            return value.strip()
    return header or None


class StructuredLogger:
    """One JSON object per line on stdout. Written directly (not through `logging`) so the Lambda
    runtime's own root handler does not wrap or duplicate the lines."""

    def __init__(self, *, service: str, level: str = "INFO", request_id: str | None = None) -> None:
        self.service = service
        self.request_id = request_id
        self.threshold = _LEVELS.get(level, _LEVELS["INFO"])
        if level not in _LEVELS:
            self.warning(f"{LOG_LEVEL_ENV} = {level!r} is not a log level; using INFO", allowed=sorted(_LEVELS))

    def _emit(self, level: str, message: str, fields: Mapping[str, Any]) -> None:
        if _LEVELS[level] < self.threshold:
            return
        entry: dict[str, Any] = {
            "timestamp": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": level,
            "message": message,
            "service": self.service,
        }
        if self.request_id:
            entry["requestId"] = self.request_id
        if trace_id := _xray_trace_id():
            entry["xrayTraceId"] = trace_id
        entry.update({key: value for key, value in fields.items() if value is not None})
        sys.stdout.write(json.dumps(entry, default=str) + "\n")
        sys.stdout.flush()

    def debug(self, message: str, **fields: Any) -> None:
        self._emit("DEBUG", message, fields)

    def info(self, message: str, **fields: Any) -> None:
        self._emit("INFO", message, fields)

    def warning(self, message: str, **fields: Any) -> None:
        self._emit("WARN", message, fields)

    def error(self, message: str, **fields: Any) -> None:
        self._emit("ERROR", message, fields)


# --------------------------------------------------------------------------------------------------
# Publishing


@cache
def sns_client(region: str) -> Any:
    """One client per region for the life of the container, created on first use (not at import, so
    tests can start moto first). The region is the topic's own, taken from its ARN."""
    return boto3.client(
        "sns",
        region_name=region,
        config=BotoConfig(connect_timeout=3, read_timeout=5, retries={"mode": "standard", "max_attempts": 3}),
    )


def notification_message(event: contracts.DomainEvent) -> dict[str, Any]:
    """The JSON document published to SNS: the validated event plus where it came from."""
    return {
        "eventType": event.detail_type,
        "eventVersion": event.version,
        "source": event.source,
        "eventId": event.event_id,
        "correlationId": event.correlation_id,
        "occurredAt": event.detail["occurredAt"],
        "detail": dict(event.detail),
    }


def message_attributes(event: contracts.DomainEvent) -> dict[str, dict[str, str]]:
    """SNS message attributes, so subscribers can filter (e.g. on eventType) without parsing the body."""
    return {
        "eventType": {"DataType": "String", "StringValue": event.detail_type},
        "eventVersion": {"DataType": "Number", "StringValue": str(event.version)},
        "correlationId": {"DataType": "String", "StringValue": event.correlation_id},
        "source": {"DataType": "String", "StringValue": event.source},
    }


def publish(event: contracts.DomainEvent, config: Config) -> str:
    """Publish one validated event; return the SNS MessageId. boto3 errors propagate."""
    response = sns_client(config.region).publish(
        TopicArn=config.topic_arn,
        Subject=f"{event.detail_type} v{event.version}",
        Message=json.dumps(notification_message(event), separators=(",", ":")),
        MessageAttributes=message_attributes(event),
    )
    return str(response["MessageId"])


# --------------------------------------------------------------------------------------------------
# Entry point


def is_sqs_event(event: object) -> bool:
    if not isinstance(event, Mapping):
        return False
    records = event.get("Records")
    return (
        isinstance(records, list)
        and bool(records)
        and all(isinstance(r, Mapping) and r.get("eventSource") == "aws:sqs" for r in records)
    )


def is_eventbridge_event(event: object) -> bool:
    return isinstance(event, Mapping) and "detail-type" in event and "source" in event


def handle(event: Any, context: Any) -> dict[str, Any]:
    """Lambda entry point (``handler.handle``)."""
    config = load_config()
    log = StructuredLogger(
        service=config.service_name, level=config.log_level, request_id=getattr(context, "aws_request_id", None)
    )
    if is_sqs_event(event):
        return handle_sqs_batch(event["Records"], config, log)
    if is_eventbridge_event(event):
        return handle_eventbridge_event(event, config, log)
    keys = sorted(str(k) for k in event)[:20] if isinstance(event, Mapping) else type(event).__name__
    log.error("unsupported invocation: neither an SQS batch nor an EventBridge event", eventKeys=keys)
    raise UnsupportedEventError(f"unsupported invocation: expected an SQS batch or an EventBridge event, got {keys}")


def handle_sqs_batch(records: list[Mapping[str, Any]], config: Config, log: StructuredLogger) -> dict[str, Any]:
    """Process each record on its own; return the partial batch response listing the failed ones."""
    failures: list[dict[str, Any]] = []
    ordered_failure = False
    for record in records:
        message_id = record.get("messageId")
        if ordered_failure:
            # FIFO: a later message of the batch must not overtake a failed earlier one.
            log.warning("not processed: an earlier record of this FIFO batch failed", messageId=message_id)
            failures.append({"itemIdentifier": message_id})
            continue
        if not _process_record(record, config, log):
            failures.append({"itemIdentifier": message_id})
            ordered_failure = str(record.get("eventSourceARN", "")).endswith(".fifo")
    log.info(
        "batch processed",
        records=len(records),
        failed=len(failures),
        failedMessageIds=[f["itemIdentifier"] for f in failures],
    )
    return {"batchItemFailures": failures}


def _process_record(record: Mapping[str, Any], config: Config, log: StructuredLogger) -> bool:
    message_id = record.get("messageId")
    receive_count = record.get("attributes", {}).get("ApproximateReceiveCount")
    try:
        envelope = json.loads(record["body"])
    except (KeyError, TypeError, ValueError) as exc:
        log.error(
            f"record rejected: body is not JSON ({exc})",
            messageId=message_id,
            receiveCount=receive_count,
            body=str(record.get("body"))[:200],
        )
        return False
    correlation_id = contracts.envelope_correlation_id(envelope)
    detail_type = envelope.get("detail-type") if isinstance(envelope, Mapping) else None
    try:
        event = contracts.parse_envelope(envelope)
    except contracts.ContractError as exc:
        log.error(
            f"event rejected: {exc}",
            messageId=message_id,
            receiveCount=receive_count,
            correlationId=correlation_id,
            eventType=exc.detail_type or detail_type,
            eventVersion=exc.version,
            contractErrors=list(exc.errors) or None,
        )
        return False
    except Exception as exc:  # a bug or a broken schema file must not fail the neighbours
        log.error(
            f"event not processed: {type(exc).__name__}: {exc}",
            messageId=message_id,
            receiveCount=receive_count,
            correlationId=correlation_id,
            eventType=detail_type,
            errorCode=_error_code(exc),
        )
        return False
    fields = {
        "messageId": message_id,
        "correlationId": event.correlation_id,
        "eventType": event.detail_type,
        "eventVersion": event.version,
        "eventId": event.event_id,
    }
    try:
        sns_message_id = publish(event, config)
    except Exception as exc:  # ClientError, BotoCoreError (timeouts, endpoint), or anything else
        log.error(f"publish to SNS failed: {exc}", receiveCount=receive_count, errorCode=_error_code(exc), **fields)
        return False
    log.info("notification published", snsMessageId=sns_message_id, **fields)
    return True


def handle_eventbridge_event(envelope: Mapping[str, Any], config: Config, log: StructuredLogger) -> dict[str, Any]:
    """A direct (asynchronous) invocation by an EventBridge rule: raise on any failure, see the module doc."""
    correlation_id = contracts.envelope_correlation_id(envelope)
    try:
        event = contracts.parse_envelope(envelope)
    except contracts.ContractError as exc:
        log.error(
            f"event rejected: {exc}",
            correlationId=correlation_id,
            eventType=exc.detail_type or envelope.get("detail-type"),
            eventVersion=exc.version,
            eventId=envelope.get("id"),
            contractErrors=list(exc.errors) or None,
        )
        raise
    fields = {
        "correlationId": event.correlation_id,
        "eventType": event.detail_type,
        "eventVersion": event.version,
        "eventId": event.event_id,
    }
    try:
        sns_message_id = publish(event, config)
    except Exception as exc:
        log.error(f"publish to SNS failed: {exc}", errorCode=_error_code(exc), **fields)
        raise
    log.info("notification published", snsMessageId=sns_message_id, **fields)
    return {"status": "published", "snsMessageId": sns_message_id, "eventId": event.event_id}


def _error_code(exc: Exception) -> str:
    """The AWS error code of a ClientError (Throttling, NotFound, ...), else the exception's class name."""
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code") or type(exc).__name__)
    return type(exc).__name__
