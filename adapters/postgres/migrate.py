"""Schema management: Alembic driven from code, with the migrations shipped in the package.

No ``alembic.ini`` is needed at run time: :func:`alembic_config` points Alembic at the
``migrations`` directory next to this module and hands it an open connection. The CLI's
``budcore db upgrade --url …`` / ``budcore db downgrade`` map onto :func:`upgrade` and
:func:`downgrade`; services call :func:`check_schema` at start-up (the stores do it on
construction) so a database at the wrong revision fails fast with a message saying what to run,
instead of failing later on a missing column.
"""

from __future__ import annotations

import functools
import shlex
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy.engine import URL, Connection, Engine
from sqlalchemy.exc import SQLAlchemyError

from budcore.domain.errors import ValidationError

from .engine import create_engine, display_url, resolve_url, translate
from .errors import SchemaVersionError
from .schema import VERSION_TABLE

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"

Target = str | URL | Engine | None


def alembic_config(url: str | URL | None = None) -> Config:
    """An Alembic ``Config`` for the shipped migrations (``url`` only matters for ``--sql`` output)."""
    config = Config()
    # Revisions live in the default <script_location>/versions; naming no version_locations keeps
    # Alembic from splitting the path on spaces or commas.
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("version_table", VERSION_TABLE)
    if url is not None:
        rendered = resolve_url(url).render_as_string(hide_password=False)
        config.set_main_option("sqlalchemy.url", rendered.replace("%", "%%"))
    return config


@functools.cache
def head_revision() -> str:
    """The newest revision shipped with this version of budcore."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:  # pragma: no cover - the package always ships revisions
        raise SchemaVersionError("no migrations shipped with budcore_adapters.postgres")
    return head


def revisions() -> list[str]:
    """All shipped revisions, oldest first."""
    return list(_revisions())


@functools.cache
def _revisions() -> tuple[str, ...]:
    # The shipped scripts do not change while the process runs; stores check the schema on
    # construction, so parsing them once matters.
    script = ScriptDirectory.from_config(alembic_config())
    return tuple(rev.revision for rev in reversed(list(script.walk_revisions())))


def _engine(target: Target, connect_timeout: int | None = None) -> tuple[Engine, bool]:
    """The engine for ``target`` and whether we created it (and so must dispose of it)."""
    if isinstance(target, Engine):
        return target, False
    return create_engine(target, connect_timeout=connect_timeout), True


def _with_connection(target: Target, revision: str, action: str, connect_timeout: int | None) -> None:
    engine, owned = _engine(target, connect_timeout)
    try:
        with engine.begin() as conn:
            config = alembic_config()
            config.attributes["connection"] = conn
            if action == "upgrade":
                command.upgrade(config, revision)
            else:
                command.downgrade(config, revision)
    except CommandError as exc:
        raise ValidationError(f"cannot {action} to {revision!r}: {exc}", path="revision") from exc
    except SQLAlchemyError as exc:
        raise translate(exc, engine) from exc
    finally:
        if owned:
            engine.dispose()


def upgrade(url: Target = None, revision: str = "head", *, connect_timeout: int | None = None) -> None:
    """Migrate the database at ``url`` (or ``$BUDCORE_DATABASE_URL``) forward to ``revision``.

    Safe to run from several replicas at once (an advisory lock serialises them) and a no-op at
    the target revision. The whole upgrade is one transaction: it lands completely or not at all.
    ``connect_timeout`` (seconds) applies when an engine is built from a URL (default 10).
    """
    _with_connection(url, revision, "upgrade", connect_timeout)


def downgrade(url: Target, revision: str, *, connect_timeout: int | None = None) -> None:
    """Migrate the database back to ``revision`` (``"base"`` drops every budcore table)."""
    _with_connection(url, revision, "downgrade", connect_timeout)


def confirm_downgrade(revision: str, yes: bool) -> None:
    """Refuse ``downgrade --revision base`` (every budcore table and its data) without ``--yes``."""
    if revision == "base" and not yes:
        raise ValidationError(
            "downgrading to 'base' drops every budcore table and all jobs, quotas and events in "
            "them; pass --yes to confirm",
            path="--yes",
        )


def _current(conn: Connection) -> str | None:
    context = MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE})
    return context.get_current_revision()


def current_revision(url: Target = None, *, connect_timeout: int | None = None) -> str | None:
    """The database's revision, or ``None`` for a database budcore never migrated."""
    engine, owned = _engine(url, connect_timeout)
    try:
        with engine.connect() as conn:
            return _current(conn)
    except SQLAlchemyError as exc:
        raise translate(exc, engine) from exc
    finally:
        if owned:
            engine.dispose()


def upgrade_hint(url: URL | Engine) -> str:
    """The command that migrates ``url`` to head, ready to paste (URL shell-quoted)."""
    target = url.url if isinstance(url, Engine) else url
    command_line = f"budcore db upgrade --url {shlex.quote(display_url(target))}"
    if target.password is not None:
        command_line += " (with the real password for ***)"
    return command_line


def check_schema(url: Target = None, *, connect_timeout: int | None = None) -> str:
    """Return the head revision if the database is reachable and at it; raise otherwise.

    Raises :class:`DatabaseUnavailableError` when the server cannot be reached and
    :class:`SchemaVersionError` (saying which command fixes it) when the revision is not head.
    """
    current = current_revision(url, connect_timeout=connect_timeout)
    head = head_revision()
    if current == head:
        return head
    resolved = url.url if isinstance(url, Engine) else resolve_url(url)
    where = display_url(resolved)
    if current is None:
        raise SchemaVersionError(f"database {where} has no budcore schema; run `{upgrade_hint(resolved)}`")
    if current not in revisions():
        raise SchemaVersionError(
            f"database {where} is at revision {current!r}, which this budcore does not know "
            f"(newer than {head!r}?); upgrade budcore or downgrade the database"
        )
    raise SchemaVersionError(
        f"database {where} is at revision {current!r}, expected {head!r}; run `{upgrade_hint(resolved)}`"
    )


__all__ = [
    "MIGRATIONS_DIR",
    "alembic_config",
    "check_schema",
    "confirm_downgrade",
    "current_revision",
    "downgrade",
    "head_revision",
    "revisions",
    "upgrade",
    "upgrade_hint",
]
