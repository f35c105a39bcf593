"""Multi-replica admission: quota usage rows, per-job reservations, admission leases; indexes.

- ``budcore_quota_usage``: one row per (ClusterQueue, flavor, resource) with its quota and the
  amount in use. Replicas lock these rows (``SELECT … FOR UPDATE``) to admit, so usage cannot be
  double-spent.
- ``budcore_quota_reservations``: what each admitted job took, so releasing gives back exactly that.
- ``budcore_leases``: admitted-but-not-started jobs; an expired lease gets the job requeued.
- A partial index on undispatched outbox rows keeps the dispatcher's scan small as the outbox
  grows, and a (tenant, status, created_at) index serves tenant-scoped queue listings.

Revision ID: 0002_admission
Revises: 0001_initial
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002_admission"
down_revision: str | None = "0001_initial"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_budcore_jobs_tenant_status_created", "budcore_jobs", ["tenant", "status", "created_at", "id"]
    )
    op.create_index(
        "ix_budcore_outbox_pending",
        "budcore_outbox",
        ["id"],
        postgresql_where=sa.text("dispatched_at IS NULL"),
    )
    op.create_table(
        "budcore_quota_usage",
        sa.Column("cluster_queue", sa.Text, nullable=False),
        sa.Column("flavor", sa.Text, nullable=False),
        sa.Column("resource", sa.Text, nullable=False),
        sa.Column("quota", sa.BigInteger, nullable=False),
        sa.Column("used", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("version", sa.Integer, nullable=False, server_default="1"),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.PrimaryKeyConstraint("cluster_queue", "flavor", "resource", name="pk_budcore_quota_usage"),
        sa.CheckConstraint("quota >= 0", name="ck_budcore_quota_usage_quota"),
        sa.CheckConstraint("used >= 0", name="ck_budcore_quota_usage_used"),
    )
    op.create_table(
        "budcore_quota_reservations",
        sa.Column("tenant", sa.Text(collation="C"), nullable=False),
        sa.Column("job_id", sa.Text(collation="C"), nullable=False),
        sa.Column("cluster_queue", sa.Text, nullable=False),
        sa.Column("flavor", sa.Text, nullable=False),
        sa.Column("resource", sa.Text, nullable=False),
        sa.Column("amount", sa.BigInteger, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.PrimaryKeyConstraint(
            "tenant", "job_id", "cluster_queue", "flavor", "resource", name="pk_budcore_quota_reservations"
        ),
        sa.ForeignKeyConstraint(
            ["tenant", "job_id"],
            ["budcore_jobs.tenant", "budcore_jobs.id"],
            name="fk_budcore_reservations_job",
        ),
        sa.ForeignKeyConstraint(
            ["cluster_queue", "flavor", "resource"],
            [
                "budcore_quota_usage.cluster_queue",
                "budcore_quota_usage.flavor",
                "budcore_quota_usage.resource",
            ],
            name="fk_budcore_reservations_quota",
        ),
        sa.CheckConstraint("amount > 0", name="ck_budcore_reservations_amount"),
    )
    op.create_table(
        "budcore_leases",
        sa.Column("tenant", sa.Text(collation="C"), nullable=False),
        sa.Column("job_id", sa.Text(collation="C"), nullable=False),
        sa.Column("holder", sa.Text, nullable=False),
        sa.Column("acquired_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("renewed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("version", sa.Integer, nullable=False, server_default="1"),
        sa.PrimaryKeyConstraint("tenant", "job_id", name="pk_budcore_leases"),
        sa.ForeignKeyConstraint(
            ["tenant", "job_id"],
            ["budcore_jobs.tenant", "budcore_jobs.id"],
            name="fk_budcore_leases_job",
        ),
    )
    op.create_index("ix_budcore_leases_expires", "budcore_leases", ["expires_at"])
    # Jobs admitted before this revision existed have no lease; give them one starting now so the
    # reconciler treats them like any other admitted job.
    op.execute(
        sa.text(
            "INSERT INTO budcore_leases (tenant, job_id, holder, acquired_at, renewed_at, expires_at) "
            "SELECT tenant, id, 'migration-0002', now(), now(), now() + interval '30 seconds' "
            "FROM budcore_jobs WHERE status = 'admitted'"
        )
    )


def downgrade() -> None:
    op.drop_index("ix_budcore_leases_expires", table_name="budcore_leases")
    op.drop_table("budcore_leases")
    op.drop_table("budcore_quota_reservations")
    op.drop_table("budcore_quota_usage")
    op.drop_index("ix_budcore_outbox_pending", table_name="budcore_outbox")
    op.drop_index("ix_budcore_jobs_tenant_status_created", table_name="budcore_jobs")
