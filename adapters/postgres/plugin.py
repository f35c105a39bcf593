"""Registers the PostgreSQL job store as ``postgres`` through the ``budcore.plugins`` entry point.

``registry.job_store("postgres", url=...)`` (or ``$BUDCORE_DATABASE_URL``) builds a
:class:`~.job_store.PostgresJobStore`; it checks that the schema is at head on construction.
``registry.admission_ledger("postgres", url=...)`` builds a
:class:`~.admission.PostgresAdmissionLedger` on such a store (or on ``store=`` given), and
``registry.reservation_store("postgres", url=...)`` a
:class:`~.reservations.PostgresReservationStore` (or on the engine of ``store=``/``engine=`` given), and
``registry.pipeline_store("postgres", url=...)`` a :class:`~.pipelines.PostgresPipelineStore` (the
same options), and ``registry.usage_log("postgres", url=...)`` a :class:`~.spend.PostgresSpendLedger`
(the metered usage ``budcore cost report`` reads; or on ``store=`` given).

Registering is dependency-free: this module imports nothing from the adapter at module level, so
a base install (without the ``postgres`` extra) still loads it and lists ``postgres``. SQLAlchemy,
psycopg and Alembic are imported when the store is built (a missing one is then a ``PluginError``
naming the module and ``pip install 'budcore[postgres]'``) or a ``budcore db`` command runs.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from budcore.plugins import hookimpl, lazy_factory
from budcore.plugins.hookspecs import Factory

EXTRA_HINT = "pip install 'budcore[postgres]'"


@hookimpl
def budcore_register_job_stores() -> Mapping[str, Factory]:
    return {"postgres": lazy_factory(".job_store:PostgresJobStore", package=__package__)}


@hookimpl
def budcore_register_admission_ledgers() -> Mapping[str, Factory]:
    return {"postgres": lazy_factory(".admission:open_ledger", package=__package__)}


@hookimpl
def budcore_register_reservation_stores() -> Mapping[str, Factory]:
    return {"postgres": lazy_factory(".reservations:PostgresReservationStore", package=__package__)}


@hookimpl
def budcore_register_pipeline_stores() -> Mapping[str, Factory]:
    return {"postgres": lazy_factory(".pipelines:PostgresPipelineStore", package=__package__)}


@hookimpl
def budcore_register_usage_logs() -> Mapping[str, Factory]:
    return {"postgres": lazy_factory(".spend:open_spend_ledger", package=__package__)}


#: What ``budcore --help`` lists for ``db`` (the group's help in :mod:`.cli`).
COMMANDS_HELP = "PostgreSQL schema for the postgres job store (Alembic migrations)."
_UNAVAILABLE_HELP = "PostgreSQL schema commands (unavailable: the postgres extra is not installed)."


def _register_cli(app: Any) -> None:
    try:
        from .cli import register
    except ModuleNotFoundError as exc:  # the postgres extra is not installed
        _register_unavailable(app, exc)
        return
    register(app)


def _extra_installed() -> bool:
    """Whether SQLAlchemy, Alembic and psycopg can be found (without importing them)."""
    from importlib.util import find_spec

    try:
        return all(find_spec(name) is not None for name in ("sqlalchemy", "alembic", "psycopg"))
    except (ImportError, ValueError):
        return False


@hookimpl
def budcore_register_commands(app: Any) -> None:
    # A placeholder where the CLI supports one: SQLAlchemy and Alembic load when `db` runs.
    if not hasattr(app, "add_lazy_command"):
        _register_cli(app)
        return
    line = COMMANDS_HELP if _extra_installed() else _UNAVAILABLE_HELP
    app.add_lazy_command("db", line, _register_cli, group=True, origin="plugin postgres")


def _register_unavailable(app: Any, exc: ModuleNotFoundError) -> None:
    """``budcore db …`` that explains what to install instead of the schema commands."""
    import typer

    from budcore.domain.errors import PluginError

    message = f"budcore db needs the postgres extra ({EXTRA_HINT}): missing module {exc.name!r}"
    db = typer.Typer(help=_UNAVAILABLE_HELP)

    @db.callback(invoke_without_command=True, context_settings={"ignore_unknown_options": True})
    def unavailable(
        args: list[str] | None = typer.Argument(None, hidden=True),
    ) -> None:
        raise PluginError(message)

    app.add_typer(db, name="db")
