"""The Kaplan–Meier estimator behind the censored wait CDFs and ``*_km_s`` percentiles."""

from __future__ import annotations

from itertools import pairwise

import numpy as np
import pytest
from budcore_simulator.survival import kaplan_meier
from hypothesis import given, settings
from hypothesis import strategies as st

from budcore.testing.examples import examples

EXAMPLES = examples(200)


def test_hand_computed_curve_with_censored_waits() -> None:
    # waits 10, 20 (censored), 30, 40 (censored):
    #   t=10: 4 at risk, 1 ends -> S = 3/4
    #   t=30: 2 at risk (30 and the censored 40; 20 left the risk set), 1 ends -> S = 3/4 * 1/2 = 3/8
    curve = kaplan_meier([10.0, 20.0, 30.0, 40.0], [True, False, True, False])
    assert curve.times == (10.0, 30.0)
    assert curve.survival == pytest.approx((0.75, 0.375))
    assert (curve.samples, curve.events, curve.censored) == (4, 2, 2)
    assert curve.follow_up_s == 40.0
    assert curve.final == pytest.approx(0.375)  # 37.5% only known to wait longer than 40
    assert curve.cdf(5.0) == 0.0
    assert curve.cdf(10.0) == pytest.approx(0.25)
    assert curve.cdf(29.9) == pytest.approx(0.25)
    assert curve.cdf(30.0) == pytest.approx(0.625)
    assert curve.cdf(1e9) == pytest.approx(0.625)
    assert curve.quantile(0.25) == 10.0
    assert curve.quantile(0.5) == 30.0
    assert curve.quantile(0.625) == 30.0
    assert curve.quantile(0.95) is None  # beyond the longest wait followed (40)


def test_a_censored_wait_tied_with_an_event_is_still_at_risk() -> None:
    # 10 ends, 10 censored, 20 ends: at t=10 three at risk -> 2/3; at t=20 one at risk -> 0
    curve = kaplan_meier([10.0, 10.0, 20.0], [True, False, True])
    assert curve.survival == pytest.approx((2 / 3, 0.0))
    assert curve.final == 0.0 and curve.quantile(0.99) == 20.0


def test_no_ended_wait_and_no_wait() -> None:
    starved = kaplan_meier([5.0, 50.0], [False, False])
    assert starved.times == () and starved.final == 1.0 and starved.cdf(100.0) == 0.0
    assert starved.quantile(0.5) is None and starved.follow_up_s == 50.0
    empty = kaplan_meier([], [])
    assert (empty.samples, empty.final, empty.follow_up_s, empty.quantile(0.5)) == (0, 1.0, 0.0, None)


@pytest.mark.parametrize(
    ("durations", "observed", "message"),
    [
        ([1.0, -1.0], [True, True], "non-negative"),
        ([1.0, float("nan")], [True, True], "finite"),
        ([1.0], [True, False], "length"),
    ],
)
def test_bad_samples_are_refused(durations: list[float], observed: list[bool], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        kaplan_meier(durations, observed)


def test_quantile_levels_outside_zero_one_are_refused() -> None:
    with pytest.raises(ValueError, match="quantile level"):
        kaplan_meier([1.0], [True]).quantile(0.0)


waits = st.lists(st.integers(min_value=0, max_value=500).map(float), min_size=1, max_size=60)


@settings(max_examples=EXAMPLES, deadline=None)
@given(waits)
def test_without_censoring_it_is_the_empirical_cdf(durations: list[float]) -> None:
    curve = kaplan_meier(durations, [True] * len(durations))
    values = np.asarray(durations)
    for t in {*durations, -1.0, max(durations) + 1.0}:
        assert curve.cdf(t) == pytest.approx(float(np.mean(values <= t)), abs=1e-12)
    for q in (0.1, 0.5, 0.95, 0.99, 1.0):
        assert curve.quantile(q) == float(np.quantile(values, q, method="inverted_cdf"))
    assert curve.final == pytest.approx(0.0, abs=1e-12)


@settings(max_examples=EXAMPLES, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 500).map(float), st.booleans()), min_size=1, max_size=60))
def test_survival_is_non_increasing_within_zero_one(samples: list[tuple[float, bool]]) -> None:
    curve = kaplan_meier([d for d, _ in samples], [seen for _, seen in samples])
    values = [1.0, *curve.survival]
    assert all(0.0 <= v <= 1.0 for v in values)
    assert all(b <= a for a, b in pairwise(values))
    assert curve.events == sum(seen for _, seen in samples)
    # it drops to 0 exactly when every wait of the longest length ended (none left at risk)
    longest = max(d for d, _ in samples)
    ended_last = all(seen for d, seen in samples if d == longest)
    assert (curve.final == 0.0) is ended_last


def test_the_plotted_cdf_shows_censored_waits_and_the_censored_tail() -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from budcore_simulator.outcomes import WaitSamples
    from budcore_simulator.plots import plot_survival

    fig, ax = plt.subplots()
    samples = WaitSamples((600.0, 1200.0, 1800.0, 2400.0), (True, False, True, False))  # minutes 10..40
    plot_survival(ax, samples, label="c")
    (line,) = ax.get_lines()
    assert line.get_label() == "c (2 of 4 censored)"
    # the step curve of the hand-computed example, in minutes: CDF .25 at 10, .625 at 30, to 40
    assert list(line.get_xdata()) == [0.0, 10.0, 30.0, 40.0]
    assert list(line.get_ydata()) == pytest.approx([0.0, 0.25, 0.625, 0.625])
    ticks, tail = ax.collections  # censored waits as ticks, then the dotted censored tail
    assert np.asarray(ticks.get_offsets()).ravel().tolist() == pytest.approx([20.0, 0.25, 40.0, 0.625])
    (segment,) = tail.get_segments()
    assert np.asarray(segment).ravel().tolist() == pytest.approx([40.0, 0.625, 40.0, 1.0])
    plt.close(fig)
