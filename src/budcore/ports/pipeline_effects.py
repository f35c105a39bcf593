"""The ports a pipeline engine acts through: HTTP calls, notifications, jobs and functions.

Every side effect of a step goes through one of these, carrying the attempt's *idempotency key*
(``run/step/attempt``): a step whose attempt was interrupted by a crash is re-sent with the same
key when the run resumes, so a receiver that honours keys (the job store's idempotent ``create``,
an HTTP server reading ``Idempotency-Key``, a function that records it) applies it once. The
engine itself never re-executes a step it recorded as completed.

A port raises :class:`StepFailure` for an attempt that failed; ``transient`` failures (a timeout,
a refused connection, HTTP 429 or 5xx) are retried by the engine within the step's allowance.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

from budcore.domain.errors import BudcoreError
from budcore.domain.ids import JobId, TenantId
from budcore.domain.job import Job

__all__ = [
    "ApiCaller",
    "HttpRequest",
    "HttpResponse",
    "Notification",
    "Notifier",
    "PipelineFunction",
    "StepContext",
    "StepFailure",
    "StepJobs",
]


class StepFailure(BudcoreError):  # noqa: N818 - how an attempt ends, not a programming error
    """An attempt of a step failed; ``transient`` ones are worth retrying."""

    def __init__(self, message: str, *, transient: bool = False) -> None:
        self.message = message
        self.transient = transient
        super().__init__(message)


@dataclass(frozen=True, slots=True)
class StepContext:
    """What a step's side effect knows about where it runs."""

    run_id: str
    pipeline_id: str
    step_id: str
    attempt: int
    key: str  # the idempotency key: run/step/attempt
    params: Mapping[str, Any]
    now: datetime
    item: Any = None  # a loop iteration's item
    index: int | None = None
    tenant: str = "default"  # the run's tenant (its jobs' namespace)


@dataclass(frozen=True, slots=True)
class HttpRequest:
    method: str
    url: str
    headers: Mapping[str, str] = field(default_factory=dict)
    body: Any = None  # JSON-encoded unless it is a str
    timeout_s: float = 30.0
    max_response_bytes: int = 1_048_576
    key: str = ""  # sent as the Idempotency-Key header


@dataclass(frozen=True, slots=True)
class HttpResponse:
    status: int
    body: Any  # the decoded JSON value, or the text when the answer is not JSON
    headers: Mapping[str, str] = field(default_factory=dict)


@runtime_checkable
class ApiCaller(Protocol):
    def call(self, request: HttpRequest) -> HttpResponse:
        """Send one request; ``StepFailure`` (transient for timeouts, connection errors) if no answer."""
        ...


@dataclass(frozen=True, slots=True)
class Notification:
    tenant: str
    channel: str
    recipients: tuple[str, ...]
    message: str
    severity: str
    run_id: str
    pipeline_id: str
    step_id: str
    key: str
    at: datetime


@runtime_checkable
class Notifier(Protocol):
    def notify(self, notification: Notification) -> None:
        """Deliver one notification (``StepFailure`` when it cannot be delivered)."""
        ...


@runtime_checkable
class StepJobs(Protocol):
    """Where ``job`` steps send their jobs: the scheduler's side of the system."""

    def submit(self, job: Job) -> Job:
        """Queue ``job``; idempotent by ``(tenant, idempotency_key)`` (a replay returns the stored job)."""
        ...

    def get(self, tenant: TenantId, job_id: JobId) -> Job:
        """The job as it stands now."""
        ...

    def cancel(self, tenant: TenantId, job_id: JobId, reason: str) -> None:
        """Stop the job (a no-op for one that has ended)."""
        ...

    def eta(self, job: Job) -> datetime | None:
        """When the scheduler expects ``job`` to start, if it can tell (its ETA engine)."""
        ...


PipelineFunction = Callable[..., Any]
"""A registered function: called as ``fn(ctx, **args)`` with a :class:`StepContext`; returns the
step's outputs (a mapping; any other value is published as ``result``)."""
