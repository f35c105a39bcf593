"""Quota isolation: the LocalQueue → ClusterQueue mapping, and each quota row's own nominal quota.

- ``budcore_local_queues``: one row per LocalQueue of the synced configuration (namespace, name)
  with the ClusterQueue it leads to. The ledger checks it in the admitting transaction: a job
  (namespace = tenant, LocalQueue) may only be charged to that ClusterQueue.
- ``budcore_quota_usage.nominal``: the node's own ``nominalQuota``, so the ledger can build the
  scheduler's quota tree from the rows it locks (``quota`` stays: the derived subtree quota).
- An index on ``(parent, flavor, resource)``: the ledger reads a quota row's whole tree, down
  from its root.

Existing rows get their nominal quota back from the tree revision 0003 stored: a row without
children (every ClusterQueue row, and every row set by hand) had ``quota = nominalQuota``; a cohort
row's ``quota`` was its own nominal quota plus what each child lends (``child.quota`` less the
part its lending limit keeps: ``max(0, child.quota − lending_limit)``).

Downgrading drops the mapping, the index and the column; ``quota`` keeps meaning what 0003 meant.

Revision ID: 0004_queue_isolation
Revises: 0003_quota_tree
Create Date: 2026-12-08
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004_queue_isolation"
down_revision: str | None = "0003_quota_tree"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLE = "budcore_quota_usage"


def upgrade() -> None:
    op.add_column(TABLE, sa.Column("nominal", sa.BigInteger, nullable=True))
    op.execute(
        sa.text(
            "UPDATE budcore_quota_usage AS u SET nominal = GREATEST(0, u.quota - COALESCE(("
            "SELECT sum(c.quota - CASE WHEN c.lending_limit IS NULL THEN 0 "
            "ELSE GREATEST(0, c.quota - c.lending_limit) END) "
            "FROM budcore_quota_usage AS c WHERE c.parent = u.cluster_queue "
            "AND c.flavor = u.flavor AND c.resource = u.resource), 0))"
        )
    )
    op.alter_column(TABLE, "nominal", nullable=False)
    op.create_check_constraint("ck_budcore_quota_usage_nominal", TABLE, "nominal >= 0")
    op.create_index("ix_budcore_quota_usage_parent", TABLE, ["parent", "flavor", "resource"])
    op.create_table(
        "budcore_local_queues",
        sa.Column("namespace", sa.Text(collation="C"), nullable=False),
        sa.Column("name", sa.Text(collation="C"), nullable=False),
        sa.Column("cluster_queue", sa.Text, nullable=False),
        sa.Column("version", sa.Integer, nullable=False, server_default="1"),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.PrimaryKeyConstraint("namespace", "name", name="pk_budcore_local_queues"),
    )


def downgrade() -> None:
    op.drop_table("budcore_local_queues")
    op.drop_index("ix_budcore_quota_usage_parent", table_name=TABLE)
    op.drop_constraint("ck_budcore_quota_usage_nominal", TABLE, type_="check")
    op.drop_column(TABLE, "nominal")
