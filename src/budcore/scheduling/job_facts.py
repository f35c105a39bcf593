"""What each admitted job says about itself, for preemption: derived only when it is read.

Preemption must never depend on a caller to protect a critical or non-preemptible job, so the
scheduler keeps every admitted job and derives its :class:`~budcore.ports.preemption_cost.VictimInfo`
(type, protection, checkpoints) on first read: most admitted workloads are never looked at as
victims, and building the facts eagerly cost a validated object per admission.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from budcore.domain.job import Job
from budcore.ports.preemption_cost import VictimInfo


class JobFacts(Mapping[str, VictimInfo]):
    """:meth:`VictimInfo.from_job` of every admitted job, built only when preemption asks.

    Most admitted workloads are never looked at as victims, so keeping the job and deriving its
    facts on first read saves a validated object per admission.
    """

    def __init__(self) -> None:
        self.jobs: dict[str, Job] = {}
        self._built: dict[str, VictimInfo] = {}

    def forget(self, job_id: str) -> None:
        self.jobs.pop(job_id, None)
        self._built.pop(job_id, None)

    def fork(self) -> JobFacts:
        other = JobFacts()
        other.jobs = dict(self.jobs)
        other._built = dict(self._built)
        return other

    def __getitem__(self, key: str) -> VictimInfo:
        info = self._built.get(key)
        if info is None:
            info = self._built[key] = VictimInfo.from_job(self.jobs[key])
        return info

    def __contains__(self, key: object) -> bool:
        return key in self.jobs

    def __iter__(self) -> Iterator[str]:
        return iter(self.jobs)

    def __len__(self) -> int:
        return len(self.jobs)
