"""The plugin registry isolates broken plugins and reports plugin mistakes precisely.

- A plugin whose entry point cannot be imported (a missing optional dependency) is recorded and
  left out; every other plugin keeps working, and resolving a name it might provide raises a
  ``PluginError`` naming the plugin, its distribution and the missing module.
- A base install (no ``postgres`` extra) runs ``budcore --help``/``budcore plugins`` and resolves
  the in-memory adapters; resolving ``inmemory`` never imports SQLAlchemy, Alembic or Mako.
- Misspelled hooks and bad hook signatures are ``PluginError``s naming the hook and plugin; bad
  factory options are told apart from errors raised inside a factory.
"""

from __future__ import annotations

import importlib.metadata
import json
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from budcore.domain.errors import PluginError
from budcore.plugins import PluginRegistry, hookimpl, lazy_factory

MISSING = "budcore_isolation_test_dependency_not_installed"
HEAVY = ("sqlalchemy", "alembic", "mako", "psycopg")


# A fake distribution with three plugins: one good, one whose import fails, one with a typo. ------
PLUGINS = {
    "iso_good_plugin": """
        from budcore.plugins import hookimpl

        class GoodStore:
            def __init__(self, *, events=None):
                self.events = events

        @hookimpl
        def budcore_register_job_stores():
            return {"good": GoodStore}

        @hookimpl
        def budcore_register_commands(app):
            app.append("good-command")
    """,
    "iso_broken_plugin": f"""
        import {MISSING}  # an optional dependency that is not installed

        from budcore.plugins import hookimpl

        @hookimpl
        def budcore_register_job_stores():
            return {{"broken": object}}
    """,
    "iso_typo_plugin": """
        from budcore.plugins import hookimpl

        @hookimpl
        def budcore_register_cluster_backend():  # missing the final s
            return {"typo": object}
    """,
    "iso_raising_commands_plugin": """
        from budcore.plugins import hookimpl

        @hookimpl
        def budcore_register_event_sinks():
            return {"still-works": dict}

        @hookimpl
        def budcore_register_commands(app):
            raise RuntimeError("commands exploded")
    """,
}
ENTRY_POINTS = {
    "good": "iso_good_plugin",
    "broken": "iso_broken_plugin",
    "typo": "iso_typo_plugin",
    "noisy": "iso_raising_commands_plugin",
}


@pytest.fixture
def fake_distribution(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """``importlib.metadata.entry_points`` sees only a fake ``isopkg 1.2`` with the plugins above."""
    for module, source in PLUGINS.items():
        (tmp_path / f"{module}.py").write_text(textwrap.dedent(source))
    info = tmp_path / "isopkg-1.2.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: isopkg\nVersion: 1.2\nProvides-Extra: fancy\n"
        f'Requires-Dist: {MISSING.replace("_", "-")}>=1; extra == "fancy"\n'
    )
    lines = "".join(f"{name} = {module}\n" for name, module in ENTRY_POINTS.items())
    (info / "entry_points.txt").write_text(f"[budcore.plugins]\n{lines}")
    dist = importlib.metadata.PathDistribution(info)

    def entry_points(**params: Any) -> list[importlib.metadata.EntryPoint]:
        group = params.get("group")
        return [ep for ep in dist.entry_points if group is None or ep.group == group]

    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(importlib.metadata, "entry_points", entry_points)
    yield
    for module in PLUGINS:
        sys.modules.pop(module, None)


@pytest.mark.usefixtures("fake_distribution")
def test_a_plugin_that_fails_to_import_does_not_break_the_others() -> None:
    registry = PluginRegistry()
    assert registry.names("job_store") == ["good"]
    assert registry.names("event_sink") == ["still-works"]
    store = registry.create("job_store", "good")
    assert store.events is None
    assert registry.resolve("job_store", "good").origin == "isopkg 1.2 (entry point good)"

    failures = {f.plugin: f for f in registry.failures()}
    broken = failures["broken"]
    assert (broken.stage, broken.missing_module) == ("load", MISSING)
    assert broken.origin == "isopkg 1.2 (entry point broken)"
    assert broken.hint == "pip install 'isopkg[fancy]'"
    assert isinstance(broken.error, ModuleNotFoundError)
    assert failures["typo"].stage == "register"
    assert "budcore_register_cluster_backend" in failures["typo"].message


@pytest.mark.usefixtures("fake_distribution")
def test_resolving_a_broken_plugin_names_the_plugin_its_package_and_the_missing_module() -> None:
    registry = PluginRegistry()
    with pytest.raises(PluginError) as info:
        registry.resolve("job_store", "broken")
    message = str(info.value)
    assert "plugin 'broken'" in message
    assert "isopkg 1.2" in message
    assert f"missing module {MISSING!r}" in message
    assert "pip install 'isopkg[fancy]'" in message
    assert "registered: good" in message
    # An unknown name still says what failed to load, since that plugin may have provided it.
    with pytest.raises(PluginError, match=MISSING):
        registry.resolve("job_store", "nope")


@pytest.mark.usefixtures("fake_distribution")
def test_a_plugin_whose_command_hook_raises_does_not_stop_the_others() -> None:
    registry = PluginRegistry()
    app: list[str] = []
    registry.register_commands(app)
    assert app == ["good-command"]
    failure = next(f for f in registry.failures() if f.plugin == "noisy")
    assert failure.stage == "budcore_register_commands"
    assert "RuntimeError: commands exploded" in failure.describe()


# Hooks and factories ---------------------------------------------------------------------------
class TypoPlugin:
    @staticmethod
    @hookimpl
    def budcore_register_cluster_backend() -> dict[str, Any]:  # missing the final s
        return {"x": object}


class WrongArgumentsPlugin:
    @staticmethod
    @hookimpl
    def budcore_register_commands(application: Any) -> None:
        """The hook's argument is ``app``: this wrong name is what registration must refuse."""


class FactoriesPlugin:
    calls: list[dict[str, Any]] = []  # noqa: RUF012 - test double

    @staticmethod
    @hookimpl
    def budcore_register_cluster_backends() -> dict[str, Any]:
        def strict(*, nodes: Any = (), clock: Any = None) -> object:
            FactoriesPlugin.calls.append({"nodes": nodes, "clock": clock})
            return None + 1  # type: ignore[operator]  # a bug inside the factory

        return {"strict": strict}


def test_a_misspelled_hook_is_a_plugin_error_naming_the_hook_and_the_plugin() -> None:
    registry = PluginRegistry(load_entry_points=False)
    with pytest.raises(PluginError) as info:
        registry.register(TypoPlugin, origin="typo-plugin")
    message = str(info.value)
    assert "typo-plugin" in message
    assert "'budcore_register_cluster_backend'" in message
    assert "did you mean 'budcore_register_cluster_backends'" in message
    # The refused plugin left nothing behind: the registry stays usable.
    registry.register(FactoriesPlugin, origin="factories")
    assert registry.names("cluster_backend") == ["strict"]


def test_a_bad_hook_signature_is_a_plugin_error_not_pluggys() -> None:
    registry = PluginRegistry(load_entry_points=False)
    with pytest.raises(PluginError) as info:
        registry.register(WrongArgumentsPlugin, origin="wrong-args")
    message = str(info.value)
    assert "wrong-args" in message and "budcore_register_commands" in message
    assert "application" in message and "arguments: app" in message
    registry.register(FactoriesPlugin, origin="factories")  # the refused plugin left nothing behind
    assert registry.names("cluster_backend") == ["strict"]


def test_bad_options_are_rejected_before_the_factory_runs() -> None:
    FactoriesPlugin.calls.clear()
    registry = PluginRegistry(load_entry_points=False)
    registry.register(FactoriesPlugin, origin="factories")
    with pytest.raises(PluginError) as info:
        registry.create("cluster_backend", "strict", bogus=1)
    message = str(info.value)
    assert "bad options (bogus)" in message
    assert "accepts: nodes, clock" in message
    assert FactoriesPlugin.calls == []


def test_an_error_inside_a_factory_is_not_reported_as_bad_options() -> None:
    FactoriesPlugin.calls.clear()
    registry = PluginRegistry(load_entry_points=False)
    registry.register(FactoriesPlugin, origin="factories")
    with pytest.raises(PluginError) as info:
        registry.create("cluster_backend", "strict", nodes=[])
    message = str(info.value)
    assert "bad options" not in message
    assert "strict raised TypeError" in message and "factories" in message
    assert isinstance(info.value.__cause__, TypeError)
    assert FactoriesPlugin.calls == [{"nodes": [], "clock": None}]


def test_two_plugins_with_one_name_break_only_that_name() -> None:
    class First:
        @staticmethod
        @hookimpl
        def budcore_register_event_sinks() -> dict[str, Any]:
            return {"shared": list, "first-only": dict}

    class Second:
        @staticmethod
        @hookimpl
        def budcore_register_event_sinks() -> dict[str, Any]:
            return {"shared": set}

    registry = PluginRegistry(load_entry_points=False)
    registry.register(First, origin="first")
    registry.register(Second, origin="second")
    assert registry.names("event_sink") == ["first-only"]
    with pytest.raises(PluginError, match="registered twice: by first and by second"):
        registry.resolve("event_sink", "shared")
    assert any("registered twice" in f.message for f in registry.failures())


def test_a_raising_registration_hook_affects_only_its_plugin() -> None:
    class Raising:
        @staticmethod
        @hookimpl
        def budcore_register_job_stores() -> dict[str, Any]:
            raise RuntimeError("cannot list my stores")

    class Fine:
        @staticmethod
        @hookimpl
        def budcore_register_job_stores() -> dict[str, Any]:
            return {"fine": dict}

    registry = PluginRegistry(load_entry_points=False)
    registry.register(Raising, origin="raising")
    registry.register(Fine, origin="fine")
    assert registry.names("job_store") == ["fine"]
    [failure] = registry.failures()
    assert (failure.origin, failure.stage) == ("raising", "budcore_register_job_stores")
    assert "cannot list my stores" in failure.message


def test_a_lazy_factory_imports_its_module_only_when_the_adapter_is_built() -> None:
    class Lazy:
        @staticmethod
        @hookimpl
        def budcore_register_job_stores() -> dict[str, Any]:
            return {
                "later": lazy_factory("collections:OrderedDict"),
                "missing": lazy_factory(f"{MISSING}.store:Store"),
            }

    registry = PluginRegistry(load_entry_points=False)
    registry.register(Lazy, origin="lazy")
    assert registry.names("job_store") == ["later", "missing"]
    assert registry.create("job_store", "later", a=1) == {"a": 1}
    with pytest.raises(PluginError) as info:
        registry.create("job_store", "missing")
    assert f"needs module {MISSING!r}, which is not installed" in str(info.value)
    assert "job_store 'missing' (lazy)" in str(info.value)


# Fresh interpreters: a base install, and what resolving inmemory imports ---------------------
def _run(code: str) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


BLOCK_HEAVY = f"""
    import sys

    class BaseInstall:
        # Behave as if the postgres extra were not installed.
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in {HEAVY!r}:
                raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
            return None

    sys.meta_path.insert(0, BaseInstall())
"""


def test_a_base_install_runs_the_cli_and_resolves_inmemory() -> None:
    result = _run(
        BLOCK_HEAVY
        + """
    import contextlib, io, json
    from budcore.cli import main
    from budcore.domain.errors import PluginError
    from budcore.plugins import default_registry

    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        codes = [main(["--help"]), main(["plugins"]), main(["plugins", "--format", "json"])]
    registry = default_registry()
    names = registry.names("job_store")
    store = type(registry.job_store("inmemory")).__name__
    try:
        registry.job_store("postgres", url="postgresql://localhost/x")
    except PluginError as exc:
        error = str(exc)
    else:
        error = None
    print(json.dumps({"codes": codes, "names": names, "store": store, "error": error}))
    """
    )
    assert result["codes"] == [0, 0, 0]
    assert "inmemory" in result["names"]
    assert result["store"] == "InMemoryJobStore"
    error = result["error"]
    assert error is not None
    assert "'postgres'" in error and "budcore" in error and "'sqlalchemy'" in error
    assert "pip install 'budcore[postgres]'" in error


def test_the_postgres_plugin_module_imports_no_database_dependency() -> None:
    """Importing ``budcore_adapters.postgres.plugin`` itself pulls in no SQLAlchemy/Alembic/Mako.

    The package's ``__init__`` is replaced by an empty package here, so the check covers the
    plugin module alone (the test below covers the real package).
    """
    result = _run(
        """
    import json, os, sys, types
    import budcore_adapters

    package = types.ModuleType("budcore_adapters.postgres")
    package.__path__ = [os.path.join(budcore_adapters.__path__[0], "postgres")]
    sys.modules[package.__name__] = package
    import budcore_adapters.postgres.plugin as plugin

    stores = plugin.budcore_register_job_stores()
    heavy = sorted({m.split(".")[0] for m in sys.modules} & {"sqlalchemy", "alembic", "mako", "psycopg"})
    print(json.dumps({"heavy": heavy, "names": sorted(stores)}))
    """
    )
    assert result == {"heavy": [], "names": ["postgres"]}


def test_resolving_inmemory_imports_no_database_dependency() -> None:
    code = """
    import json, sys
    from budcore.plugins import default_registry

    registry = default_registry()
    registry.job_store("inmemory")
    registry.cluster_backend("inmemory")
    registry.names("job_store")
    heavy = sorted({m.split(".")[0] for m in sys.modules} & {"sqlalchemy", "alembic", "mako", "psycopg"})
    print(json.dumps({"heavy": heavy, "names": registry.names("job_store")}))
    """
    result = _run(code)
    assert result["heavy"] == []
    assert {"inmemory", "postgres"} <= set(result["names"])
