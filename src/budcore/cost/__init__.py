"""Cost: the price book (``PricingSource``) and per-second metering, in exact ``Decimal`` money."""

from budcore.cost.metering import (
    JobCost,
    TenantSpend,
    UsageLine,
    UsageRecord,
    UsageReport,
    billable_seconds,
    estimate_cost,
    job_costs,
    meter,
    record_cost,
    tenant_spend,
)
from budcore.cost.prices import (
    PriceBook,
    PriceBookDocument,
    PriceRow,
    default_price_book,
    load_price_book,
    money,
    parse_price_book,
    price_book_from_hourly,
    sample_price_book,
)

__all__ = [
    "JobCost",
    "PriceBook",
    "PriceBookDocument",
    "PriceRow",
    "TenantSpend",
    "UsageLine",
    "UsageRecord",
    "UsageReport",
    "billable_seconds",
    "default_price_book",
    "estimate_cost",
    "job_costs",
    "load_price_book",
    "meter",
    "money",
    "parse_price_book",
    "price_book_from_hourly",
    "record_cost",
    "sample_price_book",
    "tenant_spend",
]
