"""``budcore cost …``: what GPU time cost, and who owes whom for borrowed quota.

``report`` prices metered usage over ``[--from, --to)`` with a price book and groups it by tenant,
ClusterQueue or job, applying the chargeback rule (:mod:`budcore.cost.chargeback`: borrowed usage
is charged at the lender's rate and credited to the lender). Usage comes from a usage log: a
simulation's ``usage_records.csv``/``.jsonl`` (``--usage``) or a store registered under
``budcore_register_usage_logs`` (``--store postgres --url postgresql://…``). Every line's money is
rounded once and the totals are the sums of the printed lines, so a CSV column adds up exactly.

``--from``/``--to`` take an ISO date (midnight UTC) or datetime (naive means UTC). Every input
problem is a ``BudcoreError`` naming the option, printed as one line with exit status 2.
"""

from __future__ import annotations

import re
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Final, cast

import typer

from budcore.cli.output import plain_console, report_width
from budcore.cost.chargeback import ChargebackPolicy
from budcore.cost.prices import PriceBook
from budcore.cost.report import REPORT_BY, ReportBy, cost_report, report_table, write_csv, write_json
from budcore.domain.errors import ValidationError
from budcore.ports.spend import UsageLog

__all__ = ["FORMATS", "open_usage_log", "parse_instant", "parse_tier_of", "register", "resolve_price_book"]

#: ``--format`` of ``cost report``: the CLI's usual two plus CSV for spreadsheets.
FORMATS: Final = ("table", "csv", "json")
_POSTGRES_URL = re.compile(r"^postgres(?:ql)?(?:\+[A-Za-z0-9_]+)?://")
_EXAMPLE = "2026-03-01 or 2026-03-01T12:00:00Z"


def parse_instant(text: str, option: str) -> datetime:
    """An ISO date (midnight UTC) or datetime (naive: UTC) → an aware datetime."""
    try:
        parsed = datetime.fromisoformat(text.strip())  # a date alone is its midnight
    except ValueError:
        raise ValidationError(
            f"expected an ISO date or time (e.g. {_EXAMPLE}), got {text!r}", path=option
        ) from None
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        return parsed.replace(tzinfo=UTC)
    return parsed


def parse_tier_of(values: list[str] | None) -> dict[str, str]:
    """``--tier-of ACCOUNT=TIER`` (repeatable) → ``{account: tier}``."""
    out: dict[str, str] = {}
    for value in values or ():
        account, sep, tier = value.partition("=")
        account, tier = account.strip(), tier.strip()
        if not sep or not account or not tier:
            raise ValidationError(
                f"expected ACCOUNT=TIER (e.g. research=spot), got {value!r}", path="--tier-of"
            )
        if account in out and out[account] != tier:
            raise ValidationError(
                f"{account!r} is given two tiers ({out[account]}, {tier})", path="--tier-of"
            )
        out[account] = tier
    return out


def resolve_price_book(spec: str) -> PriceBook:
    """``--price-book``: a registered pricing source's name, else a YAML file's path."""
    from budcore.plugins import default_registry

    registry = default_registry()
    if registry.get("pricing_source", spec) is not None:
        return registry.price_book(spec)
    path = Path(spec).expanduser()
    if not path.is_file():
        names = ", ".join(registry.names("pricing_source"))
        raise ValidationError(
            f"{spec!r} is neither a price book file nor a registered pricing source ({names})",
            path="--price-book",
        )
    return registry.price_book("file", path=path)


def open_usage_log(usage: Path | None, store: str | None, url: str | None) -> UsageLog:
    """The usage log the options name: ``--usage FILE``, or ``--store NAME`` (with ``--url``)."""
    from budcore.plugins import default_registry

    if usage is not None and (store is not None or url is not None):
        raise ValidationError("give either --usage FILE or --store NAME/--url URL, not both", path="--usage")
    registry = default_registry()
    if usage is not None:
        return registry.usage_log("file", path=usage.expanduser())
    if store is None and url is not None:
        if not _POSTGRES_URL.match(url):
            raise ValidationError("a --url without --store must be a postgresql:// URL", path="--url")
        store = "postgres"
    if store is None:
        raise ValidationError(
            "no usage to report: pass --usage FILE (a simulation's usage_records.csv) "
            "or --store NAME --url URL",
            path="--usage",
        )
    return registry.usage_log(store, **({"url": url} if url is not None else {}))


def register(app: typer.Typer) -> None:
    """Attach the ``cost`` group to ``app``."""
    cost = typer.Typer(help="Cost reports and chargeback over metered GPU usage.", no_args_is_help=True)

    @cost.command("report")
    def report_command(
        since: Annotated[str, typer.Option("--from", help=f"Start (inclusive): {_EXAMPLE}.")],
        until: Annotated[str, typer.Option("--to", help="End (exclusive), like --from.")],
        by: Annotated[
            str, typer.Option("--by", help="Group by tenant, queue (ClusterQueue) or job.")
        ] = "tenant",
        fmt: Annotated[str, typer.Option("--format", help="Output format: table, csv or json.")] = "table",
        usage: Annotated[
            Path | None, typer.Option("--usage", help="A usage file (.csv or .jsonl), e.g. a simulation's.")
        ] = None,
        store: Annotated[
            str | None, typer.Option("--store", help="A registered usage log, e.g. postgres.")
        ] = None,
        url: Annotated[str | None, typer.Option("--url", help="The store's URL (postgresql://…).")] = None,
        price_book: Annotated[
            str, typer.Option("--price-book", help="A pricing source name or a price book YAML file.")
        ] = "default",
        tier_of: Annotated[
            list[str] | None,
            typer.Option("--tier-of", help="ACCOUNT=TIER: an account's price tier (repeatable)."),
        ] = None,
    ) -> None:
        """Charged, credited and net cost per tenant, queue or job; totals add up exactly."""
        if fmt not in FORMATS:
            raise ValidationError(f"unknown format {fmt!r}; use {', '.join(FORMATS)}", path="--format")
        if by not in REPORT_BY:
            raise ValidationError(f"unknown grouping {by!r}; use {', '.join(REPORT_BY)}", path="--by")
        start, end = parse_instant(since, "--from"), parse_instant(until, "--to")
        if end <= start:
            raise ValidationError(f"must be after --from ({start.isoformat()})", path="--to")
        tiers = parse_tier_of(tier_of)
        book = resolve_price_book(price_book)
        policy = ChargebackPolicy(tier_of=tiers)
        try:
            policy.check(book)
        except ValidationError as exc:
            raise ValidationError(exc.message, path="--tier-of") from None
        log = open_usage_log(usage, store, url)
        records = log.usage(start, end)
        report = cost_report(records, book, by=cast(ReportBy, by), start=start, end=end, policy=policy)
        if fmt == "csv":
            write_csv(report, sys.stdout)
        elif fmt == "json":
            write_json(report, sys.stdout)
        else:
            plain_console(width=report_width(160)).print(report_table(report))

    app.add_typer(cost, name="cost")
