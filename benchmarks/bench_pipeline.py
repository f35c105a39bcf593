"""Pipeline throughput: validating and planning a 1,000-step pipeline, and advancing 10,000 steps.

Targets (issue #14): a 1,000-step pipeline validates and plans in under 200 ms; the engine advances
10,000 steps/s on the in-memory backend. Both are measured here in CPU seconds
(``time.process_time``), each case ``--repeat`` times, min and median printed, so that a figure
taken on a loaded machine stays comparable.

- *plan*: a random 1,000-step DAG (each step depends on up to three earlier ones; a mix of job,
  function, api_call, condition and wait steps, templates reading upstream outputs) given as a
  parsed YAML document: ``PipelineSpec`` validation, the whole-graph checks (cycles, races via
  template analysis) and the critical-path estimate. The YAML parse itself is timed separately.
- *engine*: ``PipelineEngine`` over the in-memory store, 10,000 ``function`` steps, as a chain and
  as a random DAG, every step persisted as it ends. Beside it, in the same process, a *reference*:
  a bare loop over a precomputed topological order that calls the same function and copies its
  outputs into a dict, the least any engine can do; the ratio says what the engine's bookkeeping
  (dependency counting, templates' context, records, the store's writes) costs.

    .venv/bin/python benchmarks/bench_pipeline.py [--steps 1000] [--engine-steps 10000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import yaml
from budcore_adapters.inmemory.clock import ManualClock
from budcore_adapters.inmemory.pipelines import InMemoryPipelineStore

from budcore.pipeline import PipelineEngine, PipelineSpec, build_graph, estimate_run
from budcore.pipeline.functions import FunctionRegistry
from budcore.ports.pipeline_effects import StepContext

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def random_pipeline(steps: int, seed: int = 1, *, engine: bool = False) -> dict[str, Any]:
    """A random DAG of ``steps`` steps (only ``function`` steps when ``engine``)."""
    rng = random.Random(seed)
    out: list[dict[str, Any]] = []
    for i in range(steps):
        deps = sorted({f"s{rng.randrange(i)}" for _ in range(rng.randint(1, 3))}) if i else []
        kind = "function" if engine else rng.choice(["job", "function", "api_call", "wait", "job"])
        step: dict[str, Any] = {"id": f"s{i}", "type": kind, "depends_on": deps}
        if kind == "job":
            step["config"] = {
                "gpu_count": rng.choice([0, 1, 8]),
                "estimated_duration_seconds": rng.randint(60, 3600),
                "spec": {"input": f"{{{{ steps['{deps[0]}'].outputs.v | default('') }}}}"} if deps else {},
            }
        elif kind == "function":
            step["config"] = {"function": "f", "args": {"x": "{{ params.n }}"} if i % 10 == 0 else {}}
        elif kind == "api_call":
            step["config"] = {"url": "http://svc/{{ params.n }}"}
        else:
            step["config"] = {"duration_seconds": rng.randint(1, 60)}
        out.append(step)
    return {"id": "bench", "parameters": {"n": 1}, "steps": out}


def chain(steps: int) -> dict[str, Any]:
    return {
        "id": "chain",
        "steps": [
            {
                "id": f"s{i}",
                "type": "function",
                "config": {"function": "f"},
                "depends_on": [f"s{i - 1}"] if i else [],
            }
            for i in range(steps)
        ],
    }


def cpu(fn: Callable[[], object], repeat: int) -> list[float]:
    times = []
    for _ in range(repeat):
        start = time.process_time()
        fn()
        times.append(time.process_time() - start)
    return times


def show(label: str, times: list[float], per: int | None = None, unit: str = "") -> None:
    low, mid = min(times), statistics.median(times)
    rate = f"   {per / low:>10,.0f} {unit}/s (best)" if per else ""
    print(f"{label:<44} min {low * 1000:8.1f} ms   median {mid * 1000:8.1f} ms{rate}")


def bench_plan(steps: int, repeat: int) -> None:
    data = random_pipeline(steps)
    text = yaml.safe_dump(data)
    print(f"plan: a random {steps}-step pipeline (CPU seconds, {repeat} runs)")
    show(
        "  YAML parse",
        cpu(lambda: yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)), repeat),
    )

    def plan() -> None:
        spec = PipelineSpec.model_validate(data)
        graph = build_graph(spec)
        estimate_run(graph, now=T0)

    show("  validate + graph checks + estimate", cpu(plan, repeat))
    spec = PipelineSpec.model_validate(data)
    show("    of which PipelineSpec validation", cpu(lambda: PipelineSpec.model_validate(data), repeat))
    show("    of which build_graph (cycles, races)", cpu(lambda: build_graph(spec), repeat))
    graph = build_graph(spec)
    show("    of which estimate_run", cpu(lambda: estimate_run(graph, now=T0), repeat))


def _function(ctx: StepContext, **args: Any) -> dict[str, Any]:
    return {"v": 1}


def bench_engine(steps: int, repeat: int) -> None:
    print(f"engine: {steps:,} function steps on the in-memory store (CPU seconds, {repeat} runs)")
    for name, data in (("chain", chain(steps)), ("random DAG", random_pipeline(steps, engine=True))):
        spec = PipelineSpec.model_validate(data)
        graph = build_graph(spec)

        engine = PipelineEngine(
            InMemoryPipelineStore(), clock=ManualClock(T0), functions=FunctionRegistry({"f": _function})
        )
        engine.register(spec)  # validation and storing the definition are the plan case's

        def run_engine(engine: PipelineEngine = engine, spec: PipelineSpec = spec) -> None:
            run = engine.start(spec)
            assert run.status.value == "succeeded", run.message

        order = graph.order

        def reference(order: tuple[str, ...] = order) -> None:
            outputs: dict[str, dict[str, Any]] = {}
            ctx = StepContext("r", "p", "s", 1, "k", {}, T0)
            for step_id in order:
                outputs[step_id] = dict(_function(ctx))

        engine_times = cpu(run_engine, repeat)
        reference_times = cpu(reference, repeat)
        show(f"  {name}: engine", engine_times, steps, "steps")
        show(f"  {name}: reference (bare topological loop)", reference_times, steps, "steps")
        print(f"  {name}: engine / reference = {min(engine_times) / min(reference_times):,.0f}x")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--steps", type=int, default=1000, help="steps of the pipeline to plan")
    parser.add_argument("--engine-steps", type=int, default=10_000, help="steps the engine advances")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    bench_plan(args.steps, args.repeat)
    bench_engine(args.engine_steps, args.repeat)


if __name__ == "__main__":
    main()
