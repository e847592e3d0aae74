"""ReadModel (seed: CQRS): a table the service owns, kept up to date by a projection from the bus.

    bus rule (one per publisher in `subscribes`) -> the read model's own SQS queue (+ DLQ, KMS, TLS only)
      -> projection Lambda (`services/projections/handler.py`, generic) -> the read model's table

The projection's role may write exactly that table (GetItem/PutItem), consume exactly its queue and
write its own log group. The table itself is one of the service's `DynamoStore`s, declared (and
owned) by its FargateMicroservice like any other store; this component is a child of that service
too, so the policy pack sees the projection's grant as the owner's.

Idempotent and order-tolerant (see `services/projections/handler.py`): applied event ids are kept on
the item, detail-types are ranked by the lifecycle the spec lists, and every write is conditional on
the item's revision (optimistic concurrency), so duplicates and out-of-order deliveries converge.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pulumi
import pulumi_aws as aws

from components.iam import allow, kms_via, policy_document
from components.notification import code_assets
from components.patterns import PatternContext, logged_role, queue_with_dlq, tls_only_queue_policy
from components.patterns.saga import SQS_CONSUMER_ACTIONS
from contracts import event_pattern
from model.spec import ReadModel as ReadModelSpec

CODE_DIR = Path(__file__).resolve().parent.parent.parent / "services" / "projections"
HANDLER = "handler.handle"
RUNTIME = "python3.12"
TIMEOUT_SECONDS = 30
MEMORY_MB = 256
BATCH_SIZE = 10
BATCHING_WINDOW_SECONDS = 2
MAX_CONCURRENCY = 2
"""SQS pollers (AWS minimum 2): projections are cheap and ordered enough at this rate."""
RESERVED_CONCURRENCY = 5
VISIBILITY_TIMEOUT_SECONDS = 6 * TIMEOUT_SECONDS + BATCHING_WINDOW_SECONDS
"""AWS guidance for Lambda-fed queues: at least 6x the function timeout plus the batching window."""
QUEUE_RETENTION_SECONDS = 4 * 24 * 3600
TABLE_ACTIONS = ("dynamodb:GetItem", "dynamodb:PutItem")


@dataclass(frozen=True)
class ReadModelArgs:
    service: str
    model: ReadModelSpec
    table_arn: pulumi.Input[str]
    table_name: pulumi.Input[str]
    bus_name: pulumi.Input[str]
    targets_dlq_arn: pulumi.Input[str]
    """The bus's DLQ for rule targets that cannot deliver (EventBridge may send there for this bus's rules)."""
    context: PatternContext


def projection_environment(model: ReadModelSpec) -> dict[str, str]:
    """The projection's configuration, all from the spec (the handler reads nothing else)."""
    return {
        "READ_MODEL": model.name,
        "KEY_FIELDS": ",".join(model.key),
        "COPY_FIELDS": ",".join(model.fields),
        "LIFECYCLE": ",".join(model.lifecycle),
    }


class ReadModel(pulumi.ComponentResource):
    function_name: pulumi.Output[str]
    queue_arn: pulumi.Output[str]
    dlq_name: pulumi.Output[str]
    rule_names: list[pulumi.Output[str]]

    def __init__(self, name: str, args: ReadModelArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("microservices:readmodel:ReadModel", name, None, opts)
        ctx, model = args.context, args.model
        child = pulumi.ResourceOptions(parent=self)
        tags = {**ctx.tags, "Service": args.service, "ReadModel": model.name}

        queue, dlq = queue_with_dlq(
            ctx,
            name,
            queue_name=None,
            retention_seconds=QUEUE_RETENTION_SECONDS,
            visibility_timeout_seconds=VISIBILITY_TIMEOUT_SECONDS,
            tags=tags,
            queue_tags={"QueueRole": "projection"},
            parent=self,
        )
        rules = []
        for sub in model.subscribes:
            rule = aws.cloudwatch.EventRule(
                f"{name}-{sub.source}",
                description=f"{', '.join(sub.detail_types)} from {sub.source} to the {model.name} read model",
                event_bus_name=args.bus_name,
                event_pattern=json.dumps(event_pattern([f"microservices.{sub.source}"], list(sub.detail_types))),
                tags=tags,
                opts=child,
            )
            aws.cloudwatch.EventTarget(
                f"{name}-{sub.source}-target",
                rule=rule.name,
                event_bus_name=args.bus_name,
                arn=queue.arn,
                retry_policy=aws.cloudwatch.EventTargetRetryPolicyArgs(
                    maximum_event_age_in_seconds=3600, maximum_retry_attempts=10
                ),
                dead_letter_config=aws.cloudwatch.EventTargetDeadLetterConfigArgs(arn=args.targets_dlq_arn),
                opts=child,
            )
            rules.append(rule)
        aws.sqs.QueuePolicy(
            f"{name}-queue-policy",
            queue_url=queue.url,
            policy=pulumi.Output.all(queue.arn, *(r.arn for r in rules)).apply(
                lambda v: json.dumps(_queue_policy(v[0], v[1:]))
            ),
            opts=child,
        )
        log_group, role = logged_role(
            ctx,
            name,
            log_group_name=f"/aws/lambda/{ctx.prefix}-{args.service}-{model.name}-projection",
            trusted_service="lambda.amazonaws.com",
            description=f"Projection of the {model.name} read model: its queue in, its table out",
            tags=tags,
            parent=self,
        )
        statements = [
            allow(
                "WriteOwnLogs",
                ["logs:CreateLogStream", "logs:PutLogEvents"],
                [pulumi.Output.concat(log_group.arn, ":*")],
            ),
            allow("ConsumeOwnQueue", SQS_CONSUMER_ACTIONS, [queue.arn]),
            allow("ProjectIntoReadModel", TABLE_ACTIONS, [args.table_arn]),
            allow(
                "UsePlatformKey",
                ["kms:Decrypt", "kms:GenerateDataKey"],
                [ctx.kms_key_arn],
                kms_via(ctx.region, "sqs", "dynamodb", "lambda"),
            ),
        ]
        if ctx.tracing:
            statements.append(allow("SendTraces", ["xray:PutTraceSegments", "xray:PutTelemetryRecords"], ["*"]))
        policy = aws.iam.RolePolicy(f"{name}-policy", role=role.id, policy=policy_document(statements), opts=child)
        function = aws.lambda_.Function(
            f"{name}-projection",
            name=f"{ctx.prefix}-{args.service}-{model.name}-projection",
            description=f"Projection of the {model.name} read model of {args.service}",
            role=role.arn,
            runtime=RUNTIME,
            handler=HANDLER,
            architectures=["arm64"],
            code=pulumi.AssetArchive(code_assets(CODE_DIR)),
            memory_size=MEMORY_MB,
            timeout=TIMEOUT_SECONDS,
            reserved_concurrent_executions=RESERVED_CONCURRENCY,
            tracing_config=aws.lambda_.FunctionTracingConfigArgs(mode="Active" if ctx.tracing else "PassThrough"),
            logging_config=aws.lambda_.FunctionLoggingConfigArgs(
                log_format="JSON", log_group=log_group.name, application_log_level="INFO", system_log_level="WARN"
            ),
            kms_key_arn=ctx.kms_key_arn,
            environment=aws.lambda_.FunctionEnvironmentArgs(
                variables={"TABLE_NAME": args.table_name, **projection_environment(model)}
            ),
            tags=tags,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[policy, log_group]),
        )
        aws.lambda_.EventSourceMapping(
            f"{name}-trigger",
            event_source_arn=queue.arn,
            function_name=function.arn,
            batch_size=BATCH_SIZE,
            maximum_batching_window_in_seconds=BATCHING_WINDOW_SECONDS,
            function_response_types=["ReportBatchItemFailures"],
            scaling_config=aws.lambda_.EventSourceMappingScalingConfigArgs(maximum_concurrency=MAX_CONCURRENCY),
            tags=tags,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[policy]),
        )
        self.function_name = function.name
        self.queue_arn = queue.arn
        self.dlq_name = dlq.name
        self.rule_names = [r.name for r in rules]
        self.register_outputs(
            {"functionName": self.function_name, "queueArn": self.queue_arn, "dlqName": self.dlq_name}
        )


def _queue_policy(queue_arn: str, rule_arns: Sequence[str]) -> dict[str, object]:
    policy = tls_only_queue_policy(queue_arn)
    policy["Statement"].append(
        {
            "Sid": "AllowReadModelRules",
            "Effect": "Allow",
            "Principal": {"Service": "events.amazonaws.com"},
            "Action": "sqs:SendMessage",
            "Resource": queue_arn,
            "Condition": {"ArnEquals": {"aws:SourceArn": sorted(rule_arns)}},
        }
    )
    return policy
