"""The largest number the simulator accepts anywhere a user supplies one, in one place.

A scenario or a trace is input from someone else: a value far beyond anything real (a horizon
of ``1e308`` seconds, a rate of a million jobs a second, a hundred million nodes, a quota of
``2^63``) would otherwise hang the simulation, overflow a date or run meaningless numbers. Each
bound below is well above any real cluster or trace, and a value above it is an error naming the
file, the line and the field (a scenario field through pydantic; a trace row through the reader's
report, or an error in strict mode). ``simulator/workload/TRACES.md`` documents the table.

=============================  =====================  ===============================================
what                           maximum                applies to
=============================  =====================  ===============================================
a time or a duration           10 years (315,360,000  every duration of a scenario (``horizon``,
                               s)                     ``start``/``until``, runtimes, intervals,
                                                      ``max_duration``, failures, ...); a trace's
                                                      runtimes, checkpoint intervals, maximum
                                                      durations and submit times after rebasing
                                                      (its deadlines: 101 times that)
samples of a run               1,000,000              ``horizon / sample_interval``; without a
                                                      horizon, the last arrival's end / interval
jobs                           10,000,000             the expected arrivals of the generator
                                                      classes over their window (capped by
                                                      ``count`` and ``limit``); a pipeline's runs
arrival rate                   10,000 a second        a generator class's ``rate / per`` (and one
                                                      ``fixed`` arrival per 100 µs at most)
nodes                          100,000                the pools' ``nodes`` and a nodes file, summed
devices per node / per pod     256                    ``gpus_per_node``, a node's allocatable
                                                      accelerators, a job's GPUs per pod
pods per job                   100,000                a trace row's ``pods``
a resource quantity            milli-value 2^63 - 1   CPU, memory, quotas (nominal, borrowing and
                               (Kubernetes' int64:    lending limits), a node's allocatable, a
                               about 9.2e15 units)    pod's request
deadline slack                 100                    ``deadline_slack`` (deadline = submit +
                                                      runtime x slack)
runaway factor                 1,000                  ``runaway_factor``
estimate error                 sigma 10, bias 1,000   ``workload.estimate_error``; estimates are
                                                      capped at 10 years
lognormal runtime              mu ±100, sigma 10      generator classes (draws are capped at 10 years)
weights                        1e12; flavor: 1e9      mixture components and GPU counts (normalised);
                                                      ``policy.flavor_weights``
priority steps                 2^31 - 1               ``policy.aging.step`` and ``max_boost``
repeats                        1,000,000              retries, heartbeat misses, preemptions an hour
pipeline runtime scale         1,000                  ``workload.pipelines[].runtime_scale``
CPUs per node (SWF)            1,000,000              a trace's ``cpus_per_node``
seed                           2^64 - 1               the scenario's ``seed``
replications                   1,000                  ``--seeds`` of ``compare`` and ``plan``
start                          years 1970 to 3000     the scenario's ``start``
a trace line                   1 MiB                  any line of a trace file
=============================  =====================  ===============================================
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Final

__all__ = [
    "EARLIEST_START",
    "LATEST_START",
    "MAX_BIAS",
    "MAX_CPUS_PER_NODE",
    "MAX_DEADLINE_SLACK",
    "MAX_DEVICES",
    "MAX_FLAVOR_WEIGHT",
    "MAX_JOBS",
    "MAX_LINE_BYTES",
    "MAX_MIX_WEIGHT",
    "MAX_MU",
    "MAX_NODES",
    "MAX_PODS",
    "MAX_PRIORITY_STEP",
    "MAX_QUANTITY_MILLI",
    "MAX_RATE_PER_S",
    "MAX_REPEATS",
    "MAX_REPLICATIONS",
    "MAX_RUNAWAY_FACTOR",
    "MAX_RUNTIME_SCALE",
    "MAX_SAMPLES",
    "MAX_SEED",
    "MAX_SIGMA",
    "MAX_SPAN_S",
    "span_text",
]

YEAR_S: Final = 365 * 86400
#: The longest time or duration anywhere in a simulation: 10 years, in seconds.
MAX_SPAN_S: Final = 10 * YEAR_S
#: The most samples (``sample_interval`` ticks) one run may take.
MAX_SAMPLES: Final = 1_000_000
#: The most jobs a count, a limit or a generator class's expected arrivals may reach.
MAX_JOBS: Final = 10_000_000
#: The highest arrival rate of a generator class, per second.
MAX_RATE_PER_S: Final = 10_000.0
#: The most nodes of a fleet.
MAX_NODES: Final = 100_000
#: The most accelerators of one node, and GPUs of one pod.
MAX_DEVICES: Final = 256
#: The most pods of one job (a gang).
MAX_PODS: Final = 100_000
#: The largest milli-value of a resource quantity: Kubernetes' int64.
MAX_QUANTITY_MILLI: Final = 2**63 - 1
#: The largest ``deadline_slack``.
MAX_DEADLINE_SLACK: Final = 100.0
#: The largest ``runaway_factor``.
MAX_RUNAWAY_FACTOR: Final = 1000.0
#: The largest ``estimate_error.sigma`` and ``estimate_error.bias``.
MAX_SIGMA: Final = 10.0
MAX_BIAS: Final = 1000.0
#: The largest ``mu`` (mean of ln seconds) of a lognormal runtime, either sign.
MAX_MU: Final = 100.0
#: The largest weight of a mixture component or a GPU count (weights are normalised: this only
#: keeps their sum finite).
MAX_MIX_WEIGHT: Final = 1e12
#: The largest ``policy.flavor_weights`` value (the scheduler scales it by 1000 to an integer).
MAX_FLAVOR_WEIGHT: Final = 1e9
#: Priority points (aging steps, boosts): Kueue priorities are int32.
MAX_PRIORITY_STEP: Final = 2**31 - 1
#: Counts of things that repeat (retries, heartbeat misses, preemptions an hour).
MAX_REPEATS: Final = 1_000_000
#: A pipeline's job runtimes are scaled by at most this.
MAX_RUNTIME_SCALE: Final = 1000.0
#: SWF's ``cpus_per_node``.
MAX_CPUS_PER_NODE: Final = 1_000_000
#: Items a file's ``replicate:`` blocks expand to, together: four times Kueue's large-scale
#: performance configuration (1,000 ClusterQueues, their LocalQueues, 3,000 workload classes).
#: Each Kueue object is checked against its CRD schema (about 0.4 ms), so this bounds a load at
#: about 10 s; more is a mistake (a count of 10**6).
MAX_REPLICATED_ITEMS: Final = 20_000
#: The largest ``seed``.
MAX_SEED: Final = 2**64 - 1
#: Runs of each point of ``compare`` and ``plan`` (``--seeds``): a confidence interval is tight
#: long before this, and a billion would build its seed list for hours before the first run.
MAX_REPLICATIONS: Final = 1000
#: A run's ``start``: deadlines reach about a thousand years beyond it (10 years of submissions and
#: runtimes times a deadline slack of up to 100), and dates end in the year 9999.
EARLIEST_START: Final = datetime(1970, 1, 1, tzinfo=UTC)
LATEST_START: Final = datetime(3000, 1, 1, tzinfo=UTC)
#: The longest line of a trace file: a row is short, a longer "line" is a binary file.
MAX_LINE_BYTES: Final = 2**20


def span_text() -> str:
    """The time bound as a message says it."""
    return f"{MAX_SPAN_S:,} s (10 years)"
