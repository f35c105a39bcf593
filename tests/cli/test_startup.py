"""Start-up stays cheap: what ``budcore --version`` and ``--help`` import, and what lazy commands show.

Not timed (a shared machine's timings are noise for a test): the figures are in
``benchmarks/README.md`` ("CLI start-up"). These tests pin the causes instead — the modules a
fresh interpreter has imported after ``--version`` or ``--help`` — and that the placeholders the
help lists (:mod:`budcore.cli.lazy`) say exactly what the real commands say, in the same order.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from typing import Any

import pytest
import typer

from budcore.cli import app, main
from budcore.cli.lazy import BudcoreTyper, is_placeholder, listing_help, load_placeholder
from budcore.domain.errors import PluginError

HEAVY = ("numpy", "sqlalchemy", "alembic", "psycopg", "kubernetes", "matplotlib", "networkx")


def imported_after(*argv: str) -> dict[str, Any]:
    """Run ``budcore ARGV`` in a fresh interpreter; its exit code and every module it imported."""
    code = f"""
        import contextlib, io, json, sys
        from budcore.cli import main
        with contextlib.redirect_stdout(io.StringIO()):
            code = main({list(argv)!r})
        print(json.dumps({{"code": code, "modules": sorted(sys.modules)}}))
    """
    command = [sys.executable, "-c", textwrap.dedent(code)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def roots(modules: list[str]) -> set[str]:
    return {m.split(".")[0] for m in modules}


def test_version_imports_no_heavy_library_no_plugin_and_no_domain_model() -> None:
    result = imported_after("--version")
    assert result["code"] == 0
    modules = result["modules"]
    assert not roots(modules) & {*HEAVY, "budcore_simulator", "budcore_adapters", "pydantic", "rich"}
    assert not [m for m in modules if m.startswith(("budcore.domain", "budcore.plugins", "budcore.config"))]


def test_help_loads_the_plugins_but_no_command_module() -> None:
    result = imported_after("--help")
    assert result["code"] == 0
    modules = result["modules"]
    assert not roots(modules) & {"numpy", "sqlalchemy", "alembic", "psycopg", "kubernetes", "matplotlib"}
    assert "budcore_simulator.plugin" in modules  # the plugins are loaded: the help lists their commands
    simulator = [m for m in modules if m.startswith("budcore_simulator.")]
    assert simulator == ["budcore_simulator.plugin"], simulator
    commands = [m for m in modules if m.startswith("budcore.cli.")]
    # interrupt: Ctrl-C/SIGTERM handling, installed first (the standard library only)
    assert sorted(commands) == [
        "budcore.cli.app",
        "budcore.cli.interrupt",
        "budcore.cli.lazy",
        "budcore.cli.output",
    ]


def test_a_command_imports_its_module_only() -> None:
    modules = imported_after("plugins", "--format", "json")["modules"]
    assert (
        "budcore.cli.hardware" not in modules
        and "budcore.cli.recommend" not in modules
        and "budcore_simulator.cli" not in modules
    )
    assert "budcore.cli.validate" in imported_after("validate", "--help")["modules"]


def test_python_dash_m_budcore_is_the_cli() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "budcore", "--version"], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("budcore ")


def eager_app() -> typer.Typer:
    """The CLI as it was built before it was lazy: every module's ``register`` and every plugin's
    commands on a plain Typer (a plugin registers its real commands on an app without placeholders)."""
    from budcore.cli import cost, demo, hardware, pipeline, recommend, reserve, validate
    from budcore.cli.app import _root, plugins
    from budcore.plugins import default_registry

    eager = typer.Typer(no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)
    eager.callback()(_root)
    eager.command()(plugins)
    for module in (cost, demo, hardware, recommend, pipeline, reserve, validate):
        module.register(eager)
    default_registry().register_commands(eager)
    return eager


def test_the_help_lists_the_same_commands_in_the_same_order_with_the_same_lines() -> None:
    lazy = typer.main.get_command(app)
    eager = typer.main.get_command(eager_app())
    ctx = typer.Context(lazy, info_name="budcore")
    assert lazy.list_commands(ctx) == eager.list_commands(ctx)  # type: ignore[attr-defined]
    for name in lazy.list_commands(ctx):  # type: ignore[attr-defined]
        listed = lazy.get_command(ctx, name)  # type: ignore[attr-defined]
        real = eager.get_command(ctx, name)  # type: ignore[attr-defined]
        assert listing_help(listed) == listing_help(real), name


def test_every_placeholder_is_a_real_command_once_loaded() -> None:
    group = typer.main.get_command(app)
    placeholders = {n: c for n, c in group.commands.items() if is_placeholder(c)}  # type: ignore[attr-defined]
    assert {"demo", "validate", "simulate", "plan", "hardware", "db", "kueue"} <= set(placeholders)
    for name, placeholder in placeholders.items():
        real = load_placeholder(placeholder)
        assert not is_placeholder(real) and real.name == name
        assert listing_help(placeholder) == listing_help(real), name
        assert [p.name for p in placeholder.params] == [p.name for p in real.params]


def test_a_command_whose_module_is_missing_is_one_plugin_error() -> None:
    def load(target: typer.Typer) -> None:
        raise ModuleNotFoundError("No module named 'budcore_missing_thing'", name="budcore_missing_thing")

    lazy = BudcoreTyper(add_completion=False, pretty_exceptions_enable=False)
    lazy.callback()(lambda: None)
    lazy.add_lazy_command("thing", "Do the thing.", load, origin="plugin things")
    command = typer.main.get_command(lazy)
    expected = r"^command 'thing' \(plugin things\) cannot be loaded: missing module 'budcore_missing_thing'$"
    with pytest.raises(PluginError, match=expected):
        command.main(["thing"], standalone_mode=False)


def test_plugin_commands_are_loaded_on_the_first_look_up_only() -> None:
    calls: list[typer.Typer] = []
    lazy = BudcoreTyper(plugin_commands=calls.append, add_completion=False)
    lazy.callback()(lambda: None)
    lazy.command("mine")(lambda: None)
    command = typer.main.get_command(lazy)
    assert calls == []
    assert list(command.commands) == ["mine"]  # type: ignore[attr-defined]
    assert calls == [lazy]
    typer.main.get_command(lazy).commands  # type: ignore[attr-defined]  # noqa: B018 - once per Typer
    assert calls == [lazy]


def test_version_output_is_unchanged(capsys: pytest.CaptureFixture[str]) -> None:
    from budcore import __version__

    assert main(["--version"]) == 0
    assert capsys.readouterr().out == f"budcore {__version__}\n"
