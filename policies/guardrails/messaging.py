"""SQS, SNS and EventBridge: encryption, dead-letter queues, TLS-only and non-public resource policies."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from .core import (
    Config,
    Deferred,
    EnforcementLevel,
    Finding,
    InvalidJson,
    Resource,
    ResourceRule,
    Severity,
    StackResource,
    StackRule,
    json_value,
    known,
    mapping,
    number,
    of_types,
    property_deps,
    truthy,
    wildcard_match,
)
from .documents import InvalidPolicyDocument, Statement, action_matches, condition_is_false, parse_policy

QUEUE = "aws:sqs/queue:Queue"
QUEUE_POLICY = "aws:sqs/queuePolicy:QueuePolicy"
TOPIC = "aws:sns/topic:Topic"
TOPIC_POLICY = "aws:sns/topicPolicy:TopicPolicy"
EVENT_BUS_POLICY = "aws:cloudwatch/eventBusPolicy:EventBusPolicy"
EVENT_PERMISSION = "aws:cloudwatch/eventPermission:EventPermission"


# --- SQS encryption -------------------------------------------------------------------------------
def check_queue_encrypted(resource: Resource, config: Config) -> Iterator[str]:
    props = resource.props
    if props.get("kmsMasterKeyId"):
        return
    if config.get("requireKms"):
        yield f"SQS queue '{resource.name}' is not encrypted with a KMS key (kmsMasterKeyId)."
    elif not truthy(props.get("sqsManagedSseEnabled")):
        yield (
            f"SQS queue '{resource.name}' does not declare server-side encryption "
            "(kmsMasterKeyId, or sqsManagedSseEnabled: true)."
        )


SQS_QUEUE_ENCRYPTED = ResourceRule(
    name="sqs-queue-encrypted",
    description="SQS queues use server-side encryption (SSE-KMS, or SSE-SQS unless KMS is required).",
    severity=Severity.HIGH,
    enforcement=EnforcementLevel.MANDATORY,
    remediation="Set kmsMasterKeyId to the environment's KMS key (or sqsManagedSseEnabled: true).",
    config_schema={
        "requireKms": {
            "type": "boolean",
            "default": False,
            "description": "Require SSE-KMS (kmsMasterKeyId); SSE-SQS is then not enough.",
        }
    },
    applies=of_types(QUEUE),
    check=check_queue_encrypted,
)


# --- SQS dead-letter queues -----------------------------------------------------------------------
def _dlq_name(suffix: str) -> re.Pattern[str]:
    # `orders-dlq`, `orders-dlq.fifo`, and Pulumi's auto-name `orders-dlq-1a2b3c4`.
    return re.compile(rf"{re.escape(suffix)}(-[0-9a-f]{{7}})?(\.fifo)?$")


def is_dead_letter_queue(resource: Resource, config: Config) -> bool:
    """A queue is a DLQ when its resource or queue name ends with a DLQ suffix (`-dlq` by default), or
    when it declares a `redriveAllowPolicy` (which only a DLQ needs)."""
    props = resource.props
    if props.get("redriveAllowPolicy"):
        return True
    names = [resource.name, known(props, "name")]
    suffixes = [str(s) for s in config.get("deadLetterQueueSuffixes") or ()]
    return any(isinstance(n, str) and _dlq_name(s).search(n) for n in names for s in suffixes)


def check_queue_dlq(resource: Resource, config: Config) -> Iterator[str]:
    if is_dead_letter_queue(resource, config):
        return
    raw = resource.props.get("redrivePolicy")
    if not raw:
        yield (
            f"SQS queue '{resource.name}' has no dead-letter queue (redrivePolicy with deadLetterTargetArn and "
            "maxReceiveCount); if it is a dead-letter queue itself, name it '*-dlq'."
        )
        return
    try:
        policy = mapping(json_value(raw))
    except InvalidJson as error:
        yield f"SQS queue '{resource.name}' has a redrivePolicy that is not valid JSON ({error})."
        return
    receives = number(policy.get("maxReceiveCount"))
    if not policy.get("deadLetterTargetArn") or receives is None or receives < 1:
        yield (
            f"SQS queue '{resource.name}' has an incomplete redrivePolicy: it needs deadLetterTargetArn and "
            "maxReceiveCount >= 1."
        )


SQS_QUEUE_DEAD_LETTER_QUEUE = ResourceRule(
    name="sqs-queue-dead-letter-queue",
    description="Every SQS queue that is not itself a dead-letter queue redrives failed messages to one.",
    severity=Severity.MEDIUM,
    enforcement=EnforcementLevel.MANDATORY,
    remediation=(
        "Create '<queue>-dlq' (with a redriveAllowPolicy naming the source queue) and set the source queue's "
        'redrivePolicy to {"deadLetterTargetArn": <dlq arn>, "maxReceiveCount": 5}.'
    ),
    config_schema={
        "deadLetterQueueSuffixes": {
            "type": "array",
            "items": {"type": "string"},
            "default": ["-dlq"],
            "description": "Name suffixes that mark a queue as a dead-letter queue (exempt from needing one).",
        }
    },
    applies=of_types(QUEUE),
    check=check_queue_dlq,
)


# --- TLS-only resource policies (stack) -----------------------------------------------------------
def denies_insecure_transport(document: Any, action: str, arn: str | None = None) -> bool:
    """Does the policy deny `action` to everyone when aws:SecureTransport is false, on a Resource that
    covers `arn` (the queue's or topic's own ARN, when known)?"""
    try:
        statements = parse_policy(document)
    except (InvalidPolicyDocument, InvalidJson):
        return False
    return any(_tls_only(s, action, arn) for s in statements)


def _tls_only(statement: Statement, action: str, arn: str | None) -> bool:
    return (
        statement.effect == "Deny"
        and statement.any_principal()
        and any(action_matches(a, action) for a in statement.actions)
        and condition_is_false(statement, "aws:SecureTransport")
        and (arn is None or any(wildcard_match(p, arn) for p in statement.resource_patterns()))
    )


def _policies_of(
    target: StackResource, policies: Sequence[StackResource], link: str, outputs: tuple[str, ...]
) -> Iterator[Any]:
    """The documents that govern `target`: its inline `policy`, and the policy resources linked to it by
    `link` (a dependency, or the same literal value as one of the target's `outputs`)."""
    if target.props.get("policy"):
        yield target.props["policy"]
    values = {v for v in (known(target.props, o) for o in outputs) if isinstance(v, str)}
    for policy in policies:
        linked = any(d.urn == target.urn for d in property_deps(policy, link)) or known(policy.props, link) in values
        if linked and policy.props.get("policy"):
            yield policy.props["policy"]


def _require_tls(
    kind: str,
    target: StackResource,
    policies: Sequence[StackResource],
    link: str,
    outputs: tuple[str, ...],
    action: str,
) -> Iterator[Finding]:
    arn = known(target.props, "arn")
    arn = arn if isinstance(arn, str) and arn else None
    if not any(denies_insecure_transport(d, action, arn) for d in _policies_of(target, policies, link, outputs)):
        yield Finding(
            f"{kind} '{target.name}' has no resource policy denying requests without TLS on its own ARN (a Deny "
            f"statement for Principal '*' on {action} with Condition Bool aws:SecureTransport = false and Resource "
            f"{arn or 'its ARN'}).",
            target.urn,
        )


def check_tls_only(resources: Sequence[StackResource], _config: Config) -> Iterator[Finding]:
    queue_policies = [r for r in resources if r.resource_type == QUEUE_POLICY]
    topic_policies = [r for r in resources if r.resource_type == TOPIC_POLICY]
    deferred = Deferred()
    yield from deferred.each(
        (r for r in resources if r.resource_type == QUEUE),
        lambda q: _require_tls("SQS queue", q, queue_policies, "queueUrl", ("url", "id"), "sqs:SendMessage"),
    )
    yield from deferred.each(
        (r for r in resources if r.resource_type == TOPIC),
        lambda t: _require_tls("SNS topic", t, topic_policies, "arn", ("arn",), "sns:Publish"),
    )
    deferred.finish()


SQS_SNS_TLS_ONLY = StackRule(
    name="sqs-sns-tls-only",
    description="SQS queues and SNS topics have a resource policy that denies requests not made over TLS.",
    severity=Severity.HIGH,
    enforcement=EnforcementLevel.MANDATORY,
    remediation=(
        "Attach an aws.sqs.QueuePolicy / aws.sns.TopicPolicy (or the inline `policy`) with "
        '{"Effect": "Deny", "Principal": "*", "Action": "sqs:*" (or "sns:Publish"), "Resource": <arn>, '
        '"Condition": {"Bool": {"aws:SecureTransport": "false"}}}.'
    ),
    check=check_tls_only,
)


# --- SNS encryption -------------------------------------------------------------------------------
def check_topic_encrypted(resource: Resource, _config: Config) -> Iterator[str]:
    if not resource.props.get("kmsMasterKeyId"):
        yield f"SNS topic '{resource.name}' is not encrypted with KMS (kmsMasterKeyId)."


SNS_TOPIC_ENCRYPTED = ResourceRule(
    name="sns-topic-encrypted",
    description="SNS topics use server-side encryption with KMS.",
    severity=Severity.HIGH,
    enforcement=EnforcementLevel.MANDATORY,
    remediation="Set kmsMasterKeyId to the environment's KMS key (its key policy must let publishers use it).",
    applies=of_types(TOPIC),
    check=check_topic_encrypted,
)


# --- EventBridge ----------------------------------------------------------------------------------
RESTRICTING_CONDITION_KEYS = ("aws:principalorgid", "aws:sourceaccount", "aws:principalaccount", "aws:sourcearn")


def _restricted(condition: Mapping[str, Any]) -> bool:
    return any(key.lower() in RESTRICTING_CONDITION_KEYS for block in condition.values() for key in mapping(block))


def check_event_bus_public(resource: Resource, _config: Config) -> Iterator[str]:
    props = resource.props
    if resource.resource_type == EVENT_PERMISSION:
        if props.get("principal") == "*" and not mapping(props.get("condition")):
            yield f"event permission '{resource.name}' lets any AWS account put events on the bus (principal '*')."
        return
    try:
        statements = parse_policy(props.get("policy"))
    except (InvalidPolicyDocument, InvalidJson) as error:
        yield f"event bus policy '{resource.name}' {error}."
        return
    for statement in statements:
        if statement.allows and statement.any_principal() and not _restricted(statement.condition):
            yield (
                f"event bus policy '{resource.name}' allows {', '.join(statement.actions) or 'actions'} to any "
                "principal ('*') without an aws:PrincipalOrgID / aws:SourceAccount condition."
            )


EVENTBRIDGE_BUS_NOT_PUBLIC = ResourceRule(
    name="eventbridge-bus-not-public",
    description="EventBridge event bus policies do not open the bus to every principal.",
    severity=Severity.CRITICAL,
    enforcement=EnforcementLevel.MANDATORY,
    remediation=(
        "Name the allowed accounts or services as principals, or add a Condition on aws:PrincipalOrgID "
        "(or aws:SourceAccount) to statements with Principal '*'."
    ),
    applies=of_types(EVENT_BUS_POLICY, EVENT_PERMISSION),
    check=check_event_bus_public,
)

RULES = [
    SQS_QUEUE_ENCRYPTED,
    SQS_QUEUE_DEAD_LETTER_QUEUE,
    SQS_SNS_TLS_ONLY,
    SNS_TOPIC_ENCRYPTED,
    EVENTBRIDGE_BUS_NOT_PUBLIC,
]
