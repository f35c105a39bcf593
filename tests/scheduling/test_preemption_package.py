"""The preemption package's shape: its public API, the modules it replaced, ``VictimInfo``'s rules.

``budcore.scheduling.preemption`` was one module; it is now a package in the shape of Kueue's
``pkg/scheduler/preemption/``. What callers import from it must keep working, and must be the very
objects the submodules define (one class, not two look-alikes).
"""

from __future__ import annotations

import importlib
import importlib.util
import pkgutil
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest

import budcore.scheduling.preemption as preemption
from budcore.domain.errors import ValidationError
from budcore.domain.ids import JobId
from budcore.ports.preemption_cost import VictimInfo
from budcore.scheduling import snapshot
from budcore.scheduling.preemption import aging, cost, fairsharing, guards, oracle, policy, victims

NOW = datetime(2026, 1, 1, 12, tzinfo=UTC)


def test_public_api_is_exported_and_names_the_defining_objects() -> None:
    defined_in = {
        "AgingPolicy": aging,
        "effective_priority": aging,
        "inherited_priorities": aging,
        "DefaultPreemptionCostModel": cost,
        "FairSharingStrategy": fairsharing,
        "PreemptionBudget": guards,
        "PreemptionOracle": oracle,
        "PreemptionPolicy": policy,
        "find_victims": victims,
        # The decision types stay in snapshot.py (the cycle reads them too).
        "Alternative": snapshot,
        "DecisionStatus": snapshot,
        "PreemptionDecision": snapshot,
        "PreemptionMode": snapshot,
        "PreemptionReason": snapshot,
        "Victim": snapshot,
    }
    assert sorted(preemption.__all__) == sorted(defined_in)
    for name, module in defined_in.items():
        assert getattr(preemption, name) is getattr(module, name), name
    assert policy.PreemptionMode is snapshot.PreemptionMode
    assert policy.FairSharingStrategy is fairsharing.FairSharingStrategy
    assert isinstance(preemption.PreemptionPolicy().cost_model, cost.DefaultPreemptionCostModel)


@pytest.mark.parametrize(
    "old",
    [
        "budcore.scheduling.preemption_budget",
        "budcore.scheduling.preemption_cost",
        "budcore.scheduling.preemption_priority",
    ],
)
def test_the_modules_the_package_replaced_are_gone(old: str) -> None:
    assert importlib.util.find_spec(old) is None


def test_every_module_says_what_it_mirrors_and_stays_small() -> None:
    for info in pkgutil.iter_modules(preemption.__path__):
        module = importlib.import_module(f"{preemption.__name__}.{info.name}")
        doc = module.__doc__ or ""
        mirrors = "kubernetes-sigs/kueue" in doc or "Kueue has no counterpart" in doc
        assert mirrors, f"{info.name}: the docstring names its Kueue counterpart (or says there is none)"
        assert module.__file__ is not None
        with open(module.__file__, encoding="utf-8") as f:
            assert sum(1 for _ in f) <= 600, info.name


def test_victim_info_converts_aware_datetimes_to_utc() -> None:
    plus_two = timezone(timedelta(hours=2))
    info = VictimInfo(
        job_id=JobId("x"),
        started_at=datetime(2026, 1, 1, 14, tzinfo=plus_two),
        last_checkpoint_at=datetime(2026, 1, 1, 13, tzinfo=plus_two),
    )
    assert info.started_at == NOW and info.started_at.tzinfo is UTC
    assert info.last_checkpoint_at == NOW - timedelta(hours=1)
    assert info.last_checkpoint_at is not None and info.last_checkpoint_at.tzinfo is UTC


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("started_at", NOW.replace(tzinfo=None), "naive datetime"),
        ("last_checkpoint_at", NOW.replace(tzinfo=None), "naive datetime"),
        ("checkpoint_interval", timedelta(seconds=-1), "must not be negative"),
        ("progress", -0.1, "within [0, 1]"),
        ("hourly_price", Decimal("-1"), "must not be negative"),
    ],
)
def test_victim_info_errors_name_the_job_and_field(field: str, value: object, message: str) -> None:
    with pytest.raises(ValidationError) as raised:
        VictimInfo(job_id=JobId("j-7"), **{field: value})  # type: ignore[arg-type]
    assert raised.value.path == f"victim_info[j-7].{field}"
    assert message in raised.value.message


def test_victim_info_is_a_frozen_value() -> None:
    a = VictimInfo(job_id=JobId("x"), started_at=NOW, progress=0.5)
    b = VictimInfo(job_id=JobId("x"), started_at=NOW, progress=0.5)
    assert a == b and hash(a) == hash(b) and len({a, b}) == 1
    assert a != VictimInfo(job_id=JobId("x"), started_at=NOW)
    with pytest.raises(AttributeError):
        a.progress = 0.9  # type: ignore[misc]
    assert repr(a).startswith("VictimInfo(job_id='x', job_type=")
