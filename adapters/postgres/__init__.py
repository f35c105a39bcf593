"""PostgreSQL adapter: durable, multi-replica-safe job store (installs as ``budcore_adapters.postgres``).

- :class:`PostgresJobStore` — the ``JobStore`` port, with a transactional outbox;
- :class:`OutboxDispatcher` — delivers outbox events exactly once across dispatchers;
- :class:`PostgresSpendLedger` — the :class:`~budcore.ports.spend.SpendLedger` port: metered usage
  (written by the admission ledger) as usage records, and budget-guarded job creation under a
  per-tenant lock;
- :class:`PostgresAdmissionLedger` — the :class:`~budcore.ports.AdmissionLedger` port: quota
  reservations with row locks on the core's quota arithmetic, LocalQueue isolation, admission leases,
  reconciliation (``AdmissionLedger`` is its earlier name);
- :mod:`.migrate` — Alembic migrations shipped in the package (:func:`upgrade`, :func:`downgrade`,
  :func:`current_revision`, :func:`check_schema`);
- :class:`~.tempserver.TemporaryPostgres` — a throwaway server for tests and benchmarks.

Needs the ``postgres`` extra (SQLAlchemy 2, psycopg 3, Alembic).
"""

# Re-exports are lazy: importing the package (as the plugin entry point does, even to list
# plugins) must not import SQLAlchemy, so a base install without the ``postgres`` extra still runs
# ``budcore``; each name is imported from its module the first time it is used.
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .admission import Admission, AdmissionLedger, PostgresAdmissionLedger
    from .engine import DEFAULT_CONNECT_TIMEOUT, ENV_URL, PoolSettings, create_engine, resolve_url
    from .errors import (
        DatabaseError,
        DatabaseUnavailableError,
        LeaseLostError,
        LedgerAdmissionRequiredError,
        LocalQueueMismatchError,
        QuotaInUseError,
        QuotaRangeError,
        QuotaUnavailableError,
        SchemaVersionError,
    )
    from .job_store import PostgresJobStore
    from .migrate import check_schema, current_revision, downgrade, head_revision, revisions, upgrade
    from .outbox import OutboxDispatcher, OutboxStats
    from .quota import QuotaKey, QuotaRow, cohort_scope
    from .records import Lease, LeasePolicy
    from .spend import PostgresSpendLedger
_EXPORTS = {
    "Admission": "admission",
    "AdmissionLedger": "admission",
    "PostgresAdmissionLedger": "admission",
    "DEFAULT_CONNECT_TIMEOUT": "engine",
    "ENV_URL": "engine",
    "PoolSettings": "engine",
    "create_engine": "engine",
    "resolve_url": "engine",
    "DatabaseError": "errors",
    "DatabaseUnavailableError": "errors",
    "LeaseLostError": "errors",
    "LedgerAdmissionRequiredError": "errors",
    "LocalQueueMismatchError": "errors",
    "QuotaInUseError": "errors",
    "QuotaRangeError": "errors",
    "QuotaUnavailableError": "errors",
    "SchemaVersionError": "errors",
    "PostgresJobStore": "job_store",
    "check_schema": "migrate",
    "current_revision": "migrate",
    "downgrade": "migrate",
    "head_revision": "migrate",
    "revisions": "migrate",
    "upgrade": "migrate",
    "OutboxDispatcher": "outbox",
    "OutboxStats": "outbox",
    "QuotaKey": "quota",
    "QuotaRow": "quota",
    "cohort_scope": "quota",
    "Lease": "records",
    "LeasePolicy": "records",
    "PostgresSpendLedger": "spend",
}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])


__all__ = [
    "DEFAULT_CONNECT_TIMEOUT",
    "ENV_URL",
    "Admission",
    "AdmissionLedger",
    "DatabaseError",
    "DatabaseUnavailableError",
    "Lease",
    "LeaseLostError",
    "LeasePolicy",
    "LedgerAdmissionRequiredError",
    "LocalQueueMismatchError",
    "OutboxDispatcher",
    "OutboxStats",
    "PoolSettings",
    "PostgresAdmissionLedger",
    "PostgresJobStore",
    "PostgresSpendLedger",
    "QuotaInUseError",
    "QuotaKey",
    "QuotaRangeError",
    "QuotaRow",
    "QuotaUnavailableError",
    "SchemaVersionError",
    "check_schema",
    "cohort_scope",
    "create_engine",
    "current_revision",
    "downgrade",
    "head_revision",
    "resolve_url",
    "revisions",
    "upgrade",
]
