"""Validating documents against Kueue's real CRD schemas.

The schemas are the ``openAPIV3Schema`` of each served version in the CRD manifests vendored under
``schemas/kueue/`` (see the README there for the upstream commit). Kubernetes evaluates them with
its own structural-schema validator; here they are adapted once, when first used, so that the
``jsonschema`` package enforces the same constraints:

* ``x-kubernetes-int-or-string`` fields accept an integer or a string (and, as a convenience for
  hand-written YAML, a plain decimal such as ``1.5``, which the quantity parser reads exactly);
* other ``x-kubernetes-*`` keys (list types, CEL ``x-kubernetes-validations``) are dropped: the CEL
  rules that matter for budcore are checked in Python by :mod:`budcore.config.kueue`;
* every object schema that lists ``properties`` forbids any other property. Kubernetes prunes
  unknown fields silently, which hides typos such as ``borowingLimit``; budcore rejects them.
  ``metadata`` has no declared properties, so Kubernetes object metadata stays free-form;
* ``nullable: true`` admits ``null``; ``format: int32``/``int64``/``date-time`` are checked.
"""

from __future__ import annotations

import datetime as dt
import importlib.resources
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

import jsonschema
import yaml

__all__ = [
    "CRD_FILES",
    "SchemaIssue",
    "crd_schema",
    "iter_schema_issues",
    "served_versions",
]

KUEUE_GROUP = "kueue.x-k8s.io"

# Kind → file name of its CRD under schemas/kueue/.
CRD_FILES: Mapping[str, str] = {
    "ResourceFlavor": "kueue.x-k8s.io_resourceflavors.yaml",
    "ClusterQueue": "kueue.x-k8s.io_clusterqueues.yaml",
    "Cohort": "kueue.x-k8s.io_cohorts.yaml",
    "LocalQueue": "kueue.x-k8s.io_localqueues.yaml",
    "WorkloadPriorityClass": "kueue.x-k8s.io_workloadpriorityclasses.yaml",
}

# Marks a schema node that was an int-or-string quantity, so errors there can say "invalid quantity".
QUANTITY_MARK = "x-budcore-quantity"

_INT32 = (-(2**31), 2**31 - 1)
_INT64 = (-(2**63), 2**63 - 1)


@dataclass(frozen=True)
class SchemaIssue:
    """One schema violation: the field path inside the document and what is wrong there."""

    path: tuple[str | int, ...]
    message: str


@cache
def _crd(kind: str) -> dict[str, Any]:
    """The parsed CRD manifest of ``kind`` (read from the package, once)."""
    resource = importlib.resources.files("budcore.config").joinpath("schemas", "kueue", CRD_FILES[kind])
    text = resource.read_text(encoding="utf-8")
    loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    manifest = yaml.load(text, Loader=loader)  # a SafeLoader (C or Python): data only
    if not isinstance(manifest, dict):  # pragma: no cover - vendored files are valid
        raise RuntimeError(f"vendored CRD {CRD_FILES[kind]} is not a mapping")
    return manifest


def served_versions(kind: str) -> tuple[str, ...]:
    """The API versions (``v1beta1``, ``v1beta2``) the vendored CRD of ``kind`` serves."""
    versions = _crd(kind)["spec"]["versions"]
    return tuple(str(v["name"]) for v in versions if v.get("served", True))


@cache
def crd_schema(kind: str, version: str) -> dict[str, Any]:
    """The adapted ``openAPIV3Schema`` of ``kind`` at ``version`` (see the module docstring)."""
    for entry in _crd(kind)["spec"]["versions"]:
        if entry["name"] == version:
            adapted = _adapt(entry["schema"]["openAPIV3Schema"])
            if not isinstance(adapted, dict):  # pragma: no cover - the root is always an object
                raise RuntimeError(f"schema of {kind} {version} is not an object")
            return adapted
    raise KeyError(f"{kind} has no version {version!r}")


def _adapt(node: Any) -> Any:
    if isinstance(node, list):
        return [_adapt(item) for item in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key == "description" or key.startswith("x-kubernetes-"):
            continue
        if key in ("properties", "patternProperties", "definitions"):
            out[key] = {name: _adapt(sub) for name, sub in value.items()}
        else:
            out[key] = _adapt(value)
    if node.get("x-kubernetes-int-or-string"):
        # The CRD's anyOf [integer, string] plus plain decimals; the pattern still applies to strings.
        out["anyOf"] = [{"type": "integer"}, {"type": "number"}, {"type": "string"}]
        out.pop("type", None)
        out[QUANTITY_MARK] = True
    closed = not node.get("x-kubernetes-preserve-unknown-fields")
    if "properties" in node and "additionalProperties" not in node and closed:
        out["additionalProperties"] = False
    if node.get("nullable") and isinstance(out.get("type"), str):
        out["type"] = [out["type"], "null"]
    out.pop("nullable", None)
    return out


def _format_checker() -> jsonschema.FormatChecker:
    checker = jsonschema.FormatChecker(formats=())

    def in_range(bounds: tuple[int, int]) -> Any:
        def check(value: object) -> bool:
            if isinstance(value, bool) or not isinstance(value, int):
                return True  # a type error is reported by "type", not twice
            return bounds[0] <= value <= bounds[1]

        return check

    def date_time(value: object) -> bool:
        if not isinstance(value, str):
            return True
        try:
            dt.datetime.fromisoformat(value)
        except ValueError:
            return False
        return "T" in value.upper()

    checker.checks("int32")(in_range(_INT32))
    checker.checks("int64")(in_range(_INT64))
    checker.checks("date-time")(date_time)
    return checker


@cache
def _validator(kind: str, version: str) -> jsonschema.protocols.Validator:
    schema = crd_schema(kind, version)
    validator_class = jsonschema.Draft4Validator  # OpenAPI v3 schemas are draft-4 based (1.0 ≠ integer)
    validator_class.check_schema(schema)
    return validator_class(schema, format_checker=_format_checker())


def iter_schema_issues(document: Mapping[str, Any], kind: str, version: str) -> Iterator[SchemaIssue]:
    """Every violation of ``document`` against the CRD schema of ``kind``/``version``.

    Unknown fields come back one per field (at the field's own path, so its line can be shown);
    issues are ordered by path for stable output.
    """
    validator = _validator(kind, version)
    errors = list(validator.iter_errors(document))
    # A value of the wrong type also fails its enum/pattern; the type error alone says it all.
    mistyped = {tuple(e.absolute_path) for e in errors if e.validator == "type"}
    issues: list[SchemaIssue] = []
    for error in errors:
        if error.validator != "type" and tuple(error.absolute_path) in mistyped:
            continue
        issues.extend(_describe(error))
    issues.sort(key=lambda i: tuple((0, p) if isinstance(p, int) else (1, p) for p in i.path))
    yield from issues


def _describe(error: jsonschema.ValidationError) -> Iterator[SchemaIssue]:
    path = tuple(error.absolute_path)
    schema = error.schema if isinstance(error.schema, dict) else {}
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        known = set(schema.get("properties", {}))
        for extra in sorted(str(k) for k in error.instance if k not in known):
            yield SchemaIssue((*path, extra), "unknown field")
        return
    if schema.get(QUANTITY_MARK) and error.validator in ("pattern", "anyOf"):
        yield SchemaIssue(path, _quantity_message(error.instance))
        return
    if error.validator == "required":
        yield SchemaIssue(path, f"missing required field: {error.message.split(' is a required')[0]}")
        return
    if error.validator == "format":
        fmt = schema.get("format")
        what = {"int32": "a 32-bit integer", "int64": "a 64-bit integer"}.get(str(fmt), f"a {fmt} value")
        yield SchemaIssue(path, f"{error.instance!r} is not {what}")
        return
    yield SchemaIssue(path, error.message)


def _quantity_message(value: object) -> str:
    return (
        f"invalid quantity {value!r}: expected a number with an optional suffix "
        "(m, k, M, G, T, P, E, Ki, Mi, Gi, Ti, Pi, Ei or an exponent), e.g. '500m', '64Gi', '8'"
    )
