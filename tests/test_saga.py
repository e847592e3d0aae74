"""The order-placement saga: its ASL validated by statelint and EXECUTED by moto's Step Functions
interpreter (`stepfunctions.execute_state_machine`), with this test acting as the participants: it
reads each command from the participant's SQS queue and answers with SendTaskSuccess/SendTaskFailure
(or stays silent, to time a step out); and the declared resources in the real stacks."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import boto3
from moto import mock_aws
from statelint.linter import Linter

from components.patterns.saga import TRANSIENT_ERRORS, saga_definition
from model.spec import Saga, SagaStep
from offline.plan import Plan, PlannedResource
from services import load_catalog
from tests.conftest import only

REGION = "us-east-1"
ORDER = next(s for s in load_catalog() if s.name == "order")
SAGA = ORDER.sagas[0]

Answer = Callable[[dict[str, Any]], tuple[str, str] | None]
"""command body -> ("success", output) | ("failure", error) | None (never answer)."""


def _fast(saga: Saga, **step_overrides: dict[str, Any]) -> Saga:
    steps = tuple(s.model_copy(update=step_overrides.get(s.name, {})) for s in saga.steps)
    return saga.model_copy(update={"steps": steps})


def run_saga(
    saga: Saga, answer: Answer, *, deadline: float = 20.0
) -> tuple[dict[str, Any], list[tuple[str, str, str]]]:
    """Run one execution of `saga` in moto; returns (DescribeExecution, [(participant, command, key)])."""
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
        sqs = boto3.client("sqs", region_name=REGION)
        sfn = boto3.client("stepfunctions", region_name=REGION)
        urls = {p: sqs.create_queue(QueueName=f"ms-test-{p}-saga-commands")["QueueUrl"] for p in saga.participants}
        machine = sfn.create_state_machine(
            name="ms-test-order-placement",
            definition=json.dumps(saga_definition(saga, urls)),
            roleArn="arn:aws:iam::123456789012:role/ms-test-order-placement",
            type="STANDARD",
        )["stateMachineArn"]
        execution = sfn.start_execution(
            stateMachineArn=machine, name="ord-42", input=json.dumps({"input": {"orderId": "ord-42", "total": "48.30"}})
        )["executionArn"]
        seen: list[tuple[str, str, str]] = []
        started = time.monotonic()
        status = sfn.describe_execution(executionArn=execution)
        while status["status"] == "RUNNING" and time.monotonic() - started < deadline:
            for participant, url in urls.items():
                for message in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
                    sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
                    body = json.loads(message["Body"])
                    assert body["sagaId"] == "ord-42" and body["input"]["orderId"] == "ord-42", body
                    seen.append((participant, body["command"], body["idempotencyKey"]))
                    reply = answer(body)
                    if reply is None:
                        continue
                    kind, value = reply
                    if kind == "success":
                        sfn.send_task_success(taskToken=body["taskToken"], output=value)
                    else:
                        sfn.send_task_failure(
                            taskToken=body["taskToken"], error=value, cause=f"{body['command']} refused"
                        )
            time.sleep(0.05)
            status = sfn.describe_execution(executionArn=execution)
        return status, seen


def _ok(body: dict[str, Any]) -> tuple[str, str]:
    return "success", json.dumps({"done": body["command"]})


def test_the_definition_passes_statelint() -> None:
    definition = saga_definition(
        SAGA, {p: f"https://sqs.{REGION}.amazonaws.com/123456789012/{p}" for p in SAGA.participants}
    )
    assert Linter.validate(definition) == []
    # The validator is live: a broken transition is reported.
    broken = json.loads(json.dumps(definition))
    broken["States"]["ReserveInventory"]["Next"] = "NoSuchState"
    assert any("NoSuchState" in p for p in Linter.validate(broken))


def test_every_step_waits_for_a_token_with_timeouts_retries_and_jitter() -> None:
    definition = saga_definition(SAGA, {p: f"https://q/{p}" for p in SAGA.participants})
    states = definition["States"]
    for step in SAGA.steps:
        task = states[step.name]
        assert task["Resource"] == "arn:aws:states:::sqs:sendMessage.waitForTaskToken"
        assert task["Parameters"]["QueueUrl"] == f"https://q/{step.participant}"
        body = task["Parameters"]["MessageBody"]
        assert body["taskToken.$"] == "$$.Task.Token" and "idempotencyKey.$" in body
        assert task["TimeoutSeconds"] == step.timeout_seconds
        assert task.get("HeartbeatSeconds") == step.heartbeat_seconds
        (retry,) = task["Retry"]
        assert retry["JitterStrategy"] == "FULL" and retry["BackoffRate"] > 1 and retry["MaxDelaySeconds"] > 0
        assert set(retry["ErrorEquals"]) == set(TRANSIENT_ERRORS)


def test_happy_path_runs_every_step_once_in_order() -> None:
    status, seen = run_saga(SAGA, _ok)
    assert status["status"] == "SUCCEEDED", status
    assert seen == [
        ("inventory", "ReserveInventory", "ord-42:ReserveInventory"),
        ("payment", "AuthorizePayment", "ord-42:AuthorizePayment"),
        ("order", "ConfirmOrder", "ord-42:ConfirmOrder"),
    ]
    output = json.loads(status["output"])
    assert output["results"]["AuthorizePayment"] == {"done": "AuthorizePayment"}


def test_payment_failure_releases_inventory_and_cancels_the_order() -> None:
    def declined(body: dict[str, Any]) -> tuple[str, str]:
        return ("failure", "Payment.Declined") if body["command"] == "AuthorizePayment" else _ok(body)

    status, seen = run_saga(SAGA, declined)
    assert status["status"] == "FAILED" and status["error"] == "Saga.Failed", status
    assert [c for _, c, _ in seen] == ["ReserveInventory", "AuthorizePayment", "ReleaseInventory", "CancelOrder"]
    assert ("inventory", "ReleaseInventory", "ord-42:ReleaseInventory") in seen


def test_a_silent_participant_times_out_and_everything_is_compensated() -> None:
    saga = _fast(SAGA, AuthorizePayment={"timeout_seconds": 1, "heartbeat_seconds": None, "retries": 0})

    def silent_payment(body: dict[str, Any]) -> tuple[str, str] | None:
        return None if body["command"] == "AuthorizePayment" else _ok(body)

    status, seen = run_saga(saga, silent_payment)
    assert status["status"] == "FAILED" and status["error"] == "Saga.Failed", status
    # The timed-out step may have authorized after all: it is voided first, then the earlier steps.
    assert [c for _, c, _ in seen] == [
        "ReserveInventory",
        "AuthorizePayment",
        "VoidPayment",
        "ReleaseInventory",
        "CancelOrder",
    ]


def test_a_compensation_that_keeps_failing_ends_in_compensation_failed() -> None:
    saga = _fast(SAGA)
    saga = saga.model_copy(
        update={
            "steps": (
                *saga.steps[:1],
                SagaStep(name="Fail", participant="payment", command="AuthorizePayment", retries=0),
            )
        }
    )

    def broken(body: dict[str, Any]) -> tuple[str, str]:
        if body["command"] == "AuthorizePayment":
            return "failure", "Payment.Declined"
        if body["command"] == "ReleaseInventory":
            return "failure", "Inventory.Corrupt"  # not transient: no retry, straight to the operator
        return _ok(body)

    status, seen = run_saga(saga, broken)
    assert status["status"] == "FAILED" and status["error"] == "Saga.CompensationFailed", (status, seen)
    assert [c for _, c, _ in seen][-1] == "ReleaseInventory"


# --- the declared resources ---------------------------------------------------------------------

SFN = "aws:sfn/stateMachine:StateMachine"


def _chain(plan: Plan, resource: PlannedResource) -> list[PlannedResource]:
    by_urn = {r.urn: r for r in plan.resources}
    chain, parent = [], resource.parent
    while parent in by_urn:
        chain.append(by_urn[parent])
        parent = by_urn[parent].parent
    return chain


def owners(plan: Plan, resource: PlannedResource) -> list[str]:
    """The component types above `resource`, nearest first (up to its service)."""
    return [r.type for r in _chain(plan, resource) if r.type.startswith("microservices:")][:2]


def owner_name(plan: Plan, resource: PlannedResource) -> str:
    return next(r.name for r in _chain(plan, resource) if r.type == "microservices:service:FargateMicroservice")


def test_the_saga_is_a_traced_logged_standard_workflow_owned_by_the_orchestrator(stack_plan: Plan) -> None:
    machine = only(stack_plan, SFN, "order-placement-saga-workflow")
    assert machine.inputs["type"] == "STANDARD", machine.urn
    assert owners(stack_plan, machine) == ["microservices:saga:Saga", "microservices:service:FargateMicroservice"]
    assert owner_name(stack_plan, machine).endswith("-order"), machine.urn
    assert machine.inputs["tracingConfiguration"]["enabled"] is True
    logging = machine.inputs["loggingConfiguration"]
    assert logging["level"] == "ALL" and logging["logDestination"].startswith("arn:aws:logs:")
    group = only(stack_plan, "aws:cloudwatch/logGroup:LogGroup", "order-placement-saga-logs")
    assert group.inputs["kmsKeyId"].startswith("arn:aws:kms:"), group.urn
    definition = json.loads(machine.inputs["definition"])
    assert Linter.validate(definition) == []
    for step in SAGA.steps:
        assert definition["States"][step.name]["Parameters"]["QueueUrl"].endswith(f"-{step.participant}-saga-commands")
    alarms = [
        r for r in stack_plan.of_type("aws:cloudwatch/metricAlarm:MetricAlarm") if "order-placement-saga" in r.name
    ]
    assert {a.inputs["metricName"] for a in alarms} == {"ExecutionsFailed", "ExecutionsTimedOut", "ExecutionsAborted"}
    assert all(a.inputs["alarmActions"] for a in alarms)


def test_participants_answer_only_this_state_machine(stack_plan: Plan) -> None:
    machine = only(stack_plan, SFN, "order-placement-saga-workflow")
    arn = machine.outputs["arn"]
    for participant in SAGA.participants:
        grant = only(stack_plan, "aws:iam/rolePolicy:RolePolicy", f"-{participant}-saga-participant-grants")
        assert owners(stack_plan, grant) == [
            "microservices:saga:SagaParticipant",
            "microservices:service:FargateMicroservice",
        ]
        assert owner_name(stack_plan, grant).endswith(f"-{participant}"), grant.urn
        statements = {s["Sid"]: s for s in json.loads(grant.inputs["policy"])["Statement"]}
        answer = statements["AnswerSagaCommands"]
        assert answer["Resource"] == [arn], grant.urn
        assert sorted(answer["Action"]) == [
            "states:SendTaskFailure",
            "states:SendTaskHeartbeat",
            "states:SendTaskSuccess",
        ]
        queue = only(stack_plan, "aws:sqs/queue:Queue", f"-{participant}-saga-participant-queue")
        assert statements["ConsumeOwnSagaCommands"]["Resource"] == [queue.outputs["arn"]]
        assert queue.inputs["kmsMasterKeyId"] and "deadLetterTargetArn" in queue.inputs["redrivePolicy"]
    orchestrator = only(stack_plan, "aws:iam/rolePolicy:RolePolicy", "order-placement-saga-orchestrator")
    starts = [
        s for s in json.loads(orchestrator.inputs["policy"])["Statement"] if "states:StartExecution" in s["Action"]
    ]
    assert starts and starts[0]["Resource"] == [arn]


def test_apps_are_told_their_queue_and_saga(dev_plan: Plan) -> None:
    for service, name in (("inventory", "SAGA_COMMAND_QUEUE_URL"), ("order", "ORDER_PLACEMENT_SAGA_ARN")):
        task = only(dev_plan, "aws:ecs/taskDefinition:TaskDefinition", f"ms-dev-{service}-task")
        app = next(c for c in json.loads(task.inputs["containerDefinitions"]) if c["name"] == "app")
        env = {e["name"]: e["value"] for e in app["environment"]}
        assert name in env, env
    queue = only(dev_plan, "aws:sqs/queue:Queue", "-inventory-saga-participant-queue")
    task = only(dev_plan, "aws:ecs/taskDefinition:TaskDefinition", "ms-dev-inventory-task")
    env = {
        e["name"]: e["value"] for c in json.loads(task.inputs["containerDefinitions"]) for e in c.get("environment", [])
    }
    assert env["SAGA_COMMAND_QUEUE_URL"] == queue.outputs["url"]
    machine = only(dev_plan, SFN, "order-placement-saga-workflow")
    order = only(dev_plan, "aws:ecs/taskDefinition:TaskDefinition", "ms-dev-order-task")
    env = {
        e["name"]: e["value"]
        for c in json.loads(order.inputs["containerDefinitions"])
        for e in c.get("environment", [])
    }
    assert env["ORDER_PLACEMENT_SAGA_ARN"] == machine.outputs["arn"]
