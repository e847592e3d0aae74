"""Benchmark: how the offline preview scales with the number of services (time, memory, resources).

    .venv/bin/python benchmarks/scaling.py [--sizes 5 50 200] [--repeat 3] [--policy] [--seed 0]

For each size N it builds a synthetic catalogue of N valid service specs (`benchmarks/synthetic.py`,
plus the notification Lambda) and runs the REAL composition, `build_platform(PlatformInputs.resolve(
"dev", config, catalog))`, with the dev stack's config under the offline mock runtime
(`offline.runtime.run_function`), optionally followed by the policy pack over the recorded plan.
Each measurement runs in a fresh interpreter, so import cost and peak RSS (getrusage, read at the
end of the child) belong to that run alone. The median of `--repeat` runs is reported, then the
per-service cost between sizes, a least-squares fit time = a + b*N with its R^2, and a linearity
verdict from the ratio of the per-service slopes. Not a test: it reports figures, it does not assert.
"""

from __future__ import annotations

import time

# Before any other import, so a child's import time starts here. CLOCK_MONOTONIC is system-wide, so the
# parent can compare its own clock with the child's (to split off interpreter shut-down).
_STARTED = time.monotonic()

import argparse  # noqa: E402
import gc  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import resource  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
from collections.abc import Sequence  # noqa: E402
from dataclasses import asdict, dataclass  # noqa: E402
from datetime import datetime  # noqa: E402
from pathlib import Path  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
LINEAR_TOLERANCE = 0.25
"""The per-service slope may change by this fraction from the first to the last interval and still be "linear"."""


@dataclass(frozen=True)
class Run:
    """One child's figures (seconds, MiB)."""

    services: int
    resources: int
    """Everything the plan holds: AWS/TLS resources, components and the stack (as benchmarks/offline_preview.py)."""
    custom: int
    """AWS/TLS resources only."""
    import_s: float
    catalog_s: float
    program_s: float
    program_cpu_s: float
    """CPU time (all threads of the process) of the program run: less sensitive to other load than wall time."""
    program_gc_s: float
    """Of `program_s`, the time spent in the cyclic garbage collector (gc.callbacks)."""
    program_gc_cpu_s: float
    """Of `program_cpu_s`, the CPU time of the cyclic garbage collector (the collecting thread's CPU
    clock): with other processes loading the machine, `program_gc_cpu_s / program_cpu_s` is the share to
    quote, because a collection preempted by another process inflates only the wall figure."""
    policy_s: float | None
    peak_mib: float
    pack_peak_mib: float | None
    """Peak RSS of the policy pack process (a child of the measured process), if run."""
    violations: int | None
    wall_s: float = 0.0
    """The whole child process as the parent saw it (interpreter start-up and shut-down included)."""
    started: float = 0.0
    """The child's clock when this module started, and when it had written its figures (to split `wall_s`)."""
    finished: float = 0.0
    exit_s: float = 0.0
    """From the figures written to the process's end, as the parent saw it: interpreter shut-down."""


# --- child: one measurement ------------------------------------------------------------------------------


class _GcTimer:
    """Total time spent in cyclic garbage collections (collections hold the GIL and do not nest)."""

    def __init__(self) -> None:
        self.total = 0.0
        self.cpu = 0.0
        self._start = 0.0
        self._start_cpu = 0.0
        gc.callbacks.append(self._callback)

    def _callback(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._start, self._start_cpu = time.perf_counter(), time.thread_time()
        else:
            self.total += time.perf_counter() - self._start
            self.cpu += time.thread_time() - self._start_cpu


def child(n: int, seed: int, policy: bool, gc_off: bool, out: Path) -> None:
    """Run once in this (fresh) interpreter and write a `Run` as JSON to `out`."""
    sys.path.insert(0, str(ROOT))
    import pulumi

    from benchmarks.synthetic import synthetic_catalog, with_notification
    from components.platform import PlatformInputs, build_platform
    from model.config import load_stack_config
    from offline.runtime import read_stack_files, run_function
    from services import validate_catalog

    imported = time.monotonic()
    catalog = validate_catalog(with_notification(synthetic_catalog(n, seed)))
    files = read_stack_files(ROOT, "dev")
    # The dev stack overrides sizing for real services only (`order`), and PlatformInputs.resolve
    # rejects overrides for services that are not in the catalogue: synthetic runs drop them.
    config = {k: v for k, v in files.config.items() if k != "microservices:services"}
    built, built_cpu = time.monotonic(), time.process_time()

    def program() -> None:
        stack_config = load_stack_config()
        platform = build_platform(PlatformInputs.resolve("dev", stack_config, catalog))
        for key, value in platform.exports().items():
            pulumi.export(key, value)

    if gc_off:
        gc.disable()
    gc_timer = _GcTimer()
    os.chdir(ROOT)  # run_function runs the program in the current directory, as the language host would
    plan = run_function(program, stack="dev", config=config, secret_keys=files.secret_keys, region=files.region).plan
    ran, ran_cpu, program_gc, program_gc_cpu = time.monotonic(), time.process_time(), gc_timer.total, gc_timer.cpu
    policy_s = violations = pack_peak = None
    if policy:
        from offline.policy import run_policy_pack

        report = run_policy_pack(plan, pack_dir=ROOT / "policies")
        policy_s = time.monotonic() - ran
        violations = len(report.violations)
        pack_peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    run = Run(
        services=len(catalog),
        resources=len(plan.resources),
        custom=sum(1 for r in plan.resources if r.custom),
        import_s=imported - _STARTED,
        catalog_s=built - imported,
        program_s=ran - built,
        program_cpu_s=ran_cpu - built_cpu,
        program_gc_s=program_gc,
        program_gc_cpu_s=program_gc_cpu,
        policy_s=policy_s,
        peak_mib=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        pack_peak_mib=pack_peak,
        violations=violations,
        started=_STARTED,
    )
    out.write_text(json.dumps({**asdict(run), "finished": time.monotonic()}))


# --- parent: orchestration and report --------------------------------------------------------------------


def measure(n: int, seed: int, policy: bool, gc_off: bool) -> Run:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "run.json"
        argv = [sys.executable, __file__, "--child", str(n), "--seed", str(seed), "--out", str(out)]
        started = time.monotonic()
        argv += (["--policy"] if policy else []) + (["--gc-off"] if gc_off else [])
        result = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True)
        ended = time.monotonic()
        if result.returncode != 0 or not out.exists():
            raise SystemExit(f"run with {n} services failed:\n{result.stdout[-2000:]}{result.stderr[-4000:]}")
        figures = json.loads(out.read_text())
        return Run(**{**figures, "wall_s": ended - started, "exit_s": ended - figures["finished"]})


def median_run(runs: Sequence[Run]) -> Run:
    """Field-wise medians (counts are identical across runs of one size; peaks take the maximum)."""

    def med(values: Sequence[float | None]) -> float | None:
        present = [v for v in values if v is not None]
        return statistics.median(present) if present else None

    first = runs[0]
    return Run(
        services=first.services,
        resources=first.resources,
        custom=first.custom,
        import_s=statistics.median(r.import_s for r in runs),
        catalog_s=statistics.median(r.catalog_s for r in runs),
        program_s=statistics.median(r.program_s for r in runs),
        program_cpu_s=statistics.median(r.program_cpu_s for r in runs),
        program_gc_s=statistics.median(r.program_gc_s for r in runs),
        program_gc_cpu_s=statistics.median(r.program_gc_cpu_s for r in runs),
        policy_s=med([r.policy_s for r in runs]),
        peak_mib=max(r.peak_mib for r in runs),
        pack_peak_mib=med([r.pack_peak_mib for r in runs]),
        violations=first.violations,
        wall_s=statistics.median(r.wall_s for r in runs),
        exit_s=statistics.median(r.exit_s for r in runs),
    )


def linear_fit(xs: Sequence[float], ys: Sequence[float]) -> tuple[float, float, float]:
    """Least squares y = a + b*x: (a, b, R^2)."""
    mean_x, mean_y = statistics.fmean(xs), statistics.fmean(ys)
    sxx = sum((x - mean_x) ** 2 for x in xs)
    b = sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True)) / sxx
    a = mean_y - b * mean_x
    ss_tot = sum((y - mean_y) ** 2 for y in ys)
    ss_res = sum((y - (a + b * x)) ** 2 for x, y in zip(xs, ys, strict=True))
    return a, b, (1 - ss_res / ss_tot) if ss_tot else 1.0


def slopes(sizes: Sequence[int], values: Sequence[float]) -> list[float]:
    """Per-service cost of each interval: (v(N2) - v(N1)) / (N2 - N1)."""
    return [(v2 - v1) / (n2 - n1) for n1, n2, v1, v2 in zip(sizes, sizes[1:], values, values[1:], strict=False)]


def verdict(ratio: float) -> str:
    if ratio > 1 + LINEAR_TOLERANCE:
        return "superlinear"
    if ratio < 1 - LINEAR_TOLERANCE:
        return "sublinear"
    return "linear"


def report_scaling(label: str, unit: str, sizes: Sequence[int], values: Sequence[float]) -> None:
    per = slopes(sizes, values)
    steps = ", ".join(f"{n1}->{n2}: {s:.4g} {unit}" for n1, n2, s in zip(sizes, sizes[1:], per, strict=False))
    print(f"  {label}: per service {steps}")
    if len(sizes) < 3 or per[0] == 0:
        return
    a, b, r2 = linear_fit(sizes, values)
    ratio = round(per[-1] / per[0], 2)  # the verdict follows the figure as printed
    print(
        f"    fit {label} = {a:.4g} + {b:.4g}*N {unit}, R^2 = {r2:.4f}; slope ratio "
        f"({sizes[-2]}->{sizes[-1]}) / ({sizes[0]}->{sizes[1]}) = {ratio:.2f} -> {verdict(ratio)}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", nargs="+", type=int, default=[5, 50, 200], help="numbers of synthetic services")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--policy", action="store_true", help="also run the policy pack over the plan")
    parser.add_argument("--seed", type=int, default=0, help="seed of the synthetic catalogues")
    parser.add_argument(
        "--gc-off", action="store_true", help="diagnostic: disable Python's cyclic garbage collector in each run"
    )
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        child(args.child, args.seed, args.policy, args.gc_off, args.out)
        return

    sizes = sorted(set(args.sizes))
    print(
        f"offline preview scaling, dev config, synthetic catalogues (seed {args.seed}) plus the notification "
        f"Lambda, {'with' if args.policy else 'without'} policy pack{', GC off' if args.gc_off else ''}, "
        f"median of {args.repeat} fresh-process runs"
    )
    load = os.getloadavg()
    print(
        f"{datetime.now():%Y-%m-%d %H:%M}, {os.cpu_count()} CPUs, "
        f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}"
    )
    header = (
        f"{'N':>4} {'specs':>5} {'resources':>9} {'AWS/TLS':>7} {'import s':>8} {'program s':>9} {'cpu s':>6} "
        f"{'gc s':>5} {'gc cpu':>6} {'gc %':>5} {'exit s':>6} {'wall s':>7} {'peak MiB':>8} {'res/svc':>7} {'ms/res':>6}"
    )
    if args.policy:
        header += f" {'policy s':>8} {'pack MiB':>8} {'viol.':>5}"
    print(header)
    medians: list[Run] = []
    for n in sizes:
        run = median_run([measure(n, args.seed, args.policy, args.gc_off) for _ in range(args.repeat)])
        medians.append(run)
        line = (
            f"{n:>4} {run.services:>5} {run.resources:>9} {run.custom:>7} {run.import_s:>8.2f} {run.program_s:>9.2f} "
            f"{run.program_cpu_s:>6.2f} {run.program_gc_s:>5.2f} {run.program_gc_cpu_s:>6.2f} "
            f"{100 * run.program_gc_cpu_s / run.program_cpu_s:>5.1f} {run.exit_s:>6.2f} {run.wall_s:>7.2f} "
            f"{run.peak_mib:>8.0f} {run.resources / n:>7.1f} "
            f"{1000 * run.program_s / run.resources:>6.1f}"
        )
        if args.policy:
            line += f" {run.policy_s or 0:>8.2f} {run.pack_peak_mib or 0:>8.0f} {run.violations:>5}"
        print(line, flush=True)

    if len(sizes) >= 2:
        print("\nper-service cost (difference between sizes / difference in N):")
        report_scaling("resources", "res", sizes, [r.resources for r in medians])
        report_scaling("program", "s", sizes, [r.program_s for r in medians])
        report_scaling("program CPU", "s", sizes, [r.program_cpu_s for r in medians])
        report_scaling("program GC", "s", sizes, [r.program_gc_s for r in medians])
        report_scaling("program GC CPU", "s", sizes, [r.program_gc_cpu_s for r in medians])
        report_scaling("program w/o GC", "s", sizes, [r.program_s - r.program_gc_s for r in medians])
        report_scaling("exit", "s", sizes, [r.exit_s for r in medians])
        report_scaling("wall", "s", sizes, [r.wall_s for r in medians])
        report_scaling("peak RSS", "MiB", sizes, [r.peak_mib for r in medians])
        if args.policy:
            report_scaling("policy", "s", sizes, [r.policy_s or 0.0 for r in medians])
    load = os.getloadavg()
    print(f"\nload average at the end: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")


if __name__ == "__main__":
    main()
