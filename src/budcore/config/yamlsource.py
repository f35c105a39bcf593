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

Scalars are hostile input too: a 5,000-digit integer, ``0x`` and a megabyte of hex digits, a
sexagesimal ``1:0:0:...`` of thousands of parts, ``2020-13-45`` or ``!!int ""`` would make PyYAML's
constructors raise ``ValueError``/``OverflowError``/``IndexError`` (or spend quadratic time and
memory building a number nothing can use). An integer is measured before it is converted and must
be below 2^1024 (the range of a float, which every numeric field's check converts to); such a
scalar, and any scalar PyYAML cannot construct, is a :class:`DocumentError` naming its file, line
and field, and only its document is lost.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from budcore.domain.errors import ValidationError, ValidationErrors

__all__ = [
    "DocumentError",
    "DuplicateKeyError",
    "ScalarError",
    "YamlDocument",
    "collect_yaml_documents",
    "format_path",
    "iter_yaml_files",
    "load_yaml_documents",
    "load_yaml_text",
    "read_yaml_text",
    "safe_load",
    "safe_load_all",
]

# A pathological document can use aliases to make its node tree exponentially large ("billion
# laughs"); walking it to index paths would never finish. Real configuration is far below this.
MAX_INDEXED_NODES = 1_000_000

_YAML_SUFFIXES = (".yaml", ".yml")

#: Integers of YAML documents must be below this in magnitude: the range of a float, which the
#: checks of numeric fields convert to. Larger is a typo or an attack, refused before conversion.
INTEGER_LIMIT = 2**1024

# libyaml's safe loader when PyYAML was built with it (an order of magnitude faster, same nodes and
# marks), else the pure-Python one. Both only construct plain data: no arbitrary Python objects.
_BASE_LOADER: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

_INT_TAG = "tag:yaml.org,2002:int"
_LIMIT_BITS = INTEGER_LIMIT.bit_length() - 1  # 1024
# Bits per digit of each base: an upper bound of a literal's size, known before converting it.
_BITS_PER_DIGIT = {2: 1.0, 8: 3.0, 10: math.log2(10), 16: 4.0}
# Sexagesimal (``1:30:00``) integers and floats: past this many parts 60^parts leaves a float.
_MAX_SEXAGESIMAL_PARTS = 1 + int(_LIMIT_BITS / math.log2(60))


class ScalarError(yaml.constructor.ConstructorError):
    """A scalar PyYAML's safe constructors cannot (or must not) turn into a value; ``node`` is it."""

    def __init__(self, message: str, node: yaml.Node) -> None:
        super().__init__(None, None, message, node.start_mark)
        self.node = node
        #: The field path of ``node`` (``spec.items[2].count``) once the reader knows it.
        self.path = ""


def _shown(text: str) -> str:
    """A scalar as an error shows it: quoted, on one line, and short."""
    shown = repr(text if len(text) <= 40 else text[:20])
    return shown if len(text) <= 40 else f"{shown}...({len(text)} characters)"


def _out_of_range(node: yaml.ScalarNode) -> ScalarError:
    return ScalarError(
        f"integer {_shown(str(node.value))} is out of range (a YAML number must be below 2^1024, "
        "about 1.8e308)",
        node,
    )


def _digits_fit(digits: str, base: int) -> bool:
    """Whether ``digits`` (no sign, no underscores) in ``base`` may be below :data:`INTEGER_LIMIT`."""
    significant = digits.lstrip("0")
    return len(significant) * _BITS_PER_DIGIT[base] <= _LIMIT_BITS + 4


class _SafeLoader(_BASE_LOADER):  # type: ignore[misc,valid-type]
    """The safe loader, with integers measured before conversion and scalar errors located.

    PyYAML's ``construct_yaml_int`` converts any literal: ``int()`` of 5,000 decimal digits raises
    ``ValueError`` (Python's digit limit), ``0x`` + a megabyte of hex digits builds a number that
    overflows (or cannot even be printed) later, and a sexagesimal ``1:0:0:...`` costs quadratic
    time. Here the literal's size is bounded first; every other failure of a scalar constructor
    (``2020-13-45``, ``!!int ""``, ``!!bool maybe``) becomes a :class:`ScalarError` at its node.
    """

    def construct_yaml_int(self, node: yaml.ScalarNode) -> int:
        text = str(self.construct_scalar(node)).replace("_", "")
        unsigned = text[1:] if text[:1] in ("+", "-") else text
        if unsigned.startswith(("0b", "0x", "0o")):
            base = {"b": 2, "x": 16, "o": 8}[unsigned[1]]
            digits = unsigned[2:]
        elif ":" in unsigned:
            parts = unsigned.split(":")
            if len(parts) > _MAX_SEXAGESIMAL_PARTS or not all(_digits_fit(p, 10) for p in parts):
                raise _out_of_range(node)
            base, digits = 10, ""  # PyYAML's sexagesimal conversion, now on a bounded literal
        elif unsigned.startswith("0") and unsigned != "0":
            base, digits = 8, unsigned[1:]
        else:
            base, digits = 10, unsigned
        if not _digits_fit(digits, base):
            raise _out_of_range(node)
        value: int = super().construct_yaml_int(node)
        if abs(value) >= INTEGER_LIMIT:
            raise _out_of_range(node)
        return value

    def construct_yaml_float(self, node: yaml.ScalarNode) -> float:
        text = str(self.construct_scalar(node))
        if text.count(":") >= _MAX_SEXAGESIMAL_PARTS:  # PyYAML would overflow an int to a float
            raise ScalarError(
                f"number {_shown(text)} is out of range (a YAML number must be below 2^1024, about 1.8e308)",
                node,
            )
        value: float = super().construct_yaml_float(node)
        return value

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep=deep)
        except yaml.YAMLError:
            raise
        except (ArithmeticError, LookupError, TypeError, ValueError, AttributeError) as exc:
            # A scalar the tag's constructor refuses: 2020-13-45 (a timestamp's day), !!int "",
            # !!bool maybe. A mapping's or sequence's own failures are already YAMLErrors.
            # ValueError's messages say what is wrong ("month must be in 1..12"); the others are
            # PyYAML's internals (an empty string's index, a failed match's attribute).
            tag = str(node.tag).rsplit(":", 1)[-1]
            reason = " ".join(str(exc).split()) if isinstance(exc, ArithmeticError | ValueError) else ""
            message = f"invalid {tag} {_shown(str(node.value))}"
            raise ScalarError(f"{message}: {reason}" if reason else message, node) from None


_SafeLoader.add_constructor(_INT_TAG, _SafeLoader.construct_yaml_int)
_SafeLoader.add_constructor("tag:yaml.org,2002:float", _SafeLoader.construct_yaml_float)
_SAFE_LOADER: type[yaml.SafeLoader] = _SafeLoader


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
            try:
                data = loader.construct_document(node)
            except ScalarError as exc:
                # Only this document is lost: the stream itself is well-formed, so read on.
                _reset_constructor(loader)
                errors.append(
                    DocumentError(
                        str(exc.problem),
                        path=_path_of(node, exc.node),
                        source=source,
                        line=exc.node.start_mark.line + 1,
                        document=index + 1,
                    )
                )
                index += 1
                continue
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


def safe_load(text: str) -> Any:
    """``yaml.safe_load`` with this module's bounded scalars.

    A scalar that cannot be a value raises :class:`ScalarError` (a ``yaml.YAMLError`` with the
    line in ``problem_mark``, so ``except yaml.YAMLError`` handlers keep working) with its field
    ``path``, instead of ``ValueError``/``OverflowError``/a huge number.
    """
    loader = _SAFE_LOADER(text)
    try:
        node = loader.get_single_node()
        return None if node is None else _construct(loader, node)
    finally:
        loader.dispose()


def safe_load_all(text: str) -> list[Any]:
    """``yaml.safe_load_all`` (every document, empty ones as ``None``), as :func:`safe_load`."""
    loader = _SAFE_LOADER(text)
    try:
        documents = []
        while loader.check_node():
            node = loader.get_node()
            documents.append(None if node is None else _construct(loader, node))
        return documents
    finally:
        loader.dispose()


def _construct(loader: Any, node: yaml.Node) -> Any:
    try:
        return loader.construct_document(node)
    except ScalarError as exc:
        exc.path = _path_of(node, exc.node)
        raise


def _reset_constructor(loader: Any) -> None:
    """Forget a document whose construction failed half-way (PyYAML resets this only on success)."""
    loader.constructed_objects = {}
    loader.recursive_objects = {}
    loader.state_generators = []
    loader.deep_construct = False


def _path_of(root: yaml.Node, target: yaml.Node) -> str:
    """The field path of ``target`` in the document ``root``, its first occurrence in document
    order (an alias repeats a node). A key's path is its mapping's: the key is the bad value.

    Walked only when a scalar failed, and bounded like :func:`_index_lines`; ``""`` (the document)
    when the node is not reached.
    """
    stack: list[tuple[yaml.Node, str]] = [(root, "")]
    seen: set[int] = set()
    while stack and len(seen) <= MAX_INDEXED_NODES:
        node, path = stack.pop()
        if node is target:
            return path
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, yaml.MappingNode):
            for key_node, value_node in reversed(node.value):  # popped in document order
                key = str(key_node.value) if isinstance(key_node, yaml.ScalarNode) else "?"
                stack.append((value_node, f"{path}.{key}" if path else key))
                stack.append((key_node, path))
        elif isinstance(node, yaml.SequenceNode):
            stack.extend((item, f"{path}[{i}]") for i, item in reversed(list(enumerate(node.value))))
    return ""


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
