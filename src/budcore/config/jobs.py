"""budcore Job documents in YAML, Kubernetes-style.

::

    apiVersion: budcore.io/v1alpha1
    kind: Job
    metadata:
      name: train-llama          # the job's name (and id unless spec.id is given)
      namespace: research        # the tenant
      labels: {team: nlp}
    spec:                        # any field of budcore.domain.job.Job, snake_case
      job_type: training
      local_queue: training
      priority: high
      estimated_duration: 3600   # seconds, or ISO 8601 (PT1H)
      time_window: {start: "22:00", end: "06:00", timezone: Europe/Berlin}
      request:
        accelerator_type: nvidia-h100-80gb
        pod_sets:
          - {name: workers, count: 4, resources: {nvidia.com/gpu: 8, cpu: 64, memory: 512Gi}}

A time window may instead be given as the annotation ``budcore.io/time-window: "22:00-06:00
Europe/Berlin"`` (``; must-finish`` for ``must_finish_in_window``): the form a Kubernetes object
carries it in, since Kueue has no field for it. Giving both is an error.

Errors name the file, the line and the field path (``spec.request.pod_sets[0].count``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from budcore.config.yamlsource import YamlDocument, load_yaml_documents
from budcore.domain.errors import ValidationError, ValidationErrors
from budcore.domain.job import Job
from budcore.domain.timewindow import WINDOW_ANNOTATION, TimeWindow, window_from_annotation
from budcore.domain.validation import validate_model

API_GROUP = "budcore.io"
API_VERSION = f"{API_GROUP}/v1alpha1"
_METADATA_FIELDS = {"name", "namespace", "labels", "annotations", "uid", "resourceVersion", "generation"}
# Job fields a document sets in metadata only (name, namespace as tenant, labels).
_METADATA_ONLY = ("name", "tenant", "labels")
# Stands in for a missing metadata.name or namespace (already an error) while the rest is checked.
_PLACEHOLDER = "unnamed"


def is_job_document(data: object) -> bool:
    """Whether a parsed document claims to be a budcore Job."""
    return (
        isinstance(data, Mapping)
        and str(data.get("apiVersion", "")).startswith(f"{API_GROUP}/")
        and data.get("kind") == "Job"
    )


def job_from_document(document: YamlDocument) -> Job:
    """Validate one Job document into a :class:`Job`; every problem is reported at once.

    The document's shape (apiVersion, metadata, which field goes where) and the Job's own fields
    are checked in the same run, so a missing namespace does not hide a bad pod set.
    """
    data = document.data
    if not isinstance(data, Mapping):
        raise ValidationErrors([document.error("a Job document is a mapping", "")])
    errors: list[ValidationError] = []
    metadata, spec, window = _check_shape(document, data, errors)
    job = _validate_job(document, metadata, spec, window, errors) if spec is not None else None
    if errors or job is None:
        raise ValidationErrors(errors)
    return job


def _check_shape(
    document: YamlDocument, data: Mapping[str, Any], errors: list[ValidationError]
) -> tuple[Mapping[str, Any], Mapping[str, Any] | None, TimeWindow | None]:
    """The Kubernetes-object part of a Job document: metadata, its spec (``None`` when it is not
    a mapping, so there are no fields to check) and the annotated time window."""

    def fail(message: str, path: str) -> None:
        errors.append(document.error(message, path, kind="Job"))

    if data.get("apiVersion") != API_VERSION:
        fail(f"unsupported apiVersion {data.get('apiVersion')!r}; expected {API_VERSION}", "apiVersion")
    for key in data:
        if key not in ("apiVersion", "kind", "metadata", "spec", "status"):
            fail("unknown field", str(key))
    metadata = data.get("metadata")
    spec = data.get("spec", {})
    if not isinstance(metadata, Mapping):
        fail("metadata with name and namespace is required", "metadata")
        metadata = {}
    if not isinstance(spec, Mapping):
        fail("spec must be a mapping", "spec")
        spec = None
    for key in metadata:
        if key not in _METADATA_FIELDS:
            fail("unknown metadata field", f"metadata.{key}")
    for required in ("name", "namespace"):
        if not metadata.get(required):
            fail(f"metadata.{required} is required", f"metadata.{required}")
    for key in _METADATA_ONLY:
        if spec is not None and key in spec:
            fail(f"set {key} in metadata, not in spec", f"spec.{key}")
    window = _annotated_window(metadata, spec or {}, fail)
    return metadata, spec, window


def _validate_job(
    document: YamlDocument,
    metadata: Mapping[str, Any],
    spec: Mapping[str, Any],
    window: TimeWindow | None,
    errors: list[ValidationError],
) -> Job | None:
    """The Job of the document's fields; its problems go to ``errors``, except where the shape
    check already reported (a missing name is not also "not a valid string").

    A missing name or namespace (already reported) is replaced by a placeholder, so the checks
    that need every field valid (``estimated_duration`` against ``max_duration``) still run.
    """
    fields: dict[str, Any] = {k: v for k, v in spec.items() if k not in _METADATA_ONLY}
    if window is not None:
        fields["time_window"] = window
    fields["name"] = metadata.get("name") or _PLACEHOLDER
    fields["tenant"] = metadata.get("namespace") or _PLACEHOLDER
    fields.setdefault("id", fields["name"])
    if "labels" in metadata:
        fields["labels"] = metadata["labels"]
    try:
        return validate_model(Job, fields, prefix="spec", source=document.source, line_of=document.line_of)
    except ValidationError as exc:
        reported = {error.path for error in errors}
        name = metadata.get("name") if isinstance(metadata.get("name"), str) else None
        relocated = (_relocate(error, document, name) for error in _flatten(exc))
        errors.extend(error for error in relocated if error.path not in reported)
        return None


def _flatten(error: ValidationError) -> list[ValidationError]:
    return list(error.errors) if isinstance(error, ValidationErrors) else [error]


def _annotated_window(
    metadata: Mapping[str, Any], spec: Mapping[str, Any], fail: Callable[[str, str], None]
) -> TimeWindow | None:
    """The window of the ``budcore.io/time-window`` annotation, if there is one."""
    annotations = metadata.get("annotations")
    if not isinstance(annotations, Mapping) or WINDOW_ANNOTATION not in annotations:
        return None
    path = f"metadata.annotations[{WINDOW_ANNOTATION}]"
    if "time_window" in spec:
        fail("the window is given twice: keep spec.time_window or the annotation", path)
        return None
    try:
        return window_from_annotation(annotations[WINDOW_ANNOTATION], path)
    except ValidationError as exc:
        fail(exc.message, path)
        return None


def _relocate(error: ValidationError, document: YamlDocument, name: str | None) -> ValidationError:
    """Point errors about fields that live in metadata at metadata, where the user wrote them."""
    path = error.path
    for field, target in (("spec.name", "metadata.name"), ("spec.tenant", "metadata.namespace")):
        if path == field or path.startswith(field + "."):
            path = target + path[len(field) :]
    return document.error(error.message, path, kind="Job", name=name)


def load_jobs(*sources: str | Path) -> list[Job]:
    """Every Job document of the given files or directories (other documents are an error)."""
    jobs: list[Job] = []
    errors: list[ValidationError] = []
    documents: list[YamlDocument] = []
    for source in sources:
        documents.extend(load_yaml_documents(Path(source)))
    for job, error in _each(documents):
        if error is not None:
            errors.extend(error.errors if isinstance(error, ValidationErrors) else [error])
        elif job is not None:
            jobs.append(job)
    if errors:
        raise ValidationErrors(errors)
    return jobs


def _each(documents: Iterable[YamlDocument]) -> Iterable[tuple[Job | None, ValidationError | None]]:
    for document in documents:
        if not is_job_document(document.data):
            yield (
                None,
                document.error("not a budcore Job document (apiVersion budcore.io/v1alpha1, kind Job)"),
            )
            continue
        try:
            yield job_from_document(document), None
        except ValidationError as exc:
            yield None, exc
