"""The pipeline's graph: which step waits for which, and everything about it that can be wrong.

A :class:`PipelineGraph` is built once per pipeline version and shared by every run, the engine,
the estimates and the CLI. Its edges are the declared ``depends_on`` plus the dependencies that
control steps imply:

- a step named in a condition's ``then_steps``/``else_steps`` waits for the condition;
- a parallel step's branches inherit the parallel step's own dependencies (they start when it
  would), and the parallel step waits for its branches (it is their join).

Validation reports every problem at once, each naming the steps involved: duplicate ids, unknown
dependencies, cycles (with the cycle), control steps naming unknown steps, a step in two
parallel groups or two branches, and a template that reads another step's outputs without a path
of dependencies to it: that read would race the step it reads (the seeds' own RAG example has
this bug: step 7 reads step 6's output without depending on it), so it is an error, not a warning.

The graph is a ``networkx.DiGraph`` (edge ``a → b``: b depends on a); the engine's hot paths use
the plain adjacency tuples computed here once (``dependencies``, ``dependents``, ``order``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import networkx as nx

from budcore.domain.errors import ValidationError, ValidationErrors
from budcore.pipeline.model import (
    ConditionStepConfig,
    LoopStepConfig,
    ParallelStepConfig,
    PipelineSpec,
    StepSpec,
)
from budcore.pipeline.templates import Sandbox, referenced_steps

__all__ = ["PipelineGraph", "build_graph", "step_templates"]


def step_templates(step: StepSpec) -> list[tuple[str, Any]]:
    """Every templated value of ``step`` with the field path it sits at (for checks and renders)."""
    where = f"steps[{step.id}]"
    out: list[tuple[str, Any]] = []
    if step.when is not None:
        out.append((f"{where}.when", step.when))
    config = step.config.model_dump(exclude_defaults=False)
    for name, value in config.items():
        if isinstance(step.config, ConditionStepConfig | ParallelStepConfig) and name != "expression":
            continue
        if isinstance(step.config, LoopStepConfig) and name in ("max_concurrency", "max_items"):
            continue
        out.append((f"{where}.config.{name}", value))
    if step.compensate is not None:
        out.append((f"{where}.compensate.config", step.compensate.config.model_dump()))
    return out


@dataclass(frozen=True, slots=True, eq=False)
class PipelineGraph:
    """A validated pipeline and its dependency graph.

    ``dependencies[s]`` are the steps ``s`` waits for (declared and implied); ``dependents[s]``
    the steps waiting for ``s``; ``order`` a topological order (stable: ties keep file order);
    ``branch_of[s]`` the condition step and branch (``"then"``/``"else"``) that gates ``s``;
    ``group_of[s]`` the parallel step whose branch ``s`` is.
    """

    spec: PipelineSpec
    graph: Any  # networkx.DiGraph (untyped library)
    steps: Mapping[str, StepSpec]
    dependencies: Mapping[str, tuple[str, ...]]
    dependents: Mapping[str, tuple[str, ...]]
    order: tuple[str, ...]
    branch_of: Mapping[str, tuple[str, str]] = field(default_factory=dict)
    group_of: Mapping[str, str] = field(default_factory=dict)

    def ancestors(self, step_id: str) -> set[str]:
        result: set[str] = nx.ancestors(self.graph, step_id)
        return result

    def descendants(self, step_id: str) -> set[str]:
        result: set[str] = nx.descendants(self.graph, step_id)
        return result

    def roots(self) -> tuple[str, ...]:
        return tuple(s for s in self.order if not self.dependencies[s])


def _error(message: str, path: str) -> ValidationError:
    return ValidationError(message, path=path)


def build_graph(spec: PipelineSpec, *, sandbox: Sandbox | None = None) -> PipelineGraph:
    """Validate ``spec`` as a whole and build its graph; ``ValidationErrors`` lists every problem."""
    errors: list[ValidationError] = []
    steps: dict[str, StepSpec] = {}
    position: dict[str, int] = {}
    for index, step in enumerate(spec.steps):
        if step.id in steps:
            errors.append(
                _error(
                    f"duplicate step id {step.id!r} (steps {position[step.id]} and {index})",
                    f"steps[{index}].id",
                )
            )
            continue
        steps[step.id] = step
        position[step.id] = index

    edges: dict[str, list[str]] = {s: list(step.depends_on) for s, step in steps.items()}
    branch_of: dict[str, tuple[str, str]] = {}
    group_of: dict[str, str] = {}
    for step_id, step in steps.items():
        where = f"steps[{step_id}]"
        for dep in step.depends_on:
            if dep not in steps:
                errors.append(
                    _error(f"step {step_id!r} depends on unknown step {dep!r}", f"{where}.depends_on")
                )
        config = step.config
        if isinstance(config, ConditionStepConfig):
            for branch, names in (("then", config.then_steps), ("else", config.else_steps)):
                for name in names:
                    if name not in steps:
                        errors.append(
                            _error(
                                f"condition {step_id!r} names unknown step {name!r}",
                                f"{where}.config.{branch}_steps",
                            )
                        )
                    elif name in branch_of:
                        other = branch_of[name][0]
                        errors.append(
                            _error(
                                f"step {name!r} is in a branch of both {other!r} and {step_id!r}",
                                f"{where}.config.{branch}_steps",
                            )
                        )
                    else:
                        branch_of[name] = (step_id, branch)
                        edges[name].append(step_id)
        elif isinstance(config, ParallelStepConfig):
            for name in config.steps:
                if name not in steps:
                    errors.append(
                        _error(f"parallel {step_id!r} names unknown step {name!r}", f"{where}.config.steps")
                    )
                elif name in group_of:
                    errors.append(
                        _error(
                            f"step {name!r} is a branch of both {group_of[name]!r} and {step_id!r}",
                            f"{where}.config.steps",
                        )
                    )
                elif name == step_id:
                    errors.append(_error(f"parallel {step_id!r} lists itself", f"{where}.config.steps"))
                else:
                    group_of[name] = step_id
    # A parallel step's branches start when it would, and it ends when they have.
    for name, group in group_of.items():
        edges[name].extend(d for d in steps[group].depends_on if d in steps)
        edges[group].append(name)

    graph = nx.DiGraph()
    graph.add_nodes_from(steps)
    for step_id, deps in edges.items():
        graph.add_edges_from((dep, step_id) for dep in deps if dep in steps)

    if not nx.is_directed_acyclic_graph(graph):
        for cycle in _cycles(graph, position):
            text = " -> ".join([*cycle, cycle[0]])
            errors.append(_error(f"dependency cycle: {text}", f"steps[{cycle[0]}].depends_on"))
        raise ValidationErrors(errors)

    errors.extend(_template_errors(spec, steps, graph, sandbox or Sandbox()))
    if errors:
        raise ValidationErrors(errors)

    order = tuple(nx.lexicographical_topological_sort(graph, key=position.__getitem__))
    dependencies = {s: tuple(sorted(graph.predecessors(s), key=position.__getitem__)) for s in steps}
    dependents = {s: tuple(sorted(graph.successors(s), key=position.__getitem__)) for s in steps}
    return PipelineGraph(
        spec=spec,
        graph=graph,
        steps=steps,
        dependencies=dependencies,
        dependents=dependents,
        order=order,
        branch_of=branch_of,
        group_of=group_of,
    )


def _cycles(graph: Any, position: Mapping[str, int]) -> Iterable[list[str]]:
    """One cycle per strongly connected component, starting at its first step in file order."""
    for component in nx.strongly_connected_components(graph):
        if len(component) == 1:
            (only,) = component
            if not graph.has_edge(only, only):
                continue
        start = min(component, key=position.__getitem__)
        cycle = nx.find_cycle(graph.subgraph(component), source=start)
        yield [edge[0] for edge in cycle]


def _template_errors(
    spec: PipelineSpec, steps: Mapping[str, StepSpec], graph: Any, sandbox: Sandbox
) -> list[ValidationError]:
    """Syntax errors, reads of unknown steps, and reads without a dependency path (races)."""
    errors: list[ValidationError] = []
    ancestors: dict[str, set[str]] = {}
    for step_id, step in steps.items():
        for where, value in step_templates(step):
            for text in _strings(value):
                try:
                    sandbox.check(text, where=where)
                except ValidationError as exc:
                    errors.append(exc)
            read = referenced_steps(value)
            if not read:
                continue
            if "*" in read:
                errors.append(
                    _error("a template reads steps[...] with a computed name: name the step it reads", where)
                )
            before = ancestors.get(step_id)
            if before is None:
                before = ancestors[step_id] = nx.ancestors(graph, step_id)
            for other in sorted(read - {"*"}):
                if other not in steps:
                    errors.append(_error(f"step {step_id!r} reads unknown step {other!r}", where))
                elif other == step_id and not where.endswith(".compensate.config"):
                    errors.append(_error(f"step {step_id!r} reads its own outputs", where))
                elif other != step_id and other not in before:
                    errors.append(
                        _error(
                            f"step {step_id!r} reads the outputs of step {other!r} but does not depend on it "
                            f"(directly or through other steps): it could run before {other!r} has "
                            f"finished; add {other!r} to depends_on",
                            where,
                        )
                    )
    return errors


def _strings(value: Any) -> Sequence[str]:
    if isinstance(value, str):
        return [value] if ("{{" in value or "{%" in value) else []
    if isinstance(value, Mapping):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list | tuple):
        return [s for v in value for s in _strings(v)]
    return []
