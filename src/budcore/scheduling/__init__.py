"""Kueue-compatible admission: quota tree, flavor assignment, fair sharing, the scheduling cycle.

Import the pieces from here: :class:`Scheduler` (stateful façade), :func:`schedule` (the pure
cycle), the queue model (:class:`QueueConfig` and friends) and the decision types.
"""

from budcore.scheduling.assignment import AcceleratorMatcher, Assignment, Mode, assign_flavors
from budcore.scheduling.cycle import schedule
from budcore.scheduling.fair_sharing import LocalQueueUsage, dominant_resource_share
from budcore.scheduling.pending import PendingQueues, PendingWorkload
from budcore.scheduling.queues import (
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
    ResourceFlavor,
    ResourceGroup,
    ResourceQuota,
    StopPolicy,
    WorkloadPriorityClass,
)
from budcore.scheduling.quota import QuotaTree, QuotaUsage, available, potential_available
from budcore.scheduling.scheduler import Scheduler
from budcore.scheduling.snapshot import (
    AdmissionPolicy,
    AdmissionSnapshot,
    Admit,
    AdmittedWorkload,
    CycleResult,
    Decision,
    Evict,
    NeedsPreemption,
    StaysPending,
)

__all__ = [
    "AcceleratorMatcher",
    "AdmissionPolicy",
    "AdmissionSnapshot",
    "Admit",
    "AdmittedWorkload",
    "Assignment",
    "ClusterQueue",
    "ClusterQueuePreemption",
    "Cohort",
    "CycleResult",
    "Decision",
    "Evict",
    "FairSharing",
    "FlavorFungibility",
    "FlavorQuotas",
    "FungibilityAction",
    "LocalQueue",
    "LocalQueueUsage",
    "Mode",
    "NeedsPreemption",
    "PendingQueues",
    "PendingWorkload",
    "QueueConfig",
    "QueueingStrategy",
    "QuotaTree",
    "QuotaUsage",
    "ResourceFlavor",
    "ResourceGroup",
    "ResourceQuota",
    "Scheduler",
    "StaysPending",
    "StopPolicy",
    "WorkloadPriorityClass",
    "assign_flavors",
    "available",
    "dominant_resource_share",
    "potential_available",
    "schedule",
]
