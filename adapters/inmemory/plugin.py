"""Registers the in-memory adapter through the ``budcore.plugins`` entry point."""

from __future__ import annotations

from collections.abc import Mapping

from budcore.plugins import hookimpl, lazy_factory
from budcore.plugins.hookspecs import Factory

from .cluster import InMemoryClusterBackend
from .events import CollectingEventSink, NullEventSink
from .job_store import InMemoryJobStore
from .ledger import InMemoryAdmissionLedger


@hookimpl
def budcore_register_job_stores() -> Mapping[str, Factory]:
    return {"inmemory": InMemoryJobStore}


@hookimpl
def budcore_register_cluster_backends() -> Mapping[str, Factory]:
    return {"inmemory": InMemoryClusterBackend}


@hookimpl
def budcore_register_event_sinks() -> Mapping[str, Factory]:
    return {"null": NullEventSink, "memory": CollectingEventSink}


@hookimpl
def budcore_register_admission_ledgers() -> Mapping[str, Factory]:
    return {"inmemory": InMemoryAdmissionLedger}


@hookimpl
def budcore_register_reservation_stores() -> Mapping[str, Factory]:
    return {"inmemory": lazy_factory(".reservations:InMemoryReservationStore", package=__package__)}


@hookimpl
def budcore_register_pipeline_stores() -> Mapping[str, Factory]:
    return {"inmemory": lazy_factory(".pipelines:InMemoryPipelineStore", package=__package__)}
