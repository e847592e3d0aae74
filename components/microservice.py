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
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import pulumi
import pulumi_aws as aws

from components.cluster import capacity_strategy
from components.config import ComputeConfig, DataConfig, ObservabilityConfig, ServiceSizing
from components.context import PlatformContext
from components.datastores import ContainerSecret, DataStore, DataStoreArgs, StoreBinding, create_store
from components.edge import EdgeAttachment, EdgeListener, path_patterns
from components.iam import Statement, allow, policy_document, trust_policy
from services.spec import ServiceSpec

__all__ = [
    "AlbAttachment",
    "ContainerSecret",
    "FargateMicroservice",
    "FargateMicroserviceArgs",
    "MeshAttachment",
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
WILDCARD_RESOURCE_ACTIONS = frozenset(
    {*XRAY_ACTIONS, *ECS_EXEC_ACTIONS, "ecr:GetAuthorizationToken", "logs:DescribeLogGroups"}
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
class FargateMicroserviceArgs:
    spec: ServiceSpec
    sizing: ServiceSizing
    """Resolved sizing (`PlatformInputs.sizing[name]`); `image` must be set."""
    compute: ComputeConfig
    data: DataConfig
    observability: ObservabilityConfig
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
        self._service(rules)
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
            environment=self._context.environment,
            data=args.data,
            log_retention_days=args.observability.log_retention_days,
            vpc_id=args.vpc_id,
            subnet_ids=args.isolated_subnet_ids,
            owner_security_group_id=self.security_group_id,
            kms_key_arn=self._context.key_arn,
            region=self._context.region,
            tags=self._context.tags,
        )
        return {
            store.name: create_store(f"{self._name}-{store.name}", store, store_args, self._child())
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
            retention_in_days=args.observability.log_retention_days,
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
        return trust_policy(
            "ecs-tasks.amazonaws.com",
            account_id=self._context.account_id,
            region=self._context.region,
            partition=self._context.partition,
        )

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
                    {"StringEquals": {"kms:ViaService": f"secretsmanager.{self._context.region}.amazonaws.com"}},
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
                    {"StringEquals": {"kms:ViaService": f"sqs.{self._context.region}.amazonaws.com"}},
                ),
            ]
        if args.observability.tracing:
            # X-Ray trace and sampling APIs have no resource types: "*" is the only possible resource.
            statements.append(allow("XRayDaemon", XRAY_ACTIONS, ["*"]))
        if args.compute.enable_execute_command:
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
        if args.observability.tracing:
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
        if args.observability.tracing:
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
                cpu_architecture=args.compute.cpu_architecture,
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

    def _routing(self) -> list[aws.lb.ListenerRule]:
        """Per edge listener: a target group and one rule per public path prefix forwarding to it."""
        name, args, spec = self._name, self._args, self._args.spec
        self._target_groups: dict[str, tuple[EdgeListener, aws.lb.TargetGroup]] = {}
        if args.alb is None:
            self.target_group_arns: dict[str, pulumi.Output[str]] = {}
            self.load_balancer_dimensions = {}
            return []
        alb = args.alb
        rules = []
        for listener in alb.listeners:
            target_group = aws.lb.TargetGroup(
                f"{name}-{listener.key}-tg",
                name=target_group_name(
                    self._context.environment, spec.name, listener.key, self._target_port(), alb.target_protocol
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
            self._target_groups[listener.key] = (listener, target_group)
            for prefix in spec.public_paths:
                base = prefix.rstrip("/")
                rules.append(
                    aws.lb.ListenerRule(
                        f"{name}-{listener.key}-route{base.replace('/', '-')}",
                        listener_arn=listener.listener_arn,
                        priority=alb.rule_priorities[base],
                        conditions=[
                            aws.lb.ListenerRuleConditionArgs(
                                path_pattern=aws.lb.ListenerRuleConditionPathPatternArgs(values=path_patterns(base))
                            )
                        ],
                        actions=[aws.lb.ListenerRuleActionArgs(type="forward", target_group_arn=target_group.arn)],
                        tags=self._tags,
                        opts=self._child(),
                    )
                )
        self.target_group_arns = {key: tg.arn for key, (_, tg) in self._target_groups.items()}
        self.load_balancer_dimensions = {
            key: {"TargetGroup": tg.arn_suffix, "LoadBalancer": listener.alb_arn_suffix}
            for key, (listener, tg) in self._target_groups.items()
        }
        return rules

    def _service(self, rules: Sequence[aws.lb.ListenerRule]) -> None:
        name, args = self._name, self._args
        mesh = args.mesh or MeshAttachment()
        load_balancers = [
            aws.ecs.ServiceLoadBalancerArgs(
                target_group_arn=target_group.arn,
                container_name=(args.alb.target_container_name if args.alb else None) or APP_CONTAINER,
                container_port=self._target_port(),
            )
            for _, target_group in self._target_groups.values()
        ] or None
        # Tasks must not start before their permissions exist, and a target group must belong to a
        # listener (through a rule) before ECS can register tasks in it.
        needs: list[pulumi.Resource] = [self._execution_policy, *rules]
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
                    capacity_provider=str(s["capacityProvider"]), weight=int(s["weight"]), base=int(s["base"])
                )
                for s in capacity_strategy(args.compute)
            ],
            platform_version="LATEST",
            deployment_circuit_breaker=aws.ecs.ServiceDeploymentCircuitBreakerArgs(enable=True, rollback=True),
            deployment_minimum_healthy_percent=100,
            deployment_maximum_percent=200,
            health_check_grace_period_seconds=HEALTH_CHECK_GRACE_SECONDS if load_balancers else None,
            enable_execute_command=args.compute.enable_execute_command,
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

    def _alarm(self, suffix: str, description: str, **kwargs: Any) -> None:
        topic = self._args.alarm_topic_arn
        actions = [topic] if topic is not None else []
        aws.cloudwatch.MetricAlarm(
            f"{self._name}-{suffix}",
            name=f"{self._name}-{suffix}",
            alarm_description=description,
            alarm_actions=actions,
            ok_actions=actions,
            tags=self._tags,
            opts=self._child(),
            **kwargs,
        )

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
        if args.compute.container_insights:
            self._alarm(
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
        for key, lb_dims in self.load_balancer_dimensions.items():
            self._alarm(
                f"{key}-5xx-rate",
                f"{args.spec.name} via the {key} ALB: more than {ERROR_RATE_ALARM_PERCENT}% of requests "
                "answered 5xx by the targets",
                metric_queries=[
                    _metric_query("errors", "AWS/ApplicationELB", "HTTPCode_Target_5XX_Count", "Sum", lb_dims),
                    _metric_query("requests", "AWS/ApplicationELB", "RequestCount", "Sum", lb_dims),
                    aws.cloudwatch.MetricAlarmMetricQueryArgs(
                        id="rate",
                        expression="100 * FILL(errors, 0) / FILL(requests, 1)",
                        label="5xx rate (%)",
                        return_data=True,
                    ),
                ],
                evaluation_periods=5,
                datapoints_to_alarm=3,
                threshold=float(ERROR_RATE_ALARM_PERCENT),
                comparison_operator="GreaterThanThreshold",
                treat_missing_data="notBreaching",
            )
            self._alarm(
                f"{key}-latency-p99",
                f"{args.spec.name} via the {key} ALB: p99 target response time above {LATENCY_P99_ALARM_SECONDS}s",
                namespace="AWS/ApplicationELB",
                metric_name="TargetResponseTime",
                dimensions=lb_dims,
                extended_statistic="p99",
                period=60,
                evaluation_periods=5,
                datapoints_to_alarm=3,
                threshold=LATENCY_P99_ALARM_SECONDS,
                comparison_operator="GreaterThanThreshold",
                treat_missing_data="notBreaching",
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
