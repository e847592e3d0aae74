"""IAM permissions and Secrets Manager encryption."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from .core import (
    SECRET,
    Config,
    EnforcementLevel,
    InvalidJson,
    Resource,
    ResourceRule,
    Severity,
    as_list,
    mapping,
    of_types,
)
from .documents import InvalidPolicyDocument, action_matches, parse_policy

ROLE = "aws:iam/role:Role"
POLICY_DOCUMENT_TYPES = {
    "aws:iam/rolePolicy:RolePolicy": "role policy",
    "aws:iam/policy:Policy": "IAM policy",
    "aws:iam/userPolicy:UserPolicy": "user policy",
    "aws:iam/groupPolicy:GroupPolicy": "group policy",
}
ATTACHMENT_TYPES = {
    "aws:iam/rolePolicyAttachment:RolePolicyAttachment": "role policy attachment",
    "aws:iam/policyAttachment:PolicyAttachment": "policy attachment",
    "aws:iam/userPolicyAttachment:UserPolicyAttachment": "user policy attachment",
    "aws:iam/groupPolicyAttachment:GroupPolicyAttachment": "group policy attachment",
}

UNSCOPED_ACTIONS = [
    "xray:PutTraceSegments",
    "xray:PutTelemetryRecords",
    "xray:GetSamplingRules",
    "xray:GetSamplingTargets",
    "xray:GetSamplingStatisticSummaries",
    "ecr:GetAuthorizationToken",
    "ssmmessages:*",
    "logs:DescribeLogGroups",
    "cloudwatch:PutMetricData",
    "ec2:CreateNetworkInterface",
    "ec2:DescribeNetworkInterfaces",
    "ec2:DeleteNetworkInterface",
    "ec2:AssignPrivateIpAddresses",
    "ec2:UnassignPrivateIpAddresses",
    "servicediscovery:DiscoverInstances",
    "servicediscovery:DiscoverInstancesRevision",
    "elasticloadbalancing:DescribeListeners",
    "elasticloadbalancing:DescribeRules",
    "elasticloadbalancing:DescribeTargetGroups",
    "elasticloadbalancing:DescribeTargetHealth",
    # Vended log delivery (Step Functions, Pipes): the Service Authorization Reference lists no resource
    # type for these, and the Step Functions developer guide ("Using CloudWatch Logs to log execution
    # history") grants them on Resource '*'.
    "logs:CreateLogDelivery",
    "logs:DeleteLogDelivery",
    "logs:DescribeResourcePolicies",
    "logs:GetLogDelivery",
    "logs:ListLogDeliveries",
    "logs:PutResourcePolicy",
    "logs:UpdateLogDelivery",
]
"""Actions that need Resource '*': they support no resource-level permissions, or (logs:DescribeLogGroups,
ssmmessages:*) AWS's documented ECS Exec task-role policy grants them on '*'. Cloud Map's DiscoverInstances and
DiscoverInstancesRevision list no resource type in the Service Authorization Reference ("Actions, resources, and
condition keys for AWS Cloud Map"): they are scoped with the condition key servicediscovery:NamespaceName instead.
The four Elastic Load Balancing v2 Describe actions list no resource type either ("Actions, resources, and
condition keys for Elastic Load Balancing V2"); AWS's AmazonECSInfrastructureRolePolicyForLoadBalancers grants them
on '*' to the role ECS uses to shift traffic during blue/green, linear and canary deployments."""


def _documents(resource: Resource) -> Iterator[tuple[str, Any]]:
    """(label, document) for every permission policy the resource declares."""
    if resource.resource_type == ROLE:
        for inline in as_list(resource.props.get("inlinePolicies")):
            inline = mapping(inline)
            if inline.get("policy"):
                yield f"inline policy '{inline.get('name')}' of role '{resource.name}'", inline["policy"]
    else:
        yield f"{POLICY_DOCUMENT_TYPES[resource.resource_type]} '{resource.name}'", resource.props.get("policy")


def check_wildcards(resource: Resource, config: Config) -> Iterator[str]:
    unscoped = [str(a) for a in config.get("unscopedActions") or ()]
    for label, document in _documents(resource):
        try:
            statements = parse_policy(document)
        except (InvalidPolicyDocument, InvalidJson) as error:
            yield f"{label}: the policy document {error}."
            continue
        for statement in (s for s in statements if s.allows):
            if any(a in ("*", "*:*") for a in statement.actions):
                yield f"{label} allows every action (Action '*'); list the actions the service needs."
            elif statement.not_actions:
                excluded = ", ".join(statement.not_actions)
                yield f"{label} allows every action but {excluded} (NotAction); list the actions instead."
            if "*" in statement.resources or statement.not_resources:
                broad = [a for a in statement.actions if not any(action_matches(p, a) for p in unscoped)]
                if broad:
                    yield (
                        f"{label} allows {', '.join(broad)} on every resource (Resource '*'); scope them to the ARNs "
                        "the service needs."
                    )


IAM_NO_WILDCARD_PERMISSIONS = ResourceRule(
    name="iam-no-wildcard-permissions",
    description=(
        "IAM policies grant no '*' action, and Resource '*' only for actions that support no resource-level "
        "permissions (allow-list)."
    ),
    severity=Severity.HIGH,
    enforcement=EnforcementLevel.MANDATORY,
    remediation=(
        "Name the exact actions and the ARNs of the service's own resources; keep Resource '*' only for the "
        "allow-listed actions (X-Ray, ecr:GetAuthorizationToken, ECS Exec's ssmmessages, ...)."
    ),
    config_schema={
        "unscopedActions": {
            "type": "array",
            "items": {"type": "string"},
            "default": UNSCOPED_ACTIONS,
            "description": "Action patterns allowed with Resource '*' (they support no resource-level permissions).",
        }
    },
    applies=of_types(ROLE, *POLICY_DOCUMENT_TYPES),
    check=check_wildcards,
)


def _managed_policy_name(arn: str) -> str | None:
    """`AdministratorAccess` for `arn:aws:iam::aws:policy/AdministratorAccess` (AWS managed policies only)."""
    pieces = arn.split(":", 5)
    if len(pieces) < 6 or pieces[2] != "iam" or pieces[4] != "aws" or not pieces[5].startswith("policy/"):
        return None
    return pieces[5].rsplit("/", 1)[-1]


def check_admin_policies(resource: Resource, config: Config) -> Iterator[str]:
    forbidden = {str(p) for p in config.get("forbiddenManagedPolicies") or ()}
    if resource.resource_type == ROLE:
        label, arns = f"role '{resource.name}'", as_list(resource.props.get("managedPolicyArns"))
    else:
        label, arns = f"{ATTACHMENT_TYPES[resource.resource_type]} '{resource.name}'", [resource.props.get("policyArn")]
    for arn in (str(a) for a in arns if a):
        if _managed_policy_name(arn) in forbidden:
            yield f"{label} attaches the AWS managed policy {arn}; grant only the actions the service needs."


IAM_NO_ADMIN_MANAGED_POLICIES = ResourceRule(
    name="iam-no-admin-managed-policies",
    description="No role, user or group gets the AWS managed AdministratorAccess, PowerUserAccess or IAMFullAccess.",
    severity=Severity.CRITICAL,
    enforcement=EnforcementLevel.MANDATORY,
    remediation="Replace the attachment with a role policy that names the needed actions and resources.",
    config_schema={
        "forbiddenManagedPolicies": {
            "type": "array",
            "items": {"type": "string"},
            "default": ["AdministratorAccess", "PowerUserAccess", "IAMFullAccess"],
            "description": "Names of AWS managed policies that must not be attached.",
        }
    },
    applies=of_types(ROLE, *ATTACHMENT_TYPES),
    check=check_admin_policies,
)


def check_secret_key(resource: Resource, _config: Config) -> Iterator[str]:
    key = str(resource.props.get("kmsKeyId") or "")
    if not key or key.endswith("alias/aws/secretsmanager"):
        yield (
            f"secret '{resource.name}' is encrypted with the AWS managed key aws/secretsmanager; set kmsKeyId to "
            "the environment's customer managed KMS key."
        )


SECRETSMANAGER_SECRET_CMK = ResourceRule(
    name="secretsmanager-secret-cmk",
    description="Secrets Manager secrets are encrypted with a customer managed KMS key.",
    severity=Severity.MEDIUM,
    enforcement=EnforcementLevel.MANDATORY,
    remediation=(
        "Set kmsKeyId to the environment's KMS key and let the reading role kms:Decrypt with it "
        "(condition kms:ViaService secretsmanager)."
    ),
    applies=of_types(SECRET),
    check=check_secret_key,
)

RULES = [IAM_NO_WILDCARD_PERMISSIONS, IAM_NO_ADMIN_MANAGED_POLICIES, SECRETSMANAGER_SECRET_CMK]
