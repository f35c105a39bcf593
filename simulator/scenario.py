"""Scenario files: what to simulate, as one validated YAML document.

::

    name: my-fleet
    seed: 7
    horizon: 1d                      # seconds or a duration string (30s, 15m, 2h, 1d)
    fleet:
      pools:
        - {name: h100, product: NVIDIA-H100-80GB-HBM3, gpus_per_node: 8, nodes: 4,
           price_per_gpu_hour: "5.00"}
      nodes_file: nodes.yaml         # and/or a `kubectl get nodes -o yaml` dump (see FleetSpec)
      prices: {NVIDIA-L4: "0.80"}    # per GPU-hour by flavor, product or slug; else price_book
    queues:
      path: queues.yaml              # Kueue documents (relative to this file), or
      documents: [...]               # the same documents inline
    policy: {fair_sharing: true, deadline_boost: true}   # deadline-aware ordering (DeadlineBoostSpec)
    workload:
      generators: {classes: [...]}   # see budcore_simulator.workload.generators
      traces: [{format: helios, path: cluster_log.csv}]
      estimate_error: {sigma: 0.5}   # declared runtimes = true × lognormal (see EstimateErrorSpec)
      pipelines:                     # runs of pipeline DAGs (see PipelineEntrySpec)
        - {file: train.yaml, arrivals: {every: 1h, count: 10}, outputs: {notify-api: {ok: true}}}
    failures: {mtbf: 30d, repair: 2h, controller_restart: {every: 12h, downtime: 2m}}
    eta: {measure: true, default_runtime: 1h, horizon: 7d, every: 1}   # ETA accuracy (EtaSpec)
    runaway_factor: 3                # alert when a job runs past 3× its declared runtime (null: never)
    reservations:                    # capacity bookings (ReservationSpec), booked before the run
      - {name: eval-slot, owner: research, cluster_queue: shared, flavor: h100,
         resource: nvidia.com/gpu, quantity: 8, start: 10h, end: 14h}
    money:                           # guard, budgets and their actions, chargeback (MoneySpec)
      guard: {mode: reject, quota_threshold: 0.9, comparator: ">="}
      budgets: [{tenant: research, amount: "500", period: week, action: pause}]
      tiers: {research-cq: reserved}
      review_every: 5m

Every node of a pool carries the labels ``budcore.io/pool: <name>`` and, when ``product`` is
given, ``nvidia.com/gpu.product: <product>``, plus the pool's own ``labels``; a ResourceFlavor
selects a pool through any of them. A pool's ``taints`` (``[{key: dedicated, value: ml, effect:
NoSchedule}]``, Kubernetes ``spec.taints``) keep pods off its nodes unless they tolerate them; a
ResourceFlavor's ``tolerations`` are added to the pods admitted to it, as Kueue adds them. The
JSON schema of this format is :func:`scenario_json_schema` (``budcore simulate --schema`` prints
it).

Without ``fleet`` the simulation is *quota-only*: there are no nodes, ClusterQueue quotas alone
decide, and a workload runs from the instant it is admitted (Kueue's own performance harness
runs no kube-scheduler either). Usage is then reported as quota held (``report.json``'s
``utilisation.cluster_queue_usage``); node utilisation is undefined.

Any list of the file (``queues.documents``, ``workload.generators.classes``, ...) may hold
``replicate:`` blocks, one template for N cohorts × M ClusterQueues and their workload classes::

    queues:
      documents:
        - {apiVersion: kueue.x-k8s.io/v1beta2, kind: ResourceFlavor, metadata: {name: rf}}
        - replicate: {cohort: 5, cq: 6}      # a count (0..n-1) or a list of values per variable
          templates:                         # or `template:` for one item
            - {kind: ClusterQueue, metadata: {name: "cq-{{ cq }}-cohort-{{ cohort }}"}, ...}
            - {kind: LocalQueue, metadata: {name: lq, namespace: "ns-{{ cohort }}-{{ cq }}"}, ...}

Strings are Jinja2 templates over the variables (see :mod:`budcore_simulator.replicate`); errors
point at the template's line. Generator classes take a ``label`` (several classes, one report
group: ``by_label``) and integer priorities or WorkloadPriorityClass names. ``policy.latency``
turns on the cycle-latency model (:class:`LatencySpec`, off by default). The built-in scenario
``kueue-perf-baseline`` uses all of this.
"""

from __future__ import annotations

import heapq
import math
import random
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
    model_validator,
)
from pydantic import ValidationError as PydanticValidationError

from budcore.config.kueue import load_queue_config, queue_config_from_documents
from budcore.config.yamlsource import YamlDocument, load_yaml_documents, load_yaml_text
from budcore.cost.prices import PriceBook, load_price_book
from budcore.domain.cluster import Node, Taint
from budcore.domain.durations import DURATION_JSON_SCHEMA, parse_duration
from budcore.domain.errors import BudcoreError, ValidationError, ValidationErrors
from budcore.domain.ids import JobId, TenantId, check_name
from budcore.domain.lifecycle import BackoffPolicy
from budcore.domain.quantity import parse_quantity
from budcore.domain.reservation import Reservation, ReservationConflictError
from budcore.domain.resources import NVIDIA_GPU, ResourceVector, check_resource_name
from budcore.domain.timeutil import ensure_utc
from budcore.domain.validation import LineLookup, validate_model
from budcore.hardware.labels import Fleet, ParsedNode, parse_nodes_yaml
from budcore.scheduling import AdmissionPolicy, QueueConfig
from budcore.scheduling.assignment import AcceleratorMatcher, flavor_types_from_nodes
from budcore.scheduling.deadline import DeadlineBoost
from budcore.scheduling.forecast import ForecastOptions
from budcore.scheduling.ordering import (
    DEFAULT_ESTIMATE_S,
    OrderingPolicy,
    check_cohorts,
    parse_ordering,
    unknown_queues,
)
from budcore.scheduling.preemption import PreemptionMode, PreemptionPolicy
from budcore.scheduling.preemption.aging import AgingPolicy
from budcore.scheduling.preemption.guards import PreemptionBudget
from budcore.scheduling.quota import QuotaTree
from budcore.scheduling.reservations import ReservationBook

from .budget import COST_MODE_GRACE_S, COST_MODE_PREEMPTIONS_PER_HOUR, UnlimitedPreemptionBudget
from .engine import ControllerRestartModel, EngineOptions, EtaMeasurement, FailureModel
from .latency import LatencyModel
from .money import MoneyOptions, MoneySpec, flavor_price_book
from .replicate import expand_document
from .throughput import ThroughputSpec, flavor_accelerators
from .workload.generators import GeneratorSpec, generate_arrivals
from .workload.limits import (
    EARLIEST_START,
    LATEST_START,
    MAX_BIAS,
    MAX_DEVICES,
    MAX_FLAVOR_WEIGHT,
    MAX_JOBS,
    MAX_NODES,
    MAX_PRIORITY_STEP,
    MAX_QUANTITY_MILLI,
    MAX_REPEATS,
    MAX_RUNAWAY_FACTOR,
    MAX_RUNTIME_SCALE,
    MAX_SAMPLES,
    MAX_SEED,
    MAX_SIGMA,
    MAX_SPAN_S,
    span_text,
)
from .workload.model import JobArrival, priority_parts
from .workload.openb import read_openb_nodes
from .workload.traces import TraceReader, TraceSpec, open_trace
from .workload.units import Duration, FilePath, check_span, exists, is_file, quantity_milli, quantity_text

if TYPE_CHECKING:
    from budcore.pipeline import PipelineGraph, PipelineSpec

    from .pipelines import PipelineWorkload

_FROZEN = ConfigDict(frozen=True, extra="forbid")
POOL_LABEL = "budcore.io/pool"
DEFAULT_PRICE_BOOK = "default"
PRODUCT_LABEL = "nvidia.com/gpu.product"
ACCELERATOR_LABEL = "budcore.io/accelerator"


class PoolSpec(BaseModel):
    """A node pool: ``nodes`` identical nodes with ``gpus_per_node`` accelerators each."""

    model_config = _FROZEN

    name: str
    product: str | None = None
    accelerator: str | None = None  # catalog slug, for reports and matching
    gpus_per_node: int = Field(ge=0, le=MAX_DEVICES)
    nodes: int = Field(ge=0, le=MAX_NODES)
    cpu: str | int | float = "96"
    memory: str | int = "1Ti"
    gpu_resource: str = NVIDIA_GPU
    labels: dict[str, str] = Field(default_factory=dict)
    # Kubernetes spec.taints of every node of the pool: pods that do not tolerate a NoSchedule or
    # NoExecute one stay off these nodes (a ResourceFlavor's tolerations are added to its pods).
    taints: tuple[Taint, ...] = ()
    price_per_gpu_hour: Decimal | None = Field(default=None, ge=0, allow_inf_nan=False)
    tier: str = "on-demand"

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return check_name(value, "name")

    @field_validator("cpu", "memory")
    @classmethod
    def _quantity(cls, value: str | int | float) -> str | int | float:
        quantity_milli(value, "")  # non-negative, and at most Kubernetes' int64 milli-value
        return value

    @field_validator("gpu_resource")
    @classmethod
    def _resource(cls, value: str) -> str:
        return check_resource_name(value, "gpu_resource")

    def node_labels(self) -> dict[str, str]:
        labels = {POOL_LABEL: self.name}
        if self.product:
            labels[PRODUCT_LABEL] = self.product
        if self.accelerator:
            labels[ACCELERATOR_LABEL] = self.accelerator
        labels.update(self.labels)
        return labels

    def build_nodes(self) -> list[Node]:
        allocatable = ResourceVector.of(
            {self.gpu_resource: self.gpus_per_node, "cpu": self.cpu, "memory": self.memory},
            field=f"fleet.pools[{self.name}]",
        )
        labels = self.node_labels()
        return [
            Node(name=f"{self.name}-{i:04d}", labels=labels, allocatable=allocatable, taints=self.taints)
            for i in range(self.nodes)
        ]


class NodeListSpec(BaseModel):
    """A trace's node list as pools: ``{format: openb, path: openb_node_list_gpu_node.csv}``.

    The openb node list (Alibaba's 2023 GPU trace) becomes a pool per GPU model and node shape,
    named after the model (``g2``, ``a10``; ``t4-2gpu-104cpu-512gi`` when a model has several
    shapes), each node labelled ``nvidia.com/gpu.product: <model>`` and, for a model the catalog
    knows, ``budcore.io/accelerator: <slug>`` (:func:`~.workload.openb.read_openb_nodes`).
    ``path`` is relative to the scenario. The pools join ``pools`` (``--vary pool.g2.nodes=...``
    works on them); a model's price comes from ``prices[<model>]``, ``prices[<slug>]`` or the
    price book by slug.
    """

    model_config = _FROZEN

    format: Literal["openb"] = "openb"
    path: FilePath


class FleetSpec(BaseModel):
    """The nodes: synthetic ``pools``, a real ``kubectl get nodes -o yaml`` dump, a trace's node
    list (``node_list``, :class:`NodeListSpec`), or several.

    Nodes from ``nodes_file`` (relative to the scenario) keep their real labels, taints
    (``spec.taints``) and allocatable resources (parsed by :mod:`budcore.hardware.labels`), so
    ResourceFlavors written for the production cluster (``nvidia.com/gpu.product:
    NVIDIA-H100-80GB-HBM3``, with the tolerations its tainted nodes need) select them unchanged.
    Cordoned nodes (``spec.unschedulable``) are kept but receive no pods.

    Prices of dump nodes (a dump carries none), first match wins per flavor:

    1. ``prices[<flavor name>]``;
    2. ``prices[<product label>]`` or ``prices[<catalog slug>]`` of the flavor's first node (by name);
    3. the ``price_book`` (``default``: budcore's packaged illustrative book; else a path relative
       to the scenario; ``null``: none) in ``price_tier``, by the node's catalog accelerator.

    A flavor with no price costs nothing in the report (its GPU-hours are still counted).
    """

    model_config = _FROZEN

    pools: tuple[PoolSpec, ...] = ()
    nodes_file: FilePath | None = None
    node_list: NodeListSpec | None = None
    prices: dict[str, Decimal] = Field(default_factory=dict)
    price_book: FilePath | None = DEFAULT_PRICE_BOOK
    price_tier: str = "on-demand"

    @field_validator("prices")
    @classmethod
    def _non_negative(cls, value: dict[str, Decimal]) -> dict[str, Decimal]:
        for key, price in value.items():
            if not price.is_finite() or price < 0:
                raise ValueError(f"price for {key!r} must be a non-negative number, got {price}")
        return value

    @model_validator(mode="after")
    def _unique(self) -> FleetSpec:
        if not self.pools and self.nodes_file is None and self.node_list is None:
            raise ValidationError("give 'pools', 'nodes_file' or both, or a 'node_list'", path="pools")
        names = [p.name for p in self.pools]
        for i, name in enumerate(names):
            if name in names[:i]:
                raise ValidationError(f"duplicate pool name {name!r}", path=f"pools[{i}].name")
        total = 0
        for i, pool in enumerate(self.pools):
            total += pool.nodes
            if total > MAX_NODES:
                raise ValidationError(
                    f"the pools hold {sum(p.nodes for p in self.pools):,} nodes, more than the maximum of "
                    f"{MAX_NODES:,}",
                    path=f"pools[{i}].nodes",
                )
        return self


# The fleet of a quota-only scenario (no ``fleet``): no nodes, no prices (built without the checks
# a scenario's own fleet goes through, which require some nodes).
NO_FLEET = FleetSpec.model_construct(
    pools=(), nodes_file=None, node_list=None, prices={}, price_book=None, price_tier="on-demand"
)


class QueuesSpec(BaseModel):
    """Kueue documents: a file (or directory) relative to the scenario, or inline."""

    model_config = _FROZEN

    path: FilePath | None = None
    documents: tuple[dict[str, Any], ...] | None = None

    @model_validator(mode="after")
    def _one_source(self) -> QueuesSpec:
        if (self.path is None) == (self.documents is None):
            raise ValidationError("give exactly one of 'path' or 'documents'", path="path")
        return self


class AgingSpec(BaseModel):
    """Starvation guard: ``step`` priority points per ``interval`` waited after ``start_after``."""

    model_config = _FROZEN

    step: int = Field(default=1, ge=0, le=MAX_PRIORITY_STEP)
    interval: Duration = Field(default=900.0, gt=0)
    start_after: Duration = Field(default=0.0, ge=0)
    max_boost: int | None = Field(default=50, ge=0, le=MAX_PRIORITY_STEP)

    def policy(self) -> AgingPolicy:
        return AgingPolicy(
            step=self.step,
            interval=timedelta(seconds=self.interval),
            start_after=timedelta(seconds=self.start_after),
            max_boost=self.max_boost,
        )


class DeadlineBoostSpec(BaseModel):
    """Deadline-aware ordering: raise a waiting job's queue priority as its deadline slack runs out.

    A job's *time budget* is ``deadline − (submission + declared runtime)``. Once ``thresholds[i]``
    of it has elapsed its priority is raised by ``boosts[i]`` (never to critical); with ``edf`` a
    job with a deadline is also ordered within its priority level by the latest instant it can
    start. Applied on the sample clock (``sample_interval``), like aging. ``policy.deadline_boost:
    true`` takes these defaults. See :class:`budcore.scheduling.deadline.DeadlineBoost`.
    """

    model_config = _FROZEN

    thresholds: tuple[float, ...] = (0.5, 0.75, 0.9)
    boosts: tuple[int, ...] = (10, 50, 100)
    edf: bool = True

    @model_validator(mode="after")
    def _valid(self) -> DeadlineBoostSpec:
        self.boost()
        return self

    def boost(self) -> DeadlineBoost:
        """The core's :class:`DeadlineBoost`; inconsistent fields are an error naming the field."""
        try:
            return DeadlineBoost(thresholds=self.thresholds, boosts=self.boosts, edf=self.edf)
        except ValidationError as exc:
            path = exc.path.removeprefix("deadline_boost").lstrip(".")
            raise ValidationError(exc.message, path=path) from None


def _or_string(schema: dict[str, Any]) -> None:
    """JSON schema: the field also takes a name (its validator maps it)."""
    schema["anyOf"] = [*schema.get("anyOf", []), {"type": "string"}]


def _or_boolean(schema: dict[str, Any]) -> None:
    """JSON schema: the field also takes ``true`` / ``false`` (its validator maps them)."""
    schema["anyOf"] = [*schema.get("anyOf", []), {"type": "boolean"}]


class LatencySpec(BaseModel):
    """The cycle-latency model (:mod:`budcore_simulator.latency`): what a real Kueue controller
    adds to time-to-admission. Off unless a scenario's policy has ``latency`` (``true``: these
    defaults, which are calibrated against Kueue's own performance harness, see the
    ``kueue-perf-baseline`` scenario's README).

    ``heads_per_cluster_queue``: workloads each ClusterQueue offers per cycle (Kueue: 1);
    ``cycle_period``: the least time between two cycles; ``head_cost``: time a cycle takes per head
    it processed (the next cycle starts no earlier than ``heads × head_cost`` after it: the API
    writes of its decisions at the controller's client QPS); ``requeue_delay``: how long after quota
    is released in a cohort its inadmissible workloads are back in their queues; ``release_delay``:
    how long after a workload finishes (or a preemption victim stops) its quota is released.
    """

    model_config = _FROZEN

    heads_per_cluster_queue: int = Field(default=1, ge=1)
    cycle_period: Duration = Field(default=0.0, ge=0)
    head_cost: Duration = Field(default=0.014, ge=0)
    requeue_delay: Duration = Field(default=0.0, ge=0)
    release_delay: Duration = Field(default=1.1, ge=0)

    def model(self) -> LatencyModel:
        return LatencyModel(
            heads_per_cluster_queue=self.heads_per_cluster_queue,
            cycle_period_s=self.cycle_period,
            head_cost_s=self.head_cost,
            requeue_delay_s=self.requeue_delay,
            release_delay_s=self.release_delay,
        )


class OrderingSpec(BaseModel):
    """budcore's research orderings within a priority level (opt-in; Kueue's is ``fifo``).

    ``default`` applies to every ClusterQueue not named in ``cluster_queues``; each is one of
    ``fifo``, ``sjf`` (declared runtime), ``srtf`` (declared runtime minus work done before a
    requeue), ``las`` (least attained GPU-seconds, Tiresias) and ``edf`` (earliest deadline). A job
    that declares no runtime counts as ``default_estimate`` under ``sjf`` and ``srtf``;
    ``las_thresholds`` (GPU-seconds, increasing) discretize ``las`` into Tiresias's levels, FIFO
    within a level (empty: continuous); ``las_preemption: true`` (needs thresholds) lets a waiting
    job preempt a running one of its priority and ClusterQueue that reached a higher level, as
    Tiresias does, under the ClusterQueue's ``withinClusterQueue`` (Never: nothing is preempted).
    ``policy.ordering: sjf`` is short for ``{default: sjf}``.
    The ClusterQueues of one cohort tree must share an ordering. See
    :mod:`budcore.scheduling.ordering`.
    """

    model_config = _FROZEN

    default: str = "fifo"
    cluster_queues: dict[str, str] = Field(default_factory=dict)
    default_estimate: Duration = Field(default=DEFAULT_ESTIMATE_S, gt=0)
    las_thresholds: tuple[Duration, ...] = ()
    las_preemption: bool = False

    @model_validator(mode="after")
    def _known(self) -> OrderingSpec:
        self.policy()
        return self

    def policy(self) -> OrderingPolicy:
        """The core's :class:`OrderingPolicy`; an unknown name is an error naming its field."""
        try:
            return OrderingPolicy(
                default=parse_ordering(self.default, "default"),
                cluster_queues={
                    name: parse_ordering(value, f"cluster_queues.{name}")
                    for name, value in self.cluster_queues.items()
                },
                default_estimate_s=self.default_estimate,
                las_thresholds_gpu_s=tuple(self.las_thresholds),
                las_preemption=self.las_preemption,
            )
        except ValidationError as exc:
            raise ValidationError(exc.message, path=exc.path.removeprefix("ordering.")) from None


def _or_unlimited(schema: dict[str, Any]) -> None:
    """JSON schema: the field also takes the string ``unlimited`` (its validator maps it to null)."""
    schema["anyOf"] = [*schema.get("anyOf", []), {"const": "unlimited"}]


class PolicySpec(BaseModel):
    model_config = _FROZEN

    """Admission and preemption knobs (who may preempt whom is each ClusterQueue's ``preemption``).

    ``preemption_mode``: ``kueue`` reproduces Kueue's victim choice; ``cost`` picks, among the
    victim sets Kueue's policies allow, the cheapest to evict (work lost since the last checkpoint,
    restart overhead, near-completion penalty). budcore's two guards are ``preemption_grace``, how
    long a victim keeps running before its pods stop, and ``preemptions_per_hour``, a cap on
    preemptions in a sliding hour (``unlimited`` or ``null``: no cap). Kueue has neither, so
    ``preemption_mode: kueue`` means Kueue's behaviour exactly: no grace period and no budget
    unless the scenario sets them; ``cost`` mode defaults to the guards (30 s, 10 per hour).
    ``deadline_boost`` (a :class:`DeadlineBoostSpec`, or ``true`` for its defaults) turns on
    deadline-aware ordering; ``budcore compare -p deadline-aware`` is the same as ``true``.
    ``latency`` turns on the cycle-latency model (:class:`LatencySpec`; off by default).
    ``ordering`` (an :class:`OrderingSpec`, or an ordering's name for every ClusterQueue) is
    budcore's research ordering within a priority level; ``budcore compare -p sjf`` and the like
    set it. ``throughput`` (:class:`~budcore_simulator.throughput.ThroughputSpec`) is budcore's
    Gavel-style heterogeneity: runtimes scaled by each accelerator's throughput, and optionally
    the flavors tried fastest (or best per price) first; ``compare -p gavel`` sets ``prefer``.
    """

    fair_sharing: bool = False
    flavor_weights: dict[str, Annotated[float, Field(ge=0, le=MAX_FLAVOR_WEIGHT, allow_inf_nan=False)]] = (
        Field(default_factory=dict)
    )
    cycle_interval: Duration = 0.0
    namespace_labels: dict[str, dict[str, str]] = Field(default_factory=dict)
    preemption_mode: Literal["kueue", "cost"] = "kueue"
    preemption_grace: Duration | None = Field(
        default=None,
        ge=0,
        description="How long a preemption victim keeps running (default: 0 in kueue mode, 30s in "
        "cost mode).",
    )
    preemptions_per_hour: int | None = Field(
        default=None,
        ge=0,
        le=MAX_REPEATS,
        description="Preemptions allowed in a sliding hour; unlimited or null: no cap (default: "
        "unlimited in kueue mode, 10 in cost mode).",
        json_schema_extra=_or_unlimited,
    )
    aging: AgingSpec | None = None  # applied on the sample clock (sample_interval)
    latency: LatencySpec | None = Field(
        default=None,
        description="The cycle-latency model (heads per ClusterQueue per cycle, cycle period, "
        "requeue and release delays): true for its defaults, false or null for off (the default).",
        json_schema_extra=_or_boolean,
    )
    deadline_boost: DeadlineBoostSpec | None = Field(
        default=None,
        description="Deadline-aware ordering (on the sample clock): settings, true for the defaults, "
        "false or null for off.",
        json_schema_extra=_or_boolean,
    )

    ordering: OrderingSpec | None = Field(
        default=None,
        description="Research ordering within a priority level: fifo (Kueue's), sjf, srtf, las or edf, "
        "or {default, cluster_queues, default_estimate, las_thresholds}.",
        json_schema_extra=_or_string,
    )

    throughput: ThroughputSpec | None = Field(
        default=None,
        description="Gavel-style heterogeneity (budcore's own): relative throughput per accelerator "
        "type (accelerators, and per job class: classes), which shortens runtimes on faster flavors, "
        "and prefer: throughput | throughput_per_price to try the best flavors first.",
    )

    @field_validator("ordering", mode="before")
    @classmethod
    def _ordering_name(cls, value: object) -> object:
        """An ordering's name: the same for every ClusterQueue."""
        return {"default": value} if isinstance(value, str) else value

    @field_validator("preemptions_per_hour", mode="before")
    @classmethod
    def _unlimited(cls, value: object) -> object:
        """``unlimited``: no cap (as ``null``)."""
        return None if isinstance(value, str) and value.strip().lower() == "unlimited" else value

    @field_validator("deadline_boost", "latency", mode="before")
    @classmethod
    def _boost_switch(cls, value: object) -> object:
        """``true``: the defaults; ``false``: off (as if absent)."""
        if value is True:
            return {}
        if value is False:
            return None
        return value

    def admission(self) -> AdmissionPolicy:
        return AdmissionPolicy(
            fair_sharing=self.fair_sharing,
            flavor_weights=self._weights(),
            namespace_labels=self.namespace_labels,
            ordering=None if self.ordering is None else self.ordering.policy(),
        )

    def _weights(self) -> dict[str, int]:
        return {k: round(v * 1000) for k, v in self.flavor_weights.items()}

    @property
    def grace_s(self) -> float:
        """The victims' grace period: the scenario's, else 0 (kueue mode) or 30 s (cost mode)."""
        if self.preemption_grace is not None:
            return self.preemption_grace
        return 0.0 if self.preemption_mode == "kueue" else COST_MODE_GRACE_S

    @property
    def preemption_limit(self) -> int | None:
        """Preemptions allowed per sliding hour (None: no cap). Unset: none in kueue mode, 10 in
        cost mode; ``unlimited`` or an explicit ``null``: none."""
        value = self.preemptions_per_hour
        if value is None and "preemptions_per_hour" not in self.model_fields_set:
            return None if self.preemption_mode == "kueue" else COST_MODE_PREEMPTIONS_PER_HOUR
        return value

    def preemption(self) -> PreemptionPolicy:
        return PreemptionPolicy(
            mode=PreemptionMode(self.preemption_mode),
            fair_sharing=self.fair_sharing,
            flavor_weights=self._weights(),
            grace_period=timedelta(seconds=self.grace_s),
        )

    def budget(self) -> PreemptionBudget:
        limit = self.preemption_limit
        return UnlimitedPreemptionBudget() if limit is None else PreemptionBudget(limit=limit)

    def deadline_boost_policy(self) -> DeadlineBoost | None:
        return None if self.deadline_boost is None else self.deadline_boost.boost()


class EtaSpec(BaseModel):
    """ETA accuracy: the ETA budcore gives a job at submission against its actual start.

    With ``measure``, the engine asks the scheduler for the ETA of every ``every``-th job as it is
    submitted (the real core run forward from that instant:
    :func:`budcore.scheduling.forecast.eta_for`), assuming ``default_runtime`` for jobs that
    declare none and looking ``horizon`` ahead (a job not admitted within it has no estimate).
    ``report.json``'s ``eta`` block gives the absolute error of the estimated start per job class
    (``eta.png`` plots estimated against actual starts). Each estimate runs the scheduler forward
    over the queued jobs, so measuring every job of a busy scenario costs a multiple of its run.
    """

    model_config = _FROZEN

    measure: bool = True
    default_runtime: Duration = Field(default=3600.0, gt=0)
    horizon: Duration = Field(default=7 * 86400.0, gt=0)
    every: int = Field(default=1, ge=1)

    def measurement(self) -> EtaMeasurement | None:
        if not self.measure:
            return None
        options = ForecastOptions(
            default_runtime=timedelta(seconds=self.default_runtime), horizon=timedelta(seconds=self.horizon)
        )
        return EtaMeasurement(forecast=options, every=self.every)


class ControllerRestartSpec(BaseModel):
    """``controller_restart: {every: 12h, downtime: 2m}``: the scheduling controller restarts.

    ``every`` is the period (``random: true``: the mean of exponential intervals, MTBF-style);
    ``downtime`` how long each restart keeps admission stopped. See
    :class:`budcore_simulator.engine.ControllerRestartModel` for what happens meanwhile.
    """

    model_config = _FROZEN

    every: Duration = Field(gt=0)
    downtime: Duration = Field(default=120.0, ge=0)
    random: bool = False

    @model_validator(mode="after")
    def _fits(self) -> ControllerRestartSpec:
        if self.downtime >= self.every:
            raise ValidationError(
                f"downtime ({self.downtime:g}s) must be shorter than the restart period ({self.every:g}s)",
                path="downtime",
            )
        return self


class FailureSpec(BaseModel):
    """Node failures (``mtbf`` per node, ``repair`` time) and/or controller restarts."""

    model_config = _FROZEN

    mtbf: Duration | None = Field(default=None, gt=0)
    repair: Duration = 3600.0
    heartbeat_interval: Duration = 5.0
    heartbeat_misses: int = Field(default=2, ge=1, le=MAX_REPEATS)
    max_retries: int = Field(default=3, ge=0, le=MAX_REPEATS)
    backoff_base: Duration = 10.0
    backoff_cap: Duration = 600.0
    controller_restart: ControllerRestartSpec | None = None

    @model_validator(mode="after")
    def _something(self) -> FailureSpec:
        if self.mtbf is None and self.controller_restart is None:
            raise ValidationError("give 'mtbf', 'controller_restart' or both", path="mtbf")
        return self


class EstimateErrorSpec(BaseModel):
    """How far declared runtimes are from true ones: ``estimate = runtime × bias × e^N(0, σ²)``.

    ``sigma: 0.5`` puts half the estimates within about ×0.7..×1.4 of the truth; ``bias: 1.5``
    models users who pad their estimates by half. Draws come from their own random stream (seeded
    by the scenario seed), so adding estimate error never changes the workload itself.
    """

    model_config = _FROZEN

    kind: Literal["lognormal"] = "lognormal"
    sigma: float = Field(ge=0, le=MAX_SIGMA, allow_inf_nan=False)
    bias: float = Field(default=1.0, gt=0, le=MAX_BIAS, allow_inf_nan=False)

    def apply(self, arrivals: Iterable[JobArrival], seed: int) -> Iterator[JobArrival]:
        """The arrivals with their estimates; an estimate is at most the longest duration (10 years)."""
        rng = random.Random(f"{seed}/estimate-error")
        for arrival in arrivals:
            factor = self.bias * math.exp(rng.gauss(0.0, self.sigma))
            yield arrival._replace(estimated_runtime_s=min(arrival.runtime_s * factor, MAX_SPAN_S))


class PipelineArrivalsSpec(BaseModel):
    """When a pipeline's runs start: at the listed instants (``at: [0, 1h, 90m]``), or ``count``
    runs ``every`` so long from ``start`` (without ``count``: until the scenario's horizon).
    Instants are offsets from the scenario's start."""

    model_config = _FROZEN

    at: tuple[Annotated[Duration, Field(ge=0)], ...] | None = None
    every: Duration | None = Field(default=None, gt=0)
    count: int | None = Field(default=None, ge=1, le=MAX_JOBS)
    start: Duration = Field(default=0.0, ge=0)

    @model_validator(mode="after")
    def _one_kind(self) -> PipelineArrivalsSpec:
        if (self.at is None) == (self.every is None):
            raise ValidationError("give exactly one of 'at' or 'every'", path="at")
        if self.at is not None and not self.at:
            raise ValidationError("list at least one instant", path="at")
        if self.at is not None and ({"count", "start"} & self.model_fields_set):
            field = "count" if "count" in self.model_fields_set else "start"
            raise ValidationError(f"'{field}' goes with 'every', not with 'at'", path=field)
        return self

    def instants(self, horizon_s: float | None) -> tuple[float, ...]:
        """The start instants, sorted (``every`` without ``count`` needs ``horizon_s``)."""
        if self.at is not None:
            return tuple(sorted(self.at))
        assert self.every is not None
        if self.count is not None:
            count = self.count
        else:
            assert horizon_s is not None  # checked on load
            count = int((horizon_s - self.start) // self.every) + 1 if horizon_s >= self.start else 0
            if count > MAX_JOBS:
                raise ValidationError(
                    f"a run every {self.every:g} s until the horizon is {count:,} runs, more than the "
                    f"maximum of {MAX_JOBS:,}: give a larger 'every' or a 'count'",
                    path="every",
                )
        return tuple(self.start + n * self.every for n in range(count))


class PipelineEntrySpec(BaseModel):
    """Runs of one pipeline (:mod:`budcore_simulator.pipelines`).

    The pipeline is a ``file`` (relative to the scenario; any format
    :func:`budcore.pipeline.load_pipeline` reads, its errors naming that file and line) or an
    inline ``pipeline`` (the fields of :class:`budcore.pipeline.PipelineSpec`, or a Kubernetes-style
    ``kind: Pipeline`` document). Each run starts with ``params`` at an instant of ``arrivals``.

    A simulation makes no HTTP calls and runs no user code: ``outputs`` gives, per step id, the
    outputs its ``api_call``, ``function`` or ``transform`` step publishes (``{}`` without an
    entry; a ``job`` step's are added to its job's outputs, ``<step>~undo`` is a compensation's);
    those steps take no simulated time. A job step's job runs for its ``estimated_duration_seconds``
    (else ``default_runtime``) × ``runtime_scale``; a SERVICE job is ready that long after its pods
    start and runs until its run ends.
    """

    model_config = _FROZEN

    file: FilePath | None = None
    pipeline: dict[str, Any] | None = None
    params: dict[str, Any] = Field(default_factory=dict)
    arrivals: PipelineArrivalsSpec
    outputs: dict[str, dict[str, Any]] = Field(default_factory=dict)
    runtime_scale: float = Field(default=1.0, gt=0, le=MAX_RUNTIME_SCALE, allow_inf_nan=False)
    default_runtime: Duration = Field(default=600.0, gt=0)

    @model_validator(mode="after")
    def _one_source(self) -> PipelineEntrySpec:
        if (self.file is None) == (self.pipeline is None):
            raise ValidationError("give exactly one of 'file' or 'pipeline'", path="file")
        return self


class WorkloadSpec(BaseModel):
    model_config = _FROZEN

    generators: GeneratorSpec | None = None
    traces: tuple[TraceSpec, ...] = ()
    estimate_error: EstimateErrorSpec | None = None
    pipelines: tuple[PipelineEntrySpec, ...] = Field(
        default=(), description="Runs of pipeline DAGs, whose job steps join the workload."
    )

    @model_validator(mode="after")
    def _something(self) -> WorkloadSpec:
        if self.generators is None and not self.traces and not self.pipelines:
            raise ValidationError("give 'generators', 'traces', 'pipelines' or several", path="generators")
        return self


_ISO_TIME = re.compile(r"\s*\d{4}-\d{2}-\d{2}[Tt ]")
INSTANT_JSON_SCHEMA: dict[str, Any] = {
    "description": "an offset from the scenario's start (a duration: "
    f"{DURATION_JSON_SCHEMA['description']}) or an absolute ISO 8601 time with a zone",
    "anyOf": [*DURATION_JSON_SCHEMA["anyOf"], {"type": "string", "format": "date-time"}],
}


def _instant(value: Any) -> float | datetime:
    """An offset from the scenario's start (a duration, seconds) or an absolute aware time."""
    # no path of its own: pydantic's location already names the field
    if isinstance(value, datetime):  # YAML reads an unquoted ISO time as a datetime
        return ensure_utc(value, "")
    if isinstance(value, date):
        raise ValidationError(
            f"got the date {value.isoformat()}: give a time with a zone "
            f"('{value.isoformat()}T00:00:00Z') or an offset from the start ('10h')"
        )
    if isinstance(value, str) and _ISO_TIME.match(value):
        try:
            parsed = datetime.fromisoformat(value.strip())
        except ValueError:
            raise ValidationError(
                f"invalid time {value!r}: give an ISO 8601 time with a zone ('2026-01-05T10:00:00Z')"
            ) from None
        return ensure_utc(parsed, "")
    return check_span(parse_duration(value, ""))


# A pydantic field type: an offset from the scenario's start in seconds, or an aware UTC datetime.
Instant = Annotated[float | datetime, BeforeValidator(_instant), WithJsonSchema(INSTANT_JSON_SCHEMA)]


class ReservationSpec(BaseModel):
    """A capacity booking (:class:`budcore.domain.reservation.Reservation`), made before the run.

    ``quantity`` units (a Kubernetes quantity: ``8`` GPUs, ``"500m"``) of ``resource`` in
    ``flavor`` of ``cluster_queue``, held for tenant ``owner`` over ``[start, end)``; ``start`` and
    ``end`` are offsets from the scenario's ``start`` (``10h``, ``1d2h``) or absolute ISO 8601 times
    with a zone. ``jobs`` ties the booking to those job ids of the owner (empty: any of its jobs).
    Inside the window, the booked room the owner does not use is kept from everyone else; before
    it, others may use it only if they end by the start or may be preempted, and those still in
    it at the start are evicted (:mod:`budcore.scheduling.reservations`). An unknown queue, flavor
    or resource, or a booking that overbooks the queue's nominal quota together with the others, is
    an error naming the booking's field.
    """

    model_config = _FROZEN

    name: str
    owner: str
    cluster_queue: str = Field(min_length=1)
    flavor: str = Field(min_length=1)
    resource: str
    quantity: str | int | float
    start: Instant
    end: Instant
    jobs: tuple[str, ...] = ()

    @field_validator("name", "owner")
    @classmethod
    def _names(cls, value: str, info: ValidationInfo) -> str:
        return check_name(value, info.field_name or "name")

    @field_validator("resource")
    @classmethod
    def _resource(cls, value: str) -> str:
        return check_resource_name(value, "resource")

    @field_validator("quantity")
    @classmethod
    def _positive(cls, value: str | int | float) -> str | int | float:
        if parse_quantity(value, "quantity") <= 0:
            raise ValueError(f"must be positive, got {value!r}")
        quantity_milli(value, "")  # at most Kubernetes' int64 milli-value
        return value

    @field_validator("jobs")
    @classmethod
    def _job_ids(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if any(not job.strip() for job in value):
            raise ValueError("job ids must not be empty")
        return value

    def window(self, origin: datetime) -> tuple[datetime, datetime]:
        """``[start, end)`` as aware UTC datetimes, offsets counted from ``origin``."""

        def at(value: float | datetime) -> datetime:
            return value if isinstance(value, datetime) else origin + timedelta(seconds=value)

        return at(self.start), at(self.end)

    def reservation(self, origin: datetime) -> Reservation:
        """The core's booking, made (``created_at``) at ``origin``, the simulation's start."""
        start, end = self.window(origin)
        return Reservation(
            name=self.name,
            owner=TenantId(self.owner),
            cluster_queue=self.cluster_queue,
            flavor=self.flavor,
            resource=self.resource,
            quantity=parse_quantity(self.quantity, "quantity"),
            start=start,
            end=end,
            job_ids=tuple(JobId(j) for j in self.jobs),
            created_at=origin,
        )


class Scenario(BaseModel):
    model_config = _FROZEN

    name: str = "scenario"
    description: str = ""
    seed: int = Field(default=0, ge=0, le=MAX_SEED)
    start: datetime = datetime(2026, 1, 5, tzinfo=UTC)
    horizon: Duration | None = Field(default=None, gt=0)
    sample_interval: Duration = Field(default=300.0, gt=0)
    fleet: FleetSpec | None = Field(
        default=None,
        description="The nodes. Without a fleet the simulation is quota-only: ClusterQueue quotas "
        "alone decide, and a workload runs from the instant it is admitted.",
    )
    queues: QueuesSpec
    policy: PolicySpec = Field(default_factory=PolicySpec)
    workload: WorkloadSpec
    failures: FailureSpec | None = None
    eta: EtaSpec | None = Field(
        default=None, description="Measure ETA accuracy: estimated start at submission vs actual start."
    )
    runaway_factor: float | None = Field(
        default=3.0,
        ge=1,
        le=MAX_RUNAWAY_FACTOR,
        allow_inf_nan=False,
        description="Alert when a job's progress passes this many times its declared runtime "
        "(it keeps running); null: no alerts.",
    )
    reservations: tuple[ReservationSpec, ...] = Field(
        default=(), description="Capacity bookings, made before the run (see ReservationSpec)."
    )
    money: MoneySpec | None = Field(
        default=None,
        description="The submission guard, tenant budgets and their actions, chargeback tiers, and "
        "metering of every run (see budcore_simulator.money). Without it, none of these.",
    )

    @field_validator("start")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        value = ensure_utc(value, "start")
        if not EARLIEST_START <= value <= LATEST_START:
            raise ValueError(
                f"must be between {EARLIEST_START.year} and {LATEST_START.year}, got {value.isoformat()} "
                "(a run's times and deadlines must stay within the calendar)"
            )
        return value

    @model_validator(mode="after")
    def _samples(self) -> Scenario:
        """A run samples every ``sample_interval`` up to its horizon: at most MAX_SAMPLES samples."""
        if self.horizon is not None and self.horizon / self.sample_interval > MAX_SAMPLES:
            raise ValidationError(
                f"a horizon of {self.horizon:g} s sampled every {self.sample_interval:g} s is "
                f"{self.horizon / self.sample_interval:,.0f} samples, more than the maximum of "
                f"{MAX_SAMPLES:,}: raise sample_interval",
                path="sample_interval",
            )
        return self

    @model_validator(mode="after")
    def _bookings(self) -> Scenario:
        """Booking names are unique and each ends after it starts (the queues are checked on load)."""
        seen: set[str] = set()
        for index, spec in enumerate(self.reservations):
            at = f"reservations[{index}]"
            if spec.name in seen:
                raise ValidationError(f"duplicate reservation name {spec.name!r}", path=f"{at}.name")
            seen.add(spec.name)
            start, end = spec.window(self.start)
            if end <= start:
                raise ValidationError(
                    f"must be after start ({start.isoformat()}), got {end.isoformat()}", path=f"{at}.end"
                )
        return self


# Where the nodes come from when they replace the scenario's fleet: called once, after the scenario
# file validated (so a bad file fails before a cluster is contacted), it returns the parsed nodes
# (``budcore hardware parse``'s Fleet) and a name for messages (``cluster context 'prod'``).
NodeSource = Callable[[], tuple[Fleet, str]]


class LoadedScenario:
    """A validated scenario with everything it references resolved.

    ``nodes`` replaces the scenario's fleet (its pools and ``nodes_file``) with parsed nodes, the
    digital twin of a live cluster (``budcore simulate --fleet-from-cluster``). They take exactly
    the path of a ``nodes_file`` dump's nodes (:attr:`parsed_nodes`: flavor checks, prices by
    product, slug or price book), so a cluster and its ``kubectl get nodes -o yaml`` dump simulate
    alike; the fleet's ``prices``, ``price_book`` and ``price_tier`` still apply.
    """

    def __init__(
        self,
        scenario: Scenario,
        base_dir: Path,
        source: str,
        line_of: LineLookup | None = None,
        *,
        nodes: NodeSource | None = None,
    ) -> None:
        self.nodes_source: str | None = None
        replaced: Fleet | None = None
        if nodes is not None:
            replaced, self.nodes_source = nodes()
            scenario = scenario.model_copy(update={"fleet": _replaced_fleet(scenario.fleet)})
        self.scenario = scenario
        self.base_dir = base_dir
        self.source = source
        self._line_of = line_of
        # The readers of the latest arrivals() pass: their .report says what each skipped.
        self.trace_readers: list[TraceReader] = []
        # What a planner should know about the inputs (a node list's models the catalog lacks),
        # one line each.
        self.notes: list[str] = []
        self._expand_node_list()
        self.queues = self._queues()
        self._check_quotas()
        self.parsed_nodes = self._nodes_file() if replaced is None else self._given_nodes(replaced)
        self.nodes = [node for pool in self.fleet.pools for node in pool.build_nodes()]
        self._add_dump_nodes()
        if len(self.nodes) > MAX_NODES:
            raise self._error(
                f"the fleet holds {len(self.nodes):,} nodes, more than the maximum of {MAX_NODES:,}", "fleet"
            )
        self._check_flavors()
        self._check_workload()
        # Each workload.pipelines entry, loaded and checked against the queues.
        self.pipelines = self._pipelines()
        self._check_latency()
        self._check_ordering()
        self._check_throughput()
        # The capacity bookings, checked against the queues and each other (booked by the engine).
        self.reservations = self._reservations()
        self.price_book = self._price_book()  # loaded up front: a bad book fails the load
        # The money block, checked against the queues and priced (None without one).
        self.money = self._money_options()

    def _error(self, message: str, path: str) -> ValidationError:
        """An error about field ``path`` of the scenario file, with its line when known."""
        line = self._line_of(path) if self._line_of is not None else None
        return ValidationError(message, path=path, source=self.source, line=line)

    def _expand_node_list(self) -> None:
        """``fleet.node_list``'s pools joined to ``fleet.pools`` (priced by model, slug or book)."""
        fleet = self.scenario.fleet
        if fleet is None or fleet.node_list is None:
            return
        at = "fleet.node_list.path"
        path = (self.base_dir / fleet.node_list.path).resolve()
        if not is_file(path):
            raise self._error(f"node list {str(path)!r} does not exist", at)
        listed = read_openb_nodes(path)  # its errors name the node list's file, line and column
        taken = {pool.name for pool in fleet.pools}
        book = self._load_price_book() if fleet.price_book is not None else None
        pools: list[PoolSpec] = []
        for pool in listed.pools:
            if pool.name in taken:
                raise self._error(
                    f"pool {pool.name!r} of node list {str(path)!r} has the name of a pool of the scenario",
                    at,
                )
            price = fleet.prices.get(pool.model) if pool.model else None
            if price is None and pool.accelerator is not None:
                price = fleet.prices.get(pool.accelerator)
                if price is None and book is not None:
                    price = book.price(pool.accelerator, fleet.price_tier)
            spec = pool.pool_spec()
            if price is not None:
                spec["price_per_gpu_hour"] = price
            pools.append(PoolSpec.model_validate(spec))
        total = sum(p.nodes for p in (*fleet.pools, *pools))
        if total > MAX_NODES:
            raise self._error(f"the fleet holds {total:,} nodes, more than the maximum of {MAX_NODES:,}", at)
        self.notes.extend(f"{path.name}: {note}" for note in listed.notes())
        expanded = fleet.model_copy(update={"pools": (*fleet.pools, *pools), "node_list": None})
        self.scenario = self.scenario.model_copy(update={"fleet": expanded})

    def _check_quotas(self) -> None:
        """Every quota of the queues (nominal, borrowing and lending limits) fits Kubernetes' int64
        milli-value: a larger one is no quota a cluster can hold."""
        spec = self.scenario.queues
        source = str((self.base_dir / spec.path).resolve()) if spec.path is not None else self.source
        owners: list[tuple[str, str, tuple[Any, ...]]] = [
            ("ClusterQueue", name, cq.resource_groups) for name, cq in self.queues.cluster_queues.items()
        ]
        owners += [("Cohort", name, cohort.resource_groups) for name, cohort in self.queues.cohorts.items()]
        for kind, name, groups in owners:
            for g, group in enumerate(groups):
                for f, flavor in enumerate(group.flavors):
                    for r, quota in enumerate(flavor.resources):
                        for key, value in (
                            ("nominalQuota", quota.nominal_quota),
                            ("borrowingLimit", quota.borrowing_limit),
                            ("lendingLimit", quota.lending_limit),
                        ):
                            if value is not None and value > MAX_QUANTITY_MILLI:
                                raise ValidationError(
                                    f"{kind} {name}: {quota.name} in flavor {flavor.name}: {key} "
                                    f"{quantity_text(value)} is more than the largest quantity (milli-value "
                                    "2^63 - 1, Kubernetes' int64)",
                                    path=f"{kind}/{name}.spec.resourceGroups[{g}].flavors[{f}]."
                                    f"resources[{r}].{key}",
                                    source=source,
                                    line=None if spec.path is not None else self._line_of_queues(),
                                )

    def _line_of_queues(self) -> int | None:
        return self._line_of("queues.documents") if self._line_of is not None else None

    def _check_workload(self) -> None:
        """What the models cannot check alone: references into the queues and fleet, and an end.

        A class whose LocalQueue does not exist would have every job rejected, and a class asking
        for an accelerator no flavor of its ClusterQueue provides would wait forever; both are
        mistakes in the file, so they fail the load (naming the field) rather than the run.
        """
        workload = self.scenario.workload
        for index, trace in enumerate(workload.traces):
            for field_name, name in (("path", trace.path), ("task_path", trace.task_path)):
                if name is not None and not is_file((self.base_dir / name).resolve()):
                    raise self._error(
                        f"trace file {str((self.base_dir / name).resolve())!r} does not exist",
                        f"workload.traces[{index}].{field_name}",
                    )
            self._check_priority_class(
                priority_parts(trace.priority)[2], f"workload.traces[{index}].priority"
            )
            for rule_index, rule in enumerate(trace.mapping.rules):
                if rule.priority is not None:
                    self._check_priority_class(
                        priority_parts(rule.priority)[2],
                        f"workload.traces[{index}].mapping.rules[{rule_index}].priority",
                    )
        generators = workload.generators
        if generators is None:
            return
        for index, klass in enumerate(generators.classes):
            field = "priority_class" if klass.priority_class is not None else "priority"
            self._check_priority_class(
                priority_parts(klass.priority, klass.priority_class)[2],
                f"workload.generators.classes[{index}].{field}",
            )
        matcher = AcceleratorMatcher()
        matcher = matcher.with_flavor_types(
            flavor_types_from_nodes(self.queues.flavors, self.nodes, matcher.normalize)
        )
        bounded = (
            self.scenario.horizon is not None
            or generators.horizon is not None
            or generators.limit is not None
        )
        for index, klass in enumerate(generators.classes):
            at = f"workload.generators.classes[{index}]"
            if not bounded and klass.count is None and klass.until is None:
                raise self._error(
                    f"class {klass.name!r} never stops arriving: give it a 'count' or 'until', "
                    "or give the scenario a 'horizon'",
                    at,
                )
            lq = self.queues.local_queues.get((klass.tenant, klass.local_queue))
            if lq is None:
                known = ", ".join(f"{ns}/{name}" for ns, name in sorted(self.queues.local_queues)) or "none"
                raise self._error(
                    f"LocalQueue {klass.tenant}/{klass.local_queue} (namespace = the class's tenant) "
                    f"is not in the queues; LocalQueues: {known}",
                    f"{at}.local_queue",
                )
            if klass.accelerator is None:
                continue
            cq = self.queues.cluster_queues.get(lq.cluster_queue)
            if cq is None:
                continue  # the queue config itself reports a LocalQueue without its ClusterQueue
            names = [f.name for g in cq.resource_groups for f in g.flavors]
            if not any(
                matcher.matches_any(klass.accelerator.split("|"), self.queues.flavors[n])
                for n in names
                if n in self.queues.flavors
            ):
                offered = ", ".join(
                    f"{n} ({matcher.flavor_type(self.queues.flavors[n]) or 'no accelerator type'})"
                    for n in names
                    if n in self.queues.flavors
                )
                raise self._error(
                    f"accelerator {klass.accelerator!r} is not provided by any flavor of ClusterQueue "
                    f"{cq.name}: {offered or 'it has no flavors'}",
                    f"{at}.accelerator",
                )
        self._check_job_count(generators)

    def _check_job_count(self, generators: GeneratorSpec) -> None:
        """The generators submit at most MAX_JOBS jobs (about: the mean of random arrivals), the
        class submitting most named when they would submit more."""
        ends = [h for h in (self.scenario.horizon, generators.horizon) if h is not None]
        end = min(ends) if ends else math.inf
        expected = [klass.expected_jobs(end) for klass in generators.classes]
        total = sum(expected)
        if generators.limit is not None:
            total = min(total, generators.limit)
        if total <= MAX_JOBS:
            return
        index = max(range(len(expected)), key=expected.__getitem__)
        klass = generators.classes[index]
        about = f"about {expected[index]:,.0f}" if math.isfinite(expected[index]) else "no end of"
        raise self._error(
            f"class {klass.name!r} would submit {about} jobs (its rate over its window, capped by its "
            f"count): more than a run's maximum of {MAX_JOBS:,} in all; lower its rate, or give it a "
            "count, an until, or the scenario a shorter horizon",
            f"workload.generators.classes[{index}].arrivals",
        )

    def _pipelines(self) -> tuple[PipelineWorkload, ...]:
        """Each ``workload.pipelines`` entry: its pipeline loaded (a file's errors name that file
        and line; an inline one's, the scenario's), its parameters resolved, its canned outputs and
        job steps checked against the pipeline and the queues, its run instants listed."""
        entries = self.scenario.workload.pipelines
        if not entries:
            return ()
        from .pipelines import PipelineWorkload  # the pipeline engine loads only when needed

        out: list[PipelineWorkload] = []
        seen: dict[tuple[str, int], tuple[int, PipelineSpec]] = {}
        for index, entry in enumerate(entries):
            at = f"workload.pipelines[{index}]"
            spec, graph = self._load_pipeline(entry, at)
            where = f"{at}.file" if entry.file is not None else f"{at}.pipeline"
            earlier = seen.setdefault((spec.id, spec.version), (index, spec))
            if earlier[1] != spec:
                raise self._error(
                    f"pipeline {spec.id} version {spec.version} is also workload.pipelines[{earlier[0]}]'s, "
                    "with another definition: give one of them another id or version",
                    where,
                )
            try:
                params = spec.resolve_parameters(entry.params)
            except ValidationError as exc:
                raise self._errors(exc, at) from None
            self._check_pipeline_outputs(entry, spec, at)
            self._check_pipeline_jobs(spec, where)
            arrivals = entry.arrivals
            if arrivals.every is not None and arrivals.count is None and self.scenario.horizon is None:
                raise self._error(
                    "runs never stop arriving: give 'count', or give the scenario a 'horizon'",
                    f"{at}.arrivals.every",
                )
            try:
                starts = arrivals.instants(self.scenario.horizon)
            except ValidationError as exc:
                raise self._error(exc.message, f"{at}.arrivals.{exc.path}") from None
            out.append(
                PipelineWorkload(
                    spec=spec,
                    graph=graph,
                    params=params,
                    starts_s=starts,
                    outputs={step: dict(values) for step, values in entry.outputs.items()},
                    runtime_scale=entry.runtime_scale,
                    default_runtime_s=entry.default_runtime,
                )
            )
        return tuple(out)

    def _load_pipeline(self, entry: PipelineEntrySpec, at: str) -> tuple[PipelineSpec, PipelineGraph]:
        from budcore.pipeline.loader import load_pipeline, pipeline_from_data

        if entry.file is not None:
            path = (self.base_dir / entry.file).resolve()
            if not is_file(path):
                raise self._error(f"pipeline file {str(path)!r} does not exist", f"{at}.file")
            return load_pipeline(path)  # its errors name the pipeline file, line and field
        try:
            return pipeline_from_data(entry.pipeline, source=self.source)
        except ValidationError as exc:
            raise self._errors(exc, f"{at}.pipeline") from None

    def _errors(self, exc: ValidationError, prefix: str) -> ValidationErrors:
        """``exc`` (one error or several) about fields under ``prefix`` of the scenario file."""
        errors = exc.errors if isinstance(exc, ValidationErrors) else [exc]
        return ValidationErrors(
            [self._error(e.message, f"{prefix}.{e.path}" if e.path else prefix) for e in errors]
        )

    def _check_pipeline_outputs(self, entry: PipelineEntrySpec, spec: PipelineSpec, at: str) -> None:
        """Canned outputs name steps of the pipeline, and give every output a step declares and
        only the world could produce (an HTTP answer, a function's result, a job's report)."""
        from budcore.pipeline.model import (
            ApiCallStepConfig,
            FunctionStepConfig,
            JobStepConfig,
            TransformStepConfig,
        )

        steps = {step.id: step for step in spec.steps}
        for key in entry.outputs:
            base = key.removesuffix("~undo")
            if base not in steps or (key != base and steps[base].compensate is None):
                known = ", ".join(steps)
                raise self._error(
                    f"{key!r} is not a step of pipeline {spec.id} (steps: {known}; "
                    "'<step>~undo' for a compensation)",
                    f"{at}.outputs.{key}",
                )
        for step in spec.steps:
            config = step.config
            given = set(entry.outputs.get(step.id, {}))
            if isinstance(config, ApiCallStepConfig):
                given.add("status_code")
            elif isinstance(config, TransformStepConfig):
                given = set(config.values) | (given if config.function is not None else set())
            elif isinstance(config, JobStepConfig):
                given |= set(config.outputs) | {"job_id"}
            elif not isinstance(config, FunctionStepConfig):
                continue
            missing = [name for name in step.outputs if name not in given]
            if missing:
                raise self._error(
                    f"step {step.id!r} declares outputs {missing}, which a simulation cannot produce: "
                    f"give their values in outputs.{step.id}",
                    f"{at}.outputs",
                )

    def _check_pipeline_jobs(self, spec: PipelineSpec, where: str) -> None:
        """Every job a pipeline's steps submit goes to a LocalQueue of the queues, and one asking
        for an accelerator can be served by a flavor of its ClusterQueue (else it waits forever)."""
        from budcore.pipeline.model import JobStepConfig, LoopStepConfig

        matcher = AcceleratorMatcher()
        matcher = matcher.with_flavor_types(
            flavor_types_from_nodes(self.queues.flavors, self.nodes, matcher.normalize)
        )
        for step in spec.steps:
            configs = [step.config]
            if isinstance(step.config, LoopStepConfig):
                configs.append(step.config.step.config)
            if step.compensate is not None:
                configs.append(step.compensate.config)
            for config in configs:
                if not isinstance(config, JobStepConfig):
                    continue
                name = config.local_queue or spec.local_queue
                lq = self.queues.local_queues.get((spec.tenant, name))
                if lq is None:
                    known = ", ".join(f"{ns}/{q}" for ns, q in sorted(self.queues.local_queues)) or "none"
                    raise self._error(
                        f"step {step.id!r} of pipeline {spec.id} sends its job to LocalQueue "
                        f"{spec.tenant}/{name} (namespace = the pipeline's tenant), which is not in the "
                        f"queues; LocalQueues: {known}",
                        where,
                    )
                cq = self.queues.cluster_queues.get(lq.cluster_queue)
                if config.gpu_type is None or cq is None:
                    continue
                names = [
                    f.name for g in cq.resource_groups for f in g.flavors if f.name in self.queues.flavors
                ]
                if not any(matcher.matches(config.gpu_type, self.queues.flavors[n]) for n in names):
                    raise self._error(
                        f"step {step.id!r} of pipeline {spec.id} asks for accelerator {config.gpu_type!r}, "
                        f"which no flavor of ClusterQueue {cq.name} provides ({', '.join(names) or 'none'})",
                        where,
                    )

    def _check_latency(self) -> None:
        """The latency model keeps waiting workloads outside the scheduler until they are heads,
        which the features that reorder or re-read the scheduler's queues cannot work with."""
        unsupported = self.scheduler_features()
        if unsupported:
            feature, path = unsupported[0]
            raise self._error(
                f"the cycle-latency model (policy.latency) does not work with {feature}; turn one off",
                path,
            )

    def _check_ordering(self) -> None:
        """``policy.ordering`` names ClusterQueues of the queues, and a cohort tree's queues share
        one ordering (their heads compete by rank)."""
        spec = self.scenario.policy.ordering
        if spec is None:
            return
        policy = spec.policy()
        for name in unknown_queues(policy, self.queues.cluster_queues):
            known = ", ".join(sorted(self.queues.cluster_queues))
            raise self._error(
                f"no ClusterQueue {name!r} in the queues (ClusterQueues: {known})",
                f"policy.ordering.cluster_queues.{name}",
            )
        tree = QuotaTree(self.queues)
        try:
            check_cohorts(policy, {name: node.root_key for name, node in tree.cluster_queues.items()})
        except ValidationError as exc:
            raise self._error(exc.message, "policy.ordering") from None
        if policy.las_preemption and self.scenario.policy.fair_sharing:
            raise self._error(
                "las_preemption works with Kueue's classical preemption, not with fair sharing",
                "policy.ordering.las_preemption",
            )

    def _check_throughput(self) -> None:
        """``policy.throughput`` names ClusterQueues of the queues and accelerators some flavor
        provides (a name the catalog cannot resolve to one model, ``a100``, would match nothing)."""
        spec = self.scenario.policy.throughput
        if spec is None:
            return
        for index, name in enumerate(spec.cluster_queues or ()):
            if name not in self.queues.cluster_queues:
                raise self._error(
                    f"no ClusterQueue {name!r} in the queues", f"policy.throughput.cluster_queues[{index}]"
                )
        provided = {t for t in flavor_accelerators(self.queues, self.nodes).values() if t is not None}
        normalize = AcceleratorMatcher().normalize
        tables = [("accelerators", spec.accelerators)]
        tables += [(f"classes.{name}", table) for name, table in spec.classes.items()]
        for where, table in tables:
            for name in table:
                if (normalize(name) or name) not in provided:
                    raise self._error(
                        f"no flavor provides accelerator {name!r}; the flavors provide: "
                        f"{', '.join(sorted(provided)) or 'no known accelerator'}",
                        f"policy.throughput.{where}.{name}",
                    )

    def scheduler_features(self) -> list[tuple[str, str]]:
        """What the scenario uses that the latency model cannot (empty without the model)."""
        s = self.scenario
        if s.policy.latency is None:
            return []
        found: list[tuple[str, str]] = []
        if s.policy.aging is not None:
            found.append(("aging", "policy.aging"))
        if s.policy.deadline_boost is not None:
            found.append(("deadline-aware ordering", "policy.deadline_boost"))
        if s.policy.ordering is not None and not s.policy.ordering.policy().is_fifo:
            # The model's heads wait outside the scheduler in Kueue's order, which would decide.
            found.append(("research orderings", "policy.ordering"))
        if s.eta is not None and s.eta.measure:
            found.append(("ETA measurement", "eta"))
        if s.failures is not None and s.failures.controller_restart is not None:
            found.append(("controller restarts", "failures.controller_restart"))
        if s.reservations:
            found.append(("capacity bookings", "reservations"))
        if s.workload.pipelines:
            found.append(("pipelines", "workload.pipelines"))
        generators = s.workload.generators
        for index, klass in enumerate(generators.classes if generators is not None else ()):
            if klass.time_window is not None:
                found.append(("time windows", f"workload.generators.classes[{index}].time_window"))
        return found

    def _check_priority_class(self, name: str | None, path: str) -> None:
        """A WorkloadPriorityClass a workload source names must be in the queue configuration (or be
        one of budcore's ``budcore-<class>``): every job of the source would be rejected otherwise."""
        if name is None:
            return
        try:
            self.queues.priority_class_value(name)
        except ValidationError as exc:
            raise self._error(exc.message, path) from None

    def _reservations(self) -> tuple[Reservation, ...]:
        """The scenario's bookings as the core's :class:`Reservation`, booked in order on a
        :class:`ReservationBook` of the queues, as :meth:`Scheduler.reserve
        <budcore.scheduling.Scheduler.reserve>` will: an unknown ClusterQueue, flavor or resource,
        an owner without a LocalQueue in the booked ClusterQueue (its jobs could never use it), or a
        conflict with an earlier booking is an error naming the booking's field and line."""
        book = ReservationBook()
        out: list[Reservation] = []
        origin = self.scenario.start
        for index, spec in enumerate(self.scenario.reservations):
            at = f"reservations[{index}]"
            try:
                reservation = spec.reservation(origin)
            except PydanticValidationError as exc:  # what the spec does not check itself (lengths)
                problem = exc.errors(include_url=False)[0]
                field = ".".join(str(p) for p in problem.get("loc", ())[:1])
                field = {"job_ids": "jobs"}.get(field, field)
                raise self._error(str(problem.get("msg", "invalid value")), f"{at}.{field}") from None
            try:
                book.add(reservation, self.queues)
            except ReservationConflictError as exc:
                # Alone more than the nominal quota: the quantity; else the window overlaps others.
                field = "start" if exc.conflict.overlapping else "quantity"
                raise self._error(exc.conflict.describe(), f"{at}.{field}") from None
            except ValidationError as exc:  # an unknown queue, flavor or resource, by field
                raise self._error(exc.message, f"{at}.{exc.path}" if exc.path else at) from None
            except BudcoreError as exc:
                raise self._error(str(exc), at) from None
            owned = sorted(
                name
                for (namespace, name), lq in self.queues.local_queues.items()
                if namespace == spec.owner and lq.cluster_queue == spec.cluster_queue
            )
            if not owned:
                raise self._error(
                    f"owner {spec.owner!r} has no LocalQueue (in namespace {spec.owner}) pointing to "
                    f"ClusterQueue {spec.cluster_queue}: none of its jobs could use the booking",
                    f"{at}.owner",
                )
            out.append(reservation)
        return tuple(out)

    def _nodes_file(self) -> tuple[ParsedNode, ...]:
        """The nodes of ``fleet.nodes_file`` with their detected accelerators (empty without one)."""
        name = self.fleet.nodes_file
        if name is None:
            return ()
        path = (self.base_dir / name).resolve()
        if not is_file(path):
            raise self._error(f"nodes file {str(path)!r} does not exist", "fleet.nodes_file")
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise self._error(f"cannot read nodes file {str(path)!r}: {exc}", "fleet.nodes_file") from None
        try:
            fleet = parse_nodes_yaml(text, source=str(path))
        except ValidationError as exc:
            if exc.line is not None or not exc.path:
                raise
            # The dump parser numbers nodes across the whole file and keeps no lines: point at one.
            line = _dump_line(text, str(path), exc.path)
            raise ValidationError(exc.message, path=exc.path, source=exc.source, line=line) from None
        if not fleet.nodes:
            raise self._error(f"nodes file {str(path)!r} lists no node", "fleet.nodes_file")
        problem = _node_bounds(fleet.nodes)
        if problem is not None:
            index, field, message = problem
            raise ValidationError(
                message,
                path=f"items[{index}].{field}",
                source=str(path),
                line=_dump_line(text, str(path), f"items[{index}].{field}"),
            )
        return fleet.nodes

    def _given_nodes(self, fleet: Fleet) -> tuple[ParsedNode, ...]:
        """The nodes that replace the fleet; none at all is an error, never a silently empty fleet."""
        if not fleet.nodes:
            raise ValidationError(f"{self.nodes_source or 'the node source'} lists no node", path="fleet")
        problem = _node_bounds(fleet.nodes)
        if problem is not None:
            index, field, message = problem
            raise ValidationError(
                f"{self.nodes_source or 'the node source'}: node {fleet.nodes[index].name}: {message}",
                path=f"fleet.{field}",
            )
        return fleet.nodes

    def _add_dump_nodes(self) -> None:
        seen = {node.name for node in self.nodes}
        for parsed in self.parsed_nodes:
            if parsed.name in seen:
                raise self._error(
                    f"node {parsed.name!r} of the nodes file has the name of a pool node",
                    "fleet.nodes_file",
                )
            self.nodes.append(parsed.to_node())

    def _queues(self) -> QueueConfig:
        spec = self.scenario.queues
        if spec.path is not None:
            path = (self.base_dir / spec.path).resolve()
            if not exists(path):
                raise self._error(f"queues file {str(path)!r} does not exist", "queues.path")
            return load_queue_config(path)
        assert spec.documents is not None
        # The documents as they were read: an error names the scenario file's line (a template's,
        # for a replicated copy). Dumping them to YAML and parsing that again named lines of the
        # dump, and cost more than the rest of a large file's load.
        return queue_config_from_documents(
            YamlDocument(
                data=document,
                source=f"{self.source} (queues.documents)",
                index=index,
                start_line=self._line(f"queues.documents[{index}]") or 0,
                lines=_LinesUnder(self._line_of, f"queues.documents[{index}]"),
            )
            for index, document in enumerate(spec.documents)
        )

    def _line(self, path: str) -> int | None:
        return self._line_of(path) if self._line_of is not None else None

    @property
    def quota_only(self) -> bool:
        """No fleet: quotas alone decide, and admission is the start (see ``Scenario.fleet``)."""
        return self.scenario.fleet is None

    @property
    def fleet(self) -> FleetSpec:
        """The scenario's fleet (an empty one in a quota-only scenario)."""
        return self.scenario.fleet if self.scenario.fleet is not None else NO_FLEET

    def _check_flavors(self) -> None:
        """Every flavor must select at least one node of the fleet, or nothing could ever run there
        (a quota-only scenario has no nodes to select)."""
        if self.quota_only:
            return
        for name, flavor in sorted(self.queues.flavors.items()):
            if not any(node.matches(flavor.node_labels) for node in self.nodes):
                if self.nodes_source is not None:  # no pools: say whose nodes were searched
                    raise self._error(
                        f"ResourceFlavor {name!r} selects no node of {self.nodes_source} "
                        f"(nodeLabels {flavor.node_labels})",
                        "queues",
                    )
                raise self._error(
                    f"ResourceFlavor {name!r} selects no node of the fleet "
                    f"(nodeLabels {flavor.node_labels}); pool nodes carry "
                    f"{POOL_LABEL}=<pool name> and {PRODUCT_LABEL}=<product>",
                    "queues",
                )

    def engine_options(self) -> EngineOptions:
        s = self.scenario
        failures = None
        restart = None
        backoff = BackoffPolicy()
        max_retries = 3
        if s.failures is not None:
            f = s.failures
            if f.mtbf is not None:
                failures = FailureModel(
                    mtbf_s=f.mtbf,
                    repair_s=f.repair,
                    heartbeat_interval_s=f.heartbeat_interval,
                    heartbeat_misses=f.heartbeat_misses,
                )
            if f.controller_restart is not None:
                restart = ControllerRestartModel(
                    every_s=f.controller_restart.every,
                    downtime_s=f.controller_restart.downtime,
                    exponential=f.controller_restart.random,
                )
            backoff = BackoffPolicy(
                base=timedelta(seconds=f.backoff_base), cap=timedelta(seconds=f.backoff_cap)
            )
            max_retries = f.max_retries
        return EngineOptions(
            start=s.start,
            horizon_s=s.horizon,
            cycle_interval_s=s.policy.cycle_interval,
            sample_interval_s=s.sample_interval,
            failures=failures,
            backoff=backoff,
            max_retries=max_retries,
            seed=s.seed,
            controller_restart=restart,
            runaway_factor=s.runaway_factor,
            eta=s.eta.measurement() if s.eta is not None else None,
            money=self.money,
            report_time=self._uses_time(),
            # A scenario run owns its process (CLI, sweep worker): keep long runs linear in jobs.
            gc_freeze_every=10_000,
            quota_only=self.quota_only,
            latency=s.policy.latency.model() if s.policy.latency is not None else None,
            throughput=s.policy.throughput.model() if s.policy.throughput is not None else None,
        )

    def _uses_time(self) -> bool:
        """Whether the scenario asks for time figures: time limits or windows on a class,
        deadline-aware ordering, or an explicit ``runaway_factor`` (ETA accuracy has its own block)."""
        s = self.scenario
        generators = s.workload.generators
        return (
            "runaway_factor" in s.model_fields_set
            or s.policy.deadline_boost is not None
            or (
                generators is not None
                and any(c.max_duration is not None or c.time_window is not None for c in generators.classes)
            )
        )

    def prices(self) -> dict[str, Decimal]:
        """Price per GPU-hour of each flavor.

        ``fleet.prices[<flavor>]`` when given, else the ``price_per_gpu_hour`` of the first pool
        the flavor selects, else the dump-node rules of :class:`FleetSpec` (``prices`` by product
        or slug, then the price book).
        """
        fleet = self.fleet
        book = self.price_book
        out: dict[str, Decimal] = {}
        for name, flavor in sorted(self.queues.flavors.items()):
            price = fleet.prices.get(name)
            if price is None:
                price = next(
                    (
                        pool.price_per_gpu_hour
                        for pool in fleet.pools
                        if pool.price_per_gpu_hour is not None
                        and _labels_match(pool.node_labels(), flavor.node_labels)
                    ),
                    None,
                )
            if price is None:
                node = next(
                    (
                        n
                        for n in sorted(self.parsed_nodes, key=lambda n: n.name)
                        if n.devices and _labels_match(n.labels, flavor.node_labels)
                    ),
                    None,
                )
                if node is not None:
                    price = self._dump_node_price(node, book)
            if price is not None:
                out[name] = price
        return out

    def _dump_node_price(self, node: ParsedNode, book: PriceBook | None) -> Decimal | None:
        fleet = self.fleet
        device = node.devices[0]
        for key in (node.labels.get(PRODUCT_LABEL), device.product, device.accelerator):
            if key is not None and key in fleet.prices:
                return fleet.prices[key]
        if book is None or device.accelerator is None:
            return None
        # A MIG slice or a time-sliced/MPS replica costs the book's share of the whole device.
        mode = f"mig-{device.mig_profile}" if device.mig_profile else device.sharing.value
        return book.price(device.accelerator, fleet.price_tier, mode=mode, replicas=device.replicas)

    def _price_book(self) -> PriceBook | None:
        """The price book for dump nodes (``None`` without dump nodes or with ``price_book: null``)."""
        return self._load_price_book() if self.parsed_nodes else None

    def _load_price_book(self) -> PriceBook | None:
        """``fleet.price_book`` (``None`` with ``price_book: null``), checked to have ``price_tier``."""
        spec = self.fleet.price_book
        if spec is None:
            return None
        from budcore.plugins import default_registry  # a name: a registered pricing source

        if default_registry().get("pricing_source", spec) is not None:
            book = default_registry().price_book(spec)
        else:
            path = (self.base_dir / spec).resolve()
            if not is_file(path):
                raise self._error(f"price book {str(path)!r} does not exist", "fleet.price_book")
            book = load_price_book(path)
        if book.resolve_tier(self.fleet.price_tier) is None:
            raise self._error(
                f"price tier {self.fleet.price_tier!r} is not in the price book "
                f"(tiers: {', '.join(book.tiers())})",
                "fleet.price_tier",
            )
        return book

    def _money_options(self) -> MoneyOptions | None:
        """The ``money`` block for the engine: its guard policy and budgets, checked against the
        queues (tenants with a LocalQueue, ClusterQueues and cohorts that exist, tiers of the price
        book), and the simulation's price book (:func:`~budcore_simulator.money.flavor_price_book`:
        each flavor at :meth:`prices`, the other tiers from ``fleet.price_book``)."""
        spec = self.scenario.money
        if spec is None:
            return None
        base = self.price_book if self.price_book is not None else self._load_price_book()
        prices = self.prices()
        try:
            book = flavor_price_book(prices, base, self.fleet.price_tier)
        except ValidationError as exc:
            field = "fleet.price_tier" if exc.path == "price_tier" else "money"
            raise self._error(exc.message, field) from None
        tenants = {namespace for namespace, _ in self.queues.local_queues}
        cluster_queues = self.queues.cluster_queues
        cohorts = set(self.queues.cohorts) | {cq.cohort for cq in cluster_queues.values() if cq.cohort}
        for index, budget in enumerate(spec.budgets):
            if budget.tenant not in tenants:
                raise self._error(
                    f"tenant {budget.tenant!r} has no LocalQueue (namespace = tenant) in the queues: its "
                    f"budget would never apply; tenants: {', '.join(sorted(tenants)) or 'none'}",
                    f"money.budgets[{index}].tenant",
                )
        if spec.budgets and not prices:
            raise self._error(
                "no ResourceFlavor has a price, so no spend can be counted against a budget: price the "
                "fleet (fleet.prices, a pool's price_per_gpu_hour, or a price book)",
                "money.budgets",
            )
        for key in spec.guard.overrides if spec.guard is not None else ():
            kind, _, name = key.partition(":")
            known = tenants if kind == "tenant" else set(cluster_queues)
            if name not in known:
                what = "tenant with a LocalQueue" if kind == "tenant" else "ClusterQueue"
                raise self._error(f"no {what} {name!r} in the queues", f"money.guard.overrides.{key}")
        for account, tier in spec.tiers.items():
            cohort = account.removeprefix("cohort:")
            if account not in cluster_queues and (cohort == account or cohort not in cohorts):
                raise self._error(
                    f"{account!r} is neither a ClusterQueue nor cohort:<name> of a cohort in the queues",
                    f"money.tiers.{account}",
                )
            if book.resolve_tier(tier) is None:
                raise self._error(
                    f"tier {tier!r} is not in the price book (tiers: {', '.join(book.tiers())})",
                    f"money.tiers.{account}",
                )
        return MoneyOptions(
            spec.policy(),
            book,
            guard=spec.guard is not None,
            tiers=dict(spec.tiers),
            review_every_s=spec.review_every,
        )

    def arrivals(self) -> Iterator[JobArrival]:
        """All workload sources merged in submit order (ties by job id), lazily."""
        s = self.scenario
        streams: list[Iterator[JobArrival]] = []
        if s.workload.generators is not None:
            streams.append(generate_arrivals(s.workload.generators, s.seed))
        self.trace_readers = [open_trace(trace, self.base_dir) for trace in s.workload.traces]
        local_queues = frozenset(self.queues.local_queues)
        for reader in self.trace_readers:
            reader.local_queues = local_queues  # a job on no LocalQueue: reported, never silently lost
            streams.append(iter(reader))
        merged: Iterator[JobArrival] = heapq.merge(*streams, key=lambda a: (a.submit_s, a.job_id))
        if s.workload.estimate_error is not None:
            merged = s.workload.estimate_error.apply(merged, s.seed)
        horizon = s.horizon
        # Without a horizon a run samples until its last job ends: keep that within MAX_SAMPLES.
        latest_end = MAX_SAMPLES * s.sample_interval if horizon is None else math.inf
        for arrival in merged:
            if horizon is not None and arrival.submit_s > horizon:
                return
            if arrival.submit_s > MAX_SPAN_S:
                raise self._error(
                    f"job {arrival.job_id} arrives {arrival.submit_s:g} s after the start, more than the "
                    f"maximum, {span_text()}: give the scenario a horizon",
                    "horizon",
                )
            if arrival.submit_s + arrival.runtime_s > latest_end:
                raise self._error(
                    f"job {arrival.job_id} runs until at least {arrival.submit_s + arrival.runtime_s:g} s: "
                    f"sampled every {s.sample_interval:g} s that is more than the maximum of "
                    f"{MAX_SAMPLES:,} samples; give the scenario a horizon or raise sample_interval",
                    "sample_interval",
                )
            yield arrival


def _dump_line(text: str, source: str, path: str) -> int | None:
    """The line of ``path`` in a nodes dump, ``path`` as :func:`budcore.hardware.labels.parse_nodes`
    names a field (``items[3].spec.taints[0].effect``: the 4th node of the file, however its
    documents hold the nodes: a ``List``, one Node per document, or a bare list); None when the
    path names no node."""
    match = re.match(r"items\[(\d+)\]", path)
    if match is None:
        return None
    try:
        documents = load_yaml_text(text, source)
    except ValidationError:
        return None
    wanted, rest = int(match.group(1)), path[match.end() :]
    for document in documents:
        data = document.data
        if isinstance(data, Mapping) and isinstance(data.get("items"), list):
            prefixes = [f"items[{k}]" for k in range(len(data["items"]))]
        elif isinstance(data, list):
            prefixes = [f"[{k}]" for k in range(len(data))]
        else:
            prefixes = [""]
        if wanted < len(prefixes):
            prefix = prefixes[wanted]
            return document.line_of(prefix + rest if prefix else rest.removeprefix("."))
        wanted -= len(prefixes)
    return None


def _node_bounds(nodes: Iterable[ParsedNode]) -> tuple[int, str, str] | None:
    """The first node whose allocatable passes a bound, as ``(index, field, message)``: any resource
    above Kubernetes' int64 milli-value, or more accelerators than a node holds (physical devices
    or MIG slices above :data:`~.workload.limits.MAX_DEVICES`, shared replicas above that many per
    device)."""
    for index, node in enumerate(nodes):
        for name, milli in node.allocatable.items():
            if milli > MAX_QUANTITY_MILLI:
                return (
                    index,
                    f"status.allocatable.{name}",
                    f"{name} {quantity_text(milli)} is more than the largest quantity (milli-value 2^63 - 1)",
                )
        for group in node.devices:
            allocatable = node.allocatable.get(group.resource_name, 0) / 1000
            if group.count > MAX_DEVICES or allocatable > MAX_DEVICES * group.replicas:
                return (
                    index,
                    f"status.allocatable.{group.resource_name}",
                    f"{allocatable:g} {group.resource_name} on one node is more than the maximum of "
                    f"{MAX_DEVICES} devices"
                    + (f" x {group.replicas} replicas" if group.replicas > 1 else ""),
                )
    return None


def _replaced_fleet(fleet: FleetSpec | None) -> FleetSpec:
    """The scenario's fleet without its nodes (pools, ``nodes_file``), keeping how nodes are priced.

    Built without validation: a FleetSpec needs pools or a nodes file, and these nodes are neither.
    """
    if fleet is None:
        return FleetSpec.model_construct(
            pools=(),
            nodes_file=None,
            node_list=None,
            prices={},
            price_book=DEFAULT_PRICE_BOOK,
            price_tier="on-demand",
        )
    return fleet.model_copy(update={"pools": (), "nodes_file": None, "node_list": None})


def _labels_match(labels: dict[str, str], selector: dict[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


class _LinesUnder(Mapping[str, int]):
    """The scenario file's lines of the fields of one inline Kueue document (``prefix``), as a
    :class:`YamlDocument`'s ``lines``: looked up by path, never listed."""

    def __init__(self, line_of: LineLookup | None, prefix: str) -> None:
        self._line_of = line_of
        self._prefix = prefix

    def __getitem__(self, path: str) -> int:
        line = None
        if self._line_of is not None:
            line = self._line_of(self._prefix + (path if path.startswith("[") else f".{path}"))
        if line is None:
            raise KeyError(path)
        return line

    def __iter__(self) -> Iterator[str]:
        return iter(())

    def __len__(self) -> int:
        return 0


def load_scenario(path: str | Path, *, nodes: NodeSource | None = None) -> LoadedScenario:
    """Load and validate a scenario file; errors name the file, line and field path.

    ``nodes`` replaces the scenario's fleet (see :class:`LoadedScenario`).
    """
    path = Path(path)
    if not exists(path):
        raise ValidationError(f"scenario file {str(path)!r} does not exist", path="scenario")
    if path.is_dir():
        raise ValidationError(f"{str(path)!r} is a directory; expected a scenario YAML file", path="scenario")
    documents = load_yaml_documents(path)
    if len(documents) != 1:
        raise ValidationError(
            f"a scenario file holds exactly one YAML document, found {len(documents)}", source=str(path)
        )
    return scenario_from_document(documents[0], path.parent, nodes=nodes)


def scenario_from_document(
    document: YamlDocument, base_dir: Path, *, nodes: NodeSource | None = None
) -> LoadedScenario:
    if not isinstance(document.data, dict):
        raise ValidationError(
            "a scenario is a mapping (name, fleet, queues, workload, ...)", source=document.source, line=1
        )
    try:
        data, line_of = expand_document(document.data, document.line_of)
    except ValidationError as exc:  # a malformed replicate block: at its line
        raise ValidationError(
            exc.message, path=exc.path, source=document.source, line=document.line_of(exc.path)
        ) from None
    scenario = validate_model(Scenario, data, source=document.source, line_of=line_of)
    return LoadedScenario(scenario, base_dir, document.source, line_of, nodes=nodes)


def scenario_json_schema() -> dict[str, Any]:
    """The JSON schema of scenario files (generated from the models, so it never drifts)."""
    schema = Scenario.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "budcore simulation scenario"
    return schema
