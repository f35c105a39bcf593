"""Ports: typed Protocols for everything outside the domain.

They carry domain types only; adapters (in-memory, PostgreSQL, Kueue, third-party) implement them.
"""

from budcore.ports.admission_ledger import AdmissionLeases, AdmissionLedger
from budcore.ports.clock import Clock
from budcore.ports.cluster_backend import ClusterBackend, SimulatedClusterBackend
from budcore.ports.event_sink import EventSink
from budcore.ports.job_store import ALL, JobFilter, JobStore
from budcore.ports.preemption_cost import PreemptionCost, PreemptionCostModel, VictimInfo
from budcore.ports.pricing import PricingSource
from budcore.ports.reservation_store import ReservationStore
from budcore.ports.simulated_cluster import SimulatedCluster
from budcore.ports.spend import SpendLedger, TenantBook, UsageLog

__all__ = [
    "ALL",
    "AdmissionLeases",
    "AdmissionLedger",
    "Clock",
    "ClusterBackend",
    "EventSink",
    "JobFilter",
    "JobStore",
    "PreemptionCost",
    "PreemptionCostModel",
    "PricingSource",
    "ReservationStore",
    "SimulatedCluster",
    "SimulatedClusterBackend",
    "SpendLedger",
    "TenantBook",
    "UsageLog",
    "VictimInfo",
]
