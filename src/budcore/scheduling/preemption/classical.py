"""Kueue's classical preemption: the attempts of ``GetTargets`` when fair sharing is off.

Mirrors kubernetes-sigs/kueue ``pkg/scheduler/preemption/classical/`` and the classical branch of
``preemption.go``'s ``GetTargets`` (Apache-2.0), kept apart from fair sharing as Kueue keeps
them: the attempts are tried in order and the first that finds victims wins.

- Every candidate is in the preemptor's ClusterQueue: remove with borrowing allowed.
- Otherwise, with ``borrowWithinCohort`` enabled, the preemptor may borrow while reclaiming only
  from workloads below the threshold (``min(priority, maxPriorityThreshold+1)``; when the queue is
  not under nominal quota, other queues' candidates at or above it are dropped).
- Without it, reclaim from the cohort without borrowing (only when the queue is under nominal
  quota in the needed resources), then as a last resort its own workloads with borrowing.

Cost mode (:mod:`budcore.scheduling.preemption.cost`) searches within the same attempts.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from budcore.scheduling.preemption.common import (
    Found,
    PreemptionContext,
    alternative,
    borrow_threshold,
    minimal_preemptions,
    under_nominal,
)
from budcore.scheduling.snapshot import AdmittedWorkload, Alternative, PreemptionReason


@dataclass(frozen=True, slots=True)
class Attempt:
    """One of Kueue's attempts: candidates in order, whether borrowing is allowed, the threshold.

    ``reasons`` (cost mode's fair-sharing attempt only) is the reason Kueue's fair-sharing walk gave
    each candidate: ``InCohortFairSharing``, or ``InCohortReclamation`` within nominal quota.
    """

    label: str
    candidates: tuple[AdmittedWorkload, ...]
    allow_borrowing: bool
    threshold: int | None
    reasons: Mapping[str, PreemptionReason] | None = None


def attempts(ctx: PreemptionContext, candidates: Sequence[AdmittedWorkload]) -> list[Attempt]:
    """Kueue ``GetTargets``' classic attempts, in the order Kueue tries them."""
    own = ctx.cq.name
    same = tuple(w for w in candidates if w.cluster_queue == own)
    if len(same) == len(candidates):
        return [Attempt("own ClusterQueue, borrowing allowed", tuple(candidates), True, None)]
    threshold = borrow_threshold(ctx.cq, ctx.needs.priority)
    under = under_nominal(ctx.snapshot.usage, ctx.node, ctx.frs)
    if threshold is not None:
        allowed = tuple(candidates)
        if not under:
            allowed = tuple(w for w in candidates if w.cluster_queue == own or w.priority < threshold)
        return [Attempt(f"cohort, borrowing below priority {threshold}", allowed, True, threshold)]
    out: list[Attempt] = []
    if under:
        out.append(Attempt("cohort reclaim, no borrowing", tuple(candidates), False, None))
    out.append(Attempt("own ClusterQueue, borrowing allowed", same, True, None))
    return out


def classical_preemptions(
    ctx: PreemptionContext, candidates: Sequence[AdmittedWorkload], explain: bool = True
) -> tuple[Found | None, list[Alternative]]:
    """Kueue's classical ``GetTargets``: :func:`attempts` in order, each a ``minimalPreemptions``;
    the first that finds victims wins. ``explain=False`` skips the alternatives."""
    alternatives: list[Alternative] = []
    for attempt in attempts(ctx, candidates):
        found = minimal_preemptions(
            ctx, attempt.candidates, attempt.allow_borrowing, attempt.threshold, attempt.label
        )
        if explain:
            alternatives.append(alternative(ctx, attempt.label, found))
        if found is not None and found.targets:
            return found, alternatives
    return None, alternatives
