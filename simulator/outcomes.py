"""Where each job of a run ended up at the end of the run: one definition for every output.

``simulate``'s table, ``compare``'s, ``plan.json``, ``report.json`` and the CDF plots all count
jobs through this module, so they cannot disagree on what "completed" means or over which jobs.
The denominator is always ``jobs``: every job that arrived by the end of the run (the report's
``horizon_s``), one per record.

Each job is in exactly one of these (their counts add up to ``jobs``):

- *completed*: finished its work by the end of the run;
- *failed*: ended without completing (retries exhausted, pods never ready, a timeout);
- *cancelled*: stopped by its pipeline run or a ``cancel`` budget action;
- *rejected*: could not be submitted (unknown LocalQueue, invalid request): never queued;
- *refused*: refused by a ``money`` block's submission guard: never queued;
- *censored*: still live at the end of the run, so how it would have ended is unknown. Split by
  where it stands: *waiting* (holding no quota: queued, pending, paused, retrying), *admitted*
  (quota reserved, pods waiting for nodes), *running* (pods running, or on a node that died
  unnoticed).

Across those, of the jobs that entered a queue (all but rejected and refused):

- *never admitted*: no admission by the end of the run (still waiting, or left the queue without
  one);
- *admitted, never started*: admitted (quota) but its pods never all ran: a planner must not read
  its time to admission as its time to start.

*Completable* jobs are those whose ``submit + runtime`` fits before the end of the run (completed
jobs always count): ``completed / completable`` is the completion share the ``completed`` SLO of
``budcore plan`` reads, since a job submitted too close to the horizon completes on no fleet.

The waits handed to the CDFs and Kaplan–Meier estimates (:func:`wait_samples`) follow the same
lines: every job that entered a queue, a wait that had not ended censored at the end of the run
(or when the job left its queue).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

from .engine import JobRecord
from .status import SimJobStatus

_WAITING = frozenset({SimJobStatus.PENDING, SimJobStatus.QUEUED, SimJobStatus.PAUSED, SimJobStatus.RETRYING})
_RUNNING = frozenset({SimJobStatus.RUNNING, SimJobStatus.FAILING})
# Statuses of jobs that never entered a queue: they did not wait.
NOT_QUEUED = frozenset({SimJobStatus.REJECTED, SimJobStatus.REFUSED})


def queued(record: JobRecord) -> bool:
    """Whether the job entered a queue (every job but the rejected and refused ones)."""
    return record.status not in NOT_QUEUED


def never_admitted(record: JobRecord) -> bool:
    """Entered a queue and had no admission by the end of the run."""
    return queued(record) and record.admitted_s is None


def completable(record: JobRecord, end_s: float) -> bool:
    """Whether the job could have completed by ``end_s`` had it started on arrival.

    A completed job always counts (float sums must not make ``completed`` exceed ``completable``).
    """
    return (
        record.status is SimJobStatus.COMPLETED or record.arrival.submit_s + record.arrival.runtime_s <= end_s
    )


@dataclass(frozen=True, slots=True)
class JobOutcomes:
    """How many jobs of a group ended where (see the module docstring); ``as_json`` is the
    ``outcomes`` block of every ``report.json`` group."""

    jobs: int
    completed: int
    failed: int
    cancelled: int
    rejected: int
    refused: int
    censored: int
    censored_waiting: int
    censored_admitted: int
    censored_running: int
    never_admitted: int
    admitted_never_started: int
    completable: int

    @classmethod
    def of(cls, records: Iterable[JobRecord], end_s: float) -> JobOutcomes:
        """The outcomes of ``records`` at ``end_s``, the end of the run."""
        counts = dict.fromkeys(SimJobStatus, 0)
        never = pending_pods = could = 0
        for r in records:
            counts[r.status] += 1
            never += never_admitted(r)
            pending_pods += queued(r) and r.admitted_s is not None and r.start_s is None
            could += completable(r, end_s)
        waiting = sum(counts[s] for s in _WAITING)
        running = sum(counts[s] for s in _RUNNING)
        admitted = counts[SimJobStatus.ADMITTED]
        return cls(
            jobs=sum(counts.values()),
            completed=counts[SimJobStatus.COMPLETED],
            failed=counts[SimJobStatus.FAILED],
            cancelled=counts[SimJobStatus.CANCELLED],
            rejected=counts[SimJobStatus.REJECTED],
            refused=counts[SimJobStatus.REFUSED],
            censored=waiting + admitted + running,
            censored_waiting=waiting,
            censored_admitted=admitted,
            censored_running=running,
            never_admitted=never,
            admitted_never_started=pending_pods,
            completable=could,
        )

    def as_json(self) -> dict[str, int]:
        return asdict(self)


def completion_share(outcomes: Mapping[str, Any]) -> float | None:
    """``completed / completable`` (``None`` without a completable job): the ``completed`` SLO."""
    completable_jobs = outcomes["completable"]
    return outcomes["completed"] / completable_jobs if completable_jobs else None


def completed_text(outcomes: Mapping[str, Any]) -> str:
    """``666 of 764 (94.7% of 703 completable)``: the one way every table words completions."""
    share = completion_share(outcomes)
    of_completable = (
        "none completable" if share is None else f"{share:.1%} of {outcomes['completable']} completable"
    )
    return f"{outcomes['completed']} of {outcomes['jobs']} ({of_completable})"


def censored_text(outcomes: Mapping[str, Any]) -> str:
    """``98: 35 waiting, 3 admitted with pods pending, 60 running``: the jobs live at the end."""
    if not outcomes["censored"]:
        return "0"
    return (
        f"{outcomes['censored']}: {outcomes['censored_waiting']} waiting, "
        f"{outcomes['censored_admitted']} admitted with pods pending, {outcomes['censored_running']} running"
    )


def outcome_line(outcomes: Mapping[str, Any]) -> str:
    """Every count of a group on one line, with its denominator (``simulate``'s summary)."""
    ended = [f"{outcomes[k]} {k}" for k in ("failed", "cancelled", "rejected", "refused") if outcomes[k]]
    return (
        f"outcomes of {outcomes['jobs']} jobs at the end of the run: completed {completed_text(outcomes)}"
        + (f", {', '.join(ended)}" if ended else "")
        + f"; censored (still live) {censored_text(outcomes)}; never admitted {outcomes['never_admitted']}"
        f", admitted but never started {outcomes['admitted_never_started']}"
    )


@dataclass(frozen=True, slots=True)
class WaitSamples:
    """One group's waits for the Kaplan–Meier estimate: ``durations[i]`` seconds, ended
    (``observed[i]``) or censored."""

    durations: tuple[float, ...]
    observed: tuple[bool, ...]


def wait_samples(
    records: Sequence[JobRecord], end_s: float, *, until: Literal["admission", "start"] = "admission"
) -> WaitSamples:
    """Each queued job's wait until its first admission (``until="admission"``) or first start
    (``until="start"``): ended at that instant, else censored when the job left its queue
    (``end_s`` of the record) or at the end of the run ``end_s``, whichever came first.

    Rejected and refused jobs never waited and are left out (see :func:`queued`).
    """
    durations: list[float] = []
    observed: list[bool] = []
    for r in records:
        if not queued(r):
            continue
        reached = r.admitted_s if until == "admission" else r.start_s
        submit = r.arrival.submit_s
        if reached is not None:
            durations.append(max(reached - submit, 0.0))
            observed.append(True)
        else:
            stop = end_s if r.end_s is None else min(r.end_s, end_s)
            durations.append(max(stop - submit, 0.0))
            observed.append(False)
    return WaitSamples(tuple(durations), tuple(observed))
