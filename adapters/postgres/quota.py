"""Quota rows as Kueue's tree of resource nodes: locking, reserving, releasing, syncing.

Every row of ``budcore_quota_usage`` is one node of the quota tree for one (flavor, resource):
a ClusterQueue's quota, or a cohort's under the scope ``cohort:<name>``. ``parent`` names the row
one level up for the same flavor and resource; a row without one is a root. The arithmetic is
Kueue's, as :mod:`budcore.scheduling.quota` implements it for the scheduler:

- ``quota`` is the node's *subtree quota*: a ClusterQueue's ``nominalQuota``; a cohort's own
  nominal quota plus what each child lends (``child.quota − child.guaranteed``);
- ``guaranteed = max(0, quota − lending_limit)`` (0 without a lending limit) is never lent;
- a node's usage counts in its parent only above its guaranteed part: when ``used`` goes from
  ``u`` to ``u'`` the parent's changes by ``max(0, u' − g) − max(0, u − g)``;
- when a node's usage grows it must stay within ``quota`` at a root, within ``quota +
  borrowing_limit`` below a parent with a borrowing limit, and is not capped by the node itself
  below a parent without one (the parent is).

Kueue admits a request ``r`` into a ClusterQueue iff ``r <= available(node)``; unrolling the
recursion of ``available`` shows that this is exactly "after propagating the increase, every row on
the path meets its constraint", which is what :func:`reserve` checks under the row locks. So the
ledger admits precisely what the scheduler would, atomically across replicas.

Per job, only the rows it names get a *direct* reservation (``budcore_quota_reservations``); the
usage of the rows above them is derived. Which of a queue's jobs sit in its guaranteed part
depends on the order of admissions and releases, and Kueue's usage does not, so per-job cohort
reservations could not be given back correctly.

**Lock order.** Rows are locked with one ``SELECT … ORDER BY cluster_queue COLLATE "C", flavor
COLLATE "C", resource COLLATE "C" FOR UPDATE`` (the tree above the named rows found by a recursive
CTE in the same statement; PostgreSQL locks the rows in the order the sort returns them).
``COLLATE "C"`` makes the database's order bytewise, i.e. Python's ``sorted`` order of the keys,
whatever the database's default collation: every transaction locks quota rows in the same global
order, so two of them never deadlock on quota rows.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.engine import Connection

from budcore.domain.errors import NotFoundError, ValidationError
from budcore.scheduling.queues import ClusterQueue, Cohort, QueueConfig, ResourceGroup
from budcore.scheduling.quota import QuotaTree

from .errors import DatabaseError, QuotaInUseError, QuotaRangeError, QuotaUnavailableError
from .schema import quota_reservations, quota_usage

COHORT_PREFIX = "cohort:"
MAX_AMOUNT = 2**63 - 1  # BIGINT: ~9.2e15 whole units, i.e. about 8 PiB of memory in milli-bytes
_MAX_LOCK_ROUNDS = 16  # parent links changed under us this often in a row: give up

q = quota_usage.c


def cohort_scope(cohort: str) -> str:
    """The quota-row scope name of a cohort (``cohort:<name>``)."""
    return COHORT_PREFIX + cohort


@dataclass(frozen=True, slots=True, order=True)
class QuotaKey:
    """One quota row: a ClusterQueue (or ``cohort:<name>`` scope), a flavor and a resource."""

    cluster_queue: str
    flavor: str
    resource: str

    def __str__(self) -> str:
        return f"{self.cluster_queue}/{self.flavor}/{self.resource}"


@dataclass(frozen=True, slots=True)
class QuotaUsage:
    """One quota row: its ``quota`` and how much admitted/running jobs hold (milli-units).

    ``parent`` is the scope of the row above (``None``: a root); ``borrowing_limit`` and
    ``lending_limit`` are Kueue's (``None``: unlimited). For a cohort row ``used`` is derived:
    what its children use beyond their guaranteed parts (plus any direct reservations).
    """

    key: QuotaKey
    quota: int
    used: int
    version: int
    parent: str | None = None
    borrowing_limit: int | None = None
    lending_limit: int | None = None

    @property
    def free(self) -> int:
        """``quota − used`` (at least 0): room within the row's own quota, borrowing aside."""
        return max(self.quota - self.used, 0)

    @property
    def parent_key(self) -> QuotaKey | None:
        return None if self.parent is None else QuotaKey(self.parent, self.key.flavor, self.key.resource)

    @property
    def guaranteed(self) -> int:
        """The part of ``quota`` that is never lent (Kueue: ``quota − lendingLimit``)."""
        return 0 if self.lending_limit is None else max(0, self.quota - self.lending_limit)

    @property
    def limit(self) -> int | None:
        """The most ``used`` may grow to at this row (``None``: only the parent caps it)."""
        if self.parent is None:
            return self.quota
        if self.borrowing_limit is None:
            return None
        return self.quota + self.borrowing_limit


USAGE_COLUMNS = (
    q.cluster_queue,
    q.flavor,
    q.resource,
    q.quota,
    q.used,
    q.version,
    q.parent,
    q.borrowing_limit,
    q.lending_limit,
)


def key_order() -> list[sa.ColumnElement[str]]:
    """ORDER BY for quota rows: bytewise (Python's order of :class:`QuotaKey`), any locale."""
    return [q.cluster_queue.collate("C"), q.flavor.collate("C"), q.resource.collate("C")]


def usage_from_row(row: Any) -> QuotaUsage:
    return QuotaUsage(
        key=QuotaKey(row.cluster_queue, row.flavor, row.resource),
        quota=int(row.quota),
        used=int(row.used),
        version=int(row.version),
        parent=row.parent,
        borrowing_limit=None if row.borrowing_limit is None else int(row.borrowing_limit),
        lending_limit=None if row.lending_limit is None else int(row.lending_limit),
    )


def _key_tuple(keys: Iterable[QuotaKey]) -> sa.ColumnElement[bool]:
    return sa.tuple_(q.cluster_queue, q.flavor, q.resource).in_(
        [(k.cluster_queue, k.flavor, k.resource) for k in sorted(keys)]
    )


def _tree_select(keys: Iterable[QuotaKey]) -> sa.Select[Any]:
    """The rows ``keys`` and every row above them (one recursive CTE), in key order."""
    seed = sa.select(q.cluster_queue, q.flavor, q.resource, q.parent).where(_key_tuple(keys))
    chain = seed.cte("budcore_quota_chain", recursive=True)
    up = quota_usage.alias("up")
    chain = chain.union(
        sa.select(up.c.cluster_queue, up.c.flavor, up.c.resource, up.c.parent).join(
            chain,
            sa.and_(
                up.c.cluster_queue == chain.c.parent,
                up.c.flavor == chain.c.flavor,
                up.c.resource == chain.c.resource,
            ),
        )
    )
    in_chain = sa.tuple_(q.cluster_queue, q.flavor, q.resource).in_(
        sa.select(chain.c.cluster_queue, chain.c.flavor, chain.c.resource)
    )
    return sa.select(*USAGE_COLUMNS).where(in_chain).order_by(*key_order())


def read_tree(conn: Connection, keys: Iterable[QuotaKey], *, lock: bool) -> dict[QuotaKey, QuotaUsage]:
    """The rows ``keys`` (those that exist) and all rows above them; ``lock``: ``FOR UPDATE``.

    Locks are taken in key order by one statement. If a parent link changed between the CTE's
    snapshot and the lock (a concurrent sync), the missing ancestors are locked in a further round;
    that round may lock out of order, which PostgreSQL's deadlock detector and the transaction
    retry cover (it needs a configuration change racing an admission).
    """
    asked = sorted(set(keys))
    nodes: dict[QuotaKey, QuotaUsage] = {}
    pending = set(asked)
    for _ in range(_MAX_LOCK_ROUNDS):
        if not pending:
            return nodes
        stmt = _tree_select(pending)
        if lock:
            stmt = stmt.with_for_update()
        for row in conn.execute(stmt):
            usage = usage_from_row(row)
            nodes[usage.key] = usage
        pending = {p for n in nodes.values() if (p := n.parent_key) is not None and p not in nodes}
    raise DatabaseError(f"quota rows above {[str(k) for k in asked]} form a parent cycle or keep changing")


def propagate(
    nodes: Mapping[QuotaKey, QuotaUsage], deltas: Mapping[QuotaKey, int], *, check: bool
) -> dict[QuotaKey, int]:
    """The new ``used`` of every row ``deltas`` reach, walking each delta up its parents.

    With ``check`` a growing row must stay within its :attr:`~QuotaUsage.limit` (and the BIGINT
    range); the first that does not raises :class:`QuotaUnavailableError`, naming that row.
    """
    new_used: dict[QuotaKey, int] = {}
    for start in sorted(deltas):
        delta = deltas[start]
        key: QuotaKey | None = start
        while delta and key is not None:
            node = nodes[key]
            old = new_used.get(key, node.used)
            new = old + delta
            if check and delta > 0:
                limit = node.limit
                ceiling = MAX_AMOUNT if limit is None else min(limit, MAX_AMOUNT)
                if new > ceiling:
                    raise QuotaUnavailableError(
                        key.cluster_queue, key.flavor, key.resource, delta, max(ceiling - old, 0)
                    )
            new_used[key] = new
            g = node.guaranteed
            delta = max(0, new - g) - max(0, old - g)
            key = node.parent_key
    return new_used


def write_used(
    conn: Connection, nodes: Mapping[QuotaKey, QuotaUsage], new_used: Mapping[QuotaKey, int]
) -> None:
    """Store the new usage of the (locked) rows that changed, in key order, in one round trip."""
    changed = [(k, v) for k, v in sorted(new_used.items()) if v != nodes[k].used]
    if not changed:
        return
    stmt = (
        sa.update(quota_usage)
        .where(
            q.cluster_queue == sa.bindparam("k_cq"),
            q.flavor == sa.bindparam("k_flavor"),
            q.resource == sa.bindparam("k_resource"),
        )
        .values(
            used=sa.bindparam("new_used", type_=sa.BigInteger),
            version=q.version + 1,
            updated_at=sa.func.now(),
        )
    )
    conn.execute(
        stmt,
        [
            {"k_cq": k.cluster_queue, "k_flavor": k.flavor, "k_resource": k.resource, "new_used": v}
            for k, v in changed
        ],
    )


def _ancestors(nodes: Mapping[QuotaKey, QuotaUsage], key: QuotaKey) -> list[QuotaKey]:
    out: list[QuotaKey] = []
    parent = nodes[key].parent_key
    while parent is not None and parent in nodes and parent not in out:
        out.append(parent)
        parent = nodes[parent].parent_key
    return out


def reserve(
    conn: Connection, tenant: str, job_id: str, amounts: Mapping[QuotaKey, int]
) -> dict[QuotaKey, int]:
    """Lock the rows (and the tree above them), check every one has room, then take the amounts.

    All-or-nothing: a row without room raises :class:`QuotaUnavailableError` and the caller's
    transaction rolls everything back, the job's status change included. A named row that lies
    above another named row (``cohorts=`` naming a cohort the ClusterQueue's synced rows already
    count in) is covered through the tree and gets no direct reservation of its own, so nothing is
    counted twice. Returns the direct reservations made.
    """
    wanted = {key: amount for key, amount in amounts.items() if amount > 0}
    if not wanted:
        return {}
    nodes = read_tree(conn, wanted, lock=True)
    for key in sorted(wanted):
        if key not in nodes:
            raise NotFoundError(
                "quota", str(key), "budcore_quota_usage (configure it with set_quota or sync)"
            )
    covered = {a for key in wanted for a in _ancestors(nodes, key)}
    direct = {key: amount for key, amount in wanted.items() if key not in covered}
    write_used(conn, nodes, propagate(nodes, direct, check=True))
    conn.execute(
        sa.insert(quota_reservations),
        [
            {
                "tenant": tenant,
                "job_id": job_id,
                "cluster_queue": k.cluster_queue,
                "flavor": k.flavor,
                "resource": k.resource,
                "amount": direct[k],
            }
            for k in sorted(direct)
        ],
    )
    return direct


def release_reservations(conn: Connection, tenant: str, job_id: str) -> dict[QuotaKey, int]:
    """Give a job's reserved quota back (through the tree); returns what was released."""
    r = quota_reservations.c
    released = conn.execute(
        sa.delete(quota_reservations)
        .where(r.tenant == tenant, r.job_id == job_id)
        .returning(r.cluster_queue, r.flavor, r.resource, r.amount)
    ).all()
    amounts = {QuotaKey(x.cluster_queue, x.flavor, x.resource): int(x.amount) for x in released}
    if amounts:
        # Every row exists: a reservation's foreign key keeps its quota row from being deleted.
        nodes = read_tree(conn, amounts, lock=True)
        write_used(conn, nodes, propagate(nodes, {k: -a for k, a in amounts.items()}, check=False))
    return amounts


def available(nodes: Mapping[QuotaKey, QuotaUsage], key: QuotaKey) -> int:
    """Kueue's ``available`` for the row ``key``: what one more admission could take there now."""
    node = nodes[key]
    parent_key = node.parent_key
    if parent_key is None or parent_key not in nodes:
        return max(0, node.quota - node.used)
    g = node.guaranteed
    from_parent = available(nodes, parent_key)
    if node.borrowing_limit is not None:
        from_parent = min(node.quota - g - max(0, node.used - g) + node.borrowing_limit, from_parent)
    return max(0, g - node.used) + max(0, from_parent)


# Configuration sync ----------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class DesiredRow:
    """A quota row as the configuration defines it (usage is derived afterwards)."""

    key: QuotaKey
    quota: int
    parent: str | None
    borrowing_limit: int | None
    lending_limit: int | None
    depth: int


# (scope, flavor, resource, field) -> the path of that field in the configuration, for errors.
_Paths = dict[tuple[str, str, str, str], str]


def _check_configured(
    kind: str, name: str, scope: str, groups: Sequence[ResourceGroup], paths: _Paths
) -> None:
    for gi, group in enumerate(groups):
        for fi, flavor in enumerate(group.flavors):
            for ri, rq in enumerate(flavor.resources):
                base = f"{kind}/{name}.spec.resourceGroups[{gi}].flavors[{fi}].resources[{ri}]"
                for attr, label in (
                    ("nominal_quota", "nominalQuota"),
                    ("borrowing_limit", "borrowingLimit"),
                    ("lending_limit", "lendingLimit"),
                ):
                    value = getattr(rq, attr)
                    paths[(scope, flavor.name, rq.name, label)] = f"{base}.{label}"
                    if value is not None and value > MAX_AMOUNT:
                        raise QuotaRangeError(
                            scope, flavor.name, rq.name, value, label, path=f"{base}.{label}"
                        )


def desired_rows(cluster_queues: Iterable[ClusterQueue], cohorts: Iterable[Cohort] = ()) -> list[DesiredRow]:
    """The quota rows a configuration defines, validated; raises before anything is written.

    Uses the scheduler's own :class:`~budcore.scheduling.quota.QuotaTree`, so subtree quotas and
    guaranteed parts are computed exactly as the scheduler computes them.
    """
    cq_list, cohort_list = list(cluster_queues), list(cohorts)
    paths: _Paths = {}
    seen: set[str] = set()
    for cq in cq_list:
        if not cq.name or cq.name.startswith(COHORT_PREFIX):
            raise ValidationError(
                f"ClusterQueue name {cq.name!r} is empty or starts with {COHORT_PREFIX!r}, which "
                "names cohort rows",
                path=f"ClusterQueue/{cq.name}.metadata.name",
            )
        if cq.name in seen:
            raise ValidationError(f"duplicate ClusterQueue {cq.name!r}", path=f"ClusterQueue/{cq.name}")
        seen.add(cq.name)
        _check_configured("ClusterQueue", cq.name, cq.name, cq.resource_groups, paths)
    by_name: dict[str, Cohort] = {}
    for cohort in cohort_list:
        if cohort.name in by_name:
            raise ValidationError(f"duplicate Cohort {cohort.name!r}", path=f"Cohort/{cohort.name}")
        by_name[cohort.name] = cohort
        _check_configured("Cohort", cohort.name, cohort_scope(cohort.name), cohort.resource_groups, paths)
    for cohort in cohort_list:
        chain = [cohort.name]
        parent = cohort.parent
        while parent is not None:
            if parent in chain:
                raise ValidationError(
                    f"Cohort {cohort.name!r} is in a parent cycle: {' -> '.join([*chain, parent])}",
                    path=f"Cohort/{cohort.name}.spec.parentName",
                )
            chain.append(parent)
            parent = by_name[parent].parent if parent in by_name else None
    tree = QuotaTree(QueueConfig(cluster_queues={c.name: c for c in cq_list}, cohorts=by_name))
    rows: list[DesiredRow] = []
    for node in (*tree.cohorts.values(), *tree.cluster_queues.values()):
        scope = cohort_scope(node.name) if node.is_cohort else node.name
        kind = "Cohort" if node.is_cohort else "ClusterQueue"
        parent = None if node.parent is None else cohort_scope(node.parent.name)
        for flavor, resource in sorted({*node.subtree_quota, *node.nominal}):
            fr = (flavor, resource)
            quota = node.subtree_quota.get(fr, 0)
            borrowing = node.borrowing_limit.get(fr)
            lending = node.lending_limit.get(fr)
            path = paths.get((scope, flavor, resource, "nominalQuota"), f"{kind}/{node.name}")
            if quota > MAX_AMOUNT:
                what = (
                    "the quota (own nominalQuota plus what its members lend)"
                    if node.is_cohort
                    else "nominalQuota"
                )
                raise QuotaRangeError(scope, flavor, resource, quota, what, path=path)
            if parent is not None and borrowing is not None and quota + borrowing > MAX_AMOUNT:
                path = paths.get((scope, flavor, resource, "borrowingLimit"), path)
                raise QuotaRangeError(
                    scope, flavor, resource, quota + borrowing, "quota + borrowingLimit", path=path
                )
            rows.append(
                DesiredRow(QuotaKey(scope, flavor, resource), quota, parent, borrowing, lending, node.depth)
            )
    return rows


def _lock_all(conn: Connection) -> dict[QuotaKey, QuotaUsage]:
    rows = conn.execute(sa.select(*USAGE_COLUMNS).order_by(*key_order()).with_for_update())
    return {u.key: u for u in map(usage_from_row, rows)}


def _direct_reservations(conn: Connection) -> dict[QuotaKey, tuple[int, int]]:
    """Per quota row: (sum of direct reservations, number of jobs holding one)."""
    r = quota_reservations.c
    rows = conn.execute(
        sa.select(r.cluster_queue, r.flavor, r.resource, sa.func.sum(r.amount), sa.func.count()).group_by(
            r.cluster_queue, r.flavor, r.resource
        )
    )
    return {QuotaKey(x[0], x[1], x[2]): (int(x[3]), int(x[4])) for x in rows}


def derived_usage(
    nodes: Mapping[QuotaKey, QuotaUsage], direct: Mapping[QuotaKey, int]
) -> dict[QuotaKey, int]:
    """Every row's usage from the direct reservations: its own plus its children's beyond guaranteed."""
    children: dict[QuotaKey, list[QuotaKey]] = {}
    for key, node in nodes.items():
        parent = node.parent_key
        if parent is not None and parent in nodes:
            children.setdefault(parent, []).append(key)
    out: dict[QuotaKey, int] = {}

    def used(key: QuotaKey, depth: int) -> int:
        if depth > len(nodes):
            raise DatabaseError(f"quota row {key} is in a parent cycle")
        if key not in out:
            total = direct.get(key, 0)
            for child in children.get(key, ()):
                g = nodes[child].guaranteed
                total += max(0, used(child, depth + 1) - g)
            out[key] = total
        return out[key]

    for key in nodes:
        used(key, 0)
    return out


def sync_rows(conn: Connection, desired: Sequence[DesiredRow], *, prune: bool) -> list[QuotaUsage]:
    """Make the quota rows match ``desired`` in the caller's (one) transaction.

    Locks every row, refuses (:class:`QuotaInUseError`, nothing written) to delete a row that is
    in use, upserts the configured rows (roots first, so a parent exists before its children),
    deletes the rest when ``prune``, then re-derives every row's usage from the reservations.
    """
    existing = _lock_all(conn)
    wanted = {row.key: row for row in desired}
    reservations = _direct_reservations(conn)
    removed = sorted(set(existing) - set(wanted)) if prune else []
    busy = [
        (str(k), existing[k].used, reservations.get(k, (0, 0))[1])
        for k in removed
        if existing[k].used or k in reservations
    ]
    if busy:
        raise QuotaInUseError(busy)
    if desired:
        insert = pg_insert(quota_usage)
        changes = {
            "quota": insert.excluded.quota,
            "parent": insert.excluded.parent,
            "borrowing_limit": insert.excluded.borrowing_limit,
            "lending_limit": insert.excluded.lending_limit,
        }
        upsert = insert.on_conflict_do_update(
            index_elements=[q.cluster_queue, q.flavor, q.resource],
            set_={**changes, "version": q.version + 1, "updated_at": sa.func.now()},
            where=sa.or_(*(getattr(q, name).is_distinct_from(value) for name, value in changes.items())),
        )
        conn.execute(
            upsert,
            [
                {
                    "cluster_queue": row.key.cluster_queue,
                    "flavor": row.key.flavor,
                    "resource": row.key.resource,
                    "quota": row.quota,
                    "parent": row.parent,
                    "borrowing_limit": row.borrowing_limit,
                    "lending_limit": row.lending_limit,
                }
                for row in sorted(desired, key=lambda r: (r.depth, r.key))
            ],
        )
    if removed:
        conn.execute(sa.delete(quota_usage).where(_key_tuple(removed)))
    nodes = {u.key: u for u in map(usage_from_row, conn.execute(sa.select(*USAGE_COLUMNS)))}
    target = derived_usage(nodes, {k: amount for k, (amount, _) in reservations.items()})
    write_used(conn, nodes, target)
    return [usage_from_row(r) for r in conn.execute(sa.select(*USAGE_COLUMNS).order_by(*key_order()))]


__all__ = [
    "COHORT_PREFIX",
    "MAX_AMOUNT",
    "DesiredRow",
    "QuotaKey",
    "QuotaUsage",
    "available",
    "cohort_scope",
    "desired_rows",
    "propagate",
    "read_tree",
    "release_reservations",
    "reserve",
    "sync_rows",
]
