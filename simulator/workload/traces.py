"""Trace readers: replay real cluster logs as a stream of :class:`JobArrival` records.

Five formats are read, each streaming (one row at a time, never the whole file; ``.gz`` files are
decompressed on the fly): the four below and Alibaba's 2023 GPU trace, ``openb``
(:mod:`.openb`). ``simulator/workload/TRACES.md`` documents them in full, including the
budcore CSV schema reproduced here:

budcore CSV (``format: budcore``)
    A header row, then one job per row. Columns (any order; unknown columns are an error, so a typo
    is not silently ignored):

    ====================== ======== ===========================================================
    column                 required meaning
    ====================== ======== ===========================================================
    job_id                 yes      job id, used as is (keep it unique)
    submit_s               yes      submit time in seconds on any origin (rebased to 0)
    runtime_s              yes      run time in seconds once started, >= 0
    gpus_per_pod           no       GPUs per pod, default 0
    pods                   no       identical pods (a gang if > 1), default 1
    cpu                    no       CPU per pod, Kubernetes quantity ("4", "500m"); default
                                    ``cpu_per_gpu`` x GPUs, or ``cpu_without_gpu``
    memory                 no       memory per pod ("32Gi"); default like ``cpu``
    tenant                 no       tenant name; empty: from the mapping (on ``user``)
    local_queue            no       LocalQueue name; empty: from the mapping
    user                   no       input to the mapping when tenant / local_queue are empty
    priority               no       critical, high, normal, low or spot; an integer (Kueue's
                                    ``Workload.spec.priority``); or a WorkloadPriorityClass name
    job_type               no       service, batch or training
    job_class              no       label for reports; default the reader's ``job_class``
    checkpoint_interval_s  no       seconds between checkpoints; empty: none
    deadline_s             no       absolute deadline on the same origin as ``submit_s``
    accelerator            no       accelerator type slug (e.g. ``nvidia-h100-80gb``), or a set the
                                    job accepts any of (``nvidia-v100-16gb|nvidia-v100-32gb``)
    max_duration_s         no       maximum duration in seconds (Kueue's
                                    ``maximumExecutionTimeSeconds``)
    budget_limit           no       the job's own budget (money, e.g. ``25.00``)
    budget_action          no       warn, pause or cancel: what reaching ``budget_limit`` does
    ====================== ======== ===========================================================

Helios ``cluster_log.csv`` (``format: helios``; SenseTime, Hu et al., SC'21)
    ``job_id,user,vc,gpu_num,cpu_num,node_num,state,submit_time,start_time,end_time,duration,queue``
    with a header row; times are ``YYYY-MM-DD HH:MM:SS`` strings (epoch seconds are accepted too).
    Runtime is ``duration`` (else ``end_time - start_time``). Mapping attributes: ``user``, ``vc``.

Alibaba PAI GPU 2020 (``format: pai``; Weng et al., NSDI'22)
    ``pai_job_table`` (``job_name,inst_id,user,status,start_time,end_time``) joined with
    ``pai_task_table`` (``job_name,task_name,inst_num,status,start_time,end_time,plan_cpu,plan_mem,
    plan_gpu,gpu_type``). The released files have no header row (a header is detected and skipped
    if present). ``plan_gpu`` and ``plan_cpu`` are percentages (100 = one GPU / one core),
    ``plan_mem`` is GiB, times are seconds on a shifted origin. Submit time is the job's
    ``start_time``; runtime is the span of its tasks (latest task end minus earliest task start).
    Mapping attributes: ``user``, ``gpu_type``.

Standard Workload Format (``format: swf``; Parallel Workloads Archive, Feitelson et al.)
    Eighteen whitespace-separated fields per line, ``;`` comment lines, ``-1`` for unknown. Fields
    2 (submit), 4 (run time), 5/8 (allocated / requested processors), 7/10 (used / requested KB
    per processor), 9 (requested time: the job's declared runtime estimate, shown against the
    actual run in ``timeline.png``), 11 (status), 12-16 (user, group, application, queue,
    partition) are used.
    Processors count GPUs by default (``swf_processors: gpus``) or CPUs. Status 2-4 lines (partial
    executions of a checkpointed job) are filtered: the job's summary line carries the whole job.
    Mapping attributes: ``user``, ``group``, ``application``, ``queue``, ``partition``.

Common behaviour
    * Users / VCs become tenants and LocalQueues through a :class:`QueueMapping`: rules matched in
      order (exact names or ``fnmatch`` globs on the format's attributes; the first match wins),
      whose ``tenant`` / ``local_queue`` may be templates such as ``"{vc}"`` (values are lower-cased
      and made into valid names), falling back to the defaults.
    * A row that cannot be read is skipped and reported (file, line, field, reason) in
      :attr:`TraceReader.report`; with ``strict`` it raises budcore's ``ValidationError`` naming
      the file, the line and the field. Rows excluded on purpose (a ``states`` filter, CPU-only
      jobs in Helios / PAI when ``include_cpu_only`` is off, SWF partial lines, rows shorter than
      ``min_runtime`` or before an explicit ``origin``) are counted as ``filtered``.
    * Submit times are rebased so the first arrival is at 0 (or relative to an explicit
      ``origin``). Output is sorted by submit time. Traces are nearly sorted, so rows pass through a
      bounded reorder buffer of ``reorder_window`` rows (a heap): a row that is earlier than one
      already emitted, i.e. out of order by more than the window, is an error in strict mode and
      skipped (reported) otherwise. ``reorder_window: 0`` requires a sorted file. Memory stays
      bounded by the window, except for PAI whose task table is first reduced to a compact
      per-job index in typed arrays (about 200 bytes a job including its name, some 250 MB for
      the full trace's 1.2 million jobs).
    * A reader is re-iterable: each iteration reopens the file and starts a fresh report, so the
      same trace can be replayed under several policies.
    * Files are UTF-8 (a byte-order mark is dropped); other bytes, binary and empty files are an
      error naming the file (:class:`TextLines`). A pass that yields no job is an error saying
      why and naming the format the file looks like (:func:`guess_format`). Values above the
      simulator's limits (:mod:`.limits`: 10 years, 256 GPUs a pod, ...) are invalid rows.

Formats are plugins
    A spec's ``format`` names a trace reader registered through the ``budcore_register_trace_readers``
    hook; the four above are the simulator plugin's (``budcore_simulator.plugin``), and
    :func:`open_trace` builds every reader through the registry, so a plugin's format is used the
    same way. A reader factory is called with ``path`` and ``options`` (and ``task_path`` when the
    spec has one: only readers whose signature has a ``task_path`` parameter accept one, and one
    without a default requires it) and returns a :class:`TraceReader`. The simplest reader
    subclasses :class:`TraceReader`: a ``format`` name, the mapping ``attributes`` it offers,
    ``_rows`` yielding ``(source, line, raw row)`` and ``_parse`` returning a :class:`ParsedRow`
    (raising :class:`RowError` for a bad value, :class:`FilteredRow` to drop a row on purpose).
"""

from __future__ import annotations

import csv
import fnmatch
import gzip
import heapq
import inspect
import math
import re
import string
import zlib
from abc import ABC, abstractmethod
from array import array
from collections import Counter
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, BinaryIO, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from budcore.domain.accelerators import AcceleratorText, canonical_accelerators
from budcore.domain.errors import PluginError, ValidationError
from budcore.domain.ids import check_name
from budcore.domain.job import BudgetAction, JobType
from budcore.domain.priority import JobPriority
from budcore.domain.validation import LineLookup, validate_model
from budcore.plugins import PluginRegistry, default_registry
from budcore.plugins.hookspecs import Factory

from .limits import (
    MAX_CPUS_PER_NODE,
    MAX_DEADLINE_SLACK,
    MAX_DEVICES,
    MAX_LINE_BYTES,
    MAX_PODS,
    MAX_QUANTITY_MILLI,
    MAX_SPAN_S,
    span_text,
)
from .model import JobArrival, Priority, parse_priority, priority_parts, split_gang
from .units import Duration, FilePath, is_file, quantity_bytes, quantity_milli

# A deadline lies at most this far after the start: submit and runtime are bounded, and so is the
# deadline slack, so every deadline a trace can mean fits (and an absurd one is a row error).
_MAX_DEADLINE_S = MAX_SPAN_S * (1 + MAX_DEADLINE_SLACK)

SAMPLES_DIR = Path(__file__).parent / "samples"

_FROZEN = ConfigDict(frozen=True, extra="forbid")
_INVALID_NAME_CHARS = re.compile(r"[^a-z0-9._-]+")


def sanitize_name(value: str) -> str:
    """A trace value (``vcJkd``, ``58540f191766``, ``u/x y``) as a valid budcore name (``vcjkd``)."""
    cleaned = _INVALID_NAME_CHARS.sub("-", value.strip().lower())
    return cleaned.strip("-_.")[:253].strip("-_.")


def _template_fields(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name is not None}


# Mapping ------------------------------------------------------------------------------------------
class MappingRule(BaseModel):
    """Route trace rows whose attributes match ``match`` (all of them) to a tenant / queue.

    ``match`` maps an attribute (``user``, ``vc``, ...) to an exact value or an ``fnmatch`` glob
    (``vc8*``, ``u?bc``); case-sensitive, as trace ids are. ``tenant`` and ``local_queue`` are
    names or templates over the attributes (``"{vc}"``, ``"team-{user}"``). Fields left unset fall
    back to the mapping's defaults (not to later rules).
    """

    model_config = _FROZEN

    match: dict[str, str] = Field(min_length=1)
    tenant: str | None = None
    local_queue: str | None = None
    priority: Priority | None = None
    accelerator: AcceleratorText | None = Field(default=None, min_length=1)


class QueueMapping(BaseModel):
    """Trace users / VCs to budcore tenants and Kueue LocalQueues."""

    model_config = _FROZEN

    rules: tuple[MappingRule, ...] = ()
    default_tenant: str = "default"
    default_local_queue: str = "default"

    @model_validator(mode="after")
    def _valid_names(self) -> QueueMapping:
        checks = [("default_tenant", self.default_tenant), ("default_local_queue", self.default_local_queue)]
        for index, rule in enumerate(self.rules):
            for name in ("tenant", "local_queue"):
                value = getattr(rule, name)
                if value is not None:
                    checks.append((f"rules[{index}].{name}", value))
        for path, value in checks:
            try:
                fields = _template_fields(value)
            except ValueError as exc:
                raise ValidationError(f"invalid template {value!r}: {exc}", path=path) from None
            if not fields:
                check_name(value, path)
        return self

    def check_attributes(self, available: tuple[str, ...], prefix: str = "mapping") -> None:
        """Reject rules and templates that name attributes the trace format does not have."""
        known = set(available)
        for index, rule in enumerate(self.rules):
            for attribute in rule.match:
                if attribute not in known:
                    raise ValidationError(
                        f"unknown attribute {attribute!r}; this trace format has {list(available)}",
                        path=f"{prefix}.rules[{index}].match.{attribute}",
                    )
            for name in ("tenant", "local_queue"):
                value = getattr(rule, name)
                if value is not None and not _template_fields(value) <= known:
                    raise ValidationError(
                        f"template {value!r} uses an unknown attribute; this trace format has "
                        f"{list(available)}",
                        path=f"{prefix}.rules[{index}].{name}",
                    )

    def route(self, attributes: Mapping[str, str]) -> _Route:
        """The tenant / queue / overrides for a row; a template yielding an invalid name raises."""
        for rule in self.rules:
            if all(_matches(attributes.get(k, ""), pattern) for k, pattern in rule.match.items()):
                tenant = self.default_tenant if rule.tenant is None else _fill(rule.tenant, attributes)
                queue = (
                    self.default_local_queue
                    if rule.local_queue is None
                    else _fill(rule.local_queue, attributes)
                )
                return _Route(tenant, queue, rule.priority, rule.accelerator)
        return _Route(self.default_tenant, self.default_local_queue, None, None)


@dataclass(frozen=True, slots=True)
class _Route:
    tenant: str
    local_queue: str
    priority: JobPriority | int | str | None
    accelerator: str | None


def _matches(value: str, pattern: str) -> bool:
    if any(c in pattern for c in "*?["):
        return fnmatch.fnmatchcase(value, pattern)
    return value == pattern


def _fill(template: str, attributes: Mapping[str, str]) -> str:
    if not _template_fields(template):
        return template
    value = template.format_map({k: sanitize_name(v) for k, v in attributes.items()})
    if not is_valid_name(value):
        raise _RowError("mapping", f"template {template!r} gives {value!r}, which is not a valid name")
    return value


def is_valid_name(value: str) -> bool:
    """Whether ``value`` is a valid tenant / queue / class name (see ``budcore.domain.ids``)."""
    try:
        check_name(value, "name")
    except ValidationError:
        return False
    return True


# Options ------------------------------------------------------------------------------------------
class TraceOptions(BaseModel):
    """How trace rows become arrivals. Every field has a default; formats ignore what they lack.

    Resource defaults fill what a trace does not record (Helios has no memory, SWF often no CPU):
    ``cpu_per_gpu`` / ``memory_per_gpu`` per GPU of a pod, ``cpu_without_gpu`` /
    ``memory_without_gpu`` for a pod without GPUs. ``swf_processors`` and ``cpus_per_node`` apply
    to SWF only, ``fractional`` and ``qos_priority`` to openb only.
    """

    model_config = _FROZEN

    mapping: QueueMapping = Field(default_factory=QueueMapping)
    job_class: str | None = None
    priority: Priority = JobPriority.NORMAL
    job_type: JobType = JobType.BATCH
    gpus_per_node: int = Field(default=8, ge=1, le=MAX_DEVICES)
    cpu_per_gpu: str | int | float = "4"
    memory_per_gpu: str | int = "32Gi"
    cpu_without_gpu: str | int | float = "1"
    memory_without_gpu: str | int = 0
    checkpoint_interval: Duration | None = None
    deadline_slack: float | None = Field(default=None, ge=1, le=MAX_DEADLINE_SLACK, allow_inf_nan=False)
    accelerator: AcceleratorText | None = Field(default=None, min_length=1)
    states: tuple[str, ...] | None = None
    include_cpu_only: bool = False
    min_runtime: Duration = 0.0
    origin: float | None = Field(default=None, allow_inf_nan=False)
    horizon: Duration | None = None
    limit: int | None = Field(default=None, ge=0)
    strict: bool = False
    reorder_window: int = Field(default=10_000, ge=0)
    max_reported: int = Field(default=100, ge=0)
    swf_processors: Literal["gpus", "cpus"] = "gpus"
    cpus_per_node: int = Field(default=64, ge=1, le=MAX_CPUS_PER_NODE)
    fractional: Literal["share", "skip", "round-up"] = Field(
        default="share",
        description="openb: a pod asking for a share of one GPU (gpu_milli < 1000) asks for that "
        "share, packed with other shares onto one physical device (share, the default), is "
        "filtered (skip, counted) or asks for one whole GPU (round-up, counted as a note).",
    )
    qos_priority: dict[str, Priority] | None = Field(
        default=None,
        description="openb: the priority of each qos value (default LS and Guaranteed: high, "
        "Burstable: normal, BE: low); a mapping rule's priority wins, priority applies to others.",
    )

    @field_validator("job_class")
    @classmethod
    def _class_name(cls, value: str | None) -> str | None:
        return None if value is None else check_name(value, "job_class")

    @field_validator("cpu_per_gpu", "cpu_without_gpu", "memory_per_gpu", "memory_without_gpu")
    @classmethod
    def _quantity(cls, value: str | int | float, info: ValidationInfo) -> str | int | float:
        quantity_milli(value, info.field_name or "quantity")
        return value


BUILTIN_FORMATS = ("budcore", "helios", "openb", "pai", "swf")  # the simulator plugin's trace readers


class TraceSpec(TraceOptions):
    """A trace in a scenario file: the format, the file(s) and the :class:`TraceOptions`.

    ``format`` is the name of a registered trace reader (``budcore``, ``helios``, ``pai``, ``swf``
    or a plugin's); ``task_path`` is given exactly when that reader requires a second file.
    """

    format: str = Field(
        min_length=1,
        description="a registered trace reader: budcore, helios, openb, pai, swf, or a plugin's format",
        json_schema_extra={"examples": list(BUILTIN_FORMATS)},
    )
    path: FilePath
    task_path: FilePath | None = None

    @field_validator("format")
    @classmethod
    def _registered(cls, value: str) -> str:
        trace_reader_factory(value)
        return value

    @model_validator(mode="after")
    def _task_table(self) -> TraceSpec:
        takes = _task_path_parameter(trace_reader_factory(self.format))
        if takes is None and self.task_path is not None:
            raise ValidationError(f"the {self.format} format has no task table", path="task_path")
        if takes is not None and takes.default is inspect.Parameter.empty and self.task_path is None:
            raise ValidationError(
                f"the {self.format} format needs its task table (task_path)", path="task_path"
            )
        return self


def trace_formats(registry: PluginRegistry | None = None) -> list[str]:
    """The trace formats a spec may name: every registered trace reader, sorted."""
    return (registry or default_registry()).names("trace_reader")


def trace_reader_factory(fmt: str, registry: PluginRegistry | None = None) -> Factory:
    """The reader factory registered for ``fmt`` (imported, not called).

    An unregistered format is a ``ValidationError`` at ``format`` listing the registered ones; a
    format two plugins register, or whose plugin cannot be imported, is a ``PluginError``.
    """
    registry = registry or default_registry()
    if registry.get("trace_reader", fmt) is None:
        known = ", ".join(trace_formats(registry)) or "none"
        raise ValidationError(
            f"unknown trace format {fmt!r}; registered formats: {known} (plugins add formats through "
            "budcore_register_trace_readers)",
            path="format",
        )
    return registry.load("trace_reader", fmt)


def _task_path_parameter(factory: Factory) -> inspect.Parameter | None:
    """The factory's ``task_path`` parameter (``**kwargs`` does not count), if it declares one."""
    try:
        parameters = inspect.signature(factory).parameters
    except (TypeError, ValueError):  # no signature: assume no second file
        return None
    parameter = parameters.get("task_path")
    if parameter is None or parameter.kind in (parameter.VAR_KEYWORD, parameter.VAR_POSITIONAL):
        return None
    return parameter


def parse_trace_spec(
    data: Mapping[str, Any],
    *,
    prefix: str = "",
    source: str | None = None,
    line_of: LineLookup | None = None,
) -> TraceSpec:
    """Validate a trace spec (e.g. from YAML); errors are budcore ``ValidationErrors`` with paths."""
    return validate_model(TraceSpec, data, prefix=prefix, source=source, line_of=line_of)


# Report -------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class SkippedRow:
    source: str
    line: int
    field: str
    reason: str

    def __str__(self) -> str:
        return f"{self.source}:{self.line}: {self.field}: {self.reason}"


@dataclass(slots=True)
class TraceReport:
    """What one pass over a trace did: rows read, emitted, filtered on purpose, skipped as invalid.

    ``details`` keeps the first ``max_reported`` skipped rows (file, line, field, reason); the
    count ``skipped`` is exact, and so are its split by field (``skipped_fields``) and the split of
    ``filtered`` by reason (``filtered_reasons``). ``notes`` counts emitted jobs a reader changed or
    could only approximate (censored runtimes, rounded-up GPU shares, the first of an accelerator
    set, ...), by what it did. ``reordered`` counts rows the reorder buffer put back in order.
    """

    source: str
    max_reported: int = 100
    rows: int = 0
    emitted: int = 0
    filtered: int = 0
    skipped: int = 0
    reordered: int = 0
    details: list[SkippedRow] = field(default_factory=list)
    filtered_reasons: Counter[str] = field(default_factory=Counter)
    skipped_fields: Counter[str] = field(default_factory=Counter)
    notes: Counter[str] = field(default_factory=Counter)

    def skip(self, source: str, line: int, field_name: str, reason: str) -> None:
        self.skipped += 1
        self.skipped_fields[field_name] += 1
        if len(self.details) < self.max_reported:
            self.details.append(SkippedRow(source, line, field_name, reason))

    def filter(self, reason: str) -> None:
        self.filtered += 1
        self.filtered_reasons[reason] += 1

    def summary(self) -> str:
        return (
            f"{self.source}: {self.rows} rows, {self.emitted} arrivals, {self.filtered} filtered, "
            f"{self.skipped} invalid, {self.reordered} reordered"
        )


# Row parsing helpers ------------------------------------------------------------------------------
class _RowError(Exception):
    """A bad value in one row; turned into a report entry or, in strict mode, a ValidationError."""

    def __init__(self, field_name: str, reason: str) -> None:
        super().__init__(reason)
        self.field = field_name
        self.reason = reason


class _FilteredRowError(Exception):
    """A valid row excluded on purpose (state filter, CPU-only job, partial SWF line); ``reason``
    says why, in the report's ``filtered_reasons`` (and ``budcore trace inspect``)."""

    def __init__(self, reason: str = "filtered by the reader") -> None:
        super().__init__(reason)
        self.reason = reason


def _accelerator_cell(text: str) -> str | None:
    """An ``accelerator`` cell: one type or a set (``A|B``), None when empty; a row error for an
    empty member (``A||B``), so the job never fails later, mid-simulation, on its request."""
    try:
        return canonical_accelerators(text) if text else None
    except ValueError as exc:
        raise _RowError("accelerator", str(exc)) from None


# The public names of the row types, for readers written in plugins (see ``TraceReader``).
RowError = _RowError
FilteredRow = _FilteredRowError


@dataclass(slots=True)
class _Parsed:
    """One row reduced to what an arrival needs, times still on the trace's own origin."""

    trace_id: str
    submit: float
    runtime: float
    gpus_per_pod: int
    pods: int
    cpu_milli: int
    memory_bytes: int
    attributes: dict[str, str]
    line: int
    tenant: str | None = None
    local_queue: str | None = None
    priority: JobPriority | int | str | None = None
    job_type: str | None = None
    job_class: str | None = None
    checkpoint_s: float | None = None
    deadline: float | None = None
    accelerator: str | None = None
    estimate: float | None = None  # the submitter's declared runtime, when the trace has one
    max_duration: float | None = None  # the job's maximum duration (budcore format only)
    budget_limit: Decimal | None = None  # the job's own budget (budcore format only)
    budget_action: str | None = None  # warn, pause or cancel (budcore format only)
    # The format's own priority for the row (openb's qos), below a mapping rule's.
    fallback_priority: JobPriority | int | str | None = None
    # What the reader changed or approximated in this row (counted in the report's notes).
    notes: tuple[str, ...] = ()
    # A share of one GPU per pod in milli-units (1-999, gpus_per_pod 1); None: whole GPUs.
    gpu_milli: int | None = None


ParsedRow = _Parsed


def _text(row: Mapping[str, str], name: str) -> str:
    return (row.get(name) or "").strip()


def _number(value: str, name: str, *, allow_empty: bool = False) -> float | None:
    """A finite float; empty, ``NaN`` (pandas' empty cell), ``none`` and ``null`` are missing."""
    try:
        number = float(value)
    except ValueError:
        if value == "" or value.lower() in ("none", "null"):
            number = math.nan
        else:
            raise _RowError(name, f"not a number: {value!r}") from None
    if number != number:  # NaN: a missing value
        if allow_empty:
            return None
        raise _RowError(name, "missing value")
    if number in (math.inf, -math.inf):
        raise _RowError(name, f"not a finite number: {value!r}")
    return number


def _money(value: str, name: str) -> Decimal | None:
    """An amount of money (``25``, ``25.00``), non-negative; empty: none."""
    if not value:
        return None
    try:
        amount = Decimal(value)
    except InvalidOperation:
        raise _RowError(name, f"not an amount of money: {value!r}") from None
    if not amount.is_finite() or amount < 0:
        raise _RowError(name, f"must be a finite amount >= 0, got {value!r}")
    return amount


def _required(value: str, name: str) -> float:
    number = _number(value, name)
    assert number is not None
    return number


def _count(value: str, name: str, default: int | None = None) -> int:
    number = _number(value, name, allow_empty=default is not None)
    if number is None:
        assert default is not None
        return default
    if number < 0 or number != int(number):
        raise _RowError(name, f"expected a non-negative whole number, got {value!r}")
    return int(number)


def _timestamp(value: str, name: str) -> float:
    """Epoch seconds from a number or an ISO-like datetime (naive values are read as UTC)."""
    if value == "":
        raise _RowError(name, "missing value")
    try:
        return float(value)
    except ValueError:
        pass
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        raise _RowError(name, f"not a datetime or epoch seconds: {value!r}") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.timestamp()


class TextLines:
    """The lines of a UTF-8 text file (``.gz`` decompressed on the fly), each with its line ending.

    What a trace file holds is someone else's: bytes that are not UTF-8, a file that is binary
    (NUL bytes, a UTF-16 byte-order mark), a ``.gz`` that is not gzip, or nothing at all are one
    ``ValidationError`` naming the file (and the line), never a ``UnicodeDecodeError``. A UTF-8
    byte-order mark (Excel writes one) is dropped, so it does not hide the first column's name.
    Iterating gives ``str`` lines that :mod:`csv` reads (quoted fields may span lines).
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.source = str(path)
        self.line = 0
        try:
            # closed by __exit__
            self._raw: BinaryIO | gzip.GzipFile = (
                gzip.open(path, "rb") if path.suffix == ".gz" else path.open("rb")  # noqa: SIM115
            )
        except OSError as exc:
            raise ValidationError(
                f"cannot read {self.source!r}: {exc.strerror or exc}", source=self.source
            ) from None

    def __enter__(self) -> TextLines:
        return self

    def __exit__(self, *exc: object) -> None:
        self._raw.close()

    def __iter__(self) -> Iterator[str]:
        try:
            while raw := self._raw.readline(MAX_LINE_BYTES + 1):
                self.line += 1
                if len(raw) > MAX_LINE_BYTES:
                    raise self._error(f"has a line longer than {MAX_LINE_BYTES // 2**20} MiB: not a trace")
                yield self._decode(raw)
        except (OSError, EOFError, zlib.error) as exc:  # a truncated or corrupt .gz
            raise ValidationError(
                f"cannot read {self.source!r}: {exc}", source=self.source, line=self.line or None
            ) from None

    def _decode(self, raw: bytes) -> str:
        if self.line == 1:
            if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
                raise self._error(
                    "is UTF-16 text (it starts with a UTF-16 byte-order mark): save it as UTF-8"
                )
            raw = raw.removeprefix(b"\xef\xbb\xbf")  # Excel's UTF-8 byte-order mark
        if b"\0" in raw:
            raise self._error("holds NUL bytes: it is a binary file, not a text trace")
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            bad = raw[exc.start : exc.start + 1].hex()
            raise self._error(
                f"is not UTF-8 text: byte 0x{bad} at column {exc.start + 1} (save the file as UTF-8)"
            ) from None

    def _error(self, message: str) -> ValidationError:
        return ValidationError(
            f"{self.source} {message}", source=self.source, line=self.line, path="encoding"
        )


def _open_text(path: Path) -> TextLines:
    return TextLines(path)


@contextmanager
def _csv_errors(source: str, reader: Any) -> Iterator[None]:
    """A ``csv.Error`` (a NUL in a field, a field over the size limit, a stray quote in strict
    dialects) as a ValidationError naming the file and the line."""
    try:
        yield
    except csv.Error as exc:
        raise ValidationError(
            f"{source} is not CSV the reader can parse: {exc}",
            path="row",
            source=source,
            line=getattr(reader, "line_num", None) or None,
        ) from None


# Readers ------------------------------------------------------------------------------------------
class TraceReader(ABC):
    """Base of the readers: parsing is per format, routing / rebasing / ordering are shared."""

    format: ClassVar[str]
    attributes: ClassVar[tuple[str, ...]]
    # Formats that mix GPU and CPU-only jobs drop the latter unless ``include_cpu_only`` is set.
    filters_cpu_only: ClassVar[bool] = False
    # Whether rows have a state a ``states`` filter can select on (``attributes["state"]``).
    has_states: ClassVar[bool] = True
    # Whether job ids are ``<job class>-<trace id>`` (else the trace's id as is).
    prefixes_ids: ClassVar[bool] = True
    # The columns the submit time and the runtime come from, for messages about them.
    submit_field: ClassVar[str] = "submit_time"
    runtime_field: ClassVar[str] = "runtime"
    gpus_field: ClassVar[str] = "gpus"

    def __init__(self, path: str | Path, options: TraceOptions | None = None, **overrides: Any) -> None:
        self.path = Path(path)
        base = options or TraceOptions()
        if overrides:
            base = validate_model(TraceOptions, {**base.model_dump(), **overrides})
        self.options = base
        self.options.mapping.check_attributes(self.attributes)
        if base.states is not None and not self.has_states:
            raise ValidationError(f"the {self.format} format has no job state to filter on", path="states")
        if not is_file(self.path):
            raise ValidationError(f"trace file {str(self.path)!r} does not exist", path="path")
        self.report = TraceReport(source=str(self.path), max_reported=base.max_reported)
        self._cpu_per_gpu = quantity_milli(base.cpu_per_gpu, "cpu_per_gpu")
        self._memory_per_gpu = quantity_bytes(base.memory_per_gpu, "memory_per_gpu")
        self._cpu_without_gpu = quantity_milli(base.cpu_without_gpu, "cpu_without_gpu")
        self._memory_without_gpu = quantity_bytes(base.memory_without_gpu, "memory_without_gpu")
        self._routes: dict[tuple[str, ...], _Route] = {}
        # The LocalQueues jobs may go to, as (namespace, name); None: not checked. A scenario sets
        # it: a job routed to a LocalQueue that does not exist is an invalid row (reported),
        # never a job that is silently rejected.
        self.local_queues: frozenset[tuple[str, str]] | None = None

    def __iter__(self) -> Iterator[JobArrival]:
        self.report = TraceReport(source=str(self.path), max_reported=self.options.max_reported)
        return self._ordered()

    @classmethod
    def sniff(cls, head: list[str]) -> bool:
        """Whether a file whose first lines are ``head`` looks like this format (for messages and
        ``budcore trace inspect``'s guess; never used to read a file another format was named for).
        The default: no opinion. A plugin's reader may override it."""
        return False

    # per format -------------------------------------------------------------------------------
    @abstractmethod
    def _rows(self) -> Iterator[tuple[str, int, Any]]:
        """``(source, line, raw row)`` for every data row, lazily."""

    @abstractmethod
    def _parse(self, line: int, row: Any) -> _Parsed:
        """Parse one raw row; raise ``_RowError`` for bad data, ``_FilteredRowError`` to exclude it."""

    @property
    def default_job_class(self) -> str:
        return self.options.job_class or self.format

    # shared -----------------------------------------------------------------------------------
    def _fail(self, source: str, line: int, error: _RowError) -> None:
        if self.options.strict:
            raise ValidationError(error.reason, path=error.field, source=source, line=line)
        self.report.skip(source, line, error.field, error.reason)

    def _resources(self, gpus_per_pod: int) -> tuple[int, int]:
        """Default CPU milli / memory bytes for a pod holding ``gpus_per_pod`` GPUs."""
        if gpus_per_pod:
            return self._cpu_per_gpu * gpus_per_pod, self._memory_per_gpu * gpus_per_pod
        return self._cpu_without_gpu, self._memory_without_gpu

    def _ordered(self) -> Iterator[JobArrival]:
        options = self.options
        window = options.reorder_window
        horizon = options.horizon if options.horizon is not None else math.inf
        limit = options.limit if options.limit is not None else math.inf
        origin = options.origin
        heap: list[tuple[float, int, _Parsed]] = []
        watermark = -math.inf  # submit time (trace origin) of the last emitted row
        latest = -math.inf  # largest submit time seen so far
        report = self.report
        seq = 0
        for source, line, row in self._rows():
            report.rows += 1
            try:
                parsed = self._parse(line, row)
                self._check_bounds(parsed)
                if parsed.runtime < options.min_runtime:
                    raise _FilteredRowError("shorter than min_runtime")
                if origin is not None and parsed.submit < origin:
                    raise _FilteredRowError("submitted before origin")
                if options.states is not None and parsed.attributes.get("state") not in options.states:
                    raise _FilteredRowError(f"state {parsed.attributes.get('state')!r} not in states")
                if parsed.gpus_per_pod == 0 and self.filters_cpu_only and not options.include_cpu_only:
                    raise _FilteredRowError("CPU-only (include_cpu_only: true keeps it)")
                if parsed.submit < watermark:
                    raise _RowError(
                        "submit_time",
                        f"submit time {parsed.submit} is earlier than {watermark}, already emitted: the "
                        f"trace is out of order by more than reorder_window ({window} rows); sort it by "
                        "submit time or raise reorder_window",
                    )
            except _FilteredRowError as filtered:
                report.filter(filtered.reason)
                continue
            except _RowError as error:
                self._fail(source, line, error)
                continue
            if parsed.submit < latest:
                report.reordered += 1
            latest = max(latest, parsed.submit)
            heapq.heappush(heap, (parsed.submit, seq, parsed))
            seq += 1
            if len(heap) > window:
                parsed = heapq.heappop(heap)[2]
                watermark = parsed.submit
                if origin is None:
                    origin = parsed.submit
                arrival = self._arrival(parsed, origin)
                if arrival is None:
                    continue
                if arrival.submit_s >= horizon or report.emitted >= limit:
                    return
                report.emitted += 1
                for note in parsed.notes:
                    report.notes[note] += 1
                yield arrival
        while heap:
            parsed = heapq.heappop(heap)[2]
            if origin is None:
                origin = parsed.submit
            arrival = self._arrival(parsed, origin)
            if arrival is None:
                continue
            if arrival.submit_s >= horizon or report.emitted >= limit:
                return
            report.emitted += 1
            for note in parsed.notes:
                report.notes[note] += 1
            yield arrival
        if report.emitted == 0 and options.limit != 0:
            raise self._no_jobs()

    def _no_jobs(self) -> ValidationError:
        """A pass that read no job at all: why (nothing there, every row invalid or filtered), and
        which format the file looks like when it is not this one."""
        report = self.report
        source = str(self.path)
        if report.rows == 0 and not report.skipped:
            why = "it holds no data row"
        else:
            parts = []
            if report.skipped:
                first = ""
                if report.details:
                    row = report.details[0]
                    first = f"; first: line {row.line}: {row.field}: {row.reason}"
                parts.append(f"{report.skipped} invalid{first}")
            if report.filtered:
                reasons = ", ".join(f"{n} {r}" for r, n in report.filtered_reasons.most_common(3))
                parts.append(f"{report.filtered} filtered ({reasons})")
            rows = max(report.rows, report.skipped + report.filtered)
            why = f"of its {rows} row(s), {'; '.join(parts) or 'none became a job'}"
        guess = guess_format(self.path)
        if guess is not None and guess != self.format:
            hint = f"; it looks like the {guess} format (format: {guess}), not {self.format}"
        else:
            hint = ""
        return ValidationError(
            f"no job read from {source} as the {self.format} format: {why}{hint}",
            path="format",
            source=source,
        )

    def _check_bounds(self, parsed: _Parsed) -> None:
        """The simulator's limits (:mod:`.limits`) on what a row asks for, as a row error."""
        if parsed.runtime > MAX_SPAN_S:
            raise _RowError(
                self.runtime_field,
                f"a runtime of {parsed.runtime:g} s is more than the maximum, {span_text()}",
            )
        if parsed.gpus_per_pod > MAX_DEVICES:
            raise _RowError(
                self.gpus_field,
                f"{parsed.gpus_per_pod} GPUs in one pod is more than the maximum, {MAX_DEVICES}",
            )
        if parsed.pods > MAX_PODS:
            raise _RowError("pods", f"{parsed.pods} pods is more than the maximum, {MAX_PODS:,}")
        for name, value in (
            ("checkpoint_interval_s", parsed.checkpoint_s),
            ("max_duration_s", parsed.max_duration),
            ("estimate", parsed.estimate),
        ):
            if value is not None and value > MAX_SPAN_S:
                raise _RowError(name, f"{value:g} s is more than the maximum, {span_text()}")
        if parsed.cpu_milli > MAX_QUANTITY_MILLI or parsed.memory_bytes * 1000 > MAX_QUANTITY_MILLI:
            field_name = "cpu" if parsed.cpu_milli > MAX_QUANTITY_MILLI else "memory"
            raise _RowError(field_name, "more than the largest quantity (milli-value 2^63 - 1)")
        if parsed.accelerator is not None:  # any reader's: a bad set fails here, not mid-simulation
            _accelerator_cell(parsed.accelerator)

    def _arrival(self, parsed: _Parsed, origin: float) -> JobArrival | None:
        options = self.options
        try:
            route = self._route(parsed)
        except _RowError as error:
            self._fail(str(self.path), parsed.line, error)
            return None
        submit = parsed.submit - origin
        runtime = parsed.runtime
        if parsed.deadline is not None:
            deadline: float | None = parsed.deadline - origin
        elif options.deadline_slack is not None:
            deadline = submit + runtime * options.deadline_slack
        else:
            deadline = None
        if submit > MAX_SPAN_S or (deadline is not None and not -MAX_SPAN_S <= deadline <= _MAX_DEADLINE_S):
            name, value = (self.submit_field, submit) if submit > MAX_SPAN_S else ("deadline_s", deadline)
            self._fail(
                str(self.path),
                parsed.line,
                _RowError(
                    name,
                    f"{value:g} s after the first job is more than the maximum, {span_text()} "
                    "(a trace spans at most that long)",
                ),
            )
            return None
        tenant = parsed.tenant or route.tenant
        local_queue = parsed.local_queue or route.local_queue
        if self.local_queues is not None and (tenant, local_queue) not in self.local_queues:
            known = ", ".join(f"{ns}/{name}" for ns, name in sorted(self.local_queues)) or "none"
            self._fail(
                str(self.path),
                parsed.line,
                _RowError(
                    "local_queue",
                    f"LocalQueue {tenant}/{local_queue} (namespace = the job's tenant) is not in the "
                    f"queues, so the job would be rejected; LocalQueues: {known} (route rows with "
                    "mapping, or fix the tenant / local_queue)",
                ),
            )
            return None
        job_class = parsed.job_class or self.default_job_class
        wanted = parsed.priority
        for candidate in (route.priority, parsed.fallback_priority, options.priority):
            if wanted is None:
                wanted = candidate
        assert wanted is not None  # options.priority always is
        priority, value, priority_class = priority_parts(wanted)
        return JobArrival(
            submit,
            runtime,
            parsed.gpus_per_pod,
            parsed.pods,
            parsed.cpu_milli,
            parsed.memory_bytes,
            tenant,
            local_queue,
            priority,
            parsed.job_type or options.job_type.value,
            job_class,
            f"{job_class}-{parsed.trace_id}" if self.prefixes_ids else parsed.trace_id,
            parsed.checkpoint_s if parsed.checkpoint_s is not None else options.checkpoint_interval,
            deadline,
            parsed.accelerator or route.accelerator or options.accelerator,
            parsed.estimate,
            parsed.max_duration,
            None,
            True,
            True,
            value,
            priority_class,
            None,
            parsed.budget_limit,
            parsed.budget_action,
            gpu_milli=parsed.gpu_milli,
        )

    def _route(self, parsed: _Parsed) -> _Route:
        if parsed.tenant and parsed.local_queue:
            return _Route(parsed.tenant, parsed.local_queue, None, None)
        key = tuple(parsed.attributes.values())  # each format builds its attributes in one order
        route = self._routes.get(key)
        if route is None:
            route = self.options.mapping.route(parsed.attributes)
            if len(self._routes) < 100_000:  # distinct users/VCs are few; bound it anyway
                self._routes[key] = route
        return route


class _CsvReader(TraceReader):
    """CSV with a header row naming the columns."""

    required: ClassVar[tuple[str, ...]]
    optional: ClassVar[tuple[str, ...]] = ()
    allow_extra: ClassVar[bool] = True

    def _rows(self) -> Iterator[tuple[str, int, Any]]:
        source = str(self.path)
        with _open_text(self.path) as handle:
            reader = csv.DictReader(handle)
            with _csv_errors(source, reader):
                fieldnames = reader.fieldnames
            if not fieldnames:
                raise ValidationError(
                    f"{source} is empty: expected a header row naming the columns "
                    f"({', '.join(self.required)}, ...)",
                    path="header",
                    source=source,
                )
            header = [h.strip() for h in fieldnames]
            reader.fieldnames = header
            missing = [c for c in self.required if c not in header]
            if missing:
                guess = guess_format(self.path)
                hint = (
                    f"; it looks like the {guess} format (format: {guess})"
                    if guess not in (None, self.format)
                    else ""
                )
                raise ValidationError(
                    f"header lacks column(s) {missing}; expected {list(self.required)}{hint}",
                    path="header",
                    source=source,
                    line=1,
                )
            if not self.allow_extra:
                unknown = [c for c in header if c not in self.required and c not in self.optional]
                if unknown:
                    raise ValidationError(
                        f"unknown column(s) {unknown}; known: {[*self.required, *self.optional]}",
                        path="header",
                        source=source,
                        line=1,
                    )
            with _csv_errors(source, reader):
                for row in reader:
                    if None in row:  # more fields than the header names
                        self._fail(source, reader.line_num, _RowError("row", "more fields than the header"))
                        continue
                    yield source, reader.line_num, row


class BudcoreCsvTrace(_CsvReader):
    """The budcore CSV schema (see the module docstring and ``TRACES.md``)."""

    format = "budcore"
    attributes = ("user",)
    has_states = False
    prefixes_ids = False
    submit_field = "submit_s"
    runtime_field = "runtime_s"
    gpus_field = "gpus_per_pod"
    required = ("job_id", "submit_s", "runtime_s")
    optional = (
        "gpus_per_pod",
        "pods",
        "cpu",
        "memory",
        "tenant",
        "local_queue",
        "user",
        "priority",
        "job_type",
        "job_class",
        "checkpoint_interval_s",
        "deadline_s",
        "accelerator",
        "max_duration_s",
        "budget_limit",
        "budget_action",
    )
    allow_extra = False

    @classmethod
    def sniff(cls, head: list[str]) -> bool:
        return _header_has(head, cls.required)

    def _parse(self, line: int, row: Any) -> _Parsed:
        job_id = _text(row, "job_id")
        if not job_id:
            raise _RowError("job_id", "missing value")
        submit = _required(_text(row, "submit_s"), "submit_s")
        runtime = _required(_text(row, "runtime_s"), "runtime_s")
        if runtime < 0:
            raise _RowError("runtime_s", f"must not be negative, got {runtime}")
        gpus = _count(_text(row, "gpus_per_pod"), "gpus_per_pod", 0)
        pods = _count(_text(row, "pods"), "pods", 1)
        if pods < 1:
            raise _RowError("pods", "must be at least 1")
        cpu, memory = self._resources(gpus)
        if text := _text(row, "cpu"):
            cpu = self._quantity(text, "cpu", milli=True)
        if text := _text(row, "memory"):
            memory = self._quantity(text, "memory", milli=False)
        tenant = _text(row, "tenant") or None
        queue = _text(row, "local_queue") or None
        for name, value in (("tenant", tenant), ("local_queue", queue)):
            if value is not None and not is_valid_name(value):
                raise _RowError(name, f"invalid name {value!r}")
        text = _text(row, "priority")
        priority: JobPriority | int | str | None = None
        if text:
            try:
                priority = parse_priority(text)
            except ValidationError as exc:
                raise _RowError("priority", exc.message) from None
        job_type = _text(row, "job_type") or None
        if job_type is not None and job_type not in JobType.__members__.values():
            raise _RowError(
                "job_type", f"unknown job type {job_type!r}; expected {[t.value for t in JobType]}"
            )
        job_class = _text(row, "job_class") or None
        if job_class is not None and not is_valid_name(job_class):
            raise _RowError("job_class", f"invalid name {job_class!r}")
        checkpoint = _number(_text(row, "checkpoint_interval_s"), "checkpoint_interval_s", allow_empty=True)
        if checkpoint is not None and checkpoint <= 0:
            raise _RowError("checkpoint_interval_s", "must be greater than zero")
        deadline = _number(_text(row, "deadline_s"), "deadline_s", allow_empty=True)
        max_duration = _number(_text(row, "max_duration_s"), "max_duration_s", allow_empty=True)
        if max_duration is not None and max_duration <= 0:
            raise _RowError("max_duration_s", "must be greater than zero")
        budget_limit = _money(_text(row, "budget_limit"), "budget_limit")
        budget_action = _text(row, "budget_action") or None
        if budget_action is not None and budget_action not in BudgetAction.__members__.values():
            raise _RowError(
                "budget_action",
                f"unknown budget action {budget_action!r}; expected {[a.value for a in BudgetAction]}",
            )
        return _Parsed(
            trace_id=job_id,
            submit=submit,
            runtime=runtime,
            gpus_per_pod=gpus,
            pods=pods,
            cpu_milli=cpu,
            memory_bytes=memory,
            attributes={"user": _text(row, "user")},
            line=line,
            tenant=tenant,
            local_queue=queue,
            priority=priority,
            job_type=job_type,
            job_class=job_class,
            checkpoint_s=checkpoint,
            deadline=deadline,
            accelerator=_accelerator_cell(_text(row, "accelerator")),
            max_duration=max_duration,
            budget_limit=budget_limit,
            budget_action=budget_action,
        )

    @staticmethod
    def _quantity(text: str, name: str, *, milli: bool) -> int:
        try:
            return quantity_milli(text, name) if milli else quantity_bytes(text, name)
        except ValidationError as exc:
            raise _RowError(name, exc.message) from None


class HeliosTrace(_CsvReader):
    """SenseTime Helios ``cluster_log.csv``."""

    format = "helios"
    filters_cpu_only = True
    attributes = ("user", "vc")
    runtime_field = "duration"
    gpus_field = "gpu_num"
    required = ("job_id", "user", "vc", "gpu_num", "cpu_num", "node_num", "state", "submit_time")
    optional = ("start_time", "end_time", "duration", "queue")

    @classmethod
    def sniff(cls, head: list[str]) -> bool:
        return _header_has(head, cls.required)

    def _parse(self, line: int, row: Any) -> _Parsed:
        job_id = _text(row, "job_id")
        if not job_id:
            raise _RowError("job_id", "missing value")
        gpus = _count(_text(row, "gpu_num"), "gpu_num")
        cpus = _count(_text(row, "cpu_num"), "cpu_num", 0)
        nodes = _count(_text(row, "node_num"), "node_num", 0)
        submit = _timestamp(_text(row, "submit_time"), "submit_time")
        duration = _number(_text(row, "duration"), "duration", allow_empty=True)
        if duration is None:
            start, end = _text(row, "start_time"), _text(row, "end_time")
            if not start or not end:
                raise _RowError("duration", "no duration and no start_time/end_time to compute it")
            duration = _timestamp(end, "end_time") - _timestamp(start, "start_time")
        if duration < 0:
            raise _RowError("duration", f"must not be negative, got {duration}")
        if gpus:
            if nodes >= 1 and gpus % nodes == 0 and gpus // nodes <= self.options.gpus_per_node:
                pods, per_pod = nodes, gpus // nodes
            else:
                pods, per_pod = split_gang(gpus, self.options.gpus_per_node)
        else:
            pods, per_pod = max(nodes, 1), 0
        cpu, memory = self._resources(per_pod)
        if cpus:
            cpu = -(-cpus * 1000 // pods)
        return _Parsed(
            trace_id=job_id,
            submit=submit,
            runtime=duration,
            gpus_per_pod=per_pod,
            pods=pods,
            cpu_milli=cpu,
            memory_bytes=memory,
            attributes={"user": _text(row, "user"), "vc": _text(row, "vc"), "state": _text(row, "state")},
            line=line,
        )


_PAI_JOB_COLUMNS = ("job_name", "inst_id", "user", "status", "start_time", "end_time")
_PAI_TASK_COLUMNS = (
    "job_name",
    "task_name",
    "inst_num",
    "status",
    "start_time",
    "end_time",
    "plan_cpu",
    "plan_mem",
    "plan_gpu",
    "gpu_type",
)


@dataclass(frozen=True, slots=True)
class _PaiJobTasks:
    """A job's tasks reduced to what an arrival needs."""

    gpu_instances: int
    gpu_percent: float  # the largest per-instance plan_gpu over the job's tasks
    instances: int
    cpu_percent: float  # summed over instances
    memory_gib: float  # summed over instances
    gpu_type: str
    start: float
    end: float


class _PaiTaskIndex:
    """The task table reduced per job, in parallel typed arrays (about 200 bytes a job).

    The job and task tables are not sorted alike, so the join needs an index over one of them; the
    task table's totals per job are the smaller one. A dict of small objects measured about 300
    bytes a job plus the key (some 470 MB for the full trace); ``array`` columns leave little more
    than the dict entry and the key.
    """

    __slots__ = (
        "_cpu_percent",
        "_end",
        "_gpu_instances",
        "_gpu_percent",
        "_gpu_type",
        "_instances",
        "_memory_gib",
        "_rows",
        "_start",
        "_type_codes",
        "_type_names",
    )

    def __init__(self) -> None:
        self._rows: dict[str, int] = {}
        self._gpu_instances = array("q")
        self._instances = array("q")
        self._gpu_percent = array("d")
        self._cpu_percent = array("d")
        self._memory_gib = array("d")
        self._start = array("d")
        self._end = array("d")
        self._gpu_type = array("I")
        self._type_names: list[str] = [""]
        self._type_codes: dict[str, int] = {"": 0}

    def __len__(self) -> int:
        return len(self._rows)

    def add(
        self,
        job: str,
        *,
        instances: int,
        cpu: float,
        memory: float,
        gpu: float,
        gpu_type: str,
        start: float | None,
        end: float | None,
    ) -> None:
        """Fold one task row (``instances`` instances of one shape) into its job's totals."""
        row = self._rows.get(job)
        if row is None:
            row = self._rows[job] = len(self._rows)
            self._gpu_instances.append(0)
            self._instances.append(0)
            self._gpu_percent.append(0.0)
            self._cpu_percent.append(0.0)
            self._memory_gib.append(0.0)
            self._start.append(math.inf)
            self._end.append(-math.inf)
            self._gpu_type.append(0)
        self._instances[row] += instances
        self._cpu_percent[row] += cpu * instances
        self._memory_gib[row] += memory * instances
        if gpu > 0:
            self._gpu_instances[row] += instances
            self._gpu_percent[row] = max(self._gpu_percent[row], gpu)
            if not self._gpu_type[row] and gpu_type:
                code = self._type_codes.get(gpu_type)
                if code is None:
                    code = self._type_codes[gpu_type] = len(self._type_names)
                    self._type_names.append(gpu_type)
                self._gpu_type[row] = code
        if start is not None:
            self._start[row] = min(self._start[row], start)
        if end is not None:
            self._end[row] = max(self._end[row], end)

    def get(self, job: str) -> _PaiJobTasks | None:
        row = self._rows.get(job)
        if row is None:
            return None
        return _PaiJobTasks(
            self._gpu_instances[row],
            self._gpu_percent[row],
            self._instances[row],
            self._cpu_percent[row],
            self._memory_gib[row],
            self._type_names[self._gpu_type[row]],
            self._start[row],
            self._end[row],
        )


class PaiTrace(TraceReader):
    """Alibaba PAI GPU 2020: ``pai_job_table`` joined with ``pai_task_table`` on ``job_name``.

    One job becomes one pod set: its GPU instances are the pods, each with the largest per-instance
    GPU request rounded up to whole GPUs (Kubernetes extended resources are integers, so a 50%
    share asks for one GPU); CPU and memory are the job's totals spread over those pods. A job
    without GPU tasks is CPU-only (``include_cpu_only``). ``status`` is the job's status, which a
    ``states`` filter selects on (e.g. ``[Terminated]``).
    """

    format = "pai"
    filters_cpu_only = True
    attributes = ("user", "gpu_type")
    submit_field = "start_time"
    runtime_field = "end_time"
    gpus_field = "plan_gpu"

    def __init__(
        self,
        path: str | Path,
        task_path: str | Path,
        options: TraceOptions | None = None,
        **overrides: Any,
    ) -> None:
        super().__init__(path, options, **overrides)
        self.task_path = Path(task_path)
        if not is_file(self.task_path):
            raise ValidationError(f"task table {str(self.task_path)!r} does not exist", path="task_path")
        self._tasks = _PaiTaskIndex()

    @classmethod
    def sniff(cls, head: list[str]) -> bool:
        """A job or task table: its header, or headerless rows of 6 or 10 fields whose times
        (fields 5 and 6) are numbers or empty."""
        if _header_has(head, ("job_name",)) and (
            _header_has(head, _PAI_JOB_COLUMNS) or _header_has(head, _PAI_TASK_COLUMNS)
        ):
            return True
        rows = [_csv_row(line) for line in head if line.strip()]
        return bool(rows) and all(
            row is not None
            and len(row) in (len(_PAI_JOB_COLUMNS), len(_PAI_TASK_COLUMNS))
            and all(_is_number(v) or not v.strip() for v in row[4:6])
            for row in rows
        )

    def _headerless(self, path: Path, columns: tuple[str, ...]) -> Iterator[tuple[int, dict[str, str]]]:
        source = str(path)
        with _open_text(path) as handle:
            reader = csv.reader(handle)
            yield from self._headerless_rows(source, reader, columns)

    def _headerless_rows(
        self, source: str, reader: Any, columns: tuple[str, ...]
    ) -> Iterator[tuple[int, dict[str, str]]]:
        with _csv_errors(source, reader):
            for values in reader:
                if reader.line_num == 1 and values and values[0].strip() == columns[0]:
                    if [v.strip() for v in values] != list(columns):
                        raise ValidationError(
                            f"header {values} does not match the expected columns {list(columns)}",
                            path="header",
                            source=source,
                            line=1,
                        )
                    continue
                if not values:
                    continue
                if len(values) != len(columns):
                    self._fail(
                        source,
                        reader.line_num,
                        _RowError(
                            "row", f"expected {len(columns)} fields ({','.join(columns)}), got {len(values)}"
                        ),
                    )
                    continue
                yield reader.line_num, dict(zip(columns, values, strict=True))

    def _index_tasks(self) -> _PaiTaskIndex:
        source = str(self.task_path)
        index = _PaiTaskIndex()
        for line, row in self._headerless(self.task_path, _PAI_TASK_COLUMNS):
            try:
                job = _text(row, "job_name")
                if not job:
                    raise _RowError("job_name", "missing value")
                instances = _count(_text(row, "inst_num"), "inst_num")
                gpu = _number(_text(row, "plan_gpu"), "plan_gpu", allow_empty=True) or 0.0
                cpu = _number(_text(row, "plan_cpu"), "plan_cpu", allow_empty=True) or 0.0
                memory = _number(_text(row, "plan_mem"), "plan_mem", allow_empty=True) or 0.0
                for name, value in (("plan_gpu", gpu), ("plan_cpu", cpu), ("plan_mem", memory)):
                    if value < 0:
                        raise _RowError(name, f"must not be negative, got {value}")
                start = _number(_text(row, "start_time"), "start_time", allow_empty=True)
                end = _number(_text(row, "end_time"), "end_time", allow_empty=True)
            except _RowError as error:
                self._fail(source, line, error)
                continue
            index.add(
                job,
                instances=instances,
                cpu=cpu,
                memory=memory,
                gpu=gpu,
                gpu_type=_text(row, "gpu_type"),
                start=start,
                end=end,
            )
        return index

    def _rows(self) -> Iterator[tuple[str, int, Any]]:
        self._tasks = self._index_tasks()
        source = str(self.path)
        try:
            for line, row in self._headerless(self.path, _PAI_JOB_COLUMNS):
                yield source, line, row
        finally:
            self._tasks = _PaiTaskIndex()

    def _parse(self, line: int, row: Any) -> _Parsed:
        job = _text(row, "job_name")
        if not job:
            raise _RowError("job_name", "missing value")
        submit = _required(_text(row, "start_time"), "start_time")
        tasks = self._tasks.get(job)
        if tasks is None:
            raise _RowError("job_name", f"job {job!r} has no rows in the task table")
        if tasks.start == math.inf or tasks.end == -math.inf:
            raise _RowError(
                "end_time", "its tasks have no start/end time (still running at the end of the trace?)"
            )
        runtime = tasks.end - tasks.start
        if runtime < 0:
            raise _RowError("end_time", f"tasks end before they start ({tasks.start} > {tasks.end})")
        if tasks.gpu_instances:
            pods, per_pod = tasks.gpu_instances, math.ceil(tasks.gpu_percent / 100.0 - 1e-9)
        else:
            pods, per_pod = max(tasks.instances, 1), 0
        cpu, memory = self._resources(per_pod)
        if tasks.cpu_percent > 0:
            cpu = math.ceil(tasks.cpu_percent * 10.0 / pods)
        if tasks.memory_gib > 0:
            memory = math.ceil(tasks.memory_gib * 2**30 / pods)
        return _Parsed(
            trace_id=job,
            submit=submit,
            runtime=runtime,
            gpus_per_pod=per_pod,
            pods=pods,
            cpu_milli=cpu,
            memory_bytes=memory,
            attributes={
                "user": _text(row, "user"),
                "gpu_type": tasks.gpu_type,
                "state": _text(row, "status"),
            },
            line=line,
        )


_SWF_FIELDS = 18
_SWF_PARTIAL = {2, 3, 4}  # status codes of partial-execution lines of a checkpointed job


class SwfTrace(TraceReader):
    """The Standard Workload Format of the Parallel Workloads Archive (18 fields per line)."""

    format = "swf"
    attributes = ("user", "group", "application", "queue", "partition")
    runtime_field = "run_time"
    gpus_field = "allocated_processors"

    @classmethod
    def sniff(cls, head: list[str]) -> bool:
        """``;`` header comments, or lines of 18 whitespace-separated numbers."""
        lines = [line.strip() for line in head if line.strip()]
        if not lines:
            return False
        return lines[0].startswith(";") or all(
            len(fields := line.split()) == _SWF_FIELDS and all(_is_number(f) for f in fields)
            for line in lines
        )

    def _rows(self) -> Iterator[tuple[str, int, Any]]:
        source = str(self.path)
        with _open_text(self.path) as handle:
            for number, text in enumerate(handle, start=1):
                content = text.strip()
                if not content or content.startswith(";"):
                    continue
                yield source, number, content.split()

    def _parse(self, line: int, row: Any) -> _Parsed:
        values: list[str] = row
        if len(values) != _SWF_FIELDS:
            raise _RowError("row", f"expected {_SWF_FIELDS} whitespace-separated fields, got {len(values)}")
        job_id = values[0]
        submit = _required(values[1], "submit_time")
        runtime = _required(values[3], "run_time")
        status = int(_required(values[10], "status"))
        if status in _SWF_PARTIAL:
            raise _FilteredRowError("partial execution line (status 2-4) of a checkpointed job")
        if submit < 0:
            raise _RowError("submit_time", "unknown (-1)")
        if runtime < 0:
            raise _RowError("run_time", "unknown (-1)")
        processors = int(_required(values[4], "allocated_processors"))
        if processors <= 0:
            processors = int(_required(values[7], "requested_processors"))
        if processors <= 0:
            raise _RowError("allocated_processors", "neither allocated nor requested processors are known")
        memory_kb = _required(values[9], "requested_memory")
        if memory_kb < 0:
            memory_kb = _required(values[6], "used_memory")
        if self.options.swf_processors == "gpus":
            pods, per_pod = split_gang(processors, self.options.gpus_per_node)
            cpu, memory = self._resources(per_pod)
            gpus = per_pod
        else:
            pods, per_pod = split_gang(processors, self.options.cpus_per_node)
            cpu, memory = per_pod * 1000, self._memory_without_gpu
            gpus = 0
        if memory_kb > 0:
            memory = math.ceil(memory_kb * 1024 * per_pod)
        state = {0: "failed", 1: "completed", 5: "cancelled"}.get(status, str(status))
        requested_time = _required(values[8], "requested_time")  # declared runtime estimate; -1 unknown
        return _Parsed(
            trace_id=job_id,
            submit=submit,
            runtime=runtime,
            gpus_per_pod=gpus,
            pods=pods,
            cpu_milli=cpu,
            memory_bytes=memory,
            attributes={
                "user": values[11],
                "group": values[12],
                "application": values[13],
                "queue": values[14],
                "partition": values[15],
                "state": state,
            },
            line=line,
            estimate=requested_time if requested_time > 0 else None,
        )


def _is_number(value: str) -> bool:
    try:
        float(value)
    except ValueError:
        return False
    return True


def _csv_row(line: str) -> list[str] | None:
    """One line as CSV fields (None when it is not one CSV row)."""
    try:
        return next(csv.reader([line]))
    except (csv.Error, StopIteration):
        return None


def _header_has(head: list[str], columns: tuple[str, ...]) -> bool:
    """Whether the first line of ``head`` is a CSV header naming all of ``columns``."""
    names = _csv_row(head[0]) if head else None
    return names is not None and set(columns) <= {name.strip() for name in names}


def read_head(path: Path, lines: int = 5) -> list[str]:
    """The first ``lines`` lines of a text file (an unreadable file: ``[]``)."""
    head: list[str] = []
    try:
        with _open_text(path) as handle:
            for text in handle:
                head.append(text.rstrip("\r\n"))
                if len(head) >= lines:
                    break
    except ValidationError:
        return []
    return head


def guess_format(path: str | Path, registry: PluginRegistry | None = None) -> str | None:
    """The registered trace format ``path`` looks like (each reader's :meth:`TraceReader.sniff`
    on its first lines), or None. Plugins' readers take part like the built-in ones."""
    head = read_head(Path(path))
    if not head:
        return None
    registry = registry or default_registry()
    for name in trace_formats(registry):
        try:
            factory = registry.load("trace_reader", name)
        except PluginError:
            continue
        if not (isinstance(factory, type) and issubclass(factory, TraceReader)):
            continue
        try:
            looks = factory.sniff(head)
        except Exception:  # a guess for a message must never hide the real error
            looks = False
        if looks:
            return name
    return None


def open_trace(
    spec: TraceSpec, base_dir: str | Path | None = None, registry: PluginRegistry | None = None
) -> TraceReader:
    """The reader for ``spec``; relative paths resolve against ``base_dir`` (the scenario's folder).

    The reader is the trace reader registered as ``spec.format`` (the built-in formats are the
    simulator plugin's), built through the plugin ``registry`` (default: the process-wide one).
    """
    root = Path(base_dir) if base_dir is not None else Path.cwd()
    options = TraceOptions.model_validate(
        {k: v for k, v in spec.model_dump().items() if k in TraceOptions.model_fields}
    )

    def resolve(value: str) -> Path:
        path = Path(value)
        return path if path.is_absolute() else root / path

    registry = registry or default_registry()
    trace_reader_factory(spec.format, registry)  # an unknown format: the ValidationError listing them
    arguments: dict[str, Any] = {"path": resolve(spec.path), "options": options}
    if spec.task_path is not None:
        arguments["task_path"] = resolve(spec.task_path)
    reader = registry.create("trace_reader", spec.format, **arguments)
    if not isinstance(reader, TraceReader):
        origin = registry.resolve("trace_reader", spec.format).origin
        raise PluginError(
            f"trace_reader {spec.format!r} ({origin}) returned {type(reader).__name__}, which is not a "
            "budcore_simulator.workload.traces.TraceReader"
        )
    return reader
