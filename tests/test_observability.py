"""Observability: the alarm topic, DLQ and Lambda alarms, every alarm wired to the topic, and the
per-environment dashboard.

The topic and its policy are exercised with `run_component` and fake ARNs; whole-stack properties
(every DLQ watched, every service alarm notifying, a dashboard row per service) read the cached offline
previews; one program run proves `observability.alarmEmail` reaches the subscription.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from components.context import PlatformContext
from components.kms import key_policy
from components.observability import (
    DashboardModel,
    Observability,
    ObservabilityArgs,
    PlatformWatch,
    PlatformWatchArgs,
    ServiceMetrics,
    ServicePanel,
    dashboard_body,
)
from model.config import ObservabilityConfig
from offline.mocks import ACCOUNT_ID
from offline.plan import Plan, PlannedResource
from offline.runtime import run_program
from tests.conftest import ROOT, VARIANTS, only, preview, run_component

OBSERVABILITY = "microservices:observability:Observability"
SERVICE = "microservices:service:FargateMicroservice"
TOPIC = "aws:sns/topic:Topic"
TOPIC_POLICY = "aws:sns/topicPolicy:TopicPolicy"
SUBSCRIPTION = "aws:sns/topicSubscription:TopicSubscription"
ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
DASHBOARD = "aws:cloudwatch/dashboard:Dashboard"
QUEUE = "aws:sqs/queue:Queue"
ECS_SERVICE = "aws:ecs/service:Service"

KEY_ARN = f"arn:aws:kms:us-east-1:{ACCOUNT_ID}:key/11111111-2222-4333-a444-555555555555"
TAGS = {"Environment": "test", "Project": "microservices", "ManagedBy": "pulumi"}
LB_DIMS = {"LoadBalancer": "app/ms-test-alb/0123456789abcdef", "TargetGroup": "targetgroup/test-web/fedcba9876543210"}


def observability_args(**config: Any) -> ObservabilityArgs:
    return ObservabilityArgs(config=ObservabilityConfig(**config))


CONTEXT = PlatformContext(
    environment="test", account_id=ACCOUNT_ID, region="us-east-1", partition="aws", tags=TAGS
).with_key(KEY_ARN)


def build(**config: Any) -> Observability:
    """The alarm topic first, then the watch over what it alarms on (as `build_platform` does)."""
    observability = Observability("ms-test", observability_args(**config), CONTEXT)
    PlatformWatch(
        "ms-test-watch",
        PlatformWatchArgs(
            observability=observability,
            queues={"targets": "ms-test-targets-dlq", "orders": "ms-test-orders-dlq"},
            functions={"notification": "ms-test-notification-fn"},
            cluster_name="ms-test-cluster",
            services={
                "web": ServiceMetrics(service_name="ms-test-web", load_balancers={"public": LB_DIMS}),
                "worker": ServiceMetrics(service_name="ms-test-worker"),
            },
            bus_name="ms-test-bus",
            rule_names=["ms-test-orders-order"],
        ),
    )
    return observability


@pytest.fixture(scope="module")
def plan() -> Plan:
    return run_component(build)


def policy(resource: PlannedResource) -> dict[str, Any]:
    return json.loads(resource.inputs["policy"])


def alarm_actions(alarm: PlannedResource) -> tuple[list[str], list[str]]:
    return alarm.inputs.get("alarmActions", []), alarm.inputs.get("okActions", [])


def ancestors(plan: Plan, resource: PlannedResource) -> Iterator[PlannedResource]:
    by_urn = plan.by_urn()
    parent = by_urn.get(resource.parent)
    while parent is not None:
        yield parent
        parent = by_urn.get(parent.parent)


def widgets(body: str) -> list[dict[str, Any]]:
    return json.loads(body)["widgets"]


def metric_rows(widget: dict[str, Any]) -> list[list[Any]]:
    return widget.get("properties", {}).get("metrics", [])


def dimension(row: list[Any], key: str) -> Any:
    """The value of dimension `key` in a dashboard metric row `[namespace, metric, k1, v1, ..., {options}]`."""
    names = row[2::2]
    return row[2 + 2 * names.index(key) + 1] if key in names else None


# --- the alarm topic ------------------------------------------------------------------------------


def test_topic_is_encrypted_with_the_platform_key_and_tagged(plan: Plan) -> None:
    topic = only(plan, TOPIC)
    assert topic.inputs["kmsMasterKeyId"] == KEY_ARN, topic.urn
    assert {k: topic.inputs["tags"][k] for k in TAGS} == TAGS, topic.urn
    component = only(plan, OBSERVABILITY)
    assert topic.parent == component.urn, topic.urn


def test_topic_policy_denies_plain_http_and_lets_only_cloudwatch_alarms_publish(plan: Plan) -> None:
    topic = only(plan, TOPIC)
    resource = only(plan, TOPIC_POLICY)
    assert resource.inputs["arn"] == topic.outputs["arn"], resource.urn
    statements = policy(resource)["Statement"]

    tls = [s for s in statements if s["Condition"].get("Bool", {}).get("aws:SecureTransport") == "false"]
    assert len(tls) == 1, resource.urn
    assert tls[0]["Effect"] == "Deny" and tls[0]["Principal"] == "*", resource.urn
    assert tls[0]["Action"] == "sns:Publish" and tls[0]["Resource"] == topic.outputs["arn"], resource.urn

    allows = [s for s in statements if s["Effect"] == "Allow"]
    assert len(allows) == 1, f"{resource.urn}: only CloudWatch may be allowed, got {allows}"
    allow = allows[0]
    assert allow["Principal"] == {"Service": "cloudwatch.amazonaws.com"}, resource.urn
    assert allow["Action"] == "sns:Publish" and allow["Resource"] == topic.outputs["arn"], resource.urn
    assert allow["Condition"]["StringEquals"] == {"aws:SourceAccount": ACCOUNT_ID}, resource.urn
    assert allow["Condition"]["ArnLike"] == {
        "aws:SourceArn": f"arn:aws:cloudwatch:us-east-1:{ACCOUNT_ID}:alarm:ms-test-*"
    }, resource.urn

    # Same-account IAM principals could publish through an identity policy alone: denied explicitly.
    others = [s for s in statements if s["Condition"].get("Bool", {}).get("aws:PrincipalIsAWSService") == "false"]
    assert len(others) == 1 and others[0]["Effect"] == "Deny" and others[0]["Principal"] == "*", resource.urn
    assert others[0]["Action"] == "sns:Publish", resource.urn


def test_no_email_subscription_unless_configured(plan: Plan) -> None:
    assert plan.of_type(SUBSCRIPTION) == [], [r.urn for r in plan.of_type(SUBSCRIPTION)]


def test_alarm_email_subscribes_to_the_topic() -> None:
    result = run_component(
        lambda: Observability("ms-test", observability_args(alarm_email="oncall@example.com"), CONTEXT)
    )
    subscription = only(result, SUBSCRIPTION)
    topic = only(result, TOPIC)
    assert subscription.inputs["protocol"] == "email", subscription.urn
    assert subscription.inputs["endpoint"] == "oncall@example.com", subscription.urn
    assert subscription.inputs["topic"] == topic.outputs["arn"], subscription.urn


def test_the_platform_key_lets_cloudwatch_encrypt_alarm_messages() -> None:
    document = json.loads(key_policy(ACCOUNT_ID, "us-east-1", "aws"))
    grants = [s for s in document["Statement"] if s["Principal"] == {"Service": "cloudwatch.amazonaws.com"}]
    assert len(grants) == 1, document
    assert set(grants[0]["Action"]) == {"kms:Decrypt", "kms:GenerateDataKey*"}, grants
    assert grants[0]["Condition"] == {"StringEquals": {"aws:SourceAccount": ACCOUNT_ID}}, grants


# --- alarms declared by the component -------------------------------------------------------------


def test_dlq_and_lambda_alarms_notify_the_topic(plan: Plan) -> None:
    topic_arn = only(plan, TOPIC).outputs["arn"]
    alarms = {r.name: r for r in plan.of_type(ALARM)}
    assert set(alarms) == {
        "ms-test-targets-dlq-depth",
        "ms-test-orders-dlq-depth",
        "ms-test-notification-lambda-errors",
        "ms-test-notification-lambda-throttles",
    }
    for alarm in alarms.values():
        assert alarm_actions(alarm) == ([topic_arn], [topic_arn]), alarm.urn
        assert alarm.inputs["treatMissingData"] == "notBreaching", alarm.urn
        assert alarm.inputs["name"] == alarm.name, alarm.urn
        assert (alarm.inputs["threshold"], alarm.inputs["comparisonOperator"]) == (0, "GreaterThanThreshold")
    depth = alarms["ms-test-orders-dlq-depth"].inputs
    assert (depth["namespace"], depth["metricName"]) == ("AWS/SQS", "ApproximateNumberOfMessagesVisible")
    assert depth["dimensions"] == {"QueueName": "ms-test-orders-dlq"} and depth["statistic"] == "Maximum"
    for metric in ("errors", "throttles"):
        lam = alarms[f"ms-test-notification-lambda-{metric}"].inputs
        assert (lam["namespace"], lam["metricName"], lam["statistic"]) == ("AWS/Lambda", metric.capitalize(), "Sum")
        assert lam["dimensions"] == {"FunctionName": "ms-test-notification-fn"}


def test_alarms_are_named_with_the_prefix_the_topic_accepts(plan: Plan) -> None:
    """The naming contract is explicit: the topic policy's alarm ARN pattern and every alarm name come
    from `Observability.alarm_name_prefix`."""
    policy = json.loads(only(plan, "aws:sns/topicPolicy:TopicPolicy").inputs["policy"])
    [allow] = [s for s in policy["Statement"] if s["Effect"] == "Allow"]
    pattern = allow["Condition"]["ArnLike"]["aws:SourceArn"]
    assert pattern.endswith(":alarm:ms-test-*"), pattern
    alarms = plan.of_type("aws:cloudwatch/metricAlarm:MetricAlarm")
    assert alarms
    for alarm in alarms:
        assert alarm.inputs["name"].startswith("ms-test-"), alarm.urn


def test_the_watch_is_its_own_component_declared_after_the_topic(plan: Plan) -> None:
    by_urn = plan.by_urn()
    for resource in [
        *plan.of_type("aws:cloudwatch/metricAlarm:MetricAlarm"),
        only(plan, "aws:cloudwatch/dashboard:Dashboard"),
    ]:
        assert by_urn[resource.parent].type == "microservices:observability:PlatformWatch", resource.urn
    assert by_urn[only(plan, "aws:sns/topic:Topic").parent].type == "microservices:observability:Observability"


# --- the dashboard body ---------------------------------------------------------------------------


def test_dashboard_rows_name_each_service_and_the_messaging_resources(plan: Plan) -> None:
    dashboard = only(plan, DASHBOARD)
    assert dashboard.inputs["dashboardName"] == "ms-test-platform", dashboard.urn
    placed = widgets(dashboard.inputs["dashboardBody"])
    rows = [row for w in placed for row in metric_rows(w)]

    web = [w for w in placed if any("ms-test-web" in row for row in metric_rows(w))]
    worker = [w for w in placed if any("ms-test-worker" in row for row in metric_rows(w))]
    web_metrics = {row[1] for w in web for row in metric_rows(w)}
    assert web_metrics == {"CPUUtilization", "MemoryUtilization", "RunningTaskCount", "DesiredTaskCount"}
    assert {row[1] for w in worker for row in metric_rows(w)} == web_metrics, "same ECS panels for a private service"
    for row in (r for w in web for r in metric_rows(w)):
        assert row[2:6] == ["ClusterName", "ms-test-cluster", "ServiceName", "ms-test-web"], row

    alb = [row for row in rows if row[0] == "AWS/ApplicationELB"]
    assert {row[1] for row in alb} == {"HTTPCode_Target_5XX_Count", "TargetResponseTime"}, dashboard.urn
    assert all(
        row[2:6] == ["LoadBalancer", LB_DIMS["LoadBalancer"], "TargetGroup", LB_DIMS["TargetGroup"]] for row in alb
    )
    p99 = next(w for w in placed if w["properties"].get("title", "").startswith("web: p99"))
    assert p99["properties"]["stat"] == "p99", p99

    queues = {
        dimension(row, "QueueName") for row in rows if row[:2] == ["AWS/SQS", "ApproximateNumberOfMessagesVisible"]
    }
    assert queues == {"ms-test-targets-dlq", "ms-test-orders-dlq"}, dashboard.urn
    assert {row[1] for row in rows if row[0] == "AWS/Lambda"} == {"Errors", "Throttles", "Invocations", "Duration"}
    events = [row for row in rows if row[0] == "AWS/Events"]
    assert [row[1:6] for row in events] == [
        ["FailedInvocations", "EventBusName", "ms-test-bus", "RuleName", "ms-test-orders-order"]
    ], dashboard.urn


def test_dashboard_layout_fits_the_grid_without_overlaps() -> None:
    model = DashboardModel(
        region="eu-west-1",
        cluster_name="c",
        services=[
            ServicePanel(name=f"s{i}", service_name=f"svc-{i}", load_balancers={"public": LB_DIMS}) for i in range(3)
        ],
        queues={"a": "a-dlq", "b": "b-dlq"},
        functions={"f": "fn", "g": "gn"},
        bus_name="bus",
        rule_names=["r1", "r2"],
    )
    placed = widgets(dashboard_body(model))
    cells: set[tuple[int, int]] = set()
    for widget in placed:
        assert widget["x"] >= 0 and widget["x"] + widget["width"] <= 24, widget
        if widget["type"] == "metric":
            assert widget["properties"]["region"] == "eu-west-1", widget
        area = {
            (x, y)
            for x in range(widget["x"], widget["x"] + widget["width"])
            for y in range(widget["y"], widget["y"] + widget["height"])
        }
        assert not cells & area, f"widget overlaps another: {widget}"
        cells |= area


def test_dashboard_without_container_insights_has_no_task_counts() -> None:
    model = DashboardModel(
        region="us-east-1", cluster_name="c", services=[ServicePanel("s", "svc")], container_insights=False
    )
    rows = [row for w in widgets(dashboard_body(model)) for row in metric_rows(w)]
    assert rows and not any(row[0] == "ECS/ContainerInsights" for row in rows), rows


# --- the real stacks ------------------------------------------------------------------------------


@pytest.mark.parametrize("variant", VARIANTS)
def test_every_dead_letter_queue_has_exactly_one_depth_alarm(variant: str) -> None:
    plan = preview(variant).plan
    stack = plan.stack
    topic_arn = only(plan, TOPIC, f"ms-{stack}-alarms").outputs["arn"]
    dlqs = [q for q in plan.of_type(QUEUE) if q.name.endswith("-dlq")]
    assert len(dlqs) >= 3, "the targets DLQ, a consumer DLQ and the function's failure queue at least"
    depth = [a for a in plan.of_type(ALARM) if a.inputs.get("metricName") == "ApproximateNumberOfMessagesVisible"]
    for queue in dlqs:
        watching = [a for a in depth if a.inputs["dimensions"] == {"QueueName": queue.outputs["name"]}]
        assert len(watching) == 1, f"{queue.urn}: expected one depth alarm, got {[a.urn for a in watching]}"
        alarm = watching[0]
        assert topic_arn in alarm.inputs["alarmActions"] and topic_arn in alarm.inputs["okActions"], alarm.urn
        assert alarm.inputs["treatMissingData"] == "notBreaching", alarm.urn
    assert len(depth) == len(dlqs), [a.urn for a in depth]


@pytest.mark.parametrize("variant", VARIANTS)
def test_every_service_alarm_notifies_the_alarm_topic(variant: str) -> None:
    plan = preview(variant).plan
    stack = plan.stack
    topic_arn = only(plan, TOPIC, f"ms-{stack}-alarms").outputs["arn"]
    service_alarms = [a for a in plan.of_type(ALARM) if any(p.type == SERVICE for p in ancestors(plan, a))]
    assert len(service_alarms) >= 3 * len(plan.of_type(SERVICE)), "cpu, memory and task alarms per service at least"
    for alarm in service_alarms:
        assert topic_arn in alarm.inputs.get("alarmActions", []), alarm.urn
        assert topic_arn in alarm.inputs.get("okActions", []), alarm.urn


@pytest.mark.parametrize("variant", VARIANTS)
def test_the_stack_dashboard_has_a_row_per_service_and_is_exported(variant: str) -> None:
    plan = preview(variant).plan
    stack = plan.stack
    dashboard = only(plan, DASHBOARD)
    component = only(plan, "microservices:observability:PlatformWatch")
    assert dashboard.parent == component.urn, dashboard.urn
    assert dashboard.inputs["dashboardName"] == f"ms-{stack}-platform", dashboard.urn
    assert plan.outputs["dashboardName"] == dashboard.outputs["dashboardName"], dashboard.urn
    assert plan.outputs["alarmTopicArn"] == only(plan, TOPIC, f"ms-{stack}-alarms").outputs["arn"]
    placed = widgets(dashboard.inputs["dashboardBody"])
    services = plan.of_type(ECS_SERVICE)
    assert services, "the stack declares ECS services"
    for service in services:
        name = service.outputs["name"]
        naming = [w for w in placed if any(dimension(row, "ServiceName") == name for row in metric_rows(w))]
        assert naming, f"{service.urn}: no dashboard widget plots ECS service {name!r}"
    rules = {r.outputs["name"] for r in plan.of_type("aws:cloudwatch/eventRule:EventRule")}
    plotted = {dimension(row, "RuleName") for w in placed for row in metric_rows(w) if row[0] == "AWS/Events"}
    assert plotted == rules, dashboard.urn


def test_alarm_email_config_reaches_the_subscription() -> None:
    overrides = {"microservices:observability": json.dumps({"logRetentionDays": 14, "alarmEmail": "ops@example.com"})}
    plan = run_program(ROOT, "dev", config_overrides=overrides).plan
    subscription = only(plan, SUBSCRIPTION)
    assert subscription.inputs["endpoint"] == "ops@example.com", subscription.urn
    assert subscription.inputs["topic"] == only(plan, TOPIC, "ms-dev-alarms").outputs["arn"], subscription.urn
    assert subscription.parent == only(plan, OBSERVABILITY).urn, subscription.urn
