"""Observability: the environment's alarm topic, the alarms the platform components do not own, and one
CloudWatch dashboard per environment.

Each FargateMicroservice declares its own alarms (5xx rate, p99 latency, CPU, memory, running tasks);
this component gives them somewhere to go and watches what sits between the services:

* an SNS alarm topic, encrypted with the platform key, whose policy refuses non-TLS requests and lets
  only this environment's CloudWatch alarms publish (plus an email subscription when
  `observability.alarmEmail` is set);
* `PlatformWatch`, declared last (the queues, functions and services it watches exist by then): one
  `ApproximateNumberOfMessagesVisible > 0` alarm per dead-letter queue and `Errors` / `Throttles`
  alarms per Lambda function, with alarm and OK actions on the topic; and the dashboard
  `<name>-platform`: a row per Fargate service (CPU/memory, running vs desired tasks, ALB 5xx and p99
  latency for public services) and a messaging row (DLQ depths, Lambda errors/duration, EventBridge
  failed invocations per rule).

Both are whole at construction: `Observability` (the topic) is declared before the services, which
receive `alarm_topic_arn` and `alarm_name_prefix`; `PlatformWatch` takes the observability component
and everything it watches as arguments:

    observability = Observability(prefix, ObservabilityArgs(...))
    services = {..: FargateMicroservice(.., alarm_topic_arn=observability.alarm_topic_arn, ..)}
    PlatformWatch(f"{prefix}-watch", PlatformWatchArgs(observability=observability, queues=.., functions=..,
                  cluster_name=.., services={n: ServiceMetrics.of(s) ..}, bus_name=.., rule_names=..))

Naming contract, explicit: the topic accepts only alarms whose ARN matches `alarm_arn_pattern`, i.e.
alarms NAMED `<alarm_name_prefix>...`; every alarm of the platform is named from that prefix
(`Observability.alarm_name`, and FargateMicroservice checks its own alarms start with it).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_aws as aws

from components.context import PlatformContext
from components.iam import deny_insecure_transport
from components.microservice import (
    CPU_ALARM_PERCENT,
    LATENCY_P99_ALARM_SECONDS,
    MEMORY_ALARM_PERCENT,
    FargateMicroservice,
)
from model.config import ObservabilityConfig

DLQ_ALARM_PERIOD_SECONDS = 60
"""SQS publishes queue metrics every minute: one message in a dead-letter queue alarms within minutes."""
LAMBDA_ALARM_PERIOD_SECONDS = 300
DASHBOARD_PERIOD_SECONDS = 60
_COLUMNS = 24
"""CloudWatch dashboards are 24 grid units wide."""
_WIDGET_WIDTH = 6
_WIDGET_HEIGHT = 6


@dataclass(frozen=True)
class ObservabilityArgs:
    """The platform key (the context's) encrypts the topic; its policy lets cloudwatch.amazonaws.com
    encrypt alarm messages with it."""

    config: ObservabilityConfig
    container_insights: bool = True
    """Whether the cluster publishes ECS/ContainerInsights (running vs desired tasks on the dashboard)."""


@dataclass(frozen=True)
class ServiceMetrics:
    """What the dashboard plots for one Fargate service (Inputs, resolved in the dashboard's one apply)."""

    service_name: pulumi.Input[str]
    """The ECS service name (`ServiceName` dimension)."""
    load_balancers: Mapping[str, Mapping[str, pulumi.Input[str]]] = field(default_factory=dict)
    """`AWS/ApplicationELB` dimensions (`LoadBalancer`, `TargetGroup`) per edge listener key; empty for
    private services."""

    @classmethod
    def of(cls, service: FargateMicroservice) -> ServiceMetrics:
        return cls(service_name=service.service_name, load_balancers=service.load_balancer_dimensions)


# --- policies and the dashboard body (pure: plain strings in, JSON out) -----------------------------


def alarm_topic_policy(topic_arn: str, *, account_id: str, alarm_arn_pattern: str) -> str:
    """TLS only; CloudWatch alarms of this account whose ARN matches `alarm_arn_pattern` may publish.

    Within one account an IAM identity policy alone can grant sns:Publish, so the Allow for CloudWatch
    is paired with a Deny for every caller that is not an AWS service principal (explicit deny wins):
    no role or user can inject a fake alarm. Other services have no Allow, so they cannot publish either.
    """
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                deny_insecure_transport(topic_arn, "sns:Publish"),
                {
                    "Sid": "AllowThisEnvironmentsAlarms",
                    "Effect": "Allow",
                    "Principal": {"Service": "cloudwatch.amazonaws.com"},
                    "Action": "sns:Publish",
                    "Resource": topic_arn,
                    "Condition": {
                        "StringEquals": {"aws:SourceAccount": account_id},
                        "ArnLike": {"aws:SourceArn": alarm_arn_pattern},
                    },
                },
                {
                    "Sid": "DenyPublishersOtherThanAwsServices",
                    "Effect": "Deny",
                    "Principal": "*",
                    "Action": "sns:Publish",
                    "Resource": topic_arn,
                    "Condition": {"Bool": {"aws:PrincipalIsAWSService": "false"}},
                },
            ],
        }
    )


@dataclass(frozen=True)
class ServicePanel:
    """One service's row, with every name known."""

    name: str
    service_name: str
    load_balancers: Mapping[str, Mapping[str, str]] = field(default_factory=dict)


@dataclass(frozen=True)
class DashboardModel:
    region: str
    cluster_name: str
    services: Sequence[ServicePanel]
    container_insights: bool = True
    queues: Mapping[str, str] = field(default_factory=dict)
    """Dead-letter queue name by purpose (`targets`, `<consumer>`, `notification-failures`)."""
    functions: Mapping[str, str] = field(default_factory=dict)
    """Lambda function name by purpose."""
    bus_name: str | None = None
    rule_names: Sequence[str] = ()


def _metric(namespace: str, metric: str, dimensions: Mapping[str, str], **options: Any) -> list[Any]:
    row: list[Any] = [namespace, metric]
    for key, value in dimensions.items():
        row += [key, value]
    return [*row, options] if options else row


def _graph(title: str, region: str, metrics: list[list[Any]], stat: str, **extra: Any) -> dict[str, Any]:
    return {
        "type": "metric",
        "properties": {
            "title": title,
            "region": region,
            "view": "timeSeries",
            "stacked": False,
            "period": DASHBOARD_PERIOD_SECONDS,
            "stat": stat,
            "metrics": metrics,
            **extra,
        },
    }


def _threshold(value: float, label: str) -> dict[str, Any]:
    return {"horizontal": [{"value": value, "label": label}]}


def _service_widgets(model: DashboardModel, panel: ServicePanel) -> list[dict[str, Any]]:
    region = model.region
    ecs = {"ClusterName": model.cluster_name, "ServiceName": panel.service_name}
    widgets = [
        _graph(
            f"{panel.name}: CPU and memory utilization (%)",
            region,
            [
                _metric("AWS/ECS", "CPUUtilization", ecs, label="CPU"),
                _metric("AWS/ECS", "MemoryUtilization", ecs, label="Memory"),
            ],
            "Average",
            yAxis={"left": {"min": 0, "max": 100}},
            annotations=_threshold(max(CPU_ALARM_PERCENT, MEMORY_ALARM_PERCENT), "alarm"),
        )
    ]
    if model.container_insights:
        widgets.append(
            _graph(
                f"{panel.name}: running vs desired tasks",
                region,
                [
                    _metric("ECS/ContainerInsights", "RunningTaskCount", ecs, label="Running", stat="Minimum"),
                    _metric("ECS/ContainerInsights", "DesiredTaskCount", ecs, label="Desired", stat="Maximum"),
                ],
                "Average",
            )
        )
    if panel.load_balancers:
        widgets += [
            _graph(
                f"{panel.name}: target 5xx responses",
                region,
                [
                    _metric("AWS/ApplicationELB", "HTTPCode_Target_5XX_Count", dims, label=f"{key} ALB")
                    for key, dims in sorted(panel.load_balancers.items())
                ],
                "Sum",
            ),
            _graph(
                f"{panel.name}: p99 target response time (s)",
                region,
                [
                    _metric("AWS/ApplicationELB", "TargetResponseTime", dims, label=f"{key} ALB")
                    for key, dims in sorted(panel.load_balancers.items())
                ],
                "p99",
                annotations=_threshold(LATENCY_P99_ALARM_SECONDS, "alarm"),
            ),
        ]
    return widgets


def _messaging_widgets(model: DashboardModel) -> list[dict[str, Any]]:
    region = model.region
    widgets = []
    if model.queues:
        widgets.append(
            _graph(
                "Dead-letter queues: messages waiting",
                region,
                [
                    _metric("AWS/SQS", "ApproximateNumberOfMessagesVisible", {"QueueName": name}, label=purpose)
                    for purpose, name in sorted(model.queues.items())
                ],
                "Maximum",
                annotations=_threshold(0, "alarm above"),
            )
        )
    for purpose, function in sorted(model.functions.items()):
        dims = {"FunctionName": function}
        widgets += [
            _graph(
                f"Lambda {purpose}: errors and throttles",
                region,
                [
                    _metric("AWS/Lambda", "Errors", dims, label="Errors"),
                    _metric("AWS/Lambda", "Throttles", dims, label="Throttles"),
                    _metric("AWS/Lambda", "Invocations", dims, label="Invocations"),
                ],
                "Sum",
            ),
            _graph(
                f"Lambda {purpose}: duration (ms)",
                region,
                [
                    _metric("AWS/Lambda", "Duration", dims, label="p99", stat="p99"),
                    _metric("AWS/Lambda", "Duration", dims, label="Average", stat="Average"),
                ],
                "Average",
            ),
        ]
    if model.bus_name is not None and model.rule_names:
        # Rules on a custom bus report with both dimensions (RuleName alone means the default bus).
        widgets.append(
            _graph(
                "EventBridge: failed invocations per rule",
                region,
                [
                    _metric(
                        "AWS/Events",
                        "FailedInvocations",
                        {"EventBusName": model.bus_name, "RuleName": rule},
                        label=rule,
                    )
                    for rule in sorted(model.rule_names)
                ],
                "Sum",
            )
        )
    return widgets


def _layout(rows: Sequence[tuple[str, list[dict[str, Any]]]]) -> list[dict[str, Any]]:
    """Each row: a one-unit markdown header across the width, then its widgets left to right (wrapping)."""
    placed: list[dict[str, Any]] = []
    y = 0
    for title, widgets in rows:
        placed.append(
            {"type": "text", "x": 0, "y": y, "width": _COLUMNS, "height": 1, "properties": {"markdown": title}}
        )
        y += 1
        for index, widget in enumerate(widgets):
            x = (index * _WIDGET_WIDTH) % _COLUMNS
            if index and x == 0:
                y += _WIDGET_HEIGHT
            placed.append({**widget, "x": x, "y": y, "width": _WIDGET_WIDTH, "height": _WIDGET_HEIGHT})
        y += _WIDGET_HEIGHT if widgets else 0
    return placed


def dashboard_body(model: DashboardModel) -> str:
    """The dashboard JSON: one row per service (in the given order), then the messaging row."""
    rows = [(f"## {panel.name} (`{panel.service_name}`)", _service_widgets(model, panel)) for panel in model.services]
    messaging = _messaging_widgets(model)
    if messaging:
        rows.append(("## Messaging: dead letters, Lambda, EventBridge", messaging))
    return json.dumps({"start": "-PT3H", "periodOverride": "inherit", "widgets": _layout(rows)}, sort_keys=True)


# --- the component ----------------------------------------------------------------------------------


class Observability(pulumi.ComponentResource):
    alarm_topic_arn: pulumi.Output[str]
    dashboard_name: str
    """`<name>-platform`: the name `PlatformWatch` gives the dashboard (CloudWatch dashboards have no auto-naming)."""
    component_name: str
    region: str
    container_insights: bool

    def __init__(
        self, name: str, args: ObservabilityArgs, context: PlatformContext, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("microservices:observability:Observability", name, None, opts)
        self._name = name
        self._args = args
        self._context = context
        self._tags = dict(context.tags)
        self.component_name = name
        self.dashboard_name = f"{name}-platform"
        self.region = context.region
        self.container_insights = args.container_insights

        self._alarm_topic()
        self.register_outputs({"alarmTopicArn": self.alarm_topic_arn, "dashboardName": self.dashboard_name})

    def exports(self) -> dict[str, Any]:
        """Stack outputs: where alarms go."""
        return {"alarmTopicArn": self.alarm_topic_arn}

    @property
    def alarm_name_prefix(self) -> str:
        """Every alarm the topic accepts is named with this prefix (`<name>-`)."""
        return f"{self.component_name}-"

    def alarm_name(self, suffix: str) -> str:
        return f"{self.alarm_name_prefix}{suffix}"

    @property
    def tags(self) -> dict[str, str]:
        return dict(self._tags)

    def _child(self, **extra: Any) -> pulumi.ResourceOptions:
        return pulumi.ResourceOptions(parent=self, **extra)

    @property
    def alarm_arn_pattern(self) -> str:
        """ARNs of this environment's alarms: every alarm of the platform is named `<name>-...`."""
        return self._context.arn("cloudwatch", f"alarm:{self.alarm_name_prefix}*")

    def _alarm_topic(self) -> None:
        args = self._args
        topic = aws.sns.Topic(
            f"{self._name}-alarms",
            display_name=f"{self._name} alarms",
            kms_master_key_id=self._context.key_arn,
            tags=self._tags,
            opts=self._child(),
        )
        pattern = self.alarm_arn_pattern
        aws.sns.TopicPolicy(
            f"{self._name}-alarms-policy",
            arn=topic.arn,
            policy=topic.arn.apply(
                lambda arn: alarm_topic_policy(arn, account_id=self._context.account_id, alarm_arn_pattern=pattern)
            ),
            opts=self._child(),
        )
        if args.config.alarm_email:
            # Email subscriptions stay "pending confirmation" until the recipient clicks the link AWS sends.
            aws.sns.TopicSubscription(
                f"{self._name}-alarms-email",
                topic=topic.arn,
                protocol="email",
                endpoint=args.config.alarm_email,
                opts=self._child(),
            )
        self.alarm_topic_arn = topic.arn


@dataclass(frozen=True)
class PlatformWatchArgs:
    observability: Observability
    """Where the alarms go (its topic) and how they are named (its prefix)."""
    cluster_name: pulumi.Input[str]
    services: Mapping[str, ServiceMetrics]
    """One dashboard row per service, in this order."""
    queues: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)
    """Dead-letter queue name by purpose (`targets`, `<consumer>`, `<function>-failures`): one alarm each."""
    functions: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)
    """Lambda function name by purpose: `Errors` and `Throttles` alarms each."""
    bus_name: pulumi.Input[str] | None = None
    rule_names: Sequence[pulumi.Input[str]] = ()


class PlatformWatch(pulumi.ComponentResource):
    """The alarms on what sits between the services (every dead-letter queue, every Lambda function) and
    the environment's dashboard over all of it. Declared after everything it watches."""

    alarms: dict[str, aws.cloudwatch.MetricAlarm]
    """Every alarm, by name."""
    dashboard: aws.cloudwatch.Dashboard

    def __init__(self, name: str, args: PlatformWatchArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("microservices:observability:PlatformWatch", name, None, opts)
        self._args = args
        self.alarms = {}
        for purpose, queue_name in args.queues.items():
            self._queue_alarm(purpose, queue_name)
        for purpose, function_name in args.functions.items():
            self._function_alarms(purpose, function_name)
        self.dashboard = self._dashboard()
        self.register_outputs({"alarmNames": sorted(self.alarms), "dashboardName": self.dashboard.dashboard_name})

    def _child(self) -> pulumi.ResourceOptions:
        # First declared as children of the Observability component: alias that parent (same names).
        return pulumi.ResourceOptions(parent=self, aliases=[pulumi.Alias(parent=self._args.observability)])

    def _alarm(self, suffix: str, description: str, **kwargs: Any) -> aws.cloudwatch.MetricAlarm:
        observability = self._args.observability
        name = observability.alarm_name(suffix)
        if name in self.alarms:
            raise ValueError(f"PlatformWatch: alarm {name!r} is declared twice")
        actions = [observability.alarm_topic_arn]
        alarm = aws.cloudwatch.MetricAlarm(
            name,
            name=name,
            alarm_description=description,
            alarm_actions=actions,
            ok_actions=actions,
            treat_missing_data="notBreaching",
            tags=observability.tags,
            opts=self._child(),
            **kwargs,
        )
        self.alarms[name] = alarm
        return alarm

    def _queue_alarm(self, purpose: str, queue_name: pulumi.Input[str]) -> None:
        """Any visible message in a dead-letter queue is an incident. Idle queues stop reporting
        metrics, hence `notBreaching` for missing data."""
        self._alarm(
            f"{purpose}-dlq-depth",
            f"Dead-letter queue '{purpose}' holds messages: a consumer or delivery failed for good; "
            "inspect and redrive them",
            namespace="AWS/SQS",
            metric_name="ApproximateNumberOfMessagesVisible",
            dimensions={"QueueName": queue_name},
            statistic="Maximum",
            period=DLQ_ALARM_PERIOD_SECONDS,
            evaluation_periods=1,
            threshold=0.0,
            comparison_operator="GreaterThanThreshold",
        )

    def _function_alarms(self, purpose: str, function_name: pulumi.Input[str]) -> None:
        """`Errors > 0` and `Throttles > 0` for one Lambda function (5-minute sums)."""
        for metric, what in (
            ("Errors", "invocations failed"),
            ("Throttles", "invocations were throttled (reserved concurrency exhausted)"),
        ):
            self._alarm(
                f"{purpose}-lambda-{metric.lower()}",
                f"Lambda '{purpose}': {what} in the last 5 minutes",
                namespace="AWS/Lambda",
                metric_name=metric,
                dimensions={"FunctionName": function_name},
                statistic="Sum",
                period=LAMBDA_ALARM_PERIOD_SECONDS,
                evaluation_periods=1,
                threshold=0.0,
                comparison_operator="GreaterThanThreshold",
            )

    def _dashboard(self) -> aws.cloudwatch.Dashboard:
        """The body is one JSON document rendered once every name is known; the dashboard itself is
        declared here, never inside the `apply` (preview would not see it)."""
        args = self._args
        order = list(args.services)
        resolved = pulumi.Output.all(
            cluster=args.cluster_name,
            bus=args.bus_name,
            rules=pulumi.Output.all(*args.rule_names),
            queues=pulumi.Output.from_input(dict(args.queues)),
            functions=pulumi.Output.from_input(dict(args.functions)),
            services=pulumi.Output.from_input(
                {
                    name: {
                        "service_name": metrics.service_name,
                        "load_balancers": {k: dict(v) for k, v in metrics.load_balancers.items()},
                    }
                    for name, metrics in args.services.items()
                }
            ),
        )

        def render(values: dict[str, Any]) -> str:
            return dashboard_body(
                DashboardModel(
                    region=args.observability.region,
                    cluster_name=values["cluster"],
                    services=[
                        ServicePanel(
                            name=name,
                            service_name=values["services"][name]["service_name"],
                            load_balancers=values["services"][name]["load_balancers"],
                        )
                        for name in order
                    ],
                    container_insights=args.observability.container_insights,
                    queues=values["queues"],
                    functions=values["functions"],
                    bus_name=values["bus"],
                    rule_names=list(values["rules"]),
                )
            )

        name = args.observability.dashboard_name
        return aws.cloudwatch.Dashboard(
            name, dashboard_name=name, dashboard_body=resolved.apply(render), opts=self._child()
        )
