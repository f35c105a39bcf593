"""Kueue's ``TestAssignment_RequiresBorrowing``, transcribed (every case; ids are Kueue's names).

Source: kubernetes-sigs/kueue ff69552e79ad21652c36caa97038382e55625cf7,
``pkg/scheduler/flavorassigner/flavorassigner_test.go`` (Apache-2.0). Kueue's table builds an
``Assignment{Borrowing: n}`` and states ``RequiresBorrowing()``: whether the height of the smallest
cohort subtree that fits the workload is above 0. budcore's counterpart is
:attr:`Assignment.borrows`, which only :func:`assign_flavors` produces, so each height is realized
(``harness.granular_case``) as a flavor that fits a 4-cpu pod at that height: in the ClusterQueue's
own quota (0), in its cohort's (1) or in the cohort's parent's (2).
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from kueue_conformance.flavorassigner.harness import G_FIT, granular_case, params, run

from budcore.scheduling import Mode


@dataclass(frozen=True)
class RequiresBorrowing:
    borrowing: int  # Assignment.Borrowing
    want: bool  # RequiresBorrowing()


NAMES = ("no borrowing", "borrows at level 1", "borrows at level 2")

OUT_OF_SCOPE: dict[str, str] = {}

CASES = {
    "no borrowing": RequiresBorrowing(0, False),
    "borrows at level 1": RequiresBorrowing(1, True),
    "borrows at level 2": RequiresBorrowing(2, True),
}

XFAIL: dict[str, str] = {}


def differences(row: RequiresBorrowing) -> list[str]:
    outcome = run(granular_case({"f": (G_FIT, row.borrowing)}, row.want))
    got = outcome.assignment
    if got is None:
        return [f"budcore rejects the input: {outcome.rejected}"]
    if (got.mode, got.borrows) != (Mode.FIT, row.want):
        return [
            f"Kueue: fits, RequiresBorrowing()={row.want}; "
            f"budcore: mode {got.mode.name}, borrows={got.borrows}"
        ]
    return []


DIFFS = differences


@pytest.mark.parametrize("row", params(NAMES, CASES, OUT_OF_SCOPE, XFAIL, count=3))
def test_assignment_requires_borrowing(row: RequiresBorrowing) -> None:
    problems = differences(row)
    assert not problems, "\n".join(problems)
