"""Memory, time and throughput estimates for a model on an accelerator.

These are the first-order formulas that decide *whether* something fits and *roughly* how long it
takes, so that a recommendation can rank hardware before anything runs:

* Serving memory: weights (parameters × bytes per parameter) + KV cache (batch × sequence ×
  layers × 2 × kv-heads × head-dim × bytes) + an overhead fraction (CUDA context, activations,
  fragmentation). vLLM-style ``gpu_memory_utilization`` (0.1–0.95, default 0.9) caps what each
  device may use.
* Training memory (mixed precision, Adam): bf16 weights and gradients, fp32 master weights and two
  Adam moments (16 bytes per trainable parameter in total), plus activations (stored layer inputs
  only with activation checkpointing, the Korthikanti et al. 2022 estimate without).
* Parallelism: tensor parallel degree divides the GPU count, TP × PP ≤ GPUs; weights and optimizer
  state shard over TP × PP.
* Training time: ``6 × parameters × tokens / (GPUs × peak FLOP/s × MFU)`` with a per-architecture
  default MFU (model FLOPs utilisation) and a calibration hook that fits MFU from observed runs.
* Decode throughput is bounded by memory bandwidth: every generated token reads all weights (and
  the KV cache) once per batch step.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from statistics import median

from pydantic import BaseModel, ConfigDict, Field, model_validator

from budcore.domain.errors import ValidationError
from budcore.hardware.catalog import Accelerator

_FROZEN = ConfigDict(frozen=True, extra="forbid")

GIB = 2**30
TERA = 10**12

DTYPE_BYTES: Mapping[str, float] = {
    "fp32": 4.0,
    "tf32": 4.0,
    "bf16": 2.0,
    "fp16": 2.0,
    "fp8": 1.0,
    "int8": 1.0,
    "int4": 0.5,
}

DEFAULT_GPU_MEMORY_UTILIZATION = 0.9
MIN_GPU_MEMORY_UTILIZATION = 0.1
MAX_GPU_MEMORY_UTILIZATION = 0.95

# Default model-FLOPs utilisation per architecture for dense transformer training in bf16/fp16.
# Ampere 0.47, Hopper 0.38 and Volta 0.33 are the values implied by the design's GPT-2 1.5B
# recommendation table (A100 5.3 h, H200 2.1 h, V100 18.7 h for 3 epochs of 100k × 1024-token
# samples; see tests/hardware/test_recommend.py) and sit inside published ranges (A100 GPT
# training 40-55 %; Hopper lower for a model too small to saturate it). The rest are conservative
# round figures; calibrate with :func:`calibrate_mfu` from your own runs.
DEFAULT_MFU: Mapping[str, float] = {
    "volta": 0.33,
    "turing": 0.30,
    "ampere": 0.47,
    "ada-lovelace": 0.40,
    "hopper": 0.38,
    "blackwell": 0.35,
    "cdna2": 0.30,
    "cdna3": 0.35,
    "gaudi2": 0.40,
    "gaudi3": 0.40,
    "xe-hpc": 0.30,
}
FALLBACK_MFU = 0.30


def dtype_bytes(dtype: str, field: str = "dtype") -> float:
    try:
        return DTYPE_BYTES[dtype.lower()]
    except KeyError:
        raise ValidationError(
            f"unknown dtype {dtype!r}; expected one of {', '.join(DTYPE_BYTES)}", path=field
        ) from None


def _finite(value: float, path: str, what: str) -> None:
    """Finite figures in, finite estimates out: a product that overflows is the input's fault."""
    if not math.isfinite(value):
        raise ValidationError(f"too large: {what} overflows", path=path)


class ModelShape(BaseModel):
    """Transformer shape figures the KV-cache and activation estimates need (all optional)."""

    model_config = _FROZEN

    layers: int | None = Field(default=None, ge=1)
    hidden_size: int | None = Field(default=None, ge=1)
    kv_heads: int | None = Field(default=None, ge=1)
    head_dim: int | None = Field(default=None, ge=1)


class ServingSpec(BaseModel):
    """A model to serve: parameters, dtype, and the batch × context the KV cache must hold."""

    model_config = _FROZEN

    params: float = Field(gt=0, allow_inf_nan=False)
    dtype: str = "bf16"
    kv_dtype: str | None = None  # default: same as dtype
    shape: ModelShape = Field(default_factory=ModelShape)
    batch: int = Field(default=1, ge=1)
    seq_len: int = Field(default=4096, ge=1)
    overhead_fraction: float = Field(default=0.1, ge=0, le=10, allow_inf_nan=False)

    @model_validator(mode="after")
    def _known_dtypes(self) -> ServingSpec:
        dtype_bytes(self.dtype)
        if self.kv_dtype is not None:
            dtype_bytes(self.kv_dtype, "kv_dtype")
        _finite(self.total_bytes, "params", "the memory estimate")
        return self

    @property
    def weight_bytes(self) -> float:
        return self.params * dtype_bytes(self.dtype)

    @property
    def kv_cache_bytes(self) -> float | None:
        """batch × seq × layers × 2 (K and V) × kv-heads × head-dim × bytes; None if shape unknown."""
        s = self.shape
        if s.layers is None or s.kv_heads is None or s.head_dim is None:
            return None
        kv = dtype_bytes(self.kv_dtype or self.dtype)
        return self.batch * self.seq_len * s.layers * 2 * s.kv_heads * s.head_dim * kv

    @property
    def total_bytes(self) -> float:
        return (self.weight_bytes + (self.kv_cache_bytes or 0.0)) * (1 + self.overhead_fraction)


class TrainingSpec(BaseModel):
    """A model to train (mixed precision, Adam unless ``optimizer_bytes`` says otherwise)."""

    model_config = _FROZEN

    params: float = Field(gt=0, allow_inf_nan=False)
    tokens: float = Field(gt=0, allow_inf_nan=False)
    dtype: str = "bf16"
    # e.g. LoRA adapters; None: all
    trainable_params: float | None = Field(default=None, gt=0, allow_inf_nan=False)
    # fp32 master + Adam m + v per trainable param
    optimizer_bytes: float = Field(default=12.0, ge=0, allow_inf_nan=False)
    shape: ModelShape = Field(default_factory=ModelShape)
    micro_batch: int = Field(default=1, ge=1)
    seq_len: int = Field(default=2048, ge=1)
    activation_checkpointing: bool = True

    @model_validator(mode="after")
    def _check(self) -> TrainingSpec:
        dtype_bytes(self.dtype)
        if self.trainable_params is not None and self.trainable_params > self.params:
            raise ValueError("trainable_params cannot exceed params")
        _finite(self.state_bytes, "params", "the memory estimate")
        _finite(self.flops, "tokens", "params × tokens (the FLOP count)")
        return self

    @property
    def trainable(self) -> float:
        return self.trainable_params if self.trainable_params is not None else self.params

    @property
    def state_bytes(self) -> float:
        """Weights + gradients + optimizer state (shardable over TP × PP)."""
        b = dtype_bytes(self.dtype)
        return self.params * b + self.trainable * (b + self.optimizer_bytes)

    @property
    def activation_bytes(self) -> float | None:
        """Per micro-batch; None when the shape (layers, hidden size) is unknown."""
        s = self.shape
        if s.layers is None or s.hidden_size is None:
            return None
        per_layer = 2.0 if self.activation_checkpointing else 34.0  # bytes per token per hidden unit
        return self.micro_batch * self.seq_len * s.hidden_size * s.layers * per_layer

    @property
    def flops(self) -> float:
        """Total training FLOPs: 6 × parameters × tokens (forward 2, backward 4)."""
        return 6.0 * self.params * self.tokens


class Parallelism(BaseModel):
    """How a workload spreads over GPUs, with the constraints serving engines impose."""

    model_config = _FROZEN

    gpus: int = Field(ge=1)
    tensor_parallel: int = Field(default=1, ge=1)
    pipeline_parallel: int = Field(default=1, ge=1)
    gpu_memory_utilization: float = DEFAULT_GPU_MEMORY_UTILIZATION

    @model_validator(mode="after")
    def _constraints(self) -> Parallelism:
        if not MIN_GPU_MEMORY_UTILIZATION <= self.gpu_memory_utilization <= MAX_GPU_MEMORY_UTILIZATION:
            raise ValueError(
                f"gpu_memory_utilization {self.gpu_memory_utilization} must be within "
                f"[{MIN_GPU_MEMORY_UTILIZATION}, {MAX_GPU_MEMORY_UTILIZATION}]"
            )
        if self.gpus % self.tensor_parallel:
            raise ValueError(f"tensor_parallel {self.tensor_parallel} must divide the GPU count {self.gpus}")
        if self.tensor_parallel * self.pipeline_parallel > self.gpus:
            raise ValueError(
                f"tensor_parallel × pipeline_parallel ({self.tensor_parallel} × {self.pipeline_parallel}) "
                f"must not exceed the GPU count {self.gpus}"
            )
        return self

    @property
    def model_shards(self) -> int:
        return self.tensor_parallel * self.pipeline_parallel


def serving_bytes_per_gpu(spec: ServingSpec, parallel: Parallelism) -> float:
    """Memory each GPU needs: everything sharded over TP × PP (replicas beyond that hold copies)."""
    return spec.total_bytes / parallel.model_shards


def training_bytes_per_gpu(spec: TrainingSpec, parallel: Parallelism) -> float:
    activations = spec.activation_bytes or 0.0
    return spec.state_bytes / parallel.model_shards + activations / parallel.tensor_parallel


def fits(
    bytes_per_gpu: float, device_memory_gib: float, utilization: float = DEFAULT_GPU_MEMORY_UTILIZATION
) -> bool:
    return bytes_per_gpu <= device_memory_gib * GIB * utilization


def min_shards(
    total_bytes: float, device_memory_gib: float, utilization: float = DEFAULT_GPU_MEMORY_UTILIZATION
) -> int:
    """Fewest devices whose usable memory holds ``total_bytes`` (the design's
    ``ceil(required_vram / (gpu_memory × utilization))``)."""
    usable = device_memory_gib * GIB * utilization
    return max(1, math.ceil(total_bytes / usable))


def plan_parallelism(
    shards_needed: int,
    gpus_per_node: int,
    *,
    gpus: int | None = None,
    utilization: float = DEFAULT_GPU_MEMORY_UTILIZATION,
) -> Parallelism | None:
    """A valid layout with at least ``shards_needed`` model shards.

    Tensor parallelism stays inside a node and uses a power of two (attention heads divide by
    it); beyond one node, pipeline stages span nodes. ``gpus`` fixes the total (data-parallel
    replicas fill the rest); ``None`` when no layout fits in ``gpus``.
    """
    if gpus_per_node < 1:
        return None
    tp = 1
    while tp < shards_needed and tp * 2 <= gpus_per_node:
        tp *= 2
    pp = math.ceil(shards_needed / tp)
    total = gpus if gpus is not None else tp * pp
    if total < tp * pp or total % tp:
        return None
    return Parallelism(
        gpus=total, tensor_parallel=tp, pipeline_parallel=pp, gpu_memory_utilization=utilization
    )


class MfuTable(BaseModel):
    """MFU per accelerator slug or architecture: explicit entries, then defaults."""

    model_config = _FROZEN

    values: dict[str, float] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _range(self) -> MfuTable:
        for key, value in self.values.items():
            if not 0 < value <= 1:
                raise ValueError(f"MFU for {key!r} must be in (0, 1], got {value}")
        return self

    def mfu(self, accel: Accelerator) -> float:
        for key in (accel.slug, accel.architecture):
            if key in self.values:
                return self.values[key]
        return DEFAULT_MFU.get(accel.architecture, FALLBACK_MFU)

    def updated(self, values: Mapping[str, float]) -> MfuTable:
        return MfuTable(values={**self.values, **values})


class ObservedRun(BaseModel):
    """A finished training run, for calibrating MFU."""

    model_config = _FROZEN

    accelerator: str  # slug
    params: float = Field(gt=0, allow_inf_nan=False)
    tokens: float = Field(gt=0, allow_inf_nan=False)
    gpus: int = Field(ge=1)
    seconds: float = Field(gt=0, allow_inf_nan=False)
    dtype: str = "bf16"


def implied_mfu(run: ObservedRun, accel: Accelerator) -> float | None:
    """The MFU a run achieved: 6·P·T / (GPUs × peak × seconds)."""
    peak = accel.device_peak_tflops(run.dtype)
    if peak is None:
        return None
    return 6.0 * run.params * run.tokens / (run.gpus * peak * TERA * run.seconds)


def calibrate_mfu(
    runs: Iterable[ObservedRun], catalog_lookup: Mapping[str, Accelerator], table: MfuTable | None = None
) -> MfuTable:
    """Fit MFU from observed runs: the median implied MFU per slug and per architecture.

    Slug entries win over architecture ones in :meth:`MfuTable.mfu`, so a calibrated H200 does
    not drag the H100 default with it unless only architecture-level data exists. Runs on
    unknown accelerators or without a peak figure are skipped. Values are clamped to (0, 1].
    """
    by_key: dict[str, list[float]] = {}
    for run in runs:
        accel = catalog_lookup.get(run.accelerator)
        if accel is None:
            continue
        value = implied_mfu(run, accel)
        if value is None:
            continue
        value = min(value, 1.0)
        by_key.setdefault(accel.slug, []).append(value)
        by_key.setdefault(accel.architecture, []).append(value)
    fitted = {key: median(values) for key, values in by_key.items()}
    return (table or MfuTable()).updated(fitted)


def training_seconds(
    spec: TrainingSpec, accel: Accelerator, gpus: int, mfu: MfuTable | None = None
) -> float | None:
    """``6 × P × T / (GPUs × peak × MFU)``; ``None`` if the catalog has no peak for the dtype."""
    if gpus < 1:
        raise ValidationError("must be at least 1", path="gpus")
    dtype = spec.dtype if spec.dtype in ("fp8", "fp16") else "bf16"
    peak = accel.device_peak_tflops(dtype)
    if peak is None:
        return None
    utilisation = (mfu or MfuTable()).mfu(accel)
    return spec.flops / (gpus * peak * TERA * utilisation)


def decode_tokens_per_second(
    spec: ServingSpec, accel: Accelerator, gpus: int = 1, *, efficiency: float = 1.0
) -> float:
    """Memory-bandwidth bound on decode throughput (tokens/s summed over the batch).

    One decode step reads every weight and the whole KV cache once and yields ``batch`` tokens;
    with ``gpus`` sharding the model, the bandwidths add. ``efficiency`` scales the bound to a
    realistic figure (0.5–0.8 is typical); at 1.0 it is the hard ceiling.
    """
    if not 0 < efficiency <= 1:
        raise ValidationError("must be in (0, 1]", path="efficiency")
    bytes_per_step = spec.weight_bytes + (spec.kv_cache_bytes or 0.0)
    bandwidth = accel.device_bandwidth_gbs * 1e9 * gpus * efficiency
    return spec.batch * bandwidth / bytes_per_step
