"""Run the real Pulumi program for one stack under Pulumi's mock runtime and record the plan.

This is what the Python language host does for `pulumi preview`, with the engine replaced by
`RecordingMonitor` (the SDK's MockMonitor, which sees every RegisterResource request in full) and the
cloud replaced by `offline.mocks.AwsMocks`. Each run happens in a fresh `contextvars.Context`, so the
Pulumi SDK's ambient settings (stack, config, root resource) never leak from one run into the next.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import os
import runpy
import sys
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from google.protobuf import json_format

from offline import stackfile
from offline.mocks import AwsMocks, MockGap
from offline.plan import Plan, PlannedResource
from offline.stackfile import SECRET_PLACEHOLDER, StackFileError, StackFiles

__all__ = [
    "SECRET_PLACEHOLDER",
    "OfflineError",
    "RunResult",
    "StackFiles",
    "read_stack_files",
    "run_function",
    "run_program",
]


class OfflineError(Exception):
    """The program could not be previewed: bad config, a program error, or a gap in the mocks.

    `plan` holds whatever was registered before the error (for a config error: only the stack).
    """

    def __init__(self, message: str, plan: Plan | None = None) -> None:
        super().__init__(message)
        self.plan = plan


@dataclass
class Diagnostic:
    severity: str
    message: str


def read_stack_files(project_dir: Path, stack: str) -> StackFiles:
    """Pulumi.yaml and Pulumi.<stack>.yaml read strictly (offline/stackfile.py); OfflineError if bad."""
    try:
        return stackfile.read_stack_files(project_dir, stack)
    except StackFileError as exc:
        raise OfflineError(str(exc)) from None


def _plain(value: Any) -> Any:
    """protobuf Struct numbers are doubles; give integral ones back as ints like the CLI prints them."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _make_recording_monitor(mocks: AwsMocks, plan: Plan, stack_urn_holder: list[str]) -> Any:
    from pulumi.runtime.mocks import MockMonitor

    class RecordingMonitor(MockMonitor):
        """MockMonitor that also keeps what the engine would: parent, provider, dependencies..."""

        def RegisterResource(self, request: Any) -> Any:
            response = super().RegisterResource(request)
            inputs = _plain(json_format.MessageToDict(request.object)) if request.HasField("object") else {}
            outputs = _plain(json_format.MessageToDict(response.object)) if response.HasField("object") else {}
            if request.type == "pulumi:pulumi:Stack":
                stack_urn_holder.append(response.urn)
            plan.resources.append(
                PlannedResource(
                    urn=response.urn,
                    type=request.type,
                    name=request.name,
                    custom=bool(request.custom),
                    parent=request.parent,
                    provider=request.provider,
                    id=response.id,
                    inputs=inputs,
                    outputs=outputs,
                    dependencies=list(request.dependencies),
                    property_dependencies={k: list(v.urns) for k, v in sorted(request.propertyDependencies.items())},
                    remote=bool(request.remote),
                    protect=bool(request.protect),
                    retain_on_delete=bool(request.retainOnDelete),
                    delete_before_replace=bool(request.deleteBeforeReplace),
                    secret_outputs=list(request.additionalSecretOutputs),
                )
            )
            return response

        def RegisterResourceOutputs(self, request: Any) -> Any:
            if stack_urn_holder and request.urn == stack_urn_holder[0] and request.HasField("outputs"):
                plan.outputs = _plain(json_format.MessageToDict(request.outputs))
            return super().RegisterResourceOutputs(request)

    return RecordingMonitor(mocks)


class _CollectingHandler(logging.Handler):
    def __init__(self, sink: list[Diagnostic]) -> None:
        super().__init__(logging.DEBUG)
        self.sink = sink

    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno >= logging.INFO:
            self.sink.append(Diagnostic(record.levelname.lower(), record.getMessage()))


@contextlib.contextmanager
def _program_environment(project_dir: Path) -> Iterator[None]:
    """cwd and sys.path as the language host sets them for the program."""
    old_cwd = Path.cwd()
    old_path = list(sys.path)
    os.chdir(project_dir)
    sys.path.insert(0, str(project_dir))
    try:
        yield
    finally:
        os.chdir(old_cwd)
        sys.path[:] = old_path


@dataclass
class RunResult:
    plan: Plan
    diagnostics: list[Diagnostic] = field(default_factory=list)
    config: dict[str, str] = field(default_factory=dict)
    """The config the program ran with; `secure:` values are placeholders, listed in `secret_keys`."""
    secret_keys: list[str] = field(default_factory=list)


def run_program(project_dir: Path, stack: str, *, config_overrides: Mapping[str, str] | None = None) -> RunResult:
    """Run `<project_dir>/__main__.py` for `stack` under mocks; return the recorded plan.

    Raises OfflineError with a one-line message for config errors (the program's ConfigError, a
    `pulumi.RunError`) and gaps in the mocks; other program exceptions propagate with their traceback,
    as `pulumi preview` shows them.
    """
    project_dir = project_dir.resolve()
    files = read_stack_files(project_dir, stack)
    config = {**files.config, **(config_overrides or {})}
    try:
        return contextvars.Context().run(_run_in_fresh_context, project_dir, stack, files, config)
    except OfflineError as exc:
        # The program names the key; say where the stack file sets it, and never quote a placeholder.
        message = stackfile.located(stackfile.mask_secrets(str(exc)), files, config_overrides)
        raise OfflineError(message, exc.plan) from None


def run_function(
    program: Callable[[], object],
    *,
    stack: str = "test",
    project: str = "microservices",
    config: Mapping[str, str] | None = None,
    secret_keys: list[str] | None = None,
    region: str = "us-east-1",
) -> RunResult:
    """Run any function that declares resources (a component under test) the same way as a program."""
    files = StackFiles(project=project, config=dict(config or {}), secret_keys=list(secret_keys or []), region=region)
    return contextvars.Context().run(_run_in_fresh_context, Path.cwd(), stack, files, files.config, program)


def _run_in_fresh_context(
    project_dir: Path,
    stack: str,
    files: StackFiles,
    config: dict[str, str],
    program: Callable[[], object] | None = None,
) -> RunResult:
    import pulumi
    from pulumi.runtime import mocks as pulumi_mocks
    from pulumi.runtime import settings as pulumi_settings
    from pulumi.runtime.stack import run_in_stack
    from pulumi.runtime.sync_await import _sync_await

    plan = Plan(project=files.project, stack=stack)
    diagnostics: list[Diagnostic] = []
    logger = logging.getLogger(f"offline.preview.{stack}")
    logger.propagate = False
    logger.handlers[:] = [_CollectingHandler(diagnostics)]
    monitor = _make_recording_monitor(AwsMocks(files.region), plan, [])
    settings = pulumi_mocks.MockSettings(
        monitor=monitor,
        monitor_features=set(monitor.GetDeploymentInfo(None).supportedFeatures),
        engine=pulumi_mocks.MockEngine(logger),
        project=files.project,
        stack=stack,
        dry_run=True,
        organization="organization",
        root_directory=str(project_dir),
        callbacks=None,
    )
    pulumi_settings.configure(settings)
    pulumi.runtime.set_all_config(config, files.secret_keys)

    def run_main() -> None:
        runpy.run_path(str(project_dir / "__main__.py"), run_name="__main__")

    body = program if program is not None else run_main

    def run_body() -> None:
        body()

    with _program_environment(project_dir):
        try:
            _sync_await(run_in_stack(run_body))
        except (pulumi.RunError, MockGap) as exc:
            raise OfflineError(str(exc), plan) from None
    return RunResult(plan=plan, diagnostics=diagnostics, config=config, secret_keys=files.secret_keys)
