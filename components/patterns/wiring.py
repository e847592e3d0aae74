"""How the data patterns join the platform, from the specs alone (called by `components/platform.py`).

Two calls, so the wiring in `build_platform` stays two lines:

    environment = pattern_environment(catalog, ctx)      # BEFORE the services: what each app is told
    services = {... FargateMicroservice(..., app_environment=environment.get(name, {})) ...}
    patterns = build_patterns(catalog, ctx, services, bus)  # AFTER the services: children of their owners

The names the apps are told (command queue URLs, saga ARNs) are fixed physical names, so they are
known before the resources exist; `build_patterns` declares the resources with exactly those names.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import pulumi

from components.patterns import PatternContext
from components.patterns.outbox import Outbox, OutboxArgs
from components.patterns.readmodel import ReadModel, ReadModelArgs
from components.patterns.saga import (
    Saga,
    SagaArgs,
    SagaParticipant,
    SagaParticipantArgs,
    command_queue_name,
    env_name,
    state_machine_name,
)
from model.spec import ServiceSpec

COMMAND_QUEUE_ENV = "SAGA_COMMAND_QUEUE_URL"
OUTBOX_RELAY_ENV = "OUTBOX_RELAY"
"""`stream`: the app only writes outbox items; the pipe publishes them (apps/order/app.py reads it)."""


class _Service(Protocol):
    """What the patterns need from a FargateMicroservice."""

    task_role_name: pulumi.Output[str]
    task_role_arn: pulumi.Output[str]

    @property
    def stores(self) -> Mapping[str, Any]: ...


class _Bus(Protocol):
    bus_arn: pulumi.Output[str]
    bus_name: pulumi.Output[str]
    targets_dlq_arn: pulumi.Output[str]


def _sagas(catalog: Sequence[ServiceSpec]) -> list[tuple[ServiceSpec, object]]:
    return [(spec, saga) for spec in catalog for saga in spec.sagas]


def participants_of(catalog: Sequence[ServiceSpec]) -> dict[str, list[str]]:
    """Participant service -> the saga state machine names it answers (sorted)."""
    found: dict[str, set[str]] = {}
    for spec in catalog:
        for saga in spec.sagas:
            for participant in saga.participants:
                found.setdefault(participant, set()).add(saga.name)
    return {name: sorted(sagas) for name, sagas in sorted(found.items())}


def pattern_environment(catalog: Sequence[ServiceSpec], ctx: PatternContext) -> dict[str, dict[str, str]]:
    """Per service, the settings its app needs for the patterns it takes part in."""
    env: dict[str, dict[str, str]] = {}
    for participant in participants_of(catalog):
        env.setdefault(participant, {})[COMMAND_QUEUE_ENV] = ctx.queue_url(command_queue_name(ctx.prefix, participant))
    for spec in catalog:
        for saga in spec.sagas:
            arn = ctx.arn("states", f"stateMachine:{state_machine_name(ctx.prefix, saga)}")
            env.setdefault(spec.name, {})[env_name(saga)] = arn
        if spec.outbox is not None:
            env.setdefault(spec.name, {})[OUTBOX_RELAY_ENV] = "stream"
    return env


@dataclass
class Patterns:
    sagas: dict[str, Saga] = field(default_factory=dict)
    participants: dict[str, SagaParticipant] = field(default_factory=dict)
    outboxes: dict[str, Outbox] = field(default_factory=dict)
    read_models: dict[str, ReadModel] = field(default_factory=dict)

    def publisher_role_arn(self, service: str, task_role_arn: pulumi.Input[str]) -> pulumi.Input[str]:
        """Who may put `service`'s source on the bus: its outbox pipe if it has one, else its task role."""
        outbox = self.outboxes.get(service)
        return outbox.role_arn if outbox is not None else task_role_arn

    @property
    def dead_letter_queue_names(self) -> dict[str, pulumi.Output[str]]:
        queues = {f"{name}-saga-commands": p.dlq_name for name, p in self.participants.items()}
        queues |= {f"{name}-outbox": o.dlq_name for name, o in self.outboxes.items()}
        queues |= {f"{name}-read-model": r.dlq_name for name, r in self.read_models.items()}
        return queues

    @property
    def rule_names(self) -> list[pulumi.Output[str]]:
        """The bus rules the read models declare (for the dashboard)."""
        return [name for model in self.read_models.values() for name in model.rule_names]

    @property
    def projection_functions(self) -> dict[str, pulumi.Output[str]]:
        return {f"{name}-projection": r.function_name for name, r in self.read_models.items()}

    def exports(self) -> dict[str, object]:
        return {
            "sagaStateMachineArns": {name: s.state_machine_arn for name, s in self.sagas.items()},
            "outboxPipeArns": {name: o.pipe_arn for name, o in self.outboxes.items()},
        }


def build_patterns(
    catalog: Sequence[ServiceSpec],
    ctx: PatternContext,
    services: Mapping[str, _Service],
    bus: _Bus,
    names: Mapping[str, str],
) -> Patterns:
    """Declare every saga, participant queue, outbox and read model the specs ask for, each as a child
    of the service that owns it. `names[service]` is the service component's name (`ms-dev-order`)."""
    patterns = Patterns()
    by_name = {s.name: s for s in catalog}
    for participant, sagas in participants_of(catalog).items():
        service = services[participant]
        commands = [c for spec in catalog for saga in spec.sagas for c in saga.commands_for(participant)]
        patterns.participants[participant] = SagaParticipant(
            f"{names[participant]}-saga-participant",
            SagaParticipantArgs(
                service=participant,
                commands=commands,
                state_machine_arns=[ctx.arn("states", f"stateMachine:{ctx.prefix}-{saga_name}") for saga_name in sagas],
                task_role_name=service.task_role_name,
                context=ctx,
            ),
            opts=pulumi.ResourceOptions(parent=service),  # type: ignore[arg-type]  # a ComponentResource
        )
    for spec in catalog:
        owner = services.get(spec.name)
        if owner is None:
            continue
        parent = pulumi.ResourceOptions(parent=owner)  # type: ignore[arg-type]
        for saga in spec.sagas:
            patterns.sagas[saga.name] = Saga(
                f"{names[spec.name]}-{saga.name}-saga",
                SagaArgs(
                    saga=saga,
                    orchestrator=spec.name,
                    queues={
                        p: (patterns.participants[p].queue_arn, patterns.participants[p].queue_url)
                        for p in saga.participants
                    },
                    orchestrator_task_role_name=owner.task_role_name,
                    context=ctx,
                ),
                opts=parent,
            )
        if spec.outbox is not None:
            table = owner.stores[spec.outbox.store]
            patterns.outboxes[spec.name] = Outbox(
                f"{names[spec.name]}-outbox",
                OutboxArgs(
                    service=spec.name,
                    event_source=by_name[spec.name].event_source,
                    detail_types=spec.publishes,
                    table_arn=table.table.arn,
                    stream_arn=table.stream_arn,
                    bus_arn=bus.bus_arn,
                    context=ctx,
                ),
                opts=parent,
            )
        for model in spec.read_models:
            table = owner.stores[model.store]
            patterns.read_models[f"{spec.name}-{model.name}"] = ReadModel(
                f"{names[spec.name]}-{model.name}-read-model",
                ReadModelArgs(
                    service=spec.name,
                    model=model,
                    table_arn=table.table.arn,
                    table_name=table.table.name,
                    bus_name=bus.bus_name,
                    targets_dlq_arn=bus.targets_dlq_arn,
                    context=ctx,
                ),
                opts=parent,
            )
    return patterns
