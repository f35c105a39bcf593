"""The plugin registry: resolves adapters by name, remembering where each came from.

Entry points in the group ``budcore.plugins`` are loaded lazily on first use, **each on its own**:
a plugin that cannot be imported (a missing optional dependency, a syntax error), that implements
a hook budcore does not have (``budcore_register_cluster_backend`` for ``…_backends``), whose hook
takes arguments the hook does not provide, or whose hook raises, is recorded as a
:class:`PluginFailure` and left out; every other plugin keeps working. The failures are listed by
:meth:`PluginRegistry.failures` (``budcore plugins`` shows them) and named again in the
``PluginError`` raised when someone asks for a name that is not registered.

Every registry starts with budcore's own plugin, :mod:`budcore.plugins.builtin` (the core's
pricing sources), registered like any other: the built-ins are listed and resolved by name the way a
third party's are.

Two plugins registering the same name for the same kind make that name unusable (resolving it is an
error naming both); asking for an unknown name is an error listing what is registered. Building an
adapter distinguishes options its factory does not accept (checked against the factory's
signature before calling it) from an error raised inside the factory (wrapped in a
``PluginError`` naming the factory, with the original as its cause).
"""

from __future__ import annotations

import difflib
import importlib.metadata
import inspect
import logging
import re
import threading
from collections.abc import Callable, Iterable, Mapping
from contextlib import suppress
from dataclasses import dataclass, field
from types import ModuleType
from typing import TYPE_CHECKING, Any, cast

import pluggy

from budcore.domain.errors import BudcoreError, PluginError
from budcore.plugins.hookspecs import ENTRY_POINT_GROUP, PROJECT, BudcoreHookSpecs, Factory, LazyFactory
from budcore.ports.admission_ledger import AdmissionLedger
from budcore.ports.cluster_backend import ClusterBackend
from budcore.ports.event_sink import EventSink
from budcore.ports.job_store import JobStore
from budcore.ports.pipeline_effects import ApiCaller
from budcore.ports.pipeline_store import PipelineStore
from budcore.ports.pricing import PricingSource
from budcore.ports.reservation_store import ReservationStore
from budcore.ports.spend import UsageLog

if TYPE_CHECKING:
    from budcore.cost.prices import PriceBook

_log = logging.getLogger(__name__)

# kind -> hook name
KINDS: dict[str, str] = {
    "job_store": "budcore_register_job_stores",
    "admission_ledger": "budcore_register_admission_ledgers",
    "reservation_store": "budcore_register_reservation_stores",
    "pipeline_store": "budcore_register_pipeline_stores",
    "cluster_backend": "budcore_register_cluster_backends",
    "event_sink": "budcore_register_event_sinks",
    "pricing_source": "budcore_register_pricing_sources",
    "trace_reader": "budcore_register_trace_readers",
    "policy": "budcore_register_policies",
    "validator": "budcore_register_validators",
    "pipeline_function": "budcore_register_pipeline_functions",
    "api_caller": "budcore_register_api_callers",
    "usage_log": "budcore_register_usage_logs",
}
COMMANDS_HOOK = "budcore_register_commands"
_HOOK_NAMES = (*KINDS.values(), COMMANDS_HOOK)


@dataclass(frozen=True, slots=True)
class Registration:
    kind: str
    name: str
    factory: Factory
    origin: str  # "budcore 0.1.0 (entry point inmemory)" or the module of a runtime plugin
    plugin: str = field(default="", compare=False)  # the plugin's name (its entry point's name)


@dataclass(frozen=True, slots=True)
class PluginFailure:
    """A plugin, or one hook of it, that budcore could not use; the other plugins are unaffected.

    ``stage`` is ``"load"`` (importing the entry point), ``"register"`` (its hook implementations
    were refused) or the name of the hook that failed. ``missing_module`` is set when the cause is
    a module that is not installed, and ``hint`` then says how to install it when the plugin's
    distribution declares an extra for it (``pip install 'budcore[postgres]'``).
    """

    plugin: str
    origin: str
    stage: str
    message: str
    missing_module: str | None = None
    hint: str | None = None
    error: BaseException | None = field(default=None, compare=False, repr=False)

    def describe(self) -> str:
        """One line for a person: what failed, where, and how to fix it when known."""
        where = "failed to load" if self.stage == "load" else f"failed in {self.stage}"
        if self.stage == "register":
            where = "was refused"
        text = f"plugin {self.plugin!r} ({self.origin}) {where}: {self.message}"
        return f"{text} ({self.hint})" if self.hint else text


def _entry_points(group: str) -> Iterable[importlib.metadata.EntryPoint]:
    """The entry points of ``group`` (looked up through ``importlib.metadata`` at call time)."""
    return importlib.metadata.entry_points(group=group)


def _one_line(text: str) -> str:
    return "; ".join(line.strip() for line in str(text).splitlines() if line.strip())


_REQUIREMENT = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")
_EXTRA_MARKER = re.compile(r"""extra\s*==\s*["']([^"']+)["']""")


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _install_hint(dist: importlib.metadata.Distribution | None, plugin: str, module: str) -> str | None:
    """``pip install 'dist[extra]'`` when ``dist`` declares an extra providing ``module``.

    The extra is the one that requires a distribution named like the module's top-level package,
    else an extra named like the plugin itself (``budcore[postgres]`` for the ``postgres`` entry
    point, which also covers indirect dependencies such as ``mako``).
    """
    if dist is None:
        return None
    try:
        name = dist.metadata["Name"]
        extras = list(dist.metadata.get_all("Provides-Extra") or [])
        requires = list(dist.requires or [])
    except Exception:  # a broken distribution must not hide the original error
        return None
    if not name:
        return None
    top = _normalise(module.split(".")[0])
    for requirement in requires:
        match, marker = _REQUIREMENT.match(requirement), _EXTRA_MARKER.search(requirement)
        if match and marker and _normalise(match.group(1)) == top:
            return f"pip install '{name}[{marker.group(1)}]'"
    if plugin in extras:
        return f"pip install '{name}[{plugin}]'"
    return None


def _factory_name(factory: object) -> str:
    if isinstance(factory, LazyFactory):
        return factory.spec
    module = getattr(factory, "__module__", None)
    qualname = getattr(factory, "__qualname__", None) or type(factory).__qualname__
    return f"{module}.{qualname}" if module else str(qualname)


def _budcore_version() -> str:
    try:
        return importlib.metadata.version("budcore")
    except importlib.metadata.PackageNotFoundError:  # pragma: no cover - a source tree, not installed
        return "0.0.0+unknown"


class PluginRegistry:
    """Adapters by kind and name, collected from pluggy hook implementations.

    ``builtins`` registers budcore's own plugin (:mod:`budcore.plugins.builtin`) first;
    ``load_entry_points`` loads the ``budcore.plugins`` entry points on first use.
    """

    def __init__(self, *, load_entry_points: bool = True, builtins: bool = True) -> None:
        self._pm = pluggy.PluginManager(PROJECT)
        self._pm.add_hookspecs(BudcoreHookSpecs)
        self._load_entry_points = load_entry_points
        self._loaded = False
        self._lock = threading.RLock()
        self._origins: dict[int, str] = {}
        self._names: dict[int, str] = {}
        self._dists: dict[str, importlib.metadata.Distribution] = {}  # by plugin name
        self._failures: list[PluginFailure] = []  # loading, registering, commands: kept
        self._build_failures: list[PluginFailure] = []  # from the register_* hooks: rebuilt
        self._conflicts: dict[tuple[str, str], list[str]] = {}
        self._table: dict[str, dict[str, Registration]] | None = None
        if builtins:
            from budcore.plugins import builtin

            self._register(
                builtin, name=builtin.PLUGIN_NAME, origin=f"budcore {_budcore_version()} (built-in)"
            )

    # Registration --------------------------------------------------------------------------
    def register(self, plugin: ModuleType | object, origin: str | None = None) -> None:
        """Register a plugin object at run time (tests, embedding applications).

        Raises ``PluginError`` (and registers nothing) for a plugin registered twice, a hook
        implementation whose arguments the hook does not provide, or a ``@hookimpl`` whose name
        is not a budcore hook (usually a typo, which would otherwise register nothing).
        """
        with self._lock:
            label = origin or str(getattr(plugin, "__name__", type(plugin).__name__))
            self._register(plugin, name=None, origin=label)
            self._table = None

    def _register(self, plugin: object, *, name: str | None, origin: str) -> None:
        try:
            registered_as = self._pm.register(plugin, name=name)
        except ValueError as exc:
            raise PluginError(f"cannot register plugin {origin}: {exc}") from exc
        except pluggy.PluginValidationError as exc:
            self._discard(plugin)
            raise PluginError(f"plugin {origin}: {self._describe_invalid(exc)}") from exc
        if registered_as is None:  # blocked by name
            raise PluginError(f"cannot register plugin {origin}: the name {name!r} is blocked")
        try:
            self._pm.check_pending()
        except pluggy.PluginValidationError as exc:
            unknown = self._unknown_hooks(plugin) or [str(exc)]
            self._discard(plugin)
            if exc.plugin is not plugin:  # pragma: no cover - every plugin is checked on registration
                self._discard(exc.plugin)
            raise PluginError(f"plugin {origin}: {'; '.join(unknown)}") from exc
        self._origins[id(plugin)] = origin
        self._names[id(plugin)] = registered_as

    def _discard(self, plugin: object) -> None:
        with suppress(Exception):
            self._pm.unregister(plugin)

    def _unknown_hooks(self, plugin: object) -> list[str]:
        """Messages for ``@hookimpl`` functions of ``plugin`` that match no budcore hook."""
        messages = []
        for caller in self._pm.get_hookcallers(plugin) or []:
            if caller.has_spec():
                continue
            if all(impl.optionalhook for impl in caller.get_hookimpls() if impl.plugin is plugin):
                continue
            close = difflib.get_close_matches(caller.name, _HOOK_NAMES, n=1)
            hooks = ", ".join(_HOOK_NAMES)
            suggestion = f"did you mean {close[0]!r}?" if close else f"budcore hooks: {hooks}"
            messages.append(
                f"hook {caller.name!r} is not a budcore hook, so it would register nothing ({suggestion})"
            )
        return messages

    def _describe_invalid(self, exc: pluggy.PluginValidationError) -> str:
        text = _one_line(str(exc))
        match = re.search(r"for hook '([^']+)'", str(exc))
        caller = getattr(self._pm.hook, match.group(1), None) if match else None
        spec = getattr(caller, "spec", None)
        if spec is not None:
            arguments = ", ".join(spec.argnames) or "none"
            text += f"; the hook provides these arguments: {arguments}"
        return f"invalid hook implementation: {text}"

    def _failure(
        self,
        plugin: str,
        origin: str,
        stage: str,
        exc: BaseException,
        dist: importlib.metadata.Distribution | None = None,
    ) -> PluginFailure:
        missing: str | None = None
        hint: str | None = None
        cause: BaseException | None = exc
        while cause is not None:  # a PluginError may wrap the ModuleNotFoundError
            if isinstance(cause, ModuleNotFoundError) and cause.name:
                missing = cause.name
                break
            cause = cause.__cause__
        if missing is not None:
            hint = _install_hint(dist, plugin, missing)
            detail = _one_line(str(exc))
            plain = detail in (f"No module named {missing!r}", "")
            message = f"missing module {missing!r}" + ("" if plain else f" ({detail})")
        elif isinstance(exc, PluginError):
            message = _one_line(str(exc))
        else:
            message = f"{type(exc).__name__}: {_one_line(str(exc))}"
        failure = PluginFailure(plugin, origin, stage, message, missing, hint, exc)
        _log.debug("%s", failure.describe(), exc_info=exc)
        return failure

    def _ensure_loaded(self) -> None:
        with self._lock:
            if self._loaded or not self._load_entry_points:
                self._loaded = True
                return
            self._loaded = True
            self._table = None
            try:
                entry_points = list(_entry_points(ENTRY_POINT_GROUP))
            except Exception as exc:
                self._failures.append(self._failure(ENTRY_POINT_GROUP, "entry points", "load", exc))
                return
            for ep in entry_points:
                if self._pm.has_plugin(ep.name) or self._pm.is_blocked(ep.name):
                    continue  # already registered under that name (a duplicate distribution)
                dist = getattr(ep, "dist", None)
                if dist is not None:
                    origin = f"{dist.metadata['Name']} {dist.version} (entry point {ep.name})"
                else:
                    origin = f"entry point {ep.name} = {ep.value}"
                try:
                    plugin = ep.load()
                except Exception as exc:  # anything at import time: this plugin only
                    self._failures.append(self._failure(ep.name, origin, "load", exc, dist))
                    continue
                try:
                    self._register(plugin, name=ep.name, origin=origin)
                except PluginError as exc:
                    self._failures.append(self._failure(ep.name, origin, "register", exc, dist))
                    continue
                if dist is not None:
                    self._dists[ep.name] = dist

    def _build(self) -> dict[str, dict[str, Registration]]:
        self._ensure_loaded()
        with self._lock:
            if self._table is not None:
                return self._table
            table: dict[str, dict[str, Registration]] = {kind: {} for kind in KINDS}
            failures: list[PluginFailure] = []
            conflicts: dict[tuple[str, str], list[str]] = {}
            for kind, hook_name in KINDS.items():
                hook = getattr(self._pm.hook, hook_name)
                for impl in hook.get_hookimpls():
                    plugin_name = self._names.get(id(impl.plugin), impl.plugin_name)
                    origin = self._origins.get(id(impl.plugin), impl.plugin_name)
                    dist = self._dists.get(plugin_name)
                    try:
                        result = impl.function()
                    except Exception as exc:
                        failures.append(self._failure(plugin_name, origin, hook_name, exc, dist))
                        continue
                    if result is None:
                        continue
                    if not isinstance(result, Mapping):
                        problem = PluginError(
                            f"{hook_name} must return a mapping of name to factory, "
                            f"got {type(result).__name__}"
                        )
                        failures.append(self._failure(plugin_name, origin, hook_name, problem, dist))
                        continue
                    for name, factory in result.items():
                        if not isinstance(name, str) or not callable(factory):
                            problem = PluginError(f"{kind} {name!r} is not a callable registered by name")
                            failures.append(self._failure(plugin_name, origin, hook_name, problem, dist))
                            continue
                        if (kind, name) in conflicts:
                            conflicts[(kind, name)].append(origin)
                            continue
                        existing = table[kind].get(name)
                        if existing is not None and existing.factory != factory:
                            conflicts[(kind, name)] = [existing.origin, origin]
                            del table[kind][name]
                            continue
                        table[kind][name] = Registration(kind, name, factory, origin, plugin_name)
            for (kind, name), origins in conflicts.items():
                problem = PluginError(self._conflict_message(kind, name, origins))
                failures.append(self._failure(f"{kind} {name}", " and ".join(origins), KINDS[kind], problem))
            self._build_failures = failures
            self._conflicts = conflicts
            self._table = table
            return table

    @staticmethod
    def _conflict_message(kind: str, name: str, origins: list[str]) -> str:
        return f"{kind} {name!r} is registered twice: by {' and by '.join(origins)}"

    # Lookup --------------------------------------------------------------------------------
    def registrations(self, kind: str | None = None) -> list[Registration]:
        kinds = [kind] if kind else list(KINDS)
        for k in kinds:
            if k not in KINDS:
                raise PluginError(f"unknown plugin kind {k!r}; kinds: {', '.join(KINDS)}")
        table = self._build()
        return [table[k][n] for k in kinds for n in sorted(table[k])]

    def failures(self) -> list[PluginFailure]:
        """Plugins (or hooks of them) that could not be used, in the order they were found."""
        self._build()
        with self._lock:
            return [*self._failures, *self._build_failures]

    def register_commands(self, app: Any) -> None:
        """Let every plugin add its commands to the CLI ``app``.

        A plugin whose hook raises is recorded in :meth:`failures`; the others still register.
        """
        self._ensure_loaded()
        hook = self._pm.hook.budcore_register_commands
        arguments = {"app": app}
        # pluggy's calling order: the most recently registered plugin first.
        for impl in reversed(hook.get_hookimpls()):
            try:
                impl.function(*(arguments[name] for name in impl.argnames))
            except Exception as exc:
                plugin_name = self._names.get(id(impl.plugin), impl.plugin_name)
                origin = self._origins.get(id(impl.plugin), impl.plugin_name)
                dist = self._dists.get(plugin_name)
                with self._lock:
                    self._failures.append(self._failure(plugin_name, origin, COMMANDS_HOOK, exc, dist))

    def names(self, kind: str) -> list[str]:
        return [r.name for r in self.registrations(kind)]

    def get(self, kind: str, name: str) -> Registration | None:
        """The registration of ``name``, or ``None`` when no plugin registers it.

        For a name that may legitimately be something else (a ``--policy`` that is a file, a
        ``price_book`` that is a path). A name two plugins register is still an error.
        """
        if kind not in KINDS:
            raise PluginError(f"unknown plugin kind {kind!r}; kinds: {', '.join(KINDS)}")
        table = self._build()
        registration = table[kind].get(name)
        if registration is None and (kind, name) in self._conflicts:
            raise PluginError(self._conflict_message(kind, name, self._conflicts[(kind, name)]))
        return registration

    def resolve(self, kind: str, name: str) -> Registration:
        if kind not in KINDS:
            raise PluginError(f"unknown plugin kind {kind!r}; kinds: {', '.join(KINDS)}")
        table = self._build()
        registration = table[kind].get(name)
        if registration is not None:
            return registration
        conflict = self._conflicts.get((kind, name))
        if conflict is not None:
            raise PluginError(self._conflict_message(kind, name, conflict))
        raise PluginError(self._not_found_message(kind, name, table))

    def _not_found_message(self, kind: str, name: str, table: dict[str, dict[str, Registration]]) -> str:
        known = ", ".join(sorted(table[kind])) or "none"
        message = f"no {kind} named {name!r}; registered: {known}"
        stages = ("load", "register", KINDS[kind])
        relevant = [f for f in self.failures() if f.plugin == name or f.stage in stages]
        if not relevant:
            return message
        # The plugin named like the adapter is the likely provider: say so first.
        same = [f for f in relevant if f.plugin == name]
        if same:
            return f"{kind} {name!r} is unavailable: {same[0].describe()}; registered: {known}"
        listed = "; ".join(f.describe() for f in relevant)
        return f"{message}; it may come from a plugin that could not be used: {listed}"

    def create(self, kind: str, name: str, **options: Any) -> Any:
        """Build the ``kind`` adapter ``name`` with ``options`` (keyword arguments of its factory)."""
        registration = self.resolve(kind, name)
        label = f"{kind} {name!r} ({registration.origin})"
        target = self.load(kind, name)
        try:
            signature: inspect.Signature | None = inspect.signature(target)
        except (TypeError, ValueError):  # some builtins have no signature: let the call decide
            signature = None
        if signature is not None:
            try:
                signature.bind(**options)
            except TypeError as exc:
                accepted = [
                    p.name
                    for p in signature.parameters.values()
                    if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
                ]
                given = ", ".join(sorted(options)) or "none"
                raise PluginError(
                    f"{label}: bad options ({given}): {exc}; {_factory_name(target)} accepts: "
                    f"{', '.join(accepted) or 'no options'}"
                ) from None
        try:
            return target(**options)
        except BudcoreError:
            raise
        except ImportError as exc:
            raise PluginError(f"{label}: {self._import_problem(registration, exc)}") from exc
        except Exception as exc:
            raise PluginError(
                f"{label}: {_factory_name(target)} raised {type(exc).__name__}: {_one_line(str(exc))}"
            ) from exc

    def load(self, kind: str, name: str) -> Factory:
        """The factory of ``name``, imported (a lazy factory's target), without calling it.

        For callers that inspect a factory before building with it (e.g. which options its
        signature takes). An import that fails is a ``PluginError`` naming the plugin and the
        missing module, as in :meth:`create`.
        """
        registration = self.resolve(kind, name)
        factory = registration.factory
        if not isinstance(factory, LazyFactory):
            return factory
        try:
            return factory.load()
        except BudcoreError:
            raise
        except Exception as exc:
            label = f"{kind} {name!r} ({registration.origin})"
            raise PluginError(f"{label}: {self._import_problem(registration, exc)}") from exc

    def _import_problem(self, registration: Registration, exc: BaseException) -> str:
        if isinstance(exc, ModuleNotFoundError) and exc.name:
            plugin = registration.plugin or registration.name
            hint = _install_hint(self._dists.get(plugin), plugin, exc.name)
            text = f"needs module {exc.name!r}, which is not installed"
            return f"{text} ({hint})" if hint else text
        return f"importing {_factory_name(registration.factory)} failed: {type(exc).__name__}: {exc}"

    def job_store(self, name: str = "inmemory", **options: Any) -> JobStore:
        return cast(JobStore, self._checked("job_store", name, JobStore, options))

    def admission_ledger(self, name: str = "inmemory", **options: Any) -> AdmissionLedger:
        return cast(AdmissionLedger, self._checked("admission_ledger", name, AdmissionLedger, options))

    def reservation_store(self, name: str = "inmemory", **options: Any) -> ReservationStore:
        return cast(ReservationStore, self._checked("reservation_store", name, ReservationStore, options))

    def pipeline_store(self, name: str = "inmemory", **options: Any) -> PipelineStore:
        return cast(PipelineStore, self._checked("pipeline_store", name, PipelineStore, options))

    def api_caller(self, name: str = "httpx", **options: Any) -> ApiCaller:
        return cast(ApiCaller, self._checked("api_caller", name, ApiCaller, options))

    def pipeline_functions(self) -> dict[str, Callable[..., Any]]:
        """Every registered pipeline function by name (``function``/``transform`` steps call them
        as ``fn(ctx, **args)``; a lazy one imports its module on the first call)."""
        return {r.name: r.factory for r in self.registrations("pipeline_function")}

    def cluster_backend(self, name: str = "inmemory", **options: Any) -> ClusterBackend:
        return cast(ClusterBackend, self._checked("cluster_backend", name, ClusterBackend, options))

    def event_sink(self, name: str, **options: Any) -> EventSink:
        return cast(EventSink, self._checked("event_sink", name, EventSink, options))

    def pricing_source(self, name: str, **options: Any) -> PricingSource:
        return cast(PricingSource, self._checked("pricing_source", name, PricingSource, options))

    def price_book(self, name: str = "default", **options: Any) -> PriceBook:
        """The pricing source ``name`` where a full :class:`~budcore.cost.prices.PriceBook` is needed.

        Sharing modes, QoS multipliers and tier aliases are the price book's, not the
        ``PricingSource`` port's: a source that is not a price book is a ``PluginError`` naming it.
        """
        from budcore.cost.prices import PriceBook  # not at import: registering stays cheap

        source = self.pricing_source(name, **options)
        if not isinstance(source, PriceBook):
            raise PluginError(
                f"pricing_source {name!r} ({self.resolve('pricing_source', name).origin}) returned "
                f"{type(source).__name__}, which is a PricingSource but not a budcore PriceBook "
                "(sharing modes, QoS and tier aliases need one)"
            )
        return source

    def usage_log(self, name: str = "file", **options: Any) -> UsageLog:
        """The usage log ``name`` (``file`` with ``path=``, ``postgres`` with ``url=``): what
        ``budcore cost report`` reads metered usage from."""
        return cast(UsageLog, self._checked("usage_log", name, UsageLog, options))

    def _checked(self, kind: str, name: str, protocol: type, options: dict[str, Any]) -> object:
        obj = self.create(kind, name, **options)
        if not isinstance(obj, protocol):
            missing = [m for m in _protocol_members(protocol) if not hasattr(obj, m)]
            detail = f" (missing: {', '.join(missing)})" if missing else ""
            raise PluginError(
                f"{kind} {name!r} ({self.resolve(kind, name).origin}) returned {type(obj).__name__}, "
                f"which does not implement {protocol.__name__}{detail}"
            )
        return obj


def _protocol_members(protocol: type) -> list[str]:
    members = getattr(protocol, "__protocol_attrs__", None)  # Python 3.12+
    if members is None:
        members = {
            name
            for base in protocol.__mro__[:-1]
            if getattr(base, "_is_protocol", False)
            for name in vars(base)
            if not name.startswith("_")
        }
    return sorted(members)


_default: PluginRegistry | None = None


def default_registry() -> PluginRegistry:
    """The process-wide registry, with entry points loaded on first use."""
    global _default
    if _default is None:
        _default = PluginRegistry()
    return _default
