"""Errors the PostgreSQL adapter raises, all inside budcore's one hierarchy.

Driver exceptions (``sqlalchemy.exc.*``, ``psycopg.*``) never reach a caller: a service catches
``BudcoreError`` and gets a message naming the database (password masked) and what to do.
"""

from __future__ import annotations

from collections.abc import Sequence

from budcore.domain.errors import BudcoreError, InvalidTransitionError, ValidationError


class DatabaseError(BudcoreError):
    """The database refused an operation for a reason that is not a domain rule."""


class DatabaseUnavailableError(DatabaseError):
    """The database cannot be reached (wrong URL, server down, network, authentication)."""


class SchemaVersionError(DatabaseError):
    """The database schema is not at the revision this code needs (run ``budcore db upgrade``)."""


class QuotaUnavailableError(BudcoreError):
    """Admission lost a race for quota: the rows no longer have room for the job *right now*.

    Not a :class:`~budcore.domain.errors.QuotaRejectedError` (which means "can never fit"): another
    replica admitted something first, so the scheduler should recompute with fresh usage.
    """

    def __init__(self, cluster_queue: str, flavor: str, resource: str, requested: int, free: int) -> None:
        self.cluster_queue = cluster_queue
        self.flavor = flavor
        self.resource = resource
        self.requested = requested
        self.free = free
        super().__init__(
            f"quota {cluster_queue}/{flavor}/{resource}: requested {requested}m, only {free}m free"
        )


class QuotaRangeError(ValidationError):
    """A quota amount the ledger cannot store: its rows hold ``BIGINT`` milli-units (< 2**63).

    ``scope`` is the ClusterQueue (or ``cohort:<name>``), with ``flavor`` and ``resource``;
    ``amount`` is the offending value in milli-units. Raised before anything is written.
    """

    def __init__(self, scope: str, flavor: str, resource: str, amount: int, what: str, *, path: str) -> None:
        self.scope = scope
        self.flavor = flavor
        self.resource = resource
        self.amount = amount
        super().__init__(
            f"{what} of {resource} in flavor {flavor!r} for {scope!r} is {amount} milli-units, "
            f"more than the quota ledger can hold (at most 2**63 - 1 = {2**63 - 1} milli-units)",
            path=path,
        )


class QuotaInUseError(BudcoreError):
    """A quota sync would delete quota rows that admitted or running jobs still hold.

    ``rows`` lists ``(row, used milli-units, holding jobs)``; nothing was changed.
    """

    def __init__(self, rows: Sequence[tuple[str, int, int]]) -> None:
        self.rows = list(rows)
        listed = ", ".join(f"{row} (used {used}m by {jobs} job(s))" for row, used, jobs in self.rows)
        super().__init__(
            f"cannot remove quota rows that are still in use: {listed}; let those jobs finish or "
            "requeue them first (nothing was changed)"
        )


class LedgerAdmissionRequiredError(InvalidTransitionError):
    """A plain store write into a quota-holding state while the quota ledger is in use.

    The quota would be held without being counted, so the store refuses: admit through
    :meth:`~.admission.AdmissionLedger.admit`, which reserves the quota in the same transaction.
    """

    def __init__(self, job_id: str, from_state: str, to_state: str) -> None:
        super().__init__(
            job_id,
            from_state,
            to_state,
            "this database's quota is managed by the admission ledger; admit with "
            "AdmissionLedger.admit(job, cluster_queue=..., flavors=..., now=...) so the quota is "
            "reserved (or build the store with require_ledger=False)",
        )


class LeaseLostError(BudcoreError):
    """A lease renewal for a job whose lease expired, was released or belongs to another holder."""
