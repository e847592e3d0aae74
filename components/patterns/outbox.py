"""Outbox (seed: Event Sourcing; AWS Prescriptive Guidance "transactional outbox"): a service's own
DynamoDB table stream -> an EventBridge Pipe -> the bus. No glue Lambda, no relay in the app.

The app writes its state change AND the event in ONE `TransactWriteItems` (so an event is published
if and only if the change is committed). The event is an outbox item of the same table (the layout
apps/order/app.py writes):

    <hash key>  (S)  `outbox#<eventId>`                     (never collides with the service's own items)
    recordType  (S)  `outbox`                               (what the pipe's filter keys on)
    detailType  (S)  one of the service's `publishes`       (becomes the event's detail-type)
    detail      (S)  the EventBridge detail as a JSON string, valid against its versioned contract
    aggregateId (S)  the aggregate's id (e.g. the order id)
    createdAt   (S)  RFC 3339 timestamp                     (becomes the event's `time`)
    expiresAt   (N)  TTL: outbox items expire after a week  (the bus archive keeps the history)

The Pipe:
* reads the stream from TRIM_HORIZON (nothing written before the pipe starts is lost);
* keeps only INSERTs of outbox items whose `detailType` the service publishes (`filter_pattern`):
  the service's own items, later updates and TTL deletions never reach the bus;
* decodes `detail` with an enrichment: an EXPRESS Step Functions workflow of one Map + Pass state
  using the `States.StringToJson` intrinsic (Pipes' input templates cannot turn a DynamoDB string or
  list attribute into JSON; see "Amazon EventBridge Pipes input transformation");
* puts each event on the bus with source `microservices.<service>`, detail-type from the item and
  `time` from `createdAt`;
* retries a failing batch (bisecting it) and then sends the records to its own DLQ (KMS, TLS only),
  encrypts its data with the platform key and logs errors to a KMS-encrypted log group.
The pipe's role is the only principal the bus policy lets publish the service's source: the service's
task role has no events:PutEvents at all (and the app is told `OUTBOX_RELAY=stream`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from components.iam import allow, kms_via, policy_document
from components.patterns import PatternContext, dead_letter_queue, encrypted_log_group, logged_role
from components.patterns.saga import LOG_DELIVERY_ACTIONS

STREAM_ACTIONS = ("dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator", "dynamodb:ListStreams")
"""What a pipe needs on a DynamoDB stream source (EventBridge Pipes user guide, "Amazon DynamoDB stream as a source")."""
BATCH_SIZE = 10
MAXIMUM_RETRY_ATTEMPTS = 10
MAXIMUM_RECORD_AGE_SECONDS = 24 * 3600


OUTBOX_RECORD_TYPE = "outbox"


def filter_pattern(detail_types: Sequence[str]) -> dict[str, Any]:
    """The pipe's filter (an EventBridge pattern over DynamoDB stream records): new outbox items only."""
    return {
        "eventName": ["INSERT"],
        "dynamodb": {
            "NewImage": {"recordType": {"S": [OUTBOX_RECORD_TYPE]}, "detailType": {"S": sorted(detail_types)}}
        },
    }


def decoder_definition() -> dict[str, Any]:
    """The enrichment workflow: Pipes passes a batch (a JSON array of stream records) and sends each
    element of the returned array to the target."""
    return {
        "Comment": "Outbox decoder: DynamoDB stream records -> {detailType, detail (parsed JSON), occurredAt, aggregateId}",
        "StartAt": "DecodeRecords",
        "States": {
            "DecodeRecords": {
                "Type": "Map",
                "ItemsPath": "$",
                "ItemProcessor": {
                    "ProcessorConfig": {"Mode": "INLINE"},
                    "StartAt": "Decode",
                    "States": {
                        "Decode": {
                            "Type": "Pass",
                            "Parameters": {
                                "aggregateId.$": "$.dynamodb.NewImage.aggregateId.S",
                                "detailType.$": "$.dynamodb.NewImage.detailType.S",
                                "occurredAt.$": "$.dynamodb.NewImage.createdAt.S",
                                "detail.$": "States.StringToJson($.dynamodb.NewImage.detail.S)",
                            },
                            "End": True,
                        }
                    },
                },
                "End": True,
            }
        },
    }


TARGET_DETAIL_TYPE = "$.detailType"
TARGET_TIME = "$.occurredAt"
TARGET_INPUT_TEMPLATE = "<$.detail>"
"""The decoded detail object becomes the event's detail (unquoted: it is an object, not a string)."""


@dataclass(frozen=True)
class OutboxArgs:
    service: str
    event_source: str
    """`microservices.<service>`."""
    detail_types: Sequence[str]
    table_arn: pulumi.Input[str]
    stream_arn: pulumi.Input[str]
    bus_arn: pulumi.Input[str]
    context: PatternContext


class Outbox(pulumi.ComponentResource):
    """Outbox table stream -> Pipe (filter, decoder, DLQ, KMS, logs) -> bus. Child of the owning service."""

    pipe_arn: pulumi.Output[str]
    role_arn: pulumi.Output[str]
    dlq_name: pulumi.Output[str]
    pipe_name: str

    def __init__(self, name: str, args: OutboxArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("microservices:outbox:Outbox", name, None, opts)
        ctx = args.context
        child = pulumi.ResourceOptions(parent=self)
        tags = {**ctx.tags, "Service": args.service}
        self.pipe_name = f"{ctx.prefix}-{args.service}-outbox"
        decoder_name = f"{self.pipe_name}-decoder"

        dlq = dead_letter_queue(ctx, name, queue_name=f"{self.pipe_name}-dlq", tags=tags, parent=self)
        pipe_logs = encrypted_log_group(
            ctx, f"{name}-pipe-logs", log_group_name=f"/aws/vendedlogs/pipes/{self.pipe_name}", tags=tags, parent=self
        )
        decoder_logs, decoder_role = logged_role(
            ctx,
            f"{name}-decoder",
            log_group_name=f"/aws/vendedlogs/states/{decoder_name}",
            trusted_service="states.amazonaws.com",
            description=f"Outbox decoder of {args.service}: parses event records (no data access)",
            tags=tags,
            parent=self,
        )
        decoder_policy = aws.iam.RolePolicy(
            f"{name}-decoder-policy",
            role=decoder_role.id,
            policy=policy_document([allow("DeliverExecutionLogs", LOG_DELIVERY_ACTIONS, ["*"])]),
            opts=child,
        )
        decoder = aws.sfn.StateMachine(
            f"{name}-decoder",
            name=decoder_name,
            type="EXPRESS",
            role_arn=decoder_role.arn,
            definition=json.dumps(decoder_definition(), sort_keys=True),
            logging_configuration=aws.sfn.StateMachineLoggingConfigurationArgs(
                log_destination=pulumi.Output.concat(decoder_logs.arn, ":*"),
                level="ERROR",
                include_execution_data=False,
            ),
            tracing_configuration=aws.sfn.StateMachineTracingConfigurationArgs(enabled=ctx.tracing),
            tags=tags,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[decoder_policy]),
        )
        role = aws.iam.Role(
            f"{name}-role",
            description=f"EventBridge Pipe of {args.service}'s outbox: read its event stream, publish to the bus",
            assume_role_policy=ctx.platform.trust_policy("pipes.amazonaws.com"),
            tags=tags,
            opts=child,
        )
        policy = aws.iam.RolePolicy(
            f"{name}-policy",
            role=role.id,
            policy=policy_document(
                [
                    allow("ReadOwnEventStream", STREAM_ACTIONS, [args.stream_arn]),
                    allow(
                        "DecryptOwnEventStream",
                        ["kms:Decrypt"],
                        [ctx.kms_key_arn],
                        kms_via(ctx.region, "dynamodb"),
                    ),
                    allow("DecodeEventRecords", ["states:StartSyncExecution"], [decoder.arn]),
                    allow("PublishOwnEvents", ["events:PutEvents"], [args.bus_arn]),
                    allow("DeadLetterFailedRecords", ["sqs:SendMessage"], [dlq.arn]),
                    allow(
                        "EncryptDeadLetters",
                        ["kms:Decrypt", "kms:GenerateDataKey"],
                        [ctx.kms_key_arn],
                        kms_via(ctx.region, "sqs"),
                    ),
                    allow(
                        "WritePipeLogs",
                        ["logs:CreateLogStream", "logs:PutLogEvents"],
                        [pipe_logs.arn, pulumi.Output.concat(pipe_logs.arn, ":log-stream:*")],
                    ),
                ]
            ),
            opts=child,
        )
        pipe = aws.pipes.Pipe(
            f"{name}-pipe",
            name=self.pipe_name,
            description=f"Outbox of {args.service}: outbox items of its table -> the bus",
            role_arn=role.arn,
            source=args.stream_arn,
            source_parameters=aws.pipes.PipeSourceParametersArgs(
                dynamodb_stream_parameters=aws.pipes.PipeSourceParametersDynamodbStreamParametersArgs(
                    starting_position="TRIM_HORIZON",
                    batch_size=BATCH_SIZE,
                    maximum_retry_attempts=MAXIMUM_RETRY_ATTEMPTS,
                    maximum_record_age_in_seconds=MAXIMUM_RECORD_AGE_SECONDS,
                    on_partial_batch_item_failure="AUTOMATIC_BISECT",
                    dead_letter_config=aws.pipes.PipeSourceParametersDynamodbStreamParametersDeadLetterConfigArgs(
                        arn=dlq.arn
                    ),
                ),
                filter_criteria=aws.pipes.PipeSourceParametersFilterCriteriaArgs(
                    filters=[
                        aws.pipes.PipeSourceParametersFilterCriteriaFilterArgs(
                            pattern=json.dumps(filter_pattern(args.detail_types), sort_keys=True)
                        )
                    ]
                ),
            ),
            enrichment=decoder.arn,
            target=args.bus_arn,
            target_parameters=aws.pipes.PipeTargetParametersArgs(
                eventbridge_event_bus_parameters=aws.pipes.PipeTargetParametersEventbridgeEventBusParametersArgs(
                    source=args.event_source, detail_type=TARGET_DETAIL_TYPE, time=TARGET_TIME
                ),
                input_template=TARGET_INPUT_TEMPLATE,
            ),
            kms_key_identifier=ctx.kms_key_arn,
            log_configuration=aws.pipes.PipeLogConfigurationArgs(
                level="ERROR",
                cloudwatch_logs_log_destination=aws.pipes.PipeLogConfigurationCloudwatchLogsLogDestinationArgs(
                    log_group_arn=pipe_logs.arn
                ),
            ),
            desired_state="RUNNING",
            tags=tags,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[policy]),
        )
        self.pipe_arn = pipe.arn
        self.role_arn = role.arn
        self.dlq_name = dlq.name
        self.register_outputs({"pipeArn": self.pipe_arn, "roleArn": self.role_arn, "dlqName": self.dlq_name})
