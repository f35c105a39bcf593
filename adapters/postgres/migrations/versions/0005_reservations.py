"""Capacity bookings: ``budcore_reservations``, one row per booking (the reservation store port).

- ``name`` (bytewise "C" collation, like job ids) is the key; ``owner`` is the tenant it books for.
- ``(cluster_queue, flavor, resource)`` is what bookings compete for; ``quantity`` is in
  milli-units (``BIGINT``, positive) and ``[start_at, end_at)`` the booked interval (non-empty).
- ``job_ids`` (``text[]``, in the order given; empty: any job of the owner's) and ``created_at``.
- An index on ``(cluster_queue, flavor, resource, start_at)`` serves the conflict check (the
  bookings of one key overlapping an interval) and an index on ``(start_at, name)`` the listing
  order.

No capacity is stored: the store checks a new booking against the caller's capacity under an
advisory lock on its key (see :mod:`budcore_adapters.postgres.reservations`).

Downgrading drops the table and every booking in it.

Revision ID: 0005_reservations
Revises: 0004_queue_isolation
Create Date: 2027-01-12
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import ARRAY

revision: str = "0005_reservations"
down_revision: str | None = "0004_queue_isolation"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLE = "budcore_reservations"


def upgrade() -> None:
    op.create_table(
        TABLE,
        sa.Column("name", sa.Text(collation="C"), nullable=False),
        sa.Column("owner", sa.Text(collation="C"), nullable=False),
        sa.Column("cluster_queue", sa.Text, nullable=False),
        sa.Column("flavor", sa.Text, nullable=False),
        sa.Column("resource", sa.Text, nullable=False),
        sa.Column("quantity", sa.BigInteger, nullable=False),
        sa.Column("start_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("end_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("job_ids", ARRAY(sa.Text), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_budcore_reservations"),
        sa.CheckConstraint("quantity > 0", name="ck_budcore_reservations_quantity"),
        sa.CheckConstraint("end_at > start_at", name="ck_budcore_reservations_interval"),
    )
    op.create_index(
        "ix_budcore_reservations_key_start", TABLE, ["cluster_queue", "flavor", "resource", "start_at"]
    )
    op.create_index("ix_budcore_reservations_start_name", TABLE, ["start_at", "name"])


def downgrade() -> None:
    op.drop_index("ix_budcore_reservations_start_name", table_name=TABLE)
    op.drop_index("ix_budcore_reservations_key_start", table_name=TABLE)
    op.drop_table(TABLE)
