"""The access model of a whole stack: who can really reach what, computed once per `AnalyzeStack`.

Rules that reason about effective access (`no-shared-databases`, `mtls-required`,
`iam-no-privilege-escalation`) query one `AccessModel` instead of each walking the stack:

* **Principals.** The roles each service's compute actually runs as: `taskRoleArn` /
  `executionRoleArn` of every task definition (the task definition belongs to the service whose ECS
  service runs it, and to its parent-chain owner), Lambda `role`, and `roleArn` of anything else a
  service declares (pipes, state machines, schedules). A role also counts for its parent-chain owner.
* **Permissions.** Per role: inline policies, `RolePolicy`, customer-managed policies attached through
  `RolePolicyAttachment`, `PolicyAttachment` or `managedPolicyArns`, and AWS-managed policies, whose
  documents come from the dated snapshot `data/aws_managed_policies.json`; an AWS-managed policy the
  snapshot does not know "could grant anything". Resource-based policies (DynamoDB table and stream
  resource policies, secret policies, KMS key policies, and queue and topic policies of a store's
  members, e.g. a read model's feed) add the principals they name.
* **Privilege escalation.** A service that may `iam:PassRole` a role together with an action that
  starts compute with it (ECS RunTask/StartTask/RegisterTaskDefinition/CreateService/UpdateService,
  Lambda CreateFunction/UpdateFunctionConfiguration, ...) or `sts:AssumeRole` it can become that
  role (followed transitively). The trust policy is not consulted: a grant to assume another
  service's role is a finding by itself.
* **Network.** The security groups each ECS service and Lambda is actually attached to
  (`networkConfiguration.securityGroups`, `vpcConfig.securityGroupIds`), and every ingress edge by
  security group, CIDR, prefix list or self reference (`firewall.ingress_edges`).
* **Credentials and names.** Every literal string of a service's compute and config (container
  definitions: environment, command, secrets and other settings; Lambda environment; state machine
  definitions; SSM parameter values) is scanned for the endpoints, names and ARNs of the data stores
  and their secrets.

ARN patterns are matched on their service and resource parts; region and account are not compared.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache, lru_cache
from pathlib import Path
from typing import Any

from . import containers
from .core import (
    CACHE_CLUSTER,
    CACHE_REPLICATION_GROUP,
    DATA_COMPONENT_PREFIX,
    DATABASE_TYPES,
    DYNAMODB_TABLE,
    HOLE,
    RDS_CLUSTER,
    RDS_INSTANCE,
    SECRET,
    SECURITY_GROUP,
    SERVICE_TYPES,
    TASK_DEFINITION,
    InvalidJson,
    StackResource,
    UnknownValueError,
    ancestors,
    as_list,
    known,
    mapping,
    property_deps,
    service_owner,
    wildcard_match,
)
from .documents import InvalidPolicyDocument, Statement, action_matches, parse_policy
from .firewall import IngressEdge, ingress_edges

ROLE = "aws:iam/role:Role"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
MANAGED_POLICY = "aws:iam/policy:Policy"
ROLE_POLICY_ATTACHMENT = "aws:iam/rolePolicyAttachment:RolePolicyAttachment"
POLICY_ATTACHMENT = "aws:iam/policyAttachment:PolicyAttachment"
ECS_SERVICE = "aws:ecs/service:Service"
LAMBDA_FUNCTION = "aws:lambda/function:Function"
STATE_MACHINE = "aws:sfn/stateMachine:StateMachine"
SSM_PARAMETER = "aws:ssm/parameter:Parameter"
DYNAMODB_RESOURCE_POLICY = "aws:dynamodb/resourcePolicy:ResourcePolicy"
SECRET_POLICY = "aws:secretsmanager/secretPolicy:SecretPolicy"
KMS_KEY = "aws:kms/key:Key"
KMS_KEY_POLICY = "aws:kms/keyPolicy:KeyPolicy"
QUEUE_POLICY = "aws:sqs/queuePolicy:QueuePolicy"
TOPIC_POLICY = "aws:sns/topicPolicy:TopicPolicy"
CACHE_USER = "aws:elasticache/user:User"
CACHE_USER_GROUP = "aws:elasticache/userGroup:UserGroup"

SNAPSHOT_FILE = Path(__file__).parent / "data" / "aws_managed_policies.json"

START_COMPUTE_ACTIONS = (
    "ecs:RunTask",
    "ecs:StartTask",
    "ecs:RegisterTaskDefinition",
    "ecs:CreateService",
    "ecs:UpdateService",
    "lambda:CreateFunction",
    "lambda:UpdateFunctionConfiguration",
    "states:CreateStateMachine",
    "states:UpdateStateMachine",
    "pipes:CreatePipe",
    "pipes:UpdatePipe",
    "scheduler:CreateSchedule",
    "scheduler:UpdateSchedule",
    "events:PutTargets",
    "ec2:RunInstances",
    "cloudformation:CreateStack",
    "cloudformation:UpdateStack",
)
"""Actions that start compute with a role the caller passes (iam:PassRole is the gate); from the
privilege-escalation methods Rhino Security Labs documented for AWS IAM (PassRole + ...)."""

ENDPOINT_KEYS: Mapping[str, tuple[str, ...]] = {
    RDS_INSTANCE: ("address", "endpoint", "identifier", "arn", "resourceId"),
    RDS_CLUSTER: ("endpoint", "readerEndpoint", "clusterIdentifier", "arn", "clusterResourceId"),
    DYNAMODB_TABLE: ("name", "arn", "streamArn"),
    CACHE_REPLICATION_GROUP: (
        "primaryEndpointAddress",
        "readerEndpointAddress",
        "configurationEndpointAddress",
        "replicationGroupId",
        "arn",
    ),
    CACHE_CLUSTER: ("clusterId", "arn", "clusterAddress", "configurationEndpoint"),
    CACHE_USER: ("arn",),
    CACHE_USER_GROUP: ("arn",),
    SECRET: ("arn",),
    KMS_KEY: ("arn",),
}
"""Literal values that name a data store (or one of its members) in a string another service holds."""

MIN_NEEDLE = 8
"""Shorter names are not searched for inside strings (too likely to occur by chance)."""


@lru_cache(maxsize=1)
def managed_policy_snapshot() -> tuple[str, Mapping[str, Any]]:
    """(snapshot date, {policy name: document}) of the AWS-managed policies the pack knows."""
    data = json.loads(SNAPSHOT_FILE.read_text())
    return str(data["snapshotDate"]), {name: entry["document"] for name, entry in data["policies"].items()}


def aws_managed_policy_name(arn: str) -> str | None:
    """`AmazonDynamoDBReadOnlyAccess` for `arn:aws:iam::aws:policy/AmazonDynamoDBReadOnlyAccess` (and
    `arn:aws:iam::aws:policy/service-role/...`); None for anything that is not AWS-managed."""
    pieces = arn.split(":", 5)
    if len(pieces) < 6 or pieces[2] != "iam" or pieces[4] != "aws" or not pieces[5].startswith("policy/"):
        return None
    return pieces[5].rsplit("/", 1)[-1]


# --------------------------------------------------------------------------------------------------
# ARN handles.
# --------------------------------------------------------------------------------------------------
SUB = "\x01"
"""Stands for "any sub-resource or user" at the end of a handle part (a table's indexes and streams, an
RDS IAM-auth user): any text covers it, so `table/t/index/by-date` and `dbuser:db-X/app` name the store."""


@dataclass(frozen=True)
class Handle:
    """One way an IAM policy can name a resource: `<service>:<resource part>` of its ARN."""

    services: tuple[str, ...]
    parts: tuple[str, ...]
    """Resource parts of the ARN; HOLE stands for what is unknown (only `*` covers it), SUB for any suffix."""
    arn: str | None = None

    def covered_by(self, pattern: str) -> bool:
        if pattern == "*":
            return True
        if pattern.lower().startswith("arn:"):
            pieces = pattern.split(":", 5)
            if len(pieces) < 6:
                return False
            service, resource = pieces[2], pieces[5]
            return any(wildcard_match(service, s, ignore_case=True) for s in self.services) and any(
                globs_intersect(resource, part) for part in self.parts
            )
        return self.arn is not None and wildcard_match(pattern, self.arn)


@lru_cache(maxsize=65536)
def globs_intersect(pattern: str, part: str) -> bool:
    """Is there a string that IAM wildcard `pattern` matches and `part` stands for? In `part`, HOLE is
    one unknown character that only `*` covers, SUB any suffix; other characters are literal."""
    n, m = len(pattern), len(part)

    @cache
    def f(i: int, j: int) -> bool:
        if i == n and j == m:
            return True
        if j < m and part[j] == SUB:
            return f(i, j + 1) or (i < n and f(i + 1, j))
        if i < n and pattern[i] == "*":
            return f(i + 1, j) or (j < m and f(i, j + 1))
        if i < n and j < m and part[j] != HOLE and (pattern[i] == "?" or pattern[i] == part[j]):
            return f(i + 1, j + 1)
        return False

    return f(0, 0)


def _arn_handle(arn: str) -> Handle | None:
    pieces = arn.split(":", 5)
    if len(pieces) < 6:
        return None
    return Handle((pieces[2],), (pieces[5],), arn)


def _text(props: Mapping[str, Any], key: str) -> str | None:
    value = known(props, key)
    return value if isinstance(value, str) and value else None


def store_handles(resource: StackResource) -> list[Handle]:
    """How IAM policies name a data store or one of its members (users, user groups, secrets, keys)."""
    props, t = resource.props, resource.resource_type

    def name(key: str) -> str:
        return _text(props, key) or HOLE

    arn = _text(props, "arn")
    handles: list[Handle] = []
    if t == DYNAMODB_TABLE:
        table = f"table/{name('name')}"
        handles.append(Handle(("dynamodb",), (table, f"{table}/{SUB}"), arn))  # indexes, streams, exports
    elif t == RDS_INSTANCE:
        handles.append(Handle(("rds",), (f"db:{name('identifier')}",), arn))
        handles.append(Handle(("rds-db",), (f"dbuser:{name('resourceId')}/{SUB}",)))
    elif t == RDS_CLUSTER:
        handles.append(Handle(("rds", "rds-data"), (f"cluster:{name('clusterIdentifier')}",), arn))
        handles.append(Handle(("rds-db",), (f"dbuser:{name('clusterResourceId')}/{SUB}",)))
    elif t == CACHE_REPLICATION_GROUP:
        handles.append(Handle(("elasticache",), (f"replicationgroup:{name('replicationGroupId')}",), arn))
    elif t == CACHE_CLUSTER:
        handles.append(Handle(("elasticache",), (f"cluster:{name('clusterId')}",), arn))
    elif t == CACHE_USER:
        handles.append(Handle(("elasticache",), (f"user:{name('userId')}",), arn))
    elif t == CACHE_USER_GROUP:
        handles.append(Handle(("elasticache",), (f"usergroup:{name('userGroupId')}",), arn))
    elif t in (SECRET, KMS_KEY) and arn:
        handle = _arn_handle(arn)
        if handle is not None:
            handles.append(handle)
    if t in (RDS_INSTANCE, RDS_CLUSTER):
        secret_arns = master_secret_arns(props)
        if known(props, "manageMasterUserPassword"):
            kind = "db" if t == RDS_INSTANCE else "cluster"
            parts = tuple(a.split(":", 5)[5] for a in secret_arns if a.count(":") >= 5) or (
                f"secret:rds!{kind}-{HOLE}",
            )
            handles.append(Handle(("secretsmanager",), parts, secret_arns[0] if secret_arns else None))
    return handles


def master_secret_arns(props: Mapping[str, Any]) -> list[str]:
    # The secret is created by RDS: its ARN is an output, unknown during a first preview. An unknown
    # ARN only means that no literal can name it yet (see core.known).
    try:
        entries = as_list(props.get("masterUserSecrets"))
        return [a for a in (mapping(e).get("secretArn") for e in entries) if isinstance(a, str) and a]
    except UnknownValueError:
        return []


# --------------------------------------------------------------------------------------------------
# The model's records.
# --------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Grant:
    """A permission policy that applies to a role."""

    label: str
    """How messages name it: `aws:iam/rolePolicy:RolePolicy 'x'`, `AWS managed policy arn:...`."""
    urn: str
    """The resource to fix (the policy, the attachment or the role)."""
    statements: tuple[Statement, ...] | None
    """None: an AWS-managed policy the snapshot does not know (it could grant anything)."""


@dataclass(frozen=True)
class Reach:
    """One path by which a service reaches a resource."""

    service: StackResource
    path: str
    urn: str
    """The resource a developer would change to cut the path."""
    kind: str
    """iam | resource-policy | network | credentials | dependency."""


@dataclass
class Store:
    """A data store (database resource) with the members of its data component."""

    resource: StackResource
    owner: StackResource | None
    label: str
    members: dict[str, StackResource] = field(default_factory=dict)
    handles: list[Handle] = field(default_factory=list)
    secret_arns: list[str] = field(default_factory=list)
    security_groups: list[StackResource] = field(default_factory=list)
    needles: dict[str, str] = field(default_factory=dict)
    """Literal value -> what it is ("endpoint", "name", "ARN", "credentials secret ARN")."""

    @property
    def name(self) -> str:
        return self.resource.name


@dataclass(frozen=True)
class Compute:
    """Something that runs code: a task definition, a Lambda function, a state machine..."""

    resource: StackResource
    services: tuple[StackResource, ...]
    how: str
    """How messages name it for its services: "task definition 'x' (run by ECS service 'y')"."""


class AccessModel:
    """See the module docstring. Build with `AccessModel(resources)`; `unknowns` holds the first
    UnknownValueError met while reading the stack (the rules re-raise it after their findings)."""

    def __init__(self, resources: Sequence[StackResource]) -> None:
        self.resources = resources
        self.unknown: UnknownValueError | None = None
        self.by_urn = {r.urn: r for r in resources}
        self.services = [r for r in resources if r.resource_type in SERVICE_TYPES]
        self.roles = [r for r in resources if r.resource_type == ROLE]
        self._role_by_arn: dict[str, StackResource] = {}
        self._role_by_name: dict[str, StackResource] = {}
        for role in self.roles:
            arn, name = _text(role.props, "arn"), _text(role.props, "name")
            if arn:
                self._role_by_arn[arn] = role
            if name:
                self._role_by_name[name] = role
        self.computes = self._computes()
        self.runners = self._runners()
        self.grants = self._grants()
        self.sg_members = self._sg_members()
        self.edges: list[IngressEdge] = []
        self.edges_into: dict[str, list[IngressEdge]] = {}
        for resource in resources:
            for edge in self._guard(lambda r=resource: list(ingress_edges(r))) or []:
                self.edges.append(edge)
                for target in edge.targets:
                    self.edges_into.setdefault(target.urn, []).append(edge)
        self.escalations = self._escalations()
        self.identities = self._identities()

    # --- helpers ----------------------------------------------------------------------------------
    def _guard(self, read: Any) -> Any:
        try:
            return read()
        except UnknownValueError as error:
            self.unknown = self.unknown or error
            return None

    def role_for(self, resource: StackResource, prop: str) -> StackResource | None:
        """The Role a property names: through its dependency, else its literal ARN or name."""
        deps = property_deps(resource, prop, ROLE)
        if deps:
            return deps[0]
        value = _text(resource.props, prop)
        if value is None:
            return None
        return self._role_by_arn.get(value) or self._role_by_name.get(value.rsplit("/", 1)[-1])

    # --- principals -------------------------------------------------------------------------------
    def _computes(self) -> list[Compute]:
        runners_of_task: dict[str, list[StackResource]] = {}
        for r in self.resources:
            if r.resource_type == ECS_SERVICE:
                for task in property_deps(r, "taskDefinition", TASK_DEFINITION):
                    runners_of_task.setdefault(task.urn, []).append(r)
        computes = []
        for r in self.resources:
            if r.resource_type == TASK_DEFINITION:
                services: dict[str, StackResource] = {}
                hows = []
                for ecs in runners_of_task.get(r.urn, []):
                    owner = service_owner(ecs)
                    if owner is not None:
                        services[owner.urn] = owner
                    hows.append(f"ECS service '{ecs.name}'")
                owner = service_owner(r)
                if owner is not None:
                    services.setdefault(owner.urn, owner)
                how = f"task definition '{r.name}'" + (f" (run by {', '.join(hows)})" if hows else "")
                computes.append(Compute(r, tuple(services.values()), how))
            elif r.resource_type == SSM_PARAMETER:
                owner = service_owner(r)
                if owner is not None:
                    computes.append(Compute(r, (owner,), f"SSM parameter '{r.name}'"))
            elif r.resource_type in (LAMBDA_FUNCTION, STATE_MACHINE) or (
                r.resource_type.startswith("aws:") and r.resource_type != ROLE and "roleArn" in _keys(r)
            ):
                owner = service_owner(r)
                kind = r.resource_type.rsplit(":", 1)[-1]
                computes.append(Compute(r, (owner,) if owner is not None else (), f"{kind} '{r.name}'"))
        return computes

    def _runners(self) -> dict[str, dict[str, tuple[StackResource, str]]]:
        """Role URN -> {service URN: (service, how it runs as the role)} ("" = the role's own service)."""
        runners: dict[str, dict[str, tuple[StackResource, str]]] = {}
        for role in self.roles:
            owner = service_owner(role)
            if owner is not None:
                runners.setdefault(role.urn, {})[owner.urn] = (owner, "")
        for compute in self.computes:
            props = (
                ("taskRoleArn", "executionRoleArn")
                if compute.resource.resource_type == TASK_DEFINITION
                else (("role",) if compute.resource.resource_type == LAMBDA_FUNCTION else ("roleArn",))
            )
            for prop in props:
                role = self._guard(lambda p=prop, c=compute: self.role_for(c.resource, p))
                if role is None:
                    continue
                for service in compute.services:
                    entry = runners.setdefault(role.urn, {})
                    if service.urn not in entry or not entry[service.urn][1]:
                        how = f"{compute.how} runs as role '{role.name}' ({prop})"
                        if service_owner(role) is not None and service_owner(role).urn == service.urn:  # type: ignore[union-attr]
                            how = ""
                        entry.setdefault(service.urn, (service, how))
        return runners

    def roles_of(self, service: StackResource) -> list[tuple[StackResource, str]]:
        """The roles `service` runs as, directly or by escalation, with how (empty: its own role)."""
        if not hasattr(self, "_direct"):
            self._direct: dict[str, list[tuple[StackResource, str]]] = {}
            for role_urn, entry in self.runners.items():
                for svc_urn, (_svc, how) in entry.items():
                    self._direct.setdefault(svc_urn, []).append((self.by_urn[role_urn], how))
        direct = self._direct.get(service.urn, [])
        result = list(direct)
        expanded: set[str] = set()
        queue = list(direct)
        while queue:
            role, how = queue.pop(0)
            if role.urn in expanded:
                continue
            expanded.add(role.urn)
            for target, via in self.escalations.get(role.urn, []):
                step = f"{how + '; ' if how else ''}role '{role.name}' can become role '{target.name}' ({via})"
                result.append((target, step))
                queue.append((target, step))
        return result

    # --- permissions ------------------------------------------------------------------------------
    def _statements(self, document: Any) -> tuple[Statement, ...]:
        try:
            return tuple(parse_policy(document))
        except (InvalidPolicyDocument, InvalidJson):
            return ()  # iam-no-wildcard-permissions reports documents it cannot read

    def _grants(self) -> dict[str, list[Grant]]:
        grants: dict[str, list[Grant]] = {}
        policies_by_arn = {
            arn: p for p in self.resources if p.resource_type == MANAGED_POLICY if (arn := _text(p.props, "arn"))
        }

        def add(role: StackResource | None, grant: Grant) -> None:
            if role is not None:
                grants.setdefault(role.urn, []).append(grant)

        def managed(arn_or_policy: Any, via: StackResource) -> Grant:
            if isinstance(arn_or_policy, str):
                policy = policies_by_arn.get(arn_or_policy)
                if policy is None:
                    name = aws_managed_policy_name(arn_or_policy)
                    if name is None:
                        return Grant(f"policy {arn_or_policy} (not declared in this stack)", via.urn, None)
                    date, documents = managed_policy_snapshot()
                    if name not in documents:
                        return Grant(
                            f"AWS managed policy {arn_or_policy} (unknown to the pack's snapshot of {date}: it could "
                            "grant anything)",
                            via.urn,
                            None,
                        )
                    return Grant(f"AWS managed policy {arn_or_policy}", via.urn, self._statements(documents[name]))
            else:
                policy = arn_or_policy
            document = self._guard(lambda: policy.props.get("policy"))
            return Grant(f"{policy.resource_type} '{policy.name}'", policy.urn, self._statements(document))

        for r in self.resources:
            t = r.resource_type
            if t == ROLE:
                for inline in as_list(self._guard(lambda r=r: r.props.get("inlinePolicies"))):
                    document = mapping(inline).get("policy")
                    if document:
                        add(r, Grant(f"{t} '{r.name}'", r.urn, self._statements(document)))
                arns = self._guard(lambda r=r: as_list(r.props.get("managedPolicyArns"))) or []
                declared = property_deps(r, "managedPolicyArns", MANAGED_POLICY)
                declared_arns = {_text(p.props, "arn") for p in declared}
                for policy in declared:
                    add(r, managed(policy, r))
                for arn in arns:
                    if isinstance(arn, str) and arn not in declared_arns:
                        add(r, managed(arn, r))
            elif t == ROLE_POLICY:
                document = self._guard(lambda r=r: r.props.get("policy"))
                role = self._guard(lambda r=r: self.role_for(r, "role"))
                add(role, Grant(f"{t} '{r.name}'", r.urn, self._statements(document)))
            elif t in (ROLE_POLICY_ATTACHMENT, POLICY_ATTACHMENT):
                roles = property_deps(r, "role", ROLE) + property_deps(r, "roles", ROLE)
                if not roles:
                    for name in as_list(self._guard(lambda r=r: r.props.get("role") or r.props.get("roles"))):
                        role = self._role_by_name.get(str(name)) or self._role_by_arn.get(str(name))
                        if role is not None:
                            roles.append(role)
                declared = property_deps(r, "policyArn", MANAGED_POLICY)
                target: Any = declared[0] if declared else self._guard(lambda r=r: r.props.get("policyArn"))
                if target is None:
                    continue
                grant = managed(target, r)
                for role in roles:
                    add(role, grant)
        return grants

    def _escalations(self) -> dict[str, list[tuple[StackResource, str]]]:
        """Role URN -> roles it can become (iam:PassRole + start compute, or sts:AssumeRole)."""
        result: dict[str, list[tuple[StackResource, str]]] = {}
        for role_urn, grants in self.grants.items():
            allowed = [(g, s) for g in grants for s in (g.statements or ()) if s.allows]
            starts = [a for _g, s in allowed for a in s.action_patterns() if _covers_any(a, START_COMPUTE_ACTIONS)]
            for grant, statement in allowed:
                actions = statement.action_patterns()
                passes = any(action_matches(a, "iam:PassRole") for a in actions)
                assumes = any(action_matches(a, "sts:AssumeRole") for a in actions)
                if not (passes and starts) and not assumes:
                    continue
                for target in self.roles:
                    if target.urn == role_urn:
                        continue
                    handle = _role_handle(target)
                    pattern = next((p for p in statement.resource_patterns() if handle.covered_by(p)), None)
                    if pattern is None:
                        continue
                    how = (
                        f"{grant.label} allows iam:PassRole on {pattern} with {starts[0]}"
                        if passes and starts
                        else f"{grant.label} allows sts:AssumeRole on {pattern}"
                    )
                    result.setdefault(role_urn, []).append((target, how))
        return result

    # --- network ----------------------------------------------------------------------------------
    def _sg_members(self) -> dict[str, dict[str, tuple[StackResource, str]]]:
        """Security group URN -> {service URN: (service, which compute is attached)}."""
        members: dict[str, dict[str, tuple[StackResource, str]]] = {}
        for r in self.resources:
            if r.resource_type == ECS_SERVICE:
                groups, how = property_deps(r, "networkConfiguration", SECURITY_GROUP), f"ECS service '{r.name}'"
            elif r.resource_type == LAMBDA_FUNCTION:
                groups, how = property_deps(r, "vpcConfig", SECURITY_GROUP), f"Lambda function '{r.name}'"
            else:
                continue
            owner = service_owner(r)
            if owner is None:
                continue
            for sg in groups:
                members.setdefault(sg.urn, {}).setdefault(owner.urn, (owner, how))
        return members

    def services_behind(self, sg: StackResource) -> list[tuple[StackResource, str]]:
        """Services whose traffic carries `sg`: the compute attached to it, and its parent-chain owner
        when that is a service (a group a service declares is its own even if nothing uses it yet)."""
        found = dict(self.sg_members.get(sg.urn, {}))
        owner = service_owner(sg)
        if owner is not None and not _in_data_component(sg):
            found[owner.urn] = (owner, "")  # its own group: no need to say how it is attached
        return list(found.values())

    # --- mesh identities --------------------------------------------------------------------------
    def _identities(self) -> dict[str, StackResource]:
        """Envoy node cluster name (the service's mesh name) -> service, from each task definition."""
        identities: dict[str, StackResource] = {}
        self._bootstraps: dict[str, tuple[Any, str | None]] = {}
        for compute in self.computes:
            if compute.resource.resource_type != TASK_DEFINITION or not compute.services:
                continue
            bootstrap, problem = self._guard(lambda c=compute: self.bootstrap_of(c.resource)) or (None, "unknown")
            if problem is None:
                node = mapping(mapping(bootstrap).get("node"))
                name = node.get("cluster")
                if isinstance(name, str) and name:
                    identities[name] = service_owner(compute.resource) or compute.services[0]
        return identities

    def bootstrap_of(self, task_definition: StackResource) -> tuple[Any, str | None]:
        """`mesh.envoy_bootstrap` of a task definition, parsed once per model (by URN)."""
        from .mesh import envoy_bootstrap  # late: mesh imports this module

        cached = self._bootstraps.get(task_definition.urn)
        if cached is None:
            cached = envoy_bootstrap(task_definition)  # an unknown value raises, and is not cached
            self._bootstraps[task_definition.urn] = cached
        return cached

    # --- data stores ------------------------------------------------------------------------------
    def stores(self) -> list[Store]:
        members_of_component: dict[str, list[StackResource]] = {}
        for resource in self.resources:
            for ancestor in ancestors(resource):
                if ancestor.resource_type.startswith(DATA_COMPONENT_PREFIX):
                    members_of_component.setdefault(ancestor.urn, []).append(resource)
        stores = []
        for r in self.resources:
            if r.resource_type not in DATABASE_TYPES:
                continue
            store = Store(r, service_owner(r), DATABASE_TYPES[r.resource_type])
            store.members[r.urn] = r
            component = next((a for a in ancestors(r) if a.resource_type.startswith(DATA_COMPONENT_PREFIX)), None)
            if component is not None:
                store.members[component.urn] = component
                for other in members_of_component.get(component.urn, []):
                    store.members[other.urn] = other
            for member in store.members.values():
                store.handles.extend(self._guard(lambda m=member: store_handles(m)) or [])
            store.secret_arns = master_secret_arns(r.props) + [
                a for m in store.members.values() if m.resource_type == SECRET if (a := _text(m.props, "arn"))
            ]
            groups = {
                sg.urn: sg
                for prop in ("vpcSecurityGroupIds", "securityGroupIds")
                for sg in property_deps(r, prop, SECURITY_GROUP)
            }
            groups.update({u: m for u, m in store.members.items() if m.resource_type == SECURITY_GROUP})
            store.security_groups = list(groups.values())
            for member in store.members.values():
                for key in ENDPOINT_KEYS.get(member.resource_type, ()):
                    value = _text(member.props, key)
                    if value and len(value) >= MIN_NEEDLE:
                        store.needles.setdefault(value, _needle_kind(key))
            for arn in store.secret_arns:
                store.needles.setdefault(arn, "credentials secret ARN")
            stores.append(store)
        return stores

    def reach(self, stores: Sequence[Store]) -> Iterator[tuple[Store, Reach]]:
        """Every (store, path) by which a service other than the store's owner reaches it."""
        owned = [s for s in stores if s.owner is not None]
        yield from self._iam_reach(owned)
        yield from self._resource_policy_reach(owned)
        yield from self._network_reach(owned)
        yield from self._credential_reach(owned)
        yield from self._dependency_reach(owned)

    def _iam_reach(self, stores: Sequence[Store]) -> Iterator[tuple[Store, Reach]]:
        index = _StoreIndex(stores)
        matches: dict[int, list[tuple[Store, str]]] = {}  # per grant: computed once, whoever holds it
        for service in self.services:
            for role, how in self.roles_of(service):
                for grant in self.grants.get(role.urn, []):
                    if id(grant) not in matches:
                        matches[id(grant)] = index.granted(grant)
                    for store, detail in matches[id(grant)]:
                        assert store.owner is not None
                        if store.owner.urn == service.urn:
                            continue
                        path = detail + (f" to role '{role.name}', and {how}" if how else "")
                        yield store, Reach(service, path, grant.urn, "iam")

    def _resource_policy_reach(self, stores: Sequence[Store]) -> Iterator[tuple[Store, Reach]]:
        links = {
            DYNAMODB_RESOURCE_POLICY: "resourceArn",
            SECRET_POLICY: "secretArn",
            KMS_KEY_POLICY: "keyId",
            QUEUE_POLICY: "queueUrl",
            TOPIC_POLICY: "arn",
        }
        documents: list[tuple[StackResource, StackResource | None, str | None, Any]] = []
        for r in self.resources:
            if r.resource_type in links:
                link = links[r.resource_type]
                deps = property_deps(r, link)
                documents.append(
                    (r, deps[0] if deps else None, _text(r.props, link), self._guard(lambda r=r: r.props.get("policy")))
                )
            elif r.resource_type in (KMS_KEY, "aws:sqs/queue:Queue", "aws:sns/topic:Topic") and _in_data_component(r):
                documents.append((r, r, None, self._guard(lambda r=r: r.props.get("policy"))))
        for policy, target, literal, document in documents:
            if not document:
                continue
            for store in stores:
                if target is not None:
                    named = target.urn in store.members
                else:
                    named = literal is not None and any(h.covered_by(literal) for h in store.handles)
                if not named:
                    continue
                for statement in self._statements(document):
                    if not statement.allows:
                        continue
                    for principal in statement.principals:
                        for service, what in self._principal_services(principal):
                            assert store.owner is not None
                            if service.urn == store.owner.urn:
                                continue
                            actions = ", ".join(statement.action_patterns())
                            path = f"{policy.resource_type} '{policy.name}' allows {actions} to {what}"
                            yield store, Reach(service, path, policy.urn, "resource-policy")

    def _principal_services(self, principal: str) -> list[tuple[StackResource, str]]:
        if principal == "*":
            return [(s, "every principal ('*')") for s in self.services]
        role = self._role_by_arn.get(principal)
        if role is None:
            return []
        return [(svc, f"role '{role.name}'") for svc, _how in self.runners.get(role.urn, {}).values()]

    def _network_reach(self, stores: Sequence[Store]) -> Iterator[tuple[Store, Reach]]:
        for store in stores:
            assert store.owner is not None
            for group in store.security_groups:
                for service, how in self.sg_members.get(group.urn, {}).values():
                    if service.urn != store.owner.urn:
                        path = f"its {how} is attached to the database's security group '{group.name}'"
                        yield store, Reach(service, path, group.urn, "network")
                for edge in self.edges_into.get(group.urn, []):
                    where = (
                        f"security group rule '{edge.rule.name}' lets {{}} into the database's security group "
                        f"'{group.name}'"
                    )
                    for source in edge.sources:
                        behind = self.services_behind(source)
                        if not behind:
                            yield (
                                store,
                                Reach(
                                    store.owner,
                                    where.format(f"security group '{source.name}'"),
                                    edge.rule.urn,
                                    "outside",
                                ),
                            )
                        for service, how in behind:
                            if service.urn == store.owner.urn:
                                continue
                            path = where.format(f"security group '{source.name}'")
                            if how and service_owner(source) is not None and service_owner(source).urn != service.urn:  # type: ignore[union-attr]
                                path += f" (its {how} is attached to '{source.name}')"
                            yield store, Reach(service, path, edge.rule.urn, "network")
                    for cidr in edge.cidrs:
                        yield store, Reach(store.owner, where.format(f"CIDR {cidr}"), edge.rule.urn, "outside")
                    for prefix_list in edge.prefix_lists:
                        what = f"managed prefix list {prefix_list}"
                        yield store, Reach(store.owner, where.format(what), edge.rule.urn, "outside")

    def _credential_reach(self, stores: Sequence[Store]) -> Iterator[tuple[Store, Reach]]:
        needles = {n: (s, kind) for s in stores for n, kind in s.needles.items()}
        if not needles:
            return
        for compute in self.computes:
            for where, text in self._compute_strings(compute):
                for needle in literals_in(text) & needles.keys():
                    store, kind = needles[needle]
                    for service in compute.services:
                        assert store.owner is not None
                        if service.urn == store.owner.urn:
                            continue
                        if kind == "credentials secret ARN" and where.startswith("secret"):
                            path = f"{where} of {compute.how} reads its credentials secret"
                        else:
                            path = f"{where} of {compute.how} holds its {kind} '{needle}'"
                        yield store, Reach(service, path, compute.resource.urn, "credentials")

    def _compute_strings(self, compute: Compute) -> Iterator[tuple[str, str]]:
        r = compute.resource
        if r.resource_type == TASK_DEFINITION:
            try:
                definitions = self._guard(lambda: containers.container_definitions(r.props)) or []
            except InvalidJson:
                return
            for container in definitions:
                label = f"container '{container.get('name')}'"
                for entry in as_list(container.get("environment")):
                    yield (
                        f"environment variable '{mapping(entry).get('name')}' of {label}",
                        str(mapping(entry).get("value", "")),
                    )
                for entry in as_list(container.get("secrets")):
                    yield f"secret '{mapping(entry).get('name')}' of {label}", str(mapping(entry).get("valueFrom", ""))
                rest = {k: v for k, v in container.items() if k not in ("environment", "secrets")}
                yield f"{label} (command, entry point or other settings)", json.dumps(rest)
        elif r.resource_type == LAMBDA_FUNCTION:
            variables = mapping(mapping(self._guard(lambda: r.props.get("environment"))).get("variables"))
            for name, value in variables.items():
                yield f"environment variable '{name}'", str(value)
        elif r.resource_type == STATE_MACHINE:
            yield "definition", str(self._guard(lambda: r.props.get("definition")) or "")
        elif r.resource_type == SSM_PARAMETER:
            for key in ("value", "insecureValue"):
                yield key, str(self._guard(lambda k=key: r.props.get(k)) or "")

    def _dependency_reach(self, stores: Sequence[Store]) -> Iterator[tuple[Store, Reach]]:
        by_member = {urn: store for store in stores for urn in store.members}
        for resource in self.resources:
            owner = service_owner(resource)
            if owner is None:
                continue
            seen: set[str] = set()
            for dep in [*resource.dependencies, *(d for v in resource.property_dependencies.values() for d in v)]:
                store = by_member.get(dep.urn)
                if store is None or dep.urn in seen or store.owner is None or store.owner.urn == owner.urn:
                    continue
                seen.add(dep.urn)
                target = "it" if dep.urn == store.resource.urn else f"its {dep.resource_type} '{dep.name}'"
                path = f"{resource.resource_type} '{resource.name}' depends on {target}"
                yield store, Reach(owner, path, resource.urn, "dependency")


_TOKEN = re.compile(r"[A-Za-z0-9_.\-]+")
_ARN = re.compile(r"arn:aws[a-z\-]*:[^\s\"',;]+")


def literals_in(text: str) -> set[str]:
    """Every name-, host- or ARN-like literal a string contains, for exact lookup of known values (one
    pass over the text, whatever the number of values looked for): the runs of name characters, and
    each ARN with every prefix of it that ends before a ':' or '/' (`<secret arn>:password::` names the
    secret, `<table arn>/index/x` the table)."""
    found = set(_TOKEN.findall(text))
    for match in _ARN.finditer(text):
        arn = match.group(0)
        found.add(arn)
        found.update(arn[:i] for i, char in enumerate(arn) if char in ":/" and i > 0)
    return found


def _keys(resource: StackResource) -> Iterable[str]:
    try:
        return list(resource.props)
    except UnknownValueError:
        return []


def _in_data_component(resource: StackResource) -> bool:
    return any(a.resource_type.startswith(DATA_COMPONENT_PREFIX) for a in ancestors(resource))


def _needle_kind(key: str) -> str:
    lowered = key.lower()
    if "arn" in lowered:
        return "ARN"
    if "endpoint" in lowered or "address" in lowered:
        return "endpoint"
    return "name"


def _covers_any(pattern: str, actions: Iterable[str]) -> bool:
    return any(action_matches(pattern, a) for a in actions)


def _role_handle(role: StackResource) -> Handle:
    arn = _text(role.props, "arn")
    name = _text(role.props, "name") or HOLE
    return Handle(("iam",), (arn.split(":", 5)[5] if arn and arn.count(":") >= 5 else f"role/{name}",), arn)


def _action_services(pattern: str) -> str:
    return pattern.split(":", 1)[0] if ":" in pattern else pattern


class _StoreIndex:
    """Finds the stores a statement can name without comparing it with every store: exact resource
    patterns are looked up by resource part (and by the prefixes a SUB part stands for); patterns with
    wildcards are compared with the stores of the AWS services their actions belong to."""

    def __init__(self, stores: Sequence[Store]) -> None:
        self.stores = list(stores)
        self.by_service: dict[str, list[Store]] = {}
        self.exact: dict[str, list[Store]] = {}
        self.prefix: dict[str, list[Store]] = {}
        self.by_arn: dict[str, list[Store]] = {}
        for store in stores:
            for service in {s for h in store.handles for s in h.services}:
                self.by_service.setdefault(service, []).append(store)
            for handle in store.handles:
                if handle.arn:
                    self.by_arn.setdefault(handle.arn, []).append(store)
                for part in handle.parts:
                    if HOLE in part:
                        continue  # only a wildcard can name it
                    if part.endswith(SUB) and SUB not in part[:-1]:
                        self.prefix.setdefault(part[:-1], []).append(store)
                    elif SUB not in part:
                        self.exact.setdefault(part, []).append(store)

    def candidates(self, pattern: str, prefixes: set[str]) -> list[Store]:
        if any(c in pattern for c in "*?") or any(c in p for p in prefixes for c in "*?"):
            found: dict[int, Store] = {}
            for service, stores in self.by_service.items():
                if any(wildcard_match(p, service, ignore_case=True) for p in prefixes):
                    found.update((id(s), s) for s in stores)
            return list(found.values())
        if not pattern.lower().startswith("arn:"):
            return list(self.by_arn.get(pattern, []))
        resource = pattern.split(":", 5)[5] if pattern.count(":") >= 5 else ""
        found_exact = {id(s): s for s in self.exact.get(resource, [])}
        for i, char in enumerate(resource):
            if char in "/:":
                found_exact.update((id(s), s) for s in self.prefix.get(resource[: i + 1], []))
        return list(found_exact.values())

    def granted(self, grant: Grant) -> list[tuple[Store, str]]:
        """(store, how the grant names it) for every store the grant reaches."""
        if grant.statements is None:
            return [(s, f"{grant.label} is attached") for s in self.stores]
        found: dict[int, tuple[Store, str]] = {}
        for statement in grant.statements:
            if not statement.allows:
                continue
            actions = [a for a in statement.action_patterns() if ":" in a or a == "*"]
            prefixes = {_action_services(a).lower() for a in actions}
            if not prefixes:
                continue
            for pattern in statement.resource_patterns():
                for store in self.candidates(pattern, prefixes):
                    if id(store) in found:
                        continue
                    detail = _statement_detail(grant, statement, actions, pattern, store)
                    if detail is not None:
                        found[id(store)] = (store, detail)
        return list(found.values())


def _statement_detail(grant: Grant, statement: Statement, actions: list[str], pattern: str, store: Store) -> str | None:
    for handle in store.handles:
        relevant = [
            a for a in actions if any(wildcard_match(_action_services(a), s, ignore_case=True) for s in handle.services)
        ]
        if relevant and handle.covered_by(pattern):
            return f"{grant.label} grants {', '.join(relevant)} on {pattern}"
    return None


__all__ = [
    "AccessModel",
    "Grant",
    "Handle",
    "Reach",
    "Store",
    "aws_managed_policy_name",
    "managed_policy_snapshot",
]


# --------------------------------------------------------------------------------------------------
# One model per AnalyzeStack.
# --------------------------------------------------------------------------------------------------
class _Shared:
    key: tuple[str, ...] | None = None
    model: AccessModel | None = None
    served: set[str] = set()  # noqa: RUF012 (one process, one analysis at a time)


def shared_model(resources: Sequence[StackResource], rule: str) -> AccessModel:
    """The model of the stack being analyzed, built once per `AnalyzeStack`.

    pulumi_policy hands every stack policy its own copy of the resources, one policy after the other
    within one request. The model is reused while the URNs are the same and the asking rule has not
    been served yet; a rule asking twice means a new request (e.g. `pulumi up` after its preview), so
    the model is rebuilt from the new values."""
    key = tuple(r.urn for r in resources)
    if _Shared.model is not None and _Shared.key == key and rule not in _Shared.served:
        _Shared.served.add(rule)
        return _Shared.model
    _Shared.key, _Shared.model, _Shared.served = key, AccessModel(resources), {rule}
    return _Shared.model


def model_of(resources: Sequence[StackResource], config: Mapping[str, Any]) -> AccessModel:
    """The shared model a served rule was handed, or a fresh one (unit tests)."""
    from .core import SHARED_MODEL

    model = config.get(SHARED_MODEL)
    return model if isinstance(model, AccessModel) else AccessModel(resources)
