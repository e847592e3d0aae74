"""LambdaService: one `kind="lambda"` service and everything it owns, built from its spec alone.

Any Lambda spec (`services/<name>/service.py` with `kind="lambda"`) becomes one of these through the
`lambda` builder (`components/platform.py`): its own function, execution role, log group and the
queue where failed direct invocations end up. The EventBus owns the queue that feeds it (for `queue`
subscriptions) and the notification topic (for specs that `notify`), and passes their ARNs in;
`components.wiring.FunctionRoutes` points the bus's `direct` rules at it. The role can do exactly what
the spec declares and nothing else: write to its own log group, consume its own queue, send to its
failure queue, publish to the topic (`notify`), put its own events on the bus (`publishes`), read and
write its own DynamoDB tables (`data_stores`), use the platform key for those, and send X-Ray traces.

Packaging. The code is the spec's folder (`code_dir`, default `services/<name>/`) as it is, plus the
shared `contracts/` package beside the handler: no build step and no layer, so a handler imports only
the standard library, boto3 and `contracts` (`contracts` ships a small, dependency-free JSON Schema
validator instead of `jsonschema`, which the Lambda runtime does not include and whose `rpds-py`
dependency is a compiled extension that would have to be built for arm64). The archive is the
folder minus tests, caches and the infrastructure-only `service.py` / `__init__.py`, with the handler
at the archive root (`handler.handle`).

Type token. `microservices:notification:NotificationFunction` (and this module's name) predate the
generic builder: it was the notification function's component. A type token is part of every child's
URN, and the log group and failure queue hold data, so the token stays.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import pulumi
import pulumi_aws as aws

import contracts
from components.context import PlatformContext
from components.datastores import DataStoreArgs, DynamoTable
from components.events import DLQ_RETENTION_SECONDS, KMS_DATA_KEY_REUSE_SECONDS
from components.iam import Statement, allow, deny_insecure_transport, policy_document
from model.config import DataConfig
from model.spec import DynamoStore, ServiceSpec

REPO_ROOT = Path(__file__).resolve().parent.parent
CODE_DIR = REPO_ROOT / "services" / "notification"
"""The notification function's code folder (what its spec's default `code_dir` resolves to)."""
CONTRACTS_DIR = Path(contracts.__file__).resolve().parent
"""The shared event contracts package, shipped in every function's archive as `contracts/`."""
HANDLER = "handler.handle"
RUNTIME = "python3.12"

_NOT_SHIPPED_DIRS = frozenset({"tests", "__pycache__", ".pytest_cache", ".mypy_cache"})
_NOT_SHIPPED_FILES = frozenset({"service.py", "__init__.py", "conftest.py"})
"""`service.py` is the infrastructure spec (imports `model.spec`, which the Lambda does not have);
`__init__.py` only makes the directory a package for the repo's tests and tools."""


@dataclass(frozen=True)
class LambdaSettings:
    """Sizing and delivery tuning of the function for one environment."""

    memory_mb: int = 256
    timeout_seconds: int = 30
    reserved_concurrency: int = 5
    """Caps the function (protects SNS and the account's concurrency pool); dev stays small."""
    batch_size: int = 10
    batching_window_seconds: int = 5
    queue_max_concurrency: int = 2
    """Concurrent invocations the SQS poller may use (AWS minimum 2); kept below the reserved
    concurrency so direct EventBridge invocations are not throttled by a queue backlog."""
    async_retry_attempts: int = 2
    async_max_event_age_seconds: int = 3600
    log_level: Literal["DEBUG", "INFO"] = "INFO"

    def __post_init__(self) -> None:
        if not 2 <= self.queue_max_concurrency < self.reserved_concurrency:
            raise ValueError(
                f"queue_max_concurrency must be at least 2 and below reserved_concurrency "
                f"({self.reserved_concurrency}), got {self.queue_max_concurrency}"
            )

    @property
    def queue_visibility_timeout_seconds(self) -> int:
        """AWS guidance for an SQS event source: at least 6x the function timeout plus the batching
        window, so a message being retried by the poller is not handed out again meanwhile."""
        return 6 * self.timeout_seconds + self.batching_window_seconds

    @classmethod
    def for_environment(cls, environment: str) -> LambdaSettings:
        if environment == "prod":
            return cls(reserved_concurrency=50, queue_max_concurrency=20, memory_mb=512)
        if environment == "staging":
            return cls(reserved_concurrency=10, queue_max_concurrency=5)
        return cls(reserved_concurrency=5, queue_max_concurrency=2, log_level="DEBUG")


@dataclass(frozen=True)
class LambdaServiceArgs:
    spec: ServiceSpec
    settings: LambdaSettings
    queue_arn: pulumi.Input[str] | None
    """The function's own queue (EventBus.queue_arn_for); required when the spec has `queue` delivery."""
    topic_arn: pulumi.Input[str] | None
    """The notification topic; required when the spec `notify`s (the role may publish to it), else None."""
    log_retention_days: int
    tracing: bool
    code_dir: Path | None = None
    """The function's code folder (with `handler.py`); default: the spec's `code_dir`, else `services/<name>/`."""
    publish_bus_arn: pulumi.Input[str] | None = None
    """The event bus, for a spec that `publishes` (the role may put exactly its own events there)."""
    data: DataConfig | None = None
    """Protection and deletion settings of the DynamoDB tables it owns (`data_stores`); required if it has any."""
    extra_statements: Sequence[Statement] = ()
    """More identity-policy statements on exact ARNs, in the same second policy as its tables' grants."""
    environment: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)
    """More plain environment variables (e.g. the bus name). Never credentials."""
    traffic_shift: str | None = None
    """CodeDeploy Lambda configuration (`canary10Percent5Minutes`, ..., see `config.LambdaTrafficShift`).
    Set: the function publishes versions, callers invoke the `live` alias, and CodeDeploy shifts that
    alias to a new version gradually, rolling back when the alias's error alarm fires. None: callers
    invoke `$LATEST` (the function alone, as in unit tests of the handler wiring)."""

    @property
    def resolved_code_dir(self) -> Path:
        if self.code_dir is not None:
            return self.code_dir
        return REPO_ROOT / (self.spec.code_dir or f"services/{self.spec.name}")


ALIAS_NAME = "live"
"""The alias every trigger invokes; CodeDeploy moves it from version to version."""
ALIAS_ERRORS_ALARM_THRESHOLD = 0
"""Any error of the alias in a minute, twice in a row, stops the traffic shift and rolls back."""


def codedeploy_config_name(traffic_shift: str) -> str:
    """`canary10Percent5Minutes` -> `CodeDeployDefault.LambdaCanary10Percent5Minutes` (CodeDeploy's
    predefined Lambda deployment configurations)."""
    return f"CodeDeployDefault.Lambda{traffic_shift[0].upper()}{traffic_shift[1:]}"


def code_assets(code_dir: Path) -> dict[str, pulumi.Asset | pulumi.Archive]:
    """The files of the deployment package, by their path inside the archive: the function's own code
    folder at the root, and the shared `contracts/` package beside it (what `import contracts` finds)."""
    if not (code_dir / "handler.py").is_file():
        raise ValueError(f"LambdaService: no handler.py in {code_dir} (entry point {HANDLER!r})")
    assets = _folder_assets(code_dir, skip_root_files=_NOT_SHIPPED_FILES)
    shared = _folder_assets(CONTRACTS_DIR, skip_root_files=frozenset())
    clash = sorted(set(assets) & {f"contracts/{p}" for p in shared})
    if clash or (code_dir / "contracts.py").exists():
        raise ValueError(
            f"LambdaService: {code_dir} has its own contracts module; the shared package ships as contracts/"
        )
    assets.update({f"contracts/{p}": a for p, a in shared.items()})
    return assets


def _folder_assets(folder: Path, *, skip_root_files: frozenset[str]) -> dict[str, pulumi.Asset | pulumi.Archive]:
    assets: dict[str, pulumi.Asset | pulumi.Archive] = {}
    for path in sorted(folder.rglob("*")):
        relative = path.relative_to(folder)
        if not path.is_file() or _NOT_SHIPPED_DIRS.intersection(relative.parts[:-1]):
            continue
        if relative.name in skip_root_files and len(relative.parts) == 1:
            continue
        if path.suffix in (".pyc", ".pyo") or relative.name.startswith("test_"):
            continue
        # Relative to the program's directory where possible, so the state does not record this
        # machine's absolute paths (assets are compared by content hash either way).
        try:
            location = os.path.relpath(path)
        except ValueError:
            location = str(path)
        assets[relative.as_posix()] = pulumi.FileAsset(location)
    return assets


def role_policy(
    *,
    log_group_arn: str,
    topic_arn: str | None,
    queue_arn: str | None,
    failure_queue_arn: str,
    kms_key_arn: str,
    tracing: bool,
) -> str:
    """The execution role's only permissions, each on the exact ARN it needs."""
    statements: list[dict[str, Any]] = [
        {
            "Sid": "WriteOwnLogs",
            "Effect": "Allow",
            "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
            "Resource": f"{log_group_arn}:*",
        },
        {
            "Sid": "RecordFailedInvocations",
            "Effect": "Allow",
            "Action": "sqs:SendMessage",
            "Resource": failure_queue_arn,
        },
        {
            # Decrypt: its environment, messages received from its queue. GenerateDataKey: messages
            # it publishes to the KMS-encrypted topic and sends to the failure queue.
            "Sid": "UsePlatformKey",
            "Effect": "Allow",
            "Action": ["kms:Decrypt", "kms:GenerateDataKey"],
            "Resource": kms_key_arn,
        },
    ]
    if topic_arn is not None:
        statements.insert(
            1, {"Sid": "PublishNotifications", "Effect": "Allow", "Action": "sns:Publish", "Resource": topic_arn}
        )
    if queue_arn is not None:
        statements.insert(
            1 + (topic_arn is not None),
            {
                "Sid": "ConsumeOwnQueue",
                "Effect": "Allow",
                "Action": ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"],
                "Resource": queue_arn,
            },
        )
    if tracing:
        # X-Ray has no resource-level permissions for these two actions: `*` is the only valid
        # resource (it is what AWSXRayDaemonWriteAccess grants).
        statements.append(
            {
                "Sid": "SendTraces",
                "Effect": "Allow",
                "Action": ["xray:PutTraceSegments", "xray:PutTelemetryRecords"],
                "Resource": "*",
            }
        )
    return json.dumps({"Version": "2012-10-17", "Statement": statements})


class LambdaService(pulumi.ComponentResource):
    spec: ServiceSpec
    function_arn: pulumi.Output[str]
    function_name: pulumi.Output[str]
    invoke_arn: pulumi.Output[str]
    """What triggers invoke: the `live` alias's ARN with a traffic shift, else the function's."""
    invoke_qualifier: str | None
    """`live` with a traffic shift (for lambda:InvokeFunction permissions), else None."""
    deployment: dict[str, pulumi.Input[str]] | None
    """What the deploy workflow needs to start a CodeDeploy deployment; None without a traffic shift."""
    role_arn: pulumi.Output[str]
    log_group_name: pulumi.Output[str]
    failure_queue_arn: pulumi.Output[str]
    failure_queue_name: pulumi.Output[str]

    def __init__(
        self,
        name: str,
        args: LambdaServiceArgs,
        context: PlatformContext,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("microservices:notification:NotificationFunction", name, None, opts)
        self._name = name
        self._args = args
        self._context = context
        spec = args.spec
        self.spec = spec
        if spec.kind != "lambda":
            raise ValueError(f"LambdaService: spec {spec.name!r} is a {spec.kind} service, not a Lambda")
        has_queue = any(s.delivery == "queue" for s in spec.subscribes)
        if has_queue != (args.queue_arn is not None):
            raise ValueError(
                f"LambdaService: spec {spec.name!r} "
                + ("subscribes with `queue` delivery: pass queue_arn" if has_queue else "has no queue: omit queue_arn")
            )
        if spec.notifies != (args.topic_arn is not None):
            raise ValueError(
                f"LambdaService: spec {spec.name!r} "
                + ("notifies: pass topic_arn" if spec.notifies else "does not notify: omit topic_arn")
            )
        if bool(spec.publishes) != (args.publish_bus_arn is not None):
            raise ValueError(
                f"LambdaService: spec {spec.name!r} "
                + (
                    "publishes events: pass publish_bus_arn"
                    if spec.publishes
                    else "publishes nothing: omit publish_bus_arn"
                )
            )
        self._tags = context.with_tags(Service=spec.name)
        child = pulumi.ResourceOptions(parent=self)

        log_group = aws.cloudwatch.LogGroup(
            f"{name}-logs",
            name=f"/microservices/lambda/{name}",
            retention_in_days=args.log_retention_days,
            kms_key_id=context.key_arn,
            tags=self._tags,
            opts=child,
        )
        failure_queue = self._failure_queue()
        self.stores = self._data_stores()
        role, policy = self._role(log_group, failure_queue)
        grants = self._grants(role)
        function = self._function(role, policy, log_group, grants)
        self.invoke_arn = function.arn
        self.invoke_qualifier = None
        self.deployment = None
        if args.traffic_shift is not None:
            self._gradual_deployment(function)
        self._triggers(function, policy, failure_queue)

        self.function_arn = function.arn
        self.function_name = function.name
        self.role_arn = role.arn
        self.log_group_name = log_group.name
        self.failure_queue_arn = failure_queue.arn
        self.failure_queue_name = failure_queue.name
        self.register_outputs(
            {
                "functionArn": self.function_arn,
                "functionName": self.function_name,
                "invokeArn": self.invoke_arn,
                "roleArn": self.role_arn,
                "logGroupName": self.log_group_name,
                "failureQueueArn": self.failure_queue_arn,
            }
        )

    def _gradual_deployment(self, function: aws.lambda_.Function) -> None:
        """The `live` alias, its error alarm and a CodeDeploy deployment group that shifts it.

        AWS documents gradual Lambda deployments through CodeDeploy (AppSpec `CurrentVersion` ->
        `TargetVersion` on an alias, a predefined `CodeDeployDefault.Lambda*` configuration, alarm
        rollback): https://docs.aws.amazon.com/codedeploy/latest/userguide/deployment-steps-lambda.html.
        Pulumi publishes each new version and creates the alias once; after that CodeDeploy owns the
        alias (Pulumi ignores its version and routing), and the deploy workflow starts the deployment
        from the stack output `notificationDeployment` (see .github/workflows/deploy.yml)."""
        args = self._args
        assert args.traffic_shift is not None
        child = pulumi.ResourceOptions(parent=self)
        alias = aws.lambda_.Alias(
            f"{self._name}-live",
            name=ALIAS_NAME,
            description="Production traffic; CodeDeploy shifts it between versions",
            function_name=function.name,
            function_version=function.version,
            opts=pulumi.ResourceOptions(parent=self, ignore_changes=["functionVersion", "routingConfig"]),
        )
        alarm = aws.cloudwatch.MetricAlarm(
            f"{self._name}-live-errors",
            name=f"{self._name}-live-errors",
            alarm_description=f"{args.spec.name}: errors of the {ALIAS_NAME} alias (rolls a traffic shift back)",
            namespace="AWS/Lambda",
            metric_name="Errors",
            dimensions={
                "FunctionName": function.name,
                "Resource": pulumi.Output.concat(function.name, ":", ALIAS_NAME),
            },
            statistic="Sum",
            period=60,
            evaluation_periods=2,
            datapoints_to_alarm=2,
            threshold=float(ALIAS_ERRORS_ALARM_THRESHOLD),
            comparison_operator="GreaterThanThreshold",
            treat_missing_data="notBreaching",
            tags=self._tags,
            opts=child,
        )
        role = aws.iam.Role(
            f"{self._name}-deploy-role",
            description=f"CodeDeploy shifts the {ALIAS_NAME} alias of the {args.spec.name} Lambda",
            assume_role_policy=self._context.trust_policy("codedeploy.amazonaws.com"),
            tags=self._tags,
            opts=child,
        )
        # The actions of AWS's AWSCodeDeployRoleForLambdaLimited, scoped to this function and alarm
        # (the managed policy grants them on "*").
        policy = aws.iam.RolePolicy(
            f"{self._name}-deploy-policy",
            role=role.id,
            policy=pulumi.Output.all(function.arn, alarm.arn).apply(
                lambda values: json.dumps(
                    {
                        "Version": "2012-10-17",
                        "Statement": [
                            {
                                "Sid": "ShiftAlias",
                                "Effect": "Allow",
                                "Action": [
                                    "lambda:GetAlias",
                                    "lambda:UpdateAlias",
                                    "lambda:GetProvisionedConcurrencyConfig",
                                ],
                                "Resource": [values[0], f"{values[0]}:*"],
                            },
                            {
                                "Sid": "WatchAlarm",
                                "Effect": "Allow",
                                "Action": "cloudwatch:DescribeAlarms",
                                "Resource": values[1],
                            },
                        ],
                    }
                )
            ),
            opts=child,
        )
        application = aws.codedeploy.Application(
            f"{self._name}-deploy", compute_platform="Lambda", tags=self._tags, opts=child
        )
        group = aws.codedeploy.DeploymentGroup(
            f"{self._name}-deploy-group",
            app_name=application.name,
            deployment_group_name=f"{self._name}-{ALIAS_NAME}",
            service_role_arn=role.arn,
            deployment_config_name=codedeploy_config_name(args.traffic_shift),
            deployment_style=aws.codedeploy.DeploymentGroupDeploymentStyleArgs(
                deployment_option="WITH_TRAFFIC_CONTROL", deployment_type="BLUE_GREEN"
            ),
            alarm_configuration=aws.codedeploy.DeploymentGroupAlarmConfigurationArgs(alarms=[alarm.name], enabled=True),
            auto_rollback_configuration=aws.codedeploy.DeploymentGroupAutoRollbackConfigurationArgs(
                enabled=True, events=["DEPLOYMENT_FAILURE", "DEPLOYMENT_STOP_ON_ALARM"]
            ),
            tags=self._tags,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[policy]),
        )
        self.invoke_arn = alias.arn
        self.invoke_qualifier = ALIAS_NAME
        self.deployment = {
            "application": application.name,
            "deploymentGroup": group.deployment_group_name,
            "functionName": function.name,
            "alias": ALIAS_NAME,
            "targetVersion": function.version,
            "config": codedeploy_config_name(args.traffic_shift),
        }

    def _failure_queue(self) -> aws.sqs.Queue:
        """Where Lambda puts direct (asynchronous) invocations that still fail after its retries."""
        queue = aws.sqs.Queue(
            f"{self._name}-failures-dlq",
            kms_master_key_id=self._context.key_arn,
            kms_data_key_reuse_period_seconds=KMS_DATA_KEY_REUSE_SECONDS,
            message_retention_seconds=DLQ_RETENTION_SECONDS,
            tags={**self._tags, "QueueRole": "dead-letter"},
            opts=pulumi.ResourceOptions(parent=self),
        )
        aws.sqs.QueuePolicy(
            f"{self._name}-failures-dlq-policy",
            queue_url=queue.url,
            policy=queue.arn.apply(
                lambda arn: json.dumps({"Version": "2012-10-17", "Statement": [deny_insecure_transport(arn, "sqs:*")]})
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
        return queue

    def _role(
        self, log_group: aws.cloudwatch.LogGroup, failure_queue: aws.sqs.Queue
    ) -> tuple[aws.iam.Role, aws.iam.RolePolicy]:
        args, ctx = self._args, self._context
        role = aws.iam.Role(
            f"{self._name}-role",
            description=f"Execution role of the {args.spec.name} Lambda",
            assume_role_policy=ctx.trust_policy("lambda.amazonaws.com"),
            tags=self._tags,
            opts=pulumi.ResourceOptions(parent=self),
        )
        inputs: list[pulumi.Input[str]] = [log_group.arn, failure_queue.arn, ctx.key_arn]
        topic_arn: pulumi.Input[str] = args.topic_arn if args.topic_arn is not None else ""
        queue_arn: pulumi.Input[str] = args.queue_arn if args.queue_arn is not None else ""

        def render(values: Sequence[str]) -> str:
            log_group_arn, failure_queue_arn, kms_key_arn, topic, queue = values
            return role_policy(
                log_group_arn=log_group_arn,
                topic_arn=topic or None,
                queue_arn=queue or None,
                failure_queue_arn=failure_queue_arn,
                kms_key_arn=kms_key_arn,
                tracing=args.tracing,
            )

        policy = aws.iam.RolePolicy(
            f"{self._name}-policy",
            role=role.id,
            policy=pulumi.Output.all(*inputs, topic_arn, queue_arn).apply(render),
            opts=pulumi.ResourceOptions(parent=self),
        )
        return role, policy

    def _data_stores(self) -> list[DynamoTable]:
        """Its own DynamoDB tables, children of this component (so the table belongs to this service
        and no other: what the policy pack's no-shared-databases checks). Outside the VPC, a table has no
        network boundary; IAM on its exact ARN is its only door."""
        args, ctx = self._args, self._context
        stores = [s for s in args.spec.data_stores if isinstance(s, DynamoStore)]
        if not stores:
            return []
        if args.data is None:
            raise ValueError(f"LambdaService: spec {args.spec.name!r} owns tables: pass `data`")
        data = args.data
        return [
            DynamoTable(
                f"{self._name}-{store.name}",
                store,
                DataStoreArgs(
                    owner=args.spec.name,
                    data=data,
                    log_retention_days=args.log_retention_days,
                ),
                ctx,
                opts=pulumi.ResourceOptions(parent=self),
            )
            for store in stores
        ]

    def _grants(self, role: aws.iam.Role) -> aws.iam.RolePolicy | None:
        """What the spec adds beyond the function's own plumbing: putting its own events on the bus and
        its data stores' grants (exact ARNs), as a second policy. None when the spec asks for neither."""
        args = self._args
        statements: list[Statement] = []
        if args.publish_bus_arn is not None:
            statements.append(
                allow(
                    "PublishOwnEvents",
                    ["events:PutEvents"],
                    [args.publish_bus_arn],
                    {
                        "StringEquals": {
                            "events:source": args.spec.event_source,
                            "events:detail-type": list(args.spec.publishes),
                        }
                    },
                )
            )
        statements += [statement for table in self.stores for statement in table.binding.task_statements]
        statements += args.extra_statements
        if not statements:
            return None
        return aws.iam.RolePolicy(
            f"{self._name}-grants",
            role=role.id,
            policy=policy_document(statements),
            opts=pulumi.ResourceOptions(parent=self),
        )

    def _function(
        self,
        role: aws.iam.Role,
        policy: aws.iam.RolePolicy,
        log_group: aws.cloudwatch.LogGroup,
        grants: aws.iam.RolePolicy | None,
    ) -> aws.lambda_.Function:
        args = self._args
        settings = args.settings
        return aws.lambda_.Function(
            f"{self._name}-function",
            description=args.spec.description,
            role=role.arn,
            runtime=RUNTIME,
            handler=HANDLER,
            architectures=["arm64"],
            code=pulumi.AssetArchive(code_assets(args.resolved_code_dir)),
            memory_size=settings.memory_mb,
            timeout=settings.timeout_seconds,
            reserved_concurrent_executions=settings.reserved_concurrency,
            tracing_config=aws.lambda_.FunctionTracingConfigArgs(mode="Active" if args.tracing else "PassThrough"),
            # The handler writes one JSON object per line with a `level` field; with the JSON log
            # format Lambda filters on it. Its levels are DEBUG/INFO/WARNING/ERROR, and Lambda reads
            # an unknown level ("WARNING") as INFO, so the Lambda-side level is never above INFO
            # (a WARN filter would drop the handler's warnings); LOG_LEVEL filters in the handler.
            logging_config=aws.lambda_.FunctionLoggingConfigArgs(
                log_format="JSON",
                log_group=log_group.name,
                application_log_level=settings.log_level,
                system_log_level="WARN",
            ),
            kms_key_arn=self._context.key_arn,
            publish=args.traffic_shift is not None,
            environment=aws.lambda_.FunctionEnvironmentArgs(
                variables={
                    **({"NOTIFICATION_TOPIC_ARN": args.topic_arn} if args.topic_arn is not None else {}),
                    "LOG_LEVEL": settings.log_level,
                    "POWERTOOLS_SERVICE_NAME": args.spec.name,
                    **{key: value for table in self.stores for key, value in table.binding.environment.items()},
                    **args.environment,
                }
            ),
            tags=self._tags,
            # The role's permissions must exist before the function runs (and before its log group
            # would otherwise be created implicitly by Lambda with no retention or key).
            opts=pulumi.ResourceOptions(
                parent=self, depends_on=[policy, log_group, *([grants] if grants is not None else [])]
            ),
        )

    def _triggers(
        self, function: aws.lambda_.Function, policy: aws.iam.RolePolicy, failure_queue: aws.sqs.Queue
    ) -> None:
        args = self._args
        settings = args.settings
        # Lambda checks the role's permissions when the mapping and the destination are created.
        after_policy = pulumi.ResourceOptions(parent=self, depends_on=[policy])
        if args.queue_arn is not None:
            aws.lambda_.EventSourceMapping(
                f"{self._name}-queue-trigger",
                event_source_arn=args.queue_arn,
                function_name=self.invoke_arn,
                batch_size=settings.batch_size,
                maximum_batching_window_in_seconds=settings.batching_window_seconds,
                # The handler answers with the failed message ids only; without this setting Lambda
                # would ignore that answer and retry (or delete) the whole batch.
                function_response_types=["ReportBatchItemFailures"],
                scaling_config=aws.lambda_.EventSourceMappingScalingConfigArgs(
                    maximum_concurrency=settings.queue_max_concurrency
                ),
                tags=self._tags,
                opts=after_policy,
            )
        # Direct EventBridge invocations are asynchronous: Lambda retries a failure, then records it
        # in the failure queue (the handler raises on a bad event precisely so it lands there).
        aws.lambda_.FunctionEventInvokeConfig(
            f"{self._name}-async",
            function_name=function.name,
            qualifier=self.invoke_qualifier,
            maximum_retry_attempts=settings.async_retry_attempts,
            maximum_event_age_in_seconds=settings.async_max_event_age_seconds,
            destination_config=aws.lambda_.FunctionEventInvokeConfigDestinationConfigArgs(
                on_failure=aws.lambda_.FunctionEventInvokeConfigDestinationConfigOnFailureArgs(
                    destination=failure_queue.arn
                )
            ),
            opts=after_policy,
        )
