"""FargateMicroservice: one service of the platform, everything it owns and nothing it does not.

From a `ServiceSpec` and its resolved `ServiceSizing` this declares, as children of one component:
its security group; its data stores (each a child component, see `components/datastores.py`); a log
group; one Secrets Manager secret per `SecretRef` (the value is set out of band, never by Pulumi);
an execution role and a task role whose policies name exact ARNs; the task definition (app container
plus the X-Ray daemon and any mesh sidecars); the ECS service; target-tracking autoscaling;
CloudWatch alarms; and, for public services once the edge attaches, a target group and listener rules.

Other components plug in through typed attachment points instead of reaching inside:

* `AlbAttachment` (edge): the HTTPS listener, the ALB's security group and a listener-rule priority
  block. The service adds its own target group, rules and the one ingress rule from the ALB.
* `publish_bus_arn` / `consume_queue_arns` (event bus): exactly `events:PutEvents` on that bus and
  exactly the SQS consumer actions on those queues (plus `kms:Decrypt` via SQS).
* `MeshAttachment` (mTLS mesh): sidecar container definitions (the app starts after they are
  HEALTHY), extra secrets, app environment, task-role statements, security-group ingress/egress for
  mesh ports, a Cloud Map registry, and redeploy triggers (new certificate -> new deployment).

The app container runs as a non-root user with a read-only root filesystem (a task volume at /tmp is
its only writable path), logs JSON to its own KMS-encrypted log group, and receives secrets only as
ECS `secrets` references: a plain `environment` value never holds a credential.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import pulumi
import pulumi_aws as aws

from components.cluster import CapacityShare
from components.context import PlatformContext
from components.datastores import (
    ContainerSecret,
    DataStore,
    DataStoreArgs,
    StoreBinding,
    StoreNetwork,
    create_store,
)
from components.edge import EdgeAttachment, EdgeListener, path_patterns
from components.iam import Statement, allow, kms_via, policy_document
from model.config import DataConfig, DeploymentStrategy, ServiceSizing
from model.spec import ServiceSpec

__all__ = [
    "AlbAttachment",
    "ContainerSecret",
    "FargateMicroservice",
    "FargateMicroserviceArgs",
    "MeshAttachment",
    "Rollout",
    "TaskRuntime",
    "log_configuration",
    "service_log_group_name",
]

APP_CONTAINER = "app"
XRAY_CONTAINER = "xray-daemon"
XRAY_DAEMON_IMAGE = "public.ecr.aws/xray/aws-xray-daemon:3.3.12"
XRAY_DAEMON_PORT = 2000
TMP_VOLUME = "tmp"
STOP_TIMEOUT_SECONDS = 30
"""Seconds between SIGTERM and SIGKILL (Fargate allows up to 120)."""
HEALTH_CHECK_GRACE_SECONDS = 60
"""How long ECS ignores failing load-balancer health checks of a new task."""
XRAY_DAEMON_USER = "1000:1000"
MEMORY_TARGET_PERCENT = 75
DEFAULT_REQUESTS_PER_TARGET = 1000
"""ALBRequestCountPerTarget target (requests per task per minute) unless the attachment sets one."""
CPU_ALARM_PERCENT = 85
MEMORY_ALARM_PERCENT = 85
ERROR_RATE_ALARM_PERCENT = 5
LATENCY_P99_ALARM_SECONDS = 1.0
ECS_STRATEGIES = {"rolling": "ROLLING", "blueGreen": "BLUE_GREEN", "canary": "CANARY", "linear": "LINEAR"}
"""Config strategy -> `deploymentConfiguration.strategy` (ECS API / pulumi-aws 7.51 values)."""
TEST_RULE_PRIORITY_OFFSET = 5
"""Test listener rules sit 5 below their production rule (edge priorities step by 10), so they win."""
TEST_HEADER_VALUE = "green"

SQS_CONSUMER_ACTIONS = (
    "sqs:ChangeMessageVisibility",
    "sqs:DeleteMessage",
    "sqs:GetQueueAttributes",
    "sqs:ReceiveMessage",
)
XRAY_ACTIONS = ("xray:GetSamplingRules", "xray:GetSamplingTargets", "xray:PutTelemetryRecords", "xray:PutTraceSegments")
ECS_EXEC_ACTIONS = (
    "ssmmessages:CreateControlChannel",
    "ssmmessages:CreateDataChannel",
    "ssmmessages:OpenControlChannel",
    "ssmmessages:OpenDataChannel",
)
ELB_DESCRIBE_ACTIONS = (
    "elasticloadbalancing:DescribeListeners",
    "elasticloadbalancing:DescribeRules",
    "elasticloadbalancing:DescribeTargetGroups",
    "elasticloadbalancing:DescribeTargetHealth",
)
"""What ECS reads while it shifts traffic (the deployment role); ELBv2 defines no resource type for them."""
WILDCARD_RESOURCE_ACTIONS = frozenset(
    {*XRAY_ACTIONS, *ECS_EXEC_ACTIONS, *ELB_DESCRIBE_ACTIONS, "ecr:GetAuthorizationToken", "logs:DescribeLogGroups"}
)
"""The only actions granted on `"*"`: AWS defines no resource type for them, so no ARN can be named."""

_PRIVATE_ECR_IMAGE = re.compile(
    r"^(?P<account>\d{12})\.dkr\.ecr\.(?P<region>[a-z0-9-]+)\.amazonaws\.com(\.cn)?/(?P<repo>[^:@]+)"
)


@dataclass(frozen=True)
class AlbAttachment:
    """What the edge gives a public service: the listeners to hang its rules on and who may reach it.

    For EACH listener the service declares its own target group (`ip` targets, `target_protocol` to
    `target_port`, health check on the spec's path), one listener rule per public path prefix
    (`path_patterns(prefix)` at `rule_priorities[prefix]`), one ingress rule admitting that listener's
    security group on the target port, an ALBRequestCountPerTarget scaling policy and 5xx/latency
    alarms. `AlbAttachment.from_edge(edge.attachment)` builds it from the Edge component.
    """

    listeners: Sequence[EdgeListener]
    """`EdgeListener(key, listener_arn, security_group_id, alb_arn_suffix)`; `key` names the children."""
    rule_priorities: Mapping[str, int]
    """Listener-rule priority per public path prefix (without trailing `/`), unique across services."""
    target_port: int | None = None
    """Port the target groups send to; default the app's container port. The mesh sets Envoy's edge port."""
    target_protocol: Literal["HTTP", "HTTPS"] = "HTTP"
    target_container_name: str | None = None
    """Container that receives ALB traffic; default the app. Must own `target_port` (e.g. the Envoy sidecar)."""
    requests_per_target: int = DEFAULT_REQUESTS_PER_TARGET
    """ALBRequestCountPerTarget autoscaling target (requests per task per minute)."""

    @classmethod
    def from_edge(cls, edge: EdgeAttachment, **overrides: Any) -> AlbAttachment:
        """Both of the Edge's listeners (public ALB, internal API ALB) with its rule priorities."""
        return cls(listeners=edge.listeners, rule_priorities=dict(edge.rule_priorities), **overrides)


@dataclass(frozen=True)
class MeshAttachment:
    """What the mTLS mesh gives a service. Every field is optional; the defaults add nothing.

    Security-group rules for the mesh port are not part of it: callers' groups do not exist yet when
    the attachment is built, so `components.wiring.MeshConnections` declares them after all services."""

    sidecars: Sequence[Mapping[str, Any]] = ()
    """ECS container definitions (camelCase, as in the task definition JSON; values may be Inputs).
    Each needs a plain-string `name` and a `healthCheck`: the app container `dependsOn` each one
    `HEALTHY`. Build their `logConfiguration` with `log_configuration(<component name>, region,
    <stream prefix>)`: the execution role may write to the service's own log group only."""
    app_secrets: Sequence[ContainerSecret] = ()
    """Extra `secrets` entries injected into the APP container."""
    app_environment: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)
    """Extra plain environment for the app (e.g. outbound listener URLs). Never credentials."""
    secret_arns: Sequence[pulumi.Input[str]] = ()
    """Every secret the sidecars' or `app_secrets` entries read: the execution role may read exactly these."""
    task_statements: Sequence[Statement] = ()
    """Extra task-role statements (exact ARNs, no action wildcards)."""
    registry_arn: pulumi.Input[str] | None = None
    """Cloud Map service ARN to register tasks in (A records; awsvpc)."""
    redeploy_triggers: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)
    """Values whose change forces a new ECS deployment (e.g. the certificate's version id)."""


@dataclass(frozen=True)
class TaskRuntime:
    """How the environment runs its tasks: the same for every service of a stack (the composition fills
    it from the stack's `compute` and `observability` sections)."""

    cpu_architecture: Literal["ARM64", "X86_64"]
    capacity: Sequence[CapacityShare]
    """The ECS service's capacity provider strategy (`components.cluster.capacity_strategy`)."""
    log_retention_days: int
    """Of its log group and its data stores' log groups."""
    tracing: bool
    """An X-Ray daemon beside the app (and the task role's X-Ray permissions)."""
    container_insights: bool
    """The cluster publishes Container Insights, so the tasks-below-desired alarm has metrics."""
    execute_command: bool
    """ECS Exec into running tasks (SSM channels on the task role; session logs to `exec_log_group_name`)."""


@dataclass(frozen=True)
class Rollout:
    """How a new revision replaces the running one (ECS native deployment strategies), resolved for the
    environment by the composition. A service without a load balancer cannot shift traffic: it rolls."""

    strategy: DeploymentStrategy
    bake_time_minutes: int
    """Blue/green, canary, linear: minutes both revisions run after production traffic moved."""
    canary_percent: float
    canary_bake_time_minutes: int
    linear_step_percent: float
    linear_step_bake_time_minutes: int
    alarm_rollback: bool
    """Roll back when one of the service's own 5xx, p99 latency (or missing-tasks) alarms fires."""
    test_header: str
    """Header (value `green`) that routes a request from inside the VPC to the new revision."""


@dataclass(frozen=True)
class FargateMicroserviceArgs:
    spec: ServiceSpec
    sizing: ServiceSizing
    """Resolved sizing (`PlatformInputs.sizing[name]`); `image` must be set."""
    runtime: TaskRuntime
    store_settings: DataConfig
    """Settings of the data stores it owns (the stack's `data` section), passed to each store's
    `DataStoreArgs`; the service itself reads none of it."""
    vpc_id: pulumi.Input[str]
    private_subnet_ids: pulumi.Input[Sequence[str]]
    """Where tasks run (no public IPs)."""
    isolated_subnet_ids: pulumi.Input[Sequence[str]]
    """Where the service's data stores live."""
    cluster_arn: pulumi.Input[str]
    cluster_name: pulumi.Input[str]
    exec_log_group_name: pulumi.Input[str] | None = None
    """The cluster's ECS Exec log group; the task role may write session logs to it when Exec is on."""
    alarm_topic_arn: pulumi.Input[str] | None = None
    """SNS topic for alarm and OK notifications; alarms still exist (dashboard state) without one."""
    alarm_name_prefix: str = ""
    """What every alarm name must start with for the topic to accept it (`Observability.alarm_name_prefix`);
    checked before any resource is declared, so a rename cannot silently drop alarms."""
    alb: AlbAttachment | None = None
    """Public routing; only for specs with `public_paths`."""
    publish_bus_arn: pulumi.Input[str] | None = None
    """EventBridge bus this service puts its events on (grants exactly events:PutEvents on it)."""
    consume_queue_arns: Sequence[pulumi.Input[str]] = ()
    """SQS queues this service polls (grants exactly the consumer actions on them)."""
    mesh: MeshAttachment | None = None
    rollout: Rollout | None = None
    """Deployment strategy and alarm rollback; None: ECS's default rolling update with the circuit breaker only."""
    vpc_cidr: str | None = None
    """Test listener rules accept requests from this range only (needed with a traffic-shifting strategy)."""
    app_environment: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)
    """Extra plain settings for the app from the data patterns (saga command queue URL, saga ARN). Never credentials."""
    image: pulumi.Input[str] | None = None
    """The app image when this program builds it (a `ServiceImage.image_ref`); otherwise `sizing.image`."""
    image_repository_arn: pulumi.Input[str] | None = None
    """The private ECR repository of `image`: the execution role may pull from exactly this one."""


APP_HEALTH_CHECK_TIMING = {"interval": 15, "timeout": 5, "retries": 3, "startPeriod": 30}
"""Seconds/counts of the app container's health check (the reference Dockerfiles' HEALTHCHECK matches)."""


def app_health_check(spec: ServiceSpec) -> dict[str, Any]:
    """The app container's ECS health check: the spec's command, or a busybox/alpine `wget` of its
    health path; either way the image must answer the spec's health path on its port."""
    command = list(spec.health_check_command) or [
        "CMD-SHELL",
        f"wget -q -O /dev/null http://127.0.0.1:{spec.container_port}{spec.health_check_path} || exit 1",
    ]
    return {"command": command, **APP_HEALTH_CHECK_TIMING}


def service_log_group_name(component_name: str) -> str:
    """The log group of a FargateMicroservice named `component_name` (e.g. `/ecs/ms-dev-order`)."""
    return f"/ecs/{component_name}"


def log_configuration(component_name: str, region: str, stream_prefix: str) -> dict[str, Any]:
    """awslogs to a service's own log group: for the app, the X-Ray daemon and mesh sidecars (the
    execution role may write exactly there, so sidecars should log with this block)."""
    return {
        "logDriver": "awslogs",
        "options": {
            "awslogs-group": service_log_group_name(component_name),
            "awslogs-region": region,
            "awslogs-stream-prefix": stream_prefix,
            "mode": "non-blocking",
            "max-buffer-size": "25m",
        },
    }


def target_group_name(environment: str, service: str, listener_key: str, port: int, protocol: str) -> str:
    """A target group name within ALB's 32 characters that changes whenever the group must be replaced.

    Pulumi's auto-naming appends 8 characters, which `ms-<env>-<service>-<listener>-tg` cannot afford,
    and a fixed name would make a replacement (a new target port when the mesh moves ALB traffic to
    Envoy) fail with "already exists". So: a readable stem plus a hash of the replacement-forcing
    properties; a new port or protocol gives a new name and Pulumi creates it before deleting the old.
    """
    digest = hashlib.sha256(f"{environment}|{service}|{listener_key}|{port}|{protocol}".encode()).hexdigest()[:6]
    stem = f"{environment}-{service}-{listener_key}"[:25].rstrip("-")
    return f"{stem}-{digest}"


def queue_url(arn: str) -> str:
    """`arn:aws:sqs:<region>:<account>:<name>` -> `https://sqs.<region>.amazonaws.com/<account>/<name>`."""
    parts = arn.split(":")
    partition, region, account, queue = parts[1], parts[3], parts[4], parts[5]
    suffix = "amazonaws.com.cn" if partition == "aws-cn" else "amazonaws.com"
    return f"https://sqs.{region}.{suffix}/{account}/{queue}"


class FargateMicroservice(pulumi.ComponentResource):
    """One Fargate service with its own identity, network boundary, data, scaling and alarms."""

    service_name: pulumi.Output[str]
    service_arn: pulumi.Output[str]
    security_group_id: pulumi.Output[str]
    task_role_arn: pulumi.Output[str]
    task_role_name: pulumi.Output[str]
    execution_role_arn: pulumi.Output[str]
    log_group_name: pulumi.Output[str]
    log_group_arn: pulumi.Output[str]
    task_definition_arn: pulumi.Output[str]
    target_group_arns: dict[str, pulumi.Output[str]]
    """Target group ARN per edge listener key (`public`, `api`); empty for private services."""
    load_balancer_dimensions: dict[str, dict[str, pulumi.Input[str]]]
    """CloudWatch `AWS/ApplicationELB` dimensions (`LoadBalancer`, `TargetGroup` ARN suffixes) per edge
    listener key: what this service's 5xx/latency alarms watch, and what the dashboard plots."""
    stores: dict[str, DataStore]
    secret_arns: dict[str, pulumi.Output[str]]
    """Secret ARN per `SecretRef.env_name` (operators put the values there out of band)."""

    def __init__(
        self,
        name: str,
        args: FargateMicroserviceArgs,
        context: PlatformContext,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        """`context`: environment, account, region, partition, base tags and the platform key (which
        encrypts its log group, secrets and data stores)."""
        _validate(args)
        self._context = context
        if not name.startswith(args.alarm_name_prefix):
            raise ValueError(
                f"FargateMicroservice {name!r}: its alarms would be named {name}-..., which the alarm topic refuses "
                f"(it accepts only alarms named {args.alarm_name_prefix}...); name the component with that prefix"
            )
        super().__init__("microservices:service:FargateMicroservice", name, None, opts)
        spec = args.spec
        self.spec = spec
        self._name = name
        self._args = args
        self._tags = context.with_tags(Service=spec.name)
        self.container_name = APP_CONTAINER
        self.container_port = spec.container_port

        self._security_group()
        self.stores = self._data_stores()
        bindings = [store.binding for store in self.stores.values()]
        self._network_rules()
        self._log_group()
        self._secrets()
        self._execution_role(bindings)
        self._task_role(bindings)
        self._task_definition(bindings)
        rules = self._routing()
        # A deployment rolls back on the service's own 5xx and p99 alarms; a service without a load
        # balancer has no such metrics in CloudWatch, so it rolls back on missing tasks.
        deployment_alarms = self._load_balancer_alarms()
        tasks_alarm = self._tasks_alarm()
        deployment_alarms = deployment_alarms or tasks_alarm
        self._service(rules, deployment_alarms)
        self._autoscaling()
        self._alarms()

        self.register_outputs(
            {
                "serviceName": self.service_name,
                "serviceArn": self.service_arn,
                "securityGroupId": self.security_group_id,
                "taskRoleArn": self.task_role_arn,
                "executionRoleArn": self.execution_role_arn,
                "logGroupName": self.log_group_name,
                "taskDefinitionArn": self.task_definition_arn,
                "targetGroupArns": self.target_group_arns,
                "secretArns": self.secret_arns,
            }
        )

    # --- helpers ------------------------------------------------------------------------------

    def _child(self, **extra: Any) -> pulumi.ResourceOptions:
        return pulumi.ResourceOptions(parent=self, **extra)

    def _log_configuration(self, stream_prefix: str) -> dict[str, Any]:
        config = log_configuration(self._name, self._context.region, stream_prefix)
        # The same name, as the log group's output: the task definition then depends on the group.
        config["options"]["awslogs-group"] = self.log_group_name
        return config

    # --- network boundary ---------------------------------------------------------------------

    def _security_group(self) -> None:
        name, args = self._name, self._args
        group = aws.ec2.SecurityGroup(
            f"{name}-sg",
            vpc_id=args.vpc_id,
            description=f"{args.spec.name} service tasks",
            tags={**self._tags, "Name": f"{name}-sg"},
            opts=self._child(),
        )
        self.security_group_id = group.id
        # AWS APIs (Secrets Manager, ECR, CloudWatch, X-Ray, SQS, EventBridge...) over HTTPS via the NAT
        # gateway or a VPC endpoint. DynamoDB also goes this way, through its gateway endpoint.
        aws.vpc.SecurityGroupEgressRule(
            f"{name}-https-out",
            security_group_id=group.id,
            cidr_ipv4="0.0.0.0/0",
            ip_protocol="tcp",
            from_port=443,
            to_port=443,
            description="HTTPS to AWS APIs",
            tags=self._tags,
            opts=self._child(),
        )

    def _data_stores(self) -> dict[str, DataStore]:
        args = self._args
        store_args = DataStoreArgs(
            owner=args.spec.name,
            data=args.store_settings,
            log_retention_days=args.runtime.log_retention_days,
            network=StoreNetwork(
                vpc_id=args.vpc_id, subnet_ids=args.isolated_subnet_ids, owner_security_group_id=self.security_group_id
            ),
        )
        return {
            store.name: create_store(f"{self._name}-{store.name}", store, store_args, self._context, self._child())
            for store in args.spec.data_stores
        }

    def _network_rules(self) -> None:
        name, args = self._name, self._args
        for store_name, store in self.stores.items():
            binding = store.binding
            if binding.security_group_id is None or binding.port is None:
                continue
            aws.vpc.SecurityGroupEgressRule(
                f"{name}-to-{store_name}",
                security_group_id=self.security_group_id,
                referenced_security_group_id=binding.security_group_id,
                ip_protocol="tcp",
                from_port=binding.port,
                to_port=binding.port,
                description=f"to its own data store {store_name}",
                tags=self._tags,
                opts=self._child(),
            )
        for listener in args.alb.listeners if args.alb is not None else ():
            port = self._target_port()
            aws.vpc.SecurityGroupIngressRule(
                f"{name}-from-{listener.key}-alb",
                security_group_id=self.security_group_id,
                referenced_security_group_id=listener.security_group_id,
                ip_protocol="tcp",
                from_port=port,
                to_port=port,
                description=f"from the {listener.key} load balancer only",
                tags=self._tags,
                opts=self._child(),
            )

    # --- logs and secrets ---------------------------------------------------------------------

    def _log_group(self) -> None:
        args = self._args
        group = aws.cloudwatch.LogGroup(
            f"{self._name}-logs",
            name=service_log_group_name(self._name),
            retention_in_days=args.runtime.log_retention_days,
            kms_key_id=self._context.key_arn,
            tags=self._tags,
            opts=self._child(),
        )
        self.log_group_name = group.name
        self.log_group_arn = group.arn

    def _secrets(self) -> None:
        """One secret per SecretRef. Pulumi creates the container only: the VALUE is put out of band
        (`aws secretsmanager put-secret-value`), so it never enters the program, its config or state."""
        args = self._args
        self.secret_arns = {}
        for ref in args.spec.secrets:
            secret = aws.secretsmanager.Secret(
                f"{self._name}-{ref.env_name.lower().replace('_', '-')}",
                name=f"microservices/{self._context.environment}/{args.spec.name}/{ref.env_name}",
                description=ref.description,
                kms_key_id=self._context.key_arn,
                recovery_window_in_days=30 if self._context.environment == "prod" else 7,
                tags=self._tags,
                opts=self._child(),
            )
            self.secret_arns[ref.env_name] = secret.arn

    # --- identity -----------------------------------------------------------------------------

    def _assume_role_policy(self) -> str:
        return self._context.trust_policy("ecs-tasks.amazonaws.com")

    def _images(self) -> list[str]:
        """Image references known as plain strings (a built image is pulled through `image_repository_arn`)."""
        mesh = self._args.mesh or MeshAttachment()
        images = [str(self._args.sizing.image)] if self._args.image is None else []
        images += [str(s["image"]) for s in mesh.sidecars if isinstance(s.get("image"), str)]
        return images

    def _execution_role(self, bindings: Sequence[StoreBinding]) -> None:
        """What ECS itself needs to start the task: write its logs, pull private images, read its secrets."""
        name, args = self._name, self._args
        role = aws.iam.Role(
            f"{name}-execution",
            assume_role_policy=self._assume_role_policy(),
            description=f"ECS agent for {args.spec.name}: logs, image pull, its own secrets",
            tags=self._tags,
            opts=self._child(),
        )
        statements: list[Statement] = [
            allow(
                "OwnLogGroup",
                ["logs:CreateLogStream", "logs:PutLogEvents"],
                [self.log_group_arn, pulumi.Output.concat(self.log_group_arn, ":log-stream:*")],
            )
        ]
        repositories: list[pulumi.Input[str]] = [
            *sorted(
                {
                    f"arn:{self._context.partition}:ecr:{m['region']}:{m['account']}:repository/{m['repo']}"
                    for image in self._images()
                    if (m := _PRIVATE_ECR_IMAGE.match(image))
                }
            )
        ]
        if args.image_repository_arn is not None:
            repositories.append(args.image_repository_arn)
        if repositories:
            statements += [
                # GetAuthorizationToken is account-wide: it has no resource type, so "*" is the only option.
                allow("EcrLogin", ["ecr:GetAuthorizationToken"], ["*"]),
                allow(
                    "PullOwnImages",
                    ["ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"],
                    repositories,
                ),
            ]
        mesh = args.mesh or MeshAttachment()
        secret_arns: list[pulumi.Input[str]] = [
            *self.secret_arns.values(),
            *(arn for b in bindings for arn in b.secret_arns),
            *mesh.secret_arns,
        ]
        if secret_arns:
            statements += [
                allow("OwnSecrets", ["secretsmanager:GetSecretValue"], secret_arns),
                allow(
                    "DecryptOwnSecrets",
                    ["kms:Decrypt"],
                    [self._context.key_arn],
                    kms_via(self._context.region, "secretsmanager"),
                ),
            ]
        self._execution_policy = aws.iam.RolePolicy(
            f"{name}-execution", role=role.id, policy=policy_document(statements), opts=self._child()
        )
        self.execution_role_arn = role.arn

    def _task_role(self, bindings: Sequence[StoreBinding]) -> None:
        """What the application may do: exactly what its spec declares, on exact ARNs."""
        name, args = self._name, self._args
        role = aws.iam.Role(
            f"{name}-task",
            assume_role_policy=self._assume_role_policy(),
            description=f"{args.spec.name} application: its own data, events and queues only",
            tags=self._tags,
            opts=self._child(),
        )
        statements: list[Statement] = [s for b in bindings for s in b.task_statements]
        if args.publish_bus_arn is not None and args.spec.publishes:
            statements.append(allow("PublishOwnEvents", ["events:PutEvents"], [args.publish_bus_arn]))
        if args.consume_queue_arns:
            statements += [
                allow("ConsumeOwnQueues", SQS_CONSUMER_ACTIONS, list(args.consume_queue_arns)),
                allow(
                    "DecryptOwnQueues",
                    ["kms:Decrypt"],
                    [self._context.key_arn],
                    kms_via(self._context.region, "sqs"),
                ),
            ]
        if args.runtime.tracing:
            # X-Ray trace and sampling APIs have no resource types: "*" is the only possible resource.
            statements.append(allow("XRayDaemon", XRAY_ACTIONS, ["*"]))
        if args.runtime.execute_command:
            # ECS Exec (only where the environment allows it): the SSM agent's channels have no resource
            # type ("*" is required); session logs go to the cluster's exec log group, encrypted with the key.
            statements.append(allow("EcsExecChannels", ECS_EXEC_ACTIONS, ["*"]))
            # The SSM agent in the task decrypts the session data key itself (no kms:ViaService).
            statements.append(allow("EcsExecSessionKey", ["kms:Decrypt"], [self._context.key_arn]))
            if args.exec_log_group_name is not None:
                exec_group = pulumi.Output.concat(
                    f"arn:{self._context.partition}:logs:{self._context.region}:{self._context.account_id}:log-group:",
                    args.exec_log_group_name,
                )
                statements += [
                    allow("EcsExecFindLogGroup", ["logs:DescribeLogGroups"], ["*"]),
                    allow(
                        "EcsExecSessionLogs",
                        ["logs:CreateLogStream", "logs:DescribeLogStreams", "logs:PutLogEvents"],
                        [exec_group, pulumi.Output.concat(exec_group, ":log-stream:*")],
                    ),
                ]
        mesh = args.mesh or MeshAttachment()
        statements += list(mesh.task_statements)
        self._task_policy: aws.iam.RolePolicy | None = None
        if statements:
            self._task_policy = aws.iam.RolePolicy(
                f"{name}-task", role=role.id, policy=policy_document(statements), opts=self._child()
            )
        self.task_role_arn = role.arn
        self.task_role_name = role.name

    # --- task definition ----------------------------------------------------------------------

    def _app_environment(self, bindings: Sequence[StoreBinding]) -> dict[str, pulumi.Input[str]]:
        args = self._args
        env: dict[str, pulumi.Input[str]] = {
            "SERVICE_NAME": args.spec.name,
            "ENVIRONMENT": self._context.environment,
            "AWS_REGION": self._context.region,
            "PORT": str(args.spec.container_port),
            "LOG_FORMAT": "json",
        }
        if args.runtime.tracing:
            env["AWS_XRAY_DAEMON_ADDRESS"] = f"127.0.0.1:{XRAY_DAEMON_PORT}"
        for binding in bindings:
            env.update(binding.environment)
        if args.publish_bus_arn is not None and args.spec.publishes:
            env["EVENT_BUS_ARN"] = args.publish_bus_arn
            env["EVENT_SOURCE"] = args.spec.event_source
        if args.consume_queue_arns:
            urls = pulumi.Output.all(*args.consume_queue_arns).apply(lambda arns: ",".join(queue_url(a) for a in arns))
            env["EVENT_QUEUE_URLS"] = urls
        if args.mesh is not None:
            env.update(args.mesh.app_environment)
        env.update(args.app_environment)
        return env

    def _app_secrets(self, bindings: Sequence[StoreBinding]) -> list[ContainerSecret]:
        secrets = [ContainerSecret(env_name, arn) for env_name, arn in self.secret_arns.items()]
        secrets += [s for b in bindings for s in b.secrets]
        if self._args.mesh is not None:
            secrets += list(self._args.mesh.app_secrets)
        return secrets

    def _task_definition(self, bindings: Sequence[StoreBinding]) -> None:
        name, args, spec = self._name, self._args, self._args.spec
        environment = self._app_environment(bindings)
        secrets = self._app_secrets(bindings)
        clash = sorted(set(environment) & {s.name for s in secrets})
        if clash:
            raise ValueError(f"{spec.name}: {clash[0]} is both a plain environment value and a secret")
        mesh = args.mesh or MeshAttachment()
        sidecars: list[Mapping[str, Any]] = list(mesh.sidecars)
        depends_on = [{"containerName": str(s["name"]), "condition": "HEALTHY"} for s in sidecars]
        containers: list[Mapping[str, Any]] = []
        if args.runtime.tracing:
            containers.append(self._xray_container())
            depends_on.append({"containerName": XRAY_CONTAINER, "condition": "START"})
        port = spec.container_port
        image: pulumi.Input[str] = args.image if args.image is not None else str(args.sizing.image)
        app: dict[str, Any] = {
            "name": APP_CONTAINER,
            "image": image,
            "essential": True,
            "user": args.spec.run_as_user,
            "readonlyRootFilesystem": True,
            "portMappings": [{"name": "http", "containerPort": port, "protocol": "tcp", "appProtocol": "http"}],
            "environment": [{"name": k, "value": environment[k]} for k in sorted(environment)],
            "secrets": [{"name": s.name, "valueFrom": s.value_from} for s in sorted(secrets, key=lambda s: s.name)],
            "mountPoints": [{"sourceVolume": TMP_VOLUME, "containerPath": "/tmp", "readOnly": False}],
            "logConfiguration": self._log_configuration(APP_CONTAINER),
            "healthCheck": app_health_check(spec),
            "stopTimeout": STOP_TIMEOUT_SECONDS,
            # An init process reaps zombies and forwards signals (and ECS Exec needs it); no Linux
            # capabilities: the app binds an unprivileged port.
            "linuxParameters": {"initProcessEnabled": True, "capabilities": {"drop": ["ALL"]}},
        }
        if depends_on:
            app["dependsOn"] = depends_on
        containers = [app, *containers, *sidecars]
        self._task = aws.ecs.TaskDefinition(
            f"{name}-task",
            family=name,
            cpu=str(args.sizing.cpu),
            memory=str(args.sizing.memory),
            network_mode="awsvpc",
            requires_compatibilities=["FARGATE"],
            runtime_platform=aws.ecs.TaskDefinitionRuntimePlatformArgs(
                # From the same validated config as the capacity strategy: ARM64 never meets Fargate Spot.
                operating_system_family="LINUX",
                cpu_architecture=args.runtime.cpu_architecture,
            ),
            execution_role_arn=self.execution_role_arn,
            task_role_arn=self.task_role_arn,
            volumes=[aws.ecs.TaskDefinitionVolumeArgs(name=TMP_VOLUME)],
            container_definitions=pulumi.Output.json_dumps(containers),
            tags=self._tags,
            opts=self._child(),
        )
        self.task_definition_arn = self._task.arn

    def _xray_container(self) -> dict[str, Any]:
        return {
            "name": XRAY_CONTAINER,
            "image": XRAY_DAEMON_IMAGE,
            # Tracing is best effort: losing the daemon must not stop the service.
            "essential": False,
            "user": XRAY_DAEMON_USER,
            "readonlyRootFilesystem": True,
            "cpu": 32,
            "memoryReservation": 64,
            "portMappings": [{"containerPort": XRAY_DAEMON_PORT, "protocol": "udp"}],
            "logConfiguration": self._log_configuration(XRAY_CONTAINER),
            "linuxParameters": {"capabilities": {"drop": ["ALL"]}},
        }

    # --- routing and service ------------------------------------------------------------------

    def _target_port(self) -> int:
        alb = self._args.alb
        return alb.target_port if alb is not None and alb.target_port is not None else self._args.spec.container_port

    def _strategy(self) -> str:
        """The ECS strategy: traffic-shifting ones need a load balancer, so a private service rolls."""
        rollout = self._args.rollout
        if rollout is None or self._args.alb is None:
            return "ROLLING"
        return ECS_STRATEGIES[rollout.strategy]

    def _target_group(self, listener: EdgeListener, suffix: str) -> aws.lb.TargetGroup:
        name, args, spec = self._name, self._args, self._args.spec
        alb = args.alb
        assert alb is not None
        return aws.lb.TargetGroup(
            f"{name}-{listener.key}-tg{suffix}",
            name=target_group_name(
                self._context.environment,
                spec.name,
                f"{listener.key}{suffix}",
                self._target_port(),
                alb.target_protocol,
            ),
            target_type="ip",
            vpc_id=args.vpc_id,
            port=self._target_port(),
            protocol=alb.target_protocol,
            protocol_version="HTTP1",
            deregistration_delay=30,
            health_check=aws.lb.TargetGroupHealthCheckArgs(
                enabled=True,
                path=spec.health_check_path,
                port="traffic-port",
                protocol=alb.target_protocol,
                matcher="200-399",
                interval=15,
                timeout=5,
                healthy_threshold=2,
                unhealthy_threshold=3,
            ),
            tags=self._tags,
            opts=self._child(),
        )

    def _routing(self) -> list[aws.lb.ListenerRule]:
        """Per edge listener: a target group and one rule per public path prefix forwarding to it.

        With a traffic-shifting strategy (blue/green, canary, linear) each listener also gets the
        alternate target group and, per path, a test rule; both rules forward to both groups (weights
        100/0) and ECS moves the weights during a deployment, so Pulumi ignores later changes to their
        actions. This is the layout of "Application Load Balancer resources for blue/green, linear and
        canary deployments" in the ECS developer guide."""
        name, args, spec = self._name, self._args, self._args.spec
        self._target_groups: dict[str, tuple[EdgeListener, aws.lb.TargetGroup]] = {}
        self._alternate_groups: dict[str, aws.lb.TargetGroup] = {}
        self._production_rules: dict[str, aws.lb.ListenerRule] = {}
        self._test_rules: dict[str, aws.lb.ListenerRule] = {}
        if args.alb is None:
            self.target_group_arns: dict[str, pulumi.Output[str]] = {}
            self.load_balancer_dimensions = {}
            return []
        alb = args.alb
        shifting = self._strategy() != "ROLLING"
        if shifting and not args.vpc_cidr:
            raise ValueError(f"{spec.name}: a {self._strategy()} deployment needs vpc_cidr for its test rules")
        rules = []
        for listener in alb.listeners:
            target_group = self._target_group(listener, "")
            self._target_groups[listener.key] = (listener, target_group)
            alternate = self._target_group(listener, "-alt") if shifting else None
            if alternate is not None:
                self._alternate_groups[listener.key] = alternate
            for prefix in spec.public_paths:
                base = prefix.rstrip("/")
                path = aws.lb.ListenerRuleConditionArgs(
                    path_pattern=aws.lb.ListenerRuleConditionPathPatternArgs(values=path_patterns(base))
                )
                rule = aws.lb.ListenerRule(
                    f"{name}-{listener.key}-route{base.replace('/', '-')}",
                    listener_arn=listener.listener_arn,
                    priority=alb.rule_priorities[base],
                    conditions=[path],
                    actions=[_forward(target_group, alternate)],
                    tags=self._tags,
                    opts=self._child(ignore_changes=["actions"] if shifting else None),
                )
                rules.append(rule)
                if alternate is None:
                    continue
                # ECS takes one production and one test rule per load balancer entry: the first path's.
                self._production_rules.setdefault(listener.key, rule)
                test_rule = aws.lb.ListenerRule(
                    f"{name}-{listener.key}-test{base.replace('/', '-')}",
                    listener_arn=listener.listener_arn,
                    priority=alb.rule_priorities[base] - TEST_RULE_PRIORITY_OFFSET,
                    conditions=[
                        path,
                        aws.lb.ListenerRuleConditionArgs(
                            http_header=aws.lb.ListenerRuleConditionHttpHeaderArgs(
                                http_header_name=args.rollout.test_header if args.rollout else "",
                                values=[TEST_HEADER_VALUE],
                            )
                        ),
                        aws.lb.ListenerRuleConditionArgs(
                            source_ip=aws.lb.ListenerRuleConditionSourceIpArgs(values=[args.vpc_cidr or ""])
                        ),
                    ],
                    actions=[_forward(target_group, alternate)],
                    tags={**self._tags, "Purpose": "deployment-test"},
                    opts=self._child(ignore_changes=["actions"]),
                )
                self._test_rules.setdefault(listener.key, test_rule)
                rules.append(test_rule)
        self.target_group_arns = {key: tg.arn for key, (_, tg) in self._target_groups.items()}
        self.load_balancer_dimensions = {
            key: {"TargetGroup": tg.arn_suffix, "LoadBalancer": listener.alb_arn_suffix}
            for key, (listener, tg) in self._target_groups.items()
        }
        return rules

    def _infrastructure_role(self) -> aws.iam.Role:
        """The role ECS assumes to move listener-rule weights and (de)register tasks during a deployment.

        The actions are those of AWS's AmazonECSInfrastructureRolePolicyForLoadBalancers for an ALB (Describe
        listeners/rules/target groups/target health, Register/DeregisterTargets, ModifyListener, ModifyRule),
        scoped here to this service's own target groups, listener rules and listeners (the managed policy
        grants them on every target group and listener of the account)."""
        role = aws.iam.Role(
            f"{self._name}-deploy-role",
            description=f"ECS shifts ALB traffic between {self._args.spec.name}'s target groups during deployments",
            # The trust policy of AWS's guide ("Creating the Amazon ECS infrastructure role for load balancers").
            assume_role_policy=self._context.trust_policy("ecs.amazonaws.com"),
            tags=self._tags,
            opts=self._child(),
        )
        groups = [tg.arn for _, tg in self._target_groups.values()] + [tg.arn for tg in self._alternate_groups.values()]
        rules = [r.arn for r in self._production_rules.values()] + [r.arn for r in self._test_rules.values()]
        listeners = [listener.listener_arn for listener, _ in self._target_groups.values()]

        def document(values: Sequence[str]) -> str:
            g, r = len(groups), len(rules)
            return json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Sid": "ELBReadOperations",
                            "Effect": "Allow",
                            "Action": list(ELB_DESCRIBE_ACTIONS),
                            "Resource": "*",
                        },
                        {
                            "Sid": "TargetGroupOperations",
                            "Effect": "Allow",
                            "Action": [
                                "elasticloadbalancing:RegisterTargets",
                                "elasticloadbalancing:DeregisterTargets",
                            ],
                            "Resource": sorted(values[:g]),
                        },
                        {
                            "Sid": "ShiftRuleWeights",
                            "Effect": "Allow",
                            "Action": ["elasticloadbalancing:ModifyRule"],
                            "Resource": sorted(values[g : g + r]),
                        },
                        {
                            "Sid": "ShiftListener",
                            "Effect": "Allow",
                            "Action": ["elasticloadbalancing:ModifyListener"],
                            "Resource": sorted(values[g + r :]),
                        },
                    ],
                },
                sort_keys=True,
            )

        self._infrastructure_policy = aws.iam.RolePolicy(
            f"{self._name}-deploy-policy",
            role=role.id,
            policy=pulumi.Output.all(*groups, *rules, *listeners).apply(document),
            opts=self._child(),
        )
        return role

    def _deployment_configuration(self) -> aws.ecs.ServiceDeploymentConfigurationArgs:
        strategy = self._strategy()
        rollout = self._args.rollout
        if strategy == "ROLLING" or rollout is None:
            return aws.ecs.ServiceDeploymentConfigurationArgs(strategy="ROLLING")
        return aws.ecs.ServiceDeploymentConfigurationArgs(
            strategy=strategy,
            bake_time_in_minutes=str(rollout.bake_time_minutes),
            canary_configuration=(
                aws.ecs.ServiceDeploymentConfigurationCanaryConfigurationArgs(
                    canary_percent=rollout.canary_percent,
                    canary_bake_time_in_minutes=str(rollout.canary_bake_time_minutes),
                )
                if strategy == "CANARY"
                else None
            ),
            linear_configuration=(
                aws.ecs.ServiceDeploymentConfigurationLinearConfigurationArgs(
                    step_percent=rollout.linear_step_percent,
                    step_bake_time_in_minutes=str(rollout.linear_step_bake_time_minutes),
                )
                if strategy == "LINEAR"
                else None
            ),
        )

    def _service(self, rules: Sequence[aws.lb.ListenerRule], deployment_alarms: Sequence[pulumi.Output[str]]) -> None:
        name, args = self._name, self._args
        mesh = args.mesh or MeshAttachment()
        role = self._infrastructure_role() if self._alternate_groups else None
        load_balancers = [
            aws.ecs.ServiceLoadBalancerArgs(
                target_group_arn=target_group.arn,
                container_name=(args.alb.target_container_name if args.alb else None) or APP_CONTAINER,
                container_port=self._target_port(),
                advanced_configuration=(
                    aws.ecs.ServiceLoadBalancerAdvancedConfigurationArgs(
                        alternate_target_group_arn=self._alternate_groups[key].arn,
                        production_listener_rule=self._production_rules[key].arn,
                        test_listener_rule=self._test_rules[key].arn,
                        role_arn=role.arn,
                    )
                    if role is not None
                    else None
                ),
            )
            for key, (_, target_group) in self._target_groups.items()
        ] or None
        rollback_on_alarms = args.rollout is not None and args.rollout.alarm_rollback and deployment_alarms
        # Tasks must not start before their permissions exist, and a target group must belong to a
        # listener (through a rule) before ECS can register tasks in it.
        needs: list[pulumi.Resource] = [self._execution_policy, *rules]
        if role is not None:
            needs.append(self._infrastructure_policy)
        if self._task_policy is not None:
            needs.append(self._task_policy)
        service = aws.ecs.Service(
            f"{name}-service",
            name=name,
            cluster=args.cluster_arn,
            task_definition=self._task.arn,
            desired_count=args.sizing.desired_count,
            capacity_provider_strategies=[
                aws.ecs.ServiceCapacityProviderStrategyArgs(
                    capacity_provider=share.provider, weight=share.weight, base=share.base
                )
                for share in args.runtime.capacity
            ],
            platform_version="LATEST",
            # ECS documents both failure detections (circuit breaker, alarms) for rolling and
            # blue/green under the ECS controller (developer guide, "deployment failure detection").
            deployment_circuit_breaker=aws.ecs.ServiceDeploymentCircuitBreakerArgs(enable=True, rollback=True),
            deployment_configuration=self._deployment_configuration() if args.rollout is not None else None,
            alarms=(
                aws.ecs.ServiceAlarmsArgs(alarm_names=list(deployment_alarms), enable=True, rollback=True)
                if rollback_on_alarms
                else None
            ),
            deployment_minimum_healthy_percent=100,
            deployment_maximum_percent=200,
            health_check_grace_period_seconds=HEALTH_CHECK_GRACE_SECONDS if load_balancers else None,
            enable_execute_command=args.runtime.execute_command,
            enable_ecs_managed_tags=True,
            propagate_tags="SERVICE",
            availability_zone_rebalancing="ENABLED",
            network_configuration=aws.ecs.ServiceNetworkConfigurationArgs(
                subnets=args.private_subnet_ids,
                security_groups=[self.security_group_id],
                assign_public_ip=False,
            ),
            load_balancers=load_balancers,
            service_registries=(
                aws.ecs.ServiceServiceRegistriesArgs(registry_arn=mesh.registry_arn)
                if mesh.registry_arn is not None
                else None
            ),
            force_new_deployment=True if mesh.redeploy_triggers else None,
            triggers=dict(mesh.redeploy_triggers) or None,
            tags=self._tags,
            # Autoscaling owns the running count after creation; the service name is fixed, so a
            # replacement must delete the old service first.
            opts=self._child(depends_on=needs, ignore_changes=["desiredCount"], delete_before_replace=True),
        )
        self.service_name = service.name
        self.service_arn = service.id

    # --- scaling and alarms -------------------------------------------------------------------

    def _autoscaling(self) -> None:
        name, args = self._name, self._args
        sizing = args.sizing
        resource_id = pulumi.Output.concat("service/", args.cluster_name, "/", self.service_name)
        target = aws.appautoscaling.Target(
            f"{name}-scaling",
            service_namespace="ecs",
            scalable_dimension="ecs:service:DesiredCount",
            resource_id=resource_id,
            min_capacity=sizing.min_count,
            max_capacity=sizing.max_count,
            tags=self._tags,
            opts=self._child(),
        )
        policies: list[tuple[str, str, int, pulumi.Input[str] | None]] = [
            ("cpu", "ECSServiceAverageCPUUtilization", sizing.cpu_target_percent, None),
            ("memory", "ECSServiceAverageMemoryUtilization", MEMORY_TARGET_PERCENT, None),
        ]
        for key, (listener, target_group) in self._target_groups.items():
            lb_label: pulumi.Output[str]
            # Resource label: `app/<alb>/<id>/targetgroup/<tg>/<id>` (the two ARN suffixes joined by `/`).
            lb_label = pulumi.Output.concat(listener.alb_arn_suffix, "/", target_group.arn_suffix)
            requests = args.alb.requests_per_target if args.alb else DEFAULT_REQUESTS_PER_TARGET
            policies.append((f"{key}-requests", "ALBRequestCountPerTarget", requests, lb_label))
        for suffix, metric, value, label in policies:
            aws.appautoscaling.Policy(
                f"{name}-{suffix}-scaling",
                policy_type="TargetTrackingScaling",
                service_namespace=target.service_namespace,
                scalable_dimension=target.scalable_dimension,
                resource_id=target.resource_id,
                target_tracking_scaling_policy_configuration=aws.appautoscaling.PolicyTargetTrackingScalingPolicyConfigurationArgs(
                    target_value=float(value),
                    predefined_metric_specification=aws.appautoscaling.PolicyTargetTrackingScalingPolicyConfigurationPredefinedMetricSpecificationArgs(
                        predefined_metric_type=metric, resource_label=label
                    ),
                    scale_in_cooldown=300,
                    scale_out_cooldown=60,
                ),
                opts=self._child(),
            )

    def _alarm(self, suffix: str, description: str, **kwargs: Any) -> aws.cloudwatch.MetricAlarm:
        topic = self._args.alarm_topic_arn
        actions = [topic] if topic is not None else []
        return aws.cloudwatch.MetricAlarm(
            f"{self._name}-{suffix}",
            name=f"{self._name}-{suffix}",
            alarm_description=description,
            alarm_actions=actions,
            ok_actions=actions,
            tags=self._tags,
            opts=self._child(),
            **kwargs,
        )

    def _load_balancer_alarms(self) -> list[pulumi.Output[str]]:
        """Per edge listener, the service's own 5xx-rate and p99-latency alarms (the ones a deployment
        rolls back on). With an alternate target group they watch both groups: after a blue/green swap
        the new revision serves from either."""
        args = self._args
        names: list[pulumi.Output[str]] = []
        for key, (listener, target_group) in self._target_groups.items():
            groups = [target_group, *([self._alternate_groups[key]] if key in self._alternate_groups else [])]
            dims = [{"TargetGroup": tg.arn_suffix, "LoadBalancer": listener.alb_arn_suffix} for tg in groups]
            single = len(dims) == 1
            errors = ["errors"] if single else [f"errors{i}" for i in range(len(dims))]
            requests = ["requests"] if single else [f"requests{i}" for i in range(len(dims))]
            rate = aws.cloudwatch.MetricAlarmMetricQueryArgs(
                id="rate",
                expression=(
                    f"100 * ({' + '.join(f'FILL({e}, 0)' for e in errors)}) / "
                    f"MAX([1, {' + '.join(f'FILL({r}, 0)' for r in requests)}])"
                    if not single
                    else "100 * FILL(errors, 0) / FILL(requests, 1)"
                ),
                label="5xx rate (%)",
                return_data=True,
            )
            error_alarm = self._alarm(
                f"{key}-5xx-rate",
                f"{args.spec.name} via the {key} ALB: more than {ERROR_RATE_ALARM_PERCENT}% of requests "
                "answered 5xx by the targets",
                metric_queries=[
                    *(
                        _metric_query(e, "AWS/ApplicationELB", "HTTPCode_Target_5XX_Count", "Sum", d)
                        for e, d in zip(errors, dims, strict=True)
                    ),
                    *(
                        _metric_query(r, "AWS/ApplicationELB", "RequestCount", "Sum", d)
                        for r, d in zip(requests, dims, strict=True)
                    ),
                    rate,
                ],
                evaluation_periods=5,
                datapoints_to_alarm=3,
                threshold=float(ERROR_RATE_ALARM_PERCENT),
                comparison_operator="GreaterThanThreshold",
                treat_missing_data="notBreaching",
            )
            description = (
                f"{args.spec.name} via the {key} ALB: p99 target response time above {LATENCY_P99_ALARM_SECONDS}s"
            )
            common: dict[str, Any] = {
                "evaluation_periods": 5,
                "datapoints_to_alarm": 3,
                "threshold": LATENCY_P99_ALARM_SECONDS,
                "comparison_operator": "GreaterThanThreshold",
                "treat_missing_data": "notBreaching",
            }
            if len(dims) == 1:
                latency_alarm = self._alarm(
                    f"{key}-latency-p99",
                    description,
                    namespace="AWS/ApplicationELB",
                    metric_name="TargetResponseTime",
                    dimensions=dims[0],
                    extended_statistic="p99",
                    period=60,
                    **common,
                )
            else:
                latencies = [f"p99_{i}" for i in range(len(dims))]
                latency_alarm = self._alarm(
                    f"{key}-latency-p99",
                    description,
                    metric_queries=[
                        *(
                            _metric_query(q, "AWS/ApplicationELB", "TargetResponseTime", "p99", d)
                            for q, d in zip(latencies, dims, strict=True)
                        ),
                        aws.cloudwatch.MetricAlarmMetricQueryArgs(
                            id="worst",
                            expression=f"MAX([{', '.join(f'FILL({q}, 0)' for q in latencies)}])",
                            label="p99 target response time (s), worst target group",
                            return_data=True,
                        ),
                    ],
                    **common,
                )
            names += [error_alarm.name, latency_alarm.name]
        return names

    def _tasks_alarm(self) -> list[pulumi.Output[str]]:
        """Fewer running tasks than desired (Container Insights). Declared before the service, so the
        dimensions name the service by its fixed name; a service without a load balancer rolls back on it."""
        args = self._args
        service_dims = {"ClusterName": args.cluster_name, "ServiceName": self._name}
        if not args.runtime.container_insights:
            return []
        alarm = self._alarm(
            "tasks-below-desired",
            f"{args.spec.name}: fewer running tasks than desired for 5 minutes (crash loop, capacity, image pull)",
            metric_queries=[
                _metric_query("running", "ECS/ContainerInsights", "RunningTaskCount", "Minimum", service_dims),
                _metric_query("desired", "ECS/ContainerInsights", "DesiredTaskCount", "Maximum", service_dims),
                aws.cloudwatch.MetricAlarmMetricQueryArgs(
                    id="missing", expression="desired - running", label="Tasks missing", return_data=True
                ),
            ],
            evaluation_periods=5,
            datapoints_to_alarm=5,
            threshold=0.0,
            comparison_operator="GreaterThanThreshold",
            treat_missing_data="missing",
        )
        return [alarm.name]

    def _alarms(self) -> None:
        args = self._args
        service_dims = {"ClusterName": args.cluster_name, "ServiceName": self.service_name}
        for suffix, metric, threshold in (
            ("cpu-high", "CPUUtilization", CPU_ALARM_PERCENT),
            ("memory-high", "MemoryUtilization", MEMORY_ALARM_PERCENT),
        ):
            self._alarm(
                suffix,
                f"{args.spec.name}: average {metric} above {threshold}% for 5 minutes (scaling is not keeping up)",
                namespace="AWS/ECS",
                metric_name=metric,
                dimensions=service_dims,
                statistic="Average",
                period=60,
                evaluation_periods=5,
                datapoints_to_alarm=5,
                threshold=float(threshold),
                comparison_operator="GreaterThanThreshold",
                treat_missing_data="missing",
            )


def _forward(primary: aws.lb.TargetGroup, alternate: aws.lb.TargetGroup | None) -> aws.lb.ListenerRuleActionArgs:
    """Forward to the service's group; with an alternate group, to both at weights 100/0 (ECS shifts them)."""
    if alternate is None:
        return aws.lb.ListenerRuleActionArgs(type="forward", target_group_arn=primary.arn)
    return aws.lb.ListenerRuleActionArgs(
        type="forward",
        forward=aws.lb.ListenerRuleActionForwardArgs(
            target_groups=[
                aws.lb.ListenerRuleActionForwardTargetGroupArgs(arn=primary.arn, weight=100),
                aws.lb.ListenerRuleActionForwardTargetGroupArgs(arn=alternate.arn, weight=0),
            ]
        ),
    )


def _metric_query(
    query_id: str, namespace: str, metric: str, stat: str, dimensions: Mapping[str, pulumi.Input[str]]
) -> aws.cloudwatch.MetricAlarmMetricQueryArgs:
    return aws.cloudwatch.MetricAlarmMetricQueryArgs(
        id=query_id,
        return_data=False,
        metric=aws.cloudwatch.MetricAlarmMetricQueryMetricArgs(
            namespace=namespace, metric_name=metric, stat=stat, period=60, dimensions=dict(dimensions)
        ),
    )


def _validate(args: FargateMicroserviceArgs) -> None:
    """Programming errors in how a component is wired (config errors are caught in PlatformInputs.resolve)."""
    spec = args.spec
    if spec.kind != "fargate":
        raise ValueError(f"{spec.name}: FargateMicroservice needs a spec of kind 'fargate', got {spec.kind!r}")
    if not args.sizing.image and args.image is None:
        raise ValueError(f"{spec.name}: sizing.image is not set (and no built image was given)")
    if args.alb is not None:
        if not spec.public_paths:
            raise ValueError(f"{spec.name}: an AlbAttachment was given but the spec has no public_paths")
        missing = [p for p in spec.public_paths if p.rstrip("/") not in args.alb.rule_priorities]
        if missing:
            raise ValueError(f"{spec.name}: AlbAttachment.rule_priorities has no priority for {missing[0]}")
        keys = [listener.key for listener in args.alb.listeners]
        if len(set(keys)) != len(keys) or not keys:
            raise ValueError(f"{spec.name}: AlbAttachment.listeners need distinct keys, got {keys}")
    names = [APP_CONTAINER, XRAY_CONTAINER]
    for sidecar in args.mesh.sidecars if args.mesh else ():
        sidecar_name = sidecar.get("name")
        if not isinstance(sidecar_name, str) or not sidecar_name:
            raise ValueError(f"{spec.name}: every mesh sidecar needs a plain string 'name'")
        if "healthCheck" not in sidecar:
            raise ValueError(
                f"{spec.name}: mesh sidecar {sidecar_name!r} needs a healthCheck (the app waits for HEALTHY)"
            )
        if sidecar_name in names:
            raise ValueError(f"{spec.name}: container name {sidecar_name!r} is used twice")
        names.append(sidecar_name)
