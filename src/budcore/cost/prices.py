"""The price book: what an accelerator-second costs, by type, tier, sharing mode and QoS.

Implements the :class:`budcore.ports.PricingSource` port from a YAML file shipped with the package
(``pricebook.yaml``, illustrative prices) or the user's own. Money is ``Decimal`` end to end;
per-second prices are the hourly price divided by 3600 *exactly* (no rounding until a bill is
rendered), so a million one-second records add up to the same cents as one long one.

Resolution (documented in the file too): an explicit row for (accelerator, tier, mode) wins; else
the full-GPU row in that tier times the sharing multiplier; else the default tier's full-GPU row
times the tier multiplier; else ``None`` ("no price known"), which callers report rather than
treat as free. Accelerator names go through the catalog, so ``A100-80GB``, ``A100-SXM4-80GB`` and
``nvidia-a100-80gb`` are one price; names the catalog does not know are priced under their own
normalised name (the seed's ``RTX-4090``).

The books here are registered as pricing sources by budcore's built-in plugin
(:mod:`budcore.plugins.builtin`, through the ``budcore_register_pricing_sources`` hook):
``default`` (:func:`default_price_book`), ``sample`` (:func:`sample_price_book`) and ``file``
(:func:`load_price_book`). Code that looks a book up by *name* goes through the plugin registry,
``default_registry().price_book(name)``, so a plugin's pricing source is found the same way.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from budcore.config.yamlsource import safe_load
from budcore.domain.errors import ValidationError
from budcore.domain.validation import validate_model
from budcore.hardware.catalog import Catalog, default_catalog, normalize_product

_FROZEN = ConfigDict(frozen=True, extra="forbid")

SECONDS_PER_HOUR = Decimal(3600)
CENT = Decimal("0.01")

EXCLUSIVE = "exclusive"
TIME_SLICING = "time-slicing"
MPS = "mps"
MIG = "mig"
MEMORY_FRACTION = "memory-fraction"
PER_REPLICA = "per-replica"

_MODE = re.compile(r"^(exclusive|time-slicing|mps|mig-\d+g\.\d+gb)$")
_FLAVOR_MIG = re.compile(r"^(?P<base>.+?)-mig-(?P<profile>\d+g\.\d+gb)$")


def check_mode(mode: str, path: str = "mode") -> str:
    """``mode`` if it is a sharing mode a price can be given for, else :class:`ValidationError`.

    An unknown mode must not silently price as a whole GPU.
    """
    if mode != EXCLUSIVE and not _MODE.match(mode):
        raise ValidationError(
            f"unknown sharing mode {mode!r}; expected exclusive, time-slicing, mps or mig-<profile> "
            "(e.g. mig-3g.40gb)",
            path=path,
        )
    return mode


def _check_replicas(replicas: int) -> None:
    if isinstance(replicas, bool) or not isinstance(replicas, int) or replicas < 1:
        raise ValidationError(f"must be a whole number >= 1, got {replicas!r}", path="replicas")


def money(amount: Decimal) -> Decimal:
    """Round to cents, half up (how a bill is rendered; keep exact amounts until then)."""
    return amount.quantize(CENT, rounding=ROUND_HALF_UP)


class PriceRow(BaseModel):
    """One row: an accelerator's price per hour in a tier for a sharing mode."""

    model_config = _FROZEN

    accelerator: str = Field(min_length=1)
    tier: str | None = None  # None: the book's default tier
    mode: str = EXCLUSIVE  # exclusive, time-slicing, mps or mig-<profile>
    per_hour: Decimal = Field(ge=0)

    @field_validator("mode")
    @classmethod
    def _check_mode(cls, value: str) -> str:
        if not _MODE.match(value):
            raise ValueError(
                f"mode {value!r} must be exclusive, time-slicing, mps or mig-<profile> (e.g. mig-3g.40gb)"
            )
        return value

    @property
    def per_second(self) -> Decimal:
        return self.per_hour / SECONDS_PER_HOUR


class PriceBookDocument(BaseModel):
    """The on-disk shape of a price book."""

    model_config = _FROZEN

    version: str = Field(min_length=1)
    currency: str = Field(default="USD", pattern=r"^[A-Z]{3}$")
    tiers: tuple[str, ...] = Field(min_length=1)
    default_tier: str
    tier_aliases: dict[str, str] = Field(default_factory=dict)
    tier_multipliers: dict[str, Decimal] = Field(default_factory=dict)
    sharing_multipliers: dict[str, Decimal | str] = Field(default_factory=dict)
    qos_multipliers: dict[str, Decimal] = Field(default_factory=dict)
    prices: tuple[PriceRow, ...] = ()

    @model_validator(mode="after")
    def _consistent(self) -> PriceBookDocument:
        tiers = set(self.tiers)
        if self.default_tier not in tiers:
            raise ValueError(f"default_tier {self.default_tier!r} is not one of tiers {list(self.tiers)}")
        for alias, target in self.tier_aliases.items():
            if target not in tiers:
                raise ValueError(f"tier alias {alias!r} points to unknown tier {target!r}")
        for tier, factor in self.tier_multipliers.items():
            if tier not in tiers:
                raise ValueError(f"tier_multipliers names unknown tier {tier!r}")
            if factor < 0:
                raise ValueError(f"tier multiplier for {tier!r} is negative")
        for mode, rule in self.sharing_multipliers.items():
            if mode not in (EXCLUSIVE, TIME_SLICING, MPS, MIG):
                raise ValueError(
                    f"sharing_multipliers: unknown mode {mode!r} (exclusive, time-slicing, mps, mig)"
                )
            if isinstance(rule, str) and rule not in (MEMORY_FRACTION, PER_REPLICA):
                raise ValueError(
                    f"sharing_multipliers.{mode}: {rule!r} is not a number, memory-fraction or per-replica"
                )
            if isinstance(rule, Decimal) and rule < 0:
                raise ValueError(f"sharing_multipliers.{mode} is negative")
        for qos, factor in self.qos_multipliers.items():
            if factor < 0:
                raise ValueError(f"qos multiplier for {qos!r} is negative")
        for i, row in enumerate(self.prices):
            tier = row.tier or self.default_tier
            if tier not in tiers:
                raise ValueError(f"prices[{i}]: tier {tier!r} is not one of tiers {list(self.tiers)}")
        return self

    @field_validator("sharing_multipliers", mode="before")
    @classmethod
    def _numbers_as_decimal(cls, value: Any) -> Any:
        if isinstance(value, Mapping):
            out: dict[str, Any] = {}
            for k, v in value.items():
                if isinstance(v, str) and v not in (MEMORY_FRACTION, PER_REPLICA):
                    try:
                        out[k] = Decimal(v)
                    except ArithmeticError:
                        out[k] = v
                else:
                    out[k] = v
            return out
        return value


class PriceBook:
    """A loaded price book (implements :class:`budcore.ports.PricingSource`)."""

    def __init__(self, document: PriceBookDocument, catalog: Catalog | None = None) -> None:
        self.document = document
        self.catalog = catalog if catalog is not None else default_catalog()
        self._rows: dict[tuple[str, str, str], PriceRow] = {}
        for i, row in enumerate(document.prices):
            key = (self.accelerator_key(row.accelerator), row.tier or document.default_tier, row.mode)
            if key in self._rows:
                raise ValidationError(
                    f"duplicate price for {row.accelerator} in tier {key[1]} mode {row.mode}",
                    path=f"prices[{i}]",
                )
            self._rows[key] = row

    # PricingSource ----------------------------------------------------------------------------
    def tiers(self) -> Sequence[str]:
        return self.document.tiers

    def hourly_price(self, accelerator: str, tier: str = "on-demand") -> Decimal | None:
        """Full-GPU (or, for a ``<slug>-mig-<profile>`` flavor name, per-slice) price per hour."""
        match = _FLAVOR_MIG.match(accelerator)
        if match and self.catalog.get(match.group("base")) is not None:
            return self.price(match.group("base"), tier, mode=f"mig-{match.group('profile')}")
        return self.price(accelerator, tier)

    # Everything else --------------------------------------------------------------------------
    @property
    def currency(self) -> str:
        return self.document.currency

    @property
    def version(self) -> str:
        return self.document.version

    def accelerator_key(self, name: str) -> str:
        """The catalog slug for ``name``, else its normalised form (priced under its own name)."""
        if self.catalog.get(name) is not None:
            return name
        accel = self.catalog.resolve(name)
        return accel.slug if accel is not None else "raw:" + normalize_product(name)

    def resolve_tier(self, tier: str | None) -> str | None:
        """The book's tier for ``tier`` (aliases applied); ``None`` if the book has no such tier."""
        if tier is None:
            return self.document.default_tier
        tier = self.document.tier_aliases.get(tier, tier)
        return tier if tier in self.document.tiers else None

    def qos_multiplier(self, qos: str | None) -> Decimal:
        """The QoS factor (guaranteed 2×, best-effort 0.5×); unknown or absent QoS is 1×."""
        if qos is None:
            return Decimal(1)
        return self.document.qos_multipliers.get(qos, Decimal(1))

    def sharing_multiplier(self, accelerator: str, mode: str, replicas: int = 1) -> Decimal | None:
        """The fraction of a full GPU's price one share costs (``None`` if it cannot be derived).

        Raises :class:`ValidationError` for an unknown ``mode`` or ``replicas`` < 1.
        """
        check_mode(mode)
        _check_replicas(replicas)
        if mode == EXCLUSIVE:
            rule: Decimal | str = self.document.sharing_multipliers.get(EXCLUSIVE, Decimal(1))
        elif mode.startswith("mig-"):
            rule = self.document.sharing_multipliers.get(MIG, MEMORY_FRACTION)
        else:
            rule = self.document.sharing_multipliers.get(mode, PER_REPLICA)
        if isinstance(rule, Decimal):
            return rule
        if rule == PER_REPLICA:
            return Decimal(1) / Decimal(max(replicas, 1))
        profile = mode.removeprefix("mig-")
        accel = self.catalog.get(self.accelerator_key(accelerator))
        mig = accel.mig_profile(profile) if accel else None
        if accel is None or mig is None:
            slices = re.match(r"^(\d+)g\.", profile)
            return Decimal(int(slices.group(1))) / 7 if slices else None
        return Decimal(str(mig.memory_gib)) / Decimal(str(accel.device_memory_gib))

    def price(
        self,
        accelerator: str,
        tier: str | None = None,
        *,
        mode: str = EXCLUSIVE,
        replicas: int = 1,
        qos: str | None = None,
    ) -> Decimal | None:
        """Per-hour price of one device (or one share of one) in ``tier`` (default tier if None).

        ``None`` when the book has no price (unknown accelerator or tier). An unknown ``mode``
        or ``replicas`` < 1 is a :class:`ValidationError` naming the argument, not a price.
        """
        check_mode(mode)
        _check_replicas(replicas)
        key = self.accelerator_key(accelerator)
        book_tier = self.resolve_tier(tier)
        if book_tier is None:
            return None
        base = self._base(key, book_tier, mode, accelerator, replicas)
        return None if base is None else base * self.qos_multiplier(qos)

    def per_second(
        self,
        accelerator: str,
        tier: str | None = None,
        *,
        mode: str = EXCLUSIVE,
        replicas: int = 1,
        qos: str | None = None,
    ) -> Decimal | None:
        hourly = self.price(accelerator, tier, mode=mode, replicas=replicas, qos=qos)
        return None if hourly is None else hourly / SECONDS_PER_HOUR

    def _base(self, key: str, tier: str, mode: str, name: str, replicas: int) -> Decimal | None:
        explicit = self._rows.get((key, tier, mode))
        if explicit is not None:
            return explicit.per_hour
        full = self._full(key, tier)
        if full is None:
            return None
        if mode == EXCLUSIVE:
            return full
        factor = self.sharing_multiplier(name, mode, replicas)
        return None if factor is None else full * factor

    def _full(self, key: str, tier: str) -> Decimal | None:
        row = self._rows.get((key, tier, EXCLUSIVE))
        if row is not None:
            return row.per_hour
        factor = self.document.tier_multipliers.get(tier)
        default = self._rows.get((key, self.document.default_tier, EXCLUSIVE))
        if factor is None or default is None:
            return None
        return default.per_hour * factor

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.document.model_dump(mode="json"), sort_keys=False)


def parse_price_book(text: str, source: str = "<price book>", catalog: Catalog | None = None) -> PriceBook:
    try:
        data = safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise ValidationError(
            f"invalid YAML: {exc}", source=source, line=mark.line + 1 if mark is not None else None
        ) from None
    if not isinstance(data, Mapping):
        raise ValidationError("a price book must be a mapping with 'tiers' and 'prices'", source=source)
    document = validate_model(PriceBookDocument, data, source=source)
    try:
        return PriceBook(document, catalog)
    except ValidationError as exc:
        raise ValidationError(exc.message, path=exc.path, source=source) from None


def load_price_book(path: str | Path, catalog: Catalog | None = None) -> PriceBook:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ValidationError(f"cannot read price book: {exc.strerror}", source=str(p)) from None
    return parse_price_book(text, str(p), catalog)


def _packaged(name: str) -> str:
    return resources.files("budcore.cost").joinpath(name).read_text(encoding="utf-8")


@lru_cache(maxsize=1)
def default_price_book() -> PriceBook:
    """The shipped illustrative price book (``budcore/cost/pricebook.yaml``)."""
    return parse_price_book(_packaged("pricebook.yaml"), "budcore/cost/pricebook.yaml")


@lru_cache(maxsize=1)
def sample_price_book() -> PriceBook:
    """The design document's price rows (seed 001 §7.3) as a price book."""
    return parse_price_book(_packaged("sample_pricebook.yaml"), "budcore/cost/sample_pricebook.yaml")


def price_book_from_hourly(
    prices: Mapping[str, Decimal | str | int],
    *,
    tier: str = "on-demand",
    version: str = "inline",
    catalog: Catalog | None = None,
) -> PriceBook:
    """A one-tier book from ``{accelerator: per-hour}`` (examples, tests, quick what-ifs).

    A price that is not a finite, non-negative number raises :class:`ValidationError` at
    ``prices.<accelerator>``.
    """
    rows: list[dict[str, Any]] = []
    for name, value in prices.items():
        path = f"prices.{name}"
        if isinstance(value, bool) or not isinstance(value, (Decimal, str, int, float)):
            raise ValidationError(f"price must be a number, got {type(value).__name__}", path=path)
        try:
            amount = value if isinstance(value, Decimal) else Decimal(str(value).strip())
        except (InvalidOperation, ValueError):
            raise ValidationError(f"price {value!r} is not a number", path=path) from None
        row = validate_model(PriceRow, {"accelerator": name, "tier": tier, "per_hour": amount}, prefix=path)
        rows.append(row.model_dump())
    document = validate_model(
        PriceBookDocument, {"version": version, "tiers": [tier], "default_tier": tier, "prices": rows}
    )
    return PriceBook(document, catalog)
