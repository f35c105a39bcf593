"""One run reports every problem: schema and cross-reference problems together (issue #20, 12).

A document with schema errors still counts as the object it names when references are checked:
its own references are checked too, and nothing that points at it is reported as missing. Only
input that could not be read at all leaves references unchecked (it may define what they name).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from budcore.config.jobs import job_from_document
from budcore.config.kueue import load_queue_config, loads_queue_config
from budcore.config.yamlsource import DocumentError, load_yaml_text, read_yaml_text
from budcore.domain.errors import ValidationError, ValidationErrors
from budcore.testing.examples import examples

# The project's example count (see tests/scheduling): each example loads two configurations.
EXAMPLES = examples(100)

QUANTITY_HELP = (
    "expected a number with an optional suffix (m, k, M, G, T, P, E, Ki, Mi, Gi, Ti, Pi, Ei or an "
    "exponent), e.g. '500m', '64Gi', '8'"
)


def problems(text: str, source: str = "t.yaml") -> list[str]:
    """Every reported problem of ``text``, rendered (file:line: path: subject: message)."""
    with pytest.raises(ValidationErrors) as info:
        loads_queue_config(text, source)
    return [str(error) for error in info.value.errors]


def test_the_issue_example_reports_schema_and_reference_problems_in_one_run() -> None:
    text = """\
kind: ClusterQueue
apiVersion: kueue.x-k8s.io/v1beta1
metadata: {name: a}
spec:
  cohort: 5
  resourceGroups:
  - coveredResources: [cpu]
    flavors:
    - name: nope
      resources: [{name: cpu, nominalQuota: abc}]
---
kind: LocalQueue
apiVersion: kueue.x-k8s.io/v1beta1
metadata: {name: q, namespace: d}
spec: {clusterQueue: missing}
"""
    assert problems(text, "bad.yaml") == [
        "bad.yaml:5: spec.cohort: ClusterQueue 'a' (document 1): 5 is not of type 'string'",
        "bad.yaml:9: spec.resourceGroups[0].flavors[0].name: document 1: "
        "ClusterQueue 'a' references ResourceFlavor 'nope', which does not exist",
        "bad.yaml:10: spec.resourceGroups[0].flavors[0].resources[0].nominalQuota: "
        f"ClusterQueue 'a' (document 1): invalid quantity 'abc': {QUANTITY_HELP}",
        "bad.yaml:15: spec.clusterQueue: document 2: "
        "LocalQueue d/q references ClusterQueue 'missing', which does not exist",
    ]


def test_objects_whose_documents_are_invalid_still_exist_for_references() -> None:
    text = """\
apiVersion: kueue.x-k8s.io/v1beta2
kind: ResourceFlavor
metadata: {name: gpu}
spec:
  nodeLabels: {pool: "not valid!"}
---
apiVersion: kueue.x-k8s.io/v1beta2
kind: ClusterQueue
metadata: {name: cq}
spec:
  queueingStrategy: Random
  resourceGroups:
  - coveredResources: [cpu]
    flavors:
    - name: gpu
      resources: [{name: cpu, nominalQuota: 8}]
---
apiVersion: kueue.x-k8s.io/v1beta2
kind: LocalQueue
metadata: {name: lq, namespace: team}
spec: {clusterQueue: cq}
"""
    # Neither "ResourceFlavor 'gpu' does not exist" nor "ClusterQueue 'cq' does not exist".
    assert problems(text) == [
        "t.yaml:5: spec.nodeLabels.pool: ResourceFlavor 'gpu' (document 1): invalid label value "
        "'not valid!': at most 63 letters, digits, '-', '_' or '.', starting and ending with a letter "
        "or digit",
        "t.yaml:11: spec.queueingStrategy: ClusterQueue 'cq' (document 2): "
        "'Random' is not one of ['StrictFIFO', 'BestEffortFIFO']",
    ]


def test_a_cohort_cycle_through_an_invalid_cohort_is_reported() -> None:
    text = """\
apiVersion: kueue.x-k8s.io/v1beta2
kind: Cohort
metadata: {name: a}
spec: {parentName: b}
---
apiVersion: kueue.x-k8s.io/v1beta2
kind: Cohort
metadata: {name: b}
spec:
  parentName: a
  fairSharing: {weight: heavy}
"""
    assert problems(text) == [
        "t.yaml:4: spec.parentName: document 1: Cohort 'a' is in a parent cycle: a -> b -> a",
        "t.yaml:10: spec.parentName: document 2: Cohort 'b' is in a parent cycle: b -> a -> b",
        "t.yaml:11: spec.fairSharing.weight: Cohort 'b' (document 2): "
        f"invalid quantity 'heavy': {QUANTITY_HELP}",
    ]


def test_a_malformed_reference_is_reported_once_not_also_as_missing() -> None:
    text = """\
apiVersion: kueue.x-k8s.io/v1beta2
kind: ClusterQueue
metadata: {name: cq}
spec:
  resourceGroups:
  - coveredResources: [cpu]
    flavors:
    - name: 5
      resources: [{name: cpu, nominalQuota: 8}]
    - [not, a, flavor]
---
apiVersion: kueue.x-k8s.io/v1beta2
kind: LocalQueue
metadata: {name: lq}
spec: {clusterQueue: [cq]}
"""
    assert problems(text) == [
        "t.yaml:8: spec.resourceGroups[0].flavors[0].name: ClusterQueue 'cq' (document 1): "
        "5 is not of type 'string'",
        "t.yaml:10: spec.resourceGroups[0].flavors[1]: ClusterQueue 'cq' (document 1): "
        "['not', 'a', 'flavor'] is not of type 'object'",
        "t.yaml:15: spec.clusterQueue: LocalQueue 'lq' (document 2): ['cq'] is not of type 'string'",
    ]


def test_a_document_without_a_name_defines_nothing_to_refer_to() -> None:
    text = """\
apiVersion: kueue.x-k8s.io/v1beta2
kind: ClusterQueue
spec: {}
---
apiVersion: kueue.x-k8s.io/v1beta2
kind: LocalQueue
metadata: {name: lq}
spec: {clusterQueue: cq}
"""
    assert problems(text) == [
        "t.yaml:1: metadata: ClusterQueue (document 1): missing metadata (metadata.name is required)",
        "t.yaml:8: spec.clusterQueue: document 2: "
        "LocalQueue default/lq references ClusterQueue 'cq', which does not exist",
    ]


def test_an_invalid_document_still_takes_part_in_duplicate_detection() -> None:
    text = """\
apiVersion: kueue.x-k8s.io/v1beta2
kind: ResourceFlavor
metadata: {name: gpu}
spec: {nodeTaints: [{key: k, effect: Sometimes}]}
---
apiVersion: kueue.x-k8s.io/v1beta2
kind: ResourceFlavor
metadata: {name: gpu}
"""
    assert problems(text) == [
        "t.yaml:4: spec.nodeTaints[0].effect: ResourceFlavor 'gpu' (document 1): "
        "unsupported effect 'Sometimes': use one of NoSchedule, PreferNoSchedule, NoExecute",
        "t.yaml:8: metadata.name: ResourceFlavor 'gpu' (document 2): "
        "duplicate ResourceFlavor 'gpu': also defined at t.yaml:3 (document 1)",
    ]


def test_a_duplicate_key_loses_nothing_so_everything_else_is_checked() -> None:
    text = """\
apiVersion: kueue.x-k8s.io/v1beta2
kind: ResourceFlavor
metadata: {name: gpu}
---
apiVersion: kueue.x-k8s.io/v1beta2
kind: ClusterQueue
metadata: {name: cq}
spec:
  resourceGroups:
  - coveredResources: [cpu]
    flavors:
    - name: gpu
      resources:
      - name: cpu
        nominalQuota: 8
        nominalQuota: lots
---
apiVersion: kueue.x-k8s.io/v1beta2
kind: LocalQueue
metadata: {name: lq}
spec: {clusterQueue: other}
"""
    quantity = "spec.resourceGroups[0].flavors[0].resources[0].nominalQuota"
    # The value checked is the last one (PyYAML keeps it), at its own line.
    assert problems(text) == [
        f"t.yaml:16: {quantity}: document 2: duplicate key 'nominalQuota' (first at line 15)",
        f"t.yaml:16: {quantity}: ClusterQueue 'cq' (document 2): invalid quantity 'lots': {QUANTITY_HELP}",
        "t.yaml:21: spec.clusterQueue: document 3: "
        "LocalQueue default/lq references ClusterQueue 'other', which does not exist",
    ]


def test_lost_input_leaves_references_unchecked_but_documents_checked(tmp_path: Path) -> None:
    # broken.yaml may have defined ClusterQueue "cq" before its syntax error was reached, so a
    # "does not exist" would be a guess; the documents that were read are still checked.
    (tmp_path / "broken.yaml").write_text(
        "apiVersion: kueue.x-k8s.io/v1beta2\nkind: Cohort\nmetadata: {name: pool}\nspec: {bogus: 1}\n"
        "---\nkind: [\n"
    )
    (tmp_path / "queues.yaml").write_text(
        "apiVersion: kueue.x-k8s.io/v1beta2\nkind: LocalQueue\nmetadata: {name: lq}\n"
        "spec: {clusterQueue: cq, stopPolicy: Never}\n"
    )
    with pytest.raises(ValidationErrors) as info:
        load_queue_config(tmp_path)
    broken, queues = tmp_path / "broken.yaml", tmp_path / "queues.yaml"
    unknown, malformed, stop_policy = (str(error) for error in info.value.errors)
    assert unknown == f"{broken}:4: spec.bogus: Cohort 'pool' (document 1): unknown field"
    assert malformed.startswith(f"{broken}:7: document 2: malformed YAML: ")  # wording: libyaml's or PyYAML's
    assert stop_policy == (
        f"{queues}:4: spec.stopPolicy: LocalQueue 'lq' (document 1): "
        "'Never' is not one of ['None', 'Hold', 'HoldAndDrain']"
    )


def test_read_yaml_text_keeps_what_it_could_read() -> None:
    documents, errors = read_yaml_text("a: 1\n---\nb: 1\nb: {c: 2}\n---\nc: [\n", "x.yaml")
    assert [d.data for d in documents] == [{"a": 1}, {"b": {"c": 2}}]
    assert documents[1].exact_line_of("b") == 4  # the occurrence whose value was kept
    assert documents[1].exact_line_of("b.c") == 4
    assert [(e.line, type(e).__name__) for e in errors] == [(4, "DuplicateKeyError"), (7, "DocumentError")]
    with pytest.raises(ValidationErrors):  # the all-or-nothing reader is unchanged
        load_yaml_text("a: 1\na: 2\n", "x.yaml")


def test_a_job_reports_its_shape_and_its_fields_in_one_run() -> None:
    text = """\
apiVersion: budcore.io/v1alpha1
kind: Job
metadata:
  name: train
  colour: blue
spec:
  job_type: trainig
  tenant: x
  request:
    pod_sets:
      - {name: w, count: -1, resources: {nvidia.com/gpu: 8}}
---
apiVersion: budcore.io/v1alpha1
kind: Job
metadata: {namespace: research}
spec:
  estimated_duration: 7200
  max_duration: 3600
"""
    found: list[str] = []
    for document in load_yaml_text(text, "job.yaml"):
        with pytest.raises(ValidationErrors) as info:
            job_from_document(document)
        found.extend(str(error) for error in info.value.errors)
    assert sorted(found, key=lambda line: int(line.split(":")[1])) == [
        "job.yaml:3: metadata.namespace: Job (document 1): metadata.namespace is required",
        "job.yaml:5: metadata.colour: Job (document 1): unknown metadata field",
        "job.yaml:7: spec.job_type: Job 'train' (document 1): "
        "Input should be 'service', 'batch' or 'training'",
        "job.yaml:8: spec.tenant: Job (document 1): set tenant in metadata, not in spec",
        "job.yaml:11: spec.request.pod_sets[0].count: Job 'train' (document 1): "
        "Input should be greater than or equal to 1",
        # A missing name is reported once (not also "not a valid string"), and the checks that
        # need every field valid still run.
        "job.yaml:15: metadata.name: Job (document 2): metadata.name is required",
        "job.yaml:16: spec: Job (document 2): estimated_duration exceeds max_duration",
    ]


# ---- property: breaking documents never hides or invents a cross-document problem ----

NAMES = st.sampled_from(["a", "b", "c"])


@dataclass(frozen=True)
class Doc:
    """A valid Kueue document whose ``break_line`` can be made invalid in place (lines unchanged)."""

    lines: tuple[str, ...]
    break_line: int  # index into lines
    broken: str  # what that line becomes

    def text(self, how: str | None) -> str:
        lines = list(self.lines)
        if how == "apiVersion":  # stops before the schema: the stand-in comes from raw data alone
            lines[0] = "apiVersion: kueue.x-k8s.io/v1beta9"
        elif how == "field":  # a schema or value error inside the document
            lines[self.break_line] = self.broken
        return "\n".join(lines) + "\n"


def _doc(kind: str, name: str, spec: list[str], break_line: int, broken: str) -> Doc:
    head = ("apiVersion: kueue.x-k8s.io/v1beta2", f"kind: {kind}", name, "spec:")
    return Doc((*head, *spec), len(head) + break_line, broken)


@st.composite
def documents(draw: st.DrawFn) -> Doc:
    kind = draw(st.sampled_from(["ResourceFlavor", "ClusterQueue", "Cohort", "LocalQueue"]))
    name = draw(NAMES)
    if kind == "ResourceFlavor":
        return _doc(
            kind, f"metadata: {{name: f{name}}}", ["  nodeLabels: {pool: x}"], 0, '  nodeLabels: {pool: "x!"}'
        )
    if kind == "LocalQueue":
        spec = [f"  clusterQueue: {draw(NAMES)}", "  fairSharing: {weight: 1}"]
        return _doc(kind, f"metadata: {{name: {name}, namespace: ns}}", spec, 1, "  fairSharing: {weight: w}")
    parent = draw(st.none() | NAMES)
    if kind == "Cohort":
        spec = [f"  parentName: {parent}"] if parent else []
        spec.append("  fairSharing: {weight: 1}")
        return _doc(kind, f"metadata: {{name: {name}}}", spec, len(spec) - 1, "  fairSharing: {weight: w}")
    flavors = draw(st.lists(NAMES, min_size=1, max_size=3, unique=True))
    spec = [f"  cohortName: {parent}"] if parent else []
    spec += [
        "  queueingStrategy: StrictFIFO",
        "  resourceGroups:",
        "  - coveredResources: [cpu]",
        "    flavors:",
    ]
    spec += [f"    - {{name: f{f}, resources: [{{name: cpu, nominalQuota: 1}}]}}" for f in flavors]
    at = 1 if parent else 0
    return _doc(kind, f"metadata: {{name: {name}}}", spec, at, "  queueingStrategy: Random")


def reported(text: str) -> list[ValidationError]:
    try:
        loads_queue_config(text, "p.yaml")
    except ValidationErrors as exc:
        return exc.errors
    return []


def key(error: ValidationError) -> tuple[int | None, str, str]:
    return (error.line, error.path, str(error))


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    docs=st.lists(documents(), min_size=1, max_size=7),
    breaks=st.lists(st.sampled_from([None, None, "apiVersion", "field"]), min_size=7, max_size=7),
)
def test_breaking_documents_never_hides_or_invents_a_cross_document_problem(
    docs: list[Doc], breaks: list[str | None]
) -> None:
    # Every generated document is valid on its own, so the clean run reports cross-document
    # problems only (missing references, cycles, duplicates). Breaking any documents adds their own
    # problems and changes nothing else, wherever the references point.
    clean = reported("---\n".join(doc.text(None) for doc in docs))
    found = reported("---\n".join(doc.text(how) for doc, how in zip(docs, breaks, strict=False)))
    assert all(re.search(r"which does not exist|parent cycle|duplicate", str(e)) for e in clean)
    broken = {i + 1 for i, how in enumerate(breaks[: len(docs)]) if how is not None}
    assert {key(e) for e in clean} <= {key(e) for e in found}
    added = [e for e in found if key(e) not in {key(c) for c in clean}]
    assert all(isinstance(e, DocumentError) and e.document in broken for e in added)
    assert {e.document for e in added if isinstance(e, DocumentError)} == broken
    assert [e.line or 0 for e in found] == sorted(e.line or 0 for e in found)  # one source: by line
