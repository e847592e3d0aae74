"""Security group ingress as edges: which rule lets which sources (security groups, CIDRs) into which
security group, on which ports. Shared by the database-ownership, mesh and public-ingress rules.

Ingress is read from the three ways pulumi-aws declares it (sources: security groups, CIDRs, managed
prefix lists, `self`):
* `aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule` (one source per rule; preferred),
* `aws:ec2/securityGroupRule:SecurityGroupRule` with `type: ingress`,
* the inline `ingress` list of `aws:ec2/securityGroup:SecurityGroup`.
Security groups are resolved through property dependencies (`securityGroupId` ->
the SecurityGroup resource), which the engine knows even when the IDs are unknown during preview.
For the inline form the engine records the dependencies of the whole `ingress` list, so a source
group cannot be tied to one entry: every entry that names groups is taken to admit all of them.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .core import (
    SECURITY_GROUP,
    SG_INGRESS_RULE,
    SG_RULE,
    StackResource,
    as_list,
    number,
    property_deps,
    truthy,
)

ALL_PORTS = (0, 65535)


@dataclass(frozen=True)
class IngressEdge:
    rule: StackResource
    """The rule resource (the security group itself for its inline `ingress`)."""
    targets: tuple[StackResource, ...]
    """The security groups the rule opens (empty when they cannot be resolved)."""
    sources: tuple[StackResource, ...]
    """The security groups let in."""
    cidrs: tuple[str, ...]
    protocol: str
    from_port: int
    to_port: int
    prefix_lists: tuple[str, ...] = ()
    """Managed prefix lists let in (`prefixListId` / `prefixListIds`)."""

    @property
    def all_traffic(self) -> bool:
        return self.protocol in ("-1", "all")

    def ports(self) -> str:
        if self.all_traffic or (self.from_port, self.to_port) == ALL_PORTS:
            return "all ports"
        if self.from_port == self.to_port:
            return f"port {self.from_port}"
        return f"ports {self.from_port}-{self.to_port}"

    def only_ports(self, allowed: set[int]) -> bool:
        """Does the rule open nothing but TCP ports from `allowed`?"""
        if self.all_traffic or self.protocol not in ("tcp", "6"):
            return False
        if self.to_port - self.from_port > 1024:
            return False
        return all(port in allowed for port in range(self.from_port, self.to_port + 1))


def ingress_edges(resource: StackResource) -> Iterator[IngressEdge]:
    """The ingress edges a resource declares (none for resources that are not SGs or SG rules)."""
    props = resource.props
    if resource.resource_type == SG_INGRESS_RULE:
        yield _edge(
            resource,
            props,
            targets=property_deps(resource, "securityGroupId", SECURITY_GROUP),
            sources=property_deps(resource, "referencedSecurityGroupId", SECURITY_GROUP),
            cidrs=[props.get("cidrIpv4"), props.get("cidrIpv6")],
            protocol=props.get("ipProtocol"),
            prefix_lists=[props.get("prefixListId")],
        )
    elif resource.resource_type == SG_RULE and props.get("type") == "ingress":
        targets = property_deps(resource, "securityGroupId", SECURITY_GROUP)
        sources = property_deps(resource, "sourceSecurityGroupId", SECURITY_GROUP)
        yield _edge(
            resource,
            props,
            targets=targets,
            sources=[*sources, *targets] if truthy(props.get("self")) else sources,
            cidrs=[*as_list(props.get("cidrBlocks")), *as_list(props.get("ipv6CidrBlocks"))],
            protocol=props.get("protocol"),
            prefix_lists=as_list(props.get("prefixListIds")),
        )
    elif resource.resource_type == SECURITY_GROUP:
        named = property_deps(resource, "ingress", SECURITY_GROUP)
        for entry in as_list(props.get("ingress")):
            if not isinstance(entry, Mapping):
                continue
            sources = named if as_list(entry.get("securityGroups")) else []
            yield _edge(
                resource,
                entry,
                targets=[resource],
                sources=[*sources, resource] if truthy(entry.get("self")) else sources,
                cidrs=[*as_list(entry.get("cidrBlocks")), *as_list(entry.get("ipv6CidrBlocks"))],
                protocol=entry.get("protocol"),
                prefix_lists=as_list(entry.get("prefixListIds")),
            )


def _edge(
    rule: StackResource,
    props: Mapping[str, Any],
    *,
    targets: Sequence[StackResource],
    sources: Sequence[StackResource],
    cidrs: Sequence[Any],
    protocol: Any,
    prefix_lists: Sequence[Any] = (),
) -> IngressEdge:
    low, high = number(props.get("fromPort")), number(props.get("toPort"))
    proto = str(protocol if protocol is not None else "-1").lower()
    if proto in ("-1", "all") or low is None or high is None or low < 0:
        from_port, to_port = ALL_PORTS
    else:
        from_port, to_port = int(low), int(high)
    return IngressEdge(
        rule=rule,
        targets=tuple(targets),
        sources=tuple(sources),
        cidrs=tuple(str(c) for c in cidrs if c),
        protocol=proto,
        from_port=from_port,
        to_port=to_port,
        prefix_lists=tuple(str(p) for p in prefix_lists if p),
    )
