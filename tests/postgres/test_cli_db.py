"""``budcore db``: the schema commands through the CLI, on a real throwaway PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from budcore.cli import main

pytestmark = pytest.mark.postgres


def test_db_commands_round_trip(new_database: Callable[[], str], capsys: pytest.CaptureFixture[str]) -> None:
    from budcore_adapters.postgres import head_revision

    url = new_database()
    assert main(["db", "current", "--url", url]) == 0
    assert capsys.readouterr().out.strip() == "base"
    assert main(["db", "check", "--url", url]) == 2
    assert "has no budcore schema; run `budcore db upgrade --url" in capsys.readouterr().err
    assert main(["db", "upgrade", "--url", url]) == 0
    assert capsys.readouterr().out.strip() == f"at revision {head_revision()}"
    assert main(["db", "check", "--url", url]) == 0
    assert f"ok: at head {head_revision()}" in capsys.readouterr().out
    # Dropping every table needs an explicit confirmation; without it nothing happens.
    assert main(["db", "downgrade", "--revision", "base", "--url", url]) == 2
    assert "pass --yes to confirm" in capsys.readouterr().err
    assert main(["db", "current", "--url", url]) == 0
    assert capsys.readouterr().out.strip() == head_revision()
    assert main(["db", "downgrade", "--revision", "base", "--url", url, "--yes"]) == 0
    assert capsys.readouterr().out.strip() == "at revision base"


def test_db_unreachable_is_one_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    url = "postgresql://nobody@/budcore?host=/nonexistent-socket-dir"
    assert main(["db", "check", "--url", url]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:")
    assert "Traceback" not in err
