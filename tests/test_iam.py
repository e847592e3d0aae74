"""One IAM module: every trust policy, TLS-only deny and derived Sid of the program comes from
`components/iam.py`, and trust policies carry the confused-deputy conditions AWS documents."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from components.iam import TRUSTED_SERVICES, deny_insecure_transport, sid, trust_policy
from offline.mocks import ACCOUNT_ID
from offline.plan import Plan
from tests.conftest import ROOT

ROLE = "aws:iam/role:Role"


def test_trust_policy_for_ecs_tasks_names_the_account_and_its_ecs_resources() -> None:
    document = json.loads(
        trust_policy("ecs-tasks.amazonaws.com", account_id=ACCOUNT_ID, region="eu-west-1", partition="aws")
    )
    [statement] = document["Statement"]
    assert statement["Principal"] == {"Service": "ecs-tasks.amazonaws.com"}
    assert statement["Action"] == "sts:AssumeRole"
    assert statement["Condition"] == {
        "StringEquals": {"aws:SourceAccount": ACCOUNT_ID},
        "ArnLike": {"aws:SourceArn": f"arn:aws:ecs:eu-west-1:{ACCOUNT_ID}:*"},
    }


def test_trust_policy_for_flow_logs_names_the_accounts_flow_logs() -> None:
    document = json.loads(
        trust_policy("vpc-flow-logs.amazonaws.com", account_id=ACCOUNT_ID, region="us-east-1", partition="aws-cn")
    )
    assert document["Statement"][0]["Condition"]["ArnLike"] == {
        "aws:SourceArn": f"arn:aws-cn:ec2:us-east-1:{ACCOUNT_ID}:vpc-flow-log/*"
    }


def test_lambda_trust_policy_has_no_undocumented_condition() -> None:
    document = json.loads(
        trust_policy("lambda.amazonaws.com", account_id=ACCOUNT_ID, region="us-east-1", partition="aws")
    )
    assert "Condition" not in document["Statement"][0]


def test_an_unknown_service_principal_is_refused_with_the_known_ones() -> None:
    with pytest.raises(
        ValueError,
        match=r"'glue.amazonaws.com' is not in components.iam.TRUSTED_SERVICES; known: codedeploy.amazonaws.com, ecs-tasks",
    ):
        trust_policy("glue.amazonaws.com", account_id=ACCOUNT_ID, region="us-east-1", partition="aws")


def test_every_trusted_service_cites_its_source() -> None:
    for service, trusted in TRUSTED_SERVICES.items():
        assert trusted.reference.startswith("https://docs.aws.amazon.com/"), service


def test_sid_is_alphanumeric_and_keeps_inner_case() -> None:
    assert sid("Own", "orders-table", "Items") == "OwnOrdersTableItems"
    assert sid("DenyForeignSource", "order-history") == "DenyForeignSourceOrderHistory"
    assert re.fullmatch(r"[A-Za-z0-9]+", sid("a_b", "c.d", "e f"))


def test_deny_insecure_transport_accepts_one_or_several_resources() -> None:
    one = deny_insecure_transport("arn:aws:sqs:us-east-1:123456789012:q", "sqs:*")
    assert one["Resource"] == "arn:aws:sqs:us-east-1:123456789012:q"
    assert one["Effect"] == "Deny" and one["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    many = deny_insecure_transport(("arn:aws:s3:::b", "arn:aws:s3:::b/*"), "s3:*")
    assert many["Resource"] == ["arn:aws:s3:::b", "arn:aws:s3:::b/*"]


def test_every_role_of_every_stack_trusts_through_the_one_helper(stack_plan: Plan) -> None:
    account, region = ACCOUNT_ID, "us-east-1"
    roles = stack_plan.of_type(ROLE)
    assert roles
    for role in roles:
        document = json.loads(role.inputs["assumeRolePolicy"])
        [statement] = document["Statement"]
        service = statement["Principal"]["Service"]
        expected = json.loads(trust_policy(service, account_id=account, region=region, partition="aws"))
        assert document == expected, f"{role.urn}: trust policy not built by components.iam.trust_policy"


def test_no_component_writes_a_trust_policy_or_tls_deny_by_hand() -> None:
    """The literals that make a trust policy or a TLS-only deny appear in components/iam.py only."""
    offenders = []
    for path in sorted((ROOT / "components").glob("*.py")):
        if path.name == "iam.py":
            continue
        text = path.read_text(encoding="utf-8")
        for literal in ('"sts:AssumeRole"', '"aws:SecureTransport"', "def _sid("):
            if literal in text:
                offenders.append(f"{Path(path).relative_to(ROOT)}: {literal}")
    assert not offenders, offenders
