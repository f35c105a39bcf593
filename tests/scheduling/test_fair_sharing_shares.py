"""Dominant resource shares as Kueue compares them (``pkg/cache/scheduler/fair_sharing.go``).

Kueue's ``DRS`` value: a node that borrows nothing has share 0 whatever its weight; a borrowing
node of weight 0 has an infinite share, and two of those compare by their unweighted ratios
(``CompareDRS``); shares are compared unrounded (``PreciseWeightedShare``); what a parent could
lend counts every flavor of the cohort tree (``calculateLendable``).
"""

from __future__ import annotations

import math

from support.admission import GPU, config, cq

from budcore.scheduling import Cohort, FairSharing, QuotaTree, QuotaUsage, dominant_resource_share
from budcore.scheduling.fair_sharing import MAX_SHARE, ZERO_SHARE, borrows_in, share_key

M = 1000  # quantities are in milli-units


def _tree(*queues: tuple[str, dict[str, dict[str, int]], int], cohorts: tuple[Cohort, ...] = ()) -> QuotaTree:
    return QuotaTree(
        config(
            [
                cq(name, quotas, "pool", fair_sharing=FairSharing(weight=weight))
                for name, quotas, weight in queues
            ],
            cohorts,
        )
    )


def test_weight_zero_node_that_borrows_nothing_has_share_zero() -> None:
    tree = _tree(("zero", {"default": {GPU: 2}}, 0), ("lender", {"default": {GPU: 6}}, 1000))
    usage = QuotaUsage(tree)
    node = tree.cluster_queues["zero"]
    usage.add("zero", {("default", GPU): 2 * M})  # all of its own quota: not borrowing
    assert share_key(node, usage) == ZERO_SHARE
    assert dominant_resource_share(node, usage) == (0, "")
    # One more GPU borrows: infinite share, the unweighted ratio (1 of 8 lendable) kept for ties.
    assert share_key(node, usage, {("default", GPU): 1 * M}) == (math.inf, 1 / 8)
    assert dominant_resource_share(node, usage, {("default", GPU): 1 * M}) == (MAX_SHARE, GPU)


def test_two_zero_weight_borrowers_compare_by_how_much_they_borrow() -> None:
    tree = _tree(
        ("b", {"default": {GPU: 0}}, 0),
        ("c", {"default": {GPU: 0}}, 0),
        ("lender", {"default": {GPU: 8}}, 1000),
    )
    usage = QuotaUsage(tree)
    b, c = tree.cluster_queues["b"], tree.cluster_queues["c"]
    assert share_key(c, usage, {("default", GPU): 4 * M}) < share_key(b, usage, {("default", GPU): 8 * M})


def test_large_weights_do_not_round_distinct_shares_to_a_tie() -> None:
    """scheduler_fs_test.go "fair sharing two queues with high weight schedules workload which
    borrows less": with weight 123456789 the per-mille integer shares are both 0, the exact ones
    still differ."""
    weight = 123456789 * 1000
    tree = _tree(
        ("b", {"default": {GPU: 0}}, weight),
        ("c", {"default": {GPU: 0}}, weight),
        ("lender", {"default": {GPU: 8}}, 1000),
    )
    usage = QuotaUsage(tree)
    b, c = tree.cluster_queues["b"], tree.cluster_queues["c"]
    assert dominant_resource_share(c, usage, {("default", GPU): 4 * M})[0] == 0
    assert dominant_resource_share(b, usage, {("default", GPU): 8 * M})[0] == 0
    assert share_key(c, usage, {("default", GPU): 4 * M}) < share_key(b, usage, {("default", GPU): 8 * M})


def test_equal_fractions_are_equal_shares() -> None:
    """Weight 2 borrowing 2 of 12 and weight 1 borrowing 1 of 12 have the same share, exactly."""
    tree = _tree(
        ("heavy", {"default": {GPU: 0}}, 2000),
        ("light", {"default": {GPU: 0}}, 1000),
        ("lender", {"default": {GPU: 12}}, 1000),
    )
    usage = QuotaUsage(tree)
    heavy, light = tree.cluster_queues["heavy"], tree.cluster_queues["light"]
    assert share_key(heavy, usage, {("default", GPU): 2 * M}) == share_key(
        light, usage, {("default", GPU): 1 * M}
    )


def test_lendable_counts_every_flavor_of_the_tree() -> None:
    """A queue under Cohort ``left`` borrows on-demand; ``spot`` exists only under ``right``, yet
    ``left`` could borrow it from the root, so it counts in what ``left`` could lend (Kueue's
    ``calculateLendable`` walks the root's subtree quota)."""
    cfg = config(
        [
            cq("a", {"on-demand": {GPU: 0}}, "left"),
            cq("lender", {"on-demand": {GPU: 4}}, "left"),
            cq("spot-owner", {"spot": {GPU: 4}}, "right"),
        ],
        [Cohort(name="root"), Cohort(name="left", parent="root"), Cohort(name="right", parent="root")],
    )
    tree = QuotaTree(cfg)
    usage = QuotaUsage(tree)
    # borrows 2 of the 4 + 4 GPUs 'left' could lend: 250 per mille
    assert dominant_resource_share(tree.cluster_queues["a"], usage, {("on-demand", GPU): 2 * M}) == (250, GPU)


def test_borrowing_counts_only_the_flavor_resources_asked_for() -> None:
    """Kueue's nominal-first order (scheduler_fs_test.go, "hierarchical nominal-first per-flavor
    ignores cross-flavor borrowing"): a node borrowing spot does not borrow for an on-demand
    request that fits its on-demand quota."""
    tree = _tree(("a", {"on-demand": {GPU: 4}, "spot": {GPU: 0}}, 1000), ("lender", {"spot": {GPU: 8}}, 1000))
    usage = QuotaUsage(tree)
    usage.add("a", {("spot", GPU): 3 * M})
    node = tree.cluster_queues["a"]
    assert not borrows_in(node, usage, {("on-demand", GPU): 4 * M})
    assert borrows_in(node, usage, {("on-demand", GPU): 5 * M})
    assert borrows_in(node, usage, {("spot", GPU): 1 * M})
