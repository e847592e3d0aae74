"""Monthly cost estimate of a stack, computed from its plan (the resources the program declares).

    python -m offline cost --stack prod [--format table|json] [--compare OTHER_PLAN] [--refresh-prices]

Prices come from `offline/prices.json` (on-demand list prices per region, each with its unit, date and
source in the AWS public price list; `--refresh-prices` rebuilds it through the AWS Price List API).
Usage the plan cannot know (traffic, GB, requests, the Fargate Spot discount) comes from the stack's
`microservices:usage` config (`model.config.UsageAssumptions`) and is printed with the estimate.

Every custom resource of the plan ends up in exactly one place: a priced line, the list of resource
types AWS does not charge for (`FREE_TYPES`), or the list of types this table does not know, which is
printed: nothing is silently priced at zero. Free tiers, data transfer out of AWS, X-Ray traces and
backup storage beyond the free allowance are not estimated (`NOT_ESTIMATED`).

Cost lines are grouped by component (the top-level component a resource belongs to), by service (the
`Service` tag, `platform` for shared resources) and for the environment (the stack).
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

from offline.plan import Plan, PlannedResource

PRICES_FILE = Path(__file__).resolve().parent / "prices.json"

FREE_TYPES: Mapping[str, str] = {
    t: "no charge for the resource itself"
    for t in (
        "aws:acm/certificate:Certificate",
        "aws:acmpca/certificateAuthorityCertificate:CertificateAuthorityCertificate",
        "aws:apigatewayv2/integration:Integration",
        "aws:apigatewayv2/route:Route",
        "aws:apigatewayv2/stage:Stage",
        "aws:apigatewayv2/authorizer:Authorizer",
        "aws:apigatewayv2/vpcLink:VpcLink",
        "aws:appautoscaling/policy:Policy",
        "aws:appautoscaling/target:Target",
        "aws:cloudwatch/eventBusPolicy:EventBusPolicy",
        "aws:cloudwatch/eventRule:EventRule",
        "aws:cloudwatch/eventTarget:EventTarget",
        "aws:cloudwatch/logResourcePolicy:LogResourcePolicy",
        "aws:codedeploy/application:Application",
        "aws:codedeploy/deploymentGroup:DeploymentGroup",
        "aws:ec2/flowLog:FlowLog",
        "aws:ec2/securityGroup:SecurityGroup",
        "aws:ecr/lifecyclePolicy:LifecyclePolicy",
        "aws:ecr/repositoryPolicy:RepositoryPolicy",
        "aws:ecs/clusterCapacityProviders:ClusterCapacityProviders",
        "aws:ecs/taskDefinition:TaskDefinition",
        "aws:elasticache/subnetGroup:SubnetGroup",
        "aws:elasticache/user:User",
        "aws:elasticache/userGroup:UserGroup",
        "aws:iam/policy:Policy",
        "aws:iam/role:Role",
        "aws:iam/rolePolicy:RolePolicy",
        "aws:iam/rolePolicyAttachment:RolePolicyAttachment",
        "aws:kms/alias:Alias",
        "aws:lambda/alias:Alias",
        "aws:lambda/eventSourceMapping:EventSourceMapping",
        "aws:lambda/functionEventInvokeConfig:FunctionEventInvokeConfig",
        "aws:lambda/permission:Permission",
        "aws:lb/listener:Listener",
        "aws:lb/listenerRule:ListenerRule",
        "aws:lb/targetGroup:TargetGroup",
        "aws:rds/parameterGroup:ParameterGroup",
        "aws:rds/subnetGroup:SubnetGroup",
        "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration",
        "aws:s3/bucketOwnershipControls:BucketOwnershipControls",
        "aws:s3/bucketPolicy:BucketPolicy",
        "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock",
        "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
        "aws:s3/bucketVersioning:BucketVersioning",
        "aws:schemas/registry:Registry",
        "aws:schemas/schema:Schema",
        "aws:secretsmanager/secretPolicy:SecretPolicy",
        "aws:secretsmanager/secretVersion:SecretVersion",
        "aws:sns/topicPolicy:TopicPolicy",
        "aws:sns/topicSubscription:TopicSubscription",
        "aws:sqs/queuePolicy:QueuePolicy",
        "aws:sqs/redriveAllowPolicy:RedriveAllowPolicy",
        "aws:sqs/redrivePolicy:RedrivePolicy",
        "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule",
        "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule",
        "aws:wafv2/webAclAssociation:WebAclAssociation",
        "aws:wafv2/webAclLoggingConfiguration:WebAclLoggingConfiguration",
        "docker-build:index:Image",
        "random:index/randomPassword:RandomPassword",
        "tls:index/certRequest:CertRequest",
        "tls:index/locallySignedCert:LocallySignedCert",
        "tls:index/privateKey:PrivateKey",
        "tls:index/selfSignedCert:SelfSignedCert",
    )
}
"""Types with no charge of their own (their cost, if any, is counted where it arises: a task definition
through its ECS service, WAF logging through its log group, a built image through its ECR repository's
storage; an ACM-imported certificate, a random password and a docker-build image (built by CI) are free)."""

NOT_ESTIMATED = (
    "data transfer out of AWS and between AZs",
    "X-Ray traces",
    "CloudWatch API requests and Logs Insights queries",
    "backup and snapshot storage beyond the free allowance",
    "free tiers (every price is the full on-demand rate)",
    "autoscaling above each service's desiredCount",
)


class CostError(Exception):
    """A problem with the price table or an input file (reported as one line)."""


@dataclass(frozen=True)
class Price:
    key: str
    price: float
    unit: str
    date: str
    source: str


@dataclass
class Line:
    """One priced item of the estimate."""

    component: str
    service: str
    urn: str
    type: str
    item: str
    quantity: float
    unit: str
    unit_price: float
    price_key: str

    @property
    def monthly(self) -> Decimal:
        """Quantity times unit price in decimal arithmetic (binary floats would misround half cents)."""
        return _decimal(self.quantity) * _decimal(self.unit_price)


def _decimal(value: float) -> Decimal:
    return Decimal(repr(round(value, 9)))


def cents(value: Decimal) -> float:
    """Rounded to the cent, half up (as a bill rounds)."""
    return float(value.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))


@dataclass
class Estimate:
    stack: str
    region: str
    lines: list[Line] = field(default_factory=list)
    assumptions: dict[str, Any] = field(default_factory=dict)
    free: dict[str, int] = field(default_factory=dict)
    unknown: dict[str, list[str]] = field(default_factory=dict)
    prices_used: dict[str, Price] = field(default_factory=dict)

    @property
    def total(self) -> Decimal:
        return sum((line.monthly for line in self.lines), Decimal(0))

    def by(self, attribute: str) -> dict[str, Decimal]:
        totals: dict[str, Decimal] = defaultdict(Decimal)
        for line in self.lines:
            totals[getattr(line, attribute)] += line.monthly
        return dict(sorted(totals.items()))

    def to_json(self) -> dict[str, Any]:
        return {
            "stack": self.stack,
            "region": self.region,
            "currency": "USD",
            "monthlyTotal": cents(self.total),
            "byComponent": {k: cents(v) for k, v in self.by("component").items()},
            "byService": {k: cents(v) for k, v in self.by("service").items()},
            "lines": [{**asdict(line), "monthly": cents(line.monthly)} for line in self.lines],
            "assumptions": self.assumptions,
            "prices": {k: asdict(v) for k, v in sorted(self.prices_used.items())},
            "notPriced": {
                "free": dict(sorted(self.free.items())),
                "unknownTypes": {k: sorted(v) for k, v in sorted(self.unknown.items())},
                "notEstimated": list(NOT_ESTIMATED),
            },
        }


# --- the price table ----------------------------------------------------------------------------------


def load_prices(region: str, path: Path = PRICES_FILE) -> dict[str, Price]:
    try:
        document = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise CostError(f"price table {path}: cannot read it ({exc})") from None
    regions = document.get("regions") or {}
    if region not in regions:
        raise CostError(
            f"price table {path} has no prices for region {region!r} (it has: {', '.join(sorted(regions))}); "
            "run `python -m offline cost --refresh-prices --region REGION` with AWS credentials"
        )
    prices = {}
    for key, entry in regions[region].items():
        missing = [k for k in ("price", "unit", "date", "source") if k not in entry]
        if missing:
            raise CostError(f"price table {path}: {region} {key} lacks {', '.join(missing)}")
        prices[key] = Price(key, float(entry["price"]), entry["unit"], entry["date"], entry["source"])
    return prices


# --- pricing the plan ---------------------------------------------------------------------------------


class _Pricer:
    def __init__(self, plan: Plan, prices: Mapping[str, Price], usage: Mapping[str, Any]) -> None:
        self.plan = plan
        self.prices = prices
        self.usage = usage
        self.by_urn = plan.by_urn()
        self.by_arn = {
            r.outputs.get("arn"): r for r in plan.resources if r.custom and isinstance(r.outputs.get("arn"), str)
        }
        self.estimate = Estimate(stack=plan.stack, region="")

    # grouping
    def component(self, resource: PlannedResource) -> str:
        """The top-level component (a direct child of the stack) that holds `resource`."""
        node = resource
        while node.parent in self.by_urn and self.by_urn[node.parent].type != "pulumi:pulumi:Stack":
            node = self.by_urn[node.parent]
        return f"{node.name} ({node.type.split(':')[-1]})"

    def service(self, resource: PlannedResource) -> str:
        tags = resource.inputs.get("tags")
        if isinstance(tags, Mapping) and isinstance(tags.get("Service"), str):
            return str(tags["Service"])
        return "platform"

    def usage_line(self, resource: PlannedResource, usage_key: str, what: str, key: str) -> None:
        """A line priced on one usage assumption as it is: "<usage> <what>" (`5 million requests`)."""
        self.line(resource, f"{self.usage[usage_key]:g} {what}", float(self.usage[usage_key]), key)

    def line(self, resource: PlannedResource, item: str, quantity: float, key: str) -> None:
        if key not in self.prices:
            self.estimate.unknown.setdefault(f"{resource.type} (no price '{key}' in the table)", []).append(
                resource.urn
            )
            return
        price = self.prices[key]
        self.estimate.prices_used[key] = price
        self.estimate.lines.append(
            Line(
                component=self.component(resource),
                service=self.service(resource),
                urn=resource.urn,
                type=resource.type,
                item=item,
                quantity=quantity,
                unit=price.unit,
                unit_price=price.price,
                price_key=key,
            )
        )

    @property
    def hours(self) -> float:
        return float(self.usage["hoursPerMonth"])


Pricer = Callable[[_Pricer, PlannedResource], None]


def _fargate_service(p: _Pricer, r: PlannedResource) -> None:
    task = p.by_arn.get(r.inputs.get("taskDefinition"))
    if task is None:
        p.estimate.unknown.setdefault(f"{r.type} (task definition not in the plan)", []).append(r.urn)
        return
    vcpu = int(task.inputs.get("cpu", 256)) / 1024
    memory_gb = int(task.inputs.get("memory", 512)) / 1024
    arch = str((task.inputs.get("runtimePlatform") or {}).get("cpuArchitecture", "X86_64")).lower()
    desired = int(r.inputs.get("desiredCount") or 0)
    on_demand, spot = fargate_split(desired, r.inputs.get("capacityProviderStrategies") or [])
    spot_factor = 1 - float(p.usage["spotDiscountPercent"]) / 100
    for count, factor, label in ((on_demand, 1.0, "FARGATE"), (spot, spot_factor, "FARGATE_SPOT")):
        if count <= 0:
            continue
        note = f" at {100 - float(p.usage['spotDiscountPercent']):g}% of on-demand" if factor != 1.0 else ""
        p.line(
            r,
            f"{label} {count:g} tasks x {vcpu:g} vCPU ({arch}){note}",
            count * vcpu * p.hours * factor,
            f"fargate.vcpu_hour.{arch}",
        )
        p.line(
            r,
            f"{label} {count:g} tasks x {memory_gb:g} GB ({arch}){note}",
            count * memory_gb * p.hours * factor,
            f"fargate.gb_hour.{arch}",
        )


def fargate_split(desired: int, strategies: list[Mapping[str, Any]]) -> tuple[float, float]:
    """(on-demand tasks, Spot tasks) for `desired` tasks under a capacity provider strategy: `base`
    tasks first, the rest shared by weight (ECS's rule; the expected split, as a fraction)."""
    if not strategies:
        return float(desired), 0.0
    remaining = float(desired)
    counts = {"FARGATE": 0.0, "FARGATE_SPOT": 0.0}
    for s in strategies:
        base = min(float(s.get("base") or 0), remaining)
        counts[str(s.get("capacityProvider"))] = counts.get(str(s.get("capacityProvider")), 0.0) + base
        remaining -= base
    weights = {str(s.get("capacityProvider")): float(s.get("weight") or 0) for s in strategies}
    total = sum(weights.values())
    if total > 0:
        for provider, weight in weights.items():
            counts[provider] = counts.get(provider, 0.0) + remaining * weight / total
    return counts.get("FARGATE", 0.0), counts.get("FARGATE_SPOT", 0.0)


def _vpc(p: _Pricer, r: PlannedResource) -> None:
    azs = len(r.inputs.get("availabilityZoneNames") or []) or int(r.inputs.get("numberOfAvailabilityZones") or 3)
    strategy = str((r.inputs.get("natGateways") or {}).get("strategy", "OnePerAz"))
    nats = {"None": 0, "Single": 1}.get(strategy, azs)
    if nats:
        p.line(r, f"{nats} NAT gateway(s) ({strategy})", nats * p.hours, "nat.hour")
        p.line(
            r,
            f"NAT data processed, {p.usage['natProcessedGb']:g} GB per gateway",
            nats * float(p.usage["natProcessedGb"]),
            "nat.gb",
        )
        p.line(r, f"{nats} public IPv4 address(es) of the NAT gateways", nats * p.hours, "public_ipv4.hour")
    interface = [e for e in r.inputs.get("vpcEndpointSpecs") or [] if e.get("vpcEndpointType") == "Interface"]
    if interface:
        p.line(
            r,
            f"{len(interface)} interface endpoint(s) in {azs} AZs",
            len(interface) * azs * p.hours,
            "vpc_endpoint.interface.hour",
        )


def _alb(p: _Pricer, r: PlannedResource) -> None:
    if r.inputs.get("loadBalancerType", "application") != "application":
        p.estimate.unknown.setdefault(f"{r.type} ({r.inputs.get('loadBalancerType')})", []).append(r.urn)
        return
    p.line(r, "Application Load Balancer", p.hours, "alb.hour")
    p.line(r, f"LCUs, {p.usage['albLcu']:g} on average", float(p.usage["albLcu"]) * p.hours, "alb.lcu_hour")


def _rds(p: _Pricer, r: PlannedResource) -> None:
    engine, cls = r.inputs.get("engine"), r.inputs.get("instanceClass")
    az = "multi" if r.inputs.get("multiAz") else "single"
    p.line(r, f"{engine} {cls} {az.title()}-AZ", p.hours, f"rds.{engine}.{cls}.{az}_az.hour")
    storage = str(r.inputs.get("storageType") or "gp2")
    p.line(
        r,
        f"{r.inputs.get('allocatedStorage')} GB {storage} storage",
        float(r.inputs.get("allocatedStorage") or 20),
        f"rds.{storage}.{az}_az.gb_month",
    )


def _dynamodb(p: _Pricer, r: PlannedResource) -> None:
    if r.inputs.get("billingMode") != "PAY_PER_REQUEST":
        p.estimate.unknown.setdefault(f"{r.type} (provisioned capacity)", []).append(r.urn)
        return
    u = p.usage
    p.usage_line(r, "dynamodbWriteMillions", "million on-demand writes", "dynamodb.on_demand.write_million")
    p.usage_line(r, "dynamodbReadMillions", "million on-demand reads", "dynamodb.on_demand.read_million")
    p.usage_line(r, "dynamodbStorageGb", "GB stored", "dynamodb.storage.gb_month")
    if (r.inputs.get("pointInTimeRecovery") or {}).get("enabled"):
        p.line(
            r,
            f"point-in-time recovery of {u['dynamodbStorageGb']:g} GB",
            float(u["dynamodbStorageGb"]),
            "dynamodb.pitr.gb_month",
        )


def _cache(p: _Pricer, r: PlannedResource) -> None:
    nodes = int(r.inputs.get("numCacheClusters") or 0)
    if not nodes:
        nodes = int(r.inputs.get("numNodeGroups") or 1) * (int(r.inputs.get("replicasPerNodeGroup") or 0) + 1)
    node_type, engine = r.inputs.get("nodeType"), r.inputs.get("engine", "redis")
    p.line(r, f"{nodes} {engine} node(s) {node_type}", nodes * p.hours, f"elasticache.{engine}.{node_type}.hour")


def _private_ca(p: _Pricer, r: PlannedResource) -> None:
    mode = "short_lived" if r.inputs.get("usageMode") == "SHORT_LIVED_CERTIFICATE" else "general_purpose"
    p.line(r, f"AWS Private CA ({mode.replace('_', ' ')})", 1, f"privateca.{mode}.month")
    certificates = float(p.usage["privateCaCertificates"])
    p.line(r, f"{certificates:g} certificates issued", certificates, f"privateca.certificate.{mode}")


def _kms(p: _Pricer, r: PlannedResource) -> None:
    p.line(r, "customer managed key", 1, "kms.key_month")
    p.line(
        r,
        f"{p.usage['kmsRequestsMillions']:g} million requests",
        float(p.usage["kmsRequestsMillions"]) * 100,
        "kms.requests_10k",
    )


def _secret(p: _Pricer, r: PlannedResource) -> None:
    p.line(r, "secret", 1, "secretsmanager.secret_month")
    p.line(
        r,
        f"{p.usage['secretsApiCallsThousands']:g} thousand API calls",
        float(p.usage["secretsApiCallsThousands"]) / 10,
        "secretsmanager.api_10k",
    )


def _log_group(p: _Pricer, r: PlannedResource) -> None:
    p.line(r, f"{p.usage['logIngestGb']:g} GB ingested", float(p.usage["logIngestGb"]), "logs.ingest_gb")
    p.line(r, f"{p.usage['logStoredGb']:g} GB stored", float(p.usage["logStoredGb"]), "logs.storage_gb_month")


def _alarm(p: _Pricer, r: PlannedResource) -> None:
    queries = r.inputs.get("metricQueries") or []
    metrics = sum(1 for q in queries if q.get("metric")) if queries else 1
    p.line(r, f"alarm over {metrics} metric(s)", metrics, "cloudwatch.alarm_metric_month")


def _dashboard(p: _Pricer, r: PlannedResource) -> None:
    p.line(r, "dashboard", 1, "cloudwatch.dashboard_month")


def _cluster(p: _Pricer, r: PlannedResource) -> None:
    settings = {s.get("name"): s.get("value") for s in r.inputs.get("settings") or []}
    if settings.get("containerInsights") in ("enabled", "enhanced"):
        services = len(p.plan.of_type("aws:ecs/service:Service"))
        count = services * int(p.usage["containerInsightsMetricsPerService"])
        p.line(r, f"Container Insights, {count} metrics ({services} services)", count, "cloudwatch.metric_month")


def _waf(p: _Pricer, r: PlannedResource) -> None:
    rules = len(r.inputs.get("rules") or [])
    p.line(r, "web ACL", 1, "waf.web_acl_month")
    p.line(r, f"{rules} rules", rules, "waf.rule_month")
    p.usage_line(r, "wafRequestsMillions", "million requests", "waf.requests_million")


def _http_api(p: _Pricer, r: PlannedResource) -> None:
    if r.inputs.get("protocolType", "HTTP") != "HTTP":
        p.estimate.unknown.setdefault(f"{r.type} ({r.inputs.get('protocolType')})", []).append(r.urn)
        return
    p.usage_line(r, "apiRequestsMillions", "million HTTP API requests", "apigw.http.requests_million")


def _bus(p: _Pricer, r: PlannedResource) -> None:
    p.usage_line(r, "eventsMillions", "million custom events", "eventbridge.custom_events_million")


def _archive(p: _Pricer, r: PlannedResource) -> None:
    gb = float(p.usage["eventsMillions"]) * float(p.usage["eventSizeKb"]) * 1_000_000 / 1024 / 1024
    p.line(r, f"{gb:.3g} GB archived", gb, "eventbridge.archive_gb")
    p.line(r, f"{gb:.3g} GB stored", gb, "eventbridge.archive_storage_gb_month")


def _queue(p: _Pricer, r: PlannedResource) -> None:
    if (r.inputs.get("tags") or {}).get("QueueRole") == "dead-letter":
        p.line(r, "dead-letter queue, no traffic assumed", 0, "sqs.standard.requests_million")
        return
    p.usage_line(r, "sqsRequestsMillions", "million requests", "sqs.standard.requests_million")


def _topic(p: _Pricer, r: PlannedResource) -> None:
    p.usage_line(r, "snsPublishesMillions", "million publishes", "sns.publish_million")


def _lambda(p: _Pricer, r: PlannedResource) -> None:
    arch = "arm64" if "arm64" in (r.inputs.get("architectures") or ["x86_64"]) else "x86_64"
    requests = float(p.usage["lambdaRequestsMillions"])
    memory_gb = int(r.inputs.get("memorySize") or 128) / 1024
    seconds = requests * 1_000_000 * float(p.usage["lambdaAvgDurationMs"]) / 1000
    p.line(r, f"{requests:g} million requests", requests, f"lambda.requests_million.{arch}")
    p.line(r, f"{seconds:g} s x {memory_gb:g} GB ({arch})", seconds * memory_gb, f"lambda.gb_second.{arch}")


def _state_machine(p: _Pricer, r: PlannedResource) -> None:
    if r.inputs.get("type", "STANDARD") == "EXPRESS":
        # Express: per request plus GB-seconds at the 64 MB minimum memory billed (100 ms increments).
        requests = float(p.usage["eventsMillions"])
        p.line(r, f"{requests:g} million Express executions (one per event)", requests, "sfn.express.requests_million")
        gb_seconds = requests * 1_000_000 * 0.1 * 64 / 1024
        p.line(r, f"{gb_seconds:g} GB-s (100 ms at 64 MB each)", gb_seconds, "sfn.express.gb_second")
        return
    t = float(p.usage["stepFunctionTransitionsThousands"])
    p.line(r, f"{t:g} thousand state transitions", t, "sfn.standard.transitions_thousand")


def _pipe(p: _Pricer, r: PlannedResource) -> None:
    requests = float(p.usage["eventsMillions"])
    p.line(r, f"{requests:g} million requests (one per event, after filtering)", requests, "pipes.requests_million")


def _namespace(p: _Pricer, r: PlannedResource) -> None:
    p.line(r, "Route 53 private hosted zone of the namespace", 1, "route53.hosted_zone_month")


def _discovery_service(p: _Pricer, r: PlannedResource) -> None:
    arn = r.outputs.get("arn")
    tasks = sum(
        int(s.inputs.get("desiredCount") or 0)
        for s in p.plan.of_type("aws:ecs/service:Service")
        if any(reg.get("registryArn") == arn for reg in _as_list(s.inputs.get("serviceRegistries")))
    )
    p.line(r, f"{tasks} registered instance(s)", tasks, "cloudmap.instance_month")


def _repository(p: _Pricer, r: PlannedResource) -> None:
    p.line(r, f"{p.usage['ecrStorageGb']:g} GB of images", float(p.usage["ecrStorageGb"]), "ecr.storage.gb_month")


def _bucket(p: _Pricer, r: PlannedResource) -> None:
    p.line(r, f"{p.usage['s3StorageGb']:g} GB S3 Standard", float(p.usage["s3StorageGb"]), "s3.standard.gb_month")


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


PRICERS: dict[str, Pricer] = {
    "aws:ecs/service:Service": _fargate_service,
    "aws:lb/loadBalancer:LoadBalancer": _alb,
    "aws:rds/instance:Instance": _rds,
    "aws:dynamodb/table:Table": _dynamodb,
    "aws:elasticache/replicationGroup:ReplicationGroup": _cache,
    "aws:acmpca/certificateAuthority:CertificateAuthority": _private_ca,
    "aws:kms/key:Key": _kms,
    "aws:secretsmanager/secret:Secret": _secret,
    "aws:cloudwatch/logGroup:LogGroup": _log_group,
    "aws:cloudwatch/metricAlarm:MetricAlarm": _alarm,
    "aws:cloudwatch/dashboard:Dashboard": _dashboard,
    "aws:ecs/cluster:Cluster": _cluster,
    "aws:wafv2/webAcl:WebAcl": _waf,
    "aws:apigatewayv2/api:Api": _http_api,
    "aws:cloudwatch/eventBus:EventBus": _bus,
    "aws:cloudwatch/eventArchive:EventArchive": _archive,
    "aws:sqs/queue:Queue": _queue,
    "aws:sns/topic:Topic": _topic,
    "aws:lambda/function:Function": _lambda,
    "aws:sfn/stateMachine:StateMachine": _state_machine,
    "aws:pipes/pipe:Pipe": _pipe,
    "aws:servicediscovery/privateDnsNamespace:PrivateDnsNamespace": _namespace,
    "aws:servicediscovery/service:Service": _discovery_service,
    "aws:s3/bucket:Bucket": _bucket,
    "aws:ecr/repository:Repository": _repository,
    "awsx:ec2:Vpc": _vpc,
}
"""One pricer per priced type; each adds its lines from the resource's inputs and the usage assumptions.
`aws:acmpca/certificate:Certificate` is priced through its CA's `privateCaCertificates` assumption."""

COUNTED_ELSEWHERE = {
    "aws:acmpca/certificate:Certificate": "counted in the CA's certificates-issued line",
}


def default_usage() -> dict[str, Any]:
    from model.config import UsageAssumptions

    return UsageAssumptions().model_dump(by_alias=True)


def estimate(
    plan: Plan, *, region: str, usage: Mapping[str, Any] | None = None, prices_file: Path = PRICES_FILE
) -> Estimate:
    """Price every resource of `plan` in `region` under `usage` (defaults: `UsageAssumptions()`)."""
    assumptions = {**default_usage(), **(usage or {})}
    pricer = _Pricer(plan, load_prices(region, prices_file), assumptions)
    pricer.estimate.region = region
    pricer.estimate.assumptions = assumptions
    for resource in sorted(plan.resources, key=lambda r: r.urn):
        if resource.type.startswith("pulumi:"):
            continue
        if resource.type in PRICERS:
            PRICERS[resource.type](pricer, resource)
        elif resource.type in FREE_TYPES or resource.type in COUNTED_ELSEWHERE:
            pricer.estimate.free[resource.type] = pricer.estimate.free.get(resource.type, 0) + 1
        elif not resource.custom and not resource.remote:
            continue  # a local component: its children are priced
        else:
            pricer.estimate.unknown.setdefault(resource.type, []).append(resource.urn)
    return pricer.estimate


def usage_from_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """The `microservices:usage` assumptions of a stack's config (raw JSON/YAML values), validated."""
    from model.config import UsageAssumptions

    raw = config.get("microservices:usage") or {}
    if isinstance(raw, str):
        raw = json.loads(raw)
    return UsageAssumptions.model_validate(raw).model_dump(by_alias=True)


# --- output -------------------------------------------------------------------------------------------


def money(value: Decimal) -> str:
    return f"${cents(value):,.2f}"


def delta(value: Decimal) -> str:
    rounded = cents(value)
    sign = "+" if rounded > 0 else "-" if rounded < 0 else "±"
    return f"{sign}${abs(rounded):,.2f}"


def summary_line(result: Estimate) -> str:
    unknown = sum(len(v) for v in result.unknown.values())
    extra = f"; {unknown} resource(s) of unknown type not priced" if unknown else ""
    return (
        f"Estimated cost: {money(result.total)}/month ({len(result.lines)} priced items, on-demand list prices, "
        f"usage assumptions from microservices:usage{extra}); details: python -m offline cost --stack {result.stack}"
    )


def render_table(result: Estimate) -> str:
    out = [f"Monthly cost estimate of stack '{result.stack}' ({result.region}, USD, on-demand list prices)", ""]
    header = (
        f"  {'component':<40}{'service':<14}{'resource':<40}{'item':<56}{'quantity':>14}  {'unit price':>12}"
        f"  {'monthly':>11}"
    )
    out.append(header)
    for line in sorted(result.lines, key=lambda x: (x.component, x.service, x.urn, x.item)):
        if line.monthly == 0 and line.quantity == 0:
            continue
        resource = line.urn.rsplit("::", 1)[-1]
        out.append(
            f"  {line.component[:39]:<40}{line.service[:13]:<14}{resource[:39]:<40}{line.item[:55]:<56}"
            f"{line.quantity:>14,.2f}  {line.unit_price:>12.6g}  {money(line.monthly):>11}"
        )
    width = max((len(line.component) for line in result.lines), default=10) + 2
    out += ["", "Per service:"]
    out += [f"  {k:<{width}}{money(v):>12}" for k, v in result.by("service").items()]
    out += ["", "Per component:"]
    out += [f"  {k:<{width}}{money(v):>12}" for k, v in result.by("component").items()]
    out += ["", f"Total for environment '{result.stack}': {money(result.total)}/month", ""]
    out.append("Usage assumptions (microservices:usage in Pulumi.<stack>.yaml):")
    out += [f"  {k}: {v}" for k, v in result.assumptions.items()]
    out += ["", "Prices used (unit, date, source):"]
    for key, price in sorted(result.prices_used.items()):
        out.append(f"  {key}: {price.price:g} USD per {price.unit} ({price.date}; {price.source})")
    out += ["", "Not priced:"]
    out.append(
        "  no charge of their own: " + ", ".join(f"{t.split(':')[1]} x{n}" for t, n in sorted(result.free.items()))
    )
    if result.unknown:
        out.append("  UNKNOWN to the price table (not in the estimate):")
        for type_token, urns in sorted(result.unknown.items()):
            out.append(f"    {type_token}: {len(urns)} ({', '.join(u.rsplit('::', 1)[-1] for u in sorted(urns))})")
    else:
        out.append("  unknown resource types: none")
    out.append("  not estimated: " + "; ".join(NOT_ESTIMATED))
    return "\n".join(out)


def render_compare(current: Estimate, other: Estimate, other_label: str) -> str:
    """The delta from `other` (e.g. the base branch's plan) to `current`, per component and in total."""
    now, before = current.by("component"), other.by("component")
    out = [
        f"Monthly cost: {money(current.total)} for this plan, {money(other.total)} for {other_label}: "
        f"{delta(current.total - other.total)}/month",
        "",
        f"  {'component':<44}{'before':>12}{'after':>12}{'delta':>12}",
    ]
    for key in sorted(set(now) | set(before)):
        change = now.get(key, Decimal(0)) - before.get(key, Decimal(0))
        if cents(change) != 0:
            out.append(
                f"  {key[:35]:<36}{money(before.get(key, Decimal(0))):>12}{money(now.get(key, Decimal(0))):>12}{delta(change):>12}"
            )
    if len(out) == 3:
        out.append("  (no component changes cost)")
    return "\n".join(out)


def compare_json(current: Estimate, other: Estimate) -> dict[str, Any]:
    now, before = current.by("component"), other.by("component")
    return {
        "before": cents(other.total),
        "after": cents(current.total),
        "delta": cents(current.total - other.total),
        "byComponent": {
            k: cents(now.get(k, Decimal(0)) - before.get(k, Decimal(0)))
            for k in sorted(set(now) | set(before))
            if cents(now.get(k, Decimal(0)) - before.get(k, Decimal(0))) != 0
        },
    }


# --- refreshing the table through the AWS Price List API ---------------------------------------------


def _on_demand_usd(product: Mapping[str, Any]) -> float | None:
    """The first-tier on-demand USD price of a GetProducts PriceList item."""
    for term in (product.get("terms", {}).get("OnDemand") or {}).values():
        dimensions = sorted(
            term.get("priceDimensions", {}).values(), key=lambda d: float(d.get("beginRange", "0") or 0)
        )
        for dimension in dimensions:
            usd = dimension.get("pricePerUnit", {}).get("USD")
            if usd is not None and float(usd) > 0:
                return float(usd)
    return None


def refresh_prices(client: Any, *, region: str, path: Path = PRICES_FILE, today: str) -> tuple[list[str], list[str]]:
    """Re-read every price of `region` with `pricing:GetProducts` (`client` is a boto3 `pricing` client).

    Each entry's `query` names the service code and filters; with `usagetypeSuffix` the product whose
    usage type is exactly that (or `<region prefix>-` that) is taken. Refreshed entries get today's date
    and a source naming the SKU; entries the API did not answer keep their value and are reported.
    Returns (refreshed keys, kept keys)."""
    document = json.loads(path.read_text())
    entries = document["regions"].get(region)
    if entries is None:
        template = document["regions"]["us-east-1"]
        entries = json.loads(json.dumps(template).replace('"us-east-1"', json.dumps(region)))
        document["regions"][region] = entries
    refreshed, kept = [], []
    for key, entry in entries.items():
        query = entry["query"]
        filters = [{**f, "Value": region if f["Field"] == "regionCode" else f["Value"]} for f in query["filters"]]
        products = []
        token = None
        while True:
            kwargs: dict[str, Any] = {"ServiceCode": query["serviceCode"], "Filters": filters, "MaxResults": 100}
            if token:
                kwargs["NextToken"] = token
            answer = client.get_products(**kwargs)
            products += [json.loads(item) if isinstance(item, str) else item for item in answer.get("PriceList", [])]
            token = answer.get("NextToken")
            if not token:
                break
        suffix = query.get("usagetypeSuffix")
        if suffix:
            products = [
                p
                for p in products
                if (u := str(p.get("product", {}).get("attributes", {}).get("usagetype", ""))) == suffix
                or u.endswith("-" + suffix)
            ]
        prices = [(p, _on_demand_usd(p)) for p in products]
        prices = [(p, v) for p, v in prices if v is not None]
        if not prices:
            kept.append(key)
            continue
        product, value = prices[0]
        entry["price"] = value
        entry["date"] = today
        entry["source"] = (
            f"AWS Price List API (pricing:GetProducts) {query['serviceCode']} SKU {product.get('product', {}).get('sku')}"
        )
        entry.pop("note", None)
        refreshed.append(key)
    path.write_text(json.dumps(document, indent=1) + "\n")
    return refreshed, kept


# --- command line -------------------------------------------------------------------------------------


def add_command(commands: Any, common: Any) -> None:
    """Register `python -m offline cost` (called by offline/__main__.py)."""
    from pathlib import Path as _Path

    cost = commands.add_parser(
        "cost", parents=[common], help="monthly cost estimate of a stack, from its plan and the shipped price table"
    )
    cost.add_argument("--stack", "-s", help="stack name: dev, staging or prod")
    cost.add_argument("--project-dir", type=_Path, default=_Path("."), help="folder holding Pulumi.yaml")
    cost.add_argument("--format", choices=("table", "json"), default="table")
    cost.add_argument(
        "--compare", type=_Path, metavar="OTHER_PLAN", help="a saved `preview --json` plan: print the cost delta to it"
    )
    cost.add_argument(
        "--refresh-prices",
        action="store_true",
        help="rebuild offline/prices.json through the AWS Price List API (needs AWS credentials)",
    )
    cost.add_argument(
        "--region", help="with --refresh-prices: the region to refresh (default: every region in the table)"
    )
    cost.set_defaults(run=run_command)


def _region(config: Mapping[str, Any]) -> str:
    return str(config.get("aws:region") or "us-east-1")


def run_command(args: Any) -> int:
    import sys

    from offline.exitcodes import ExitCode

    if args.refresh_prices:
        return _refresh(args)
    if not args.stack:
        print("error: cost: --stack is required (or --refresh-prices)", file=sys.stderr)
        return ExitCode.INPUT
    from offline.runtime import OfflineError, run_program

    try:
        result = run_program(args.project_dir, args.stack)
        current = estimate(result.plan, region=_region(result.config), usage=usage_from_config(result.config))
        other = _load_other(args.compare) if args.compare else None
    except (OfflineError, CostError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return ExitCode.INPUT
    if args.format == "json":
        document = current.to_json()
        if other is not None:
            document["compare"] = {"plan": str(args.compare), **compare_json(current, other)}
        print(json.dumps(document, indent=2, sort_keys=True))
    else:
        print(render_table(current))
        if other is not None:
            print()
            print(render_compare(current, other, str(args.compare)))
    return ExitCode.OK


def _load_other(path: Path) -> Estimate:
    from pydantic import ValidationError

    from offline.export import PlanFileError, load_plan

    try:
        plan = load_plan(path)
        document = json.loads(path.read_text())
        config = document.get("config") or {} if isinstance(document, dict) else {}
        return estimate(plan, region=_region(config), usage=usage_from_config(config))
    except PlanFileError as exc:
        raise CostError(str(exc)) from None
    except ValidationError as exc:
        first = exc.errors()[0]
        raise CostError(
            f"{path}: config microservices:usage.{'.'.join(map(str, first['loc']))}: {first['msg']}"
        ) from None


def _refresh(args: Any) -> int:
    import datetime
    import sys

    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    from offline.exitcodes import ExitCode

    # The Price List API answers from us-east-1 (and a few other regions) for every region's prices.
    client = boto3.client("pricing", region_name="us-east-1")
    regions = [args.region] if args.region else sorted(json.loads(PRICES_FILE.read_text())["regions"])
    today = datetime.datetime.now(datetime.UTC).date().isoformat()
    try:
        for region in regions:
            refreshed, kept = refresh_prices(client, region=region, today=today)
            print(
                f"{region}: refreshed {len(refreshed)} prices; kept {len(kept)} the API did not match: {', '.join(kept) or 'none'}"
            )
    except (BotoCoreError, ClientError) as exc:
        print(f"error: cost --refresh-prices: {exc}", file=sys.stderr)
        return ExitCode.INPUT
    return ExitCode.OK
