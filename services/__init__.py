"""Service catalogue: one module per microservice, each exporting `SPEC` (a `ServiceSpec`).

A service is `services/<name>.py`, or, for a service whose code lives in this repo (the notification
Lambda), a package `services/<name>/` whose `service.py` holds the spec (the package itself stays the
deployable code, free of imports from the rest of the repo).

`load_catalog()` finds every spec in this package and checks the call and event graphs, so a typo in
a dependency name stops the program with one clear message before any resource is declared.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Iterable

from pydantic import ValidationError

from components.config import ConfigError
from services.spec import ServiceSpec

_NOT_SPECS = {"spec"}


def discover_specs() -> list[ServiceSpec]:
    """Every `SPEC` defined by a module (or a package's `service.py`) under `services/`, by name."""
    specs = []
    for module in pkgutil.iter_modules(__path__):
        if module.name in _NOT_SPECS or module.name.startswith("_"):
            continue
        name = f"{__name__}.{module.name}" + (".service" if module.ispkg else "")
        try:
            loaded = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if module.ispkg and exc.name == name:
                continue  # a package without service.py is not a service
            raise
        except ValidationError as exc:
            raise ConfigError(_spec_error(name, exc)) from None
        spec = getattr(loaded, "SPEC", None)
        if isinstance(spec, ServiceSpec):
            specs.append(spec)
    return sorted(specs, key=lambda s: s.name)


def _spec_error(module: str, exc: ValidationError) -> str:
    """One line naming the spec file, the field, the value and what is allowed."""
    error = exc.errors()[0]
    field = ".".join(str(p) for p in error["loc"])
    message = str(error["msg"]).removeprefix("Value error, ")
    more = f" (and {exc.error_count() - 1} more problems)" if exc.error_count() > 1 else ""
    path = module.replace(".", "/") + ".py"
    return f"service spec {path}: {field} = {error.get('input')!r}: {message}{more}"


def validate_catalog(specs: Iterable[ServiceSpec]) -> list[ServiceSpec]:
    """Check names are unique and every reference names a known service; return specs sorted."""
    specs = sorted(specs, key=lambda s: s.name)
    names = [s.name for s in specs]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ConfigError(f"service spec name {duplicates[0]!r} is defined more than once")
    known = set(names)
    allowed = ", ".join(sorted(known))
    published = {(s.name, t) for s in specs for t in s.publishes}
    for spec in specs:
        for callee in spec.calls:
            if callee not in known:
                raise ConfigError(
                    f"service spec '{spec.name}': calls = {callee!r}: unknown service; known services: {allowed}"
                )
            if callee == spec.name:
                raise ConfigError(f"service spec '{spec.name}': calls = {callee!r}: a service cannot call itself")
        for sub in spec.subscribes:
            if sub.delivery == "direct" and spec.kind != "lambda":
                raise ConfigError(
                    f"service spec '{spec.name}': subscribes.delivery = 'direct': only Lambda services can be "
                    "invoked directly by EventBridge; use 'queue'"
                )
            if sub.source not in known:
                raise ConfigError(
                    f"service spec '{spec.name}': subscribes.source = {sub.source!r}: unknown service; "
                    f"known services: {allowed}"
                )
            for detail_type in sub.detail_types:
                if (sub.source, detail_type) not in published:
                    offered = ", ".join(sorted(t for s, t in published if s == sub.source)) or "none"
                    raise ConfigError(
                        f"service spec '{spec.name}': subscribes.detailTypes = {detail_type!r}: "
                        f"'{sub.source}' does not publish it; it publishes: {offered}"
                    )
    store_names = [d.name for s in specs for d in s.data_stores]
    shared = sorted({n for n in store_names if store_names.count(n) > 1})
    if shared:
        raise ConfigError(
            f"data store name {shared[0]!r} is declared by more than one service: each service owns its own data"
        )
    _validate_patterns(specs)
    return specs


def _validate_patterns(specs: list[ServiceSpec]) -> None:
    """Outboxes, read models, sagas and declared operations name things that exist (one line each)."""
    by_name = {s.name: s for s in specs}
    allowed = ", ".join(sorted(by_name))
    published = {(s.name, t) for s in specs for t in s.publishes}
    for spec in specs:
        where = f"service spec '{spec.name}'"
        tables = {d.name: d for d in spec.data_stores if d.kind == "dynamodb"}
        own = ", ".join(sorted(tables)) or "none"
        if spec.outbox is not None:
            store = tables.get(spec.outbox.store)
            if store is None:
                raise ConfigError(
                    f"{where}: outbox.store = {spec.outbox.store!r}: not one of its DynamoDB stores ({own})"
                )
            if not store.stream:
                raise ConfigError(f"{where}: outbox.store = {store.name!r}: the table needs stream=True")
            if not spec.publishes:
                raise ConfigError(f"{where}: outbox: the service publishes no events")
        for model in spec.read_models:
            store = tables.get(model.store)
            if store is None:
                raise ConfigError(
                    f"{where}: read_models.{model.name}.store = {model.store!r}: not one of its DynamoDB stores ({own})"
                )
            if model.store == (spec.outbox.store if spec.outbox else None):
                raise ConfigError(
                    f"{where}: read_models.{model.name}.store = {model.store!r}: that table is the outbox"
                )
            keys = (store.hash_key, *((store.range_key,) if store.range_key else ()))
            if len(model.key) != len(keys):
                raise ConfigError(
                    f"{where}: read_models.{model.name}.key = {list(model.key)!r}: table {store.name!r} has key "
                    f"{list(keys)!r}; name one detail field per key attribute"
                )
            for sub in model.subscribes:
                for detail_type in sub.detail_types:
                    if (sub.source, detail_type) not in published:
                        raise ConfigError(
                            f"{where}: read_models.{model.name}.subscribes.detailTypes = {detail_type!r}: "
                            f"{sub.source!r} does not publish it"
                        )
        for saga in spec.sagas:
            commands = [*((s.participant, s.command) for s in saga.steps)]
            steps = [s.name for s in saga.steps]
            if len(set(steps)) != len(steps):
                raise ConfigError(f"{where}: sagas.{saga.name}.steps: step names must be unique")
            participants = [s.participant for s in saga.steps]
            if saga.on_failure is not None:
                participants.append(saga.on_failure.participant)
                commands.append((saga.on_failure.participant, saga.on_failure.command))
            for participant in participants:
                other = by_name.get(participant)
                if other is None:
                    raise ConfigError(
                        f"{where}: sagas.{saga.name}.participant = {participant!r}: unknown service; "
                        f"known services: {allowed}"
                    )
                if other.kind != "fargate":
                    raise ConfigError(
                        f"{where}: sagas.{saga.name}.participant = {participant!r}: only Fargate services take "
                        "saga commands (they poll their own command queue)"
                    )
            for step in saga.steps:
                if step.heartbeat_seconds is not None and step.heartbeat_seconds >= step.timeout_seconds:
                    raise ConfigError(
                        f"{where}: sagas.{saga.name}.steps.{step.name}.heartbeatSeconds = {step.heartbeat_seconds}: "
                        f"must be less than timeoutSeconds ({step.timeout_seconds})"
                    )
        for use in spec.uses:
            callee = use.split(".", 1)[0]
            if "." not in use or callee not in spec.calls:
                raise ConfigError(
                    f"{where}: uses = {use!r}: write '<service>.<operationId>' for a service it `calls` "
                    f"({', '.join(spec.calls) or 'none'})"
                )


def load_catalog() -> list[ServiceSpec]:
    return validate_catalog(discover_specs())
