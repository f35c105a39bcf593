"""What-if runs: the same workload under several policies (``compare``) or fleet sizes (``plan``).

Each run is a top-level, picklable function of a :class:`Scenario` and a variation, so sweeps go
through any ``concurrent.futures.Executor``: a process pool by default, and equally a Dask
``Client.get_executor()`` or Ray's executor to spread a large sweep over a cluster. With Dask
(``pip install "dask[distributed]"``; the ``budcore[dask]`` extra)::

    from dask.distributed import Client, LocalCluster   # or Client("tcp://scheduler:8786")
    from budcore_simulator.sweep import compare_specs, parse_policy, run_all

    with LocalCluster(n_workers=4) as cluster, Client(cluster) as client:
        specs = compare_specs(load_scenario("scenario.yaml"), [parse_policy("fifo"), parse_policy("fair")])
        results = run_all(specs, executor=client.get_executor())

Results come back in the order of ``specs`` and are identical to a serial run (each run is a
pure function of its spec and seed). On a remote cluster the workers need ``budcore`` installed
and read the scenario's referenced files (queues, traces, nodes dump) from ``spec.base_dir``, so
that path must be visible to them (a shared filesystem) or the documents given inline.

**Policies** (``--policy``) are a preset (``fifo``: Kueue's classic FIFO ordering across queues,
``fair``: fair sharing, ``strict-fifo``: every ClusterQueue ``StrictFIFO``, ``deadline-aware``:
deadline-aware ordering, ``policy.deadline_boost: true``), a YAML file holding a
``policy`` mapping, or inline ``key=value,...`` overrides of the scenario's ``policy`` block.
Both are read and validated like a scenario: a malformed file or a bad field is one line per
problem naming the file, line and field (``pol.yaml:3: policy.bogus: unknown field``), or, inline,
the ``--policy`` value and field.

**Fleet variations** (``--vary pool.h100.nodes=4..32[:step]`` or ``=4,8,16``) change a pool's
``nodes`` or ``gpus_per_node``. Adding nodes without quota would change nothing, so the nominal
quotas of every flavor selecting that pool scale with its GPU capacity (largest remainder, so they
still add up to the capacity when they did before); borrowing and lending limits scale likewise.
Ranges go upwards (``4..32``, not ``32..4``). Only ``fleet.pools`` can be varied: a fleet read
from a nodes file is what it is. A point where a pool has no nodes is the fleet without that pool:
when that leaves a ResourceFlavor with no node at all the point is *infeasible* (reported with its
reason, failing every SLO) and the sweep goes on; so is a point whose scaled quotas can no longer
hold the scenario's capacity bookings (``reservations``).

A plan point does not measure ETAs (``eta``): its metrics never read them, and each estimate
runs the scheduler forward. ``compare`` keeps the scenario's ``eta``, so ``compare.json`` shows
each policy's ETA accuracy.

**Fleet cost** is each GPU's price per GPU-hour over the horizon, at the price the simulation bills
its flavor (:meth:`LoadedScenario.prices`: ``fleet.prices``, the pool's ``price_per_gpu_hour``,
then the nodes file's prices and price book); a node several flavors select is priced by the first
of them (by name) that has a price, and GPUs no flavor selects run nothing and are not counted. A
sweep in which some GPUs have no price is refused up front: its cheapest fleet would be meaningless.

**SLOs** (``--slo 'p95_wait<30m'``) compare a metric of the report with a value: ``mean_wait``,
``p50_wait``, ``p95_wait``, ``p99_wait``, ``mean_jct``, ``p95_jct``, ``p99_jct`` (durations: 90s,
30m, 2h), ``deadline_miss`` (a fraction or percent of the jobs whose deadline outcome is determined: jobs
still running or queued at the horizon with a later deadline are left out; it holds vacuously
without deadlines and fails while none is determined), ``completed`` (fraction of the
*completable* jobs that completed: those whose submit + runtime fits before the horizon, since a
job submitted too close to it cannot complete on any fleet), ``utilisation``, ``jain``; operators
``<``, ``<=``, ``>``, ``>=``. See ``simulator/OUTPUTS.md`` for the report fields they read.

A **cost SLO** caps a tenant's spend per period: ``tenant=research:spend<$5000/week`` (``<=`` too;
the ``$`` is optional; periods ``day``, ``week``, ``month``). Its metric, ``spend:<tenant>/<period>``,
is the tenant's highest spend in any one calendar period of that kind (UTC day, ISO week from
Monday, month) within the simulation, compared at cents: ``money.spend.peak`` of the report,
which every point of a plan with a cost SLO meters (a scenario without a ``money`` block gets one
without guard or budgets: metering only). A tenant the scenario has no LocalQueue for is an error.
"""

from __future__ import annotations

import itertools
import operator
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Executor, ProcessPoolExecutor
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import yaml

from budcore.config.yamlsource import YamlDocument, load_yaml_documents
from budcore.domain.cluster import Node
from budcore.domain.errors import BudcoreError, ValidationError, ValidationErrors
from budcore.domain.ids import check_name
from budcore.domain.resources import NVIDIA_GPU
from budcore.domain.validation import validate_model
from budcore.scheduling import QueueConfig
from budcore.scheduling.queues import FlavorQuotas, QueueingStrategy, ResourceGroup, ResourceQuota
from budcore.scheduling.reservations import ReservationBook

from .build import build_simulation
from .money import PERIODS, MoneySpec
from .report import build_report
from .scenario import LoadedScenario, PolicySpec, Scenario
from .status import SimJobStatus
from .workload.units import parse_duration

# --------------------------------------------------------------------------------------------
# Policies
# --------------------------------------------------------------------------------------------
# Presets (fifo, fair, strict-fifo and any plugin's) are registered through the policies hook:
# see budcore_simulator.plugin.


@dataclass(frozen=True)
class PolicyVariant:
    label: str
    policy: dict[str, Any]  # overrides of the scenario's PolicySpec
    queueing_strategy: str | None = None  # override of every ClusterQueue's strategy
    # Where a file variant came from, so a bad field is reported at its file and line; ``prefix``
    # is the path of the overrides in that document (``policy`` when wrapped in a policy mapping).
    document: YamlDocument | None = None
    prefix: str = ""


def parse_policy(text: str) -> PolicyVariant:
    """A preset name, a YAML file, or ``key=value,...`` overrides.

    Files go through budcore's YAML loader, so a syntax error is a ``ValidationErrors`` naming the
    file and line instead of PyYAML's traceback; the fields themselves are checked by
    :func:`apply_policy`, against the scenario they override.
    """
    from .plugin import policy_names, policy_overrides  # presets: the budcore_register_policies hook

    preset = policy_overrides(text)
    if preset is not None:
        return PolicyVariant(text, preset, preset.pop("queueing_strategy", None))
    path = Path(text)
    if path.suffix in (".yaml", ".yml"):
        if not path.is_file():
            raise ValidationError(f"policy file {text!r} does not exist", path="--policy")
        documents = load_yaml_documents(path)
        if len(documents) > 1:
            raise ValidationError(
                f"a policy file holds one YAML document, found {len(documents)}", source=str(path)
            )
        if not documents:  # an empty file: no overrides
            return PolicyVariant(path.stem, {})
        document = documents[0]
        data, prefix = document.data, ""
        if isinstance(data, dict) and "policy" in data:
            data, prefix = data["policy"], "policy"
        if not isinstance(data, dict):
            raise ValidationError(
                "expected a mapping of policy fields",
                path=prefix,
                source=str(path),
                line=document.line_of(prefix),
            )
        overrides = dict(data)
        strategy = overrides.pop("queueing_strategy", None)
        return PolicyVariant(path.stem, overrides, strategy, document, prefix)
    overrides = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        if "=" not in part:
            known = ", ".join(policy_names())
            raise ValidationError(
                f"{text!r}: expected a preset ({known}), a .yaml file, or key=value pairs", path="--policy"
            )
        key, value = (s.strip() for s in part.split("=", 1))
        try:
            overrides[key] = yaml.safe_load(value)
        except yaml.YAMLError:
            raise ValidationError(
                f"{text!r}: {key}: {value!r} is not a valid YAML value", path="--policy"
            ) from None
    strategy = overrides.pop("queueing_strategy", None)
    return PolicyVariant(text, overrides, strategy)


def apply_policy(scenario: Scenario, variant: PolicyVariant) -> Scenario:
    """The scenario with ``variant``'s overrides, validated as a ``policy`` block.

    Errors are budcore's, one per problem naming the field: at the policy file's line for a file
    variant, else prefixed with the ``--policy`` value (pydantic's own text, with its URLs and
    multi-line layout, never reaches the user).
    """
    merged = {**scenario.policy.model_dump(exclude_unset=True), **variant.policy}
    document = variant.document
    if document is not None:
        policy = validate_model(
            PolicySpec, merged, prefix=variant.prefix, source=document.source, line_of=document.line_of
        )
        return scenario.model_copy(update={"policy": policy})
    try:
        policy = validate_model(PolicySpec, merged)
    except ValidationErrors as exc:
        raise ValidationErrors([_inline_policy_error(variant, e) for e in exc.errors]) from None
    except ValidationError as exc:
        raise _inline_policy_error(variant, exc) from None
    return scenario.model_copy(update={"policy": policy})


def _inline_policy_error(variant: PolicyVariant, error: ValidationError) -> ValidationError:
    field = f"{error.path}: " if error.path else ""
    return ValidationError(f"{variant.label!r}: {field}{error.message}", path="--policy")


def with_strategy(config: QueueConfig, strategy: str | None) -> QueueConfig:
    if strategy is None:
        return config
    try:
        value = QueueingStrategy(strategy)
    except ValueError:
        raise ValidationError(
            f"unknown queueing strategy {strategy!r}; use StrictFIFO or BestEffortFIFO", path="--policy"
        ) from None
    queues = {n: q.model_copy(update={"queueing_strategy": value}) for n, q in config.cluster_queues.items()}
    return config.with_objects(cluster_queues=queues)


# --------------------------------------------------------------------------------------------
# Fleet variations
# --------------------------------------------------------------------------------------------
_VARY = re.compile(r"^pool\.(?P<pool>[a-z0-9][-a-z0-9_.]*)\.(?P<field>nodes|gpus_per_node)=(?P<values>.+)$")


@dataclass(frozen=True)
class Variation:
    pool: str
    field: str
    values: tuple[int, ...]


def parse_vary(text: str) -> Variation:
    match = _VARY.match(text.strip())
    if match is None:
        raise ValidationError(
            f"{text!r}: expected pool.<name>.nodes=<lo>..<hi>[:step] "
            "or pool.<name>.gpus_per_node=<a>,<b>,...",
            path="--vary",
        )
    raw = match.group("values")
    try:
        if ".." in raw:
            span, _, step_text = raw.partition(":")
            lo_text, hi_text = span.split("..", 1)
            lo, hi = int(lo_text), int(hi_text)
            step = int(step_text) if step_text else _default_step(lo, hi)
        else:
            values = tuple(sorted({int(v) for v in raw.split(",")}))
    except ValueError:
        raise ValidationError(
            f"{text!r}: bad values {raw!r}: expected integers, as <lo>..<hi>[:step] or <a>,<b>,...",
            path="--vary",
        ) from None
    if ".." in raw:
        if hi < lo:
            raise ValidationError(
                f"{text!r}: range {lo}..{hi} must be ascending (lo <= hi); write {hi}..{lo}", path="--vary"
            )
        if step <= 0:
            raise ValidationError(f"{text!r}: step {step} must be a positive integer", path="--vary")
        values = tuple(range(lo, hi + 1, step))
        if values[-1] != hi:
            values = (*values, hi)
    if any(v < 0 for v in values):
        raise ValidationError(f"{text!r}: values must not be negative", path="--vary")
    return Variation(match.group("pool"), match.group("field"), values)


def _default_step(lo: int, hi: int) -> int:
    """About eight points across the range."""
    return max(1, (hi - lo) // 7)


def vary_fleet(scenario: Scenario, changes: dict[tuple[str, str], int]) -> Scenario:
    pools = []
    fleet = scenario.fleet
    if fleet is None:
        raise ValidationError(
            "the scenario has no fleet (a quota-only simulation): --vary pool.<name>.<field> varies "
            "fleet.pools; add a fleet to the scenario to vary it",
            path="--vary",
        )
    names = {p.name for p in fleet.pools}
    if not names:
        raise ValidationError(
            "the scenario has no pools: its fleet comes from the nodes file "
            f"{fleet.nodes_file!r}, and --vary pool.<name>.<field> varies fleet.pools; "
            "add a pool to the scenario to vary it",
            path="--vary",
        )
    for pool_name, _ in changes:
        if pool_name not in names:
            raise ValidationError(
                f"no pool {pool_name!r} in the scenario; pools: {', '.join(sorted(names))}", path="--vary"
            )
    for pool in fleet.pools:
        update = {f: v for (p, f), v in changes.items() if p == pool.name}
        pools.append(pool.model_copy(update=update) if update else pool)
    return scenario.model_copy(update={"fleet": fleet.model_copy(update={"pools": tuple(pools)})})


def scale_quotas(config: QueueConfig, flavor_factors: dict[str, tuple[int, int]]) -> QueueConfig:
    """Scale quotas of each flavor by ``new/old`` GPU capacity (exact integer arithmetic)."""
    if not flavor_factors:
        return config
    # Nominal quotas per (flavor, resource) across ClusterQueues, scaled by largest remainder.
    nominal: dict[tuple[str, str], dict[str, int]] = {}
    for name, cq in config.cluster_queues.items():
        for group in cq.resource_groups:
            for fq in group.flavors:
                if fq.name in flavor_factors:
                    for rq in fq.resources:
                        nominal.setdefault((fq.name, rq.name), {})[name] = rq.nominal_quota
    scaled: dict[tuple[str, str], dict[str, int]] = {
        key: _largest_remainder(parts, *flavor_factors[key[0]]) for key, parts in nominal.items()
    }

    def limit(value: int | None, flavor: str) -> int | None:
        if value is None:
            return None
        new, old = flavor_factors[flavor]
        return value * new // old if old else value

    queues = {}
    for name, cq in config.cluster_queues.items():
        groups = []
        for group in cq.resource_groups:
            flavors = []
            for fq in group.flavors:
                if fq.name not in flavor_factors:
                    flavors.append(fq)
                    continue
                resources = []
                for rq in fq.resources:
                    quota = scaled[(fq.name, rq.name)][name]
                    lending = limit(rq.lending_limit, fq.name)
                    resources.append(
                        ResourceQuota(
                            name=rq.name,
                            nominal_quota=quota,
                            borrowing_limit=limit(rq.borrowing_limit, fq.name),
                            lending_limit=None if lending is None else min(lending, quota),
                        )
                    )
                flavors.append(FlavorQuotas(name=fq.name, resources=tuple(resources)))
            groups.append(ResourceGroup(covered_resources=group.covered_resources, flavors=tuple(flavors)))
        queues[name] = cq.model_copy(update={"resource_groups": tuple(groups)})
    return config.with_objects(cluster_queues=queues)


def _largest_remainder(parts: dict[str, int], new: int, old: int) -> dict[str, int]:
    if old == 0:
        return dict(parts)
    total = sum(parts.values()) * new
    floors = {k: v * new // old for k, v in parts.items()}
    remainders = sorted(parts, key=lambda k: (-((parts[k] * new) % old), k))
    missing = total // old - sum(floors.values())
    for k in remainders[:missing]:
        floors[k] += 1
    return floors


def flavor_factors(
    base: LoadedScenario, varied: LoadedScenario | Sequence[Node]
) -> dict[str, tuple[int, int]]:
    """(new, old) GPU capacity of each flavor whose capacity changed (``varied``: its nodes, or
    a scenario that has them)."""
    nodes = varied.nodes if isinstance(varied, LoadedScenario) else varied
    gpu = _gpu(base)
    out = {}
    for name, flavor in base.queues.flavors.items():
        old = sum(n.allocatable.get(gpu, 0) for n in base.nodes if n.matches(flavor.node_labels))
        new = sum(n.allocatable.get(gpu, 0) for n in nodes if n.matches(flavor.node_labels))
        if new != old:
            out[name] = (new, old)
    return out


def fleet_nodes(base: LoadedScenario, scenario: Scenario) -> list[Node]:
    """The nodes of a varied ``scenario``: its pools' nodes plus ``base``'s nodes-file nodes.

    Built without loading the scenario, so a point the loader rejects (a flavor left without any
    node) still has a fleet to price and to explain.
    """
    pools = scenario.fleet.pools if scenario.fleet is not None else ()
    nodes = [node for pool in pools for node in pool.build_nodes()]
    return nodes + [parsed.to_node() for parsed in base.parsed_nodes]


def _gpu(loaded: LoadedScenario) -> str:
    pools = loaded.fleet.pools
    return pools[0].gpu_resource if pools else NVIDIA_GPU


# --------------------------------------------------------------------------------------------
# SLOs
# --------------------------------------------------------------------------------------------
_SLO = re.compile(r"^\s*(?P<metric>[a-z0-9_]+)\s*(?P<op><=|>=|<|>)\s*(?P<value>[^\s]+)\s*$")
_OPS: dict[str, Callable[[float, float], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}
DURATION_METRICS = (
    "mean_wait",
    "p50_wait",
    "p95_wait",
    "p99_wait",
    "mean_jct",
    "p50_jct",
    "p95_jct",
    "p99_jct",
)
FRACTION_METRICS = ("deadline_miss", "completed", "utilisation", "jain")
# In the order metrics_of returns them.
_METRIC_NAMES = (*DURATION_METRICS, *FRACTION_METRICS)
_SPEND_SLO = re.compile(
    r"^\s*tenant\s*=\s*(?P<tenant>[^:\s]+)\s*:\s*spend\s*(?P<op><=|>=|<|>)\s*\$?\s*(?P<amount>[^\s/$]+)"
    r"\s*/\s*(?P<period>\S+)\s*$"
)
_SPEND_EXAMPLE = "tenant=<name>:spend<$<amount>/<day|week|month>, e.g. 'tenant=research:spend<$5000/week'"


@dataclass(frozen=True)
class Slo:
    """An objective: ``metric op value``. A cost SLO (``tenant``/``period`` set) reads the metric
    ``spend:<tenant>/<period>`` (see the module docstring)."""

    text: str
    metric: str
    op: str
    value: float
    tenant: str | None = None
    period: str | None = None

    def holds(self, metrics: dict[str, float | None]) -> bool:
        observed = metrics.get(self.metric)
        return observed is not None and _OPS[self.op](observed, self.value)


def spend_metric(tenant: str, period: str) -> str:
    """The name of a cost SLO's metric: ``spend:<tenant>/<period>``."""
    return f"spend:{tenant}/{period}"


def _parse_spend_slo(text: str) -> Slo:
    match = _SPEND_SLO.match(text)
    if match is None:
        raise ValidationError(f"{text!r}: expected {_SPEND_EXAMPLE}", path="--slo")
    tenant, op, raw, period = (match.group(g) for g in ("tenant", "op", "amount", "period"))
    try:
        check_name(tenant, "tenant")
    except ValidationError as exc:
        raise ValidationError(f"{text!r}: tenant: {exc.message}", path="--slo") from None
    if op not in ("<", "<="):
        raise ValidationError(f"{text!r}: a spend SLO is a cap: use < or <=, not {op}", path="--slo")
    try:
        amount = Decimal(raw.replace(",", ""))
    except ArithmeticError:
        raise ValidationError(f"{text!r}: {raw!r} is not an amount of money", path="--slo") from None
    if not amount.is_finite() or amount < 0:
        raise ValidationError(f"{text!r}: the amount must be a finite amount >= 0, got {raw}", path="--slo")
    if period not in PERIODS:
        raise ValidationError(
            f"{text!r}: unknown period {period!r}; periods: {', '.join(PERIODS)}", path="--slo"
        )
    return Slo(text, spend_metric(tenant, period), op, float(amount), tenant, period)


def parse_slo(text: str) -> Slo:
    """``<metric><op><value>``, or a cost SLO ``tenant=<name>:spend<$<amount>/<period>``."""
    if text.strip().startswith("tenant"):
        return _parse_spend_slo(text)
    match = _SLO.match(text)
    known = ", ".join([*sorted(_METRIC_NAMES), "tenant=<name>:spend"])
    if match is None:
        raise ValidationError(f"{text!r}: expected <metric><op><value>, e.g. 'p95_wait<30m'", path="--slo")
    metric, op, raw = match.group("metric"), match.group("op"), match.group("value")
    if metric in DURATION_METRICS:
        value = parse_duration(raw, "--slo")
    elif metric in FRACTION_METRICS:
        try:
            value = float(raw[:-1]) / 100 if raw.endswith("%") else float(raw)
        except ValueError:
            raise ValidationError(f"{text!r}: {raw!r} is not a number or percentage", path="--slo") from None
    else:
        raise ValidationError(f"{text!r}: unknown metric {metric!r}; metrics: {known}", path="--slo")
    return Slo(text, metric, op, value)


def check_slos(loaded: LoadedScenario, slos: Iterable[Slo]) -> None:
    """Cost SLOs name tenants of the scenario (a tenant without a LocalQueue spends nothing, so
    its SLO would hold whatever the fleet: a typo, not an objective)."""
    tenants = {namespace for namespace, _ in loaded.queues.local_queues}
    for slo in slos:
        if slo.tenant is not None and slo.tenant not in tenants:
            raise ValidationError(
                f"{slo.text!r}: tenant {slo.tenant!r} has no LocalQueue in the scenario; tenants: "
                f"{', '.join(sorted(tenants)) or 'none'}",
                path="--slo",
            )


def metrics_of(report: dict[str, Any], slos: Iterable[Slo] = ()) -> dict[str, float | None]:
    """The SLO metrics of a report (and the metric of every cost SLO of ``slos``).

    ``deadline_miss`` is the report's miss rate over jobs whose outcome is determined (0 when no
    job has a deadline: nothing can be missed; ``None``, failing any SLO on it, when deadlines
    exist but none is determined yet). ``completed`` is over the completable jobs, so a job
    submitted too close to the horizon to finish on any fleet does not make the SLO unreachable.
    A cost SLO's ``spend:<tenant>/<period>`` is ``money.spend.peak.<period>.<tenant>`` (0 for a
    tenant that spent nothing; ``None``, failing the SLO, for a report without money figures).
    """
    overall = report["overall"]
    waits, jcts = overall["wait_s"], overall["jct_s"]
    deadlines = overall["deadlines"]
    completable = overall["completable"]
    return {
        "mean_wait": waits["mean"],
        "p50_wait": waits["p50"],
        "p95_wait": waits["p95"],
        "p99_wait": waits["p99"],
        "mean_jct": jcts["mean"],
        "p50_jct": jcts["p50"],
        "p95_jct": jcts["p95"],
        "p99_jct": jcts["p99"],
        "deadline_miss": overall["deadline_miss_rate"] if deadlines else 0.0,
        "completed": overall["completed"] / completable if completable else None,
        "utilisation": report["utilisation"]["fleet"],
        "jain": report["fairness"]["jain_index_tenants"],
        **_spend_metrics(report, slos),
    }


def _spend_metrics(report: dict[str, Any], slos: Iterable[Slo]) -> dict[str, float | None]:
    peaks = (report.get("money") or {}).get("spend", {}).get("peak")
    out: dict[str, float | None] = {}
    for slo in slos:
        if slo.tenant is None or slo.period is None:
            continue
        out[slo.metric] = None if peaks is None else float(peaks[slo.period].get(slo.tenant, "0"))
    return out


# --------------------------------------------------------------------------------------------
# Runs
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class RunSpec:
    label: str
    scenario: Scenario
    base_dir: str
    source: str
    strategy: str | None = None
    quota_factors: tuple[tuple[str, int, int], ...] = ()
    # Plan points: the fleet's GPUs and price over the horizon, and why it cannot run at all
    # (empty when it can); an infeasible spec is not simulated.
    fleet_gpus: int = 0
    fleet_cost: Decimal = Decimal(0)
    infeasible: str = ""


def run_one(spec: RunSpec) -> dict[str, Any]:
    """One simulation (top level so a process pool can pickle it); returns its report and figures.

    An infeasible spec (a plan point whose fleet cannot be built) returns ``report: None`` and its
    reason instead of running, so a sweep goes on past it.
    """
    if spec.infeasible:
        return {
            "label": spec.label,
            "report": None,
            "infeasible": spec.infeasible,
            "waits": [],
            "jcts": [],
            "wall_s": 0.0,
        }
    loaded = LoadedScenario(spec.scenario, Path(spec.base_dir), spec.source)
    queues = scale_quotas(loaded.queues, {f: (new, old) for f, new, old in spec.quota_factors})
    queues = with_strategy(queues, spec.strategy)
    result = build_simulation(loaded, queues=queues).run()
    report = build_report(
        result, scenario_name=f"{spec.scenario.name} [{spec.label}]", seed=spec.scenario.seed
    )
    waits = sorted(r.admitted_s - r.arrival.submit_s for r in result.records if r.admitted_s is not None)
    jcts = sorted(
        r.end_s - r.arrival.submit_s
        for r in result.records
        if r.status is SimJobStatus.COMPLETED and r.end_s is not None
    )
    return {
        "label": spec.label,
        "report": report,
        "waits": waits,
        "jcts": jcts,
        "wall_s": result.stats.wall_s,
    }


def run_all(
    specs: Sequence[RunSpec], executor: Executor | None = None, workers: int | None = None
) -> list[Any]:
    """Run every spec, in parallel when there is more than one; results in the order given."""
    if executor is not None:
        return list(executor.map(run_one, specs))
    if len(specs) <= 1 or workers == 1:
        return [run_one(s) for s in specs]
    with ProcessPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(run_one, specs))


def compare_specs(loaded: LoadedScenario, policies: Iterable[PolicyVariant]) -> list[RunSpec]:
    specs = []
    labels: set[str] = set()
    for variant in policies:
        if variant.label in labels:
            raise ValidationError(f"policy {variant.label!r} given twice", path="--policy")
        labels.add(variant.label)
        scenario = apply_policy(loaded.scenario, variant)
        specs.append(
            RunSpec(variant.label, scenario, str(loaded.base_dir), loaded.source, variant.queueing_strategy)
        )
    return specs


@dataclass(frozen=True)
class PlanPoint:
    changes: dict[tuple[str, str], int]
    gpus: int
    fleet_cost: Decimal  # price of the fleet's GPUs over the horizon
    metrics: dict[str, float | None]
    passed: bool
    failed: tuple[str, ...]
    infeasible: str = ""  # why this fleet cannot run (then metrics are None and every SLO fails)


def plan_specs(
    loaded: LoadedScenario, variations: Sequence[Variation], *, meter: bool = False
) -> list[tuple[dict[tuple[str, str], int], RunSpec]]:
    """One run per combination of the variations' values. ``meter``: every run meters its usage
    (a cost SLO reads it), adding a ``money`` block without guard or budgets to a scenario that has
    none."""
    if not variations:
        raise ValidationError("give at least one --vary", path="--vary")
    keys = [(v.pool, v.field) for v in variations]
    if len(set(keys)) != len(keys):
        raise ValidationError("the same pool field is varied twice", path="--vary")
    prices = loaded.prices()
    out = []
    for combo in itertools.product(*(v.values for v in variations)):
        changes = dict(zip(keys, combo, strict=True))
        label = ", ".join(f"{p}.{f}={v}" for (p, f), v in changes.items())
        # A plan reads SLO metrics only: measuring ETAs (a forward run per job) would be wasted.
        scenario = vary_fleet(loaded.scenario, changes).model_copy(update={"eta": None})
        if meter and scenario.money is None:
            scenario = scenario.model_copy(update={"money": MoneySpec(guard=None)})
        nodes = fleet_nodes(loaded, scenario)
        gpus, cost = fleet_cost(loaded, nodes, prices)
        infeasible = ""
        try:
            LoadedScenario(scenario, loaded.base_dir, loaded.source)
        except ValidationError as exc:  # the base loaded, so the variation is what broke it
            infeasible = _unsupplied_flavors(loaded, nodes) or exc.message
        factors = tuple((f, new, old) for f, (new, old) in sorted(flavor_factors(loaded, nodes).items()))
        if not infeasible and loaded.reservations:
            scaled = scale_quotas(loaded.queues, {f: (new, old) for f, new, old in factors})
            infeasible = _unbookable(loaded, scaled)
        spec = RunSpec(
            label,
            scenario,
            str(loaded.base_dir),
            loaded.source,
            None,
            factors,
            fleet_gpus=gpus,
            fleet_cost=cost,
            infeasible=infeasible,
        )
        out.append((changes, spec))
    return out


def _unbookable(base: LoadedScenario, queues: QueueConfig) -> str:
    """Why the scenario's capacity bookings do not fit ``queues``, a fleet's scaled quotas ('' if
    they do): a booking may not book more than its ClusterQueue's nominal quota."""
    book = ReservationBook()
    for reservation in base.reservations:
        try:
            book.add(reservation, queues)
        except BudcoreError as exc:
            return f"the scaled quotas cannot hold reservation {reservation.name}: {exc}"
    return ""


def _unsupplied_flavors(base: LoadedScenario, nodes: Sequence[Node]) -> str:
    """Why a fleet is infeasible when some ResourceFlavor selects none of its nodes ('' if none)."""
    missing = [
        name
        for name, flavor in sorted(base.queues.flavors.items())
        if not any(n.matches(flavor.node_labels) for n in nodes)
    ]
    if not missing:
        return ""
    names = ", ".join(repr(m) for m in missing)
    return f"no node for ResourceFlavor {names} (no remaining pool supplies it)"


def fleet_cost(
    base: LoadedScenario, nodes: Sequence[Node], prices: Mapping[str, Decimal] | None = None
) -> tuple[int, Decimal]:
    """GPUs of ``nodes`` that some ResourceFlavor selects, and their price over the horizon.

    Prices are the ones the simulation bills (``base.prices()``, the scenario's whole price
    resolution), so ``plan`` and ``simulate`` agree; a node goes by the first flavor (by name)
    selecting it that has a price. A GPU no flavor selects runs nothing and is left out. A GPU
    whose flavors have no price raises: an unknown price is not $0.
    """
    prices = base.prices() if prices is None else prices
    horizon_h = Decimal(repr(base.scenario.horizon or 0.0)) / 3600
    gpu = _gpu(base)
    flavors = sorted(base.queues.flavors.items())
    gpus = 0
    cost = Decimal(0)
    unpriced: set[str] = set()
    for node in nodes:
        count = node.allocatable.get(gpu, 0) // 1000
        selecting = [name for name, flavor in flavors if node.matches(flavor.node_labels)]
        if not count or not selecting:
            continue
        gpus += count
        price = next((prices[name] for name in selecting if name in prices), None)
        if price is None:
            unpriced.update(selecting)
            continue
        cost += price * count * horizon_h
    if unpriced:
        names = ", ".join(repr(name) for name in sorted(unpriced))
        raise ValidationError(
            f"fleet cost is unknown: no price per GPU-hour for ResourceFlavor {names}; set "
            "fleet.prices.<flavor>, the pool's price_per_gpu_hour, or (nodes file) a price book "
            "entry for the accelerator",
            path="fleet.prices",
            source=base.source,
        )
    return gpus, cost.quantize(Decimal("0.01"))


def _no_metrics(slos: Iterable[Slo] = ()) -> dict[str, float | None]:
    """The metrics of a fleet that did not run: every one unknown (``None``)."""
    return dict.fromkeys([*_METRIC_NAMES, *(s.metric for s in slos if s.tenant is not None)])


def evaluate_plan(
    points: Sequence[tuple[dict[tuple[str, str], int], RunSpec]],
    results: Sequence[dict[str, Any]],
    slos: Sequence[Slo],
) -> list[PlanPoint]:
    """Each point's metrics against the SLOs; an infeasible point fails all of them, with its reason."""
    out = []
    for (changes, spec), result in zip(points, results, strict=True):
        if spec.infeasible:
            failed: tuple[str, ...] = (f"infeasible: {spec.infeasible}",)
            out.append(
                PlanPoint(
                    changes,
                    spec.fleet_gpus,
                    spec.fleet_cost,
                    _no_metrics(slos),
                    False,
                    failed,
                    spec.infeasible,
                )
            )
            continue
        metrics = metrics_of(result["report"], slos)
        failed = tuple(s.text for s in slos if not s.holds(metrics))
        out.append(PlanPoint(changes, spec.fleet_gpus, spec.fleet_cost, metrics, not failed, failed))
    return out


def cheapest(points: Sequence[PlanPoint]) -> PlanPoint | None:
    passing = [p for p in points if p.passed]
    return min(passing, key=lambda p: (p.fleet_cost, p.gpus)) if passing else None
