"""The embedded default: jobs, admission ledger, cluster, clock and events in process memory."""

from .clock import ManualClock, SystemClock
from .cluster import InMemoryClusterBackend
from .events import CollectingEventSink, NullEventSink
from .job_store import InMemoryJobStore
from .ledger import InMemoryAdmissionLedger

__all__ = [
    "CollectingEventSink",
    "InMemoryAdmissionLedger",
    "InMemoryClusterBackend",
    "InMemoryJobStore",
    "ManualClock",
    "NullEventSink",
    "SystemClock",
]
