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
from pathlib import Path

from pydantic import ValidationError

from model.errors import ConfigError
from model.spec import ServiceSpec

REPO_ROOT = Path(__file__).resolve().parent.parent

_SOURCES: dict[str, tuple[ServiceSpec, str]] = {}
"""Spec name -> (the spec, the file that defines it), filled by `discover_specs`."""


def spec_file(spec: ServiceSpec) -> str | None:
    """The file that defines `spec` (`services/<module>.py`), or None for a spec built elsewhere."""
    found = _SOURCES.get(spec.name)
    return found[1] if found and found[0] is spec else None


def _label(spec: ServiceSpec) -> str:
    """How messages name a spec: its file when it came from one, else its name."""
    return spec_file(spec) or repr(spec.name)


def discover_specs() -> list[ServiceSpec]:
    """Every `SPEC` defined by a module (or a package's `service.py`) under `services/`, by name."""
    specs = []
    for module in pkgutil.iter_modules(__path__):
        if module.name.startswith("_"):
            continue
        name = f"{__name__}.{module.name}" + (".service" if module.ispkg else "")
        try:
            loaded = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if module.ispkg and exc.name == name:
                continue  # a package without service.py is not a service
            raise ConfigError(_python_error(name, module.module_finder, exc) + _moved_hint(exc)) from None
        except ValidationError as exc:
            raise ConfigError(_spec_error(name, exc)) from None
        except Exception as exc:
            # A spec file is input: a typo in it (SyntaxError, NameError, a bad import) is reported as
            # one line at the file's line, like any other input error, not as a crash of the program.
            raise ConfigError(_python_error(name, module.module_finder, exc)) from None
        spec = getattr(loaded, "SPEC", None)
        if module.ispkg and spec is None:
            continue
        if not isinstance(spec, ServiceSpec):
            raise ConfigError(
                f"service spec {_path(name)}: SPEC = {type(spec).__name__}: must be a ServiceSpec(...) "
                "(every module in services/ defines one)"
            )
        specs.append(spec)
        _SOURCES[spec.name] = (spec, _path(name))
    return sorted(specs, key=lambda s: s.name)


def _python_error(module: str, finder: object, exc: Exception) -> str:
    """`service spec services/x.py:LINE: <Error>: <message>` for an exception raised importing a spec."""
    import traceback

    path = _path(module)
    line: int | None = None
    if isinstance(exc, SyntaxError) and exc.filename and exc.filename.endswith(path.split("/", 1)[1]):
        line = exc.lineno
    else:
        for frame in traceback.extract_tb(exc.__traceback__):
            if frame.filename.endswith(path.split("/", 1)[1]):
                line = frame.lineno
    text = exc.msg if isinstance(exc, SyntaxError) else " ".join(str(exc).split())
    where = f"{path}:{line}" if line else path
    return f"service spec {where}: {type(exc).__name__}: {text}"


def _moved_hint(exc: ModuleNotFoundError) -> str:
    """For a spec file written before the spec models moved from `services/spec.py` to `model/spec.py`."""
    if exc.name == "services.spec":
        return " (the spec models live in model.spec: `from model.spec import ServiceSpec, ...`)"
    return ""


def _spec_error(module: str, exc: ValidationError) -> str:
    """One line naming the spec file, the field, the value and what is allowed."""
    error = exc.errors()[0]
    field = ".".join(str(p) for p in error["loc"]) or exc.title
    message = str(error["msg"]).removeprefix("Value error, ")
    count = exc.error_count()
    more = f" (and {count - 1} more problem{'s' if count > 2 else ''})" if count > 1 else ""
    path = _path(module)
    if error["type"] in ("missing", "extra_forbidden"):  # the input is the whole object: do not dump it
        shown = f"{field}: {'is required' if error['type'] == 'missing' else 'unknown field'}"
        if error["type"] == "extra_forbidden":
            shown += f" (in {exc.title})"
        return f"service spec {path}: {shown}{more}"
    return f"service spec {path}: {field} = {error.get('input')!r}: {message}{more}"


def _path(module: str) -> str:
    return module.replace(".", "/") + ".py"


def validate_catalog(specs: Iterable[ServiceSpec]) -> list[ServiceSpec]:
    """Check names are unique and every reference names a known service; return specs sorted."""
    specs = sorted(specs, key=lambda s: s.name)
    names = [s.name for s in specs]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        where = ", ".join(_label(s) for s in specs if s.name == duplicates[0])
        raise ConfigError(f"service spec name {duplicates[0]!r} is defined more than once: {where}")
    known = set(names)
    by_name = {s.name: s for s in specs}
    allowed = ", ".join(sorted(known))
    published = {(s.name, t) for s in specs for t in s.publishes}
    for spec in specs:
        for callee in spec.calls:
            if callee not in known:
                raise ConfigError(
                    f"service spec {_label(spec)}: calls = {callee!r}: unknown service; known services: {allowed}"
                )
            if callee == spec.name:
                raise ConfigError(f"service spec {_label(spec)}: calls = {callee!r}: a service cannot call itself")
            accepted = by_name[callee].accepts
            if spec.name not in accepted:
                raise ConfigError(
                    f"service spec {_label(spec)}: calls = {callee!r}: '{callee}' does not accept calls from "
                    f"'{spec.name}' (its accepts: {', '.join(accepted) or 'none'}); add {spec.name!r} to the "
                    f"accepts of {_label(by_name[callee])}, or remove the call"
                )
        for caller in spec.accepts:
            if caller not in known:
                raise ConfigError(
                    f"service spec {_label(spec)}: accepts = {caller!r}: unknown service; known services: {allowed}"
                )
            if caller == spec.name:
                raise ConfigError(f"service spec {_label(spec)}: accepts = {caller!r}: a service cannot call itself")
        _check_kind_fields(spec)
        for sub in spec.subscribes:
            if sub.delivery == "direct" and spec.kind != "lambda":
                raise ConfigError(
                    f"service spec {_label(spec)}: subscribes.delivery = 'direct': only Lambda services can be "
                    "invoked directly by EventBridge; use 'queue'"
                )
            if sub.source not in known:
                raise ConfigError(
                    f"service spec {_label(spec)}: subscribes.source = {sub.source!r}: unknown service; "
                    f"known services: {allowed}"
                )
            for detail_type in sub.detail_types:
                if (sub.source, detail_type) not in published:
                    offered = ", ".join(sorted(t for s, t in published if s == sub.source)) or "none"
                    raise ConfigError(
                        f"service spec {_label(spec)}: subscribes.detailTypes = {detail_type!r}: "
                        f"'{sub.source}' does not publish it; it publishes: {offered}"
                    )
    store_names = [d.name for s in specs for d in s.data_stores]
    shared = sorted({n for n in store_names if store_names.count(n) > 1})
    if shared:
        owners = ", ".join(_label(s) for s in specs if any(d.name == shared[0] for d in s.data_stores))
        raise ConfigError(
            f"data store name {shared[0]!r} is declared by more than one service ({owners}): each service owns "
            "its own data"
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


def _check_kind_fields(spec: ServiceSpec) -> None:
    """Fields only one kind of service understands, and what a Lambda can own outside the VPC."""
    if spec.kind != "lambda":
        for field, value in (("codeDir", spec.code_dir), ("notifies", spec.notifies or None)):
            if value is not None:
                raise ConfigError(
                    f"service spec {_label(spec)}: {field} = {value!r}: only Lambda services (kind 'lambda') have it"
                )
        return
    code_dir = REPO_ROOT / (spec.code_dir or f"services/{spec.name}")
    if not (code_dir / "handler.py").is_file():
        raise ConfigError(
            f"service spec {_label(spec)}: codeDir = {spec.code_dir or f'services/{spec.name}'!r}: no handler.py "
            "there; a Lambda service needs its code folder with handler.py (entry point handler.handle)"
        )
    for store in spec.data_stores:
        if store.kind != "dynamodb":
            raise ConfigError(
                f"service spec {_label(spec)}: dataStores.kind = {store.kind!r}: a Lambda service runs outside the "
                "VPC and can own only 'dynamodb' stores; give postgres/redis data to a Fargate service"
            )
    for attr in ("image", "public_paths", "secrets"):
        if getattr(spec, attr):
            raise ConfigError(
                f"service spec {_label(spec)}: {attr} = {getattr(spec, attr)!r}: not supported for a Lambda service"
            )


def load_catalog() -> list[ServiceSpec]:
    return validate_catalog(discover_specs())
