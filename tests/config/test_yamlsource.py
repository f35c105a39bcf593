"""Line-aware YAML loading (budcore.config.yamlsource)."""

from __future__ import annotations

from pathlib import Path

import pytest

from budcore.config import yamlsource
from budcore.config.yamlsource import DocumentError, load_yaml_documents, load_yaml_text
from budcore.domain.errors import ValidationError, ValidationErrors

STREAM = """\
# leading comment
apiVersion: v1
kind: Thing
spec:
  resourceGroups:
  - coveredResources: [cpu, memory]
    flavors:
    - name: first
    - name: second
      resources:
      - {name: cpu, nominalQuota: 8}
---
---
second: document
"""


def test_paths_map_to_one_based_lines() -> None:
    first, second = load_yaml_text(STREAM, "s.yaml")
    assert first.data["spec"]["resourceGroups"][0]["flavors"][1]["name"] == "second"
    assert first.exact_line_of("apiVersion") == 2
    assert first.exact_line_of("spec.resourceGroups[0]") == 6
    assert first.exact_line_of("spec.resourceGroups[0].coveredResources[1]") == 6
    assert first.exact_line_of("spec.resourceGroups[0].flavors[1].name") == 9
    assert first.exact_line_of("spec.resourceGroups[0].flavors[1].resources[0].nominalQuota") == 11
    assert first.exact_line_of("spec.nothing") is None
    assert first.start_line == 2
    assert second.data == {"second": "document"}
    assert second.exact_line_of("second") == 14


def test_line_of_falls_back_to_the_nearest_existing_ancestor() -> None:
    first, _ = load_yaml_text(STREAM, "s.yaml")
    # A missing field is reported where it would have to be added.
    assert first.line_of("spec.resourceGroups[0].flavors[0].resources") == 8
    assert first.line_of("spec.missing.deeper[3]") == 4
    assert first.line_of("") == first.start_line


def test_empty_documents_are_skipped_but_keep_their_number() -> None:
    documents = load_yaml_text(STREAM, "s.yaml")
    assert [(d.index, d.number, d.source) for d in documents] == [(0, 1, "s.yaml"), (2, 3, "s.yaml")]


def test_dotted_keys_are_addressable() -> None:
    (document,) = load_yaml_text("spec:\n  nodeLabels:\n    nvidia.com/gpu.product: NVIDIA-L4\n")
    assert document.exact_line_of("spec.nodeLabels.nvidia.com/gpu.product") == 3


def test_merge_keys_are_indexed_without_false_duplicates() -> None:
    text = "base: &b {x: 1, y: 2}\nderived:\n  <<: *b\n  y: 3\n"
    (document,) = load_yaml_text(text)
    assert document.data["derived"] == {"x": 1, "y": 3}
    assert document.exact_line_of("derived.y") == 4
    assert document.exact_line_of("derived.x") == 1  # where the merged value was written


def test_malformed_yaml_names_source_document_and_line() -> None:
    text = "a: 1\n---\nb: [1, 2\nc: 3\n"
    with pytest.raises(ValidationErrors) as info:
        load_yaml_text(text, "broken.yaml")
    (error,) = info.value.errors
    assert isinstance(error, DocumentError)
    assert error.source == "broken.yaml"
    assert error.document == 2
    assert error.line == 4
    assert "malformed YAML" in str(error)
    assert str(error).startswith("broken.yaml:4: document 2: malformed YAML")


def test_duplicate_keys_are_errors_in_every_document() -> None:
    text = "a: 1\na: 2\n---\nspec:\n  x: 1\n  x: 2\n"
    with pytest.raises(ValidationErrors) as info:
        load_yaml_text(text, "dup.yaml")
    assert [(e.path, e.line) for e in info.value.errors] == [("a", 2), ("spec.x", 6)]
    assert "duplicate key 'x' (first at line 5)" in str(info.value.errors[1])


def test_only_safe_constructs_are_accepted() -> None:
    with pytest.raises(ValidationErrors) as info:
        load_yaml_text("x: !!python/object/apply:os.system ['true']\n", "evil.yaml")
    assert "malformed YAML" in str(info.value)
    assert info.value.errors[0].line == 1


def test_alias_bombs_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(yamlsource, "MAX_INDEXED_NODES", 50)
    text = "a: &a [1, 2, 3, 4, 5, 6, 7, 8]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a]\nc: [*b, *b, *b, *b]\n"
    with pytest.raises(ValidationErrors, match="more than 50 nodes"):
        load_yaml_text(text, "bomb.yaml")


def test_directory_files_are_read_sorted_by_name(tmp_path: Path) -> None:
    (tmp_path / "b.yml").write_text("name: b\n---\nname: b2\n")
    (tmp_path / "a.yaml").write_text("name: a\n")
    (tmp_path / "notes.txt").write_text("name: ignored\n")
    documents = load_yaml_documents(tmp_path)
    assert [d.data["name"] for d in documents] == ["a", "b", "b2"]
    assert [Path(d.source).name for d in documents] == ["a.yaml", "b.yml", "b.yml"]
    assert [d.index for d in documents] == [0, 0, 1]


def test_string_is_a_path_when_it_names_a_file_else_yaml(tmp_path: Path) -> None:
    file = tmp_path / "one.yaml"
    file.write_text("k: v\n")
    (from_path,) = load_yaml_documents(str(file))
    assert from_path.source == str(file)
    (from_text,) = load_yaml_documents("k: v")
    assert from_text.source == "<string>"
    assert from_text.data == {"k": "v"}
    with pytest.raises(ValidationErrors, match="no such file or directory"):
        load_yaml_documents(str(tmp_path / "typo.yml"))


def test_directory_errors_are_collected_across_files(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text("a: [\n")
    (tmp_path / "b.yaml").write_text("b: 1\nb: 2\n")
    with pytest.raises(ValidationErrors) as info:
        load_yaml_documents(tmp_path)
    assert [Path(e.source or "").name for e in info.value.errors] == ["a.yaml", "b.yaml"]


def test_missing_path_and_empty_directory_are_errors(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="no such file"):
        load_yaml_documents(tmp_path / "nope.yaml")
    with pytest.raises(ValidationError, match=r"no \*\.yaml or \*\.yml files"):
        load_yaml_documents(tmp_path)
