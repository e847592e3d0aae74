"""Every IAM document the components write starts here: trust policies, TLS-only denies, Sids, and
identity-policy statements.

* `trust_policy(service, ...)`: the ONE way a role trusts an AWS service. Conditions against the
  confused deputy (`aws:SourceAccount`, `aws:SourceArn`) are added for every service principal whose
  documentation supports them in a role trust policy (`TRUSTED_SERVICES`, with the source of each);
  an unknown service principal is an error, so a new role cannot silently skip the table.
* `deny_insecure_transport(resources, action)`: the statement AWS recommends on every queue, topic
  and bucket policy (refuse any request not made over TLS).
* `sid(*parts)`: an alphanumeric statement id from names (`"order-history"` -> `"OrderHistory"`).
* `allow(...)` / `policy_document(...)`: identity-policy statements whose resources are Outputs.

Statements are plain dicts in IAM's own JSON shape whose `Resource` values may be Pulumi Inputs (an ARN
another resource will only know at deploy time). `policy_document()` resolves them all and renders a
deterministic JSON document (statements keep their order, action and resource lists are sorted and
de-duplicated), so a re-run never shows a spurious diff.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import pulumi

Statement = Mapping[str, Any]
"""One IAM statement: `Sid`, `Effect` (default Allow), `Action`, `Resource`, optional `Condition`."""


def allow(
    sid: str,
    actions: Sequence[str],
    resources: Sequence[pulumi.Input[str]],
    condition: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """An Allow statement; `resources` may hold Outputs."""
    statement: dict[str, Any] = {"Sid": sid, "Effect": "Allow", "Action": list(actions), "Resource": list(resources)}
    if condition:
        statement["Condition"] = dict(condition)
    return statement


def kms_via(region: str, *services: str) -> dict[str, Any]:
    """The condition that limits a KMS grant to calls made on the caller's behalf by `services` in
    `region` (`kms:ViaService`, e.g. `sqs.us-east-1.amazonaws.com`): the key is usable through those
    services only, never directly. AWS KMS developer guide, "AWS KMS condition keys", kms:ViaService."""
    endpoints = [f"{service}.{region}.amazonaws.com" for service in services]
    return {"StringEquals": {"kms:ViaService": endpoints[0] if len(endpoints) == 1 else endpoints}}


def _render(statements: Sequence[Mapping[str, Any]]) -> str:
    rendered = []
    for statement in statements:
        out = dict(statement)
        out.setdefault("Effect", "Allow")
        for key in ("Action", "Resource"):
            value = out.get(key)
            if isinstance(value, list | tuple):
                out[key] = sorted({str(v) for v in value})
        rendered.append(out)
    return json.dumps({"Version": "2012-10-17", "Statement": rendered}, sort_keys=True)


def policy_document(statements: Sequence[Statement]) -> pulumi.Output[str]:
    """The JSON policy document for `statements`, once every Input inside them is known."""
    return pulumi.Output.from_input([dict(s) for s in statements]).apply(_render)


def sid(*parts: str) -> str:
    """An alphanumeric policy statement id (`sid("Own", "orders-table")` -> `OwnOrdersTable`).

    IAM Sids allow only ASCII letters and digits; each word keeps its case after its first letter,
    so `sid("DenyForeignSource", "order")` is `DenyForeignSourceOrder`."""
    return "".join(word[0].upper() + word[1:] for part in parts for word in re.split(r"[^A-Za-z0-9]+", part) if word)


def deny_insecure_transport(resources: str | Sequence[str], action: str) -> dict[str, Any]:
    """The statement AWS recommends on every queue, topic and bucket: refuse any request not made over
    TLS (`aws:SecureTransport` false). `resources`: one ARN, or a list (a bucket and its objects)."""
    return {
        "Sid": "DenyInsecureTransport",
        "Effect": "Deny",
        "Principal": "*",
        "Action": action,
        "Resource": resources if isinstance(resources, str) else list(resources),
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
    }


@dataclass(frozen=True)
class TrustedService:
    """How a role trusting `principal` is guarded against the confused deputy."""

    source_arn: str | None
    """`aws:SourceArn` pattern (ArnLike) with `{partition}`, `{region}`, `{account}` placeholders; None when
    the service does not document source conditions on the roles it assumes (only the principal then)."""
    source_account: bool
    """Whether `aws:SourceAccount` is documented for it (StringEquals the role's own account)."""
    reference: str
    """Where AWS documents this."""


TRUSTED_SERVICES: Final[Mapping[str, TrustedService]] = {
    "ecs-tasks.amazonaws.com": TrustedService(
        source_arn="arn:{partition}:ecs:{region}:{account}:*",
        source_account=True,
        reference="https://docs.aws.amazon.com/AmazonECS/latest/developerguide/task-iam-roles.html "
        "(task role trust policy: aws:SourceArn arn:aws:ecs:region:account:* and aws:SourceAccount)",
    ),
    "vpc-flow-logs.amazonaws.com": TrustedService(
        source_arn="arn:{partition}:ec2:{region}:{account}:vpc-flow-log/*",
        source_account=True,
        reference="https://docs.aws.amazon.com/vpc/latest/userguide/flow-logs-iam-role.html "
        "(aws:SourceAccount the flow log owner, aws:SourceArn the flow log ARN or vpc-flow-log/*)",
    ),
    "lambda.amazonaws.com": TrustedService(
        source_arn=None,
        source_account=False,
        reference="https://docs.aws.amazon.com/lambda/latest/dg/lambda-intro-execution-role.html "
        "(the execution role trusts the Lambda principal; Lambda documents aws:SourceArn only for "
        "resource-based policies where the function is the target, and lambda:SourceFunctionArn for "
        "identity policies: no condition is documented for the role's trust policy, so none is added)",
    ),
    "states.amazonaws.com": TrustedService(
        source_arn="arn:{partition}:states:{region}:{account}:stateMachine:*",
        source_account=True,
        reference="https://docs.aws.amazon.com/step-functions/latest/dg/procedure-create-iam-role.html "
        "(confused deputy prevention: aws:SourceArn the state machine ARN, aws:SourceAccount)",
    ),
    "pipes.amazonaws.com": TrustedService(
        source_arn="arn:{partition}:pipes:{region}:{account}:pipe/*",
        source_account=True,
        reference="https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-pipes-permissions.html "
        "(execution role trust policy: aws:SourceAccount and aws:SourceArn the pipe ARN)",
    ),
    "ecs.amazonaws.com": TrustedService(
        source_arn=None,
        source_account=False,
        reference="https://docs.aws.amazon.com/AmazonECS/latest/developerguide/AmazonECSInfrastructureRolePolicyForLoadBalancers.html "
        "(the infrastructure role for load balancers used by blue/green, linear and canary deployments: the guide's "
        "trust policy has no condition, so none is added)",
    ),
    "codedeploy.amazonaws.com": TrustedService(
        source_arn=None,
        source_account=False,
        reference="https://docs.aws.amazon.com/codedeploy/latest/userguide/getting-started-create-service-role.html "
        "(the CodeDeploy service role trusts codedeploy.amazonaws.com; no condition is documented for it)",
    ),
}
"""Every AWS service principal a role of the platform trusts, with the confused-deputy conditions AWS
documents for it. `trust_policy` refuses any other principal until it is added here with its source."""


def trust_policy(service: str, *, account_id: str, region: str, partition: str) -> str:
    """The trust policy of a role assumed by AWS service `service` (one of `TRUSTED_SERVICES`), with
    `aws:SourceAccount` / `aws:SourceArn` conditions wherever that service supports them."""
    if service not in TRUSTED_SERVICES:
        raise ValueError(
            f"trust_policy: service principal {service!r} is not in components.iam.TRUSTED_SERVICES; "
            f"known: {', '.join(sorted(TRUSTED_SERVICES))} (add it with the conditions AWS documents for it)"
        )
    trusted = TRUSTED_SERVICES[service]
    condition: dict[str, Any] = {}
    if trusted.source_account:
        condition["StringEquals"] = {"aws:SourceAccount": account_id}
    if trusted.source_arn is not None:
        arn = trusted.source_arn.format(partition=partition, region=region, account=account_id)
        condition["ArnLike"] = {"aws:SourceArn": arn}
    statement: dict[str, Any] = {"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}
    if condition:
        statement["Condition"] = condition
    return json.dumps({"Version": "2012-10-17", "Statement": [statement]}, sort_keys=True)
