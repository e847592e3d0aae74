"""The AWS conformance preflight: the real stacks pass with 0 certain failures, and each variant below
(an edit of the dev plan that AWS would reject) is reported with the right rule. No network: the
references are the cfn-lint schemas and botocore models installed in the venv."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from offline.__main__ import main
from offline.export import preview_json, write_json
from offline.plan import UNKNOWN, Plan, PlannedResource
from offline.preflight import CERTAIN, Finding, format_report, run_preflight
from tests.conftest import STACKS, preview


def _dev() -> Plan:
    return copy.deepcopy(preview("dev").plan)


def _one(plan: Plan, type_token: str, name_part: str = "") -> PlannedResource:
    """The resource of a type named `name_part`, or else the only one whose name contains it (never the
    first of several: plan order varies from run to run, so the edit would land on either one)."""
    found = [r for r in plan.of_type(type_token) if r.name == name_part] or [
        r for r in plan.of_type(type_token) if name_part in r.name
    ]
    assert len(found) == 1, (
        f"expected one {type_token} named *{name_part}* in the dev plan, got {[r.name for r in found]}"
    )
    return found[0]


def _containers(task: PlannedResource) -> list[dict[str, Any]]:
    return json.loads(task.inputs["containerDefinitions"])


def _set_containers(task: PlannedResource, edit: Callable[[list[dict[str, Any]]], None]) -> None:
    defs = _containers(task)
    edit(defs)
    task.inputs["containerDefinitions"] = json.dumps(defs)


def _set(path: str, value: Any) -> Callable[[PlannedResource], None]:
    def edit(r: PlannedResource) -> None:
        target = r.inputs
        *head, last = path.split(".")
        for part in head:
            target = target[int(part)] if isinstance(target, list) else target.setdefault(part, {})
        if isinstance(target, list):
            target[int(last)] = value
        else:
            target[last] = value

    return edit


def _rename(new_name: str) -> Callable[[PlannedResource], None]:
    def edit(r: PlannedResource) -> None:
        r.name = new_name

    return edit


SG = "aws:ec2/securityGroup:SecurityGroup"
INGRESS = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
EGRESS = "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule"
TASK = "aws:ecs/taskDefinition:TaskDefinition"
SERVICE = "aws:ecs/service:Service"
TG = "aws:lb/targetGroup:TargetGroup"
LISTENER = "aws:lb/listener:Listener"
RULE = "aws:lb/listenerRule:ListenerRule"
LB = "aws:lb/loadBalancer:LoadBalancer"
RDS = "aws:rds/instance:Instance"
CACHE = "aws:elasticache/replicationGroup:ReplicationGroup"
CACHE_USER = "aws:elasticache/user:User"
USER_GROUP = "aws:elasticache/userGroup:UserGroup"
QUEUE = "aws:sqs/queue:Queue"
FUNCTION = "aws:lambda/function:Function"
ESM = "aws:lambda/eventSourceMapping:EventSourceMapping"
EVENT_RULE = "aws:cloudwatch/eventRule:EventRule"
EVENT_TARGET = "aws:cloudwatch/eventTarget:EventTarget"
ARCHIVE = "aws:cloudwatch/eventArchive:EventArchive"
ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
DASHBOARD = "aws:cloudwatch/dashboard:Dashboard"
LOG_GROUP = "aws:cloudwatch/logGroup:LogGroup"
WAF = "aws:wafv2/webAcl:WebAcl"
DISCOVERY = "aws:servicediscovery/service:Service"
TABLE = "aws:dynamodb/table:Table"
KEY = "aws:kms/key:Key"
ROLE = "aws:iam/role:Role"
SCALING = "aws:appautoscaling/target:Target"


def _spot_arm64(plan: Plan) -> PlannedResource:
    service = _one(plan, SERVICE, "order")
    task = next(t for t in plan.of_type(TASK) if t.urn in service.property_dependencies["taskDefinition"])
    task.inputs["runtimePlatform"]["cpuArchitecture"] = "ARM64"  # dev runs x86 on FARGATE_SPOT
    return service


def _visibility_below_timeout(plan: Plan) -> PlannedResource:
    mapping = _one(plan, ESM, "notification-queue-trigger")
    queue = next(q for q in plan.of_type(QUEUE) if q.outputs["arn"] == mapping.inputs["eventSourceArn"])
    queue.inputs["visibilityTimeoutSeconds"] = 5
    return mapping


def _user_group_without_default(plan: Plan) -> PlannedResource:
    group = _one(plan, USER_GROUP)
    group.inputs["userIds"] = [u for u in group.inputs["userIds"] if not u.endswith("-default")]
    return group


def _edit(
    type_token: str, name_part: str, edit: Callable[[PlannedResource], None]
) -> Callable[[Plan], PlannedResource]:
    def apply(plan: Plan) -> PlannedResource:
        resource = _one(plan, type_token, name_part)
        edit(resource)
        return resource

    return apply


def _containers_edit(edit: Callable[[list[dict[str, Any]]], None]) -> Callable[[Plan], PlannedResource]:
    return _edit(TASK, "order", lambda r: _set_containers(r, edit))


def _dashboard(edit: Callable[[dict[str, Any]], None]) -> Callable[[PlannedResource], None]:
    def apply(r: PlannedResource) -> None:
        body = json.loads(r.inputs["dashboardBody"])
        edit(body)
        r.inputs["dashboardBody"] = json.dumps(body)

    return apply


def _waf_rule(index_of: str, path: str, value: Any) -> Callable[[PlannedResource], None]:
    def apply(r: PlannedResource) -> None:
        rule = next(x for x in r.inputs["rules"] if index_of in json.dumps(x["statement"]))
        target = rule
        *head, last = path.split(".")
        for part in head:
            target = target[part]
        target[last] = value

    return apply


def _setting(
    variant: str, type_token: str, name_part: str, path: str, value: Any, rule: str, *, prop: str | None = None
) -> tuple[str, Callable[[Plan], PlannedResource], str, str]:
    """The common variant: set one input (`path`, dotted) of one resource; the finding is on `prop`
    (default: that path)."""
    return (variant, _edit(type_token, name_part, _set(path, value)), prop or path, rule)


# (id, edit returning the resource to look at, property prefix, rule id)
VARIANTS: list[tuple[str, Callable[[Plan], PlannedResource], str, str]] = [
    # The defects of issue 9, as they were in the plan.
    _setting("sg-apostrophe", SG, "ms-dev-alb-sg", "description", "order's sidecar", "sg-description-characters"),
    _setting(
        "ingress-apostrophe",
        INGRESS,
        "inventory-mesh-from-order",
        "description",
        "mTLS mesh: order's sidecar to inventory's sidecar",
        "sg-description-characters",
    ),
    _setting("egress-accent", EGRESS, "order-mesh-to-inventory", "description", "café", "sg-description-characters"),
    _setting("postgres-16.6", RDS, "users", "engineVersion", "16.6", "rds-engine-version-and-class"),
    ("spot-arm64", _spot_arm64, "capacityProviderStrategies", "fargate-spot-arm64"),
    ("user-group-no-default", _user_group_without_default, "userIds", "elasticache-default-user"),
    _setting(
        "failure-threshold-3",
        DISCOVERY,
        "order",
        "healthCheckCustomConfig.failureThreshold",
        3,
        "cloudmap-failure-threshold",
    ),
    # CloudFormation schemas.
    _setting("ingress-port-range", INGRESS, "alb-in-https-ipv4", "fromPort", -5, "cfn-schema:minimum"),
    _setting("task-network-mode", TASK, "order", "networkMode", "nat", "cfn-schema:enum"),
    _setting("service-propagate-tags", SERVICE, "order", "propagateTags", "ALL", "cfn-schema:enum"),
    _setting("tg-interval", TG, "order-public-tg", "healthCheck.interval", 400, "cfn-schema:maximum"),
    _setting("listener-port", LISTENER, "ms-dev-alb-http", "port", 70000, "cfn-schema:maximum"),
    _setting("rule-priority", RULE, "order-public-route", "priority", 0, "cfn-schema:minimum"),
    _setting("rds-identifier", RDS, "users", "identifier", "1-users_db", "cfn-schema:pattern"),
    _setting("rds-backup-retention", RDS, "users", "backupRetentionPeriod", -1, "cfn-schema:minimum"),
    _setting("cache-clusters", CACHE, "payment", "numCacheClusters", 7, "cfn-schema:maximum"),
    _setting("cache-user-engine", CACHE_USER, "cache-user", "engine", "memcached", "cfn-schema:enum"),
    _setting("queue-retention", QUEUE, "inventory-queue", "messageRetentionSeconds", 30, "cfn-schema:minimum"),
    _setting("lambda-memory", FUNCTION, "notification", "memorySize", 64, "cfn-schema:minimum"),
    _setting("esm-batch", ESM, "notification-queue-trigger", "batchSize", 20000, "cfn-schema:maximum"),
    _setting("alarm-operator", ALARM, "order-cpu-high", "comparisonOperator", "Bigger", "cfn-schema:enum"),
    _setting("log-retention", LOG_GROUP, "flow-logs", "retentionInDays", 10, "cfn-schema:enum"),
    _setting(
        "dns-record-type", DISCOVERY, "order", "dnsConfig.dnsRecords.0.type", "MX", "cfn-schema:enum", prop="dnsConfig"
    ),
    _setting("dynamodb-billing", TABLE, "orders", "billingMode", "ONDEMAND", "cfn-schema:enum"),
    _setting("kms-window", KEY, "key", "deletionWindowInDays", 3, "cfn-schema:minimum"),
    _setting("scaling-dimension", SCALING, "order", "scalableDimension", "ecs:service:Count", "cfn-schema:enum"),
    # botocore API models.
    (
        "container-port-protocol",
        _containers_edit(lambda d: d[0]["portMappings"][0].update(protocol="sctp")),
        "containerDefinitions[0].portMappings",
        "api-model:ContainerDefinition.enum",
    ),
    (
        "container-log-driver",
        _containers_edit(lambda d: d[0]["logConfiguration"].update(logDriver="cloudwatch")),
        "containerDefinitions[0].logConfiguration",
        "api-model:ContainerDefinition.enum",
    ),
    (
        "listener-fixed-status",
        _edit(LISTENER, "alb-https", lambda r: r.inputs["defaultActions"][0]["fixedResponse"].update(statusCode="999")),
        "defaultActions[0].FixedResponseConfig",
        "api-model:Action.pattern",
    ),
    (
        "rule-action-type",
        _edit(RULE, "order-public-route", lambda r: r.inputs["actions"][0].update(type="proxy")),
        "actions[0].Type",
        "api-model:Action.enum",
    ),
    _setting(
        "target-retries",
        EVENT_TARGET,
        "inventory-order-target",
        "retryPolicy.maximumRetryAttempts",
        500,
        "api-model:Target.max",
        prop="target[0].RetryPolicy",
    ),
    (
        "waf-rate-limit",
        _edit(WAF, "waf", _waf_rule("rateBasedStatement", "statement.rateBasedStatement.limit", 5)),
        "rules[0].Statement",
        "api-model:Rule.min",
    ),
    # Cross-field rules.
    _setting("fargate-size", TASK, "order", "memory", "16384", "fargate-task-size"),
    _setting("tg-timeout-interval", TG, "order-public-tg", "healthCheck.timeout", 20, "target-group-health-check"),
    _setting("tg-matcher", TG, "order-public-tg", "healthCheck.matcher", "600", "target-group-health-check"),
    _setting("tg-name-length", TG, "order-public-tg", "name", "dev-order-public-target-group-0123", "name-length"),
    ("lb-autoname-length", _edit(LB, "api-alb", _rename("ms-dev-internal-api-load-balancer")), "name", "name-length"),
    _setting("role-name-length", ROLE, "ms-dev-order-task", "name", "r" * 65, "name-length"),
    (
        "archive-autoname",
        _edit(ARCHIVE, "archive", _rename("ms-dev-every-domain-event-archive-for-replay")),
        "name",
        "name-length",
    ),
    _setting(
        "listener-ssl-policy", LISTENER, "alb-https", "sslPolicy", "ELBSecurityPolicy-TLS13-9-9-2030", "alb-ssl-policy"
    ),
    _setting("rds-instance-class", RDS, "users", "instanceClass", "db.t2.nano", "rds-engine-version-and-class"),
    _setting("valkey-version", CACHE, "payment", "engineVersion", "6.2", "elasticache-engine-and-node"),
    _setting("cache-node-type", CACHE, "payment", "nodeType", "cache.t1.micro", "elasticache-engine-and-node"),
    (
        "waf-managed-group",
        _edit(
            WAF,
            "waf",
            _waf_rule(
                "AmazonIpReputationList", "statement.managedRuleGroupStatement.name", "AWSManagedRulesIpReputation"
            ),
        ),
        "rules[",
        "waf-managed-groups-and-capacity",
    ),
    _setting(
        "event-pattern-scalar",
        EVENT_RULE,
        "inventory-order",
        "eventPattern",
        '{"source": "microservices.order"}',
        "eventbridge-pattern",
    ),
    _setting(
        "event-pattern-operator",
        EVENT_RULE,
        "inventory-order",
        "eventPattern",
        '{"source": [{"startsWith": "microservices."}]}',
        "eventbridge-pattern",
    ),
    (
        "dashboard-width",
        _edit(DASHBOARD, "", _dashboard(lambda b: b["widgets"][0].update(width=30))),
        "dashboardBody.widgets[0].width",
        "dashboard-body",
    ),
    (
        "dashboard-type",
        _edit(DASHBOARD, "", _dashboard(lambda b: b["widgets"][1].update(type="graph"))),
        "dashboardBody.widgets[1].type",
        "dashboard-body",
    ),
    _setting("alarm-period", ALARM, "order-cpu-high", "period", 45, "alarm-period"),
    (
        "alarm-datapoints",
        _edit(ALARM, "order-cpu-high", lambda r: r.inputs.update(datapointsToAlarm=r.inputs["evaluationPeriods"] + 1)),
        "datapointsToAlarm",
        "alarm-period",
    ),
    ("sqs-visibility", _visibility_below_timeout, "eventSourceArn", "sqs-visibility-vs-lambda-timeout"),
]


def _findings_for(plan: Plan, urn: str) -> list[Finding]:
    return [f for f in run_preflight(plan).findings if f.urn == urn]


@pytest.mark.parametrize("stack", STACKS)
def test_the_stacks_have_no_certain_failures_and_print_coverage(stack: str) -> None:
    report = run_preflight(preview(stack).plan)
    assert report.certain == [], format_report(report)
    text = format_report(report)
    summary = text.splitlines()[-1]
    assert summary.startswith("Preflight: 0 certain, "), summary
    assert "types not checked: " in summary and " property values " in summary, summary
    assert report.coverage.values_checked > 1000 and len(report.coverage.checked_types) >= 50
    # The one known advisory: Cloud Map's deprecated failureThreshold, kept at AWS's only value.
    assert {f.rule for f in report.advisories} == {"cloudmap-failure-threshold"}


@pytest.mark.parametrize(("variant", "edit", "prop", "rule"), VARIANTS, ids=[v[0] for v in VARIANTS])
def test_each_variant_aws_would_reject_is_reported_with_its_rule(
    variant: str, edit: Callable[[Plan], PlannedResource], prop: str, rule: str
) -> None:
    plan = _dev()
    resource = edit(plan)
    findings = _findings_for(plan, resource.urn)
    matching = [f for f in findings if f.rule == rule and f.property.startswith(prop) and f.level == CERTAIN]
    assert matching, (
        f"{variant}: expected [{rule}] on {prop}; got {[(f.rule, f.property, f.message) for f in findings]}"
    )
    finding = matching[0]
    assert finding.source.startswith(("https://", "CloudFormation schema", "botocore ")), finding.source
    assert finding.message, finding


def test_variants_cover_thirty_cases_across_fifteen_resource_types() -> None:
    types = set()
    for _variant, edit, _prop, _rule in VARIANTS:
        types.add(edit(_dev()).type)
    assert len(VARIANTS) >= 30 and len(types) >= 15, (len(VARIANTS), sorted(types))


def test_unknown_and_secret_values_are_skipped() -> None:
    plan = _dev()
    rds = _one(plan, RDS, "users")
    rds.inputs["engineVersion"] = UNKNOWN
    rds.inputs["backupRetentionPeriod"] = {
        "4dabf18193072939515e22adb298388d": "1b47061264138c4ac30d75fd1eb44270",
        "value": -1,
    }
    assert [f for f in run_preflight(plan).findings if f.urn == rds.urn] == []


def test_a_finding_names_urn_property_value_rule_and_source() -> None:
    plan = _dev()
    group = _edit(SG, "ms-dev-alb-sg", _set("description", "order's sidecar"))(plan)
    text = format_report(run_preflight(plan))
    assert f"[sg-description-characters] {group.urn}" in text
    assert "description = order's sidecar: contains \"'\"" in text
    assert "source: https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_CreateSecurityGroup.html" in text
    assert text.splitlines()[-1].startswith("Preflight: ")


def test_cfn_schema_checks_nested_values_too() -> None:
    plan = _dev()
    service = _one(plan, SERVICE, "order")
    service.inputs["capacityProviderStrategies"][0]["weight"] = 5000
    findings = _findings_for(plan, service.urn)
    assert any(
        f.rule == "cfn-schema:maximum" and f.property == "capacityProviderStrategies[0].Weight" for f in findings
    ), findings


def test_saved_plan_files_are_checked_and_certain_failures_exit_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plan = _dev()
    clean = tmp_path / "clean.json"
    write_json(clean, preview_json(plan))
    assert main(["preflight", "--file", str(clean)]) == 0
    _edit(RDS, "users", _set("engineVersion", "16.6"))(plan)
    broken = tmp_path / "broken.json"
    write_json(broken, preview_json(plan))
    assert main(["preflight", "--file", str(broken)]) == 1
    out = capsys.readouterr().out
    assert "[rds-engine-version-and-class]" in out and "Preflight: 1 certain" in out, out
    assert main(["preflight", "--file", str(tmp_path / "missing.json")]) == 2


def test_preview_runs_the_preflight_before_the_pack_and_no_preflight_skips_it(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import offline.runtime

    # The CLI's own code path, with the program run the other tests already paid for.
    monkeypatch.setattr(offline.runtime, "run_program", lambda _dir, stack: preview(stack))
    assert main(["preview", "--stack", "dev"]) == 0
    out = capsys.readouterr().out
    assert "\nPreflight: 0 certain, " in out and "Policy violations: 0 mandatory" in out, out[-2000:]
    assert out.index("\nPreflight: ") < out.index("Policy violations:"), "the preflight runs before the pack"
    assert main(["preview", "--stack", "dev", "--no-policy", "--no-preflight"]) == 0
    assert "Preflight:" not in capsys.readouterr().out
    broken = copy.deepcopy(preview("dev"))
    _edit(RDS, "users", _set("engineVersion", "16.6"))(broken.plan)
    monkeypatch.setattr(offline.runtime, "run_program", lambda _dir, stack: broken)
    assert main(["preview", "--stack", "dev", "--no-policy"]) == 1
    assert "[rds-engine-version-and-class]" in capsys.readouterr().out


# --- real program changes: the component run with values config validation would have stopped -------
def _ledger_plan(**overrides: Any) -> Plan:
    from components.microservice import FargateMicroservice
    from tests.conftest import run_component
    from tests.test_microservice import CONTEXT, SPEC, make_args

    args = make_args(SPEC, **overrides)
    return run_component(lambda: FargateMicroservice("ms-test-ledger", args, CONTEXT))


def test_program_change_arm64_on_spot_is_caught_even_without_config_validation() -> None:
    from dataclasses import replace

    from components.cluster import capacity_strategy
    from model.config import ComputeConfig
    from tests.test_microservice import RUNTIME

    # model_construct skips the validator, as a program that built its own config would.
    compute = ComputeConfig.model_construct(**{**ComputeConfig().model_dump(), "capacity": "spot"})
    assert compute.cpu_architecture == "ARM64"
    runtime = replace(RUNTIME, cpu_architecture=compute.cpu_architecture, capacity=capacity_strategy(compute))
    plan = _ledger_plan(runtime=runtime)
    findings = run_preflight(plan).certain
    assert [f.rule for f in findings] == ["fargate-spot-arm64"], findings
    assert findings[0].urn.endswith("aws:ecs/service:Service::ms-test-ledger-service"), findings[0].urn


def test_program_change_fargate_size_is_caught_even_without_config_validation() -> None:
    from model.config import ServiceSizing

    sizing = ServiceSizing.model_construct(
        image="busybox:1.37", cpu=256, memory=4096, desired_count=1, min_count=1, max_count=2, cpu_target_percent=60
    )
    findings = run_preflight(_ledger_plan(sizing=sizing)).certain
    assert [(f.rule, f.property, f.value) for f in findings] == [("fargate-task-size", "memory", "4096")], findings
