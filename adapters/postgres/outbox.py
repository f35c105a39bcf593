"""Outbox dispatcher: delivers the events stores wrote to ``budcore_outbox``, once each.

:meth:`OutboxDispatcher.dispatch_once` runs one transaction:

1. ``SELECT … FROM budcore_outbox WHERE dispatched_at IS NULL ORDER BY id LIMIT :batch
   FOR UPDATE SKIP LOCKED`` — rows another dispatcher is delivering are skipped, not waited for,
   so any number of dispatchers (one per replica) share the work without blocking each other;
2. ``sink.publish(events)``;
3. ``UPDATE … SET dispatched_at = now()`` for exactly those rows, then commit.

**Delivery guarantee.** Between dispatchers the guarantee is exactly-once: a row is locked by one
transaction at a time and is never selected again once its ``dispatched_at`` is committed. Towards
the sink it is exactly-once *if the sink's effects commit with this transaction* and
**at-least-once otherwise**: if the sink accepted the events and then the commit is lost (the
process is killed between steps 2 and 3, the connection drops, or the sink raises after having
delivered part of a batch), the rows stay undispatched and are delivered again. Sinks should
therefore be idempotent; every ``JobTransitioned`` carries a natural deduplication key,
``(tenant, job_id, version)``. A sink that raises makes the whole batch roll back and be retried.

**Order.** Within one dispatcher, events are delivered in outbox order. With several dispatchers
two batches may be delivered concurrently, so consumers that need per-job order should order by
the event's ``version``. A pending-row scan (not a high-water mark) is used because ids are
assigned at insert and transactions commit out of id order: a cursor would skip late commits.
"""

from __future__ import annotations

from typing import NamedTuple

import sqlalchemy as sa
from sqlalchemy.engine import URL, Connection, Engine

from budcore.domain.errors import ValidationError
from budcore.domain.events import DomainEvent
from budcore.ports.event_sink import EventSink

from .connection import open_engine
from .engine import PoolSettings, run_transaction
from .records import event_from_row
from .schema import outbox


class OutboxStats(NamedTuple):
    pending: int
    dispatched: int


class OutboxDispatcher:
    """Moves outbox rows to ``sink``; run one per replica (or several), concurrently."""

    def __init__(
        self,
        url: str | URL | None = None,
        sink: EventSink | None = None,
        *,
        engine: Engine | None = None,
        pool: PoolSettings | None = None,
        check_schema: bool = True,
    ) -> None:
        if sink is None:
            raise ValidationError("an outbox dispatcher needs an event sink", path="sink")
        self._sink = sink
        self._engine, self._owns_engine = open_engine(url, pool, engine, check_schema=check_schema)

    @property
    def engine(self) -> Engine:
        return self._engine

    def close(self) -> None:
        if self._owns_engine:
            self._engine.dispose()

    def dispatch_once(self, batch: int = 100) -> int:
        """Deliver up to ``batch`` pending events in one transaction; returns how many."""
        if batch < 1:
            raise ValidationError(f"batch must be at least 1, got {batch}", path="batch")

        def work(conn: Connection) -> int:
            rows = conn.execute(
                sa.select(outbox.c.id, outbox.c.kind, outbox.c.event)
                .where(outbox.c.dispatched_at.is_(None))
                .order_by(outbox.c.id)
                .limit(batch)
                .with_for_update(skip_locked=True)
            ).all()
            if not rows:
                return 0
            events: list[DomainEvent] = [event_from_row(r.id, r.kind, r.event) for r in rows]
            self._sink.publish(events)
            conn.execute(
                sa.update(outbox)
                .where(outbox.c.id.in_([r.id for r in rows]))
                .values(dispatched_at=sa.func.now())
            )
            return len(rows)

        return run_transaction(self._engine, work)

    def drain(self, batch: int = 100) -> int:
        """Dispatch until no pending row is visible to this dispatcher; returns the total."""
        total = 0
        while True:
            delivered = self.dispatch_once(batch)
            if delivered == 0:
                return total
            total += delivered

    def stats(self) -> OutboxStats:
        """How many rows wait for delivery and how many were delivered."""

        def work(conn: Connection) -> OutboxStats:
            pending = sa.func.count().filter(outbox.c.dispatched_at.is_(None))
            done = sa.func.count().filter(outbox.c.dispatched_at.is_not(None))
            row = conn.execute(sa.select(pending, done).select_from(outbox)).one()
            return OutboxStats(int(row[0]), int(row[1]))

        return run_transaction(self._engine, work)
