"""The seed's data patterns, declared from the service specs (`model/spec.py`):

* `saga.py`: `Saga` (a Step Functions Standard workflow per `ServiceSpec.sagas` entry, owned by the
  orchestrating service) and `SagaParticipant` (each participant's own command queue and its
  SendTask* grant on exactly that state machine);
* `outbox.py`: `Outbox` (a service's event-store table stream -> EventBridge Pipe -> the bus);
* `readmodel.py`: `ReadModel` (a CQRS read model: bus rule -> own queue + DLQ -> projection Lambda
  -> a table the service owns).

Every component here is declared as a CHILD of the owning service's `FargateMicroservice`, so the
policy pack's ownership rules (`no-shared-databases`) see the new tables, roles and grants as the
owner's, exactly like the stores the service declares itself.

What the three share is declared here, once, beside `PatternContext`: `logged_role` (a log group
encrypted with the platform key + a role one service may assume), `encrypted_log_group`,
`dead_letter_queue`, `queue_with_dlq` (encrypted, TLS-only, redrive allowed from its queue only)
and `tls_only` (a queue policy that only denies requests without TLS).
They declare under the names the components always used (`{name}-logs`, `{name}-role`, `{name}-dlq`,
...), so the URNs did not change when they moved here.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from components.context import PlatformContext
from components.iam import deny_insecure_transport

DLQ_RETENTION_SECONDS = 14 * 24 * 3600
"""Every pattern DLQ keeps a message 14 days (SQS's maximum): time to look and redrive."""
MAX_RECEIVE_COUNT = 5
"""Receives before SQS moves a message of a pattern queue to its DLQ."""


@dataclass(frozen=True)
class PatternContext:
    """The platform's `PlatformContext` (the one object of shared facts) plus the three settings every
    pattern component needs from the stack config; the facts are read through, never copied."""

    platform: PlatformContext
    log_retention_days: int
    tracing: bool
    alarm_topic_arn: pulumi.Input[str] | None = None

    @property
    def prefix(self) -> str:
        """Environment prefix of physical names (`ms-dev`)."""
        return self.platform.prefix

    @property
    def environment(self) -> str:
        return self.platform.environment

    @property
    def account_id(self) -> str:
        return self.platform.account_id

    @property
    def region(self) -> str:
        return self.platform.region

    @property
    def partition(self) -> str:
        return self.platform.partition

    @property
    def kms_key_arn(self) -> pulumi.Input[str]:
        return self.platform.key_arn

    @property
    def tags(self) -> Mapping[str, str]:
        return self.platform.tags

    def arn(self, service: str, resource: str) -> str:
        return self.platform.arn(service, resource)

    def queue_url(self, queue_name: str) -> str:
        return f"https://sqs.{self.region}.amazonaws.com/{self.account_id}/{queue_name}"


def encrypted_log_group(
    ctx: PatternContext, resource_name: str, *, log_group_name: str, tags: Mapping[str, str], parent: pulumi.Resource
) -> aws.cloudwatch.LogGroup:
    """A log group of a pattern component: encrypted with the platform key, kept for the stack's
    retention, declared as a child of `parent`."""
    return aws.cloudwatch.LogGroup(
        resource_name,
        name=log_group_name,
        retention_in_days=ctx.log_retention_days,
        kms_key_id=ctx.kms_key_arn,
        tags=dict(tags),
        opts=pulumi.ResourceOptions(parent=parent),
    )


def logged_role(
    ctx: PatternContext,
    name: str,
    *,
    log_group_name: str,
    trusted_service: str,
    description: str,
    tags: Mapping[str, str],
    parent: pulumi.Resource,
) -> tuple[aws.cloudwatch.LogGroup, aws.iam.Role]:
    """What runs inside a pattern component (a workflow, a projection) gets its own log group
    (`{name}-logs`, see `encrypted_log_group`) and its own role (`{name}-role`) that only
    `trusted_service` may assume; the caller grants the role exactly what it needs."""
    log_group = encrypted_log_group(ctx, f"{name}-logs", log_group_name=log_group_name, tags=tags, parent=parent)
    role = aws.iam.Role(
        f"{name}-role",
        description=description,
        assume_role_policy=ctx.platform.trust_policy(trusted_service),
        tags=dict(tags),
        opts=pulumi.ResourceOptions(parent=parent),
    )
    return log_group, role


def tls_only_queue_policy(queue_arn: str) -> dict[str, Any]:
    """A queue policy that only refuses requests not made over TLS (callers add their own statements)."""
    return {"Version": "2012-10-17", "Statement": [deny_insecure_transport(queue_arn, "sqs:*")]}


def tls_only(resource_name: str, queue: aws.sqs.Queue, *, parent: pulumi.Resource) -> aws.sqs.QueuePolicy:
    """The queue's policy when nobody but its owner's roles uses it: TLS only (`tls_only_queue_policy`)."""
    return aws.sqs.QueuePolicy(
        resource_name,
        queue_url=queue.url,
        policy=queue.arn.apply(lambda arn: json.dumps(tls_only_queue_policy(arn))),
        opts=pulumi.ResourceOptions(parent=parent),
    )


def dead_letter_queue(
    ctx: PatternContext, name: str, *, queue_name: str | None, tags: Mapping[str, str], parent: pulumi.Resource
) -> aws.sqs.Queue:
    """`{name}-dlq`: encrypted with the platform key, kept DLQ_RETENTION_SECONDS, TLS only
    (`{name}-dlq-policy`). `queue_name` None lets Pulumi name it."""
    child = pulumi.ResourceOptions(parent=parent)
    dlq = aws.sqs.Queue(
        f"{name}-dlq",
        name=queue_name,
        kms_master_key_id=ctx.kms_key_arn,
        message_retention_seconds=DLQ_RETENTION_SECONDS,
        tags={**tags, "QueueRole": "dead-letter"},
        opts=child,
    )
    tls_only(f"{name}-dlq-policy", dlq, parent=parent)
    return dlq


def queue_with_dlq(
    ctx: PatternContext,
    name: str,
    *,
    queue_name: str | None,
    retention_seconds: int,
    visibility_timeout_seconds: int,
    tags: Mapping[str, str],
    queue_tags: Mapping[str, str],
    parent: pulumi.Resource,
) -> tuple[aws.sqs.Queue, aws.sqs.Queue]:
    """(queue, DLQ): `{name}-queue` (encrypted, redriven to its DLQ after MAX_RECEIVE_COUNT receives,
    tagged `tags` + `queue_tags`), its `dead_letter_queue` (named `<queue_name>-dlq`) and
    `{name}-dlq-redrive-allow` (only this queue may use that DLQ). The queue's own policy is the
    caller's: who may send to it differs."""
    child = pulumi.ResourceOptions(parent=parent)
    dlq = dead_letter_queue(
        ctx, name, queue_name=None if queue_name is None else f"{queue_name}-dlq", tags=tags, parent=parent
    )
    queue = aws.sqs.Queue(
        f"{name}-queue",
        name=queue_name,
        kms_master_key_id=ctx.kms_key_arn,
        message_retention_seconds=retention_seconds,
        visibility_timeout_seconds=visibility_timeout_seconds,
        redrive_policy=dlq.arn.apply(
            lambda arn: json.dumps({"deadLetterTargetArn": arn, "maxReceiveCount": MAX_RECEIVE_COUNT})
        ),
        tags={**tags, **queue_tags},
        opts=child,
    )
    aws.sqs.RedriveAllowPolicy(
        f"{name}-dlq-redrive-allow",
        queue_url=dlq.url,
        redrive_allow_policy=queue.arn.apply(
            lambda arn: json.dumps({"redrivePermission": "byQueue", "sourceQueueArns": [arn]})
        ),
        opts=child,
    )
    return queue, dlq
