"""``plan --vary``: which scenario fields a plan varies, and the scenario of each point.

A variation is ``PATH=VALUES``. ``PATH`` is one of:

- ``pool.<pool>.<field>``: a field of the named pool of ``fleet.pools`` (``nodes``,
  ``gpus_per_node``, ``price_per_gpu_hour``, ``product``, ...);
- ``class.<class>.<path>``: a field of the named generator class (``arrivals.rate``,
  ``runtime.mean``, ``count``, ``gpus``, ...);
- ``workload.rate``: the load. ``xK`` multiplies every generator class's arrival rate by K
  (Poisson and diurnal ``rate`` times K, a fixed ``interval`` divided by K) and, where the
  generators are bounded by a number of jobs, that number too (a class's ``count``, the
  generators' ``limit``), so K times the jobs arrive over the same span. Traces and pipelines
  replay as they are;
- ``queues.cq.<ClusterQueue>.<flavor>.<resource>``: that ClusterQueue's nominal quota of the
  resource on the flavor (``gpu`` stands for the fleet's GPU resource, e.g.
  ``queues.cq.research.h100.gpu=16,32``); append ``.borrowing_limit`` or ``.lending_limit`` for
  those limits (``null``: none). It applies after the quotas of a varied pool have been scaled
  to its capacity, so it is exactly the value given;
- any other field of the scenario by its dotted path, list items by index: ``policy.fair_sharing``,
  ``policy.aging.step``, ``fleet.pools[0].nodes``, ``workload.generators.classes[1].runtime.mean``,
  ``failures.mtbf``, ``horizon`` (not ``seed``: ``--seed`` and ``--seeds`` choose seeds).

``VALUES`` are comma-separated, each ``xK`` (K times the scenario's own value; on an integer
field the product is rounded to the nearest integer), ``lo..hi[:step]`` (integers, ascending; about
eight points without a step), or a YAML scalar (``8``, ``1.5``, ``true``, ``30m``, ``null``).
Node counts and GPUs per node (``pool.<pool>.nodes``, ``pool.<pool>.gpus_per_node`` and their
``fleet.pools[i]`` spellings) take integers and factors only, sorted ascending.

Every value is checked by validating the varied scenario with the scenario's own models (a
quota by the ClusterQueue's), so a bad value is one line naming ``--vary``, the variation and the
field: ``--vary: 'policy.preemption_mode=fast': policy.preemption_mode: Input should be 'kueue'
or 'cost'``.

Variations of the fleet (``pool.*`` and ``fleet.*``) are the plan's *fleet dimensions*: a plan
looks for the cheapest fleet among them. The others (load, quotas, policy, ...) are
*conditions*: the plan answers for each combination of their values separately.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import yaml
from pydantic import BaseModel

from budcore.config.yamlsource import safe_load
from budcore.domain.errors import ValidationError, ValidationErrors
from budcore.domain.quantity import parse_quantity
from budcore.domain.resources import NVIDIA_GPU
from budcore.domain.validation import validate_model
from budcore.scheduling import QueueConfig
from budcore.scheduling.queues import ClusterQueue, FlavorQuotas, ResourceGroup, ResourceQuota

from .scenario import LoadedScenario, PoolSpec, Scenario
from .workload.generators import JobClassSpec

OPTION = "--vary"
CAPACITY_FIELDS = ("nodes", "gpus_per_node")
QUOTA_FIELDS = ("nominal_quota", "borrowing_limit", "lending_limit")
_FACTOR = re.compile(r"^x(?P<k>\d+(?:\.\d*)?|\.\d+)$")
_RANGE = re.compile(r"^(?P<lo>-?\d+)\.\.(?P<hi>-?\d+)(?::(?P<step>-?\d+))?$")
_SEGMENT = re.compile(r"\.?(?P<name>[^.\[\]]+)|\[(?P<index>\d+)\]")
_FLEET_CAPACITY = re.compile(r"^fleet\.pools\[\d+\]\.(nodes|gpus_per_node)$")
_SCENARIO_FIELDS = tuple(Scenario.model_fields)

Segment = str | int


@dataclass(frozen=True)
class Factor:
    """``xK``: K times the scenario's own value."""

    k: Decimal
    text: str

    def __str__(self) -> str:
        return self.text


@dataclass(frozen=True)
class Variation:
    """One ``--vary``: its text, its path as written, what it varies and its values.

    ``kind`` is ``pool`` (``target``: the pool's name, then the field path), ``class`` (the class's
    name, then the field path), ``rate`` (the load), ``quota`` (``target``: the text after
    ``queues.cq.``, resolved against the queues) or ``field`` (``target``: the path's segments).
    """

    text: str
    path: str
    kind: str
    values: tuple[Any, ...]
    target: tuple[Segment, ...] = ()

    @property
    def pool(self) -> str:
        return str(self.target[0]) if self.kind == "pool" else ""

    @property
    def field(self) -> str:
        return ".".join(str(s) for s in self.target[1:]) if self.kind == "pool" else self.path

    @property
    def fleet(self) -> bool:
        """A fleet dimension (the plan looks for the cheapest fleet along it), not a condition."""
        return self.kind == "pool" or (self.kind == "field" and self.target[0] == "fleet")

    @property
    def capacity(self) -> bool:
        """A node count or GPUs per node: integer values, more is more capacity."""
        if self.kind == "pool":
            return len(self.target) == 2 and self.target[1] in CAPACITY_FIELDS
        return self.kind == "field" and _FLEET_CAPACITY.match(self.path) is not None

    @property
    def key(self) -> str:
        """How points name this dimension: ``<pool>.<field>`` for a pool (as plan.json always
        has), else the path as written."""
        return f"{self.pool}.{self.field}" if self.kind == "pool" else self.path


def _error(text: str, message: str) -> ValidationError:
    return ValidationError(f"{text!r}: {message}", path=OPTION)


def parse_vary(text: str) -> Variation:
    """``PATH=VALUES`` (see the module docstring); the path's root and a pool's or class's field
    are checked here, the rest against the scenario (:func:`bind`)."""
    stripped = text.strip()
    path, sep, raw = stripped.partition("=")
    path, raw = path.strip(), raw.strip()
    if not sep or not path or not raw:
        raise _error(
            text,
            "expected PATH=VALUES, e.g. pool.h100.nodes=4..32:4, workload.rate=x0.5,x1,x1.5, "
            "policy.fair_sharing=true,false or queues.cq.research.h100.gpu=16,32",
        )
    root = path.split(".", 1)[0].split("[", 1)[0]
    if root == "pool":
        rest = path[len("pool.") :].split(".")
        at = next((i for i in range(1, len(rest)) if rest[i] in PoolSpec.model_fields), None)
        if not path.startswith("pool.") or at is None:
            raise _error(
                text,
                "expected pool.<pool>.<field>, e.g. pool.h100.nodes=4..32:4; pool fields: "
                + ", ".join(PoolSpec.model_fields),
            )
        target: tuple[Segment, ...] = (".".join(rest[:at]), *rest[at:])
        integer = len(target) == 2 and target[1] in CAPACITY_FIELDS
        return Variation(text, path, "pool", _values(text, raw, integer=integer), target)
    if root == "class":
        rest = path[len("class.") :].split(".")
        at = next((i for i in range(1, len(rest)) if rest[i] in JobClassSpec.model_fields), None)
        if not path.startswith("class.") or at is None:
            raise _error(
                text,
                "expected class.<class>.<field>, e.g. class.pretrain.arrivals.rate=x2; class fields: "
                + ", ".join(JobClassSpec.model_fields),
            )
        segments = _segments(text, ".".join(rest[at:]))
        return Variation(text, path, "class", _values(text, raw), (".".join(rest[:at]), *segments))
    if path == "workload.rate":
        values = _values(text, raw)
        if not all(isinstance(v, Factor) for v in values):
            raise _error(
                text,
                "workload.rate takes factors xK (K times every generator class's arrival rate), e.g. "
                "workload.rate=x0.5,x1,x1.5; to set one class's rate use class.<class>.arrivals.rate=<value>",
            )
        return Variation(text, path, "rate", values)
    if path.startswith("queues.cq."):
        quota = path[len("queues.cq.") :]
        if quota.count(".") < 2:
            raise _error(
                text,
                "expected queues.cq.<ClusterQueue>.<flavor>.<resource>[.borrowing_limit|.lending_limit], "
                "e.g. queues.cq.research.h100.gpu=16,32",
            )
        return Variation(text, path, "quota", _values(text, raw), (quota,))
    if root not in _SCENARIO_FIELDS:
        raise _error(
            text,
            f"unknown field {root!r}: vary pool.<pool>.<field>, class.<class>.<field>, workload.rate, "
            "queues.cq.<ClusterQueue>.<flavor>.<resource> or a scenario field ("
            + ", ".join(f for f in _SCENARIO_FIELDS if f != "seed")
            + ")",
        )
    if root == "seed":
        raise _error(text, "the seed is not varied: --seed sets it and --seeds N replicates every point")
    segments = _segments(text, path)
    integer = _FLEET_CAPACITY.match(path) is not None
    return Variation(text, path, "field", _values(text, raw, integer=integer), segments)


def _segments(text: str, path: str) -> tuple[Segment, ...]:
    out: list[Segment] = []
    position = 0
    for match in _SEGMENT.finditer(path):
        if match.start() != position or (match.group(0).startswith(".") and not out):
            break
        out.append(match.group("name") if match.group("name") is not None else int(match.group("index")))
        position = match.end()
    if position != len(path) or not out or not isinstance(out[0], str):
        raise _error(text, f"bad path {path!r}: expected dotted field names with [index] for list items")
    return tuple(out)


def _values(text: str, raw: str, *, integer: bool = False) -> tuple[Any, ...]:
    """The values of ``raw``: integers (sorted, unique) and factors for a node count or GPUs per
    node; otherwise as given, in order, without repeats."""
    items = [item.strip() for item in raw.split(",")]
    if any(not item for item in items):
        raise _error(text, f"bad values {raw!r}: an empty value between commas")
    out: list[Any] = []
    for item in items:
        factor = _FACTOR.match(item)
        if factor is not None:
            k = Decimal(factor.group("k"))
            if k <= 0:
                raise _error(text, f"factor {item!r} must be greater than zero")
            out.append(Factor(k, item))
            continue
        span = _RANGE.match(item)
        if span is not None:
            out.extend(_range(text, item, span))
            continue
        if integer:
            try:
                out.append(int(item))
            except ValueError:
                raise _error(
                    text,
                    f"bad values {raw!r}: expected integers, as <lo>..<hi>[:step] or <a>,<b>,... "
                    "(or factors xK)",
                ) from None
            continue
        try:
            value = safe_load(item)
        except yaml.YAMLError:
            raise _error(text, f"{item!r} is not a valid YAML value") from None
        if isinstance(value, (list, dict)):
            raise _error(
                text, f"{item!r}: give scalar values (vary a list's items or a mapping's keys by path)"
            )
        out.append(value)
    if integer:
        numbers = [v for v in out if not isinstance(v, Factor)]
        if any(v < 0 for v in numbers):
            raise _error(text, "values must not be negative")
        factors = sorted({v.k: v for v in out if isinstance(v, Factor)}.values(), key=lambda f: f.k)
        return (*sorted(set(numbers)), *factors)
    unique: dict[str, Any] = {}
    for value in out:
        unique.setdefault(_show(value), value)
    return tuple(unique.values())


def _range(text: str, item: str, span: re.Match[str]) -> list[int]:
    lo, hi = int(span.group("lo")), int(span.group("hi"))
    if hi < lo:
        raise _error(text, f"range {lo}..{hi} must be ascending (lo <= hi); write {hi}..{lo}")
    step = int(span.group("step")) if span.group("step") else max(1, (hi - lo) // 7)
    if step <= 0:
        raise _error(text, f"step {step} must be a positive integer")
    values = list(range(lo, hi + 1, step))
    if values[-1] != hi:
        values.append(hi)
    return values


def _show(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    return str(value)


def show(value: Any) -> str:
    """A value as a point's label shows it (``x1.5``, ``8``, ``true``, ``30m``)."""
    return _show(value)


def json_value(value: Any) -> Any:
    """A value as plan.json holds it: numbers, booleans and null as they are, the rest as text."""
    if value is None or isinstance(value, (bool, int, float)):
        return value
    return str(value)


# --------------------------------------------------------------------------------------------
# Binding to a scenario: resolved values of each variation
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Dimension:
    """A variation bound to a scenario: its values, resolved where they must be (a node count's
    factors become integers), and their labels."""

    variation: Variation
    values: tuple[Any, ...]

    @property
    def key(self) -> str:
        return self.variation.key

    @property
    def fleet(self) -> bool:
        return self.variation.fleet

    @property
    def capacity(self) -> bool:
        return self.variation.capacity

    def label(self, index: int) -> str:
        return f"{self.key}={show(self.values[index])}"


QuotaOverride = tuple[str, str, str, str, int | None]  # ClusterQueue, flavor, resource, field, milli


def bind(base: LoadedScenario, variations: Sequence[Variation]) -> list[Dimension]:
    """Each variation checked against ``base`` (paths, and every value alone by validating the
    varied scenario), with a node count's factors resolved to integers."""
    dims = []
    targets: set[str] = set()
    for variation in variations:
        target = _target_name(base, variation)
        if target in targets:
            raise _error(variation.text, f"{target} is varied twice")
        targets.add(target)
        values = variation.values
        if variation.capacity:
            current = _current(base.scenario, _model_path(base, variation), variation)
            resolved = {_times(current, v.k) if isinstance(v, Factor) else v for v in values}
            values = tuple(sorted(resolved))
        dims.append(Dimension(variation, values))
    for dim in dims:
        for value in dim.values:
            point_scenario(base, [(dim.variation, value)])
    return dims


def _target_name(base: LoadedScenario, variation: Variation) -> str:
    """What the variation changes, so that two spellings of one field are caught."""
    if variation.kind == "quota":
        cq, flavor, resource, field = _quota_target(base, variation)
        return f"queues.cq.{cq}.{flavor}.{resource}.{field}"
    if variation.kind == "rate":
        return "workload.rate"
    return _dotted(_model_path(base, variation))


def _dotted(path: Iterable[Segment]) -> str:
    out = ""
    for segment in path:
        out += f"[{segment}]" if isinstance(segment, int) else (f".{segment}" if out else segment)
    return out


def _model_path(base: LoadedScenario, variation: Variation) -> tuple[Segment, ...]:
    """The scenario path a ``pool``, ``class`` or ``field`` variation sets."""
    scenario = base.scenario
    if variation.kind == "pool":
        fleet = scenario.fleet
        if fleet is None:
            raise _error(
                variation.text,
                "the scenario has no fleet (a quota-only simulation): pool.<name>.<field> varies "
                "fleet.pools; add a fleet to the scenario to vary it",
            )
        names = [p.name for p in fleet.pools]
        if not names:
            raise _error(
                variation.text,
                "the scenario has no pools: its fleet comes from the nodes file "
                f"{fleet.nodes_file!r}, and pool.<name>.<field> varies fleet.pools; add a pool to the "
                "scenario to vary it",
            )
        if variation.pool not in names:
            raise _error(
                variation.text,
                f"no pool {variation.pool!r} in the scenario; pools: {', '.join(sorted(names))}",
            )
        return ("fleet", "pools", names.index(variation.pool), *variation.target[1:])
    if variation.kind == "class":
        generators = scenario.workload.generators
        names = [c.name for c in generators.classes] if generators is not None else []
        name = str(variation.target[0])
        if name not in names:
            raise _error(
                variation.text,
                f"no generator class {name!r} in the scenario; classes: {', '.join(names) or 'none'}",
            )
        return ("workload", "generators", "classes", names.index(name), *variation.target[1:])
    return variation.target


def _current(scenario: Scenario, path: Sequence[Segment], variation: Variation) -> Any:
    """The scenario's value at ``path`` (``None`` where it is unset or under an unset block)."""
    node: Any = scenario
    for depth, segment in enumerate(path):
        where = _dotted(path[: depth + 1])
        if node is None:
            return None
        if isinstance(node, BaseModel):
            fields = type(node).model_fields
            if not isinstance(segment, str) or segment not in fields:
                raise _error(
                    variation.text,
                    f"{where}: no such field; fields of {_dotted(path[:depth]) or 'the scenario'}: "
                    + ", ".join(fields),
                )
            node = getattr(node, segment)
        elif isinstance(node, (list, tuple)):
            if not isinstance(segment, int):
                raise _error(variation.text, f"{where}: a list: give an item's index, e.g. [0]")
            if segment >= len(node):
                raise _error(variation.text, f"{where}: no such item; the list has {len(node)}")
            node = node[segment]
        elif isinstance(node, dict):
            node = node.get(segment)
        else:
            raise _error(variation.text, f"{where}: {_dotted(path[:depth])} is a value, not a block")
    return node


def _times(current: Any, k: Decimal) -> Any:
    """``current`` × ``k``: an integer stays an integer (rounded half up), a Decimal a Decimal."""
    if isinstance(current, bool) or not isinstance(current, (int, float, Decimal)):
        raise TypeError(current)
    if isinstance(current, int):
        return int((current * k).to_integral_value(rounding=ROUND_HALF_UP))
    if isinstance(current, Decimal):
        return current * k
    return float(Decimal(repr(current)) * k)


# --------------------------------------------------------------------------------------------
# A point's scenario
# --------------------------------------------------------------------------------------------
def point_scenario(
    base: LoadedScenario, assignments: Sequence[tuple[Variation, Any]]
) -> tuple[Scenario, tuple[QuotaOverride, ...]]:
    """The scenario with every assignment made, validated by the scenario's models, and the
    quota overrides (checked against the scenario's queues) that go with it."""
    data = _plain(base.scenario.model_dump(exclude_unset=True))
    overrides: list[QuotaOverride] = []
    for variation, value in assignments:
        if variation.kind == "quota":
            overrides.append(_quota_override(base, variation, value))
        elif variation.kind == "rate":
            _scale_load(base.scenario, data, variation, value)
        else:
            path = _model_path(base, variation)
            if isinstance(value, Factor):
                current = _current(base.scenario, path, variation)
                if current is None:
                    raise _error(
                        variation.text,
                        f"{_dotted(path)} is not set in the scenario: {value} needs a value to multiply; "
                        "give absolute values",
                    )
                try:
                    value = _times(current, value.k)
                except TypeError:
                    raise _error(
                        variation.text,
                        f"{_dotted(path)} is {current!r}, not a number: {value} cannot multiply it",
                    ) from None
            else:
                _current(base.scenario, path, variation)  # the path exists
            _set(data, path, value)
    labels = ", ".join(f"{v.text.split('=', 1)[0].strip()}={show(x)}" for v, x in assignments)
    try:
        scenario = validate_model(Scenario, data)
    except ValidationErrors as exc:
        raise ValidationErrors([_point_error(labels, e) for e in exc.errors]) from None
    except ValidationError as exc:
        raise _point_error(labels, exc) from None
    quotas = tuple(overrides)
    if quotas:
        apply_quota_overrides(base.queues, quotas, labels)
    return scenario, quotas


def _point_error(labels: str, error: ValidationError) -> ValidationError:
    field = f"{error.path}: " if error.path else ""
    return ValidationError(f"{labels!r}: {field}{error.message}", path=OPTION)


def _plain(value: Any) -> Any:
    """A model dump with tuples as lists, so items can be replaced."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _set(data: dict[str, Any], path: Sequence[Segment], value: Any) -> None:
    node: Any = data
    for depth, segment in enumerate(path[:-1]):
        following = path[depth + 1]
        if isinstance(node, dict):
            child = node.get(segment)
            if child is None:
                child = node[segment] = [] if isinstance(following, int) else {}
        else:
            child = node[segment]
        node = child
    node[path[-1]] = value


def _scale_load(scenario: Scenario, data: dict[str, Any], variation: Variation, factor: Factor) -> None:
    """``workload.rate=xK``: every generator class's arrivals K times as often, and K times the
    jobs where a number of jobs bounds them."""
    generators = scenario.workload.generators
    if generators is None:
        raise _error(
            variation.text,
            "the scenario has no generator classes, whose rates workload.rate scales (traces and "
            "pipelines replay as they are)",
        )
    classes = data["workload"]["generators"]["classes"]
    for index, klass in enumerate(generators.classes):
        arrivals = klass.arrivals
        target = classes[index].setdefault("arrivals", {})
        if arrivals.kind == "fixed":
            target["interval"] = float(Decimal(repr(arrivals.interval)) / factor.k)
        else:
            target["rate"] = float(Decimal(repr(arrivals.rate)) * factor.k)
        if klass.count is not None:
            classes[index]["count"] = _times(klass.count, factor.k)
    if generators.limit is not None:
        data["workload"]["generators"]["limit"] = _times(generators.limit, factor.k)


# --------------------------------------------------------------------------------------------
# Quotas
# --------------------------------------------------------------------------------------------
def _quota_target(base: LoadedScenario, variation: Variation) -> tuple[str, str, str, str]:
    """``(ClusterQueue, flavor, resource, field)`` of ``queues.cq.<cq>.<flavor>.<resource>[.<field>]``,
    matched against the queues' names (which may hold dots)."""
    rest = str(variation.target[0])
    queues = base.queues.cluster_queues
    for cq_name in sorted(queues, key=len, reverse=True):
        if not rest.startswith(cq_name + "."):
            continue
        cq = queues[cq_name]
        after_cq = rest[len(cq_name) + 1 :]
        flavors = [f.name for g in cq.resource_groups for f in g.flavors]
        for flavor in sorted(flavors, key=len, reverse=True):
            if not after_cq.startswith(flavor + "."):
                continue
            resource = after_cq[len(flavor) + 1 :]
            field = "nominal_quota"
            for name in QUOTA_FIELDS:
                if resource.endswith("." + name):
                    resource, field = resource[: -len(name) - 1], name
            if resource == "gpu" and cq.quota(flavor, "gpu") is None:
                resource = _gpu_resource(base)
            if cq.quota(flavor, resource) is None:
                offered = sorted(
                    {
                        r.name
                        for g in cq.resource_groups
                        for f in g.flavors
                        if f.name == flavor
                        for r in f.resources
                    }
                )
                raise _error(
                    variation.text,
                    f"ClusterQueue {cq_name} has no quota of {resource!r} on flavor {flavor}; resources: "
                    f"{', '.join(offered)} (gpu: the fleet's {_gpu_resource(base)})",
                )
            return cq_name, flavor, resource, field
        raise _error(
            variation.text,
            f"ClusterQueue {cq_name} has no flavor {after_cq.split('.', 1)[0]!r}; flavors: "
            + ", ".join(flavors),
        )
    raise _error(
        variation.text,
        f"no ClusterQueue {rest.split('.', 1)[0]!r} in the queues; ClusterQueues: "
        f"{', '.join(sorted(queues)) or 'none'}",
    )


def _gpu_resource(base: LoadedScenario) -> str:
    pools = base.fleet.pools
    return pools[0].gpu_resource if pools else NVIDIA_GPU


def _quota_override(base: LoadedScenario, variation: Variation, value: Any) -> QuotaOverride:
    cq, flavor, resource, field = _quota_target(base, variation)
    quota = base.queues.cluster_queues[cq].quota(flavor, resource)
    assert quota is not None
    if isinstance(value, Factor):
        current = getattr(quota, field)
        if current is None:
            raise _error(variation.text, f"{field} is not set: {value} needs a value to multiply")
        return cq, flavor, resource, field, _times(current, value.k)
    if value is None:
        if field == "nominal_quota":
            raise _error(variation.text, "a nominal quota is a quantity, not null")
        return cq, flavor, resource, field, None
    try:
        return cq, flavor, resource, field, parse_quantity(value, variation.path)
    except ValidationError as exc:
        raise _error(variation.text, exc.message) from None


def apply_quota_overrides(
    config: QueueConfig, overrides: Sequence[QuotaOverride], labels: str = ""
) -> QueueConfig:
    """``config`` with each override's quota set, re-checked as the ClusterQueue and the whole
    configuration are when loaded (a lending limit above the nominal quota is refused)."""
    if not overrides:
        return config
    queues = dict(config.cluster_queues)
    for cq_name, flavor, resource, field, milli in overrides:
        cq = queues[cq_name]
        groups = []
        for group in cq.resource_groups:
            flavors = []
            for fq in group.flavors:
                resources = []
                for rq in fq.resources:
                    if fq.name == flavor and rq.name == resource:
                        rq = ResourceQuota.model_construct(**{**dict(rq), field: milli})
                    resources.append(rq)
                flavors.append(FlavorQuotas.model_construct(name=fq.name, resources=tuple(resources)))
            groups.append(
                ResourceGroup.model_construct(
                    covered_resources=group.covered_resources, flavors=tuple(flavors)
                )
            )
        data = {**dict(cq), "resource_groups": [_model_data(g) for g in groups]}
        where = f"queues.cq.{cq_name}.{flavor}.{resource}"
        try:
            queues[cq_name] = validate_model(ClusterQueue, data)
        except (ValidationError, ValidationErrors) as exc:
            raise ValidationError(
                f"{labels or where!r}: {where}: {_first_message(exc)}", path=OPTION
            ) from None
    try:
        return config.with_objects(cluster_queues=queues)
    except (ValidationError, ValidationErrors) as exc:
        raise ValidationError(f"{labels!r}: queues: {_first_message(exc)}", path=OPTION) from None


def _model_data(group: ResourceGroup) -> dict[str, Any]:
    return {
        "covered_resources": group.covered_resources,
        "flavors": [{"name": f.name, "resources": [dict(r) for r in f.resources]} for f in group.flavors],
    }


def _first_message(exc: ValidationError | ValidationErrors) -> str:
    errors = exc.errors if isinstance(exc, ValidationErrors) else [exc]
    return "; ".join(e.message for e in errors)
