"""Shared fixtures: offline previews of the real stacks (run once per test session) and a helper to
run a single component under the same recording mock runtime."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from components.context import PlatformContext
from offline.mocks import ACCOUNT_ID
from offline.plan import Plan, PlannedResource
from offline.runtime import RunResult, run_function, run_program

ROOT = Path(__file__).resolve().parent.parent
STACKS = ("dev", "staging", "prod")

_plans: dict[str, RunResult] = {}

TEST_KEY_ARN = f"arn:aws:kms:us-east-1:{ACCOUNT_ID}:key/11111111-2222-4333-a444-555555555555"
TEST_CONTEXT = PlatformContext(
    environment="test", account_id=ACCOUNT_ID, region="us-east-1", partition="aws", tags={"Environment": "test"}
).with_key(TEST_KEY_ARN)
"""The shared facts a component under test receives (what `build_platform` passes in a real stack)."""


def preview(stack: str) -> RunResult:
    """The offline preview of a real stack (cached: the program is deterministic)."""
    if stack not in _plans:
        _plans[stack] = run_program(ROOT, stack)
    return _plans[stack]


@pytest.fixture(params=STACKS)
def stack_plan(request: pytest.FixtureRequest) -> Plan:
    """Parametrized over dev, staging and prod."""
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


def children_of(plan: Plan, parent_urn: str) -> list[PlannedResource]:
    return [r for r in plan.resources if r.parent == parent_urn]
