"""Safe deployments: ECS strategies per environment (rolling, blue/green, canary) with alarm rollback,
the notification Lambda's CodeDeploy traffic shift, the production policy rule, and Envoy's graceful drain.

The ECS properties are pulumi-aws 7.51's (`deploymentConfiguration.strategy`, `bakeTimeInMinutes`,
`canaryConfiguration`, `loadBalancers[].advancedConfiguration`, `alarms`); the ALB layout is the ECS
developer guide's "Application Load Balancer resources for blue/green, linear and canary deployments"."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

# Importing an Envoy proto module registers its descriptors, which ParseDict needs for every `@type`.
from envoy.config.bootstrap.v3 import bootstrap_pb2
from envoy.config.core.v3 import base_pb2
from envoy.config.listener.v3 import listener_pb2
from envoy.extensions.access_loggers.stream.v3 import stream_pb2  # noqa: F401
from envoy.extensions.filters.http.rbac.v3 import rbac_pb2  # noqa: F401
from envoy.extensions.filters.http.router.v3 import router_pb2  # noqa: F401
from envoy.extensions.filters.network.http_connection_manager.v3 import http_connection_manager_pb2 as hcm_pb2
from envoy.extensions.resource_monitors.downstream_connections.v3 import downstream_connections_pb2  # noqa: F401
from envoy.extensions.transport_sockets.tls.v3 import tls_pb2  # noqa: F401
from envoy.extensions.upstreams.http.v3 import http_protocol_options_pb2  # noqa: F401
from google.protobuf import json_format
from guardrails import deployments

from components.envoy import (
    DRAIN_TIME_SECONDS,
    STOP_TIMEOUT_SECONDS,
    envoy_drain_script,
)
from components.notification import codedeploy_config_name
from model.config import parse_stack_config
from model.errors import ConfigError
from offline.plan import Plan, PlannedResource
from tests.conftest import preview, single
from tests.policy_fixtures import make, tags

ECS_SERVICE = "aws:ecs/service:Service"
TARGET_GROUP = "aws:lb/targetGroup:TargetGroup"
LISTENER_RULE = "aws:lb/listenerRule:ListenerRule"
ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
ROLE = "aws:iam/role:Role"
ATTACHMENT = "aws:iam/rolePolicyAttachment:RolePolicyAttachment"
TASK_DEFINITION = "aws:ecs/taskDefinition:TaskDefinition"
PUBLIC = ("user", "order", "inventory")
CIDR = {"dev": "10.10.0.0/16", "staging": "10.20.0.0/16", "prod": "10.30.0.0/16"}


def _service(plan: Plan, env: str, name: str) -> PlannedResource:
    return next(r for r in plan.of_type(ECS_SERVICE) if r.name == f"ms-{env}-{name}-service")


def _by_output(plan: Plan, type_token: str, key: str, value: Any) -> PlannedResource:
    matches = [r for r in plan.of_type(type_token) if r.outputs.get(key) == value]
    assert len(matches) == 1, f"expected one {type_token} with {key}={value}, got {[r.urn for r in matches]}"
    return matches[0]


def _weights(rule: PlannedResource) -> dict[str, int]:
    (action,) = rule.inputs["actions"]
    return {g["arn"]: g["weight"] for g in action["forward"]["targetGroups"]}


# --- ECS strategies ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("env", "strategy"),
    [("staging", "BLUE_GREEN"), ("prod", "CANARY")],
)
def test_public_services_shift_traffic_through_both_albs_with_test_rules(env: str, strategy: str) -> None:
    plan = preview(env).plan
    for name in PUBLIC:
        service = _service(plan, env, name)
        config = service.inputs["deploymentConfiguration"]
        assert config["strategy"] == strategy, service.urn
        assert config["bakeTimeInMinutes"] == ("15" if env == "prod" else "10"), service.urn
        if strategy == "CANARY":
            assert config["canaryConfiguration"] == {"canaryPercent": 10, "canaryBakeTimeInMinutes": "10"}
        else:
            assert "canaryConfiguration" not in config
        balancers = service.inputs["loadBalancers"]
        assert len(balancers) == 2, service.urn  # the public ALB and the internal API ALB
        for balancer in balancers:
            advanced = balancer["advancedConfiguration"]
            primary = _by_output(plan, TARGET_GROUP, "arn", balancer["targetGroupArn"])
            alternate = _by_output(plan, TARGET_GROUP, "arn", advanced["alternateTargetGroupArn"])
            assert primary.parent == alternate.parent == service.parent
            for key in ("port", "protocol", "vpcId", "targetType", "healthCheck"):
                assert primary.inputs[key] == alternate.inputs[key], (service.urn, key)
            production = _by_output(plan, LISTENER_RULE, "arn", advanced["productionListenerRule"])
            test = _by_output(plan, LISTENER_RULE, "arn", advanced["testListenerRule"])
            # Both rules forward to both groups, all traffic on the primary until ECS shifts it.
            expected = {primary.outputs["arn"]: 100, alternate.outputs["arn"]: 0}
            assert _weights(production) == expected and _weights(test) == expected
            assert production.inputs["listenerArn"] == test.inputs["listenerArn"]
            assert test.inputs["priority"] == production.inputs["priority"] - 5
            conditions = {next(iter(c)): c[next(iter(c))] for c in test.inputs["conditions"]}
            assert conditions["httpHeader"] == {"httpHeaderName": "x-deployment-test", "values": ["green"]}
            assert conditions["sourceIp"] == {"values": [CIDR[env]]}
            assert conditions["pathPattern"] == next(c for c in production.inputs["conditions"])["pathPattern"]
            role = _by_output(plan, ROLE, "arn", advanced["roleArn"])
            trust = json.loads(role.inputs["assumeRolePolicy"])
            assert trust["Statement"][0]["Principal"] == {"Service": "ecs.amazonaws.com"}
            # The managed policy's ALB actions, scoped to this service's own groups, rules and listeners.
            (policy,) = [p for p in plan.of_type("aws:iam/rolePolicy:RolePolicy") if p.inputs["role"] == role.id]
            grants = {st["Sid"]: st for st in json.loads(policy.inputs["policy"])["Statement"]}
            assert primary.outputs["arn"] in grants["TargetGroupOperations"]["Resource"]
            assert alternate.outputs["arn"] in grants["TargetGroupOperations"]["Resource"]
            assert {production.outputs["arn"], test.outputs["arn"]} <= set(grants["ShiftRuleWeights"]["Resource"])
            assert grants["ShiftRuleWeights"]["Action"] == ["elasticloadbalancing:ModifyRule"]
            assert production.inputs["listenerArn"] in grants["ShiftListener"]["Resource"]
            assert not [a for a in plan.of_type(ATTACHMENT) if a.parent == role.parent]


@pytest.mark.parametrize("env", ["dev", "staging", "prod"])
def test_every_service_rolls_back_on_its_own_5xx_and_p99_alarms(env: str) -> None:
    plan = preview(env).plan
    for name in (*PUBLIC, "payment"):
        service = _service(plan, env, name)
        alarms = service.inputs["alarms"]
        assert alarms["enable"] is True and alarms["rollback"] is True, service.urn
        own = {a.inputs["name"]: a for a in plan.of_type(ALARM) if a.parent == service.parent}
        if name == "payment":  # no load balancer: no 5xx/p99 metrics; rolls back on missing tasks
            assert alarms["alarmNames"] == [f"ms-{env}-payment-tasks-below-desired"]
            assert service.inputs["deploymentConfiguration"] == {"strategy": "ROLLING"}
            continue
        expected = [
            f"ms-{env}-{name}-{key}-{kind}" for key in ("public", "api") for kind in ("5xx-rate", "latency-p99")
        ]
        assert alarms["alarmNames"] == expected, service.urn
        groups = [b["targetGroupArn"] for b in service.inputs["loadBalancers"]]
        groups += [
            b["advancedConfiguration"]["alternateTargetGroupArn"]
            for b in service.inputs["loadBalancers"]
            if "advancedConfiguration" in b
        ]
        suffixes = {_by_output(plan, TARGET_GROUP, "arn", g).outputs["arnSuffix"] for g in groups}
        for alarm_name in expected:
            watched = {
                q["metric"]["dimensions"]["TargetGroup"]
                for q in own[alarm_name].inputs.get("metricQueries", [])
                if "metric" in q
            } or {own[alarm_name].inputs["dimensions"]["TargetGroup"]}
            # With an alternate group the alarm watches both: after a swap the new revision serves from either.
            key = alarm_name.split(f"ms-{env}-{name}-")[1].split("-")[0]
            mine = {s for s in suffixes if f"-{key}" in s}
            assert watched == mine, (alarm_name, watched, mine)
    if env == "dev":
        assert _service(plan, env, "order").inputs["deploymentConfiguration"] == {"strategy": "ROLLING"}


def test_stack_configs_name_their_strategies() -> None:
    assert (
        parse_stack_config("dev", {"environment": "dev", "region": "us-east-1"}).deployment.effective_strategy("dev")
        == "rolling"
    )
    staging = parse_stack_config("staging", {"environment": "staging", "region": "us-east-1"}).deployment
    assert staging.effective_strategy("staging") == "blueGreen"
    assert staging.effective_lambda_shift("staging") == "linear10PercentEvery1Minute"


@pytest.mark.parametrize(
    ("deployment", "message"),
    [
        (
            {"strategy": "bluegreen"},
            "stack 'prod': config microservices:deployment.strategy = \"bluegreen\": Input should be 'rolling', "
            "'blueGreen', 'canary' or 'linear'",
        ),
        (
            {"bakeTimeMinutes": 2000},
            "stack 'prod': config microservices:deployment.bakeTimeMinutes = 2000: Input should be less than or equal "
            "to 1440",
        ),
        (
            {"canaryPercent": 0},
            "stack 'prod': config microservices:deployment.canaryPercent = 0: Input should be greater than or equal "
            "to 0.1",
        ),
        (
            {"lambdaTrafficShift": "canary50Percent"},
            "stack 'prod': config microservices:deployment.lambdaTrafficShift = \"canary50Percent\": Input should be "
            "'allAtOnce', 'canary10Percent5Minutes', 'canary10Percent10Minutes', 'canary10Percent15Minutes', "
            "'canary10Percent30Minutes', 'linear10PercentEvery1Minute', 'linear10PercentEvery2Minutes', "
            "'linear10PercentEvery3Minutes' or 'linear10PercentEvery10Minutes'",
        ),
    ],
)
def test_a_bad_strategy_or_bake_time_is_one_line_naming_key_value_and_allowed(
    deployment: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigError) as error:
        parse_stack_config("prod", {"environment": "prod", "region": "us-east-1", "deployment": deployment})
    assert str(error.value) == message
    assert "\n" not in str(error.value)


def test_a_bad_strategy_stops_the_offline_preview_before_any_resource(tmp_path: Path) -> None:
    root = Path(__file__).resolve().parent.parent
    tmp_path = tmp_path / "project"
    shutil.copytree(
        root,
        tmp_path,
        ignore=shutil.ignore_patterns(".git", ".venv", "node_modules", "*_cache", "__pycache__", "*.egg-info"),
    )
    stack_file = (root / "Pulumi.prod.yaml").read_text().replace("strategy: canary", "strategy: blue-green")
    (tmp_path / "Pulumi.prod.yaml").write_text(stack_file)
    result = subprocess.run(
        [sys.executable, "-m", "offline", "preview", "--stack", "prod", "--no-policy"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "PYTHONPATH": str(tmp_path)},
    )
    assert result.returncode == 2, result.stdout + result.stderr
    lines = stack_file.splitlines()
    row = next(i for i, line in enumerate(lines) if line.strip() == "strategy: blue-green")
    column = len(lines[row]) - len(lines[row].lstrip()) + 1
    assert result.stderr.strip().splitlines() == [
        f"error: Pulumi.prod.yaml:{row + 1}:{column}: stack 'prod': config microservices:deployment.strategy = "
        "\"blue-green\": Input should be 'rolling', 'blueGreen', 'canary' or 'linear'"
    ]
    assert "to create" not in result.stdout


# --- the notification Lambda ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("env", "shift"),
    [("dev", "AllAtOnce"), ("staging", "Linear10PercentEvery1Minute"), ("prod", "Canary10Percent5Minutes")],
)
def test_notification_lambda_shifts_its_live_alias_through_codedeploy_with_alarm_rollback(env: str, shift: str) -> None:
    plan = preview(env).plan
    function = single((r for r in plan.of_type("aws:lambda/function:Function") if "notification" in r.name), "function")
    mine = function.parent
    assert function.inputs["publish"] is True
    alias = single((r for r in plan.of_type("aws:lambda/alias:Alias") if r.parent == mine), "alias")
    assert alias.inputs["name"] == "live"
    assert alias.inputs["functionName"] == function.outputs["name"]
    assert alias.inputs["functionVersion"] == function.outputs["version"] == "1"
    # Every trigger goes through the alias, so the shift applies to all traffic.
    mapping = single(
        (r for r in plan.of_type("aws:lambda/eventSourceMapping:EventSourceMapping") if r.parent == mine), "mapping"
    )
    assert mapping.inputs["functionName"] == alias.outputs["arn"]
    targets = [t for t in plan.of_type("aws:cloudwatch/eventTarget:EventTarget") if "-notification-" in t.name]
    direct = [t for t in targets if t.inputs["arn"].startswith("arn:aws:lambda:")]
    assert direct and all(t.inputs["arn"] == alias.outputs["arn"] for t in direct)
    permissions = [p for p in plan.of_type("aws:lambda/permission:Permission") if "-notification-" in p.name]
    assert permissions and all(p.inputs["qualifier"] == "live" for p in permissions)
    invoke_config = single(
        (r for r in plan.of_type("aws:lambda/functionEventInvokeConfig:FunctionEventInvokeConfig") if r.parent == mine),
        "invoke config",
    )
    assert invoke_config.inputs["qualifier"] == "live"
    group = single(
        (r for r in plan.of_type("aws:codedeploy/deploymentGroup:DeploymentGroup") if r.parent == mine), "group"
    )
    assert group.inputs["deploymentConfigName"] == f"CodeDeployDefault.Lambda{shift}"
    assert group.inputs["deploymentStyle"] == {
        "deploymentOption": "WITH_TRAFFIC_CONTROL",
        "deploymentType": "BLUE_GREEN",
    }
    alarm = single((r for r in plan.of_type(ALARM) if r.name.endswith("-live-errors") and r.parent == mine), "alarm")
    assert group.inputs["alarmConfiguration"] == {"alarms": [alarm.inputs["name"]], "enabled": True}
    assert alarm.inputs["dimensions"] == {
        "FunctionName": function.outputs["name"],
        "Resource": f"{function.outputs['name']}:live",
    }
    assert group.inputs["autoRollbackConfiguration"] == {
        "enabled": True,
        "events": ["DEPLOYMENT_FAILURE", "DEPLOYMENT_STOP_ON_ALARM"],
    }
    role = _by_output(plan, ROLE, "arn", group.inputs["serviceRoleArn"])
    policy = single((r for r in plan.of_type("aws:iam/rolePolicy:RolePolicy") if r.inputs["role"] == role.id), "policy")
    statements = json.loads(policy.inputs["policy"])["Statement"]
    resources = {s["Sid"]: s["Resource"] for s in statements}
    assert resources == {
        "ShiftAlias": [function.outputs["arn"], f"{function.outputs['arn']}:*"],
        "WatchAlarm": alarm.outputs["arn"],
    }
    deployment = preview(env).plan.outputs["lambdaDeployments"]["notification"]
    assert deployment["deploymentGroup"] == group.inputs["deploymentGroupName"]
    assert deployment["targetVersion"] == "1" and deployment["alias"] == "live"


def test_codedeploy_config_names_are_codedeploys_predefined_lambda_configurations() -> None:
    assert codedeploy_config_name("canary10Percent30Minutes") == "CodeDeployDefault.LambdaCanary10Percent30Minutes"
    assert codedeploy_config_name("linear10PercentEvery10Minutes") == (
        "CodeDeployDefault.LambdaLinear10PercentEvery10Minutes"
    )
    assert codedeploy_config_name("allAtOnce") == "CodeDeployDefault.LambdaAllAtOnce"


# --- policy: alarm rollback in production -----------------------------------------------------------

RULE = deployments.DEPLOYMENT_ALARM_ROLLBACK
GOOD_ALARMS = {"alarmNames": ["svc-public-5xx-rate"], "enable": True, "rollback": True}


def _ecs(alarms: Any, env: str = "prod") -> Any:
    props: dict[str, Any] = {"tags": tags(env, "order")}
    if alarms is not None:
        props["alarms"] = alarms
    return make(ECS_SERVICE, "svc", props)


def test_deployment_alarm_rollback_accepts_a_production_service_with_alarm_rollback() -> None:
    assert RULE.run(_ecs(GOOD_ALARMS)) == []


def test_deployment_alarm_rollback_rejects_each_missing_part() -> None:
    where = "in production (Environment=prod)"
    assert RULE.run(_ecs(None)) == [
        f"ECS service 'svc' has no deployment alarms {where} (alarms: enable, rollback and the service's own alarm "
        "names)."
    ]
    assert RULE.run(_ecs({**GOOD_ALARMS, "rollback": False})) == [
        f"ECS service 'svc' does not roll back when a deployment alarm fires {where} (alarms.rollback: true)."
    ]
    assert RULE.run(_ecs({**GOOD_ALARMS, "enable": False})) == [
        f"ECS service 'svc' does not watch its deployment alarms {where} (alarms.enable: true)."
    ]
    assert RULE.run(_ecs({**GOOD_ALARMS, "alarmNames": []})) == [
        f"ECS service 'svc' names no deployment alarm {where} (alarms.alarmNames)."
    ]


def test_deployment_alarm_rollback_applies_to_production_only() -> None:
    assert RULE.run(_ecs(None, env="dev")) == []
    assert RULE.run(_ecs(None, env="dev"), {"productionEnvironments": ["prod", "dev"]}) != []


def test_deployment_alarm_rollback_checks_codedeploy_groups() -> None:
    good = {
        "tags": tags("prod"),
        "alarmConfiguration": {"enabled": True, "alarms": ["fn-live-errors"]},
        "autoRollbackConfiguration": {"enabled": True, "events": ["DEPLOYMENT_FAILURE", "DEPLOYMENT_STOP_ON_ALARM"]},
    }
    group = "aws:codedeploy/deploymentGroup:DeploymentGroup"
    assert RULE.run(make(group, "g", good)) == []
    no_stop = {**good, "autoRollbackConfiguration": {"enabled": True, "events": ["DEPLOYMENT_FAILURE"]}}
    assert RULE.run(make(group, "g", no_stop)) == [
        "CodeDeploy deployment group 'g' does not roll back when an alarm stops a deployment in production "
        "(Environment=prod) (autoRollbackConfiguration: enabled, events include DEPLOYMENT_STOP_ON_ALARM)."
    ]
    assert RULE.run(make(group, "g", {**good, "alarmConfiguration": {"enabled": True, "alarms": []}})) == [
        "CodeDeploy deployment group 'g' watches no alarms in production (Environment=prod) (alarmConfiguration: "
        "enabled with alarms)."
    ]


def test_the_real_prod_plan_passes_the_rule_and_a_variant_without_alarms_fails() -> None:
    plan = preview("prod").plan
    services = plan.of_type(ECS_SERVICE)
    assert services
    for service in services:
        props = {**service.inputs}
        assert RULE.run(make(ECS_SERVICE, service.name, props)) == [], service.urn
        props.pop("alarms")
        assert RULE.run(make(ECS_SERVICE, service.name, props)) != [], service.urn


# --- Envoy drains gracefully ------------------------------------------------------------------------


def _envoy(plan: Plan, env: str, name: str) -> dict[str, Any]:
    task = single((r for r in plan.of_type(TASK_DEFINITION) if r.parent.endswith(f"::ms-{env}-{name}")), name)
    return next(c for c in json.loads(task.inputs["containerDefinitions"]) if c["name"] == "envoy")


@pytest.mark.parametrize("name", ["order", "payment"])
def test_envoy_drain_settings_parse_in_envoys_protos(name: str) -> None:
    envoy = _envoy(preview("prod").plan, "prod", name)
    command = envoy["command"]
    flags = dict(zip(command[::2], command[1::2], strict=True))
    assert flags["--drain-time-s"] == str(DRAIN_TIME_SECONDS)
    assert flags["--drain-strategy"] in ("gradual", "immediate")  # Envoy's two --drain-strategy values
    bootstrap = json_format.ParseDict(
        json.loads(flags["--config-yaml"]), bootstrap_pb2.Bootstrap(), ignore_unknown_fields=False
    )
    directions = {}
    for listener in bootstrap.static_resources.listeners:
        assert listener.drain_type == listener_pb2.Listener.DrainType.DEFAULT, listener.name
        directions[listener.name] = listener.traffic_direction
        hcm = hcm_pb2.HttpConnectionManager()
        assert listener.filter_chains[0].filters[0].typed_config.Unpack(hcm)
        assert hcm.drain_timeout.seconds == 5, listener.name
    inbound = {n for n, d in directions.items() if d == base_pb2.TrafficDirection.INBOUND}
    outbound = {n for n, d in directions.items() if d == base_pb2.TrafficDirection.OUTBOUND}
    assert inbound == {n for n in directions if not n.startswith("outbound_")}
    assert outbound == {n for n in directions if n.startswith("outbound_")}
    # The stop timeout covers the drain, within Fargate's 120 s maximum.
    assert envoy["stopTimeout"] == STOP_TIMEOUT_SECONDS
    assert DRAIN_TIME_SECONDS < envoy["stopTimeout"] <= 120
    assert envoy["entryPoint"][:2] == ["/bin/bash", "-c"]


FAKE_ENVOY = textwrap.dedent(
    """\
    #!{python}
    # Stands in for envoy: serves the admin port, records what happens, exits on SIGTERM.
    import http.server, signal, sys, threading, time
    log = open({log!r}, "a", buffering=1)
    log.write("args " + " ".join(sys.argv[1:]) + "\\n")
    class Admin(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            log.write("admin " + self.path + "\\n")
            self.send_response(200); self.send_header("Content-Length", "3"); self.end_headers()
            self.wfile.write(b"OK\\n")
        def log_message(self, *args):
            pass
    server = http.server.HTTPServer(("127.0.0.1", {port}), Admin)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    def stop(signum, frame):
        log.write("sigterm %.2f\\n" % time.monotonic())
        sys.exit(0)
    signal.signal(signal.SIGTERM, stop)
    log.write("ready\\n")
    while True:
        time.sleep(0.05)
    """
)


def test_the_entry_point_drains_inbound_listeners_before_stopping_envoy(tmp_path: Path) -> None:
    if shutil.which("bash") is None:
        pytest.fail("bash is required (the Envoy image runs the drain script with it)")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    log = tmp_path / "envoy.log"
    fake = tmp_path / "envoy"
    fake.write_text(FAKE_ENVOY.format(python=sys.executable, log=str(log), port=port))
    fake.chmod(0o755)
    script = envoy_drain_script(admin_port=port, drain_seconds=1)
    process = subprocess.Popen(
        ["bash", "-c", script, "envoy-sidecar", "--config-yaml", "{}", "--drain-time-s", "1"],
        env={**os.environ, "PATH": f"{tmp_path}:{os.environ['PATH']}"},
    )
    try:
        deadline = time.monotonic() + 10
        while "ready" not in (log.read_text() if log.exists() else ""):
            assert time.monotonic() < deadline, "fake envoy did not start"
            time.sleep(0.05)
        sent = time.monotonic()
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
    finally:
        if process.poll() is None:
            process.kill()
    lines = log.read_text().splitlines()
    assert lines[0] == "args --config-yaml {} --drain-time-s 1"  # the command reaches envoy unchanged
    assert lines[2] == "admin /drain_listeners?graceful&inboundonly"  # drain first...
    assert lines[3].startswith("sigterm ")  # ...then SIGTERM, after the drain time
    assert float(lines[3].split()[1]) - sent >= 1.0
