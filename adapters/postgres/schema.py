"""The tables at head revision, as SQLAlchemy Core objects the queries are built from.

This describes the schema the code *uses*; the migrations under ``migrations/versions`` are what
*creates* it and are written out by hand, frozen per revision, so editing this module can never
silently change an old migration. ``tests/postgres/test_migrations.py`` checks the two agree.

Every table is prefixed ``budcore_`` (and Alembic's bookkeeping lives in
``budcore_alembic_version``) because a service usually keeps its own tables, and its own Alembic
history, in the same database.

Amounts are integer milli-units in ``BIGINT`` (one TiB of memory is ~1.1e15 milli-bytes).
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

VERSION_TABLE = "budcore_alembic_version"

# Tenants and job ids compare and sort bytewise ("C" collation) whatever the database's default
# locale is, so FIFO order by (created_at, id) is the same as Python's string order everywhere.
KEY = sa.Text(collation="C")

metadata = sa.MetaData()

jobs = sa.Table(
    "budcore_jobs",
    metadata,
    sa.Column("tenant", KEY, primary_key=True),
    sa.Column("id", KEY, primary_key=True),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("idempotency_key", sa.Text, nullable=True),
    sa.Column("local_queue", sa.Text, nullable=True),
    sa.Column("priority", sa.Text, nullable=False),
    sa.Column("project", sa.Text, nullable=False),
    sa.Column("job_type", sa.Text, nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    # The whole Job as pydantic's JSON: the source of truth when reading. The columns above are
    # copies of fields for indexing/filtering, written from the same Job in the same statement.
    sa.Column("doc", JSONB, nullable=False),
    sa.UniqueConstraint("tenant", "idempotency_key", name="uq_budcore_jobs_idempotency"),
    sa.CheckConstraint("version >= 1", name="ck_budcore_jobs_version"),
)

outbox = sa.Table(
    "budcore_outbox",
    metadata,
    sa.Column("id", sa.BigInteger, sa.Identity(always=False), primary_key=True),
    sa.Column("tenant", sa.Text, nullable=False),
    sa.Column("kind", sa.Text, nullable=False),
    sa.Column("event", JSONB, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    sa.Column("dispatched_at", sa.DateTime(timezone=True), nullable=True),
)

# One row per node of the quota tree and (flavor, resource): a ClusterQueue, or a cohort under the
# scope ``cohort:<name>`` (see :mod:`.quota`). ``parent`` is the scope of the row above it for the
# same flavor and resource (NULL: a root); ``nominal`` is the node's own nominalQuota and the
# limits are Kueue's (NULL: unlimited); ``quota`` is the node's subtree quota (a ClusterQueue's
# nominalQuota), derived by the core quota tree when the row is written.
quota_usage = sa.Table(
    "budcore_quota_usage",
    metadata,
    sa.Column("cluster_queue", sa.Text, primary_key=True),
    sa.Column("flavor", sa.Text, primary_key=True),
    sa.Column("resource", sa.Text, primary_key=True),
    sa.Column("quota", sa.BigInteger, nullable=False),
    sa.Column("used", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("version", sa.Integer, nullable=False, server_default="1"),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    sa.Column("parent", sa.Text, nullable=True),
    sa.Column("borrowing_limit", sa.BigInteger, nullable=True),
    sa.Column("lending_limit", sa.BigInteger, nullable=True),
    sa.Column("nominal", sa.BigInteger, nullable=False),
    sa.CheckConstraint("quota >= 0", name="ck_budcore_quota_usage_quota"),
    sa.CheckConstraint("used >= 0", name="ck_budcore_quota_usage_used"),
    sa.CheckConstraint("borrowing_limit >= 0", name="ck_budcore_quota_usage_borrowing_limit"),
    sa.CheckConstraint("lending_limit >= 0", name="ck_budcore_quota_usage_lending_limit"),
    sa.CheckConstraint("nominal >= 0", name="ck_budcore_quota_usage_nominal"),
    sa.ForeignKeyConstraint(
        ["parent", "flavor", "resource"],
        ["budcore_quota_usage.cluster_queue", "budcore_quota_usage.flavor", "budcore_quota_usage.resource"],
        name="fk_budcore_quota_usage_parent",
    ),
)

quota_reservations = sa.Table(
    "budcore_quota_reservations",
    metadata,
    sa.Column("tenant", KEY, primary_key=True),
    sa.Column("job_id", KEY, primary_key=True),
    sa.Column("cluster_queue", sa.Text, primary_key=True),
    sa.Column("flavor", sa.Text, primary_key=True),
    sa.Column("resource", sa.Text, primary_key=True),
    sa.Column("amount", sa.BigInteger, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    sa.ForeignKeyConstraint(
        ["tenant", "job_id"], ["budcore_jobs.tenant", "budcore_jobs.id"], name="fk_budcore_reservations_job"
    ),
    sa.ForeignKeyConstraint(
        ["cluster_queue", "flavor", "resource"],
        ["budcore_quota_usage.cluster_queue", "budcore_quota_usage.flavor", "budcore_quota_usage.resource"],
        name="fk_budcore_reservations_quota",
    ),
    sa.CheckConstraint("amount > 0", name="ck_budcore_reservations_amount"),
)

# The LocalQueue -> ClusterQueue mapping of the synced configuration: a job (namespace = tenant,
# LocalQueue name) may only be charged to the ClusterQueue its LocalQueue leads to.
local_queues = sa.Table(
    "budcore_local_queues",
    metadata,
    sa.Column("namespace", KEY, primary_key=True),
    sa.Column("name", KEY, primary_key=True),
    sa.Column("cluster_queue", sa.Text, nullable=False),
    sa.Column("version", sa.Integer, nullable=False, server_default="1"),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
)

leases = sa.Table(
    "budcore_leases",
    metadata,
    sa.Column("tenant", KEY, primary_key=True),
    sa.Column("job_id", KEY, primary_key=True),
    sa.Column("holder", sa.Text, nullable=False),
    sa.Column("acquired_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("renewed_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("version", sa.Integer, nullable=False, server_default="1"),
    sa.ForeignKeyConstraint(
        ["tenant", "job_id"], ["budcore_jobs.tenant", "budcore_jobs.id"], name="fk_budcore_leases_job"
    ),
)

# Capacity bookings (the reservation store port): one row per booking, keyed by name. Bookings of
# one (cluster_queue, flavor, resource) compete for its nominal quota over [start_at, end_at);
# ``quantity`` is in milli-units and ``job_ids`` keeps the order it was given in.
reservations = sa.Table(
    "budcore_reservations",
    metadata,
    sa.Column("name", KEY, primary_key=True),
    sa.Column("owner", KEY, nullable=False),
    sa.Column("cluster_queue", sa.Text, nullable=False),
    sa.Column("flavor", sa.Text, nullable=False),
    sa.Column("resource", sa.Text, nullable=False),
    sa.Column("quantity", sa.BigInteger, nullable=False),
    sa.Column("start_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("end_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("job_ids", ARRAY(sa.Text), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("quantity > 0", name="ck_budcore_reservations_quantity"),
    sa.CheckConstraint("end_at > start_at", name="ck_budcore_reservations_interval"),
)

# Pipelines (the pipeline store port, revision 0006): a definition per (id, version) with the digest
# of its canonical JSON (a version with runs may not change: the digest says whether a save
# changes it); a run's header, with copies of the fields list_runs filters and orders by, and its
# optimistic-concurrency ``version``; one row per step record, ``position`` keeping the order the
# records were created in (the engine writes only the records that changed).
pipelines = sa.Table(
    "budcore_pipelines",
    metadata,
    sa.Column("id", KEY, primary_key=True),
    sa.Column("version", sa.Integer, primary_key=True),
    sa.Column("spec", JSONB, nullable=False),
    sa.Column("digest", sa.Text, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    sa.CheckConstraint("version >= 1", name="ck_budcore_pipelines_version"),
)

pipeline_runs = sa.Table(
    "budcore_pipeline_runs",
    metadata,
    sa.Column("run_id", KEY, primary_key=True),
    sa.Column("pipeline_id", KEY, nullable=False),
    sa.Column("pipeline_version", sa.Integer, nullable=False),
    sa.Column("tenant", KEY, nullable=False),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("header", JSONB, nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(
        ["pipeline_id", "pipeline_version"],
        ["budcore_pipelines.id", "budcore_pipelines.version"],
        name="fk_budcore_pipeline_runs_pipeline",
    ),
    sa.CheckConstraint("version >= 1", name="ck_budcore_pipeline_runs_version"),
)

pipeline_steps = sa.Table(
    "budcore_pipeline_steps",
    metadata,
    sa.Column("run_id", KEY, primary_key=True),
    sa.Column("step_id", KEY, primary_key=True),
    sa.Column("position", sa.BigInteger, nullable=False),
    sa.Column("record", JSONB, nullable=False),
    sa.ForeignKeyConstraint(
        ["run_id"], ["budcore_pipeline_runs.run_id"], name="fk_budcore_pipeline_steps_run", ondelete="CASCADE"
    ),
)

# Metered usage (revision 0007): one row per (admission, flavor, resource) a job is charged in its
# ClusterQueue, opened in the transaction that reserves the quota and closed (``end_at``) in the one
# that gives it back. ``borrowed`` is the part of ``amount`` above the ClusterQueue's nominal quota
# and ``lenders`` who lent it ({account: milli-units}); see :mod:`.usage`. No foreign key to the
# jobs: usage is a financial record that outlives whatever happens to job rows.
usage = sa.Table(
    "budcore_usage",
    metadata,
    sa.Column("id", sa.BigInteger, sa.Identity(always=False), primary_key=True),
    sa.Column("tenant", KEY, nullable=False),
    sa.Column("job_id", KEY, nullable=False),
    sa.Column("cluster_queue", sa.Text, nullable=False),
    sa.Column("flavor", sa.Text, nullable=False),
    sa.Column("resource", sa.Text, nullable=False),
    sa.Column("amount", sa.BigInteger, nullable=False),
    sa.Column("borrowed", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("lenders", JSONB, nullable=False, server_default=sa.text("'{}'::jsonb")),
    sa.Column("accelerator", sa.Text, nullable=True),
    sa.Column("mode", sa.Text, nullable=False, server_default="exclusive"),
    sa.Column("priority", sa.Text, nullable=False),
    sa.Column("start_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("end_at", sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint("amount > 0", name="ck_budcore_usage_amount"),
    sa.CheckConstraint("borrowed >= 0 AND borrowed <= amount", name="ck_budcore_usage_borrowed"),
    sa.CheckConstraint("end_at >= start_at", name="ck_budcore_usage_interval"),
)

sa.Index("ix_budcore_jobs_tenant_created", jobs.c.tenant, jobs.c.created_at, jobs.c.id)
sa.Index("ix_budcore_jobs_status_created", jobs.c.status, jobs.c.created_at, jobs.c.id, jobs.c.tenant)
sa.Index("ix_budcore_jobs_tenant_status_created", jobs.c.tenant, jobs.c.status, jobs.c.created_at, jobs.c.id)
sa.Index("ix_budcore_outbox_pending", outbox.c.id, postgresql_where=outbox.c.dispatched_at.is_(None))
sa.Index("ix_budcore_leases_expires", leases.c.expires_at)
sa.Index("ix_budcore_quota_usage_parent", quota_usage.c.parent, quota_usage.c.flavor, quota_usage.c.resource)
sa.Index(
    "ix_budcore_reservations_key_start",
    reservations.c.cluster_queue,
    reservations.c.flavor,
    reservations.c.resource,
    reservations.c.start_at,
)
sa.Index("ix_budcore_reservations_start_name", reservations.c.start_at, reservations.c.name)
sa.Index(
    "ix_budcore_pipeline_runs_pipeline",
    pipeline_runs.c.pipeline_id,
    pipeline_runs.c.pipeline_version,
)
sa.Index("ix_budcore_pipeline_runs_created", pipeline_runs.c.created_at, pipeline_runs.c.run_id)
sa.Index(
    "ix_budcore_pipeline_runs_status",
    pipeline_runs.c.status,
    pipeline_runs.c.created_at,
    pipeline_runs.c.run_id,
)
sa.Index("ix_budcore_pipeline_steps_position", pipeline_steps.c.run_id, pipeline_steps.c.position)
sa.Index("ix_budcore_usage_tenant_start", usage.c.tenant, usage.c.start_at)
sa.Index("ix_budcore_usage_open", usage.c.tenant, usage.c.job_id, postgresql_where=usage.c.end_at.is_(None))
