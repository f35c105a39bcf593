"""Errors the PostgreSQL adapter raises, all inside budcore's one hierarchy.

Driver exceptions (``sqlalchemy.exc.*``, ``psycopg.*``) never reach a caller: a service catches
``BudcoreError`` and gets a message naming the database (password masked) and what to do.
"""

from __future__ import annotations

from budcore.domain.errors import BudcoreError, InvalidTransitionError, ValidationError

# The ledger port's errors, raised by this adapter too (one class each across every ledger).
from budcore.ports.admission_ledger import (
    LocalQueueMismatchError as LocalQueueMismatchError,
)
from budcore.ports.admission_ledger import QuotaInUseError as QuotaInUseError
from budcore.ports.admission_ledger import QuotaUnavailableError as QuotaUnavailableError


class DatabaseError(BudcoreError):
    """The database refused an operation for a reason that is not a domain rule."""


class DatabaseUnavailableError(DatabaseError):
    """The database cannot be reached (wrong URL, server down, network, authentication)."""


class SchemaVersionError(DatabaseError):
    """The database schema is not at the revision this code needs (run ``budcore db upgrade``)."""


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


class LedgerAdmissionRequiredError(InvalidTransitionError):
    """A plain store write into a quota-holding state while the quota ledger is in use.

    The quota would be held without being counted, so the store refuses: admit through
    :meth:`~.admission.PostgresAdmissionLedger.admit`, which reserves the quota in the same transaction.
    """

    def __init__(self, job_id: str, from_state: str, to_state: str) -> None:
        super().__init__(
            job_id,
            from_state,
            to_state,
            "this database's quota is managed by the admission ledger; admit with "
            "PostgresAdmissionLedger.admit(job, cluster_queue=..., flavors=..., now=...) so the quota is "
            "reserved (or build the store with require_ledger=False)",
        )


class LeaseLostError(BudcoreError):
    """A lease renewal for a job whose lease expired, was released or belongs to another holder."""
