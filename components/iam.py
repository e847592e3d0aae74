"""IAM policy-document helpers shared by the components.

Statements are plain dicts in IAM's own JSON shape whose `Resource` values may be Pulumi Inputs (an ARN
another resource will only know at deploy time). `policy_document()` resolves them all and renders a
deterministic JSON document (statements keep their order, action and resource lists are sorted and
de-duplicated), so a re-run never shows a spurious diff.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

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


def service_assume_role_policy(service: str, *, account_id: str, source_arn_like: str | None = None) -> str:
    """Trust policy for an AWS service principal, limited to this account (confused-deputy guard)."""
    condition: dict[str, Any] = {"StringEquals": {"aws:SourceAccount": account_id}}
    if source_arn_like:
        condition["ArnLike"] = {"aws:SourceArn": source_arn_like}
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"Service": service},
                    "Action": "sts:AssumeRole",
                    "Condition": condition,
                }
            ],
        },
        sort_keys=True,
    )
