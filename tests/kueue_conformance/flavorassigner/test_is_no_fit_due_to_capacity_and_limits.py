"""Kueue's ``TestIsNoFitDueToCapacityAndLimits``, transcribed (every case; ids are Kueue's names).

Source: kubernetes-sigs/kueue ff69552e79ad21652c36caa97038382e55625cf7,
``pkg/scheduler/flavorassigner/flavorassigner_test.go`` (Apache-2.0), with the
``UnadmittedWorkloadsObservability`` gate on. Kueue's table states the assignment's
``NoFitReason`` (``ExceedsMaxQuota``, ``NoMatchingFlavor``, ``WaitingForQuota``,
``TopologyPlacementFailed``, or empty) and, for some flavors, the ``NoFitReason`` of the attempt on
that flavor (empty: the flavor was not NoFit).

budcore's assignment has no reason category, so what is compared is what those facts imply about
decisions (Kueue's ``resolveNoFitReason`` sets a reason exactly when the representative mode is
NoFit):

- the workload is NoFit (budcore :attr:`Mode.NO_FIT`) iff Kueue's ``NoFitReason`` is not empty;
- when it is not NoFit, no resource is assigned a flavor whose attempt Kueue reports as NoFit.

The categories themselves are transcribed and not compared.

The test's defaults: ClusterQueue ``cq`` with ``flavor-a`` and ``flavor-b``, 2 cpu each with a
borrowing limit of 4 (no cohort); ``flavor-a`` selects ``type=a`` nodes, ``flavor-b`` has the taint
``key=val:NoSchedule``; one pod set ``main`` of one pod; the stub oracle.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pytest
from kueue_conformance.flavorassigner.harness import (
    CQ,
    NO_CANDIDATES,
    Case,
    Group,
    PodSetSpec,
    flavor,
    flavor_map,
    main,
    noschedule,
    params,
    run,
    toleration,
)

from budcore.scheduling import Mode
from budcore.scheduling.queues import ResourceFlavor


@dataclass(frozen=True)
class NoFitWant:
    no_fit_reason: str  # wantNoFitReason
    attempts: Mapping[str, str]  # wantFlavorAttempts: flavor -> the attempt's NoFitReason


RESOURCE_FLAVORS = flavor_map(
    flavor("flavor-a", {"type": "a"}),
    flavor("flavor-b", node_taints=(noschedule("key", "val"),)),
    flavor("flavor-tas", topology_name="topology-tas"),
)
DEFAULT_GROUP: Group = {"flavor-a": {"cpu": ("2", "4")}, "flavor-b": {"cpu": ("2", "4")}}

# "insufficient capacity, ..." and the next two cases: cq and one sibling in cohort "cohort".
SHARED_FLAVORS = flavor_map(flavor("flavor-shared", {"type": "shared"}), flavor("flavor-a", {"type": "a"}))


def case(
    pod: PodSetSpec,
    want: NoFitWant,
    queue: CQ | None = None,
    siblings: tuple[CQ, ...] = (),
    flavors: Mapping[str, ResourceFlavor] = RESOURCE_FLAVORS,
    simulation: Mapping[tuple[str, str], tuple[str, int]] | None = None,
) -> Case:
    return Case(
        (pod,),
        queue or CQ("cq", (DEFAULT_GROUP,)),
        want,
        flavors,
        others=siblings,
        simulation=simulation or {},
        feature_gates={"UnadmittedWorkloadsObservability": True},
    )


def in_cohort(name: str, quotas: Mapping[str, tuple[str, str]], **kw: object) -> CQ:
    """A ClusterQueue in cohort ``cohort`` with cpu ``(nominal, borrowingLimit)`` per flavor."""
    return CQ(name, ({f: {"cpu": q} for f, q in quotas.items()},), cohort="cohort", **kw)  # type: ignore[arg-type]


NAMES = (
    "succeeds to schedule on flavor-a",
    "insufficient quota",
    "exceeds max capacity limits",
    "taints mismatch",
    "succeeds to schedule on flavor-b with a tolerated taint",
    "node affinity mismatch when both flavors declare same key",
    "flavor mismatch for workload slices",
    "prioritization of structural mismatch over capacity mismatch",
    "TAS not supported",
    "TAS level not supported",
    "TAS only flavor mismatch",
    "tas placement fails",
    "tas placement fails, cohort has no capacity",
    "tas placement fails, but queue has available capacity (waiting for preemption)",
    "flavor not allowed by annotations",
    "insufficient capacity, cohort has available capacity (waiting for quota)",
    "exceeds cohort max capacity limits",
    "exceeds borrowing limit but cohort has capacity",
    "flavor spanning multiple resource groups",
)

_TAS = (
    "Topology-Aware Scheduling (TopologyAwareScheduling gate, a topology request or a flavor with "
    "topologyName): budcore has no TAS"
)
OUT_OF_SCOPE = {
    "flavor mismatch for workload slices": (
        "workload slices (ElasticJobsViaWorkloadSlices): the new slice must keep the flavor of the "
        "slice it replaces; budcore has no workload slices"
    ),
    "TAS not supported": _TAS,
    "TAS level not supported": _TAS,
    "TAS only flavor mismatch": _TAS,
    "tas placement fails": _TAS,
    "tas placement fails, cohort has no capacity": _TAS,
    "tas placement fails, but queue has available capacity (waiting for preemption)": _TAS,
    "flavor not allowed by annotations": (
        "concurrent admission (ConcurrentAdmission): the allowed-resource-flavors annotation "
        "restricts the workload to flavor-a; budcore has no concurrent admission"
    ),
}

CASES = {
    "succeeds to schedule on flavor-a": case(
        main({"cpu": "1"}), NoFitWant("", {"flavor-a": "", "flavor-b": "NoMatchingFlavor"})
    ),
    "insufficient quota": case(
        main({"cpu": "3"}),
        NoFitWant("ExceedsMaxQuota", {"flavor-a": "ExceedsMaxQuota", "flavor-b": "NoMatchingFlavor"}),
    ),
    "exceeds max capacity limits": case(
        main({"cpu": "5"}),
        NoFitWant("ExceedsMaxQuota", {"flavor-a": "ExceedsMaxQuota", "flavor-b": "NoMatchingFlavor"}),
    ),
    "taints mismatch": case(
        main({"cpu": "1"}, node_selector={"type": "wrong"}),
        NoFitWant("NoMatchingFlavor", {"flavor-a": "NoMatchingFlavor", "flavor-b": "NoMatchingFlavor"}),
    ),
    # flavor-b has no label keys, so the "type" selector is irrelevant to it (Kueue's comment).
    "succeeds to schedule on flavor-b with a tolerated taint": case(
        main({"cpu": "1"}, node_selector={"type": "non-existent"}, tolerations=(toleration("key", "val"),)),
        NoFitWant("", {"flavor-a": "NoMatchingFlavor"}),
    ),
    "node affinity mismatch when both flavors declare same key": case(
        main({"cpu": "1"}, node_selector={"type": "non-existent"}),
        NoFitWant("NoMatchingFlavor", {"flavor-a": "NoMatchingFlavor", "flavor-b": "NoMatchingFlavor"}),
        flavors=flavor_map(flavor("flavor-a", {"type": "a"}), flavor("flavor-b", {"type": "b"})),
    ),
    # The ClusterQueue covers cpu only; memory is asked too.
    "prioritization of structural mismatch over capacity mismatch": case(
        main({"cpu": "3", "memory": "20Gi"}, node_selector={"type": "wrong"}),
        NoFitWant("NoMatchingFlavor", {"flavor-a": "NoMatchingFlavor", "flavor-b": "NoMatchingFlavor"}),
    ),
    "insufficient capacity, cohort has available capacity (waiting for quota)": case(
        main({"cpu": "3"}),
        NoFitWant("WaitingForQuota", {"flavor-a": "WaitingForQuota", "flavor-b": "NoMatchingFlavor"}),
        queue=in_cohort("cq", {"flavor-a": ("2", "2"), "flavor-b": ("2", "2")}),
        siblings=(
            in_cohort(
                "sibling",
                {"flavor-a": ("2", "2"), "flavor-b": ("2", "2")},
                usage={("flavor-a", "cpu"): "2", ("flavor-b", "cpu"): "2"},
            ),
        ),
    ),
    "exceeds cohort max capacity limits": case(
        main({"cpu": "5"}),
        NoFitWant("ExceedsMaxQuota", {"flavor-a": "ExceedsMaxQuota", "flavor-b": "NoMatchingFlavor"}),
        queue=in_cohort("cq", {"flavor-a": ("2", "2"), "flavor-b": ("2", "2")}),
        siblings=(in_cohort("sibling", {"flavor-a": ("2", "2"), "flavor-b": ("2", "2")}),),
    ),
    "exceeds borrowing limit but cohort has capacity": case(
        main({"cpu": "4"}),
        NoFitWant("ExceedsMaxQuota", {"flavor-a": "ExceedsMaxQuota", "flavor-b": "NoMatchingFlavor"}),
        queue=in_cohort("cq", {"flavor-a": ("2", "1"), "flavor-b": ("2", "1")}),
        siblings=(in_cohort("sibling", {"flavor-a": ("5", "5"), "flavor-b": ("5", "5")}),),
    ),
    # sharedCQ and siblingCQ: flavor-shared appears in both resource groups (cpu and memory).
    "flavor spanning multiple resource groups": case(
        main({"cpu": "3", "memory": "3Gi"}, node_selector={"type": "a"}),
        NoFitWant("NoMatchingFlavor", {"flavor-shared": "NoMatchingFlavor", "flavor-a": "WaitingForQuota"}),
        queue=CQ(
            "shared-cq",
            (
                {"flavor-shared": {"cpu": ("2", "4")}, "flavor-a": {"cpu": ("2", "4")}},
                {"flavor-shared": {"memory": ("2Gi", "4Gi")}},
            ),
            cohort="cohort",
        ),
        siblings=(
            CQ(
                "sibling",
                (
                    {"flavor-shared": {"cpu": ("2", "2")}, "flavor-a": {"cpu": ("2", "2")}},
                    {"flavor-shared": {"memory": ("2Gi", "2Gi")}},
                ),
                cohort="cohort",
                usage={
                    ("flavor-shared", "cpu"): "2",
                    ("flavor-shared", "memory"): "2Gi",
                    ("flavor-a", "cpu"): "2",
                },
            ),
        ),
        flavors=SHARED_FLAVORS,
        simulation={
            ("flavor-shared", "cpu"): (NO_CANDIDATES, 0),
            ("flavor-shared", "memory"): (NO_CANDIDATES, 0),
            ("flavor-a", "cpu"): (NO_CANDIDATES, 0),
        },
    ),
}

XFAIL = {
    "flavor spanning multiple resource groups": (
        "[other] budcore refuses a ClusterQueue listing a flavor in two resource groups "
        "(flavor-shared covers cpu in one and memory in the other), as Kueue's ClusterQueue webhook "
        "does (validateResourceGroups: Duplicate flavor name); Kueue's unit test builds its cache "
        "without webhooks (NoFit, NoMatchingFlavor)"
    ),
}


def differences(kueue_case: Case) -> list[str]:
    want: NoFitWant = kueue_case.want
    outcome = run(kueue_case)
    got = outcome.assignment
    if got is None:
        return [f"budcore rejects the input: {outcome.rejected}"]
    out = []
    kueue_no_fit = want.no_fit_reason != ""
    if kueue_no_fit != (got.mode is Mode.NO_FIT):
        out.append(
            f"NoFit: Kueue {kueue_no_fit} (NoFitReason {want.no_fit_reason!r}), budcore mode {got.mode.name}"
        )
    if got.mode is not Mode.NO_FIT:
        rejected = {f for f, reason in want.attempts.items() if reason}
        used = {f for flavors in got.flavors.values() for f in flavors.values()}
        if used & rejected:
            out.append(
                f"budcore assigns {sorted(used & rejected)}, where Kueue's attempts are NoFit "
                f"({ {f: want.attempts[f] for f in sorted(used & rejected)} })"
            )
    return out


DIFFS = differences


@pytest.mark.parametrize("kueue_case", params(NAMES, CASES, OUT_OF_SCOPE, XFAIL, count=19))
def test_is_no_fit_due_to_capacity_and_limits(kueue_case: Case) -> None:
    problems = differences(kueue_case)
    assert not problems, "\n".join(problems)
