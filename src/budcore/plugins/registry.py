"""The plugin registry: resolves adapters by name, remembering where each came from.

Entry points in the group ``budcore.plugins`` are loaded lazily on first use. Two plugins
registering the same name for the same kind is an error naming both, and asking for an unknown
name is an error listing what is registered.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass
from types import ModuleType
from typing import Any, cast

import pluggy

from budcore.domain.errors import PluginError
from budcore.plugins.hookspecs import ENTRY_POINT_GROUP, PROJECT, BudcoreHookSpecs, Factory
from budcore.ports.cluster_backend import ClusterBackend
from budcore.ports.event_sink import EventSink
from budcore.ports.job_store import JobStore
from budcore.ports.pricing import PricingSource

# kind -> hook name
KINDS: dict[str, str] = {
    "job_store": "budcore_register_job_stores",
    "cluster_backend": "budcore_register_cluster_backends",
    "event_sink": "budcore_register_event_sinks",
    "pricing_source": "budcore_register_pricing_sources",
    "trace_reader": "budcore_register_trace_readers",
    "policy": "budcore_register_policies",
    "validator": "budcore_register_validators",
}


@dataclass(frozen=True, slots=True)
class Registration:
    kind: str
    name: str
    factory: Factory
    origin: str  # "budcore 0.1.0 (entry point inmemory)" or the module of a runtime plugin


class PluginRegistry:
    """Adapters by kind and name, collected from pluggy hook implementations."""

    def __init__(self, *, load_entry_points: bool = True) -> None:
        self._pm = pluggy.PluginManager(PROJECT)
        self._pm.add_hookspecs(BudcoreHookSpecs)
        self._load_entry_points = load_entry_points
        self._loaded = False
        self._lock = threading.Lock()
        self._origins: dict[int, str] = {}
        self._table: dict[str, dict[str, Registration]] | None = None

    # Registration --------------------------------------------------------------------------
    def register(self, plugin: ModuleType | object, origin: str | None = None) -> None:
        """Register a plugin object at run time (tests, embedding applications)."""
        try:
            self._pm.register(plugin)
        except ValueError as exc:
            raise PluginError(f"cannot register plugin {plugin!r}: {exc}") from exc
        self._origins[id(plugin)] = origin or str(getattr(plugin, "__name__", type(plugin).__name__))
        self._table = None

    def _ensure_loaded(self) -> None:
        with self._lock:
            if self._loaded or not self._load_entry_points:
                self._loaded = True
                return
            try:
                self._pm.load_setuptools_entrypoints(ENTRY_POINT_GROUP)
            except Exception as exc:
                raise PluginError(f"loading plugins from entry points {ENTRY_POINT_GROUP!r}: {exc}") from exc
            for plugin, dist in self._pm.list_plugin_distinfo():
                name = self._pm.get_name(plugin) or "?"
                self._origins[id(plugin)] = f"{dist.project_name} {dist.version} (entry point {name})"
            self._loaded = True
            self._table = None

    def _build(self) -> dict[str, dict[str, Registration]]:
        self._ensure_loaded()
        if self._table is not None:
            return self._table
        table: dict[str, dict[str, Registration]] = {kind: {} for kind in KINDS}
        for kind, hook_name in KINDS.items():
            hook = getattr(self._pm.hook, hook_name)
            for impl in hook.get_hookimpls():
                origin = self._origins.get(id(impl.plugin), impl.plugin_name)
                result = impl.function()
                if result is None:
                    continue
                if not isinstance(result, Mapping):
                    raise PluginError(f"{origin}: {hook_name} must return a mapping of name to factory")
                for name, factory in result.items():
                    if not callable(factory):
                        raise PluginError(f"{origin}: {kind} {name!r} is not callable")
                    existing = table[kind].get(name)
                    if existing is not None and existing.factory is not factory:
                        raise PluginError(
                            f"{kind} {name!r} is registered twice: by {existing.origin} and by {origin}"
                        )
                    table[kind][name] = Registration(kind, name, factory, origin)
        self._table = table
        return table

    # Lookup --------------------------------------------------------------------------------
    def registrations(self, kind: str | None = None) -> list[Registration]:
        table = self._build()
        kinds = [kind] if kind else list(KINDS)
        for k in kinds:
            if k not in KINDS:
                raise PluginError(f"unknown plugin kind {k!r}; kinds: {', '.join(KINDS)}")
        return [table[k][n] for k in kinds for n in sorted(table[k])]

    def register_commands(self, app: Any) -> None:
        """Let every plugin add its commands to the CLI ``app``."""
        self._ensure_loaded()
        try:
            self._pm.hook.budcore_register_commands(app=app)
        except PluginError:
            raise
        except Exception as exc:
            raise PluginError(f"a plugin failed to register its commands: {exc}") from exc

    def names(self, kind: str) -> list[str]:
        return [r.name for r in self.registrations(kind)]

    def resolve(self, kind: str, name: str) -> Registration:
        table = self._build()
        if kind not in KINDS:
            raise PluginError(f"unknown plugin kind {kind!r}; kinds: {', '.join(KINDS)}")
        try:
            return table[kind][name]
        except KeyError:
            known = ", ".join(sorted(table[kind])) or "none"
            raise PluginError(f"no {kind} named {name!r}; registered: {known}") from None

    def create(self, kind: str, name: str, **options: Any) -> Any:
        registration = self.resolve(kind, name)
        try:
            return registration.factory(**options)
        except PluginError:
            raise
        except TypeError as exc:
            raise PluginError(f"{kind} {name!r} ({registration.origin}): bad options: {exc}") from exc

    def job_store(self, name: str = "inmemory", **options: Any) -> JobStore:
        return cast(JobStore, self._checked("job_store", name, JobStore, options))

    def cluster_backend(self, name: str = "inmemory", **options: Any) -> ClusterBackend:
        return cast(ClusterBackend, self._checked("cluster_backend", name, ClusterBackend, options))

    def event_sink(self, name: str, **options: Any) -> EventSink:
        return cast(EventSink, self._checked("event_sink", name, EventSink, options))

    def pricing_source(self, name: str, **options: Any) -> PricingSource:
        return cast(PricingSource, self._checked("pricing_source", name, PricingSource, options))

    def _checked(self, kind: str, name: str, protocol: type, options: dict[str, Any]) -> object:
        obj = self.create(kind, name, **options)
        if not isinstance(obj, protocol):
            raise PluginError(
                f"{kind} {name!r} ({self.resolve(kind, name).origin}) does not implement {protocol.__name__}"
            )
        return obj


_default: PluginRegistry | None = None


def default_registry() -> PluginRegistry:
    """The process-wide registry, with entry points loaded on first use."""
    global _default
    if _default is None:
        _default = PluginRegistry()
    return _default
