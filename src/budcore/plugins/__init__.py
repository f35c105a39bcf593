"""Plugin mechanism: pluggy hookspecs, the ``budcore.plugins`` entry-point group, a registry."""

from budcore.plugins.hookspecs import (
    ENTRY_POINT_GROUP,
    BudcoreHookSpecs,
    LazyFactory,
    hookimpl,
    hookspec,
    lazy_factory,
)
from budcore.plugins.registry import KINDS, PluginFailure, PluginRegistry, Registration, default_registry

__all__ = [
    "ENTRY_POINT_GROUP",
    "KINDS",
    "BudcoreHookSpecs",
    "LazyFactory",
    "PluginFailure",
    "PluginRegistry",
    "Registration",
    "default_registry",
    "hookimpl",
    "hookspec",
    "lazy_factory",
]
