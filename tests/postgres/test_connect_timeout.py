"""Connect timeout: a server that accepts TCP connections but never answers fails fast, clearly.

The "server" is a socket in this process bound to 127.0.0.1:0 that accepts every connection and
never sends a byte — what a wrong port, a half-dead proxy or a firewall black hole looks like to
libpq. Before the timeout existed every entry point (stores, dispatchers, ``budcore db``) hung.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

pytest.importorskip("sqlalchemy")

import sqlalchemy as sa
from budcore_adapters.postgres import (
    DEFAULT_CONNECT_TIMEOUT,
    DatabaseUnavailableError,
    OutboxDispatcher,
    PoolSettings,
    PostgresJobStore,
    create_engine,
)
from budcore_adapters.postgres.__main__ import main as module_main

from budcore.cli import main as budcore_main
from budcore.domain.errors import ValidationError
from budcore.testing.fakes import RecordingEventSink

pytestmark = pytest.mark.postgres

SHORT = 2  # libpq's minimum connect timeout
SLACK = 6.0  # seconds allowed on top of the timeout on a loaded 2-core machine


class Blackhole:
    """Accepts connections on 127.0.0.1 and never replies (until closed)."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.1)
        self.port: int = self.sock.getsockname()[1]
        self.accepted: list[socket.socket] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:  # timeout (TimeoutError is an OSError) or closed
                continue
            self.accepted.append(conn)

    def url(self, query: str = "") -> str:
        return f"postgresql://budcore@127.0.0.1:{self.port}/budcore{query}"

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        for conn in self.accepted:
            conn.close()
        self.sock.close()


@pytest.fixture
def blackhole() -> Iterator[Blackhole]:
    server = Blackhole()
    try:
        yield server
    finally:
        server.close()


def assert_clear_timeout(message: str, server: Blackhole, timeout: int) -> None:
    assert "\n" not in message
    assert f"127.0.0.1:{server.port}" in message
    assert f"{timeout} s connect timeout" in message
    assert server.accepted, "the TCP connection was made: the wait was for an answer"


def test_a_store_against_a_silent_server_fails_within_its_connect_timeout(blackhole: Blackhole) -> None:
    started = time.monotonic()
    with pytest.raises(DatabaseUnavailableError) as info:
        PostgresJobStore(blackhole.url(), pool=PoolSettings(connect_timeout=SHORT))
    elapsed = time.monotonic() - started
    assert SHORT - 0.5 <= elapsed < SHORT + SLACK
    assert_clear_timeout(str(info.value), blackhole, SHORT)


def test_a_dispatcher_and_a_store_without_schema_check_fail_the_same_way(blackhole: Blackhole) -> None:
    with pytest.raises(DatabaseUnavailableError) as info:
        OutboxDispatcher(blackhole.url(), sink=RecordingEventSink(), pool=PoolSettings(connect_timeout=SHORT))
    assert_clear_timeout(str(info.value), blackhole, SHORT)
    store = PostgresJobStore(blackhole.url(), pool=PoolSettings(connect_timeout=SHORT), check_schema=False)
    try:
        started = time.monotonic()
        with pytest.raises(DatabaseUnavailableError) as info:
            store.count(None)  # the first real use connects
        assert time.monotonic() - started < SHORT + SLACK
        assert_clear_timeout(str(info.value), blackhole, SHORT)
    finally:
        store.close()


def test_budcore_db_check_fails_with_one_line(
    blackhole: Blackhole, capsys: pytest.CaptureFixture[str]
) -> None:
    started = time.monotonic()
    assert budcore_main(["db", "check", "--url", blackhole.url(), "--connect-timeout", str(SHORT)]) == 2
    assert time.monotonic() - started < SHORT + SLACK
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:")
    assert_clear_timeout(err, blackhole, SHORT)


def test_module_command_line_and_url_parameter(
    blackhole: Blackhole, capsys: pytest.CaptureFixture[str]
) -> None:
    # A connect_timeout in the URL wins over the default (and over PoolSettings).
    assert module_main(["current", "--url", blackhole.url(f"?connect_timeout={SHORT}")]) == 1
    assert_clear_timeout(capsys.readouterr().err.strip(), blackhole, SHORT)


def _connect_params(engine: sa.Engine) -> dict[str, Any]:
    """The keyword arguments the engine would pass to psycopg.connect (no connection is made)."""
    captured: dict[str, Any] = {}

    class CapturedError(Exception):
        """Raised by the stand-in connect to stop before any connection is made."""

    @sa.event.listens_for(engine, "do_connect")
    def capture(dialect: Any, conn_rec: Any, cargs: Any, cparams: dict[str, Any]) -> None:
        captured.update(cparams)
        raise CapturedError

    with pytest.raises(CapturedError):
        engine.connect()
    engine.dispose()
    return captured


def test_every_engine_has_a_connect_timeout_by_default() -> None:
    url = "postgresql://budcore@127.0.0.1:9/budcore"
    assert DEFAULT_CONNECT_TIMEOUT == 10
    assert _connect_params(create_engine(url))["connect_timeout"] == 10
    store = PostgresJobStore(url, check_schema=False)
    assert _connect_params(store.engine)["connect_timeout"] == 10
    assert _connect_params(create_engine(url, PoolSettings(connect_timeout=4)))["connect_timeout"] == 4
    assert _connect_params(create_engine(url, connect_timeout=3))["connect_timeout"] == 3
    # The URL's own value is passed through untouched and wins.
    assert (
        _connect_params(create_engine(url + "?connect_timeout=7", connect_timeout=3))["connect_timeout"]
        == "7"
    )


@pytest.mark.parametrize("value", [0, 1, -5, 2.5, True])
def test_a_connect_timeout_below_libpqs_minimum_is_refused(value: Any) -> None:
    with pytest.raises(ValidationError) as info:
        PoolSettings(connect_timeout=value)
    assert info.value.path == "pool.connect_timeout"


def test_cli_refuses_a_bad_connect_timeout(capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        budcore_main(["db", "current", "--url", "postgresql://u@127.0.0.1:9/x", "--connect-timeout", "0"])
        == 2
    )
    assert "--connect-timeout" in capsys.readouterr().err
    with pytest.raises(ValidationError, match="connect_timeout in the database URL"):
        create_engine("postgresql://u@127.0.0.1:9/x?connect_timeout=soon")
