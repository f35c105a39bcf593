"""Cost reports: chargeback lines over a period, rounded once, with totals that add up exactly.

What finance needs from ``budcore cost report`` is a table whose columns add up: each money cell
of a line is the line's exact amount (a Fraction, see :mod:`budcore.cost.chargeback`) rounded to
cents once, and a total is the sum of the rounded cells above it — never the rounded exact total,
which can differ from that sum by a few cents and make a spreadsheet disagree with the report.
``net`` is ``charged − credited`` of the rounded cells, so it adds up both across a row and down
its column. ``device_hours`` is rounded to :data:`HOURS_PLACES` places the same way.

Lines by ``tenant``, ``queue`` (the record's ClusterQueue; :data:`NO_QUEUE` without one) or
``job``. Usage is clipped to ``[start, end)`` before it is priced. A lender's credit lands on the
lender's own line when reporting by queue; by tenant or job a lender (a ClusterQueue or a
``cohort:<name>`` account, not a tenant or a job) gets a line of its own, ``lender:<account>``, so
that credits are never dropped and Σ credited == Σ borrowed charges still shows in the totals.
Usage the book cannot price is never free: it is reported in ``unpriced_device_hours`` (own usage,
plus lent usage on a lender's line) and left out of the money cells.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from fractions import Fraction
from typing import IO, TYPE_CHECKING, Any, Final, Literal, get_args

from budcore.cost.chargeback import ChargebackLine, ChargebackPolicy, chargeback, round_money
from budcore.cost.metering import UsageRecord
from budcore.cost.prices import PriceBook
from budcore.domain.errors import ValidationError

if TYPE_CHECKING:
    from rich.table import Table

ReportBy = Literal["tenant", "queue", "job"]
REPORT_BY: Final[tuple[str, ...]] = get_args(ReportBy)
#: The key of usage without a ClusterQueue in a report by queue.
NO_QUEUE: Final = "(none)"
#: The key of the totals line (a name no tenant, queue or job can have).
TOTAL: Final = "(total)"
#: The prefix of a lender's line in a report by tenant or job.
LENDER_PREFIX: Final = "lender:"
HOURS_PLACES: Final = 4
_HOURS_QUANTUM: Final = Decimal(1).scaleb(-HOURS_PLACES)
#: The CSV columns after the key column (named after ``by``).
COLUMNS: Final = ("device_hours", "charged", "credited", "net", "unpriced_device_hours", "currency")


@dataclass(frozen=True)
class CostRow:
    """One line of a report: every cell already rounded (money to cents)."""

    key: str
    device_hours: Decimal
    charged: Decimal
    credited: Decimal
    net: Decimal
    unpriced_device_hours: Decimal

    def cells(self) -> dict[str, str]:
        """The cells as text (money as ``"12.34"``), for CSV and JSON."""
        return {
            "device_hours": str(self.device_hours),
            "charged": str(self.charged),
            "credited": str(self.credited),
            "net": str(self.net),
            "unpriced_device_hours": str(self.unpriced_device_hours),
        }


@dataclass(frozen=True)
class CostReport:
    """Chargeback lines over ``[start, end)`` and their totals (the sums of the rounded lines)."""

    by: str
    start: datetime
    end: datetime
    currency: str
    price_book: str  # the book's version
    rows: tuple[CostRow, ...]
    total: CostRow
    unpriced: tuple[str, ...]  # accelerators the book could not price

    @property
    def fully_priced(self) -> bool:
        return self.total.unpriced_device_hours == 0 and not self.unpriced


def _hours(device_seconds: int) -> Decimal:
    """Device-seconds as hours, rounded once (half up) to HOURS_PLACES places."""
    exact = Fraction(device_seconds, 3600)
    scaled = exact * 10**HOURS_PLACES
    whole, remainder = divmod(scaled.numerator, scaled.denominator)
    if 2 * remainder >= scaled.denominator:
        whole += 1
    return Decimal(whole).scaleb(-HOURS_PLACES).quantize(_HOURS_QUANTUM)  # exact: only the exponent


def _row(line: ChargebackLine) -> CostRow:
    charged, credited = round_money(line.charged), round_money(line.credited)
    return CostRow(
        key=line.account,
        device_hours=_hours(line.device_seconds),
        charged=charged,
        credited=credited,
        net=charged - credited,
        unpriced_device_hours=_hours(line.unpriced_device_seconds + line.unpriced_lent_device_seconds),
    )


def _key(by: str) -> tuple[Callable[[UsageRecord], str], Callable[[str], str]]:
    if by == "tenant":
        return (lambda r: r.tenant), (lambda lender: LENDER_PREFIX + lender)
    if by == "job":
        return (lambda r: r.job_id), (lambda lender: LENDER_PREFIX + lender)
    if by == "queue":
        return (lambda r: r.cluster_queue or NO_QUEUE), str
    raise ValidationError(f"unknown grouping {by!r}; use {', '.join(REPORT_BY)}", path="by")


def _clipped(records: Iterable[UsageRecord], start: datetime, end: datetime) -> Iterator[UsageRecord]:
    for record in records:
        part = record.clipped(start, end)
        if part is not None:
            yield part


def cost_report(
    records: Iterable[UsageRecord],
    prices: PriceBook,
    *,
    by: ReportBy,
    start: datetime,
    end: datetime,
    policy: ChargebackPolicy | None = None,
) -> CostReport:
    """Charged, credited and net per ``by`` over ``[start, end)`` (see the module docstring).

    ``start``/``end`` must be timezone-aware and ``end`` after ``start`` (else a
    :class:`ValidationError` naming it); ``policy`` gives accounts' price tiers (default: none).
    """
    for name, value in (("start", start), ("end", end)):
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValidationError("must be timezone-aware (UTC)", path=name)
    if end <= start:
        raise ValidationError(f"must be after start ({start.isoformat()})", path="end")
    key, lender_key = _key(by)
    result = chargeback(_clipped(records, start, end), prices, policy, key=key, lender_key=lender_key)
    lines = sorted(
        result.lines.values(), key=lambda line: (line.account.startswith(LENDER_PREFIX), line.account)
    )
    rows = tuple(_row(line) for line in lines)
    total = CostRow(
        key=TOTAL,
        device_hours=sum((r.device_hours for r in rows), Decimal("0.0000")),
        charged=sum((r.charged for r in rows), Decimal("0.00")),
        credited=sum((r.credited for r in rows), Decimal("0.00")),
        net=sum((r.net for r in rows), Decimal("0.00")),
        unpriced_device_hours=sum((r.unpriced_device_hours for r in rows), Decimal("0.0000")),
    )
    return CostReport(
        by=by,
        start=start,
        end=end,
        currency=prices.currency,
        price_book=prices.version,
        rows=rows,
        total=total,
        unpriced=result.unpriced,
    )


def write_csv(report: CostReport, out: IO[str]) -> None:
    """The report as CSV, a line at a time: a header, the lines, then the :data:`TOTAL` line."""
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow((report.by, *COLUMNS))
    for row in (*report.rows, report.total):
        writer.writerow((row.key, *row.cells().values(), report.currency))


def report_json(report: CostReport) -> dict[str, Any]:
    """The report as JSON-ready data: money as strings (``"12.34"``), never floats."""
    return {
        "by": report.by,
        "from": report.start.isoformat(),
        "to": report.end.isoformat(),
        "currency": report.currency,
        "price_book": report.price_book,
        "rows": [{"key": row.key, **row.cells()} for row in report.rows],
        "total": report.total.cells(),
        "fully_priced": report.fully_priced,
        "unpriced_accelerators": list(report.unpriced),
    }


def write_json(report: CostReport, out: IO[str]) -> None:
    json.dump(report_json(report), out, indent=2)
    out.write("\n")


def report_table(report: CostReport) -> Table:
    """The report as a rich table for people (money right-aligned, the totals as its footer)."""
    from rich.table import Table  # presentation only: the core imports rich when it renders

    title = f"Cost by {report.by} in {report.currency}"
    caption = f"[{report.start.isoformat()}, {report.end.isoformat()}), price book {report.price_book}"
    if not report.fully_priced:
        caption += (
            f"; {report.total.unpriced_device_hours} device-hours have no price in the book "
            f"({', '.join(report.unpriced)}): the money columns leave them out"
        )
    table = Table(title=title, caption=caption, show_footer=True)
    total = report.total
    table.add_column(report.by, footer=TOTAL)
    table.add_column("device-h", justify="right", footer=str(total.device_hours))
    table.add_column("charged", justify="right", footer=str(total.charged))
    table.add_column("credited", justify="right", footer=str(total.credited))
    table.add_column("net", justify="right", footer=str(total.net))
    table.add_column("unpriced device-h", justify="right", footer=str(total.unpriced_device_hours))
    for row in report.rows:
        cells = row.cells()
        table.add_row(row.key, *(cells[name] for name in COLUMNS[:-1]))
    return table


__all__ = [
    "COLUMNS",
    "LENDER_PREFIX",
    "NO_QUEUE",
    "REPORT_BY",
    "TOTAL",
    "CostReport",
    "CostRow",
    "ReportBy",
    "cost_report",
    "report_json",
    "report_table",
    "write_csv",
    "write_json",
]
