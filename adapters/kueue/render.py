"""budcore's queue configuration as the Kueue objects a cluster should hold.

:func:`render` turns a :class:`~budcore.scheduling.queues.QueueConfig` into ResourceFlavor, Cohort,
ClusterQueue, WorkloadPriorityClass and LocalQueue manifests (``kueue.x-k8s.io/v1beta1`` or
``v1beta2``). It reuses :func:`budcore.config.kueue.to_documents`, the same dumper ``budcore
validate`` round-trips with, so a rendered object means in a cluster exactly what the configuration
means to budcore's own admission. Rendering adds two things a cluster needs and a configuration file
does not:

* the label ``app.kubernetes.io/managed-by: budcore`` on every object: ``budcore kueue apply
  --prune`` deletes only objects that carry it, so objects created by hand or by another tool are
  never touched;
* a dependency order (flavors, cohorts, cluster queues, priority classes, local queues), sorted by
  name within a kind, so the output is deterministic (diffable, golden-testable) and an apply in
  this order never creates a queue before what it refers to.

Every object is validated against the vendored CRD schema of its kind and version, and against the
rules ``budcore validate`` enforces, *before* anything is sent (:func:`budcore.config.kueue.
parse_document`, the entry point the ``validate`` command uses): a cluster is never left with half
a configuration because object 7 of 12 was malformed. A failure names the object and the field.

This module imports no Kubernetes client: ``budcore kueue render > queues.yaml`` works on a laptop
with no cluster and without the ``kueue`` extra's dependencies.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Final

import yaml

from budcore.config.kueue import (
    API_V1BETA2,
    SUPPORTED_API_VERSIONS,
    parse_document,
    to_documents,
)
from budcore.config.yamlsource import DocumentError, YamlDocument
from budcore.domain.errors import ValidationError, ValidationErrors
from budcore.scheduling.queues import QueueConfig

__all__ = [
    "KIND_ORDER",
    "MANAGED_BY_LABEL",
    "MANAGED_BY_VALUE",
    "MANAGED_SELECTOR",
    "dump_objects",
    "normalize_api_version",
    "object_ref",
    "render",
    "render_yaml",
]

#: The label every object budcore applies carries; prune selects by it (and by nothing else).
MANAGED_BY_LABEL: Final = "app.kubernetes.io/managed-by"
MANAGED_BY_VALUE: Final = "budcore"
MANAGED_SELECTOR: Final = f"{MANAGED_BY_LABEL}={MANAGED_BY_VALUE}"

#: Dependency order: what a kind refers to comes before it (a ClusterQueue names flavors and a
#: cohort, a LocalQueue names a ClusterQueue). Apply walks it forwards, prune backwards.
KIND_ORDER: Final = ("ResourceFlavor", "Cohort", "ClusterQueue", "WorkloadPriorityClass", "LocalQueue")

# Kubernetes label syntax (as the API server checks it): [prefix/]name, value at most 63 characters.
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_LABEL_PART = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")

_SAFE_DUMPER: type[yaml.SafeDumper] = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


def normalize_api_version(api_version: str) -> str:
    """``v1beta2`` or ``kueue.x-k8s.io/v1beta2`` → ``kueue.x-k8s.io/v1beta2`` (the CLI takes the short
    form); anything else is a ``ValidationError`` naming the accepted values."""
    full = api_version if "/" in api_version else f"kueue.x-k8s.io/{api_version}"
    if full not in SUPPORTED_API_VERSIONS:
        accepted = ", ".join(v.split("/", 1)[1] for v in SUPPORTED_API_VERSIONS)
        raise ValidationError(
            f"unsupported Kueue API version {api_version!r}: use one of {accepted}", path="--api-version"
        )
    return full


def object_ref(obj: Mapping[str, Any]) -> str:
    """``ClusterQueue research`` / ``LocalQueue inference/online``: how messages name an object."""
    metadata = obj.get("metadata") or {}
    name = str(metadata.get("name", "?"))
    namespace = metadata.get("namespace")
    return f"{obj.get('kind', '?')} {namespace}/{name}" if namespace else f"{obj.get('kind', '?')} {name}"


def _order_key(obj: Mapping[str, Any]) -> tuple[int, str, str]:
    metadata = obj["metadata"]
    return (KIND_ORDER.index(obj["kind"]), str(metadata.get("namespace", "")), str(metadata["name"]))


def render(
    config: QueueConfig,
    *,
    api_version: str = API_V1BETA2,
    labels: Mapping[str, str] | None = None,
) -> list[dict[str, Any]]:
    """The Kueue objects of ``config``, labelled as budcore's, in dependency order, all validated.

    ``labels`` are added to every object next to the managed-by label (e.g. a test run's id, so a
    real-cluster suite can find and remove exactly its own objects); they cannot override it, since
    prune depends on it. Raises ``ValidationErrors`` (one entry per problem, each naming the object
    and the field) when an object fails its CRD schema or budcore's rules; nothing is returned then,
    so nothing partial can be applied.
    """
    full_version = normalize_api_version(api_version)
    extra = dict(labels or {})
    _check_labels(extra)
    if extra.get(MANAGED_BY_LABEL, MANAGED_BY_VALUE) != MANAGED_BY_VALUE:
        raise ValidationError(
            f"label {MANAGED_BY_LABEL} is budcore's own (prune selects by it) and cannot be set to "
            f"{extra[MANAGED_BY_LABEL]!r}",
            path="labels",
        )
    try:
        documents = to_documents(config, full_version)
    except ValidationErrors as exc:
        raise _refusal(exc, full_version) from None
    objects: list[dict[str, Any]] = []
    for document in documents:
        metadata = dict(document["metadata"])
        metadata["labels"] = {
            **dict(metadata.get("labels") or {}),
            **extra,
            MANAGED_BY_LABEL: MANAGED_BY_VALUE,
        }
        objects.append(_canonical({**document, "metadata": metadata}))
    objects.sort(key=_order_key)
    # The final objects (labels included) are what will be sent, so they are what gets checked.
    problems: list[ValidationError] = []
    for index, obj in enumerate(objects):
        try:
            parse_document(YamlDocument(data=obj, source="<render>", index=index, start_line=0))
        except ValidationErrors as exc:
            problems.extend(_refusal(exc, full_version, obj).errors)
    if problems:
        raise ValidationErrors(problems)
    return objects


def render_yaml(
    config: QueueConfig,
    *,
    api_version: str = API_V1BETA2,
    labels: Mapping[str, str] | None = None,
) -> str:
    """:func:`render` as a multi-document YAML stream (``budcore kueue render > queues.yaml``).

    Same layout as :func:`budcore.config.kueue.dump_queue_config` (``---`` before each document, keys
    in manifest order, 110 columns), so the file loads back with ``budcore validate`` and
    :func:`~budcore.config.kueue.loads_queue_config` into the same configuration.
    """
    return dump_objects(render(config, api_version=api_version, labels=labels))


def dump_objects(objects: list[dict[str, Any]]) -> str:
    """Rendered objects as a multi-document YAML stream (deterministic: same input, same bytes)."""
    return yaml.dump_all(
        objects,
        Dumper=_SAFE_DUMPER,
        sort_keys=False,
        explicit_start=True,
        default_flow_style=False,
        allow_unicode=True,
        width=110,
    )


# Kubernetes' own field order for taints and tolerations (the order ``kubectl get -o yaml`` shows).
_TAINT_ORDER: Final = ("key", "value", "effect", "timeAdded")
_TOLERATION_ORDER: Final = ("key", "operator", "value", "effect", "tolerationSeconds")


def _canonical(obj: dict[str, Any]) -> dict[str, Any]:
    """``obj`` with its free-form maps sorted by key and taints/tolerations in Kubernetes' field
    order. The configuration keeps these as dicts in the order they were read, and dicts that are
    equal can still print differently: without this, the same configuration written with its keys
    in another order would render to different bytes (and a golden or a ``git diff`` would flap)."""
    metadata = obj["metadata"]
    metadata["labels"] = dict(sorted(metadata["labels"].items()))
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return obj
    if isinstance(spec.get("nodeLabels"), dict):
        spec["nodeLabels"] = dict(sorted(spec["nodeLabels"].items()))
    for key, order in (("nodeTaints", _TAINT_ORDER), ("tolerations", _TOLERATION_ORDER)):
        if isinstance(spec.get(key), list):
            spec[key] = [_ordered(item, order) for item in spec[key]]
    selector = spec.get("namespaceSelector")
    if isinstance(selector, dict) and isinstance(selector.get("matchLabels"), dict):
        selector["matchLabels"] = dict(sorted(selector["matchLabels"].items()))
    return obj


def _ordered(item: Any, order: tuple[str, ...]) -> Any:
    if not isinstance(item, dict):
        return item
    known = {k: item[k] for k in order if k in item}
    return {**known, **{k: v for k, v in sorted(item.items()) if k not in known}}


def _refusal(
    exc: ValidationErrors, api_version: str, obj: Mapping[str, Any] | None = None
) -> ValidationErrors:
    """The dumper's/validator's errors re-worded for a rendered object: they point at
    ``<dump>``/``<render>`` documents nobody can open, so each instead names the object (``Kind/name``,
    ``Kind/namespace/name`` for a LocalQueue, as budcore's reference errors do) and the field."""
    errors: list[ValidationError] = []
    for error in exc.errors:
        if isinstance(error, DocumentError) and error.kind:
            if obj is not None:
                ref = object_ref(obj).replace(" ", "/", 1)
            else:
                ref = f"{error.kind}/{error.name or '?'}"
            path = f"{ref}.{error.path}" if error.path else ref
            errors.append(
                ValidationError(
                    f"not a valid {error.kind} ({api_version}), nothing was sent: {error.detail}", path=path
                )
            )
        else:
            errors.append(ValidationError(f"cannot render ({api_version}): {error.message}", path=error.path))
    return ValidationErrors(errors)


def _check_labels(labels: Mapping[str, str]) -> None:
    """Extra labels must be valid Kubernetes labels: the CRD schemas leave ``metadata`` free-form,
    so the API server, not the schema, would refuse them, after earlier objects were applied."""
    problems: list[ValidationError] = []
    for key, value in labels.items():
        prefix, _, name = str(key).rpartition("/")
        if (
            not name
            or len(name) > 63
            or not _LABEL_PART.match(name)
            or (prefix and (len(prefix) > 253 or not _DNS_SUBDOMAIN.match(prefix)))
        ):
            problems.append(ValidationError(f"invalid label key {key!r}", path=f"labels.{key}"))
        if not isinstance(value, str) or len(value) > 63 or (value and not _LABEL_PART.match(value)):
            problems.append(
                ValidationError(
                    f"invalid label value {value!r}: at most 63 letters, digits, '-', '_' or '.', starting "
                    "and ending with a letter or digit",
                    path=f"labels.{key}",
                )
            )
    if problems:
        raise ValidationErrors(problems)
