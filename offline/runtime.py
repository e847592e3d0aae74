"""Run the real Pulumi program for one stack under Pulumi's mock runtime and record the plan.

This is what the Python language host does for `pulumi preview`, with the engine replaced by
`RecordingMonitor` (the SDK's MockMonitor, which sees every RegisterResource request in full) and the
cloud replaced by `offline.mocks.AwsMocks`. Each run happens in a fresh `contextvars.Context` and on
its own asyncio event loop, so the Pulumi SDK's ambient settings (stack, config, root resource) and any
task or executor thread of one run never leak into the next: several stacks can be previewed in one
process (imports paid once), each as if it were alone. The loop is closed before the run returns
(tasks cancelled, async generators and the default executor shut down), so nothing is left for the
interpreter to finalise at exit.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import os
import runpy
import sys
import threading
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
    "list_stacks",
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


def list_stacks(project_dir: Path) -> list[str]:
    """The stacks that have a `Pulumi.<stack>.yaml` in `project_dir`, sorted by name."""
    return stackfile.list_stacks(project_dir)


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


def _make_recording_monitor(
    mocks: AwsMocks, plan: Plan, stack_urn_holder: list[str], thread_loops: list[asyncio.AbstractEventLoop]
) -> Any:
    from pulumi.runtime.mocks import MockMonitor

    local = threading.local()
    lock = threading.Lock()

    def own_thread_loop() -> None:
        # The SDK's MockMonitor answers RPCs on the executor's worker threads and gives each thread an
        # event loop it never closes (`_ensure_event_loop`), which the interpreter reports at exit as
        # "unclosed event loop". Create that loop here instead and keep it, so the run can close it.
        if threading.current_thread() is threading.main_thread() or getattr(local, "loop", None) is not None:
            return
        local.loop = asyncio.new_event_loop()
        asyncio.set_event_loop(local.loop)
        with lock:
            thread_loops.append(local.loop)

    class RecordingMonitor(MockMonitor):
        """MockMonitor that also keeps what the engine would: parent, provider, dependencies..."""

        def Invoke(self, request: Any) -> Any:
            own_thread_loop()
            return super().Invoke(request)

        def ReadResource(self, request: Any) -> Any:
            own_thread_loop()
            return super().ReadResource(request)

        def RegisterResource(self, request: Any) -> Any:
            own_thread_loop()
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
                    # The SDK collects dependencies in sets, so their order changes with the string hash
                    # seed from run to run; sorted, two previews of one program export the same lists.
                    dependencies=sorted(request.dependencies),
                    property_dependencies={k: sorted(v.urns) for k, v in sorted(request.propertyDependencies.items())},
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
        return _in_fresh_runtime(_run_in_fresh_context, project_dir, stack, files, config)
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
    return _in_fresh_runtime(_run_in_fresh_context, Path.cwd(), stack, files, files.config, program)


def _in_fresh_runtime(function: Callable[..., RunResult], *args: Any) -> RunResult:
    """Call `function(*args)` in a new `contextvars.Context` with a new event loop, closed afterwards."""
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    thread_loops: list[asyncio.AbstractEventLoop] = []
    try:
        with _registration_gc():
            return contextvars.Context().run(function, *args, thread_loops=thread_loops)
    finally:
        try:
            _close_loop(loop)  # joins the executor's worker threads
            for thread_loop in thread_loops:
                thread_loop.close()
        finally:
            asyncio.set_event_loop(None)


REGISTRATION_GC_THRESHOLDS = (100_000, 100, 100)
"""Cyclic-GC thresholds while a program registers its resources (Python's defaults: 700, 10, 10).

A run allocates millions of short-lived objects (requests, Outputs, futures, protobuf messages) and
keeps a growing plan; with the defaults the collector ran ~1,500 times per stack and took half of the
program's CPU time at 200 services, walking the same long-lived objects again and again. 100,000
allocations per young collection and 100 young collections per middle one bring that to about a
tenth, at the same peak memory (benchmarks/README.md has the measurements of this and of the other
settings tried).
"""


@contextlib.contextmanager
def _registration_gc() -> Iterator[None]:
    """For one run: everything alive before it (the SDK, provider modules, earlier stacks' plans) is
    moved out of the collector's sight (`gc.freeze`), and the thresholds are raised for the
    registration burst. Both are undone afterwards; the collector stays on, so cycles are still
    collected and finalizers (and their warnings) still run."""
    import gc

    old = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(*REGISTRATION_GC_THRESHOLDS)
    try:
        yield
    finally:
        gc.set_threshold(*old)
        gc.unfreeze()


def _close_loop(loop: asyncio.AbstractEventLoop) -> None:
    """What `asyncio.run` does on the way out: cancel what is left, then shut the loop down cleanly.

    After a program error the SDK can leave tasks pending; cancelling and awaiting them here (instead of
    letting the interpreter destroy them at exit) is what keeps "Task was destroyed but it is pending"
    and "Exception ignored" messages out of the output.
    """
    try:
        pending = [task for task in asyncio.all_tasks(loop) if not task.done()]
        for task in pending:
            task.cancel()
        if pending:
            loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.run_until_complete(loop.shutdown_default_executor())
    finally:
        loop.close()


def _run_in_fresh_context(
    project_dir: Path,
    stack: str,
    files: StackFiles,
    config: dict[str, str],
    program: Callable[[], object] | None = None,
    *,
    thread_loops: list[asyncio.AbstractEventLoop],
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
    monitor = _make_recording_monitor(AwsMocks(files.region), plan, [], thread_loops)
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
