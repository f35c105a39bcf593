"""The pipeline store port: pipeline definitions and their runs, durable across engine restarts.

Contract (checked by :class:`budcore.testing.pipelines.PipelineStoreConformance` for every
implementation, in memory and PostgreSQL alike):

- ``save_pipeline`` stores a definition under ``(id, version)``. Saving the same content again is
  a no-op; saving *different* content under a version that has runs raises
  :class:`~budcore.domain.errors.ImmutableError` (a version is immutable once a run exists: bump
  ``version``); without runs the definition is replaced. ``get_pipeline(id)`` returns the highest
  version, ``get_pipeline(id, version)`` that one, else ``NotFoundError``.
- ``create_run`` stores a new run with ``version == 1`` (and returns it); creating a run whose
  ``run_id`` exists returns the stored run unchanged (a replayed start is idempotent). The run's
  pipeline version must have been saved (``NotFoundError`` otherwise).
- ``save_run(run, changed)`` writes the run's header and the step records named in ``changed``
  (their ids in ``run.steps``) if ``run.version`` is the stored version, atomically; the stored
  version becomes ``run.version + 1``, which is also set on ``run``. A stale version raises
  ``ConflictError`` and writes nothing. Step records not named keep their stored content, so the
  engine writes only what changed.
- ``get_run`` returns a fresh copy (changing it changes nothing stored); ``list_runs`` the runs
  matching the filters, ordered by ``(created_at, run_id)``.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:  # the port carries the pipeline's types, as the ledger port carries the scheduler's
    from budcore.pipeline.model import PipelineSpec
    from budcore.pipeline.state import PipelineRun, RunStatus


@runtime_checkable
class PipelineStore(Protocol):
    def save_pipeline(self, spec: PipelineSpec) -> PipelineSpec:
        """Store ``spec`` under ``(spec.id, spec.version)``; see the module's contract."""
        ...

    def get_pipeline(self, pipeline_id: str, version: int | None = None) -> PipelineSpec:
        """A stored definition (the latest version when ``version`` is ``None``)."""
        ...

    def create_run(self, run: PipelineRun) -> PipelineRun:
        """Store a new run (version 1), or return the stored one with the same ``run_id``."""
        ...

    def get_run(self, run_id: str) -> PipelineRun:
        """A copy of the stored run, or ``NotFoundError``."""
        ...

    def save_run(self, run: PipelineRun, changed: Collection[str]) -> PipelineRun:
        """Write the header and the ``changed`` step records if ``run.version`` is current."""
        ...

    def list_runs(
        self,
        *,
        pipeline_id: str | None = None,
        tenant: str | None = None,
        statuses: Collection[RunStatus] | None = None,
    ) -> list[PipelineRun]:
        """Runs matching every given filter, oldest first."""
        ...
