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

from collections.abc import Hashable, Iterable, Mapping
from typing import Generic, TypeVar, cast

K = TypeVar("K", bound=Hashable)


class Ledger(Generic[K]):
    """An amount per key (milli-units) and its integral over time (milli-unit-seconds)."""

    __slots__ = ("_integral", "_since", "_value")

    def __init__(self, keys: Iterable[K] = ()) -> None:
        self._value: dict[K, int] = dict.fromkeys(keys, 0)
        self._since: dict[K, float] = dict.fromkeys(self._value, 0.0)
        self._integral: dict[K, float] = dict.fromkeys(self._value, 0.0)

    def add(self, key: K, amount: int, now: float) -> None:
        """Change ``key``'s amount by ``amount`` (negative: less) at ``now``."""
        value = self._value.get(key, 0)
        if value:
            self._integral[key] = self._integral.get(key, 0.0) + value * (now - self._since[key])
        self._value[key] = value + amount
        self._since[key] = now

    def add_usage(
        self, owner: str, usage: Mapping[tuple[str, str], int], now: float, sign: int, *, by_flavor: bool
    ) -> None:
        """Add an admission's ``usage`` (``(flavor, resource) → milli-units``) times ``sign``, under
        ``(owner, resource)`` (``by_flavor=False``: a ClusterQueue's quota held) or under
        ``(flavor, resource)`` (``by_flavor=True``: in use on a flavor's nodes). The engine's hot
        path: :meth:`add`, inlined."""
        values, since, integral = self._value, self._since, self._integral
        for (flavor, resource), amount in usage.items():
            if not amount:
                continue
            key = cast("K", (flavor if by_flavor else owner, resource))
            value = values.get(key, 0)
            if value:
                integral[key] = integral.get(key, 0.0) + value * (now - since[key])
            values[key] = value + sign * amount
            since[key] = now

    def value(self, key: K) -> int:
        return self._value.get(key, 0)

    def integrals(self, end: float) -> dict[K, float]:
        """Each key's integral from the start of the run to ``end`` (milli-unit-seconds)."""
        out: dict[K, float] = {}
        for key, value in self._value.items():
            total = self._integral.get(key, 0.0)
            if value:
                total += value * (end - self._since[key])
            out[key] = total
        return out

    def tracked(self) -> list[K]:
        return list(self._value)
