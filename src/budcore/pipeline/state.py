"""What a pipeline *run* is at an instant: the run's status and each step's, as stored.

A run is the unit of persistence: :class:`PipelineRun` (the header) and one :class:`StepRun` per
step, loop iteration (``loop[3]``) and compensating step (``deploy~undo``). The engine changes a
few step records at a time and the store writes just those (``PipelineRunStore.save``), so a
10,000-step run does not rewrite itself 10,000 times.

Both are plain slotted dataclasses with ``to_dict``/``from_dict`` (JSON-safe) rather than pydantic
models: they are built and changed on the engine's hot path, and they hold only data the engine
wrote itself (validated where it entered: the pipeline spec and the run's parameters).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

__all__ = ["PipelineRun", "RunStatus", "StepRun", "StepStatus"]


class StepStatus(StrEnum):
    PENDING = "pending"  # its dependencies have not all ended
    WAITING = "waiting"  # ready, held: a retry backoff, a concurrency slot, or its job queued for quota
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    SKIPPED = "skipped"  # a condition or its ``when`` said no
    CANCELLED = (
        "cancelled"  # stopped by the failure policy, the run's cancel or timeout, or a failed upstream
    )

    @property
    def is_terminal(self) -> bool:
        return self in _STEP_TERMINAL

    @property
    def satisfies(self) -> bool:
        """Whether a dependency in this state lets the steps after it start."""
        return self in (StepStatus.COMPLETED, StepStatus.SKIPPED)


_STEP_TERMINAL = frozenset(
    {StepStatus.COMPLETED, StepStatus.FAILED, StepStatus.SKIPPED, StepStatus.CANCELLED}
)


class RunStatus(StrEnum):
    RUNNING = "running"
    SUCCEEDED = "succeeded"  # every step completed or was skipped
    PARTIAL = "partial"  # ``on_failure: continue``: some steps failed, others completed
    FAILED = "failed"
    CANCELLED = "cancelled"
    ROLLED_BACK = "rolled_back"  # ``on_failure: rollback``: failed, and the compensations ran

    @property
    def is_terminal(self) -> bool:
        return self is not RunStatus.RUNNING


def _time(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _parse_time(value: object) -> datetime | None:
    return None if value is None else datetime.fromisoformat(str(value))


@dataclass(slots=True)
class StepRun:
    """One step's state in one run.

    ``attempt`` counts the attempts started (a retry is attempt 2); together with the run id and
    the step id it forms the *idempotency key* every side effect carries
    (:attr:`effect_key`), so an attempt that a crash interrupted is re-sent with the same key and
    the receiver (a job store, an HTTP server, a registered function) sees it once.
    ``parent`` is the loop of an iteration, or the step a compensating step undoes.
    """

    step_id: str
    status: StepStatus = StepStatus.PENDING
    attempt: int = 0
    started_at: datetime | None = None
    ended_at: datetime | None = None
    wake_at: datetime | None = None  # a retry's backoff end, a wait's end, or an attempt's timeout
    outputs: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    message: str | None = None
    job_id: str | None = None
    parent: str | None = None
    index: int | None = None  # a loop iteration's position
    item: Any = None  # a loop iteration's item

    def effect_key(self, run_id: str) -> str:
        return f"{run_id}/{self.step_id}/{self.attempt}"

    def copy(self) -> StepRun:
        return StepRun(
            self.step_id,
            self.status,
            self.attempt,
            self.started_at,
            self.ended_at,
            self.wake_at,
            dict(self.outputs),
            self.error,
            self.message,
            self.job_id,
            self.parent,
            self.index,
            self.item,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "step_id": self.step_id,
            "status": self.status.value,
            "attempt": self.attempt,
            "started_at": _time(self.started_at),
            "ended_at": _time(self.ended_at),
            "wake_at": _time(self.wake_at),
            "outputs": self.outputs,
            "error": self.error,
            "message": self.message,
            "job_id": self.job_id,
            "parent": self.parent,
            "index": self.index,
            "item": self.item,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> StepRun:
        return cls(
            step_id=str(data["step_id"]),
            status=StepStatus(data["status"]),
            attempt=int(data.get("attempt", 0)),
            started_at=_parse_time(data.get("started_at")),
            ended_at=_parse_time(data.get("ended_at")),
            wake_at=_parse_time(data.get("wake_at")),
            outputs=dict(data.get("outputs") or {}),
            error=data.get("error"),
            message=data.get("message"),
            job_id=data.get("job_id"),
            parent=data.get("parent"),
            index=data.get("index"),
            item=data.get("item"),
        )


@dataclass(slots=True)
class PipelineRun:
    """One run of one pipeline version: its parameters, status and step records.

    ``version`` is the store's optimistic-concurrency counter (two engines advancing the same run
    cannot both write); ``steps`` maps step-record ids to records, in creation order.
    """

    run_id: str
    pipeline_id: str
    pipeline_version: int
    tenant: str
    params: dict[str, Any]
    status: RunStatus = RunStatus.RUNNING
    created_at: datetime | None = None
    started_at: datetime | None = None
    ended_at: datetime | None = None
    deadline: datetime | None = None
    timeout_at: datetime | None = None
    message: str | None = None
    version: int = 0
    steps: dict[str, StepRun] = field(default_factory=dict)

    def header(self) -> dict[str, Any]:
        """The run without its steps, JSON-safe (what a store keeps in the run's own row)."""
        return {
            "run_id": self.run_id,
            "pipeline_id": self.pipeline_id,
            "pipeline_version": self.pipeline_version,
            "tenant": self.tenant,
            "params": self.params,
            "status": self.status.value,
            "created_at": _time(self.created_at),
            "started_at": _time(self.started_at),
            "ended_at": _time(self.ended_at),
            "deadline": _time(self.deadline),
            "timeout_at": _time(self.timeout_at),
            "message": self.message,
            "version": self.version,
        }

    def to_dict(self) -> dict[str, Any]:
        return {**self.header(), "steps": [s.to_dict() for s in self.steps.values()]}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PipelineRun:
        run = cls(
            run_id=str(data["run_id"]),
            pipeline_id=str(data["pipeline_id"]),
            pipeline_version=int(data["pipeline_version"]),
            tenant=str(data["tenant"]),
            params=dict(data.get("params") or {}),
            status=RunStatus(data.get("status", "running")),
            created_at=_parse_time(data.get("created_at")),
            started_at=_parse_time(data.get("started_at")),
            ended_at=_parse_time(data.get("ended_at")),
            deadline=_parse_time(data.get("deadline")),
            timeout_at=_parse_time(data.get("timeout_at")),
            message=data.get("message"),
            version=int(data.get("version", 0)),
        )
        for step in data.get("steps") or ():
            record = StepRun.from_dict(step)
            run.steps[record.step_id] = record
        return run

    def copy(self) -> PipelineRun:
        clone = PipelineRun.from_dict(self.header())
        clone.steps = {k: v.copy() for k, v in self.steps.items()}
        return clone

    def counts(self) -> dict[str, int]:
        """How many step records are in each status (loop iterations and compensations included)."""
        out: dict[str, int] = {}
        for step in self.steps.values():
            out[step.status.value] = out.get(step.status.value, 0) + 1
        return out
