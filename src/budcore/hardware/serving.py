"""Serving plans: replicas of a model on one node shape, priced per token at a requested rate.

"Which hardware serves this model at 2,000 tokens/s for the least money?" needs three facts per
accelerator, all computed here purely (no I/O):

* **Precision.** Weights are held and computed in a format the part supports: no bf16 on T4 or
  V100 (fp16 only), fp8 only on Ada, Hopper, Blackwell, CDNA3 and Gaudi
  (:attr:`~budcore.catalog.Accelerator.supported_precisions`). ``int8``/``int4`` are weight-only
  quantisation (GPTQ/AWQ-style: integer weights, fp16/bf16 arithmetic) and need fp16 or bf16.
* **Memory per GPU** of one replica over ``tp`` GPUs of a node: weights (``params × bytes``) plus
  the KV cache for ``batch`` sequences of ``context`` tokens, ``2 · layers · kv_heads · head_dim ·
  context · batch · bytes`` (K and V per layer; Pope et al. 2022, "Efficiently Scaling Transformer
  Inference"; Kwon et al. 2023, "Efficient Memory Management for Large Language Model Serving with
  PagedAttention"), plus 10% overhead, divided by ``tp`` and held to
  ``memory × gpu_memory_utilization``. The smallest power-of-two ``tp`` that fits and divides the
  head count is used: under the bound below a GPU's throughput does not depend on ``tp``, so fewer
  GPUs per replica only buy finer-grained scaling.
* **Throughput** of one replica: decode is memory-bandwidth bound at serving batch sizes — each
  step reads all weights and the batch's KV cache once and yields one token per sequence (Pope et
  al. 2022), so ``tokens/s ≈ batch × tp × bandwidth × efficiency / (weight bytes + KV bytes)``;
  capped by compute at ``2 × params`` FLOPs per token (Kaplan et al. 2020) at ``tp × peak × MFU``
  (the architecture's default MFU of :mod:`budcore.hardware.estimate`).
  ``efficiency`` (default 0.6) is the share of peak bandwidth a serving engine reaches; the KV
  cache is counted full (every sequence at ``context`` tokens), an upper bound on bytes read.

Replicas are ``ceil(requested tokens/s / replica tokens/s)``; the cost per million tokens is the
hourly price of all their GPUs over the tokens served in an hour at the *requested* rate.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from decimal import Decimal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from budcore.hardware.catalog import Accelerator
from budcore.hardware.estimate import DEFAULT_GPU_MEMORY_UTILIZATION, DTYPE_BYTES, GIB, TERA, MfuTable
from budcore.hardware.shape import TransformerShape

_FROZEN = ConfigDict(frozen=True, extra="forbid")

DEFAULT_BANDWIDTH_EFFICIENCY = 0.6
OVERHEAD_FRACTION = 0.1
#: Weight-only quantised formats and the arithmetic formats that can run them.
WEIGHT_ONLY: Mapping[str, tuple[str, ...]] = {"int8": ("fp16", "bf16"), "int4": ("fp16", "bf16")}


class ServingJob(BaseModel):
    """What to serve and at what rate."""

    model_config = _FROZEN

    params: float = Field(gt=0, le=1e16, allow_inf_nan=False)
    shape: TransformerShape
    dtype: str = "bf16"
    kv_dtype: str | None = None  # default: dtype (fp16 for weight-only int formats)
    context: int = Field(default=4096, ge=1, le=100_000_000)
    batch: int = Field(default=16, ge=1, le=1_000_000)
    tokens_per_second: float = Field(gt=0, le=1e12, allow_inf_nan=False)
    bandwidth_efficiency: float = Field(default=DEFAULT_BANDWIDTH_EFFICIENCY, gt=0, le=1)

    @field_validator("dtype", "kv_dtype")
    @classmethod
    def _known_dtype(cls, value: str | None) -> str | None:
        if value is not None and value not in DTYPE_BYTES:
            raise ValueError(f"unknown dtype {value!r}; expected one of {', '.join(DTYPE_BYTES)}")
        return value

    @property
    def weight_bytes(self) -> float:
        return self.params * DTYPE_BYTES[self.dtype]

    @property
    def kv_bytes(self) -> float:
        """``2 · layers · kv_heads · head_dim · context · batch · bytes`` (module docstring)."""
        kv_dtype = self.kv_dtype or ("fp16" if self.dtype in WEIGHT_ONLY else self.dtype)
        s = self.shape
        return 2.0 * s.layers * s.kv_heads * s.head_dim * self.context * self.batch * DTYPE_BYTES[kv_dtype]


def _gib(value: float) -> str:
    return f"{value / GIB:,.1f} GiB" if value < 1024 * GIB else f"{value / GIB / 1024:,.2f} TiB"


def unsupported_precision(accel: Accelerator, *dtypes: str) -> str | None:
    """Why ``accel`` cannot hold weights (or a KV cache) in ``dtypes``, or ``None`` if it can."""
    supported = accel.supported_precisions
    for dtype in dict.fromkeys(dtypes):
        needs = WEIGHT_ONLY.get(dtype, (dtype,))
        if not any(n in supported for n in needs):
            return f"no {dtype} on {accel.short_name} (computes in {', '.join(supported)})"
    return None


class ServingPlan(BaseModel):
    """Replicas of ``tp`` GPUs each, with memory, throughput and cost figures."""

    model_config = _FROZEN

    accelerator: str
    gpus_per_node: int
    tp: int
    replicas: int
    weight_bytes_per_gpu: float
    kv_bytes_per_gpu: float
    overhead_bytes_per_gpu: float
    usable_bytes: float
    replica_tokens_per_second: float
    bound: str  # "memory bandwidth" or "compute"
    gpu_hourly_price: Decimal | None = None

    @property
    def gpus(self) -> int:
        return self.tp * self.replicas

    @property
    def memory_per_gpu(self) -> float:
        return self.weight_bytes_per_gpu + self.kv_bytes_per_gpu + self.overhead_bytes_per_gpu

    @property
    def capacity(self) -> float:
        return self.replicas * self.replica_tokens_per_second

    @property
    def hourly_price(self) -> Decimal | None:
        return None if self.gpu_hourly_price is None else self.gpu_hourly_price * self.gpus

    def cost_per_million_tokens(self, tokens_per_second: float) -> Decimal | None:
        price = self.hourly_price
        if price is None:
            return None
        return price / Decimal(repr(tokens_per_second * 3600)) * 1_000_000


def replica_tokens_per_second(job: ServingJob, accel: Accelerator, tp: int, mfu: float) -> tuple[float, str]:
    """Decode tokens/s of one replica over ``tp`` GPUs and which bound set it."""
    bandwidth = accel.device_bandwidth_gbs * 1e9 * tp * job.bandwidth_efficiency
    memory_bound = job.batch * bandwidth / (job.weight_bytes + job.kv_bytes)
    compute_dtype = "fp8" if job.dtype == "fp8" else "bf16"
    peak = accel.device_peak_tflops(compute_dtype)
    if peak is None:
        return memory_bound, "memory bandwidth"
    compute_bound = tp * peak * TERA * mfu / (2.0 * job.params)
    if compute_bound < memory_bound:
        return compute_bound, "compute"
    return memory_bound, "memory bandwidth"


def plan_serving(
    job: ServingJob,
    accel: Accelerator,
    gpus_per_node: int,
    *,
    gpu_hourly_price: Decimal | None = None,
    mfu: MfuTable | None = None,
    gpu_memory_utilization: float = DEFAULT_GPU_MEMORY_UTILIZATION,
) -> tuple[ServingPlan | None, str]:
    """The plan on ``accel`` with the smallest replica that fits, or why there is none."""
    reason = unsupported_precision(accel, job.dtype, job.kv_dtype or job.dtype)
    if reason is not None:
        return None, reason
    usable = accel.device_memory_gib * GIB * gpu_memory_utilization
    total = (job.weight_bytes + job.kv_bytes) * (1 + OVERHEAD_FRACTION)
    tp = 1
    while tp <= gpus_per_node:
        # vLLM's rule: tp divides the heads; KV heads are split, or replicated when fewer than tp.
        if job.shape.heads % tp == 0 and total / tp <= usable:
            break
        tp *= 2
    else:
        return None, (
            f"needs {_gib(total)} per replica (weights + KV cache + 10%), more than one node's "
            f"{gpus_per_node}× {_gib(usable)} usable (a replica stays within a node)"
        )
    rate, bound = replica_tokens_per_second(job, accel, tp, (mfu or MfuTable()).mfu(accel))
    return (
        ServingPlan(
            accelerator=accel.slug,
            gpus_per_node=gpus_per_node,
            tp=tp,
            replicas=max(1, math.ceil(job.tokens_per_second / rate)),
            weight_bytes_per_gpu=job.weight_bytes / tp,
            kv_bytes_per_gpu=job.kv_bytes / tp,
            overhead_bytes_per_gpu=(job.weight_bytes + job.kv_bytes) * OVERHEAD_FRACTION / tp,
            usable_bytes=usable,
            replica_tokens_per_second=rate,
            bound=bound,
            gpu_hourly_price=gpu_hourly_price,
        ),
        "",
    )
