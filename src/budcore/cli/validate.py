"""``budcore validate PATH...``: check YAML files before anything uses them.

Each file is its own configuration and gets its own result line: ``ok: FILE: what was checked``,
or ``invalid: FILE: N problem(s)`` followed by every problem as ``file:line: field: message``. A
directory stands for its YAML files, each checked on its own, and for its scenario directories; with
``--merge`` all the files form one configuration instead, so references between files resolve
(a ClusterQueue in one, its ResourceFlavors in another). A *scenario directory* (a folder with a
``scenario.yaml``, as ``simulator/scenarios/*``) is checked as one scenario through the ``scenario``
validator a plugin registers (``budcore_register_validators``), which loads the files it names.
The exit status is 2 when any configuration is invalid.

Each document is routed by what it claims to be: Kueue objects (``kueue.x-k8s.io``, checked
against Kueue's CRD schemas and as one configuration, so references within it resolve), budcore
Jobs (``budcore.io/v1alpha1``), and whatever plugins validate (the simulator registers scenario
files, the core pipelines). Every problem of a configuration is reported in one run: schema
problems and cross-reference problems together, each reported once.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Final

import typer
from rich.text import Text

from budcore.cli.output import FORMAT_HELP, output_format, plain_console
from budcore.config.jobs import is_job_document, job_from_document
from budcore.config.kueue import SUPPORTED_KINDS, is_kueue_document, queue_config_from_documents
from budcore.config.yamlsource import YamlDocument, collect_yaml_documents, iter_yaml_files
from budcore.domain.errors import BudcoreError, ValidationError, ValidationErrors
from budcore.plugins import default_registry

#: The file that makes a directory a scenario directory.
SCENARIO_FILE: Final = "scenario.yaml"


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


# One result per configuration --------------------------------------------------------------------
@dataclass
class Target:
    """What one result line is about: a file, a scenario directory, or the files ``--merge`` joins."""

    label: str
    kind: str  # "file", "scenario" or "merged"
    paths: list[Path]


@dataclass
class Result:
    target: Target
    checked: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    errors: list[ValidationError] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors


def is_scenario_dir(path: Path) -> bool:
    """A folder with a ``scenario.yaml`` (the layout of ``simulator/scenarios/*``)."""
    return path.is_dir() and (path / SCENARIO_FILE).is_file()


def targets(paths: list[Path], *, merge: bool = False) -> list[Target]:
    """The configurations ``paths`` name, in order: each file on its own (all of them as one with
    ``merge``); a directory stands for its YAML files and its scenario directories; a scenario
    directory is one scenario. A path that does not exist is a file target (it is reported)."""
    found: list[Target] = []
    for path in paths:
        if is_scenario_dir(path):
            found.append(Target(str(path), "scenario", [path / SCENARIO_FILE]))
        elif path.is_dir():
            files = iter_yaml_files(path)
            scenarios = sorted(p for p in path.iterdir() if is_scenario_dir(p))
            if not files and not scenarios:
                found.append(Target(str(path), "file", [path]))  # reported: no YAML files
            found += [Target(str(f), "file", [f]) for f in files]
            found += [Target(str(d), "scenario", [d / SCENARIO_FILE]) for d in scenarios]
        else:
            found.append(Target(str(path), "file", [path]))
    if merge:
        singles = [t for t in found if t.kind == "file"]
        if len(singles) > 1:
            label = f"{len(singles)} files merged ({', '.join(t.label for t in singles)})"
            merged = Target(label, "merged", [p for t in singles for p in t.paths])
            found = [merged, *(t for t in found if t.kind != "file")]
    return found


def check(target: Target) -> Result:
    """Validate one configuration; problems are collected in the result, never raised."""
    result = Result(target)
    try:
        if target.kind == "scenario":
            result.checked = _check_scenario(target.paths[0])
        else:
            result.checked = validate_paths(target.paths, result.warnings)
    except ValidationError as exc:
        result.errors = _flatten(exc)
    except BudcoreError as exc:  # e.g. a plugin's validator that cannot run: this target only
        result.errors = [ValidationError(str(exc), source=target.label)]
    return result


def _check_scenario(path: Path) -> list[str]:
    """``scenario.yaml`` through the ``scenario`` validator (which loads the files it names)."""
    documents, unreadable = collect_yaml_documents(path)
    if unreadable:
        raise ValidationErrors(unreadable)
    registration = default_registry().get("validator", "scenario")
    if registration is None:
        raise ValidationError(
            "a scenario directory, but no 'scenario' validator is registered (is the budcore "
            "simulator plugin installed? `budcore plugins` lists what failed to load)",
            source=str(path),
        )
    checked: list[str] = []
    errors: list[ValidationError] = []
    for document in documents:
        if not _run_validators([registration.factory], document, checked, errors):
            errors.append(
                document.error("not a simulation scenario (it needs workload, and fleet or queues)")
            )
    if errors:
        raise ValidationErrors(errors)
    return checked or ["no documents found"]


def _problem(error: ValidationError) -> dict[str, Any]:
    return {
        "source": error.source,
        "line": error.line,
        "path": error.path,
        "message": error.message,
        "text": str(error),
    }


def _print(results: list[Result], fmt: str) -> None:
    invalid = [r for r in results if not r.ok]
    out = plain_console(soft_wrap=True)  # names come from the files: printed verbatim
    if fmt == "json":
        files = [
            {
                "file": r.target.label,
                "kind": r.target.kind,
                "paths": [str(p) for p in r.target.paths],
                "ok": r.ok,
                "checked": r.checked,
                "warnings": r.warnings,
                "errors": [_problem(e) for e in r.errors],
            }
            for r in results
        ]
        out.print_json(json.dumps({"ok": not invalid, "files": files}))
        return
    err = plain_console(stderr=True, soft_wrap=True)  # never wrap: file:line must stay greppable
    for r in results:
        if r.ok:
            what = "; ".join(r.checked) if r.checked else "no documents found"
            out.print(Text.assemble(("ok:", "green"), f" {r.target.label}: {what}"), highlight=False)
        else:
            err.print(
                Text.assemble(("invalid:", "bold red"), f" {r.target.label}: {len(r.errors)} problem(s)"),
                highlight=False,
            )
            for error in r.errors:
                err.print(f"  {error}", highlight=False)
        for line in r.warnings:
            err.print(Text.assemble(("warning:", "bold yellow"), f" {line}"), highlight=False)
    if invalid:
        problems = sum(len(r.errors) for r in invalid)
        err.print(
            Text.assemble(
                ("error:", "bold red"),
                f" {len(invalid)} of {len(results)} configuration(s) invalid ({problems} problem(s))",
            ),
            highlight=False,
        )


def register(app: typer.Typer) -> None:
    @app.command()
    def validate(
        files: Annotated[
            list[Path],
            typer.Argument(
                help="YAML files, directories of them, or scenario directories (with a scenario.yaml).",
                show_default=False,
            ),
        ],
        merge: Annotated[
            bool,
            typer.Option(
                "--merge",
                help="Check all the files as one configuration, so references between files resolve "
                "(scenario directories are still checked on their own).",
            ),
        ] = False,
        fmt: Annotated[str, typer.Option("--format", help=FORMAT_HELP)] = "table",
    ) -> None:
        """Check Kueue objects, budcore Jobs and scenarios; report every error with file, line and field.

        Each file or scenario directory is checked on its own, one result line each; exit 2 if any fails.
        """
        output_format(fmt)
        results = [check(target) for target in targets(files, merge=merge)]
        _print(results, fmt)
        if any(not r.ok for r in results):
            raise typer.Exit(2)
