"""Shared helpers of the pipeline engine tests: specs from dicts, a recording function, fake jobs.

- :func:`make_spec` builds a :class:`PipelineSpec` from plain dicts (``fn``/``wait``/... build
  step dicts);
- :class:`Recorder` is a registry of functions that record every raw call (step, idempotency key,
  instant, arguments), can be told to fail, and apply their effect once per key;
- :class:`FakeJobs` implements the :class:`~budcore.ports.pipeline_effects.StepJobs` port in
  memory (idempotent by key, cancellations recorded) so a test moves jobs by hand;
- :class:`Harness` wires an engine over the in-memory store and a manual clock, and
  :meth:`Harness.drive` advances a run to its end, moving the clock to each ``next_wakeup``;
- :class:`CrashingStore` is the in-memory store whose ``save_run`` dies (:class:`Crash`) when told;
- :func:`seeds_rag` is the seeds' RAG pipeline (§5.2.2) as printed, :func:`fixed_rag` without its race.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from budcore_adapters.inmemory.clock import ManualClock
from budcore_adapters.inmemory.pipelines import InMemoryPipelineStore

from budcore.domain.errors import NotFoundError
from budcore.domain.ids import JobId, TenantId
from budcore.domain.job import Job, JobStatus
from budcore.pipeline.engine import PipelineEngine
from budcore.pipeline.functions import FunctionRegistry
from budcore.pipeline.model import PipelineSpec
from budcore.pipeline.state import PipelineRun, StepStatus
from budcore.ports.pipeline_effects import ApiCaller, StepContext, StepFailure, StepJobs

__all__ = [
    "T0",
    "Call",
    "Crash",
    "CrashingStore",
    "FakeJobs",
    "Harness",
    "Recorder",
    "fixed_rag",
    "fn",
    "make_spec",
    "only",
    "seeds_rag",
    "statuses",
]

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def make_spec(steps: list[dict[str, Any]], **fields: Any) -> PipelineSpec:
    return PipelineSpec.model_validate({"id": fields.pop("id", "p"), **fields, "steps": steps})


def fn(step_id: str, *deps: str, function: str = "rec", **extra: Any) -> dict[str, Any]:
    """A ``function`` step calling ``function`` (the recorder by default) with ``args``."""
    args = extra.pop("args", {})
    return {
        "id": step_id,
        "type": "function",
        "config": {"function": function, "args": args},
        "depends_on": list(deps),
        **extra,
    }


def statuses(run: PipelineRun) -> dict[str, str]:
    return {step_id: record.status.value for step_id, record in run.steps.items()}


@dataclass(frozen=True)
class Call:
    step_id: str
    key: str
    attempt: int
    at: datetime
    args: Mapping[str, Any]


@dataclass
class Recorder:
    """Functions that record their calls. ``rec`` records and returns ``{"ok": True, **args}``
    (``fail=True`` fails every attempt; ``fail_times=n`` fails the first n attempts; ``transient``
    marks failures transient; ``outputs`` replaces what it returns). ``effects`` keeps one entry per
    idempotency key, as a receiver that honours keys would apply them."""

    calls: list[Call] = field(default_factory=list)
    effects: dict[str, str] = field(default_factory=dict)  # key -> step id
    hooks: dict[str, Callable[[StepContext], None]] = field(default_factory=dict)

    def rec(self, ctx: StepContext, **args: Any) -> Any:
        self.calls.append(Call(ctx.step_id, ctx.key, ctx.attempt, ctx.now, dict(args)))
        self.effects.setdefault(ctx.key, ctx.step_id)
        hook = self.hooks.get(ctx.step_id)
        if hook is not None:
            hook(ctx)
        if args.get("fail") or ctx.attempt <= int(args.get("fail_times", 0)):
            raise StepFailure(f"{ctx.step_id} failed on attempt {ctx.attempt}", transient=True)
        if "outputs" in args:
            return args["outputs"]
        return {"ok": True, **{k: v for k, v in args.items() if k not in ("fail", "fail_times")}}

    def registry(self, **more: Callable[..., Any]) -> FunctionRegistry:
        return FunctionRegistry({"rec": self.rec, **more})

    def order(self) -> list[str]:
        """Step ids in the order of their first call."""
        return list(dict.fromkeys(c.step_id for c in self.calls))

    def raw_calls(self) -> Counter[str]:
        return Counter(c.step_id for c in self.calls)

    def keys_of(self, step_id: str) -> list[str]:
        return [c.key for c in self.calls if c.step_id == step_id]


class FakeJobs:
    """The :class:`StepJobs` port in memory: jobs are stored by id and by idempotency key; a test
    moves them with :meth:`move`; cancellations are recorded."""

    def __init__(self, *, initial: JobStatus = JobStatus.QUEUED) -> None:
        self.initial = initial
        self.jobs: dict[str, Job] = {}
        self.by_key: dict[tuple[str, str], str] = {}
        self.submits: list[str] = []  # idempotency keys, raw
        self.cancelled: dict[str, str] = {}  # job id -> reason

    def submit(self, job: Job) -> Job:
        self.submits.append(job.idempotency_key or "")
        key = (str(job.tenant), job.idempotency_key or job.id)
        existing = self.by_key.get(key)
        if existing is not None:
            return self.jobs[existing]
        stored = job.model_copy(update={"status": self.initial})
        self.jobs[stored.id] = stored
        self.by_key[key] = stored.id
        return stored

    def get(self, tenant: TenantId, job_id: JobId) -> Job:
        try:
            return self.jobs[job_id]
        except KeyError:
            raise NotFoundError("job", job_id) from None

    def cancel(self, tenant: TenantId, job_id: JobId, reason: str) -> None:
        job = self.jobs.get(job_id)
        if job is None or job.status.is_terminal:
            return
        self.cancelled[job_id] = reason
        self.jobs[job_id] = job.model_copy(update={"status": JobStatus.CANCELLED, "status_message": reason})

    def eta(self, job: Job) -> datetime | None:
        return None

    # Test controls ----------------------------------------------------------------------------
    def of_step(self, step_id: str) -> Job:
        [job] = [j for j in self.jobs.values() if j.pipeline_step_id == step_id]
        return job

    def move(self, step_id: str, status: JobStatus, **outputs: str) -> None:
        job = self.of_step(step_id)
        self.jobs[job.id] = job.model_copy(update={"status": status, "outputs": {**job.outputs, **outputs}})


assert isinstance(FakeJobs(), StepJobs)


class Harness:
    """An engine over an in-memory store, a manual clock, a recorder, fake jobs."""

    def __init__(
        self,
        *,
        jobs: StepJobs | None = None,
        http: ApiCaller | None = None,
        recorder: Recorder | None = None,
        store: InMemoryPipelineStore | None = None,
        **functions: Callable[..., Any],
    ) -> None:
        self.store = store if store is not None else InMemoryPipelineStore()
        self.clock = ManualClock(T0)
        self.recorder = recorder or Recorder()
        self.jobs = jobs
        self.http = http
        self.functions = functions
        self.engine = self.new_engine()

    def new_engine(self) -> PipelineEngine:
        """Another engine over the same store (a restart)."""
        return PipelineEngine(
            self.store,
            clock=self.clock,
            jobs=self.jobs,
            http=self.http,
            functions=self.recorder.registry(**self.functions),
        )

    def start(self, spec: PipelineSpec, params: Mapping[str, Any] | None = None) -> PipelineRun:
        return self.engine.start(spec, params, run_id="run-1")

    def at(self, seconds: float) -> datetime:
        return T0 + timedelta(seconds=seconds)

    def advance_to(self, seconds: float) -> PipelineRun:
        self.clock.set(self.at(seconds))
        return self.engine.advance("run-1")

    def drive(
        self, run: PipelineRun, *, limit: int = 1000, engine: PipelineEngine | None = None
    ) -> PipelineRun:
        """Advance until the run ends, moving the clock to each wake-up (``limit`` advances)."""
        engine = engine or self.engine
        for _ in range(limit):
            if run.status.is_terminal:
                return run
            wake = engine.next_wakeup(run)
            if wake is not None and wake > self.clock.now():
                self.clock.set(wake)
            run = engine.advance(run.run_id)
        raise AssertionError(f"run did not end in {limit} advances: {statuses(run)}")

    def notifications(self) -> list[Any]:
        notifier = self.engine.notifier
        return list(getattr(notifier, "sent", {}).values())


class Crash(BaseException):
    """The process dies here (a BaseException: nothing in the engine may catch it)."""


class CrashingStore(InMemoryPipelineStore):
    """The in-memory store whose ``save_run`` dies on its k-th call, before or after writing."""

    def __init__(self, crash_at: int | None = None, after_write: bool = False) -> None:
        super().__init__()
        self.crash_at = crash_at
        self.after_write = after_write
        self.saves = 0

    def crash_next(self, *, after_write: bool = False) -> None:
        """Die on the next ``save_run`` (a test calls it right after the effect it cuts off)."""
        self.crash_at = self.saves + 1
        self.after_write = after_write

    def hook_once(self, *, after_write: bool = False) -> Callable[[StepContext], None]:
        """A :class:`Recorder` hook: the first call it sees dies on the next ``save_run``."""
        fired: list[bool] = []

        def hook(ctx: StepContext) -> None:
            if not fired:
                fired.append(True)
                self.crash_next(after_write=after_write)

        return hook

    def save_run(self, run: PipelineRun, changed: Collection[str]) -> PipelineRun:
        self.saves += 1
        if self.saves == self.crash_at and not self.after_write:
            self.crash_at = None
            raise Crash(f"save_run #{self.saves}")
        saved = super().save_run(run, changed)
        if self.saves == self.crash_at:
            self.crash_at = None
            raise Crash(f"after save_run #{self.saves}")
        return saved


def only(run: PipelineRun, status: StepStatus) -> set[str]:
    return {s for s, r in run.steps.items() if r.status is status}


# The seeds' RAG pipeline ------------------------------------------------------------------------------
def seeds_rag() -> dict[str, Any]:
    """The seeds' RAG deployment pipeline, transcribed from the unified architecture document,
    §5.2.2 "Example: RAG Deployment Pipeline" (the JSON as printed there, including its bug: step-7
    reads step-6's outputs without depending on it). A fresh copy on every call."""
    return {
        "pipeline": {
            "id": "pipeline-123",
            "name": "deploy-enterprise-rag",
            "trigger_type": "manual",
            "parameters": {
                "llm_model": "meta-llama/Llama-3.3-70B-Instruct",
                "embedding_model": "BAAI/bge-large-en-v1.5",
                "enable_reranker": True,
            },
        },
        "steps": [
            {
                "id": "step-1",
                "name": "optimize-llm-config",
                "order": 1,
                "step_type": "API_CALL",
                "depends_on": [],
                "config": {
                    "url": "http://budsim/api/v1/optimize",
                    "method": "POST",
                    "body": {"model_id": "{{ params.llm_model }}", "target_throughput": 100},
                },
            },
            {
                "id": "step-2",
                "name": "deploy-qdrant",
                "order": 2,
                "step_type": "JOB",
                "depends_on": [],
                "config": {
                    "job_type": "SERVICE",
                    "deployment_type": "HELM",
                    "component_ref": "qdrant",
                    "cpu_cores": 2,
                    "memory_gb": 8,
                },
            },
            {
                "id": "step-3",
                "name": "deploy-embedding",
                "order": 3,
                "step_type": "JOB",
                "depends_on": ["step-1"],
                "config": {
                    "job_type": "SERVICE",
                    "deployment_type": "MODEL",
                    "spec": {"model_id": "{{ params.embedding_model }}", "engine": "latentbud"},
                    "gpu_type": "nvidia-t4",
                    "gpu_count": 1,
                },
            },
            {
                "id": "step-4",
                "name": "deploy-llm",
                "order": 4,
                "step_type": "JOB",
                "depends_on": ["step-1"],
                "config": {
                    "job_type": "SERVICE",
                    "deployment_type": "MODEL",
                    "spec": {
                        "model_id": "{{ params.llm_model }}",
                        "engine": "vllm",
                        "budsim_config": "{{ steps.step-1.outputs.config }}",
                    },
                    "gpu_type": "nvidia-a100-80gb",
                    "gpu_count": 2,
                    "priority": "HIGH",
                },
            },
            {
                "id": "step-5",
                "name": "check-reranker",
                "order": 5,
                "step_type": "CONDITION",
                "depends_on": [],
                "config": {
                    "expression": "{{ params.enable_reranker }}",
                    "then_steps": ["step-6"],
                    "else_steps": [],
                },
            },
            {
                "id": "step-6",
                "name": "deploy-reranker",
                "order": 6,
                "step_type": "JOB",
                "depends_on": ["step-5"],
                "condition": "{{ params.enable_reranker }}",
                "config": {
                    "job_type": "SERVICE",
                    "deployment_type": "MODEL",
                    "spec": {"model_id": "BAAI/bge-reranker-v2-m3", "engine": "latentbud"},
                    "gpu_type": "nvidia-t4",
                    "gpu_count": 1,
                },
            },
            {
                "id": "step-7",
                "name": "deploy-orchestrator",
                "order": 7,
                "step_type": "JOB",
                "depends_on": ["step-2", "step-3", "step-4", "step-5"],
                "config": {
                    "job_type": "SERVICE",
                    "deployment_type": "DOCKER",
                    "component_ref": "rag-orchestrator",
                    "spec": {
                        "env": {
                            "VECTOR_DB_URL": "{{ steps.step-2.outputs.url }}",
                            "EMBEDDING_URL": "{{ steps.step-3.outputs.url }}",
                            "LLM_URL": "{{ steps.step-4.outputs.url }}",
                            "RERANKER_URL": "{{ steps.step-6.outputs.url | default('') }}",
                        }
                    },
                    "cpu_cores": 2,
                    "memory_gb": 4,
                },
            },
            {
                "id": "step-8",
                "name": "notify-complete",
                "order": 8,
                "step_type": "NOTIFICATION",
                "depends_on": ["step-7"],
                "config": {
                    "channel": "slack",
                    "recipients": ["#deployments"],
                    "message": "RAG system deployed! URL: {{ steps.step-7.outputs.url }}",
                },
            },
        ],
    }


def fixed_rag() -> dict[str, Any]:
    """:func:`seeds_rag` with its race fixed: step-7 also depends on step-6."""
    data = seeds_rag()
    data["steps"][6]["depends_on"].append("step-6")
    return data
