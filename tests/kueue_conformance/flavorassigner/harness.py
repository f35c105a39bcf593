"""Harness for the transcription of Kueue's flavor assigner table tests into budcore tests.

Source: kubernetes-sigs/kueue at commit ff69552e79ad21652c36caa97038382e55625cf7,
``pkg/scheduler/flavorassigner/flavorassigner_test.go`` (Apache-2.0). Each ``test_*.py`` module
beside this one transcribes one of its table-driven test functions: the inputs of every case and
Kueue's expected results, as Python data, one pytest param per case with the case name as its id
(:func:`params`). Nothing here reads the Go file; the data is the transcription. ``STATUS.md``
sums up what passes, what does not and why.

How a case is driven through budcore's public API (:func:`run`):

- the ClusterQueues, Cohorts and ResourceFlavors become a :class:`QueueConfig`; the quota tree is
  a :class:`QuotaTree` and the usage the case preloads (``clusterQueueUsage`` and the like: Kueue's
  ``ClusterQueueSnapshot.AddUsage``) is added to a :class:`QuotaUsage`, which propagates it to the
  cohorts as Kueue's snapshot does;
- the workload's pod sets become a :class:`ResourceRequest`, with their node selectors, required
  node affinity and tolerations (:func:`pod_set_of`; requests as a mapping, so zero requests stay);
- Kueue's ``testOracle`` (a stub ``SimulatePreemption``: ``Preempt`` with borrowing height 0 unless
  the case's ``simulationResult`` says otherwise) becomes the ``simulate`` callable
  :func:`assign_flavors` takes, answering ``(Possibility, height)`` for every possibility
  (:func:`stub_oracle`); like the oracle of a budcore cycle, it carries the case's
  ``enableFairSharing`` (``fair_sharing``); ``flavorFungibility.preference`` is the ClusterQueue's;
- the pod sets' counts, where a case assigns with explicit ones (``Assign(ctx, counts)``), are
  ``assign_flavors``' ``counts``.

Inputs budcore has no place for are transcribed all the same and not handed to budcore:
reclaimable pods and feature gates. A case that depends on such an input fails, and its ``xfail``
reason says so; the cases that pass without it are listed in ``STATUS.md``.

What is compared (:func:`differences`):

- the representative mode (``wantRepMode``; Go's zero value, ``NoFit``, where a case sets none);
- unless Kueue's mode is ``NoFit``: the flavor of each resource of each pod set, the assignment's
  borrowing height (``Borrowing``, :attr:`Assignment.borrowing`), and its usage per (flavor,
  resource) (zero amounts dropped on both sides);
- where Kueue's table states them: the pod sets' status reasons, as one set per workload, against
  the reasons of :meth:`Assignment.describe` (:meth:`PendingReason.reasons`).

Transcribed but not compared, for want of a budcore counterpart: the mode of each resource
(budcore's assignment has one mode) and each pod set's ``Count`` (it shows in the usage). Left out
of the data: the pod sets' ``Requests`` (totals, which the usage covers), and
``FlavorAssignmentAttempts``, ``NoFitReason`` and ``TriedFlavorIdx`` (Kueue's observability fields
and cross-cycle flavor bookmark; ``TestIsNoFitDueToCapacityAndLimits``, whose subject the
``NoFitReason`` is, transcribes it and compares what it implies). On ``NoFit``, Kueue keeps the
flavors of the pod sets that did fit; budcore's assignment carries none, which no decision depends
on, so they are not compared.

Kueue's tests of internal helpers (``isPreferred``, ``Assignment.RequiresBorrowing``,
``Assignment.TotalRequestsFor``) have no budcore function to call: their modules realize each row
as a flavor assignment (:func:`granular_case` and the modules' docstrings say how) and compare
what the row's expectation implies for it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest
from pydantic import ValidationError as PydanticValidationError
from support.admission import quota

from budcore.domain.errors import ValidationError, ValidationErrors
from budcore.domain.job import PodSet, ResourceRequest
from budcore.domain.quantity import parse_quantity
from budcore.scheduling import (
    AcceleratorMatcher,
    Assignment,
    ClusterQueue,
    ClusterQueuePreemption,
    Cohort,
    FlavorFungibility,
    FlavorQuotas,
    LocalQueue,
    Mode,
    QueueConfig,
    QuotaTree,
    QuotaUsage,
    ResourceFlavor,
    ResourceGroup,
    assign_flavors,
)
from budcore.scheduling.assignment import Possibility, Simulation
from budcore.scheduling.queues import BorrowWithinCohort

FR = tuple[str, str]  # (flavor, resource)

# Kueue's FlavorAssignmentMode names.
FIT, PREEMPT, NO_FIT = "Fit", "Preempt", "NoFit"
MODES = {FIT: Mode.FIT, PREEMPT: Mode.PREEMPT, NO_FIT: Mode.NO_FIT}
MODE_NAMES = {v: k for k, v in MODES.items()}

# Kueue's FlavorFungibility policies (``Borrow``/``Preempt`` are the deprecated spellings of
# ``MayStopSearch``).
MAY_STOP, TRY_NEXT = "MayStopSearch", "TryNextFlavor"
# Kueue's preemptioncommon.PreemptionPossibility.
NO_CANDIDATES, PREEMPT_POSSIBLE, RECLAIM = "NoCandidates", "Preempt", "Reclaim"

# A quota: nominal, or (nominal, borrowingLimit, lendingLimit) with None for an absent limit.
Quota = str | tuple[str | None, ...]
# A resource group: flavor -> resource -> quota, flavors in the group's order. As Kueue's test
# wrapper (utiltestingapi.ResourceGroup) does, the covered resources are the first flavor's.
Group = Mapping[str, Mapping[str, Quota]]
# A required node affinity term: requirements (key, operator, values), ANDed.
Term = tuple[tuple[str, str, tuple[str, ...]], ...]


@dataclass(frozen=True)
class PodSetSpec:
    """A workload pod set (``utiltestingapi.MakePodSet(name, count)``): per-pod requests."""

    name: str
    count: int
    requests: Mapping[str, str]
    node_selector: Mapping[str, str] = field(default_factory=dict)
    affinity: tuple[Term, ...] = ()  # requiredDuringSchedulingIgnoredDuringExecution terms, ORed
    tolerations: tuple[Mapping[str, str], ...] = ()


@dataclass(frozen=True)
class CQ:
    """A ClusterQueue (``utiltestingapi.MakeClusterQueue``) and the usage the case preloads in it.

    ``fungibility`` is ``(whenCanBorrow, whenCanPreempt)``; None keeps MakeClusterQueue's default
    (``Borrow``, i.e. MayStopSearch, and TryNextFlavor). An empty string is an unset field in a
    struct the case builds itself, which Kueue's ``shouldTryNextFlavor`` treats as MayStopSearch
    (it only tests for TryNextFlavor). ``preemption`` uses Kueue's field names.
    """

    name: str
    groups: tuple[Group, ...]
    cohort: str | None = None
    preemption: Mapping[str, str] = field(default_factory=dict)
    fungibility: tuple[str, str] | None = None
    preference: str | None = None  # flavorFungibility.preference
    usage: Mapping[FR, str] = field(default_factory=dict)


@dataclass(frozen=True)
class CohortSpec:
    name: str
    parent: str | None = None
    groups: tuple[Group, ...] = ()


@dataclass(frozen=True)
class PodSetWant:
    """Kueue's expected PodSetAssignment: resource -> (flavor, mode) (the flavor alone where the
    case states no mode), the status reasons and the count. ``reasons`` None: the case does not
    state them."""

    flavors: Mapping[str, tuple[str, str] | str] = field(default_factory=dict)
    reasons: tuple[str, ...] | None = ()
    count: int | None = None


@dataclass(frozen=True)
class Want:
    """Kueue's expected result; None for what the case does not assert."""

    mode: str
    pod_sets: Mapping[str, PodSetWant] | None = None
    borrowing: int | None = None  # Assignment.Borrowing (a height)
    usage: Mapping[FR, str] | None = None  # Assignment.Usage.Quota.Assigned, as quantities


@dataclass(frozen=True)
class Case:
    """One table case: inputs and Kueue's expectation."""

    pod_sets: tuple[PodSetSpec, ...]
    cq: CQ
    want: Any  # a Want, or the expectation type of the module that holds the case
    flavors: Mapping[str, ResourceFlavor]
    others: tuple[CQ, ...] = ()  # secondaryClusterQueue, otherCq, siblings
    cohorts: tuple[CohortSpec, ...] = ()
    simulation: Mapping[FR, tuple[str, int]] = field(default_factory=dict)  # simulationResult
    fair_sharing: bool = False  # enableFairSharing
    reclaimable: Mapping[str, int] = field(default_factory=dict)  # wlReclaimablePods
    feature_gates: Mapping[str, bool] = field(default_factory=dict)
    # Flavors the ClusterQueue lists that are missing from the map handed to the assigner
    # (TestDeletedFlavors deletes them after the snapshot).
    deleted_flavors: tuple[str, ...] = ()
    # Kueue's ``Assign(ctx, counts)``: the pod sets' counts to assign for (None: their own).
    counts: tuple[int, ...] | None = None


# ----------------------------------------------------------------------------------------------
# Builders


def pod_set(name: str, count: int, requests: Mapping[str, str], **kw: Any) -> PodSetSpec:
    return PodSetSpec(name, count, dict(requests), **kw)


def main(requests: Mapping[str, str], count: int = 1, **kw: Any) -> PodSetSpec:
    """Kueue's ``kueue.DefaultPodSetName`` ("main")."""
    return PodSetSpec("main", count, dict(requests), **kw)


def flavor(name: str, labels: Mapping[str, str] | None = None, **kw: Any) -> ResourceFlavor:
    return ResourceFlavor(name=name, node_labels=dict(labels or {}), **kw)


def flavor_map(*flavors: ResourceFlavor) -> dict[str, ResourceFlavor]:
    return {f.name: f for f in flavors}


def noschedule(key: str, value: str) -> dict[str, str]:
    """A taint or an ``Equal`` toleration ``key=value:NoSchedule``."""
    return {"key": key, "value": value, "effect": "NoSchedule"}


def toleration(key: str, value: str) -> dict[str, str]:
    return {"key": key, "operator": "Equal", "value": value, "effect": "NoSchedule"}


# ----------------------------------------------------------------------------------------------
# Driving budcore


def _groups(groups: Iterable[Group]) -> tuple[ResourceGroup, ...]:
    out: list[ResourceGroup] = []
    for group in groups:
        flavors = list(group.items())
        covered = tuple(flavors[0][1])
        out.append(
            ResourceGroup(
                covered_resources=covered,
                flavors=tuple(
                    FlavorQuotas(name=name, resources=tuple(quota(r, q) for r, q in resources.items()))
                    for name, resources in flavors
                ),
            )
        )
    return tuple(out)


def _action(value: str) -> str:
    return MAY_STOP if value in ("", "Borrow", "Preempt") else value


def _cluster_queue(spec: CQ) -> ClusterQueue:
    p = spec.preemption
    within = p.get("withinClusterQueue", "Never")
    reclaim = p.get("reclaimWithinCohort", "Never")
    borrow = p.get("borrowWithinCohort", "Never")
    preemption = ClusterQueuePreemption(
        within_cluster_queue=within,
        reclaim_within_cohort=reclaim,
        borrow_within_cohort=BorrowWithinCohort(policy=borrow),
    )
    kw: dict[str, Any] = {}
    if spec.fungibility is not None or spec.preference is not None:
        when_borrow, when_preempt = spec.fungibility or ("Borrow", TRY_NEXT)
        kw["flavor_fungibility"] = FlavorFungibility(
            when_can_borrow=_action(when_borrow),
            when_can_preempt=_action(when_preempt),
            preference=spec.preference,
        )
    return ClusterQueue(
        name=spec.name, cohort=spec.cohort, resource_groups=_groups(spec.groups), preemption=preemption, **kw
    )


def build_config(case: Case) -> QueueConfig:
    queues = (case.cq, *case.others)
    return QueueConfig.build(
        flavors=case.flavors.values(),
        cluster_queues=[_cluster_queue(q) for q in queues],
        cohorts=[
            Cohort(name=c.name, parent=c.parent, resource_groups=_groups(c.groups)) for c in case.cohorts
        ],
        local_queues=[LocalQueue(name="lq", namespace=q.name, cluster_queue=q.name) for q in queues],
    )


def pod_set_of(ps: PodSetSpec) -> PodSet:
    """A pod set's requests (a mapping, so that zero requests are kept), node selector, required
    node affinity and tolerations, as budcore's :class:`PodSet` takes them."""
    return PodSet(
        name=ps.name,
        count=ps.count,
        resources=dict(ps.requests),
        node_selector=dict(ps.node_selector),
        required_node_affinity=tuple(
            {"match_expressions": [{"key": k, "operator": op, "values": list(v)} for k, op, v in term]}
            for term in ps.affinity
        ),
        tolerations=tuple(dict(t) for t in ps.tolerations),
    )


def request_of(pod_sets: Sequence[PodSetSpec]) -> ResourceRequest:
    return ResourceRequest(pod_sets=tuple(pod_set_of(ps) for ps in pod_sets))


_POSSIBILITIES = {
    NO_CANDIDATES: Possibility.NO_CANDIDATES,
    PREEMPT_POSSIBLE: Possibility.PREEMPT,
    RECLAIM: Possibility.RECLAIM,
}


def stub_oracle(
    results: Mapping[FR, tuple[str, int]], fair_sharing: bool = False
) -> Callable[[FR, int], Simulation]:
    """Kueue's ``testOracle``: ``Preempt`` with borrowing height 0 unless ``results`` say otherwise
    (the height is returned for ``NoCandidates`` too, as the stub does). It carries the case's
    ``enableFairSharing`` as the oracle of a budcore cycle does."""

    class Stub:
        def __init__(self) -> None:
            self.fair_sharing = fair_sharing

        def __call__(self, fr: FR, amount: int) -> Simulation:
            possibility, height = results.get(fr, (PREEMPT_POSSIBLE, 0))
            return _POSSIBILITIES[possibility], height

    return Stub()


@dataclass
class Outcome:
    assignment: Assignment | None
    reasons: set[str]
    rejected: str | None = None  # budcore refused the configuration or the workload


def run(case: Case) -> Outcome:
    """Assign flavors to the case's workload with budcore, as the Kueue test calls ``Assign``."""
    try:
        config = build_config(case)
        request = request_of(case.pod_sets)
    except (ValidationError, ValidationErrors, PydanticValidationError, ValueError) as exc:
        return Outcome(None, set(), f"{type(exc).__name__}: {exc}")
    tree = QuotaTree(config)
    usage = QuotaUsage(tree)
    for spec in (case.cq, *case.others):
        if spec.usage:
            usage.add(spec.name, {fr: parse_quantity(amount) for fr, amount in spec.usage.items()})
    flavors = {name: f for name, f in config.flavors.items() if name not in case.deleted_flavors}
    node = tree.cluster_queues[case.cq.name]
    cq = config.cluster_queues[case.cq.name]
    assignment = assign_flavors(
        cq,
        node,
        request,
        usage,
        flavors,
        AcceleratorMatcher(),
        stub_oracle(case.simulation, case.fair_sharing),
        counts=case.counts,
    )
    return Outcome(assignment, set(assignment.describe().reasons()))


def _milli(amounts: Mapping[FR, str]) -> dict[FR, int]:
    out = {fr: parse_quantity(q) for fr, q in amounts.items()}
    return {fr: v for fr, v in out.items() if v}


def differences(case: Case, outcome: Outcome) -> list[str]:
    """Where budcore's result differs from Kueue's expectation (empty: it conforms)."""
    if outcome.assignment is None:
        return [f"budcore rejects the input: {outcome.rejected}"]
    got = outcome.assignment
    want = case.want
    out: list[str] = []
    if got.mode is not MODES[want.mode]:
        out.append(f"mode: Kueue {want.mode}, budcore {MODE_NAMES[got.mode]}")
    if want.mode != NO_FIT:
        for name, ps in (want.pod_sets or {}).items():
            expected = {r: v if isinstance(v, str) else v[0] for r, v in ps.flavors.items()}
            actual = got.flavors.get(name, {})
            if expected != actual:
                out.append(f"flavors of pod set {name}: Kueue {expected}, budcore {actual}")
        if want.borrowing is not None and want.borrowing != got.borrowing:
            out.append(f"borrowing: Kueue {want.borrowing}, budcore {got.borrowing}")
        if want.usage is not None:
            expected_usage = _milli(want.usage)
            actual_usage = {fr: v for fr, v in got.usage.items() if v}
            if expected_usage != actual_usage:
                out.append(f"usage (milli-units): Kueue {expected_usage}, budcore {actual_usage}")
    if want.pod_sets is not None and all(ps.reasons is not None for ps in want.pod_sets.values()):
        expected_reasons = {r for ps in want.pod_sets.values() for r in ps.reasons or ()}
        if expected_reasons != outcome.reasons:
            out.append(f"reasons: Kueue {sorted(expected_reasons)}, budcore {sorted(outcome.reasons)}")
    return out


# ----------------------------------------------------------------------------------------------
# Parametrization


def params(
    names: Sequence[str],
    cases: Mapping[str, Any],
    out_of_scope: Mapping[str, str],
    xfail: Mapping[str, str],
    count: int,
) -> list[Any]:
    """One pytest param per Kueue case, in the Go file's order, id = the case name.

    ``names`` lists every case of the Kueue test function: each is transcribed (``cases``) or out
    of scope (``out_of_scope``, skipped with the reason); ``xfail`` marks transcribed cases budcore
    decides differently (strict). ``count`` is how many cases the Kueue test function has.
    """
    assert len(names) == count, f"{len(names)} case names for the {count} cases of the Kueue test"
    listed = set(names)
    assert len(listed) == len(names), "duplicate case names"
    assert listed == set(cases) | set(out_of_scope), listed ^ (set(cases) | set(out_of_scope))
    assert not set(cases) & set(out_of_scope), set(cases) & set(out_of_scope)
    assert set(xfail) <= set(cases), set(xfail) - set(cases)
    out = []
    for name in names:
        if name in out_of_scope:
            out.append(pytest.param(None, id=name, marks=pytest.mark.skip(reason=out_of_scope[name])))
        elif name in xfail:
            out.append(
                pytest.param(cases[name], id=name, marks=pytest.mark.xfail(strict=True, reason=xfail[name]))
            )
        else:
            out.append(pytest.param(cases[name], id=name))
    return out


def check(case: Case) -> None:
    """Assert budcore conforms to ``case`` (the body of the TestAssignFlavors-shaped tests)."""
    problems = differences(case, run(case))
    assert not problems, "\n".join(problems)


# ----------------------------------------------------------------------------------------------
# Realizing Kueue's granular flavor modes (for the tests of Kueue's internal helpers)

# Kueue's granular preemption modes (flavorassigner.go ``preemptionMode``).
G_NO_FIT, G_NO_CANDIDATES, G_PREEMPT, G_RECLAIM, G_FIT = (
    "noFit",
    "noPreemptionCandidates",
    "preempt",
    "reclaim",
    "fit",
)
REALIZED_REQUEST = "4"  # cpu of the one-pod workload the realizations are sized for


def granular_case(
    modes: Mapping[str, tuple[str, int]],
    want: Any,
    fungibility: tuple[str, str] | None = None,
    preference: str | None = None,
) -> Case:
    """A cohort tree where each flavor, in the given order, has one of Kueue's granular modes
    ``(preemptionMode, borrowingLevel)`` for a pod of 4 cpu (Kueue's flavor assigner unit tests
    compare such modes directly; budcore's counterpart is only observable through
    :func:`assign_flavors`).

    The tree: cohort ``top`` ← cohort ``mid`` ← ClusterQueues ``cq`` (the workload's) and ``other``.
    Per flavor F, with 4 cpu asked:

    - ``(fit, 0)``: ``cq`` has 4 of F; ``(fit, 1)``: ``mid`` has 4 (borrowed one level up);
      ``(fit, 2)``: ``top`` has 4 (two levels up);
    - ``(preempt|reclaim, h)``: ``cq`` has 4 and uses them; the stub oracle answers
      ``Preempt``/``Reclaim`` with borrowing height ``h``;
    - ``(noPreemptionCandidates, h)``: the 4 of F sit ``h`` levels up and ``other`` uses them; the
      stub answers ``NoCandidates`` (with height ``h``, which Kueue keeps as the flavor's level);
    - ``(noFit, 0)``: nobody has any F.

    ``cq`` may preempt while borrowing (``borrowWithinCohort: LowerPriority``), so Kueue's
    ``fitsResourceQuota`` asks the oracle for every flavor that needs preemption.
    """
    cq_quota: dict[str, dict[str, Quota]] = {}
    mid: dict[str, dict[str, Quota]] = {}
    top: dict[str, dict[str, Quota]] = {}
    cq_usage: dict[FR, str] = {}
    other_usage: dict[FR, str] = {}
    simulation: dict[FR, tuple[str, int]] = {}
    four = REALIZED_REQUEST
    for name, (mode, level) in modes.items():
        fr = (name, "cpu")
        own = "0"
        if mode == G_FIT:
            if level == 0:
                own = four
            else:
                (mid if level == 1 else top)[name] = {"cpu": four}
        elif mode in (G_PREEMPT, G_RECLAIM):
            own = four
            cq_usage[fr] = four
            simulation[fr] = (PREEMPT_POSSIBLE if mode == G_PREEMPT else RECLAIM, level)
        elif mode == G_NO_CANDIDATES:
            assert level in (1, 2), "no candidates is realized by borrowing what another queue uses"
            (mid if level == 1 else top)[name] = {"cpu": four}
            other_usage[fr] = four
            simulation[fr] = (NO_CANDIDATES, level)
        else:
            assert mode == G_NO_FIT and level == 0
        cq_quota[name] = {"cpu": own}
    cq = CQ(
        "cq",
        (cq_quota,),
        cohort="mid",
        preemption={"borrowWithinCohort": "LowerPriority"},
        fungibility=fungibility,
        preference=preference,
        usage=cq_usage,
    )
    other = CQ("other", ({name: {"cpu": "0"} for name in modes},), cohort="mid", usage=other_usage)
    cohorts = (
        CohortSpec("top", groups=(top,) if top else ()),
        CohortSpec("mid", parent="top", groups=(mid,) if mid else ()),
    )
    return Case(
        (main({"cpu": four}),),
        cq,
        want,
        flavor_map(*(flavor(name) for name in modes)),
        others=(other,),
        cohorts=cohorts,
        simulation=simulation,
    )
