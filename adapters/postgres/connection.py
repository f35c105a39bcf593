"""Opening the engine a store or dispatcher works on, the same way for every component."""

from __future__ import annotations

from sqlalchemy.engine import URL, Engine

from budcore.domain.errors import ValidationError

from . import migrate
from .engine import PoolSettings, create_engine


def open_engine(
    url: str | URL | None, pool: PoolSettings | None, engine: Engine | None, *, check_schema: bool
) -> tuple[Engine, bool]:
    """The engine to use and whether the caller owns it (and must dispose of it on close).

    Either an ``engine`` is shared in (several components on one pool), or one is built from
    ``url``/``pool``. With ``check_schema`` the database must be reachable and at head; a failed
    check disposes of an engine built here, so nothing leaks.
    """
    if engine is not None and (url is not None or pool is not None):
        raise ValidationError("pass either an engine or a url/pool, not both", path="engine")
    owns = engine is None
    opened = engine if engine is not None else create_engine(url, pool)
    if check_schema:
        try:
            migrate.check_schema(opened)
        except BaseException:
            if owns:
                opened.dispose()
            raise
    return opened, owns
