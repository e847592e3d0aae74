"""What the AWS conformance preflight adds to `python -m offline preview`, per stack.

Each run is a fresh interpreter: it runs the real program under the mocks (not timed), then times the
whole preflight stage as the CLI runs it, cold: importing `offline.preflight`, loading the cfn-lint
schemas and botocore models it needs, checking, and formatting the report. Wall and CPU time (CPU
time is what the stage costs on a loaded machine). Usage:

    .venv/bin/python benchmarks/preflight.py [--stacks dev staging prod] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

_CHILD = """
import json, sys, time
from pathlib import Path
from offline.runtime import run_program
result = run_program(Path("."), sys.argv[1])
wall, cpu = time.perf_counter(), time.process_time()
from offline.preflight import format_report, run_preflight
report = run_preflight(result.plan)
format_report(report)
print(json.dumps({"wall": time.perf_counter() - wall, "cpu": time.process_time() - cpu,
                  "certain": len(report.certain), "values": report.coverage.values_checked}))
"""


def measure(stack: str) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, "-c", _CHILD, stack], cwd=ROOT, check=True, capture_output=True, text=True
    ).stdout
    figures: dict[str, float] = json.loads(out.strip().splitlines()[-1])
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stacks", nargs="+", default=["dev", "staging", "prod"])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    print("| stack | preflight wall s (median) | CPU s (median) | max wall s | values checked | certain |")
    print("|---|---:|---:|---:|---:|---:|")
    for stack in args.stacks:
        runs = [measure(stack) for _ in range(args.repeat)]
        walls, cpus = [r["wall"] for r in runs], [r["cpu"] for r in runs]
        print(
            f"| {stack} | {statistics.median(walls):.2f} | {statistics.median(cpus):.2f} | {max(walls):.2f} "
            f"| {int(runs[0]['values'])} | {int(runs[0]['certain'])} |"
        )


if __name__ == "__main__":
    main()
