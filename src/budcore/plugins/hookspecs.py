"""pluggy hook specifications: how adapters and extensions plug into budcore.

A plugin is any module (or object) with ``@hookimpl`` functions named as below, exposed through
the entry-point group ``budcore.plugins``::

    [project.entry-points."budcore.plugins"]
    myadapter = "my_package.budcore_plugin"

Each hook returns a mapping of *name → factory*; a factory takes keyword options (e.g. ``url``)
and returns an object implementing the port. The built-in adapters use exactly this mechanism.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import pluggy

PROJECT = "budcore"
ENTRY_POINT_GROUP = "budcore.plugins"

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)

Factory = Callable[..., Any]


class BudcoreHookSpecs:
    """The hooks budcore calls. Every hook is optional for a plugin."""

    @hookspec
    def budcore_register_job_stores(self) -> Mapping[str, Factory]:  # type: ignore[empty-body]
        """Job store factories by name (port :class:`budcore.ports.JobStore`)."""

    @hookspec
    def budcore_register_cluster_backends(self) -> Mapping[str, Factory]:  # type: ignore[empty-body]
        """Cluster backend factories by name (port :class:`budcore.ports.ClusterBackend`)."""

    @hookspec
    def budcore_register_event_sinks(self) -> Mapping[str, Factory]:  # type: ignore[empty-body]
        """Event sink factories by name (port :class:`budcore.ports.EventSink`)."""

    @hookspec
    def budcore_register_pricing_sources(self) -> Mapping[str, Factory]:  # type: ignore[empty-body]
        """Pricing source factories by name (port :class:`budcore.ports.PricingSource`)."""

    @hookspec
    def budcore_register_trace_readers(self) -> Mapping[str, Factory]:  # type: ignore[empty-body]
        """Workload trace readers by format name (used by the simulator)."""

    @hookspec
    def budcore_register_validators(self) -> Mapping[str, Factory]:  # type: ignore[empty-body]
        """Document validators for ``budcore validate``, by name.

        A validator is called with a :class:`budcore.config.yamlsource.YamlDocument`; it returns
        ``None`` when the document is not its kind, a short description of what it checked
        (e.g. ``"scenario 'default'"``) when it is valid, and raises ``ValidationError`` otherwise.
        """

    @hookspec
    def budcore_register_commands(self, app: Any) -> None:
        """Add commands to the ``budcore`` command line (``app`` is its ``typer.Typer``)."""

    @hookspec
    def budcore_register_policies(self) -> Mapping[str, Factory]:  # type: ignore[empty-body]
        """Scheduling/preemption policy factories by name."""
