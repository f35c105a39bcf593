"""The embedded default: jobs, admission ledger, cluster, clock and events in process memory.

The names are imported on first use (PEP 562): loading the plugin (``budcore --help`` does) must
not import the scheduler.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .clock import ManualClock, SystemClock
    from .cluster import InMemoryClusterBackend
    from .events import CollectingEventSink, NullEventSink
    from .job_store import InMemoryJobStore
    from .ledger import InMemoryAdmissionLedger

_MODULES = {
    "CollectingEventSink": ".events",
    "InMemoryAdmissionLedger": ".ledger",
    "InMemoryClusterBackend": ".cluster",
    "InMemoryJobStore": ".job_store",
    "ManualClock": ".clock",
    "NullEventSink": ".events",
    "SystemClock": ".clock",
}
__all__ = [
    "CollectingEventSink",
    "InMemoryAdmissionLedger",
    "InMemoryClusterBackend",
    "InMemoryJobStore",
    "ManualClock",
    "NullEventSink",
    "SystemClock",
]


def __getattr__(name: str) -> Any:
    module = _MODULES.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(module, __name__), name)
