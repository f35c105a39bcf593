"""Engines, URLs and transactions: the one place the adapter talks to the driver.

Every operation runs in :func:`run_transaction`, which

- retries the whole transaction on deadlock (``40P01``) and serialization failure (``40001``):
  both mean PostgreSQL rolled the transaction back, so running it again is safe;
- turns "cannot connect" into :class:`DatabaseUnavailableError` and every other driver error
  into :class:`DatabaseError`, with the URL's password masked.

Connection-level failures are *not* retried: a commit whose acknowledgement was lost may or may not
have happened, and only the caller knows whether repeating the operation is idempotent.
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import URL, Connection, Engine
from sqlalchemy.exc import ArgumentError, DBAPIError, SQLAlchemyError

from budcore.domain.errors import BudcoreError, ValidationError

from .errors import DatabaseError, DatabaseUnavailableError

ENV_URL = "BUDCORE_DATABASE_URL"
DRIVER = "postgresql+psycopg"

T = TypeVar("T")

_RETRYABLE_SQLSTATES = frozenset({"40001", "40P01"})  # serialization_failure, deadlock_detected


@dataclass(frozen=True, slots=True)
class PoolSettings:
    """SQLAlchemy connection-pool knobs (see ``sqlalchemy.create_engine``).

    ``pre_ping`` tests a pooled connection before use, so a database restart costs one reconnect
    rather than one failed request per stale connection.
    """

    size: int = 5
    max_overflow: int = 10
    timeout: float = 30.0
    recycle: int = 1800
    pre_ping: bool = True

    def __post_init__(self) -> None:
        if self.size < 1:
            raise ValidationError(f"pool size must be at least 1, got {self.size}", path="pool.size")
        if self.max_overflow < 0:
            raise ValidationError("pool max_overflow must not be negative", path="pool.max_overflow")
        if self.timeout <= 0:
            raise ValidationError("pool timeout must be positive", path="pool.timeout")


def resolve_url(url: str | URL | None = None) -> URL:
    """The database URL from the argument or ``$BUDCORE_DATABASE_URL``, forced onto psycopg 3.

    ``postgresql://`` and ``postgres://`` (what most tools print) are accepted and mapped to the
    ``postgresql+psycopg`` driver; any other dialect is a ValidationError naming the field.
    """
    raw: str | URL | None = url if url is not None else os.environ.get(ENV_URL)
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        raise ValidationError(f"no database URL: pass url=... or set ${ENV_URL}", path="database_url")
    try:
        parsed = sa.make_url(raw.strip() if isinstance(raw, str) else raw)
    except ArgumentError as exc:
        raise ValidationError(f"malformed database URL: {exc}", path="database_url") from exc
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername=DRIVER)
    if parsed.drivername != DRIVER:
        raise ValidationError(
            f"unsupported database driver {parsed.drivername!r}: use postgresql:// or {DRIVER}://",
            path="database_url",
        )
    return parsed


def display_url(url: URL | Engine) -> str:
    """The URL with its password masked, for error messages and logs."""
    target = url.url if isinstance(url, Engine) else url
    return target.render_as_string(hide_password=True)


def create_engine(url: str | URL | None = None, pool: PoolSettings | None = None) -> Engine:
    """An engine for the budcore database with ``pool`` settings (defaults: :class:`PoolSettings`)."""
    settings = pool or PoolSettings()
    return sa.create_engine(
        resolve_url(url),
        pool_size=settings.size,
        max_overflow=settings.max_overflow,
        pool_timeout=settings.timeout,
        pool_recycle=settings.recycle,
        pool_pre_ping=settings.pre_ping,
    )


def _sqlstate(exc: DBAPIError) -> str | None:
    state = getattr(exc.orig, "sqlstate", None)
    return state if isinstance(state, str) else None


def is_unavailable(exc: DBAPIError) -> bool:
    """Whether ``exc`` means "the server cannot be reached / the connection is gone"."""
    state = _sqlstate(exc)
    if exc.connection_invalidated:
        return True
    if state is None:
        return isinstance(exc, sa.exc.OperationalError | sa.exc.InterfaceError)
    # 08: connection exception; 28: invalid authorization; 3D000: no such database;
    # 57P01-57P03: admin shutdown / crash shutdown / cannot connect now.
    return state.startswith(("08", "28")) or state in ("3D000", "57P01", "57P02", "57P03")


def translate(exc: SQLAlchemyError, engine: Engine) -> BudcoreError:
    """The budcore error for a driver error raised while talking to ``engine``'s database."""
    where = display_url(engine)
    if isinstance(exc, DBAPIError) and is_unavailable(exc):
        detail = str(exc.orig).strip() if exc.orig is not None else str(exc)
        return DatabaseUnavailableError(f"database {where} is unavailable: {detail}")
    if isinstance(exc, DBAPIError) and exc.orig is not None:
        state = _sqlstate(exc)
        return DatabaseError(f"database {where} error [{state}]: {str(exc.orig).strip()}")
    return DatabaseError(f"database {where} error: {exc}")


def run_transaction(
    engine: Engine, work: Callable[[Connection], T], *, attempts: int = 8, isolation: str | None = None
) -> T:
    """Run ``work`` in one transaction, committing on success and retrying on deadlock/serialization.

    Budcore errors raised by ``work`` (ConflictError, InvalidTransitionError, ...) roll the
    transaction back and propagate unchanged.
    """
    for attempt in range(1, attempts + 1):
        try:
            with engine.connect() as conn:
                if isolation is not None:
                    conn = conn.execution_options(isolation_level=isolation)
                with conn.begin():
                    return work(conn)
        except DBAPIError as exc:
            if _sqlstate(exc) in _RETRYABLE_SQLSTATES and attempt < attempts:
                # Jittered exponential backoff so the transactions that collided do not collide again.
                time.sleep(random.uniform(0, 0.002 * 2**attempt))
                continue
            raise translate(exc, engine) from exc
        except SQLAlchemyError as exc:
            raise translate(exc, engine) from exc
    raise AssertionError("unreachable: the last attempt either returns or raises")
