"""One way to turn a scenario into a :class:`~budcore_simulator.engine.Simulation`.

``budcore simulate``, the ``compare``/``plan`` sweeps and the benchmarks all build their runs here,
so a scenario means the same simulation wherever it runs: its fleet, queues and workload, the
engine options of :meth:`LoadedScenario.engine_options`, its policy's admission, preemption,
preemption budget, aging, deadline boost and throughput (the flavors' order), the prices of
:meth:`LoadedScenario.prices` and the capacity bookings of its ``reservations``, the pipeline
runs of its ``workload.pipelines`` and the guard, budgets and price book of its ``money`` block
(part of the engine options).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from budcore.scheduling import QueueConfig

from .engine import ClusterFactory, ProgressFn, Simulation
from .scenario import LoadedScenario
from .throughput import flavor_accelerators, preferred


def build_simulation(
    loaded: LoadedScenario,
    *,
    queues: QueueConfig | None = None,
    progress: ProgressFn | None = None,
    observer: Callable[[Simulation, float], None] | None = None,
    gc_freeze_every: int | None = None,
    cluster: ClusterFactory | None = None,
) -> Simulation:
    """The simulation of ``loaded``, ready to :meth:`~Simulation.run` (once).

    ``queues`` replaces the scenario's queue configuration (a sweep's scaled quotas or queueing
    strategy); ``progress`` and ``observer`` are passed to the engine; ``gc_freeze_every``
    overrides :attr:`EngineOptions.gc_freeze_every` (scenario runs freeze every 10,000 jobs);
    ``cluster`` builds another backend than the in-memory one. Each call draws the workload
    afresh (:meth:`LoadedScenario.arrivals`), so a scenario can be built and run several times.
    """
    policy = loaded.scenario.policy
    options = loaded.engine_options()
    if gc_freeze_every is not None:
        options = replace(options, gc_freeze_every=gc_freeze_every)
    config = loaded.queues if queues is None else queues
    if policy.throughput is not None:  # budcore's Gavel-style flavor preference (throughput.py)
        accelerators = flavor_accelerators(config, loaded.nodes)
        config = preferred(config, policy.throughput, accelerators, loaded.prices())
    return Simulation(
        loaded.nodes,
        config,
        loaded.arrivals(),
        options=options,
        policy=policy.admission(),
        preemption=policy.preemption(),
        preemption_budget=policy.budget(),
        aging=policy.aging.policy() if policy.aging else None,
        deadline_boost=policy.deadline_boost_policy(),
        prices=loaded.prices(),
        progress=progress,
        observer=observer,
        cluster=cluster,
        reservations=loaded.reservations,
        pipelines=loaded.pipelines,
    )
