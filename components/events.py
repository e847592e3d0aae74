"""EventBus: the environment's EventBridge bus, its archive, the routes the service specs declare, the
consumers' SQS queues, the notification SNS topic and the registry of versioned event contracts.

What follows from the specs (`services/*.py`):
- every `publishes` detail-type is put on the custom bus with source `microservices.<publisher>`;
- every `subscribes` entry becomes ONE rule on the bus matching exactly that source and those
  detail-types. `queue` delivery targets the consumer's own SQS queue (SSE-KMS, TLS-only, a DLQ with
  a redrive policy); `direct` delivery invokes the consumer's Lambda (permission scoped to the rule).
- every rule target has a retry policy and a dead-letter queue (`<name>-targets-dlq`), which only
  EventBridge rules of this bus (and the bus itself, for encryption errors) may send to.

Ordering. The bus must exist before the services (they receive its ARN and their queue ARNs), but
two of its policies name principals that the services create: the bus resource policy names the
publishers' task roles, the topic policy names the notification function's role, and the `direct`
rules target a function that does not exist yet. So the constructor declares everything that needs
nothing from the services, and three methods declare the rest once the caller has built them:

    bus = EventBus(...)                                        # bus, archive, queues, queue rules, topic
    fn = NotificationFunction(..., queue_arn=bus.queue_arn_for("notification"), topic_arn=bus.topic_arn)
    bus.route_to_function("notification", function_arn=fn.function_arn, function_name=fn.function_name)
    bus.allow_topic_publishers([fn.role_arn])
    services = {name: FargateMicroservice(..., publish_bus_arn=bus.bus_arn, ...) for ...}
    bus.allow_publishers({name: svc.task_role_arn for name, svc in services.items() if publishes})

Each method declares its resources as children of the bus (each may run once), so the resource
tree is the same as if everything were known up front.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
import pulumi_aws as aws

from components.config import ConfigError, EventsConfig
from services.notification.contracts import event_pattern
from services.spec import ServiceSpec

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
    kms_key_arn: pulumi.Input[str]
    """The platform key: encrypts the bus, its archive, every queue and the topic."""
    account_id: str
    region: str
    partition: str
    tags: dict[str, str]
    visibility_timeouts: Mapping[str, int] = field(default_factory=dict)
    """Queue visibility timeout per consumer service, in seconds. Every Lambda consumer with `queue`
    delivery must be listed (AWS guidance: at least 6x the function timeout plus the batching window,
    see `NotificationSettings.queue_visibility_timeout_seconds`); container consumers default to
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


def _sid(*parts: str) -> str:
    """An alphanumeric policy statement id (`order-history` -> `OrderHistory`)."""
    return "".join(word[0].upper() + word[1:] for part in parts for word in re.split(r"[^A-Za-z0-9]+", part) if word)


def deny_insecure_transport(resource_arn: str, action: str) -> dict[str, Any]:
    """The statement AWS recommends on every queue and topic: refuse any request not made over TLS."""
    return {
        "Sid": "DenyInsecureTransport",
        "Effect": "Deny",
        "Principal": "*",
        "Action": action,
        "Resource": resource_arn,
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
    }


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
                "Sid": _sid("Publish", service),
                "Effect": "Allow",
                "Principal": principal,
                "Action": "events:PutEvents",
                "Resource": bus_arn,
                "Condition": {
                    "StringEquals": {"events:source": source, "events:detail-type": list(detail_types)},
                },
            },
            {
                "Sid": _sid("DenyForeignSource", service),
                "Effect": "Deny",
                "Principal": principal,
                "Action": "events:PutEvents",
                "Resource": bus_arn,
                "Condition": {"StringNotEquals": {"events:source": source}},
            },
            {
                "Sid": _sid("DenyUndeclaredType", service),
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

    def __init__(self, name: str, args: EventBusArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("microservices:events:EventBus", name, None, opts)
        self._name = name
        self._args = args
        self._specs = {s.name: s for s in args.catalog}
        self.routes = routes_from_catalog(args.catalog)
        self._check_visibility_timeouts()
        self._done: set[str] = set()
        self._queues: dict[str, aws.sqs.Queue] = {}
        self._dlqs: dict[str, aws.sqs.Queue] = {}
        self.rules: dict[Route, aws.cloudwatch.EventRule] = {}

        self._create_bus()
        self._create_consumer_queues()
        self._create_queue_routes()
        self._create_topic()
        self.contracts = (
            EventSchemaRegistry(
                f"{name}-contracts",
                EventSchemaRegistryArgs(schema_dir=args.schema_dir, catalog=args.catalog, tags=args.tags),
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

    # --- declared once the principals exist ---------------------------------------------------

    def route_to_function(
        self,
        service: str,
        *,
        function_arn: pulumi.Input[str],
        function_name: pulumi.Input[str],
        qualifier: str | None = None,
    ) -> list[aws.cloudwatch.EventRule]:
        """Declare the `direct` rules of Lambda consumer `service`: each targets the function, with a
        retry policy and the targets' DLQ, and may invoke it only through a permission scoped to the
        rule's ARN. With an alias, `function_arn` is the alias ARN and `qualifier` its name."""
        self._once(f"route:{service}")
        routes = [r for r in self.routes if r.consumer == service and r.delivery == "direct"]
        if not routes:
            raise ValueError(f"EventBus.route_to_function: service {service!r} has no `direct` subscription")
        rules = []
        for route in routes:
            rule = self._rule(route)
            base = _rule_name(f"{self._name}-{route.consumer}-{route.publisher}-direct")
            aws.cloudwatch.EventTarget(
                f"{base}-target",
                rule=rule.name,
                event_bus_name=self.bus_name,
                arn=function_arn,
                retry_policy=self._retry_policy(),
                dead_letter_config=aws.cloudwatch.EventTargetDeadLetterConfigArgs(arn=self._targets_dlq.arn),
                opts=self._child(),
            )
            aws.lambda_.Permission(
                f"{base}-invoke",
                action="lambda:InvokeFunction",
                function=function_name,
                principal="events.amazonaws.com",
                source_arn=rule.arn,
                qualifier=qualifier,
                opts=self._child(),
            )
            rules.append(rule)
        return rules

    def allow_topic_publishers(self, role_arns: Sequence[pulumi.Input[str]]) -> aws.sns.TopicPolicy:
        """Topic policy: only these roles (the notification function's) may publish, and only over TLS."""
        self._once("topic-policy")
        if not role_arns:
            raise ValueError("EventBus.allow_topic_publishers: at least one role ARN is required")
        return aws.sns.TopicPolicy(
            f"{self._name}-notifications-policy",
            arn=self._topic.arn,
            policy=pulumi.Output.all(self._topic.arn, *role_arns).apply(lambda v: topic_policy(v[0], v[1:])),
            opts=self._child(),
        )

    def allow_publishers(self, role_arns_by_service: Mapping[str, pulumi.Input[str]]) -> aws.cloudwatch.EventBusPolicy:
        """Bus resource policy naming every publisher's task role (see `publisher_policy`).

        Keys must be exactly the services whose spec `publishes` something: a missing one could not
        publish, an extra one would be granted a source nobody declared.
        """
        self._once("bus-policy")
        publishers = {s.name: s.publishes for s in self._specs.values() if s.publishes}
        missing = sorted(set(publishers) - set(role_arns_by_service))
        extra = sorted(set(role_arns_by_service) - set(publishers))
        if missing or extra:
            raise ValueError(
                "EventBus.allow_publishers: pass one task role per publishing service "
                f"({', '.join(sorted(publishers))}); missing: {missing or 'none'}, not publishers: {extra or 'none'}"
            )
        services = sorted(publishers)

        def render(values: list[Any]) -> str:
            bus_arn, *roles = values
            return publisher_policy(bus_arn, {s: (r, publishers[s]) for s, r in zip(services, roles, strict=True)})

        return aws.cloudwatch.EventBusPolicy(
            f"{self._name}-bus-policy",
            event_bus_name=self.bus_name,
            policy=pulumi.Output.all(self.bus_arn, *(role_arns_by_service[s] for s in services)).apply(render),
            opts=self._child(),
        )

    # --- resources ----------------------------------------------------------------------------

    def _child(self) -> pulumi.ResourceOptions:
        return pulumi.ResourceOptions(parent=self)

    def _once(self, what: str) -> None:
        if what in self._done:
            raise ValueError(f"EventBus {self._name}: {what} was already declared")
        self._done.add(what)

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
        tags = {**self._args.tags, **extra.pop("tags", {})}
        return aws.sqs.Queue(
            name,
            kms_master_key_id=self._args.kms_key_arn,
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
            kms_key_identifier=args.kms_key_arn,
            dead_letter_config=aws.cloudwatch.EventBusDeadLetterConfigArgs(arn=self._targets_dlq.arn),
            tags=args.tags,
            opts=self._child(),
        )
        self.bus_arn = bus.arn
        self.bus_name = bus.name
        rules_arn = pulumi.Output.concat(
            f"arn:{args.partition}:events:{args.region}:{args.account_id}:rule/", bus.name, "/*"
        )
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
            kms_key_identifier=args.kms_key_arn,
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
            tags={**self._args.tags, "Service": route.consumer},
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

    def _create_topic(self) -> None:
        self._topic = aws.sns.Topic(
            f"{self._name}-notifications",
            display_name="Platform notifications",
            kms_master_key_id=self._args.kms_key_arn,
            tags=self._args.tags,
            opts=self._child(),
        )
        self.topic_arn = self._topic.arn


# --- versioned event contracts ------------------------------------------------------------------

DRAFT_2020_12 = "https://json-schema.org/draft/2020-12/schema"
DRAFT_04 = "http://json-schema.org/draft-04/schema#"
_SCHEMA_FILE = re.compile(r"^v([1-9][0-9]*)\.json$")
_SCHEMA_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9.@_-]{0,384}$")

# Keywords with the same meaning in draft 2020-12 and draft-04 (copied as they are).
_SAME_IN_DRAFT4 = frozenset(
    {
        "type",
        "enum",
        "required",
        "minItems",
        "maxItems",
        "minLength",
        "maxLength",
        "pattern",
        "format",
        "minimum",
        "maximum",
        "title",
        "description",
        "default",
    }
)
_DROPPED = frozenset({"$comment", "examples"})
"""Annotations draft-04 does not know; dropping them changes no verdict."""


def to_draft4(schema: Mapping[str, Any]) -> dict[str, Any]:
    """Convert a draft 2020-12 contract to JSON Schema draft-04, the newest dialect EventBridge's schema
    registry accepts (`JSONSchemaDraft4`; the other type is `OpenApi3`).

    The contracts only use keywords with a direct draft-04 equivalent: `$id` -> `id`, `$defs` ->
    `definitions` (and `$ref`s to them), `const: x` -> `enum: [x]`, numeric `exclusiveMinimum/Maximum`
    -> `minimum/maximum` + boolean flag, boolean schemas -> `{}` / `{"not": {}}`, and a `$ref` with
    sibling assertions -> `allOf` (draft-04 ignores siblings of `$ref`). Any other keyword raises, so
    a contract can never be registered with a silently weaker meaning. One known difference remains:
    draft-04 validators treat 1.0 as not an `integer` (2020-12 does); the registry documents the
    contract, the handler's validator enforces it.
    """
    if schema.get("$schema") != DRAFT_2020_12:
        raise ValueError(f"expected a draft 2020-12 schema ($schema {DRAFT_2020_12!r}), got {schema.get('$schema')!r}")
    converted = _convert(schema, "#")
    assert isinstance(converted, dict)
    return {"$schema": DRAFT_04, **converted}


def _convert(node: Any, where: str) -> Any:
    if node is True:
        return {}
    if node is False:
        return {"not": {}}
    if not isinstance(node, Mapping):
        raise ValueError(f"{where}: a schema must be an object or a boolean")
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key == "$schema" or key in _DROPPED:
            continue
        if key == "$id":
            out["id"] = value
        elif key == "$defs":
            out["definitions"] = {k: _convert(v, f"{where}/$defs/{k}") for k, v in value.items()}
        elif key == "$ref":
            if not isinstance(value, str) or not value.startswith("#/$defs/"):
                raise ValueError(f"{where}: only local $refs to #/$defs/... can be converted, got {value!r}")
            out["$ref"] = "#/definitions/" + value.removeprefix("#/$defs/")
        elif key == "const":
            if "enum" in node:
                raise ValueError(f"{where}: both const and enum; merge them into one")
            out["enum"] = [value]
        elif key == "properties":
            out["properties"] = {k: _convert(v, f"{where}/properties/{k}") for k, v in value.items()}
        elif key in ("items", "additionalProperties"):
            if key == "items" and not isinstance(value, Mapping | bool):
                raise ValueError(f"{where}: tuple-form items has no draft-04 equivalent here")
            out[key] = value if key == "additionalProperties" and isinstance(value, bool) else _convert(value, where)
        elif key in ("exclusiveMinimum", "exclusiveMaximum"):
            bound = "minimum" if key == "exclusiveMinimum" else "maximum"
            other = node.get(bound)
            tighter = other is None or (value >= other if bound == "minimum" else value <= other)
            if tighter:
                out[bound] = value
                out[key] = True
        elif key == "required":
            if value:  # draft-04 requires at least one element
                out[key] = list(value)
        elif key in _SAME_IN_DRAFT4:
            if key in ("minimum", "maximum") and key in out:
                continue  # already set by a tighter exclusive bound
            out[key] = value
        else:
            raise ValueError(f"{where}: keyword {key!r} has no JSON Schema draft-04 equivalent in this converter")
    if "$ref" in out and any(k not in ("$ref", "title", "description", "default") for k in out):
        ref = {"$ref": out.pop("$ref")}
        annotations = {k: out.pop(k) for k in ("title", "description", "default") if k in out}
        return {**annotations, "allOf": [ref, out]}
    return out


@dataclass(frozen=True)
class Contract:
    detail_type: str
    version: int
    source: str
    path: Path

    @property
    def schema_name(self) -> str:
        """Registry name `<source>@<DetailType>-v<N>`, e.g. `microservices.order@OrderPlaced-v2`."""
        return f"{self.source}@{self.detail_type}-v{self.version}"


def discover_contracts(schema_dir: Path, catalog: Sequence[ServiceSpec]) -> list[Contract]:
    """Every `<DetailType>/v<N>.json` under `schema_dir`, with the source of the service publishing it.

    A contract whose detail-type no spec publishes is an error (a stale file or a typo), as is a
    detail-type published by two services (the registry name would be ambiguous).
    """
    publishers: dict[str, list[str]] = {}
    for spec in catalog:
        for detail_type in spec.publishes:
            publishers.setdefault(detail_type, []).append(spec.event_source)
    contracts = []
    for type_dir in sorted(p for p in schema_dir.iterdir() if p.is_dir()):
        for path in sorted(type_dir.iterdir()):
            match = _SCHEMA_FILE.match(path.name)
            if not match:
                continue
            sources = publishers.get(type_dir.name, [])
            if len(sources) != 1:
                who = "no service publishes it" if not sources else f"published by {', '.join(sources)}"
                raise ConfigError(f"event contract {path}: detail-type {type_dir.name!r} needs one publisher; {who}")
            contract = Contract(type_dir.name, int(match.group(1)), sources[0], path)
            if not _SCHEMA_NAME.match(contract.schema_name):
                raise ConfigError(f"event contract {path}: {contract.schema_name!r} is not a valid schema name")
            contracts.append(contract)
    return sorted(contracts, key=lambda c: (c.detail_type, c.version))


@dataclass(frozen=True)
class EventSchemaRegistryArgs:
    schema_dir: Path
    catalog: Sequence[ServiceSpec]
    tags: dict[str, str]


class EventSchemaRegistry(pulumi.ComponentResource):
    """An EventBridge schema registry with one schema per contract type AND version (each version is
    its own schema, not a registry revision of one schema, so v1 and v2 stay visible side by side
    while producers emit both)."""

    registry_name: pulumi.Output[str]
    schema_names: list[str]

    def __init__(self, name: str, args: EventSchemaRegistryArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("microservices:events:EventSchemaRegistry", name, None, opts)
        contracts = discover_contracts(args.schema_dir, args.catalog)
        registry = aws.schemas.Registry(
            f"{name}-registry",
            description="Versioned contracts of the platform's domain events (EventBridge detail)",
            tags=args.tags,
            opts=pulumi.ResourceOptions(parent=self),
        )
        for contract in contracts:
            document = json.loads(contract.path.read_text(encoding="utf-8"))
            aws.schemas.Schema(
                f"{name}-{contract.detail_type}-v{contract.version}",
                name=contract.schema_name,
                registry_name=registry.name,
                type="JSONSchemaDraft4",
                content=json.dumps(to_draft4(document), sort_keys=True),
                description=str(document.get("description") or document.get("title") or "")[:256],
                tags=args.tags,
                opts=pulumi.ResourceOptions(parent=self),
            )
        self.registry_name = registry.name
        self.schema_names = [c.schema_name for c in contracts]
        self.register_outputs({"registryName": self.registry_name, "schemaNames": self.schema_names})
