"""Old tree vs new tree on ``bench_admission``'s steady state, interleaved, in CPU seconds.

The machine is shared and its speed drifts between hours, so a before/after figure counts only as a
ratio of runs taken side by side: one fresh process per (tree, level, round), the two trees
alternated and their order swapped each round, each run timing itself with ``time.process_time``
(``bench_admission.run_level``). Min and median per tree are printed, with the decisions each tree
made (admitted in the first cycle and in the steady state), since a change of semantics changes
the work as well as its cost.

Usage (each tree a checkout of this repository, e.g. ``git worktree add /tmp/old HEAD``)::

    .venv/bin/python benchmarks/ab_admission.py /tmp/old /path/to/new --levels 10000,50000 --rounds 3

Each tree is imported under its own name through a directory of symbolic links (``budcore`` →
``src/budcore`` and so on) put first on ``PYTHONPATH``, so an editable install of either does not
interfere.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

_RUN = (
    "import sys, json; sys.path.insert(0, 'benchmarks'); import bench_admission as b; "
    "print(json.dumps(b.run_level(b.build_config(), {level}, {seed}, {cycles})))"
)
_FIELDS = ("steady_us_per_decision", "steady_ms_per_cycle", "first_cycle_s")


def _import_path(tree: Path, into: Path) -> Path:
    """A directory in which ``budcore``, ``budcore_adapters`` and ``budcore_simulator`` are ``tree``'s."""
    into.mkdir()
    for name, target in (
        ("budcore", "src/budcore"),
        ("budcore_adapters", "adapters"),
        ("budcore_simulator", "simulator"),
    ):
        (into / name).symlink_to(tree / target)
    return into


def _run(tree: Path, path: Path, level: int, seed: int, cycles: int) -> dict[str, float]:
    env = {**os.environ, "PYTHONPATH": str(path)}
    code = _RUN.format(level=level, seed=seed, cycles=cycles)
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=tree, env=env, capture_output=True, text=True, check=True
    )
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("old", type=Path, help="checkout of the tree before the change")
    parser.add_argument("new", type=Path, help="checkout of the tree after the change")
    parser.add_argument("--levels", default="10000,50000", help="pending workloads, comma-separated")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--cycles", type=int, default=60, help="steady-state cycles per run")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    levels = [int(x) for x in args.levels.split(",")]
    trees = {"old": args.old.resolve(), "new": args.new.resolve()}
    runs: dict[tuple[str, int], list[dict[str, float]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        paths = {name: _import_path(tree, Path(tmp) / name) for name, tree in trees.items()}
        for round_ in range(args.rounds):
            order = ("old", "new") if round_ % 2 == 0 else ("new", "old")
            for level in levels:
                for name in order:
                    result = _run(trees[name], paths[name], level, args.seed, args.cycles)
                    runs.setdefault((name, level), []).append(result)
                    shown = " ".join(f"{field}={result[field]:.3f}" for field in _FIELDS)
                    print(f"round {round_} {name:>3} {level:>6}: {shown}", flush=True)
    print(
        f"\nCPU seconds (time.process_time); {args.rounds} rounds, {args.cycles} steady cycles; min / median"
    )
    for level in levels:
        for name in ("old", "new"):
            rs = runs[(name, level)]
            cells = []
            for field in _FIELDS:
                values = [r[field] for r in rs]
                cells.append(f"{field} {min(values):.3f} / {statistics.median(values):.3f}")
            first, steady = rs[0]["first_cycle_admitted"], rs[0]["steady_admitted"]
            decided = f"admitted: first cycle {first:.0f}, steady {steady:.0f}"
            print(f"{level:>6} {name:>3}: " + "; ".join(cells) + f"; {decided}")


if __name__ == "__main__":
    main()
