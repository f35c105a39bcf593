"""Errors the PostgreSQL adapter raises, all inside budcore's one hierarchy.

Driver exceptions (``sqlalchemy.exc.*``, ``psycopg.*``) never reach a caller: a service catches
``BudcoreError`` and gets a message naming the database (password masked) and what to do.
"""

from __future__ import annotations

from budcore.domain.errors import BudcoreError


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


class LeaseLostError(BudcoreError):
    """A lease renewal for a job whose lease expired, was released or belongs to another holder."""
