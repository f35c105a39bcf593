"""PostgreSQL adapter: durable, multi-replica-safe job store (installs as ``budcore_adapters.postgres``).

- :class:`PostgresJobStore` — the ``JobStore`` port, with a transactional outbox;
- :class:`OutboxDispatcher` — delivers outbox events exactly once across dispatchers;
- :class:`AdmissionLedger` — quota reservations with row locks, admission leases, reconciliation;
- :mod:`.migrate` — Alembic migrations shipped in the package (:func:`upgrade`, :func:`downgrade`,
  :func:`current_revision`, :func:`check_schema`);
- :class:`~.tempserver.TemporaryPostgres` — a throwaway server for tests and benchmarks.

Needs the ``postgres`` extra (SQLAlchemy 2, psycopg 3, Alembic).
"""

from .admission import Admission, AdmissionLedger
from .engine import DEFAULT_CONNECT_TIMEOUT, ENV_URL, PoolSettings, create_engine, resolve_url
from .errors import (
    DatabaseError,
    DatabaseUnavailableError,
    LeaseLostError,
    LedgerAdmissionRequiredError,
    QuotaInUseError,
    QuotaRangeError,
    QuotaUnavailableError,
    SchemaVersionError,
)
from .job_store import PostgresJobStore
from .migrate import check_schema, current_revision, downgrade, head_revision, revisions, upgrade
from .outbox import OutboxDispatcher, OutboxStats
from .quota import QuotaKey, QuotaUsage, cohort_scope
from .records import Lease, LeasePolicy

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
    "OutboxDispatcher",
    "OutboxStats",
    "PoolSettings",
    "PostgresJobStore",
    "QuotaInUseError",
    "QuotaKey",
    "QuotaRangeError",
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
