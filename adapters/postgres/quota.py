"""Quota rows: Kueue's quota tree stored per (node, flavor, resource); locking, reserving, syncing.

Every row of ``budcore_quota_usage`` is one node of the quota tree for one (flavor, resource):
a ClusterQueue's quota, or a cohort's under the scope ``cohort:<name>``. ``parent`` names the row
one level up for the same flavor and resource (a row without one is a root); ``nominal``,
``borrowing_limit`` and ``lending_limit`` are the node's configuration. ``quota`` (the subtree
quota) and a cohort row's ``used`` are derived, stored for readers and as a consistency check.

**The arithmetic is the core's.** This module does none of Kueue's quota arithmetic itself: from
the rows it has read (and locked) it builds :class:`QuotaForest`, the core
:class:`~budcore.scheduling.quota.QuotaTree` per (flavor, resource) and a core
:class:`~budcore.scheduling.quota.QuotaUsage` holding the rows' usage, then decides with
:func:`~budcore.scheduling.quota.available` and propagates with ``QuotaUsage.add``; it only
stores the resulting usage of every row. The ledger therefore admits exactly what the scheduler
would, atomically across replicas.

A quota row's own reservations — a ClusterQueue row's, or a cohort row's made through the older
``admit(cohorts=...)`` — are charged in the core tree through a ClusterQueue named like the row
(for a cohort, ``cohort:<name>``: a member with no quota of its own, so everything charged to it
counts in the cohort). Per job only those *direct* reservations are stored
(``budcore_quota_reservations``); the usage of the rows above is derived. Which of a queue's jobs
sit in its guaranteed part depends on the order of admissions and releases, and Kueue's usage does
not, so per-job cohort reservations could not be given back correctly.

**Lock order.** An admission or release locks the whole tree of each (flavor, resource) it
touches — the rows it names, every row above them and everything below their roots, so the core
sees every member of every cohort on the way — with one ``SELECT … ORDER BY cluster_queue COLLATE
"C", flavor COLLATE "C", resource COLLATE "C" FOR UPDATE`` (recursive CTEs find the rows in the
same statement; PostgreSQL locks them in the order the sort returns them). Admissions into one
tree serialise on its root row anyway, so locking the rest of the tree costs no concurrency.
``COLLATE "C"`` makes the database's order bytewise, i.e. Python's ``sorted`` order of the keys,
whatever the database's default collation: every transaction locks quota rows in the same global
order, so two of them never deadlock on quota rows.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.engine import Connection

from budcore.domain.errors import NotFoundError, ValidationError
from budcore.ports.admission_ledger import (
    COHORT_PREFIX,
    FlavorResource,
    QuotaBalance,
    QuotaKey,
    QuotaUnavailableError,
    cohort_scope,
    node_scope,
)
from budcore.scheduling.queues import (
    ClusterQueue,
    Cohort,
    FlavorQuotas,
    LocalQueue,
    QueueConfig,
    ResourceGroup,
    ResourceQuota,
)
from budcore.scheduling.quota import QuotaNode, QuotaTree, QuotaUsage, available, binding_limit

from .errors import DatabaseError, QuotaInUseError, QuotaRangeError
from .schema import local_queues, quota_reservations, quota_usage

MAX_AMOUNT = 2**63 - 1  # BIGINT: ~9.2e15 whole units, i.e. about 8 PiB of memory in milli-bytes
_MAX_LOCK_ROUNDS = 16  # parent links changed under us this often in a row: give up

q = quota_usage.c


@dataclass(frozen=True, slots=True)
class QuotaRow:
    """One stored quota row: a node of the quota tree for one (flavor, resource), in milli-units.

    ``nominal`` is the node's own ``nominalQuota``; ``quota`` its subtree quota (a ClusterQueue's
    nominal quota, a cohort's own plus what its members lend), derived when the row was written;
    ``used`` how much admitted/running jobs hold there (for a cohort row derived: what its members
    use beyond their guaranteed parts, plus any direct reservations). ``parent`` is the scope of the
    row above (``None``: a root); ``borrowing_limit`` and ``lending_limit`` are Kueue's (``None``:
    unlimited). ``version`` counts the row's writes.
    """

    key: QuotaKey
    nominal: int
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
    def is_cohort(self) -> bool:
        return self.key.cluster_queue.startswith(COHORT_PREFIX)


ROW_COLUMNS = (
    q.cluster_queue,
    q.flavor,
    q.resource,
    q.nominal,
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


def row_from_db(row: Any) -> QuotaRow:
    return QuotaRow(
        key=QuotaKey(row.cluster_queue, row.flavor, row.resource),
        nominal=int(row.nominal),
        quota=int(row.quota),
        used=int(row.used),
        version=int(row.version),
        parent=row.parent,
        borrowing_limit=None if row.borrowing_limit is None else int(row.borrowing_limit),
        lending_limit=None if row.lending_limit is None else int(row.lending_limit),
    )


# The core's view of a set of rows --------------------------------------------------------------
# Per (flavor, resource): (scope, parent scope, nominal, borrowingLimit, lendingLimit) of every row.
_Shape = tuple[tuple[str, str | None, int, int | None, int | None], ...]


def _cohort_name(scope: str) -> str:
    if not scope.startswith(COHORT_PREFIX):
        raise DatabaseError(f"quota row parent {scope!r} is not a cohort scope ({COHORT_PREFIX}<name>)")
    return scope[len(COHORT_PREFIX) :]


@functools.lru_cache(maxsize=4096)
def _tree(fr: FlavorResource, shape: _Shape) -> QuotaTree:
    """The core quota tree of one (flavor, resource)'s rows (static per configuration: cached)."""
    flavor, resource = fr
    cluster_queues: dict[str, ClusterQueue] = {}
    cohorts: dict[str, Cohort] = {}
    for scope, parent, nominal, borrowing, lending in shape:
        groups = (
            ResourceGroup(
                covered_resources=(resource,),
                flavors=(
                    FlavorQuotas(
                        name=flavor,
                        resources=(
                            ResourceQuota(
                                name=resource,
                                nominal_quota=nominal,
                                borrowing_limit=borrowing,
                                lending_limit=lending,
                            ),
                        ),
                    ),
                ),
            ),
        )
        above = None if parent is None else _cohort_name(parent)
        if scope.startswith(COHORT_PREFIX):
            name = _cohort_name(scope)
            cohorts[name] = Cohort(name=name, parent=above, resource_groups=groups)
            # Direct reservations on the cohort row are charged through this quota-less member.
            cluster_queues[scope] = ClusterQueue(name=scope, cohort=name)
        else:
            cluster_queues[scope] = ClusterQueue(name=scope, cohort=above, resource_groups=groups)
    return QuotaTree(QueueConfig(cluster_queues=cluster_queues, cohorts=cohorts))


class QuotaForest:
    """The core quota trees and usage of a set of quota rows, one tree per (flavor, resource).

    ``rows`` must hold whole trees (every row's parent, every cohort's members); with
    ``usage_from_rows`` the core usage starts at the rows' ``used``, else at zero (then
    :meth:`charge` the reservations). :meth:`used` is every row's usage as the core derives it.
    """

    def __init__(self, rows: Mapping[QuotaKey, QuotaRow], *, usage_from_rows: bool = True) -> None:
        self.rows = rows
        by_fr: dict[FlavorResource, list[QuotaRow]] = {}
        for row in rows.values():
            by_fr.setdefault(row.key.flavor_resource, []).append(row)
        self.trees: dict[FlavorResource, QuotaTree] = {}
        self.usage: dict[FlavorResource, QuotaUsage] = {}
        for fr, members in by_fr.items():
            shape = tuple(
                sorted(
                    (r.key.cluster_queue, r.parent, r.nominal, r.borrowing_limit, r.lending_limit)
                    for r in members
                )
            )
            tree = _tree(fr, shape)
            self.trees[fr] = tree
            usage = self.usage[fr] = QuotaUsage(tree)
            if usage_from_rows:
                self._load(fr, tree, usage, members)

    @staticmethod
    def _load(fr: FlavorResource, tree: QuotaTree, usage: QuotaUsage, rows: list[QuotaRow]) -> None:
        """Give the core the rows' usage: a ClusterQueue row's is its own; what a cohort row holds
        beyond what its members derive is its direct reservations (deepest cohorts first)."""
        cohorts: list[tuple[int, QuotaRow]] = []
        for row in rows:
            if row.is_cohort:
                cohorts.append((tree.cohorts[_cohort_name(row.key.cluster_queue)].depth, row))
            elif row.used:
                usage.add(row.key.cluster_queue, {fr: row.used})
        for _, row in sorted(cohorts, key=lambda item: (-item[0], item[1].key)):
            derived = usage.get(tree.cohorts[_cohort_name(row.key.cluster_queue)], fr)
            if row.used > derived:
                usage.add(row.key.cluster_queue, {fr: row.used - derived})
            # A stored usage below what the members derive is stale: the derived one is written.

    def node(self, key: QuotaKey) -> QuotaNode:
        """The core node a row is: its ClusterQueue, or its cohort."""
        tree = self.trees[key.flavor_resource]
        if key.cluster_queue.startswith(COHORT_PREFIX):
            return tree.cohorts[_cohort_name(key.cluster_queue)]
        return tree.cluster_queues[key.cluster_queue]

    def ancestors(self, key: QuotaKey) -> list[QuotaKey]:
        """The rows above ``key``, nearest first."""
        path = self.node(key).path_from_root()[:-1]
        return [QuotaKey(node_scope(n), key.flavor, key.resource) for n in reversed(path)]

    def mismatched(self) -> list[QuotaKey]:
        """Rows whose stored subtree quota is not what the core derives from the rows read.

        A tree read while a configuration sync committed can miss a member the stored cohort
        row already counts; reading it again in a new statement sees the whole tree.
        """
        return [
            key
            for key, row in self.rows.items()
            if self.node(key).subtree_quota.get(key.flavor_resource, 0) != row.quota
        ]

    def available(self, key: QuotaKey) -> int:
        """Kueue's ``available`` for the row's node (at least 0)."""
        fr = key.flavor_resource
        return max(0, available(self.node(key), fr, self.usage[fr]))

    def take(self, key: QuotaKey, amount: int) -> None:
        """Charge ``amount`` to the row ``key`` if the core says it fits; else raise naming the limit."""
        fr = key.flavor_resource
        usage = self.usage[fr]
        charged = self.trees[fr].cluster_queues[key.cluster_queue]
        room = available(charged, fr, usage)
        if amount > room:
            limiting, requested, free = binding_limit(charged, fr, usage, amount)
            raise QuotaUnavailableError(
                node_scope(limiting),
                key.flavor,
                key.resource,
                requested,
                free,
                admitting=key.cluster_queue,
                available=max(0, room),
            )
        usage.add(key.cluster_queue, {fr: amount})
        for node in charged.path_from_root():  # the rows are BIGINT
            old = self.rows.get(QuotaKey(node_scope(node), key.flavor, key.resource))
            if old is not None and usage.get(node, fr) > MAX_AMOUNT:
                raise QuotaUnavailableError(
                    str(old.key.cluster_queue), key.flavor, key.resource, amount, MAX_AMOUNT - old.used
                )

    def charge(self, key: QuotaKey, amount: int) -> None:
        """Add (``amount > 0``) or give back (``< 0``) usage at the row ``key``, unchecked."""
        fr = key.flavor_resource
        self.usage[fr].add(key.cluster_queue, {fr: abs(amount)}, sign=1 if amount > 0 else -1)

    def used(self) -> dict[QuotaKey, int]:
        """Every row's usage as the core derives it now."""
        return {
            key: self.usage[key.flavor_resource].get(self.node(key), key.flavor_resource) for key in self.rows
        }

    def balances(self, keys: Iterable[QuotaKey]) -> list[QuotaBalance]:
        used = self.used()
        out: list[QuotaBalance] = []
        for key in sorted(keys):
            row = self.rows[key]
            out.append(
                QuotaBalance(
                    key=key,
                    parent=row.parent,
                    nominal=row.nominal,
                    quota=self.node(key).subtree_quota.get(key.flavor_resource, 0),
                    borrowing_limit=row.borrowing_limit,
                    lending_limit=row.lending_limit,
                    used=used[key],
                    available=self.available(key),
                )
            )
        return out


# Reading and locking trees -----------------------------------------------------------------
def _key_tuple(keys: Iterable[QuotaKey]) -> sa.ColumnElement[bool]:
    return sa.tuple_(q.cluster_queue, q.flavor, q.resource).in_(
        [(k.cluster_queue, k.flavor, k.resource) for k in sorted(keys)]
    )


def _forest_select(keys: Iterable[QuotaKey]) -> sa.Select[Any]:
    """The whole trees of ``keys`` (up to each root, then every row below it), in key order."""
    seed = sa.select(q.cluster_queue, q.flavor, q.resource, q.parent).where(_key_tuple(keys))
    up = seed.cte("budcore_quota_up", recursive=True)
    above = quota_usage.alias("above")
    up = up.union(
        sa.select(above.c.cluster_queue, above.c.flavor, above.c.resource, above.c.parent).join(
            up,
            sa.and_(
                above.c.cluster_queue == up.c.parent,
                above.c.flavor == up.c.flavor,
                above.c.resource == up.c.resource,
            ),
        )
    )
    roots = sa.select(up.c.cluster_queue, up.c.flavor, up.c.resource).where(up.c.parent.is_(None))
    down = roots.cte("budcore_quota_down", recursive=True)
    below = quota_usage.alias("below")
    down = down.union(
        sa.select(below.c.cluster_queue, below.c.flavor, below.c.resource).join(
            down,
            sa.and_(
                below.c.parent == down.c.cluster_queue,
                below.c.flavor == down.c.flavor,
                below.c.resource == down.c.resource,
            ),
        )
    )
    members = sa.union(
        sa.select(down.c.cluster_queue, down.c.flavor, down.c.resource),
        sa.select(up.c.cluster_queue, up.c.flavor, up.c.resource),
    )
    in_forest = sa.tuple_(q.cluster_queue, q.flavor, q.resource).in_(members)
    return sa.select(*ROW_COLUMNS).where(in_forest).order_by(*key_order())


def check_acyclic(rows: Mapping[QuotaKey, QuotaRow]) -> None:
    for key in rows:
        seen = {key}
        parent = rows[key].parent_key
        while parent is not None and parent in rows:
            if parent in seen:
                raise DatabaseError(f"quota row {key} is in a parent cycle")
            seen.add(parent)
            parent = rows[parent].parent_key


def read_forest(
    conn: Connection, keys: Iterable[QuotaKey], *, lock: bool
) -> tuple[dict[QuotaKey, QuotaRow], QuotaForest]:
    """The whole trees of ``keys`` (the named rows that exist) and their core view.

    With ``lock`` the rows are locked ``FOR UPDATE`` in key order by one statement. If a parent
    link changed between the statement's snapshot and the lock (a concurrent sync), the missing
    ancestors are locked in a further round (which may lock out of order: PostgreSQL's deadlock
    detector and the transaction retry cover it; it needs a configuration change racing an
    admission), and a stored subtree quota that the rows read do not explain means a member was
    added meanwhile: the trees are read once more.
    """
    asked = sorted(set(keys))
    rows: dict[QuotaKey, QuotaRow] = {}
    pending: set[QuotaKey] = set(asked)
    reread = True
    for _ in range(_MAX_LOCK_ROUNDS):
        if pending:
            stmt = _forest_select(pending)
            if lock:
                stmt = stmt.with_for_update()
            for db_row in conn.execute(stmt):
                row = row_from_db(db_row)
                rows[row.key] = row
        pending = {p for r in rows.values() if (p := r.parent_key) is not None and p not in rows}
        if pending:
            continue
        check_acyclic(rows)
        forest = QuotaForest(rows)
        if reread and forest.mismatched():
            reread = False
            pending, rows = set(rows), {}
            continue
        return rows, forest
    raise DatabaseError(f"quota rows above {[str(k) for k in asked]} form a parent cycle or keep changing")


def write_used(conn: Connection, rows: Mapping[QuotaKey, QuotaRow], new_used: Mapping[QuotaKey, int]) -> None:
    """Store the new usage of the (locked) rows that changed, in key order, in one round trip."""
    changed = [(k, v) for k, v in sorted(new_used.items()) if v != rows[k].used]
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


# Reserving and releasing ---------------------------------------------------------------------
def lock_quota(
    conn: Connection, amounts: Mapping[QuotaKey, int]
) -> tuple[dict[QuotaKey, QuotaRow], QuotaForest]:
    """Lock the trees of the rows an admission needs (those with a positive amount)."""
    return read_forest(conn, [k for k, amount in amounts.items() if amount > 0], lock=True)


def reserve(
    conn: Connection,
    tenant: str,
    job_id: str,
    amounts: Mapping[QuotaKey, int],
    locked: tuple[dict[QuotaKey, QuotaRow], QuotaForest],
) -> dict[QuotaKey, int]:
    """Take the amounts on the ``locked`` rows (:func:`lock_quota`) if the core says they fit.

    All-or-nothing: a row without room raises :class:`QuotaUnavailableError` and the caller's
    transaction rolls everything back, the job's status change included. A named row that lies
    above another named row (``cohorts=`` naming a cohort the ClusterQueue's synced rows already
    count in) is covered through the tree and gets no direct reservation of its own, so nothing is
    counted twice. Returns the direct reservations made.
    """
    rows, forest = locked
    wanted = {key: amount for key, amount in amounts.items() if amount > 0}
    if not wanted:
        return {}
    for key in sorted(wanted):
        if key not in rows:
            raise NotFoundError(
                "quota", str(key), "budcore_quota_usage (configure it with set_quota or sync)"
            )
    covered = {a for key in wanted for a in forest.ancestors(key)}
    direct = {key: amount for key, amount in wanted.items() if key not in covered}
    for key in sorted(direct):
        forest.take(key, direct[key])
    write_used(conn, rows, forest.used())
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
        rows, forest = read_forest(conn, amounts, lock=True)
        for key, amount in sorted(amounts.items()):
            forest.charge(key, -amount)
        write_used(conn, rows, forest.used())
    return amounts


def local_queue_target(conn: Connection, namespace: str, name: str | None) -> tuple[str | None, bool]:
    """The ClusterQueue LocalQueue ``namespace/name`` leads to (``None``: none) and whether any
    LocalQueue is configured."""
    lq = local_queues.c
    mapped = (
        sa.select(lq.cluster_queue).where(lq.namespace == namespace, lq.name == name).scalar_subquery()
        if name
        else sa.null()
    )
    configured = sa.exists().select_from(local_queues)
    row = conn.execute(sa.select(mapped.label("mapped"), configured.label("configured"))).one()
    return row.mapped, bool(row.configured)


# Configuration sync ----------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class DesiredRow:
    """A quota row as the configuration defines it (usage is derived afterwards)."""

    key: QuotaKey
    nominal: int
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

    Uses the scheduler's own :class:`~budcore.scheduling.quota.QuotaTree`, so subtree quotas are
    computed exactly as the scheduler computes them.
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
        scope = node_scope(node)
        kind = "Cohort" if node.is_cohort else "ClusterQueue"
        parent = None if node.parent is None else node_scope(node.parent)
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
                DesiredRow(
                    QuotaKey(scope, flavor, resource),
                    node.nominal.get(fr, 0),
                    quota,
                    parent,
                    borrowing,
                    lending,
                    node.depth,
                )
            )
    return rows


def check_local_queues(local_queues: Iterable[LocalQueue], cluster_queues: Iterable[str]) -> list[LocalQueue]:
    """LocalQueues to store, validated against the ClusterQueues being synced."""
    known = set(cluster_queues)
    out: dict[tuple[str, str], LocalQueue] = {}
    for lq in local_queues:
        where = f"LocalQueue/{lq.namespace}/{lq.name}"
        if lq.key in out:
            raise ValidationError(f"duplicate LocalQueue {lq.namespace}/{lq.name}", path=where)
        if lq.cluster_queue not in known:
            raise ValidationError(
                f"LocalQueue {lq.namespace}/{lq.name} references ClusterQueue {lq.cluster_queue!r}, "
                "which is not in the configuration being synced",
                path=f"{where}.spec.clusterQueue",
            )
        out[lq.key] = lq
    return [out[k] for k in sorted(out)]


def _lock_all(conn: Connection) -> dict[QuotaKey, QuotaRow]:
    rows = conn.execute(sa.select(*ROW_COLUMNS).order_by(*key_order()).with_for_update())
    return {u.key: u for u in map(row_from_db, rows)}


def _direct_reservations(conn: Connection) -> dict[QuotaKey, tuple[int, int]]:
    """Per quota row: (sum of direct reservations, number of jobs holding one)."""
    r = quota_reservations.c
    rows = conn.execute(
        sa.select(r.cluster_queue, r.flavor, r.resource, sa.func.sum(r.amount), sa.func.count()).group_by(
            r.cluster_queue, r.flavor, r.resource
        )
    )
    return {QuotaKey(x[0], x[1], x[2]): (int(x[3]), int(x[4])) for x in rows}


def _sync_local_queues(conn: Connection, wanted: Sequence[LocalQueue], *, prune: bool) -> None:
    lq = local_queues.c
    if prune:
        keep = [(x.namespace, x.name) for x in wanted]
        stmt = sa.delete(local_queues)
        if keep:
            stmt = stmt.where(sa.not_(sa.tuple_(lq.namespace, lq.name).in_(keep)))
        conn.execute(stmt)
    if wanted:
        insert = pg_insert(local_queues)
        upsert = insert.on_conflict_do_update(
            index_elements=[lq.namespace, lq.name],
            set_={
                "cluster_queue": insert.excluded.cluster_queue,
                "version": lq.version + 1,
                "updated_at": sa.func.now(),
            },
            where=lq.cluster_queue.is_distinct_from(insert.excluded.cluster_queue),
        )
        conn.execute(
            upsert,
            [{"namespace": x.namespace, "name": x.name, "cluster_queue": x.cluster_queue} for x in wanted],
        )


def sync_rows(
    conn: Connection,
    desired: Sequence[DesiredRow],
    *,
    prune: bool,
    local_queues: Sequence[LocalQueue] | None = None,
) -> list[QuotaRow]:
    """Make the quota rows (and, when given, the LocalQueues) match the configuration, in the
    caller's (one) transaction.

    Locks every row, refuses (:class:`QuotaInUseError`, nothing written) to delete a row that is
    in use, upserts the configured rows (roots first, so a parent exists before its children),
    deletes the rest when ``prune``, writes the LocalQueue → ClusterQueue mapping, then re-derives
    every row's usage from the reservations through the core.
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
            "nominal": insert.excluded.nominal,
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
                    "nominal": row.nominal,
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
    if local_queues is not None:
        _sync_local_queues(conn, local_queues, prune=prune)
    rows = {u.key: u for u in map(row_from_db, conn.execute(sa.select(*ROW_COLUMNS)))}
    check_acyclic(rows)
    forest = QuotaForest(rows, usage_from_rows=False)
    for key, (amount, _) in sorted(reservations.items()):
        forest.charge(key, amount)
    write_used(conn, rows, forest.used())
    # Rows kept without pruning may sit under cohorts whose members changed: store what the core
    # derives as their subtree quota.
    stale = [(k, forest.node(k).subtree_quota.get(k.flavor_resource, 0)) for k in sorted(forest.mismatched())]
    if stale:
        conn.execute(
            sa.update(quota_usage)
            .where(
                q.cluster_queue == sa.bindparam("k_cq"),
                q.flavor == sa.bindparam("k_flavor"),
                q.resource == sa.bindparam("k_resource"),
            )
            .values(quota=sa.bindparam("new_quota", type_=sa.BigInteger), version=q.version + 1),
            [
                {"k_cq": k.cluster_queue, "k_flavor": k.flavor, "k_resource": k.resource, "new_quota": v}
                for k, v in stale
            ],
        )
    return [row_from_db(r) for r in conn.execute(sa.select(*ROW_COLUMNS).order_by(*key_order()))]


__all__ = [
    "MAX_AMOUNT",
    "DesiredRow",
    "QuotaForest",
    "QuotaKey",
    "QuotaRow",
    "cohort_scope",
    "desired_rows",
    "lock_quota",
    "read_forest",
    "release_reservations",
    "reserve",
    "sync_rows",
]
