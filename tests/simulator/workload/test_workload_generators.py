"""Generators: exact sequences, determinism, independence of classes, statistics, laziness."""

from __future__ import annotations

import itertools
import math
import statistics
from collections import Counter
from typing import Any

import pytest
from budcore_simulator.workload import (
    GAVEL_GPU_COUNTS,
    GeneratorSpec,
    JobArrival,
    JobClassSpec,
    class_arrivals,
    generate_arrivals,
    parse_generator_spec,
)
from budcore_simulator.workload.generators import DiurnalArrivals
from budcore_simulator.workload.units import parse_duration

from budcore.domain.errors import ValidationError

GiB = 2**30


def klass(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "name": "batch",
        "tenant": "team-a",
        "local_queue": "lq-a",
        "arrivals": {"kind": "fixed", "interval": 60},
        "runtime": {"kind": "fixed", "value": 600},
        "gpus": 1,
    }
    base.update(overrides)
    return base


def spec(*classes: dict[str, Any], **top: Any) -> GeneratorSpec:
    return parse_generator_spec({"classes": list(classes), **top})


def take(iterator: Any, n: int) -> list[JobArrival]:
    return list(itertools.islice(iterator, n))


# exact sequences ----------------------------------------------------------------------------------
def test_fixed_class_produces_exactly_the_configured_sequence() -> None:
    s = spec(
        klass(
            name="steady",
            count=4,
            start="5m",
            arrivals={"kind": "fixed", "interval": "90s"},
            runtime={"kind": "fixed", "value": "1h"},
            gpus=2,
            cpu_per_gpu="6",
            memory_per_gpu="40Gi",
            priority="high",
            job_type="training",
            checkpoint_interval="15m",
            deadline_slack=1.5,
            accelerator="nvidia-h100-80gb",
        )
    )
    got = list(generate_arrivals(s, seed=123))
    expected = [
        JobArrival(
            submit_s=300.0 + 90.0 * n,
            runtime_s=3600.0,
            gpus_per_pod=2,
            pods=1,
            cpu_milli=12_000,
            memory_bytes=80 * GiB,
            tenant="team-a",
            local_queue="lq-a",
            priority="high",
            job_type="training",
            job_class="steady",
            job_id=f"steady-{n}",
            checkpoint_interval_s=900.0,
            deadline_s=300.0 + 90.0 * n + 5400.0,
            accelerator="nvidia-h100-80gb",
        )
        for n in range(4)
    ]
    assert got == expected


def test_fixed_interval_has_no_drift_over_many_arrivals() -> None:
    s = spec(klass(arrivals={"kind": "fixed", "interval": 0.1}, count=1_000_001))
    last = next(itertools.islice(generate_arrivals(s, 0), 1_000_000, None))
    assert last.submit_s == 1_000_000 * 0.1
    assert last.job_id == "batch-1000000"


def test_the_seed_does_not_matter_to_a_fully_fixed_class() -> None:
    s = spec(klass(count=20))
    assert list(generate_arrivals(s, 1)) == list(generate_arrivals(s, 2))


def test_large_gpu_counts_become_whole_node_gangs() -> None:
    s = spec(klass(count=1, gpus=32, gpus_per_node=8, cpu_per_gpu="4", memory_per_gpu="32Gi"))
    (a,) = generate_arrivals(s, 0)
    assert (a.pods, a.gpus_per_pod, a.total_gpus) == (4, 8, 32)
    assert a.cpu_milli == 32_000 and a.memory_bytes == 256 * GiB
    assert a.gpu_seconds == 32 * 600


def test_cpu_only_jobs_use_the_without_gpu_resources() -> None:
    s = spec(klass(count=1, gpus=0, cpu_without_gpu="500m", memory_without_gpu="2Gi"))
    (a,) = generate_arrivals(s, 0)
    assert (a.pods, a.gpus_per_pod, a.cpu_milli, a.memory_bytes) == (1, 0, 500, 2 * GiB)


def test_classes_merge_by_time_with_ties_broken_by_class_order_then_sequence() -> None:
    s = spec(
        klass(name="b", count=3, arrivals={"kind": "fixed", "interval": 10}),
        klass(name="a", count=2, arrivals={"kind": "fixed", "interval": 20}),
        klass(name="c", count=2, start=5, arrivals={"kind": "fixed", "interval": 0}),
    )
    order = [(a.submit_s, a.job_id) for a in generate_arrivals(s, 0)]
    assert order == [
        (0.0, "b-0"),
        (0.0, "a-0"),
        (5.0, "c-0"),
        (5.0, "c-1"),
        (10.0, "b-1"),
        (20.0, "b-2"),
        (20.0, "a-1"),
    ]


def test_horizon_limit_and_until() -> None:
    s = spec(klass(arrivals={"kind": "fixed", "interval": 60}), horizon="10m")
    assert [a.submit_s for a in generate_arrivals(s, 0)] == [60.0 * n for n in range(10)]
    s = spec(klass(arrivals={"kind": "fixed", "interval": 60}), limit=3)
    assert len(list(generate_arrivals(s, 0))) == 3
    s = spec(klass(arrivals={"kind": "fixed", "interval": 60}, start=120, until=300))
    assert [a.submit_s for a in generate_arrivals(s, 0)] == [120.0, 180.0, 240.0]


def test_runtime_clamps() -> None:
    s = spec(klass(count=2000, runtime={"kind": "exponential", "mean": 100}, min_runtime=50, max_runtime=200))
    runtimes = [a.runtime_s for a in generate_arrivals(s, 3)]
    assert min(runtimes) == 50 and max(runtimes) == 200


# determinism and independence ---------------------------------------------------------------------
RANDOM_CLASS = klass(
    name="random",
    arrivals={"kind": "poisson", "rate": 30, "per": "1m"},
    runtime={"kind": "preset", "name": "gavel"},
    gpus="gavel",
)


def test_same_seed_same_sequence_and_different_seed_differs() -> None:
    s = spec(RANDOM_CLASS, klass(name="other", arrivals={"kind": "diurnal", "rate": 50}))
    first = take(generate_arrivals(s, 42), 500)
    assert first == take(generate_arrivals(s, 42), 500)
    assert first != take(generate_arrivals(s, 43), 500)


def test_adding_a_class_does_not_change_another_class_sequence() -> None:
    alone = take(generate_arrivals(spec(RANDOM_CLASS), 7), 300)
    crowded = spec(
        klass(
            name="noise",
            arrivals={"kind": "poisson", "rate": 100},
            runtime={"kind": "exponential", "mean": 5},
        ),
        RANDOM_CLASS,
        klass(name="more", arrivals={"kind": "diurnal", "rate": 10}, gpus={1: 1, 2: 1}),
    )
    mine = [a for a in itertools.islice(generate_arrivals(crowded, 7), 5000) if a.job_class == "random"]
    assert mine[:300] == alone


def test_changing_the_runtime_distribution_keeps_arrival_times() -> None:
    a = take(class_arrivals(JobClassSpec.model_validate(RANDOM_CLASS), 9), 200)
    other = {**RANDOM_CLASS, "runtime": {"kind": "lognormal", "mean": "1h", "sigma": 1}}
    b = take(class_arrivals(JobClassSpec.model_validate(other), 9), 200)
    assert [x.submit_s for x in a] == [x.submit_s for x in b]
    assert [x.total_gpus for x in a] == [x.total_gpus for x in b]
    assert [x.runtime_s for x in a] != [x.runtime_s for x in b]


# statistics (fixed seeds, generous tolerances) ----------------------------------------------------
N = 20_000


def sample(cls: dict[str, Any], n: int = N, seed: int = 2024) -> list[JobArrival]:
    return take(generate_arrivals(spec(cls), seed), n)


def test_poisson_mean_interarrival() -> None:
    arrivals = sample(klass(arrivals={"kind": "poisson", "rate": 120, "per": "1h"}))
    gaps = [b.submit_s - a.submit_s for a, b in itertools.pairwise(arrivals)]
    assert statistics.fmean(gaps) == pytest.approx(30.0, rel=0.03)
    # exponential gaps: standard deviation equals the mean
    assert statistics.pstdev(gaps) == pytest.approx(30.0, rel=0.05)


def test_exponential_runtime_mean() -> None:
    runtimes = [a.runtime_s for a in sample(klass(runtime={"kind": "exponential", "mean": "2h"}))]
    assert statistics.fmean(runtimes) == pytest.approx(7200.0, rel=0.03)


def test_lognormal_runtime_by_mean_and_by_mu() -> None:
    by_mean = [a.runtime_s for a in sample(klass(runtime={"kind": "lognormal", "mean": 1000, "sigma": 0.5}))]
    assert statistics.fmean(by_mean) == pytest.approx(1000.0, rel=0.03)
    by_mu = [a.runtime_s for a in sample(klass(runtime={"kind": "lognormal", "mu": 5.0, "sigma": 0.8}))]
    assert statistics.median(by_mu) == pytest.approx(math.exp(5.0), rel=0.04)
    assert statistics.fmean(math.log(x) for x in by_mu) == pytest.approx(5.0, abs=0.03)


def test_mixture_and_gavel_runtime() -> None:
    mixture = klass(
        runtime={
            "kind": "mixture",
            "components": [
                {"weight": 3, "distribution": {"kind": "fixed", "value": 10}},
                {"weight": 1, "distribution": {"kind": "fixed", "value": 1000}},
            ],
        }
    )
    counts = Counter(a.runtime_s for a in sample(mixture))
    assert set(counts) == {10.0, 1000.0}
    assert counts[10.0] / N == pytest.approx(0.75, abs=0.02)

    gavel = [a.runtime_s for a in sample(klass(runtime={"kind": "preset", "name": "gavel"}))]
    low, mid, high = 60 * 10**1.5, 60 * 10**3, 60 * 10**4
    assert all(low <= r <= high for r in gavel)
    assert sum(r < mid for r in gavel) / N == pytest.approx(0.8, abs=0.02)
    # log10(minutes) is uniform on [1.5, 3] for the short component: its mean is 2.25
    short = [math.log10(r / 60) for r in gavel if r < mid]
    assert statistics.fmean(short) == pytest.approx(2.25, abs=0.02)


def test_gpu_count_frequencies() -> None:
    counts = Counter(a.total_gpus for a in sample(klass(gpus="gavel")))
    for gpus, p in GAVEL_GPU_COUNTS.items():
        assert counts[gpus] / N == pytest.approx(p, abs=0.015)
    weighted = Counter(a.total_gpus for a in sample(klass(gpus={0: 1, 16: 3}, gpus_per_node=8)))
    assert weighted[16] / N == pytest.approx(0.75, abs=0.015)


def test_diurnal_rate_peaks_near_the_configured_hour() -> None:
    day = 86_400.0
    cls = klass(
        arrivals={"kind": "diurnal", "rate": 600, "per": "1h", "amplitude": 0.8, "peak_hour": 15},
        until=10 * day,
    )
    arrivals = list(generate_arrivals(spec(cls), 11))
    per_hour = Counter(int((a.submit_s % day) // 3600) for a in arrivals)
    busiest = max(per_hour, key=lambda h: per_hour[h])
    assert abs(busiest - 15) <= 1
    quietest = min(per_hour, key=lambda h: per_hour[h])
    assert abs(quietest - 3) <= 1
    # the mean rate is preserved: 600/h over 10 days
    assert len(arrivals) == pytest.approx(600 * 240, rel=0.02)
    # peak/trough ratio close to (1 + A) / (1 - A) = 9 (hourly bins smooth it a little)
    assert per_hour[busiest] / per_hour[quietest] > 6


def test_diurnal_rate_function_and_clock_offset() -> None:
    d = DiurnalArrivals(rate=100, per=3600, amplitude=0.5, peak_hour=12, clock_offset_hour=6)
    # simulation time 6h is clock 12:00, the peak
    assert d.rate_at(6 * 3600) == pytest.approx(100 / 3600 * 1.5)
    assert d.rate_at(18 * 3600) == pytest.approx(100 / 3600 * 0.5)


# laziness -----------------------------------------------------------------------------------------
def test_first_arrivals_of_a_billion_job_class_come_back_at_once() -> None:
    s = spec(
        klass(
            name="huge",
            count=10**9,
            arrivals={"kind": "poisson", "rate": 1000, "per": "1m"},
            runtime={"kind": "preset", "name": "gavel"},
            gpus="gavel",
        ),
        klass(name="endless", arrivals={"kind": "diurnal", "rate": 5}),
    )
    first = take(generate_arrivals(s, 1), 10)
    assert len(first) == 10
    assert [a.submit_s for a in first] == sorted(a.submit_s for a in first)


# validation ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("override", "path"),
    [
        ({"gpus": 12, "gpus_per_node": 8}, "classes[0].gpus"),
        ({"gpus": {1: 0.5, -2: 0.5}}, "classes[0].gpus"),
        ({"name": "Bad Name"}, "classes[0].name"),
        ({"tenant": "UPPER"}, "classes[0].tenant"),
        ({"arrivals": {"kind": "poisson", "rate": 0}}, "classes[0].arrivals.poisson.rate"),
        ({"arrivals": {"kind": "weekly"}}, "classes[0].arrivals"),
        ({"runtime": {"kind": "lognormal", "sigma": 1}}, "classes[0].runtime.lognormal.mean"),
        ({"runtime": {"kind": "log_uniform", "low": 10, "high": 5}}, "classes[0].runtime.log_uniform.high"),
        ({"runtime": {"kind": "exponential", "mean": "soon"}}, "classes[0].runtime.exponential.mean"),
        ({"arrivals": {"kind": "fixed", "interval": 0}}, "classes[0].count"),
        ({"cpu_per_gpu": "lots"}, "classes[0].cpu_per_gpu"),
        ({"deadline_slack": 0.5}, "classes[0].deadline_slack"),
        ({"priority": "Not A Class"}, "classes[0].priority"),
        ({"surprise": 1}, "classes[0].surprise"),
    ],
)
def test_bad_specs_name_the_field(override: dict[str, Any], path: str) -> None:
    with pytest.raises(ValidationError) as info:
        parse_generator_spec({"classes": [klass(**override)]}, prefix="workload.generator", source="s.yaml")
    error = info.value
    assert error.path == f"workload.generator.{path}", str(error)
    assert len(getattr(error, "errors", [error])) == 1, str(error)  # no follow-on noise
    assert "s.yaml" in str(error)


def test_duplicate_class_names_and_bad_seed() -> None:
    with pytest.raises(ValidationError) as info:
        spec(klass(), klass())
    assert info.value.path == "classes[1].name"
    with pytest.raises(ValidationError) as info:
        generate_arrivals(spec(klass()), -1)
    assert info.value.path == "seed"


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        (90, 90.0),
        (1.5, 1.5),
        ("45", 45.0),
        ("90s", 90.0),
        ("30m", 1800.0),
        ("1h30m", 5400.0),
        ("2d", 172800.0),
        ("250ms", 0.25),
    ],
)
def test_durations(text: Any, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "1x", "h", "-5", "1h-5m", True, None, float("nan")])
def test_bad_durations(text: Any) -> None:
    with pytest.raises(ValidationError) as info:
        parse_duration(text, "runtime.mean")
    assert info.value.path == "runtime.mean"


def test_json_schema_accepts_duration_strings_and_rejects_typos() -> None:
    jsonschema = pytest.importorskip("jsonschema")
    schema = GeneratorSpec.model_json_schema()
    good = {"classes": [klass(arrivals={"kind": "poisson", "rate": 1000, "per": "1m"}, start="1h30m")]}
    jsonschema.validate(good, schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"classes": [klass(start="soon")]}, schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"classes": [klass(surprise=1)]}, schema)
