"""`no-shared-databases`: database per service, enforced on the whole stack.

A database's owner is the nearest service component (FargateMicroservice or NotificationFunction) in
its parent chain. Another service reaches a database when one of its resources (a resource whose
parent chain leads to that other service component):
* depends on the database, or on anything inside the database's `microservices:data:*` component
  (its security group, its secrets), through `dependsOn` or a property;
* holds an IAM grant on it: an Allow statement of a policy attached to that service's role names the
  database (ARN, name, index, IAM-auth user, or its credentials secret) or a wildcard covering it,
  for an action of the database's service;
* is let into the database's security group by a security group rule;
* reads the database's credentials secret in its container definitions.
The database's security group must also not admit CIDR ranges or groups of no service: only the
owner's own security groups.

The data patterns (components/patterns/) are held to the same rule:
* read models and outboxes (event stores) are DynamoDB tables like any other: an IAM grant on one by a
  role of NO service (a projection or pipe declared outside its owner's component) is reported, and
  so is a pipe or event source mapping of no service that reads a database's stream;
* a saga's state machine belongs to the service whose component declares it. Other services may
  hold exactly `states:SendTaskSuccess`, `states:SendTaskFailure` and `states:SendTaskHeartbeat`
  on its exact ARN (the answers of saga participants); any other `states:` action on it, or a
  wildcard resource covering it, shares the orchestrator's workflow and is reported.

ARN patterns are matched on their service and resource parts; region and account are not compared
(a pattern for another region still names the table if it is deployed there).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
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
    SECURITY_GROUP,
    TASK_DEFINITION,
    Config,
    Deferred,
    EnforcementLevel,
    Finding,
    InvalidJson,
    Severity,
    StackResource,
    StackRule,
    UnknownValueError,
    ancestors,
    as_list,
    depends_on,
    known,
    mapping,
    property_deps,
    service_owner,
    service_owners,
    wildcard_match,
)
from .documents import InvalidPolicyDocument, actions_for_services, parse_policy
from .firewall import ingress_edges

STATE_MACHINE = "aws:sfn/stateMachine:StateMachine"
STREAM_READERS = ("aws:pipes/pipe:Pipe", "aws:lambda/eventSourceMapping:EventSourceMapping")
"""Resources that read a database's stream on someone's behalf: they must belong to its owner."""
SAGA_ANSWERS = frozenset({"states:SendTaskSuccess", "states:SendTaskFailure", "states:SendTaskHeartbeat"})
ROLE = "aws:iam/role:Role"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
MANAGED_POLICY = "aws:iam/policy:Policy"
ROLE_POLICY_ATTACHMENT = "aws:iam/rolePolicyAttachment:RolePolicyAttachment"
POLICY_ATTACHMENT = "aws:iam/policyAttachment:PolicyAttachment"


@dataclass(frozen=True)
class Handle:
    """One way an IAM policy can name a database: `<service>:<resource part>` of its ARN."""

    services: tuple[str, ...]
    parts: tuple[str, ...]
    """Resource parts of the ARN; HOLE stands for what is unknown (only `*` covers it)."""
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
                wildcard_match(resource, part) for part in self.parts
            )
        return self.arn is not None and wildcard_match(pattern, self.arn)


@dataclass
class Database:
    resource: StackResource
    owner: StackResource | None
    label: str
    handles: list[Handle] = field(default_factory=list)
    secret_arns: list[str] = field(default_factory=list)
    members: dict[str, StackResource] = field(default_factory=dict)
    """URN -> resource of everything that belongs to the database (itself, its data component)."""

    def shared(self, intruder: StackResource, detail: str) -> str:
        owner = self.owner.name if self.owner is not None else "?"
        return (
            f"Database '{self.resource.name}' ({self.label}) owned by service '{owner}' is shared with "
            f"service '{intruder.name}': {detail}"
        )


def check_no_shared_databases(resources: Sequence[StackResource], config: Config) -> Iterator[Finding]:
    if not any(r.resource_type in DATABASE_TYPES for r in resources):
        return
    members_of_store = _members_by_data_component(resources)
    databases = [_database(r, members_of_store) for r in resources if r.resource_type in DATABASE_TYPES]
    deferred = Deferred()
    yield from deferred.each(databases, _single_owner)
    owned = [db for db in databases if db.owner is not None]
    by_member = {urn: db for db in owned for urn in db.members}
    yield from deferred.each(resources, lambda r: _dependencies(r, by_member))
    grantees = _grantees(resources)
    yield from deferred.each(grantees.values(), lambda entry: _iam_grants(*entry, owned))
    yield from deferred.each(_ownerless_grantees(resources), lambda policy: _ownerless_grants(policy, owned))
    machines = [r for r in resources if r.resource_type == STATE_MACHINE and service_owner(r) is not None]
    yield from deferred.each(grantees.values(), lambda entry: _saga_grants(*entry, machines))
    sg_owner = {sg.urn: db for db in owned for sg in _security_groups(db)}
    yield from deferred.each(resources, lambda r: _ingress(r, sg_owner))
    task_definitions = [r for r in resources if r.resource_type == TASK_DEFINITION]
    yield from deferred.each(task_definitions, lambda r: _secret_readers(r, owned))
    deferred.finish()


def _members_by_data_component(resources: Sequence[StackResource]) -> dict[str, list[StackResource]]:
    """Data-store component URN -> every resource below it (one pass, not one scan per database)."""
    members: dict[str, list[StackResource]] = {}
    for resource in resources:
        for ancestor in ancestors(resource):
            if ancestor.resource_type.startswith(DATA_COMPONENT_PREFIX):
                members.setdefault(ancestor.urn, []).append(resource)
    return members


def _database(resource: StackResource, members_of_store: Mapping[str, list[StackResource]]) -> Database:
    db = Database(resource, service_owner(resource), DATABASE_TYPES[resource.resource_type])
    db.members[resource.urn] = resource
    store = next((a for a in ancestors(resource) if a.resource_type.startswith(DATA_COMPONENT_PREFIX)), None)
    if store is not None:
        db.members[store.urn] = store
        for other in members_of_store.get(store.urn, []):
            db.members[other.urn] = other
    db.handles, db.secret_arns = _handles(resource)
    return db


def _handles(db: StackResource) -> tuple[list[Handle], list[str]]:
    props = db.props
    t = db.resource_type

    def name(key: str) -> str:
        value = known(props, key)
        return value if isinstance(value, str) and value else HOLE

    arn = known(props, "arn")
    arn = arn if isinstance(arn, str) else None
    handles: list[Handle] = []
    if t == DYNAMODB_TABLE:
        table = f"table/{name('name')}"
        handles.append(Handle(("dynamodb",), (table, f"{table}/{HOLE}"), arn))
    elif t == RDS_INSTANCE:
        handles.append(Handle(("rds",), (f"db:{name('identifier')}",), arn))
        handles.append(Handle(("rds-db",), (f"dbuser:{name('resourceId')}/{HOLE}",)))
    elif t == RDS_CLUSTER:
        handles.append(Handle(("rds", "rds-data"), (f"cluster:{name('clusterIdentifier')}",), arn))
        handles.append(Handle(("rds-db",), (f"dbuser:{name('clusterResourceId')}/{HOLE}",)))
    elif t == CACHE_REPLICATION_GROUP:
        handles.append(Handle(("elasticache",), (f"replicationgroup:{name('replicationGroupId')}",), arn))
    elif t == CACHE_CLUSTER:
        handles.append(Handle(("elasticache",), (f"cluster:{name('clusterId')}",), arn))
    secret_arns = _master_secret_arns(props)
    if t in (RDS_INSTANCE, RDS_CLUSTER) and known(props, "manageMasterUserPassword"):
        kind = "db" if t == RDS_INSTANCE else "cluster"
        parts = tuple(a.split(":", 5)[5] for a in secret_arns if a.count(":") >= 5) or (f"secret:rds!{kind}-{HOLE}",)
        handles.append(Handle(("secretsmanager",), parts, secret_arns[0] if secret_arns else None))
    return handles, secret_arns


def _master_secret_arns(props: Mapping[str, Any]) -> list[str]:
    # The secret is created by RDS: its ARN is an output, unknown during a first preview. An unknown
    # ARN only means that no literal can name it yet (see core.known).
    try:
        entries = as_list(props.get("masterUserSecrets"))
        return [a for a in (mapping(e).get("secretArn") for e in entries) if isinstance(a, str) and a]
    except UnknownValueError:
        return []


def _single_owner(db: Database) -> Iterator[Finding]:
    owners = service_owners(db.resource)
    if not owners:
        yield Finding(
            f"Database '{db.resource.name}' ({db.label}) belongs to no service: declare it inside the component "
            "of the one FargateMicroservice or NotificationFunction that owns it.",
            db.resource.urn,
        )
    elif len(owners) > 1:
        names = ", ".join(f"'{o.name}'" for o in owners)
        yield Finding(
            f"Database '{db.resource.name}' ({db.label}) is nested in several service components ({names}); "
            "a database belongs to exactly one service.",
            db.resource.urn,
        )


def _foreign_owner(resource: StackResource, db: Database) -> StackResource | None:
    owner = service_owner(resource)
    if owner is None or db.owner is None or owner.urn == db.owner.urn:
        return None
    return owner


def _dependencies(resource: StackResource, by_member: Mapping[str, Database]) -> Iterator[Finding]:
    if resource.resource_type in STREAM_READERS and service_owner(resource) is None:
        for dep in depends_on(resource):
            db = by_member.get(dep.urn)
            if db is not None:
                detail = f"{resource.resource_type} '{resource.name}' of no service reads it"
                yield Finding(_beyond_owner(db, detail), resource.urn)
                return
    seen: set[str] = set()
    for dep in depends_on(resource):
        db = by_member.get(dep.urn)
        if db is None or dep.urn in seen:
            continue
        intruder = _foreign_owner(resource, db)
        if intruder is None:
            continue
        seen.add(dep.urn)
        target = "it" if dep.urn == db.resource.urn else f"its {dep.resource_type} '{dep.name}'"
        detail = f"{resource.resource_type} '{resource.name}' depends on {target}"
        yield Finding(db.shared(intruder, detail), resource.urn)


def _grantees(resources: Sequence[StackResource]) -> dict[str, tuple[StackResource, list[StackResource]]]:
    """Policy resources and the service components whose roles they grant to (URN -> (policy, services))."""
    by_urn: dict[str, tuple[StackResource, list[StackResource]]] = {}

    def add(policy: StackResource, holder: StackResource) -> None:
        owner = service_owner(holder)
        if owner is None:
            return
        entry = by_urn.setdefault(policy.urn, (policy, []))
        if all(o.urn != owner.urn for o in entry[1]):
            entry[1].append(owner)

    for r in resources:
        if r.resource_type in (ROLE_POLICY, MANAGED_POLICY, ROLE):
            add(r, r)
        if r.resource_type == ROLE_POLICY:
            for role in property_deps(r, "role", ROLE):
                add(r, role)
        if r.resource_type in (ROLE_POLICY_ATTACHMENT, POLICY_ATTACHMENT):
            roles = property_deps(r, "role", ROLE) + property_deps(r, "roles", ROLE)
            for policy in property_deps(r, "policyArn", MANAGED_POLICY):
                for role in roles:
                    add(policy, role)
    return by_urn


def _ownerless_grantees(resources: Sequence[StackResource]) -> list[StackResource]:
    """Role policies (inline or attached) whose role belongs to no service component."""
    found: dict[str, StackResource] = {}
    for r in resources:
        if r.resource_type == ROLE and service_owner(r) is None and r.props.get("inlinePolicies"):
            found[r.urn] = r
        if r.resource_type == ROLE_POLICY:
            roles = property_deps(r, "role", ROLE)
            if roles and all(service_owner(role) is None for role in roles) and service_owner(r) is None:
                found[r.urn] = r
        if r.resource_type in (ROLE_POLICY_ATTACHMENT, POLICY_ATTACHMENT):
            roles = property_deps(r, "role", ROLE) + property_deps(r, "roles", ROLE)
            if roles and all(service_owner(role) is None for role in roles):
                for policy in property_deps(r, "policyArn", MANAGED_POLICY):
                    found[policy.urn] = policy
    return list(found.values())


def _ownerless_grants(policy: StackResource, databases: Iterable[Database]) -> Iterator[Finding]:
    for document in _documents(policy):
        try:
            statements = parse_policy(document)
        except (InvalidPolicyDocument, InvalidJson):
            continue
        for statement in (s for s in statements if s.allows):
            actions, patterns = statement.action_patterns(), statement.resource_patterns()
            for db in databases:
                grant = _grant(actions, patterns, db)
                if grant:
                    detail = f"{policy.resource_type} '{policy.name}' of no service grants {grant}"
                    yield Finding(_beyond_owner(db, detail), policy.urn)


def _saga_grants(
    policy: StackResource, services: list[StackResource], machines: Sequence[StackResource]
) -> Iterator[Finding]:
    """Another service's grants on a saga's state machine: only the participants' answers, on its exact ARN."""
    for document in _documents(policy):
        try:
            statements = parse_policy(document)
        except (InvalidPolicyDocument, InvalidJson):
            continue
        for statement in (s for s in statements if s.allows):
            actions, patterns = statement.action_patterns(), statement.resource_patterns()
            relevant = actions_for_services(actions, ("states",))
            if not relevant:
                continue
            for machine in machines:
                owner = service_owner(machine)
                arn = known(machine.props, "arn")
                name = known(machine.props, "name")
                if owner is None or not isinstance(arn, str) or not arn:
                    continue
                handle = Handle(("states",), (f"stateMachine:{name if isinstance(name, str) and name else HOLE}",), arn)
                covering = [p for p in patterns if handle.covered_by(p)]
                if not covering:
                    continue
                for service in services:
                    if service.urn == owner.urn:
                        continue
                    extra = [a for a in relevant if a not in SAGA_ANSWERS]
                    wild = [p for p in covering if p != arn]
                    if not extra and not wild:
                        continue
                    what = (
                        f"{', '.join(extra)} (participants may only answer: {', '.join(sorted(SAGA_ANSWERS))})"
                        if extra
                        else f"{', '.join(relevant)} on {', '.join(wild)} (name the state machine's exact ARN)"
                    )
                    yield Finding(
                        f"Saga state machine '{machine.name}' owned by service '{owner.name}' is shared with service "
                        f"'{service.name}': {policy.resource_type} '{policy.name}' grants {what}",
                        policy.urn,
                    )


def _documents(policy: StackResource) -> Iterator[Any]:
    if policy.resource_type == ROLE:
        for inline in as_list(policy.props.get("inlinePolicies")):
            if mapping(inline).get("policy"):
                yield mapping(inline)["policy"]
    elif policy.props.get("policy"):
        yield policy.props["policy"]


def _iam_grants(
    policy: StackResource, services: list[StackResource], databases: Iterable[Database]
) -> Iterator[Finding]:
    reported: set[tuple[str, str]] = set()
    for document in _documents(policy):
        try:
            statements = parse_policy(document)
        except (InvalidPolicyDocument, InvalidJson):
            continue  # iam-no-wildcard-permissions reports documents it cannot read
        for statement in (s for s in statements if s.allows):
            actions, patterns = statement.action_patterns(), statement.resource_patterns()
            for db in databases:
                assert db.owner is not None
                intruders = [s for s in services if s.urn != db.owner.urn and (db.resource.urn, s.urn) not in reported]
                if not intruders:
                    continue
                grant = _grant(actions, patterns, db)  # the same for every intruder: computed once
                if grant:
                    detail = f"{policy.resource_type} '{policy.name}' grants {grant}"
                    for service in intruders:
                        reported.add((db.resource.urn, service.urn))
                        yield Finding(db.shared(service, detail), policy.urn)


def _grant(actions: Sequence[str], patterns: Sequence[str], db: Database) -> str | None:
    for handle in db.handles:
        relevant = actions_for_services(actions, handle.services)
        if not relevant:
            continue
        for pattern in patterns:
            if handle.covered_by(pattern):
                return f"{', '.join(relevant)} on {pattern}"
    return None


def _security_groups(db: Database) -> list[StackResource]:
    groups = {
        sg.urn: sg
        for prop in ("vpcSecurityGroupIds", "securityGroupIds")
        for sg in property_deps(db.resource, prop, SECURITY_GROUP)
    }
    groups.update({urn: r for urn, r in db.members.items() if r.resource_type == SECURITY_GROUP})
    return list(groups.values())


def _ingress(resource: StackResource, sg_owner: Mapping[str, Database]) -> Iterator[Finding]:
    for edge in ingress_edges(resource):
        for target in edge.targets:
            db = sg_owner.get(target.urn)
            if db is None or db.owner is None:
                continue
            where = (
                f"security group rule '{edge.rule.name}' lets {{}} into the database's security group '{target.name}'"
            )
            for source in edge.sources:
                owner = service_owner(source)
                if owner is not None and owner.urn == db.owner.urn:
                    continue
                what = where.format(f"security group '{source.name}'")
                if owner is not None:
                    yield Finding(db.shared(owner, what), edge.rule.urn)
                else:
                    yield Finding(_beyond_owner(db, what), edge.rule.urn)
            for cidr in edge.cidrs:
                yield Finding(_beyond_owner(db, where.format(f"CIDR {cidr}")), edge.rule.urn)


def _beyond_owner(db: Database, detail: str) -> str:
    owner = db.owner.name if db.owner is not None else "?"
    return (
        f"Database '{db.resource.name}' ({db.label}) owned by service '{owner}' is reachable from outside its "
        f"owner: {detail}"
    )


def _secret_readers(task_definition: StackResource, databases: Iterable[Database]) -> Iterator[Finding]:
    candidates = [(db, arn) for db in databases for arn in db.secret_arns if _foreign_owner(task_definition, db)]
    if not candidates:
        return
    try:
        definitions = containers.container_definitions(task_definition.props)
    except InvalidJson:
        return  # the container rules report an unreadable task definition
    for db, arn in candidates:
        for container in definitions:
            refs = [str(mapping(s).get("valueFrom", "")) for s in as_list(container.get("secrets"))]
            if any(ref == arn or ref.startswith(arn + ":") for ref in refs):
                intruder = _foreign_owner(task_definition, db)
                assert intruder is not None
                detail = (
                    f"container '{container.get('name')}' of task definition '{task_definition.name}' "
                    "reads its credentials secret"
                )
                yield Finding(db.shared(intruder, detail), task_definition.urn)


NO_SHARED_DATABASES = StackRule(
    name="no-shared-databases",
    description=(
        "Database per service: every database (RDS, DynamoDB, ElastiCache) belongs to exactly one service "
        "component and no other service depends on it, is granted IAM access to it, is let into its security "
        "group or reads its credentials."
    ),
    severity=Severity.CRITICAL,
    enforcement=EnforcementLevel.MANDATORY,
    remediation=(
        "Declare the database inside the owning service's component. Other services must call the owner's API "
        "(through the mesh) or consume its events instead of reading its data: remove their IAM statements, "
        "security group rules, secret references and dependencies on the database."
    ),
    check=check_no_shared_databases,
)

RULES = [NO_SHARED_DATABASES]
