"""`no-shared-databases` over the data patterns: read models and outboxes are tables like any other
store, and a saga's state machine is its orchestrator's; participants may only answer it."""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_aws as aws
from guardrails import ownership

from offline.policy import run_policy_pack
from tests.conftest import ROOT
from tests.policy_fixtures import ROLE, ROLE_POLICY, Stack, allow, arn, platform, policy_document
from tests.test_policies import found
from tests.test_policy_variants import mandatory, run_variant

SHARED = ownership.NO_SHARED_DATABASES
MACHINE_ARN = arn("states", "stateMachine:dev-order-placement")
ORDERS_TABLE_ARN = arn("dynamodb", "table/dev-orders")


def saga_stack() -> Stack:
    """The fixture platform plus the orders service's saga workflow and payment's participant grant."""
    stack = platform()
    orders = stack["orders"]
    saga = stack.add("microservices:saga:Saga", "order-placement", parent=orders)
    stack.add(
        "aws:sfn/stateMachine:StateMachine",
        "order-placement-workflow",
        {"name": "dev-order-placement", "arn": MACHINE_ARN, "type": "STANDARD"},
        parent=saga,
    )
    participant = stack.add("microservices:saga:SagaParticipant", "payment-participant", parent=stack["payment"])
    stack.add(
        ROLE_POLICY,
        "payment-participant-grants",
        {"policy": policy_document(allow(["states:SendTaskSuccess", "states:SendTaskFailure"], MACHINE_ARN))},
        parent=participant,
        deps={"role": [stack["payment-task-role"]]},
    )
    return stack


def _payment_grant(stack: Stack, *statements: dict[str, Any]) -> None:
    stack.add(
        ROLE_POLICY,
        "payment-extra",
        {"policy": policy_document(*statements)},
        parent=stack["payment"],
        deps={"role": [stack["payment-task-role"]]},
    )


def test_participants_answering_the_saga_on_its_exact_arn_are_accepted() -> None:
    assert found(SHARED, saga_stack()) == []


def test_a_participant_starting_the_orchestrator_s_saga_is_rejected() -> None:
    stack = saga_stack()
    _payment_grant(stack, allow(["states:StartExecution", "states:SendTaskSuccess"], MACHINE_ARN))
    assert found(SHARED, stack) == [
        "Saga state machine 'order-placement-workflow' owned by service 'orders' is shared with service 'payment': "
        "aws:iam/rolePolicy:RolePolicy 'payment-extra' grants states:StartExecution (participants may only answer: "
        "states:SendTaskFailure, states:SendTaskHeartbeat, states:SendTaskSuccess)"
    ]


def test_a_participant_answering_every_state_machine_is_rejected() -> None:
    stack = saga_stack()
    _payment_grant(stack, allow("states:SendTaskSuccess", "arn:aws:states:*:*:stateMachine:*"))
    assert found(SHARED, stack) == [
        "Saga state machine 'order-placement-workflow' owned by service 'orders' is shared with service 'payment': "
        "aws:iam/rolePolicy:RolePolicy 'payment-extra' grants states:SendTaskSuccess on "
        "arn:aws:states:*:*:stateMachine:* (name the state machine's exact ARN)"
    ]


def test_a_projection_role_of_no_service_writing_a_read_model_is_rejected() -> None:
    stack = platform()
    role = stack.add(ROLE, "stray-projection-role", {"assumeRolePolicy": "{}"})
    stack.add(
        ROLE_POLICY,
        "stray-projection-policy",
        {"policy": policy_document(allow(["dynamodb:PutItem"], ORDERS_TABLE_ARN))},
        deps={"role": [role]},
    )
    assert found(SHARED, stack) == [
        "Database 'orders-table' (DynamoDB table) owned by service 'orders' is reachable from outside its owner: "
        "aws:iam/rolePolicy:RolePolicy 'stray-projection-policy' of no service grants dynamodb:PutItem on "
        f"{ORDERS_TABLE_ARN}"
    ]


def test_a_pipe_of_no_service_reading_an_event_store_stream_is_rejected() -> None:
    stack = platform()
    stack.add(
        "aws:pipes/pipe:Pipe",
        "stray-outbox",
        {"source": f"{ORDERS_TABLE_ARN}/stream/x"},
        deps={"source": [stack["orders-table"]]},
    )
    assert found(SHARED, stack) == [
        "Database 'orders-table' (DynamoDB table) owned by service 'orders' is reachable from outside its owner: "
        "aws:pipes/pipe:Pipe 'stray-outbox' of no service reads it"
    ]


def test_another_service_s_pipe_on_the_event_store_is_rejected() -> None:
    stack = platform()
    stack.add(
        "aws:pipes/pipe:Pipe", "payment-outbox", parent=stack["payment"], deps={"source": [stack["orders-table"]]}
    )
    assert found(SHARED, stack) == [
        "Database 'orders-table' (DynamoDB table) owned by service 'orders' is shared with service 'payment': "
        "aws:pipes/pipe:Pipe 'payment-outbox' depends on it"
    ]


def test_the_real_program_reading_another_service_s_read_model_is_stopped() -> None:
    """The real dev stack, plus the shortcut a developer might take: let payment query order-history."""

    def payment_reads_order_history(program: dict[str, Any]) -> None:
        services = program["platform"].services
        history = services["order"].stores["order-history"]
        aws.iam.RolePolicy(
            "ms-dev-payment-reads-order-history",
            role=services["payment"].task_role_name,
            policy=history.table.arn.apply(lambda table: policy_document(allow(["dynamodb:Query"], table))),
            opts=pulumi.ResourceOptions(parent=services["payment"]),
        )

    report = run_policy_pack(run_variant(payment_reads_order_history), pack_dir=ROOT / "policies")
    messages = [m for p, m in mandatory(report) if p == "no-shared-databases"]
    expected = (
        "Database 'ms-dev-order-order-history' (DynamoDB table) owned by service 'ms-dev-order' is shared with "
        "service 'ms-dev-payment': aws:iam/rolePolicy:RolePolicy 'ms-dev-payment-reads-order-history' grants "
        "dynamodb:Query"
    )
    assert any(expected in m for m in messages), messages
