"""Hypothesis strategies for Kueue queue configurations: the public ones, plus a dump-order helper.

``queue_configs`` (and ``cluster_queues``, ``resource_flavors``) live in
:mod:`budcore.testing.strategies`; this module re-exports them for the config suite.
"""

from __future__ import annotations

from typing import Any

from budcore.scheduling.queues import QueueConfig
from budcore.testing.strategies import cluster_queues, queue_configs, resource_flavors

__all__ = ["cluster_queues", "object_names", "queue_configs", "resource_flavors"]


def object_names(config: QueueConfig) -> dict[str, list[Any]]:
    """Names per kind in the order ``dump_queue_config`` must write them."""
    return {
        "ResourceFlavor": sorted(config.flavors),
        "Cohort": sorted(config.cohorts),
        "ClusterQueue": sorted(config.cluster_queues),
        "LocalQueue": [f"{ns}/{name}" for ns, name in sorted(config.local_queues)],
        "WorkloadPriorityClass": sorted(config.priority_classes),
    }
