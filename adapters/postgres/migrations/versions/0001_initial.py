"""Initial schema: jobs (full Job as JSONB plus indexed columns) and the transactional outbox.

Revision ID: 0001_initial
Revises:
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision: str = "0001_initial"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "budcore_jobs",
        sa.Column("tenant", sa.Text(collation="C"), nullable=False),
        sa.Column("id", sa.Text(collation="C"), nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("idempotency_key", sa.Text, nullable=True),
        sa.Column("local_queue", sa.Text, nullable=True),
        sa.Column("priority", sa.Text, nullable=False),
        sa.Column("project", sa.Text, nullable=False),
        sa.Column("job_type", sa.Text, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("doc", JSONB, nullable=False),
        sa.PrimaryKeyConstraint("tenant", "id", name="pk_budcore_jobs"),
        sa.UniqueConstraint("tenant", "idempotency_key", name="uq_budcore_jobs_idempotency"),
        sa.CheckConstraint("version >= 1", name="ck_budcore_jobs_version"),
    )
    op.create_index("ix_budcore_jobs_tenant_created", "budcore_jobs", ["tenant", "created_at", "id"])
    op.create_index(
        "ix_budcore_jobs_status_created", "budcore_jobs", ["status", "created_at", "id", "tenant"]
    )
    op.create_table(
        "budcore_outbox",
        sa.Column("id", sa.BigInteger, sa.Identity(always=False), nullable=False),
        sa.Column("tenant", sa.Text, nullable=False),
        sa.Column("kind", sa.Text, nullable=False),
        sa.Column("event", JSONB, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("dispatched_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_budcore_outbox"),
    )


def downgrade() -> None:
    op.drop_table("budcore_outbox")
    op.drop_index("ix_budcore_jobs_status_created", table_name="budcore_jobs")
    op.drop_index("ix_budcore_jobs_tenant_created", table_name="budcore_jobs")
    op.drop_table("budcore_jobs")
