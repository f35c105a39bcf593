"""Loading a large replicated scenario: ``kueue-perf-baseline`` with N cohorts instead of 5.

The built-in scenario replicates its ClusterQueues, LocalQueues (``queues.documents``) and workload
classes over ``{cohort: 5, cq: 6}``; this sets both blocks' ``cohort`` to each N given and times
``load_scenario`` (expansion of the blocks, the scenario's validation, every Kueue object checked
against its CRD schema, the queue configuration built), in CPU seconds, in a fresh process per
size so that a cache of one size does not serve the next. Figures in benchmarks/README.md
("Loading large replicated scenarios").

    .venv/bin/python benchmarks/bench_scenario_load.py [--cohorts 54,300,1000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
SCENARIO = HERE.parent / "simulator" / "scenarios" / "kueue-perf-baseline"


def scaled(folder: Path, cohorts: int) -> Path:
    """A copy of the scenario with ``cohorts`` cohorts in both replicate blocks."""
    target = folder / f"cohorts-{cohorts}"
    shutil.copytree(SCENARIO, target)
    path = target / "scenario.yaml"
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    blocks = [
        item
        for items in (data["queues"]["documents"], data["workload"]["generators"]["classes"])
        for item in items
        if isinstance(item, dict) and "replicate" in item
    ]
    for block in blocks:
        block["replicate"]["cohort"] = cohorts
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def load_once(path: Path) -> None:
    """Child process: load ``path`` and print the CPU seconds and what was built."""
    from budcore_simulator.scenario import load_scenario

    started = time.process_time()
    loaded = load_scenario(path)
    seconds = time.process_time() - started
    objects = len(loaded.queues.cluster_queues) + len(loaded.queues.local_queues)
    print(f"{seconds:.3f} {objects} {len(loaded.scenario.workload.generators.classes)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cohorts", default="54,300,1000", help="comma-separated cohort counts")
    parser.add_argument(
        "--repeat", type=int, default=3, help="fresh processes per size (min and median shown)"
    )
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        load_once(args.child)
        return
    with tempfile.TemporaryDirectory() as folder:
        for cohorts in (int(n) for n in args.cohorts.split(",")):
            path = scaled(Path(folder), cohorts)
            runs = []
            for _ in range(args.repeat):
                out = subprocess.run(
                    [sys.executable, __file__, "--child", str(path)],
                    capture_output=True,
                    text=True,
                    check=True,
                ).stdout.split()
                runs.append(float(out[0]))
            runs.sort()
            print(
                f"{cohorts:6d} cohorts: {out[1]} ClusterQueues and LocalQueues, {out[2]} classes: "
                f"load CPU min {runs[0]:.2f} s, median {runs[len(runs) // 2]:.2f} s "
                f"({runs[0] / int(out[1]) * 1e3:.2f} ms per queue object)"
            )


if __name__ == "__main__":
    main()
