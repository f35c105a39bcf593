"""The Kaplan–Meier estimator: a distribution of waits when some waits never ended.

A simulation stops at its horizon with jobs still waiting. Their waits are *right-censored*: each
is known to be at least the time it had waited when the run ended, not how long it would have
been. Dropping them (the CDF of the jobs that got through) hides exactly the starved jobs; counting
them as if they ended at the horizon draws a CDF that reaches 1 at waits nobody actually had.
Kaplan–Meier uses each censored wait for what it says: the job was still waiting at that age.

With event times t_1 < t_2 < ..., d_i waits ending at t_i and n_i waits still running just before
t_i (every wait, ended or censored, of length >= t_i), the survival function is
``S(t) = prod_{t_i <= t} (1 - d_i / n_i)`` and the CDF is ``1 - S(t)``. A censored wait of the same
length as an event counts as still at risk at that instant (the usual convention: the event came
first). With no censoring it is the empirical CDF exactly.

The estimate is defined up to the longest wait followed (:attr:`SurvivalCurve.follow_up_s`); when
the longest is censored the CDF stops below 1 there, and the missing mass, ``S`` at the end, is the
share of jobs whose wait is known only to exceed it. A percentile above the curve's end is not
estimable (``None``), and lies beyond ``follow_up_s``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

# Float slack when comparing the CDF with a percentile level: a product of fractions like
# (1 - 1/4)(1 - 1/3) lands a few ulps off 0.5.
_SLACK = 1e-9


@dataclass(frozen=True, slots=True)
class SurvivalCurve:
    """A Kaplan–Meier estimate: ``survival[i]`` is S just after ``times[i]`` (right-continuous)."""

    times: tuple[float, ...]  # the distinct lengths at which some wait ended, ascending
    survival: tuple[float, ...]  # S(t) at each of them
    samples: int  # waits, ended or censored
    events: int  # waits that ended
    follow_up_s: float  # the longest wait followed, ended or censored (0.0 without samples)

    @property
    def censored(self) -> int:
        """Waits still running when they stopped being followed."""
        return self.samples - self.events

    @property
    def final(self) -> float:
        """S at the end of the curve: the share of waits known only to exceed ``follow_up_s``
        (0 when the longest wait ended; 1 when no wait did, or without samples)."""
        return self.survival[-1] if self.survival else 1.0

    def cdf(self, t: float) -> float:
        """``1 - S(t)``: the estimated share of waits of length at most ``t``."""
        index = int(np.searchsorted(np.asarray(self.times), t, side="right"))
        return 0.0 if index == 0 else 1.0 - self.survival[index - 1]

    def quantile(self, q: float) -> float | None:
        """The smallest event time at which the CDF reaches ``q`` (0 < q <= 1), or ``None`` when
        it never does: the percentile then lies beyond :attr:`follow_up_s`."""
        if not 0.0 < q <= 1.0:
            raise ValueError(f"a quantile level is in (0, 1], got {q}")
        reached = np.flatnonzero(1.0 - np.asarray(self.survival) >= q - _SLACK)
        return self.times[int(reached[0])] if reached.size else None


def kaplan_meier(durations: Sequence[float], observed: Sequence[bool]) -> SurvivalCurve:
    """The Kaplan–Meier estimate of ``durations``, where ``observed[i]`` is False for a censored one.

    Durations must be finite and non-negative (a wait cannot be), and both sequences of one length.
    """
    lengths = np.asarray(durations, dtype=float)
    ended = np.asarray(observed, dtype=bool)
    if lengths.shape != ended.shape or lengths.ndim != 1:
        raise ValueError(f"durations and observed differ in length: {lengths.shape} vs {ended.shape}")
    if lengths.size and not (np.all(np.isfinite(lengths)) and lengths.min() >= 0.0):
        raise ValueError("durations must be finite and non-negative")
    times, deaths = np.unique(lengths[ended], return_counts=True)
    at_risk = lengths.size - np.searchsorted(np.sort(lengths), times, side="left")
    survival = np.cumprod(1.0 - deaths / at_risk) if times.size else np.empty(0)
    return SurvivalCurve(
        times=tuple(float(t) for t in times),
        survival=tuple(float(s) for s in survival),
        samples=int(lengths.size),
        events=int(ended.sum()),
        follow_up_s=float(lengths.max()) if lengths.size else 0.0,
    )
