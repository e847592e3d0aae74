"""Several stacks in one command: `python -m offline preview --stack A --stack B` and `--all-stacks`.

One process runs every stack, each in its own fresh runtime context and event loop; these tests check
that no state leaks from one stack into the next (each stack's plan is the same as when it runs alone),
that one policy pack process serves every stack and reports what a pack started for that stack alone
reports, that the exit code is the worst of the stacks', and that the interpreter's full shutdown
prints nothing ("Exception ignored", a pending task destroyed, an unclosed resource).
"""

from __future__ import annotations

import asyncio
import gc
import itertools
import json
import os
import subprocess
import sys
from pathlib import Path

import pulumi
import pytest

from offline.__main__ import main
from offline.export import stack_export
from offline.plan import Plan
from offline.policy import PolicySession, run_policy_pack
from offline.runtime import list_stacks, run_function
from tests.conftest import ROOT, STACKS, preview
from tests.test_policy_runner import TINY, make_plan

TEARDOWN_NOISE = ("Exception ignored", "Task was destroyed", "ResourceWarning", "unclosed", "Traceback")


def cli(*argv: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    """The CLI in a fresh interpreter with every warning shown (`-W default`), which also selects the
    interpreter's normal, full shutdown (see `offline.__main__.exit_now`)."""
    env = {k: v for k, v in os.environ.items() if k != "OFFLINE_FULL_EXIT"}
    return subprocess.run(
        [sys.executable, "-W", "default", "-m", "offline", *argv],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=600,
    )


def resources_of(document: dict) -> dict[str, dict]:
    """By URN, dependency lists sorted: resources register concurrently and the SDK collects
    dependencies in sets, so both orders vary from run to run (the contents do not)."""

    def normal(resource: dict) -> dict:
        resource = dict(resource)
        resource["dependencies"] = sorted(resource.get("dependencies") or [])
        resource["propertyDependencies"] = {
            k: sorted(v) for k, v in (resource.get("propertyDependencies") or {}).items()
        }
        return resource

    return {r["urn"]: normal(r) for r in document["deployment"]["resources"]}


def summary_row(stdout: str, stack: str) -> list[str]:
    summary = stdout[stdout.index("Summary: ") :]
    [row] = [line.split() for line in summary.splitlines() if line.split()[:1] == [stack]]
    return row


def test_every_stack_in_one_process_matches_each_stack_alone(tmp_path: Path) -> None:
    order = ["prod", "dev", "staging"]  # not the order the in-process reference plans were built in
    result = cli(
        "preview",
        *(a for s in order for a in ("--stack", s)),
        "--json",
        str(tmp_path / "{stack}.json"),
        "--export",
        str(tmp_path / "{stack}.export.json"),
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert not [n for n in TEARDOWN_NOISE if n in result.stderr], result.stderr[-3000:]
    # One section per stack, in the order given, then the summary.
    starts = [result.stdout.index(f"Previewing update ({s})") for s in order]
    assert starts == sorted(starts)
    assert result.stdout.index("Summary: 3 stacks") > starts[-1]
    assert result.stdout.count("Policies:") == 3, "the policy pack ran for every stack"
    for stack in order:
        alone = preview(stack).plan
        exported = json.loads((tmp_path / f"{stack}.export.json").read_text())
        # Same resources, inputs, outputs, parents and dependencies as the stack previewed on its own.
        assert resources_of(exported) == resources_of(stack_export(alone)), stack
        steps = json.loads((tmp_path / f"{stack}.json").read_text())["steps"]
        assert {s["urn"] for s in steps} >= {r.urn for r in alone.resources}
        row = summary_row(result.stdout, stack)
        assert row[:5] == [stack, str(len(alone.resources)), "0", "0", "0"], row
        assert row[-2:] == ["ok", "(0)"], row
    assert "Exit code 0" in result.stdout


def test_a_failing_stack_does_not_stop_or_taint_the_next_and_the_worst_code_wins(tmp_path: Path) -> None:
    for name in ("Pulumi.yaml", "__main__.py", "Pulumi.dev.yaml"):
        (tmp_path / name).write_text((ROOT / name).read_text())
    # A stack whose config the program rejects before declaring anything (a network CIDR that is not one).
    bad = (ROOT / "Pulumi.dev.yaml").read_text()
    (tmp_path / "Pulumi.qa.yaml").write_text(bad.replace("cidr: 10.10.0.0/16", "cidr: 10.10.0.0/99"))
    assert list_stacks(tmp_path) == ["dev", "qa"]
    # --all-stacks runs them by name: dev first, then qa; --stack puts the broken one first here.
    result = cli("preview", "--stack", "qa", "--stack", "dev", "--project-dir", str(tmp_path), "--no-policy")
    assert result.returncode == 2, result.stdout[-3000:] + result.stderr[-3000:]
    assert "error: " in result.stderr and "10.10.0.0/99" in result.stderr, result.stderr
    assert not [n for n in TEARDOWN_NOISE if n in result.stderr], result.stderr[-3000:]
    assert summary_row(result.stdout, "qa")[1:5] == ["-", "-", "-", "-"]
    assert summary_row(result.stdout, "qa")[-2:] == ["error", "(2)"]
    assert summary_row(result.stdout, "dev")[1] == str(len(preview("dev").plan.resources))
    assert summary_row(result.stdout, "dev")[-2:] == ["ok", "(0)"]
    assert "Exit code 2" in result.stdout


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--stack", "dev", "--stack", "prod", "--json", "plan.json"], "--json plan.json: several stacks"),
        (["--all-stacks", "--export", "out.json"], "--export out.json: several stacks"),
        (["--stack", "dev", "--stack", "qa"], "unknown stack 'qa'"),
    ],
)
def test_bad_stack_selections_fail_before_any_program_runs(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["preview", *argv, "--project-dir", str(ROOT)]) == 2
    captured = capsys.readouterr()
    assert message in captured.err
    assert "Previewing update" not in captured.out


def test_all_stacks_are_the_stack_files_present() -> None:
    assert list_stacks(ROOT) == sorted(STACKS)


def test_each_run_has_its_own_event_loop_closed_after_it_and_leaves_the_gc_as_it_found_it() -> None:
    loops: list[asyncio.AbstractEventLoop] = []
    stacks: list[str] = []

    def program() -> None:
        loops.append(asyncio.get_event_loop())
        stacks.append(pulumi.get_stack())
        pulumi.ComponentResource("microservices:test:Probe", "probe")

    thresholds = gc.get_threshold()
    first = run_function(program, stack="one")
    second = run_function(program, stack="two")
    assert stacks == ["one", "two"]
    assert loops[0] is not loops[1]
    assert all(loop.is_closed() for loop in loops)
    assert [r.urn for r in first.plan.resources if r.type == "microservices:test:Probe"] == [
        "urn:pulumi:one::microservices::pulumi:pulumi:Stack$microservices:test:Probe::probe"
    ]
    assert [r.urn for r in second.plan.resources if r.type == "microservices:test:Probe"] == [
        "urn:pulumi:two::microservices::pulumi:pulumi:Stack$microservices:test:Probe::probe"
    ]
    assert gc.get_threshold() == thresholds
    assert gc.get_freeze_count() == 0
    assert pulumi.get_stack() != "two", "the caller's own context is untouched"


def test_a_failed_run_leaves_no_task_pending_and_no_loop_open() -> None:
    loops: list[asyncio.AbstractEventLoop] = []

    def program() -> None:
        loops.append(asyncio.get_event_loop())
        probe = pulumi.ComponentResource("microservices:test:Probe", "probe")
        probe.urn.apply(lambda urn: urn.upper())
        raise RuntimeError("program failed")

    with pytest.raises(Exception, match="program failed"):
        run_function(program)
    assert loops[0].is_closed()
    assert not [t for t in asyncio.all_tasks(loops[0]) if not t.done()]
    with pytest.raises(RuntimeError):
        asyncio.get_event_loop_policy().get_event_loop()  # no loop left behind as the current one


def renamed(plan: Plan, stack: str) -> Plan:
    """The same plan as another stack's (URNs carry the stack name)."""
    text = json.dumps([r.__dict__ for r in plan.resources]).replace("urn:pulumi:dev::", f"urn:pulumi:{stack}::")
    from offline.plan import PlannedResource

    return Plan(project=plan.project, stack=stack, resources=[PlannedResource(**r) for r in json.loads(text)])


def test_one_pack_process_serves_several_plans_as_separate_packs_would() -> None:
    config = {"stack-size": {"maxResources": 3}}
    plans = [make_plan(), renamed(make_plan(), "prod")]
    with PolicySession(TINY, config, 30, project=plans[0].project, stack=plans[0].stack) as session:
        shared = [session.analyze(plan) for plan in plans]
    alone = [run_policy_pack(plan, TINY, config=config, timeout=30) for plan in plans]
    for together, separate in zip(shared, alone, strict=True):
        assert together.violations == separate.violations
        assert together.not_applicable == separate.not_applicable
        assert together.config == separate.config
    assert shared[0].pack_pid == shared[1].pack_pid, "one process for both"
    assert alone[0].pack_pid != alone[1].pack_pid
    assert {v.urn.split("::")[0] for v in shared[1].violations} == {"urn:pulumi:prod"}
    with pytest.raises(ProcessLookupError):
        os.kill(shared[0].pack_pid or 0, 0)


def test_make_preview_all_and_ci_run_preview_every_stack_in_one_command() -> None:
    makefile = (ROOT / "Makefile").read_text()
    target = makefile[makefile.index("\npreview-all:") :].split("\n\n")[0]
    assert "$(BIN)/python -m offline preview --all-stacks" in target
    ci = (ROOT / ".ci" / "run").read_text()
    assert "make preview-all" in ci
    assert "make preview STACK" not in ci, "one command previews every stack"


def test_a_stacks_policy_check_runs_beside_the_next_program_and_sections_print_in_stack_order(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`_preview`'s pipeline, with the program and the check replaced by fakes that record when they run:
    the check of one stack overlaps the next stack's program, checks run one at a time in stack order,
    each stack's section is printed whole and in order, and the GIL switch interval is lowered only
    while checks can run beside a program."""
    import threading
    import time

    import offline.__main__ as cli_main

    events: list[tuple[str, str, float]] = []
    intervals: list[float] = []
    default_interval = sys.getswitchinterval()
    dev_check_started, prod_program_started = threading.Event(), threading.Event()
    overlapped: list[bool] = []

    class FakePolicy:
        def __init__(self, *args: object) -> None:
            self.closed = False

        def close(self) -> None:
            self.closed = True

    def fake_run(args: object, stack: str, several: bool, out: object) -> tuple[object, object, float]:
        events.append(("run-start", stack, time.perf_counter()))
        print(f"program output of {stack}", file=out)  # type: ignore[call-overload]
        if stack == "prod":  # the next program runs while dev's check is in progress (events, not sleeps)
            prod_program_started.set()
            overlapped.append(dev_check_started.wait(timeout=30))
        events.append(("run-end", stack, time.perf_counter()))
        return cli_main.StackOutcome(stack, cli_main.ExitCode.OK, resources=1), object(), time.perf_counter()

    def fake_check(
        args: object,
        outcome: cli_main.StackOutcome,
        result: object,
        started: float,
        several: bool,
        policy: object,
        out: object,
    ) -> cli_main.StackOutcome:
        assert threading.current_thread() is not threading.main_thread()
        intervals.append(sys.getswitchinterval())
        events.append(("check-start", outcome.stack, time.perf_counter()))
        if outcome.stack == "dev":
            dev_check_started.set()
            overlapped.append(prod_program_started.wait(timeout=30))
        print(f"policy report of {outcome.stack}", file=out)  # type: ignore[call-overload]
        events.append(("check-end", outcome.stack, time.perf_counter()))
        return outcome

    monkeypatch.setattr(cli_main, "_run_stack", fake_run)
    monkeypatch.setattr(cli_main, "_check_stack", fake_check)
    monkeypatch.setattr(cli_main, "_Policy", FakePolicy)
    assert main(["preview", "--stack", "dev", "--stack", "prod", "--stack", "staging"]) == 0
    out = capsys.readouterr().out

    when = {(kind, stack): at for kind, stack, at in events}
    assert overlapped == [True, True], "dev's check and prod's program run at the same time"
    order = [stack for kind, stack, _ in events if kind == "check-start"]
    assert order == ["dev", "prod", "staging"]
    for earlier, later in itertools.pairwise(order):
        assert when[("check-end", earlier)] <= when[("check-start", later)], "one check at a time"
    # Whole sections, in stack order, although prod's program printed while dev was still checked.
    positions = [
        out.index(text)
        for stack in ("dev", "prod", "staging")
        for text in (f"stack {stack} ", f"program output of {stack}", f"policy report of {stack}")
    ]
    assert positions == sorted(positions), out
    assert intervals and all(i == pytest.approx(cli_main.SWITCH_INTERVAL_WHILE_CHECKING) for i in intervals)
    assert sys.getswitchinterval() == default_interval
