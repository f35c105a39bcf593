"""Metered usage: ``budcore_usage``, one row per (admission, flavor, resource) a job is charged.

- An admission through the ledger opens one row per (flavor, resource) it reserves in its
  ClusterQueue, in the same transaction: ``amount`` (milli-units, positive), the part of it
  ``borrowed`` above the ClusterQueue's nominal quota (``0 <= borrowed <= amount``) and
  ``lenders``, who lent that part (JSONB ``{account: milli-units}``; an account is a ClusterQueue
  or ``cohort:<name>``), plus what pricing needs (``accelerator``, ``mode``, ``priority``).
- ``[start_at, end_at)`` is when the job held the quota; ``end_at`` is NULL while it still does,
  and is set in the transaction that gives the quota back.
- ``id`` is an identity: a job admitted, requeued and admitted again has one row per admission.
- ``tenant`` and ``job_id`` use the bytewise "C" collation, like the jobs table, but there is no
  foreign key to it: usage is a financial record, kept whatever happens to the job rows.
- An index on ``(tenant, start_at)`` serves reports and the budget guard (a tenant's usage over a
  window); a partial index on the open rows ``(tenant, job_id) WHERE end_at IS NULL`` serves
  closing them.

Downgrading drops the table and every usage row in it.

Revision ID: 0007_usage
Revises: 0006_pipelines
Create Date: 2027-02-20
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision: str = "0007_usage"
down_revision: str | None = "0006_pipelines"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLE = "budcore_usage"


def upgrade() -> None:
    op.create_table(
        TABLE,
        sa.Column("id", sa.BigInteger, sa.Identity(always=False), nullable=False),
        sa.Column("tenant", sa.Text(collation="C"), nullable=False),
        sa.Column("job_id", sa.Text(collation="C"), nullable=False),
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
        sa.PrimaryKeyConstraint("id", name="pk_budcore_usage"),
        sa.CheckConstraint("amount > 0", name="ck_budcore_usage_amount"),
        sa.CheckConstraint("borrowed >= 0 AND borrowed <= amount", name="ck_budcore_usage_borrowed"),
        sa.CheckConstraint("end_at >= start_at", name="ck_budcore_usage_interval"),
    )
    op.create_index("ix_budcore_usage_tenant_start", TABLE, ["tenant", "start_at"])
    op.create_index(
        "ix_budcore_usage_open", TABLE, ["tenant", "job_id"], postgresql_where=sa.text("end_at IS NULL")
    )


def downgrade() -> None:
    op.drop_index("ix_budcore_usage_open", table_name=TABLE)
    op.drop_index("ix_budcore_usage_tenant_start", table_name=TABLE)
    op.drop_table(TABLE)
