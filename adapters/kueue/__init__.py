"""Kueue/Kubernetes adapter: budcore's queues, jobs and fleet in a cluster running Kueue.

- :mod:`.client` — :class:`KubeClient`, a small generic REST client (over the official client's
  ``ApiClient`` for kubeconfig auth), the resource catalogue and the one-line :class:`KubeError`;
- :mod:`.render` / :mod:`.apply` / :mod:`.cli` — render budcore's queue configuration as Kueue
  objects, diff and server-side apply them (``budcore kueue render|diff|apply``);
- :mod:`.submit` / :mod:`.sync` — budcore jobs as Kubernetes workloads, and the watch-based status
  reconciler that brings Kueue's decisions back into budcore;
- :mod:`.fleet` — budcore's fleet and hardware profiles from the cluster's nodes;
- :mod:`.dispatch` — :class:`~.dispatch.Dispatcher`, MultiKueue-style dispatch of jobs over
  several clusters (first to admit, or cheapest with room; lost clusters' jobs requeued).

Needs the ``kueue`` extra (``pip install 'budcore[kueue]'``). Re-exports are lazy so that importing
the package (the plugin entry point does, even to list plugins) imports neither ``kubernetes`` nor
the heavier submodules.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .client import (
        JOBS,
        JOBSETS,
        NAMESPACES,
        NODES,
        PODS,
        KubeClient,
        KubeError,
        ResourceType,
        WatchEvent,
        WatchExpired,
        kueue_type,
        resource_type_for,
    )

_EXPORTS = {
    name: "client"
    for name in (
        "JOBS",
        "JOBSETS",
        "NAMESPACES",
        "NODES",
        "PODS",
        "KubeClient",
        "KubeError",
        "ResourceType",
        "WatchEvent",
        "WatchExpired",
        "kueue_type",
        "resource_type_for",
    )
}

__all__ = [
    "JOBS",
    "JOBSETS",
    "NAMESPACES",
    "NODES",
    "PODS",
    "KubeClient",
    "KubeError",
    "ResourceType",
    "WatchEvent",
    "WatchExpired",
    "kueue_type",
    "resource_type_for",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value
