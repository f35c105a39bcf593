"""Kueue's ``TestIsPreferred``, transcribed (every case; ids are Kueue's case names).

Source: kubernetes-sigs/kueue ff69552e79ad21652c36caa97038382e55625cf7,
``pkg/scheduler/flavorassigner/flavorassigner_test.go`` (Apache-2.0). Kueue's table calls the
internal ``isPreferred(a, b, flavorFungibility)`` on two granular modes ``(preemptionMode,
borrowingLevel)`` and states whether ``a`` is preferred to ``b``.

budcore has no such function in its public API; its preference is observable only through
:func:`assign_flavors`. So each case is realized (``harness.granular_case``) as a ClusterQueue
listing flavor ``b`` then flavor ``a``, sized so that each has its mode for a 4-cpu pod, and the
expectation becomes which flavor the search keeps. In Kueue's ``findFlavorForPodSets`` the later
flavor replaces the best one so far exactly when ``isPreferred(later, best)``, provided the search
reaches it: ``b`` must not end the search (``shouldTryNextFlavor`` is true for every ``b`` of the
table under the fungibility used) and an ``a`` that ends it (``(fit, 0)``, the first case only)
is kept, which the table says is preferred too. So Kueue assigns ``a`` iff ``wantPreferred``.

The fungibility is the case's config; where the config leaves ``whenCanBorrow``/``whenCanPreempt``
unset, they stay unset (``isPreferred`` reads only ``preference``, and every such case has only
modes that never end the search).
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from kueue_conformance.flavorassigner.harness import (
    G_FIT,
    G_NO_CANDIDATES,
    G_NO_FIT,
    G_PREEMPT,
    TRY_NEXT,
    granular_case,
    params,
    run,
)

BORROWING_OVER_PREEMPTION = "BorrowingOverPreemption"
PREEMPTION_OVER_BORROWING = "PreemptionOverBorrowing"


@dataclass(frozen=True)
class Preferred:
    """One row: granular modes ``a`` and ``b`` as ``(preemptionMode, borrowingLevel)``, the
    FlavorFungibility config ``(whenCanBorrow, whenCanPreempt, preference)`` and wantPreferred."""

    a: tuple[str, int]
    b: tuple[str, int]
    config: tuple[str, str, str | None]
    want_preferred: bool


NAMES = (
    "feature gate disabled prioritises preemption",
    "explicit BorrowingOverPreemption prioritises borrowing distance",
    "explicit PreemptionOverBorrowing prioritises lower preemption",
    "explicit PreemptionOverBorrowing breaks borrowing ties with preemption",
    "explicit PreemptionOverBorrowing rejects no-candidate flavor before borrowing comparison",
    "explicit PreemptionOverBorrowing prefers fit over shallower-borrowing no-candidate flavor",
    "no-candidate flavor remains preferable to no-fit flavor",
    "no-fit flavor remains worse than no-candidate flavor",
    "no-candidate flavors retain borrowing preference",
    "no-candidate flavors retain borrowing preference in reverse",
)

OUT_OF_SCOPE: dict[str, str] = {}

TRY_NEXT_BOTH = (TRY_NEXT, TRY_NEXT)

CASES = {
    "feature gate disabled prioritises preemption": Preferred(
        (G_FIT, 0), (G_PREEMPT, 0), (*TRY_NEXT_BOTH, None), True
    ),
    "explicit BorrowingOverPreemption prioritises borrowing distance": Preferred(
        (G_PREEMPT, 1), (G_FIT, 2), (*TRY_NEXT_BOTH, BORROWING_OVER_PREEMPTION), False
    ),
    "explicit PreemptionOverBorrowing prioritises lower preemption": Preferred(
        (G_PREEMPT, 1), (G_FIT, 2), (*TRY_NEXT_BOTH, PREEMPTION_OVER_BORROWING), True
    ),
    "explicit PreemptionOverBorrowing breaks borrowing ties with preemption": Preferred(
        (G_PREEMPT, 1), (G_FIT, 1), (*TRY_NEXT_BOTH, PREEMPTION_OVER_BORROWING), False
    ),
    "explicit PreemptionOverBorrowing rejects no-candidate flavor before borrowing comparison": Preferred(
        (G_NO_CANDIDATES, 1), (G_FIT, 2), (*TRY_NEXT_BOTH, PREEMPTION_OVER_BORROWING), False
    ),
    "explicit PreemptionOverBorrowing prefers fit over shallower-borrowing no-candidate flavor": Preferred(
        (G_FIT, 2), (G_NO_CANDIDATES, 1), (*TRY_NEXT_BOTH, PREEMPTION_OVER_BORROWING), True
    ),
    "no-candidate flavor remains preferable to no-fit flavor": Preferred(
        (G_NO_CANDIDATES, 1), (G_NO_FIT, 0), ("", "", None), True
    ),
    "no-fit flavor remains worse than no-candidate flavor": Preferred(
        (G_NO_FIT, 0), (G_NO_CANDIDATES, 1), ("", "", None), False
    ),
    "no-candidate flavors retain borrowing preference": Preferred(
        (G_NO_CANDIDATES, 1), (G_NO_CANDIDATES, 2), ("", "", PREEMPTION_OVER_BORROWING), True
    ),
    "no-candidate flavors retain borrowing preference in reverse": Preferred(
        (G_NO_CANDIDATES, 2), (G_NO_CANDIDATES, 1), ("", "", PREEMPTION_OVER_BORROWING), False
    ),
}

XFAIL: dict[str, str] = {}


def differences(row: Preferred) -> list[str]:
    when_borrow, when_preempt, preference = row.config
    case = granular_case(
        {"b": row.b, "a": row.a}, row.want_preferred, (when_borrow, when_preempt), preference
    )
    outcome = run(case)
    if outcome.assignment is None:
        return [f"budcore rejects the input: {outcome.rejected}"]
    expected = "a" if row.want_preferred else "b"
    got = outcome.assignment.flavors.get("main", {}).get("cpu")
    if got != expected:
        return [
            f"Kueue keeps flavor {expected} (isPreferred(a={row.a}, b={row.b}) is {row.want_preferred}), "
            f"budcore assigns {got}"
        ]
    return []


DIFFS = differences


@pytest.mark.parametrize("row", params(NAMES, CASES, OUT_OF_SCOPE, XFAIL, count=10))
def test_is_preferred(row: Preferred) -> None:
    problems = differences(row)
    assert not problems, "\n".join(problems)
