"""What-if runs: the same workload under several policies (``compare``) or fleets (``plan``).

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

**Variations** (``--vary PATH=VALUES``, :mod:`budcore_simulator.vary`) change any scenario field:
a pool's ``nodes`` (``pool.h100.nodes=4..32:4``), the load (``workload.rate=x0.5,x1,x1.5``), a
ClusterQueue's quota (``queues.cq.research.h100.gpu=16,32``), a policy knob
(``policy.fair_sharing=true,false``) or any field by path; several make a grid. Adding nodes
without quota would change nothing, so the nominal quotas of every flavor selecting a varied pool
scale with its GPU capacity (largest remainder, so they still add up to the capacity when they
did before); borrowing and lending limits scale likewise; a quota varied explicitly is then set
to the value given. A point where a pool has no nodes is the fleet without that pool: when that
leaves a ResourceFlavor with no node at all the point is *infeasible* (reported with its reason,
failing every SLO) and the sweep goes on; so is a point whose scaled quotas can no longer hold
the scenario's capacity bookings (``reservations``). Variations of the fleet are the plan's
fleet dimensions; the others are *conditions*, and the plan answers for each combination of
them separately.

A plan point does not measure ETAs (``eta``): its metrics never read them, and each estimate
runs the scheduler forward. ``compare`` keeps the scenario's ``eta``, so ``compare.json`` shows
each policy's ETA accuracy.

**Fleet cost** is each GPU's price per GPU-hour over the horizon, at the price the simulation bills
its flavor (:meth:`LoadedScenario.prices`: ``fleet.prices``, the pool's ``price_per_gpu_hour``,
then the nodes file's prices and price book); a node several flavors select is priced by the first
of them (by name) that has a price, and GPUs no flavor selects run nothing and are not counted. A
sweep in which some GPUs have no price is refused up front: its cheapest fleet would be meaningless.

**SLOs** (``--slo``) are ``[<scope>=<name>:]<metric><op><value>``, operators ``<``, ``<=``,
``>``, ``>=``. Metrics: ``mean_wait``, ``p50_wait``, ``p95_wait``, ``p99_wait`` (time to
admission: the report's ``wait_s``), ``mean_start_wait`` ... ``p99_start_wait`` (time to start,
all pods running: ``start_wait_s``), ``mean_jct`` ... ``p99_jct`` (durations: 90s, 30m, 2h),
``deadline_miss`` (a fraction or percent of the jobs whose deadline outcome is determined: jobs
still running or queued at the horizon with a later deadline are left out; it holds vacuously
without deadlines and fails while none is determined), ``completed`` (fraction of the
*completable* jobs that completed: those whose submit + runtime fits before the horizon, since a
job submitted too close to it cannot complete on any fleet), and, fleet-wide only,
``utilisation`` and ``jain``. A scope narrows a metric to the jobs of one tenant
(``tenant=research:p95_wait<30m``), ClusterQueue (``cq=research-cq:...``), job class
(``class=pretrain:deadline_miss<1%``) or priority (``priority=high:...``, the report's
``priority`` values): the report's ``by_tenant``, ``by_cluster_queue``, ``by_class`` and
``by_priority`` groups, computed exactly as ``overall``. A scope value the scenario does not have
is an error; a group with no job in a run has unknown metrics, failing its SLOs. See
``simulator/OUTPUTS.md`` for the report fields they read.

A **cost SLO** caps a tenant's spend per period: ``tenant=research:spend<$5000/week`` (``<=`` too;
the ``$`` is optional; periods ``day``, ``week``, ``month``). Its metric, ``spend:<tenant>/<period>``,
is the tenant's highest spend in any one calendar period of that kind (UTC day, ISO week from
Monday, month) within the simulation, compared at cents: ``money.spend.peak`` of the report,
which every point of a plan with a cost SLO meters (a scenario without a ``money`` block gets one
without guard or budgets: metering only). A tenant the scenario has no LocalQueue for is an error.

**Replications** (``--seeds N``) run every point N times: the first with the scenario's seed, the
i-th (i >= 1) with the seed ``int.from_bytes(sha256(f"{seed}/{i}")[:4])`` (:func:`replicate_seeds`),
so a seed set is a function of the scenario's seed and N alone, and N+1 seeds extend N. Every
metric is then the mean over the runs with a two-sided 95% confidence interval from Student's t
distribution with N-1 degrees of freedom (mean ± t · s/√N; for a percentile metric, the interval
of the mean of the per-run percentiles). A point meets an SLO only when the interval's
unfavourable bound does (the upper bound of an ``<`` objective, the lower of a ``>``); with one
run, its value. A metric unknown in any run is unknown.

**Search** (``--search``): ``grid`` runs every point; ``bisect`` assumes the question is monotone
(more nodes never break an SLO) and bisects each fleet dimension (node counts and GPUs per node
only) from the largest fleet down, with every point's outcome inferred from a dominating failure
or a dominated success where it can be: one dimension takes about log2 of its values in runs and
its answer is exact; with several dimensions it bisects them one after another, along every
order of the dimensions (cyclic orders beyond three), and answers the cheapest of the fleets
found, each one no pool of which can shrink without failing: the cheapest of the whole grid may
lie between them (``grid`` finds it). The plan reports how many points it ran against the grid,
and any pair of points it ran that contradict monotonicity. After the bisection it runs the
runner-up too (the cheapest of the passing fleets it ran and the answer's neighbours one step up)
when it has not run yet.

**The answer** (per condition) is the cheapest fleet meeting every SLO (ties: fewer GPUs), the
runner-up (the next cheapest meeting them), and what *binds*: the SLOs failed by the largest
smaller fleet that was run (one that is at most the answer along every fleet dimension), with
their scope, the metric there and at the answer.
"""

from __future__ import annotations

import hashlib
import itertools
import math
import operator
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Executor, ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field, replace
from decimal import Decimal
from pathlib import Path
from typing import Any, Protocol

import yaml

from budcore.config.yamlsource import YamlDocument, load_yaml_documents, safe_load
from budcore.domain.cluster import Node
from budcore.domain.errors import BudcoreError, ValidationError, ValidationErrors
from budcore.domain.ids import check_name
from budcore.domain.priority import JobPriority
from budcore.domain.resources import NVIDIA_GPU
from budcore.domain.validation import validate_model
from budcore.scheduling import QueueConfig
from budcore.scheduling.queues import FlavorQuotas, QueueingStrategy, ResourceGroup, ResourceQuota
from budcore.scheduling.reservations import ReservationBook

from .build import build_simulation
from .money import PERIODS, MoneySpec
from .outcomes import wait_samples
from .report import build_report
from .scenario import LoadedScenario, PolicySpec, Scenario
from .status import SimJobStatus
from .vary import Dimension, QuotaOverride, Variation, apply_quota_overrides, bind, json_value, point_scenario
from .vary import parse_vary as parse_vary
from .workload.limits import MAX_REPLICATIONS
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
            overrides[key] = safe_load(value)
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
    base = scenario.policy.model_dump(exclude_unset=True)
    merged = {**base, **variant.policy}
    for block in ("ordering", "throughput"):
        # A research preset (compare -p sjf, -p gavel) keeps the scenario's options of its block.
        ours = variant.policy.get(block)
        if isinstance(ours, dict) and isinstance(base.get(block), dict):
            merged[block] = {**base[block], **ours}
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
# Fleet variations: quotas follow capacity
# --------------------------------------------------------------------------------------------
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
_SLO = re.compile(
    r"^\s*(?:(?P<scope>[A-Za-z_]+)\s*=\s*(?P<name>[^:]*?)\s*:)?"
    r"\s*(?P<metric>[A-Za-z0-9_]+)\s*(?P<op><=|>=|<|>)\s*(?P<value>.*?)\s*$"
)
_OPS: dict[str, Callable[[float, float], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}
# The report's figures of a group of jobs (``overall``, ``by_tenant.<t>``, ...) per duration metric.
_DURATIONS = {"wait": "wait_s", "jct": "jct_s", "start_wait": "start_wait_s"}
_STATISTICS = ("mean", "p50", "p95", "p99")
DURATION_METRICS = tuple(f"{s}_{d}" for d in _DURATIONS for s in _STATISTICS)
GROUP_METRICS = (*DURATION_METRICS, "deadline_miss", "completed")  # per group: any scope
FLEET_METRICS = ("utilisation", "jain")  # of the whole run only
FRACTION_METRICS = ("deadline_miss", "completed", *FLEET_METRICS)
# In the order metrics_of returns them.
_METRIC_NAMES = (*GROUP_METRICS, *FLEET_METRICS)
# Scopes and the report's groups they read.
SCOPES = {"tenant": "by_tenant", "cq": "by_cluster_queue", "class": "by_class", "priority": "by_priority"}
_SCOPE_NOUNS = {"tenant": "tenant", "cq": "ClusterQueue", "class": "job class", "priority": "priority"}
_SPEND_VALUE = re.compile(r"^\$?\s*(?P<amount>[^\s/$]+)\s*/\s*(?P<period>\S+)$")
_SPEND_EXAMPLE = "tenant=<name>:spend<$<amount>/<day|week|month>, e.g. 'tenant=research:spend<$5000/week'"
_SLO_EXAMPLE = (
    "expected <metric><op><value>, optionally scoped as <scope>=<name>:<metric><op><value> "
    "(scopes: tenant, cq, class, priority), e.g. 'p95_wait<30m' or 'tenant=research:p95_wait<30m'"
)


@dataclass(frozen=True)
class Slo:
    """An objective: ``metric op value``.

    ``metric`` is the key of the metrics it reads: the metric's name fleet-wide (``p95_wait``),
    ``<scope>=<name>:<metric>`` when scoped (``tenant=research:p95_wait``), and
    ``spend:<tenant>/<period>`` for a cost SLO (``tenant``/``period`` set; see the module
    docstring). ``scope``/``name`` say whose jobs it is about, ``base`` the unscoped metric.
    """

    text: str
    metric: str
    op: str
    value: float
    tenant: str | None = None  # a cost SLO's tenant
    period: str | None = None  # a cost SLO's period
    scope: str | None = None  # tenant, cq, class or priority
    name: str | None = None  # the scope's value
    base: str = ""

    def holds(self, metrics: Mapping[str, float | None]) -> bool:
        observed = metrics.get(self.metric)
        return observed is not None and _OPS[self.op](observed, self.value)

    @property
    def upper(self) -> bool:
        """An upper limit (``<``, ``<=``): the interval's upper bound is the unfavourable one."""
        return self.op in ("<", "<=")

    def bound(self, stat: Stat) -> float | None:
        """The unfavourable bound of ``stat`` for this objective (its value with one run)."""
        return stat.high if self.upper else stat.low

    def holds_for(self, stat: Stat) -> bool:
        return self.holds({self.metric: self.bound(stat)})

    def slack(self, stat: Stat) -> float | None:
        """How far the unfavourable bound is inside the objective, relative to it (negative:
        outside); ``None`` when unknown or the objective is 0."""
        bound = self.bound(stat)
        if bound is None or self.value == 0:
            return None
        gap = self.value - bound if self.upper else bound - self.value
        return gap / abs(self.value)

    @property
    def whose(self) -> str:
        """``tenant research``, ``ClusterQueue gpu-cq``, ... or ``fleet-wide``."""
        return "fleet-wide" if self.scope is None else f"{_SCOPE_NOUNS[self.scope]} {self.name}"


def spend_metric(tenant: str, period: str) -> str:
    """The name of a cost SLO's metric: ``spend:<tenant>/<period>``."""
    return f"spend:{tenant}/{period}"


def scoped_metric(scope: str, name: str, metric: str) -> str:
    """The name of a scoped metric: ``<scope>=<name>:<metric>``."""
    return f"{scope}={name}:{metric}"


def parse_slo(text: str) -> Slo:
    """``[<scope>=<name>:]<metric><op><value>``; a cost SLO is ``tenant=<name>:spend<$<amount>/<period>``."""
    match = _SLO.match(text)
    if match is None:
        if re.match(r"^\s*[A-Za-z_]+\s*=\s*[^:]*:\s*spend", text):
            raise ValidationError(f"{text!r}: expected {_SPEND_EXAMPLE}", path="--slo")
        raise ValidationError(f"{text!r}: {_SLO_EXAMPLE}", path="--slo")
    scope, name = match.group("scope"), match.group("name")
    metric, op, raw = match.group("metric"), match.group("op"), match.group("value")
    if scope is not None:
        if scope not in SCOPES:
            raise ValidationError(
                f"{text!r}: unknown scope {scope!r}; scopes: {', '.join(SCOPES)}", path="--slo"
            )
        if not name:
            raise ValidationError(f"{text!r}: give the {_SCOPE_NOUNS[scope]} after {scope}=", path="--slo")
        if scope in ("tenant", "cq", "class"):
            try:
                check_name(name, scope)
            except ValidationError as exc:
                raise ValidationError(f"{text!r}: {scope}: {exc.message}", path="--slo") from None
        elif re.search(r"\s", name):
            raise ValidationError(f"{text!r}: priority {name!r} has white space", path="--slo")
    if metric == "spend":
        return _parse_spend(text, scope, name, op, raw)
    if not raw:
        raise ValidationError(f"{text!r}: {_SLO_EXAMPLE}", path="--slo")
    if metric in DURATION_METRICS:
        value = parse_duration(raw, "--slo")
    elif metric in FRACTION_METRICS:
        try:
            value = float(raw[:-1]) / 100 if raw.endswith("%") else float(raw)
        except ValueError:
            raise ValidationError(f"{text!r}: {raw!r} is not a number or percentage", path="--slo") from None
    else:
        known = ", ".join([*_METRIC_NAMES, "spend (tenant=<name>:spend<$<amount>/<period>)"])
        hint = f"; for a cost SLO, expected {_SPEND_EXAMPLE}" if scope == "tenant" else ""
        raise ValidationError(f"{text!r}: unknown metric {metric!r}; metrics: {known}{hint}", path="--slo")
    if scope is None:
        return Slo(text, metric, op, value, base=metric)
    assert name is not None
    if metric in FLEET_METRICS:
        raise ValidationError(
            f"{text!r}: {metric} is fleet-wide and takes no scope; scoped metrics: "
            + ", ".join(GROUP_METRICS),
            path="--slo",
        )
    return Slo(text, scoped_metric(scope, name, metric), op, value, scope=scope, name=name, base=metric)


def _parse_spend(text: str, scope: str | None, name: str | None, op: str, raw: str) -> Slo:
    if scope != "tenant" or name is None:
        raise ValidationError(f"{text!r}: spend is per tenant: {_SPEND_EXAMPLE}", path="--slo")
    match = _SPEND_VALUE.match(raw)
    if match is None:
        raise ValidationError(f"{text!r}: expected {_SPEND_EXAMPLE}", path="--slo")
    amount_text, period = match.group("amount"), match.group("period")
    if op not in ("<", "<="):
        raise ValidationError(f"{text!r}: a spend SLO is a cap: use < or <=, not {op}", path="--slo")
    try:
        amount = Decimal(amount_text.replace(",", ""))
    except ArithmeticError:
        raise ValidationError(f"{text!r}: {amount_text!r} is not an amount of money", path="--slo") from None
    if not amount.is_finite() or amount < 0:
        raise ValidationError(
            f"{text!r}: the amount must be a finite amount >= 0, got {amount_text}", path="--slo"
        )
    if period not in PERIODS:
        raise ValidationError(
            f"{text!r}: unknown period {period!r}; periods: {', '.join(PERIODS)}", path="--slo"
        )
    return Slo(
        text,
        spend_metric(name, period),
        op,
        float(amount),
        name,
        period,
        scope="tenant",
        name=name,
        base="spend",
    )


def check_slos(loaded: LoadedScenario, slos: Iterable[Slo]) -> None:
    """Every scope value names something the scenario has: a tenant with a LocalQueue, a
    ClusterQueue, a job class or a priority of its jobs (an SLO on something absent would hold or
    fail whatever the fleet: a typo, not an objective)."""
    slos = list(slos)
    known: dict[str, set[str]] = {}
    for slo in slos:
        if slo.scope is None or slo.name is None:
            continue
        if slo.scope not in known:
            known[slo.scope] = _scope_values(loaded, slo.scope)
        values = known[slo.scope]
        if slo.name in values or (slo.scope == "class" and _pipeline_class(loaded, slo.name)):
            continue
        listed = ", ".join(sorted(values)) or "none"
        if slo.scope == "tenant":
            message = f"tenant {slo.name!r} has no LocalQueue in the scenario; tenants: {listed}"
        elif slo.scope == "cq":
            message = f"ClusterQueue {slo.name!r} is not in the scenario's queues; ClusterQueues: {listed}"
        else:
            noun = _SCOPE_NOUNS[slo.scope]
            message = f"no job of {noun} {slo.name!r} in the scenario's workload; {noun} values: {listed}"
        raise ValidationError(f"{slo.text!r}: {message}", path="--slo")


def _scope_values(loaded: LoadedScenario, scope: str) -> set[str]:
    if scope == "tenant":
        return {namespace for namespace, _ in loaded.queues.local_queues}
    if scope == "cq":
        return set(loaded.queues.cluster_queues)
    generators = loaded.scenario.workload.generators
    if scope == "class":
        declared = {c.name for c in generators.classes} if generators is not None else set()
        return declared | {a.job_class for a in loaded.arrivals()}
    values = {a.priority_label for a in loaded.arrivals()}
    if loaded.pipelines:  # pipeline steps' jobs have any priority the queues know
        values |= {p.value for p in JobPriority} | set(loaded.queues.priority_classes)
    return values


def _pipeline_class(loaded: LoadedScenario, name: str) -> bool:
    """Whether ``name`` is a class of a pipeline's step jobs (``<pipeline id>/<step>``)."""
    return any(name.startswith(f"{p.spec.id}/") for p in loaded.pipelines)


def _group_metric(group: Mapping[str, Any] | None, metric: str) -> float | None:
    """One metric of a report group (``None`` for a group with no job)."""
    if group is None:
        return None
    if metric == "deadline_miss":
        return group["deadline_miss_rate"] if group["deadlines"] else 0.0
    if metric == "completed":
        completable = group["completable"]
        return group["completed"] / completable if completable else None
    statistic, _, duration = metric.partition("_")
    figures = group.get(_DURATIONS[duration])
    return None if figures is None else figures[statistic]


def metrics_of(report: dict[str, Any], slos: Iterable[Slo] = ()) -> dict[str, float | None]:
    """The SLO metrics of a report, and the metric of every scoped or cost SLO of ``slos``.

    ``deadline_miss`` is the report's miss rate over jobs whose outcome is determined (0 when no
    job has a deadline: nothing can be missed; ``None``, failing any SLO on it, when deadlines
    exist but none is determined yet). ``completed`` is over the completable jobs, so a job
    submitted too close to the horizon to finish on any fleet does not make the SLO unreachable.
    A scoped metric reads the scope's group of the report (``by_tenant.<name>``, ...), ``None``
    when the run has no job in it. A cost SLO's ``spend:<tenant>/<period>`` is
    ``money.spend.peak.<period>.<tenant>`` (0 for a tenant that spent nothing; ``None``, failing
    the SLO, for a report without money figures).
    """
    overall = report["overall"]
    out: dict[str, float | None] = {m: _group_metric(overall, m) for m in GROUP_METRICS}
    out["utilisation"] = report["utilisation"]["fleet"]
    out["jain"] = report["fairness"]["jain_index_tenants"]
    peaks = (report.get("money") or {}).get("spend", {}).get("peak")
    for slo in slos:
        if slo.period is not None and slo.tenant is not None:
            out[slo.metric] = None if peaks is None else float(peaks[slo.period].get(slo.tenant, "0"))
        elif slo.scope is not None and slo.name is not None:
            group = (report.get(SCOPES[slo.scope]) or {}).get(slo.name)
            out[slo.metric] = _group_metric(group, slo.base)
    return out


def _no_metrics(slos: Iterable[Slo] = ()) -> dict[str, float | None]:
    """The metrics of a fleet that did not run: every one unknown (``None``)."""
    return dict.fromkeys([*_METRIC_NAMES, *(s.metric for s in slos if s.scope is not None)])


# --------------------------------------------------------------------------------------------
# Replications
# --------------------------------------------------------------------------------------------
CONFIDENCE = 0.95
INTERVAL_METHOD = (
    "two-sided 95% confidence interval of the mean over the seeds, Student's t with N-1 degrees "
    "of freedom: mean ± t(0.975, N-1) · s / √N, the lower bound clipped at 0 when every value is "
    "non-negative (waits, times, counts, costs cannot be negative)"
)


def replicate_seeds(seed: int, count: int) -> tuple[int, ...]:
    """``count`` seeds: ``seed`` itself, then ``int.from_bytes(sha256(f"{seed}/{i}")[:4], "big")``
    for i = 1, 2, ...: a function of the scenario's seed and the count alone (and a prefix of any
    longer set)."""
    if count < 1:
        raise ValidationError(f"--seeds must be at least 1, got {count}", path="--seeds")
    if count > MAX_REPLICATIONS:
        raise ValidationError(f"--seeds must be at most {MAX_REPLICATIONS:,}, got {count:,}", path="--seeds")
    derived = (
        int.from_bytes(hashlib.sha256(f"{seed}/{i}".encode()).digest()[:4], "big") for i in range(1, count)
    )
    return (seed, *derived)


def _t_mass(t: float, df: int) -> float:
    """P(|T| <= t) for Student's t with ``df`` degrees of freedom (closed forms for integer df,
    Abramowitz & Stegun 26.7.3 and 26.7.4)."""
    theta = math.atan(t / math.sqrt(df))
    cos2 = math.cos(theta) ** 2
    if df % 2:
        if df == 1:
            return 2 * theta / math.pi
        term = total = math.cos(theta)
        for k in range(1, (df - 1) // 2):
            term *= cos2 * (2 * k) / (2 * k + 1)
            total += term
        return 2 / math.pi * (theta + math.sin(theta) * total)
    term = total = 1.0
    for k in range(1, df // 2):
        term *= cos2 * (2 * k - 1) / (2 * k)
        total += term
    return math.sin(theta) * total


def t_quantile(probability: float, df: int) -> float:
    """The ``probability`` quantile (> 0.5) of Student's t with ``df`` degrees of freedom."""
    if df < 1 or not 0.5 < probability < 1:
        raise ValueError((probability, df))
    mass = 2 * probability - 1
    lo, hi = 0.0, 1.0
    while _t_mass(hi, df) < mass:
        hi *= 2
    for _ in range(200):
        mid = (lo + hi) / 2
        if _t_mass(mid, df) < mass:
            lo = mid
        else:
            hi = mid
        if hi - lo < 1e-12:
            break
    return (lo + hi) / 2


@dataclass(frozen=True)
class Stat:
    """A metric over the runs of a point: mean and confidence interval (``low``/``high``; both the
    value with one run), ``None`` throughout when any run left it unknown."""

    mean: float | None
    low: float | None
    high: float | None
    values: tuple[float | None, ...]

    @property
    def n(self) -> int:
        return len(self.values)

    @property
    def half_width(self) -> float | None:
        if self.mean is None or self.high is None or self.n < 2:
            return None
        return self.high - self.mean

    def as_json(self) -> dict[str, Any]:
        return {
            "mean": self.mean,
            "low": self.low,
            "high": self.high,
            "n": self.n,
            "values": list(self.values),
        }


def _round(value: float) -> float:
    return round(value, 6)


def summarize(values: Sequence[float | None]) -> Stat:
    """Mean and Student-t 95% interval of ``values`` (see :data:`INTERVAL_METHOD`)."""
    values = tuple(values)
    if not values or any(v is None for v in values):
        return Stat(None, None, None, values)
    numbers = [float(v) for v in values if v is not None]
    n = len(numbers)
    mean = math.fsum(numbers) / n
    if n == 1:
        return Stat(numbers[0], numbers[0], numbers[0], values)
    sd = math.sqrt(math.fsum((v - mean) ** 2 for v in numbers) / (n - 1))
    half = t_quantile((1 + CONFIDENCE) / 2, n - 1) * sd / math.sqrt(n)
    low = mean - half
    if low < 0 <= min(numbers):
        # A metric whose every run is non-negative (a wait, a count, a cost) cannot have a negative
        # mean: the symmetric t interval's tail below 0 is no information, and a table showing
        # "-3.2 min" would read as a bug. The clipped bound is still the unfavourable one for "<".
        low = 0.0
    return Stat(_round(mean), _round(low), _round(mean + half), values)


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
    # Quotas a plan varies explicitly, set after the capacity scaling (``quota_factors``).
    quota_overrides: tuple[QuotaOverride, ...] = ()


def with_seed(spec: RunSpec, seed: int) -> RunSpec:
    """``spec`` run with another seed."""
    if spec.scenario.seed == seed:
        return spec
    return replace(spec, scenario=spec.scenario.model_copy(update={"seed": seed}))


def run_one(spec: RunSpec) -> dict[str, Any]:
    """One simulation (top level so a process pool can pickle it); returns its report and figures.

    An infeasible spec (a plan point whose fleet cannot be built) returns ``report: None`` and its
    reason instead of running, so a sweep goes on past it.
    """
    if spec.infeasible:
        return {
            "label": spec.label,
            "seed": spec.scenario.seed,
            "report": None,
            "infeasible": spec.infeasible,
            "wait_samples": {"durations": [], "observed": []},
            "start_wait_samples": {"durations": [], "observed": []},
            "jcts": [],
            "wall_s": 0.0,
        }
    loaded = LoadedScenario(spec.scenario, Path(spec.base_dir), spec.source)
    queues = scale_quotas(loaded.queues, {f: (new, old) for f, new, old in spec.quota_factors})
    queues = apply_quota_overrides(queues, spec.quota_overrides)
    queues = with_strategy(queues, spec.strategy)
    result = build_simulation(loaded, queues=queues).run()
    report = build_report(
        result, scenario_name=f"{spec.scenario.name} [{spec.label}]", seed=spec.scenario.seed
    )
    # Every queued job's wait, censored at the end of the run when not over (.outcomes): the
    # compare plot's Kaplan–Meier CDFs, so a policy starving jobs shows it.
    waits = wait_samples(result.records, result.horizon_s)
    starts = wait_samples(result.records, result.horizon_s, until="start")
    jcts = sorted(
        r.end_s - r.arrival.submit_s
        for r in result.records
        if r.status is SimJobStatus.COMPLETED and r.end_s is not None
    )
    return {
        "label": spec.label,
        "seed": spec.scenario.seed,
        "report": report,
        "wait_samples": {"durations": list(waits.durations), "observed": list(waits.observed)},
        "start_wait_samples": {"durations": list(starts.durations), "observed": list(starts.observed)},
        "jcts": jcts,
        "wall_s": result.stats.wall_s,
    }


def run_all(
    specs: Sequence[RunSpec],
    executor: Executor | None = None,
    workers: int | None = None,
    on_result: Callable[[int, dict[str, Any]], None] | None = None,
) -> list[Any]:
    """Run every spec, in parallel when there is more than one; results in the order given.

    ``on_result(i, result)`` is called as each run finishes, in the order they finish (progress,
    and ``plan``'s journal of finished runs). On an interruption (Ctrl-C) the runs not started are
    cancelled and this function's own worker processes are stopped before it re-raises; the
    workers ignore SIGINT themselves (:func:`_worker_ignores_interrupts`), so a terminal's Ctrl-C,
    which reaches every process of the group, prints nothing from them.
    """
    if executor is None and (len(specs) <= 1 or workers == 1):
        results = []
        for i, spec in enumerate(specs):
            results.append(run_one(spec))
            if on_result is not None:
                on_result(i, results[-1])
        return results
    if executor is not None:
        return _gather(executor, specs, on_result)
    # Never more processes than runs: a fork-based pool starts all its workers at once, so
    # ``--workers 100000`` for two runs would otherwise fork 100,000 processes.
    pool = ProcessPoolExecutor(
        max_workers=_at_most(workers, len(specs)), initializer=_worker_ignores_interrupts
    )
    try:
        results = _gather(pool, specs, on_result)
    except BaseException:
        _stop_workers(pool)
        raise
    pool.shutdown()
    return results


def _gather(
    executor: Executor, specs: Sequence[RunSpec], on_result: Callable[[int, dict[str, Any]], None] | None
) -> list[Any]:
    futures = {executor.submit(run_one, spec): i for i, spec in enumerate(specs)}
    results: list[Any] = [None] * len(specs)
    try:
        for future in as_completed(futures):
            i = futures[future]
            results[i] = future.result()
            if on_result is not None:
                on_result(i, results[i])
    except BaseException:
        for future in futures:
            future.cancel()
        raise
    return results


def _worker_ignores_interrupts() -> None:
    """A worker process leaves SIGINT to its parent, and SIGTERM ends it silently (the default)."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _at_most(workers: int | None, runs: int) -> int | None:
    """The pool size for ``runs`` runs at a time: ``workers`` (None: one per CPU), never more
    than the runs."""
    return None if workers is None else max(1, min(workers, runs))


def _stop_workers(pool: ProcessPoolExecutor) -> None:
    """Cancel what has not started and end the workers now (a run can take minutes)."""
    processes = list((getattr(pool, "_processes", None) or {}).values())  # no public API before 3.14
    pool.shutdown(wait=False, cancel_futures=True)
    for process in processes:
        if process.is_alive():
            process.terminate()
    for process in processes:
        process.join(timeout=5)


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


def replicate(specs: Sequence[RunSpec], seeds: Sequence[int]) -> list[RunSpec]:
    """Every spec with every seed, spec by spec (``len(seeds)`` consecutive runs each)."""
    return [with_seed(spec, seed) for spec in specs for seed in seeds]


def metric_stats(results: Sequence[Mapping[str, Any]], slos: Iterable[Slo] = ()) -> dict[str, Stat]:
    """Every metric of ``metrics_of`` over the runs ``results`` of one point or policy."""
    slos = list(slos)
    per_run = [metrics_of(r["report"], slos) for r in results]
    names = list(per_run[0]) if per_run else list(_no_metrics(slos))
    return {name: summarize([m.get(name) for m in per_run]) for name in names}


# --------------------------------------------------------------------------------------------
# Plan points
# --------------------------------------------------------------------------------------------
Index = tuple[int, ...]


class PlanSpace:
    """The points of a plan: every combination of the variations' values, each built (validated,
    priced, its quotas scaled) when first asked for."""

    def __init__(self, loaded: LoadedScenario, variations: Sequence[Variation], *, meter: bool = False):
        if not variations:
            raise ValidationError("give at least one --vary", path="--vary")
        self.base = loaded
        self.meter = meter
        self.dims: list[Dimension] = bind(loaded, variations)
        self.fleet_axes = [i for i, d in enumerate(self.dims) if d.fleet]
        self.condition_axes = [i for i, d in enumerate(self.dims) if not d.fleet]
        self._base_prices: Mapping[str, Decimal] | None = None
        self._points: dict[Index, tuple[dict[str, Any], RunSpec]] = {}
        # A condition's value must load on the scenario's own fleet: what it breaks is a mistake
        # (a LocalQueue that does not exist), not a fleet that cannot run.
        for axis in self.condition_axes:
            dim = self.dims[axis]
            for position, value in enumerate(dim.values):
                scenario, _ = point_scenario(loaded, [(dim.variation, value)])
                try:
                    LoadedScenario(scenario, loaded.base_dir, loaded.source)
                except ValidationError as exc:
                    raise ValidationError(f"{dim.label(position)!r}: {exc}", path="--vary") from None

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(len(d.values) for d in self.dims)

    @property
    def size(self) -> int:
        return math.prod(self.shape)

    def indices(self) -> Iterator[Index]:
        """Every point, the first variation varying slowest."""
        return itertools.product(*(range(n) for n in self.shape))

    def conditions(self) -> list[Index]:
        """Every combination of the conditions' values (indices along ``condition_axes``)."""
        return list(itertools.product(*(range(self.shape[a]) for a in self.condition_axes)))

    def join(self, condition: Index, fleet: Index) -> Index:
        index = [0] * len(self.dims)
        for axis, i in zip(self.condition_axes, condition, strict=True):
            index[axis] = i
        for axis, i in zip(self.fleet_axes, fleet, strict=True):
            index[axis] = i
        return tuple(index)

    def condition_of(self, index: Index) -> Index:
        return tuple(index[a] for a in self.condition_axes)

    def fleet_of(self, index: Index) -> Index:
        return tuple(index[a] for a in self.fleet_axes)

    def changes(self, index: Index) -> dict[str, Any]:
        return {d.key: d.values[i] for d, i in zip(self.dims, index, strict=True)}

    def label(self, index: Index, axes: Sequence[int] | None = None) -> str:
        axes = range(len(self.dims)) if axes is None else axes
        return ", ".join(self.dims[a].label(index[a]) for a in axes)

    def condition_label(self, condition: Index) -> str:
        """``workload.rate=x1.5, policy.fair_sharing=true`` ('' without conditions)."""
        return ", ".join(self.dims[a].label(i) for a, i in zip(self.condition_axes, condition, strict=True))

    def as_json(self, index: Index, axes: Sequence[int]) -> dict[str, Any]:
        return {self.dims[a].key: json_value(self.dims[a].values[index[a]]) for a in axes}

    def point(self, index: Index) -> tuple[dict[str, Any], RunSpec]:
        """The point's changes and its run (not yet seeded), built once."""
        if index not in self._points:
            self._points[index] = self._build(index)
        return self._points[index]

    def _prices(self) -> Mapping[str, Decimal]:
        if self._base_prices is None:
            self._base_prices = self.base.prices()
        return self._base_prices

    def _build(self, index: Index) -> tuple[dict[str, Any], RunSpec]:
        base = self.base
        label = self.label(index)
        assignments = [(d.variation, d.values[i]) for d, i in zip(self.dims, index, strict=True)]
        scenario, quotas = point_scenario(base, assignments)
        # A plan reads SLO metrics only: measuring ETAs (a forward run per job) would be wasted.
        scenario = scenario.model_copy(update={"eta": None})
        if self.meter and scenario.money is None:
            scenario = scenario.model_copy(update={"money": MoneySpec(guard=None)})
        nodes = fleet_nodes(base, scenario)
        infeasible = ""
        varied: LoadedScenario | None = None
        try:
            varied = LoadedScenario(scenario, base.base_dir, base.source)
        except ValidationError as exc:  # the base loaded, so the variation is what broke it
            if not self.fleet_axes:
                raise ValidationError(f"{label!r}: {exc}", path="--vary") from None
            infeasible = _unsupplied_flavors(base, nodes) or exc.message
        pricing = varied if varied is not None else base
        plain_fleet = all(self.dims[a].capacity for a in self.fleet_axes)
        prices = self._prices() if plain_fleet or varied is None else varied.prices()
        gpus, cost = fleet_cost(pricing, nodes, prices)
        factors = tuple((f, new, old) for f, (new, old) in sorted(flavor_factors(base, nodes).items()))
        scaled = scale_quotas(base.queues, {f: (new, old) for f, new, old in factors})
        scaled = apply_quota_overrides(scaled, quotas, label)
        if not infeasible and pricing.reservations:
            infeasible = _unbookable(pricing, scaled)
        spec = RunSpec(
            label,
            scenario,
            str(base.base_dir),
            base.source,
            None,
            factors,
            fleet_gpus=gpus,
            fleet_cost=cost,
            infeasible=infeasible,
            quota_overrides=quotas,
        )
        return self.changes(index), spec


def plan_specs(
    loaded: LoadedScenario, variations: Sequence[Variation], *, meter: bool = False
) -> list[tuple[dict[str, Any], RunSpec]]:
    """One run per combination of the variations' values (the first varying slowest). ``meter``:
    every run meters its usage (a cost SLO reads it), adding a ``money`` block without guard or
    budgets to a scenario that has none."""
    space = PlanSpace(loaded, variations, meter=meter)
    return [space.point(index) for index in space.indices()]


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


# --------------------------------------------------------------------------------------------
# Evaluating points
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class PlanPoint:
    changes: dict[str, Any]  # every variation's value, by its key
    gpus: int
    fleet_cost: Decimal  # price of the fleet's GPUs over the horizon
    metrics: dict[str, float | None]  # means over the runs
    passed: bool
    failed: tuple[str, ...]
    infeasible: str = ""  # why this fleet cannot run (then metrics are None and every SLO fails)
    stats: dict[str, Stat] = field(default_factory=dict)  # mean and interval of every metric
    index: Index = ()  # where it is in its PlanSpace
    seeds: tuple[int, ...] = ()  # the seeds it ran with
    # Each run's job outcomes (report.json's overall.outcomes, .outcomes), in seed order; None for
    # a run whose report has none (a journal written before they existed).
    outcomes: tuple[dict[str, int] | None, ...] = ()


def evaluate_point(
    changes: dict[str, Any],
    spec: RunSpec,
    results: Sequence[Mapping[str, Any]],
    slos: Sequence[Slo],
    *,
    index: Index = (),
) -> PlanPoint:
    """A point's metrics over its runs ``results`` against the SLOs, each met only when its
    interval's unfavourable bound is; an infeasible point fails all of them, with its reason."""
    if spec.infeasible:
        metrics = _no_metrics(slos)
        stats = {name: summarize(()) for name in metrics}
        failed: tuple[str, ...] = (f"infeasible: {spec.infeasible}",)
        return PlanPoint(
            changes, spec.fleet_gpus, spec.fleet_cost, metrics, False, failed, spec.infeasible, stats, index
        )
    stats = metric_stats(results, slos)
    metrics = {name: stat.mean for name, stat in stats.items()}
    failed = tuple(s.text for s in slos if not s.holds_for(stats[s.metric]))
    seeds = tuple(int(r["seed"]) for r in results)
    outcomes = tuple(r["report"]["overall"].get("outcomes") for r in results)
    return PlanPoint(
        changes,
        spec.fleet_gpus,
        spec.fleet_cost,
        metrics,
        not failed,
        failed,
        stats=stats,
        index=index,
        seeds=seeds,
        outcomes=outcomes,
    )


def evaluate_plan(
    points: Sequence[tuple[dict[str, Any], RunSpec]],
    results: Sequence[dict[str, Any]],
    slos: Sequence[Slo],
) -> list[PlanPoint]:
    """Each point's metrics (one run each) against the SLOs; an infeasible point fails all of
    them, with its reason."""
    return [
        evaluate_point(changes, spec, [result], slos)
        for (changes, spec), result in zip(points, results, strict=True)
    ]


def _order(point: PlanPoint) -> tuple[Decimal, int, Index]:
    return point.fleet_cost, point.gpus, point.index


def cheapest(points: Sequence[PlanPoint]) -> PlanPoint | None:
    passing = [p for p in points if p.passed]
    return min(passing, key=_order) if passing else None


# --------------------------------------------------------------------------------------------
# Plans: grid or bisection, and the answer
# --------------------------------------------------------------------------------------------
SEARCHES = ("grid", "bisect")


@dataclass(frozen=True)
class Answer:
    """The answer for one condition (a combination of the non-fleet variations' values)."""

    condition: Index
    best: PlanPoint | None  # the cheapest fleet meeting every SLO
    runner_up: PlanPoint | None  # the next cheapest meeting them
    # Without ``best``: the largest fleet that ran; with it, the largest smaller fleet that ran
    # and failed; and the SLOs failing there.
    binding_at: PlanPoint | None
    binding: tuple[Slo, ...]


@dataclass
class PlanOutcome:
    space: PlanSpace
    slos: list[Slo]
    seeds: tuple[int, ...]
    search: str
    points: list[PlanPoint]  # every point evaluated (run, or infeasible), in grid order
    answers: list[Answer]
    warnings: list[str]

    @property
    def runs(self) -> int:
        """Simulations run."""
        return sum(len(p.seeds) for p in self.points)


def check_search(space: PlanSpace, search: str) -> None:
    if search not in SEARCHES:
        raise ValidationError(f"unknown search {search!r}; use grid or bisect", path="--search")
    if search != "bisect":
        return
    if not space.fleet_axes:
        raise ValidationError(
            "bisect searches fleet dimensions (pool.<pool>.nodes, pool.<pool>.gpus_per_node); "
            "the variations have none",
            path="--search",
        )
    other = [space.dims[a].variation.text for a in space.fleet_axes if not space.dims[a].capacity]
    if other:
        raise ValidationError(
            f"bisect needs node counts or GPUs per node along every fleet dimension, not {other[0]!r} "
            "(use --search grid)",
            path="--search",
        )


class RunJournal(Protocol):
    """Where a plan keeps its finished runs and finds them again (``points.jsonl``, :mod:`.journal`)."""

    def get(self, spec: RunSpec) -> dict[str, Any] | None: ...

    def put(self, spec: RunSpec, result: Mapping[str, Any]) -> None: ...


def run_plan(
    space: PlanSpace,
    slos: Sequence[Slo],
    seeds: Sequence[int],
    *,
    search: str = "grid",
    workers: int | None = None,
    executor: Executor | None = None,
    progress: Callable[[int, int], None] | None = None,
    journal: RunJournal | None = None,
) -> PlanOutcome:
    """Run the plan: every point (``grid``) or a bisection of the fleet dimensions per condition
    (``bisect``), each point ``len(seeds)`` times; then the answer per condition.

    With ``grid`` every point is built (validated, priced) before the first run, so a bad
    combination fails up front; ``bisect`` builds the points it needs (each value was validated
    alone by :class:`PlanSpace`). ``progress(done, total)`` is called as each point finishes
    (``total``: the grid's points). A ``journal`` (``points.jsonl``, :mod:`.journal`) gives back
    the runs an interrupted plan finished, and keeps each new run as it finishes.
    """
    check_search(space, search)
    slos = list(slos)
    seeds = tuple(seeds)
    if search == "grid":
        for index in space.indices():
            space.point(index)
    evaluated: dict[Index, PlanPoint] = {}
    total = space.size

    def run_points(indices: Sequence[Index], pool: Executor | None) -> None:
        todo = [(index, *space.point(index)) for index in indices if index not in evaluated]
        feasible = [point for point in todo if not point[2].infeasible]
        n = len(seeds)
        specs = replicate([spec for _, _, spec in feasible], seeds)  # n consecutive runs a point
        results: list[Any] = [None] * len(specs)
        left = [n] * len(feasible)

        def evaluate(point: tuple[Index, dict[str, Any], RunSpec], runs: list[Any]) -> None:
            index, changes, spec = point
            evaluated[index] = evaluate_point(changes, spec, runs, slos, index=index)
            if progress is not None:
                progress(len(evaluated), total)

        def finished(position: int, result: dict[str, Any], *, saved: bool = False) -> None:
            """Keep a run; evaluate its point as soon as its last run is in (in any order)."""
            results[position] = result
            if journal is not None and not saved:
                journal.put(specs[position], result)
            k = position // n
            left[k] -= 1
            if left[k] == 0:
                evaluate(feasible[k], results[k * n : (k + 1) * n])

        for point in todo:
            if point[2].infeasible:
                evaluate(point, [])
        fresh = []
        for position, spec in enumerate(specs):
            saved = journal.get(spec) if journal is not None else None
            if saved is None:
                fresh.append(position)
            else:
                finished(position, saved, saved=True)
        if fresh:
            run_all(
                [specs[p] for p in fresh],
                executor=pool,
                workers=workers,
                on_result=lambda i, result: finished(fresh[i], result),
            )

    if search == "grid":
        run_points(list(space.indices()), executor)
    else:
        own = executor is None and workers != 1 and len(seeds) > 1
        mine = None
        if own:
            mine = ProcessPoolExecutor(
                max_workers=_at_most(workers, len(seeds)), initializer=_worker_ignores_interrupts
            )
        pool = mine or executor
        try:
            for condition in space.conditions():
                _bisect(space, condition, evaluated, lambda index: run_points([index], pool))
                runner_up = _runner_up_candidate(space, condition, evaluated)
                if runner_up is not None:
                    run_points([runner_up], pool)
        except BaseException:
            if mine is not None:
                _stop_workers(mine)
            raise
        if mine is not None:
            mine.shutdown()
    points = [evaluated[index] for index in space.indices() if index in evaluated]
    answers = [_answer(space, condition, points, slos) for condition in space.conditions()]
    return PlanOutcome(space, slos, seeds, search, points, answers, _monotonicity(space, points))


def _dominates(a: Index, b: Index) -> bool:
    """``a`` is at least ``b`` along every dimension."""
    return all(x >= y for x, y in zip(a, b, strict=True))


def _bisect(
    space: PlanSpace,
    condition: Index,
    evaluated: dict[Index, PlanPoint],
    run: Callable[[Index], None],
) -> None:
    """Bisect each fleet dimension from the largest fleet down (see the module docstring)."""
    known: dict[Index, bool] = {}

    def passes(fleet: Index) -> bool:
        if fleet in known:
            return known[fleet]
        for other, ok in known.items():
            if ok and _dominates(fleet, other):
                return True
            if not ok and _dominates(other, fleet):
                return False
        index = space.join(condition, fleet)
        run(index)
        known[fleet] = evaluated[index].passed
        return known[fleet]

    sizes = [space.shape[a] for a in space.fleet_axes]
    top = tuple(n - 1 for n in sizes)
    if not passes(top):
        return
    d = len(sizes)
    orders: Iterable[tuple[int, ...]] = (
        itertools.permutations(range(d))
        if d <= 3
        else [tuple((s + k) % d for k in range(d)) for s in range(d)]
    )
    for order in orders:
        current = list(top)
        for dim in order:
            lo, hi = -1, current[dim]  # current passes; find the least value along dim that does
            while hi - lo > 1:
                mid = (lo + hi) // 2
                probe = current.copy()
                probe[dim] = mid
                if passes(tuple(probe)):
                    hi = mid
                else:
                    lo = mid
            current[dim] = hi


def _runner_up_candidate(
    space: PlanSpace, condition: Index, evaluated: Mapping[Index, PlanPoint]
) -> Index | None:
    """After a bisection, the runner-up fleet if it has not run: the cheapest of the passing
    points run (other than the answer) and the answer's neighbours one step up along a fleet
    dimension (passing by monotonicity); ``None`` when it ran already or there is none."""
    mine = [p for p in evaluated.values() if space.condition_of(p.index) == condition]
    best = cheapest(mine)
    if best is None:
        return None
    candidates = {p.index for p in mine if p.passed and p is not best}
    fleet = space.fleet_of(best.index)
    for position, axis in enumerate(space.fleet_axes):
        if fleet[position] + 1 < space.shape[axis]:
            up = list(fleet)
            up[position] += 1
            candidates.add(space.join(condition, tuple(up)))
    if not candidates:
        return None

    def order(index: Index) -> tuple[Decimal, int, Index]:
        spec = space.point(index)[1]
        return spec.fleet_cost, spec.fleet_gpus, index

    chosen = min(candidates, key=order)
    return None if chosen in evaluated else chosen


def _answer(space: PlanSpace, condition: Index, points: Sequence[PlanPoint], slos: Sequence[Slo]) -> Answer:
    mine = [p for p in points if space.condition_of(p.index) == condition]
    passing = sorted((p for p in mine if p.passed), key=_order)
    best = passing[0] if passing else None
    runner_up = passing[1] if len(passing) > 1 else None
    ran = [p for p in mine if not p.infeasible]
    if best is not None:
        top = space.fleet_of(best.index)
        ran = [p for p in ran if not p.passed and _dominates(top, space.fleet_of(p.index))]
    at = max(ran, key=_order) if ran else None
    binding = tuple(s for s in slos if at is not None and s.text in at.failed)
    return Answer(condition, best, runner_up, at, binding)


def _monotonicity(space: PlanSpace, points: Sequence[PlanPoint]) -> list[str]:
    """Pairs of points that ran and contradict "more capacity never breaks an SLO"."""
    if not space.fleet_axes or not all(space.dims[a].capacity for a in space.fleet_axes):
        return []
    ran = [p for p in points if not p.infeasible]
    found = []
    for small in ran:
        if not small.passed:
            continue
        for large in ran:
            if (
                not large.passed
                and large is not small
                and space.condition_of(large.index) == space.condition_of(small.index)
                and _dominates(space.fleet_of(large.index), space.fleet_of(small.index))
            ):
                found.append((small, large))
    if not found:
        return []
    small, large = found[0]
    more = f" (and {len(found) - 1} more pair(s))" if len(found) > 1 else ""
    return [
        f"not monotone: {space.label(small.index)} meets every SLO but the larger "
        f"{space.label(large.index)} fails {', '.join(large.failed)}{more}; noise between runs can do "
        "this (more --seeds narrow it), and bisection assumes it never happens"
    ]


# --------------------------------------------------------------------------------------------
# plan.json
# --------------------------------------------------------------------------------------------
def metric_unit(slo: Slo) -> tuple[float, str]:
    """How a metric reads: (factor, unit), e.g. ``(1/60, "min")`` for a duration."""
    if slo.base == "spend":
        return 1.0, "$"
    if slo.base in FRACTION_METRICS:
        return 100.0, "%"
    return 1 / 60, "min"


def frontier_slo(outcome: PlanOutcome) -> Slo | None:
    """The SLO the frontier plots: what binds the first answer, else the tightest at its fleet,
    else the first SLO."""
    if not outcome.slos:
        return None
    answer = outcome.answers[0] if outcome.answers else None
    if answer is not None and answer.binding:
        return answer.binding[0]
    if answer is not None and answer.best is not None:
        best = answer.best
        slacks = [(s.slack(best.stats[s.metric]), i, s) for i, s in enumerate(outcome.slos)]
        known = [(v, i, s) for v, i, s in slacks if v is not None]
        if known:
            return min(known, key=lambda t: (t[0], t[1]))[2]
    return outcome.slos[0]


def _stat_json(stat: Stat | None) -> dict[str, Any] | None:
    return None if stat is None else stat.as_json()


def point_json(outcome: PlanOutcome, point: PlanPoint) -> dict[str, Any]:
    space = outcome.space
    row: dict[str, Any] = {
        "fleet": space.as_json(point.index, space.fleet_axes),
        "condition": space.as_json(point.index, space.condition_axes),
        "gpus": point.gpus,
        "fleet_cost": str(point.fleet_cost),
        "metrics": point.metrics,
        "meets_slos": point.passed,
        "failed_slos": list(point.failed),
        "seeds": list(point.seeds),
        "outcomes": list(point.outcomes),
    }
    if len(outcome.seeds) > 1:
        row["intervals"] = {name: stat.as_json() for name, stat in point.stats.items()}
    if point.infeasible:
        row["infeasible"] = point.infeasible
    return row


def answer_json(outcome: PlanOutcome, answer: Answer) -> dict[str, Any]:
    space = outcome.space

    def fleet(point: PlanPoint | None) -> dict[str, Any] | None:
        return None if point is None else space.as_json(point.index, space.fleet_axes)

    best, at = answer.best, answer.binding_at
    binding: dict[str, Any] | None = None
    if at is not None and answer.binding:
        binding = {
            "at": fleet(at),
            "at_cost": str(at.fleet_cost),
            "slos": [
                {
                    "slo": s.text,
                    "scope": s.scope,
                    "name": s.name,
                    "whose": s.whose,
                    "metric": s.metric,
                    "there": _stat_json(at.stats.get(s.metric)),
                    "at_answer": None if best is None else _stat_json(best.stats.get(s.metric)),
                    "slack_at_answer": None if best is None else s.slack(best.stats[s.metric]),
                }
                for s in answer.binding
            ],
        }
    if best is None:
        note = "no fleet of the sweep meets every SLO"
    elif binding is None:
        note = "no smaller fleet of the sweep ran and failed: try smaller fleets to see what binds"
    else:
        note = ""
    return {
        "condition": {
            space.dims[a].key: json_value(space.dims[a].values[i])
            for a, i in zip(space.condition_axes, answer.condition, strict=True)
        },
        "cheapest": fleet(best),
        "cheapest_cost": None if best is None else str(best.fleet_cost),
        "cheapest_gpus": None if best is None else best.gpus,
        "runner_up": fleet(answer.runner_up),
        "runner_up_cost": None if answer.runner_up is None else str(answer.runner_up.fleet_cost),
        "binding": binding,
        "note": note,
    }


def search_json(outcome: PlanOutcome) -> dict[str, Any]:
    space = outcome.space
    ran = sum(1 for p in outcome.points if not p.infeasible)
    n = len(outcome.seeds)
    method = (
        "every point of the grid"
        if outcome.search == "grid"
        else "bisection per fleet dimension, assuming more capacity never breaks an SLO, from the "
        "largest fleet down along every order of the dimensions; other points' outcomes inferred"
    )
    return {
        "mode": outcome.search,
        "method": method,
        "exact": outcome.search == "grid" or len(space.fleet_axes) == 1,
        "points": space.size,
        "points_run": ran,
        "points_evaluated": len(outcome.points),
        "runs": outcome.runs,
        "grid_runs": space.size * n,  # at most: an infeasible point does not run
        "seeds": n,
    }


def plan_json(outcome: PlanOutcome) -> dict[str, Any]:
    """plan.json: the answer(s), the points with their metrics (and intervals), the search."""
    answers = [answer_json(outcome, a) for a in outcome.answers]
    single = answers[0] if len(answers) == 1 else None
    chosen = frontier_slo(outcome)
    replicated = len(outcome.seeds) > 1
    return {
        "slos": [s.text for s in outcome.slos],
        "seeds": list(outcome.seeds),
        "confidence": CONFIDENCE if replicated else None,
        "interval": INTERVAL_METHOD if replicated else None,
        "search": search_json(outcome),
        "cheapest": None if single is None else single["cheapest"],
        "cheapest_cost": None if single is None else single["cheapest_cost"],
        "runner_up": None if single is None else single["runner_up"],
        "runner_up_cost": None if single is None else single["runner_up_cost"],
        "binding": None if single is None else single["binding"],
        "answers": answers,
        "frontier_metric": None if chosen is None else {"slo": chosen.text, "metric": chosen.metric},
        "frontier": [point_json(outcome, p) for p in outcome.points],
        "warnings": list(outcome.warnings),
    }


def frontier_series(outcome: PlanOutcome, slo: Slo) -> list[dict[str, Any]]:
    """The frontier plot's data: per condition, each point's cost and the SLO's metric (scaled to
    its unit), with its interval, whether it meets every SLO and whether it is the answer."""
    space = outcome.space
    factor, _ = metric_unit(slo)
    best = {a.condition: a.best for a in outcome.answers}
    series: list[dict[str, Any]] = []
    for condition in space.conditions():
        points: list[dict[str, Any]] = []
        for p in outcome.points:
            if space.condition_of(p.index) != condition or p.infeasible:
                continue
            stat = p.stats.get(slo.metric)
            if stat is None or stat.mean is None:
                continue
            points.append(
                {
                    "cost": float(p.fleet_cost),
                    "mean": stat.mean * factor,
                    "low": None if stat.low is None else stat.low * factor,
                    "high": None if stat.high is None else stat.high * factor,
                    "passed": p.passed,
                    "best": p is best.get(condition),
                    "label": space.label(p.index, space.fleet_axes),
                }
            )
        series.append(
            {
                "label": space.condition_label(condition),
                "points": sorted(points, key=lambda q: float(q["cost"])),
            }
        )
    return series
