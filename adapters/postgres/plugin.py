"""Registers the PostgreSQL job store as ``postgres`` through the ``budcore.plugins`` entry point.

``registry.job_store("postgres", url=...)`` (or ``$BUDCORE_DATABASE_URL``) builds a
:class:`~.job_store.PostgresJobStore`; it checks that the schema is at head on construction.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from budcore.plugins import hookimpl
from budcore.plugins.hookspecs import Factory

from .job_store import PostgresJobStore


@hookimpl
def budcore_register_job_stores() -> Mapping[str, Factory]:
    return {"postgres": PostgresJobStore}


@hookimpl
def budcore_register_commands(app: Any) -> None:
    from .cli import register

    register(app)
