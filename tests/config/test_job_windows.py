"""A job's time window in a budcore Job document: as a spec field or as the Kubernetes annotation."""

from __future__ import annotations

from datetime import time
from pathlib import Path

import pytest

from budcore.config.jobs import load_jobs
from budcore.domain.errors import ValidationError, ValidationErrors
from budcore.domain.timewindow import TimeWindow, window_from_annotation

DOC = """\
apiVersion: budcore.io/v1alpha1
kind: Job
metadata:
  name: nightly
  namespace: research
{annotations}spec:
  local_queue: training
{spec}"""


def load(tmp_path: Path, annotations: str = "", spec: str = "") -> list[object]:
    path = tmp_path / "job.yaml"
    path.write_text(DOC.format(annotations=annotations, spec=spec))
    return list(load_jobs(path))


def test_the_annotation_sets_the_window(tmp_path: Path) -> None:
    annotations = '  annotations:\n    budcore.io/time-window: "22:00-06:00 Europe/Berlin; must-finish"\n'
    (job,) = load(tmp_path, annotations=annotations)
    assert job.time_window == TimeWindow(  # type: ignore[attr-defined]
        start=time(22), end=time(6), timezone="Europe/Berlin", must_finish_in_window=True
    )


def test_the_spec_field_sets_the_window(tmp_path: Path) -> None:
    spec = '  time_window: {start: "09:00", end: "17:00"}\n'
    (job,) = load(tmp_path, spec=spec)
    assert job.time_window == TimeWindow(start=time(9), end=time(17))  # type: ignore[attr-defined]


def test_both_or_a_bad_annotation_name_the_annotation(tmp_path: Path) -> None:
    both = '  annotations:\n    budcore.io/time-window: "22:00-06:00"\n'
    with pytest.raises(ValidationErrors) as info:
        load(tmp_path, annotations=both, spec='  time_window: {start: "09:00", end: "17:00"}\n')
    assert "given twice" in str(info.value)
    assert "metadata.annotations[budcore.io/time-window]" in str(info.value)
    bad = '  annotations:\n    budcore.io/time-window: "at night"\n'
    with pytest.raises(ValidationErrors, match=r"job.yaml:\d+.*HH:MM-HH:MM"):
        load(tmp_path, annotations=bad)


@pytest.mark.parametrize(
    ("text", "window"),
    [
        ("22:00-06:00", TimeWindow(start=time(22), end=time(6))),
        (
            "9:30 - 17:00 America/New_York",
            TimeWindow(start=time(9, 30), end=time(17), timezone="America/New_York"),
        ),
    ],
)
def test_annotation_forms(text: str, window: TimeWindow) -> None:
    assert window_from_annotation(text) == window


@pytest.mark.parametrize("text", ["", "22:00", "22:00-06:00 Mars/Base", "25:00-06:00", "22:00-22:00", 7])
def test_bad_annotations(text: object) -> None:
    with pytest.raises(ValidationError) as info:
        window_from_annotation(text)
    assert info.value.path == "metadata.annotations[budcore.io/time-window]"
