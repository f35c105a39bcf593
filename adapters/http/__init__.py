"""The HTTP adapter: ``api_call`` steps of pipelines reach the network through it.

:class:`~.caller.HttpxApiCaller` implements the :class:`budcore.ports.pipeline_effects.ApiCaller`
port on httpx; it is registered as the ``httpx`` api caller (``PluginRegistry.api_caller``), which
is what a :class:`budcore.pipeline.PipelineEngine` built without ``http=`` uses.
"""

from .caller import DEFAULT_USER_AGENT, HttpxApiCaller

__all__ = ["DEFAULT_USER_AGENT", "HttpxApiCaller"]
