"""Multi-node training layouts: data × tensor × pipeline parallel sizes over whole nodes.

A 70B training run does not fit one node and would take years on one anyway; the question a
planner asks is "how many nodes of which kind, laid out how, to finish by when, for how much".
This module answers it for one node shape (an accelerator and its GPUs per node) at a time, purely
(no I/O): it enumerates layouts, estimates memory per GPU and time for each, and picks one.

**Layouts.** ``gpus = dp × tp × pp``. Tensor parallelism (tp, a power of two dividing the head
count) stays inside a node, where the fast interconnect is; pipeline stages (pp) and data-parallel
replicas (dp) take the rest. Up to one node any power-of-two GPU count is a candidate; beyond one
node only whole nodes are (a job is placed on whole nodes; a half-used node is paid for anyway):
every count up to 16 nodes, then eight per doubling.

**Memory per GPU** (bytes), broken down as the output shows it:

* weights and gradients: ``w`` bytes per parameter each (2 for bf16/fp16; fp8 training keeps bf16
  weights and gradients), sharded over tp × pp;
* optimizer states: ``k`` bytes per parameter (Adam in mixed precision keeps an fp32 master copy,
  momentum and variance: the ZeRO paper's ``2 + 2 + K`` with ``K = 12``, Rajbhandari et al. 2020,
  §3.1), sharded over tp × pp;
* ZeRO stage 1/2/3 additionally shards optimizer states / + gradients / + weights over dp;
* activations of the first pipeline stage under 1F1B with sequence parallelism (Korthikanti et al.
  2022, "Reducing Activation Recomputation in Large Transformer Models", §4): one layer holds
  ``s·b·h·(34 + 5·a·s/h) / tp`` bytes; the first stage keeps ``pp`` micro-batches of ``L / pp``
  layers in flight, so ``L`` layers' worth in total. Selective recomputation keeps ``s·b·h·34 /
  tp`` per layer; full recomputation only each layer's input, ``2·s·b·h / tp``, plus one layer's
  full activations while it is recomputed. Embeddings and the loss are left out (small next to
  ``L`` layers). ``auto`` (the default) takes, per layout, the first of none, selective and full
  that fits — what a practitioner does, since recomputation costs time.

A layout fits when the total is at most ``memory × gpu_memory_utilization`` (0.9 by default: the
CUDA context, NCCL buffers and fragmentation take the rest).

**Time.** ``6 · N · tokens / (gpus × peak × MFU)`` (forward 2, backward 4 FLOPs per parameter and
token, Kaplan et al. 2020) with the per-architecture MFU of :mod:`budcore.hardware.estimate`; full
recomputation runs the forward pass twice (× 4/3). On top, with nothing overlapped (an upper
bound; real frameworks hide part of it):

* the pipeline bubble, ``(pp − 1) / m`` of the compute for ``m`` micro-batches per pipeline per
  step (Narayanan et al. 2021, "Efficient Large-Scale Language Model Training on GPU Clusters
  Using Megatron-LM", §2.2);
* communication per step at ring all-reduce cost ``2 (n − 1) / n × bytes / bandwidth``: tensor
  parallel all-reduces of ``s·b·h`` activations, four per layer per micro-batch (Megatron-LM); the
  data-parallel gradient all-reduce of the GPU's gradient shard (× 1.5 for ZeRO-3's extra weight
  all-gather, ZeRO paper §7.2); pipeline sends of ``s·b·h`` activations and gradients between stages.
  Inside a node the bandwidth is half the catalog's bidirectional interconnect figure (or PCIe when
  the group is larger than the NVLink domain); between nodes ``network_gbs`` per GPU (default 50
  GB/s: one 400 Gb/s InfiniBand NDR or RoCE port per GPU, as in a DGX H100).

Steps are ``tokens / (global_batch × s)``; ``dp × micro_batch`` may not exceed the global batch,
which is what bounds how far data parallelism can usefully scale.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from budcore.domain.errors import ValidationError
from budcore.hardware.catalog import Accelerator
from budcore.hardware.estimate import (
    DEFAULT_GPU_MEMORY_UTILIZATION,
    GIB,
    TERA,
    MfuTable,
)
from budcore.hardware.shape import TransformerShape

_FROZEN = ConfigDict(frozen=True, extra="forbid")

#: Bytes per parameter of weights and of gradients for each training precision.
TRAIN_DTYPE_BYTES: Mapping[str, float] = {"bf16": 2.0, "fp16": 2.0, "fp8": 2.0}
#: Optimizer-state bytes per parameter: Adam (fp32 master, momentum, variance: ZeRO's K = 12),
#: 8-bit Adam (fp32 master + two 1-byte moments, Dettmers et al. 2022), SGD with momentum (fp32
#: master + momentum).
OPTIMIZER_BYTES: Mapping[str, float] = {"adam": 12.0, "adam-8bit": 6.0, "sgd": 8.0}
Recompute = Literal["auto", "full", "selective", "none"]
#: The order ``auto`` tries recomputation modes in: cheapest in time first.
AUTO_RECOMPUTE: tuple[Recompute, ...] = ("none", "selective", "full")
#: Compute multiplier of each recomputation mode (full: the forward pass runs twice, 8NT not 6NT).
RECOMPUTE_FACTOR: Mapping[str, float] = {"full": 4 / 3, "selective": 1.0, "none": 1.0}
DEFAULT_NETWORK_GBS = 50.0  # per GPU between nodes: one 400 Gb/s port per GPU
PCIE_GBS = 32.0  # per direction, PCIe 4.0 x16: GPUs beyond the NVLink domain talk over it
DEFAULT_GLOBAL_BATCH_TOKENS = 4 * 2**20  # Llama 2's 4M-token batch (Touvron et al. 2023, §2.2)
ACTIVATION_BYTES = 2.0  # activations are kept in 16-bit


class TrainingJob(BaseModel):
    """What to train: size, data, batch and the memory-saving choices."""

    model_config = _FROZEN

    params: float = Field(gt=0, le=1e16, allow_inf_nan=False)
    tokens: float = Field(gt=0, le=1e18, allow_inf_nan=False)
    shape: TransformerShape
    dtype: Literal["bf16", "fp16", "fp8"] = "bf16"
    optimizer: Literal["adam", "adam-8bit", "sgd"] = "adam"
    zero_stage: int = Field(default=1, ge=0, le=3)
    recompute: Recompute = "auto"
    seq_len: int = Field(default=4096, ge=1, le=10_000_000)
    micro_batch: int = Field(default=1, ge=1, le=100_000)
    global_batch: int | None = Field(default=None, ge=1, le=100_000_000)  # sequences; None: 4M tokens

    @model_validator(mode="after")
    def _batch_holds_a_micro_batch(self) -> TrainingJob:
        if self.global_sequences < self.micro_batch:
            raise ValueError(
                f"global batch of {self.global_sequences} sequences is smaller than one micro-batch "
                f"({self.micro_batch})"
            )
        return self

    @property
    def global_sequences(self) -> int:
        if self.global_batch is not None:
            return self.global_batch
        return max(1, DEFAULT_GLOBAL_BATCH_TOKENS // self.seq_len)

    @property
    def steps(self) -> float:
        return self.tokens / (self.global_sequences * self.seq_len)


class Layout(BaseModel):
    """``dp × tp × pp`` GPUs on ``nodes`` nodes."""

    model_config = _FROZEN

    dp: int = Field(ge=1)
    tp: int = Field(ge=1)
    pp: int = Field(ge=1)
    nodes: int = Field(default=1, ge=1)

    @property
    def gpus(self) -> int:
        return self.dp * self.tp * self.pp

    def describe(self) -> str:
        return f"dp{self.dp}×tp{self.tp}×pp{self.pp}"


class MemoryBreakdown(BaseModel):
    """Bytes per GPU by kind (the first pipeline stage's, which holds the most activations)."""

    model_config = _FROZEN

    weights: float
    gradients: float
    optimizer: float
    activations: float

    @property
    def total(self) -> float:
        return self.weights + self.gradients + self.optimizer + self.activations


class TrainingPlan(BaseModel):
    """One layout on one node shape with its memory, time and cost figures."""

    model_config = _FROZEN

    accelerator: str
    gpus_per_node: int
    layout: Layout
    memory: MemoryBreakdown
    usable_bytes: float  # per GPU
    recompute: Recompute  # the mode this plan uses (never "auto")
    compute_seconds: float  # 6NT (× recompute) at peak × MFU, no bubble
    bubble_fraction: float
    communication_seconds: float
    mfu: float

    @property
    def seconds(self) -> float:
        return self.compute_seconds * (1 + self.bubble_fraction) + self.communication_seconds

    @property
    def fits(self) -> bool:
        return self.memory.total <= self.usable_bytes


def memory_per_gpu(job: TrainingJob, layout: Layout) -> MemoryBreakdown:
    """Weights, gradients, optimizer states and activations on one GPU (module docstring)."""
    shards = layout.tp * layout.pp
    dp = layout.dp
    w = TRAIN_DTYPE_BYTES[job.dtype]
    weights = job.params * w / shards / (dp if job.zero_stage >= 3 else 1)
    gradients = job.params * w / shards / (dp if job.zero_stage >= 2 else 1)
    optimizer = job.params * OPTIMIZER_BYTES[job.optimizer] / shards / (dp if job.zero_stage >= 1 else 1)
    return MemoryBreakdown(
        weights=weights,
        gradients=gradients,
        optimizer=optimizer,
        activations=activation_bytes(job, layout),
    )


def _microbatches(job: TrainingJob, layout: Layout) -> float:
    return job.global_sequences / (layout.dp * job.micro_batch)


def activation_bytes(job: TrainingJob, layout: Layout) -> float:
    """Korthikanti et al. 2022 activation memory on the first pipeline stage (module docstring).

    ``auto`` counts as full recomputation here (the least memory); :func:`plan_layout` resolves
    it per layout.
    """
    s, b, h = job.seq_len, job.micro_batch, job.shape.hidden_size
    a, layers, tp = job.shape.heads, job.shape.layers, layout.tp
    full_layer = s * b * h * (34 + 5 * a * s / h) / tp
    # 1F1B: the first stage holds min(pp, m) micro-batches of L/pp layers.
    in_flight = min(layout.pp, max(1.0, _microbatches(job, layout)))
    held_layers = layers / layout.pp * in_flight
    if job.recompute == "none":
        return held_layers * full_layer
    if job.recompute == "selective":
        return held_layers * s * b * h * 34 / tp
    return held_layers * ACTIVATION_BYTES * s * b * h / tp + full_layer


def _ring(n: int, size: float, bandwidth_gbs: float) -> float:
    """Seconds for a ring all-reduce of ``size`` bytes among ``n`` GPUs."""
    if n <= 1:
        return 0.0
    return 2 * (n - 1) / n * size / (bandwidth_gbs * 1e9)


def intra_node_gbs(accel: Accelerator, group: int) -> float:
    """Per-direction GB/s among ``group`` GPUs of one node (NVLink domain, else PCIe)."""
    link = accel.interconnect
    per_direction = link.bandwidth_gbs / 2 if link.bandwidth_gbs is not None else PCIE_GBS
    if group <= link.domain_size:
        return per_direction
    return min(per_direction, PCIE_GBS)


def communication_seconds(
    job: TrainingJob,
    layout: Layout,
    accel: Accelerator,
    gpus_per_node: int,
    network_gbs: float = DEFAULT_NETWORK_GBS,
) -> float:
    """Tensor-, data- and pipeline-parallel communication over the whole run (module docstring)."""
    if not 0 < network_gbs < math.inf:
        raise ValidationError(f"must be a positive bandwidth, got {network_gbs}", path="network_gbs")
    s, b, h = job.seq_len, job.micro_batch, job.shape.hidden_size
    activation = s * b * h * ACTIVATION_BYTES
    m = _microbatches(job, layout)
    layers_per_stage = job.shape.layers / layout.pp
    tp_step = m * layers_per_stage * 4 * _ring(layout.tp, activation, intra_node_gbs(accel, layout.tp))
    # Ranks are ordered tp, dp, pp (Megatron-LM): dp leaves the node when tp × dp exceeds it.
    dp_gbs = network_gbs if layout.tp * layout.dp > gpus_per_node else intra_node_gbs(accel, layout.dp)
    gradient_shard = job.params * TRAIN_DTYPE_BYTES[job.dtype] / (layout.tp * layout.pp)
    dp_step = _ring(layout.dp, gradient_shard, dp_gbs) * (1.5 if job.zero_stage >= 3 else 1.0)
    pp_gbs = network_gbs if layout.nodes > 1 else intra_node_gbs(accel, layout.gpus)
    pp_step = 0.0 if layout.pp == 1 else 2 * m * activation / (pp_gbs * 1e9)
    return job.steps * (tp_step + dp_step + pp_step)


def plan_layout(
    job: TrainingJob,
    accel: Accelerator,
    gpus_per_node: int,
    layout: Layout,
    *,
    mfu: MfuTable | None = None,
    gpu_memory_utilization: float = DEFAULT_GPU_MEMORY_UTILIZATION,
    network_gbs: float = DEFAULT_NETWORK_GBS,
) -> TrainingPlan | None:
    """Memory and time of ``layout``; ``None`` when the catalog has no peak for the precision.

    With ``recompute="auto"``, the plan of the first mode in :data:`AUTO_RECOMPUTE` that fits
    (full recomputation's when none does).
    """
    if job.recompute == "auto":
        plan: TrainingPlan | None = None
        for mode in AUTO_RECOMPUTE:
            plan = plan_layout(
                job.model_copy(update={"recompute": mode}),
                accel,
                gpus_per_node,
                layout,
                mfu=mfu,
                gpu_memory_utilization=gpu_memory_utilization,
                network_gbs=network_gbs,
            )
            if plan is None or plan.fits:
                return plan
        return plan
    peak = accel.device_peak_tflops(job.dtype)
    if peak is None:
        return None
    utilisation = (mfu or MfuTable()).mfu(accel)
    flops = 6.0 * job.params * job.tokens * RECOMPUTE_FACTOR[job.recompute]
    m = _microbatches(job, layout)
    return TrainingPlan(
        accelerator=accel.slug,
        gpus_per_node=gpus_per_node,
        layout=layout,
        memory=memory_per_gpu(job, layout),
        recompute=job.recompute,
        usable_bytes=accel.device_memory_gib * GIB * gpu_memory_utilization,
        compute_seconds=flops / (layout.gpus * peak * TERA * utilisation),
        bubble_fraction=(layout.pp - 1) / m,
        communication_seconds=communication_seconds(job, layout, accel, gpus_per_node, network_gbs),
        mfu=utilisation,
    )


def node_counts(max_nodes: int) -> list[int]:
    """Every node count up to 16, then eight per doubling (18, 20, … 30, 32, 36, …), and ``max_nodes``.

    Planning time grows with the counts tried; eight per doubling keeps a 4096-node search to
    about 80 counts, and a deadline's "fewest nodes that meet it" at most 12.5% above the exact
    fewest.
    """
    counts = [n for n in range(1, max_nodes + 1) if n <= 16 or n % 2 ** (n.bit_length() - 4) == 0]
    return counts if counts[-1] == max_nodes else [*counts, max_nodes]


def gpu_counts(gpus_per_node: int, max_nodes: int) -> list[int]:
    """Candidate GPU counts: powers of two up to one node, then whole nodes (:func:`node_counts`)."""
    counts = []
    count = 1
    while count < gpus_per_node:
        counts.append(count)
        count *= 2
    return counts + [gpus_per_node * n for n in node_counts(max_nodes)]


def layouts(job: TrainingJob, gpus: int, gpus_per_node: int) -> Iterator[Layout]:
    """Every ``dp × tp × pp = gpus`` layout the rules allow (module docstring).

    tp is a power of two, at most one node and dividing the head count; pp divides what tp leaves
    and is at most the layer count; ``dp × micro_batch`` fits in the global batch.
    """
    nodes = max(1, math.ceil(gpus / gpus_per_node))
    tp = 1
    while tp <= min(gpus, gpus_per_node):
        if gpus % tp == 0 and job.shape.heads % tp == 0:
            rest = gpus // tp
            for pp in range(1, min(rest, job.shape.layers) + 1):
                dp = rest // pp
                if rest % pp == 0 and dp * job.micro_batch <= job.global_sequences:
                    yield Layout(dp=dp, tp=tp, pp=pp, nodes=nodes)
        tp *= 2


def check_gpu_count(gpus: int, gpus_per_node: int) -> None:
    """A fixed GPU count must be at most one node or whole nodes."""
    if gpus > gpus_per_node and gpus % gpus_per_node:
        raise ValidationError(
            f"{gpus} GPUs is not a whole number of {gpus_per_node}-GPU nodes; "
            f"use a multiple of {gpus_per_node} or at most {gpus_per_node}",
            path="--gpus",
        )


def best_plan(
    job: TrainingJob,
    accel: Accelerator,
    gpus_per_node: int,
    *,
    max_nodes: int,
    gpus: int | None = None,
    deadline_seconds: float | None = None,
    mfu: MfuTable | None = None,
    gpu_memory_utilization: float = DEFAULT_GPU_MEMORY_UTILIZATION,
    network_gbs: float = DEFAULT_NETWORK_GBS,
) -> tuple[TrainingPlan | None, TrainingPlan | None]:
    """(the chosen plan, the fitting-or-not plan with the least memory per GPU).

    Among layouts that fit: with ``deadline_seconds``, the cheapest that meets it (least GPU-time,
    ``gpus × seconds``: one price per GPU-hour within a node shape), then the fastest; with none
    meeting it, or no deadline, the fastest (then the cheapest). ``gpus`` fixes the count. The
    second plan, the most frugal one, lets the caller say how far from fitting the model is.
    ``(None, None)`` when the catalog has no peak figure for the precision.
    """
    counts = [gpus] if gpus is not None else gpu_counts(gpus_per_node, max_nodes)
    fitting: list[TrainingPlan] = []
    frugal: TrainingPlan | None = None
    for count in counts:
        for layout in layouts(job, count, gpus_per_node):
            plan = plan_layout(
                job,
                accel,
                gpus_per_node,
                layout,
                mfu=mfu,
                gpu_memory_utilization=gpu_memory_utilization,
                network_gbs=network_gbs,
            )
            if plan is None:
                return None, None
            if frugal is None or plan.memory.total < frugal.memory.total:
                frugal = plan
            if plan.fits:
                fitting.append(plan)
    if not fitting:
        return None, frugal
    if deadline_seconds is not None:
        meeting = [p for p in fitting if p.seconds <= deadline_seconds]
        if meeting:
            return min(meeting, key=lambda p: (p.layout.gpus * p.seconds, p.seconds)), frugal
    return min(fitting, key=lambda p: (p.seconds, p.layout.gpus * p.seconds)), frugal
