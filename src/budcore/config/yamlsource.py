"""Reading YAML while remembering where every field came from.

Configuration errors are only actionable when they point at a file and a line. PyYAML's plain
``safe_load`` throws that information away, so this module composes the node graph with a safe
loader (libyaml's when available; never an unsafe one: documents are data, not code), constructs
the Python data from the same nodes, and records the 1-based line of every field path
(``spec.resourceGroups[0].flavors[1].name``). The Kueue configuration loader, the ``budcore
validate`` CLI and the simulator's scenario loader all read YAML through here.

Inputs may be a file, a directory (every ``*.yaml``/``*.yml`` in it, sorted by name so the result is
deterministic), a multi-document stream or a string of YAML. Empty documents (a stray ``---``) are
skipped, as ``kubectl`` does, but keep their place in the document numbering so "document 3" always
means the third document of the file.

A broken input hides as little as possible, so that one run reports every problem: a document with
a duplicate key is still read (the last value wins, as in PyYAML) and checked, and a syntax error
loses only the documents from the broken one on (:func:`read_yaml_text`).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from budcore.domain.errors import ValidationError, ValidationErrors

__all__ = [
    "DocumentError",
    "DuplicateKeyError",
    "YamlDocument",
    "collect_yaml_documents",
    "format_path",
    "iter_yaml_files",
    "load_yaml_documents",
    "load_yaml_text",
    "read_yaml_text",
]

# A pathological document can use aliases to make its node tree exponentially large ("billion
# laughs"); walking it to index paths would never finish. Real configuration is far below this.
MAX_INDEXED_NODES = 1_000_000

_YAML_SUFFIXES = (".yaml", ".yml")

# libyaml's safe loader when PyYAML was built with it (an order of magnitude faster, same nodes and
# marks), else the pure-Python one. Both only construct plain data: no arbitrary Python objects.
_SAFE_LOADER: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class DocumentError(ValidationError):
    """A ``ValidationError`` that also knows which document of a stream, and which object, it is about.

    ``document`` is the 1-based position of the document in its source, ``kind`` and ``name`` the
    Kubernetes object it describes (when known). The rendered message carries all of them, so a
    plain ``str(error)`` is enough for a person; tools can read the attributes.
    """

    def __init__(
        self,
        message: str,
        *,
        path: str = "",
        source: str | None = None,
        line: int | None = None,
        document: int | None = None,
        kind: str | None = None,
        name: str | None = None,
    ) -> None:
        self.detail = message
        self.document = document
        self.kind = kind
        self.name = name
        # A kind is a word (ClusterQueue); anything else (a newline, a NUL) is quoted, so the
        # error stays on one line.
        shown = kind if kind is None or kind.isalnum() else repr(kind)
        subject = f"{shown} {name!r}" if shown and name else (shown or "")
        if kind and message.startswith(f"{kind} "):  # the message already names the object
            subject = ""
        if document is not None:
            subject = f"{subject} (document {document})" if subject else f"document {document}"
        super().__init__(f"{subject}: {message}" if subject else message, path=path, source=source, line=line)


class DuplicateKeyError(DocumentError):
    """A mapping key given twice in a document.

    Unlike a syntax error it loses nothing: the document is read (with the last value), so what it
    defines is known and checkable; callers that must tell the two apart (the Kueue loader checks
    references only when no input was lost) test for this class.
    """


@dataclass(frozen=True)
class YamlDocument:
    """One parsed YAML document and the line of each field path in it.

    ``index`` is 0-based within ``source``; ``start_line`` is the 1-based line where the document's
    content begins. ``lines`` maps field paths (``metadata.name``, ``spec.resourceGroups[0]``) to
    the 1-based line of the key (for mapping entries) or of the item (for sequence entries).
    """

    data: Any
    source: str
    index: int
    start_line: int
    lines: Mapping[str, int] = field(default_factory=dict)

    @property
    def number(self) -> int:
        """The 1-based document number people read in messages."""
        return self.index + 1

    def exact_line_of(self, path: str) -> int | None:
        """Line of exactly ``path``, or ``None`` when the document has no such field."""
        if not path:
            return self.start_line
        return self.lines.get(path)

    def line_of(self, path: str) -> int | None:
        """Line of ``path``, or of its nearest existing ancestor.

        An error about a *missing* field (``required``) still points at the object that lacks it,
        which is where the user has to add it.
        """
        current = path
        while current:
            line = self.lines.get(current)
            if line is not None:
                return line
            current = _parent_path(current)
        return self.start_line

    def error(
        self,
        message: str,
        path: str = "",
        *,
        kind: str | None = None,
        name: str | None = None,
    ) -> DocumentError:
        """A ``DocumentError`` located at ``path`` in this document."""
        return DocumentError(
            message,
            path=path,
            source=self.source,
            line=self.line_of(path),
            document=self.number,
            kind=kind,
            name=name,
        )


def format_path(parts: Iterable[str | int]) -> str:
    """``("spec", "resourceGroups", 0, "flavors")`` → ``spec.resourceGroups[0].flavors``."""
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else part
    return out


def _parent_path(path: str) -> str:
    """Drop the last segment of a path (``a.b[2]`` → ``a.b``; ``a.b`` → ``a``)."""
    cut = max(path.rfind("."), path.rfind("["))
    return path[:cut] if cut > 0 else ""


def iter_yaml_files(path: Path) -> list[Path]:
    """The YAML files of a directory (sorted by name, not recursive) or the file itself."""
    if path.is_dir():
        return sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in _YAML_SUFFIXES)
    return [path]


def load_yaml_documents(source: str | Path) -> list[YamlDocument]:
    """Every non-empty document of a file, of a directory's YAML files, or of a YAML string.

    A ``Path`` is always a filesystem path. A single-line ``str`` is a path when it names an
    existing file or directory or ends in ``.yaml``/``.yml`` (so a mistyped file name is reported
    as missing rather than parsed as a YAML scalar); anything else is YAML text. All syntax errors
    and duplicate keys of the input are raised together as one ``ValidationErrors``.
    """
    if isinstance(source, Path):
        return _load_path(source)
    if "\n" not in source and source.strip():
        candidate = Path(source)
        try:
            exists = candidate.exists()
        except OSError:  # e.g. a name too long for the filesystem: it is YAML text, not a path
            exists = False
        if exists or source.strip().lower().endswith(_YAML_SUFFIXES):
            return _load_path(candidate)
    return load_yaml_text(source, "<string>")


def _load_path(path: Path) -> list[YamlDocument]:
    documents, errors = collect_yaml_documents(path)
    if errors:
        raise ValidationErrors(errors)
    return documents


def collect_yaml_documents(*paths: Path) -> tuple[list[YamlDocument], list[ValidationError]]:
    """The documents of every file under ``paths``, and the errors of reading them.

    For tools that validate whole trees (``budcore validate``): one broken file must not hide the
    problems of the others, so nothing is raised. A file with YAML errors contributes the documents
    :func:`read_yaml_text` could read; an unreadable file contributes none.
    """
    documents: list[YamlDocument] = []
    errors: list[ValidationError] = []
    for path in paths:
        if not path.exists():
            errors.append(ValidationError(f"no such file or directory: {path}", source=str(path)))
            continue
        files = iter_yaml_files(path)
        if not files:
            # Loading "nothing" from a directory is almost always a wrong path or a wrong suffix.
            errors.append(ValidationError("directory contains no *.yaml or *.yml files", source=str(path)))
        for file in files:
            try:
                text = file.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                errors.append(ValidationError(f"cannot read file: {exc}", source=str(file)))
                continue
            read, problems = read_yaml_text(text, str(file))
            documents.extend(read)
            errors.extend(problems)
    return documents, errors


def load_yaml_text(text: str, source: str = "<string>") -> list[YamlDocument]:
    """Parse a (multi-document) YAML string; ``source`` names it in errors.

    Raises ``ValidationErrors`` with every syntax error and duplicate key of the text.
    """
    documents, errors = read_yaml_text(text, source)
    if errors:
        raise ValidationErrors(errors)
    return documents


def read_yaml_text(text: str, source: str = "<string>") -> tuple[list[YamlDocument], list[ValidationError]]:
    """The documents of a YAML string that could be read, and the errors of the text.

    A document with duplicate keys is kept (:class:`DuplicateKeyError`, the last value wins), so a
    validator still checks it. A syntax error ends the stream: the documents before it are kept,
    the rest is lost. A document too large to index (alias expansion) is dropped: checking it
    would not finish either.
    """
    documents: list[YamlDocument] = []
    errors: list[ValidationError] = []
    loader = _SAFE_LOADER(text)
    index = 0
    try:
        while loader.check_node():
            node = loader.get_node()
            if node is None:  # pragma: no cover - check_node guarantees a node
                break
            # Index before constructing: the constructor flattens merge keys in place, after which
            # an overridden merged key would look like a duplicate.
            lines, index_errors = _index_lines(node, source, index)
            data = loader.construct_document(node)
            if data is not None:
                errors.extend(index_errors)
                if all(isinstance(error, DuplicateKeyError) for error in index_errors):
                    documents.append(
                        YamlDocument(
                            data=data,
                            source=source,
                            index=index,
                            start_line=node.start_mark.line + 1,
                            lines=lines,
                        )
                    )
            index += 1
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or exc.context or "invalid YAML"
        context = f" ({exc.context})" if exc.context and exc.problem else ""
        errors.append(
            DocumentError(
                f"malformed YAML: {problem}{context}",
                source=source,
                line=mark.line + 1 if mark is not None else None,
                document=index + 1,
            )
        )
    except yaml.reader.ReaderError as exc:  # a character YAML forbids (NUL, other controls)
        # Its own message spans two lines ("... not allowed\n  in "<unicode string>", position
        # 0"): one line here, at the character's line.
        errors.append(
            DocumentError(
                f"malformed YAML: unacceptable character #x{exc.character:04x} at offset {exc.position}: "
                f"{exc.reason}",
                source=source,
                line=text.count("\n", 0, exc.position) + 1,
                document=index + 1,
            )
        )
    except yaml.YAMLError as exc:
        message = " ".join(str(exc).split())  # one line, whatever PyYAML wrote
        errors.append(DocumentError(f"malformed YAML: {message}", source=source, document=index + 1))
    finally:
        loader.dispose()
    return documents, errors


def _index_lines(root: yaml.Node, source: str, index: int) -> tuple[dict[str, int], list[ValidationError]]:
    """Map each field path of a composed document to its line; report duplicate mapping keys.

    PyYAML silently keeps the last of two equal keys; Kubernetes tooling rejects them, and a
    silently dropped quota is exactly the kind of mistake a user must hear about.
    """
    lines: dict[str, int] = {}
    errors: list[ValidationError] = []
    visited = 0
    stack: list[tuple[yaml.Node, str]] = [(root, "")]
    while stack:
        node, path = stack.pop()
        visited += 1
        if visited > MAX_INDEXED_NODES:
            errors.append(
                DocumentError(
                    f"document has more than {MAX_INDEXED_NODES} nodes (alias expansion?)",
                    source=source,
                    line=root.start_mark.line + 1,
                    document=index + 1,
                )
            )
            break
        if isinstance(node, yaml.MappingNode):
            for child, line, value_node in _mapping_entries(node, path, source, index, errors):
                lines[child] = line
                stack.append((value_node, child))
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                child = f"{path}[{i}]"
                lines[child] = item.start_mark.line + 1
                stack.append((item, child))
    return lines, errors


def _mapping_entries(
    node: yaml.MappingNode, path: str, source: str, index: int, errors: list[ValidationError]
) -> list[tuple[str, int, yaml.Node]]:
    """Path, line and value of each key of a mapping; a key given twice is a ``DuplicateKeyError``.

    The last occurrence is the one indexed: it is the value the constructed data holds, so the
    lines of its fields are the ones a validator's errors must point at.
    """
    first: dict[str, int] = {}
    kept: dict[str, tuple[int, yaml.Node]] = {}
    for key_node, value_node in _merged_pairs(node):
        key = str(key_node.value) if isinstance(key_node, yaml.ScalarNode) else "?"
        child = f"{path}.{key}" if path else key
        line = key_node.start_mark.line + 1
        if key in first:
            message = f"duplicate key {key!r} (first at line {first[key]})"
            errors.append(
                DuplicateKeyError(message, path=child, source=source, line=line, document=index + 1)
            )
        first.setdefault(key, line)
        kept[child] = (line, value_node)
    return [(child, line, value) for child, (line, value) in kept.items()]


def _merged_pairs(node: yaml.MappingNode) -> Iterator[tuple[yaml.Node, yaml.Node]]:
    """Key/value node pairs of a mapping, with ``<<`` merge keys expanded as the constructor does.

    Explicit keys win over merged ones, so merged keys that are overridden are not duplicates.
    """
    explicit: list[tuple[yaml.Node, yaml.Node]] = []
    merged: list[tuple[yaml.Node, yaml.Node]] = []
    for key_node, value_node in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":
            sources = value_node.value if isinstance(value_node, yaml.SequenceNode) else [value_node]
            for src in sources:
                if isinstance(src, yaml.MappingNode):
                    merged.extend(_merged_pairs(src))
        else:
            explicit.append((key_node, value_node))
    explicit_keys = {k.value for k, _ in explicit if isinstance(k, yaml.ScalarNode)}
    seen_merged: set[object] = set()
    for key_node, value_node in merged:
        key = key_node.value if isinstance(key_node, yaml.ScalarNode) else None
        if key in explicit_keys or key in seen_merged:
            continue
        seen_merged.add(key)
        yield key_node, value_node
    yield from explicit
