"""Run every throughput script in ``benchmarks/`` and print their figures (``make bench``).

By default each script runs at small sizes (some 15 seconds in all on the 2-core development
machine), enough to see that it works and roughly where the figures are; ``--full`` runs the
sizes ``benchmarks/README.md`` records (many minutes: the simulator's case b alone simulates a
million jobs). Every script runs in its own interpreter, one after the other, with its output
passed through; a script that fails does not stop the others, and the exit status says whether
all of them succeeded. The PostgreSQL benchmark is skipped, saying why, when the ``postgres``
extra or the server binaries are missing (and ``$BUDCORE_DATABASE_URL`` is unset).

    .venv/bin/python benchmarks/run_all.py [--full] [--only admission --only simulator ...]

The micro-benchmarks (``benchmarks/micro/``, pytest-benchmark) are separate: ``make bench-micro``.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent


def _postgres_unavailable() -> str | None:
    """Why ``bench_postgres.py`` cannot run here, or ``None`` when it can."""
    missing = [
        name for name in ("sqlalchemy", "psycopg", "alembic") if importlib.util.find_spec(name) is None
    ]
    if missing:
        names = ", ".join(missing)
        return f"missing {names}: the postgres extra is not installed (pip install 'budcore[postgres]')"
    if os.environ.get("BUDCORE_DATABASE_URL"):
        return None
    from budcore_adapters.postgres.tempserver import ServerUnavailableError, find_bin_dir

    try:
        find_bin_dir()
    except ServerUnavailableError as exc:
        return str(exc)
    return None


@dataclass(frozen=True)
class Benchmark:
    """A throughput script and its arguments: one run per entry of ``quick`` / ``full``."""

    name: str
    script: str
    quick: list[list[str]]
    full: list[list[str]] = field(default_factory=lambda: [[]])  # the script's defaults
    unavailable: Callable[[], str | None] = lambda: None


BENCHMARKS = [
    Benchmark(
        "admission",
        "bench_admission.py",
        quick=[["--levels", "1000,10000", "--cycles", "20", "--repeat", "1"]],
    ),
    Benchmark(
        "simulator",
        "bench_simulator.py",
        quick=[["--jobs", "5000"]],
        full=[["--case", "a"], ["--case", "b"]],
    ),
    Benchmark(
        "openb",
        "bench_openb.py",
        quick=[["--rounds", "1", "--pods", "2000", "--fractional", "round-up"]],
        full=[["--fractional", "round-up"], ["--fractional", "round-up", "--gpuspec", "0.338"]],
    ),
    Benchmark("preemption", "bench_preemption.py", quick=[["--hours", "72", "--trials", "1"]]),
    Benchmark("scenario-load", "bench_scenario_load.py", quick=[["--cohorts", "54", "--repeat", "1"]]),
    Benchmark("pipeline", "bench_pipeline.py", quick=[["--repeat", "1", "--engine-steps", "2000"]]),
    Benchmark(
        "postgres",
        "bench_postgres.py",
        quick=[["--workers", "1,2", "--seconds", "1"]],
        unavailable=_postgres_unavailable,
    ),
]


@dataclass
class Outcome:
    command: str
    status: str  # ok, failed (exit N), skipped: why
    seconds: float = 0.0


def run(benchmark: Benchmark, full: bool) -> list[Outcome]:
    reason = benchmark.unavailable()
    if reason is not None:
        print(f"\n=== {benchmark.name}: skipped: {reason}", flush=True)
        return [Outcome(benchmark.script, f"skipped: {reason}")]
    outcomes = []
    for arguments in benchmark.full if full else benchmark.quick:
        command = [sys.executable, str(HERE / benchmark.script), *arguments]
        shown = " ".join(["benchmarks/" + benchmark.script, *arguments])
        print(f"\n=== {benchmark.name}: {shown}", flush=True)
        began = time.perf_counter()
        code = subprocess.run(command, cwd=HERE.parent, check=False).returncode
        status = "ok" if code == 0 else f"failed (exit {code})"
        outcomes.append(Outcome(shown, status, time.perf_counter() - began))
    return outcomes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--full", action="store_true", help="the sizes benchmarks/README.md records (many minutes)"
    )
    parser.add_argument(
        "--only",
        action="append",
        choices=[b.name for b in BENCHMARKS],
        help="run only this benchmark (repeatable)",
    )
    args = parser.parse_args(argv)
    chosen = [b for b in BENCHMARKS if not args.only or b.name in args.only]
    outcomes = [outcome for benchmark in chosen for outcome in run(benchmark, args.full)]
    print(f"\n=== summary ({'full' if args.full else 'small'} sizes)")
    width = max(len(o.command) for o in outcomes)
    for outcome in outcomes:
        took = f"{outcome.seconds:7.1f} s" if outcome.seconds else " " * 9
        print(f"  {outcome.command:<{width}}  {took}  {outcome.status}")
    return 1 if any(o.status.startswith("failed") for o in outcomes) else 0


if __name__ == "__main__":
    sys.exit(main())
