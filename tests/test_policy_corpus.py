"""The policy pack against a corpus of program-level mistakes and legitimate changes (tests/policy_corpus.py).

Each group of mistakes is applied to ONE run of the real program (dev stack) and the pack runs over it
through the Analyzer protocol, as `make preview` does; every mistake must be reported by its rule with
a message naming the database or service, the intruder and the path. One test per group keeps the
expensive program runs to one each and spreads them over pytest-xdist workers.
"""

from __future__ import annotations

import runpy
from collections.abc import Callable, Sequence
from typing import Any

import pulumi
import pytest

from offline.plan import Plan
from offline.policy import PolicyReport, run_policy_pack
from offline.runtime import read_stack_files, run_function
from tests.conftest import ROOT
from tests.policy_corpus import GROUPS, LEGIT, MISTAKES, PATHS, Group, Legit, Mistake, Transform


def run_program(
    transforms: Sequence[Transform],
    afters: Sequence[Callable[[dict[str, Any]], None]],
    befores: Sequence[Callable[[], Callable[[], None]]] = (),
) -> Plan:
    files = read_stack_files(ROOT, "dev")
    undo: list[Callable[[], None]] = []

    def program() -> None:
        undo.extend(before() for before in befores)
        for transform in transforms:
            pulumi.runtime.register_stack_transformation(transform)
        program_globals = runpy.run_path(str(ROOT / "__main__.py"), run_name="__main__")
        for after in afters:
            after(program_globals)

    try:
        return run_function(program, stack="dev", config=files.config, region=files.region).plan
    finally:
        for step in undo:
            step()


def _messages(report: PolicyReport, rule: str) -> list[str]:
    return [v.message for v in report.mandatory if v.policy_name == rule]


def _missing(report: PolicyReport, mistake: Mistake) -> list[str]:
    problems = []
    for rule, fragments in ((mistake.rule, mistake.fragments), *mistake.also):
        if not any(all(f in m for f in fragments) for m in _messages(report, rule)):
            problems.append(f"{mistake.id!r}: no {rule} violation containing {fragments}")
    return problems


def test_the_corpus_covers_every_path_with_at_least_40_mistakes_and_8_legitimate_changes() -> None:
    assert len(MISTAKES) >= 40
    assert len(LEGIT) >= 8
    assert {m.path for m in MISTAKES} == set(PATHS)
    assert len({m.id for m in MISTAKES}) == len(MISTAKES)
    for mistake in MISTAKES:
        assert (mistake.after is None) != (mistake.transform is None), mistake.id
        assert len(mistake.fragments) >= 2, mistake.id


@pytest.mark.parametrize("group", GROUPS, ids=[g.name for g in GROUPS])
def test_every_mistake_is_stopped_by_its_rule_naming_the_path(group: Group) -> None:
    plan = run_program(
        [m.transform for m in group.mistakes if m.transform is not None],
        [m.after for m in group.mistakes if m.after is not None],
    )
    report = run_policy_pack(plan, pack_dir=ROOT / "policies")
    problems = [p for mistake in group.mistakes for p in _missing(report, mistake)]
    found = "\n".join(f"  [{v.policy_name}] {v.message.splitlines()[-1]}" for v in report.mandatory)
    assert not problems, "\n".join(problems) + "\nmandatory violations:\n" + found


def test_legitimate_changes_pass() -> None:
    legit: list[Legit] = LEGIT
    plan = run_program(
        [item.transform for item in legit if item.transform is not None],
        [item.after for item in legit if item.after is not None],
        [item.before for item in legit if item.before is not None],
    )
    assert any("shipping" in r.urn for r in plan.resources)
    report = run_policy_pack(plan, pack_dir=ROOT / "policies")
    assert not report.mandatory, [(v.policy_name, v.message.splitlines()[-1]) for v in report.mandatory]
    assert not report.advisory, [(v.policy_name, v.message.splitlines()[-1]) for v in report.advisory]
