"""Priority classes and their numeric values.

``critical > high > normal > low > spot`` with the values 1000/100/10/1/0. The numeric value is
what Kueue compares (a ``WorkloadPriorityClass`` carries an integer ``value``), so each class maps
one-to-one onto a Kueue WorkloadPriorityClass named ``budcore-<class>``.
"""

from __future__ import annotations

from enum import StrEnum


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


PRIORITY_VALUES: dict[JobPriority, int] = {
    JobPriority.CRITICAL: 1000,
    JobPriority.HIGH: 100,
    JobPriority.NORMAL: 10,
    JobPriority.LOW: 1,
    JobPriority.SPOT: 0,
}


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
