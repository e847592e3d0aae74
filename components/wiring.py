"""Wiring between components, each a small component of its own, declared after the things it wires.

A component is whole when its constructor returns (STYLE.md, "Composition"). What names resources of
two components (a rule of the bus targeting a function, a security-group rule between two services,
a secret policy naming a service's execution role) cannot be declared by either one when it is
built, so it is its own component here, built from both as arguments, reading only their public
outputs:

* `FunctionRoutes`: a Lambda consumer's `direct` rules -> the function (target with retries and the
  bus's targets DLQ, and a Lambda permission scoped to the rule's ARN);
* `EventPublishers`: the bus resource policy (each publisher's task role may put only its own source
  and detail-types) and the topic policy (only the notification publishers may publish);
* `MeshConnections`: the mesh port between each caller and callee (security-group ingress/egress,
  nothing else east-west) and each identity secret's policy (its own execution role reads it).

Alarms and the dashboard over everything are `components.observability.PlatformWatch`.

URNs. These resources were first declared as children of the EventBus and the ServiceMesh, by
methods called after construction. A URN contains the parent's type, so each resource here carries
`aliases=[pulumi.Alias(parent=<that component>)]`: for the engine it is the same resource under a
new parent (no replacement), and the names stay exactly what they were.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from components.envoy import MESH_PORT
from components.events import EventBus, _rule_name, publisher_policy, topic_policy
from components.mesh import ServiceMesh, identity_secret_policy
from model.aws_limits import ec2_description


def _moved_from(old_parent: pulumi.Resource, parent: pulumi.Resource, **extra: Any) -> pulumi.ResourceOptions:
    """Options of a child that used to be a child of `old_parent` (same name): alias the old URN."""
    return pulumi.ResourceOptions(parent=parent, aliases=[pulumi.Alias(parent=old_parent)], **extra)


# --- events -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FunctionRoutesArgs:
    bus: EventBus
    service: str
    """The Lambda consumer whose `direct` subscriptions these are (it must have at least one)."""
    function_arn: pulumi.Input[str]
    """The function's ARN, or its alias's ARN when callers go through an alias."""
    function_name: pulumi.Input[str]
    qualifier: str | None = None
    """The alias name when `function_arn` is an alias's (the invoke permission is then on the alias)."""


class FunctionRoutes(pulumi.ComponentResource):
    """The `direct` rules of one Lambda consumer, pointed at its function: each target retries for an
    hour and then dead-letters to the bus's targets DLQ; the function may be invoked only through a
    permission scoped to that rule's ARN."""

    rule_arns: list[pulumi.Output[str]]

    def __init__(self, name: str, args: FunctionRoutesArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        bus = args.bus
        routes = bus.direct_rules.get(args.service, [])
        if not routes:
            raise ValueError(f"FunctionRoutes: service {args.service!r} has no `direct` subscription")
        super().__init__("microservices:wiring:FunctionRoutes", name, None, opts)
        for route, rule in routes:
            base = _rule_name(f"{bus.component_name}-{route.consumer}-{route.publisher}-direct")
            aws.cloudwatch.EventTarget(
                f"{base}-target",
                rule=rule.name,
                event_bus_name=bus.bus_name,
                arn=args.function_arn,
                retry_policy=bus.retry_policy(),
                dead_letter_config=aws.cloudwatch.EventTargetDeadLetterConfigArgs(arn=bus.targets_dlq_arn),
                opts=_moved_from(bus, self),
            )
            aws.lambda_.Permission(
                f"{base}-invoke",
                action="lambda:InvokeFunction",
                function=args.function_name,
                principal="events.amazonaws.com",
                source_arn=rule.arn,
                qualifier=args.qualifier,
                opts=_moved_from(bus, self),
            )
        self.rule_arns = [rule.arn for _, rule in routes]
        self.register_outputs({"ruleArns": self.rule_arns})


@dataclass(frozen=True)
class EventPublishersArgs:
    bus: EventBus
    task_role_arns: Mapping[str, pulumi.Input[str]]
    """The task role of every service whose spec `publishes` (exactly those: a missing one could not
    publish, an extra one would be granted a source nobody declared)."""
    topic_publisher_role_arns: Sequence[pulumi.Input[str]] = ()
    """Roles that may publish to the notification topic (the notification function's); none: no topic policy."""


class EventPublishers(pulumi.ComponentResource):
    """Who may put events on the bus (see `components.events.publisher_policy`) and who may publish to
    the notification topic (TLS only)."""

    def __init__(self, name: str, args: EventPublishersArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        bus = args.bus
        publishers = bus.publishers
        missing = sorted(set(publishers) - set(args.task_role_arns))
        extra = sorted(set(args.task_role_arns) - set(publishers))
        if missing or extra:
            raise ValueError(
                "EventPublishers: pass one task role per publishing service "
                f"({', '.join(sorted(publishers))}); missing: {missing or 'none'}, not publishers: {extra or 'none'}"
            )
        super().__init__("microservices:wiring:EventPublishers", name, None, opts)
        services = sorted(publishers)

        def render(values: list[Any]) -> str:
            bus_arn, *roles = values
            return publisher_policy(bus_arn, {s: (r, publishers[s]) for s, r in zip(services, roles, strict=True)})

        bus_policy = aws.cloudwatch.EventBusPolicy(
            f"{bus.component_name}-bus-policy",
            event_bus_name=bus.bus_name,
            policy=pulumi.Output.all(bus.bus_arn, *(args.task_role_arns[s] for s in services)).apply(render),
            opts=_moved_from(bus, self),
        )
        outputs: dict[str, Any] = {"busPolicyId": bus_policy.id}
        if args.topic_publisher_role_arns:
            topic = aws.sns.TopicPolicy(
                f"{bus.component_name}-notifications-policy",
                arn=bus.topic_arn,
                policy=pulumi.Output.all(bus.topic_arn, *args.topic_publisher_role_arns).apply(
                    lambda v: topic_policy(v[0], v[1:])
                ),
                opts=_moved_from(bus, self),
            )
            outputs["topicPolicyId"] = topic.id
        self.register_outputs(outputs)


# --- mesh -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MeshConnectionsArgs:
    mesh: ServiceMesh
    security_group_ids: Mapping[str, pulumi.Input[str]]
    """Each meshed service's own security group, by service (every identity of the mesh must be here)."""
    execution_role_arns: Mapping[str, pulumi.Input[str]]
    """Each meshed service's ECS execution role: the only principal that may read its identity secret."""


class MeshConnections(pulumi.ComponentResource):
    """The east-west rules of the call graph and nothing else: for every allowed caller -> callee edge
    (the callee `accepts` the caller and the caller `calls` the callee), the callee's group admits the
    caller's group on MESH_PORT and the caller's group may send to the callee's on MESH_PORT. And each
    identity secret becomes readable by its own service's execution role only."""

    def __init__(self, name: str, args: MeshConnectionsArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        mesh = args.mesh
        for what, given in (("security group", args.security_group_ids), ("execution role", args.execution_role_arns)):
            missing = sorted(set(mesh.identities) - set(given))
            unknown = sorted(set(given) - set(mesh.identities))
            if missing or unknown:
                raise ValueError(
                    f"MeshConnections: one {what} per meshed service ({', '.join(sorted(mesh.identities))}); "
                    f"missing: {', '.join(missing) or 'none'}, not in the mesh: {', '.join(unknown) or 'none'}"
                )
        super().__init__("microservices:wiring:MeshConnections", name, None, opts)
        prefix, groups = mesh.component_name, args.security_group_ids
        tags = {**mesh.tags}
        for service, identity in mesh.identities.items():
            aws.secretsmanager.SecretPolicy(
                f"{prefix}-{service}-identity-policy",
                secret_arn=identity.secret_arn,
                policy=pulumi.Output.from_input(args.execution_role_arns[service]).apply(identity_secret_policy),
                block_public_policy=True,
                opts=_moved_from(mesh, self),
            )
        for callee, identity in mesh.identities.items():
            for caller in identity.callers:
                aws.vpc.SecurityGroupIngressRule(
                    f"{prefix}-{callee}-mesh-from-{caller}",
                    security_group_id=groups[callee],
                    referenced_security_group_id=groups[caller],
                    ip_protocol="tcp",
                    from_port=MESH_PORT,
                    to_port=MESH_PORT,
                    description=ec2_description(f"mTLS mesh: {caller} sidecar to {callee} sidecar"),
                    tags={**tags, "Service": callee},
                    opts=_moved_from(mesh, self),
                )
                aws.vpc.SecurityGroupEgressRule(
                    f"{prefix}-{caller}-mesh-to-{callee}",
                    security_group_id=groups[caller],
                    referenced_security_group_id=groups[callee],
                    ip_protocol="tcp",
                    from_port=MESH_PORT,
                    to_port=MESH_PORT,
                    description=ec2_description(f"mTLS mesh: {caller} sidecar to {callee} sidecar"),
                    tags={**tags, "Service": caller},
                    opts=_moved_from(mesh, self),
                )
        self.edges = sorted((caller, callee) for callee, i in mesh.identities.items() for caller in i.callers)
        self.register_outputs({"edges": [f"{a}->{b}" for a, b in self.edges]})
