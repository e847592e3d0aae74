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
    found = [r for r in plan.of_type(type_token) if name_part in r.name]
    assert found, f"no {type_token} named *{name_part}* in the dev plan"
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
    mapping = _one(plan, ESM)
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


def _pattern(value: str) -> Callable[[PlannedResource], None]:
    return _set("eventPattern", value)


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


# (id, edit returning the resource to look at, property prefix, rule id)
VARIANTS: list[tuple[str, Callable[[Plan], PlannedResource], str, str]] = [
    # The defects of issue 9, as they were in the plan.
    (
        "sg-apostrophe",
        _edit(SG, "alb-sg", _set("description", "order's sidecar")),
        "description",
        "sg-description-characters",
    ),
    (
        "ingress-apostrophe",
        _edit(INGRESS, "mesh-from", _set("description", "mTLS mesh: order's sidecar to inventory's sidecar")),
        "description",
        "sg-description-characters",
    ),
    (
        "egress-accent",
        _edit(EGRESS, "mesh-to", _set("description", "café")),
        "description",
        "sg-description-characters",
    ),
    (
        "postgres-16.6",
        _edit(RDS, "users", _set("engineVersion", "16.6")),
        "engineVersion",
        "rds-engine-version-and-class",
    ),
    ("spot-arm64", _spot_arm64, "capacityProviderStrategies", "fargate-spot-arm64"),
    ("user-group-no-default", _user_group_without_default, "userIds", "elasticache-default-user"),
    (
        "failure-threshold-3",
        _edit(DISCOVERY, "order", _set("healthCheckCustomConfig.failureThreshold", 3)),
        "healthCheckCustomConfig.failureThreshold",
        "cloudmap-failure-threshold",
    ),
    # CloudFormation schemas.
    ("ingress-port-range", _edit(INGRESS, "alb-in", _set("fromPort", -5)), "fromPort", "cfn-schema:minimum"),
    ("task-network-mode", _edit(TASK, "order", _set("networkMode", "nat")), "networkMode", "cfn-schema:enum"),
    (
        "service-propagate-tags",
        _edit(SERVICE, "order", _set("propagateTags", "ALL")),
        "propagateTags",
        "cfn-schema:enum",
    ),
    (
        "tg-interval",
        _edit(TG, "order", _set("healthCheck.interval", 400)),
        "healthCheck.interval",
        "cfn-schema:maximum",
    ),
    ("listener-port", _edit(LISTENER, "alb-http", _set("port", 70000)), "port", "cfn-schema:maximum"),
    ("rule-priority", _edit(RULE, "order", _set("priority", 0)), "priority", "cfn-schema:minimum"),
    ("rds-identifier", _edit(RDS, "users", _set("identifier", "1-users_db")), "identifier", "cfn-schema:pattern"),
    (
        "rds-backup-retention",
        _edit(RDS, "users", _set("backupRetentionPeriod", -1)),
        "backupRetentionPeriod",
        "cfn-schema:minimum",
    ),
    ("cache-clusters", _edit(CACHE, "payment", _set("numCacheClusters", 7)), "numCacheClusters", "cfn-schema:maximum"),
    ("cache-user-engine", _edit(CACHE_USER, "cache-user", _set("engine", "memcached")), "engine", "cfn-schema:enum"),
    (
        "queue-retention",
        _edit(QUEUE, "inventory-queue", _set("messageRetentionSeconds", 30)),
        "messageRetentionSeconds",
        "cfn-schema:minimum",
    ),
    ("lambda-memory", _edit(FUNCTION, "notification", _set("memorySize", 64)), "memorySize", "cfn-schema:minimum"),
    ("esm-batch", _edit(ESM, "", _set("batchSize", 20000)), "batchSize", "cfn-schema:maximum"),
    (
        "alarm-operator",
        _edit(ALARM, "cpu", _set("comparisonOperator", "Bigger")),
        "comparisonOperator",
        "cfn-schema:enum",
    ),
    ("log-retention", _edit(LOG_GROUP, "flow-logs", _set("retentionInDays", 10)), "retentionInDays", "cfn-schema:enum"),
    (
        "dns-record-type",
        _edit(DISCOVERY, "order", _set("dnsConfig.dnsRecords.0.type", "MX")),
        "dnsConfig",
        "cfn-schema:enum",
    ),
    ("dynamodb-billing", _edit(TABLE, "orders", _set("billingMode", "ONDEMAND")), "billingMode", "cfn-schema:enum"),
    ("kms-window", _edit(KEY, "key", _set("deletionWindowInDays", 3)), "deletionWindowInDays", "cfn-schema:minimum"),
    (
        "scaling-dimension",
        _edit(SCALING, "order", _set("scalableDimension", "ecs:service:Count")),
        "scalableDimension",
        "cfn-schema:enum",
    ),
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
        _edit(RULE, "order", lambda r: r.inputs["actions"][0].update(type="proxy")),
        "actions[0].Type",
        "api-model:Action.enum",
    ),
    (
        "target-retries",
        _edit(EVENT_TARGET, "inventory", _set("retryPolicy.maximumRetryAttempts", 500)),
        "target[0].RetryPolicy",
        "api-model:Target.max",
    ),
    (
        "waf-rate-limit",
        _edit(WAF, "waf", _waf_rule("rateBasedStatement", "statement.rateBasedStatement.limit", 5)),
        "rules[0].Statement",
        "api-model:Rule.min",
    ),
    # Cross-field rules.
    ("fargate-size", _edit(TASK, "order", _set("memory", "16384")), "memory", "fargate-task-size"),
    (
        "tg-timeout-interval",
        _edit(TG, "order", _set("healthCheck.timeout", 20)),
        "healthCheck.timeout",
        "target-group-health-check",
    ),
    (
        "tg-matcher",
        _edit(TG, "order", _set("healthCheck.matcher", "600")),
        "healthCheck.matcher",
        "target-group-health-check",
    ),
    ("tg-name-length", _edit(TG, "order", _set("name", "dev-order-public-target-group-0123")), "name", "name-length"),
    ("lb-autoname-length", _edit(LB, "api-alb", _rename("ms-dev-internal-api-load-balancer")), "name", "name-length"),
    ("role-name-length", _edit(ROLE, "order", _set("name", "r" * 65)), "name", "name-length"),
    (
        "archive-autoname",
        _edit(ARCHIVE, "archive", _rename("ms-dev-every-domain-event-archive-for-replay")),
        "name",
        "name-length",
    ),
    (
        "listener-ssl-policy",
        _edit(LISTENER, "alb-https", _set("sslPolicy", "ELBSecurityPolicy-TLS13-9-9-2030")),
        "sslPolicy",
        "alb-ssl-policy",
    ),
    (
        "rds-instance-class",
        _edit(RDS, "users", _set("instanceClass", "db.t2.nano")),
        "instanceClass",
        "rds-engine-version-and-class",
    ),
    (
        "valkey-version",
        _edit(CACHE, "payment", _set("engineVersion", "6.2")),
        "engineVersion",
        "elasticache-engine-and-node",
    ),
    (
        "cache-node-type",
        _edit(CACHE, "payment", _set("nodeType", "cache.t1.micro")),
        "nodeType",
        "elasticache-engine-and-node",
    ),
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
    (
        "event-pattern-scalar",
        _edit(EVENT_RULE, "inventory-order", _pattern('{"source": "microservices.order"}')),
        "eventPattern",
        "eventbridge-pattern",
    ),
    (
        "event-pattern-operator",
        _edit(EVENT_RULE, "inventory-order", _pattern('{"source": [{"startsWith": "microservices."}]}')),
        "eventPattern",
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
    ("alarm-period", _edit(ALARM, "cpu", _set("period", 45)), "period", "alarm-period"),
    (
        "alarm-datapoints",
        _edit(ALARM, "cpu", lambda r: r.inputs.update(datapointsToAlarm=r.inputs["evaluationPeriods"] + 1)),
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
    group = _edit(SG, "alb-sg", _set("description", "order's sidecar"))(plan)
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
