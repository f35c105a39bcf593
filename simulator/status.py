"""Where a simulated job stands: :class:`SimJobStatus`, and how it maps onto the domain's states.

The simulator follows a job more finely than :class:`budcore.domain.job.JobStatus` does: a job
that arrived while the scheduling controller was down, a job whose node died but whose loss the
controller has not noticed yet, one waiting out its retry backoff, one that could not be
submitted at all. :attr:`SimJobStatus.domain` names the domain state each one is:

=========== =========== ==========================================================================
simulator   domain      meaning
=========== =========== ==========================================================================
pending     pending     arrived while the controller was down; not handed to a queue yet
queued      queued      in its LocalQueue, waiting for quota
admitted    admitted    quota reserved, pods waiting for free nodes
running     running     pods running
failing     running     its node died; the controller has not noticed yet, so it still holds quota
retrying    failed      declared lost, waiting out its backoff before the retry (failed → queued)
completed   completed
failed      failed      retry budget exhausted, or its pods never became ready
rejected    failed      could not be submitted (unknown LocalQueue, invalid request): pending → failed
refused     failed      refused by the submission guard (a scenario's ``money`` block, ``reject``
                        mode): never queued, like a submission the service refuses
paused      preempted   stopped by a ``pause`` budget action and held out of its queue until its
                        budgets have room again (then ``queued``)
cancelled   cancelled   stopped by its pipeline run (a failure policy, a step's timeout, the run's
                        end for a service) or by a ``cancel`` budget action
=========== =========== ==========================================================================

A preemption victim has no ``preempted`` state of its own: it is requeued the moment its eviction
ends, the domain's ``preempted → queued`` edge taken at once. A job a budget paused is
``preempted`` until its budgets have room (:mod:`budcore.cost.enforcement` marks it so too).
"""

from __future__ import annotations

from enum import StrEnum

from budcore.domain.job import JobStatus


class SimJobStatus(StrEnum):
    """A simulated job's status; the values are what ``jobs.csv`` and ``report.json`` print."""

    PENDING = "pending"
    QUEUED = "queued"
    ADMITTED = "admitted"
    RUNNING = "running"
    FAILING = "failing"
    RETRYING = "retrying"
    COMPLETED = "completed"
    FAILED = "failed"
    REJECTED = "rejected"
    CANCELLED = "cancelled"
    REFUSED = "refused"
    PAUSED = "paused"

    @property
    def domain(self) -> JobStatus:
        """The :class:`~budcore.domain.job.JobStatus` this status is (see the module's table)."""
        return _DOMAIN[self]

    @property
    def is_final(self) -> bool:
        """The job never runs again: its outcome is known (completed, failed, rejected, refused or
        cancelled)."""
        return self in FINAL_STATUSES


_DOMAIN: dict[SimJobStatus, JobStatus] = {
    SimJobStatus.PENDING: JobStatus.PENDING,
    SimJobStatus.QUEUED: JobStatus.QUEUED,
    SimJobStatus.ADMITTED: JobStatus.ADMITTED,
    SimJobStatus.RUNNING: JobStatus.RUNNING,
    SimJobStatus.FAILING: JobStatus.RUNNING,
    SimJobStatus.RETRYING: JobStatus.FAILED,
    SimJobStatus.COMPLETED: JobStatus.COMPLETED,
    SimJobStatus.FAILED: JobStatus.FAILED,
    SimJobStatus.REJECTED: JobStatus.FAILED,
    SimJobStatus.CANCELLED: JobStatus.CANCELLED,
    SimJobStatus.REFUSED: JobStatus.FAILED,
    SimJobStatus.PAUSED: JobStatus.PREEMPTED,
}

# The statuses after which a job never runs again; every other one is still live at the end of a run.
FINAL_STATUSES = frozenset(
    {
        SimJobStatus.COMPLETED,
        SimJobStatus.FAILED,
        SimJobStatus.REJECTED,
        SimJobStatus.CANCELLED,
        SimJobStatus.REFUSED,
    }
)
