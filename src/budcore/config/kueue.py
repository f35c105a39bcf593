"""Kueue YAML in, Kueue YAML out: the queueing configuration as a Kueue user writes it.

budcore's queueing objects (:mod:`budcore.scheduling.queues`) mirror Kueue's ``ResourceFlavor``,
``ClusterQueue``, ``Cohort``, ``LocalQueue`` and ``WorkloadPriorityClass`` so that an existing Kueue
configuration carries over unchanged. This module reads those manifests (``kueue.x-k8s.io/v1beta1``
and ``v1beta2``; files, directories or multi-document streams), validates each one against the real
CRD schema of its kind and version (:mod:`budcore.config.crd`), converts it into domain objects and
checks every cross-reference. All problems of an input are reported together, each naming the file,
line, document, kind, object name and field path, so a configuration is fixed in one pass: a
document with schema errors still counts as the object it names when references are checked, so
its own references are checked too and nothing pointing at it is reported as missing.

Differences from a Kubernetes API server, all deliberate:

* Unknown fields are errors (the API server prunes them silently, which hides typos), except inside
  ``metadata``, where labels, annotations, ``uid``, ``resourceVersion`` and the like are fine.
* ``status`` is ignored: it is observed state, not configuration.
* CEL rules of the CRDs (``x-kubernetes-validations``) and the Kueue webhook rules that matter for
  admission (limits need a cohort, ``lendingLimit <= nominalQuota``, preemption policy consistency,
  taint/toleration shapes) are checked in Python.
* A ClusterQueue without ``namespaceSelector`` admits every namespace. In Kueue an absent selector
  matches nothing, which is never what a hand-written budcore configuration means; the dumper
  always writes ``namespaceSelector: {}`` so dumped YAML behaves the same in a real cluster.
* Features budcore does not model are rejected with "not supported by budcore" when ignoring them
  would change which workloads get admitted (admission checks, ``concurrentAdmissionPolicy``).
* Fields Kueue acts on that budcore loads, keeps and writes back but does not act on yet
  (ResourceFlavor ``topologyName``) load without error and are reported as
  warnings in ``QueueConfig.ignored_fields`` (kind, name, field path, reason, file and line); the
  README's Kueue map lists every spec field of the CRDs as supported, rejected or reported.

Long because it is one transcription of Kueue's API surface (read, validate, cross-check, dump)
whose parts share the field-path and file/line bookkeeping every error needs; split apart, each
part would import the others' internals.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any, Final, TypeVar

import pydantic
import yaml

from budcore.config.crd import CRD_FILES, KUEUE_GROUP, iter_schema_issues
from budcore.config.yamlsource import (
    DocumentError,
    DuplicateKeyError,
    YamlDocument,
    collect_yaml_documents,
    format_path,
    read_yaml_text,
)
from budcore.domain.errors import ValidationError, ValidationErrors
from budcore.domain.quantity import format_quantity, parse_quantity
from budcore.domain.resources import check_resource_name
from budcore.scheduling.queues import (
    ClusterQueue,
    ClusterQueuePreemption,
    Cohort,
    FairSharing,
    FlavorFungibility,
    FlavorQuotas,
    IgnoredField,
    LocalQueue,
    QueueConfig,
    ResourceFlavor,
    ResourceGroup,
    StopPolicy,
    WorkloadPriorityClass,
)

__all__ = [
    "API_V1BETA1",
    "API_V1BETA2",
    "KUEUE_FIELDS",
    "SUPPORTED_API_VERSIONS",
    "SUPPORTED_KINDS",
    "FieldSupport",
    "IgnoredField",
    "KueueObject",
    "ParsedDocument",
    "dump_queue_config",
    "is_kueue_document",
    "load_queue_config",
    "loads_queue_config",
    "parse_document",
    "queue_config_from_documents",
    "to_documents",
]

API_V1BETA1: Final = f"{KUEUE_GROUP}/v1beta1"
API_V1BETA2: Final = f"{KUEUE_GROUP}/v1beta2"
SUPPORTED_API_VERSIONS: Final = (API_V1BETA1, API_V1BETA2)
SUPPORTED_KINDS: Final = tuple(CRD_FILES)

KueueObject = ResourceFlavor | ClusterQueue | Cohort | LocalQueue | WorkloadPriorityClass

# Kubernetes object names: DNS-1123 subdomain (cluster-scoped kinds, LocalQueue names) and
# DNS-1123 label (namespaces).
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_LABEL_VALUE = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")

_TAINT_EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")
_DEFAULT_WEIGHT = FairSharing().weight

# libyaml's safe dumper when available (same output, much faster), else the pure-Python one.
_SAFE_DUMPER: type[yaml.SafeDumper] = getattr(yaml, "CSafeDumper", yaml.SafeDumper)

FieldPath = tuple[str | int, ...]


class FieldSupport(StrEnum):
    """What budcore does with a Kueue spec field (see :data:`KUEUE_FIELDS`)."""

    SUPPORTED = "supported"  # honoured by admission as Kueue honours it
    REJECTED = "rejected"  # a load error "... is not supported by budcore (...)"
    REPORTED = "reported"  # loads, but admission ignores it: listed in QueueConfig.ignored_fields


#: Every ``spec`` field (and WorkloadPriorityClass top-level field) of the kueue.x-k8s.io CRDs
#: budcore reads (v1beta1 and v1beta2, vendored under ``schemas/kueue/``), with what budcore does
#: with it. A path covers its sub-fields; ``path=Value`` entries single out one value of an enum
#: field. There is no fourth, silent category: tests check that every CRD field is covered, and that
#: each REPORTED entry shows up in ``QueueConfig.ignored_fields`` and each REJECTED one fails to load.
KUEUE_FIELDS: Final[Mapping[str, Mapping[str, tuple[FieldSupport, str]]]] = {
    "ClusterQueue": {
        "spec.admissionChecks": (
            FieldSupport.REJECTED,
            "non-empty: admission checks need external controllers",
        ),
        "spec.admissionChecksStrategy": (FieldSupport.REJECTED, "non-empty admissionChecks"),
        "spec.admissionScope": (FieldSupport.SUPPORTED, "admissionMode: UsageBasedAdmissionFairSharing"),
        "spec.cohort": (FieldSupport.SUPPORTED, "v1beta1 spelling of cohortName"),
        "spec.cohortName": (FieldSupport.SUPPORTED, ""),
        "spec.concurrentAdmissionPolicy": (FieldSupport.REJECTED, "budcore admits a workload once"),
        "spec.fairSharing": (FieldSupport.SUPPORTED, "weight"),
        "spec.flavorFungibility": (
            FieldSupport.SUPPORTED,
            "whenCanBorrow, whenCanPreempt (v1beta1 names too), preference (BorrowingOverPreemption, "
            "PreemptionOverBorrowing)",
        ),
        "spec.namespaceSelector": (
            FieldSupport.SUPPORTED,
            "matchLabels, matchExpressions (In, NotIn, Exists, DoesNotExist); an absent selector "
            "admits every namespace (documented deviation)",
        ),
        "spec.preemption": (
            FieldSupport.SUPPORTED,
            "withinClusterQueue, reclaimWithinCohort, borrowWithinCohort",
        ),
        "spec.queueingStrategy": (FieldSupport.SUPPORTED, "StrictFIFO, BestEffortFIFO"),
        "spec.resourceGroups": (
            FieldSupport.SUPPORTED,
            "nominalQuota, borrowingLimit, lendingLimit (<= nominalQuota)",
        ),
        "spec.stopPolicy": (FieldSupport.SUPPORTED, "Hold, HoldAndDrain (evicts)"),
    },
    "Cohort": {
        "spec.fairSharing": (FieldSupport.SUPPORTED, "weight"),
        "spec.parentName": (FieldSupport.SUPPORTED, "hierarchical cohorts"),
        "spec.resourceGroups": (
            FieldSupport.SUPPORTED,
            "own quota; lendingLimit may exceed nominalQuota (it caps what the subtree lends)",
        ),
    },
    "LocalQueue": {
        "spec.clusterQueue": (FieldSupport.SUPPORTED, ""),
        "spec.fairSharing": (FieldSupport.SUPPORTED, "weight, for admission fair sharing"),
        "spec.stopPolicy": (FieldSupport.SUPPORTED, "Hold, HoldAndDrain (evicts its admitted workloads)"),
    },
    "ResourceFlavor": {
        "spec.nodeLabels": (FieldSupport.SUPPORTED, "the pods' node selector"),
        "spec.nodeTaints": (
            FieldSupport.SUPPORTED,
            "NoSchedule/NoExecute taints keep the flavor from pod sets that tolerate them neither "
            "themselves nor through the flavor's tolerations",
        ),
        "spec.tolerations": (
            FieldSupport.SUPPORTED,
            "they tolerate the flavor's taints in flavor assignment and are added to the admitted "
            "pods (PodSetPlacement.tolerations, Kueue's podset.Merge)",
        ),
        "spec.topologyName": (FieldSupport.REPORTED, "Topology-Aware Scheduling is not modelled"),
    },
    "WorkloadPriorityClass": {
        "value": (FieldSupport.SUPPORTED, "a job's priority for queue order and preemption"),
        "description": (FieldSupport.SUPPORTED, "informational, kept and written back"),
    },
}
_Model = TypeVar("_Model", ResourceFlavor, ClusterQueue, Cohort, LocalQueue, WorkloadPriorityClass)


@dataclass(frozen=True)
class ParsedDocument:
    """A validated Kueue document and the domain object it describes."""

    document: YamlDocument
    kind: str
    api_version: str
    name: str
    obj: KueueObject

    @property
    def key(self) -> str:
        """The object's identity within its kind (``namespace/name`` for LocalQueues)."""
        if isinstance(self.obj, LocalQueue):
            return f"{self.obj.namespace}/{self.obj.name}"
        return self.name


def is_kueue_document(data: object) -> bool:
    """Whether a parsed YAML document claims to be a ``kueue.x-k8s.io`` object.

    Lets a loader of mixed streams (the simulator's scenarios) pick out the Kueue part.
    """
    return isinstance(data, Mapping) and str(data.get("apiVersion", "")).startswith(f"{KUEUE_GROUP}/")


# --------------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------------


def load_queue_config(*sources: str | Path) -> QueueConfig:
    """Load a configuration from files and directories (each ``str`` is a path, never YAML text).

    Directories contribute their ``*.yaml``/``*.yml`` files sorted by name; every file may hold
    several documents. All errors of all sources are raised together as one ``ValidationErrors``.
    """
    documents, errors = collect_yaml_documents(*(Path(source) for source in sources))
    return _assemble(documents, errors)


def loads_queue_config(text: str, source: str = "<string>") -> QueueConfig:
    """Load a configuration from a (multi-document) YAML string; ``source`` names it in errors."""
    documents, errors = read_yaml_text(text, source)
    return _assemble(documents, errors)


def queue_config_from_documents(
    documents: Iterable[YamlDocument], *, unreadable: Iterable[ValidationError] = ()
) -> QueueConfig:
    """Build a configuration from already-parsed documents (all must be Kueue documents).

    ``unreadable`` are the errors of reading the input (as
    :func:`~budcore.config.yamlsource.collect_yaml_documents` returns them, for a caller that
    routes the other documents elsewhere): they are raised together with the documents' own
    problems. Unless all of them are duplicate keys, part of the input is lost, and references are
    then not checked: the lost part may define what they name.
    """
    return _assemble(list(documents), list(unreadable))


def _assemble(documents: list[YamlDocument], errors: list[ValidationError]) -> QueueConfig:
    """Check every document, then the whole; ``errors`` are those of reading the input.

    Cross-references are checked even when documents are invalid, as one run of a linter should
    report everything: an invalid document that still says which object it is stands in for that
    object (see :func:`_stand_in`). Only input that was lost (a file that could not be read or
    parsed; a duplicate key loses nothing) leaves references unchecked: what it defines is
    unknown, so "does not exist" could be false.
    """
    readable = all(isinstance(error, DuplicateKeyError) for error in errors)
    items: list[ParsedDocument] = []
    for document in documents:
        try:
            items.append(parse_document(document))
        except ValidationErrors as exc:
            errors.extend(exc.errors)
            stand_in = _stand_in(document)
            if stand_in is not None:
                items.append(stand_in)
    unique, duplicates = _deduplicate(items)
    errors.extend(duplicates)
    if readable:
        errors.extend(_reference_errors(unique))
    if errors:
        errors.sort(key=_error_order)  # stable: on one line, a document's own problems come first
        raise ValidationErrors(errors)
    objects: dict[str, list[Any]] = {kind: [] for kind in SUPPORTED_KINDS}
    for item in unique:
        objects[item.kind].append(item.obj)
    config = QueueConfig.build(
        flavors=objects["ResourceFlavor"],
        cluster_queues=objects["ClusterQueue"],
        cohorts=objects["Cohort"],
        local_queues=objects["LocalQueue"],
        priority_classes=objects["WorkloadPriorityClass"],
    )
    return _locate_ignored(config, unique)


def _reference_errors(items: list[ParsedDocument]) -> list[ValidationError]:
    """Every dangling reference and cohort cycle among the (deduplicated) ``items``, located.

    ``QueueConfig.reference_errors`` owns the rules. It runs on an unvalidated view because
    stand-ins, built without validation, must not meet the objects' own validators again (their
    documents already reported what is wrong with them).
    """
    collections: dict[str, dict[Any, Any]] = {kind: {} for kind in SUPPORTED_KINDS}
    for item in items:
        obj = item.obj
        collections[item.kind][obj.key if isinstance(obj, LocalQueue) else obj.name] = obj
    view = QueueConfig.model_construct(
        flavors=collections["ResourceFlavor"],
        cluster_queues=collections["ClusterQueue"],
        cohorts=collections["Cohort"],
        local_queues=collections["LocalQueue"],
        priority_classes=collections["WorkloadPriorityClass"],
    )
    located = (_locate(error, items) for error in view.reference_errors())
    return [error for error in located if error is not None]


def _locate_ignored(config: QueueConfig, parsed: list[ParsedDocument]) -> QueueConfig:
    """``config`` with each of its ``ignored_fields`` pointing at its file and line."""
    if not config.ignored_fields:
        return config
    by_object = {(item.kind, item.key): item.document for item in parsed}
    where: dict[tuple[str, str, str], tuple[str | None, int | None]] = {}
    for ignored in config.ignored_fields:
        document = by_object.get((ignored.kind, ignored.name))
        if document is not None:
            where[ignored.key] = (document.source, document.line_of(ignored.path))
    return config.with_locations(where)


def _error_order(error: ValidationError) -> tuple[str, int, int]:
    document = error.document if isinstance(error, DocumentError) and error.document else 0
    return (error.source or "", document, error.line or 0)


def _deduplicate(parsed: list[ParsedDocument]) -> tuple[list[ParsedDocument], list[ValidationError]]:
    """First definition of each object, and an error for every later one (naming both places)."""
    errors: list[ValidationError] = []
    first: dict[tuple[str, str], ParsedDocument] = {}
    unique: list[ParsedDocument] = []
    for item in parsed:
        seen = first.setdefault((item.kind, item.key), item)
        if seen is item:
            unique.append(item)
            continue
        where = f"{seen.document.source}:{seen.document.line_of('metadata.name')}"
        errors.append(
            item.document.error(
                f"duplicate {item.kind} {item.key!r}: also defined at {where} "
                f"(document {seen.document.number})",
                "metadata.name",
                kind=item.kind,
                name=item.name,
            )
        )
    return unique, errors


def _locate(error: ValidationError, parsed: list[ParsedDocument]) -> ValidationError | None:
    """Turn a ``QueueConfig`` reference error (``Kind/key.spec...``) into one at its file and line.

    ``None`` for a reference a stand-in holds only as a placeholder: its value is malformed, the
    document's own errors say so, and "does not exist" would repeat them.
    """
    best: ParsedDocument | None = None
    for item in parsed:
        prefix = f"{item.kind}/{item.key}"
        if (error.path == prefix or error.path.startswith(prefix + ".")) and (
            best is None or len(prefix) > len(f"{best.kind}/{best.key}")
        ):
            best = item
    if best is None:
        return error
    field = error.path[len(f"{best.kind}/{best.key}") :].lstrip(".")
    if isinstance(best, _StandIn) and field in best.unusable:
        return None
    return best.document.error(error.message, field, kind=best.kind, name=best.name)


# ---- stand-ins: invalid documents as the objects they name, for the reference checks ----


@dataclass(frozen=True)
class _StandIn(ParsedDocument):
    """An invalid document that says which object it is, standing in for that object.

    Its ``obj`` is built without validation and holds only the references readable from the raw
    document, at their positions, so reference errors locate as for a valid one. ``unusable`` are
    the field paths of references whose value is malformed; they hold a placeholder name.
    """

    unusable: frozenset[str] = frozenset()


def _stand_in(document: YamlDocument) -> _StandIn | None:
    """The stand-in for an invalid document, or ``None`` when it does not name a Kueue object
    (no mapping, no Kueue kind, no string ``metadata.name``; a LocalQueue also needs a string
    namespace): nothing can refer to an object without a kind and a name."""
    data = document.data
    if not isinstance(data, Mapping):
        return None
    kind, metadata, spec = data.get("kind"), _mapping(data.get("metadata")), _mapping(data.get("spec"))
    name = metadata.get("name")
    if not isinstance(kind, str) or kind not in _STAND_IN_BUILDERS or not isinstance(name, str) or not name:
        return None
    unusable: set[str] = set()
    obj = _STAND_IN_BUILDERS[kind](name, metadata, spec, unusable)
    if obj is None:
        return None
    api_version = data.get("apiVersion")
    return _StandIn(
        document=document,
        kind=kind,
        api_version=api_version if isinstance(api_version, str) else "",
        name=name,
        obj=obj,
        unusable=frozenset(unusable),
    )


def _mapping(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _flavor_references(spec: Mapping[str, Any], unusable: set[str]) -> tuple[ResourceGroup, ...]:
    """The flavor names of ``spec.resourceGroups``, each group and flavor at its index."""
    groups: list[ResourceGroup] = []
    raw_groups = spec.get("resourceGroups")
    for gi, group in enumerate(raw_groups if isinstance(raw_groups, list) else []):
        raw_flavors = _mapping(group).get("flavors")
        flavors: list[FlavorQuotas] = []
        for fi, flavor in enumerate(raw_flavors if isinstance(raw_flavors, list) else []):
            name = _mapping(flavor).get("name")
            if not isinstance(name, str):
                unusable.add(format_path(("spec", "resourceGroups", gi, "flavors", fi, "name")))
                name = ""
            flavors.append(FlavorQuotas.model_construct(name=name, resources=()))
        groups.append(ResourceGroup.model_construct(covered_resources=(), flavors=tuple(flavors)))
    return tuple(groups)


def _cluster_queue_stand_in(
    name: str, metadata: Mapping[str, Any], spec: Mapping[str, Any], unusable: set[str]
) -> KueueObject:
    # The cohort is not a reference that can dangle (Kueue creates cohorts implicitly).
    return ClusterQueue.model_construct(name=name, resource_groups=_flavor_references(spec, unusable))


def _cohort_stand_in(
    name: str, metadata: Mapping[str, Any], spec: Mapping[str, Any], unusable: set[str]
) -> KueueObject:
    parent = spec.get("parentName")
    return Cohort.model_construct(
        name=name,
        parent=parent if isinstance(parent, str) and parent else None,
        resource_groups=_flavor_references(spec, unusable),
    )


def _local_queue_stand_in(
    name: str, metadata: Mapping[str, Any], spec: Mapping[str, Any], unusable: set[str]
) -> KueueObject | None:
    namespace = metadata.get("namespace", "default")
    if not isinstance(namespace, str):
        return None  # no identity; and nothing refers to a LocalQueue
    cluster_queue = spec.get("clusterQueue")
    if not isinstance(cluster_queue, str):
        unusable.add("spec.clusterQueue")
        cluster_queue = ""
    return LocalQueue.model_construct(name=name, namespace=namespace, cluster_queue=cluster_queue)


_STAND_IN_BUILDERS: Final[
    dict[str, Callable[[str, Mapping[str, Any], Mapping[str, Any], set[str]], KueueObject | None]]
] = {
    "ResourceFlavor": lambda name, *_: ResourceFlavor.model_construct(name=name),
    "ClusterQueue": _cluster_queue_stand_in,
    "Cohort": _cohort_stand_in,
    "LocalQueue": _local_queue_stand_in,
    "WorkloadPriorityClass": lambda name, *_: WorkloadPriorityClass.model_construct(name=name, value=0),
}


# --------------------------------------------------------------------------------------------
# One document
# --------------------------------------------------------------------------------------------


class _Checker:
    """Collects the errors of one document, each located at its field path."""

    def __init__(self, document: YamlDocument, kind: str | None, name: str | None) -> None:
        self.document = document
        self.kind = kind
        self.name = name
        self.errors: list[ValidationError] = []

    def add(self, path: FieldPath, message: str) -> None:
        self.errors.append(self.document.error(message, format_path(path), kind=self.kind, name=self.name))

    def quantity(self, value: Any, path: FieldPath) -> int | None:
        try:
            amount = parse_quantity(value, format_path(path))
        except ValidationError as exc:
            self.add(path, exc.message)
            return None
        if amount < 0:
            self.add(path, f"must not be negative, got {value!r}")
            return None
        return amount

    def unsupported(self, path: FieldPath, what: str, why: str) -> None:
        self.add(path, f"{what} is not supported by budcore ({why})")


def parse_document(document: YamlDocument) -> ParsedDocument:
    """Validate one Kueue document and convert it into its domain object.

    Raises ``ValidationErrors`` listing every problem of the document (schema, unknown fields,
    unsupported features, quantities, domain rules), each with file, line, kind, name and path.
    """
    data = document.data
    if not isinstance(data, Mapping):
        check = _Checker(document, None, None)
        check.add((), f"expected a Kubernetes object (a mapping), got {type(data).__name__}")
        raise ValidationErrors(check.errors)
    metadata = data.get("metadata")
    raw_name = metadata.get("name") if isinstance(metadata, Mapping) else None
    name = raw_name if isinstance(raw_name, str) else None
    kind = data.get("kind")
    api_version = data.get("apiVersion")
    check = _Checker(document, kind if isinstance(kind, str) else None, name)
    if kind is None:
        check.add(("kind",), "missing kind")
    elif not isinstance(kind, str) or not kind:
        check.add(("kind",), f"invalid kind {kind!r}: expected a string such as ClusterQueue")
    if api_version is None:
        check.add(("apiVersion",), "missing apiVersion")
    elif not isinstance(api_version, str) or not api_version:
        check.add(("apiVersion",), f"invalid apiVersion {api_version!r}: expected e.g. {API_V1BETA2}")
    if not isinstance(kind, str) or not isinstance(api_version, str) or check.errors:
        raise ValidationErrors(check.errors)
    if kind not in SUPPORTED_KINDS:
        check.add(
            ("kind",),
            f"unknown kind {kind!r} (apiVersion {api_version!r}): budcore reads {KUEUE_GROUP} "
            + ", ".join(SUPPORTED_KINDS),
        )
        raise ValidationErrors(check.errors)
    if api_version not in SUPPORTED_API_VERSIONS:
        check.add(
            ("apiVersion",),
            f"unsupported apiVersion {api_version!r} for kind {kind}: expected "
            + " or ".join(SUPPORTED_API_VERSIONS),
        )
        raise ValidationErrors(check.errors)
    version = api_version.split("/", 1)[1]
    body = {k: v for k, v in data.items() if k != "status"}
    for issue in iter_schema_issues(body, kind, version):
        message = issue.message
        if message == "unknown field":
            message += _rename_hint(kind, version, issue.path)
        check.add(issue.path, message)
    _check_metadata(check, kind, body.get("metadata"))
    if check.errors:
        raise ValidationErrors(check.errors)
    obj = _CONVERTERS[kind](check, body, version)
    if check.errors or obj is None:
        raise ValidationErrors(check.errors)
    return ParsedDocument(document=document, kind=kind, api_version=api_version, name=obj.name, obj=obj)


def _rename_hint(kind: str, version: str, path: FieldPath) -> str:
    if kind == "ClusterQueue" and len(path) == 2 and path[0] == "spec":
        if path[1] == "cohort" and version == "v1beta2":
            return " (v1beta2 calls it cohortName)"
        if path[1] == "cohortName" and version == "v1beta1":
            return " (v1beta1 calls it cohort)"
        if path[1] == "admissionChecks" and version == "v1beta2":
            return " (v1beta2 has only admissionChecksStrategy)"
    return ""


def _check_metadata(check: _Checker, kind: str, metadata: Any) -> None:
    if not isinstance(metadata, Mapping):
        if metadata is None:
            check.add(("metadata",), "missing metadata (metadata.name is required)")
        return  # a non-mapping was already reported by the schema
    name = metadata.get("name")
    if name is None:
        check.add(("metadata", "name"), "missing required field: metadata.name")
    elif not isinstance(name, str) or len(name) > 253 or not _DNS_SUBDOMAIN.match(name):
        check.add(
            ("metadata", "name"),
            f"invalid name {name!r}: must be a DNS-1123 subdomain (lower-case letters, digits, '-' "
            "and '.', starting and ending with a letter or digit, at most 253 characters)",
        )
    if kind == "LocalQueue":
        namespace = metadata.get("namespace", "default")
        if not isinstance(namespace, str) or len(namespace) > 63 or not _DNS_LABEL.match(namespace):
            check.add(
                ("metadata", "namespace"),
                f"invalid namespace {namespace!r}: must be a DNS-1123 label (lower-case letters, digits "
                "and '-', starting and ending with a letter or digit, at most 63 characters)",
            )


# ---- conversion (the document already satisfies its schema, so shapes and types are known) ----


def _weight(check: _Checker, spec: Mapping[str, Any], base: FieldPath) -> dict[str, Any]:
    fair = spec.get("fairSharing")
    if not isinstance(fair, Mapping) or "weight" not in fair:
        return {}
    weight = check.quantity(fair["weight"], (*base, "fairSharing", "weight"))
    return {} if weight is None else {"weight": weight}


def _resource_groups(
    check: _Checker, groups: list[Any], base: FieldPath, *, has_parent: bool, parent_field: str, owner: str
) -> list[dict[str, Any]]:
    """``resourceGroups`` as domain dicts, checked the way Kueue's webhook checks them.

    Resource names must be qualified names, covered by one group only; a flavor appears in one
    group only; each flavor lists exactly the covered resources, in order; borrowing and lending
    limits need a parent (``cohortName``/``parentName``); ``lendingLimit <= nominalQuota`` for a
    ClusterQueue only (Kueue's cohort webhook does not enforce it).
    """
    out: list[dict[str, Any]] = []
    seen_resources: set[str] = set()
    seen_flavors: set[str] = set()
    for gi, group in enumerate(groups):
        covered = [str(r) for r in group["coveredResources"]]
        for ci, name in enumerate(covered):
            cpath: FieldPath = (*base, gi, "coveredResources", ci)
            try:
                check_resource_name(name, format_path(cpath))
            except ValidationError as exc:
                check.add(cpath, exc.message)
            if name in seen_resources:
                check.add(cpath, f"resource {name!r} is already covered by another resourceGroup")
            seen_resources.add(name)
        flavors: list[dict[str, Any]] = []
        for fi, flavor in enumerate(group["flavors"]):
            fpath: FieldPath = (*base, gi, "flavors", fi)
            if flavor["name"] in seen_flavors:
                check.add((*fpath, "name"), f"flavor {flavor['name']!r} already appears in this {owner}")
            seen_flavors.add(flavor["name"])
            if len(flavor["resources"]) != len(covered):
                check.add(
                    (*fpath, "resources"),
                    f"lists {len(flavor['resources'])} resources, coveredResources has {len(covered)}",
                )
            resources: list[dict[str, Any]] = []
            for ri, resource in enumerate(flavor["resources"]):
                rpath: FieldPath = (*fpath, "resources", ri)
                if ri < len(covered) and resource["name"] != covered[ri]:
                    check.add(
                        (*rpath, "name"),
                        f"resource {resource['name']!r} must match coveredResources[{ri}] ({covered[ri]!r})",
                    )
                nominal = check.quantity(resource["nominalQuota"], (*rpath, "nominalQuota"))
                quota: dict[str, Any] = {"name": resource["name"], "nominal_quota": nominal}
                for field, key in (("borrowingLimit", "borrowing_limit"), ("lendingLimit", "lending_limit")):
                    if field not in resource:
                        continue
                    if not has_parent:
                        check.add((*rpath, field), f"{field} must not be set when {parent_field} is empty")
                    quota[key] = check.quantity(resource[field], (*rpath, field))
                lending = quota.get("lending_limit")
                if (
                    owner == "ClusterQueue"
                    and lending is not None
                    and nominal is not None
                    and lending > nominal
                ):
                    # Kueue enforces this for ClusterQueues only (clusterqueue_webhook.go:
                    # enforceNominalGreaterThanLending: true; cohort_webhook.go: false): a Cohort's
                    # lendingLimit caps what its whole subtree lends, which may exceed its own quota.
                    check.add(
                        (*rpath, "lendingLimit"),
                        f"lendingLimit ({format_quantity(lending, resource['name'])}) must not exceed "
                        f"nominalQuota ({format_quantity(nominal, resource['name'])})",
                    )
                resources.append(quota)
            flavors.append({"name": flavor["name"], "resources": resources})
        out.append({"covered_resources": covered, "flavors": flavors})
    return out


def _check_labels(check: _Checker, labels: Mapping[str, Any], base: FieldPath) -> None:
    """Kubernetes label syntax for node labels and namespace selectors (as the API server checks)."""
    for key, value in labels.items():
        path = (*base, key)
        prefix, _, name = str(key).rpartition("/")
        if (
            (prefix and (len(prefix) > 253 or not _DNS_SUBDOMAIN.match(prefix)))
            or len(name) > 63
            or not _LABEL_VALUE.match(name)
            or not name
        ):
            check.add(path, f"invalid label key {key!r}: use [prefix/]name, name at most 63 characters")
        if not isinstance(value, str) or len(value) > 63 or (value and not _LABEL_VALUE.match(value)):
            check.add(
                path,
                f"invalid label value {value!r}: at most 63 letters, digits, '-', '_' or '.', "
                "starting and ending with a letter or digit",
            )


def _convert_flavor(check: _Checker, body: Mapping[str, Any], version: str) -> KueueObject | None:
    spec = body.get("spec") or {}
    labels = dict(spec.get("nodeLabels") or {})
    _check_labels(check, labels, ("spec", "nodeLabels"))
    taints = [dict(t) for t in spec.get("nodeTaints") or []]
    for i, taint in enumerate(taints):
        if taint["effect"] not in _TAINT_EFFECTS:
            check.add(("spec", "nodeTaints", i, "effect"), _effect_message(taint["effect"]))
    tolerations: list[dict[str, str]] = []
    for i, raw in enumerate(spec.get("tolerations") or []):
        path: FieldPath = ("spec", "tolerations", i)
        operator = raw.get("operator")
        if operator is not None and operator not in ("Equal", "Exists"):
            check.add((*path, "operator"), f"unsupported operator {operator!r}: use 'Equal' or 'Exists'")
        if "key" not in raw and operator != "Exists":
            check.add(path, "operator must be Exists when key is empty (match all keys and values)")
        if operator == "Exists" and "value" in raw:
            check.add((*path, "value"), "value must be empty when operator is Exists")
        if "effect" in raw and raw["effect"] not in _TAINT_EFFECTS:
            check.add((*path, "effect"), _effect_message(raw["effect"]))
        if "tolerationSeconds" in raw and raw.get("effect") != "NoExecute":
            check.add((*path, "tolerationSeconds"), "tolerationSeconds needs effect NoExecute")
        # The domain keeps tolerations as string maps; tolerationSeconds is written back as an integer.
        tolerations.append({k: str(v) for k, v in raw.items()})
    if "topologyName" in spec and not labels:
        check.add(("spec", "topologyName"), "at least one nodeLabel is required when topologyName is set")
    data = {
        "name": body["metadata"]["name"],
        "node_labels": labels,
        "node_taints": taints,
        "tolerations": tolerations,
        "topology_name": spec.get("topologyName"),
    }
    return _build(check, ResourceFlavor, data, _FLAVOR_PATHS)


def _effect_message(effect: object) -> str:
    return f"unsupported effect {effect!r}: use one of " + ", ".join(_TAINT_EFFECTS)


def _convert_cluster_queue(check: _Checker, body: Mapping[str, Any], version: str) -> KueueObject | None:
    spec = body.get("spec") or {}
    cohort_field = "cohort" if version == "v1beta1" else "cohortName"
    cohort = spec.get(cohort_field)
    data: dict[str, Any] = {"name": body["metadata"]["name"], "cohort": cohort}
    data["resource_groups"] = _resource_groups(
        check,
        spec.get("resourceGroups") or [],
        ("spec", "resourceGroups"),
        has_parent=bool(cohort),
        parent_field=f"spec.{cohort_field}",
        owner="ClusterQueue",
    )
    if "queueingStrategy" in spec:
        data["queueing_strategy"] = spec["queueingStrategy"]
    if "stopPolicy" in spec:
        data["stop_policy"] = spec["stopPolicy"]
    data["fair_sharing"] = _weight(check, spec, ("spec",))

    preemption = spec.get("preemption") or {}
    borrow = preemption.get("borrowWithinCohort") or {}
    if preemption.get("reclaimWithinCohort", "Never") == "Never" and borrow.get("policy", "Never") != "Never":
        check.add(
            ("spec", "preemption", "borrowWithinCohort", "policy"),
            "borrowWithinCohort.policy must be Never when reclaimWithinCohort is Never",
        )
    data["preemption"] = {
        "within_cluster_queue": preemption.get("withinClusterQueue", "Never"),
        "reclaim_within_cohort": preemption.get("reclaimWithinCohort", "Never"),
        "borrow_within_cohort": {
            "policy": borrow.get("policy", "Never"),
            "max_priority_threshold": borrow.get("maxPriorityThreshold"),
        },
    }

    fungibility = spec.get("flavorFungibility") or {}
    # v1beta1 spelled "accept this flavor although it needs borrowing/preemption" Borrow / Preempt.
    legacy = {"Borrow": "MayStopSearch", "Preempt": "MayStopSearch"}
    when_borrow = str(fungibility.get("whenCanBorrow", "MayStopSearch"))
    when_borrow = legacy.get(when_borrow, when_borrow)
    when_preempt = str(fungibility.get("whenCanPreempt", "TryNextFlavor"))
    when_preempt = legacy.get(when_preempt, when_preempt)
    preference = fungibility.get("preference")
    data["flavor_fungibility"] = {"when_can_borrow": when_borrow, "when_can_preempt": when_preempt}
    if preference is not None:
        # The CRD's CEL rule (x-kubernetes-validations on flavorFungibility).
        if when_borrow != "TryNextFlavor" or when_preempt != "TryNextFlavor":
            check.add(
                ("spec", "flavorFungibility", "preference"),
                "preference can only be set when both whenCanBorrow and whenCanPreempt are TryNextFlavor",
            )
        data["flavor_fungibility"]["preference"] = preference

    selector = spec.get("namespaceSelector")
    if isinstance(selector, Mapping):
        if "matchLabels" in selector:
            data["namespace_selector"] = dict(selector["matchLabels"] or {})
            _check_labels(check, data["namespace_selector"], ("spec", "namespaceSelector", "matchLabels"))
        expressions = selector.get("matchExpressions") or []
        data["namespace_match_expressions"] = [
            {"key": e.get("key"), "operator": e.get("operator"), "values": list(e.get("values") or [])}
            for e in expressions
        ]
        for i, e in enumerate(expressions):  # label syntax of each key and value, as for matchLabels
            for value in e.get("values") or [""]:
                _check_labels(
                    check, {e.get("key", ""): value}, ("spec", "namespaceSelector", "matchExpressions", i)
                )

    scope = spec.get("admissionScope")
    if isinstance(scope, Mapping):
        data["admission_fair_sharing"] = scope.get("admissionMode") == "UsageBasedAdmissionFairSharing"

    if spec.get("admissionChecks"):
        check.unsupported(
            ("spec", "admissionChecks"),
            "admissionChecks",
            "admission checks hold workloads for external controllers budcore does not run",
        )
    strategy = spec.get("admissionChecksStrategy")
    if isinstance(strategy, Mapping) and strategy.get("admissionChecks"):
        check.unsupported(
            ("spec", "admissionChecksStrategy"),
            "admissionChecksStrategy",
            "admission checks hold workloads for external controllers budcore does not run",
        )
    if "concurrentAdmissionPolicy" in spec:
        check.unsupported(
            ("spec", "concurrentAdmissionPolicy"),
            "concurrentAdmissionPolicy",
            "budcore admits a workload once, to one flavor assignment",
        )
    return _build(check, ClusterQueue, data, _queue_paths(cohort_field))


def _convert_cohort(check: _Checker, body: Mapping[str, Any], version: str) -> KueueObject | None:
    spec = body.get("spec") or {}
    parent = spec.get("parentName")
    data: dict[str, Any] = {
        "name": body["metadata"]["name"],
        "parent": parent,
        "resource_groups": _resource_groups(
            check,
            spec.get("resourceGroups") or [],
            ("spec", "resourceGroups"),
            has_parent=bool(parent),
            parent_field="spec.parentName",
            owner="Cohort",
        ),
        "fair_sharing": _weight(check, spec, ("spec",)),
    }
    return _build(check, Cohort, data, _COHORT_PATHS)


def _convert_local_queue(check: _Checker, body: Mapping[str, Any], version: str) -> KueueObject | None:
    spec = body.get("spec") or {}
    metadata = body["metadata"]
    data: dict[str, Any] = {
        "name": metadata["name"],
        "namespace": metadata.get("namespace", "default"),
        "cluster_queue": spec.get("clusterQueue"),
        "fair_sharing": _weight(check, spec, ("spec",)),
    }
    if data["cluster_queue"] is None:
        check.add(("spec", "clusterQueue"), "missing required field: spec.clusterQueue")
        return None
    if "stopPolicy" in spec:
        data["stop_policy"] = spec["stopPolicy"]
    return _build(check, LocalQueue, data, _LOCAL_QUEUE_PATHS)


def _convert_priority_class(check: _Checker, body: Mapping[str, Any], version: str) -> KueueObject | None:
    data = {
        "name": body["metadata"]["name"],
        "value": body["value"],
        "description": body.get("description", ""),
    }
    return _build(check, WorkloadPriorityClass, data, _PRIORITY_CLASS_PATHS)


_CONVERTERS: Final[dict[str, Callable[[_Checker, Mapping[str, Any], str], KueueObject | None]]] = {
    "ResourceFlavor": _convert_flavor,
    "ClusterQueue": _convert_cluster_queue,
    "Cohort": _convert_cohort,
    "LocalQueue": _convert_local_queue,
    "WorkloadPriorityClass": _convert_priority_class,
}

# Where each top-level domain field lives in a manifest, for locating model errors.
_NESTED_FIELDS: Final = {
    "covered_resources": "coveredResources",
    "nominal_quota": "nominalQuota",
    "borrowing_limit": "borrowingLimit",
    "lending_limit": "lendingLimit",
    "within_cluster_queue": "withinClusterQueue",
    "reclaim_within_cohort": "reclaimWithinCohort",
    "borrow_within_cohort": "borrowWithinCohort",
    "max_priority_threshold": "maxPriorityThreshold",
    "when_can_borrow": "whenCanBorrow",
    "when_can_preempt": "whenCanPreempt",
}
_FLAVOR_PATHS: Final = {
    "name": "metadata.name",
    "node_labels": "spec.nodeLabels",
    "node_taints": "spec.nodeTaints",
    "tolerations": "spec.tolerations",
    "topology_name": "spec.topologyName",
}
_COHORT_PATHS: Final = {
    "name": "metadata.name",
    "parent": "spec.parentName",
    "resource_groups": "spec.resourceGroups",
    "fair_sharing": "spec.fairSharing",
}
_LOCAL_QUEUE_PATHS: Final = {
    "name": "metadata.name",
    "namespace": "metadata.namespace",
    "cluster_queue": "spec.clusterQueue",
    "stop_policy": "spec.stopPolicy",
    "fair_sharing": "spec.fairSharing",
}
_PRIORITY_CLASS_PATHS: Final = {"name": "metadata.name"}


def _queue_paths(cohort_field: str) -> dict[str, str]:
    return {
        "name": "metadata.name",
        "cohort": f"spec.{cohort_field}",
        "resource_groups": "spec.resourceGroups",
        "queueing_strategy": "spec.queueingStrategy",
        "preemption": "spec.preemption",
        "flavor_fungibility": "spec.flavorFungibility",
        "fair_sharing": "spec.fairSharing",
        "namespace_selector": "spec.namespaceSelector.matchLabels",
        "namespace_match_expressions": "spec.namespaceSelector.matchExpressions",
        "stop_policy": "spec.stopPolicy",
        "admission_fair_sharing": "spec.admissionScope.admissionMode",
    }


def _build(
    check: _Checker, model: type[_Model], data: dict[str, Any], paths: Mapping[str, str]
) -> _Model | None:
    """Construct the domain object; its own rules (e.g. flavors listing exactly the covered
    resources) become errors at the YAML path of the offending field."""
    if check.errors:
        return None
    try:
        obj = model.model_validate(data)
    except pydantic.ValidationError as exc:
        for err in exc.errors(include_url=False):
            yaml_path = _yaml_path(tuple(err.get("loc", ())), paths)
            message = str(err.get("msg", "invalid value")).removeprefix("Value error, ")
            check.errors.append(check.document.error(message, yaml_path, kind=check.kind, name=check.name))
        return None
    return obj


def _yaml_path(loc: tuple[int | str, ...], paths: Mapping[str, str]) -> str:
    """A pydantic error location on a domain model as the field path of the Kueue document.

    The first element is a top-level domain field (``paths`` says where it lives in the manifest);
    nested fields are renamed from snake_case to Kueue's camelCase.
    """
    if not loc:
        return ""
    head, *rest = loc
    parts: list[str | int] = list(paths.get(str(head), str(head)).split("."))
    for part in rest:
        parts.append(part if isinstance(part, int) else _NESTED_FIELDS.get(part, part))
    return format_path(parts)


# --------------------------------------------------------------------------------------------
# Dumping
# --------------------------------------------------------------------------------------------


def to_documents(config: QueueConfig, api_version: str = API_V1BETA2) -> list[dict[str, Any]]:
    """The configuration as Kueue manifests (plain dicts), in a stable order.

    Order: flavors, cohorts, ClusterQueues, LocalQueues, priority classes, each sorted by name
    (LocalQueues by namespace, then name). Quantities are strings in Kubernetes notation
    (``64Gi``, ``8``, ``500m``). Every manifest is checked against the CRD schema and the rules the
    loader enforces, so the output always loads back (an object that Kueue cannot express, e.g. a
    ``borrowing_limit`` on a ClusterQueue without cohort, raises ``ValidationErrors``).
    """
    if api_version not in SUPPORTED_API_VERSIONS:
        raise ValidationError(
            f"unsupported apiVersion {api_version!r}: expected " + " or ".join(SUPPORTED_API_VERSIONS),
            path="api_version",
        )
    version = api_version.split("/", 1)[1]
    documents: list[dict[str, Any]] = []
    documents.extend(_dump_flavor(config.flavors[n], api_version) for n in sorted(config.flavors))
    documents.extend(_dump_cohort(config.cohorts[n], api_version) for n in sorted(config.cohorts))
    documents.extend(
        _dump_cluster_queue(config.cluster_queues[n], api_version, version)
        for n in sorted(config.cluster_queues)
    )
    documents.extend(
        _dump_local_queue(config.local_queues[k], api_version) for k in sorted(config.local_queues)
    )
    documents.extend(
        _dump_priority_class(config.priority_classes[n], api_version) for n in sorted(config.priority_classes)
    )
    errors: list[ValidationError] = []
    for index, manifest in enumerate(documents):
        try:
            parse_document(YamlDocument(data=manifest, source="<dump>", index=index, start_line=0))
        except ValidationErrors as exc:
            errors.extend(exc.errors)
    if errors:
        raise ValidationErrors(errors)
    return documents


def dump_queue_config(config: QueueConfig, api_version: str = API_V1BETA2) -> str:
    """The configuration as a multi-document Kueue YAML stream (see :func:`to_documents`)."""
    return yaml.dump_all(
        to_documents(config, api_version),
        Dumper=_SAFE_DUMPER,
        sort_keys=False,
        explicit_start=True,
        default_flow_style=False,
        allow_unicode=True,
        width=110,
    )


def _manifest(api_version: str, kind: str, metadata: dict[str, Any], **rest: Any) -> dict[str, Any]:
    return {"apiVersion": api_version, "kind": kind, "metadata": metadata, **rest}


def _dump_fair_sharing(spec: dict[str, Any], fair: FairSharing) -> None:
    if fair.weight != _DEFAULT_WEIGHT:
        spec["fairSharing"] = {"weight": format_quantity(fair.weight)}


def _dump_resource_groups(groups: Iterable[ResourceGroup]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for group in groups:
        flavors = []
        for flavor in group.flavors:
            resources = []
            for quota in flavor.resources:
                item: dict[str, Any] = {
                    "name": quota.name,
                    "nominalQuota": format_quantity(quota.nominal_quota, quota.name),
                }
                if quota.borrowing_limit is not None:
                    item["borrowingLimit"] = format_quantity(quota.borrowing_limit, quota.name)
                if quota.lending_limit is not None:
                    item["lendingLimit"] = format_quantity(quota.lending_limit, quota.name)
                resources.append(item)
            flavors.append({"name": flavor.name, "resources": resources})
        out.append({"coveredResources": list(group.covered_resources), "flavors": flavors})
    return out


def _dump_flavor(flavor: ResourceFlavor, api_version: str) -> dict[str, Any]:
    spec: dict[str, Any] = {}
    if flavor.node_labels:
        spec["nodeLabels"] = dict(flavor.node_labels)
    if flavor.node_taints:
        spec["nodeTaints"] = [dict(t) for t in flavor.node_taints]
    if flavor.tolerations:
        spec["tolerations"] = [_dump_toleration(t) for t in flavor.tolerations]
    if flavor.topology_name is not None:
        spec["topologyName"] = flavor.topology_name
    return _manifest(api_version, "ResourceFlavor", {"name": flavor.name}, spec=spec)


def _dump_toleration(toleration: Mapping[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = dict(toleration)
    seconds = out.get("tolerationSeconds")
    if isinstance(seconds, str) and re.fullmatch(r"-?\d+", seconds):
        out["tolerationSeconds"] = int(seconds)
    return out


def _dump_cohort(cohort: Cohort, api_version: str) -> dict[str, Any]:
    spec: dict[str, Any] = {}
    if cohort.parent is not None:
        spec["parentName"] = cohort.parent
    if cohort.resource_groups:
        spec["resourceGroups"] = _dump_resource_groups(cohort.resource_groups)
    _dump_fair_sharing(spec, cohort.fair_sharing)
    return _manifest(api_version, "Cohort", {"name": cohort.name}, spec=spec)


def _dump_cluster_queue(queue: ClusterQueue, api_version: str, version: str) -> dict[str, Any]:
    spec: dict[str, Any] = {}
    if queue.cohort is not None:
        spec["cohort" if version == "v1beta1" else "cohortName"] = queue.cohort
    selector: dict[str, Any] = {}
    if queue.namespace_selector is not None:
        selector["matchLabels"] = dict(queue.namespace_selector)
    if queue.namespace_match_expressions:
        selector["matchExpressions"] = [
            {"key": e.key, "operator": e.operator, **({"values": list(e.values)} if e.values else {})}
            for e in queue.namespace_match_expressions
        ]
    spec["namespaceSelector"] = selector
    spec["queueingStrategy"] = queue.queueing_strategy.value
    spec["resourceGroups"] = _dump_resource_groups(queue.resource_groups)
    if queue.preemption != ClusterQueuePreemption():
        preemption = queue.preemption
        borrow: dict[str, Any] = {"policy": preemption.borrow_within_cohort.policy.value}
        if preemption.borrow_within_cohort.max_priority_threshold is not None:
            borrow["maxPriorityThreshold"] = preemption.borrow_within_cohort.max_priority_threshold
        spec["preemption"] = {
            "withinClusterQueue": preemption.within_cluster_queue.value,
            "reclaimWithinCohort": preemption.reclaim_within_cohort.value,
            "borrowWithinCohort": borrow,
        }
    if queue.flavor_fungibility != FlavorFungibility():
        fungibility = queue.flavor_fungibility
        spec["flavorFungibility"] = {
            "whenCanBorrow": fungibility.when_can_borrow.value,
            "whenCanPreempt": fungibility.when_can_preempt.value,
        }
        if fungibility.preference is not None:
            spec["flavorFungibility"]["preference"] = fungibility.preference.value
    _dump_fair_sharing(spec, queue.fair_sharing)
    if queue.stop_policy is not StopPolicy.NONE:
        spec["stopPolicy"] = queue.stop_policy.value
    if queue.admission_fair_sharing:
        spec["admissionScope"] = {"admissionMode": "UsageBasedAdmissionFairSharing"}
    return _manifest(api_version, "ClusterQueue", {"name": queue.name}, spec=spec)


def _dump_local_queue(queue: LocalQueue, api_version: str) -> dict[str, Any]:
    spec: dict[str, Any] = {"clusterQueue": queue.cluster_queue}
    if queue.stop_policy is not StopPolicy.NONE:
        spec["stopPolicy"] = queue.stop_policy.value
    _dump_fair_sharing(spec, queue.fair_sharing)
    return _manifest(api_version, "LocalQueue", {"name": queue.name, "namespace": queue.namespace}, spec=spec)


def _dump_priority_class(priority_class: WorkloadPriorityClass, api_version: str) -> dict[str, Any]:
    manifest = _manifest(api_version, "WorkloadPriorityClass", {"name": priority_class.name})
    manifest["value"] = priority_class.value
    if priority_class.description:
        manifest["description"] = priority_class.description
    return manifest
