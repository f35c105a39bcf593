"""A dense transformer's shape, given or assumed from its parameter count.

Activation memory (training) and the KV cache (serving) depend on the shape, not only on the
parameter count: a 70B model with grouped-query attention (Llama-2-70B: 80 layers, hidden 8192,
64 heads, 8 KV heads) caches an eighth of the KV bytes of the same model with full multi-head
attention. When the user gives no shape, one is *assumed* from the parameter count so that an
estimate exists at all, and the assumption is reported (``assumed=True``) so the output can say so.

The assumption inverts the standard count ``N ≈ 12 · layers · hidden²`` (attention 4h² plus an
MLP of 8h² per layer, Kaplan et al. 2020, "Scaling Laws for Neural Language Models", §2.1) with
``hidden = 128 · layers`` (GPT-3 and Llama-2-7B have hidden/layers = 128; Llama-2-70B 102),
128-wide heads and multi-head attention (as many KV heads as heads: the larger, safe KV estimate).
The head count is rounded to a multiple of 8 so that tensor parallelism up to 8 divides it.
"""

from __future__ import annotations

import pydantic
from pydantic import BaseModel, ConfigDict, Field, model_validator

from budcore.domain.errors import ValidationError

_FROZEN = ConfigDict(frozen=True, extra="forbid")

HEAD_DIM = 128
HIDDEN_PER_LAYER = 128


class TransformerShape(BaseModel):
    """Layers, hidden size and attention heads (``kv_heads`` < ``heads`` for grouped-query)."""

    model_config = _FROZEN

    layers: int = Field(ge=1, le=100_000)
    hidden_size: int = Field(ge=1, le=10_000_000)
    heads: int = Field(ge=1, le=100_000)
    kv_heads: int = Field(ge=1, le=100_000)
    assumed: bool = False  # derived from the parameter count, not given

    @model_validator(mode="after")
    def _check(self) -> TransformerShape:
        if self.hidden_size % self.heads:
            raise ValueError(f"hidden size {self.hidden_size} is not a multiple of {self.heads} heads")
        if self.heads % self.kv_heads:
            raise ValueError(f"{self.heads} heads are not a multiple of {self.kv_heads} KV heads")
        return self

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.heads

    def describe(self) -> str:
        kv = f", {self.kv_heads} KV heads" if self.kv_heads != self.heads else ""
        return f"{self.layers} layers, hidden {self.hidden_size}, {self.heads} heads{kv}"


def assumed_shape(params: float) -> TransformerShape:
    """A plausible shape for ``params`` parameters (see the module docstring for the rule)."""
    if not params > 0:
        raise ValidationError("must be positive", path="params")
    hidden = (params * HIDDEN_PER_LAYER / 12) ** (1 / 3)
    heads = max(8, round(hidden / HEAD_DIM / 8) * 8)
    hidden_size = heads * HEAD_DIM
    layers = max(1, round(params / (12 * hidden_size**2)))
    return TransformerShape(layers=layers, hidden_size=hidden_size, heads=heads, kv_heads=heads, assumed=True)


def resolve_shape(
    params: float,
    *,
    layers: int | None = None,
    hidden_size: int | None = None,
    heads: int | None = None,
    kv_heads: int | None = None,
) -> TransformerShape:
    """The given shape, with any figure left out taken from :func:`assumed_shape`.

    Given figures win; the result is ``assumed`` when any figure had to be assumed. A given hidden
    size without heads gets 128-wide heads; a given head count without KV heads gets as many KV
    heads (multi-head attention).
    """
    base = assumed_shape(params)
    chosen_hidden = hidden_size if hidden_size is not None else base.hidden_size
    chosen_heads = heads if heads is not None else max(1, chosen_hidden // HEAD_DIM)
    if heads is None and hidden_size is not None and chosen_hidden % chosen_heads:
        chosen_heads = base.heads if chosen_hidden % base.heads == 0 else 1
    chosen_layers = layers if layers is not None else max(1, round(params / (12 * chosen_hidden**2)))
    fields = {
        "layers": chosen_layers,
        "hidden_size": chosen_hidden,
        "heads": chosen_heads,
        "kv_heads": kv_heads if kv_heads is not None else chosen_heads,
        "assumed": None in (layers, hidden_size, heads, kv_heads),
    }
    try:
        return TransformerShape.model_validate(fields)
    except pydantic.ValidationError as exc:  # one line: the first problem is the one to fix
        message = str(exc.errors()[0]["msg"]).removeprefix("Value error, ")
        raise ValidationError(message, path="shape") from None
