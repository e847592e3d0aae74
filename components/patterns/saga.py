"""Saga (seed: Saga Pattern): a Step Functions Standard workflow per `ServiceSpec.sagas` entry.

How a step reaches a participant without breaking the mesh or database ownership: the workflow never
calls a service's API or touches its data. Each step sends a COMMAND to the participant's own SQS
queue with `arn:aws:states:::sqs:sendMessage.waitForTaskToken` and waits. The participant (its app,
polling `SAGA_COMMAND_QUEUE_URL`) does the work on its own data and answers with
`SendTaskSuccess(taskToken, output)` or `SendTaskFailure(taskToken, error, cause)`, calling
`SendTaskHeartbeat` while it works. Its task role may call those three actions on THIS state machine's
ARN only (`SagaParticipant`). The command message (JSON body) is:

    {"saga": "order-placement", "sagaId": <execution name>, "step": "ReserveInventory",
     "command": "ReserveInventory", "idempotencyKey": "<execution name>:ReserveInventory",
     "taskToken": "...", "input": <the execution input>, "results": {<step>: <output>, ...}}

The orchestrator starts one execution per business transaction with the transaction's id as the
execution NAME (`StartExecution(name=orderId)`): Standard workflows refuse a second execution of the
same name, so a retried start never runs the saga twice, and every command carries a key derived
from it that the participant uses to make its work idempotent (a redelivered or retried command
returns the first answer).

Failure handling, per step (AWS reference: aws-samples step-functions-workflows-collection
`saga-pattern-cdk`, one compensation per step):
* `Retry` on transient errors (SQS send errors and a participant's `Saga.Transient` failure) with
  exponential backoff and FULL jitter (`JitterStrategy`, capped by `MaxDelaySeconds`);
* `TimeoutSeconds` (and `HeartbeatSeconds`) per step: a silent participant fails the step with
  `States.Timeout`;
* any other failure (a business refusal such as `Payment.Declined`, or retries exhausted) is caught:
  the compensations of the completed steps run in reverse order, then `on_failure`, then the
  execution FAILS (so the failed-executions alarm counts it). A step that TIMED OUT may have done its
  work after all, so its own compensation runs first (compensations are idempotent by key).
* a compensation that keeps failing ends in `CompensationFailed`, a distinct error for operators.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from components.iam import allow, kms_via, policy_document
from components.patterns import PatternContext, logged_role, queue_with_dlq, tls_only
from model.spec import Saga as SagaSpec
from model.spec import SagaCommand, SagaStep

TRANSIENT_ERRORS = ("SQS.SdkClientException", "SQS.AmazonSQSException", "Saga.Transient")
"""Errors worth retrying: the SQS integration's own errors (names from the Step Functions SQS
integration) and the error a participant reports for a temporary problem (`SendTaskFailure(error=...)`)."""
RETRY_INTERVAL_SECONDS = 2
RETRY_BACKOFF_RATE = 2.0
RETRY_MAX_DELAY_SECONDS = 60
COMPENSATION_RETRIES = 10
"""Compensations must eventually succeed: retried longer than steps (still with backoff and jitter)."""
COMPENSATION_TIMEOUT_SECONDS = 3600
SEND_TASK_ACTIONS = ("states:SendTaskFailure", "states:SendTaskHeartbeat", "states:SendTaskSuccess")
SQS_CONSUMER_ACTIONS = (
    "sqs:ChangeMessageVisibility",
    "sqs:DeleteMessage",
    "sqs:GetQueueAttributes",
    "sqs:ReceiveMessage",
)
COMMAND_QUEUE_VISIBILITY_SECONDS = 60
COMMAND_QUEUE_RETENTION_SECONDS = 4 * 24 * 3600
LOG_DELIVERY_ACTIONS = (
    "logs:CreateLogDelivery",
    "logs:DeleteLogDelivery",
    "logs:DescribeLogGroups",
    "logs:DescribeResourcePolicies",
    "logs:GetLogDelivery",
    "logs:ListLogDeliveries",
    "logs:PutResourcePolicy",
    "logs:UpdateLogDelivery",
)
"""What Step Functions needs to deliver execution logs to CloudWatch Logs; AWS documents them on
Resource "*" (Step Functions developer guide, "IAM policies for logging to CloudWatch Logs")."""
XRAY_ACTIONS = ("xray:GetSamplingRules", "xray:GetSamplingTargets", "xray:PutTraceSegments", "xray:PutTelemetryRecords")
"""Step Functions X-Ray tracing (developer guide, "IAM policies for AWS X-Ray"): no resource types."""
ALARMED_METRICS = ("ExecutionsFailed", "ExecutionsTimedOut", "ExecutionsAborted")


def state_machine_name(prefix: str, saga: SagaSpec) -> str:
    return f"{prefix}-{saga.name}"


def command_queue_name(prefix: str, participant: str) -> str:
    return f"{prefix}-{participant}-saga-commands"


def env_name(saga: SagaSpec) -> str:
    """`order-placement` -> `ORDER_PLACEMENT_SAGA_ARN` (the orchestrator's app starts executions of it)."""
    return f"{saga.name.upper().replace('-', '_')}_SAGA_ARN"


def _state_name(kind: str, command: str) -> str:
    return f"{kind}{command}" if kind else command


def _command_task(
    saga: SagaSpec,
    step_name: str,
    command: SagaCommand | SagaStep,
    queue_url: str,
    *,
    timeout: int,
    heartbeat: int | None,
    retries: int,
) -> dict[str, Any]:
    key = step_name
    task: dict[str, Any] = {
        "Type": "Task",
        "Comment": f"{command.command} -> {command.participant} (waits for its SendTaskSuccess/Failure)",
        "Resource": "arn:aws:states:::sqs:sendMessage.waitForTaskToken",
        "Parameters": {
            "QueueUrl": queue_url,
            "MessageBody": {
                "saga": saga.name,
                "sagaId.$": "$$.Execution.Name",
                "step": step_name,
                "command": command.command,
                "idempotencyKey.$": f"States.Format('{{}}:{key}', $$.Execution.Name)",
                "taskToken.$": "$$.Task.Token",
                "input.$": "$.input",
                "results.$": "$.results",
            },
        },
        "TimeoutSeconds": timeout,
        "ResultPath": f"$.results.{step_name}",
    }
    if heartbeat is not None:
        task["HeartbeatSeconds"] = heartbeat
    if retries:
        task["Retry"] = [
            {
                "ErrorEquals": list(TRANSIENT_ERRORS),
                "IntervalSeconds": RETRY_INTERVAL_SECONDS,
                "MaxAttempts": retries,
                "BackoffRate": RETRY_BACKOFF_RATE,
                "MaxDelaySeconds": RETRY_MAX_DELAY_SECONDS,
                "JitterStrategy": "FULL",
            }
        ]
    return task


def saga_definition(saga: SagaSpec, queue_urls: Mapping[str, str]) -> dict[str, Any]:
    """The Amazon States Language document of `saga` (JSONPath), given each participant's command queue URL.

    Execution input: `{"input": {...}}` (what every command carries). Output: the input plus
    `results.<Step>` (each participant's SendTaskSuccess output)."""
    missing = sorted(set(saga.participants) - set(queue_urls))
    if missing:
        raise ValueError(f"saga {saga.name!r}: no command queue URL for participants {missing}")
    states: dict[str, Any] = {
        "Begin": {
            "Type": "Pass",
            "Comment": "Start with empty results; the input stays under $.input",
            "Parameters": {"input.$": "$.input", "results": {}, "compensations": {}},
            "Next": saga.steps[0].name,
        }
    }
    failed = "SagaFailed"
    # The compensation chain: Compensate<Cmd> for each step with one, in reverse order, then on_failure.
    tail = failed
    if saga.on_failure is not None:
        tail = _state_name("", saga.on_failure.command)
        states[tail] = _command_task(
            saga,
            saga.on_failure.command,
            saga.on_failure,
            queue_urls[saga.on_failure.participant],
            timeout=COMPENSATION_TIMEOUT_SECONDS,
            heartbeat=None,
            retries=COMPENSATION_RETRIES,
        )
        states[tail]["Next"] = failed
        states[tail]["ResultPath"] = f"$.compensations.{saga.on_failure.command}"
        states[tail]["Catch"] = [
            {"ErrorEquals": ["States.ALL"], "ResultPath": "$.compensationError", "Next": "CompensationFailed"}
        ]
    compensate_from: list[str] = []
    """compensate_from[i]: the first compensation to run when step i fails (its predecessors' in reverse)."""
    previous = tail
    for step in saga.steps:
        compensate_from.append(previous)
        if step.compensation:
            name = f"Compensate{step.compensation}"
            task = _command_task(
                saga,
                step.compensation,
                SagaCommand(participant=step.participant, command=step.compensation),
                queue_urls[step.participant],
                timeout=COMPENSATION_TIMEOUT_SECONDS,
                heartbeat=None,
                retries=COMPENSATION_RETRIES,
            )
            task["ResultPath"] = f"$.compensations.{step.compensation}"
            task["Next"] = previous
            task["Catch"] = [
                {"ErrorEquals": ["States.ALL"], "ResultPath": "$.compensationError", "Next": "CompensationFailed"}
            ]
            states[name] = task
            previous = name
    for index, step in enumerate(saga.steps):
        task = _command_task(
            saga,
            step.name,
            step,
            queue_urls[step.participant],
            timeout=step.timeout_seconds,
            heartbeat=step.heartbeat_seconds,
            retries=step.retries,
        )
        catches = []
        if step.compensation:
            # Timed out: the participant may still have done the work; undo it too.
            catches.append(
                {"ErrorEquals": ["States.Timeout"], "ResultPath": "$.error", "Next": f"Compensate{step.compensation}"}
            )
        catches.append({"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": compensate_from[index]})
        task["Catch"] = catches
        if index + 1 < len(saga.steps):
            task["Next"] = saga.steps[index + 1].name
        else:
            task["Next"] = "SagaSucceeded"
        states[step.name] = task
    states["SagaSucceeded"] = {"Type": "Succeed"}
    states[failed] = {
        "Type": "Fail",
        "Error": "Saga.Failed",
        "Cause": f"A step of {saga.name} failed; the completed steps were compensated",
    }
    states["CompensationFailed"] = {
        "Type": "Fail",
        "Error": "Saga.CompensationFailed",
        "Cause": f"A compensation of {saga.name} kept failing: the transaction needs an operator",
    }
    return {
        "Comment": f"Saga {saga.name}: {' -> '.join(s.name for s in saga.steps)}; compensations in reverse on failure",
        "StartAt": "Begin",
        "States": states,
    }


def orchestrator_statements(state_machine_arn: pulumi.Input[str], partition: str) -> list[dict[str, Any]]:
    """What the orchestrating service's task role needs: start (and read) executions of its saga."""
    executions = pulumi.Output.from_input(state_machine_arn).apply(
        lambda arn: arn.replace(":stateMachine:", ":execution:") + ":*"
    )
    return [
        allow("StartOwnSaga", ["states:StartExecution"], [state_machine_arn]),
        allow("ReadOwnSagaExecutions", ["states:DescribeExecution", "states:StopExecution"], [executions]),
    ]


# --- the participant side ----------------------------------------------------------------------


@dataclass(frozen=True)
class SagaParticipantArgs:
    service: str
    """The participant's spec name."""
    commands: Sequence[str]
    """Commands it handles (documentation, tags)."""
    state_machine_arns: Sequence[str]
    """The sagas it takes part in: SendTask* is granted on exactly these ARNs."""
    task_role_name: pulumi.Input[str]
    """The participant's task role (its app polls the queue and answers the workflow)."""
    context: PatternContext


class SagaParticipant(pulumi.ComponentResource):
    """A participant's command queue (+ DLQ, KMS, TLS only) and its task role's grants: consume that
    queue, and SendTaskSuccess/Failure/Heartbeat on the named state machines only. Declared as a child
    of the participant's FargateMicroservice: the queue is the participant's own."""

    queue_arn: pulumi.Output[str]
    queue_url: pulumi.Output[str]
    dlq_name: pulumi.Output[str]

    def __init__(self, name: str, args: SagaParticipantArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("microservices:saga:SagaParticipant", name, None, opts)
        ctx = args.context
        child = pulumi.ResourceOptions(parent=self)
        tags = {**ctx.tags, "Service": args.service}
        queue_name = command_queue_name(ctx.prefix, args.service)
        queue, dlq = queue_with_dlq(
            ctx,
            name,
            queue_name=queue_name,
            retention_seconds=COMMAND_QUEUE_RETENTION_SECONDS,
            visibility_timeout_seconds=COMMAND_QUEUE_VISIBILITY_SECONDS,
            tags=tags,
            queue_tags={"QueueRole": "saga-commands", "Commands": " ".join(args.commands)[:256]},
            parent=self,
        )
        tls_only(f"{name}-queue-policy", queue, parent=self)
        aws.iam.RolePolicy(
            f"{name}-grants",
            role=args.task_role_name,
            policy=policy_document(
                [
                    allow("ConsumeOwnSagaCommands", SQS_CONSUMER_ACTIONS, [queue.arn]),
                    allow(
                        "DecryptOwnSagaCommands",
                        ["kms:Decrypt"],
                        [ctx.kms_key_arn],
                        kms_via(ctx.region, "sqs"),
                    ),
                    # Answer the sagas it takes part in, and nothing else: no StartExecution, no other machine.
                    allow("AnswerSagaCommands", SEND_TASK_ACTIONS, list(args.state_machine_arns)),
                ]
            ),
            opts=child,
        )
        self.queue_arn = queue.arn
        self.queue_url = queue.url
        self.dlq_name = dlq.name
        self.register_outputs({"queueArn": self.queue_arn, "queueUrl": self.queue_url, "dlqName": self.dlq_name})


# --- the orchestrator side ---------------------------------------------------------------------


@dataclass(frozen=True)
class SagaArgs:
    saga: SagaSpec
    orchestrator: str
    """The declaring service (owner of the workflow)."""
    queues: Mapping[str, tuple[pulumi.Input[str], pulumi.Input[str]]]
    """(queue ARN, queue URL) of each participant's command queue, by participant name."""
    orchestrator_task_role_name: pulumi.Input[str]
    context: PatternContext


class Saga(pulumi.ComponentResource):
    """The Standard workflow of one saga with its role, KMS-encrypted log group, X-Ray tracing and
    alarms on failed, timed-out and aborted executions; plus the orchestrator's grant to start it.
    Declared as a child of the orchestrating service's FargateMicroservice."""

    state_machine_arn: pulumi.Output[str]
    state_machine_name: str
    log_group_name: pulumi.Output[str]
    alarm_names: list[pulumi.Output[str]]

    def __init__(self, name: str, args: SagaArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("microservices:saga:Saga", name, None, opts)
        ctx, saga = args.context, args.saga
        child = pulumi.ResourceOptions(parent=self)
        tags = {**ctx.tags, "Service": args.orchestrator, "Saga": saga.name}
        self.state_machine_name = state_machine_name(ctx.prefix, saga)
        missing = sorted(set(saga.participants) - set(args.queues))
        if missing:
            raise ValueError(f"Saga {saga.name!r}: no command queue for participants {missing}")

        log_group, role = logged_role(
            ctx,
            name,
            log_group_name=f"/aws/vendedlogs/states/{self.state_machine_name}",
            trusted_service="states.amazonaws.com",
            description=f"Step Functions workflow of the {saga.name} saga: send commands to its participants",
            tags=tags,
            parent=self,
        )
        queue_arns = [args.queues[p][0] for p in saga.participants]
        statements = [
            allow("SendCommandsToParticipants", ["sqs:SendMessage"], queue_arns),
            allow(
                "EncryptCommands",
                ["kms:GenerateDataKey", "kms:Decrypt"],
                [ctx.kms_key_arn],
                kms_via(ctx.region, "sqs"),
            ),
            allow("DeliverExecutionLogs", LOG_DELIVERY_ACTIONS, ["*"]),
        ]
        if ctx.tracing:
            statements.append(allow("XRayTracing", XRAY_ACTIONS, ["*"]))
        policy = aws.iam.RolePolicy(f"{name}-policy", role=role.id, policy=policy_document(statements), opts=child)
        urls = {p: args.queues[p][1] for p in saga.participants}
        definition = pulumi.Output.all(**urls).apply(
            lambda resolved: json.dumps(saga_definition(saga, resolved), sort_keys=True)
        )
        machine = aws.sfn.StateMachine(
            f"{name}-workflow",
            name=self.state_machine_name,
            type="STANDARD",
            role_arn=role.arn,
            definition=definition,
            logging_configuration=aws.sfn.StateMachineLoggingConfigurationArgs(
                log_destination=pulumi.Output.concat(log_group.arn, ":*"),
                level="ALL",
                # Commands carry order data; the log keeps the state transitions, not the payloads.
                include_execution_data=False,
            ),
            tracing_configuration=aws.sfn.StateMachineTracingConfigurationArgs(enabled=ctx.tracing),
            tags=tags,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[policy]),
        )
        aws.iam.RolePolicy(
            f"{name}-orchestrator",
            role=args.orchestrator_task_role_name,
            policy=policy_document(orchestrator_statements(machine.arn, ctx.partition)),
            opts=child,
        )
        self.alarm_names = []
        for metric in ALARMED_METRICS:
            alarm = aws.cloudwatch.MetricAlarm(
                f"{name}-{metric.lower()}",
                alarm_description=f"Saga {saga.name}: {metric} > 0 (a transaction needs attention)",
                namespace="AWS/States",
                metric_name=metric,
                dimensions={"StateMachineArn": machine.arn},
                statistic="Sum",
                period=300,
                evaluation_periods=1,
                threshold=0.0,
                comparison_operator="GreaterThanThreshold",
                treat_missing_data="notBreaching",
                alarm_actions=[ctx.alarm_topic_arn] if ctx.alarm_topic_arn is not None else [],
                ok_actions=[ctx.alarm_topic_arn] if ctx.alarm_topic_arn is not None else [],
                tags=tags,
                opts=child,
            )
            self.alarm_names.append(alarm.name)
        self.state_machine_arn = machine.arn
        self.log_group_name = log_group.name
        self.register_outputs(
            {
                "stateMachineArn": self.state_machine_arn,
                "stateMachineName": self.state_machine_name,
                "logGroupName": self.log_group_name,
            }
        )
