"""Benchmark: wall time, peak memory and resource count of the offline preview, per stack.

    .venv/bin/python benchmarks/offline_preview.py [--stacks dev staging prod] [--repeat 3] [--policy]

Each measurement runs in a fresh interpreter (`python -m offline preview`), as a user or CI would
run it, so import cost is included. Peak memory is the preview process's own max RSS (getrusage). Not a test: it
reports figures, it does not assert them.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def measure(stack: str, policy: bool) -> tuple[float, float, int]:
    with tempfile.TemporaryDirectory() as tmp:
        plan_file = Path(tmp) / "plan.json"
        rss_file = Path(tmp) / "maxrss"
        argv = ["preview", "--stack", stack, "--json", str(plan_file)] + ([] if policy else ["--no-policy"])
        # Run `python -m offline ...` and record the interpreter's own peak RSS as it exits (the policy
        # pack, when on, is a separate process and not counted here).
        probe = (
            "import atexit, resource, runpy, sys; "
            f"atexit.register(lambda: open({str(rss_file)!r}, 'w').write("
            "str(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss))); "
            f"sys.argv = ['offline', *{argv!r}]; runpy.run_module('offline', run_name='__main__')"
        )
        started = time.perf_counter()
        result = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=False)
        elapsed = time.perf_counter() - started
        if result.returncode not in (0, 1) or not plan_file.exists():
            raise SystemExit(f"preview of {stack} failed:\n{result.stdout[-2000:]}{result.stderr[-2000:]}")
        steps = json.loads(plan_file.read_text())["steps"]
        resources = sum(1 for s in steps if not s["newState"]["type"].startswith("pulumi:providers:"))
        return elapsed, int(rss_file.read_text()) / 1024, resources


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stacks", nargs="+", default=["dev", "staging", "prod"])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--policy", action="store_true", help="include the policy pack run")
    args = parser.parse_args()
    print(f"offline preview ({'with' if args.policy else 'without'} policy pack), {args.repeat} runs each")
    print(f"{'stack':<8} {'resources':>9} {'median s':>9} {'min s':>7} {'peak MiB':>9}")
    for stack in args.stacks:
        runs = [measure(stack, args.policy) for _ in range(args.repeat)]
        times = [r[0] for r in runs]
        print(
            f"{stack:<8} {runs[0][2]:>9} {statistics.median(times):>9.2f} {min(times):>7.2f} "
            f"{max(r[1] for r in runs):>9.0f}"
        )


if __name__ == "__main__":
    main()
