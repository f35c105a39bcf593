"""The admission ledger conformance kit against the in-memory ledger."""

from __future__ import annotations

import pytest
from budcore_adapters.inmemory import InMemoryAdmissionLedger

from budcore.domain.errors import InvalidTransitionError
from budcore.domain.job import JobStatus
from budcore.domain.lifecycle import transition
from budcore.ports import AdmissionLedger
from budcore.ports.admission_ledger import LocalQueueMismatchError
from budcore.testing.ledger import AdmissionLedgerConformance, cluster_queue, queue_config


class TestInMemoryAdmissionLedger(AdmissionLedgerConformance):
    def make_ledger(self) -> AdmissionLedger:
        return InMemoryAdmissionLedger()

    def test_is_the_port(self) -> None:
        assert isinstance(self.make_ledger(), AdmissionLedger)

    def test_a_plain_store_update_cannot_admit_once_quota_is_configured(self) -> None:
        ledger = self.configured(queue_config([cluster_queue("cq-a", f1=(4, None, None))]))
        job = self.queued(ledger, 1, "cq-a")
        admitted, event = transition(job, JobStatus.ADMITTED, now=self.now())
        with pytest.raises(InvalidTransitionError, match="admission ledger"):
            ledger.store.update(admitted, events=[event])
        assert ledger.store.get(job.tenant, job.id) == job
        # Without quota the ledger is not in use: the store behaves as the plain in-memory store.
        empty = InMemoryAdmissionLedger()
        other = self.queued(empty, 1, "cq-a")
        admitted, event = transition(other, JobStatus.ADMITTED, now=self.now())
        assert empty.store.update(admitted, events=[event]).status is JobStatus.ADMITTED


def test_require_local_queue_checks_even_without_local_queues() -> None:
    kit = TestInMemoryAdmissionLedger()
    config = queue_config([cluster_queue("cq-a", f1=(4, None, None))], local_queues=[])
    open_ledger = InMemoryAdmissionLedger(config)
    job = kit.queued(open_ledger, 1, "cq-a")
    assert kit.reserve(open_ledger, job, "cq-a").status is JobStatus.ADMITTED  # nothing to check against
    strict = InMemoryAdmissionLedger(config, require_local_queue=True)
    job = kit.queued(strict, 1, "cq-a")
    with pytest.raises(LocalQueueMismatchError):
        kit.reserve(strict, job, "cq-a")
