"""A newcomer adds a saga step and a read model by editing specs only: the real program, run with the
edited catalogue, declares everything that follows and the policy pack still passes; a mistake in such
an edit is one line naming the spec field."""

from __future__ import annotations

import json

import pytest

from components.platform import PlatformInputs, build_platform
from model.config import load_stack_config
from model.errors import ConfigError
from model.spec import DynamoStore, ReadModel, SagaStep, ServiceSpec, Subscription
from offline.policy import run_policy_pack
from offline.runtime import read_stack_files, run_function
from services import load_catalog, validate_catalog
from tests.conftest import ROOT, only

CATALOG = load_catalog()
ORDER = next(s for s in CATALOG if s.name == "order")


def _edit(name: str, **changes: object) -> list[ServiceSpec]:
    return [s.model_copy(update=changes) if s.name == name else s for s in CATALOG]


def _extended_catalog() -> list[ServiceSpec]:
    order = next(s for s in CATALOG if s.name == "order")
    saga = order.sagas[0]
    # New step between payment and confirmation: user checks the customer's credit (undo: release it).
    steps = (
        *saga.steps[:2],
        SagaStep(name="CheckCredit", participant="user", command="CheckCredit", compensation="ReleaseCredit"),
        saga.steps[2],
    )
    catalog = _edit("order", sagas=(saga.model_copy(update={"steps": steps}),))
    user = next(s for s in catalog if s.name == "user")
    user = user.model_copy(
        update={
            "data_stores": (*user.data_stores, DynamoStore(name="user-directory", hash_key="userId")),
            "read_models": (
                ReadModel(
                    name="user-directory",
                    store="user-directory",
                    key=("userId",),
                    fields=("email",),
                    subscribes=(Subscription(source="user", detail_types=("UserRegistered",)),),
                ),
            ),
        }
    )
    return validate_catalog([user if s.name == "user" else s for s in catalog])


def test_a_saga_step_and_a_read_model_from_the_specs_alone() -> None:
    catalog = _extended_catalog()
    files = read_stack_files(ROOT, "dev")

    def program() -> None:
        build_platform(PlatformInputs.resolve("dev", load_stack_config(), catalog))

    plan = run_function(program, stack="dev", config=files.config, region=files.region).plan
    machine = only(plan, "aws:sfn/stateMachine:StateMachine", "order-placement-saga-workflow")
    states = json.loads(machine.inputs["definition"])["States"]
    assert states["AuthorizePayment"]["Next"] == "CheckCredit" and states["CheckCredit"]["Next"] == "ConfirmOrder"
    assert states["CheckCredit"]["Parameters"]["QueueUrl"].endswith("ms-dev-user-saga-commands")
    # Failing at ConfirmOrder now undoes the credit check first, then payment, then inventory.
    assert states["ConfirmOrder"]["Catch"][-1]["Next"] == "CompensateReleaseCredit"
    assert states["CompensateReleaseCredit"]["Next"] == "CompensateVoidPayment"
    # The new participant got its own queue and its answer grant; the read model its queue, rule and projection.
    only(plan, "aws:sqs/queue:Queue", "ms-dev-user-saga-participant-queue")
    grant = json.loads(
        only(plan, "aws:iam/rolePolicy:RolePolicy", "ms-dev-user-saga-participant-grants").inputs["policy"]
    )
    assert any(
        s["Sid"] == "AnswerSagaCommands" and s["Resource"] == [machine.outputs["arn"]] for s in grant["Statement"]
    )
    only(plan, "aws:lambda/function:Function", "ms-dev-user-user-directory-read-model-projection")
    rule = only(plan, "aws:cloudwatch/eventRule:EventRule", "ms-dev-user-user-directory-read-model-user")
    assert json.loads(rule.inputs["eventPattern"])["detail-type"] == ["UserRegistered"]
    report = run_policy_pack(plan, pack_dir=ROOT / "policies")
    assert not report.mandatory, [(v.policy_name, v.message) for v in report.mandatory]


@pytest.mark.parametrize(
    ("catalog", "message"),
    [
        (
            lambda: _edit(
                "order",
                outbox=None,
                read_models=(),
                sagas=(
                    ORDER.sagas[0].model_copy(
                        update={"steps": (SagaStep(name="Ship", participant="shipping", command="Ship"),)}
                    ),
                ),
            ),
            "service spec 'order': sagas.order-placement.participant = 'shipping': unknown service; known services: ",
        ),
        (
            lambda: _edit(
                "order",
                read_models=(
                    ReadModel(
                        name="xyz",
                        store="users-db",
                        key=("userId",),
                        subscribes=(Subscription(source="order", detail_types=("OrderPlaced",)),),
                    ),
                ),
            ),
            "service spec 'order': read_models.xyz.store = 'users-db': not one of its DynamoDB stores (order-history, orders-table)",
        ),
        (
            lambda: _edit(
                "order",
                read_models=(
                    ReadModel(
                        name="xyz",
                        store="order-history",
                        key=("userId",),
                        subscribes=(Subscription(source="order", detail_types=("OrderPlaced",)),),
                    ),
                ),
            ),
            "service spec 'order': read_models.xyz.key = ['userId']: table 'order-history' has key ['userId', 'orderId']; name one detail field per key attribute",
        ),
        (
            lambda: _edit("user", outbox=next(s for s in CATALOG if s.name == "order").outbox),
            "service spec 'user': outbox.store = 'orders-table': not one of its DynamoDB stores (none)",
        ),
        (
            lambda: _edit("order", uses=("payment.getPayment", "shipping.track")),
            "service spec 'order': uses = 'shipping.track': write '<service>.<operationId>' for a service it `calls` (inventory, payment, user)",
        ),
    ],
)
def test_a_mistake_in_a_pattern_spec_is_one_line(catalog: object, message: str) -> None:
    with pytest.raises(ConfigError) as error:
        validate_catalog(catalog())  # type: ignore[operator]
    assert str(error.value).startswith(message), str(error.value)
