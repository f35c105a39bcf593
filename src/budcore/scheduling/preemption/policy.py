"""How victims are chosen: :class:`PreemptionPolicy`, with the mode and fair-sharing strategies.

Mirrors the preemption settings Kueue reads from its configuration (``fairSharing.enable``,
``fairSharing.preemptionStrategies``; kubernetes-sigs/kueue ``pkg/scheduler/preemption/
preemption.go``'s ``New`` and ``parseStrategies``, Apache-2.0) plus budcore's own knobs (the
``cost`` mode, its cost model and search limit, the minimum runtime, the grace period). Who may
be a victim is not here: that is each ClusterQueue's ``spec.preemption``.

:class:`~budcore.scheduling.snapshot.PreemptionMode` lives with the decision types (the cycle
reads it too) and :class:`FairSharingStrategy` with the strategies it names
(:mod:`~budcore.scheduling.preemption.fairsharing`); both are re-exported here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta

from budcore.domain.errors import ValidationError
from budcore.ports.preemption_cost import PreemptionCostModel
from budcore.scheduling.preemption.cost_model import DefaultPreemptionCostModel
from budcore.scheduling.snapshot import FairSharingStrategy, PreemptionMode

__all__ = ["FairSharingStrategy", "PreemptionMode", "PreemptionPolicy"]


@dataclass(frozen=True, slots=True)
class PreemptionPolicy:
    """How victims are chosen (the ClusterQueue's ``spec.preemption`` says who may be a victim).

    ``fair_sharing`` selects Kueue's fair-sharing preemption (as ``fairSharing.enable``);
    ``flavor_weights`` are the same per-flavor weights the admission cycle's shares use.
    """

    mode: PreemptionMode = PreemptionMode.KUEUE
    fair_sharing: bool = False
    strategies: tuple[FairSharingStrategy, ...] = (
        FairSharingStrategy.LESS_THAN_OR_EQUAL_TO_FINAL_SHARE,
        FairSharingStrategy.LESS_THAN_INITIAL_SHARE,
    )
    flavor_weights: Mapping[str, int] = field(default_factory=dict)
    cost_model: PreemptionCostModel = field(default_factory=DefaultPreemptionCostModel)
    min_runtime_before_preemption: timedelta = timedelta(minutes=5)
    exact_search_limit: int = 12
    grace_period: timedelta = timedelta(seconds=30)

    def __post_init__(self) -> None:
        if not self.strategies or len(set(self.strategies)) != len(self.strategies):
            raise ValidationError(
                "strategies must be a non-empty list without duplicates", path="preemption.strategies"
            )
        if (
            len(self.strategies) == 2
            and self.strategies[1] is not FairSharingStrategy.LESS_THAN_INITIAL_SHARE
        ):
            # Kueue's API validation: the second strategy, when given, is LessThanInitialShare.
            raise ValidationError(
                "the second strategy must be LessThanInitialShare", path="preemption.strategies[1]"
            )
        if not 0 <= self.exact_search_limit <= 20:
            raise ValidationError("must be within [0, 20]", path="preemption.exact_search_limit")
        if self.min_runtime_before_preemption < timedelta(0):
            raise ValidationError("must not be negative", path="preemption.min_runtime_before_preemption")
        if self.grace_period < timedelta(0):
            raise ValidationError("must not be negative", path="preemption.grace_period")
