"""``budcore reserve …``: capacity bookings from the command line.

``add`` books ``--quantity`` of a resource in a flavor of a ClusterQueue for ``[--start, --end)``,
checked against the ClusterQueue's nominal quota from ``--queues`` (Kueue YAML, loaded as
``budcore validate`` loads it) and against the bookings already stored (a conflict names the
overlap); ``list``, ``show`` and ``cancel`` read and remove them. The bookings live in a
:class:`~budcore.ports.ReservationStore` chosen by ``--store`` (or ``$BUDCORE_RESERVATIONS``): a
``postgresql://`` URL is the ``postgres`` store, anything else a JSON file of the ``inmemory`` store,
so bookings made by one invocation are there for the next.

Times are ISO 8601 with an offset or ``Z`` (a naive time is refused: whose 09:00?); quantities are
Kubernetes quantities (``16``, ``500m``). ``list`` and ``show`` print a table (``--wide``: one line
per row), or the same fields with ``--format json`` or ``csv``. Every input problem is a
``BudcoreError`` naming the option, which the main CLI prints as one line with exit status 2.
"""

from __future__ import annotations

import json
import os
import re
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Final

import typer
from rich.table import Table
from rich.text import Text

from budcore.cli.output import (
    TABLE_FORMAT_HELP,
    TABLE_FORMATS,
    WIDE_HELP,
    key_column,
    output_format,
    plain_console,
    print_table,
    report_width,
    write_csv,
)
from budcore.config.kueue import load_queue_config
from budcore.domain.errors import ValidationError, ValidationErrors
from budcore.domain.quantity import format_quantity, parse_quantity
from budcore.domain.reservation import Reservation
from budcore.domain.timeutil import utcnow
from budcore.domain.validation import validate_model
from budcore.ports.reservation_store import ReservationStore
from budcore.scheduling.reservations import capacity_for

__all__ = ["STORE_ENV", "open_store", "parse_time", "register", "state_at"]

#: The environment variable that gives ``--store`` its default.
STORE_ENV: Final = "BUDCORE_RESERVATIONS"

_POSTGRES_URL = re.compile(r"^postgres(?:ql)?(?:\+[A-Za-z0-9_]+)?://")

# Reservation fields → the option that sets them, so a refusal names what the user typed.
_OPTIONS: Final = {
    "name": "NAME",
    "owner": "--owner",
    "cluster_queue": "--cluster-queue",
    "flavor": "--flavor",
    "resource": "--resource",
    "quantity": "--quantity",
    "start": "--start",
    "end": "--end",
    "job_ids": "--job",
}

_STORE_HELP = (
    f"Where bookings live: a postgresql:// URL, or a JSON file (created if missing). Default: ${STORE_ENV}."
)
_TIME_EXAMPLE = "2026-01-02T09:00:00Z"

StoreOption = Annotated[str | None, typer.Option("--store", help=_STORE_HELP, show_default=False)]
FormatOption = Annotated[str, typer.Option("--format", help=TABLE_FORMAT_HELP)]
WideOption = Annotated[bool, typer.Option("--wide", help=WIDE_HELP)]
#: ``--format csv`` columns (the JSON fields, ``job_ids`` joined with ``;``).
CSV_FIELDS: Final = (
    "name",
    "owner",
    "cluster_queue",
    "flavor",
    "resource",
    "quantity",
    "quantity_milli",
    "start",
    "end",
    "job_ids",
    "created_at",
    "state",
)


def open_store(store: str | None) -> ReservationStore:
    """The store ``--store`` names (``$BUDCORE_RESERVATIONS`` when not given)."""
    from budcore.plugins import default_registry

    target = store or os.environ.get(STORE_ENV, "")
    if not target.strip():
        raise ValidationError(
            f"no reservation store: pass --store FILE.json (or a postgresql:// URL), or set ${STORE_ENV}",
            path="--store",
        )
    registry = default_registry()
    if _POSTGRES_URL.match(target):
        return registry.reservation_store("postgres", url=target)
    return registry.reservation_store("inmemory", path=Path(target).expanduser())


def parse_time(text: str, option: str) -> datetime:
    """ISO 8601 with an offset or ``Z`` → an aware datetime; anything else names ``option``."""
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValidationError(
            f"expected an ISO 8601 time with an offset or Z (e.g. {_TIME_EXAMPLE}), got {text!r}", path=option
        ) from None
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValidationError(
            f"{text!r} has no timezone: add an offset or Z (e.g. {_TIME_EXAMPLE})", path=option
        )
    return value


def state_at(reservation: Reservation, now: datetime) -> str:
    """``upcoming``, ``active`` or ``ended`` at ``now``."""
    if now < reservation.start:
        return "upcoming"
    return "active" if now < reservation.end else "ended"


def _time(value: datetime) -> str:
    """ISO 8601 in UTC with ``Z`` (every time budcore keeps is UTC)."""
    return value.isoformat().replace("+00:00", "Z")


def _as_json(reservation: Reservation, now: datetime) -> dict[str, Any]:
    return {
        "name": reservation.name,
        "owner": reservation.owner,
        "cluster_queue": reservation.cluster_queue,
        "flavor": reservation.flavor,
        "resource": reservation.resource,
        "quantity": format_quantity(reservation.quantity, reservation.resource),
        "quantity_milli": reservation.quantity,
        "start": _time(reservation.start),
        "end": _time(reservation.end),
        "job_ids": list(reservation.job_ids),
        "created_at": _time(reservation.created_at),
        "state": state_at(reservation, now),
    }


def _option_errors(exc: ValidationError) -> ValidationError:
    """``exc`` with field paths renamed to the options that set them."""
    errors = exc.errors if isinstance(exc, ValidationErrors) else [exc]
    renamed = []
    for error in errors:
        head = re.split(r"[.\[]", error.path, maxsplit=1)[0]
        # No field: the model's one check across fields, the end after the start.
        path = _OPTIONS.get(head, error.path) or "--end"
        renamed.append(ValidationError(error.message, path=path))
    return renamed[0] if len(renamed) == 1 else ValidationErrors(renamed)


def _print_one(
    reservation: Reservation, fmt: str, now: datetime, verb: str | None = None, wide: bool = False
) -> None:
    console = plain_console(soft_wrap=True)  # names come from the user: printed verbatim
    if fmt == "json":
        console.print_json(json.dumps(_as_json(reservation, now)))
        return
    if fmt == "csv":
        write_csv([_as_json(reservation, now)], CSV_FIELDS)
        return
    if verb is not None:
        console.print(Text.assemble((verb, "green"), f" {reservation.describe()}"), highlight=False)
        return
    table = Table(title=f"Reservation {reservation.name}", show_header=False)
    table.add_column("field")
    key_column(table, "value")
    for key, value in _as_json(reservation, now).items():
        if key == "job_ids":
            table.add_row(key, ", ".join(value) or "(any job of the owner)")
        else:
            table.add_row(key, str(value))
    print_table(table, wide=wide, console=plain_console())


def _print_many(reservations: list[Reservation], fmt: str, now: datetime, wide: bool = False) -> None:
    console = plain_console(width=report_width(160))  # names come from the user: printed verbatim
    if fmt == "json":
        console.print_json(json.dumps([_as_json(r, now) for r in reservations]))
        return
    if fmt == "csv":
        write_csv([_as_json(r, now) for r in reservations], CSV_FIELDS)
        return
    if not reservations:
        console.print("no reservations", highlight=False)
        return
    table = Table(title=f"Reservations (state at {_time(now.replace(microsecond=0))})")
    for column in ("name", "owner", "ClusterQueue", "flavor"):
        key_column(table, column)
    for column in ("resource", "quantity", "start", "end", "jobs", "state"):
        table.add_column(column)
    for r in reservations:
        table.add_row(
            r.name,
            r.owner,
            r.cluster_queue,
            r.flavor,
            r.resource,
            format_quantity(r.quantity, r.resource),
            _time(r.start),
            _time(r.end),
            ", ".join(r.job_ids) or "-",
            state_at(r, now),
        )
    print_table(table, wide=wide, console=console)


def register(app: typer.Typer) -> None:
    """Attach the ``reserve`` group to ``app``."""
    reserve = typer.Typer(
        help="Capacity bookings: hold quota of a ClusterQueue for a tenant over a time window.",
        no_args_is_help=True,
    )

    @reserve.command("add")
    def add_command(
        name: Annotated[str, typer.Argument(help="Name of the booking (unique in the store).")],
        owner: Annotated[str, typer.Option("--owner", help="Tenant (namespace) the room is held for.")],
        cluster_queue: Annotated[
            str, typer.Option("--cluster-queue", help="ClusterQueue whose quota is booked.")
        ],
        flavor: Annotated[str, typer.Option("--flavor", help="ResourceFlavor, e.g. h100.")],
        resource: Annotated[str, typer.Option("--resource", help="Resource, e.g. nvidia.com/gpu.")],
        quantity: Annotated[str, typer.Option("--quantity", help="Kubernetes quantity, e.g. 16 or 500m.")],
        start: Annotated[
            str, typer.Option("--start", help=f"ISO 8601 with offset or Z, e.g. {_TIME_EXAMPLE}.")
        ],
        end: Annotated[str, typer.Option("--end", help="ISO 8601 with offset or Z (exclusive).")],
        queues: Annotated[
            list[Path],
            typer.Option("--queues", help="Kueue YAML (ClusterQueues, ResourceFlavors): the quota."),
        ],
        jobs: Annotated[
            list[str] | None, typer.Option("--job", help="Only these jobs of the owner (repeatable).")
        ] = None,
        store: StoreOption = None,
        fmt: FormatOption = "table",
    ) -> None:
        """Book capacity; refused (naming the overlap) when it would overbook the nominal quota."""
        output_format(fmt, TABLE_FORMATS)
        fields: dict[str, Any] = {
            "name": name,
            "owner": owner,
            "cluster_queue": cluster_queue,
            "flavor": flavor,
            "resource": resource,
            "quantity": parse_quantity(quantity, "--quantity"),
            "start": parse_time(start, "--start"),
            "end": parse_time(end, "--end"),
            "job_ids": tuple(jobs or ()),
        }
        try:
            reservation = validate_model(Reservation, fields)
        except ValidationError as exc:
            raise _option_errors(exc) from None
        config = load_queue_config(*queues)
        try:
            capacity = capacity_for(config, reservation)
        except ValidationError as exc:
            raise _option_errors(exc) from None
        booked = open_store(store).book(reservation, capacity=capacity)
        _print_one(booked, fmt, utcnow(), verb="booked")
        feeding = [lq for lq in config.local_queues.values() if lq.cluster_queue == cluster_queue]
        if feeding and not any(lq.namespace == owner for lq in feeding):
            notes = plain_console(stderr=True, soft_wrap=True)
            notes.print(
                Text.assemble(
                    ("warning:", "bold yellow"),
                    f" namespace {owner!r} has no LocalQueue of ClusterQueue {cluster_queue!r} in the "
                    "queue configuration: its jobs cannot reach the booked room",
                ),
                highlight=False,
            )

    @reserve.command("list")
    def list_command(
        cluster_queue: Annotated[
            str | None, typer.Option("--cluster-queue", help="Only bookings of this ClusterQueue.")
        ] = None,
        since: Annotated[
            str | None, typer.Option("--from", help="Only bookings that end after this time.")
        ] = None,
        until: Annotated[
            str | None, typer.Option("--to", help="Only bookings that start before this time.")
        ] = None,
        store: StoreOption = None,
        fmt: FormatOption = "table",
        wide: WideOption = False,
    ) -> None:
        """Bookings by start, each with its state now (upcoming, active or ended)."""
        output_format(fmt, TABLE_FORMATS)
        start = None if since is None else parse_time(since, "--from")
        end = None if until is None else parse_time(until, "--to")
        if start is not None and end is not None and end <= start:
            raise ValidationError(f"must be after --from ({since})", path="--to")
        found = open_store(store).list(cluster_queue=cluster_queue, start=start, end=end)
        _print_many(found, fmt, utcnow(), wide)

    @reserve.command("show")
    def show_command(
        name: Annotated[str, typer.Argument(help="Name of the booking.")],
        store: StoreOption = None,
        fmt: FormatOption = "table",
        wide: WideOption = False,
    ) -> None:
        """One booking, with its state now."""
        output_format(fmt, TABLE_FORMATS)
        _print_one(open_store(store).get(name), fmt, utcnow(), wide=wide)

    @reserve.command("cancel")
    def cancel_command(
        name: Annotated[str, typer.Argument(help="Name of the booking.")],
        store: StoreOption = None,
        fmt: FormatOption = "table",
    ) -> None:
        """Remove a booking: its room is free again for everyone."""
        output_format(fmt, TABLE_FORMATS)
        _print_one(open_store(store).cancel(name), fmt, utcnow(), verb="cancelled")

    app.add_typer(reserve, name="reserve")
