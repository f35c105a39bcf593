"""Registers the simulator's commands (``simulate``) through the ``budcore.plugins`` entry point."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from budcore.config.yamlsource import YamlDocument
from budcore.plugins import hookimpl
from budcore.plugins.hookspecs import Factory


@hookimpl
def budcore_register_commands(app: Any) -> None:
    from .cli import register, register_sweeps

    register(app)
    register_sweeps(app)


def validate_scenario(document: YamlDocument) -> str | None:
    """``budcore validate`` support: a mapping with ``fleet`` and ``workload`` is a scenario."""
    data = document.data
    if not (isinstance(data, dict) and "fleet" in data and "workload" in data):
        return None
    from pathlib import Path

    from .scenario import scenario_from_document

    loaded = scenario_from_document(document, Path(document.source).parent)
    queues = len(loaded.queues.cluster_queues)
    return f"scenario {loaded.scenario.name!r} ({len(loaded.nodes)} nodes, {queues} ClusterQueues)"


@hookimpl
def budcore_register_validators() -> Mapping[str, Factory]:
    return {"scenario": validate_scenario}
