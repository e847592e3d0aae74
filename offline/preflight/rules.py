"""Cross-field rules AWS documents but no schema expresses, each with its source. One table: RULES."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from offline.plan import Plan, PlannedResource
from offline.preflight import ADVISORY, CERTAIN, Coverage, Finding
from offline.preflight.mapping import TABLE
from offline.preflight.values import is_opaque


@dataclass(frozen=True)
class Rule:
    id: str
    description: str
    source: str
    types: tuple[str, ...]
    check: Callable[[PlannedResource, Plan, dict[str, PlannedResource]], Iterator[tuple[str, Any, str, str]]]
    """Yields (property, value, message, level)."""


def _known(value: Any) -> bool:
    return value is not None and not is_opaque(value)


# --- Fargate task size and Spot vs ARM64 ------------------------------------------------------------
def _fargate_size(
    r: PlannedResource, _plan: Plan, _by_urn: Mapping[str, PlannedResource]
) -> Iterator[tuple[str, Any, str, str]]:
    from model.config import FARGATE_MEMORY_BY_CPU

    if "FARGATE" not in (r.inputs.get("requiresCompatibilities") or []):
        return
    cpu, memory = r.inputs.get("cpu"), r.inputs.get("memory")
    if not (_known(cpu) and _known(memory)):
        return
    try:
        cpu_i, mem_i = int(str(cpu)), int(str(memory))
    except (TypeError, ValueError):
        yield "cpu", cpu, "Fargate cpu and memory must be numbers of CPU units and MiB", CERTAIN
        return
    if cpu_i not in FARGATE_MEMORY_BY_CPU:
        yield "cpu", cpu, f"is not a Fargate CPU size ({', '.join(map(str, FARGATE_MEMORY_BY_CPU))})", CERTAIN
    elif mem_i not in FARGATE_MEMORY_BY_CPU[cpu_i]:
        yield "memory", memory, f"is not a Fargate memory size for cpu {cpu_i}", CERTAIN


def _task_of(service: PlannedResource, plan: Plan, by_urn: Mapping[str, PlannedResource]) -> PlannedResource | None:
    for urn in service.property_dependencies.get("taskDefinition", []):
        if urn in by_urn:
            return by_urn[urn]
    ref = service.inputs.get("taskDefinition")
    return next((t for t in plan.of_type("aws:ecs/taskDefinition:TaskDefinition") if t.outputs.get("arn") == ref), None)


def _spot_arm64(
    r: PlannedResource, plan: Plan, by_urn: Mapping[str, PlannedResource]
) -> Iterator[tuple[str, Any, str, str]]:
    strategy = r.inputs.get("capacityProviderStrategies") or []
    spot = [s for s in strategy if isinstance(s, dict) and s.get("capacityProvider") == "FARGATE_SPOT"]
    if not spot or not any((s.get("weight") or 0) > 0 or (s.get("base") or 0) > 0 for s in spot):
        return
    task = _task_of(r, plan, by_urn)
    arch = ((task.inputs.get("runtimePlatform") or {}) if task else {}).get("cpuArchitecture")
    if arch == "ARM64":
        yield (
            "capacityProviderStrategies",
            strategy,
            "places tasks on FARGATE_SPOT, which does not run ARM64 task definitions (its task definition is ARM64)",
            CERTAIN,
        )


# --- load balancing ---------------------------------------------------------------------------------
def _health_check(
    r: PlannedResource, _plan: Plan, _by_urn: Mapping[str, PlannedResource]
) -> Iterator[tuple[str, Any, str, str]]:
    hc = r.inputs.get("healthCheck") or {}
    interval, timeout = hc.get("interval"), hc.get("timeout")
    if isinstance(interval, int) and isinstance(timeout, int) and timeout >= interval:
        yield "healthCheck.timeout", timeout, f"must be less than healthCheck.interval ({interval})", CERTAIN
    matcher = hc.get("matcher")
    protocol = str(hc.get("protocol") or r.inputs.get("protocol") or "HTTP").upper()
    if isinstance(matcher, str) and protocol in ("HTTP", "HTTPS"):
        for part in matcher.replace("-", ",").split(","):
            if not part.isdigit() or not 200 <= int(part) <= 499:
                yield (
                    "healthCheck.matcher",
                    matcher,
                    "HTTP(S) success codes must be 200-499 (e.g. 200,202 or 200-299)",
                    CERTAIN,
                )
                break


ELB_SSL_POLICIES = frozenset(
    [
        "ELBSecurityPolicy-TLS13-1-2-2021-06",
        "ELBSecurityPolicy-TLS13-1-2-Res-2021-06",
        "ELBSecurityPolicy-TLS13-1-2-Ext1-2021-06",
        "ELBSecurityPolicy-TLS13-1-2-Ext2-2021-06",
        "ELBSecurityPolicy-TLS13-1-1-2021-06",
        "ELBSecurityPolicy-TLS13-1-0-2021-06",
        "ELBSecurityPolicy-TLS13-1-3-2021-06",
        "ELBSecurityPolicy-TLS13-1-2-FIPS-2023-04",
        "ELBSecurityPolicy-TLS13-1-2-Res-FIPS-2023-04",
        "ELBSecurityPolicy-TLS13-1-2-Ext0-FIPS-2023-04",
        "ELBSecurityPolicy-TLS13-1-2-Ext1-FIPS-2023-04",
        "ELBSecurityPolicy-TLS13-1-2-Ext2-FIPS-2023-04",
        "ELBSecurityPolicy-TLS13-1-1-FIPS-2023-04",
        "ELBSecurityPolicy-TLS13-1-0-FIPS-2023-04",
        "ELBSecurityPolicy-TLS13-1-3-FIPS-2023-04",
        "ELBSecurityPolicy-TLS13-1-2-PQ-2025-09",
        "ELBSecurityPolicy-TLS13-1-2-Res-PQ-2025-09",
        "ELBSecurityPolicy-TLS13-1-2-Ext0-PQ-2025-09",
        "ELBSecurityPolicy-TLS13-1-2-Ext1-PQ-2025-09",
        "ELBSecurityPolicy-TLS13-1-2-Ext2-PQ-2025-09",
        "ELBSecurityPolicy-TLS13-1-1-PQ-2025-09",
        "ELBSecurityPolicy-TLS13-1-0-PQ-2025-09",
        "ELBSecurityPolicy-TLS13-1-3-PQ-2025-09",
        "ELBSecurityPolicy-TLS13-1-2-FIPS-PQ-2025-09",
        "ELBSecurityPolicy-TLS13-1-2-Res-FIPS-PQ-2025-09",
        "ELBSecurityPolicy-TLS13-1-2-Ext0-FIPS-PQ-2025-09",
        "ELBSecurityPolicy-TLS13-1-2-Ext1-FIPS-PQ-2025-09",
        "ELBSecurityPolicy-TLS13-1-2-Ext2-FIPS-PQ-2025-09",
        "ELBSecurityPolicy-TLS13-1-1-FIPS-PQ-2025-09",
        "ELBSecurityPolicy-TLS13-1-0-FIPS-PQ-2025-09",
        "ELBSecurityPolicy-TLS13-1-3-FIPS-PQ-2025-09",
        "ELBSecurityPolicy-FS-1-2-Res-2020-10",
        "ELBSecurityPolicy-FS-1-2-Res-2019-08",
        "ELBSecurityPolicy-FS-1-2-2019-08",
        "ELBSecurityPolicy-FS-1-1-2019-08",
        "ELBSecurityPolicy-FS-2018-06",
        "ELBSecurityPolicy-TLS-1-2-Ext-2018-06",
        "ELBSecurityPolicy-TLS-1-2-2017-01",
        "ELBSecurityPolicy-TLS-1-1-2017-01",
        "ELBSecurityPolicy-2016-08",
        "ELBSecurityPolicy-2015-05",
    ]
)


def _ssl_policy(
    r: PlannedResource, _plan: Plan, _by_urn: Mapping[str, PlannedResource]
) -> Iterator[tuple[str, Any, str, str]]:
    policy = r.inputs.get("sslPolicy")
    if _known(policy) and policy not in ELB_SSL_POLICIES:
        yield "sslPolicy", policy, "is not an Application Load Balancer security policy name", CERTAIN
    if str(r.inputs.get("protocol") or "").upper() == "HTTPS" and not _known(r.inputs.get("certificateArn")):
        yield "certificateArn", None, "an HTTPS listener needs a default certificate", CERTAIN


# --- names ------------------------------------------------------------------------------------------
NAME_LIMITS: dict[str, tuple[int, str]] = {
    # Pulumi type -> (max length, allowed characters regex) where the CloudFormation schema has none.
    "aws:lb/targetGroup:TargetGroup": (32, r"^[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?$"),
    "aws:lb/loadBalancer:LoadBalancer": (32, r"^[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?$"),
    "aws:sqs/queue:Queue": (80, r"^[A-Za-z0-9_-]+(\.fifo)?$"),
    "aws:sns/topic:Topic": (256, r"^[A-Za-z0-9_-]+(\.fifo)?$"),
    "aws:s3/bucket:Bucket": (63, r"^[a-z0-9][a-z0-9.-]*[a-z0-9]$"),
    "aws:ecs/cluster:Cluster": (255, r"^[A-Za-z0-9_-]+$"),
    "aws:elasticache/subnetGroup:SubnetGroup": (255, r"^[a-z0-9-]+$"),
    "aws:rds/subnetGroup:SubnetGroup": (255, r"^[a-z0-9 ._-]+$"),
    "aws:rds/parameterGroup:ParameterGroup": (255, r"^[a-z](?:-?[a-z0-9])*$"),
    "aws:cloudwatch/eventBus:EventBus": (256, r"^[/\.\-_A-Za-z0-9]+$"),
    "aws:apigatewayv2/api:Api": (128, r"."),
    "aws:apigatewayv2/vpcLink:VpcLink": (128, r"."),
    "aws:wafv2/webAcl:WebAcl": (128, r"^[\w-]+$"),
    "aws:iam/rolePolicy:RolePolicy": (128, r"^[\w+=,.@-]+$"),
    "aws:appautoscaling/policy:Policy": (256, r"."),
}
NAME_SOURCES = {
    "aws:lb/targetGroup:TargetGroup": "https://docs.aws.amazon.com/elasticloadbalancing/latest/APIReference/API_CreateTargetGroup.html",
    "aws:lb/loadBalancer:LoadBalancer": "https://docs.aws.amazon.com/elasticloadbalancing/latest/APIReference/API_CreateLoadBalancer.html",
    "aws:sqs/queue:Queue": "https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_CreateQueue.html",
    "aws:s3/bucket:Bucket": "https://docs.aws.amazon.com/AmazonS3/latest/userguide/bucketnamingrules.html",
}
AUTONAME_SUFFIX = "-a1b2c3d"
"""What Pulumi appends to a logical name when it auto-names: '-' and 7 random characters."""
AUTONAME_SOURCE = "https://www.pulumi.com/docs/iac/concepts/resources/names/#autonaming"


def _names(
    r: PlannedResource, _plan: Plan, _by_urn: Mapping[str, PlannedResource]
) -> Iterator[tuple[str, Any, str, str]]:
    import re

    from offline.preflight import cfn

    table = TABLE.get(r.type)
    if table is None or table.autoname is None:
        return
    prop = table.autoname
    explicit = r.inputs.get(prop)
    if _known(explicit):
        name, how = str(explicit), "name"
    elif "namePrefix" in r.inputs or prop in r.inputs:
        return
    else:
        name, how = r.name + AUTONAME_SUFFIX, "auto-name (logical name + Pulumi's 8-character suffix)"
    limit = NAME_LIMITS.get(r.type)
    if limit is None:
        doc = cfn.schema(table.cfn_type)
        node = cfn.property_node(doc, str(table.props[prop])) if doc else None
        if not node or "maxLength" not in node:
            return
        limit = (int(node["maxLength"]), str(node.get("pattern") or "."))
    maximum, pattern = limit
    if len(name) > maximum:
        yield prop, name, f"{how} is {len(name)} characters; AWS allows at most {maximum}", CERTAIN
    elif explicit is not None and not re.search(pattern, name):
        yield prop, name, f"{how} does not match {pattern}", CERTAIN


# --- security groups --------------------------------------------------------------------------------
def _sg_description(
    r: PlannedResource, _plan: Plan, _by_urn: Mapping[str, PlannedResource]
) -> Iterator[tuple[str, Any, str, str]]:
    from model.aws_limits import ec2_description_problem

    text = r.inputs.get("description")
    if isinstance(text, str):
        problem = ec2_description_problem(text)
        if problem:
            yield "description", text, problem, CERTAIN


# --- data stores ------------------------------------------------------------------------------------
def _rds_engine(
    r: PlannedResource, _plan: Plan, _by_urn: Mapping[str, PlannedResource]
) -> Iterator[tuple[str, Any, str, str]]:
    import re

    from model.aws_limits import postgres_version_problem

    if r.inputs.get("engine") == "postgres" and _known(r.inputs.get("engineVersion")):
        problem = postgres_version_problem(str(r.inputs["engineVersion"]))
        if problem:
            yield "engineVersion", r.inputs["engineVersion"], problem, CERTAIN
    klass = r.inputs.get("instanceClass")
    if _known(klass) and not re.fullmatch(
        r"db\.(t3|t4g|m5|m5d|m6g|m6gd|m6i|m6id|m6in|m7g|m7gd|m7i|m8g|r5|r5b|r5d|r6g|r6gd|r6i|r6id|r6in|r7g|r7gd|r7i|r8g|x2g|x2iedn|c6gd)\.(micro|small|medium|large|xlarge|\d+xlarge|metal)",
        str(klass),
    ):
        yield "instanceClass", klass, "is not an RDS for PostgreSQL instance class (db.<family>.<size>)", CERTAIN
    if r.inputs.get("performanceInsightsEnabled") is True and re.fullmatch(r"db\.t\d+g?\.(micro|small)", str(klass)):
        yield "performanceInsightsEnabled", True, f"Performance Insights is not available on {klass}", CERTAIN


VALKEY_VERSIONS = ("7.2", "8.0", "8.1")


def _elasticache(
    r: PlannedResource, _plan: Plan, _by_urn: Mapping[str, PlannedResource]
) -> Iterator[tuple[str, Any, str, str]]:
    import re

    engine, version = r.inputs.get("engine"), r.inputs.get("engineVersion")
    if engine == "valkey" and _known(version) and str(version) not in VALKEY_VERSIONS:
        yield (
            "engineVersion",
            version,
            f"is not an ElastiCache for Valkey version ({', '.join(VALKEY_VERSIONS)})",
            CERTAIN,
        )
    node = r.inputs.get("nodeType")
    if _known(node) and not re.fullmatch(
        r"cache\.(t3|t4g|m5|m6g|m7g|r5|r6g|r6gd|r7g|c7gn)\.(micro|small|medium|large|xlarge|\d+xlarge)", str(node)
    ):
        yield "nodeType", node, "is not a current ElastiCache node type (cache.<family>.<size>)", CERTAIN
    if r.inputs.get("automaticFailoverEnabled") is True and (r.inputs.get("numCacheClusters") or 0) < 2:
        yield (
            "automaticFailoverEnabled",
            True,
            "automatic failover needs at least 2 cache clusters (numCacheClusters)",
            CERTAIN,
        )
    if r.inputs.get("multiAzEnabled") is True and r.inputs.get("automaticFailoverEnabled") is not True:
        yield "multiAzEnabled", True, "Multi-AZ needs automaticFailoverEnabled", CERTAIN


def _user_group_default(
    r: PlannedResource, plan: Plan, _by_urn: Mapping[str, PlannedResource]
) -> Iterator[tuple[str, Any, str, str]]:
    ids = r.inputs.get("userIds") or []
    users = {u.inputs.get("userId"): u for u in plan.of_type("aws:elasticache/user:User")}
    names = [users[i].inputs.get("userName") if i in users else ("default" if i == "default" else None) for i in ids]
    if None in names:
        return  # a user declared outside this stack: its name is unknown here
    if "default" not in names:
        yield "userIds", ids, "a user group must contain a user named default", CERTAIN


# --- edge: WAF --------------------------------------------------------------------------------------
WAF_MANAGED_GROUPS = {
    # name -> web ACL capacity units (WCU), AWS Managed Rules rule groups list
    "AWSManagedRulesCommonRuleSet": 700,
    "AWSManagedRulesAdminProtectionRuleSet": 100,
    "AWSManagedRulesKnownBadInputsRuleSet": 200,
    "AWSManagedRulesSQLiRuleSet": 200,
    "AWSManagedRulesLinuxRuleSet": 200,
    "AWSManagedRulesUnixRuleSet": 100,
    "AWSManagedRulesWindowsRuleSet": 200,
    "AWSManagedRulesPHPRuleSet": 100,
    "AWSManagedRulesWordPressRuleSet": 100,
    "AWSManagedRulesAmazonIpReputationList": 25,
    "AWSManagedRulesAnonymousIpList": 50,
    "AWSManagedRulesBotControlRuleSet": 50,
    "AWSManagedRulesATPRuleSet": 50,
    "AWSManagedRulesACFPRuleSet": 50,
    "AWSManagedRulesAntiDDoSRuleSet": 50,
}
WAF_MAX_WCU, WAF_BASE_WCU = 5000, 1500


def _waf(
    r: PlannedResource, _plan: Plan, _by_urn: Mapping[str, PlannedResource]
) -> Iterator[tuple[str, Any, str, str]]:
    total = 0
    for i, rule in enumerate(r.inputs.get("rules") or []):
        statement = (rule or {}).get("statement") or {}
        managed = statement.get("managedRuleGroupStatement")
        if managed:
            name, vendor = managed.get("name"), managed.get("vendorName")
            if vendor == "AWS" and name not in WAF_MANAGED_GROUPS:
                yield (
                    f"rules[{i}].statement.managedRuleGroupStatement.name",
                    name,
                    "is not an AWS managed rule group",
                    CERTAIN,
                )
            total += WAF_MANAGED_GROUPS.get(str(name), 0)
        elif "rateBasedStatement" in statement:
            total += 2
        else:
            total += 1
    if total > WAF_MAX_WCU:
        yield "rules", total, f"needs about {total} WCU; a web ACL allows at most {WAF_MAX_WCU}", CERTAIN
    elif total > WAF_BASE_WCU:
        yield "rules", total, f"needs about {total} WCU; above {WAF_BASE_WCU} each request costs extra", ADVISORY


# --- events -----------------------------------------------------------------------------------------
_PATTERN_OPERATORS = {
    "prefix",
    "suffix",
    "anything-but",
    "numeric",
    "exists",
    "cidr",
    "equals-ignore-case",
    "wildcard",
}


def _pattern_problems(node: Any, path: str) -> Iterator[str]:
    if isinstance(node, dict):
        if not node:
            yield f"{path or 'pattern'} is an empty object"
        for key, value in node.items():
            yield from _pattern_problems(value, f"{path}.{key}" if path else key)
    elif isinstance(node, list):
        if not node:
            yield f"{path} matches nothing (an empty array)"
        for item in node:
            if isinstance(item, dict):
                unknown = set(item) - _PATTERN_OPERATORS
                if unknown or len(item) != 1:
                    yield f"{path} has an unknown or ambiguous operator {sorted(item)}"
            elif isinstance(item, list):
                yield f"{path} nests an array in an array"
    else:
        yield f"{path} must be an array of values or an object, not {json.dumps(node)}"


def _event_pattern(
    r: PlannedResource, _plan: Plan, _by_urn: Mapping[str, PlannedResource]
) -> Iterator[tuple[str, Any, str, str]]:
    raw = r.inputs.get("eventPattern")
    if not isinstance(raw, str) or is_opaque(raw):
        return
    try:
        pattern = json.loads(raw)
    except ValueError as exc:
        yield "eventPattern", raw, f"is not JSON ({exc})", CERTAIN
        return
    if not isinstance(pattern, dict):
        yield "eventPattern", raw, "must be a JSON object", CERTAIN
        return
    for problem in _pattern_problems(pattern, ""):
        yield "eventPattern", raw, problem, CERTAIN
        return


# --- observability ----------------------------------------------------------------------------------
_WIDGET_TYPES = {"metric", "text", "log", "alarm", "explorer", "custom"}


def _dashboard(
    r: PlannedResource, _plan: Plan, _by_urn: Mapping[str, PlannedResource]
) -> Iterator[tuple[str, Any, str, str]]:
    raw = r.inputs.get("dashboardBody")
    if not isinstance(raw, str) or is_opaque(raw):
        return
    try:
        body = json.loads(raw)
    except ValueError as exc:
        yield "dashboardBody", raw, f"is not JSON ({exc})", CERTAIN
        return
    widgets = body.get("widgets") if isinstance(body, dict) else None
    if not isinstance(widgets, list):
        yield "dashboardBody", raw, "has no widgets array", CERTAIN
        return
    if len(widgets) > 500:
        yield "dashboardBody", len(widgets), "a dashboard holds at most 500 widgets", CERTAIN
    for i, widget in enumerate(widgets):
        kind = (widget or {}).get("type")
        if kind not in _WIDGET_TYPES:
            yield f"dashboardBody.widgets[{i}].type", kind, f"is not one of {sorted(_WIDGET_TYPES)}", CERTAIN
        width, height = widget.get("width", 6), widget.get("height", 6)
        if not (isinstance(width, int) and 1 <= width <= 24):
            yield f"dashboardBody.widgets[{i}].width", width, "must be 1-24", CERTAIN
        if not (isinstance(height, int) and 1 <= height <= 1000):
            yield f"dashboardBody.widgets[{i}].height", height, "must be 1-1000", CERTAIN
        if (
            kind == "metric"
            and not (widget.get("properties") or {}).get("metrics")
            and not (widget.get("properties") or {}).get("annotations", {}).get("alarms")
        ):
            yield f"dashboardBody.widgets[{i}].properties.metrics", None, "a metric widget needs metrics", CERTAIN


def _period_ok(period: Any) -> bool:
    return isinstance(period, int) and (period in (10, 20, 30) or (period >= 60 and period % 60 == 0))


def _alarm(
    r: PlannedResource, _plan: Plan, _by_urn: Mapping[str, PlannedResource]
) -> Iterator[tuple[str, Any, str, str]]:
    periods: list[tuple[str, Any]] = []
    if "period" in r.inputs:
        periods.append(("period", r.inputs["period"]))
    for i, query in enumerate(r.inputs.get("metricQueries") or []):
        metric = (query or {}).get("metric") or {}
        if "period" in metric:
            periods.append((f"metricQueries[{i}].metric.period", metric["period"]))
    for where, period in periods:
        if _known(period) and not _period_ok(period):
            yield where, period, "must be 10, 20, 30 or a multiple of 60 seconds", CERTAIN
    evaluations, datapoints = r.inputs.get("evaluationPeriods"), r.inputs.get("datapointsToAlarm")
    if isinstance(evaluations, int) and isinstance(datapoints, int) and datapoints > evaluations:
        yield "datapointsToAlarm", datapoints, f"must not exceed evaluationPeriods ({evaluations})", CERTAIN
    longest = max((p for _, p in periods if isinstance(p, int)), default=0)
    if isinstance(evaluations, int) and longest and evaluations * longest > 86400 * 7:
        yield "evaluationPeriods", evaluations, "evaluationPeriods x period must be at most 7 days", CERTAIN
    if "metricQueries" in r.inputs and "metricName" in r.inputs:
        yield "metricQueries", None, "an alarm has either metricName or metricQueries, not both", CERTAIN


# --- Lambda and SQS ---------------------------------------------------------------------------------
def _unqualified_function(target: Any) -> Any:
    """`FunctionName` without its version or alias qualifier. CreateEventSourceMapping accepts a name, a
    name with an alias (`my-function:live`), an ARN or a qualified ARN (`...:function:my-function:live`)
    (Lambda API reference, CreateEventSourceMapping, FunctionName)."""
    if not isinstance(target, str):
        return target
    if target.startswith("arn:"):
        return target.rsplit(":", 1)[0] if target.count(":") == 7 else target
    return target.split(":", 1)[0]


def _sqs_visibility(
    r: PlannedResource, plan: Plan, _by_urn: Mapping[str, PlannedResource]
) -> Iterator[tuple[str, Any, str, str]]:
    source = r.inputs.get("eventSourceArn")
    if not (isinstance(source, str) and source.startswith("arn:aws:sqs:")):
        return
    queue = next((q for q in plan.of_type("aws:sqs/queue:Queue") if q.outputs.get("arn") == source), None)
    target = _unqualified_function(r.inputs.get("functionName"))
    function = next(
        (
            f
            for f in plan.of_type("aws:lambda/function:Function")
            if target in (f.outputs.get("arn"), f.outputs.get("name"))
        ),
        None,
    )
    if queue is None or function is None:
        return
    visibility = queue.inputs.get("visibilityTimeoutSeconds", 30)
    timeout = function.inputs.get("timeout", 3)
    if isinstance(visibility, int) and isinstance(timeout, int) and visibility < timeout:
        yield (
            "eventSourceArn",
            source,
            f"queue visibility timeout ({visibility}s) is less than the function timeout ({timeout}s)",
            CERTAIN,
        )


# --- Cloud Map --------------------------------------------------------------------------------------
def _discovery(
    r: PlannedResource, _plan: Plan, _by_urn: Mapping[str, PlannedResource]
) -> Iterator[tuple[str, Any, str, str]]:
    custom = r.inputs.get("healthCheckCustomConfig") or {}
    if "failureThreshold" in custom:
        value = custom["failureThreshold"]
        level = ADVISORY if value == 1 else CERTAIN
        yield (
            "healthCheckCustomConfig.failureThreshold",
            value,
            "is deprecated: AWS always uses 1 (kept at 1 because an empty block is dropped by the provider)"
            if value == 1
            else "is no longer supported; AWS always uses 1",
            level,
        )


RULES: tuple[Rule, ...] = (
    Rule(
        "fargate-task-size",
        "Fargate CPU/memory pairs",
        "https://docs.aws.amazon.com/AmazonECS/latest/developerguide/fargate-tasks-services.html#fargate-tasks-size",
        ("aws:ecs/taskDefinition:TaskDefinition",),
        _fargate_size,
    ),
    Rule(
        "fargate-spot-arm64",
        "Fargate Spot does not run ARM64 tasks",
        "https://docs.aws.amazon.com/AmazonECS/latest/developerguide/fargate-capacity-providers.html",
        ("aws:ecs/service:Service",),
        _spot_arm64,
    ),
    Rule(
        "target-group-health-check",
        "Health check timeout below interval; HTTP success codes 200-499",
        "https://docs.aws.amazon.com/elasticloadbalancing/latest/application/target-group-health-checks.html",
        ("aws:lb/targetGroup:TargetGroup",),
        _health_check,
    ),
    Rule(
        "alb-ssl-policy",
        "ALB listener security policy names; HTTPS needs a certificate",
        "https://docs.aws.amazon.com/elasticloadbalancing/latest/application/describe-ssl-policies.html",
        ("aws:lb/listener:Listener",),
        _ssl_policy,
    ),
    Rule(
        "name-length",
        "Name lengths and characters, including Pulumi's 8-character auto-name suffix",
        AUTONAME_SOURCE,
        tuple(t for t, m in TABLE.items() if m.autoname),
        _names,
    ),
    Rule(
        "sg-description-characters",
        "Security group (rule) description characters",
        "https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_CreateSecurityGroup.html",
        (
            "aws:ec2/securityGroup:SecurityGroup",
            "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule",
            "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule",
        ),
        _sg_description,
    ),
    Rule(
        "rds-engine-version-and-class",
        "RDS PostgreSQL creatable versions and instance classes",
        "https://docs.aws.amazon.com/AmazonRDS/latest/PostgreSQLReleaseNotes/postgresql-versions.html",
        ("aws:rds/instance:Instance",),
        _rds_engine,
    ),
    Rule(
        "elasticache-engine-and-node",
        "ElastiCache Valkey versions, node types, failover settings",
        "https://docs.aws.amazon.com/AmazonElastiCache/latest/dg/supported-engine-versions.html",
        ("aws:elasticache/replicationGroup:ReplicationGroup",),
        _elasticache,
    ),
    Rule(
        "elasticache-default-user",
        "A user group contains a user named default",
        "https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-resource-elasticache-usergroup.html",
        ("aws:elasticache/userGroup:UserGroup",),
        _user_group_default,
    ),
    Rule(
        "waf-managed-groups-and-capacity",
        "WAF managed rule group names and the web ACL capacity limit",
        "https://docs.aws.amazon.com/waf/latest/developerguide/aws-managed-rule-groups-list.html",
        ("aws:wafv2/webAcl:WebAcl",),
        _waf,
    ),
    Rule(
        "eventbridge-pattern",
        "EventBridge event pattern grammar",
        "https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-event-patterns.html",
        ("aws:cloudwatch/eventRule:EventRule", "aws:cloudwatch/eventArchive:EventArchive"),
        _event_pattern,
    ),
    Rule(
        "dashboard-body",
        "CloudWatch dashboard body widgets",
        "https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/CloudWatch-Dashboard-Body-Structure.html",
        ("aws:cloudwatch/dashboard:Dashboard",),
        _dashboard,
    ),
    Rule(
        "alarm-period",
        "Alarm periods (10, 20, 30 or multiples of 60 s), datapoints vs evaluation periods",
        "https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_PutMetricAlarm.html",
        ("aws:cloudwatch/metricAlarm:MetricAlarm",),
        _alarm,
    ),
    Rule(
        "sqs-visibility-vs-lambda-timeout",
        "SQS visibility timeout at least the Lambda timeout",
        "https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-configure.html",
        ("aws:lambda/eventSourceMapping:EventSourceMapping",),
        _sqs_visibility,
    ),
    Rule(
        "cloudmap-failure-threshold",
        "healthCheckCustomConfig.failureThreshold is deprecated (always 1)",
        "https://docs.aws.amazon.com/cloud-map/latest/api/API_HealthCheckCustomConfig.html",
        ("aws:servicediscovery/service:Service",),
        _discovery,
    ),
)


def run_rules(plan: Plan, resources: Sequence[PlannedResource], coverage: Coverage) -> Iterator[Finding]:
    by_type: dict[str, list[Rule]] = {}
    for rule in RULES:
        for t in rule.types:
            by_type.setdefault(t, []).append(rule)
    by_urn = plan.by_urn()
    for resource in resources:
        for rule in by_type.get(resource.type, ()):
            coverage.rule_evaluations += 1
            for prop, value, message, level in rule.check(resource, plan, by_urn):
                yield Finding(resource.urn, prop, value, rule.id, message, rule.source, level)
