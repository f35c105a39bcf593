"""Commands that import their module only when they run: what keeps ``budcore --help`` fast.

``budcore --version`` and ``budcore --help`` must not import the simulator, numpy, SQLAlchemy or
the Kubernetes client, yet the help lists every command with its one-line description. So a
command is registered as a *placeholder*: its name and that line, plus a loader (a function that
registers the real command(s) on a Typer, e.g. a module's ``register(app)``). The placeholder is
what the command list shows; as soon as the command is used (run, ``--help`` of it, its
parameters read) the loader runs once, on a scratch Typer, and the real command takes over. Help
text and behaviour are therefore the real command's; only the listing line is given twice, and
``tests/cli/test_startup.py`` checks that each listing line matches the real command's.

Plugin commands come from the ``budcore_register_commands`` hook; loading every plugin costs more
than everything else, so :class:`BudcoreTyper` runs its ``plugin_commands`` function on the first
look-up of a command (``budcore --version`` never looks one up). A plugin may register placeholders
too, through :meth:`BudcoreTyper.add_lazy_command`, or plain Typer commands as before.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, MutableMapping
from typing import Any

import typer
import typer.core
import typer.main

__all__ = ["BudcoreTyper", "LazyLoader", "is_placeholder", "listing_help", "load_placeholder"]

#: Registers the real command(s) on the Typer it is given (``module.register``).
LazyLoader = Callable[[typer.Typer], object]


def listing_help(command: Any) -> str:
    """The line a group's help shows for ``command``: the first paragraph of its short help or help."""
    text = getattr(command, "short_help", None) or getattr(command, "help", None) or ""
    first = inspect.cleandoc(text).split("\n\n")[0]
    return " ".join(first.split())


class _Loader:
    """One loader, run at most once per Typer: the real commands it registered, by name."""

    def __init__(self, load: LazyLoader, template: typer.Typer, origin: str) -> None:
        self.function = load
        self._template = template
        self.origin = origin
        self._commands: dict[str, typer.core.TyperCommand | typer.core.TyperGroup] | None = None

    def command(self, name: str) -> Any:
        if self._commands is None:
            from budcore.domain.errors import PluginError

            scratch = typer.Typer(
                add_completion=False,
                pretty_exceptions_enable=False,
                pretty_exceptions_short=self._template.pretty_exceptions_short,
                rich_markup_mode=self._template.rich_markup_mode,
                suggest_commands=self._template.suggest_commands,
            )
            try:
                self.function(scratch)
            except ImportError as exc:  # a missing optional dependency, most likely
                missing = isinstance(exc, ModuleNotFoundError) and exc.name
                why = f"missing module {exc.name!r}" if missing else f"{type(exc).__name__}: {exc}"
                raise PluginError(f"command {name!r} ({self.origin}) cannot be loaded: {why}") from exc
            self._commands = dict(typer.main.get_group(scratch).commands)  # type: ignore[arg-type]
        real = self._commands.get(name)
        if real is None:
            from budcore.domain.errors import PluginError

            raise PluginError(f"command {name!r} ({self.origin}) was not registered by its loader")
        return real


class _Placeholder:
    """What a lazy command is until it is used; mixed into a Typer command or group class."""

    _loader: _Loader | None = None
    _stub_params: list[Any]  # what typer built from the placeholder's callback (none): unused
    name: str | None

    def bind(self, loader: _Loader) -> None:
        self._loader = loader

    def load(self) -> Any:
        """The real command (imports its module the first time)."""
        if self._loader is None or self.name is None:  # pragma: no cover - bound when the group is built
            raise RuntimeError(f"lazy command {self.name!r} has no loader")
        return self._loader.command(self.name)

    # Everything but the listing goes to the real command: its context, parsing, help and callback.
    @property
    def params(self) -> list[Any]:
        return list(self.load().params)

    @params.setter
    def params(self, value: list[Any]) -> None:
        self._stub_params = value

    def make_context(self, info_name: str | None, args: list[str], parent: Any = None, **extra: Any) -> Any:
        return self.load().make_context(info_name, args, parent=parent, **extra)

    def main(self, *args: Any, **kwargs: Any) -> Any:
        return self.load().main(*args, **kwargs)

    def get_help(self, ctx: Any) -> Any:
        return self.load().get_help(ctx)

    def invoke(self, ctx: Any) -> Any:
        return self.load().invoke(ctx)


class _LazyCommand(_Placeholder, typer.core.TyperCommand):
    """A placeholder listed among the commands (``app.command``)."""


class _LazyGroup(_Placeholder, typer.core.TyperGroup):
    """A placeholder listed among the command groups (``app.add_typer``)."""


def is_placeholder(command: object) -> bool:
    """Whether ``command`` is a lazy command that has not been swapped for the real one."""
    return isinstance(command, _Placeholder)


def load_placeholder(command: Any) -> Any:
    """The real command behind a placeholder (``command`` itself when it is not one)."""
    return command.load() if isinstance(command, _Placeholder) else command


def _never_called() -> None:  # pragma: no cover - the real command's callback runs instead
    raise RuntimeError("a lazy command's placeholder was invoked")


class _RootGroup(typer.core.TyperGroup):
    """The top-level group: binds placeholders to their loaders, loads plugin commands on first look-up."""

    typer_app: BudcoreTyper

    def __init__(self, **kwargs: Any) -> None:
        self._complete = self.typer_app.plugins_loaded
        super().__init__(**kwargs)

    @property
    def commands(self) -> MutableMapping[str, Any]:
        if not self._complete:
            self._complete = True
            if self.typer_app.load_plugin_commands():
                # Built before the plugins registered theirs: take the complete, ordered list.
                fresh = typer.main.get_group(self.typer_app)
                self._commands = fresh.commands
        return self._commands

    @commands.setter
    def commands(self, value: MutableMapping[str, Any]) -> None:
        for name, command in value.items():
            if isinstance(command, _Placeholder):
                command.bind(self.typer_app.loader_of(name))
        self._commands = value


class BudcoreTyper(typer.Typer):
    """A Typer whose commands may be placeholders, and whose plugin commands load on first look-up.

    ``plugin_commands`` is called once, with this Typer, the first time a command is looked up
    (listed for ``--help``, resolved to run it); it registers the plugins' commands
    (``default_registry().register_commands``).
    """

    def __init__(
        self, *, plugin_commands: Callable[[typer.Typer], None] | None = None, **kwargs: Any
    ) -> None:
        owner = self

        class RootGroup(_RootGroup):
            typer_app = owner

        super().__init__(cls=RootGroup, **kwargs)
        self._plugin_commands = plugin_commands
        self.plugins_loaded = plugin_commands is None
        self._loaders: dict[str, _Loader] = {}

    def add_lazy_command(
        self, name: str, help: str, load: LazyLoader, *, group: bool = False, origin: str = "budcore"
    ) -> None:
        """List ``name`` with the line ``help``; ``load(typer)`` registers the real command when it is used.

        ``group`` places it with the command groups (what ``add_typer`` registers) rather than
        the commands, as the real one would be listed. Several names may share one ``load``
        function: it runs once for all of them. ``origin`` names the provider in loading errors.
        """
        if name in self._loaders:
            raise ValueError(f"command {name!r} is registered twice")
        shared = next((lo for lo in self._loaders.values() if lo.function is load), None)
        self._loaders[name] = shared or _Loader(load, self, origin)
        if group:
            self.add_typer(typer.Typer(), name=name, help=help, cls=_LazyGroup)
        else:
            self.command(name, help=help, cls=_LazyCommand)(_never_called)

    def loader_of(self, name: str) -> _Loader:
        return self._loaders[name]

    def load_plugin_commands(self) -> bool:
        """Register the plugins' commands unless done already; whether it registered them now."""
        if self.plugins_loaded:
            return False
        self.plugins_loaded = True
        if self._plugin_commands is not None:
            self._plugin_commands(self)
        return True
