"""The throwaway server cleans up after itself even when its owner is killed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("sqlalchemy")

from budcore_adapters.postgres.tempserver import TemporaryPostgres

pytestmark = pytest.mark.postgres

OWNER = """
import os, sys
from budcore_adapters.postgres.tempserver import TemporaryPostgres
server = TemporaryPostgres().start()
print(server.socket_dir, flush=True)
sys.stdin.readline()  # wait to be killed
"""


def test_server_and_directory_vanish_when_the_owner_is_sigkilled(pg_server: TemporaryPostgres) -> None:
    # pg_server: only so this is skipped exactly when PostgreSQL is unavailable.
    with subprocess.Popen(
        [sys.executable, "-c", OWNER], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    ) as owner:
        assert owner.stdout is not None
        socket_dir = Path(owner.stdout.readline().strip())
        assert (socket_dir / ".s.PGSQL.5432").exists()
        pid = int((socket_dir / "data" / "postmaster.pid").read_text().splitlines()[0])
        os.kill(owner.pid, signal.SIGKILL)
        owner.wait()
    deadline = time.monotonic() + 60
    while (socket_dir.exists() or _alive(pid)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not socket_dir.exists()
    assert not _alive(pid)


def _alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie waiting for init to reap it has already stopped)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"
