"""``points.jsonl``: the runs a plan has finished, kept as they finish so ``plan --resume`` reuses them.

A plan of forty fleets with five seeds each can take hours; interrupted at the thirty-first, it
should not run the first thirty again. So every finished run is appended to ``points.jsonl`` in
the plan's output directory, one JSON line each, and ``budcore plan --resume`` reads them back.

The first line is the *question*: the scenario (every field, after ``--seed``), the variations,
the SLOs, the seed set and the search. ``--resume`` refuses a journal whose question differs,
naming what changed: its answer would mix two questions. Each run is then keyed by a digest of
everything that decides its outcome (the point's scenario, seed, quota scaling and overrides,
queueing strategy), so even within one question a run is reused only for the very same
simulation; a simulation is a pure function of that, which is what makes reuse exact. A run
keeps the report and seed (what a plan point's metrics read), not the per-job samples.

A line cut short by the interruption (the process stopped mid-write) is ignored on resume.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO, Any

from budcore.domain.errors import ValidationError

from .scenario import Scenario
from .sweep import RunSpec

__all__ = ["JOURNAL", "PlanJournal", "plan_question", "run_key"]

JOURNAL = "points.jsonl"


def _digest(data: Any) -> str:
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def run_key(spec: RunSpec) -> str:
    """A digest of everything that decides one run's outcome."""
    return _digest(
        {
            "scenario": spec.scenario.model_dump(mode="json"),
            "base_dir": spec.base_dir,
            "strategy": spec.strategy,
            "quota_factors": spec.quota_factors,
            "quota_overrides": spec.quota_overrides,
            "infeasible": spec.infeasible,
        }
    )


def plan_question(
    scenario: Scenario, vary: Sequence[str], slos: Sequence[str], seeds: Sequence[int], search: str
) -> dict[str, Any]:
    """What a plan asks, as the journal's first line records it."""
    return {
        "scenario": _digest(scenario.model_dump(mode="json")),
        "vary": list(vary),
        "slo": list(slos),
        "seeds": list(seeds),
        "search": search,
    }


_QUESTION_WORDS = {
    "scenario": "the scenario (its file, or --seed)",
    "vary": "--vary",
    "slo": "--slo",
    "seeds": "--seeds/--seed",
    "search": "--search",
}


class PlanJournal:
    """The journal of one plan in ``directory``: runs read back on ``resume``, new ones appended."""

    def __init__(self, directory: Path, question: Mapping[str, Any], *, resume: bool) -> None:
        self.path = directory / JOURNAL
        self._runs: dict[str, dict[str, Any]] = {}
        if resume:
            self._read(question)
        else:
            self._start(question)
        self.reused = 0  # runs taken from the journal by this plan

    @property
    def saved(self) -> int:
        """Runs in the journal (finished by an earlier plan or this one)."""
        return len(self._runs)

    def _start(self, question: Mapping[str, Any]) -> None:
        from .outputs import write_atomic

        write_atomic(self.path, json.dumps({"question": question}, sort_keys=True) + "\n")

    def _read(self, question: Mapping[str, Any]) -> None:
        try:
            lines = self.path.read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            raise ValidationError(
                f"no interrupted plan to resume in {self.path.parent} ({JOURNAL} is missing)", path="--resume"
            ) from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ValidationError(f"cannot read {self.path}: {exc}", path="--resume") from None
        saved = _json_line(lines[0]) if lines else None
        if saved is None or not isinstance(saved.get("question"), dict):
            raise ValidationError(f"{self.path}:1: not a plan's journal (no question)", path="--resume")
        changed = [
            word for key, word in _QUESTION_WORDS.items() if saved["question"].get(key) != question.get(key)
        ]
        if changed:
            raise ValidationError(
                f"{self.path} was written for another question: {', '.join(changed)} differ(s); "
                "ask the same question to resume it, or run without --resume to start over",
                path="--resume",
            )
        if not self.path.read_bytes().endswith(b"\n"):  # cut mid-line: new runs start a line
            with self.path.open("a", encoding="utf-8") as handle:
                _append(handle, "\n")
        for line in lines[1:]:
            run = _json_line(line)  # a line cut by the interruption is None: run again
            if run is not None and isinstance(run.get("key"), str) and isinstance(run.get("run"), dict):
                self._runs[run["key"]] = run["run"]

    def get(self, spec: RunSpec) -> dict[str, Any] | None:
        """The saved run of ``spec``, if the journal has it."""
        run = self._runs.get(run_key(spec))
        if run is not None:
            self.reused += 1
            return {**run, "waits": [], "jcts": []}
        return None

    def put(self, spec: RunSpec, result: Mapping[str, Any]) -> None:
        """Append a finished run (flushed at once: the next instant may be an interruption)."""
        key = run_key(spec)
        run = {name: result.get(name) for name in ("label", "seed", "report", "wall_s")}
        self._runs[key] = run
        line = json.dumps({"key": key, "run": run}, sort_keys=True) + "\n"
        try:
            with self.path.open("a", encoding="utf-8") as handle:
                _append(handle, line)
        except OSError as exc:
            raise ValidationError(f"cannot write {self.path}: {exc.strerror or exc}", path="--out") from None


def _append(handle: IO[str], line: str) -> None:
    handle.write(line)
    handle.flush()


def _json_line(line: str) -> dict[str, Any] | None:
    try:
        value = json.loads(line)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None
