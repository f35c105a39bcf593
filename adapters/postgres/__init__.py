"""PostgreSQL adapter: durable, multi-replica-safe job store (installs as ``budcore_adapters.postgres``).

- :class:`PostgresJobStore` — the ``JobStore`` port, with a transactional outbox;
- :class:`OutboxDispatcher` — delivers outbox events exactly once across dispatchers;
- :class:`AdmissionLedger` — quota reservations with row locks, admission leases, reconciliation;
- :mod:`.migrate` — Alembic migrations shipped in the package (:func:`upgrade`, :func:`downgrade`,
  :func:`current_revision`, :func:`check_schema`);
- :class:`~.tempserver.TemporaryPostgres` — a throwaway server for tests and benchmarks.

Needs the ``postgres`` extra (SQLAlchemy 2, psycopg 3, Alembic).
"""

from .admission import Admission, AdmissionLedger, QuotaUsage, cohort_scope
from .engine import ENV_URL, PoolSettings, create_engine, resolve_url
from .errors import (
    DatabaseError,
    DatabaseUnavailableError,
    LeaseLostError,
    QuotaUnavailableError,
    SchemaVersionError,
)
from .job_store import PostgresJobStore
from .migrate import check_schema, current_revision, downgrade, head_revision, revisions, upgrade
from .outbox import OutboxDispatcher, OutboxStats
from .records import Lease, LeasePolicy, QuotaKey

__all__ = [
    "ENV_URL",
    "Admission",
    "AdmissionLedger",
    "DatabaseError",
    "DatabaseUnavailableError",
    "Lease",
    "LeaseLostError",
    "LeasePolicy",
    "OutboxDispatcher",
    "OutboxStats",
    "PoolSettings",
    "PostgresJobStore",
    "QuotaKey",
    "QuotaUnavailableError",
    "QuotaUsage",
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
