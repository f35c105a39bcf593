"""Pipeline DAGs: steps with dependencies, sandboxed templates, failure policies and estimates.

A pipeline (:class:`PipelineSpec`) is a DAG of steps; only ``job`` steps create jobs for the
scheduler, the others run in the engine or steer the flow. Read one from YAML with
:func:`load_pipeline` (which also checks the graph: :func:`build_graph`), run it with a
:class:`PipelineEngine` over a :class:`~budcore.ports.pipeline_store.PipelineStore` (in memory or
PostgreSQL, through the plugin registry), and ask :func:`estimate_run` when each step should start
and end and whether the run meets its deadline. :class:`~budcore.pipeline.local.LocalRunner`
runs a pipeline end to end on a simulated cluster.

The modules, one concept each: ``steps`` and ``model`` (what a pipeline is), ``dag`` (its graph
and whole-pipeline validation), ``templates`` (the Jinja2 sandbox), ``state`` (a run as stored),
``engine``/``advance``/``effects`` (advancing runs through ports), ``jobs``, ``functions`` and
``responses`` (what job, function and api_call steps act through; the HTTP client itself is
the ``budcore_adapters.http`` adapter), ``estimate``, ``triggers``,
``loader`` and ``local``.
"""

from budcore.pipeline.dag import PipelineGraph, build_graph
from budcore.pipeline.engine import PipelineEngine
from budcore.pipeline.estimate import EstimateOptions, PipelineEstimate, StepEstimate, estimate_run
from budcore.pipeline.functions import FunctionRegistry
from budcore.pipeline.loader import load_pipeline, load_pipelines
from budcore.pipeline.model import OnFailure, ParameterSpec, PipelineSpec, StepSpec, StepType, Trigger
from budcore.pipeline.state import PipelineRun, RunStatus, StepRun, StepStatus

__all__ = [
    "EstimateOptions",
    "FunctionRegistry",
    "OnFailure",
    "ParameterSpec",
    "PipelineEngine",
    "PipelineEstimate",
    "PipelineGraph",
    "PipelineRun",
    "PipelineSpec",
    "RunStatus",
    "StepEstimate",
    "StepRun",
    "StepSpec",
    "StepStatus",
    "StepType",
    "Trigger",
    "build_graph",
    "estimate_run",
    "load_pipeline",
    "load_pipelines",
]
