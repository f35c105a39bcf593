"""Chargeback: who pays for borrowed quota, and who is credited for lending it (issue #16).

A ClusterQueue in a cohort may run above its nominal quota on capacity its neighbours leave unused.
Billing that usage to the borrower at its *own* tier would let a team with a cheap tier (spot,
say) run on a neighbour's reserved, expensive quota for the price of spot, and the neighbour who
paid for the quota would see nothing of it. So the rule is:

**Attribution** (:func:`lenders_at`). An admission of ``amount`` of (flavor, resource) ``fr`` to
ClusterQueue ``cq`` borrows ``max(0, used_after − nominal) − max(0, used_before − nominal)``
(``used_before``: ``cq``'s usage just before the admission). The borrowed amount is attributed to
the *other* ClusterQueues of ``cq``'s root cohort in proportion to their lendable unused quota
at that instant, ``min(max(0, nominal_q − used_q), lendingLimit_q)`` (no cap without a lending
limit), each lender covering at most its lendable unused quota; what they cannot cover goes to the
cohorts of that tree that own nominal quota of ``fr`` (``cohort:<name>``, weighted by that quota,
again at most that quota each) and what is left after them to the root cohort, ``cohort:<root>``.
Every split is an integer apportionment by largest remainder, ties by account name
(:func:`split_borrowed`), so the shares add up exactly to the borrowed amount.

**Pricing** (:func:`record_charge`, :func:`chargeback`). A record's account is its ClusterQueue
(its tenant when it has none). Nominal usage is charged to the account at its own tier:
``tier_of[account]``, else the record's ``tier``, else the book's default tier. Borrowed usage is
charged at the **lender's rate** — the lender's tier (``tier_of[lender]``, else the book's default
tier) applied to the same accelerator, sharing mode, replicas and QoS — and the lender is
credited exactly that amount. Borrowed usage whose lender was not recorded is priced at the
book's default tier and credited to :data:`UNATTRIBUTED`, so nothing is charged without its
credit: across the records, Σ borrowed charges == Σ credits, exactly (Fractions throughout; a
line is rounded once, when it is rendered).

Usage the book cannot price is never free: it is counted in ``unpriced_device_seconds`` (the
borrower's) and ``unpriced_lent_device_seconds`` (the lender's) and left out of the money.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction

from budcore.cost.metering import UsageRecord
from budcore.cost.prices import PriceBook, money
from budcore.domain.errors import ValidationError
from budcore.scheduling.quota import FR, QuotaNode, QuotaTree, QuotaUsage

#: The account credited for borrowed usage whose lender was not recorded.
UNATTRIBUTED = "(unattributed)"
#: The prefix of a cohort's own account (the cohort's own nominal quota lent to a ClusterQueue).
COHORT_PREFIX = "cohort:"


def _whole(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationError(f"must be a whole number, got {value!r}", path=name)
    if value < 0:
        raise ValidationError(f"must not be negative, got {value}", path=name)
    return value


def split_borrowed(amount: int, lenders: Mapping[str, int], *, rest: str | None = None) -> dict[str, int]:
    """Apportion ``amount`` over ``lenders`` in proportion to their weights, exactly.

    Largest remainder: each lender gets ``floor(amount × w / W)`` (``W``: the sum of the
    weights), and the units left over go one each to the lenders with the largest remainders
    ``amount × w mod W``, ties broken by account name. The shares add up to ``amount`` exactly.

    Without ``rest``, the shares are scaled to add up to ``amount`` whatever the weights (all
    weights 0 is a :class:`ValidationError`: there is nobody to attribute to). With ``rest``, a
    lender never gets more than its weight (its lendable unused quota): the lenders share
    ``min(amount, W)`` and ``rest`` (a fallback account) gets whatever they do not cover.

    Worked example: 5 over ``{a: 2, b: 1, c: 1}`` → exact 2.5, 1.25, 1.25; floors 2, 1, 1 leave 1
    unit, remainders (×4) are 2, 1, 1, so ``a`` gets it: ``{a: 3, b: 1, c: 1}``. With
    ``rest="cohort:x"``, 7 over the same lenders gives them their weights and ``cohort:x`` 3.

    Zero shares are left out; the result is in account order.
    """
    _whole(amount, "amount")
    weights = {name: _whole(weight, f"lenders.{name}") for name, weight in lenders.items()}
    total = sum(weights.values())
    if amount == 0:
        return {}
    if total == 0 and rest is None:
        raise ValidationError(f"cannot attribute {amount}: no lender has a positive weight", path="lenders")
    covered = amount if rest is None else min(amount, total)
    shares: dict[str, int] = {}
    remainders: list[tuple[int, str]] = []
    given = 0
    for name, weight in weights.items():
        if weight == 0:
            continue
        share, remainder = divmod(covered * weight, total)
        shares[name] = share
        given += share
        remainders.append((remainder, name))
    remainders.sort(key=lambda item: (-item[0], item[1]))
    for _, name in remainders[: covered - given]:
        shares[name] += 1
    if rest is not None and amount > covered:
        shares[rest] = shares.get(rest, 0) + amount - covered
    return {name: shares[name] for name in sorted(shares) if shares[name]}


def _cohorts_under(root: QuotaNode) -> list[QuotaNode]:
    out: list[QuotaNode] = []
    stack = [root]
    while stack:
        node = stack.pop()
        if node.is_cohort:
            out.append(node)
            stack.extend(node.children)
    return out


def lendable_unused(node: QuotaNode, fr: FR, usage: QuotaUsage) -> int:
    """What ClusterQueue ``node`` leaves unused of its nominal quota of ``fr`` and may lend.

    ``max(0, nominal − used)``, capped by its ``lendingLimit`` when it has one (``nominal −
    lendingLimit`` is never lent, so that is exactly what it can still lend).
    """
    unused = max(0, node.nominal.get(fr, 0) - usage.get(node, fr))
    limit = node.lending_limit.get(fr)
    return unused if limit is None else min(unused, limit)


def lenders_at(
    tree: QuotaTree, usage: QuotaUsage, cluster_queue: str, fr: tuple[str, str], amount: int
) -> dict[str, int]:
    """Who lends the borrowed part of admitting ``amount`` of ``fr`` to ``cluster_queue`` now.

    ``usage`` is the quota usage just before the admission; amounts are in the tree's units
    (milli-units). Returns ``{account: amount}`` (ClusterQueue names and ``cohort:<name>``
    accounts, see the module docstring for the rule), adding up to the borrowed amount, or ``{}``
    when the admission stays within ``cluster_queue``'s nominal quota (or it has no cohort).
    """
    node = tree.cluster_queues.get(cluster_queue)
    if node is None:
        raise ValidationError(f"unknown ClusterQueue {cluster_queue!r}", path="cluster_queue")
    _whole(amount, "amount")
    nominal = node.nominal.get(fr, 0)
    before = usage.get(node, fr)
    borrowed = max(0, before + amount - nominal) - max(0, before - nominal)
    if borrowed == 0 or node.parent is None:
        return {}
    root = node.root()
    weights = {
        name: lendable_unused(tree.cluster_queues[name], fr, usage)
        for name in tree.cohort_members(root)
        if name != cluster_queue
    }
    shares = split_borrowed(borrowed, weights, rest=COHORT_PREFIX + root.name)
    uncovered = shares.pop(COHORT_PREFIX + root.name, 0)
    if uncovered:
        owners = {
            COHORT_PREFIX + cohort.name: cohort.nominal.get(fr, 0)
            for cohort in _cohorts_under(root)
            if cohort.nominal.get(fr, 0) > 0
        }
        for account, share in split_borrowed(uncovered, owners, rest=COHORT_PREFIX + root.name).items():
            shares[account] = shares.get(account, 0) + share
    return {name: shares[name] for name in sorted(shares)}


@dataclass(frozen=True)
class ChargebackPolicy:
    """Price tiers of chargeback accounts: ``tier_of[account]`` (a ClusterQueue, a tenant for
    records without one, or ``cohort:<name>``); an account not listed pays at the record's tier
    for its own usage and lends at the book's default tier."""

    tier_of: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for account, tier in self.tier_of.items():
            if not isinstance(account, str) or not account:
                raise ValidationError(f"account must be a non-empty name, got {account!r}", path="tier_of")
            if not isinstance(tier, str) or not tier:
                raise ValidationError(
                    f"tier must be a non-empty name, got {tier!r}", path=f"tier_of.{account}"
                )

    def check(self, prices: PriceBook) -> None:
        """Every tier named is one of ``prices``' (else a typo would leave everything unpriced)."""
        for account, tier in self.tier_of.items():
            if prices.resolve_tier(tier) is None:
                raise ValidationError(
                    f"tier {tier!r} is not in price book {prices.version!r} "
                    f"(tiers: {', '.join(prices.tiers())})",
                    path=f"tier_of.{account}",
                )


def account_of(record: UsageRecord) -> str:
    """The chargeback account of a record: its ClusterQueue, else its tenant."""
    return record.cluster_queue or record.tenant


def lender_of(record: UsageRecord) -> str | None:
    """The account credited for a record: its lender (:data:`UNATTRIBUTED` if not recorded) when
    it ran on borrowed quota, else ``None``."""
    if not record.borrowed:
        return None
    return record.lender or UNATTRIBUTED


def charge_tier(record: UsageRecord, policy: ChargebackPolicy) -> str | None:
    """The tier a record is priced at (``None``: the book's default tier); see the module rule."""
    lender = lender_of(record)
    if lender is not None:
        return policy.tier_of.get(lender)
    return policy.tier_of.get(account_of(record), record.tier)


def record_charge(record: UsageRecord, prices: PriceBook, policy: ChargebackPolicy) -> Fraction | None:
    """What a record's account is charged, exactly; ``None`` when the book has no price (never 0).

    Borrowed usage is priced at the lender's rate, and that is also what the lender is credited.
    """
    hourly = prices.price(
        record.accelerator,
        charge_tier(record, policy),
        mode=record.mode,
        replicas=record.replicas,
        qos=record.qos,
    )
    if hourly is None:
        return None
    return Fraction(hourly) * record.device_seconds / 3600


@dataclass(frozen=True)
class ChargebackLine:
    """One account: what it used and was charged, what it lent and was credited (exact)."""

    account: str
    device_seconds: int = 0  # its own usage, nominal and borrowed
    borrowed_device_seconds: int = 0
    lent_device_seconds: int = 0
    charged: Fraction = Fraction(0)  # own nominal usage at its tier + borrowed at the lenders' rates
    borrowed_charges: Fraction = Fraction(0)  # the borrowed part of ``charged``
    credited: Fraction = Fraction(0)  # what borrowers paid for its quota, at its rate
    unpriced_device_seconds: int = 0  # own usage the book has no price for (not in ``charged``)
    unpriced_lent_device_seconds: int = 0  # lent usage with no price (not in ``credited``)

    @property
    def net(self) -> Fraction:
        """``charged − credited``: what the account owes after its credits."""
        return self.charged - self.credited


@dataclass(frozen=True)
class Chargeback:
    """Per account charges and credits over a set of usage records (exact; render with ``money``)."""

    currency: str
    lines: Mapping[str, ChargebackLine]  # by account, in account order
    unpriced: tuple[str, ...] = ()  # accelerators the book could not price

    @property
    def borrowed_charges(self) -> Fraction:
        return sum((line.borrowed_charges for line in self.lines.values()), Fraction(0))

    @property
    def credited(self) -> Fraction:
        return sum((line.credited for line in self.lines.values()), Fraction(0))

    @property
    def charged(self) -> Fraction:
        return sum((line.charged for line in self.lines.values()), Fraction(0))


@dataclass
class _Acc:
    device_seconds: int = 0
    borrowed_device_seconds: int = 0
    lent_device_seconds: int = 0
    charged: Fraction = Fraction(0)
    borrowed_charges: Fraction = Fraction(0)
    credited: Fraction = Fraction(0)
    unpriced_device_seconds: int = 0
    unpriced_lent_device_seconds: int = 0


def chargeback(
    records: Iterable[UsageRecord],
    prices: PriceBook,
    policy: ChargebackPolicy | None = None,
    *,
    key: Callable[[UsageRecord], str] = account_of,
    lender_key: Callable[[str], str] = str,
) -> Chargeback:
    """Charges and credits per account under the chargeback rule (module docstring).

    ``key`` names the line a record's usage is charged to (default: :func:`account_of`) and
    ``lender_key`` the line a lender account is credited on (default: the account itself); a
    report by tenant or job passes its own. A tier in ``policy`` the book does not have is a
    :class:`ValidationError` naming it.
    """
    policy = policy or ChargebackPolicy()
    policy.check(prices)
    accs: dict[str, _Acc] = {}
    unpriced: set[str] = set()
    for record in records:
        seconds = record.device_seconds
        cost = record_charge(record, prices, policy)
        own = accs.setdefault(key(record), _Acc())
        own.device_seconds += seconds
        if cost is None:
            unpriced.add(record.accelerator)
            own.unpriced_device_seconds += seconds
        else:
            own.charged += cost
        lender = lender_of(record)
        if lender is None:
            continue
        own.borrowed_device_seconds += seconds
        lent = accs.setdefault(lender_key(lender), _Acc())
        lent.lent_device_seconds += seconds
        if cost is None:
            lent.unpriced_lent_device_seconds += seconds
        else:
            own.borrowed_charges += cost
            lent.credited += cost
    lines = {name: ChargebackLine(name, **vars(accs[name])) for name in sorted(accs)}
    return Chargeback(currency=prices.currency, lines=lines, unpriced=tuple(sorted(unpriced)))


def round_money(value: Fraction) -> Decimal:
    """An exact amount rounded to cents, half away from zero, in one step (:func:`money`'s rule).

    Going through a 28-digit ``Decimal`` first could round twice; this divides exactly.
    """
    scaled = abs(value) * 100
    cents, remainder = divmod(scaled.numerator, scaled.denominator)
    if 2 * remainder >= scaled.denominator:
        cents += 1
    return money(Decimal(-cents if value < 0 else cents).scaleb(-2))


__all__ = [
    "COHORT_PREFIX",
    "UNATTRIBUTED",
    "Chargeback",
    "ChargebackLine",
    "ChargebackPolicy",
    "account_of",
    "charge_tier",
    "chargeback",
    "lendable_unused",
    "lender_of",
    "lenders_at",
    "record_charge",
    "round_money",
    "split_borrowed",
]
