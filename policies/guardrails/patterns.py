"""`no-shared-databases` over the data patterns (components/patterns/ in the program).

Read models and outboxes are data stores like any other (the access model covers what services
reach). Three paths the access model does not see, because they start at no service:
* a role of NO service (a projection or pipe declared outside its owner's component) granted an
  action on a store: the store is reachable from outside its owner;
* a pipe or event source mapping of no service that depends on a store (reads its stream);
and one resource that is not a database but belongs to its service the same way:
* a saga's state machine. Other services may hold only `states:SendTaskSuccess`,
  `states:SendTaskFailure` and `states:SendTaskHeartbeat` on its EXACT ARN (a participant's answers);
  any other `states:` action on it, or a wildcard resource covering it, shares the orchestrator's workflow.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from .access import Handle, Store
from .core import (
    HOLE,
    Finding,
    InvalidJson,
    StackResource,
    as_list,
    depends_on,
    known,
    mapping,
    property_deps,
    service_owner,
)
from .documents import InvalidPolicyDocument, actions_for_services, parse_policy

ROLE = "aws:iam/role:Role"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
MANAGED_POLICY = "aws:iam/policy:Policy"
ATTACHMENTS = ("aws:iam/rolePolicyAttachment:RolePolicyAttachment", "aws:iam/policyAttachment:PolicyAttachment")
STATE_MACHINE = "aws:sfn/stateMachine:StateMachine"
STREAM_READERS = ("aws:pipes/pipe:Pipe", "aws:lambda/eventSourceMapping:EventSourceMapping")
SAGA_ANSWERS = frozenset({"states:SendTaskSuccess", "states:SendTaskFailure", "states:SendTaskHeartbeat"})


def _owner_label(store: Store) -> str:
    return store.owner.name if store.owner is not None else "?"


def _outside(store: Store, detail: str) -> str:
    return (
        f"Database '{store.name}' ({store.label}) owned by service '{_owner_label(store)}' is reachable from "
        f"outside its owner: {detail}"
    )


def _documents(policy: StackResource) -> Iterator[Any]:
    if policy.resource_type == ROLE:
        for inline in as_list(policy.props.get("inlinePolicies")):
            if mapping(inline).get("policy"):
                yield mapping(inline)["policy"]
    elif policy.props.get("policy"):
        yield policy.props["policy"]


def _allows(policy: StackResource) -> Iterator[tuple[tuple[str, ...], tuple[str, ...]]]:
    """(actions, resource patterns) of each Allow statement (unreadable documents: other rules report them)."""
    for document in _documents(policy):
        try:
            statements = parse_policy(document)
        except (InvalidPolicyDocument, InvalidJson):
            continue
        for statement in statements:
            if statement.allows:
                yield tuple(statement.action_patterns()), tuple(statement.resource_patterns())


def _holders(resources: Sequence[StackResource]) -> dict[str, tuple[StackResource, list[StackResource]]]:
    """Policy URN -> (policy, the roles it is granted to)."""
    found: dict[str, tuple[StackResource, list[StackResource]]] = {}

    def add(policy: StackResource, role: StackResource) -> None:
        entry = found.setdefault(policy.urn, (policy, []))
        if all(r.urn != role.urn for r in entry[1]):
            entry[1].append(role)

    for r in resources:
        if r.resource_type == ROLE:
            add(r, r)
        elif r.resource_type == ROLE_POLICY:
            for role in property_deps(r, "role", ROLE):
                add(r, role)
        elif r.resource_type in ATTACHMENTS:
            roles = property_deps(r, "role", ROLE) + property_deps(r, "roles", ROLE)
            for policy in property_deps(r, "policyArn", MANAGED_POLICY):
                for role in roles:
                    add(policy, role)
    return found


def pattern_findings(resources: Sequence[StackResource], stores: Sequence[Store]) -> Iterator[Finding]:
    holders = _holders(resources)
    owned = [s for s in stores if s.owner is not None]
    yield from _ownerless_grants(holders, owned)
    yield from _ownerless_readers(resources, owned)
    yield from _saga_grants(resources, holders)


def _ownerless_grants(
    holders: dict[str, tuple[StackResource, list[StackResource]]], stores: Sequence[Store]
) -> Iterator[Finding]:
    for policy, roles in holders.values():
        if not roles or any(service_owner(role) is not None for role in roles) or service_owner(policy):
            continue
        for actions, patterns in _allows(policy):
            for store in stores:
                for handle in store.handles:
                    relevant = actions_for_services(actions, handle.services)
                    pattern = next((p for p in patterns if relevant and handle.covered_by(p)), None)
                    if pattern is not None:
                        detail = (
                            f"{policy.resource_type} '{policy.name}' of no service grants {', '.join(relevant)} "
                            f"on {pattern}"
                        )
                        yield Finding(_outside(store, detail), policy.urn)
                        break


def _ownerless_readers(resources: Sequence[StackResource], stores: Sequence[Store]) -> Iterator[Finding]:
    by_member = {urn: store for store in stores for urn in (store.resource.urn, *store.members)}
    for resource in resources:
        if resource.resource_type not in STREAM_READERS or service_owner(resource) is not None:
            continue
        store = next((by_member[d.urn] for d in depends_on(resource) if d.urn in by_member), None)
        if store is not None:
            detail = f"{resource.resource_type} '{resource.name}' of no service reads it"
            yield Finding(_outside(store, detail), resource.urn)


def _saga_grants(
    resources: Sequence[StackResource], holders: dict[str, tuple[StackResource, list[StackResource]]]
) -> Iterator[Finding]:
    machines = []
    for machine in (r for r in resources if r.resource_type == STATE_MACHINE):
        owner, arn, name = service_owner(machine), known(machine.props, "arn"), known(machine.props, "name")
        if owner is None or not isinstance(arn, str) or not arn:
            continue
        part = f"stateMachine:{name}" if isinstance(name, str) and name else f"stateMachine:{HOLE}"
        machines.append((machine, owner, arn, Handle(("states",), (part,), arn)))
    if not machines:
        return
    for policy, roles in holders.values():
        services = {s.urn: s for role in roles if (s := service_owner(role)) is not None}
        if not services:
            continue
        for actions, patterns in _allows(policy):
            relevant = actions_for_services(actions, ("states",))
            if not relevant:
                continue
            for machine, owner, arn, handle in machines:
                covering = [p for p in patterns if handle.covered_by(p)]
                intruders = [s for urn, s in services.items() if urn != owner.urn]
                if not covering or not intruders:
                    continue
                extra = [a for a in relevant if a not in SAGA_ANSWERS]
                wild = [p for p in covering if p != arn]
                if extra:
                    what = f"{', '.join(extra)} (participants may only answer: {', '.join(sorted(SAGA_ANSWERS))})"
                elif wild:
                    what = f"{', '.join(relevant)} on {', '.join(wild)} (name the state machine's exact ARN)"
                else:
                    continue
                for service in intruders:
                    yield Finding(
                        f"Saga state machine '{machine.name}' owned by service '{owner.name}' is shared with service "
                        f"'{service.name}': {policy.resource_type} '{policy.name}' grants {what}",
                        policy.urn,
                    )
