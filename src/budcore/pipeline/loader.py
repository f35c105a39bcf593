"""Pipelines from YAML (or JSON) files, with every problem reported by file, line and field.

Three shapes are read, one per document:

- a **budcore document**, Kubernetes-style, as budcore's Job documents
  (:mod:`budcore.config.jobs`)::

      apiVersion: budcore.io/v1alpha1
      kind: Pipeline
      metadata:
        name: deploy-enterprise-rag     # the pipeline id
        namespace: research             # the tenant
        labels: {team: platform}
      spec:                             # every other field of PipelineSpec
        version: 1
        on_failure: fail_fast
        parameters: {llm_model: meta-llama/Llama-3.3-70B-Instruct}
        steps: [...]

- **plain YAML**: the fields of :class:`~budcore.pipeline.model.PipelineSpec` at the top level
  (``id``, ``steps``, ...);
- the **seeds' JSON** (unified architecture §5.2.2): ``{"pipeline": {...}, "steps": [...]}``, with
  ``step_type``, ``condition`` and ``trigger_type`` spelled as there (``name`` of the pipeline
  becomes its id when it has none).

A file that parses is then checked as a whole (:func:`budcore.pipeline.dag.build_graph`): cycles,
unknown or duplicate steps, and reads of another step's outputs without a dependency path.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from budcore.config.yamlsource import YamlDocument, load_yaml_documents, load_yaml_text
from budcore.domain import jsontext
from budcore.domain.errors import ValidationError, ValidationErrors
from budcore.domain.validation import validate_model
from budcore.pipeline.dag import PipelineGraph, build_graph
from budcore.pipeline.model import PipelineSpec, StepType

__all__ = [
    "API_VERSION",
    "is_pipeline_document",
    "load_pipeline",
    "load_pipelines",
    "pipeline_from_data",
    "validate_document",
]

API_VERSION = "budcore.io/v1alpha1"
_TAGS = "|".join(t.value for t in StepType)
# The tagged union of step configs puts the type in error paths (``config.job.gpu_count``): drop it.
_TAG_IN_PATH = re.compile(rf"(config)\.(?:{_TAGS})(?=\.|$)")


def is_pipeline_document(data: object) -> bool:
    """Whether a parsed document claims to be a pipeline (any of the three shapes)."""
    if not isinstance(data, Mapping):
        return False
    if data.get("kind") == "Pipeline" and str(data.get("apiVersion", "")).startswith("budcore.io/"):
        return True
    return isinstance(data.get("steps"), list) and ("id" in data or isinstance(data.get("pipeline"), Mapping))


def _normalise(
    data: Mapping[str, Any], document: YamlDocument | None
) -> tuple[dict[str, Any], dict[str, str]]:
    """The plain PipelineSpec fields of any shape, and how their paths map back to the document."""
    if data.get("kind") == "Pipeline":
        metadata = data.get("metadata") or {}
        spec = data.get("spec") or {}
        if not isinstance(metadata, Mapping) or not isinstance(spec, Mapping):
            raise ValidationError("metadata and spec must be mappings", path="spec")
        unknown = sorted(set(data) - {"apiVersion", "kind", "metadata", "spec"})
        if unknown:
            raise ValidationError(f"unknown top-level fields {unknown}", path=unknown[0])
        if data.get("apiVersion") != API_VERSION:
            raise ValidationError(f"apiVersion must be {API_VERSION!r}", path="apiVersion")
        plain: dict[str, Any] = dict(spec)
        for key, field in (("name", "id"), ("namespace", "tenant"), ("labels", "labels")):
            if key in metadata:
                if field in plain:
                    raise ValidationError(
                        f"give {field!r} once: metadata.{key} or spec.{field}", path=f"spec.{field}"
                    )
                plain[field] = metadata[key]
        moved = {"id": "metadata.name", "tenant": "metadata.namespace", "labels": "metadata.labels"}
        return plain, {"": "spec", **moved}
    if isinstance(data.get("pipeline"), Mapping):
        head = dict(data["pipeline"])
        head.pop("status", None)
        if "trigger_type" in head:
            head["trigger"] = {"type": head.pop("trigger_type"), **_trigger_extras(head)}
        if "timeout_seconds" in head:
            head["timeout"] = head.pop("timeout_seconds")
        if not _ID.match(str(head.get("id", ""))) and head.get("name"):
            head["id"] = head["name"]
        extra = sorted(set(data) - {"pipeline", "steps"})
        if extra:
            raise ValidationError(f"unknown top-level fields {extra}", path=extra[0])
        return {**head, "steps": data.get("steps")}, {"": "pipeline", "steps": "steps"}
    return dict(data), {}


_ID = re.compile(r"^[a-z0-9]([-a-z0-9_.]{0,251}[a-z0-9])?$")


def _trigger_extras(head: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if "cron_expression" in head:
        cron = head.pop("cron_expression")
        if cron is not None:
            out["cron"] = cron
    if "triggered_by_pipeline_id" in head:
        other = head.pop("triggered_by_pipeline_id")
        if other is not None:
            out["pipeline"] = other
    head.pop("event_config", None)
    return out


def _document_path(path: str, moved: Mapping[str, str]) -> str:
    """Where a PipelineSpec field path sits in the original document."""
    path = _TAG_IN_PATH.sub(r"\1", path)
    if not moved:
        return path
    head = path.split(".", 1)[0].split("[", 1)[0]
    if head in moved:
        return moved[head] + path[len(head) :]
    prefix = moved.get("")
    return f"{prefix}.{path}" if prefix and path else (prefix or path)


def pipeline_from_data(
    data: Any, *, source: str | None = None, document: YamlDocument | None = None
) -> tuple[PipelineSpec, PipelineGraph]:
    """Validate one pipeline (any shape) and its graph; ``ValidationErrors`` lists every problem."""
    if not isinstance(data, Mapping):
        raise ValidationError(
            "a pipeline must be a mapping", source=source, line=document.start_line if document else None
        )

    def line_of(path: str) -> int | None:
        return document.line_of(path) if document is not None else None

    def locate(error: ValidationError, moved: Mapping[str, str]) -> ValidationError:
        path = _document_path(error.path, moved)
        return ValidationError(error.message, path=path, source=source, line=line_of(path))

    try:
        plain, moved = _normalise(data, document)
    except ValidationError as exc:
        raise ValidationErrors([locate(exc, {})]) from None
    try:
        spec = validate_model(PipelineSpec, plain)
    except ValidationErrors as exc:
        typed_steps = {e.path.split(".")[0] for e in exc.errors if e.path.endswith(".type")}
        errors = [
            locate(e, moved)
            for e in exc.errors
            if not (e.path.endswith(".config") and e.path.rsplit(".", 1)[0] in typed_steps)
        ]
        raise ValidationErrors(errors) from None
    except ValidationError as exc:
        raise ValidationErrors([locate(exc, moved)]) from None
    index = {step.id: i for i, step in enumerate(spec.steps)}
    try:
        graph = build_graph(spec)
    except ValidationErrors as exc:
        raise ValidationErrors([locate(_indexed(e, index), moved) for e in exc.errors]) from None
    return spec, graph


def _indexed(error: ValidationError, index: Mapping[str, int]) -> ValidationError:
    """Graph errors name steps by id (``steps[deploy-llm].when``); files are read by index."""
    match = re.match(r"steps\[([^\]]+)\]", error.path)
    if match and match.group(1) in index:
        path = f"steps[{index[match.group(1)]}]" + error.path[match.end() :]
        return ValidationError(error.message, path=path)
    return error


def load_pipelines(source: str | Path) -> list[tuple[PipelineSpec, PipelineGraph]]:
    """Every pipeline in a file (YAML or JSON; several YAML documents allowed) or a YAML string."""
    if isinstance(source, Path) and source.suffix == ".json":
        return [_from_json(source)]
    documents = load_yaml_documents(source) if isinstance(source, Path) else load_yaml_text(source)
    results: list[tuple[PipelineSpec, PipelineGraph]] = []
    errors: list[ValidationError] = []
    for document in documents:
        if document.data is None:
            continue
        try:
            results.append(pipeline_from_data(document.data, source=document.source, document=document))
        except ValidationErrors as exc:
            errors.extend(exc.errors)
    if errors:
        raise ValidationErrors(errors)
    if not results:
        raise ValidationError("no pipeline in this file", source=str(source))
    return results


def _from_json(path: Path) -> tuple[PipelineSpec, PipelineGraph]:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise ValidationError(f"cannot read: {exc}", source=str(path)) from None
    try:
        data = jsontext.loads(text)
    except json.JSONDecodeError as exc:
        raise ValidationError(f"not JSON: {exc.msg}", source=str(path), line=exc.lineno) from None
    return pipeline_from_data(data, source=str(path))


def load_pipeline(source: str | Path) -> tuple[PipelineSpec, PipelineGraph]:
    """The one pipeline of a file; a file with several is an error naming how many."""
    pipelines = load_pipelines(source)
    if len(pipelines) > 1:
        ids = ", ".join(spec.id for spec, _ in pipelines)
        raise ValidationError(f"{len(pipelines)} pipelines in one file ({ids}): give one", source=str(source))
    return pipelines[0]


def validate_document(document: YamlDocument) -> str | None:
    """``budcore validate`` support: a pipeline document (any shape) is checked whole; another
    kind of document is not this validator's (``None``)."""
    if not is_pipeline_document(document.data):
        return None
    spec, graph = pipeline_from_data(document.data, source=document.source, document=document)
    return f"pipeline {spec.id!r} v{spec.version} ({len(graph.order)} steps)"
