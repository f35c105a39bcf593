"""Alibaba's 2023 GPU cluster trace ("openb", ``alibaba/clusterdata`` ``cluster-trace-gpu-v2023``).

The trace of the FGD paper (Weng et al., "Beware of Fragmentation: Scheduling GPU-Sharing
Workloads with Fragmentation Gradient Descent", USENIX ATC '23) has two kinds of file, both CSV
with a header row:

``openb_node_list_gpu_node.csv`` (``sn,cpu_milli,memory_mib,gpu,model``): the nodes
    1,213 GPU nodes of P100, T4, V100M16, V100M32, A10 and the undisclosed G1–G3 models
    (``openb_node_list_all_node.csv`` adds 310 CPU-only nodes with an empty model).
    :func:`read_openb_nodes` makes it a fleet: a pool per model and node shape (a pool's nodes
    are identical, and a model's nodes come in several shapes), each node labelled with its model
    as ``nvidia.com/gpu.product``, so one ResourceFlavor per model selects all its pools. A
    scenario says ``fleet: {node_list: {format: openb, path: ...}}``.

``openb_pod_list_*.csv`` (``name,cpu_milli,memory_mib,num_gpu,gpu_milli,gpu_spec,qos,pod_phase,
creation_time,deletion_time,scheduled_time``): the pods, read by :class:`OpenbTrace` (``format:
openb``) as jobs of one pod each.

``simulator/workload/TRACES.md`` documents the mapping in full; in short:

* submit = ``creation_time``; runtime = ``deletion_time - scheduled_time`` (``- creation_time``
  for a pod never scheduled);
* ``pod_phase`` is the state a ``states`` filter selects on. ``Running`` pods were still running
  when the trace was taken: their runtime is a lower bound (*censored*; the report counts them).
  ``Pending`` pods were never scheduled: their runtime is the time they waited before deletion,
  a stand-in (counted too);
* ``qos`` sets the priority (``qos_priority``; by default LS and Guaranteed: high, Burstable:
  normal, BE: low) unless a mapping rule gives one;
* ``gpu_spec`` is the accelerator the pod asks for, resolved through the catalog (``V100M16``:
  ``nvidia-v100-16gb``); undisclosed models (G1–G3) are asked for by name. A set
  (``V100M16|V100M32``) accepts any of its models (``nvidia-v100-16gb|nvidia-v100-32gb``): the
  ClusterQueue's flavor order decides which is tried first;
* a fraction of one GPU (``num_gpu`` 1, ``gpu_milli`` 1–999) is a *share*: with
  ``fractional: share`` (the default) the pod asks for ``<gpu_milli>m`` of the GPU resource
  (quota counts milli-units), and the simulator's cluster packs shares onto physical devices,
  a share never spanning two (``budcore_adapters/inmemory/devices.py``); ``fractional: skip``
  filters such pods (counted with the reason), ``fractional: round-up`` asks for one whole GPU
  (counted as a note). A share of several GPUs (``num_gpu`` > 1 with ``gpu_milli`` < 1000) or
  more than one GPU in ``gpu_milli`` (``1500``) is an invalid row naming the line and field;
* CPU-only pods (``num_gpu`` 0) are filtered unless ``include_cpu_only``.
"""

from __future__ import annotations

import csv
import math
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from budcore.catalog import default_catalog
from budcore.domain.errors import ValidationError
from budcore.domain.priority import JobPriority

from .limits import MAX_DEVICES, MAX_NODES, MAX_QUANTITY_MILLI
from .model import Priority
from .traces import (
    FilteredRow,
    ParsedRow,
    RowError,
    TraceOptions,
    _count,
    _csv_errors,
    _CsvReader,
    _header_has,
    _open_text,
    _text,
    sanitize_name,
)
from .units import is_file

__all__ = [
    "DEFAULT_QOS_PRIORITY",
    "NODE_COLUMNS",
    "POD_COLUMNS",
    "OpenbNodes",
    "OpenbPool",
    "OpenbTrace",
    "read_openb_nodes",
]

POD_COLUMNS = (
    "name",
    "cpu_milli",
    "memory_mib",
    "num_gpu",
    "gpu_milli",
    "gpu_spec",
    "qos",
    "pod_phase",
    "creation_time",
    "deletion_time",
    "scheduled_time",
)
NODE_COLUMNS = ("sn", "cpu_milli", "memory_mib", "gpu", "model")

#: The priority of each ``qos`` value unless ``qos_priority`` says otherwise. LS (latency
#: sensitive) and Kubernetes' Guaranteed are served first, BE (best effort) last.
DEFAULT_QOS_PRIORITY: dict[str, Priority] = {
    "LS": JobPriority.HIGH,
    "Guaranteed": JobPriority.HIGH,
    "Burstable": JobPriority.NORMAL,
    "BE": JobPriority.LOW,
}

WHOLE_GPU_MILLI = 1000
MIB = 2**20

# What the report's notes and filters say (budcore trace inspect prints them).
CENSORED = "censored: Running when the trace was taken, its runtime (deletion - scheduled) is a lower bound"
UNSCHEDULED = "never scheduled (Pending): runtime = deletion - creation, the time it waited, a stand-in"
ROUNDED_UP = "fractional GPU (gpu_milli < 1000) rounded up to one whole GPU (fractional: round-up)"
FRACTIONAL_SKIPPED = (
    "fractional GPU (gpu_milli < 1000) skipped (fractional: skip; fractional: share, the default, "
    "packs it with other shares onto one device)"
)
SHARED = "fractional GPU (gpu_milli < 1000): a share of one device, packed with others (fractional: share)"
UNKNOWN_MODEL = (
    "model {model} is not in the accelerator catalog (an undisclosed model): asked for by its name, "
    "so only nodes or flavors labelled {model} serve it"
)


def _priority_table(value: dict[str, Priority] | None) -> dict[str, Priority]:
    return dict(DEFAULT_QOS_PRIORITY if value is None else value)


class OpenbTrace(_CsvReader):
    """The openb pod list (``openb_pod_list_*.csv``): one job of one pod per row.

    See the module docstring and ``TRACES.md`` for the mapping. Mapping attributes: ``qos``,
    ``gpu_spec``; ``states`` selects on ``pod_phase``.
    """

    format = "openb"
    filters_cpu_only = True
    attributes = ("qos", "gpu_spec")
    submit_field = "creation_time"
    runtime_field = "deletion_time"
    gpus_field = "num_gpu"
    required = ("name", "num_gpu", "creation_time", "deletion_time")
    optional = tuple(c for c in POD_COLUMNS if c not in ("name", "num_gpu", "creation_time", "deletion_time"))

    def __init__(self, path: str | Path, options: TraceOptions | None = None, **overrides: Any) -> None:
        super().__init__(path, options, **overrides)
        self._qos = _priority_table(self.options.qos_priority)
        self._catalog = default_catalog()
        self._models: dict[str, tuple[str, bool]] = {}  # model -> (accelerator, known to the catalog)

    @classmethod
    def sniff(cls, head: list[str]) -> bool:
        return _header_has(head, ("name", "num_gpu", "gpu_milli", "creation_time"))

    def _accelerator(self, model: str) -> tuple[str, bool]:
        cached = self._models.get(model)
        if cached is None:
            entry = self._catalog.resolve(model)
            cached = self._models[model] = (model, False) if entry is None else (entry.slug, True)
        return cached

    def _parse(self, line: int, row: Any) -> ParsedRow:
        name = _text(row, "name")
        if not name:
            raise RowError("name", "missing value")
        gpus = _count(_text(row, "num_gpu"), "num_gpu")
        milli = _count(_text(row, "gpu_milli"), "gpu_milli", WHOLE_GPU_MILLI if gpus else 0)
        notes: list[str] = []
        if gpus == 0 and milli:
            raise RowError("gpu_milli", f"{milli} milli of a GPU for a pod with num_gpu 0")
        if gpus and not 0 < milli <= WHOLE_GPU_MILLI:
            raise RowError(
                "gpu_milli",
                f"must be 1 to {WHOLE_GPU_MILLI} for a pod with GPUs, got {milli}: gpu_milli is the share "
                "of each of num_gpu devices, and a share must fit on one device",
            )
        if gpus > 1 and milli < WHOLE_GPU_MILLI:
            raise RowError(
                "gpu_milli",
                f"a share ({milli} milli) of each of {gpus} GPUs: the trace defines shares of one GPU only",
            )
        share = None
        if gpus == 1 and milli < WHOLE_GPU_MILLI:
            if self.options.fractional == "skip":
                raise FilteredRow(FRACTIONAL_SKIPPED)
            if self.options.fractional == "share":
                share = milli
                notes.append(SHARED)
            else:
                notes.append(ROUNDED_UP)
        submit = _time(row, "creation_time")
        end = _time(row, "deletion_time")
        scheduled_text = _text(row, "scheduled_time")
        phase = _text(row, "pod_phase")
        if scheduled_text:
            start = _time(row, "scheduled_time")
            if start < submit:
                raise RowError("scheduled_time", f"before creation_time ({start:g} < {submit:g})")
        else:
            start = submit
            notes.append(UNSCHEDULED)
        runtime = end - start
        if runtime < 0:
            raise RowError(
                "deletion_time",
                f"before {'scheduled_time' if scheduled_text else 'creation_time'} ({end:g} < {start:g})",
            )
        if phase == "Running":
            notes.append(CENSORED)
        cpu, memory = self._resources(gpus)
        if text := _text(row, "cpu_milli"):
            cpu = _count(text, "cpu_milli")
        if text := _text(row, "memory_mib"):
            memory = _count(text, "memory_mib") * MIB
        spec = _text(row, "gpu_spec")
        accelerator = None
        if spec and gpus:
            models = list(dict.fromkeys(m.strip() for m in spec.split("|") if m.strip()))
            if not models:
                raise RowError("gpu_spec", f"no model in {spec!r}")
            # A set (V100M16|V100M32) asks for any of its models: the job accepts each flavor
            # providing one, in the ClusterQueue's order (budcore.domain.accelerators).
            accepted: dict[str, None] = {}
            for model in models:
                slug, known = self._accelerator(model)
                accepted[slug] = None
                if not known:
                    notes.append(UNKNOWN_MODEL.format(model=model))
            accelerator = "|".join(accepted)
        qos = _text(row, "qos")
        return ParsedRow(
            trace_id=name,
            submit=submit,
            runtime=runtime,
            gpus_per_pod=gpus,
            pods=1,
            cpu_milli=cpu,
            memory_bytes=memory,
            attributes={"qos": qos, "gpu_spec": spec, "state": phase},
            line=line,
            accelerator=accelerator,
            fallback_priority=self._qos.get(qos),
            notes=tuple(notes),
            gpu_milli=share,
        )


def _time(row: Any, name: str) -> float:
    """A time in seconds (the trace's integers; a missing one is a row error)."""
    text = _text(row, name)
    if not text:
        raise RowError(name, "missing value")
    try:
        value = float(text)
    except ValueError:
        raise RowError(name, f"not a number: {text!r}") from None
    if not math.isfinite(value):
        raise RowError(name, f"not a finite number: {text!r}")
    return value


# Nodes --------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class OpenbPool:
    """Identical nodes of the node list: a model (``""`` for CPU-only nodes) in one shape."""

    name: str
    model: str
    accelerator: str | None  # the catalog slug; None for an unknown model or a CPU-only node
    gpus_per_node: int
    cpu_milli: int
    memory_mib: int
    nodes: int
    first_line: int

    def pool_spec(self) -> dict[str, Any]:
        """The fields of a scenario's pool (:class:`budcore_simulator.scenario.PoolSpec`)."""
        spec: dict[str, Any] = {
            "name": self.name,
            "gpus_per_node": self.gpus_per_node,
            "nodes": self.nodes,
            "cpu": f"{self.cpu_milli}m",
            "memory": f"{self.memory_mib}Mi",
        }
        if self.model:
            spec["product"] = self.model
        if self.accelerator is not None:
            spec["accelerator"] = self.accelerator
        return spec


@dataclass(frozen=True, slots=True)
class OpenbNodes:
    """What a node list holds: its pools (largest first) and the models the catalog lacks."""

    source: str
    pools: tuple[OpenbPool, ...]
    unknown_models: tuple[str, ...] = ()
    models: dict[str, int] = field(default_factory=dict)  # model -> nodes

    @property
    def nodes(self) -> int:
        return sum(p.nodes for p in self.pools)

    @property
    def gpus(self) -> int:
        return sum(p.nodes * p.gpus_per_node for p in self.pools)

    def notes(self) -> list[str]:
        """One line per model the catalog lacks (its nodes have no specs and no catalog price)."""
        return [
            f"model {model} is not in the accelerator catalog (an undisclosed model): its pools carry "
            f"nvidia.com/gpu.product={model} and no accelerator slug; price them with fleet.prices[{model}]"
            for model in self.unknown_models
        ]


def is_openb_node_list(head: list[str]) -> bool:
    """Whether a file whose first lines are ``head`` is an openb node list."""
    return _header_has(head, NODE_COLUMNS)


def read_openb_nodes(path: str | Path) -> OpenbNodes:
    """The pools of an openb node list; a bad row is an error naming the file, line and column
    (a fleet missing nodes would change every result, so no row is skipped)."""
    path = Path(path)
    source = str(path)
    if not is_file(path):
        raise ValidationError(f"node list {source!r} does not exist", path="path")
    catalog = default_catalog()
    shapes: dict[tuple[str, int, int, int], list[int]] = {}  # shape -> [nodes, first line]
    with _open_text(path) as handle:
        reader = csv.DictReader(handle)
        with _csv_errors(source, reader):
            header = [h.strip() for h in (reader.fieldnames or [])]
            if not header:
                raise ValidationError(
                    f"{source} is empty: expected the header {','.join(NODE_COLUMNS)}",
                    path="header",
                    source=source,
                )
            reader.fieldnames = header
            missing = [c for c in NODE_COLUMNS if c not in header]
            if missing:
                raise ValidationError(
                    f"header lacks column(s) {missing}; an openb node list has {list(NODE_COLUMNS)}",
                    path="header",
                    source=source,
                    line=1,
                )
            for row in _node_rows(reader, source):
                line = reader.line_num
                try:
                    if not _text(row, "sn"):
                        raise RowError("sn", "missing value")
                    gpus = _count(_text(row, "gpu"), "gpu")
                    cpu = _count(_text(row, "cpu_milli"), "cpu_milli")
                    memory = _count(_text(row, "memory_mib"), "memory_mib")
                    model = _text(row, "model")
                    if model.lower() == "nan":  # pandas' empty cell, as the README shows it
                        model = ""
                    if gpus > MAX_DEVICES:
                        raise RowError(
                            "gpu", f"{gpus} GPUs in one node is more than the maximum, {MAX_DEVICES}"
                        )
                    if gpus and not model:
                        raise RowError("model", f"a node with {gpus} GPUs needs its model")
                    if model and not gpus:
                        raise RowError("gpu", f"a {model} node with no GPU")
                    if cpu > MAX_QUANTITY_MILLI:
                        raise RowError("cpu_milli", f"{cpu} is more than the largest quantity")
                    if memory * MIB * 1000 > MAX_QUANTITY_MILLI:
                        raise RowError("memory_mib", f"{memory} MiB is more than the largest quantity")
                except RowError as error:
                    raise ValidationError(error.reason, path=error.field, source=source, line=line) from None
                entry = shapes.setdefault((model, gpus, cpu, memory), [0, line])
                entry[0] += 1
                if sum(n for n, _ in shapes.values()) > MAX_NODES:
                    raise ValidationError(
                        f"more than the maximum of {MAX_NODES:,} nodes", path="sn", source=source, line=line
                    )
    if not shapes:
        raise ValidationError(f"{source} lists no node", path="sn", source=source)
    by_model = Counter[str]()
    shapes_of = Counter[str]()
    for (model, *_), (count, _) in shapes.items():
        by_model[model] += count
        shapes_of[model] += 1
    pools: list[OpenbPool] = []
    unknown: list[str] = []
    taken: set[str] = set()
    for (model, gpus, cpu, memory), (count, first_line) in sorted(
        shapes.items(), key=lambda item: (-by_model[item[0][0]], item[0][0], -item[1][0], item[1][1])
    ):
        size = f"{cpu // 1000}cpu-{memory // 1024}gi"
        if not model:
            name = "cpu-only" if shapes_of[model] == 1 else f"cpu-only-{size}"
        else:
            base = sanitize_name(model) or "model"
            name = base if shapes_of[model] == 1 else f"{base}-{gpus}gpu-{size}"
        unique, suffix = name, 2
        while unique in taken:  # two shapes alike after rounding, or two models alike in lower case
            unique, suffix = f"{name}-{suffix}", suffix + 1
        name = unique
        taken.add(name)
        known = catalog.resolve(model) if model else None
        if model and known is None and model not in unknown:
            unknown.append(model)
        pools.append(
            OpenbPool(
                name=name,
                model=model,
                accelerator=None if known is None else known.slug,
                gpus_per_node=gpus,
                cpu_milli=cpu,
                memory_mib=memory,
                nodes=count,
                first_line=first_line,
            )
        )
    return OpenbNodes(source, tuple(pools), tuple(unknown), dict(by_model))


def _node_rows(reader: Any, source: str) -> Iterator[dict[str, str]]:
    for row in reader:
        if None in row:
            raise ValidationError(
                "more fields than the header", path="row", source=source, line=reader.line_num
            )
        yield row
