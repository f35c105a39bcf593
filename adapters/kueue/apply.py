"""Keep a cluster's Kueue objects equal to budcore's configuration: plan, show, apply, prune.

:func:`plan` compares the rendered objects (:func:`~budcore_adapters.kueue.render.render`) with
what the cluster holds and says, per object, *create*, *update* (with the fields that differ) or
*unchanged*, plus the *prune candidates*: objects labelled ``app.kubernetes.io/managed-by: budcore``
of the kinds budcore manages that are no longer in the configuration. :meth:`ApplyPlan.describe`
prints it like a unified diff, so ``budcore kueue apply`` can show what it is about to do before it
does it. :func:`apply` then writes exactly the planned changes.

Why these choices:

* **Server-side apply** (``fieldManager: budcore``, ``force``): the API server merges budcore's
  fields and records budcore as their owner, so fields other controllers own are left alone and a
  field budcore stops setting is removed by the server. ``force`` because the configuration is the
  source of truth for the objects budcore manages: a hand edit of a quota is drift to undo, not a
  conflict to stop at.
* **Only what changed is sent**: unchanged objects get no request at all, so a second apply is a
  no-op that bumps no ``resourceVersion`` and wakes no Kueue reconciler.
* **What is compared** is what budcore sets: the object's body (``spec``; ``value`` and
  ``description`` of a WorkloadPriorityClass) and budcore's labels. Server-set metadata (uid,
  resourceVersion, generation, managedFields, timestamps) and ``status`` are never compared. Both
  sides get the CRD's structural defaults first (``queueingStrategy: BestEffortFIFO``,
  ``preemption.withinClusterQueue: Never``...), because a real API server stores them on the object
  and a plan that reported them would never converge. Quantities compare by value (``"64Gi"`` equals
  ``68719476736``).
* **Lists, not gets**: the plan lists each kind once (LocalQueues across all namespaces) instead of
  getting objects one by one: five requests whatever the size of the configuration, and the same
  lists give the prune candidates.
* **Dependency order**: flavors and cohorts before the ClusterQueues that name them, ClusterQueues
  before the LocalQueues that feed them; prune goes the other way round, so Kueue never sees a
  LocalQueue whose ClusterQueue is gone.
* **Nothing half-applied is unreported**: a refused write (403 on a namespace, 422, 409) stops the
  run with :class:`ApplyError`, a :class:`~budcore_adapters.kueue.client.KubeError` that carries the
  report of every object written before it (``applied 3 of 5 before the failure: ...``).
* **Prune only by label and only when asked**: an object without the managed-by label is never a
  candidate, whoever created it; candidates are deleted only with ``prune=True``.
* **Defaults are applied too** (:func:`with_defaults`): budcore then owns them, so a field changed
  by hand from its default (a ClusterQueue stopped with ``stopPolicy: Hold``) is set back.
* **A kind the cluster does not serve** (an older Kueue without Cohorts) is skipped when the
  configuration has none of it, and is an error naming the API version when it has some.

Not covered: a field that another field manager owns and the configuration does not set at all
(neither itself nor through a CRD default) shows as ``-`` in every plan, because server-side apply
leaves other managers' fields alone; remove it by hand or put it into the configuration.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Final, Literal

from budcore.config.crd import crd_schema
from budcore.domain.errors import ValidationError
from budcore.domain.quantity import parse_quantity

from .client import KubeClient, KubeError, ResourceType, kueue_type, resource_type_for
from .render import KIND_ORDER, MANAGED_BY_LABEL, MANAGED_BY_VALUE, object_ref

__all__ = [
    "FIELD_MANAGER",
    "Action",
    "ApplyError",
    "ApplyPlan",
    "ApplyReport",
    "FieldChange",
    "ObjectChange",
    "apply",
    "plan",
    "with_defaults",
]

#: The server-side apply field manager: the owner of every field budcore sets.
FIELD_MANAGER: Final = "budcore"

# Fields whose values are Kubernetes quantities: "1536Gi" and "1.5Ti" are the same quota.
_QUANTITY_KEYS: Final = frozenset({"nominalQuota", "borrowingLimit", "lendingLimit", "weight"})
# Top-level keys the server owns or that are observed state, never configuration.
_NOT_COMPARED: Final = frozenset({"apiVersion", "kind", "metadata", "status"})
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class Action(StrEnum):
    """What apply does to one object."""

    CREATE = "create"
    UPDATE = "update"
    UNCHANGED = "unchanged"
    PRUNE = "prune"


@dataclass(frozen=True, slots=True)
class FieldChange:
    """One field that differs: ``+`` added, ``-`` removed, ``~`` changed (``old`` → ``new``)."""

    op: Literal["+", "-", "~"]
    path: str
    old: Any = None
    new: Any = None

    def describe(self) -> str:
        """``spec.queueingStrategy: "StrictFIFO" -> "BestEffortFIFO"`` (values as JSON)."""
        if self.op == "+":
            return f"{self.path}: {_show(self.new)}"
        if self.op == "-":
            return f"{self.path}: {_show(self.old)}"
        return f"{self.path}: {_show(self.old)} -> {_show(self.new)}"


@dataclass(frozen=True, slots=True)
class ObjectChange:
    """The plan for one object: its action, the desired and live manifests, the differing fields."""

    action: Action
    rt: ResourceType
    name: str
    namespace: str | None
    desired: dict[str, Any] | None  # None for a prune candidate
    live: dict[str, Any] | None  # None for a create
    fields: tuple[FieldChange, ...] = ()

    @property
    def kind(self) -> str:
        return self.rt.kind

    @property
    def ref(self) -> str:
        """``ClusterQueue research`` / ``LocalQueue inference/online``."""
        return f"{self.kind} {self.namespace}/{self.name}" if self.namespace else f"{self.kind} {self.name}"


@dataclass(frozen=True)
class ApplyPlan:
    """What :func:`apply` would do: every desired object in dependency order, and the prune
    candidates in reverse dependency order (deleted only with ``prune=True``)."""

    context: str
    objects: tuple[ObjectChange, ...]
    prune_candidates: tuple[ObjectChange, ...] = ()

    def of(self, action: Action) -> tuple[ObjectChange, ...]:
        """The planned objects with ``action`` (``PRUNE``: the prune candidates)."""
        if action is Action.PRUNE:
            return self.prune_candidates
        return tuple(c for c in self.objects if c.action is action)

    @property
    def writes(self) -> tuple[ObjectChange, ...]:
        """The creates and updates, in the order they are applied."""
        return tuple(c for c in self.objects if c.action in (Action.CREATE, Action.UPDATE))

    @property
    def has_changes(self) -> bool:
        """Whether the cluster differs from the configuration (leftover managed objects count:
        they are drift too, even though only ``--prune`` removes them)."""
        return bool(self.writes or self.prune_candidates)

    def summary(self) -> str:
        """``2 to create, 1 to update, 7 unchanged, 1 to prune (only with --prune)``."""
        parts = [
            f"{len(self.of(Action.CREATE))} to create",
            f"{len(self.of(Action.UPDATE))} to update",
            f"{len(self.of(Action.UNCHANGED))} unchanged",
        ]
        if self.prune_candidates:
            parts.append(f"{len(self.prune_candidates)} to prune (only with --prune)")
        return ", ".join(parts)

    def describe(self) -> str:
        """The plan as a unified-diff-like text: ``+``/``~``/``-`` per object, then its fields.

        Unchanged objects are counted, not listed; a prune candidate is one ``-`` line (its fields
        would all be removals). The last line is :meth:`summary`.
        """
        lines = [f"--- cluster (context {self.context or '(none)'})", "+++ budcore configuration"]
        marks = {Action.CREATE: "+", Action.UPDATE: "~"}
        for change in self.writes:
            mark = marks[change.action]
            lines.append(f"{mark} {change.ref} ({change.action.value})")
            lines.extend(f"{f.op}     {f.describe()}" for f in change.fields)
        for change in self.prune_candidates:
            lines.append(
                f"- {change.ref} (prune: labelled {MANAGED_BY_LABEL}={MANAGED_BY_VALUE} but not in the "
                "configuration; deleted only with --prune)"
            )
        lines.append(self.summary())
        return "\n".join(lines) + "\n"


@dataclass
class ApplyReport:
    """What :func:`apply` did, in order; on failure :class:`ApplyError` carries it."""

    context: str
    dry_run: bool
    planned: int  # writes (+ deletes with prune) the run set out to do
    unchanged: int
    applied: list[ObjectChange] = field(default_factory=list)
    pruned: list[ObjectChange] = field(default_factory=list)
    kept: tuple[ObjectChange, ...] = ()  # prune candidates left in place (prune=False)

    @property
    def changed(self) -> int:
        """Objects created, updated or deleted (in a dry run: that would have been)."""
        return len(self.applied) + len(self.pruned)

    def done(self) -> list[str]:
        """``created ResourceFlavor a100``, ``deleted LocalQueue ns/q``... in the order done."""
        verbs = {Action.CREATE: "created", Action.UPDATE: "updated"}
        out = [f"{verbs[c.action]} {c.ref}" for c in self.applied]
        out.extend(f"deleted {c.ref}" for c in self.pruned)
        return out

    def describe(self) -> str:
        """One line per object written, deleted or kept, then the counts."""
        prefix = "would have " if self.dry_run else ""
        lines = [f"{prefix}{line}" for line in self.done()]
        lines.extend(
            f"kept {c.ref}: not in the configuration any more (run with --prune to delete it)"
            for c in self.kept
        )
        created = sum(1 for c in self.applied if c.action is Action.CREATE)
        counts = (
            f"{self.changed} changed ({created} created, {len(self.applied) - created} updated, "
            f"{len(self.pruned)} deleted), {self.unchanged} unchanged"
        )
        if self.dry_run:
            counts = f"dry run (the server checked every change, nothing was stored): {counts}"
        lines.append(f"{counts}; context {self.context or '(none)'}")
        return "\n".join(lines) + "\n"

    def before_failure(self) -> str:
        """``applied 3 of 5 before the failure: created ResourceFlavor a, ...`` (or that nothing was)."""
        verb = "dry-ran" if self.dry_run else "applied"
        done = self.done()
        if not done:
            return f"nothing was {verb} before the failure (0 of {self.planned})"
        return f"{verb} {len(done)} of {self.planned} before the failure: " + ", ".join(done)


class ApplyError(KubeError):
    """A write the server refused, stopping :func:`apply`: the server's one-line error (naming the
    context, the verb and the object) plus :attr:`report` of what had been written before it."""

    def __init__(self, cause: KubeError, change: ObjectChange, report: ApplyReport) -> None:
        super().__init__(
            f"{cause.message}; {report.before_failure()}",
            status=cause.status,
            reason=cause.reason,
            kind=change.kind,
            name=change.name,
            namespace=change.namespace or "",
            context=cause.context,
            verb=cause.verb,
        )
        self.cause = cause
        self.change = change
        self.report = report


# ---------------------------------------------------------------------------------------------
# plan
# ---------------------------------------------------------------------------------------------


def plan(
    client: KubeClient,
    desired: Sequence[Mapping[str, Any]],
    *,
    api_version: str = "kueue.x-k8s.io/v1beta2",
    scope: Mapping[str, str] | None = None,
) -> ApplyPlan:
    """Compare ``desired`` (rendered objects) with the cluster; see the module docstring.

    ``api_version`` is the version to list at when ``desired`` is empty (an empty configuration
    still has prune candidates). ``scope`` narrows the prune candidates to managed objects that
    also carry these labels (the extra labels given to ``render``), so several configurations can
    share a cluster. Listing errors are :class:`KubeError` (naming the context and the kind).
    """
    wanted: list[tuple[ResourceType, dict[str, Any]]] = []
    for obj in desired:
        rt = resource_type_for(str(obj.get("apiVersion", "")), str(obj.get("kind", "")))
        if rt.kind not in KIND_ORDER:
            raise ValidationError(f"{object_ref(obj)}: budcore does not manage {rt.kind} objects")
        wanted.append((rt, dict(obj)))
    wanted.sort(key=lambda item: _order(item[0], item[1]))
    versions = sorted({rt.version for rt, _ in wanted}) or [api_version.rsplit("/", 1)[-1]]

    # (kind, namespace or "", name) → (the type it was listed as, the live object)
    live: dict[tuple[str, str, str], tuple[ResourceType, dict[str, Any]]] = {}
    kinds_wanted = {rt.kind for rt, _ in wanted}
    for version in versions:
        for kind in KIND_ORDER:
            rt = kueue_type(kind, version)
            try:
                items, _ = client.list(rt)
            except KubeError as exc:
                if exc.status != 404:
                    raise
                if kind not in kinds_wanted:
                    continue  # not served (an older Kueue): nothing of it to apply or prune
                raise KubeError.build(
                    context=client.context,
                    verb="list",
                    kind=kind,
                    status=404,
                    reason="NotFound",
                    detail=f"the cluster does not serve {rt.group_resource}/{version}: is Kueue installed, "
                    "and does it serve this API version? (--api-version picks another)",
                ) from None
            for item in items:
                name, namespace = _identity(item)
                live.setdefault((kind, namespace or "", name), (rt, item))

    objects: list[ObjectChange] = []
    seen: set[tuple[str, str, str]] = set()
    for rt, obj in wanted:
        name, namespace = _identity(obj)
        key = (rt.kind, namespace or "", name)
        if key in seen:
            raise ValidationError(f"{object_ref(obj)} is given twice")
        seen.add(key)
        current = live.get(key, (rt, None))[1]
        if current is None:
            fields = tuple(_diff(rt, obj, {}))
            objects.append(ObjectChange(Action.CREATE, rt, name, namespace, obj, None, fields))
            continue
        fields = tuple(_diff(rt, obj, current))
        action = Action.UPDATE if fields else Action.UNCHANGED
        objects.append(ObjectChange(action, rt, name, namespace, obj, current, fields))

    required = {MANAGED_BY_LABEL: MANAGED_BY_VALUE, **dict(scope or {})}
    candidates: list[ObjectChange] = []
    for key, (rt, item) in live.items():
        labels = (item.get("metadata") or {}).get("labels") or {}
        if key in seen or any(labels.get(k) != v for k, v in required.items()):
            continue
        candidates.append(ObjectChange(Action.PRUNE, rt, key[2], key[1] or None, None, item))
    candidates.sort(key=lambda c: _order(c.rt, c.live or {}), reverse=True)
    return ApplyPlan(client.context, tuple(objects), tuple(candidates))


def _identity(obj: Mapping[str, Any]) -> tuple[str, str | None]:
    metadata = obj.get("metadata") or {}
    name = metadata.get("name")
    if not isinstance(name, str) or not name:
        raise ValidationError(f"{obj.get('kind', 'object')} without metadata.name", path="metadata.name")
    namespace = metadata.get("namespace")
    return name, (str(namespace) if namespace else None)


def _order(rt: ResourceType, obj: Mapping[str, Any]) -> tuple[int, str, str]:
    metadata = obj.get("metadata") or {}
    return (KIND_ORDER.index(rt.kind), str(metadata.get("namespace") or ""), str(metadata.get("name") or ""))


# ---- the field-level diff ----


def _diff(rt: ResourceType, desired: Mapping[str, Any], live: Mapping[str, Any]) -> Iterator[FieldChange]:
    """The fields where ``live`` differs from ``desired``, as far as budcore sets them."""
    if not live:  # a create: what the configuration sets (not the CRD defaults sent along)
        yield from _leaves("+", "", _comparable(desired, {}, desired))
        return
    schema = crd_schema(rt.kind, rt.version)
    yield from _walk("", _comparable(desired, schema, desired), _comparable(live, schema, desired))


def _comparable(
    obj: Mapping[str, Any], schema: Mapping[str, Any], desired: Mapping[str, Any]
) -> dict[str, Any]:
    """The part of ``obj`` budcore owns, with the CRD's defaults filled in (see the module doc).

    Labels: only the keys the desired object sets (other tools may label budcore's objects).
    """
    body = {k: v for k, v in obj.items() if k not in _NOT_COMPARED}
    properties = schema.get("properties") or {}
    body = _defaulted(body, {"properties": {k: v for k, v in properties.items() if k not in _NOT_COMPARED}})
    want_labels = (desired.get("metadata") or {}).get("labels") or {}
    have_labels = (obj.get("metadata") or {}).get("labels") or {}
    labels = {k: have_labels[k] for k in want_labels if k in have_labels}
    return {"metadata": {"labels": labels}, **body} if want_labels else body


def with_defaults(rt: ResourceType, obj: Mapping[str, Any]) -> dict[str, Any]:
    """``obj`` with the CRD's structural defaults written out, as it is applied.

    Sending the defaults makes budcore the owner of those fields too, so drift there is undone:
    a ClusterQueue someone stopped by hand (``stopPolicy: Hold``) while the configuration leaves
    it running goes back to ``None``. Left out, the field would belong to whoever set it, server-side
    apply would keep their value, and the plan would report the same difference forever.
    """
    properties = crd_schema(rt.kind, rt.version).get("properties") or {}
    body = {k: v for k, v in obj.items() if k not in _NOT_COMPARED}
    defaulted = _defaulted(
        body, {"properties": {k: v for k, v in properties.items() if k not in _NOT_COMPARED}}
    )
    return {**dict(obj), **defaulted}


def _defaulted(value: Any, schema: Mapping[str, Any]) -> Any:
    """``value`` with the structural schema's ``default``s applied, as the API server does."""
    if isinstance(value, Mapping):
        properties: Mapping[str, Any] = schema.get("properties") or {}
        out: dict[str, Any] = {}
        for key, sub in value.items():
            out[key] = _defaulted(sub, properties.get(key) or {})
        for key, sub_schema in properties.items():
            if key not in out and "default" in sub_schema:
                out[key] = _defaulted(json.loads(json.dumps(sub_schema["default"])), sub_schema)
        return out
    if isinstance(value, list):
        items = schema.get("items") or {}
        return [_defaulted(item, items if isinstance(items, Mapping) else {}) for item in value]
    return value


def _walk(path: str, want: Any, have: Any) -> Iterator[FieldChange]:
    if isinstance(want, Mapping) and isinstance(have, Mapping):
        for key, value in want.items():
            sub = _join(path, key)
            if key not in have:
                yield from _leaves("+", sub, value)
            else:
                yield from _walk(sub, value, have[key])
        for key, value in have.items():
            if key not in want:
                yield from _leaves("-", _join(path, key), value)
        return
    if isinstance(want, list) and isinstance(have, list):
        for index, value in enumerate(want):
            if index < len(have):
                yield from _walk(f"{path}[{index}]", value, have[index])
            else:
                yield from _leaves("+", f"{path}[{index}]", value)
        for index in range(len(want), len(have)):
            yield from _leaves("-", f"{path}[{index}]", have[index])
        return
    if not _same(path, want, have):
        yield FieldChange("~", path, have, want)


def _leaves(op: Literal["+", "-"], path: str, value: Any) -> Iterator[FieldChange]:
    """A whole added or removed subtree, one line per scalar (empty maps and lists as such)."""
    if isinstance(value, Mapping) and value:
        for key, sub in value.items():
            yield from _leaves(op, _join(path, key), sub)
    elif isinstance(value, list) and value:
        for index, sub in enumerate(value):
            yield from _leaves(op, f"{path}[{index}]", sub)
    elif op == "+":
        yield FieldChange("+", path, None, value)
    else:
        yield FieldChange("-", path, value, None)


def _join(path: str, key: Any) -> str:
    """``spec.nodeLabels["nvidia.com/gpu.product"]``: keys that are not identifiers in brackets."""
    key = str(key)
    if _IDENTIFIER.match(key):
        return f"{path}.{key}" if path else key
    return f"{path}[{json.dumps(key)}]"


def _same(path: str, want: Any, have: Any) -> bool:
    if want == have and type(want) is type(have):
        return True
    leaf = path.rsplit(".", 1)[-1]
    if leaf in _QUANTITY_KEYS and not isinstance(want, bool) and not isinstance(have, bool):
        try:
            return parse_quantity(want, path) == parse_quantity(have, path)
        except (ValidationError, TypeError):
            return False
    return False


def _show(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False)


# ---------------------------------------------------------------------------------------------
# apply
# ---------------------------------------------------------------------------------------------


def apply(client: KubeClient, plan: ApplyPlan, *, prune: bool = False, dry_run: bool = False) -> ApplyReport:
    """Carry out ``plan``: server-side apply of its creates and updates in dependency order, then
    (only with ``prune``) delete its prune candidates in reverse order.

    ``dry_run`` sends every apply with ``dryRun=All`` (the server validates and answers, stores
    nothing) and deletes nothing. A refused write raises :class:`ApplyError` with the report of what
    was written before it; the remaining objects are not attempted.
    """
    writes = plan.writes
    deletes = plan.prune_candidates if prune else ()
    report = ApplyReport(
        context=plan.context,
        dry_run=dry_run,
        planned=len(writes) + len(deletes),
        unchanged=len(plan.of(Action.UNCHANGED)),
        kept=() if prune else plan.prune_candidates,
    )
    for change in writes:
        assert change.desired is not None  # writes always have a desired object
        try:
            client.apply(
                change.rt,
                with_defaults(change.rt, change.desired),
                field_manager=FIELD_MANAGER,
                force=True,
                dry_run=dry_run,
            )
        except KubeError as exc:
            raise ApplyError(exc, change, report) from None
        report.applied.append(change)
    for change in deletes:
        if not dry_run:
            # The client's delete has no dry-run; a dry run reports what it would delete.
            try:
                client.delete(change.rt, change.name, change.namespace)
            except KubeError as exc:
                raise ApplyError(exc, change, report) from None
        report.pruned.append(change)
    return report
