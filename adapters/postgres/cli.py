"""``budcore db upgrade|downgrade|current|check``: schema management from the budcore CLI.

Registered through the ``budcore_register_commands`` hook, so the core CLI never imports the
adapter; ``python -m budcore_adapters.postgres`` offers the same commands without typer.
Quote the URL (``--url 'postgresql://u@host/db?sslmode=require'``): ``&`` and ``?`` mean
something to the shell.
"""

from __future__ import annotations

from typing import Annotated

import typer

from .engine import DEFAULT_CONNECT_TIMEOUT, check_connect_timeout
from .migrate import check_schema, confirm_downgrade, current_revision, downgrade, upgrade

UrlOption = Annotated[
    str | None,
    typer.Option("--url", help="Database URL, quoted (default: $BUDCORE_DATABASE_URL)."),
]
TimeoutOption = Annotated[
    int,
    typer.Option(
        "--connect-timeout",
        help="Seconds to wait for the server to answer a new connection (at least 2).",
        show_default=True,
    ),
]


def register(app: typer.Typer) -> None:
    db = typer.Typer(
        help="PostgreSQL schema for the postgres job store (Alembic migrations).", no_args_is_help=True
    )

    @db.command("upgrade")
    def upgrade_command(
        url: UrlOption = None,
        revision: Annotated[str, typer.Option(help="Target revision.")] = "head",
        connect_timeout: TimeoutOption = DEFAULT_CONNECT_TIMEOUT,
    ) -> None:
        """Migrate the database up to REVISION (default: head)."""
        timeout = check_connect_timeout(connect_timeout, "--connect-timeout")
        upgrade(url, revision, connect_timeout=timeout)
        typer.echo(f"at revision {current_revision(url, connect_timeout=timeout)}")

    @db.command("downgrade")
    def downgrade_command(
        revision: Annotated[str, typer.Option(help="Target revision ('base' removes every budcore table).")],
        url: UrlOption = None,
        yes: Annotated[bool, typer.Option("--yes", help="Confirm a downgrade to 'base'.")] = False,
        connect_timeout: TimeoutOption = DEFAULT_CONNECT_TIMEOUT,
    ) -> None:
        """Migrate the database down to REVISION ('base' needs --yes)."""
        confirm_downgrade(revision, yes)
        timeout = check_connect_timeout(connect_timeout, "--connect-timeout")
        downgrade(url, revision, connect_timeout=timeout)
        typer.echo(f"at revision {current_revision(url, connect_timeout=timeout) or 'base'}")

    @db.command("current")
    def current_command(
        url: UrlOption = None, connect_timeout: TimeoutOption = DEFAULT_CONNECT_TIMEOUT
    ) -> None:
        """Print the database's current revision."""
        timeout = check_connect_timeout(connect_timeout, "--connect-timeout")
        typer.echo(current_revision(url, connect_timeout=timeout) or "base")

    @db.command("check")
    def check_command(
        url: UrlOption = None, connect_timeout: TimeoutOption = DEFAULT_CONNECT_TIMEOUT
    ) -> None:
        """Fail unless the database is reachable and at head."""
        timeout = check_connect_timeout(connect_timeout, "--connect-timeout")
        typer.echo(f"ok: at head {check_schema(url, connect_timeout=timeout)}")

    app.add_typer(db, name="db")
