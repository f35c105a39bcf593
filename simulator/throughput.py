"""Heterogeneity-aware flavor choice, Gavel-style: budcore's own, opt-in (``policy.throughput``).

Gavel (Narayanan et al., OSDI 2020) observes that a job's throughput depends on the accelerator it
runs on, by a factor that differs between job types, and schedules on *effective throughput*
rather than on GPU counts. budcore models the two effects a planner needs:

- **Runtime**: a workload's runtime is given on a reference accelerator (throughput 1.0). On a
  flavor whose accelerator has throughput ``t`` for the job's class, it runs ``t`` times as fast:
  its work advances ``t`` seconds per second (checkpoints, preemption losses and progress count
  work, the GPU-seconds it holds count time). ``accelerators`` gives the throughput of each
  accelerator type for every job; ``classes`` overrides it per job class (a job's generator class
  or trace ``job_class``). An accelerator not listed runs at 1.0.
- **Flavor choice**: Kueue tries a ClusterQueue's flavors in the order its resource groups list
  them and takes the first that fits. ``prefer: throughput`` lists each resource group's flavors
  by decreasing throughput of their accelerator (``accelerators``' figures), ``throughput_per_price``
  by decreasing throughput per GPU-hour price, in the ClusterQueues named by ``cluster_queues``
  (all when absent); equal scores keep their order. So a job takes the fastest (or the
  cheapest per unit of work) flavor that has room. This is the greedy, per-flavor core of Gavel's
  idea, not its optimisation over time shares: the order is per ClusterQueue, not per job class,
  and nothing migrates a running job to a faster flavor.

The queue configuration a run uses is rewritten (:func:`preferred`), so a scenario with
``prefer`` is no longer Kueue's configuration as written: that is the point of the option.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from budcore.domain.errors import ValidationError
from budcore.scheduling import QueueConfig
from budcore.scheduling.assignment import AcceleratorMatcher, flavor_types_from_nodes

Speed = Annotated[float, Field(gt=0, le=1000, allow_inf_nan=False)]
Preference = Literal["none", "throughput", "throughput_per_price"]


@dataclass(frozen=True)
class Throughput:
    """The throughput tables (accelerator types normalized), for the engine."""

    accelerators: Mapping[str, float] = field(default_factory=dict)
    classes: Mapping[str, Mapping[str, float]] = field(default_factory=dict)

    def speed(self, job_class: str, accelerator: str | None) -> float:
        """How many reference seconds of work a job of ``job_class`` does per second on
        ``accelerator`` (None: a flavor without a known accelerator type, 1.0)."""
        if accelerator is None:
            return 1.0
        own = self.classes.get(job_class)
        if own is not None and accelerator in own:
            return own[accelerator]
        return self.accelerators.get(accelerator, 1.0)


def _check_distinct(table: Mapping[str, float]) -> None:
    """Two names of one accelerator (``h100`` and ``nvidia-h100-80gb``) would be ambiguous."""
    normalize = AcceleratorMatcher().normalize
    seen: dict[str, str] = {}
    for name in table:
        first = seen.setdefault(normalize(name) or name, name)
        if first != name:
            raise ValueError(f"{first!r} and {name!r} name the same accelerator")


def _normalized(table: Mapping[str, float]) -> dict[str, float]:
    normalize = AcceleratorMatcher().normalize
    return {normalize(name) or name: value for name, value in table.items()}


class ThroughputSpec(BaseModel):
    """``policy.throughput``: see the module docstring."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    accelerators: dict[str, Speed] = Field(default_factory=dict)
    classes: dict[str, dict[str, Speed]] = Field(default_factory=dict)
    prefer: Preference = "none"
    cluster_queues: tuple[str, ...] | None = None

    @field_validator("accelerators", mode="after")
    @classmethod
    def _one_name_each(cls, value: dict[str, float]) -> dict[str, float]:
        _check_distinct(value)
        return value

    @field_validator("classes", mode="after")
    @classmethod
    def _one_name_each_per_class(cls, value: dict[str, dict[str, float]]) -> dict[str, dict[str, float]]:
        for table in value.values():
            _check_distinct(table)
        return value

    @model_validator(mode="after")
    def _something_to_prefer(self) -> ThroughputSpec:
        if self.prefer != "none" and not self.accelerators:
            raise ValidationError(
                f"prefer: {self.prefer} orders flavors by accelerators' throughput, and none is given: "
                "add the scenario's measured throughputs, e.g. policy: {throughput: {accelerators: "
                "{nvidia-h100-80gb: 3.0, nvidia-a100-80gb: 1.0}}} (runtimes are on throughput 1.0)",
                path="accelerators",
            )
        return self

    def model(self) -> Throughput:
        return Throughput(
            accelerators=_normalized(self.accelerators),
            classes={name: _normalized(table) for name, table in self.classes.items()},
        )


def flavor_accelerators(queues: QueueConfig, nodes: Iterable[Any]) -> dict[str, str | None]:
    """The accelerator type of each flavor: from its own labels, else from the nodes it selects."""
    matcher = AcceleratorMatcher()
    learnt = flavor_types_from_nodes(queues.flavors, nodes, matcher.normalize)
    matcher = matcher.with_flavor_types(learnt)
    return {name: matcher.flavor_type(flavor) for name, flavor in queues.flavors.items()}


def preferred(
    queues: QueueConfig,
    spec: ThroughputSpec,
    accelerators: Mapping[str, str | None],
    prices: Mapping[str, Decimal],
) -> QueueConfig:
    """``queues`` with the flavors of each resource group of the chosen ClusterQueues in order of
    preference (``spec.prefer``); unchanged when it is ``none``. A flavor without a price under
    ``throughput_per_price`` goes after the priced ones (its cost per unit of work is unknown)."""
    if spec.prefer == "none":
        return queues
    table = spec.model()

    def score(flavor: str) -> tuple[int, float]:
        speed = table.speed("", accelerators.get(flavor))
        if spec.prefer == "throughput":
            return 0, -speed
        price = prices.get(flavor)
        if price is None or price <= 0:
            return 1, 0.0
        return 0, -speed / float(price)

    chosen = set(queues.cluster_queues) if spec.cluster_queues is None else set(spec.cluster_queues)
    updated = {}
    for name, cq in queues.cluster_queues.items():
        if name not in chosen:
            continue
        groups = tuple(
            group.model_copy(update={"flavors": tuple(sorted(group.flavors, key=lambda f: score(f.name)))})
            for group in cq.resource_groups
        )
        updated[name] = cq.model_copy(update={"resource_groups": groups})
    return queues.with_objects(cluster_queues={**queues.cluster_queues, **updated})
