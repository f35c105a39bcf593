"""Registers the in-memory adapter through the ``budcore.plugins`` entry point.

Every factory is lazy: registering (``budcore plugins``, ``budcore --help``) imports no adapter module.
"""

from __future__ import annotations

from collections.abc import Mapping

from budcore.plugins import hookimpl, lazy_factory
from budcore.plugins.hookspecs import Factory


@hookimpl
def budcore_register_job_stores() -> Mapping[str, Factory]:
    return {"inmemory": lazy_factory(".job_store:InMemoryJobStore", package=__package__)}


@hookimpl
def budcore_register_cluster_backends() -> Mapping[str, Factory]:
    return {"inmemory": lazy_factory(".cluster:InMemoryClusterBackend", package=__package__)}


@hookimpl
def budcore_register_event_sinks() -> Mapping[str, Factory]:
    return {
        "null": lazy_factory(".events:NullEventSink", package=__package__),
        "memory": lazy_factory(".events:CollectingEventSink", package=__package__),
    }


@hookimpl
def budcore_register_admission_ledgers() -> Mapping[str, Factory]:
    return {"inmemory": lazy_factory(".ledger:InMemoryAdmissionLedger", package=__package__)}


@hookimpl
def budcore_register_reservation_stores() -> Mapping[str, Factory]:
    return {"inmemory": lazy_factory(".reservations:InMemoryReservationStore", package=__package__)}


@hookimpl
def budcore_register_pipeline_stores() -> Mapping[str, Factory]:
    return {"inmemory": lazy_factory(".pipelines:InMemoryPipelineStore", package=__package__)}
