"""The network: internet-facing security group ingress and VPC flow logs."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from .core import (
    EDGE_COMPONENT,
    Config,
    Deferred,
    EnforcementLevel,
    Finding,
    Severity,
    StackResource,
    StackRule,
    ancestors,
    each,
    known,
    property_deps,
    tags,
)
from .firewall import ingress_edges

VPC = "aws:ec2/vpc:Vpc"
AWSX_VPC = "awsx:ec2:Vpc"
FLOW_LOG = "aws:ec2/flowLog:FlowLog"
ANYWHERE = ("0.0.0.0/0", "::/0")


# --- public ingress -------------------------------------------------------------------------------
def is_public_group(resource: StackResource) -> bool:
    """The internet-facing load balancer's security group: inside the Edge component, or tagged
    Exposure=public."""
    in_edge = any(a.resource_type == EDGE_COMPONENT for a in ancestors(resource))
    return in_edge or tags(resource).get("Exposure") == "public"


def check_public_ingress(resources: Sequence[StackResource], config: Config) -> Iterator[Finding]:
    allowed = {int(p) for p in config.get("publicPorts") or ()}

    def check(resource: StackResource) -> Iterator[Finding]:
        for edge in ingress_edges(resource):
            open_to = [c for c in edge.cidrs if c in ANYWHERE]
            if not open_to:
                continue
            groups = edge.targets or (edge.rule,)
            public = all(is_public_group(g) for g in groups)
            if public and edge.only_ports(allowed):
                continue
            where = ", ".join(f"'{g.name}'" for g in edge.targets) or "its security group"
            reason = (
                f"only ports {', '.join(str(p) for p in sorted(allowed))} of the public load balancer's group may be"
                if public
                else "only the public load balancer's security group (Edge component or tag Exposure=public) may be"
            )
            yield Finding(
                f"security group rule '{edge.rule.name}' opens {edge.ports()} of {where} to {' and '.join(open_to)}; "
                f"{reason} open to the internet.",
                edge.rule.urn,
            )

    yield from each(resources, check)


SECURITY_GROUP_NO_PUBLIC_INGRESS = StackRule(
    name="security-group-no-public-ingress",
    description=(
        "No security group admits 0.0.0.0/0 or ::/0, except ports 80 and 443 on the internet-facing load "
        "balancer's security group."
    ),
    severity=Severity.HIGH,
    enforcement=EnforcementLevel.MANDATORY,
    remediation=(
        "Reference the caller's security group instead of a CIDR. Only the load balancer's security group "
        "(declared in the Edge component, or tagged Exposure=public) may admit the internet, on 80 and 443."
    ),
    config_schema={
        "publicPorts": {
            "type": "array",
            "items": {"type": "integer"},
            "default": [80, 443],
            "description": "TCP ports the public load balancer's security group may open to the internet.",
        }
    },
    check=check_public_ingress,
)


# --- flow logs ------------------------------------------------------------------------------------
def _logged_vpcs(flow_logs: Sequence[StackResource]) -> tuple[set[str], set[str]]:
    """(URNs of the VPC resources flow logs depend on through vpcId, the literal vpcId values)."""
    urns: set[str] = set()
    ids: set[str] = set()
    for log in flow_logs:
        for dep in property_deps(log, "vpcId"):
            urns.add(dep.urn)
            urns.update(a.urn for a in ancestors(dep) if a.resource_type == AWSX_VPC)
        value = known(log.props, "vpcId")
        if isinstance(value, str):
            ids.add(value)
    return urns, ids


def check_flow_logs(resources: Sequence[StackResource], _config: Config) -> Iterator[Finding]:
    deferred = Deferred()
    urns, ids = _logged_vpcs([r for r in resources if r.resource_type == FLOW_LOG])

    def check(vpc: StackResource) -> Iterator[Finding]:
        if vpc.resource_type == VPC and any(a.resource_type == AWSX_VPC for a in ancestors(vpc)):
            return  # the awsx component stands for it
        children = [
            r.urn for r in resources if r.resource_type == VPC and r.parent is not None and r.parent.urn == vpc.urn
        ]
        own_ids = {v for v in (known(vpc.props, "vpcId"), known(vpc.props, "id")) if isinstance(v, str)}
        if vpc.urn in urns or urns.intersection(children) or ids.intersection(own_ids):
            return
        yield Finding(f"VPC '{vpc.name}' has no flow log ({FLOW_LOG} with vpcId = this VPC).", vpc.urn)

    yield from deferred.each((r for r in resources if r.resource_type in (VPC, AWSX_VPC)), check)
    deferred.finish()


VPC_FLOW_LOGS = StackRule(
    name="vpc-flow-logs",
    description="Every VPC (aws.ec2.Vpc, or the awsx.ec2.Vpc component) has a flow log.",
    severity=Severity.MEDIUM,
    enforcement=EnforcementLevel.MANDATORY,
    remediation=(
        "Declare an aws.ec2.FlowLog with vpcId = the VPC's id (for awsx, `vpc.vpc_id`), trafficType ALL, to a "
        "CloudWatch log group with retention (or S3)."
    ),
    check=check_flow_logs,
)

RULES = [SECURITY_GROUP_NO_PUBLIC_INGRESS, VPC_FLOW_LOGS]
