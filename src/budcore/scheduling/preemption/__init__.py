"""Preemption: whom to evict so that a workload the cycle marked :class:`NeedsPreemption` fits.

:func:`find_victims` is a pure function of the admission snapshot. It never changes the
snapshot's usage (it simulates evictions on a copy-on-write overlay) and returns a
:class:`PreemptionDecision` that says who to evict, why each one, what each costs, and which
alternatives were considered.

The package has the shape of Kueue's preemptor (kubernetes-sigs/kueue
``pkg/scheduler/preemption/``, Apache-2.0), with budcore's additions in modules of their own:

- :mod:`.common` — the search context, candidates (``findCandidates``) in Kueue's order
  (``CandidatesOrdering``), fits and borrowing helpers, minimal removal and fill-back;
- :mod:`.classical` — Kueue's classical attempts (``GetTargets`` without fair sharing);
- :mod:`.fairsharing` — fair-sharing preemption (strategies, the cohort-tree target ordering);
- :mod:`.victims` — ``GetTargets`` and :func:`find_victims`, the entry point (``preemption.go``);
- :mod:`.oracle` — :class:`PreemptionOracle`, Kueue's ``SimulatePreemption`` for flavor assignment;
- :mod:`.policy` — :class:`PreemptionPolicy`;
- :mod:`.cost` — budcore's ``cost`` mode (exact and greedy search) and the default cost model;
- :mod:`.guards` — budcore's guards: critical and non-preemptible workloads, minimum runtime,
  the :class:`PreemptionBudget`;
- :mod:`.aging` — priority aging and inheritance (:class:`AgingPolicy`).

**``kueue`` mode** transcribes Kueue's ``GetTargets``; **``cost`` mode** keeps exactly the victim
sets Kueue's policies allow and picks the cheapest. In both modes ``critical`` and
``preemptible=False`` workloads are never candidates: budcore's job model promises that whatever
the queue policy says.

What this module exports is the public API; the submodules' other names are the package's own
and may change.
"""

from budcore.scheduling.preemption.aging import AgingPolicy, effective_priority, inherited_priorities
from budcore.scheduling.preemption.cost_model import DefaultPreemptionCostModel
from budcore.scheduling.preemption.guards import PreemptionBudget
from budcore.scheduling.preemption.oracle import PreemptionOracle
from budcore.scheduling.preemption.policy import PreemptionPolicy
from budcore.scheduling.preemption.victims import find_victims

# The decision types live in budcore.scheduling.snapshot (the cycle reads them too); they are
# re-exported here, where a reader of preemption looks for them.
from budcore.scheduling.snapshot import (
    Alternative,
    DecisionStatus,
    FairSharingStrategy,
    PreemptionDecision,
    PreemptionMode,
    PreemptionReason,
    Victim,
)

__all__ = [
    "AgingPolicy",
    "Alternative",
    "DecisionStatus",
    "DefaultPreemptionCostModel",
    "FairSharingStrategy",
    "PreemptionBudget",
    "PreemptionDecision",
    "PreemptionMode",
    "PreemptionOracle",
    "PreemptionPolicy",
    "PreemptionReason",
    "Victim",
    "effective_priority",
    "find_victims",
    "inherited_priorities",
]
