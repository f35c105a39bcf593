"""Quota rows form Kueue's cohort tree: parent links, borrowing and lending limits.

- ``budcore_quota_usage.parent``: the scope (``cohort:<name>``) of the row one level up for the
  same flavor and resource, or NULL for a root; a self-referencing foreign key keeps a parent
  from disappearing under its children.
- ``borrowing_limit`` / ``lending_limit``: Kueue's limits (NULL: unlimited).

Existing rows become roots with no limits, which is exactly what they meant before: a cap on
the row's own usage (``used <= quota``), with cohort rows reserved on directly.

Downgrading removes the tree: every row's usage is recomputed from its direct reservations (the
only usage revision 0002 knows), and a row that could borrow keeps its cap as
``quota + borrowing_limit``.

Revision ID: 0003_quota_tree
Revises: 0002_admission
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003_quota_tree"
down_revision: str | None = "0002_admission"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLE = "budcore_quota_usage"


def upgrade() -> None:
    op.add_column(TABLE, sa.Column("parent", sa.Text, nullable=True))
    op.add_column(TABLE, sa.Column("borrowing_limit", sa.BigInteger, nullable=True))
    op.add_column(TABLE, sa.Column("lending_limit", sa.BigInteger, nullable=True))
    op.create_check_constraint("ck_budcore_quota_usage_borrowing_limit", TABLE, "borrowing_limit >= 0")
    op.create_check_constraint("ck_budcore_quota_usage_lending_limit", TABLE, "lending_limit >= 0")
    op.create_foreign_key(
        "fk_budcore_quota_usage_parent",
        TABLE,
        TABLE,
        ["parent", "flavor", "resource"],
        ["cluster_queue", "flavor", "resource"],
    )


def downgrade() -> None:
    op.execute(
        sa.text(
            "UPDATE budcore_quota_usage AS u SET "
            "used = COALESCE((SELECT sum(r.amount) FROM budcore_quota_reservations AS r "
            "WHERE r.cluster_queue = u.cluster_queue AND r.flavor = u.flavor "
            "AND r.resource = u.resource), 0), "
            "quota = CASE WHEN u.parent IS NULL OR u.borrowing_limit IS NULL THEN u.quota "
            "WHEN u.borrowing_limit > 9223372036854775807 - u.quota THEN 9223372036854775807 "
            "ELSE u.quota + u.borrowing_limit END, "
            "version = u.version + 1, updated_at = now()"
        )
    )
    op.drop_constraint("fk_budcore_quota_usage_parent", TABLE, type_="foreignkey")
    op.drop_constraint("ck_budcore_quota_usage_lending_limit", TABLE, type_="check")
    op.drop_constraint("ck_budcore_quota_usage_borrowing_limit", TABLE, type_="check")
    op.drop_column(TABLE, "lending_limit")
    op.drop_column(TABLE, "borrowing_limit")
    op.drop_column(TABLE, "parent")
