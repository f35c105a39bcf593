"""Ports for money: where metered usage is kept, and how a budget-guarded submission is stored.

Why two ports: a finance report only *reads* usage (:class:`UsageLog`: a database, a simulation's
``usage.csv``), while the submission guard must *decide and write under one lock*
(:class:`SpendLedger`): several service replicas racing submissions against one tenant budget
must each see the spend and commitments the others stored, or two of them admit the job that
takes the tenant past its budget. The decision itself stays in the core
(:func:`budcore.cost.guard.check`); the ledger only brackets it with its lock or transaction.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from budcore.domain.events import DomainEvent
from budcore.domain.job import Job

if TYPE_CHECKING:  # budcore.cost imports the hardware catalog, which imports the ports
    from budcore.cost.metering import UsageRecord


@dataclass(frozen=True)
class TenantBook:
    """What a ledger read for one tenant under its lock: the decision's whole input from the store.

    ``usage``: the tenant's metered usage overlapping ``[since, until)`` (records still open end at
    ``until``); ``live``: its jobs that may still spend (pending, queued, admitted, running), whose
    projected cost beyond what they already metered is *committed* spend.
    """

    tenant: str
    since: datetime
    until: datetime
    usage: tuple[UsageRecord, ...]
    live: tuple[Job, ...]


@runtime_checkable
class UsageLog(Protocol):
    """Metered usage, read-only: what ``budcore cost report`` and budget reviews read."""

    def usage(self, start: datetime, end: datetime, *, tenant: str | None = None) -> list[UsageRecord]:
        """Records overlapping ``[start, end)`` (optionally of one tenant), clipped to it, each
        record still open ending at ``end``; in (start, job id) order."""
        ...


@runtime_checkable
class SpendLedger(UsageLog, Protocol):
    """A usage log that can also store a job only if a decision on the tenant's book allows it."""

    def guarded_create(
        self,
        job: Job,
        *,
        events: Sequence[DomainEvent],
        since: datetime,
        until: datetime,
        decide: Callable[[TenantBook], Sequence[DomainEvent] | None],
    ) -> Job:
        """Store ``job`` (as :meth:`JobStore.create <budcore.ports.JobStore.create>` does, idempotent
        by key) if ``decide`` returns; ``decide`` raises to refuse, and then nothing is stored.
        The events ``decide`` returns (a warning, say) are recorded after ``events``, in the same
        write as the job.

        ``decide`` is called with ``job.tenant``'s book over ``[since, until)`` (``until``: the
        decision instant, the service's clock), read
        under a lock held until the job is stored, so no two guarded creates of one tenant decide
        on the same book. A replayed submission (same tenant and idempotency key) returns the
        stored job without calling ``decide``.
        """
        ...


__all__ = ["SpendLedger", "TenantBook", "UsageLog"]
