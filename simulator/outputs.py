"""An output directory that never shows a previous run's files as this run's.

``simulate``, ``compare`` and ``plan`` write several files into one directory (``--out``), one
after another, at the end of work that can take hours. Rewriting them in place had two failure
modes: a run interrupted or failed halfway left the new ``report.json`` beside the previous run's
``jobs.csv`` and plots (or the previous ``report.json`` beside nothing new), and a run writing
fewer files (``--no-plots``, no money block) left the old ones looking current.

So a run (:class:`RunDirectory`) first removes the files the previous run wrote into the directory
(those its manifest lists, and the command's own file names for directories older than the
manifest: never anything else, ``--out .`` is safe), then writes its main file (``report.json``,
``compare.json`` or ``plan.json``) as a marker, ``{"complete": false, ...}``, and writes the main
file's full content last with ``"complete": true`` (``compare.json``, a map of policies, is only
written at the end, complete). Every file is written atomically (a temporary
file renamed over the name), so no reader ever sees half a file. Until the end, the main file
says the run is incomplete; an interrupted run rewrites it with what it kept (``"complete":
false`` and why).

The manifest is ``.budcore-run.json``: the command, whether the run completed, and the files it
wrote so far (updated before each file is written, so a run killed outright is cleaned up by the
next one too).
"""

from __future__ import annotations

import functools
import json
import os
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from budcore.domain.errors import ValidationError

__all__ = ["KNOWN_FILES", "MANIFEST", "RunDirectory", "write_atomic"]

MANIFEST = ".budcore-run.json"

# The files each command has written, for directories a run wrote before the manifest existed.
KNOWN_FILES: Mapping[str, tuple[str, ...]] = {
    "simulate": (
        "report.json",
        "run.json",
        "jobs.csv",
        "usage.csv",
        "usage_records.csv",
        "pricebook.yaml",
        "nodes.yaml",
        "timeline.png",
        "utilisation.png",
        "cq_usage.png",
        "cdf.png",
        "eta.png",
    ),
    "compare": ("compare.json", "compare_cdf.png", "compare.partial.json"),
    "plan": ("plan.json", "plan_frontier.png", "points.jsonl"),
}


def write_atomic(path: Path, text: str) -> Path:
    """Write ``path`` whole or not at all: a temporary file in the same directory, renamed over it.

    A failure (disk full, permissions changed) is one ``--out`` error, not a traceback.
    """
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        try:
            os.fchmod(fd, _file_mode())  # mkstemp's 0600 would hide outputs from other users
            with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
                handle.write(text)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError as exc:
        raise ValidationError(f"cannot write {path}: {exc.strerror or exc}", path="--out") from None
    return path


@functools.cache
def _file_mode() -> int:
    """The mode ``open`` gives a new file: 0666 less the process's umask (read once)."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def _dumps(data: Mapping[str, Any]) -> str:
    return json.dumps(data, indent=2, sort_keys=True) + "\n"


class RunDirectory:
    """One command's run into ``path`` (which exists and is writable: ``prepare_output_dir``).

    ``main`` is the file that says whether the run completed (``report.json``, ``compare.json``,
    ``plan.json``). ``keep`` names files of the previous run to leave in place (``plan --resume``
    keeps ``points.jsonl``, whose points it reuses).
    """

    def __init__(
        self, path: Path, command: str, main: str, *, keep: Iterable[str] = (), flag: bool = True
    ) -> None:
        self.path = path
        self.command = command
        self.main = main
        # Whether the main file carries "complete"; compare.json is a map of policy labels, so it
        # is written only when complete, and the manifest alone tells an interrupted run.
        self._flag = flag
        self._keep = frozenset(keep)
        self._files: list[str] = [name for name in self._keep if (path / name).is_file()]
        self.finished = False  # the main file says "complete": true

    @property
    def marked(self) -> Path:
        """The file that says whether the run completed: the main file, or the manifest."""
        return self.path / (self.main if self._flag else MANIFEST)

    def begin(self, marker: Mapping[str, Any]) -> list[str]:
        """Remove the previous run's files and write the main file as ``marker`` with
        ``"complete": false``; returns the names removed."""
        removed = self._remove_previous()
        self._manifest(complete=False)
        if self._flag:
            self.write(self.main, _dumps({**marker, "complete": False}))
        return removed

    def _remove_previous(self) -> list[str]:
        names = set(KNOWN_FILES.get(self.command, ()))
        try:
            listed = json.loads((self.path / MANIFEST).read_text(encoding="utf-8"))["files"]
            names.update(n for n in listed if isinstance(n, str))
        except (OSError, ValueError, KeyError, TypeError):
            pass  # no manifest (first run, an older budcore) or an unreadable one: the known names
        removed = []
        for name in sorted(names - self._keep):
            target = self.path / name
            if Path(name).name != name or name in ("", ".", "..") or not target.is_file():
                continue  # only plain files directly in the directory, never a path elsewhere
            try:
                target.unlink()
            except OSError as exc:
                raise ValidationError(
                    f"cannot remove {target} (a previous run's output): {exc.strerror or exc}", path="--out"
                ) from None
            removed.append(name)
        return removed

    def _manifest(self, *, complete: bool, interrupted: str | None = None) -> None:
        manifest = {"command": self.command, "complete": complete, "files": self._files}
        if interrupted is not None:
            manifest["interrupted"] = interrupted
        write_atomic(self.path / MANIFEST, _dumps(manifest))

    def record(self, name: str) -> None:
        """Note ``name`` as this run's (in the manifest) before it is written."""
        if name not in self._files:
            self._files.append(name)
            self._manifest(complete=False)

    def write(self, name: str, text: str) -> Path:
        """Write one output file atomically, listed in the manifest first."""
        self.record(name)
        return write_atomic(self.path / name, text)

    def finish(self, main: Mapping[str, Any]) -> Path:
        """Write the main file (with ``"complete": true``): the last write of a run that finished."""
        path = self.write(self.main, _dumps({**main, "complete": True} if self._flag else main))
        self.finished = True
        self._manifest(complete=True)
        return path

    def stop(self, main: Mapping[str, Any], why: str) -> None:
        """Write the main file of an interrupted run: ``"complete": false`` and ``interrupted: why``
        (nothing once the run has finished: an interruption after the last write changes nothing)."""
        if self.finished:
            return
        if self._flag:
            self.write(self.main, _dumps({**main, "complete": False, "interrupted": why}))
        self._manifest(complete=False, interrupted=why)
