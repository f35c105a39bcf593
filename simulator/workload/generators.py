"""Synthetic workloads: job classes with arrival processes and runtime / GPU-count distributions.

A :class:`GeneratorSpec` lists job classes (it is the ``workload.generators`` part of a scenario
file, so every field is snake_case and validation errors carry the field path). Generation is lazy:
:func:`generate_arrivals` returns an iterator that draws random numbers in small batches and holds
one pending arrival per class, so a million-job (or unbounded) workload costs constant memory.

Determinism. Every class draws from its own random streams, seeded from the scenario seed and a
SHA-256 of the class *name* (not its position, not Python's salted ``hash``): adding, removing or
reordering classes never changes another class's sequence. Inside a class, arrival times, runtimes
and GPU counts use three independent streams too, so changing a class's runtime distribution keeps
its arrival times. Streams are ``numpy.random.Generator(PCG64)`` seeded through ``SeedSequence``.

Arrival processes (``arrivals.kind``):

* ``fixed``: one job every ``interval``, at exactly ``start + n * interval`` (computed by
  multiplication, so there is no floating-point drift over a million jobs).
* ``poisson``: exponential inter-arrival gaps with mean ``per / rate``.
* ``diurnal``: a non-homogeneous Poisson process with rate
  ``λ(t) = rate/per * (1 + amplitude * cos(2π (clock(t) - peak_hour) / period))``, sampled by
  thinning (Lewis & Shedler 1979): candidates at the peak rate ``λ_max = rate/per * (1 + amplitude)``,
  each kept with probability ``λ(t) / λ_max``. ``clock_offset_hour`` is the hour of the day that
  simulation time 0 corresponds to.

Runtime distributions (``runtime.kind``): ``fixed``; ``exponential`` (``mean``); ``lognormal``
given either ``mean`` (the arithmetic mean of the runtime in seconds; then
``mu = ln(mean) - sigma²/2``) or ``mu`` (the mean of ``ln(runtime in seconds)``), with ``sigma`` the
standard deviation of ``ln(runtime)`` in both cases; ``log_uniform`` between ``low`` and ``high``;
``mixture`` of the former with weights; and ``preset`` ``gavel``.

The Gavel preset reproduces the synthetic Philly-derived workload of Gavel (Narayanan et al.,
"Heterogeneity-Aware Cluster Scheduling Policies for Deep Learning Workloads", OSDI 2020; functions
``_generate_duration`` and ``_generate_scale_factor`` in ``scheduler/utils.py`` of the Gavel
repository): runtime ``60 * 10**U(1.5, 3)`` seconds with probability 0.8 and ``60 * 10**U(3, 4)``
seconds with probability 0.2 (about 32 minutes to 16.7 hours, and up to 6.9 days), and GPU counts
1/2/4/8 with probabilities 0.70/0.10/0.15/0.05.

Requests. A class asks for ``gpus`` per job: a fixed count, a mapping ``{count: weight}`` (weights
are normalised) or ``gavel``. A count above ``gpus_per_node`` becomes a gang of
``count / gpus_per_node`` pods of ``gpus_per_node`` GPUs each, so such counts must be multiples of
``gpus_per_node``. Each pod gets ``cpu_per_gpu`` and ``memory_per_gpu`` per GPU it holds; a job
without GPUs gets one pod of ``cpu_without_gpu`` (default 1) and ``memory_without_gpu`` (default
none: a CPU-only job asks for no memory unless told, so it fits a ClusterQueue whose quota covers
only ``cpu``, as Kueue's own performance harness has it).

Priorities. ``priority`` is one of budcore's five classes (``high``), an integer (Kueue's
``Workload.spec.priority``: ``priority: 50``) or the name of a WorkloadPriorityClass of the
queue configuration (``priority_class`` says the same explicitly). ``label`` groups classes in
the report (``by_label``): a scenario that replicates a class per ClusterQueue gives the copies
one label.

Time limits. ``max_runtime`` only clamps the *drawn* runtimes; ``max_duration`` is the jobs'
maximum duration (Kueue's ``maximumExecutionTimeSeconds``): a job whose runtime exceeds it runs
until its accumulated execution time reaches it and then fails with reason ``timeout``; its
declared estimate is capped at it (a job cannot expect to run longer than it may). ``time_window``
(``{start: "22:00", end: "06:00", timezone: Europe/Berlin, must_finish_in_window: false}``)
admits the class's jobs only inside a daily wall-clock window
(:class:`~budcore.domain.timewindow.TimeWindow`); they wait outside their queue until it opens.
"""

from __future__ import annotations

import hashlib
import itertools
import math
from collections.abc import Callable, Iterator, Mapping
from decimal import Decimal
from typing import Annotated, Any, Literal

import numpy as np
from numpy.random import PCG64, Generator, SeedSequence
from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from budcore.domain.accelerators import AcceleratorText
from budcore.domain.errors import ValidationError
from budcore.domain.ids import check_name
from budcore.domain.job import BudgetAction, JobType
from budcore.domain.priority import JobPriority
from budcore.domain.timewindow import TimeWindow
from budcore.domain.validation import LineLookup, validate_model

from .limits import (
    MAX_DEADLINE_SLACK,
    MAX_DEVICES,
    MAX_MIX_WEIGHT,
    MAX_MU,
    MAX_PODS,
    MAX_RATE_PER_S,
    MAX_SIGMA,
    MAX_SPAN_S,
)
from .model import JobArrival, Priority, check_priority_class, merge_arrivals, priority_parts
from .units import Duration, quantity_bytes, quantity_milli

# Random numbers are drawn this many at a time: large enough to amortise numpy's per-call cost,
# small enough that the first arrivals of a huge class come back at once.
_BATCH = 1024

# Gavel's GPU counts ("scale factors") and runtime mixture, see the module docstring.
GAVEL_GPU_COUNTS: dict[int, float] = {1: 0.70, 2: 0.10, 4: 0.15, 8: 0.05}

_FROZEN = ConfigDict(frozen=True, extra="forbid")


# Arrival processes --------------------------------------------------------------------------------
class FixedArrivals(BaseModel):
    """One arrival every ``interval`` seconds, the first at the class's ``start``."""

    model_config = _FROZEN

    kind: Literal["fixed"] = "fixed"
    interval: Duration

    @field_validator("interval")
    @classmethod
    def _rate(cls, value: float) -> float:
        if 0 < value < 1.0 / MAX_RATE_PER_S:
            raise ValueError(
                f"an interval of {value:g} s is more than the maximum rate of {MAX_RATE_PER_S:,.0f} "
                "arrivals a second (0 with a 'count': all at once)"
            )
        return value


class PoissonArrivals(BaseModel):
    """A Poisson process of ``rate`` arrivals per ``per`` (default: per hour)."""

    model_config = _FROZEN

    kind: Literal["poisson"] = "poisson"
    rate: float = Field(gt=0, allow_inf_nan=False)
    per: Duration = 3600.0

    @field_validator("per")
    @classmethod
    def _positive(cls, value: float) -> float:
        if value <= 0:
            raise ValueError("must be greater than zero")
        return value

    @property
    def rate_per_s(self) -> float:
        return self.rate / self.per

    @model_validator(mode="after")
    def _bounded(self) -> PoissonArrivals:
        _check_rate(self.rate_per_s)
        return self


def _check_rate(rate_per_s: float) -> None:
    if rate_per_s > MAX_RATE_PER_S:
        raise ValidationError(
            f"{rate_per_s:g} arrivals a second is more than the maximum, {MAX_RATE_PER_S:,.0f}",
            path="rate",
        )


class DiurnalArrivals(BaseModel):
    """A sinusoidally modulated Poisson process: mean ``rate`` per ``per``, peak at ``peak_hour``."""

    model_config = _FROZEN

    kind: Literal["diurnal"] = "diurnal"
    rate: float = Field(gt=0, allow_inf_nan=False)
    per: Duration = 3600.0
    amplitude: float = Field(default=0.5, ge=0, le=1)
    peak_hour: float = Field(default=14.0, ge=0, lt=24)
    period: Duration = 86400.0
    clock_offset_hour: float = Field(default=0.0, ge=0, lt=24)

    @field_validator("per", "period")
    @classmethod
    def _positive(cls, value: float) -> float:
        if value <= 0:
            raise ValueError("must be greater than zero")
        return value

    @property
    def rate_per_s(self) -> float:
        return self.rate / self.per

    @model_validator(mode="after")
    def _bounded(self) -> DiurnalArrivals:
        _check_rate(self.rate_per_s * (1.0 + self.amplitude))  # the peak rate
        return self

    def rate_at(self, t: float) -> float:
        """The instantaneous arrival rate (per second) at simulation time ``t``."""
        phase = (t + self.clock_offset_hour * 3600.0 - self.peak_hour * 3600.0) / self.period
        return self.rate_per_s * (1.0 + self.amplitude * math.cos(2.0 * math.pi * phase))


ArrivalSpec = Annotated[FixedArrivals | PoissonArrivals | DiurnalArrivals, Field(discriminator="kind")]


# Runtime distributions ----------------------------------------------------------------------------
class FixedRuntime(BaseModel):
    model_config = _FROZEN

    kind: Literal["fixed"] = "fixed"
    value: Duration


class ExponentialRuntime(BaseModel):
    model_config = _FROZEN

    kind: Literal["exponential"] = "exponential"
    mean: Duration

    @field_validator("mean")
    @classmethod
    def _positive(cls, value: float) -> float:
        if value <= 0:
            raise ValueError("must be greater than zero")
        return value


class LognormalRuntime(BaseModel):
    """Log-normal runtime. Give ``mean`` (seconds, arithmetic mean) or ``mu`` (mean of ln seconds)."""

    model_config = _FROZEN

    kind: Literal["lognormal"] = "lognormal"
    mean: Duration | None = None
    # e^±100 s is far outside any runtime; draws are capped at the longest duration anyway.
    mu: float | None = Field(default=None, ge=-MAX_MU, le=MAX_MU, allow_inf_nan=False)
    sigma: float = Field(gt=0, le=MAX_SIGMA, allow_inf_nan=False)

    @model_validator(mode="after")
    def _one_location(self) -> LognormalRuntime:
        if (self.mean is None) == (self.mu is None):
            raise ValidationError(
                "give exactly one of 'mean' (seconds) or 'mu' (mean of ln seconds)", path="mean"
            )
        if self.mean is not None and self.mean <= 0:
            raise ValidationError("must be greater than zero", path="mean")
        return self

    @property
    def mu_value(self) -> float:
        """The mean of ln(runtime in seconds)."""
        if self.mu is not None:
            return self.mu
        assert self.mean is not None  # guaranteed by the validator
        return math.log(self.mean) - self.sigma**2 / 2.0


class LogUniformRuntime(BaseModel):
    """Runtime whose logarithm is uniform between ln(``low``) and ln(``high``)."""

    model_config = _FROZEN

    kind: Literal["log_uniform"] = "log_uniform"
    low: Duration
    high: Duration

    @model_validator(mode="after")
    def _ordered(self) -> LogUniformRuntime:
        if self.low <= 0:
            raise ValidationError("must be greater than zero", path="low")
        if self.high < self.low:
            raise ValidationError(f"must be at least low ({self.low}), got {self.high}", path="high")
        return self


SimpleRuntime = Annotated[
    FixedRuntime | ExponentialRuntime | LognormalRuntime | LogUniformRuntime, Field(discriminator="kind")
]


class MixtureComponent(BaseModel):
    model_config = _FROZEN

    weight: float = Field(gt=0, le=MAX_MIX_WEIGHT, allow_inf_nan=False)
    distribution: SimpleRuntime


class MixtureRuntime(BaseModel):
    """Pick a component with probability proportional to its weight, then sample it."""

    model_config = _FROZEN

    kind: Literal["mixture"] = "mixture"
    # a list, not a tuple: pydantic adds a spurious too_short error to item errors of a min_length tuple
    components: list[MixtureComponent] = Field(min_length=1)


class PresetRuntime(BaseModel):
    model_config = _FROZEN

    kind: Literal["preset"] = "preset"
    name: Literal["gavel"]

    def expand(self) -> MixtureRuntime:
        return GAVEL_RUNTIME


RuntimeSpec = Annotated[
    FixedRuntime | ExponentialRuntime | LognormalRuntime | LogUniformRuntime | MixtureRuntime | PresetRuntime,
    Field(discriminator="kind"),
]

GAVEL_RUNTIME = MixtureRuntime(
    components=[
        MixtureComponent(weight=0.8, distribution=LogUniformRuntime(low=60 * 10**1.5, high=60 * 10**3)),
        MixtureComponent(weight=0.2, distribution=LogUniformRuntime(low=60 * 10**3, high=60 * 10**4)),
    ]
)


# Time windows -------------------------------------------------------------------------------------
class TimeWindowSpec(BaseModel):
    """A daily wall-clock window in which the class's jobs may be admitted.

    ``start`` and ``end`` are 24-hour wall times (``"22:00"``, ``"06:30:15"``); the window wraps
    midnight when ``start`` is later than ``end``. Quote them: YAML reads an unquoted ``22:00`` as
    the number 1320. ``timezone`` is an IANA name (``Europe/Berlin``; default ``UTC``); the window
    follows its wall clock across daylight saving changes. With ``must_finish_in_window`` a job is
    admitted only if its declared runtime still ends before the window closes. See
    :class:`budcore.domain.timewindow.TimeWindow`.
    """

    model_config = _FROZEN

    start: str
    end: str
    timezone: str = "UTC"
    must_finish_in_window: bool = False

    @field_validator("start", "end", mode="before")
    @classmethod
    def _quoted(cls, value: object) -> object:
        if isinstance(value, int) and not isinstance(value, bool):
            hint = f"'{value // 60:02d}:{value % 60:02d}'" if 0 <= value < 24 * 60 else "'22:00'"
            raise ValueError(
                f"got the number {value}: YAML reads an unquoted time such as 22:00 as a number "
                f"(hours × 60 + minutes); quote the time, e.g. {hint}"
            )
        return value

    @model_validator(mode="after")
    def _valid(self) -> TimeWindowSpec:
        self.window()
        return self

    def window(self) -> TimeWindow:
        """The :class:`TimeWindow`; an invalid field is a ``ValidationError`` naming it."""
        try:
            return TimeWindow.parse(self.model_dump(), "time_window")
        except ValidationError as exc:
            path = exc.path.removeprefix("time_window").lstrip(".")
            raise ValidationError(exc.message, path=path) from None


# Job classes --------------------------------------------------------------------------------------
class JobClassSpec(BaseModel):
    """One class of jobs: how often they arrive, how long they run, what they ask for.

    ``name`` labels the class (job ids are ``<name>-<n>``, ``n`` from 0) and seeds its random
    streams. ``count`` caps the number of jobs, ``start`` delays the first arrival and ``until``
    ends arrivals (both simulation times; durations accept ``"30m"``-style strings). Runtimes are
    clamped to ``[min_runtime, max_runtime]`` when given. ``deadline_slack`` sets each job's
    deadline to ``submit + runtime * slack``; ``checkpoint_interval``, ``priority``, ``job_type``,
    ``accelerator`` (a catalog slug, or a set the jobs accept any of: ``A|B`` or a list),
    ``budget_limit`` and ``budget_action`` (the jobs' own budget, see
    :mod:`budcore_simulator.money`) apply to every job of the class. ``max_duration``
    (Kueue's ``maximumExecutionTimeSeconds``) and ``time_window`` are described in the module
    docstring.
    ``preemptible: false`` protects the jobs from preemption, and from eviction when a capacity
    booking starts unless they overran the estimate that let them into its room;
    ``declare_runtime: false`` submits them without a runtime estimate, so the scheduler cannot
    know when they end (without ``max_duration``, a non-preemptible one may then not use booked
    room before its start).
    """

    model_config = _FROZEN

    name: str
    tenant: str
    local_queue: str
    arrivals: ArrivalSpec
    runtime: RuntimeSpec
    count: int | None = Field(default=None, ge=0)
    start: Duration = 0.0
    until: Duration | None = None
    min_runtime: Duration | None = None
    max_runtime: Duration | None = None
    gpus: int | dict[int, float] | Literal["gavel"] = 1
    gpus_per_node: int = Field(default=8, ge=1, le=MAX_DEVICES)
    cpu_per_gpu: str | int | float = "4"
    memory_per_gpu: str | int = "32Gi"
    cpu_without_gpu: str | int | float = "1"
    memory_without_gpu: str | int = 0
    priority: Priority = JobPriority.NORMAL
    priority_class: str | None = Field(
        default=None,
        description="A WorkloadPriorityClass of the queue configuration whose value the jobs take "
        "(priority then only says which built-in class protects them).",
    )
    label: str | None = Field(
        default=None, description="Report group (by_label); classes may share one. Default: the name."
    )
    job_type: JobType = JobType.BATCH
    checkpoint_interval: Duration | None = None
    deadline_slack: float | None = Field(default=None, ge=1, le=MAX_DEADLINE_SLACK, allow_inf_nan=False)
    # One type, or a set the jobs accept any of (``A|B`` or a list: budcore.domain.accelerators).
    accelerator: AcceleratorText | None = Field(default=None, min_length=1)
    max_duration: Duration | None = Field(
        default=None,
        gt=0,
        description="Maximum duration (Kueue's maximumExecutionTimeSeconds): a job whose execution "
        "time reaches it is stopped and fails (timeout). max_runtime only clamps drawn runtimes.",
    )
    time_window: TimeWindowSpec | None = Field(
        default=None, description="Daily wall-clock window in which the class's jobs may be admitted."
    )
    preemptible: bool = Field(
        default=True,
        description="false: the class's jobs are not preempted, nor evicted at a booking's start "
        "(unless they overran the estimate that let them into its room).",
    )
    declare_runtime: bool = Field(
        default=True, description="false: the class's jobs are submitted without a runtime estimate."
    )
    budget_limit: Decimal | None = Field(
        default=None,
        ge=0,
        allow_inf_nan=False,
        description='Each job\'s own budget (money, e.g. "25.00"): the submission guard refuses a job '
        "projected past it; a running job reaching it is acted on by budget_action.",
    )
    budget_action: BudgetAction | None = Field(
        default=None,
        description="What a running job reaching its budget_limit does: warn (default), pause or cancel.",
    )

    @field_validator("name")
    @classmethod
    def _valid_name(cls, value: str) -> str:
        return check_name(value, "name")

    @field_validator("tenant")
    @classmethod
    def _valid_tenant(cls, value: str) -> str:
        return check_name(value, "tenant")

    @field_validator("label")
    @classmethod
    def _valid_label(cls, value: str | None) -> str | None:
        return None if value is None else check_name(value, "label")

    @field_validator("priority_class")
    @classmethod
    def _valid_priority_class(cls, value: str | None) -> str | None:
        return None if value is None else check_priority_class(value)

    @field_validator("local_queue")
    @classmethod
    def _valid_queue(cls, value: str) -> str:
        return check_name(value, "local_queue")

    @field_validator("cpu_per_gpu", "cpu_without_gpu", "memory_per_gpu", "memory_without_gpu")
    @classmethod
    def _quantity(cls, value: str | int | float, info: ValidationInfo) -> str | int | float:
        quantity_milli(value, info.field_name or "quantity")
        return value

    @field_validator("gpus")
    @classmethod
    def _gpu_counts(cls, value: int | dict[int, float] | str) -> int | dict[int, float] | str:
        if isinstance(value, int) and value < 0:
            raise ValueError(f"must not be negative, got {value}")
        if isinstance(value, dict):
            if not value:
                raise ValueError("give at least one GPU count")
            for count, weight in value.items():
                if count < 0:
                    raise ValueError(f"GPU count must not be negative, got {count}")
                if not (0 < weight <= MAX_MIX_WEIGHT):
                    raise ValueError(
                        f"weight of {count} GPUs must be a positive number up to {MAX_MIX_WEIGHT:g}, "
                        f"got {weight}"
                    )
        return value

    @model_validator(mode="after")
    def _consistent(self) -> JobClassSpec:
        if self.priority_class is not None and not isinstance(self.priority, JobPriority):
            raise ValidationError(
                "give the WorkloadPriorityClass in priority_class or in priority, not an integer "
                "or another class beside it",
                path="priority_class",
            )
        for count in self.gpu_choices()[0]:
            if count > self.gpus_per_node * MAX_PODS:
                raise ValidationError(
                    f"{count} GPUs is more than {MAX_PODS:,} pods of gpus_per_node ({self.gpus_per_node})",
                    path="gpus",
                )
            if count > self.gpus_per_node and count % self.gpus_per_node:
                raise ValidationError(
                    f"{count} GPUs spans nodes but is not a multiple of gpus_per_node "
                    f"({self.gpus_per_node}): a gang is made of identical whole-node pods",
                    path="gpus",
                )
        if isinstance(self.arrivals, FixedArrivals) and self.arrivals.interval == 0 and self.count is None:
            raise ValidationError("a zero interval needs a 'count' (else arrivals never end)", path="count")
        if self.until is not None and self.until < self.start:
            raise ValidationError(f"must not be before start ({self.start})", path="until")
        if (
            self.min_runtime is not None
            and self.max_runtime is not None
            and self.max_runtime < self.min_runtime
        ):
            raise ValidationError(f"must be at least min_runtime ({self.min_runtime})", path="max_runtime")
        return self

    def expected_jobs(self, end: float = math.inf) -> float:
        """About how many jobs the class submits before ``end`` (its ``until`` and ``count`` too):
        the mean of a random process, exact for ``fixed`` arrivals; ``inf`` when nothing ends it."""
        end = min(end, self.until if self.until is not None else math.inf)
        count = self.count if self.count is not None else math.inf
        if end <= self.start:  # arrivals at or after the end are not submitted
            return 0.0
        arrivals = self.arrivals
        if isinstance(arrivals, FixedArrivals):
            if arrivals.interval == 0:
                return count
            expected = math.ceil((end - self.start) / arrivals.interval) if math.isfinite(end) else math.inf
        else:
            expected = arrivals.rate_per_s * (end - self.start)
        return min(count, expected)

    def gpu_choices(self) -> tuple[tuple[int, ...], tuple[float, ...]]:
        """GPU counts and their probabilities (normalised)."""
        gpus: Mapping[int, float]
        if isinstance(self.gpus, int):
            gpus = {self.gpus: 1.0}
        elif isinstance(self.gpus, dict):
            gpus = self.gpus
        else:
            gpus = GAVEL_GPU_COUNTS
        total = sum(gpus.values())
        counts = tuple(sorted(gpus))
        return counts, tuple(gpus[c] / total for c in counts)


class GeneratorSpec(BaseModel):
    """Job classes merged into one stream ordered by submit time.

    ``horizon`` stops the stream at the first arrival at or after that time; ``limit`` caps the
    number of arrivals. Without either (and with classes that have no ``count`` / ``until``) the
    stream is unbounded, which is fine: it is consumed lazily.
    """

    model_config = _FROZEN

    classes: list[JobClassSpec] = Field(min_length=1)  # list: see MixtureRuntime.components
    horizon: Duration | None = None
    limit: int | None = Field(default=None, ge=0)

    @model_validator(mode="after")
    def _unique_names(self) -> GeneratorSpec:
        seen: set[str] = set()
        for index, klass in enumerate(self.classes):
            if klass.name in seen:
                raise ValidationError(f"duplicate class name {klass.name!r}", path=f"classes[{index}].name")
            seen.add(klass.name)
        return self


def parse_generator_spec(
    data: Mapping[str, Any],
    *,
    prefix: str = "",
    source: str | None = None,
    line_of: LineLookup | None = None,
) -> GeneratorSpec:
    """Validate a generator spec (e.g. from YAML); errors are budcore ``ValidationErrors`` with paths."""
    return validate_model(GeneratorSpec, data, prefix=prefix, source=source, line_of=line_of)


# Random streams -----------------------------------------------------------------------------------
def _stream_rng(seed: int, class_name: str, stream: int, *sub: int) -> Generator:
    """An independent generator for one (class, stream) pair, stable across class lists."""
    if seed < 0:
        raise ValidationError(f"seed must be a non-negative integer, got {seed}", path="seed")
    digest = hashlib.sha256(class_name.encode("utf-8")).digest()
    words = tuple(int.from_bytes(digest[i : i + 4], "little") for i in range(0, 16, 4))
    return Generator(PCG64(SeedSequence(entropy=seed, spawn_key=(*words, stream, *sub))))


def _buffered(draw: Callable[[int], np.ndarray[Any, Any]]) -> Iterator[Any]:
    """An endless iterator over values drawn ``_BATCH`` at a time."""
    while True:
        yield from draw(_BATCH).tolist()


def _arrival_times(spec: ArrivalSpec, start: float, rng: Generator) -> Iterator[float]:
    if isinstance(spec, FixedArrivals):
        interval = spec.interval
        return (start + n * interval for n in itertools.count())
    if isinstance(spec, PoissonArrivals):
        return _poisson_times(start, spec.rate_per_s, rng)
    return _diurnal_times(spec, start, rng)


def _poisson_times(start: float, rate: float, rng: Generator) -> Iterator[float]:
    scale = 1.0 / rate
    t = start
    for gap in _buffered(lambda n: rng.exponential(scale, n)):
        t += gap
        yield t


def _diurnal_times(spec: DiurnalArrivals, start: float, rng: Generator) -> Iterator[float]:
    peak_rate = spec.rate_per_s * (1.0 + spec.amplitude)
    scale = 1.0 / peak_rate
    amplitude = spec.amplitude
    omega = 2.0 * math.pi / spec.period
    shift = (spec.clock_offset_hour - spec.peak_hour) * 3600.0
    accept = _buffered(lambda n: rng.random(n))
    t = start
    for gap in _buffered(lambda n: rng.exponential(scale, n)):
        t += gap
        # keep with probability λ(t)/λ_max = (1 + A cos ω(t + shift)) / (1 + A)
        if next(accept) * (1.0 + amplitude) < 1.0 + amplitude * math.cos(omega * (t + shift)):
            yield t


def _simple_runtimes(
    spec: FixedRuntime | ExponentialRuntime | LognormalRuntime | LogUniformRuntime, rng: Generator
) -> Iterator[float]:
    if isinstance(spec, FixedRuntime):
        return itertools.repeat(spec.value)
    if isinstance(spec, ExponentialRuntime):
        mean = spec.mean
        return _buffered(lambda n: rng.exponential(mean, n))
    if isinstance(spec, LognormalRuntime):
        mu, sigma = spec.mu_value, spec.sigma
        return _buffered(lambda n: rng.lognormal(mu, sigma, n))
    if spec.low == spec.high:
        return itertools.repeat(spec.low)
    log_low, log_high = math.log(spec.low), math.log(spec.high)
    return _buffered(lambda n: np.exp(rng.uniform(log_low, log_high, n)))


def _runtimes(spec: RuntimeSpec, seed: int, class_name: str) -> Iterator[float]:
    if isinstance(spec, PresetRuntime):
        spec = spec.expand()
    if not isinstance(spec, MixtureRuntime):
        return _simple_runtimes(spec, _stream_rng(seed, class_name, 1))
    return _mixture_runtimes(spec, seed, class_name)


def _mixture_runtimes(spec: MixtureRuntime, seed: int, class_name: str) -> Iterator[float]:
    weights = np.array([c.weight for c in spec.components], dtype=float)
    probabilities = weights / weights.sum()
    picker = _stream_rng(seed, class_name, 1)
    indices = len(spec.components)
    choices = _buffered(lambda n: picker.choice(indices, size=n, p=probabilities))
    components = [
        _simple_runtimes(c.distribution, _stream_rng(seed, class_name, 1, i + 1))
        for i, c in enumerate(spec.components)
    ]
    for index in choices:
        yield next(components[index])


def _gpu_counts(spec: JobClassSpec, seed: int) -> Iterator[int]:
    counts, probabilities = spec.gpu_choices()
    if len(counts) == 1:
        return itertools.repeat(counts[0])
    rng = _stream_rng(seed, spec.name, 2)
    values = np.array(counts, dtype=np.int64)
    p = np.array(probabilities, dtype=float)
    return _buffered(lambda n: rng.choice(values, size=n, p=p))


# Generation ---------------------------------------------------------------------------------------
def class_arrivals(spec: JobClassSpec, seed: int) -> Iterator[JobArrival]:
    """The arrivals of one class in submit order, lazily, ids ``<class>-0``, ``<class>-1``, ..."""
    name = spec.name
    per_gpu_cpu = quantity_milli(spec.cpu_per_gpu, "cpu_per_gpu")
    per_gpu_memory = quantity_bytes(spec.memory_per_gpu, "memory_per_gpu")
    shapes: dict[int, tuple[int, int, int, int]] = {}
    for count in spec.gpu_choices()[0]:
        if count == 0:
            shapes[0] = (
                1,
                0,
                quantity_milli(spec.cpu_without_gpu, "cpu_without_gpu"),
                quantity_bytes(spec.memory_without_gpu, "memory_without_gpu"),
            )
        else:
            per_pod = min(count, spec.gpus_per_node)
            shapes[count] = (count // per_pod, per_pod, per_gpu_cpu * per_pod, per_gpu_memory * per_pod)

    times = _arrival_times(spec.arrivals, spec.start, _stream_rng(seed, name, 0))
    runtimes = _runtimes(spec.runtime, seed, name)
    gpus = _gpu_counts(spec, seed)
    return _assemble(spec, times, runtimes, gpus, shapes)


def _assemble(
    spec: JobClassSpec,
    times: Iterator[float],
    runtimes: Iterator[float],
    gpus: Iterator[int],
    shapes: dict[int, tuple[int, int, int, int]],
) -> Iterator[JobArrival]:
    name, tenant, queue = spec.name, spec.tenant, spec.local_queue
    priority, priority_value, priority_class = priority_parts(spec.priority, spec.priority_class)
    job_type, label = spec.job_type.value, spec.label
    checkpoint, slack, accelerator = spec.checkpoint_interval, spec.deadline_slack, spec.accelerator
    max_duration, preemptible, declares = spec.max_duration, spec.preemptible, spec.declare_runtime
    window = spec.time_window.window() if spec.time_window is not None else None  # one, shared
    budget_limit = spec.budget_limit
    budget_action = None if spec.budget_action is None else spec.budget_action.value
    count = spec.count if spec.count is not None else math.inf
    until = spec.until if spec.until is not None else math.inf
    low = spec.min_runtime if spec.min_runtime is not None else -math.inf
    # Drawn runtimes never pass the simulator's longest duration (a lognormal's tail can reach
    # infinity); a bounded distribution never reaches it, so the clamp changes nothing else.
    high = min(spec.max_runtime, MAX_SPAN_S) if spec.max_runtime is not None else MAX_SPAN_S
    clamp = spec.min_runtime is not None or spec.max_runtime is not None or _unbounded(spec.runtime)
    for n, t in enumerate(times):
        if n >= count or t >= until:
            return
        runtime = next(runtimes)
        if clamp:
            runtime = min(max(runtime, low), high)
        pods, per_pod, cpu, memory = shapes[next(gpus)]
        yield JobArrival(
            t,
            runtime,
            per_pod,
            pods,
            cpu,
            memory,
            tenant,
            queue,
            priority,
            job_type,
            name,
            f"{name}-{n}",
            checkpoint,
            None if slack is None else t + runtime * slack,
            accelerator,
            None,
            max_duration,
            window,
            preemptible,
            declares,
            priority_value,
            priority_class,
            label,
            budget_limit,
            budget_action,
        )


def _unbounded(spec: RuntimeSpec) -> bool:
    """Whether draws of ``spec`` may exceed :data:`~.limits.MAX_SPAN_S` (exponential, lognormal)."""
    if isinstance(spec, MixtureRuntime):
        return any(_unbounded(c.distribution) for c in spec.components)
    return isinstance(spec, ExponentialRuntime | LognormalRuntime)


def generate_arrivals(spec: GeneratorSpec, seed: int) -> Iterator[JobArrival]:
    """All classes merged by submit time; ties go to the earlier class in ``spec.classes``.

    Within a class arrivals are already in order, and ``heapq.merge`` breaks equal keys by the
    position of the input iterator, so the merged order is fully deterministic. A bad seed raises
    here, not at the first ``next``.
    """
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValidationError(f"must be a non-negative integer, got {seed!r}", path="seed")
    merged = merge_arrivals(*(class_arrivals(c, seed) for c in spec.classes))
    horizon = spec.horizon if spec.horizon is not None else math.inf
    limit = spec.limit if spec.limit is not None else math.inf
    return _bounded(merged, horizon, limit)


def _bounded(arrivals: Iterator[JobArrival], horizon: float, limit: float) -> Iterator[JobArrival]:
    for emitted, arrival in enumerate(arrivals):
        if emitted >= limit or arrival.submit_s >= horizon:
            return
        yield arrival
