"""Pod placement constraints of a pod set, with Kubernetes semantics (k8s.io/api/core/v1).

They are what Kueue's flavor assigner reads from a pod template to decide which ResourceFlavors
may serve it (kubernetes-sigs/kueue pkg/scheduler/flavorassigner/flavorassigner.go,
``checkFlavorForPodSets``), and what the in-memory cluster backend checks against node taints and
labels: tolerations, node selectors and required node affinity.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import (
    AliasChoices,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    WithJsonSchema,
    model_validator,
)

TAINT_EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")


def tolerates_taint(key: str, operator: str, value: str, effect: str, taint: Mapping[str, Any]) -> bool:
    """Kubernetes ``Toleration.ToleratesTaint`` (k8s.io/api/core/v1 toleration.go).

    An empty effect matches every effect; an empty key (only with ``Exists``) matches every key;
    ``Exists`` ignores the value; ``Equal`` (the default operator) needs the same value.
    """
    if effect and effect != taint.get("effect"):
        return False
    if key and key != taint.get("key"):
        return False
    if operator == "Exists":
        return True
    return operator in ("", "Equal") and value == (taint.get("value") or "")


class Toleration(BaseModel):
    """A pod set's toleration (Kubernetes ``core/v1 Toleration``; ``tolerationSeconds`` is also
    accepted under its Kubernetes name). Validated as the API server does: an empty key needs
    ``operator: Exists``, ``Exists`` takes no value, ``toleration_seconds`` needs ``NoExecute``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    key: str = ""
    operator: Literal["Equal", "Exists"] = "Equal"
    value: str = ""
    effect: Literal["", "NoSchedule", "PreferNoSchedule", "NoExecute"] = ""
    toleration_seconds: int | None = Field(
        default=None, validation_alias=AliasChoices("toleration_seconds", "tolerationSeconds")
    )

    @model_validator(mode="after")
    def _kubernetes_rules(self) -> Toleration:
        if not self.key and self.operator != "Exists":
            raise ValueError("operator must be Exists when key is empty (match all keys and values)")
        if self.operator == "Exists" and self.value:
            raise ValueError("value must be empty when operator is Exists")
        if self.toleration_seconds is not None and self.effect != "NoExecute":
            raise ValueError("toleration_seconds needs effect NoExecute")
        return self

    def tolerates(self, taint: Mapping[str, Any]) -> bool:
        """Whether this toleration tolerates ``taint`` (a mapping with key, value, effect)."""
        return tolerates_taint(self.key, self.operator, self.value, self.effect, taint)


#: The set-based operators node selectors share with label selectors (``matchExpressions``).
SET_OPERATORS = frozenset({"In", "NotIn", "Exists", "DoesNotExist"})


def set_requirement_matches(operator: str, values: tuple[str, ...], value: str | None) -> bool:
    """Kubernetes semantics of a set-based requirement, given the label's value (None: absent)."""
    if operator == "In":
        return value is not None and value in values
    if operator == "NotIn":
        return value is None or value not in values
    if operator == "Exists":
        return value is not None
    return value is None  # DoesNotExist


class NodeSelectorRequirement(BaseModel):
    """One ``matchExpressions`` entry of a required node affinity term (Kubernetes
    ``NodeSelectorRequirement``): ``In``/``NotIn`` need values, ``Exists``/``DoesNotExist`` take
    none, ``Gt``/``Lt`` exactly one integer (compared with the label's value as an integer)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    key: str = Field(min_length=1)
    operator: Literal["In", "NotIn", "Exists", "DoesNotExist", "Gt", "Lt"]
    values: tuple[str, ...] = ()

    @model_validator(mode="after")
    def _values_fit_operator(self) -> NodeSelectorRequirement:
        op, values = self.operator, self.values
        if op in ("In", "NotIn") and not values:
            raise ValueError(f"operator {op} needs at least one value")
        if op in ("Exists", "DoesNotExist") and values:
            raise ValueError(f"operator {op} takes no values")
        if op in ("Gt", "Lt"):
            if len(values) != 1:
                raise ValueError(f"operator {op} needs exactly one value")
            try:
                int(values[0])
            except ValueError:
                raise ValueError(f"operator {op} needs an integer value, got {values[0]!r}") from None
        return self

    def matches(self, labels: Mapping[str, str]) -> bool:
        """Kubernetes label-selector semantics for this requirement on ``labels``."""
        op = self.operator
        value = labels.get(self.key)
        if op in SET_OPERATORS:
            return set_requirement_matches(op, self.values, value)
        if value is None:
            return False
        try:
            actual = int(value)
        except ValueError:
            return False
        bound = int(self.values[0])
        return actual > bound if op == "Gt" else actual < bound


class NodeSelectorTerm(BaseModel):
    """A term of ``requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms``: its
    expressions are ANDed (``matchExpressions`` is accepted as the Kubernetes spelling)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    match_expressions: tuple[NodeSelectorRequirement, ...] = Field(
        default=(), validation_alias=AliasChoices("match_expressions", "matchExpressions")
    )


def _label_pairs(value: object) -> object:
    """A node selector given as a mapping, kept as sorted (key, value) pairs (hashable: a request
    is a dictionary key of the pending queues)."""
    if isinstance(value, Mapping):
        for key in value:
            if not isinstance(key, str) or not key:
                raise ValueError(f"node selector keys are non-empty strings, got {key!r}")
        return tuple(sorted((key, str(v)) for key, v in value.items()))
    return value


NodeSelector = Annotated[
    tuple[tuple[str, str], ...],
    BeforeValidator(_label_pairs),
    PlainSerializer(dict),
    WithJsonSchema({"type": "object", "additionalProperties": {"type": "string"}}),
]
