"""The simulator's plugin, registered through the ``budcore.plugins`` entry point ``simulator``.

It registers, through the same hooks a third-party plugin implements:

- the ``simulate``, ``compare`` and ``plan`` commands (``budcore_register_commands``);
- the ``scenario`` validator for ``budcore validate`` (``budcore_register_validators``);
- the trace readers a scenario's ``traces: [{format: NAME}]`` names (``budcore_register_trace_readers``):
  ``budcore`` (budcore CSV), ``helios``, ``openb`` (Alibaba GPU 2023), ``pai`` (Alibaba PAI 2020)
  and ``swf``, looked up by
  :func:`budcore_simulator.workload.traces.open_trace`;
- the ordering policies ``budcore compare -p NAME`` names (``budcore_register_policies``):
  ``fifo``, ``fair``, ``strict-fifo``, ``deadline-aware`` and budcore's research orderings ``sjf``,
  ``srtf``, ``las`` and ``edf`` (every ClusterQueue; :mod:`budcore.scheduling.ordering`) and the
  Gavel-style ``gavel`` (:mod:`budcore_simulator.throughput`), looked up by
  :func:`budcore_simulator.sweep.parse_policy` through :func:`policy_overrides`.

Registering stays cheap: the readers are lazy factories and the commands are placeholders that
import :mod:`.cli` when one of them runs (``budcore.cli.lazy``), so ``budcore plugins`` and
``budcore --help`` do not load the engine.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from budcore.domain.errors import PluginError
from budcore.plugins import PluginRegistry, default_registry, hookimpl, lazy_factory
from budcore.plugins.hookspecs import Factory

if TYPE_CHECKING:  # budcore.config loads the Kueue schemas and the scheduler: not at registration
    from budcore.config.yamlsource import YamlDocument


#: What ``budcore --help`` lists for each command (the first line of its docstring in :mod:`.cli`).
COMMANDS_HELP = {
    "simulate": "Simulate a scenario on the real scheduling core and report waits, JCT, utilisation, cost.",
    "compare": "Run the same workload (same seed) under several policies and compare them side by side.",
    "plan": "Sweep fleet sizes and return the cheapest fleet that meets every SLO, with the frontier.",
}


#: ``budcore --help``'s line for the ``trace`` group (the same text as ``cli.TRACE_HELP``).
TRACE_HELP = "Workload traces: what a trace file holds, before it is simulated."


def _register_cli(app: Any) -> None:
    from .cli import register, register_sweeps, register_trace

    register(app)
    register_sweeps(app)
    register_trace(app)


@hookimpl
def budcore_register_commands(app: Any) -> None:
    # Placeholders where the CLI supports them: .cli (the engine, numpy) loads when one runs.
    if not hasattr(app, "add_lazy_command"):
        _register_cli(app)
        return
    for name, line in COMMANDS_HELP.items():
        app.add_lazy_command(name, line, _register_cli, origin="plugin simulator")
    app.add_lazy_command("trace", TRACE_HELP, _register_cli, group=True, origin="plugin simulator")


def validate_scenario(document: YamlDocument) -> str | None:
    """``budcore validate`` support: a mapping with ``workload`` and ``fleet`` or ``queues`` (a
    quota-only scenario has no fleet) is a scenario."""
    data = document.data
    if not (isinstance(data, dict) and "workload" in data and ("fleet" in data or "queues" in data)):
        return None
    from pathlib import Path

    from .scenario import scenario_from_document

    loaded = scenario_from_document(document, Path(document.source).parent)
    queues = len(loaded.queues.cluster_queues)
    nodes = "quota-only, no nodes" if loaded.quota_only else f"{len(loaded.nodes)} nodes"
    return f"scenario {loaded.scenario.name!r} ({nodes}, {queues} ClusterQueues)"


@hookimpl
def budcore_register_validators() -> Mapping[str, Factory]:
    return {"scenario": validate_scenario}


# Trace readers ----------------------------------------------------------------------------------
@hookimpl
def budcore_register_trace_readers() -> Mapping[str, Factory]:
    """The built-in formats (``simulator/workload/TRACES.md``), by their ``format:`` name."""
    return {
        "budcore": lazy_factory(".workload.traces:BudcoreCsvTrace", package=__package__),
        "helios": lazy_factory(".workload.traces:HeliosTrace", package=__package__),
        "openb": lazy_factory(".workload.openb:OpenbTrace", package=__package__),
        "pai": lazy_factory(".workload.traces:PaiTrace", package=__package__),
        "swf": lazy_factory(".workload.traces:SwfTrace", package=__package__),
    }


# Ordering policies ------------------------------------------------------------------------------
def fifo() -> dict[str, Any]:
    """Kueue's classic FIFO ordering across queues: no fair sharing."""
    return {"fair_sharing": False}


def fair() -> dict[str, Any]:
    """Fair sharing: queues borrowing least (by dominant resource share) go first."""
    return {"fair_sharing": True}


def strict_fifo() -> dict[str, Any]:
    """Every ClusterQueue ``StrictFIFO``: a head that does not fit blocks the queue behind it."""
    return {"queueing_strategy": "StrictFIFO"}


def deadline_aware() -> dict[str, Any]:
    """Deadline-aware ordering: waiting jobs rise in priority as their deadline slack runs out, and
    jobs with deadlines go earliest latest-start first within a level (the scenario's other policy
    fields unchanged; ``policy.deadline_boost`` tunes the thresholds)."""
    return {"deadline_boost": True}


def _ordering(name: str) -> dict[str, Any]:
    # Every ClusterQueue: the scenario's per-queue choices give way, its options (the default
    # estimate, the LAS thresholds) stay (apply_policy merges the ordering block).
    return {"ordering": {"default": name, "cluster_queues": {}}}


def sjf() -> dict[str, Any]:
    """Shortest job first (budcore's research ordering): within a priority level, every
    ClusterQueue orders its waiting jobs by declared runtime (``policy.ordering.default_estimate``
    for a job that declares none)."""
    return _ordering("sjf")


def srtf() -> dict[str, Any]:
    """Shortest remaining time first: like ``sjf``, less the work a requeued job already did."""
    return _ordering("srtf")


def las() -> dict[str, Any]:
    """Least attained service first (Tiresias): the GPU-seconds a job already held, in levels
    when ``policy.ordering.las_thresholds`` is set; only requeued jobs have any."""
    return _ordering("las")


def edf() -> dict[str, Any]:
    """Earliest deadline first: within a priority level, by ``deadline``; jobs without one last.
    A static order (no priority boost; ``deadline-aware`` is the boosting one)."""
    return _ordering("edf")


def gavel() -> dict[str, Any]:
    """Heterogeneity-aware flavor choice (Gavel-style, budcore's own): every ClusterQueue tries
    its flavors fastest first, by the scenario's ``policy.throughput.accelerators`` (which the
    scenario must give; its runtimes already scale with them)."""
    return {"throughput": {"prefer": "throughput", "cluster_queues": None}}


@hookimpl
def budcore_register_policies() -> Mapping[str, Factory]:
    return {
        "fifo": fifo,
        "fair": fair,
        "strict-fifo": strict_fifo,
        "deadline-aware": deadline_aware,
        "sjf": sjf,
        "srtf": srtf,
        "las": las,
        "edf": edf,
        "gavel": gavel,
    }


def policy_names(registry: PluginRegistry | None = None) -> list[str]:
    """The policy names ``-p`` accepts (every plugin's), sorted."""
    return (registry or default_registry()).names("policy")


def policy_overrides(name: str, registry: PluginRegistry | None = None) -> dict[str, Any] | None:
    """The ``policy`` overrides registered as ``name`` (a fresh dict), or ``None`` if none is.

    A name two plugins register, a factory that fails and a factory that returns something other
    than a mapping of field names are ``PluginError``\\ s naming the plugin.
    """
    registry = registry or default_registry()
    registration = registry.get("policy", name)
    if registration is None:
        return None
    overrides = registry.create("policy", name)
    if not isinstance(overrides, Mapping) or not all(isinstance(k, str) for k in overrides):
        raise PluginError(
            f"policy {name!r} ({registration.origin}) returned {type(overrides).__name__}; a policy "
            "returns a mapping of the scenario's policy fields to their values"
        )
    return dict(overrides)
