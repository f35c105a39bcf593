"""A throwaway PostgreSQL server for tests, benchmarks and local experiments.

Real PostgreSQL instead of a mock or an SQLite stand-in, because the adapter's guarantees (row
locks, ``SKIP LOCKED``, JSONB containment, unique constraints under concurrency) are PostgreSQL
behaviour. :class:`TemporaryPostgres` runs ``initdb`` and ``pg_ctl`` from the machine's
installation in a private temporary directory and listens **only on a Unix socket in that
directory**: no TCP port is opened, so parallel test sessions and an already running system server
cannot collide. Authentication is ``trust`` (nothing but the socket's directory can reach it) and
durability is switched off (``fsync=off``) because the data is thrown away.

``initdb`` refuses to run as root. When the current process is root the server runs as an
unprivileged account instead: ``$BUDCORE_PG_USER`` if set, else ``nobody`` (present in every
Debian/Ubuntu image), else a system account ``budcore-pg`` created with ``useradd --system``.
The commands are started with :func:`subprocess.run`'s ``user=``/``group=`` switch, so neither
``sudo`` nor ``runuser`` is needed.

The server must not outlive the process that started it, even when that process is killed
(SIGKILL, a CI timeout) and no ``finally`` runs: a *guardian* shell, in its own session, blocks
reading a pipe whose only writer is this process. When the pipe closes — normal stop or death —
the guardian stops the server (``-m immediate``) and deletes the directory.

Run ``python -m budcore_adapters.postgres.tempserver`` to get a server for manual use; it prints
its URL and removes everything on Ctrl-C.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import stat
import subprocess
import tempfile
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from budcore.domain.errors import BudcoreError

ENV_USER = "BUDCORE_PG_USER"
ENV_BIN_DIR = "BUDCORE_PG_BIN_DIR"
SUPERUSER = "budcore"
SOCKET_PORT = 5432  # only names the socket file (.s.PGSQL.5432); no TCP listener is opened

# Throwaway data: trade durability for speed, and allow the 8-process tests plus pools.
DEFAULT_SETTINGS: Mapping[str, str] = {
    "listen_addresses": "''",
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "200",
    "shared_buffers": "32MB",
    # Containers often mount a 64 MB /dev/shm; parallel query would allocate segments there.
    "max_parallel_workers_per_gather": "0",
    "log_min_messages": "warning",
    "log_min_error_statement": "panic",
    "deadlock_timeout": "200ms",
}


class ServerUnavailableError(BudcoreError):
    """PostgreSQL binaries are missing or the throwaway server could not be started."""


@dataclass(frozen=True, slots=True)
class _RunAs:
    """The account the server runs as; ``None`` ids mean "the current process"."""

    name: str
    uid: int | None
    gid: int | None


def find_bin_dir() -> Path:
    """The directory holding ``initdb`` and ``pg_ctl``.

    ``$BUDCORE_PG_BIN_DIR`` wins; then ``PATH``; then Debian's versioned
    ``/usr/lib/postgresql/<major>/bin`` (newest first), which is not on ``PATH`` by default.
    """
    override = os.environ.get(ENV_BIN_DIR)
    candidates: list[Path] = [Path(override)] if override else []
    on_path = shutil.which("initdb")
    if on_path:
        candidates.append(Path(on_path).resolve().parent)
    debian = sorted(
        Path("/usr/lib/postgresql").glob("*/bin"),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else -1,
        reverse=True,
    )
    candidates.extend(debian)
    for directory in candidates:
        if (directory / "initdb").is_file() and (directory / "pg_ctl").is_file():
            return directory
    raise ServerUnavailableError(
        "PostgreSQL server binaries (initdb, pg_ctl) not found on PATH, in $BUDCORE_PG_BIN_DIR or in "
        "/usr/lib/postgresql/*/bin; install the 'postgresql' package"
    )


def _run_as() -> _RunAs:
    if os.geteuid() != 0:
        return _RunAs(pwd.getpwuid(os.geteuid()).pw_name, None, None)
    wanted = os.environ.get(ENV_USER)
    names = [wanted] if wanted else ["nobody", "budcore-pg"]
    for name in names:
        with contextlib.suppress(KeyError):
            entry = pwd.getpwnam(name)
            if entry.pw_uid != 0:
                return _RunAs(name, entry.pw_uid, entry.pw_gid)
    if wanted:
        raise ServerUnavailableError(f"${ENV_USER}={wanted!r} is not an existing non-root account")
    useradd = shutil.which("useradd")
    if useradd is None:
        raise ServerUnavailableError("running as root, no 'nobody' account and no useradd to create one")
    subprocess.run(
        [useradd, "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", "budcore-pg"],
        check=True,
        capture_output=True,
    )
    entry = pwd.getpwnam("budcore-pg")
    return _RunAs("budcore-pg", entry.pw_uid, entry.pw_gid)


def _reachable_by_others(directory: Path) -> bool:
    """Whether every ancestor of ``directory`` lets another account traverse it."""
    for part in [directory, *directory.parents]:
        mode = part.stat().st_mode
        if not mode & stat.S_IXOTH:
            return False
    return True


def _base_dir(run_as: _RunAs) -> Path:
    root = Path(tempfile.gettempdir())
    if run_as.uid is not None and not _reachable_by_others(root):
        root = Path("/tmp")
    base = Path(tempfile.mkdtemp(prefix="budcore-pg-", dir=root))
    if run_as.uid is not None and run_as.gid is not None:
        os.chown(base, run_as.uid, run_as.gid)
    return base


class TemporaryPostgres:
    """Start with :meth:`start` (or ``with``), get URLs with :meth:`url`, and :meth:`stop`.

    ``stop`` is idempotent and always removes the directory, so a fixture can call it from a
    ``finally`` even when ``start`` failed halfway.
    """

    def __init__(self, settings: Mapping[str, str] | None = None) -> None:
        self._settings = {**DEFAULT_SETTINGS, **(settings or {})}
        self._bin: Path | None = None
        self._run_as: _RunAs | None = None
        self._base: Path | None = None
        self._lock = threading.Lock()
        self._started = False
        self._guardian: subprocess.Popen[bytes] | None = None

    # Lifecycle ---------------------------------------------------------------------------
    def start(self) -> TemporaryPostgres:
        with self._lock:
            if self._started:
                return self
            self._bin = find_bin_dir()
            self._run_as = _run_as()
            self._base = _base_dir(self._run_as)
            try:
                self._initdb()
                self._start_guardian()
                self._pg_ctl("start", "-w", "-t", "60", "-l", str(self._base / "server.log"))
            except BaseException:
                self._cleanup()
                raise
            self._started = True
            return self

    def stop(self) -> None:
        with self._lock:
            self._cleanup()

    def __enter__(self) -> TemporaryPostgres:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # Connection details ------------------------------------------------------------------
    @property
    def socket_dir(self) -> Path:
        if self._base is None:
            raise ServerUnavailableError("the temporary server is not running")
        return self._base

    def url(self, database: str = "postgres") -> str:
        """SQLAlchemy URL (psycopg 3 driver) for ``database`` over the private Unix socket."""
        return f"postgresql+psycopg://{SUPERUSER}@/{database}?host={self.socket_dir}&port={SOCKET_PORT}"

    def libpq_dsn(self, database: str = "postgres") -> str:
        """The same target as a libpq keyword string, for ``psycopg.connect``."""
        return f"host={self.socket_dir} port={SOCKET_PORT} user={SUPERUSER} dbname={database}"

    def create_database(self, name: str) -> str:
        """Create an empty database and return its URL."""
        import psycopg
        from psycopg import sql

        with psycopg.connect(self.libpq_dsn(), autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return self.url(name)

    def drop_database(self, name: str) -> None:
        """Drop ``name``, disconnecting whoever is still connected to it."""
        import psycopg
        from psycopg import sql

        with psycopg.connect(self.libpq_dsn(), autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))

    # Internals ---------------------------------------------------------------------------
    def _command(self, args: list[str], *, timeout: float) -> subprocess.CompletedProcess[str]:
        assert self._run_as is not None and self._base is not None
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "LC_ALL": "C",
            "LANG": "C",
            "HOME": str(self._base),
        }
        switch_user = self._run_as.uid is not None
        try:
            return subprocess.run(
                args,
                cwd=self._base,
                env=env,
                capture_output=True,
                text=True,
                timeout=timeout,
                check=True,
                user=self._run_as.uid,
                group=self._run_as.gid,
                extra_groups=[] if switch_user else None,
            )
        except subprocess.CalledProcessError as exc:
            log = self._log_tail()
            raise ServerUnavailableError(
                f"{Path(args[0]).name} failed (exit {exc.returncode}) as user {self._run_as.name!r}:\n"
                f"{exc.stdout}{exc.stderr}{log}"
            ) from exc
        except subprocess.TimeoutExpired as exc:
            raise ServerUnavailableError(f"{Path(args[0]).name} timed out{self._log_tail()}") from exc

    def _initdb(self) -> None:
        assert self._bin is not None and self._base is not None
        data = self._base / "data"
        self._command(
            [
                str(self._bin / "initdb"),
                "-D",
                str(data),
                "-U",
                SUPERUSER,
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C",
                "--no-sync",
                "--no-instructions",
            ],
            timeout=120,
        )
        lines = [f"{key} = {value}" for key, value in self._settings.items()]
        lines.append(f"unix_socket_directories = '{self._base}'")
        lines.append(f"port = {SOCKET_PORT}")
        with (data / "postgresql.conf").open("a", encoding="utf-8") as conf:
            conf.write("\n# budcore throwaway server\n" + "\n".join(lines) + "\n")

    def _pg_ctl(self, action: str, *options: str) -> None:
        assert self._bin is not None and self._base is not None
        self._command(
            [str(self._bin / "pg_ctl"), action, "-D", str(self._base / "data"), *options], timeout=90
        )

    def _start_guardian(self) -> None:
        assert self._bin is not None and self._base is not None and self._run_as is not None
        script = 'read -r _; "$0" stop -D "$1" -m immediate -w >/dev/null 2>&1; rm -rf "$2"'
        switch_user = self._run_as.uid is not None
        self._guardian = subprocess.Popen(
            ["/bin/sh", "-c", script, str(self._bin / "pg_ctl"), str(self._base / "data"), str(self._base)],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            cwd="/",
            start_new_session=True,  # survives a kill of our process group
            user=self._run_as.uid,
            group=self._run_as.gid,
            extra_groups=[] if switch_user else None,
        )

    def _release_guardian(self) -> None:
        guardian, self._guardian = self._guardian, None
        if guardian is None:
            return
        if guardian.stdin is not None:
            with contextlib.suppress(OSError):
                guardian.stdin.close()
        try:
            guardian.wait(timeout=30)
        except subprocess.TimeoutExpired:
            guardian.kill()
            guardian.wait()

    def _log_tail(self) -> str:
        if self._base is None:
            return ""
        try:
            text = (self._base / "server.log").read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""
        return "\nserver log (tail):\n" + "\n".join(text.splitlines()[-20:])

    def _cleanup(self) -> None:
        base, self._base = self._base, None
        if base is None:
            return
        self._started = False
        pid_file = base / "data" / "postmaster.pid"
        if pid_file.exists():
            self._base = base
            try:
                self._pg_ctl("stop", "-m", "immediate", "-w", "-t", "30")
            except ServerUnavailableError:
                with contextlib.suppress(OSError, ValueError, IndexError):
                    os.kill(int(pid_file.read_text().splitlines()[0]), signal.SIGKILL)
            finally:
                self._base = None
        self._release_guardian()
        shutil.rmtree(base, ignore_errors=True)


def main() -> None:
    """Run a server until interrupted, printing its URL (for manual experiments)."""
    with TemporaryPostgres() as server:
        print(server.url(), flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            signal.pause()


if __name__ == "__main__":
    main()
