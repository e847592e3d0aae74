"""Command line of the offline preview.

    python -m offline preview --stack dev [--stack prod ...] [--json FILE] [--export FILE] [--no-preflight] [--no-policy]
                              [REPORT OPTIONS]
    python -m offline preview --all-stacks [--json 'out/{stack}.json'] [--export 'out/{stack}.export.json'] ...
    python -m offline policy-check --file PLAN [REPORT OPTIONS]
    python -m offline preflight --file PLAN
    python -m offline cost --stack prod [--format table|json] [--compare OTHER_PLAN] [--refresh-prices]
    python -m offline diagram --stack prod --format mermaid|dot|svg [--output FILE]

Report options: `--format text|json|sarif` (the policy results as `pulumi preview` prints them, as JSON, or
as SARIF 2.1.0 for GitHub code scanning; see offline/policy/formats.py), `--output FILE` (write them there;
with json/sarif and no file they go to stdout and everything else to stderr), `--fail-on SEVERITY` (exit 1
only for mandatory violations of that severity or higher; default low: every mandatory violation).

`preview` runs the real program for a stack under Pulumi's mock runtime (no cloud account, no Pulumi
CLI), prints the plan like `pulumi preview`, and runs the policy pack in `policies/` over it through
the Analyzer gRPC interface, as `pulumi preview --policy-pack policies` does. `policy-check` runs the
pack over a saved `--json`/`--export` file (the offline counterpart of `pulumi policy analyze --file`).
Before the pack, `preview` runs the AWS conformance preflight (`offline/preflight/`): literal inputs
against CloudFormation schemas, botocore API models and documented cross-field rules; `preflight`
runs it over a saved file. A certain preflight failure exits 1 as a mandatory violation does.

Several stacks (`--stack` repeated, or `--all-stacks` for every `Pulumi.<stack>.yaml` present) run in
one process: imports are paid once, each stack runs in its own fresh runtime context (`offline.runtime`),
one policy pack process serves them all (`offline.policy.PolicySession`), checking one stack while the
next stack's program runs; each stack prints its own section, in stack order, and a summary table (resources, policy violations, preflight findings) ends the output. File
names (`--json`, `--export`, `--output`) take a `{stack}` placeholder, which several stacks require.
The exit code is the worst of the stacks'.

Exit status (offline/exitcodes.py): 0 clean; 1 a mandatory policy violation (of `--fail-on` severity or higher) or a
certain preflight failure; 2 an input, configuration or
usage error (one line, no traceback); 3 an internal error (a bug: `--debug` shows its traceback).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from offline.exitcodes import BUG_REPORT, ExitCode, worst

if TYPE_CHECKING:
    from offline.plan import Plan


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m offline", description=__doc__.split("\n\n")[0])
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--debug", action="store_true", help="on an internal error (exit 3), print the Python traceback too"
    )
    commands = parser.add_subparsers(dest="command", required=True)
    preview = commands.add_parser("preview", parents=[common], help="preview a stack offline and run the policy pack")
    which = preview.add_mutually_exclusive_group(required=True)
    which.add_argument(
        "--stack", "-s", action="append", help="stack name (dev, staging, prod); repeat it to preview several"
    )
    which.add_argument("--all-stacks", action="store_true", help="every stack with a Pulumi.<stack>.yaml here")
    preview.add_argument("--project-dir", type=Path, default=Path("."), help="folder holding Pulumi.yaml")
    preview.add_argument(
        "--json", metavar="FILE", help="write the plan as `pulumi preview --json` ({stack}: the stack's name)"
    )
    preview.add_argument(
        "--export", metavar="FILE", help="write a `pulumi stack export` (v3) file ({stack}: the stack's name)"
    )
    preview.add_argument("--no-preflight", action="store_true", help="skip the AWS conformance preflight")
    preview.add_argument("--no-policy", action="store_true", help="skip the policy pack")
    _policy_args(preview)
    check = commands.add_parser(
        "policy-check", parents=[common], help="run the policy pack over a saved plan or export file"
    )
    check.add_argument("--file", type=Path, required=True, metavar="PLAN", help="a --json or --export file")
    _policy_args(check)
    preflight = commands.add_parser(
        "preflight", parents=[common], help="run the AWS conformance preflight over a saved plan or export file"
    )
    preflight.add_argument("--file", type=Path, required=True, metavar="PLAN", help="a --json or --export file")
    from offline import cost, diagram  # light: the price table and the renderers load when they run

    cost.add_command(commands, common)
    diagram.add_command(commands, common)
    return parser


def _policy_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--policy-pack", type=Path, default=None, help="policy pack folder (default: policies/)")
    parser.add_argument(
        "--policy-pack-config", type=Path, default=None, metavar="FILE", help="JSON config for the pack's policies"
    )
    parser.add_argument(
        "--format", choices=("text", "json", "sarif"), default="text", help="policy results format (default: text)"
    )
    parser.add_argument("--output", type=Path, default=None, metavar="FILE", help="write the policy results here")
    parser.add_argument(
        "--fail-on",
        choices=("low", "medium", "high", "critical"),
        default="low",
        help="exit 1 for mandatory violations of this severity or higher (default: low, i.e. all)",
    )


def _human(args: argparse.Namespace) -> TextIO:
    """Where the human-readable output goes: stderr when stdout carries a JSON/SARIF report."""
    return sys.stderr if args.format != "text" and args.output is None else sys.stdout


def _check_policies(plan: Any, pack: Path, args: argparse.Namespace) -> ExitCode:
    from offline.policy import PolicyRunnerError, run_policy_pack

    try:
        report = run_policy_pack(plan, pack_dir=pack, config=args.policy_pack_config)
    except PolicyRunnerError as exc:
        print(f"error: policy pack {pack}: {exc}", file=sys.stderr)
        return ExitCode.INPUT
    return _emit_policy_report(report, plan, args, args.output)


def _emit_policy_report(
    report: Any, plan: Any, args: argparse.Namespace, output: Path | None, out: TextIO | None = None
) -> ExitCode:
    """Print or write one policy report in `--format`; the exit code it calls for (`--fail-on`).
    `out` replaces both stdout and the human-readable stream (a stack's section when several run)."""
    from offline.policy import format_report
    from offline.policy.formats import failing, report_json, report_sarif

    human = out or _human(args)

    if args.format == "text":
        text = "\n" + format_report(report)
    else:
        build = report_json if args.format == "json" else report_sarif
        extra = {"fail_on": args.fail_on} if args.format == "json" else {}
        text = json.dumps(build(report, stack=plan.stack, project=plan.project, **extra), indent=2) + "\n"
    if output is not None:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(text.lstrip("\n"))
        print(f"\nWrote the policy results to {output} ({args.format})", file=human)
        if args.format != "text":
            print(format_report(report), end="", file=human)
    else:
        print(text, end="", file=out or sys.stdout)
    return ExitCode.POLICY if failing(report, args.fail_on) else ExitCode.OK


def _check_preflight(plan: Any, out: TextIO) -> ExitCode:
    return _run_preflight(plan, out)[0]


def _run_preflight(plan: Any, out: TextIO) -> tuple[ExitCode, int]:
    """Run the preflight over `plan` and print its report: (exit code, number of certain findings)."""
    from offline.preflight import format_report, run_preflight

    report = run_preflight(plan)
    print("\n" + format_report(report), end="", file=out)
    return (ExitCode.POLICY if report.certain else ExitCode.OK), len(report.certain)


@dataclass
class StackOutcome:
    """One stack's line in the summary table."""

    stack: str
    status: ExitCode
    resources: int | None = None
    mandatory: int | None = None
    advisory: int | None = None
    preflight: int | None = None
    """Certain preflight findings (what AWS would reject); None when the preflight did not run ("-")."""
    seconds: float = 0.0


def _stack_names(args: argparse.Namespace) -> list[str]:
    """The stacks to preview, in the order given (`--all-stacks`: every Pulumi.<stack>.yaml, by name)."""
    from offline.runtime import OfflineError, list_stacks

    known = list_stacks(args.project_dir)
    if not args.all_stacks:
        stacks = list(dict.fromkeys(args.stack))  # a stack named twice runs once
        unknown = [s for s in stacks if s not in known]
        if unknown:
            # The same words as offline/stackfile.py for one unknown stack.
            raise OfflineError(
                f"unknown stack {unknown[0]!r}: no Pulumi.{unknown[0]}.yaml; stacks here: {', '.join(known) or 'none'}"
            )
        return stacks
    if not known:
        raise OfflineError(f"--all-stacks: no Pulumi.<stack>.yaml in {args.project_dir}")
    return known


def _output_path(template: str | None, stack: str, several: bool, option: str) -> Path | None:
    from offline.runtime import OfflineError

    if template is None:
        return None
    if several and "{stack}" not in template:
        raise OfflineError(
            f"{option} {template}: several stacks would write the same file; put {{stack}} in the name "
            f"(e.g. {option} 'out/{{stack}}.json')"
        )
    return Path(template.replace("{stack}", stack))


SWITCH_INTERVAL_WHILE_CHECKING = 0.0002
"""Seconds between GIL hand-overs (`sys.setswitchinterval`; Python's default is 0.005) while a policy
check runs beside the next stack's program. The check is a thread making ~760 gRPC round trips per stack
to the pack process; with the default, each one waited up to 5 ms for the CPU-bound program thread to
let go of the GIL, which left the pack idle. Three stacks with the policy pack, six runs each
(benchmarks/README.md): median 9.0 s with the default, 8.1 s with 0.0002 s."""


def _preview(args: argparse.Namespace) -> ExitCode:
    import io
    from concurrent.futures import Future, ThreadPoolExecutor

    from offline.runtime import OfflineError

    started = time.perf_counter()
    try:
        stacks = _stack_names(args)
        several = len(stacks) > 1
        for stack in stacks:
            _output_path(args.json, stack, several, "--json")
            _output_path(args.export, stack, several, "--export")
            _output_path(None if args.output is None else str(args.output), stack, several, "--output")
        if several and args.format != "text" and args.output is None:
            raise OfflineError(
                f"--format {args.format} with several stacks needs --output with a {{stack}} placeholder "
                f"(e.g. --output 'out/{{stack}}.{args.format}'), so each stack's report is its own document"
            )
    except OfflineError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return ExitCode.INPUT
    pack = args.policy_pack or args.project_dir / "policies"
    policy = _Policy(pack, args, stacks[0]) if not args.no_policy else None
    out = _human(args)
    outcomes: list[StackOutcome] = []
    # With several stacks, the policy pack checks one stack while the next stack's program runs: the pack
    # is its own process, so the two use both cores, and one worker thread (blocked in gRPC calls, not
    # holding the GIL) keeps the stacks in order on the one pack process. Each stack's section is
    # collected and printed whole, in the order of the stacks, as soon as its check is done.
    checker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="policy-pack") if several else None
    sections: list[tuple[io.StringIO, Future[StackOutcome]]] = []
    switch_interval = sys.getswitchinterval()
    if checker is not None and policy is not None:
        sys.setswitchinterval(SWITCH_INTERVAL_WHILE_CHECKING)

    def print_finished(wait: bool) -> None:
        while sections and (wait or sections[0][1].done()):
            section, checked = sections.pop(0)
            outcomes.append(checked.result())
            print(section.getvalue(), file=out, flush=True)

    try:
        for stack in stacks:
            if checker is None:
                # One stack: its report goes where `--format` says (JSON/SARIF on stdout), not into `out`.
                outcomes.append(_check_stack(args, *_run_stack(args, stack, several, out), several, policy, None))
                continue
            section = io.StringIO()
            print(f"{'=' * 30} stack {stack} {'=' * 30}\n", file=section)
            ran = _run_stack(args, stack, several, section)
            sections.append((section, checker.submit(_check_stack, args, *ran, several, policy, section)))
            print_finished(wait=False)
        print_finished(wait=True)
    finally:
        if checker is not None:
            checker.shutdown(wait=True, cancel_futures=True)
        sys.setswitchinterval(switch_interval)
        if policy is not None:
            policy.close()
    if several:
        print(_summary(outcomes, time.perf_counter() - started, policy is not None), file=out)
    else:
        print(f"\nDuration: {time.perf_counter() - started:.1f}s", file=out)
    return worst(o.status for o in outcomes)


class _Policy:
    """The policy pack for this command: one process for every stack, started before the first program
    runs (it boots on the other core meanwhile), restarted only if it failed."""

    def __init__(self, pack: Path, args: argparse.Namespace, first_stack: str) -> None:
        self.pack, self.args = pack, args
        self.config_file, self.project_dir, self.first_stack = args.policy_pack_config, args.project_dir, first_stack
        self.session: Any = None
        self.error: str | None = None
        self._start()

    def _start(self) -> None:
        from offline.policy import PolicyRunnerError, PolicySession
        from offline.runtime import OfflineError, read_stack_files

        self.error = None
        try:
            project = read_stack_files(self.project_dir, self.first_stack).project
            self.session = PolicySession(self.pack, self.config_file, project=project, stack=self.first_stack)
        except (PolicyRunnerError, OfflineError) as exc:
            self.session, self.error = None, str(exc)

    def check(self, plan: Any, output: Path | None, out: TextIO | None) -> tuple[ExitCode, Any]:
        from offline.policy import PolicyRunnerError

        if self.session is None and self.error is None:
            self._start()
        if self.session is None:
            error, self.error = self.error, None  # report it once, try again for the next stack
            print(f"error: policy pack {self.pack}: {error}", file=sys.stderr)
            return ExitCode.INPUT, None
        try:
            report = self.session.analyze(plan)
        except PolicyRunnerError as exc:
            self.session = None
            print(f"error: policy pack {self.pack}: {exc}", file=sys.stderr)
            return ExitCode.INPUT, None
        return _emit_policy_report(report, plan, self.args, output, out), report

    def close(self) -> None:
        if self.session is not None:
            self.session.close()
            self.session = None


def _run_stack(args: argparse.Namespace, stack: str, several: bool, out: TextIO) -> tuple[StackOutcome, Any, float]:
    """One stack's program, its exports and its preflight, printed on `out`: (outcome, the run's result or
    None if it failed, when it started). The policy pack comes after, in `_check_stack`."""
    from offline.export import preview_json, stack_export, write_json
    from offline.render import render_preview
    from offline.runtime import OfflineError, run_program

    started = time.perf_counter()
    outcome = StackOutcome(stack, ExitCode.OK)
    try:
        result = run_program(args.project_dir, stack)
    except OfflineError as exc:
        print(f"error: {exc}", file=sys.stderr)
        outcome.status = ExitCode.INPUT
    except Exception as exc:
        if not several:
            raise  # main() reports it
        # Another stack may still preview: report this one as main() would, and go on.
        if args.debug:
            traceback.print_exc()
        print(f"error: stack {stack!r}: {BUG_REPORT.format(what=_one_line(exc))}", file=sys.stderr)
        outcome.status = ExitCode.INTERNAL
    if outcome.status != ExitCode.OK:
        return outcome, None, started
    outcome.resources = len(result.plan.resources)
    print(render_preview(result.plan), file=out)
    for diagnostic in result.diagnostics:
        print(f"    {diagnostic.severity}: {diagnostic.message}", file=out)
    print(file=out)
    print(_cost_summary(result), file=out)
    json_path = _output_path(args.json, stack, several, "--json")
    export_path = _output_path(args.export, stack, several, "--export")
    if json_path:
        masked = {k: ("[secret]" if k in result.secret_keys else v) for k, v in result.config.items()}
        write_json(json_path, preview_json(result.plan, masked))
        print(f"\nWrote {json_path} (pulumi preview --json format)", file=out)
    if export_path:
        write_json(export_path, stack_export(result.plan))
        print(f"Wrote {export_path} (pulumi stack export, deployment v3)", file=out)
    if not args.no_preflight:  # the AWS conformance preflight, between the program and the policy pack
        outcome.status, outcome.preflight = _run_preflight(result.plan, out)
    return outcome, result, started


def _check_stack(
    args: argparse.Namespace,
    outcome: StackOutcome,
    result: Any,
    started: float,
    several: bool,
    policy: _Policy | None,
    out: TextIO | None,
) -> StackOutcome:
    """The policy pack over one stack's plan (if it ran and the pack is on), printed on `out` (a stack's
    section; None: as `_emit_policy_report` prints for one stack); the outcome with its counts and its
    seconds (from the start of its program to the end of its check)."""
    if result is not None and policy is not None:
        output = _output_path(None if args.output is None else str(args.output), outcome.stack, several, "--output")
        status, report = policy.check(result.plan, output, out)
        outcome.status = worst([outcome.status, status])
        if report is not None:
            counts = report.counts()
            outcome.mandatory, outcome.advisory = counts["mandatory"], counts["advisory"]
    outcome.seconds = time.perf_counter() - started
    if several and result is not None:
        print(f"\nDuration ({outcome.stack}): {outcome.seconds:.1f}s", file=out)
    return outcome


_RESULT = {
    ExitCode.OK: "ok",
    ExitCode.POLICY: "mandatory violation",
    ExitCode.INPUT: "input error",
    ExitCode.INTERNAL: "internal error",
}


def _summary(outcomes: list[StackOutcome], seconds: float, with_policy: bool) -> str:
    """The table after the per-stack sections: one row per stack, then the command's exit code."""

    def cell(value: int | None) -> str:
        return "-" if value is None else str(value)

    header = ("stack", "resources", "mandatory", "advisory", "preflight", "seconds", "result")
    rows = [
        (
            o.stack,
            cell(o.resources),
            cell(o.mandatory),
            cell(o.advisory),
            cell(o.preflight),
            f"{o.seconds:.1f}",
            f"{_RESULT[o.status]} ({int(o.status)})",
        )
        for o in outcomes
    ]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]

    def line(row: tuple[str, ...]) -> str:
        cells = [row[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(row[1:-1], widths[1:-1], strict=True)]
        return "    " + "  ".join([*cells, row[-1]])

    status = worst(o.status for o in outcomes)
    return "\n".join(
        [
            f"Summary: {len(outcomes)} stacks in {seconds:.1f}s (one process"
            + (", one policy pack process)" if with_policy else ", no policy pack)"),
            line(header),
            *(line(r) for r in rows),
            f"Exit code {int(status)} ({_RESULT[status]}): the worst of the stacks'.",
        ]
    )


def _cost_summary(result: object) -> str:
    from offline.cost import CostError, estimate, summary_line, usage_from_config

    config = result.config  # type: ignore[attr-defined]
    try:
        return summary_line(
            estimate(result.plan, region=str(config.get("aws:region") or "us-east-1"), usage=usage_from_config(config))  # type: ignore[attr-defined]
        )
    except CostError as exc:
        return f"Estimated cost: not available ({exc})"


def _plan_file(args: argparse.Namespace, out: TextIO) -> Plan | None:
    """The plan saved in `--file` (announced on `out`), or None after one error line on stderr."""
    from offline.export import PlanFileError, load_plan

    try:
        plan = load_plan(args.file)
    except PlanFileError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return None
    print(f"Checking {len(plan.resources)} resources of stack {plan.stack!r} from {args.file}", file=out)
    return plan


def _policy_check(args: argparse.Namespace) -> ExitCode:
    plan = _plan_file(args, _human(args))
    if plan is None:
        return ExitCode.INPUT
    return _check_policies(plan, args.policy_pack or Path("policies"), args)


def _preflight_file(args: argparse.Namespace) -> ExitCode:
    plan = _plan_file(args, sys.stdout)
    if plan is None:
        return ExitCode.INPUT
    return _check_preflight(plan, sys.stdout)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "preview":
            return _preview(args)
        if args.command in ("cost", "diagram"):
            return int(args.run(args))
        if args.command == "preflight":
            return _preflight_file(args)
        return _policy_check(args)
    except Exception as exc:
        # Everything the input can get wrong is reported above as one line with exit 2; anything else
        # is a bug in this program or the components, so ask for a report instead of blaming the input.
        if args.debug:
            traceback.print_exc()
        print(f"error: {BUG_REPORT.format(what=_one_line(exc))}", file=sys.stderr)
        return ExitCode.INTERNAL


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def exit_now(code: int) -> None:
    """End the process with `code`, skipping the interpreter's teardown of the heap when that is safe.

    Everything this command opened is closed before `main` returns (each stack's event loop and its
    executor threads, the policy pack process, the files written), and the atexit handlers still run
    here; what `os._exit` skips is freeing every object of the program, the SDK and the provider
    modules one by one, which is pure cost for a process that is about to end. When warnings are asked
    for (`python -X dev`, `-W ...`, PYTHONWARNINGS, PYTHONDEVMODE) or OFFLINE_FULL_EXIT=1 is set, the
    interpreter shuts down normally instead, so a warning that only teardown would print (an unclosed
    resource, a task destroyed while pending, "Exception ignored ...") is never hidden;
    tests/test_multi_stack.py runs the full shutdown and checks that it prints none.
    """
    import atexit
    import os

    if sys.flags.dev_mode or sys.warnoptions or os.environ.get("OFFLINE_FULL_EXIT") == "1":
        sys.exit(code)
    atexit._run_exitfuncs()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    exit_now(main())
