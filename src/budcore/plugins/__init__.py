"""Plugin mechanism: pluggy hookspecs, the ``budcore.plugins`` entry-point group, a registry."""

from budcore.plugins.hookspecs import ENTRY_POINT_GROUP, BudcoreHookSpecs, hookimpl, hookspec
from budcore.plugins.registry import KINDS, PluginRegistry, Registration, default_registry

__all__ = [
    "ENTRY_POINT_GROUP",
    "KINDS",
    "BudcoreHookSpecs",
    "PluginRegistry",
    "Registration",
    "default_registry",
    "hookimpl",
    "hookspec",
]
