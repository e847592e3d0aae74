"""EventBus: the environment's EventBridge bus, its archive, the routes the service specs declare, the
consumers' SQS queues, the notification SNS topic and the registry of versioned event contracts.

What follows from the specs (`services/*.py`):
- every `publishes` detail-type is put on the custom bus with source `microservices.<publisher>`;
- every `subscribes` entry becomes ONE rule on the bus matching exactly that source and those
  detail-types. `queue` delivery targets the consumer's own SQS queue (SSE-KMS, TLS-only, a DLQ with
  a redrive policy); `direct` delivery invokes the consumer's Lambda (permission scoped to the rule).
- every rule target has a retry policy and a dead-letter queue (`<name>-targets-dlq`), which only
  EventBridge rules of this bus (and the bus itself, for encryption errors) may send to.

Whole at construction. The bus exists before the services (they receive its ARN and their queue
ARNs), so everything that names a principal the services create is its OWN small component, declared
after both sides (each takes the bus and the other side as arguments and reaches into neither):

    bus = EventBus(...)           # bus, archive, queues, every rule (queue and direct), topic, registry
    fn = LambdaService(..., queue_arn=bus.queue_arn_for("notification"), topic_arn=bus.topic_arn)
    FunctionRoutes(..., FunctionRoutesArgs(bus=bus, service="notification", function_arn=.., function_name=..))
    services = {name: FargateMicroservice(..., publish_bus_arn=bus.bus_arn, ...) for ...}
    EventPublishers(..., EventPublishersArgs(bus=bus, task_role_arns={..}, topic_publisher_role_arns=[fn.role_arn]))

`FunctionRoutes` holds the direct rules' targets and Lambda permissions, `EventPublishers` the bus
resource policy and the topic policy. Their resources were children of the bus before; they carry
`aliases` to that parent, so moving them is a rename for the engine, not a replacement.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
import pulumi_aws as aws

from components.context import PlatformContext
from components.iam import deny_insecure_transport, sid
from components.schema_registry import EventSchemaRegistry, EventSchemaRegistryArgs
from contracts import event_pattern
from model.config import EventsConfig
from model.errors import ConfigError
from model.spec import ServiceSpec

DEFAULT_VISIBILITY_TIMEOUT_SECONDS = 60
"""Visibility timeout of a container consumer's queue (Lambda consumers pass their own)."""
QUEUE_RETENTION_SECONDS = 4 * 24 * 3600
DLQ_RETENTION_SECONDS = 14 * 24 * 3600
"""The SQS maximum: a dead letter waits two weeks for someone to look at it."""
KMS_DATA_KEY_REUSE_SECONDS = 300
"""How long SQS reuses a data key before calling KMS again (AWS default; fewer KMS calls and cost)."""
TARGET_MAX_EVENT_AGE_SECONDS = 3600
TARGET_MAX_RETRY_ATTEMPTS = 10
"""EventBridge retries a failed delivery (throttling, missing permission) for up to an hour, then
sends the event to the targets' DLQ: long enough to ride out an incident, short enough to alarm."""

_RULE_NAME_MAX = 64 - 8
"""EventBridge rule names are at most 64 characters; Pulumi appends `-` and 7 random characters."""


@dataclass(frozen=True)
class EventBusArgs:
    config: EventsConfig
    catalog: Sequence[ServiceSpec]
    visibility_timeouts: Mapping[str, int] = field(default_factory=dict)
    """Queue visibility timeout per consumer service, in seconds. Every Lambda consumer with `queue`
    delivery must be listed (AWS guidance: at least 6x the function timeout plus the batching window,
    see `LambdaSettings.queue_visibility_timeout_seconds`); container consumers default to
    `DEFAULT_VISIBILITY_TIMEOUT_SECONDS`."""
    schema_dir: Path | None = None
    """`<DetailType>/v<N>.json` JSON Schemas to register in an EventBridge schema registry; none if unset."""


@dataclass(frozen=True)
class Route:
    """One rule: a consumer's subscription to one publisher (subscriptions to the same publisher with
    the same delivery are merged, so one rule never overlaps another of the same consumer)."""

    consumer: str
    publisher: str
    delivery: str
    detail_types: tuple[str, ...]

    @property
    def pattern(self) -> dict[str, list[str]]:
        return event_pattern([f"microservices.{self.publisher}"], list(self.detail_types))


def routes_from_catalog(catalog: Sequence[ServiceSpec]) -> list[Route]:
    """Every rule the specs ask for, in a stable order (consumer, publisher, delivery)."""
    merged: dict[tuple[str, str, str], list[str]] = {}
    for spec in sorted(catalog, key=lambda s: s.name):
        for sub in spec.subscribes:
            types = merged.setdefault((spec.name, sub.source, sub.delivery), [])
            types.extend(t for t in sub.detail_types if t not in types)
    return [Route(c, p, d, tuple(types)) for (c, p, d), types in sorted(merged.items())]


def _rule_name(name: str) -> str:
    """A logical name that leaves room for Pulumi's random suffix within EventBridge's 64 characters."""
    if len(name) <= _RULE_NAME_MAX:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:7]
    return f"{name[: _RULE_NAME_MAX - 8]}-{digest}"


def _policy(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def publisher_policy(bus_arn: str, publishers: Mapping[str, tuple[str, Sequence[str]]]) -> str:
    """Bus resource policy: each publisher's task role may put only its own source and detail-types.

    `publishers` maps service name -> (task role ARN, detail-types it publishes). No `*` principal:
    every statement names one role. Within one account an identity policy alone can also allow
    PutEvents, so the Allow statements are paired with Deny statements for the same role: a role
    that also has a broad identity grant still cannot put another service's source or an undeclared
    detail-type (explicit deny wins).
    """
    statements: list[dict[str, Any]] = []
    for service, (role_arn, detail_types) in sorted(publishers.items()):
        source = f"microservices.{service}"
        principal = {"AWS": role_arn}
        statements += [
            {
                "Sid": sid("Publish", service),
                "Effect": "Allow",
                "Principal": principal,
                "Action": "events:PutEvents",
                "Resource": bus_arn,
                "Condition": {
                    "StringEquals": {"events:source": source, "events:detail-type": list(detail_types)},
                },
            },
            {
                "Sid": sid("DenyForeignSource", service),
                "Effect": "Deny",
                "Principal": principal,
                "Action": "events:PutEvents",
                "Resource": bus_arn,
                "Condition": {"StringNotEquals": {"events:source": source}},
            },
            {
                "Sid": sid("DenyUndeclaredType", service),
                "Effect": "Deny",
                "Principal": principal,
                "Action": "events:PutEvents",
                "Resource": bus_arn,
                "Condition": {"StringNotEquals": {"events:detail-type": list(detail_types)}},
            },
        ]
    return _policy(*statements)


def queue_policy(queue_arn: str, rule_arns: Sequence[str]) -> str:
    """A consumer queue: TLS only; EventBridge may send only on behalf of the rules feeding it."""
    return _policy(
        deny_insecure_transport(queue_arn, "sqs:*"),
        {
            "Sid": "AllowEventBridgeRules",
            "Effect": "Allow",
            "Principal": {"Service": "events.amazonaws.com"},
            "Action": "sqs:SendMessage",
            "Resource": queue_arn,
            "Condition": {"ArnEquals": {"aws:SourceArn": sorted(rule_arns)}},
        },
    )


def targets_dlq_policy(queue_arn: str, bus_arn: str, bus_rules_arn: str) -> str:
    """The targets' DLQ: TLS only; EventBridge may send only for this bus and its rules."""
    return _policy(
        deny_insecure_transport(queue_arn, "sqs:*"),
        {
            "Sid": "AllowThisBusDeadLetters",
            "Effect": "Allow",
            "Principal": {"Service": "events.amazonaws.com"},
            "Action": "sqs:SendMessage",
            "Resource": queue_arn,
            "Condition": {"ArnLike": {"aws:SourceArn": [bus_arn, bus_rules_arn]}},
        },
    )


def topic_policy(topic_arn: str, publisher_role_arns: Sequence[str]) -> str:
    """The notification topic: TLS only; only the named roles may publish."""
    return _policy(
        deny_insecure_transport(topic_arn, "sns:Publish"),
        {
            "Sid": "AllowNotificationPublishers",
            "Effect": "Allow",
            "Principal": {"AWS": sorted(publisher_role_arns)},
            "Action": "sns:Publish",
            "Resource": topic_arn,
        },
    )


class EventBus(pulumi.ComponentResource):
    bus_arn: pulumi.Output[str]
    bus_name: pulumi.Output[str]
    archive_arn: pulumi.Output[str]
    topic_arn: pulumi.Output[str]
    targets_dlq_arn: pulumi.Output[str]
    routes: list[Route]
    contracts: EventSchemaRegistry | None
    direct_rules: dict[str, list[tuple[Route, aws.cloudwatch.EventRule]]]
    """The `direct` rules by consumer service (their targets and permissions: `FunctionRoutes`)."""
    component_name: str

    def __init__(
        self, name: str, args: EventBusArgs, context: PlatformContext, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        """`context.key_arn` encrypts the bus, its archive, every queue and the topic."""
        super().__init__("microservices:events:EventBus", name, None, opts)
        self._name = name
        self.component_name = name
        self._context = context
        self._args = args
        self._specs = {s.name: s for s in args.catalog}
        self.routes = routes_from_catalog(args.catalog)
        self._check_visibility_timeouts()
        self._queues: dict[str, aws.sqs.Queue] = {}
        self._dlqs: dict[str, aws.sqs.Queue] = {}
        self.rules: dict[Route, aws.cloudwatch.EventRule] = {}

        self._create_bus()
        self._create_consumer_queues()
        self._create_queue_routes()
        self.direct_rules = self._create_direct_rules()
        self._create_topic()
        self.contracts = (
            EventSchemaRegistry(
                f"{name}-contracts",
                EventSchemaRegistryArgs(schema_dir=args.schema_dir, catalog=args.catalog),
                context,
                opts=pulumi.ResourceOptions(parent=self),
            )
            if args.schema_dir is not None
            else None
        )
        self.register_outputs(
            {
                "busArn": self.bus_arn,
                "busName": self.bus_name,
                "archiveArn": self.archive_arn,
                "topicArn": self.topic_arn,
                "targetsDlqArn": self.targets_dlq_arn,
                "queueArns": {s: q.arn for s, q in self._queues.items()},
            }
        )

    # --- what the services receive ------------------------------------------------------------

    def queue_arn_for(self, service: str) -> pulumi.Output[str]:
        """ARN of `service`'s own queue (pass as FargateMicroservice `consume_queue_arns`)."""
        return self._queue(service).arn

    def queue_url_for(self, service: str) -> pulumi.Output[str]:
        """URL of `service`'s own queue (what its code polls)."""
        return self._queue(service).url

    @property
    def queue_consumers(self) -> list[str]:
        """Services that have their own queue (those with at least one `queue` subscription)."""
        return sorted(self._queues)

    @property
    def dead_letter_queue_names(self) -> dict[str, pulumi.Output[str]]:
        """Every DLQ of the bus by purpose (`targets`, `<consumer>`), for DLQ-depth alarms."""
        return {"targets": self._targets_dlq.name, **{s: q.name for s, q in sorted(self._dlqs.items())}}

    def _queue(self, service: str) -> aws.sqs.Queue:
        if service not in self._queues:
            has = ", ".join(sorted(self._queues)) or "none"
            raise KeyError(f"service {service!r} has no queue (no `queue` subscription); services with one: {has}")
        return self._queues[service]

    @property
    def publishers(self) -> dict[str, tuple[str, ...]]:
        """Detail-types each publishing service puts on the bus, by service."""
        return {name: spec.publishes for name, spec in sorted(self._specs.items()) if spec.publishes}

    @property
    def topic(self) -> aws.sns.Topic:
        return self._topic

    def retry_policy(self) -> aws.cloudwatch.EventTargetRetryPolicyArgs:
        """Every rule target's retry policy (an hour, then the targets' DLQ)."""
        return self._retry_policy()

    # --- resources ----------------------------------------------------------------------------

    def _child(self) -> pulumi.ResourceOptions:
        return pulumi.ResourceOptions(parent=self)

    def _check_visibility_timeouts(self) -> None:
        queue_consumers = {r.consumer for r in self.routes if r.delivery == "queue"}
        unknown = sorted(set(self._args.visibility_timeouts) - queue_consumers)
        if unknown:
            raise ValueError(f"EventBusArgs.visibility_timeouts: {unknown} have no `queue` subscription")
        for service in sorted(queue_consumers):
            if self._specs[service].kind == "lambda" and service not in self._args.visibility_timeouts:
                raise ValueError(
                    f"EventBusArgs.visibility_timeouts: Lambda consumer {service!r} needs its queue visibility "
                    "timeout (at least 6x the function timeout plus the batching window)"
                )

    def _encrypted_queue(self, name: str, *, retention: int, visibility: int | None = None, **extra: Any) -> Any:
        tags = {**self._context.tags, **extra.pop("tags", {})}
        return aws.sqs.Queue(
            name,
            kms_master_key_id=self._context.key_arn,
            kms_data_key_reuse_period_seconds=KMS_DATA_KEY_REUSE_SECONDS,
            message_retention_seconds=retention,
            visibility_timeout_seconds=visibility,
            tags=tags,
            opts=self._child(),
            **extra,
        )

    def _create_bus(self) -> None:
        args = self._args
        # One DLQ for every rule target of this bus, and for the bus itself: with a customer managed
        # key, EventBridge sends events it cannot encrypt or decrypt to the bus's DLQ (AWS strongly
        # recommends one). Its policy is declared after the bus because it names the bus's ARN.
        self._targets_dlq = self._encrypted_queue(
            f"{self._name}-targets-dlq", retention=DLQ_RETENTION_SECONDS, tags={"QueueRole": "dead-letter"}
        )
        bus = aws.cloudwatch.EventBus(
            f"{self._name}-bus",
            description=f"{self._name}: domain events of the microservices platform",
            kms_key_identifier=self._context.key_arn,
            dead_letter_config=aws.cloudwatch.EventBusDeadLetterConfigArgs(arn=self._targets_dlq.arn),
            tags=dict(self._context.tags),
            opts=self._child(),
        )
        self.bus_arn = bus.arn
        self.bus_name = bus.name
        rules_arn = pulumi.Output.concat(self._context.arn("events", "rule/"), bus.name, "/*")
        aws.sqs.QueuePolicy(
            f"{self._name}-targets-dlq-policy",
            queue_url=self._targets_dlq.url,
            policy=pulumi.Output.all(self._targets_dlq.arn, bus.arn, rules_arn).apply(
                lambda v: targets_dlq_policy(v[0], v[1], v[2])
            ),
            opts=self._child(),
        )
        self.targets_dlq_arn = self._targets_dlq.arn

        sources = sorted(s.event_source for s in args.catalog if s.publishes)
        if not sources:
            raise ConfigError("EventBus: no service spec publishes events; nothing to put on the bus")
        archive = aws.cloudwatch.EventArchive(
            f"{self._name}-archive",
            description=f"{self._name}: every domain event, for replay",
            event_source_arn=bus.arn,
            # Only the platform's own sources: anything else on the bus is not a domain event.
            event_pattern=json.dumps({"source": sources}),
            retention_days=args.config.archive_retention_days,
            kms_key_identifier=self._context.key_arn,
            opts=self._child(),
        )
        self.archive_arn = archive.arn

    def _create_consumer_queues(self) -> None:
        args = self._args
        for consumer in sorted({r.consumer for r in self.routes if r.delivery == "queue"}):
            visibility = args.visibility_timeouts.get(consumer, DEFAULT_VISIBILITY_TIMEOUT_SECONDS)
            dlq = self._encrypted_queue(
                f"{self._name}-{consumer}-dlq",
                retention=DLQ_RETENTION_SECONDS,
                tags={"Service": consumer, "QueueRole": "dead-letter"},
            )
            queue = self._encrypted_queue(
                f"{self._name}-{consumer}-queue",
                retention=QUEUE_RETENTION_SECONDS,
                visibility=visibility,
                redrive_policy=dlq.arn.apply(
                    lambda arn: json.dumps(
                        {"deadLetterTargetArn": arn, "maxReceiveCount": args.config.max_receive_count}
                    )
                ),
                tags={"Service": consumer, "QueueRole": "consumer"},
            )
            # The DLQ accepts redrives from its own queue only. A separate resource, because the queue
            # already names the DLQ in its redrive policy (declaring both on the queues is a cycle).
            aws.sqs.RedriveAllowPolicy(
                f"{self._name}-{consumer}-dlq-redrive-allow",
                queue_url=dlq.url,
                redrive_allow_policy=queue.arn.apply(
                    lambda arn: json.dumps({"redrivePermission": "byQueue", "sourceQueueArns": [arn]})
                ),
                opts=self._child(),
            )
            aws.sqs.QueuePolicy(
                f"{self._name}-{consumer}-dlq-policy",
                queue_url=dlq.url,
                policy=dlq.arn.apply(lambda arn: _policy(deny_insecure_transport(arn, "sqs:*"))),
                opts=self._child(),
            )
            self._queues[consumer] = queue
            self._dlqs[consumer] = dlq

    def _retry_policy(self) -> aws.cloudwatch.EventTargetRetryPolicyArgs:
        return aws.cloudwatch.EventTargetRetryPolicyArgs(
            maximum_event_age_in_seconds=TARGET_MAX_EVENT_AGE_SECONDS,
            maximum_retry_attempts=TARGET_MAX_RETRY_ATTEMPTS,
        )

    def _rule(self, route: Route) -> aws.cloudwatch.EventRule:
        suffix = "" if route.delivery == "queue" else "-direct"
        rule = aws.cloudwatch.EventRule(
            _rule_name(f"{self._name}-{route.consumer}-{route.publisher}{suffix}"),
            description=f"{', '.join(route.detail_types)} from {route.publisher} to {route.consumer} "
            f"({route.delivery})",
            event_bus_name=self.bus_name,
            event_pattern=json.dumps(route.pattern),
            tags={**self._context.tags, "Service": route.consumer},
            opts=self._child(),
        )
        self.rules[route] = rule
        return rule

    def _create_queue_routes(self) -> None:
        for consumer, queue in sorted(self._queues.items()):
            rules = []
            for route in (r for r in self.routes if r.consumer == consumer and r.delivery == "queue"):
                rule = self._rule(route)
                aws.cloudwatch.EventTarget(
                    f"{_rule_name(f'{self._name}-{route.consumer}-{route.publisher}')}-target",
                    rule=rule.name,
                    event_bus_name=self.bus_name,
                    arn=queue.arn,
                    retry_policy=self._retry_policy(),
                    dead_letter_config=aws.cloudwatch.EventTargetDeadLetterConfigArgs(arn=self._targets_dlq.arn),
                    opts=self._child(),
                )
                rules.append(rule)
            aws.sqs.QueuePolicy(
                f"{self._name}-{consumer}-queue-policy",
                queue_url=queue.url,
                policy=pulumi.Output.all(queue.arn, *(r.arn for r in rules)).apply(lambda v: queue_policy(v[0], v[1:])),
                opts=self._child(),
            )

    def _create_direct_rules(self) -> dict[str, list[tuple[Route, aws.cloudwatch.EventRule]]]:
        """The rules of `direct` subscriptions: declared here, with every other rule of the bus; what they
        invoke (a function that exists only later) is `FunctionRoutes`."""
        rules: dict[str, list[tuple[Route, aws.cloudwatch.EventRule]]] = {}
        for route in (r for r in self.routes if r.delivery == "direct"):
            rules.setdefault(route.consumer, []).append((route, self._rule(route)))
        return rules

    def _create_topic(self) -> None:
        self._topic = aws.sns.Topic(
            f"{self._name}-notifications",
            display_name="Platform notifications",
            kms_master_key_id=self._context.key_arn,
            tags=dict(self._context.tags),
            opts=self._child(),
        )
        self.topic_arn = self._topic.arn
