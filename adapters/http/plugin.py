"""Registers the HTTP adapter through the ``budcore.plugins`` entry point (imports httpx lazily)."""

from __future__ import annotations

from collections.abc import Mapping

from budcore.plugins import hookimpl, lazy_factory
from budcore.plugins.hookspecs import Factory


@hookimpl
def budcore_register_api_callers() -> Mapping[str, Factory]:
    return {"httpx": lazy_factory(".caller:HttpxApiCaller", package=__package__)}
