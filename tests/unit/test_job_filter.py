"""JobFilter bounds are compared with aware UTC times: a naive one is a named error, in every store."""

from __future__ import annotations

from datetime import datetime

import pytest
from budcore_adapters.inmemory import InMemoryJobStore

from budcore.domain.errors import ValidationError
from budcore.ports.job_store import JobFilter


@pytest.mark.parametrize("bound", ["created_after", "created_before"])
def test_a_naive_bound_is_a_validation_error_naming_it(bound: str) -> None:
    store = InMemoryJobStore()
    flt = JobFilter(**{bound: datetime(2030, 1, 1)})
    with pytest.raises(ValidationError) as info:
        store.list(None, flt)
    assert info.value.path == bound
    with pytest.raises(ValidationError):
        store.count(None, flt)
