"""Engines, URLs and transactions: the one place the adapter talks to the driver.

Every operation runs in :func:`run_transaction`, which

- retries the whole transaction on deadlock (``40P01``) and serialization failure (``40001``):
  both mean PostgreSQL rolled the transaction back, so running it again is safe;
- turns "cannot connect" into :class:`DatabaseUnavailableError` and every other driver error
  into :class:`DatabaseError`, with the URL's password masked, on one line; data errors (SQLSTATE
  class 22) keep only the server's primary message, which never quotes the values sent.

Every engine has a **connect timeout** (:data:`DEFAULT_CONNECT_TIMEOUT`, 10 s;
``PoolSettings(connect_timeout=...)``, or ``?connect_timeout=`` in the URL, which wins): a server
that accepts the TCP connection but never answers fails with one line naming ``host:port`` and
the timeout instead of hanging.

Connection-level failures are *not* retried: a commit whose acknowledgement was lost may or may not
have happened, and only the caller knows whether repeating the operation is idempotent.
"""

from __future__ import annotations

import os
import random
import time
import weakref
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

DEFAULT_CONNECT_TIMEOUT = 10  # seconds
MIN_CONNECT_TIMEOUT = 2  # libpq's (and psycopg's) minimum: smaller values mean 2 s
# The connect timeout each engine made here was built with, for error messages.
_CONNECT_TIMEOUTS: weakref.WeakKeyDictionary[Engine, int] = weakref.WeakKeyDictionary()


@dataclass(frozen=True, slots=True)
class PoolSettings:
    """SQLAlchemy connection-pool knobs (see ``sqlalchemy.create_engine``).

    ``pre_ping`` tests a pooled connection before use, so a database restart costs one reconnect
    rather than one failed request per stale connection. ``timeout`` bounds the wait for a free
    pooled connection; ``connect_timeout`` (whole seconds, at least 2: libpq's minimum) bounds
    opening a new one, per address the host name resolves to.
    """

    size: int = 5
    max_overflow: int = 10
    timeout: float = 30.0
    recycle: int = 1800
    pre_ping: bool = True
    connect_timeout: int = DEFAULT_CONNECT_TIMEOUT

    def __post_init__(self) -> None:
        check_connect_timeout(self.connect_timeout, "pool.connect_timeout")
        if self.size < 1:
            raise ValidationError(f"pool size must be at least 1, got {self.size}", path="pool.size")
        if self.max_overflow < 0:
            raise ValidationError("pool max_overflow must not be negative", path="pool.max_overflow")
        if self.timeout <= 0:
            raise ValidationError("pool timeout must be positive", path="pool.timeout")


def check_connect_timeout(value: object, path: str = "connect_timeout") -> int:
    """``value`` as a connect timeout in whole seconds (ValidationError unless an int >= 2)."""
    if not isinstance(value, int) or isinstance(value, bool) or value < MIN_CONNECT_TIMEOUT:
        raise ValidationError(
            f"connect timeout must be a whole number of seconds, at least {MIN_CONNECT_TIMEOUT} "
            f"(libpq's minimum), got {value!r}",
            path=path,
        )
    return value


def resolve_url(url: str | URL | None = None) -> URL:
    """The database URL from the argument or ``$BUDCORE_DATABASE_URL``, forced onto psycopg 3.

    ``postgresql://`` and ``postgres://`` (what most tools print) are accepted and mapped to the
    ``postgresql+psycopg`` driver; any other dialect is a ValidationError naming the field.
    """
    raw: str | URL | None = url if url is not None else os.environ.get(ENV_URL)
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        raise ValidationError(
            f"no database URL: pass --url (url=... in code) or set ${ENV_URL}", path="database_url"
        )
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


def create_engine(
    url: str | URL | None = None, pool: PoolSettings | None = None, *, connect_timeout: int | None = None
) -> Engine:
    """An engine for the budcore database with ``pool`` settings (defaults: :class:`PoolSettings`).

    ``connect_timeout`` (seconds) overrides ``pool.connect_timeout``; a ``connect_timeout`` in the
    URL's query overrides both.
    """
    settings = pool or PoolSettings()
    resolved = resolve_url(url)
    timeout = settings.connect_timeout if connect_timeout is None else check_connect_timeout(connect_timeout)
    connect_args: dict[str, object] = {}
    in_url = resolved.query.get("connect_timeout")
    if in_url is None:
        connect_args["connect_timeout"] = timeout
    else:
        raw = in_url if isinstance(in_url, str) else in_url[-1]
        try:
            timeout = max(int(float(raw)), MIN_CONNECT_TIMEOUT)
        except ValueError as exc:
            raise ValidationError(
                f"connect_timeout in the database URL must be a number of seconds, got {raw!r}",
                path="database_url",
            ) from exc
    engine = sa.create_engine(
        resolved,
        pool_size=settings.size,
        max_overflow=settings.max_overflow,
        pool_timeout=settings.timeout,
        pool_recycle=settings.recycle,
        pool_pre_ping=settings.pre_ping,
        connect_args=connect_args,
    )
    _CONNECT_TIMEOUTS[engine] = timeout
    return engine


def server_address(url: URL) -> str:
    """``host:port`` (or the Unix socket directory) the URL connects to, for messages."""
    host = url.host or url.query.get("host")
    port = url.port or url.query.get("port") or 5432
    if isinstance(host, tuple):
        host = ",".join(host)
    if isinstance(port, tuple):
        port = ",".join(port)
    if not host:
        return f"the default Unix socket (port {port})"
    if host.startswith("/"):
        return f"Unix socket {host} (port {port})"
    return f"{host}:{port}"


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


def _one_line(text: str) -> str:
    return "; ".join(line.strip() for line in text.strip().splitlines() if line.strip())


def _is_connect_timeout(exc: DBAPIError) -> bool:
    try:
        from psycopg.errors import ConnectionTimeout
    except ImportError:  # pragma: no cover - psycopg is the only driver
        return False
    return isinstance(exc.orig, ConnectionTimeout)


def translate(exc: SQLAlchemyError, engine: Engine) -> BudcoreError:
    """The budcore error for a driver error raised while talking to ``engine``'s database."""
    where = display_url(engine)
    if isinstance(exc, DBAPIError) and _is_connect_timeout(exc):
        timeout = _CONNECT_TIMEOUTS.get(engine)
        within = (
            f"within the {timeout} s connect timeout" if timeout is not None else "within the connect timeout"
        )
        return DatabaseUnavailableError(
            f"database {where} is unavailable: no answer from {server_address(engine.url)} {within} "
            "(is it a PostgreSQL server? set PoolSettings(connect_timeout=...), --connect-timeout or "
            "?connect_timeout= in the URL)"
        )
    if isinstance(exc, DBAPIError) and is_unavailable(exc):
        detail = _one_line(str(exc.orig)) if exc.orig is not None else _one_line(str(exc))
        return DatabaseUnavailableError(f"database {where} is unavailable: {detail}")
    if isinstance(exc, DBAPIError) and exc.orig is not None:
        state = _sqlstate(exc)
        detail = str(exc.orig)
        if state is not None and state.startswith("22"):
            # Data exceptions: the DETAIL/CONTEXT lines quote the offending value (a whole job
            # document, say); the primary message says what is wrong without it.
            primary = getattr(getattr(exc.orig, "diag", None), "message_primary", None)
            detail = primary if isinstance(primary, str) and primary else detail.splitlines()[0]
        return DatabaseError(f"database {where} error [{state}]: {_one_line(detail)}")
    return DatabaseError(f"database {where} error: {_one_line(str(exc).split('[SQL:')[0])}")


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
