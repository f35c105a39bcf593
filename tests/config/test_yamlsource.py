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


# Hostile scalars: measured before conversion, reported at their field -----------------------------
HUGE_NUMBERS = [
    pytest.param("9" * 5000, id="5000-decimal-digits"),  # int(): Python's 4,300-digit limit
    pytest.param("1" + "_0" * 5000, id="underscored-digits"),
    pytest.param("1" + "0" * 400, id="past-a-float"),  # float(int): OverflowError downstream
    pytest.param("0x" + "f" * 100_000, id="hex"),  # a 400,000-bit int nothing can print
    pytest.param("-0b" + "1" * 100_000, id="binary"),
    pytest.param("0" + "7" * 6000, id="octal"),
    pytest.param("1" + ":0" * 300_000, id="sexagesimal-int"),  # quadratic time in PyYAML
    pytest.param("1" + ":0" * 200 + ".5", id="sexagesimal-float"),  # OverflowError in PyYAML
]


@pytest.mark.parametrize("number", HUGE_NUMBERS)
def test_a_number_too_large_for_any_field_names_file_line_and_field(number: str) -> None:
    text = f"first: 1\n---\nspec:\n  items:\n  - {{name: a, count: {number}}}\n---\nlast: 2\n"
    documents, errors = yamlsource.read_yaml_text(text, "n.yaml")
    (error,) = errors
    assert isinstance(error, DocumentError)
    assert (error.source, error.line, error.path, error.document) == ("n.yaml", 5, "spec.items[0].count", 2)
    assert "out of range" in error.message and "2^1024" in error.message
    assert len(str(error)) < 300 and "\n" not in str(error)
    # only the broken document is lost: the stream reads on
    assert [d.data for d in documents] == [{"first": 1}, {"last": 2}]
    assert [d.number for d in documents] == [1, 3]


def test_numbers_up_to_the_range_of_a_float_are_read() -> None:
    largest = "0x" + "f" * 256  # 2^1024 - 1
    (document,) = load_yaml_text(
        f"a: {largest}\nb: -{'9' * 308}\nc: 1{':0' * 173}\nd: 1{':0' * 173}.5\ne: 1.0e+99999\nf: 0x10\n"
    )
    assert document.data["a"] == 2**1024 - 1
    assert document.data["b"] == -int("9" * 308)
    assert document.data["c"] == 60**173
    assert document.data["d"] == pytest.approx(60.0**173)
    assert document.data["e"] == float("inf")  # a float past its range is inf, a field's check refuses it
    assert document.data["f"] == 16
    with pytest.raises(ValidationErrors, match="out of range"):
        load_yaml_text("a: 0x1" + "0" * 256)  # 2^1024 exactly


def test_a_huge_key_or_an_aliased_number_is_reported_at_its_first_field() -> None:
    _, errors = yamlsource.read_yaml_text(f"spec:\n  ? {'9' * 5000}\n  : x\n", "k.yaml")
    (error,) = errors
    assert (error.line, error.path) == (2, "spec")  # the key is the bad value: its mapping's path
    assert len(str(error)) < 300
    _, errors = yamlsource.read_yaml_text(f"a: [1, &n {'9' * 400}]\nb: *n\n", "a.yaml")
    assert [(e.line, e.path) for e in errors] == [(1, "a[1]")]


@pytest.mark.parametrize(
    ("scalar", "words"),
    [
        ("2020-13-45", "invalid timestamp '2020-13-45': month must be in 1..12"),
        ("2021-02-30T00:00:00Z", "invalid timestamp"),
        ("!!int abc", "invalid int 'abc'"),
        ('!!int ""', "invalid int ''"),
        ('!!float ""', "invalid float ''"),
        ("!!bool maybe", "invalid bool 'maybe'"),
        ("!!timestamp soon", "invalid timestamp 'soon'"),
        ("!!int 0X1F", "invalid int '0X1F'"),
    ],
)
def test_a_scalar_its_tag_cannot_construct_is_an_error_at_its_field(scalar: str, words: str) -> None:
    _, errors = yamlsource.read_yaml_text(f"meta:\n  when: {scalar}\n", "t.yaml")
    (error,) = errors
    assert (error.source, error.line, error.path) == ("t.yaml", 2, "meta.when")
    assert words in error.message


@pytest.mark.parametrize("number", HUGE_NUMBERS[:3] + HUGE_NUMBERS[-2:])
def test_safe_load_bounds_numbers_like_the_reader(number: str) -> None:
    import yaml

    with pytest.raises(yamlsource.ScalarError) as info:
        yamlsource.safe_load(f"a:\n  b: [{number}]\n")
    assert isinstance(info.value, yaml.YAMLError)  # existing `except yaml.YAMLError` handlers catch it
    assert info.value.path == "a.b[0]"
    assert info.value.problem_mark is not None and info.value.problem_mark.line == 1
    with pytest.raises(yamlsource.ScalarError):
        yamlsource.safe_load_all(f"ok: 1\n---\nx: {number}\n")
    assert yamlsource.safe_load("a: 1") == {"a": 1}
    assert yamlsource.safe_load("") is None
    assert yamlsource.safe_load_all("a: 1\n---\n---\nb: 2\n") == [{"a": 1}, None, {"b": 2}]
