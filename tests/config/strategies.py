"""Hypothesis strategies for Kueue queue configurations (``QueueConfig``).

Every generated configuration is one Kueue itself would accept, so it must survive a dump/load
round trip unchanged: references resolve (ClusterQueues name existing flavors, LocalQueues
existing ClusterQueues), cohort parents form a forest (implicit cohorts, named but not defined,
are included on purpose), borrowing/lending limits appear only on ClusterQueues with a cohort,
``lendingLimit <= nominalQuota``, and preemption/taint/toleration settings satisfy the CRDs' CEL
rules. Amounts are arbitrary non-negative milli-units, including fractional ones (``1234m``) and
exact binary sizes of memory (``64Gi``), so the quantity formatting is exercised both ways.

Reusable by other suites: ``from tests.config.strategies import queue_configs``.
"""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

from budcore.scheduling.queues import (
    BorrowWithinCohort,
    BorrowWithinCohortPolicy,
    ClusterQueue,
    ClusterQueuePreemption,
    Cohort,
    FairSharing,
    FlavorFungibility,
    FlavorQuotas,
    FungibilityAction,
    LocalQueue,
    QueueConfig,
    QueueingStrategy,
    ReclaimWithinCohort,
    ResourceFlavor,
    ResourceGroup,
    ResourceQuota,
    StopPolicy,
    WithinClusterQueue,
    WorkloadPriorityClass,
)

RESOURCES = ("cpu", "memory", "nvidia.com/gpu", "amd.com/gpu", "ephemeral-storage", "example.com/widget")
LABEL_KEYS = (
    "nvidia.com/gpu.product",
    "topology.kubernetes.io/zone",
    "node.kubernetes.io/instance-type",
    "tier",
)
TAINT_EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")
INT32 = st.integers(-(2**31), 2**31 - 1)

# DNS-1123 labels and subdomains (object names), including dotted names.
dns_labels = st.builds(
    lambda first, middle, last: first + (middle + last if middle else ""),
    st.sampled_from("abcdefgxyz"),
    st.text("abz09-", max_size=9),
    st.sampled_from("az09"),
)
dns_subdomains = st.one_of(dns_labels, st.tuples(dns_labels, dns_labels).map(".".join))
label_values = st.builds(
    lambda first, middle, last: first + (middle + last if middle else ""),
    st.sampled_from("aZ09"),
    st.text("aZ09-_.", max_size=12),
    st.sampled_from("aZ09"),
)
free_text = st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), max_size=40)

# Milli-units: small ones (often fractional), whole units, and exact binary byte sizes.
amounts = st.one_of(
    st.integers(0, 10**7),
    st.integers(0, 10**6).map(lambda n: n * 1000),
    st.tuples(st.integers(1, 1024), st.sampled_from([2**10, 2**20, 2**30, 2**40])).map(
        lambda t: t[0] * t[1] * 1000
    ),
)
weights = st.one_of(st.just(1000), st.integers(0, 10**6))
optional_amounts = st.none() | amounts
optional_int32 = st.none() | INT32
optional_subdomains = st.none() | dns_subdomains
label_maps = st.dictionaries(st.sampled_from(LABEL_KEYS), label_values, max_size=4)


def fair_sharing() -> st.SearchStrategy[FairSharing]:
    return weights.map(lambda w: FairSharing(weight=w))


@st.composite
def taints(draw: st.DrawFn) -> dict[str, str]:
    taint = {"key": draw(st.sampled_from(LABEL_KEYS)), "effect": draw(st.sampled_from(TAINT_EFFECTS))}
    if draw(st.booleans()):
        taint["value"] = draw(label_values)
    return taint


@st.composite
def tolerations(draw: st.DrawFn) -> dict[str, str]:
    operator = draw(st.sampled_from([None, "Equal", "Exists"]))
    toleration: dict[str, str] = {}
    if operator is not None:
        toleration["operator"] = operator
    if operator == "Exists" and draw(st.booleans()):
        pass  # no key: tolerate every taint
    else:
        toleration["key"] = draw(st.sampled_from(LABEL_KEYS))
    if operator != "Exists" and draw(st.booleans()):
        toleration["value"] = draw(label_values)
    effect = draw(st.sampled_from([None, *TAINT_EFFECTS]))
    if effect is not None:
        toleration["effect"] = effect
        if effect == "NoExecute" and draw(st.booleans()):
            toleration["tolerationSeconds"] = str(draw(st.integers(0, 10**6)))
    return toleration


@st.composite
def resource_flavors(draw: st.DrawFn, name: str) -> ResourceFlavor:
    labels = draw(label_maps)
    return ResourceFlavor(
        name=name,
        node_labels=labels,
        node_taints=tuple(draw(st.lists(taints(), max_size=3))),
        tolerations=tuple(draw(st.lists(tolerations(), max_size=3))),
        topology_name=draw(optional_subdomains) if labels else None,
    )


@st.composite
def resource_groups(draw: st.DrawFn, flavor_names: list[str], *, limits: bool) -> tuple[ResourceGroup, ...]:
    """Disjoint groups over a subset of the resources and flavors (each used at most once)."""
    if not flavor_names:
        return ()
    resources = draw(st.lists(st.sampled_from(RESOURCES), unique=True, min_size=1, max_size=4))
    flavors = draw(st.permutations(flavor_names))
    count = draw(st.integers(1, min(len(resources), len(flavors), 3)))
    groups = []
    for gi in range(count):
        covered = resources[gi::count]
        group_flavors = flavors[gi::count][: draw(st.integers(1, 3))]
        flavor_quotas = []
        for flavor in group_flavors:
            quotas = []
            for resource in covered:
                nominal = draw(amounts)
                borrowing = draw(optional_amounts) if limits else None
                lending = draw(st.none() | st.integers(0, nominal)) if limits else None
                quotas.append(
                    ResourceQuota(
                        name=resource, nominal_quota=nominal, borrowing_limit=borrowing, lending_limit=lending
                    )
                )
            flavor_quotas.append(FlavorQuotas(name=flavor, resources=tuple(quotas)))
        groups.append(ResourceGroup(covered_resources=tuple(covered), flavors=tuple(flavor_quotas)))
    return tuple(groups)


@st.composite
def preemptions(draw: st.DrawFn) -> ClusterQueuePreemption:
    reclaim = draw(st.sampled_from(list(ReclaimWithinCohort)))
    # CEL rule of the CRD: borrowWithinCohort needs reclaimWithinCohort other than Never.
    policy = (
        BorrowWithinCohortPolicy.NEVER
        if reclaim is ReclaimWithinCohort.NEVER
        else draw(st.sampled_from(list(BorrowWithinCohortPolicy)))
    )
    return ClusterQueuePreemption(
        within_cluster_queue=draw(st.sampled_from(list(WithinClusterQueue))),
        reclaim_within_cohort=reclaim,
        borrow_within_cohort=BorrowWithinCohort(policy=policy, max_priority_threshold=draw(optional_int32)),
    )


@st.composite
def queue_configs(draw: st.DrawFn, max_cluster_queues: int = 5) -> QueueConfig:
    """A complete, valid ``QueueConfig`` (possibly empty) that Kueue would accept."""
    names = st.lists(dns_subdomains, unique=True, max_size=5)
    flavor_names = draw(names)
    flavors = [draw(resource_flavors(name)) for name in flavor_names]

    cohort_names = draw(names)
    # Generated names start with a letter, so a leading digit keeps implicit names distinct.
    implicit = [f"0{n}" for n in draw(st.lists(dns_labels, unique=True, max_size=2))]
    cohorts = []
    for i, name in enumerate(cohort_names):
        # Parents come from earlier cohorts or implicit ones, so the parent graph is a forest.
        parent = draw(st.none() | st.sampled_from([*cohort_names[:i], *implicit] or [None]))
        cohorts.append(
            Cohort(
                name=name,
                parent=parent,
                # Kueue allows borrowing/lending limits only below a parent.
                resource_groups=draw(resource_groups(flavor_names, limits=parent is not None)),
                fair_sharing=draw(fair_sharing()),
            )
        )

    cq_names = draw(st.lists(dns_subdomains, unique=True, max_size=max_cluster_queues))
    cluster_queues = []
    for name in cq_names:
        cohort = draw(st.none() | st.sampled_from([*cohort_names, *implicit] or [None]))
        cluster_queues.append(
            ClusterQueue(
                name=name,
                cohort=cohort,
                resource_groups=draw(resource_groups(flavor_names, limits=cohort is not None)),
                queueing_strategy=draw(st.sampled_from(list(QueueingStrategy))),
                preemption=draw(preemptions()),
                flavor_fungibility=FlavorFungibility(
                    when_can_borrow=draw(st.sampled_from(list(FungibilityAction))),
                    when_can_preempt=draw(st.sampled_from(list(FungibilityAction))),
                ),
                fair_sharing=draw(fair_sharing()),
                namespace_selector=draw(
                    st.none() | st.dictionaries(st.sampled_from(LABEL_KEYS), label_values, max_size=3)
                ),
                stop_policy=draw(st.sampled_from(list(StopPolicy))),
                admission_fair_sharing=draw(st.booleans()),
            )
        )

    local_queues: list[LocalQueue] = []
    if cq_names:
        keys = draw(st.lists(st.tuples(dns_labels, dns_subdomains), unique=True, max_size=6))
        local_queues = [
            LocalQueue(
                name=name,
                namespace=namespace,
                cluster_queue=draw(st.sampled_from(cq_names)),
                stop_policy=draw(st.sampled_from(list(StopPolicy))),
                fair_sharing=draw(fair_sharing()),
            )
            for namespace, name in keys
        ]

    priority_classes = [
        WorkloadPriorityClass(name=name, value=draw(INT32), description=draw(free_text))
        for name in draw(names)
    ]
    return QueueConfig.build(
        flavors=flavors,
        cluster_queues=cluster_queues,
        cohorts=cohorts,
        local_queues=local_queues,
        priority_classes=priority_classes,
    )


def object_names(config: QueueConfig) -> dict[str, list[Any]]:
    """Names per kind in the order ``dump_queue_config`` must write them."""
    return {
        "ResourceFlavor": sorted(config.flavors),
        "Cohort": sorted(config.cohorts),
        "ClusterQueue": sorted(config.cluster_queues),
        "LocalQueue": [f"{ns}/{name}" for ns, name in sorted(config.local_queues)],
        "WorkloadPriorityClass": sorted(config.priority_classes),
    }
