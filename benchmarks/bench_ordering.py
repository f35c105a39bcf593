"""FIFO against SJF (and the other research orderings) on bench_simulator's case (a), beside the
Alibaba PAI simulator's published figures (issue #17).

The anchor: the PAI GPU-cluster simulator (alibaba/clusterdata, ``cluster-trace-gpu-v2020/
simulator``, its README's output and ``logs/0228-...-6500g_1n_h0_0p_3sn_0gt-1000ar-20000j-1x-42r.log``)
runs 20,000 jobs of ``pai_job_duration_estimate_100K.csv`` arriving at 1,000 jobs/min on 6,500
GPUs and reports an average JCT of 7,918.47 s under FIFO and 5,988.61 s under SJF (its ``SJF``
sorts by the true duration), -24.4%.

budcore runs the same shape of experiment on case (a) of ``bench_simulator.py``: 20,000 jobs at
1,000 jobs/min on 6,480 GPUs (810 nodes of 8), with Gavel's GPU counts and runtimes (the PAI
trace sample is not shipped with budcore), four tenants' ClusterQueues in one cohort that may
borrow. Each job declares its true runtime, so ``sjf`` orders by the true duration as the PAI
simulator's SJF does. Gavel's runtimes are much longer than PAI's (a Gavel job runs 16.8 h on
average), so the absolute JCTs differ by an order of magnitude: the comparable figure is the
relative change of the mean JCT from FIFO to SJF. Each run is ``policy.ordering`` set through
the same preset ``budcore compare -p sjf`` applies (:func:`budcore_simulator.sweep.apply_policy`).

    .venv/bin/python benchmarks/bench_ordering.py                     # fifo and sjf, seed 0
    .venv/bin/python benchmarks/bench_ordering.py --seeds 3           # seeds 0, 1, 2
    .venv/bin/python benchmarks/bench_ordering.py -p fifo -p sjf -p las -p edf --jobs 5000
    .venv/bin/python benchmarks/bench_ordering.py -p fifo -p las -p tiresias.yaml --within LowerPriority

``--within`` gives the four ClusterQueues Kueue's ``withinClusterQueue`` (default Never, as in
bench_simulator), which ``las_preemption`` needs to preempt anything; a ``.yaml`` policy is a
``budcore compare`` policy file (e.g. ``ordering: {default: las, las_thresholds: [1h, 10h],
las_preemption: true}``).
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from bench_simulator import CASES, queues, scenario, workload
from budcore_simulator.build import build_simulation
from budcore_simulator.scenario import LoadedScenario
from budcore_simulator.status import SimJobStatus
from budcore_simulator.sweep import apply_policy, parse_policy

from budcore.scheduling import ClusterQueuePreemption, QueueConfig
from budcore.scheduling.queues import WithinClusterQueue

#: The PAI simulator's published average JCT in seconds (README, 20,000 jobs, 6,500 GPUs).
PAI = {"fifo": 7918.47, "sjf": 5988.61}


def preempting(config: QueueConfig, within: WithinClusterQueue) -> QueueConfig:
    """``config`` with every ClusterQueue's ``withinClusterQueue`` set to ``within``."""
    if within is WithinClusterQueue.NEVER:
        return config
    cqs = [
        cq.model_copy(update={"preemption": ClusterQueuePreemption(within_cluster_queue=within)})
        for cq in config.cluster_queues.values()
    ]
    return QueueConfig.build(
        flavors=list(config.flavors.values()),
        cluster_queues=cqs,
        cohorts=list(config.cohorts.values()),
        local_queues=list(config.local_queues.values()),
    )


def run(loaded: LoadedScenario, policy: str) -> tuple[float, float, int, float]:
    """Mean JCT and mean wait (seconds) of the completed jobs, their count, and the run's CPU s."""
    spec = apply_policy(loaded.scenario, parse_policy(policy))
    sim = build_simulation(LoadedScenario(spec, Path.cwd(), f"bench_ordering.py ({policy})"))
    started = time.process_time()
    result = sim.run()
    cpu = time.process_time() - started
    done = [r for r in result.records if r.status is SimJobStatus.COMPLETED and r.end_s is not None]
    jct = statistics.fmean(r.end_s - r.arrival.submit_s for r in done)  # type: ignore[operator]
    wait = statistics.fmean(r.admitted_s - r.arrival.submit_s for r in done)  # type: ignore[operator]
    return jct, wait, len(done), cpu


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("-p", "--policy", action="append", help="a compare preset (default: fifo, sjf)")
    parser.add_argument("--jobs", type=int, default=CASES["a"][0])
    parser.add_argument("--seeds", type=int, default=1, help="run seeds 0 .. N-1")
    parser.add_argument(
        "--within",
        choices=[w.value for w in WithinClusterQueue],
        default=WithinClusterQueue.NEVER.value,
        help="the ClusterQueues' withinClusterQueue (Kueue's preemption within a queue)",
    )
    args = parser.parse_args()
    within = WithinClusterQueue(args.within)
    policies = args.policy or ["fifo", "sjf"]
    nodes = CASES["a"][1]
    print(
        f"case (a): {args.jobs} Gavel-shaped jobs, 1000 arrivals/min, {nodes * 8} GPUs ({nodes} nodes "
        "of 8), 4 ClusterQueues in one cohort"
    )
    means: dict[str, list[float]] = {p: [] for p in policies}
    for seed in range(args.seeds):
        loaded = scenario(
            "case-a", nodes, preempting(queues(nodes), within), workload(args.jobs, 1000.0), seed
        )
        for policy in policies:
            jct, wait, done, cpu = run(loaded, policy)
            means[policy].append(jct)
            print(
                f"  seed {seed}  {policy:<6} mean JCT {jct:10,.0f} s  mean wait {wait:10,.0f} s  "
                f"completed {done}  (CPU {cpu:.1f} s)"
            )
    base = statistics.fmean(means[policies[0]])
    header = f"{'policy':<8}{'budcore mean JCT':>18}{'vs ' + policies[0]:>10}"
    print(f"\n{header}{'PAI sim mean JCT':>19}{'vs fifo':>9}")
    for policy in policies:
        jct = statistics.fmean(means[policy])
        pai = PAI.get(policy)
        pai_text = (
            f"{pai:>17,.0f} s{pai / PAI['fifo'] - 1:>+9.1%}" if pai is not None else f"{'-':>19}{'':>9}"
        )
        print(f"{policy:<8}{jct:>16,.0f} s{jct / base - 1:>+10.1%}{pai_text}")


if __name__ == "__main__":
    main()
