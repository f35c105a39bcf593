"""Pipelines and their runs: the pipeline store port's three tables.

- ``budcore_pipelines``: one definition per ``(id, version)``: the spec as JSON (``spec``), the
  SHA-256 ``digest`` of its sorted-key JSON (whether a save changes it: a version with runs may
  not change) and when it was first saved.
- ``budcore_pipeline_runs``: one row per run, keyed by ``run_id``: the run's header as JSON
  (``header``, the source of truth when reading), copies of the fields runs are listed by
  (``pipeline_id``, ``pipeline_version``, ``tenant``, ``status``, ``created_at``) and the
  optimistic-concurrency ``version``. A run references its pipeline version (foreign key), so a
  definition with runs cannot disappear from under them.
- ``budcore_pipeline_steps``: one row per step record of a run (``run_id``, ``step_id``), the
  record as JSON and its ``position``, the order the records were created in. A save writes only
  the records that changed, so a 10,000-step run is not rewritten after every step.

Ids, tenants and step ids use the bytewise "C" collation, like job ids, so runs list in the same
``(created_at, run_id)`` order as in Python whatever the database's locale.

Downgrading drops the three tables and every pipeline and run in them.

Revision ID: 0006_pipelines
Revises: 0005_reservations
Create Date: 2027-02-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision: str = "0006_pipelines"
down_revision: str | None = "0005_reservations"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PIPELINES = "budcore_pipelines"
RUNS = "budcore_pipeline_runs"
STEPS = "budcore_pipeline_steps"


def upgrade() -> None:
    op.create_table(
        PIPELINES,
        sa.Column("id", sa.Text(collation="C"), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("spec", JSONB, nullable=False),
        sa.Column("digest", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.PrimaryKeyConstraint("id", "version", name="pk_budcore_pipelines"),
        sa.CheckConstraint("version >= 1", name="ck_budcore_pipelines_version"),
    )
    op.create_table(
        RUNS,
        sa.Column("run_id", sa.Text(collation="C"), nullable=False),
        sa.Column("pipeline_id", sa.Text(collation="C"), nullable=False),
        sa.Column("pipeline_version", sa.Integer, nullable=False),
        sa.Column("tenant", sa.Text(collation="C"), nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("header", JSONB, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("run_id", name="pk_budcore_pipeline_runs"),
        sa.ForeignKeyConstraint(
            ["pipeline_id", "pipeline_version"],
            [f"{PIPELINES}.id", f"{PIPELINES}.version"],
            name="fk_budcore_pipeline_runs_pipeline",
        ),
        sa.CheckConstraint("version >= 1", name="ck_budcore_pipeline_runs_version"),
    )
    op.create_index("ix_budcore_pipeline_runs_pipeline", RUNS, ["pipeline_id", "pipeline_version"])
    op.create_index("ix_budcore_pipeline_runs_created", RUNS, ["created_at", "run_id"])
    op.create_index("ix_budcore_pipeline_runs_status", RUNS, ["status", "created_at", "run_id"])
    op.create_table(
        STEPS,
        sa.Column("run_id", sa.Text(collation="C"), nullable=False),
        sa.Column("step_id", sa.Text(collation="C"), nullable=False),
        sa.Column("position", sa.BigInteger, nullable=False),
        sa.Column("record", JSONB, nullable=False),
        sa.PrimaryKeyConstraint("run_id", "step_id", name="pk_budcore_pipeline_steps"),
        sa.ForeignKeyConstraint(
            ["run_id"], [f"{RUNS}.run_id"], name="fk_budcore_pipeline_steps_run", ondelete="CASCADE"
        ),
    )
    op.create_index("ix_budcore_pipeline_steps_position", STEPS, ["run_id", "position"])


def downgrade() -> None:
    op.drop_index("ix_budcore_pipeline_steps_position", table_name=STEPS)
    op.drop_table(STEPS)
    op.drop_index("ix_budcore_pipeline_runs_status", table_name=RUNS)
    op.drop_index("ix_budcore_pipeline_runs_created", table_name=RUNS)
    op.drop_index("ix_budcore_pipeline_runs_pipeline", table_name=RUNS)
    op.drop_table(RUNS)
    op.drop_table(PIPELINES)
