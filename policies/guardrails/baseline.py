"""Baseline gaps: S3 buckets, privilege escalation, credentials inside values.

* `s3-bucket-baseline` (stack): every bucket has a public access block with all four settings on,
  a default encryption configuration, and a bucket policy denying requests without TLS whose
  Resource names the bucket's own ARN (the bucket and its objects). cdk-nag AwsSolutions-S1/S2/S10,
  CIS AWS Foundations 2.1.1/2.1.4, NIST 800-53 SC-8, SC-28, AC-3.
* `iam-no-privilege-escalation` (stack, over the access model): no role may become another
  service's role (iam:PassRole + an action that starts compute with it, or sts:AssumeRole), and no
  role may pass every role ('*' / 'role/*') while it can start compute.
* `no-credentials-in-values` (resource): no literal value of a task definition or Lambda function
  holds a credential: a URL with a password (`scheme://user:password@host`), an AWS access key id, a
  PEM private key, or a `password=` / `pwd=` pair in a connection string.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from .access import START_COMPUTE_ACTIONS, AccessModel, model_of, shared_model
from .containers import container_definitions
from .core import (
    TASK_DEFINITION,
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
    as_list,
    known,
    mapping,
    of_types,
    property_deps,
    truthy,
    wildcard_match,
)
from .documents import action_matches, condition_is_false, parse_policy

BUCKET_TYPES = ("aws:s3/bucket:Bucket", "aws:s3/bucketV2:BucketV2")
PUBLIC_ACCESS_BLOCK = "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"
BUCKET_POLICY = "aws:s3/bucketPolicy:BucketPolicy"
BUCKET_ENCRYPTION = (
    "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
    "aws:s3/bucketServerSideEncryptionConfigurationV2:BucketServerSideEncryptionConfigurationV2",
)
LAMBDA_FUNCTION = "aws:lambda/function:Function"
BLOCK_SETTINGS = ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets")


# --------------------------------------------------------------------------------------------------
# S3.
# --------------------------------------------------------------------------------------------------
def _for_bucket(bucket: StackResource, resources: Sequence[StackResource]) -> list[StackResource]:
    name = known(bucket.props, "bucket")
    return [
        r
        for r in resources
        if any(d.urn == bucket.urn for d in property_deps(r, "bucket")) or (name and known(r.props, "bucket") == name)
    ]


def denies_insecure_transport_on(document: Any, action: str, arns: Sequence[str]) -> bool:
    """Does the policy deny `action` to everyone without TLS on a Resource covering every ARN in `arns`?"""
    try:
        statements = parse_policy(document)
    except (ValueError, InvalidJson):
        return False
    for statement in statements:
        if not (
            statement.effect == "Deny"
            and statement.any_principal()
            and any(action_matches(a, action) for a in statement.action_patterns())
            and condition_is_false(statement, "aws:SecureTransport")
        ):
            continue
        if all(any(wildcard_match(p, arn) for p in statement.resource_patterns()) for arn in arns):
            return True
    return False


def _bucket(bucket: StackResource, related: Sequence[StackResource]) -> Iterator[Finding]:
    label = f"S3 bucket '{bucket.name}'"
    blocks = [r for r in related if r.resource_type == PUBLIC_ACCESS_BLOCK]
    off = [s for s in BLOCK_SETTINGS if not any(truthy(b.props.get(s)) for b in blocks)]
    if off:
        yield Finding(
            f"{label} does not block public access ({', '.join(off)} not true in an aws.s3.BucketPublicAccessBlock).",
            bucket.urn,
        )
    inline = mapping(bucket.props.get("serverSideEncryptionConfiguration"))
    if not inline and not any(r.resource_type in BUCKET_ENCRYPTION for r in related):
        yield Finding(
            f"{label} has no default encryption (aws.s3.BucketServerSideEncryptionConfiguration with SSE-KMS or "
            "AES256).",
            bucket.urn,
        )
    arn = known(bucket.props, "arn")
    arns = [arn, f"{arn}/*"] if isinstance(arn, str) and arn else []
    documents = [bucket.props.get("policy")] + [
        r.props.get("policy") for r in related if r.resource_type == BUCKET_POLICY
    ]
    if not any(d and denies_insecure_transport_on(d, "s3:GetObject", arns) for d in documents):
        yield Finding(
            f"{label} has no bucket policy denying requests without TLS on its own ARN (a Deny for Principal '*' "
            f"on s3:* with Condition Bool aws:SecureTransport = false and Resource {' and '.join(arns) or 'its ARN'}).",
            bucket.urn,
        )


def check_s3(resources: Sequence[StackResource], _config: Config) -> Iterator[Finding]:
    buckets = [r for r in resources if r.resource_type in BUCKET_TYPES]
    if not buckets:
        return
    candidates = [r for r in resources if r.resource_type.startswith("aws:s3/") and r.resource_type not in BUCKET_TYPES]
    deferred = Deferred()
    yield from deferred.each(buckets, lambda b: _bucket(b, _for_bucket(b, candidates)))
    deferred.finish()


S3_BUCKET_BASELINE = StackRule(
    name="s3-bucket-baseline",
    description=(
        "S3 buckets block public access, are encrypted by default and deny requests without TLS in a bucket "
        "policy naming their own ARN."
    ),
    severity=Severity.HIGH,
    enforcement=EnforcementLevel.MANDATORY,
    remediation=(
        "Add an aws.s3.BucketPublicAccessBlock with all four settings true, an "
        "aws.s3.BucketServerSideEncryptionConfiguration, and an aws.s3.BucketPolicy with "
        '{"Effect": "Deny", "Principal": "*", "Action": "s3:*", "Resource": [<bucket arn>, <bucket arn>/*], '
        '"Condition": {"Bool": {"aws:SecureTransport": "false"}}}.'
    ),
    check=check_s3,
)


# --------------------------------------------------------------------------------------------------
# Privilege escalation.
# --------------------------------------------------------------------------------------------------
def check_escalation(resources: Sequence[StackResource], config: Config) -> Iterator[Finding]:
    model: AccessModel = model_of(resources, config)
    reported: set[tuple[str, str]] = set()
    for role_urn, targets in model.escalations.items():
        role = model.by_urn[role_urn]
        mine = {urn for urn in model.runners.get(role_urn, {})}
        for target, how in targets:
            theirs = {urn for urn in model.runners.get(target.urn, {})}
            others = sorted(model.by_urn[u].name for u in theirs - mine)
            if not others or (role_urn, target.urn) in reported:
                continue
            reported.add((role_urn, target.urn))
            who = ", ".join(f"'{n}'" for n in sorted(model.by_urn[u].name for u in mine)) or "no service"
            yield Finding(
                f"role '{role.name}' (run by {who}) can become role '{target.name}' of service "
                f"{', '.join(repr(o) for o in others)}: {how}; scope iam:PassRole / sts:AssumeRole to the service's own "
                "roles.",
                _grant_urn(model, role_urn, how),
            )
    for role_urn, grants in model.grants.items():
        role = model.by_urn[role_urn]
        allowed = [(g, s) for g in grants for s in (g.statements or ()) if s.allows]
        starts = [a for _g, s in allowed for a in s.action_patterns() if _starts_compute(a)]
        if not starts:
            continue
        for grant, statement in allowed:
            if not any(action_matches(a, "iam:PassRole") for a in statement.action_patterns()):
                continue
            broad = [p for p in statement.resource_patterns() if p == "*" or p.endswith(":role/*")]
            if broad:
                yield Finding(
                    f"role '{role.name}': {grant.label} allows iam:PassRole on {broad[0]} and {starts[0]}: whoever "
                    "runs as it can start compute as any role of the account, and so reach any service's data.",
                    grant.urn,
                )
                break
    if model.unknown is not None:
        raise model.unknown


def _starts_compute(pattern: str) -> bool:
    return any(action_matches(pattern, action) for action in START_COMPUTE_ACTIONS)


def _grant_urn(model: AccessModel, role_urn: str, how: str) -> str:
    for grant in model.grants.get(role_urn, []):
        if how.startswith(grant.label):
            return grant.urn
    return role_urn


IAM_NO_PRIVILEGE_ESCALATION = StackRule(
    name="iam-no-privilege-escalation",
    description=(
        "No role can become another service's role (iam:PassRole with an action that starts compute, or "
        "sts:AssumeRole), and none may pass every role while it can start compute."
    ),
    severity=Severity.CRITICAL,
    enforcement=EnforcementLevel.MANDATORY,
    remediation=(
        "Scope iam:PassRole to the exact ARNs of the service's own task/execution roles (with Condition "
        "iam:PassedToService), and grant sts:AssumeRole only on roles the service owns."
    ),
    check=check_escalation,
    model=shared_model,
)


# --------------------------------------------------------------------------------------------------
# Credentials inside values.
# --------------------------------------------------------------------------------------------------
CREDENTIAL_PATTERNS: Mapping[str, re.Pattern[str]] = {
    "a URL with a password": re.compile(r"[a-z][a-z0-9+.\-]*://[^\s/:@\"']+:[^\s/@\"']+@", re.IGNORECASE),
    "an AWS access key id": re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"),
    "a PEM private key": re.compile(r"-----BEGIN (?:[A-Z]+ )?PRIVATE KEY-----"),
    "a password in a connection string": re.compile(r"(?:^|[;\s])(?:password|pwd)\s*=\s*[^;\s]+", re.IGNORECASE),
}


def credentials_in(value: str) -> list[str]:
    """What kinds of credential a literal string holds."""
    return [kind for kind, pattern in CREDENTIAL_PATTERNS.items() if pattern.search(value)]


def _values(resource: Resource) -> Iterator[tuple[str, str]]:
    if resource.resource_type == TASK_DEFINITION:
        try:
            definitions = container_definitions(resource.props)
        except InvalidJson:
            return  # ecs-container-logging reports unreadable definitions
        for container in definitions:
            label = f"container '{container.get('name')}' of task definition '{resource.name}'"
            for entry in as_list(container.get("environment")):
                yield (
                    f"environment variable '{mapping(entry).get('name')}' of {label}",
                    str(mapping(entry).get("value")),
                )
            for key in ("command", "entryPoint"):
                for item in as_list(container.get(key)):
                    yield f"{key} of {label}", str(item)
    else:
        variables = mapping(mapping(resource.props.get("environment")).get("variables"))
        for name, value in variables.items():
            yield f"environment variable '{name}' of Lambda function '{resource.name}'", str(value)


def check_credentials(resource: Resource, _config: Config) -> Iterator[str]:
    for where, value in _values(resource):
        if len(value) > 200_000:
            value = value[:200_000]
        for kind in credentials_in(value):
            yield (
                f"{where} holds {kind} in a plain value; put the credential in Secrets Manager and inject it "
                "(ECS `secrets` / the Lambda reads it at start), keeping only the host in the value."
            )


NO_CREDENTIALS_IN_VALUES = ResourceRule(
    name="no-credentials-in-values",
    description=(
        "No plain value of a task definition or Lambda function (environment, command) holds a credential: a URL "
        "with a password, an AWS access key id, a PEM private key, a password in a connection string."
    ),
    severity=Severity.CRITICAL,
    enforcement=EnforcementLevel.MANDATORY,
    remediation=(
        "Move the credential to Secrets Manager (or use IAM authentication) and reference it through the "
        "container's `secrets` (valueFrom = secret ARN); keep URLs without user information."
    ),
    applies=of_types(TASK_DEFINITION, LAMBDA_FUNCTION),
    check=check_credentials,
)

RULES = [S3_BUCKET_BASELINE, IAM_NO_PRIVILEGE_ESCALATION, NO_CREDENTIALS_IN_VALUES]
