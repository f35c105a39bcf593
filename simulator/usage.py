"""Resource usage over a run, for every resource a scenario's ClusterQueues cover (not only GPUs).

Two ledgers, each an amount per key that changes at instants and its time integral:

- *quota held* per ``(ClusterQueue, resource)``: what the queue's admitted workloads hold from
  their admission until their quota is released (pods running or still pending for nodes, a
  victim's grace period, and, under the cycle-latency model, the delay between a workload
  finishing and its quota being released). This is Kueue's ClusterQueue usage
  (``status.flavorsUsage``), summed over flavors;
- *in use* per ``(flavor, resource)``: what running pods take on the flavor's nodes (in a
  quota-only simulation, without nodes, a workload runs from its admission).

Integrals are kept lazily (each key integrates only when it changes), so a change costs O(1)
whatever the number of keys. Amounts are milli-units, as the core counts them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

Key = tuple[str, str]  # (ClusterQueue or flavor, resource)


class _Amount:
    """One key's amount (milli-units), since when it has had it, and its integral until then."""

    __slots__ = ("integral", "since", "value")

    def __init__(self) -> None:
        self.value = 0
        self.since = 0.0
        self.integral = 0.0


class Ledger:
    """An amount per key (milli-units) and its integral over time (milli-unit-seconds).

    Each key's three figures live in one :class:`_Amount`, so a change looks the key up once
    (three dictionaries, one per figure, took six lookups), and a ClusterQueue's amounts are also
    reachable by resource (``_owned``), so the engine's four changes per job build no key tuples.
    """

    __slots__ = ("_amounts", "_owned")

    def __init__(self, keys: Iterable[Key] = ()) -> None:
        self._amounts: dict[Key, _Amount] = {key: _Amount() for key in keys}  # in first-seen order
        self._owned: dict[str, dict[str, _Amount]] = {}  # owner -> resource -> its (owner, resource)

    def _amount(self, key: Key) -> _Amount:
        amount = self._amounts.get(key)
        if amount is None:
            amount = self._amounts[key] = _Amount()
        return amount

    def add(self, key: Key, amount: int, now: float) -> None:
        """Change ``key``'s amount by ``amount`` (negative: less) at ``now``."""
        held = self._amount(key)
        value = held.value
        if value:
            held.integral += value * (now - held.since)
        held.value = value + amount
        held.since = now

    def add_held(self, owner: str, usage: Mapping[tuple[str, str], int], now: float, sign: int) -> None:
        """Add an admission's ``usage`` (``(flavor, resource) → milli-units``) times ``sign`` under
        ``(owner, resource)``, summed over flavors: a ClusterQueue's quota held. The engine's hot
        path (twice per job): :meth:`add`, inlined (the same arithmetic in the same order)."""
        owned = self._owned.get(owner)
        if owned is None:
            owned = self._owned[owner] = {}
        for (_, resource), amount in usage.items():
            if not amount:
                continue
            held = owned.get(resource)
            if held is None:
                held = owned[resource] = self._amount((owner, resource))
            value = held.value
            if value:
                held.integral += value * (now - held.since)
            held.value = value + sign * amount
            held.since = now

    def add_in_use(self, usage: Mapping[tuple[str, str], int], now: float, sign: int) -> None:
        """Add ``usage`` (``(flavor, resource) → milli-units``) times ``sign`` under its own keys:
        what running pods take on each flavor's nodes. The engine's hot path (twice per job):
        :meth:`add`, inlined."""
        amounts = self._amounts
        for key, amount in usage.items():
            if not amount:
                continue
            held = amounts.get(key)
            if held is None:
                held = self._amount(key)
            value = held.value
            if value:
                held.integral += value * (now - held.since)
            held.value = value + sign * amount
            held.since = now

    def value(self, key: Key) -> int:
        held = self._amounts.get(key)
        return 0 if held is None else held.value

    def integrals(self, end: float) -> dict[Key, float]:
        """Each key's integral from the start of the run to ``end`` (milli-unit-seconds)."""
        out: dict[Key, float] = {}
        for key, held in self._amounts.items():
            total = held.integral
            if held.value:
                total += held.value * (end - held.since)
            out[key] = total
        return out

    def tracked(self) -> list[Key]:
        return list(self._amounts)
