"""Two (or more) source trees timed against each other on one simulator case, interleaved.

Each tree is a directory holding the three import names (``budcore``, ``budcore_adapters``,
``budcore_simulator``: symlinks into a checkout or a ``git worktree``), put first on
``PYTHONPATH`` of a fresh process that builds the case with ``bench_simulator.py`` and prints the
CPU seconds (``time.process_time``) of ``Simulation.run()``. Rounds alternate the trees and swap
their order every round, so a machine whose speed drifts slows them alike; min and median shown.

    mkdir -p /tmp/old && git worktree add /tmp/old-tree <commit>
    ln -s /tmp/old-tree/src/budcore /tmp/old/budcore
    ln -s /tmp/old-tree/adapters /tmp/old/budcore_adapters
    ln -s /tmp/old-tree/simulator /tmp/old/budcore_simulator
    (the same for the new tree, e.g. /tmp/new pointing into this checkout)
    .venv/bin/python benchmarks/ab_trees.py a 20000 6 old=/tmp/old new=/tmp/new
    .venv/bin/python benchmarks/ab_trees.py floor 20000 6 old=/tmp/old new=/tmp/new

Cases: ``a`` (bench_simulator's case a with ``--jobs JOBS``) and ``floor`` (its no-queue case).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent

# What the child process runs: the case built by bench_simulator.py from the tree on PYTHONPATH.
CHILD = """
import sys, time
sys.path.insert(0, {here!r})
import bench_simulator as b
case, jobs = {case!r}, {jobs}
nodes = b.CASES["a"][1]
if case == "floor":
    print(b.uncontended(jobs, nodes, 1000.0, 1))
else:
    loaded = b.scenario("case-a", nodes, b.queues(nodes), b.workload(jobs, 1000.0), 1)
    sim = b.build_simulation(loaded, gc_freeze_every=10000)
    started = time.process_time()
    sim.run()
    print(time.process_time() - started)
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("case", choices=("a", "floor"))
    parser.add_argument("jobs", type=int)
    parser.add_argument("rounds", type=int)
    parser.add_argument("trees", nargs="+", metavar="NAME=DIR", help="a tree's name and import directory")
    args = parser.parse_args()
    trees = []
    for spec in args.trees:
        name, sep, path = spec.partition("=")
        if not sep or not Path(path, "budcore").exists():
            parser.error(f"{spec!r}: expected NAME=DIR with DIR/budcore in it")
        trees.append((name, path))
    code = CHILD.format(here=str(HERE), case=args.case, jobs=args.jobs)
    seconds: dict[str, list[float]] = {name: [] for name, _ in trees}
    for round_ in range(args.rounds):
        for name, path in trees if round_ % 2 == 0 else trees[::-1]:
            env = dict(os.environ, PYTHONPATH=path)
            child = [sys.executable, "-c", code]
            out = subprocess.run(child, env=env, capture_output=True, text=True, check=True)
            seconds[name].append(float(out.stdout.split()[-1]))
    for name, runs in seconds.items():
        print(
            f"{name:10s} CPU s min {min(runs):7.3f}  median {statistics.median(runs):7.3f}  "
            f"us/job (min) {min(runs) / args.jobs * 1e6:6.1f}  runs {' '.join(f'{r:.2f}' for r in runs)}"
        )


if __name__ == "__main__":
    main()
