"""``budcore validate FILE...``: check YAML files before anything uses them.

Each document is routed by what it claims to be: Kueue objects (``kueue.x-k8s.io``, checked
against Kueue's CRD schemas and as one configuration, so references between files resolve),
budcore Jobs (``budcore.io/v1alpha1``), and whatever plugins validate (the simulator registers
scenario files). Every problem of every file is reported in one run, each with file, line and
field path: schema problems and cross-reference problems together, each reported once.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.text import Text

from budcore.cli.output import plain_console
from budcore.config.jobs import is_job_document, job_from_document
from budcore.config.kueue import SUPPORTED_KINDS, is_kueue_document, queue_config_from_documents
from budcore.config.yamlsource import YamlDocument, collect_yaml_documents
from budcore.domain.errors import ValidationError, ValidationErrors
from budcore.plugins import default_registry


def _flatten(error: ValidationError) -> list[ValidationError]:
    return list(error.errors) if isinstance(error, ValidationErrors) else [error]


def _names_kueue_kind(data: object) -> bool:
    """Whether a document no validator claimed is a Kueue object with a broken ``apiVersion``.

    It goes to the Kueue check, which says what is wrong with the apiVersion and, more
    importantly, still counts the object: references to it are then not reported as missing.
    """
    return isinstance(data, Mapping) and isinstance(data.get("kind"), str) and data["kind"] in SUPPORTED_KINDS


def validate_paths(paths: list[Path], warnings: list[str] | None = None) -> list[str]:
    """Validate every document under ``paths``; returns what was checked or raises ``ValidationErrors``.

    Every problem is reported in one run: a broken file or document never stops the checks of the
    others, and the Kueue documents are cross-checked even when some of them are invalid. Kueue
    fields that load but that budcore does not honour (``QueueConfig.ignored_fields``) are appended
    to ``warnings``, one line each with file and line, when a list is given.
    """
    documents, unreadable = collect_yaml_documents(*paths)
    checked: list[str] = []
    errors: list[ValidationError] = []
    kueue: list[YamlDocument] = []
    validators: list[Callable[[YamlDocument], Any]] = [
        r.factory for r in default_registry().registrations("validator")
    ]
    for document in documents:
        if is_kueue_document(document.data):
            kueue.append(document)
        elif is_job_document(document.data):
            _check_job(document, checked, errors)
        elif _run_validators(validators, document, checked, errors):
            continue
        elif _names_kueue_kind(document.data):
            kueue.append(document)
        else:
            errors.append(
                document.error(
                    "not a document budcore knows: expected a Kueue object (apiVersion kueue.x-k8s.io/...), "
                    "a budcore Job (apiVersion budcore.io/v1alpha1) or a simulation scenario"
                )
            )
    if kueue:
        # The unreadable inputs go along: they may define objects the documents refer to.
        _check_kueue(kueue, unreadable, checked, errors, warnings)
    else:
        errors = [*unreadable, *errors]  # on one line, the reading problem comes first (stable sort)
    if errors:
        raise ValidationErrors(sorted(_distinct(errors), key=lambda e: (e.source or "", e.line or 0, e.path)))
    return checked


def _distinct(errors: list[ValidationError]) -> list[ValidationError]:
    """Each problem once: a scenario's queues file is also checked as Kueue documents when it is
    among the validated files, and both checks report its problems."""
    seen: dict[tuple[str | None, int | None, str, str], ValidationError] = {}
    for error in errors:
        seen.setdefault((error.source, error.line, error.path, str(error)), error)
    return list(seen.values())


def _check_job(document: YamlDocument, checked: list[str], errors: list[ValidationError]) -> None:
    try:
        job = job_from_document(document)
        checked.append(f"Job {job.tenant}/{job.name}")
    except ValidationError as exc:
        errors.extend(_flatten(exc))


def _run_validators(
    validators: list[Callable[[YamlDocument], Any]],
    document: YamlDocument,
    checked: list[str],
    errors: list[ValidationError],
) -> bool:
    """Offer the document to the plugins' validators; whether one of them claimed it."""
    for validator in validators:
        try:
            described = validator(document)
        except ValidationError as exc:
            errors.extend(_flatten(exc))
            return True
        if described is not None:
            checked.append(str(described))
            return True
    return False


def _check_kueue(
    documents: list[YamlDocument],
    unreadable: list[ValidationError],
    checked: list[str],
    errors: list[ValidationError],
    warnings: list[str] | None,
) -> None:
    try:
        config = queue_config_from_documents(documents, unreadable=unreadable)
    except ValidationError as exc:
        errors.extend(_flatten(exc))
        return
    counts = (
        f"{len(config.flavors)} ResourceFlavor(s), {len(config.cohorts)} Cohort(s), "
        f"{len(config.cluster_queues)} ClusterQueue(s), {len(config.local_queues)} LocalQueue(s), "
        f"{len(config.priority_classes)} WorkloadPriorityClass(es)"
    )
    checked.append(f"Kueue configuration: {counts}")
    if warnings is not None:
        warnings.extend(str(ignored) for ignored in config.ignored_fields)


def register(app: typer.Typer) -> None:
    @app.command()
    def validate(
        files: Annotated[list[Path], typer.Argument(help="YAML files or directories to check.")],
    ) -> None:
        """Check Kueue objects, budcore Jobs and scenarios; report every error with file, line and field."""
        warnings: list[str] = []
        checked = validate_paths(files, warnings)
        console = plain_console(soft_wrap=True)  # names come from the files: printed verbatim
        for line in checked:
            console.print(Text.assemble(("ok", "green"), f" {line}"), highlight=False)
        notes = plain_console(stderr=True, soft_wrap=True)
        for line in warnings:
            notes.print(Text.assemble(("warning:", "bold yellow"), f" {line}"), highlight=False)
        if not checked:
            console.print("no documents found", highlight=False)
