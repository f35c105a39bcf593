"""A throwaway PostgreSQL server for the session, and fresh databases on demand.

The server (see :mod:`budcore_adapters.postgres.tempserver`) listens only on a Unix socket in a
private temporary directory and runs as an unprivileged account when the tests run as root. It is
stopped and its directory removed at the end of the session, also when tests fail. Without the
PostgreSQL binaries or the ``postgres`` extra the tests are skipped with the reason.

Fixtures:

- ``pg_server``: the running server (session);
- ``new_database``: a factory creating an empty database with a unique name, dropped afterwards;
- ``pg_url``: one database per test module, migrated to head — modules that need isolation
  from each other get it without paying for a database per test.
"""

from __future__ import annotations

import importlib.util
import itertools
import os
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from budcore_adapters.postgres.tempserver import TemporaryPostgres

_names = itertools.count()
_EXTRA = ("sqlalchemy", "psycopg", "alembic")


def _unavailable(reason: str) -> None:
    """Skip on a machine without PostgreSQL; fail where it is required (CI sets the variable)."""
    if os.environ.get("BUDCORE_REQUIRE_POSTGRES"):
        pytest.fail(f"BUDCORE_REQUIRE_POSTGRES is set but {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def pg_server() -> Iterator[TemporaryPostgres]:
    missing = [name for name in _EXTRA if importlib.util.find_spec(name) is None]
    if missing:
        _unavailable(
            f"the postgres extra is not installed (pip install 'budcore[postgres]'): missing {missing}"
        )
    from budcore_adapters.postgres.tempserver import ServerUnavailableError, TemporaryPostgres, find_bin_dir

    try:
        find_bin_dir()
    except ServerUnavailableError as exc:
        _unavailable(f"PostgreSQL is not available: {exc}")
    server = TemporaryPostgres()
    try:
        server.start()
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def new_database(pg_server: TemporaryPostgres) -> Iterator[Callable[[], str]]:
    created: list[str] = []

    def make() -> str:
        name = f"budcore_test_{os.getpid()}_{next(_names)}"
        created.append(name)
        return pg_server.create_database(name)

    yield make
    for name in created:
        pg_server.drop_database(name)


@pytest.fixture(scope="module")
def pg_url(new_database: Callable[[], str]) -> str:
    from budcore_adapters.postgres import upgrade

    url = new_database()
    upgrade(url)
    return url
