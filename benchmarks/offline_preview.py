"""Benchmark: the offline preview of each real stack against the SDK's floor, and every stack in one command.

    .venv/bin/python benchmarks/offline_preview.py [--stacks dev staging prod] [--repeat 3] [--no-all]

For each stack, side by side and interleaved (so both see the same load on the machine):
- program: `python -m offline preview --stack S --no-preflight --no-policy` in a fresh interpreter, as a
  user runs it (the program, its plan printed; the preflight and policy stages are measured below);
- floor: `benchmarks/floor.py` in a fresh interpreter over that stack's plan: the same resources,
  registered flat with the same classes under the same mocks (see its docstring);
and the ratio program/floor, of CPU time (user + system of the process, the figure to quote on a loaded
machine) and of wall time. Then, unless `--no-all`, the whole pull-request check two ways: one command
(`python -m offline preview --stack dev --stack staging --stack prod`, preflight and policy pack
included, as `make preview-all`) and the old way, one `python -m offline preview --stack S` per stack. CPU time of a command includes
its children (the policy pack process). Peak RSS is the preview process's own max RSS (getrusage).
Medians of `--repeat` runs. Not a test: it reports figures, it does not assert them.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Sample:
    wall_s: float
    cpu_s: float
    """user + system CPU of the process and the children it waited for."""
    peak_mib: float = 0.0


def timed(argv: list[str], *, ok: tuple[int, ...] = (0,)) -> tuple[Sample, subprocess.CompletedProcess[str]]:
    """Run `argv` from the project folder; wall time and CPU time (from the children's rusage)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    result = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if result.returncode not in ok:
        raise SystemExit(
            f"{' '.join(argv)} failed ({result.returncode}):\n{result.stdout[-2000:]}{result.stderr[-3000:]}"
        )
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return Sample(wall, cpu), result


def preview(stacks: list[str], *, policy: bool, rss_file: Path, extra: list[str] | None = None) -> Sample:
    """`python -m offline preview ...` with the process's own peak RSS recorded as it exits."""
    argv = ["preview", *(a for s in stacks for a in ("--stack", s))] if stacks else ["preview", "--all-stacks"]
    argv += ([] if policy else ["--no-preflight", "--no-policy"]) + (extra or [])
    probe = (
        "import atexit, resource, runpy, sys; "
        f"atexit.register(lambda: open({str(rss_file)!r}, 'w').write("
        "str(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss))); "
        f"sys.argv = ['offline', *{argv!r}]; runpy.run_module('offline', run_name='__main__')"
    )
    sample, _ = timed([sys.executable, "-c", probe])
    return Sample(sample.wall_s, sample.cpu_s, int(rss_file.read_text()) / 1024)


def floor(plan_file: Path, out: Path) -> tuple[Sample, dict[str, object]]:
    sample, _ = timed(
        [sys.executable, str(ROOT / "benchmarks" / "floor.py"), "--plan", str(plan_file), "--out", str(out)]
    )
    return sample, json.loads(out.read_text())


def median(samples: list[Sample]) -> Sample:
    return Sample(
        statistics.median(s.wall_s for s in samples),
        statistics.median(s.cpu_s for s in samples),
        max(s.peak_mib for s in samples),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stacks", nargs="+", default=["dev", "staging", "prod"])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--no-all", action="store_true", help="skip the whole-check comparison")
    args = parser.parse_args()
    load = os.getloadavg()
    print(f"{os.cpu_count()} CPUs, load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}; medians of {args.repeat}")
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        rss = tmp / "maxrss"
        print("\nprogram (`preview --stack S --no-preflight --no-policy`) against the floor (`benchmarks/floor.py`)")
        print(
            f"{'stack':<8} {'resources':>9} {'program cpu':>11} {'floor cpu':>9} {'ratio cpu':>9} "
            f"{'program wall':>12} {'floor wall':>10} {'ratio wall':>10} {'peak MiB':>8}"
        )
        for stack in args.stacks:
            plan_file = tmp / f"{stack}.export.json"
            preview([stack], policy=False, rss_file=rss, extra=["--export", str(plan_file)])  # the plan, untimed
            programs, floors = [], []
            figures: dict[str, object] = {}
            for _ in range(args.repeat):
                programs.append(preview([stack], policy=False, rss_file=rss))
                sample, figures = floor(plan_file, tmp / "floor.json")
                floors.append(sample)
            if figures.get("unmapped_inputs"):
                print(f"  note: the floor could not pass these inputs: {figures['unmapped_inputs']}")
            p, f = median(programs), median(floors)
            print(
                f"{stack:<8} {figures['resources']:>9} {p.cpu_s:>11.2f} {f.cpu_s:>9.2f} {p.cpu_s / f.cpu_s:>9.2f} "
                f"{p.wall_s:>12.2f} {f.wall_s:>10.2f} {p.wall_s / f.wall_s:>10.2f} {p.peak_mib:>8.0f}",
                flush=True,
            )
        if args.no_all:
            return
        print("\nthe whole check, preflight and policy pack included")
        print(f"{'command':<62} {'wall s':>7} {'cpu s':>6} {'peak MiB':>8}")
        one, each = [], []
        for _ in range(args.repeat):
            one.append(preview(args.stacks, policy=True, rss_file=rss))
            runs = [preview([s], policy=True, rss_file=rss) for s in args.stacks]
            each.append(Sample(sum(r.wall_s for r in runs), sum(r.cpu_s for r in runs), max(r.peak_mib for r in runs)))
        label = " ".join(f"--stack {s}" for s in args.stacks)
        for name, samples in ((f"one command: preview {label}", one), ("one `preview --stack S` per stack", each)):
            m = median(samples)
            print(f"{name:<62} {m.wall_s:>7.2f} {m.cpu_s:>6.2f} {m.peak_mib:>8.0f}")
    load = os.getloadavg()
    print(f"\nload average at the end: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")


if __name__ == "__main__":
    main()
