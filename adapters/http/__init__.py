"""The HTTP adapter: ``api_call`` steps of pipelines reach the network through it.

:class:`~.caller.HttpxApiCaller` implements the :class:`budcore.ports.pipeline_effects.ApiCaller`
port on httpx; it is registered as the ``httpx`` api caller (``PluginRegistry.api_caller``), which
is what a :class:`budcore.pipeline.PipelineEngine` built without ``http=`` uses.

The names are imported on first use (PEP 562): loading the plugin (``budcore --help`` does) must
not import httpx and the pipeline package.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .caller import DEFAULT_USER_AGENT, HttpxApiCaller

__all__ = ["DEFAULT_USER_AGENT", "HttpxApiCaller"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from . import caller

        return getattr(caller, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
