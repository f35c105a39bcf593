"""Micro-benchmarks of budcore's hot paths with pytest-benchmark; never part of ``make test``.

    make bench-micro     # run them; each run is saved under .benchmarks/ (gitignored)
    make bench-compare   # the last two saved runs side by side, one group per benchmark

They use public APIs only (``budcore.scheduling``, ``budcore.scheduling.preemption``,
``budcore_simulator.scenario``), and the admission one reuses the workload of
``benchmarks/bench_admission.py`` so its figures compare with that script's.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from pytest_benchmark.fixture import BenchmarkFixture

BENCHMARKS = Path(__file__).resolve().parents[1]
if str(BENCHMARKS) not in sys.path:  # the throughput scripts, whose workloads are reused
    sys.path.insert(0, str(BENCHMARKS))


def _per_unit(benchmark: BenchmarkFixture, units: int, unit: str) -> None:
    """Turn the rounds just measured into time per ``unit`` (e.g. per simulated job).

    pytest-benchmark times a call; a run that does ``units`` pieces of work is divided here, so the
    saved figures (and ``make bench-compare``) read as seconds per ``unit``.
    """
    if units < 1:
        raise ValueError(f"nothing to divide by: {units} {unit}s")
    samples = benchmark.stats.stats.data
    samples[:] = [seconds / units for seconds in samples]
    benchmark.extra_info.update({"unit": unit, "units_per_round": units})


@pytest.fixture
def per_unit() -> Callable[[BenchmarkFixture, int, str], None]:
    """``per_unit(benchmark, units, unit)``: call after ``benchmark.pedantic`` (see :func:`_per_unit`)."""
    return _per_unit
