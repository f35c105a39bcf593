"""``budcore db upgrade|downgrade|current|check``: schema management from the budcore CLI.

Registered through the ``budcore_register_commands`` hook, so the core CLI never imports the
adapter; ``python -m budcore_adapters.postgres`` offers the same commands without typer.
"""

from __future__ import annotations

from typing import Annotated

import typer

from .migrate import check_schema, current_revision, downgrade, upgrade

UrlOption = Annotated[
    str | None, typer.Option("--url", help="Database URL (default: $BUDCORE_DATABASE_URL).")
]


def register(app: typer.Typer) -> None:
    db = typer.Typer(
        help="PostgreSQL schema for the postgres job store (Alembic migrations).", no_args_is_help=True
    )

    @db.command("upgrade")
    def upgrade_command(
        url: UrlOption = None,
        revision: Annotated[str, typer.Option(help="Target revision.")] = "head",
    ) -> None:
        """Migrate the database up to REVISION (default: head)."""
        upgrade(url, revision)
        typer.echo(f"at revision {current_revision(url)}")

    @db.command("downgrade")
    def downgrade_command(
        revision: Annotated[str, typer.Option(help="Target revision ('base' removes every budcore table).")],
        url: UrlOption = None,
    ) -> None:
        """Migrate the database down to REVISION."""
        downgrade(url, revision)
        typer.echo(f"at revision {current_revision(url) or 'base'}")

    @db.command("current")
    def current_command(url: UrlOption = None) -> None:
        """Print the database's current revision."""
        typer.echo(current_revision(url) or "base")

    @db.command("check")
    def check_command(url: UrlOption = None) -> None:
        """Fail unless the database is reachable and at head."""
        typer.echo(f"ok: at head {check_schema(url)}")

    app.add_typer(db, name="db")
