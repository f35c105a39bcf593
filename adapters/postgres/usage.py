"""Metering from real admissions: ``budcore_usage`` rows, opened and closed with the quota they meter.

A usage row says "job J held ``amount`` milli-units of (flavor, resource) in ClusterQueue Q from
``start_at`` to ``end_at``". Rows are written only by the transactions that move quota, so the
metered usage is exactly the quota the database granted — never an estimate, and never a second
writer that could disagree with the ledger:

- :meth:`~.admission.PostgresAdmissionLedger.reserve` / ``admit`` open one row per (flavor,
  resource) the job is charged in its ClusterQueue (:func:`meter_admission`, :func:`open_usage`),
  in the transaction that reserves it: a failed admission leaves no row;
- :func:`~.records.write_update` — the one path every status change takes (release, a plain
  store update out of ``admitted``/``running``, the lease reconciler's requeue) — closes the job's
  open rows (:func:`close_usage`) in the transaction that gives the quota back.

**Borrowed and lenders.** From the quota usage locked just before the admission, the part of the
admission above the ClusterQueue's nominal quota is *borrowed*:
``max(0, used_after − nominal) − max(0, used_before − nominal)``, and it is attributed to lenders
with the core chargeback rule, :func:`budcore.cost.chargeback.lenders_at` (the other ClusterQueues
of the cohort tree in proportion to their lendable unused quota, then cohort accounts), so a
report over the database prices borrowed usage exactly as one over a simulation does.

**Times** are the domain's: a row starts at the admission's ``now`` and ends at the ``updated_at``
of the job's transition out of a quota-holding state (never before it started), so the database's
usage agrees with the clock the scheduler and the tests run on.

**Reading** (:func:`read_usage`) turns rows into :class:`~budcore.cost.metering.UsageRecord` s:
see :func:`records_of` for which rows count and how milli-units become whole devices.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from budcore.cost.chargeback import lenders_at
from budcore.cost.metering import UsageRecord
from budcore.cost.prices import EXCLUSIVE, check_mode
from budcore.domain.errors import ValidationError
from budcore.domain.job import Job
from budcore.domain.resources import is_accelerator
from budcore.domain.timeutil import ensure_utc
from budcore.ports.admission_ledger import FlavorResource
from budcore.scheduling.quota import QuotaUsage

from .quota import QuotaForest
from .schema import usage

MILLI = 1000  # milli-units per whole device
MIG_RESOURCE_PREFIX = "nvidia.com/mig-"

u = usage.c


@dataclass(frozen=True, slots=True)
class Charge:
    """What one admission is charged of one (flavor, resource), in milli-units.

    ``borrowed`` is the part above the ClusterQueue's nominal quota, ``lenders`` who lent it
    (``{account: milli-units}``, adding up to ``borrowed``).
    """

    flavor: str
    resource: str
    amount: int
    borrowed: int = 0
    lenders: Mapping[str, int] = field(default_factory=dict)


def usage_before(
    forest: QuotaForest, charged: Mapping[FlavorResource, int]
) -> dict[FlavorResource, QuotaUsage]:
    """A copy of the locked usage of every charged (flavor, resource), taken before reserving.

    Reserving changes the forest's usage in place; metering needs the usage *before* the
    admission (borrowed amounts and the lenders' unused quota at that instant).
    """
    return {fr: forest.usage[fr].frozen() for fr in charged if fr in forest.usage}


def meter_admission(
    forest: QuotaForest,
    before: Mapping[FlavorResource, QuotaUsage],
    cluster_queue: str,
    charged: Mapping[FlavorResource, int],
) -> list[Charge]:
    """The usage rows an admission of ``charged`` into ``cluster_queue`` opens, in (flavor,
    resource) order, with their borrowed parts and lenders (see the module docstring).

    A ClusterQueue without a cohort never borrows: its admissions fit its own quota.
    """
    out: list[Charge] = []
    for fr, amount in sorted(charged.items()):
        if amount <= 0:
            continue
        tree = forest.trees[fr]
        node = tree.cluster_queues[cluster_queue]
        used = before[fr].get(node, fr)
        nominal = node.nominal.get(fr, 0)
        borrowed = 0
        lenders: dict[str, int] = {}
        if node.parent is not None:
            borrowed = max(0, used + amount - nominal) - max(0, used - nominal)
            if borrowed:
                lenders = lenders_at(tree, before[fr], cluster_queue, fr, amount)
        out.append(Charge(fr[0], fr[1], amount, borrowed, lenders))
    return out


def accelerator_of(job: Job, flavor: str, resource: str) -> str | None:
    """What a usage row is priced as: the job's ``accelerator_type`` (a catalog slug) when it
    names one, else the flavor's name; ``None`` for a resource that is no accelerator."""
    if not is_accelerator(resource):
        return None
    return job.request.accelerator_type or flavor


def mode_of(resource: str) -> str:
    """The sharing mode a resource is priced in: a MIG slice resource (``nvidia.com/mig-3g.40gb``)
    is its profile's mode (``mig-3g.40gb``), anything else ``exclusive`` (a job asks for no
    other mode: time-slicing and MPS are properties of the nodes, not of the request)."""
    if resource.startswith(MIG_RESOURCE_PREFIX):
        mode = "mig-" + resource.removeprefix(MIG_RESOURCE_PREFIX)
        try:
            return check_mode(mode)
        except ValidationError:
            return EXCLUSIVE
    return EXCLUSIVE


def open_usage(
    conn: Connection, job: Job, cluster_queue: str, charges: Sequence[Charge], start: datetime
) -> None:
    """Insert the open usage rows of an admission (in the admitting transaction)."""
    if not charges:
        return
    conn.execute(
        sa.insert(usage),
        [
            {
                "tenant": job.tenant,
                "job_id": job.id,
                "cluster_queue": cluster_queue,
                "flavor": c.flavor,
                "resource": c.resource,
                "amount": c.amount,
                "borrowed": c.borrowed,
                "lenders": dict(c.lenders),
                "accelerator": accelerator_of(job, c.flavor, c.resource),
                "mode": mode_of(c.resource),
                "priority": job.priority.value,
                "start_at": start,
                "end_at": None,
            }
            for c in charges
        ],
    )


def close_usage(conn: Connection, tenant: str, job_id: str, end: datetime) -> int:
    """End the job's open usage rows at ``end`` (or at their start, if ``end`` is earlier: a clock
    behind the admitting replica's must not make a negative interval); returns how many."""
    result = conn.execute(
        sa.update(usage)
        .where(u.tenant == tenant, u.job_id == job_id, u.end_at.is_(None))
        .values(end_at=sa.func.greatest(u.start_at, sa.cast(end, sa.DateTime(timezone=True))))
    )
    return int(result.rowcount)


USAGE_COLUMNS = (
    u.id,
    u.tenant,
    u.job_id,
    u.cluster_queue,
    u.flavor,
    u.resource,
    u.amount,
    u.borrowed,
    u.lenders,
    u.accelerator,
    u.mode,
    u.priority,
    u.start_at,
    u.end_at,
)


def usage_select(start: datetime, end: datetime, tenant: str | None) -> sa.Select[Any]:
    """Rows of accelerator resources (those with an ``accelerator``: :func:`accelerator_of`) that
    overlap ``[start, end)``; open rows are still running."""
    stmt = sa.select(*USAGE_COLUMNS).where(
        u.accelerator.is_not(None),
        u.start_at < end,
        sa.or_(u.end_at.is_(None), u.end_at > start),
    )
    if tenant is not None:
        stmt = stmt.where(u.tenant == tenant)
    return stmt.order_by(u.start_at, u.job_id, u.id)


def apportion_devices(total: int, weights: Sequence[int]) -> list[int]:
    """Split ``total`` whole devices over parts weighted by milli-units, exactly (largest remainder,
    ties to the earlier part)."""
    whole = sum(weights)
    if whole <= 0:
        return [0] * len(weights)
    shares = [total * w // whole for w in weights]
    order = sorted(range(len(weights)), key=lambda i: (-(total * weights[i] % whole), i))
    for i in order[: total - sum(shares)]:
        shares[i] += 1
    return shares


def records_of(row: Any, start: datetime, end: datetime) -> list[UsageRecord]:
    """The usage records of one row, clipped to ``[start, end)`` (an open row ends at ``end``).

    Only accelerator resources (:func:`budcore.domain.resources.is_accelerator`) are records:
    prices are per accelerator; cpu and memory rows are kept for audits, not priced.

    **Devices.** A row of ``amount`` milli-units is ``max(1, amount // 1000)`` whole devices
    (Kubernetes extended resources are whole numbers, so this is exact in practice; a fraction
    of a device rounds down, and any positive amount is at least one device). The row becomes a
    nominal record for ``amount − borrowed`` and one borrowed record per lender; the row's whole
    devices are split over those parts in proportion to their milli-units by largest remainder
    (ties: the nominal part first, then lenders by account name), so the records of a row always
    add up to exactly the row's devices — rounding each share on its own would bill 1.5 + 1.5
    lent GPUs as 2 or 4. A part whose share rounds to no whole device gives no record. Borrowed
    milli-units not attributed to any lender (cannot happen for rows this adapter writes) become
    a borrowed record without a lender.
    """
    if row.accelerator is None or not is_accelerator(row.resource):
        return []
    lo = max(ensure_utc(row.start_at), start)
    hi = min(end if row.end_at is None else ensure_utc(row.end_at), end)
    if hi <= lo:
        return []
    amount, borrowed = int(row.amount), int(row.borrowed)
    lenders = {str(k): int(v) for k, v in sorted((row.lenders or {}).items()) if int(v) > 0}
    parts: list[tuple[str | None, bool, int]] = [(None, False, amount - borrowed)]
    parts += [(account, True, share) for account, share in lenders.items()]
    unattributed = borrowed - sum(lenders.values())
    if unattributed > 0:
        parts.append((None, True, unattributed))
    devices = apportion_devices(max(1, amount // MILLI), [p[2] for p in parts])
    out: list[UsageRecord] = []
    for (lender, is_borrowed, _), count in zip(parts, devices, strict=True):
        if count <= 0:
            continue
        out.append(
            UsageRecord(
                job_id=row.job_id,
                tenant=row.tenant,
                flavor=row.flavor,
                accelerator=row.accelerator,
                devices=count,
                start=lo,
                end=hi,
                mode=row.mode,
                priority=row.priority,
                borrowed=is_borrowed,
                cluster_queue=row.cluster_queue,
                lender=lender,
            )
        )
    return out


def read_usage(conn: Connection, start: datetime, end: datetime, tenant: str | None) -> list[UsageRecord]:
    """The records of every row overlapping ``[start, end)``, clipped, in (start, job id) order."""
    out: list[UsageRecord] = []
    for row in conn.execute(usage_select(start, end, tenant)):
        out.extend(records_of(row, start, end))
    out.sort(key=lambda r: (r.start, r.job_id))  # stable: rows keep their id order within a key
    return out


__all__ = [
    "MILLI",
    "Charge",
    "accelerator_of",
    "apportion_devices",
    "close_usage",
    "meter_admission",
    "mode_of",
    "open_usage",
    "read_usage",
    "records_of",
    "usage_before",
]
