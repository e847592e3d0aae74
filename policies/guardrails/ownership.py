"""`no-shared-databases`: database per service, one statement over the access model.

A data store is a database resource (RDS instance/cluster, DynamoDB table with its indexes and
streams, ElastiCache replication group/cluster) together with everything in its
`microservices:data:*` component (ElastiCache users and user groups, secrets, KMS keys, security
groups). Its owner is the nearest service component (FargateMicroservice or NotificationFunction) in
its parent chain. The rule states: **the set of services that can reach each data store through any
path of the access model (`access.AccessModel`) is exactly its owner**. The paths:
* IAM: a role the service's compute runs as (or can become by escalation) is granted an action of
  the store's AWS service on a pattern covering it: inline, customer- or AWS-managed policies (an
  AWS-managed policy unknown to the snapshot could grant anything);
* resource policies (DynamoDB resource policy, secret policy, KMS key policy) naming a role the
  service runs as, or everyone;
* network: the service's ECS service or Lambda is attached to a security group that the store's
  security group admits (or to the store's group itself); CIDRs and prefix lists into the store's
  group are "reachable from outside its owner";
* credentials: a literal string of the service's compute (environment, secrets, command) holds the
  store's endpoint, name, ARN or credentials secret ARN;
* dependencies: a resource of the service depends on the store or a member of its component.
Each message names the store, its owner, the intruder and the path. The data patterns (read models,
outboxes, saga state machines) add the checks of `patterns.py`.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from .access import AccessModel, Store, model_of, shared_model
from .core import (
    Config,
    EnforcementLevel,
    Finding,
    Severity,
    StackResource,
    StackRule,
    service_owners,
)
from .patterns import pattern_findings


def check_no_shared_databases(resources: Sequence[StackResource], config: Config) -> Iterator[Finding]:
    model = model_of(resources, config)
    stores = model.stores()
    if not stores:
        return
    for store in stores:
        yield from _single_owner(store)
    seen: set[tuple[str, str, str]] = set()
    for store, reach in model.reach(stores):
        key = (store.resource.urn, reach.service.urn if reach.kind != "outside" else "", reach.urn + reach.path)
        if key in seen:
            continue
        seen.add(key)
        if reach.kind == "outside":
            yield Finding(_beyond_owner(store, reach.path), reach.urn)
        else:
            yield Finding(_shared(store, reach.service, reach.path), reach.urn)
    # Read models, outboxes and sagas: paths that start at no service, and saga state machine grants.
    yield from pattern_findings(resources, stores)
    _finish(model)


def _finish(model: AccessModel) -> None:
    if model.unknown is not None:
        raise model.unknown


def _shared(store: Store, intruder: StackResource, path: str) -> str:
    owner = store.owner.name if store.owner is not None else "?"
    return (
        f"Database '{store.name}' ({store.label}) owned by service '{owner}' is shared with "
        f"service '{intruder.name}': {path}"
    )


def _single_owner(store: Store) -> Iterator[Finding]:
    owners = service_owners(store.resource)
    if not owners:
        yield Finding(
            f"Database '{store.name}' ({store.label}) belongs to no service: declare it inside the component "
            "of the one FargateMicroservice or NotificationFunction that owns it.",
            store.resource.urn,
        )
    elif len(owners) > 1:
        names = ", ".join(f"'{o.name}'" for o in owners)
        yield Finding(
            f"Database '{store.name}' ({store.label}) is nested in several service components ({names}); "
            "a database belongs to exactly one service.",
            store.resource.urn,
        )


def _beyond_owner(store: Store, detail: str) -> str:
    owner = store.owner.name if store.owner is not None else "?"
    return (
        f"Database '{store.name}' ({store.label}) owned by service '{owner}' is reachable from outside its "
        f"owner: {detail}"
    )


NO_SHARED_DATABASES = StackRule(
    name="no-shared-databases",
    description=(
        "Database per service: the services that can reach each data store (RDS, DynamoDB incl. indexes and "
        "streams, ElastiCache incl. users and user groups, their secrets and KMS keys) through IAM (incl. "
        "managed policies and privilege escalation), resource policies, security groups, credentials or "
        "dependencies are exactly its owner."
    ),
    severity=Severity.CRITICAL,
    enforcement=EnforcementLevel.MANDATORY,
    remediation=(
        "Declare the database inside the owning service's component. Other services must call the owner's API "
        "(through the mesh) or consume its events instead of reading its data: remove their IAM statements, "
        "security group rules, secret references and dependencies on the database."
    ),
    check=check_no_shared_databases,
    model=shared_model,
)

RULES = [NO_SHARED_DATABASES]
