"""Priority classes and their numeric values.

``critical > high > normal > low > spot`` with the values 1000/100/10/1/0. The numeric value is
what Kueue compares (a ``WorkloadPriorityClass`` carries an integer ``value``), so each class maps
one-to-one onto a Kueue WorkloadPriorityClass named ``budcore-<class>``.

A job may instead name any ``WorkloadPriorityClass`` of the queue configuration (``Job.priority_class``
or the Kueue label ``kueue.x-k8s.io/priority-class``, :data:`PRIORITY_CLASS_LABEL`); the scheduler
resolves it at submit into ``Job.workload_priority`` (Kueue's ``Workload.spec.priority``), the one
value used for queue order *and* preemption. Kueue: "The priority of workloads is used for: sorting
the workloads in the ClusterQueues; determining whether a workload can preempt others"
(kubernetes-sigs/kueue ``site/content/en/docs/concepts/workload_priority_class.md``; the value is
read in ``pkg/util/priority/priority.go`` ``GetPriorityFromWorkloadPriorityClass``).

**The critical rule.** "Never preempted" is keyed by the *class*, never by the number: a job is
protected iff ``Job.priority is JobPriority.CRITICAL`` (``VictimInfo.from_job``). A custom class with
a value above 1000 neither protects its jobs nor makes a critical job a candidate for a preemptor
with that value (the guard excludes critical jobs before any priority comparison). A critical job
must not carry a priority value below critical's (:func:`check_critical_value`), so the value-keyed
fallback of ``preemption.find_victims`` (for callers that pass no per-job facts: value >= 1000)
protects it too.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final

#: The label a Kueue job uses to name its ``WorkloadPriorityClass``.
PRIORITY_CLASS_LABEL: Final = "kueue.x-k8s.io/priority-class"

#: Kueue's priority fields are int32 (``WorkloadPriorityClass.value``, ``Workload.spec.priority``).
PRIORITY_MIN: Final = -(2**31)
PRIORITY_MAX: Final = 2**31 - 1


class JobPriority(StrEnum):
    CRITICAL = "critical"
    HIGH = "high"
    NORMAL = "normal"
    LOW = "low"
    SPOT = "spot"

    @property
    def value_int(self) -> int:
        """The numeric priority Kueue compares (higher wins)."""
        return PRIORITY_VALUES[self]

    @property
    def kueue_class_name(self) -> str:
        """Name of the matching Kueue ``WorkloadPriorityClass``."""
        return f"budcore-{self.value}"

    @classmethod
    def from_value(cls, value: int) -> JobPriority:
        """The highest class whose value does not exceed ``value`` (spot for anything below 1)."""
        for klass in cls:  # declared from highest to lowest
            if value >= PRIORITY_VALUES[klass]:
                return klass
        return cls.SPOT

    @classmethod
    def from_kueue_class_name(cls, name: str) -> JobPriority | None:
        """The built-in class named ``budcore-<class>`` (see :attr:`kueue_class_name`), else None."""
        return _BY_KUEUE_NAME.get(name)


PRIORITY_VALUES: dict[JobPriority, int] = {
    JobPriority.CRITICAL: 1000,
    JobPriority.HIGH: 100,
    JobPriority.NORMAL: 10,
    JobPriority.LOW: 1,
    JobPriority.SPOT: 0,
}

_BY_KUEUE_NAME: dict[str, JobPriority] = {p.kueue_class_name: p for p in JobPriority}


def check_critical_value(priority: JobPriority, value: int | None) -> str | None:
    """Why ``value`` cannot be the priority value of a job of class ``priority`` (None: it can).

    A critical job outranks every preemptible one: its value is at least critical's (1000).
    """
    floor = PRIORITY_VALUES[JobPriority.CRITICAL]
    if priority is JobPriority.CRITICAL and value is not None and value < floor:
        return (
            f"a critical job needs a priority value of at least {floor}, got {value} "
            "(critical jobs are never preempted and outrank every other class)"
        )
    return None


def kueue_priority_classes() -> list[dict[str, object]]:
    """The five classes as Kueue ``WorkloadPriorityClass`` documents (kueue.x-k8s.io/v1beta1)."""
    return [
        {
            "apiVersion": "kueue.x-k8s.io/v1beta1",
            "kind": "WorkloadPriorityClass",
            "metadata": {"name": p.kueue_class_name},
            "value": p.value_int,
            "description": f"budcore priority class {p.value}",
        }
        for p in JobPriority
    ]
