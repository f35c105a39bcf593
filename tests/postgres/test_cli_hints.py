"""What ``budcore db`` tells a person to run can be pasted into a shell as it is."""

from __future__ import annotations

import subprocess
from collections.abc import Callable

import pytest

pytest.importorskip("sqlalchemy")

from budcore_adapters.postgres import SchemaVersionError, check_schema, resolve_url
from budcore_adapters.postgres.engine import ENV_URL
from budcore_adapters.postgres.migrate import upgrade_hint

from budcore.cli import main
from budcore.domain.errors import ValidationError

pytestmark = pytest.mark.postgres


def test_the_upgrade_hint_quotes_the_url(new_database: Callable[[], str]) -> None:
    url = new_database()  # postgresql+psycopg://budcore@/name?host=/tmp/...&port=5432: '&' and '?'
    with pytest.raises(SchemaVersionError) as info:
        check_schema(url)
    command = str(info.value).split("run `", 1)[1].rstrip("`")
    prefix = "budcore db upgrade "
    assert command.startswith(prefix + "--url ")
    # Let a real shell parse the arguments (an unquoted '&' would end the command there).
    echoed = subprocess.run(
        ["sh", "-c", "printf '%s\\n' " + command[len(prefix) :]], capture_output=True, text=True, check=True
    ).stdout.splitlines()
    assert echoed[0] == "--url"
    assert resolve_url(echoed[1]) == resolve_url(url)


def test_a_masked_password_is_pointed_out() -> None:
    hint = upgrade_hint(resolve_url("postgresql://u:secret@db.example:5432/x?sslmode=require"))
    assert "secret" not in hint
    assert "'postgresql+psycopg://u:***@db.example:5432/x?sslmode=require'" in hint
    assert "real password" in hint


def test_no_url_says_which_option_to_use(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv(ENV_URL, raising=False)
    with pytest.raises(ValidationError, match="--url"):
        resolve_url(None)
    assert main(["db", "current"]) == 2
    err = capsys.readouterr().err
    assert "--url" in err and ENV_URL in err
