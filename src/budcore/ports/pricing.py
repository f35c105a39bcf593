"""The pricing source port: what an accelerator-second costs.

Money is ``Decimal`` (never float). ``None`` means "no price known", which callers report rather
than treat as free.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Protocol, runtime_checkable


@runtime_checkable
class PricingSource(Protocol):
    def hourly_price(self, accelerator: str, tier: str = "on-demand") -> Decimal | None:
        """Price of one accelerator (catalog slug or flavor name) for one hour in ``tier``."""
        ...

    def tiers(self) -> Sequence[str]:
        """The price tiers this source knows (e.g. on-demand, spot, reserved, on-prem)."""
        ...
