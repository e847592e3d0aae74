"""Command line of the offline preview.

    python -m offline preview --stack dev [--json FILE] [--export FILE] [--no-preflight] [--no-policy] [REPORT OPTIONS]
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
from pathlib import Path
from typing import Any, TextIO

from offline.exitcodes import BUG_REPORT, ExitCode, worst


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m offline", description=__doc__.split("\n\n")[0])
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--debug", action="store_true", help="on an internal error (exit 3), print the Python traceback too"
    )
    commands = parser.add_subparsers(dest="command", required=True)
    preview = commands.add_parser("preview", parents=[common], help="preview a stack offline and run the policy pack")
    preview.add_argument("--stack", "-s", required=True, help="stack name: dev, staging or prod")
    preview.add_argument("--project-dir", type=Path, default=Path("."), help="folder holding Pulumi.yaml")
    preview.add_argument("--json", type=Path, metavar="FILE", help="write the plan as `pulumi preview --json`")
    preview.add_argument("--export", type=Path, metavar="FILE", help="write a `pulumi stack export` (v3) file")
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
    from offline.policy import PolicyRunnerError, format_report, run_policy_pack
    from offline.policy.formats import failing, report_json, report_sarif

    try:
        report = run_policy_pack(plan, pack_dir=pack, config=args.policy_pack_config)
    except PolicyRunnerError as exc:
        print(f"error: policy pack {pack}: {exc}", file=sys.stderr)
        return ExitCode.INPUT
    if args.format == "text":
        text = "\n" + format_report(report)
    else:
        build = report_json if args.format == "json" else report_sarif
        extra = {"fail_on": args.fail_on} if args.format == "json" else {}
        text = json.dumps(build(report, stack=plan.stack, project=plan.project, **extra), indent=2) + "\n"
    if args.output is not None:
        args.output.write_text(text.lstrip("\n"))
        print(f"\nWrote the policy results to {args.output} ({args.format})", file=_human(args))
        if args.format != "text":
            print(format_report(report), end="", file=_human(args))
    else:
        print(text, end="")
    return ExitCode.POLICY if failing(report, args.fail_on) else ExitCode.OK


def _check_preflight(plan: Any, out: TextIO) -> ExitCode:
    from offline.preflight import format_report, run_preflight

    report = run_preflight(plan)
    print("\n" + format_report(report), end="", file=out)
    return ExitCode.POLICY if report.certain else ExitCode.OK


def _preview(args: argparse.Namespace) -> ExitCode:
    from offline.export import preview_json, stack_export, write_json
    from offline.render import render_preview
    from offline.runtime import OfflineError, run_program

    started = time.perf_counter()
    try:
        result = run_program(args.project_dir, args.stack)
    except OfflineError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return ExitCode.INPUT
    out = _human(args)
    print(render_preview(result.plan), file=out)
    for diagnostic in result.diagnostics:
        print(f"    {diagnostic.severity}: {diagnostic.message}", file=out)
    print(file=out)
    print(_cost_summary(result), file=out)
    if args.json:
        masked = {k: ("[secret]" if k in result.secret_keys else v) for k, v in result.config.items()}
        write_json(args.json, preview_json(result.plan, masked))
        print(f"\nWrote {args.json} (pulumi preview --json format)", file=out)
    if args.export:
        write_json(args.export, stack_export(result.plan))
        print(f"Wrote {args.export} (pulumi stack export, deployment v3)", file=out)
    status = ExitCode.OK
    if not args.no_preflight:
        status = _check_preflight(result.plan, out)
    if not args.no_policy:
        policy = _check_policies(result.plan, args.policy_pack or args.project_dir / "policies", args)
        status = worst([status, policy])
    print(f"\nDuration: {time.perf_counter() - started:.1f}s", file=out)
    return status


def _cost_summary(result: object) -> str:
    from offline.cost import CostError, estimate, summary_line, usage_from_config

    config = result.config  # type: ignore[attr-defined]
    try:
        return summary_line(
            estimate(result.plan, region=str(config.get("aws:region") or "us-east-1"), usage=usage_from_config(config))  # type: ignore[attr-defined]
        )
    except CostError as exc:
        return f"Estimated cost: not available ({exc})"


def _policy_check(args: argparse.Namespace) -> ExitCode:
    from offline.export import PlanFileError, load_plan

    try:
        plan = load_plan(args.file)
    except PlanFileError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return ExitCode.INPUT
    print(f"Checking {len(plan.resources)} resources of stack {plan.stack!r} from {args.file}", file=_human(args))
    return _check_policies(plan, args.policy_pack or Path("policies"), args)


def _preflight_file(args: argparse.Namespace) -> ExitCode:
    from offline.export import PlanFileError, load_plan

    try:
        plan = load_plan(args.file)
    except PlanFileError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return ExitCode.INPUT
    print(f"Checking {len(plan.resources)} resources of stack {plan.stack!r} from {args.file}")
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


if __name__ == "__main__":
    sys.exit(main())
