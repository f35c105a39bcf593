"""Kueue ``TestSchedule``, every table case, against one budcore admission cycle.

Source: kubernetes-sigs/kueue ``pkg/scheduler/scheduler_test.go``, ``TestSchedule``, at commit
ff69552e79ad21652c36caa97038382e55625cf7 (Apache-2.0). Each entry of :data:`CASES` is the case of
the same name (``# scheduler_test.go TestSchedule "<name>"``): the function's ResourceFlavors,
ClusterQueues and LocalQueues (:data:`FIXTURES`) plus the case's own, its workloads, and Kueue's
expectation after one ``scheduler.schedule(ctx)``; :mod:`.builders` says how each is given to
budcore and compared.

Kueue runs every case four times (feature gates ``WorkloadRequestUseMergePatch`` and
``UnadmittedWorkloadsObservability`` off and on); they change how status is written and how much
of it, not the decisions, so one run stands for all four, compared with the fuller (observability
on) expectation. ``featureGates`` of a case are kept in :attr:`Case.feature_gates`;
``PartialAdmission`` (beta, on by default) only matters for pod sets with ``SetMinimumCount``.
Cases that need what budcore does not model are in :data:`OUT_OF_SCOPE`; cases budcore decides
differently are strict xfails in :data:`DIFFERENCES`, each naming the difference.
"""

from __future__ import annotations

import pytest
from kueue_conformance.schedule.builders import (
    ANY,
    CPU,
    GPU,
    IN_CLUSTER_QUEUE,
    IN_COHORT_RECLAMATION,
    LOWER_PRIORITY,
    MAY_STOP_SEARCH,
    NO_LONGER_FITS,
    TRY_NEXT_FLAVOR,
    Case,
    Fixtures,
    admission,
    check,
    cluster_queue,
    cohort,
    flavor,
    local_queue,
    params,
    pod_set,
    workload,
)

cq, lq, ps, wl, adm = cluster_queue, local_queue, pod_set, workload, admission
TAINT = ("key", "val", "NoSchedule")
TAINT_2 = ("key", "val2", "NoSchedule")
ENG = {"dep": "eng"}  # NamespaceSelector matchExpressions [{dep In [eng]}]

FIXTURES = Fixtures(
    flavors=(
        flavor("default"),
        flavor("on-demand"),
        flavor("spot"),
        flavor("model-a"),
        flavor("spot-tainted", TAINT),
        flavor("spot-tainted-2", TAINT_2),
    ),
    cluster_queues=(
        cq("sales", {"default": {CPU: ("50", "0")}}, namespace={"dep": "sales"}, strict_fifo=True),
        cq(
            "eng-alpha",
            {"on-demand": {CPU: ("50", "50")}, "spot": {CPU: ("100", "0")}},
            cohort="eng",
            namespace=ENG,
            strict_fifo=True,
        ),
        cq(
            "eng-beta",
            {"on-demand": {CPU: ("50", "10")}, "spot": {CPU: ("0", "100")}},
            {"model-a": {GPU: ("20", "0")}},
            cohort="eng",
            namespace=ENG,
            strict_fifo=True,
            reclaim=ANY,
            within=LOWER_PRIORITY,
        ),
        cq("flavor-nonexistent-cq", {"nonexistent-flavor": {CPU: "50"}}, strict_fifo=True),
        cq("lend-a", {"default": {CPU: ("3", None, "2")}}, cohort="lend", namespace={"dep": "lend"}),
        cq("lend-b", {"default": {CPU: ("2", None, "2")}}, cohort="lend", namespace={"dep": "lend"}),
    ),
    local_queues=(
        lq("main", "sales", "sales"),
        lq("blocked", "sales", "eng-alpha"),
        lq("main", "eng-alpha", "eng-alpha"),
        lq("main", "eng-beta", "eng-beta"),
        lq("flavor-nonexistent-queue", "sales", "flavor-nonexistent-cq"),
        lq("cq-nonexistent-queue", "sales", "nonexistent-cq"),
        lq("lend-a-queue", "lend", "lend-a"),
        lq("lend-b-queue", "lend", "lend-b"),
    ),
)

PARTIAL = {"PartialAdmission": True}

# Every case of the table, in its order.
KUEUE_CASES = (
    "use second flavor when the first has no preemption candidates; WhenCanPreempt: MayStopSearch",
    "workload fits in single clusterQueue, with check state ready",
    "skip workload with missing or deleted ClusterQueue (NoFit)",
    "flavors with mixed misconfiguration and insufficient quota",
    "flavors with mixed taint mismatch and exceeding limits",
    "flavors are structurally incompatible",
    "workload fits in single clusterQueue, with check state pending",
    "error during admission",
    "single clusterQueue full",
    "failed to match clusterQueue selector",
    "admit in different cohorts",
    "admit in same cohort with no borrowing",
    "assign multiple resources and flavors",
    "cannot borrow if cohort was assigned and would result in overadmission",
    "can borrow if cohort was assigned and will not result in overadmission",
    "can borrow if needs reclaim from cohort in different flavor",
    "workload exceeds lending limit when borrow in cohort",
    "hierarchical cohort respects lending limit when borrowing",
    "hierarchical cohort allows borrowing up to lending limit",
    "preempt workloads in ClusterQueue and cohort",
    "multiple CQs need preemption",
    "cannot borrow resource not listed in clusterQueue",
    "not enough resources to borrow, fallback to next flavor; WhenCanPreempt: TryNextFlavor",
    "workload should not fit in nonexistent clusterQueue",
    "workload should not fit in clusterQueue with nonexistent flavor",
    "no overadmission while borrowing",
    "partial admission single variable pod set",
    "partial admission single variable pod set, preempt first",
    "partial admission single variable pod set, preempt with partial admission",
    "partial admission multiple variable pod sets",
    "partial admission disabled, multiple variable pod sets",
    "two workloads can borrow different resources from the same flavor in the same cycle",
    "two workloads can borrow the same resources from the same flavor in the same cycle if fits in the "
    "cohort quota",
    "only one workload can borrow one resources from the same flavor in the same cycle if cohort quota "
    "cannot fit",
    "preemption while borrowing, workload waiting for preemption should not block a borrowing workload in "
    "another CQ",
    "minimal preemptions when target queue is exhausted",
    "A workload is only eligible to do preemptions if it fits fully within nominal quota",
    "multiple preemptions without borrowing",
    "multiple preemptions preemption possible after earlier workload fits",
    "multiple preemptions skip preemption when shared limited resource",
    "not enough resources",
    "container does not satisfy limitRange constraints",
    "container resource requests exceed limits",
    "prefer reclamation over cq priority based preemption",
    "prefer first preemption flavor when second flavor requires both reclaim and cq priority preemption",
    "prefer first preemption flavor when second flavor also requires cq preemption",
    "workload requiring reclaimation prioritized over wl in another full cq",
    "capacity not blocked when lending clusterqueue can reclaim (ReclaimWithinCohort=Any)",
    "capacity blocked when lending clusterqueue not guaranteed to reclaim "
    "(ReclaimWithinCohort=LowerPriority)",
    "capacity blocked when lending clusterqueue not guaranteed to reclaim (ReclaimWithinCohort=Never)",
    "in a hierarchical cohort, workload borrowing less is scheduled first",
    "don't assign flavor if there are no candidates for preemption",
    "workload-slice fits in single clusterQueue",
    "pending admission check with nofit and fit flavors",
    "admit to second flavor when first needs preemption; WhenCanPreempt: TryNextFlavor",
    "admit workload with zero-quantity request for resource not in ClusterQueue",
    "preempt when workload requests zero of a resource not defined in ClusterQueue",
    "PreemptionOverBorrowing preference: preempt in first flavor instead of borrowing in second",
    "PreemptionOverBorrowing preference: select fitting second flavor over first flavor with no preemption "
    "candidates",
    "BorrowingOverPreemption preference: borrow in second flavor instead of preempting in first",
    "block preemptions and signal `BlockedOnPreemptionGates` when a preemption gate is present",
    "do not signal `BlockedOnPreemptionGates` when a preemption gate is present, but the workload fits "
    "without preemption",
    "do not signal `BlockedOnPreemptionGates` when a preemption gate is present, but the workload had "
    "nothing to preempt",
    "prevent integer overflow when sum of requests over podsets exceeds MaxInt64",
    "prevent integer overflow in ResourceValue conversion to MilliValue",
)

OUT_OF_SCOPE: dict[str, str] = {
    "workload fits in single clusterQueue, with check state ready": (
        "admission checks (Workload status.admissionChecks, Admitted once every check is Ready): budcore has "
        "no admission checks; its admission is Kueue's quota reservation"
    ),
    "workload fits in single clusterQueue, with check state pending": (
        "admission checks (QuotaReserved but not Admitted while a check is Pending): budcore has no "
        "admission checks"
    ),
    "error during admission": (
        "a failed status write to the API server (admissionError): budcore applies its decisions in process "
        "and has no API server to fail"
    ),
    "container does not satisfy limitRange constraints": (
        "LimitRange objects of the namespace: budcore has no LimitRanges (its jobs carry requests only)"
    ),
    "container resource requests exceed limits": (
        "container limits (requests must not exceed limits): budcore jobs carry requests only, no limits"
    ),
    "workload-slice fits in single clusterQueue": (
        "workload slices (ElasticJobsViaWorkloadSlices: a slice replaces the workload it scales up)"
    ),
    "pending admission check with nofit and fit flavors": (
        "admission checks (QuotaReserved, Admitted=False UnsatisfiedAdmissionChecks)"
    ),
    "block preemptions and signal `BlockedOnPreemptionGates` when a preemption gate is present": (
        "preemption gates (MultiKueueOrchestratedPreemption)"
    ),
    "do not signal `BlockedOnPreemptionGates` when a preemption gate is present, but the workload fits "
    "without preemption": "preemption gates (MultiKueueOrchestratedPreemption)",
    "do not signal `BlockedOnPreemptionGates` when a preemption gate is present, but the workload had "
    "nothing to preempt": "preemption gates (MultiKueueOrchestratedPreemption)",
}

CASES: dict[str, Case] = {
    # scheduler_test.go TestSchedule "use second flavor when the first has no preemption candidates;
    # WhenCanPreempt: MayStopSearch"
    "use second flavor when the first has no preemption candidates; WhenCanPreempt: MayStopSearch": Case(
        feature_gates=PARTIAL,
        cluster_queues=(
            cq(
                "other-alpha",
                {"on-demand": {CPU: ("50", "50")}, "spot": {CPU: ("100", "0")}},
                within=LOWER_PRIORITY,
                when_can_preempt=MAY_STOP_SEARCH,
            ),
        ),
        local_queues=(lq("other", "eng-alpha", "other-alpha"),),
        workloads=(
            wl(
                "eng-alpha/admitted",
                "other",
                requests={CPU: "50"},
                admitted=adm("other-alpha", cpu=("on-demand", "50")),
            ),
            wl("eng-alpha/new", "other", requests={CPU: "20"}),
        ),
        want_assignments={
            "eng-alpha/admitted": adm("other-alpha", cpu=("on-demand", "50")),
            "eng-alpha/new": adm("other-alpha", cpu=("spot", "20")),
        },
    ),
    # scheduler_test.go TestSchedule "skip workload with missing or deleted ClusterQueue (NoFit)"
    "skip workload with missing or deleted ClusterQueue (NoFit)": Case(
        feature_gates=PARTIAL,
        workloads=(
            wl("sales/missing-cq-workload", "non-existent-queue", pod_sets=[ps("set", 1, {CPU: "1"})]),
        ),
    ),
    # scheduler_test.go TestSchedule "flavors with mixed misconfiguration and insufficient quota"
    "flavors with mixed misconfiguration and insufficient quota": Case(
        cluster_queues=(
            cq(
                "custom-cq",
                {"spot-tainted": {CPU: ("20", "20")}, "on-demand": {CPU: ("15", "15")}},
                strict_fifo=True,
            ),
        ),
        local_queues=(lq("custom-q", "sales", "custom-cq"),),
        workloads=(
            wl(
                "sales/existing-on-demand-job",
                "custom-q",
                requests={CPU: "10"},
                admitted=adm("custom-cq", cpu=("on-demand", "10")),
            ),
            wl("sales/new-job", "custom-q", requests={CPU: "10"}),
        ),
        want_assignments={"sales/existing-on-demand-job": adm("custom-cq", cpu=("on-demand", "10000m"))},
        want_left={"custom-cq": ["sales/new-job"]},
        want_messages={
            "sales/new-job": "couldn't assign flavors to pod set main: insufficient unused quota for cpu in "
            "flavor on-demand, 5 more needed, untolerated taint {key val NoSchedule <nil>} in flavor "
            "spot-tainted",
        },
    ),
    # scheduler_test.go TestSchedule "flavors with mixed taint mismatch and exceeding limits"
    "flavors with mixed taint mismatch and exceeding limits": Case(
        cluster_queues=(
            cq(
                "custom-cq2",
                {"spot-tainted": {CPU: ("20", "20")}, "on-demand": {CPU: ("5", "5")}},
                strict_fifo=True,
            ),
        ),
        local_queues=(lq("custom-q2", "sales", "custom-cq2"),),
        workloads=(wl("sales/new-job2", "custom-q2", requests={CPU: "10"}),),
        want_left={"custom-cq2": ["sales/new-job2"]},
        want_messages={
            "sales/new-job2": "couldn't assign flavors to pod set main: insufficient quota for cpu in flavor "
            "on-demand, previously considered podsets requests (0) + current podset request (10) > maximum "
            "capacity (5), untolerated taint {key val NoSchedule <nil>} in flavor spot-tainted",
        },
    ),
    # scheduler_test.go TestSchedule "flavors are structurally incompatible"
    "flavors are structurally incompatible": Case(
        cluster_queues=(
            cq(
                "custom-cq3",
                {"spot-tainted": {CPU: ("20", "20")}, "spot-tainted-2": {CPU: ("5", "5")}},
                strict_fifo=True,
            ),
        ),
        local_queues=(lq("custom-q3", "sales", "custom-cq3"),),
        workloads=(wl("sales/new-job3", "custom-q3", requests={CPU: "1"}),),
        want_left={"custom-cq3": ["sales/new-job3"]},
        want_messages={
            "sales/new-job3": "couldn't assign flavors to pod set main: untolerated taint {key val "
            "NoSchedule <nil>} in flavor spot-tainted, untolerated taint {key val2 NoSchedule <nil>} in "
            "flavor spot-tainted-2",
        },
    ),
    # scheduler_test.go TestSchedule "single clusterQueue full"
    "single clusterQueue full": Case(
        feature_gates=PARTIAL,
        workloads=(
            wl("sales/new", "main", pod_sets=[ps("one", 11, {CPU: "1"})]),
            wl(
                "sales/assigned",
                pod_sets=[ps("one", 40, {CPU: "1"})],
                admitted=adm("sales", {"one": {CPU: ("default", "40000m")}}),
            ),
        ),
        want_assignments={"sales/assigned": adm("sales", {"one": {CPU: ("default", "40000m")}})},
        want_left={"sales": ["sales/new"]},
        want_messages={
            "sales/new": "couldn't assign flavors to pod set one: insufficient unused quota for cpu in "
            "flavor default, 1 more needed",
        },
    ),
    # scheduler_test.go TestSchedule "failed to match clusterQueue selector"
    "failed to match clusterQueue selector": Case(
        feature_gates=PARTIAL,
        workloads=(wl("sales/new", "blocked", pod_sets=[ps("one", 1, {CPU: "1"})]),),
        want_inadmissible={"eng-alpha": ["sales/new"]},
        want_messages={"sales/new": "workload namespace doesn't match ClusterQueue selector"},
    ),
    # scheduler_test.go TestSchedule "admit in different cohorts"
    "admit in different cohorts": Case(
        feature_gates=PARTIAL,
        workloads=(
            wl("sales/new", "main", pod_sets=[ps("one", 1, {CPU: "1"})]),
            wl("eng-alpha/new", "main", pod_sets=[ps("one", 51, {CPU: "1"})]),  # Will borrow
        ),
        want_assignments={
            "sales/new": adm("sales", {"one": {CPU: ("default", "1000m")}}),
            "eng-alpha/new": adm("eng-alpha", {"one": {CPU: ("on-demand", "51000m")}}),
        },
    ),
    # scheduler_test.go TestSchedule "admit in same cohort with no borrowing"
    "admit in same cohort with no borrowing": Case(
        feature_gates=PARTIAL,
        workloads=(
            wl("eng-alpha/new", "main", pod_sets=[ps("one", 40, {CPU: "1"})]),
            wl("eng-beta/new", "main", pod_sets=[ps("one", 40, {CPU: "1"})]),
        ),
        want_assignments={
            "eng-alpha/new": adm("eng-alpha", {"one": {CPU: ("on-demand", "40000m")}}),
            "eng-beta/new": adm("eng-beta", {"one": {CPU: ("on-demand", "40000m")}}),
        },
    ),
    # scheduler_test.go TestSchedule "assign multiple resources and flavors"
    "assign multiple resources and flavors": Case(
        feature_gates=PARTIAL,
        workloads=(
            wl(
                "eng-beta/new",
                "main",
                pod_sets=[ps("one", 10, {CPU: "6", GPU: "1"}), ps("two", 40, {CPU: "1"})],
            ),
        ),
        want_assignments={
            "eng-beta/new": adm(
                "eng-beta",
                {
                    "one": {CPU: ("on-demand", "60000m"), GPU: ("model-a", "10")},
                    "two": {CPU: ("spot", "40000m")},
                },
            ),
        },
    ),
    # scheduler_test.go TestSchedule "cannot borrow if cohort was assigned and would result in
    # overadmission"
    "cannot borrow if cohort was assigned and would result in overadmission": Case(
        workloads=(
            wl("eng-alpha/new", "main", pod_sets=[ps("one", 45, {CPU: "1"})]),
            wl("eng-beta/new", "main", pod_sets=[ps("one", 56, {CPU: "1"})]),
        ),
        want_assignments={"eng-alpha/new": adm("eng-alpha", {"one": {CPU: ("on-demand", "45000m")}})},
        want_left={"eng-beta": ["eng-beta/new"]},
        want_messages={"eng-beta/new": NO_LONGER_FITS},
    ),
    # scheduler_test.go TestSchedule "can borrow if cohort was assigned and will not result in
    # overadmission"
    "can borrow if cohort was assigned and will not result in overadmission": Case(
        workloads=(
            wl("eng-alpha/new", "main", pod_sets=[ps("one", 45, {CPU: "1"})]),
            wl("eng-beta/new", "main", pod_sets=[ps("one", 55, {CPU: "1"})]),
        ),
        want_assignments={
            "eng-alpha/new": adm("eng-alpha", {"one": {CPU: ("on-demand", "45000m")}}),
            "eng-beta/new": adm("eng-beta", {"one": {CPU: ("on-demand", "55000m")}}),
        },
    ),
    # scheduler_test.go TestSchedule "can borrow if needs reclaim from cohort in different flavor"
    "can borrow if needs reclaim from cohort in different flavor": Case(
        workloads=(
            wl("eng-alpha/can-reclaim", "main", requests={CPU: "100"}),
            wl("eng-beta/needs-to-borrow", "main", requests={CPU: "1"}),
            wl(
                "eng-beta/user-on-demand",
                requests={CPU: "50"},
                admitted=adm("eng-beta", cpu=("on-demand", "50000m")),
            ),
            wl("eng-beta/user-spot", requests={CPU: "1"}, admitted=adm("eng-beta", cpu=("spot", "1000m"))),
        ),
        want_assignments={
            "eng-beta/user-spot": adm("eng-beta", cpu=("spot", "1000m")),
            "eng-beta/user-on-demand": adm("eng-beta", cpu=("on-demand", "50000m")),
            "eng-beta/needs-to-borrow": adm("eng-beta", cpu=("on-demand", "1000m")),
        },
        want_left={"eng-alpha": ["eng-alpha/can-reclaim"]},
        want_messages={
            "eng-alpha/can-reclaim": "couldn't assign flavors to pod set main: insufficient unused quota for "
            "cpu in flavor on-demand, 50 more needed, insufficient unused quota for cpu in flavor spot, 1 "
            "more needed",
        },
    ),
    # scheduler_test.go TestSchedule "workload exceeds lending limit when borrow in cohort"
    "workload exceeds lending limit when borrow in cohort": Case(
        workloads=(
            wl("lend/a", requests={CPU: "2"}, admitted=adm("lend-b", cpu=("default", "2000m"))),
            wl("lend/b", "lend-b-queue", requests={CPU: "3"}),
        ),
        want_assignments={"lend/a": adm("lend-b", cpu=("default", "2000m"))},
        want_inadmissible={"lend-b": ["lend/b"]},
        want_messages={
            "lend/b": "couldn't assign flavors to pod set main: insufficient unused quota for cpu in flavor "
            "default, 1 more needed",
        },
    ),
    # scheduler_test.go TestSchedule "hierarchical cohort respects lending limit when borrowing"
    # (ROOT -> CHILD -> {lender (10, lendingLimit 3), borrower (5, borrowingLimit 10, using 5)})
    "hierarchical cohort respects lending limit when borrowing": Case(
        cohorts=(cohort("root"), cohort("child", parent="root")),
        cluster_queues=(
            cq("cq-lender", {"on-demand": {CPU: ("10", None, "3")}}, cohort="child", namespace=ENG),
            cq("cq-borrower", {"on-demand": {CPU: ("5", "10")}}, cohort="child", namespace=ENG),
        ),
        local_queues=(
            lq("lq-lender", "eng-alpha", "cq-lender"),
            lq("lq-borrower", "eng-alpha", "cq-borrower"),
        ),
        workloads=(
            wl(
                "eng-alpha/wl-existing",
                pod_sets=[ps("main", 1, {CPU: "5"})],
                admitted=adm("cq-borrower", cpu=("on-demand", "5")),
            ),
            wl("eng-alpha/wl-pending", "lq-borrower", pod_sets=[ps("main", 1, {CPU: "4"})]),
        ),
        want_assignments={"eng-alpha/wl-existing": adm("cq-borrower", cpu=("on-demand", "5"))},
        want_inadmissible={"cq-borrower": ["eng-alpha/wl-pending"]},
        want_messages={
            "eng-alpha/wl-pending": "couldn't assign flavors to pod set main: insufficient unused quota for "
            "cpu in flavor on-demand, 1 more needed",
        },
    ),
    # scheduler_test.go TestSchedule "hierarchical cohort allows borrowing up to lending limit"
    # (ROOT -> CHILD -> {lender (10, lendingLimit 5), borrower (5, borrowingLimit 10, using 5)})
    "hierarchical cohort allows borrowing up to lending limit": Case(
        cohorts=(cohort("root"), cohort("child", parent="root")),
        cluster_queues=(
            cq("cq-lender", {"on-demand": {CPU: ("10", None, "5")}}, cohort="child", namespace=ENG),
            cq("cq-borrower", {"on-demand": {CPU: ("5", "10")}}, cohort="child", namespace=ENG),
        ),
        local_queues=(
            lq("lq-lender", "eng-alpha", "cq-lender"),
            lq("lq-borrower", "eng-alpha", "cq-borrower"),
        ),
        workloads=(
            wl(
                "eng-alpha/wl-existing",
                pod_sets=[ps("main", 1, {CPU: "5"})],
                admitted=adm("cq-borrower", cpu=("on-demand", "5")),
            ),
            wl("eng-alpha/wl-borrowing", "lq-borrower", pod_sets=[ps("main", 1, {CPU: "5"})]),
        ),
        want_assignments={
            "eng-alpha/wl-existing": adm("cq-borrower", cpu=("on-demand", "5")),
            "eng-alpha/wl-borrowing": adm("cq-borrower", cpu=("on-demand", "5")),
        },
    ),
    # scheduler_test.go TestSchedule "preempt workloads in ClusterQueue and cohort"
    "preempt workloads in ClusterQueue and cohort": Case(
        workloads=(
            wl("eng-beta/preemptor", "main", requests={CPU: "20"}),
            wl(
                "eng-alpha/use-all-spot",
                requests={CPU: "100"},
                admitted=adm("eng-alpha", cpu=("spot", "100000m")),
            ),
            wl(
                "eng-beta/low-1",
                priority=-1,
                requests={CPU: "30"},
                admitted=adm("eng-beta", cpu=("on-demand", "30000m")),
            ),
            wl(
                "eng-beta/low-2",
                priority=-2,
                requests={CPU: "10"},
                admitted=adm("eng-beta", cpu=("on-demand", "10000m")),
            ),
            wl(
                "eng-alpha/borrower",
                requests={CPU: "60"},
                admitted=adm("eng-alpha", cpu=("on-demand", "60000m")),
            ),
        ),
        want_assignments={
            "eng-alpha/use-all-spot": adm("eng-alpha", cpu=("spot", "100")),
            "eng-beta/low-1": adm("eng-beta", cpu=("on-demand", "30")),
            "eng-beta/low-2": adm("eng-beta", cpu=("on-demand", "10")),
            "eng-alpha/borrower": adm("eng-alpha", cpu=("on-demand", "60")),
        },
        want_preempted={"eng-alpha/borrower": IN_COHORT_RECLAMATION, "eng-beta/low-2": IN_CLUSTER_QUEUE},
        want_left={"eng-beta": ["eng-beta/preemptor"]},
        want_messages={
            "eng-beta/preemptor": "couldn't assign flavors to pod set main: insufficient unused quota for "
            "cpu in flavor on-demand, 20 more needed, insufficient unused quota for cpu in flavor spot, 20 "
            "more needed. Pending the preemption of 2 workload(s)",
        },
    ),
    # scheduler_test.go TestSchedule "multiple CQs need preemption"
    "multiple CQs need preemption": Case(
        cluster_queues=(
            cq("other-alpha", {"on-demand": {CPU: ("50", "50")}}, cohort="other"),
            cq(
                "other-beta",
                {"on-demand": {CPU: ("50", "10")}},
                cohort="other",
                reclaim=ANY,
                within=LOWER_PRIORITY,
            ),
        ),
        local_queues=(lq("other", "eng-alpha", "other-alpha"), lq("other", "eng-beta", "other-beta")),
        workloads=(
            wl("eng-beta/preemptor", "other", priority=-1, requests={CPU: "1"}),
            wl("eng-alpha/pending", "other", priority=1, requests={CPU: "1"}),
            wl(
                "eng-alpha/use-all",
                requests={CPU: "100"},
                admitted=adm("other-alpha", cpu=("on-demand", "100")),
            ),
        ),
        want_assignments={"eng-alpha/use-all": adm("other-alpha", cpu=("on-demand", "100"))},
        want_preempted={"eng-alpha/use-all": IN_COHORT_RECLAMATION},
        want_left={"other-beta": ["eng-beta/preemptor"]},
        want_inadmissible={"other-alpha": ["eng-alpha/pending"]},
        want_messages={
            "eng-alpha/pending": "couldn't assign flavors to pod set main: insufficient unused quota for cpu "
            "in flavor on-demand, 1 more needed",
            "eng-beta/preemptor": "couldn't assign flavors to pod set main: insufficient unused quota for "
            "cpu in flavor on-demand, 1 more needed. Pending the preemption of 1 workload(s)",
        },
    ),
    # scheduler_test.go TestSchedule "cannot borrow resource not listed in clusterQueue"
    "cannot borrow resource not listed in clusterQueue": Case(
        workloads=(wl("eng-alpha/new", "main", requests={GPU: "1"}),),
        want_left={"eng-alpha": ["eng-alpha/new"]},
        want_messages={
            "eng-alpha/new": "couldn't assign flavors to pod set main: resource example.com/gpu unavailable "
            "in ClusterQueue",
        },
    ),
    # scheduler_test.go TestSchedule "not enough resources to borrow, fallback to next flavor;
    # WhenCanPreempt: TryNextFlavor"
    "not enough resources to borrow, fallback to next flavor; WhenCanPreempt: TryNextFlavor": Case(
        workloads=(
            wl("eng-alpha/new", "main", pod_sets=[ps("one", 60, {CPU: "1"})]),
            wl(
                "eng-beta/existing",
                pod_sets=[ps("one", 45, {CPU: "1"})],
                admitted=adm("eng-beta", {"one": {CPU: ("on-demand", "45000m")}}),
            ),
        ),
        want_assignments={
            "eng-alpha/new": adm("eng-alpha", {"one": {CPU: ("spot", "60000m")}}),
            "eng-beta/existing": adm("eng-beta", {"one": {CPU: ("on-demand", "45000m")}}),
        },
    ),
    # scheduler_test.go TestSchedule "workload should not fit in nonexistent clusterQueue"
    "workload should not fit in nonexistent clusterQueue": Case(
        workloads=(wl("sales/foo", "cq-nonexistent-queue", requests={CPU: "1"}),),
    ),
    # scheduler_test.go TestSchedule "workload should not fit in clusterQueue with nonexistent flavor"
    "workload should not fit in clusterQueue with nonexistent flavor": Case(
        workloads=(wl("sales/foo", "flavor-nonexistent-queue", requests={CPU: "1"}),),
        want_left={"flavor-nonexistent-cq": ["sales/foo"]},
    ),
    # scheduler_test.go TestSchedule "no overadmission while borrowing"
    "no overadmission while borrowing": Case(
        cluster_queues=(
            cq(
                "eng-gamma",
                {"on-demand": {CPU: ("50", "10")}, "spot": {CPU: ("0", "100")}},
                cohort="eng",
                reclaim=ANY,
                within=LOWER_PRIORITY,
            ),
        ),
        local_queues=(lq("main", "eng-gamma", "eng-gamma"),),
        workloads=(
            wl("eng-beta/new", "main", created=-2, pod_sets=[ps("one", 50, {CPU: "1"})]),
            wl("eng-alpha/new-alpha", "main", created=-1, pod_sets=[ps("one", 1, {CPU: "1"})]),
            wl("eng-gamma/new-gamma", "main", created=0, pod_sets=[ps("one", 50, {CPU: "1"})]),
            wl(
                "eng-gamma/existing",
                pod_sets=[ps("borrow-on-demand", 51, {CPU: "1"}), ps("use-all-spot", 100, {CPU: "1"})],
                admitted=adm(
                    "eng-gamma",
                    {
                        "borrow-on-demand": {CPU: ("on-demand", "51")},
                        "use-all-spot": {CPU: ("spot", "100")},
                    },
                ),
            ),
        ),
        want_assignments={
            "eng-gamma/existing": adm(
                "eng-gamma",
                {"borrow-on-demand": {CPU: ("on-demand", "51")}, "use-all-spot": {CPU: ("spot", "100")}},
            ),
            "eng-beta/new": adm("eng-beta", {"one": {CPU: ("on-demand", "50")}}),
            "eng-alpha/new-alpha": adm("eng-alpha", {"one": {CPU: ("on-demand", "1")}}),
        },
        want_inadmissible={"eng-gamma": ["eng-gamma/new-gamma"]},
        want_messages={
            "eng-gamma/new-gamma": "couldn't assign flavors to pod set one: insufficient unused quota for "
            "cpu in flavor on-demand, 41 more needed, insufficient unused quota for cpu in flavor spot, 50 "
            "more needed",
        },
        want_skipped_preemptions={"eng-alpha": 0, "eng-beta": 0, "eng-gamma": 0},
    ),
    # scheduler_test.go TestSchedule "partial admission single variable pod set"
    "partial admission single variable pod set": Case(
        workloads=(wl("sales/new", "main", pod_sets=[ps("one", 50, {CPU: "2"}, min_count=20)]),),
        want_assignments={"sales/new": adm("sales", {"one": {CPU: ("default", "50000m")}})},  # Count(25)
    ),
    # scheduler_test.go TestSchedule "partial admission single variable pod set, preempt first"
    "partial admission single variable pod set, preempt first": Case(
        workloads=(
            wl("eng-beta/new", "main", priority=4, pod_sets=[ps("one", 20, {GPU: "1"}, min_count=10)]),
            wl(
                "eng-beta/old",
                priority=-4,
                pod_sets=[ps("one", 10, {GPU: "1"})],
                admitted=adm("eng-beta", {"one": {GPU: ("model-a", "10")}}),
            ),
        ),
        want_assignments={"eng-beta/old": adm("eng-beta", {"one": {GPU: ("model-a", "10")}})},
        want_preempted={"eng-beta/old": IN_CLUSTER_QUEUE},
        want_left={"eng-beta": ["eng-beta/new"]},
        want_messages={
            "eng-beta/new": "couldn't assign flavors to pod set one: insufficient unused quota for "
            "example.com/gpu in flavor model-a, 10 more needed. Pending the preemption of 1 workload(s)",
        },
    ),
    # scheduler_test.go TestSchedule "partial admission single variable pod set, preempt with partial
    # admission"
    "partial admission single variable pod set, preempt with partial admission": Case(
        workloads=(
            wl("eng-beta/new", "main", priority=4, pod_sets=[ps("one", 30, {GPU: "1"}, min_count=10)]),
            wl(
                "eng-beta/old",
                priority=-4,
                pod_sets=[ps("one", 10, {GPU: "1"})],
                admitted=adm("eng-beta", {"one": {GPU: ("model-a", "10")}}),
            ),
        ),
        want_assignments={"eng-beta/old": adm("eng-beta", {"one": {GPU: ("model-a", "10")}})},
        want_preempted={"eng-beta/old": IN_CLUSTER_QUEUE},
        want_left={"eng-beta": ["eng-beta/new"]},
        want_messages={
            "eng-beta/new": "couldn't assign flavors to pod set one: insufficient unused quota for "
            "example.com/gpu in flavor model-a, 10 more needed. Pending the preemption of 1 workload(s)",
        },
    ),
    # scheduler_test.go TestSchedule "partial admission multiple variable pod sets"
    "partial admission multiple variable pod sets": Case(
        workloads=(
            wl(
                "sales/new",
                "main",
                pod_sets=[
                    ps("one", 20, {CPU: "1"}),
                    ps("two", 30, {CPU: "1"}, min_count=10),
                    ps("three", 15, {CPU: "1"}, min_count=5),
                ],
            ),
        ),
        want_assignments={
            "sales/new": adm(
                "sales",
                {
                    "one": {CPU: ("default", "20000m")},  # Count(20)
                    "two": {CPU: ("default", "20000m")},  # Count(20)
                    "three": {CPU: ("default", "10000m")},  # Count(10)
                },
            ),
        },
    ),
    # scheduler_test.go TestSchedule "partial admission disabled, multiple variable pod sets"
    "partial admission disabled, multiple variable pod sets": Case(
        feature_gates={"PartialAdmission": False},
        workloads=(
            wl(
                "sales/new",
                "main",
                pod_sets=[
                    ps("one", 20, {CPU: "1"}),
                    ps("two", 30, {CPU: "1"}, min_count=10),
                    ps("three", 15, {CPU: "1"}, min_count=5),
                ],
            ),
        ),
        want_left={"sales": ["sales/new"]},
        want_messages={
            "sales/new": "couldn't assign flavors to pod set three: insufficient quota for cpu in flavor "
            "default, previously considered podsets requests (50) + current podset request (15) > maximum "
            "capacity (50)",
        },
    ),
    # scheduler_test.go TestSchedule "two workloads can borrow different resources from the same flavor
    # in the same cycle"
    "two workloads can borrow different resources from the same flavor in the same cycle": Case(
        cluster_queues=tuple(
            cq(
                name,
                {"default": {"r1": ("10", "10"), "r2": ("10", "10")}},
                cohort="co",
                reclaim=ANY,
                within=LOWER_PRIORITY,
            )
            for name in ("cq1", "cq2", "cq3")
        ),
        local_queues=(lq("lq1", "sales", "cq1"), lq("lq2", "sales", "cq2"), lq("lq3", "sales", "cq3")),
        workloads=(
            wl("sales/wl1", "lq1", priority=-1, pod_sets=[ps("main", 1, {"r1": "16"})]),
            wl("sales/wl2", "lq2", priority=-2, pod_sets=[ps("main", 1, {"r2": "16"})]),
        ),
        want_assignments={
            "sales/wl1": adm("cq1", r1=("default", "16")),
            "sales/wl2": adm("cq2", r2=("default", "16")),
        },
    ),
    # scheduler_test.go TestSchedule "two workloads can borrow the same resources from the same flavor in
    # the same cycle if fits in the cohort quota"
    "two workloads can borrow the same resources from the same flavor in the same cycle if fits in the "
    "cohort quota": Case(
        cluster_queues=tuple(
            cq(
                name,
                {"default": {"r1": ("10", "10"), "r2": ("10", "10")}},
                cohort="co",
                reclaim=ANY,
                within=LOWER_PRIORITY,
            )
            for name in ("cq1", "cq2", "cq3")
        ),
        local_queues=(lq("lq1", "sales", "cq1"), lq("lq2", "sales", "cq2"), lq("lq3", "sales", "cq3")),
        workloads=(
            wl("sales/wl1", "lq1", priority=-1, pod_sets=[ps("main", 1, {"r1": "16"})]),
            wl("sales/wl2", "lq2", priority=-2, pod_sets=[ps("main", 1, {"r1": "14"})]),
        ),
        want_assignments={
            "sales/wl1": adm("cq1", r1=("default", "16")),
            "sales/wl2": adm("cq2", r1=("default", "14")),
        },
    ),
    # scheduler_test.go TestSchedule "only one workload can borrow one resources from the same flavor in
    # the same cycle if cohort quota cannot fit"
    "only one workload can borrow one resources from the same flavor in the same cycle if cohort quota "
    "cannot fit": Case(
        cluster_queues=tuple(
            cq(
                name,
                {"default": {"r1": ("10", "10"), "r2": ("10", "10")}},
                cohort="co",
                reclaim=ANY,
                within=LOWER_PRIORITY,
            )
            for name in ("cq1", "cq2", "cq3")
        ),
        local_queues=(lq("lq1", "sales", "cq1"), lq("lq2", "sales", "cq2"), lq("lq3", "sales", "cq3")),
        workloads=(
            wl("sales/wl1", "lq1", priority=-1, pod_sets=[ps("main", 1, {"r1": "16"})]),
            wl("sales/wl2", "lq2", priority=-2, pod_sets=[ps("main", 1, {"r1": "16"})]),
        ),
        want_assignments={"sales/wl1": adm("cq1", r1=("default", "16"))},
        want_left={"cq2": ["sales/wl2"]},
        want_messages={"sales/wl2": NO_LONGER_FITS},
    ),
    # scheduler_test.go TestSchedule "preemption while borrowing, workload waiting for preemption should
    # not block a borrowing workload in another CQ"
    "preemption while borrowing, workload waiting for preemption should not block a borrowing workload in "
    "another CQ": Case(
        cluster_queues=(
            cq("cq_shared", {"default": {CPU: ("4", "0")}}, cohort="preemption-while-borrowing"),
            cq(
                "cq_a",
                {"default": {CPU: ("0", "3")}},
                cohort="preemption-while-borrowing",
                reclaim=LOWER_PRIORITY,
                borrow_within=LOWER_PRIORITY,
            ),
            cq(
                "cq_b",
                {"default": {CPU: "0"}},
                cohort="preemption-while-borrowing",
                reclaim=LOWER_PRIORITY,
                borrow_within=LOWER_PRIORITY,
            ),
        ),
        local_queues=(lq("lq_a", "eng-alpha", "cq_a"), lq("lq_b", "eng-beta", "cq_b")),
        workloads=(
            wl("eng-alpha/a", "lq_a", created=1, pod_sets=[ps("main", 1, {CPU: "3"})]),
            wl("eng-beta/b", "lq_b", created=2, pod_sets=[ps("main", 1, {CPU: "1"})]),
            wl(
                "eng-alpha/admitted_a",
                "lq_a",
                pod_sets=[ps("main", 1, {CPU: "2"})],
                admitted=adm("cq_a", cpu=("default", "2")),
            ),
        ),
        want_assignments={
            "eng-alpha/admitted_a": adm("cq_a", cpu=("default", "2")),
            "eng-beta/b": adm("cq_b", cpu=("default", "1")),
        },
        want_inadmissible={"cq_a": ["eng-alpha/a"]},
        want_messages={
            "eng-alpha/a": "couldn't assign flavors to pod set main: insufficient unused quota for cpu in "
            "flavor default, 2 more needed",
        },
    ),
    # scheduler_test.go TestSchedule "minimal preemptions when target queue is exhausted"
    "minimal preemptions when target queue is exhausted": Case(
        cluster_queues=(
            cq("other-alpha", {"on-demand": {CPU: "2"}}, cohort="other", reclaim=ANY, within=LOWER_PRIORITY),
            cq("other-beta", {"on-demand": {CPU: "2"}}, cohort="other"),
            cq("other-gamma", {"on-demand": {CPU: "2"}}, cohort="other"),
        ),
        local_queues=(
            lq("other", "eng-alpha", "other-alpha"),
            lq("other", "eng-beta", "other-beta"),
            lq("other", "eng-gamma", "other-gamma"),
        ),
        workloads=(
            wl(
                "eng-alpha/a1",
                "other",
                priority=-2,
                requests={CPU: "1"},
                admitted=adm("other-alpha", cpu=("on-demand", "1")),
            ),
            wl(
                "eng-alpha/a2",
                "other",
                priority=-2,
                requests={CPU: "1"},
                admitted=adm("other-alpha", cpu=("on-demand", "1")),
            ),
            wl(
                "eng-alpha/a3",
                "other",
                priority=-1,
                requests={CPU: "1"},
                admitted=adm("other-alpha", cpu=("on-demand", "1")),
            ),
            wl(
                "eng-beta/b1",
                "other",
                requests={CPU: "1"},
                admitted=adm("other-beta", cpu=("on-demand", "1")),
            ),
            wl(
                "eng-beta/b2",
                "other",
                requests={CPU: "1"},
                admitted=adm("other-beta", cpu=("on-demand", "1")),
            ),
            wl(
                "eng-beta/b3",
                "other",
                requests={CPU: "1"},
                admitted=adm("other-beta", cpu=("on-demand", "1")),
            ),
            wl("eng-alpha/incoming", "other", requests={CPU: "2"}),
        ),
        want_assignments={
            "eng-alpha/a1": adm("other-alpha", cpu=("on-demand", "1")),
            "eng-alpha/a2": adm("other-alpha", cpu=("on-demand", "1")),
            "eng-alpha/a3": adm("other-alpha", cpu=("on-demand", "1")),
            "eng-beta/b1": adm("other-beta", cpu=("on-demand", "1")),
            "eng-beta/b2": adm("other-beta", cpu=("on-demand", "1")),
            "eng-beta/b3": adm("other-beta", cpu=("on-demand", "1")),
        },
        want_preempted={"eng-alpha/a1": IN_CLUSTER_QUEUE, "eng-alpha/a2": IN_CLUSTER_QUEUE},
        want_left={"other-alpha": ["eng-alpha/incoming"]},
        want_messages={
            "eng-alpha/incoming": "couldn't assign flavors to pod set main: insufficient unused quota for "
            "cpu in flavor on-demand, 2 more needed. Pending the preemption of 2 workload(s)",
        },
    ),
    # scheduler_test.go TestSchedule "A workload is only eligible to do preemptions if it fits fully
    # within nominal quota"
    "A workload is only eligible to do preemptions if it fits fully within nominal quota": Case(
        cluster_queues=(
            cq("other-alpha", {"on-demand": {CPU: "2"}}, cohort="other", reclaim=ANY, within=LOWER_PRIORITY),
            cq("other-beta", {"on-demand": {CPU: "2"}}, cohort="other"),
        ),
        local_queues=(lq("other", "eng-alpha", "other-alpha"), lq("other", "eng-beta", "other-beta")),
        workloads=(
            wl(
                "eng-alpha/a1",
                "other",
                priority=-1,
                requests={CPU: "1"},
                admitted=adm("other-alpha", cpu=("on-demand", "1")),
            ),
            wl(
                "eng-beta/b1",
                "other",
                priority=-1,
                requests={CPU: "1"},
                admitted=adm("other-beta", cpu=("on-demand", "1")),
            ),
            wl("eng-alpha/incoming", "other", priority=1, requests={CPU: "3"}),
        ),
        want_assignments={
            "eng-alpha/a1": adm("other-alpha", cpu=("on-demand", "1")),
            "eng-beta/b1": adm("other-beta", cpu=("on-demand", "1")),
        },
        want_inadmissible={"other-alpha": ["eng-alpha/incoming"]},
        want_messages={
            "eng-alpha/incoming": "couldn't assign flavors to pod set main: insufficient unused quota for "
            "cpu in flavor on-demand, 1 more needed",
        },
    ),
    # scheduler_test.go TestSchedule "multiple preemptions without borrowing"
    "multiple preemptions without borrowing": Case(
        cluster_queues=(
            cq("other-alpha", {"default": {CPU: "2"}}, cohort="other", within=LOWER_PRIORITY),
            cq("other-beta", {"default": {CPU: "2"}}, cohort="other", within=LOWER_PRIORITY),
        ),
        local_queues=(lq("other", "eng-alpha", "other-alpha"), lq("other", "eng-beta", "other-beta")),
        workloads=(
            wl(
                "eng-alpha/a1",
                "other",
                requests={CPU: "2"},
                admitted=adm("other-alpha", cpu=("default", "2")),
            ),
            wl("eng-beta/b1", "other", requests={CPU: "2"}, admitted=adm("other-beta", cpu=("default", "2"))),
            wl("eng-alpha/preemptor", "other", priority=100, requests={CPU: "2"}),
            wl("eng-beta/preemptor", "other", priority=100, requests={CPU: "2"}),
        ),
        want_assignments={
            "eng-alpha/a1": adm("other-alpha", cpu=("default", "2")),
            "eng-beta/b1": adm("other-beta", cpu=("default", "2")),
        },
        want_preempted={"eng-alpha/a1": IN_CLUSTER_QUEUE, "eng-beta/b1": IN_CLUSTER_QUEUE},
        want_left={"other-alpha": ["eng-alpha/preemptor"], "other-beta": ["eng-beta/preemptor"]},
        want_messages={
            "eng-alpha/preemptor": "couldn't assign flavors to pod set main: insufficient unused quota for "
            "cpu in flavor default, 2 more needed. Pending the preemption of 1 workload(s)",
            "eng-beta/preemptor": "couldn't assign flavors to pod set main: insufficient unused quota for "
            "cpu in flavor default, 2 more needed. Pending the preemption of 1 workload(s)",
        },
        want_skipped_preemptions={"other-alpha": 0, "other-beta": 0},
    ),
    # scheduler_test.go TestSchedule "multiple preemptions preemption possible after earlier workload fits"
    "multiple preemptions preemption possible after earlier workload fits": Case(
        cluster_queues=(
            cq("other-alpha", {"default": {CPU: "1"}}, cohort="other", within=LOWER_PRIORITY),
            cq("other-beta", {"default": {CPU: "2"}}, cohort="other", within=LOWER_PRIORITY),
        ),
        local_queues=(lq("other", "eng-alpha", "other-alpha"), lq("other", "eng-beta", "other-beta")),
        workloads=(
            wl("eng-beta/b1", "other", requests={CPU: "2"}, admitted=adm("other-beta", cpu=("default", "2"))),
            wl("eng-alpha/fit", "other", priority=100, requests={CPU: "1"}),
            wl("eng-beta/preemptor", "other", priority=99, requests={CPU: "2"}),
        ),
        want_assignments={
            "eng-alpha/fit": adm("other-alpha", cpu=("default", "1")),
            "eng-beta/b1": adm("other-beta", cpu=("default", "2")),
        },
        want_preempted={"eng-beta/b1": IN_CLUSTER_QUEUE},
        want_left={"other-beta": ["eng-beta/preemptor"]},
        want_messages={
            "eng-beta/preemptor": "couldn't assign flavors to pod set main: insufficient unused quota for "
            "cpu in flavor default, 1 more needed. Pending the preemption of 1 workload(s)",
        },
        want_skipped_preemptions={"other-alpha": 0, "other-beta": 0},
    ),
    # scheduler_test.go TestSchedule "multiple preemptions skip preemption when shared limited resource"
    # (evicted workloads request 4, preempting workloads 6, the cohort has capacity 5)
    "multiple preemptions skip preemption when shared limited resource": Case(
        cluster_queues=(
            cq(
                "other-alpha",
                {"default": {CPU: "2"}},
                cohort="other",
                within=LOWER_PRIORITY,
                borrow_within=LOWER_PRIORITY,
            ),
            cq(
                "other-beta",
                {"default": {CPU: "2"}},
                cohort="other",
                within=LOWER_PRIORITY,
                borrow_within=LOWER_PRIORITY,
            ),
            cq("resource-bank", {"default": {CPU: "1"}}, cohort="other"),
        ),
        local_queues=(lq("other", "eng-alpha", "other-alpha"), lq("other", "eng-beta", "other-beta")),
        workloads=(
            wl(
                "eng-alpha/a1",
                "other",
                requests={CPU: "2"},
                admitted=adm("other-alpha", cpu=("default", "2")),
            ),
            wl("eng-beta/b1", "other", requests={CPU: "2"}, admitted=adm("other-beta", cpu=("default", "2"))),
            wl("eng-alpha/preemptor", "other", priority=100, requests={CPU: "3"}),
            wl("eng-beta/pretending-preemptor", "other", priority=99, requests={CPU: "3"}),
        ),
        want_assignments={
            "eng-alpha/a1": adm("other-alpha", cpu=("default", "2")),
            "eng-beta/b1": adm("other-beta", cpu=("default", "2")),
        },
        want_preempted={"eng-alpha/a1": IN_CLUSTER_QUEUE},
        want_left={"other-alpha": ["eng-alpha/preemptor"], "other-beta": ["eng-beta/pretending-preemptor"]},
        want_messages={
            "eng-alpha/preemptor": "couldn't assign flavors to pod set main: insufficient unused quota for "
            "cpu in flavor default, 2 more needed. Pending the preemption of 1 workload(s)",
            "eng-beta/pretending-preemptor": NO_LONGER_FITS,
        },
        want_skipped_preemptions={"other-alpha": 0, "other-beta": 1},
    ),
    # scheduler_test.go TestSchedule "not enough resources"
    "not enough resources": Case(
        workloads=(wl("sales/new", "main", pod_sets=[ps("one", 1, {CPU: "100"})]),),
        want_left={"sales": ["sales/new"]},
        want_messages={
            "sales/new": "couldn't assign flavors to pod set one: insufficient quota for cpu in flavor "
            "default, previously considered podsets requests (0) + current podset request (100) > maximum "
            "capacity (50)",
        },
    ),
    # scheduler_test.go TestSchedule "prefer reclamation over cq priority based preemption"
    "prefer reclamation over cq priority based preemption": Case(
        cluster_queues=(
            cq(
                "other-alpha",
                {"on-demand": {"gpu": "10"}, "spot": {"gpu": "10"}},
                cohort="other",
                within=LOWER_PRIORITY,
                reclaim=LOWER_PRIORITY,
            ),
            cq(
                "other-beta",
                {"on-demand": {"gpu": "0"}, "spot": {"gpu": "0"}},
                cohort="other",
                within=LOWER_PRIORITY,
                reclaim=LOWER_PRIORITY,
            ),
        ),
        local_queues=(lq("other", "eng-alpha", "other-alpha"), lq("other", "eng-beta", "other-beta")),
        workloads=(
            # SimpleReserveQuota(cq, flavor, now): every request in one flavor
            wl(
                "eng-alpha/a1",
                "other",
                priority=50,
                requests={"gpu": "5"},
                admitted=adm("other-alpha", gpu=("on-demand", "5")),
            ),
            wl(
                "eng-beta/b1",
                "other",
                priority=50,
                requests={"gpu": "5"},
                admitted=adm("other-beta", gpu=("spot", "5")),
            ),
            wl("eng-alpha/preemptor", "other", priority=100, requests={"gpu": "6"}),
        ),
        want_assignments={
            "eng-alpha/a1": adm("other-alpha", gpu=("on-demand", "5")),
            "eng-beta/b1": adm("other-beta", gpu=("spot", "5")),
        },
        want_preempted={"eng-beta/b1": IN_COHORT_RECLAMATION},
        want_left={"other-alpha": ["eng-alpha/preemptor"]},
        want_messages={
            "eng-alpha/preemptor": "couldn't assign flavors to pod set main: insufficient unused quota for "
            "gpu in flavor on-demand, 1 more needed, insufficient unused quota for gpu in flavor spot, 1 "
            "more needed. Pending the preemption of 1 workload(s)",
        },
    ),
    # scheduler_test.go TestSchedule "prefer first preemption flavor when second flavor requires both
    # reclaim and cq priority preemption"
    "prefer first preemption flavor when second flavor requires both reclaim and cq priority "
    "preemption": Case(
        cluster_queues=(
            cq(
                "other-alpha",
                {"on-demand": {"gpu": "10"}, "spot": {"gpu": "10"}},
                cohort="other",
                within=LOWER_PRIORITY,
                reclaim=LOWER_PRIORITY,
            ),
            cq("other-beta", {"on-demand": {"gpu": "0"}, "spot": {"gpu": "0"}}, cohort="other"),
        ),
        local_queues=(lq("other", "eng-alpha", "other-alpha"), lq("other", "eng-beta", "other-beta")),
        workloads=(
            wl(
                "eng-alpha/a1",
                "other",
                priority=50,
                requests={"gpu": "5"},
                admitted=adm("other-alpha", gpu=("on-demand", "5")),
            ),
            wl(
                "eng-alpha/a2",
                "other",
                priority=50,
                requests={"gpu": "5"},
                admitted=adm("other-alpha", gpu=("spot", "5")),
            ),
            wl(
                "eng-beta/b1",
                "other",
                priority=50,
                requests={"gpu": "5"},
                admitted=adm("other-beta", gpu=("spot", "5")),
            ),
            wl("eng-alpha/preemptor", "other", priority=100, requests={"gpu": "6"}),
        ),
        want_assignments={
            "eng-alpha/a1": adm("other-alpha", gpu=("on-demand", "5")),
            "eng-alpha/a2": adm("other-alpha", gpu=("spot", "5")),
            "eng-beta/b1": adm("other-beta", gpu=("spot", "5")),
        },
        want_preempted={"eng-alpha/a1": IN_CLUSTER_QUEUE},
        want_left={"other-alpha": ["eng-alpha/preemptor"]},
        want_messages={
            "eng-alpha/preemptor": "couldn't assign flavors to pod set main: insufficient unused quota for "
            "gpu in flavor on-demand, 1 more needed, insufficient unused quota for gpu in flavor spot, 6 "
            "more needed. Pending the preemption of 1 workload(s)",
        },
    ),
    # scheduler_test.go TestSchedule "prefer first preemption flavor when second flavor also requires cq
    # preemption"
    "prefer first preemption flavor when second flavor also requires cq preemption": Case(
        cluster_queues=(
            cq(
                "other-alpha",
                {"on-demand": {"gpu": "10"}, "spot": {"gpu": "10"}},
                cohort="other",
                within=LOWER_PRIORITY,
                reclaim=LOWER_PRIORITY,
            ),
            cq("other-beta", {"on-demand": {"gpu": "0"}, "spot": {"gpu": "0"}}, cohort="other"),
        ),
        local_queues=(lq("other", "eng-alpha", "other-alpha"), lq("other", "eng-beta", "other-beta")),
        workloads=(
            wl(
                "eng-alpha/a1",
                "other",
                priority=50,
                requests={"gpu": "6"},
                admitted=adm("other-alpha", gpu=("on-demand", "6")),
            ),
            wl(
                "eng-alpha/a2",
                "other",
                priority=50,
                requests={"gpu": "5"},
                admitted=adm("other-alpha", gpu=("spot", "5")),
            ),
            wl(
                "eng-beta/b1",  # too high priority for the preemptor
                "other",
                priority=9001,
                requests={"gpu": "5"},
                admitted=adm("other-beta", gpu=("spot", "5")),
            ),
            wl("eng-alpha/preemptor", "other", priority=100, requests={"gpu": "5"}),
        ),
        want_assignments={
            "eng-alpha/a1": adm("other-alpha", gpu=("on-demand", "6")),
            "eng-alpha/a2": adm("other-alpha", gpu=("spot", "5")),
            "eng-beta/b1": adm("other-beta", gpu=("spot", "5")),
        },
        want_preempted={"eng-alpha/a1": IN_CLUSTER_QUEUE},
        want_left={"other-alpha": ["eng-alpha/preemptor"]},
        want_messages={
            "eng-alpha/preemptor": "couldn't assign flavors to pod set main: insufficient unused quota for "
            "gpu in flavor on-demand, 1 more needed, insufficient unused quota for gpu in flavor spot, 5 "
            "more needed. Pending the preemption of 1 workload(s)",
        },
    ),
    # scheduler_test.go TestSchedule "workload requiring reclaimation prioritized over wl in another full
    # cq" (CQ2 lends, reclaims Any and has WL2 within nominal; CQ1 has WL1 that does not fit its
    # nominal; CQ3 borrows 10; WL1 is older than WL2, WL2 must go first)
    "workload requiring reclaimation prioritized over wl in another full cq": Case(
        cluster_queues=(
            cq("CQ1", {"on-demand": {"gpu": "10"}}, cohort="other"),
            cq("CQ2", {"on-demand": {"gpu": "10"}}, cohort="other", reclaim=ANY),
            cq("CQ3", {"on-demand": {"gpu": "0"}}, cohort="other"),
        ),
        local_queues=(
            lq("lq", "eng-alpha", "CQ1"),
            lq("lq", "eng-beta", "CQ2"),
            lq("lq", "eng-gamma", "CQ3"),
        ),
        workloads=(
            wl(
                "eng-alpha/Admitted-Workload-1",
                "lq",
                requests={"gpu": "5"},
                admitted=adm("CQ1", gpu=("on-demand", "5")),
            ),
            wl("eng-alpha/WL1", "lq", created=0, requests={"gpu": "10"}),
            wl("eng-beta/WL2", "lq", created=1, requests={"gpu": "10"}),
            wl(
                "eng-gamma/Admitted-Workload-2",
                "lq",
                priority=0,
                requests={"gpu": "5"},
                admitted=adm("CQ3", gpu=("on-demand", "5")),
            ),
            wl(
                "eng-gamma/Admitted-Workload-3",
                "lq",
                priority=1,
                requests={"gpu": "5"},
                admitted=adm("CQ3", gpu=("on-demand", "5")),
            ),
        ),
        want_assignments={
            "eng-alpha/Admitted-Workload-1": adm("CQ1", gpu=("on-demand", "5")),
            "eng-gamma/Admitted-Workload-2": adm("CQ3", gpu=("on-demand", "5")),
            "eng-gamma/Admitted-Workload-3": adm("CQ3", gpu=("on-demand", "5")),
        },
        want_preempted={"eng-gamma/Admitted-Workload-2": IN_COHORT_RECLAMATION},
        want_left={"CQ2": ["eng-beta/WL2"]},
        want_inadmissible={"CQ1": ["eng-alpha/WL1"]},
        want_messages={
            "eng-alpha/WL1": "couldn't assign flavors to pod set main: insufficient unused quota for gpu in "
            "flavor on-demand, 5 more needed",
            "eng-beta/WL2": "couldn't assign flavors to pod set main: insufficient unused quota for gpu in "
            "flavor on-demand, 5 more needed. Pending the preemption of 1 workload(s)",
        },
    ),
    # scheduler_test.go TestSchedule "capacity not blocked when lending clusterqueue can reclaim
    # (ReclaimWithinCohort=Any)"
    "capacity not blocked when lending clusterqueue can reclaim (ReclaimWithinCohort=Any)": Case(
        cluster_queues=(
            cq("ClusterQueueA", {"on-demand": {"gpu": "2"}}, cohort="root", reclaim=ANY),
            cq("ClusterQueueB", {"on-demand": {"gpu": "0"}}, cohort="root"),
        ),
        local_queues=(lq("lq", "eng-alpha", "ClusterQueueA"), lq("lq", "eng-beta", "ClusterQueueB")),
        workloads=(
            wl(
                "eng-alpha/a1-admitted",
                "lq",
                requests={"gpu": "1"},
                admitted=adm("ClusterQueueA", gpu=("on-demand", "1")),
            ),
            wl("eng-alpha/a2-pending", "lq", requests={"gpu": "2"}),
            wl("eng-beta/b1-pending", "lq", created=0, requests={"gpu": "1"}),
        ),
        want_assignments={
            "eng-alpha/a1-admitted": adm("ClusterQueueA", gpu=("on-demand", "1")),
            "eng-beta/b1-pending": adm("ClusterQueueB", gpu=("on-demand", "1")),
        },
        want_inadmissible={"ClusterQueueA": ["eng-alpha/a2-pending"]},
        want_messages={
            "eng-alpha/a2-pending": "couldn't assign flavors to pod set main: insufficient unused quota for "
            "gpu in flavor on-demand, 1 more needed",
        },
    ),
    # scheduler_test.go TestSchedule "capacity blocked when lending clusterqueue not guaranteed to
    # reclaim (ReclaimWithinCohort=LowerPriority)"
    "capacity blocked when lending clusterqueue not guaranteed to reclaim "
    "(ReclaimWithinCohort=LowerPriority)": Case(
        cluster_queues=(
            cq("ClusterQueueA", {"on-demand": {"gpu": "2"}}, cohort="root", reclaim=LOWER_PRIORITY),
            cq("ClusterQueueB", {"on-demand": {"gpu": "0"}}, cohort="root"),
        ),
        local_queues=(lq("lq", "eng-alpha", "ClusterQueueA"), lq("lq", "eng-beta", "ClusterQueueB")),
        workloads=(
            wl(
                "eng-alpha/a1-admitted",
                "lq",
                requests={"gpu": "1"},
                admitted=adm("ClusterQueueA", gpu=("on-demand", "1")),
            ),
            wl("eng-alpha/a2-pending", "lq", requests={"gpu": "2"}),
            wl("eng-beta/b1-pending", "lq", created=0, requests={"gpu": "1"}),
        ),
        want_assignments={"eng-alpha/a1-admitted": adm("ClusterQueueA", gpu=("on-demand", "1"))},
        want_left={"ClusterQueueB": ["eng-beta/b1-pending"]},
        want_inadmissible={"ClusterQueueA": ["eng-alpha/a2-pending"]},
        want_messages={
            "eng-alpha/a2-pending": "couldn't assign flavors to pod set main: insufficient unused quota for "
            "gpu in flavor on-demand, 1 more needed",
            "eng-beta/b1-pending": NO_LONGER_FITS,
        },
    ),
    # scheduler_test.go TestSchedule "capacity blocked when lending clusterqueue not guaranteed to
    # reclaim (ReclaimWithinCohort=Never)"
    "capacity blocked when lending clusterqueue not guaranteed to reclaim (ReclaimWithinCohort=Never)": Case(
        cluster_queues=(
            cq("ClusterQueueA", {"on-demand": {"gpu": "2"}}, cohort="root", reclaim="Never"),
            cq("ClusterQueueB", {"on-demand": {"gpu": "0"}}, cohort="root"),
        ),
        local_queues=(lq("lq", "eng-alpha", "ClusterQueueA"), lq("lq", "eng-beta", "ClusterQueueB")),
        workloads=(
            wl(
                "eng-alpha/a1-admitted",
                "lq",
                requests={"gpu": "1"},
                admitted=adm("ClusterQueueA", gpu=("on-demand", "1")),
            ),
            wl("eng-alpha/a2-pending", "lq", requests={"gpu": "2"}),
            wl("eng-beta/b1-pending", "lq", created=0, requests={"gpu": "1"}),
        ),
        want_assignments={"eng-alpha/a1-admitted": adm("ClusterQueueA", gpu=("on-demand", "1"))},
        want_left={"ClusterQueueB": ["eng-beta/b1-pending"]},
        want_inadmissible={"ClusterQueueA": ["eng-alpha/a2-pending"]},
        want_messages={
            "eng-alpha/a2-pending": "couldn't assign flavors to pod set main: insufficient unused quota for "
            "gpu in flavor on-demand, 1 more needed",
            "eng-beta/b1-pending": NO_LONGER_FITS,
        },
    ),
    # scheduler_test.go TestSchedule "in a hierarchical cohort, workload borrowing less is scheduled
    # first" (ROOT -> {GUARANTEED (cpu 4) -> guaranteed, best-effort})
    "in a hierarchical cohort, workload borrowing less is scheduled first": Case(
        cohorts=(cohort("root"), cohort("guaranteed", {"default": {CPU: "4"}}, parent="root")),
        cluster_queues=(
            cq("guaranteed", {"default": {CPU: "0"}}, cohort="guaranteed"),
            cq("best-effort", {"default": {CPU: "0"}}, cohort="root"),
        ),
        local_queues=(
            lq("lq-guaranteed", "eng-alpha", "guaranteed"),
            lq("lq-best-effort", "eng-alpha", "best-effort"),
        ),
        workloads=(
            wl("eng-alpha/guaranteed", "lq-guaranteed", priority=0, pod_sets=[ps("one", 1, {CPU: "4"})]),
            wl("eng-alpha/best-effort", "lq-best-effort", priority=3, pod_sets=[ps("one", 1, {CPU: "4"})]),
        ),
        want_assignments={"eng-alpha/guaranteed": adm("guaranteed", {"one": {CPU: ("default", "4")}})},
        want_left={"best-effort": ["eng-alpha/best-effort"]},
        want_messages={"eng-alpha/best-effort": NO_LONGER_FITS},
    ),
    # scheduler_test.go TestSchedule "don't assign flavor if there are no candidates for preemption"
    "don't assign flavor if there are no candidates for preemption": Case(
        cluster_queues=(
            cq(
                "cq1",
                {"on-demand": {CPU: ("0", "1")}, "spot": {CPU: ("0", "1")}},
                cohort="cohort",
                within=LOWER_PRIORITY,
                reclaim=ANY,
                borrow_within=LOWER_PRIORITY,
                when_can_preempt=MAY_STOP_SEARCH,
                when_can_borrow=MAY_STOP_SEARCH,
            ),
            cq("cq2", {"on-demand": {CPU: "1"}, "spot": {CPU: "1"}}, cohort="cohort"),
        ),
        local_queues=(lq("lq1", "eng-alpha", "cq1"), lq("lq2", "eng-alpha", "cq2")),
        workloads=(
            wl(
                "eng-alpha/admitted",
                "lq2",
                priority=0,
                requests={CPU: "1"},
                admitted=adm("cq2", cpu=("on-demand", "1")),
                reserved_at=-1,
            ),
            wl("eng-alpha/new", "lq1", priority=100, requests={CPU: "1"}),
        ),
        want_assignments={
            "eng-alpha/new": adm("cq1", cpu=("spot", "1")),
            "eng-alpha/admitted": adm("cq2", cpu=("on-demand", "1")),
        },
    ),
    # scheduler_test.go TestSchedule "admit to second flavor when first needs preemption; WhenCanPreempt:
    # TryNextFlavor"
    "admit to second flavor when first needs preemption; WhenCanPreempt: TryNextFlavor": Case(
        cluster_queues=(
            cq(
                "preempt-attempts-cq",
                {"on-demand": {CPU: "1"}, "spot": {CPU: "1"}},
                within=LOWER_PRIORITY,
                when_can_preempt=TRY_NEXT_FLAVOR,
            ),
        ),
        local_queues=(lq("preempt-attempts-lq", "eng-alpha", "preempt-attempts-cq"),),
        workloads=(
            wl(
                "eng-alpha/blocker",
                "preempt-attempts-lq",
                priority=50,
                requests={CPU: "1"},
                admitted=adm("preempt-attempts-cq", cpu=("on-demand", "1")),
            ),
            wl("eng-alpha/test-wl", "preempt-attempts-lq", priority=100, requests={CPU: "1"}),
        ),
        want_assignments={
            "eng-alpha/test-wl": adm("preempt-attempts-cq", cpu=("spot", "1")),
            "eng-alpha/blocker": adm("preempt-attempts-cq", cpu=("on-demand", "1")),
        },
    ),
    # scheduler_test.go TestSchedule "admit workload with zero-quantity request for resource not in
    # ClusterQueue"
    "admit workload with zero-quantity request for resource not in ClusterQueue": Case(
        workloads=(wl("sales/zero-resource-wl", "main", requests={CPU: "1", GPU: "0"}),),
        want_assignments={"sales/zero-resource-wl": adm("sales", cpu=("default", "1000m"))},
    ),
    # scheduler_test.go TestSchedule "preempt when workload requests zero of a resource not defined in
    # ClusterQueue"
    "preempt when workload requests zero of a resource not defined in ClusterQueue": Case(
        cluster_queues=(cq("preempt-zero-gpu-cq", {"default": {CPU: "4"}}, within=LOWER_PRIORITY),),
        local_queues=(lq("preempt-zero-gpu-lq", "sales", "preempt-zero-gpu-cq"),),
        workloads=(
            wl("sales/preemptor", "preempt-zero-gpu-lq", requests={CPU: "2", GPU: "0"}),
            wl(
                "sales/low-priority",
                "preempt-zero-gpu-lq",
                priority=-1,
                requests={CPU: "4"},
                admitted=adm("preempt-zero-gpu-cq", cpu=("default", "4000m")),
            ),
        ),
        want_assignments={"sales/low-priority": adm("preempt-zero-gpu-cq", cpu=("default", "4000m"))},
        want_preempted={"sales/low-priority": IN_CLUSTER_QUEUE},
        want_left={"preempt-zero-gpu-cq": ["sales/preemptor"]},
        want_messages={
            "sales/preemptor": "couldn't assign flavors to pod set main: insufficient unused quota for cpu "
            "in flavor default, 2 more needed. Pending the preemption of 1 workload(s)",
        },
    ),
    # scheduler_test.go TestSchedule "PreemptionOverBorrowing preference: preempt in first flavor instead
    # of borrowing in second"
    "PreemptionOverBorrowing preference: preempt in first flavor instead of borrowing in second": Case(
        cluster_queues=(
            cq(
                "pob-cq",
                {"on-demand": {CPU: ("5", "0")}, "spot": {CPU: ("0", "5")}},
                cohort="pob-cohort",
                within=LOWER_PRIORITY,
                when_can_borrow=TRY_NEXT_FLAVOR,
                when_can_preempt=TRY_NEXT_FLAVOR,
                preference="PreemptionOverBorrowing",
            ),
            cq("pob-lender", {"on-demand": {CPU: "0"}, "spot": {CPU: "5"}}, cohort="pob-cohort"),
        ),
        local_queues=(lq("pob-queue", "default", "pob-cq"),),
        workloads=(
            wl(
                "default/low-pob",
                "pob-queue",
                priority=-1,
                requests={CPU: "5"},
                admitted=adm("pob-cq", cpu=("on-demand", "5000m")),
            ),
            wl("default/high-pob", "pob-queue", priority=0, requests={CPU: "5"}),
        ),
        want_assignments={"default/low-pob": adm("pob-cq", cpu=("on-demand", "5000m"))},
        want_preempted={"default/low-pob": IN_CLUSTER_QUEUE},
        want_left={"pob-cq": ["default/high-pob"]},
        want_messages={
            "default/high-pob": "couldn't assign flavors to pod set main: insufficient unused quota for cpu "
            "in flavor on-demand, 5 more needed. Pending the preemption of 1 workload(s)",
        },
    ),
    # scheduler_test.go TestSchedule "PreemptionOverBorrowing preference: select fitting second flavor over
    # first flavor with no preemption candidates"
    # (nopc-root (spot: 5) -> nopc-mid -> {nopc-cq, nopc-sibling (on-demand: 5, idle)})
    "PreemptionOverBorrowing preference: select fitting second flavor over first flavor with no preemption "
    "candidates": Case(
        cohorts=(
            cohort("nopc-root", {"on-demand": {CPU: "0"}, "spot": {CPU: "5"}}),
            cohort("nopc-mid", parent="nopc-root"),
        ),
        cluster_queues=(
            cq(
                "nopc-cq",
                {"on-demand": {CPU: ("5", "0")}, "spot": {CPU: "0"}},
                cohort="nopc-mid",
                within=LOWER_PRIORITY,
                when_can_borrow=TRY_NEXT_FLAVOR,
                when_can_preempt=TRY_NEXT_FLAVOR,
                preference="PreemptionOverBorrowing",
            ),
            cq("nopc-sibling", {"on-demand": {CPU: "5"}, "spot": {CPU: "0"}}, cohort="nopc-mid"),
        ),
        local_queues=(lq("nopc-queue", "default", "nopc-cq"),),
        workloads=(
            wl(
                "default/admitted-nopc",
                "nopc-queue",
                priority=0,
                requests={CPU: "5"},
                admitted=adm("nopc-cq", cpu=("on-demand", "5000m")),
            ),
            wl("default/pending-nopc", "nopc-queue", priority=0, requests={CPU: "5"}),
        ),
        want_assignments={
            "default/admitted-nopc": adm("nopc-cq", cpu=("on-demand", "5000m")),
            "default/pending-nopc": adm("nopc-cq", cpu=("spot", "5000m")),
        },
    ),
    # scheduler_test.go TestSchedule "BorrowingOverPreemption preference: borrow in second flavor instead
    # of preempting in first"
    "BorrowingOverPreemption preference: borrow in second flavor instead of preempting in first": Case(
        cluster_queues=(
            cq(
                "bop-cq",
                {"on-demand": {CPU: ("5", "0")}, "spot": {CPU: ("0", "5")}},
                cohort="bop-cohort",
                within=LOWER_PRIORITY,
                when_can_borrow=TRY_NEXT_FLAVOR,
                when_can_preempt=TRY_NEXT_FLAVOR,
                preference="BorrowingOverPreemption",
            ),
            cq("bop-lender", {"on-demand": {CPU: "0"}, "spot": {CPU: "5"}}, cohort="bop-cohort"),
        ),
        local_queues=(lq("bop-queue", "default", "bop-cq"),),
        workloads=(
            wl(
                "default/low-bop",
                "bop-queue",
                priority=-1,
                requests={CPU: "5"},
                admitted=adm("bop-cq", cpu=("on-demand", "5000m")),
            ),
            wl("default/high-bop", "bop-queue", priority=0, requests={CPU: "5"}),
        ),
        want_assignments={
            "default/low-bop": adm("bop-cq", cpu=("on-demand", "5000m")),
            "default/high-bop": adm("bop-cq", cpu=("spot", "5000m")),
        },
    ),
    # scheduler_test.go TestSchedule "prevent integer overflow when sum of requests over podsets exceeds
    # MaxInt64"
    "prevent integer overflow when sum of requests over podsets exceeds MaxInt64": Case(
        cluster_queues=(cq("overflow-cq", {"default": {CPU: "10000"}}),),
        local_queues=(lq("overflow-queue", "default", "overflow-cq"),),
        workloads=(
            wl(
                "default/vuln-wl",
                "overflow-queue",
                pod_sets=[ps("ps1", 1, {CPU: "1000000m"}), ps("ps2", 1, {CPU: "9223372036854775000m"})],
            ),
        ),
        want_inadmissible={"overflow-cq": ["default/vuln-wl"]},
        want_messages={
            "default/vuln-wl": "couldn't assign flavors to pod set ps2: insufficient quota for cpu in flavor "
            "default, previously considered podsets requests (1k) + current podset request "
            "(9223372036854775) > maximum capacity (10k)",
        },
    ),
    # scheduler_test.go TestSchedule "prevent integer overflow in ResourceValue conversion to MilliValue"
    "prevent integer overflow in ResourceValue conversion to MilliValue": Case(
        cluster_queues=(cq("overflow-cq", {"default": {CPU: "10"}}),),
        local_queues=(lq("overflow-queue", "default", "overflow-cq"),),
        workloads=(
            wl("default/vuln-wl", "overflow-queue", pod_sets=[ps("ps1", 1, {CPU: "9223372036854776"})]),
        ),
        want_inadmissible={"overflow-cq": ["default/vuln-wl"]},
        want_messages={
            "default/vuln-wl": "couldn't assign flavors to pod set ps1: insufficient quota for cpu in flavor "
            "default, previously considered podsets requests (0) + current podset request "
            "(9223372036854775807m) > maximum capacity (10)",
        },
    ),
}

# Cases in scope that budcore decides differently: the concrete difference, with the number of
# the behaviour of issue #20 it falls under where one applies.
DIFFERENCES: dict[str, str] = {
    "workload should not fit in clusterQueue with nonexistent flavor": (
        "Kueue keeps sales/foo queued in ClusterQueue flavor-nonexistent-cq (inactive: its ResourceFlavor "
        "does not exist); budcore's QueueConfig.build refuses a ClusterQueue that names a missing "
        "ResourceFlavor, so that ClusterQueue and its LocalQueue flavor-nonexistent-queue cannot exist and "
        "the workload cannot be queued at all"
    ),
}


@pytest.mark.parametrize("name", params(KUEUE_CASES, CASES, OUT_OF_SCOPE, DIFFERENCES))
def test_schedule(name: str) -> None:
    """scheduler_test.go TestSchedule: one admission cycle per case."""
    check(FIXTURES, CASES[name])
