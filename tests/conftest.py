"""Shared fixtures: offline previews of the real stacks (run once per test session) and a helper to
run a single component under the same recording mock runtime."""

from __future__ import annotations

import ast
import os
from collections.abc import Callable, Iterable
from pathlib import Path

import pytest

from components.context import PlatformContext
from model.spec import DynamoStore, SecretRef, ServiceSpec, Subscription
from offline.mocks import ACCOUNT_ID
from offline.plan import Plan, PlannedResource
from offline.runtime import RunResult, read_stack_files, run_function, run_program

ROOT = Path(__file__).resolve().parent.parent
STACKS = ("dev", "staging", "prod")
EXTENDED = "+extra"
"""Suffix of a stack variant whose catalogue has one more service (`extended_catalog`)."""
VARIANTS = (*STACKS, *(f"{stack}{EXTENDED}" for stack in STACKS))
"""Every stack, and every stack with an extra service: stack-level checks run over all of them."""

_plans: dict[str, RunResult] = {}

TEST_KEY_ARN = f"arn:aws:kms:us-east-1:{ACCOUNT_ID}:key/11111111-2222-4333-a444-555555555555"
TEST_CONTEXT = PlatformContext(
    environment="test", account_id=ACCOUNT_ID, region="us-east-1", partition="aws", tags={"Environment": "test"}
).with_key(TEST_KEY_ARN)
"""The shared facts a component under test receives (what `build_platform` passes in a real stack)."""


def preview(stack: str) -> RunResult:
    """The offline preview of a real stack, or of a `VARIANTS` entry (cached: the program is deterministic)."""
    if stack not in _plans:
        if stack.endswith(EXTENDED):
            _plans[stack] = _shared(stack, lambda: _preview_extended(stack.removesuffix(EXTENDED)))
        else:
            _plans[stack] = _shared(stack, lambda: run_program(ROOT, stack))
    return _plans[stack]


_shared_dir: list[Path] = []


@pytest.fixture(scope="session", autouse=True)
def _share_previews_between_workers(tmp_path_factory: pytest.TempPathFactory) -> None:
    """With pytest-xdist, the workers of one run share a parent of their temporary folders."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        _shared_dir[:] = [tmp_path_factory.getbasetemp().parent]


def _shared(key: str, compute: Callable[[], RunResult]) -> RunResult:
    """Compute once per test run, not once per xdist worker: the first worker to ask computes the
    preview under a file lock and pickles it; the others wait for the lock and read it (each preview
    takes seconds of CPU, and the two workers share two cores)."""
    if not _shared_dir:
        return compute()
    import fcntl
    import pickle

    folder = _shared_dir[0] / "previews"
    folder.mkdir(exist_ok=True)
    target = folder / f"{key}.pickle"
    with (folder / f"{key}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if target.exists():
            result: RunResult = pickle.loads(target.read_bytes())
            return result
        result = compute()
        partial = target.with_suffix(".partial")
        partial.write_bytes(pickle.dumps(result))
        partial.replace(target)
        return result


def extended_catalog() -> list[ServiceSpec]:
    """The real catalogue plus one service added the way the README's "Adding a service" says: a spec
    (its own store, calls to an existing service, events it publishes, a subscription to an existing
    publisher) and one `calls` entry in an existing service (with the matching `accepts` entries). Everything is derived from the catalogue,
    so it works whatever services exist."""
    from services import load_catalog, validate_catalog

    catalog = load_catalog()
    fargate = [s for s in catalog if s.kind == "fargate"]
    publisher = next(s for s in catalog if s.publishes)
    callee, caller = fargate[0], fargate[-1]
    extra = ServiceSpec(
        name="zz-extra",
        description="A service added by the tests, the way the README says",
        image="public.ecr.aws/nginx/nginx-unprivileged:1.27-alpine",
        run_as_user="101:101",
        sizing={"cpu": 256, "memory": 512},
        public_paths=("/zz-extra",),
        calls=(callee.name,),
        data_stores=(DynamoStore(name="zz-extra-table", hash_key="id"),),
        publishes=("ZzExtraCreated",),
        subscribes=(Subscription(source=publisher.name, detail_types=(publisher.publishes[0],)),),
        secrets=(SecretRef(env_name="ZZ_EXTRA_API_KEY", description="a key the extra service reads"),),
    )
    # Calls are two-sided: the extra service accepts its caller, and its callee accepts it.
    extra = extra.model_copy(update={"accepts": (caller.name,)})
    calling = caller.model_copy(update={"calls": (*caller.calls, extra.name)})
    accepting = callee.model_copy(update={"accepts": (*callee.accepts, extra.name)})
    changed = {caller.name: calling, callee.name: accepting}
    return validate_catalog([changed.get(s.name, s) for s in catalog] + [extra])


def _preview_extended(stack: str) -> RunResult:
    import pulumi

    from components.platform import PlatformInputs, build_platform
    from model.config import load_stack_config

    files = read_stack_files(ROOT, stack)
    catalog = extended_catalog()

    def program() -> None:  # __main__.py with the extended catalogue instead of load_catalog()
        platform = build_platform(PlatformInputs.resolve(pulumi.get_stack(), load_stack_config(), catalog))
        for key, value in platform.exports().items():
            pulumi.export(key, value)

    old = Path.cwd()
    os.chdir(ROOT)  # as the language host runs the program
    try:
        return run_function(
            program, stack=stack, config=files.config, secret_keys=files.secret_keys, region=files.region
        )
    finally:
        os.chdir(old)


def catalog_of(stack: str) -> list[ServiceSpec]:
    """The service catalogue a `VARIANTS` entry was built from."""
    from services import load_catalog

    return extended_catalog() if stack.endswith(EXTENDED) else load_catalog()


@pytest.fixture(params=VARIANTS)
def stack_plan(request: pytest.FixtureRequest) -> Plan:
    """Parametrized over dev, staging and prod, each with the real catalogue and with an extra service."""
    return preview(request.param).plan


@pytest.fixture
def dev_plan() -> Plan:
    return preview("dev").plan


@pytest.fixture
def prod_plan() -> Plan:
    return preview("prod").plan


def run_component(build: Callable[[], object], **kwargs: object) -> Plan:
    """Declare resources with `build()` under the offline mocks and return what was registered."""
    return run_function(build, **kwargs).plan  # type: ignore[arg-type]


def only(plan: Plan, type_token: str, name: str | None = None) -> PlannedResource:
    """The single resource of a type (and name suffix), with a helpful failure listing what exists."""
    matches = [r for r in plan.of_type(type_token) if name is None or r.name.endswith(name)]
    assert len(matches) == 1, f"expected one {type_token} {name or ''}, got {[r.urn for r in matches]}"
    return matches[0]


def single(resources: Iterable[PlannedResource], what: str) -> PlannedResource:
    """The one resource a selection (by type, name, parent, output...) finds. Never take "the first"
    match instead: resources register concurrently, so plan order varies from run to run, and a
    selection that can match two resources would pick either one."""
    matches = list(resources)
    assert len(matches) == 1, f"expected one {what}, got {[r.urn for r in matches]}"
    return matches[0]


def parse_python(path: Path) -> ast.Module:
    """`ast.parse` of a source file with the cyclic GC paused. On CPython 3.11 the AST converter keeps
    one recursion counter per interpreter (not per call): a collection that runs in the middle of
    `ast.parse` can finalize garbage left by earlier tests (generators, Pulumi outputs) whose clean-up
    parses too (e.g. `ast.literal_eval` in components/sdk_imports), and the outer call then fails with
    "SystemError: AST constructor recursion depth mismatch" (see python/cpython#106905). It happened
    in one test order out of several, every time in that order, and never with the GC paused."""
    import gc

    source = path.read_text(encoding="utf-8")
    enabled = gc.isenabled()
    gc.disable()
    try:
        return ast.parse(source, filename=str(path))
    finally:
        if enabled:
            gc.enable()


def children_of(plan: Plan, parent_urn: str) -> list[PlannedResource]:
    return [r for r in plan.resources if r.parent == parent_urn]
