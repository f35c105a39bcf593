"""The embedded default: jobs, cluster, clock and events in process memory."""

from .clock import ManualClock, SystemClock
from .cluster import InMemoryClusterBackend
from .events import CollectingEventSink, NullEventSink
from .job_store import InMemoryJobStore

__all__ = [
    "CollectingEventSink",
    "InMemoryClusterBackend",
    "InMemoryJobStore",
    "ManualClock",
    "NullEventSink",
    "SystemClock",
]
