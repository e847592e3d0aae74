"""The internet edge: Application Load Balancer listeners and settings, WAFv2, API Gateway v2 stages."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from .core import (
    LOAD_BALANCER_TYPES,
    PRODUCTION_ENVIRONMENTS_SCHEMA,
    Config,
    EnforcementLevel,
    Finding,
    Resource,
    ResourceRule,
    Severity,
    StackResource,
    StackRule,
    as_list,
    each,
    is_production,
    known,
    mapping,
    number,
    of_types,
    production_label,
    property_deps,
    truthy,
)

LISTENER_TYPES = ("aws:lb/listener:Listener", "aws:alb/listener:Listener")
WEB_ACL_ASSOCIATION = "aws:wafv2/webAclAssociation:WebAclAssociation"
API_STAGE = "aws:apigatewayv2/stage:Stage"

MODERN_TLS_POLICIES = [
    "ELBSecurityPolicy-TLS13-1-2-2021-06",
    "ELBSecurityPolicy-TLS13-1-2-Res-2021-06",
    "ELBSecurityPolicy-TLS13-1-3-2021-06",
    "ELBSecurityPolicy-TLS13-1-2-FIPS-2023-04",
    "ELBSecurityPolicy-TLS13-1-2-Res-FIPS-2023-04",
    "ELBSecurityPolicy-TLS13-1-3-FIPS-2023-04",
    "ELBSecurityPolicy-TLS13-1-2-PQ-2025-09",
    "ELBSecurityPolicy-TLS13-1-2-Res-PQ-2025-09",
    "ELBSecurityPolicy-TLS13-1-3-PQ-2025-09",
    "ELBSecurityPolicy-TLS13-1-2-FIPS-PQ-2025-09",
    "ELBSecurityPolicy-TLS13-1-2-Res-FIPS-PQ-2025-09",
    "ELBSecurityPolicy-TLS13-1-3-FIPS-PQ-2025-09",
]
"""TLS 1.2+ policies without the extra CBC suites of the Ext* variants (ELBSecurityPolicy-TLS13-1-2-2021-06
is AWS's recommendation; the others are stricter)."""


def _is_application(resource: Resource) -> bool:
    return resource.props.get("loadBalancerType") in (None, "application")


# --- listeners ------------------------------------------------------------------------------------
def check_listener(resource: Resource, config: Config) -> Iterator[str]:
    props = resource.props
    protocol = str(props.get("protocol") or "").upper()
    label = f"listener '{resource.name}'"
    if protocol in ("HTTPS", "TLS"):
        allowed = [str(p) for p in config.get("allowedSslPolicies") or ()]
        policy = props.get("sslPolicy")
        if policy not in allowed:
            yield (
                f"{label} uses TLS policy '{policy or 'unset (ELBSecurityPolicy-2016-08)'}'; use one of: "
                f"{', '.join(allowed)}."
            )
        if not props.get("certificateArn"):
            yield f"{label} has no certificateArn (an ACM certificate)."
    elif protocol == "HTTP":
        return  # judged with its load balancer and security groups by ALB_PLAINTEXT_LISTENERS (a stack rule)
    elif protocol:
        return
    else:
        yield f"{label} declares no protocol; the AWS default for an application load balancer is plain HTTP."


ALB_HTTPS_LISTENERS = ResourceRule(
    name="alb-https-listeners",
    description=(
        "Load balancer HTTPS/TLS listeners use a modern TLS policy (TLS 1.2+, ELBSecurityPolicy-TLS13-1-2-2021-06 "
        "or stricter) and an ACM certificate (plain HTTP: alb-plaintext-listeners)."
    ),
    severity=Severity.HIGH,
    enforcement=EnforcementLevel.MANDATORY,
    remediation=(
        "Serve on 443 with protocol HTTPS, an ACM certificateArn and sslPolicy "
        "ELBSecurityPolicy-TLS13-1-2-2021-06; make the port 80 listener a single redirect action to HTTPS."
    ),
    config_schema={
        "allowedSslPolicies": {
            "type": "array",
            "items": {"type": "string"},
            "default": MODERN_TLS_POLICIES,
            "description": "ELB security policies accepted on HTTPS/TLS listeners.",
        }
    },
    applies=of_types(*LISTENER_TYPES),
    check=check_listener,
)


def _redirects_to_https(listener: Resource) -> bool:
    actions = [mapping(a) for a in as_list(listener.props.get("defaultActions"))]
    redirect = mapping(actions[0].get("redirect")) if len(actions) == 1 else {}
    return (
        len(actions) == 1
        and actions[0].get("type") == "redirect"
        and str(redirect.get("protocol", "")).upper() == "HTTPS"
    )


SG_INGRESS_TYPES = (
    "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule",
    "aws:ec2/securityGroupRule:SecurityGroupRule",
)


def _admits_only_groups(group: StackResource, port: int, resources: Sequence[StackResource]) -> bool:
    """No address range (only other security groups) may reach `port` through `group`."""
    for inline in as_list(group.props.get("ingress")):
        entry = mapping(inline)
        low, high = number(entry.get("fromPort")), number(entry.get("toPort"))
        if low is not None and high is not None and not low <= port <= high:
            continue
        if entry.get("cidrBlocks") or entry.get("ipv6CidrBlocks") or entry.get("prefixListIds"):
            return False
    for rule in resources:
        if rule.resource_type not in SG_INGRESS_TYPES or not any(
            d.urn == group.urn for d in property_deps(rule, "securityGroupId")
        ):
            continue
        props = rule.props
        if props.get("type", "ingress") != "ingress":
            continue
        low, high = number(props.get("fromPort")), number(props.get("toPort"))
        if low is not None and high is not None and not low <= port <= high:
            continue
        if not (props.get("referencedSecurityGroupId") or props.get("sourceSecurityGroupId")):
            return False
    return True


def check_plaintext_listeners(resources: Sequence[StackResource], _config: Config) -> Iterator[Finding]:
    def check(listener: StackResource) -> Iterator[Finding]:
        if str(listener.props.get("protocol") or "").upper() != "HTTP" or _redirects_to_https(listener):
            return
        port = int(number(listener.props.get("port")) or 80)
        balancers = property_deps(listener, "loadBalancerArn")
        internal = bool(balancers) and all(truthy(lb.props.get("internal")) for lb in balancers)
        groups = [g for lb in balancers for g in property_deps(lb, "securityGroups")]
        if internal and groups and all(_admits_only_groups(g, port, resources) for g in groups):
            return
        yield Finding(
            f"listener '{listener.name}' serves plain HTTP: its only default action must redirect to HTTPS "
            "(HTTP_301), unless its load balancer is internal and its security groups admit port "
            f"{port} from other security groups only (no address ranges).",
            listener.urn,
        )

    yield from each((r for r in resources if r.resource_type in LISTENER_TYPES), check)


ALB_PLAINTEXT_LISTENERS = StackRule(
    name="alb-plaintext-listeners",
    description=(
        "A plain-HTTP listener only redirects to HTTPS, except on an internal load balancer whose security "
        "groups admit the port from named security groups only (the API Gateway VPC link hop)."
    ),
    severity=Severity.HIGH,
    enforcement=EnforcementLevel.MANDATORY,
    remediation=(
        "Make the port 80 listener a single redirect action to HTTPS, or put it on an internal load balancer "
        "whose security group ingress on that port references only the calling security group."
    ),
    check=check_plaintext_listeners,
)


# --- load balancer settings -----------------------------------------------------------------------
def check_access_logs(resource: Resource, _config: Config) -> Iterator[str]:
    logs = mapping(resource.props.get("accessLogs"))
    if _is_application(resource) and not (truthy(logs.get("enabled")) and logs.get("bucket")):
        yield f"load balancer '{resource.name}' does not write access logs (accessLogs: {{enabled: true, bucket}})."


ALB_ACCESS_LOGS = ResourceRule(
    name="alb-access-logs",
    description="Application load balancers write access logs.",
    severity=Severity.MEDIUM,
    enforcement=EnforcementLevel.MANDATORY,
    remediation=(
        "Set accessLogs: {enabled: true, bucket: <log bucket>, prefix: <env>} (the bucket policy must allow ELB)."
    ),
    applies=of_types(*LOAD_BALANCER_TYPES),
    check=check_access_logs,
)


def check_drop_invalid_headers(resource: Resource, _config: Config) -> Iterator[str]:
    if _is_application(resource) and not truthy(resource.props.get("dropInvalidHeaderFields")):
        yield f"load balancer '{resource.name}' forwards invalid HTTP headers (dropInvalidHeaderFields: true)."


ALB_DROP_INVALID_HEADER_FIELDS = ResourceRule(
    name="alb-drop-invalid-header-fields",
    description="Application load balancers drop invalid HTTP header fields (request smuggling defence).",
    severity=Severity.MEDIUM,
    enforcement=EnforcementLevel.MANDATORY,
    remediation="Set dropInvalidHeaderFields: true.",
    applies=of_types(*LOAD_BALANCER_TYPES),
    check=check_drop_invalid_headers,
)


def check_deletion_protection(resource: Resource, config: Config) -> Iterator[str]:
    if is_production(resource, config) and not truthy(resource.props.get("enableDeletionProtection")):
        yield (
            f"load balancer '{resource.name}' has no deletion protection in production "
            f"({production_label(resource)}; enableDeletionProtection: true)."
        )


ALB_DELETION_PROTECTION_IN_PRODUCTION = ResourceRule(
    name="alb-deletion-protection-in-production",
    description="In production, load balancers have deletion protection.",
    severity=Severity.MEDIUM,
    enforcement=EnforcementLevel.MANDATORY,
    remediation="In production set enableDeletionProtection: true.",
    config_schema={"productionEnvironments": PRODUCTION_ENVIRONMENTS_SCHEMA},
    applies=of_types(*LOAD_BALANCER_TYPES),
    check=check_deletion_protection,
)


# --- WAF (stack) ----------------------------------------------------------------------------------
def _protected(load_balancer: StackResource, associations: Sequence[StackResource]) -> bool:
    arn = known(load_balancer.props, "arn")
    return any(
        any(d.urn == load_balancer.urn for d in property_deps(a, "resourceArn"))
        or (isinstance(arn, str) and known(a.props, "resourceArn") == arn)
        for a in associations
    )


def check_waf(resources: Sequence[StackResource], _config: Config) -> Iterator[Finding]:
    associations = [r for r in resources if r.resource_type == WEB_ACL_ASSOCIATION]

    def check(load_balancer: StackResource) -> Iterator[Finding]:
        public = _is_application(load_balancer) and not truthy(load_balancer.props.get("internal"))
        if public and not _protected(load_balancer, associations):
            yield Finding(
                f"internet-facing load balancer '{load_balancer.name}' is not associated with a WAFv2 web ACL "
                f"({WEB_ACL_ASSOCIATION}).",
                load_balancer.urn,
            )

    yield from each((r for r in resources if r.resource_type in LOAD_BALANCER_TYPES), check)


ALB_WAF_ASSOCIATION = StackRule(
    name="alb-waf-association",
    description="Every internet-facing application load balancer is protected by a WAFv2 web ACL.",
    severity=Severity.HIGH,
    enforcement=EnforcementLevel.MANDATORY,
    remediation=(
        "Declare an aws.wafv2.WebAcl (scope REGIONAL, AWS managed rule groups, rate limiting) and an "
        "aws.wafv2.WebAclAssociation with resourceArn = the load balancer's arn."
    ),
    check=check_waf,
)


# --- API Gateway v2 stages ------------------------------------------------------------------------
def check_stage_access_logs(resource: Resource, _config: Config) -> Iterator[str]:
    settings = mapping(resource.props.get("accessLogSettings"))
    if not (settings.get("destinationArn") and settings.get("format")):
        yield (
            f"API Gateway stage '{resource.name}' writes no access logs "
            "(accessLogSettings.destinationArn and accessLogSettings.format)."
        )


APIGW_STAGE_ACCESS_LOGS = ResourceRule(
    name="apigw-stage-access-logs",
    description="API Gateway (v2) stages write access logs.",
    severity=Severity.MEDIUM,
    enforcement=EnforcementLevel.MANDATORY,
    remediation=(
        "Set accessLogSettings: {destinationArn: <log group arn>, format: <JSON line with $context.requestId>}."
    ),
    applies=of_types(API_STAGE),
    check=check_stage_access_logs,
)


def check_stage_throttling(resource: Resource, _config: Config) -> Iterator[str]:
    settings = mapping(resource.props.get("defaultRouteSettings"))
    rate, burst = number(settings.get("throttlingRateLimit")), number(settings.get("throttlingBurstLimit"))
    if not rate or not burst or rate <= 0 or burst <= 0:
        yield (
            f"API Gateway stage '{resource.name}' has no default throttling "
            "(defaultRouteSettings.throttlingRateLimit and throttlingBurstLimit > 0)."
        )


APIGW_STAGE_THROTTLING = ResourceRule(
    name="apigw-stage-throttling",
    description="API Gateway (v2) stages throttle requests by default.",
    severity=Severity.MEDIUM,
    enforcement=EnforcementLevel.MANDATORY,
    remediation="Set defaultRouteSettings: {throttlingRateLimit: <req/s>, throttlingBurstLimit: <burst>}.",
    applies=of_types(API_STAGE),
    check=check_stage_throttling,
)

RULES = [
    ALB_HTTPS_LISTENERS,
    ALB_PLAINTEXT_LISTENERS,
    ALB_ACCESS_LOGS,
    ALB_DROP_INVALID_HEADER_FIELDS,
    ALB_DELETION_PROTECTION_IN_PRODUCTION,
    ALB_WAF_ASSOCIATION,
    APIGW_STAGE_ACCESS_LOGS,
    APIGW_STAGE_THROTTLING,
]
