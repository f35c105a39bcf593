"""Fuzzing the command line (issue #18): random flags and values for ``budcore simulate``,
``compare``, ``plan``, ``validate``, ``trace inspect``, ``recommend`` and ``cost report``.

Each example starts from a small valid invocation, then adds, repeats, drops or corrupts flags
with hostile values, and runs it in process through :func:`budcore.cli.main` (which lets any
exception that is not a ``BudcoreError`` escape: a traceback fails the example). It must end
within its time bound with exit 0, 1 or 2, print no ``Traceback``, say on failure what is wrong
in one line per problem, and leave no half-written output directory: a run that fails leaves
``--out`` absent or empty (the directory is fresh for each example).

Run counts are bounded by the strategies (``--workers`` is never above 1 here: a process pool
per example would cost more than the example; the bounds on ``--workers`` and ``--seeds`` have
their own tests).
"""

from __future__ import annotations

import itertools
import os
from pathlib import Path

import pytest
from budcore_simulator import sweep
from budcore_simulator.workload.limits import MAX_REPLICATIONS
from hypothesis import event, given, settings
from hypothesis import strategies as st
from support.fuzz import FUZZ, HOSTILE_TEXT, run_cli
from support.scenarios import SMALL

from budcore.cost.metering import UsageRecord
from budcore.cost.usagefile import write_usage
from budcore.testing.examples import examples

OPENB_PODS = Path(__file__).parent.parent / "simulator" / "data" / "openb" / "openb_pod_list_sample.csv"

# Values a person might type, right or wrong, mixed with the hostile ones of the other suites.
values = st.one_of(
    st.sampled_from(HOSTILE_TEXT),
    st.sampled_from(["table", "json", "csv", "xml", "tenant", "queue", "job", "fifo", "fair", "strict-fifo"]),
    st.sampled_from(["2026-03-01", "2026-03-01T12:00:00Z", "2026-02-30", "9999-12-31", "yesterday"]),
    st.sampled_from(["pool.a100.nodes=1,2", "pool.a100.nodes=1..3", "workload.rate=x0.5,x2", "nope=1", "="]),
    st.sampled_from(["p95_wait<30m", "wait<", "cq=team:p95_wait<1h", "p95_wait<<1", "jct>=-1"]),
    st.sampled_from(["fractional=round-up", "strict=true", "x=y", "=", "include_cpu_only=maybe"]),
    st.integers(min_value=-3, max_value=5).map(str),
    st.sampled_from(["1000000000", "9" * 40, str(2**64), "100000", "2"]),
    st.text(max_size=10),
)


# What each flag is usually given: half the values drawn come from here, half are hostile.
PLAUSIBLE: dict[str, tuple[str, ...]] = {
    "--format": ("table", "json", "csv"),
    "--seed": ("0", "7", str(2**64 - 1), str(2**64)),
    "--seeds": ("1", "2", "3", "1000000000"),
    "--policy": ("fifo", "fair", "strict-fifo", "deadline-aware"),
    "-p": ("fifo", "fair", "strict-fifo", "deadline-aware"),
    "--vary": ("pool.a100.nodes=1,2", "pool.a100.nodes=1..4", "workload.rate=x0.5,x2", "pool.a100.nodes=0"),
    "--slo": ("p95_wait<30m", "cq=team:p95_wait<1h", "completed>=0.5", "deadline_miss<=0.1"),
    "--search": ("grid", "bisect"),
    "--as": ("openb", "budcore", "pai", "helios", "swf"),
    "--set": ("fractional=round-up", "include_cpu_only=true", "strict=true", "states=Running"),
    "--by": ("tenant", "queue", "job"),
    "--from": ("2026-03-01", "2026-02-28T00:00:00Z"),
    "--to": ("2026-03-02", "2026-03-01T02:00:00Z"),
    "--price-book": ("default",),
    "--tier-of": ("t=on-demand", "t=spot"),
    "--model-params": ("7B", "70e9", "1.5b", "1e400", "1e15"),
    "--task": ("train", "serve"),
    "--tokens": ("1e10", "2e12", "inf"),
    "--deadline": ("6h", "2d", "0h"),
    "--gpus": ("1", "8", "16", "12"),
    "--throughput": ("100", "2000", "1e30"),
    "--context": ("4096", "1"),
    "--batch": ("1", "16"),
    "--dtype": ("bf16", "fp16", "fp8", "int4", "fp64"),
    "--zero": ("0", "1", "3", "4"),
    "--recompute": ("auto", "full", "selective", "none"),
    "--layers": ("32", "80", "1"),
    "--hidden-size": ("4096", "8192", "5"),
    "--heads": ("32", "64", "7"),
    "--kv-heads": ("8", "3"),
    "--seq-len": ("4096", "1"),
}


def _flags(*names: str, chaos: bool) -> st.SearchStrategy[list[str]]:
    """One flag of ``names`` with a value: mostly a plausible one, else a hostile one; with
    ``chaos`` the value is hostile as often as not and the flag is sometimes left without one."""

    def with_value(name: str) -> st.SearchStrategy[list[str]]:
        plausible = PLAUSIBLE.get(name)
        if plausible is None:
            value = values
        elif chaos:
            value = st.one_of(st.sampled_from(plausible), values)
        else:
            value = st.one_of(st.sampled_from(plausible), st.sampled_from(plausible), values)
        pair = value.map(lambda v: [name, v])
        return st.one_of(pair, pair, st.just([name])) if chaos else pair

    return st.sampled_from(names).flatmap(with_value)


PLAN = ["plan", "{scenario}", "--vary", "pool.a100.nodes=1,2", "--slo", "p95_wait<30m"]
# command -> (the smallest valid invocation; its flags that take a value or none; does it write --out)
COMMANDS: dict[str, tuple[list[str], tuple[str, ...], bool]] = {
    "simulate": (
        ["simulate", "{scenario}", "--no-plots", "--out", "{out}"],
        ("--format", "--seed", "--no-plots", "--schema", "--out", "--kubeconfig", "--context"),
        True,
    ),
    "compare": (
        ["compare", "{scenario}", "-p", "fifo", "-p", "fair", "--workers", "1", "--out", "{out}"],
        ("--policy", "-p", "--seed", "--seeds", "--format", "--out"),
        True,
    ),
    "plan": (
        [*PLAN, "--workers", "1", "--out", "{out}"],
        ("--vary", "--slo", "--seed", "--seeds", "--search", "--format", "--out"),
        True,
    ),
    "validate": (["validate", "{scenario}"], ("--merge", "--format"), False),
    "trace inspect": (["trace", "inspect", "{trace}"], ("--format", "--as", "--task-path", "--set"), False),
    "recommend": (
        ["recommend", "--model-params", "7B", "--task", "train", "--tokens", "1e10", "--max-nodes", "2"],
        (
            "--model-params",
            "--task",
            "--tokens",
            "--deadline",
            "--gpus",
            "--throughput",
            "--context",
            "--batch",
            "--dtype",
            "--zero",
            "--recompute",
            "--layers",
            "--hidden-size",
            "--heads",
            "--kv-heads",
            "--seq-len",
            "--format",
        ),
        False,
    ),
    "cost report": (
        ["cost", "report", "--from", "2026-03-01", "--to", "2026-03-02", "--usage", "{usage}"],
        ("--from", "--to", "--by", "--format", "--usage", "--price-book", "--tier-of", "--store"),
        False,
    ),
}
_counter = itertools.count()


def _inputs(tmp_path: Path) -> dict[str, str]:
    """The files the base invocations name, and a fresh output directory."""
    scenario = tmp_path / "scenario.yaml"
    if not scenario.exists():
        scenario.write_text(SMALL)
        (tmp_path / "pods.csv").write_bytes(OPENB_PODS.read_bytes())
        start = "2026-03-01T01:00:00Z"
        record = {"job_id": "j1", "tenant": "t", "flavor": "h100", "accelerator": "nvidia-h100-80gb"}
        write_usage(
            tmp_path / "usage.csv",
            [
                UsageRecord.model_validate(
                    {**record, "devices": 1, "start": start, "end": "2026-03-01T03:00:00Z"}
                )
            ],
        )
    out = tmp_path / f"out-{next(_counter)}"
    return {
        "scenario": str(scenario),
        "trace": str(tmp_path / "pods.csv"),
        "usage": str(tmp_path / "usage.csv"),
    } | {"out": str(out)}


@pytest.fixture(autouse=True)
def _wide_terminal(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Wide enough that typer's usage panel never wraps its one-line message; and run in a
    scratch directory, since a fuzzed ``--out`` (or none) writes relative to it."""
    monkeypatch.setenv("COLUMNS", "1000")
    monkeypatch.delenv("KUBECONFIG", raising=False)
    monkeypatch.chdir(tmp_path)


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_each_base_invocation_succeeds(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str
) -> None:
    base, _, writes = COMMANDS[command]
    names = _inputs(tmp_path)
    code, _, _ = run_cli([part.format(**names) for part in base], capsys, seconds=120.0)
    assert code == 0
    if writes:
        assert any(Path(names["out"]).iterdir())


@settings(FUZZ, max_examples=examples(60))
@given(
    command=st.sampled_from(sorted(COMMANDS)),
    data=st.data(),
)
def test_fuzz_cli_flags(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str, data: st.DataObject
) -> None:
    base, flags, writes = COMMANDS[command]
    names = _inputs(tmp_path)
    argv = [part.format(**names) for part in base]
    # Half the examples are well-formed (flag, value) additions, half also drop or insert words.
    chaos = data.draw(st.booleans(), label="chaos")
    for _ in range(data.draw(st.integers(0, 2), label="drops") if chaos else 0):
        if len(argv) > 1:
            del argv[data.draw(st.integers(1, len(argv) - 1), label="drop")]
    for _ in range(data.draw(st.integers(1, 3), label="additions")):
        argv += data.draw(_flags(*flags, chaos=chaos), label="flag")
    if chaos and data.draw(st.booleans(), label="stray"):
        argv.insert(data.draw(st.integers(1, len(argv)), label="at"), data.draw(values, label="stray value"))
    # A fresh working directory per example: whatever a failed run leaves there (a relative
    # --out, the default budcore-out/...) is this example's.
    work = Path(names["out"]).with_name(Path(names["out"]).name + "-cwd")
    work.mkdir()
    os.chdir(work)
    code, _, _ = run_cli(argv, capsys)
    event(f"{command}: exit {code}")  # --hypothesis-show-statistics: how often each path ran
    if code and writes:
        for folder in (Path(names["out"]), work):
            left = (
                sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())
                if folder.exists()
                else []
            )
            assert not left, f"{argv}: a failed run left {left} in {folder}"


# What the fuzzing found -------------------------------------------------------------------------
def test_a_billion_replications_is_a_one_line_error_not_a_hang(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``--seeds 1000000000`` built a billion seeds before the first run (found by the fuzzer)."""
    names = _inputs(tmp_path)
    for command in ("compare", "plan"):
        argv = [part.format(**names) for part in COMMANDS[command][0]] + ["--seeds", "1000000000"]
        code, _, err = run_cli(argv, capsys)
        assert code == 2
        assert "--seeds must be at most 1,000, got 1,000,000,000" in err
        assert not Path(names["out"]).exists()
    assert sweep.replicate_seeds(7, MAX_REPLICATIONS)[0] == 7  # the bound itself is allowed
    assert len(sweep.replicate_seeds(7, MAX_REPLICATIONS)) == MAX_REPLICATIONS


class _PoolAsked(Exception):  # noqa: N818 - a probe, not an error
    """Raised by the stand-in pool to end the command once the pool size is known."""


def test_a_pool_never_has_more_workers_than_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    """``--workers 100000`` for two runs asked a fork-based pool for 100,000 processes, which it
    starts all at once (found by reading the pool's use while fuzzing ``--workers``)."""
    asked: list[int | None] = []

    def probe(max_workers: int | None = None, **_: object) -> None:
        asked.append(max_workers)
        raise _PoolAsked

    monkeypatch.setattr(sweep, "ProcessPoolExecutor", probe)
    specs = [object(), object()]
    for workers, expected in ((100_000, 2), (2, 2), (None, None)):
        with pytest.raises(_PoolAsked):
            sweep.run_all(specs, workers=workers)  # type: ignore[arg-type]
        assert asked[-1] == expected


@pytest.mark.parametrize(
    ("command", "flag", "value"),
    [
        ("trace inspect", "--set", "fractional=" + "9" * 5000),
        ("trace inspect", "--set", "strict=0x" + "f" * 50_000),
        ("compare", "--policy", "aging_step=" + "1" + "0" * 400),
        ("plan", "--vary", "policy.aging.step=1,1" + ":0" * 100_000),
    ],
)
def test_a_yaml_value_too_large_for_any_flag_is_a_one_line_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str, flag: str, value: str
) -> None:
    """Flag values read as YAML (``--set``, ``--policy``, ``--vary``): a number past a float's
    range was a ValueError/OverflowError traceback (int() of 5,000 digits, float() of 400)."""
    names = _inputs(tmp_path)
    argv = [part.format(**names) for part in COMMANDS[command][0]] + [flag, value]
    code, _, err = run_cli(argv, capsys)
    assert code in (1, 2), err[:300]
    assert len(err.strip().splitlines()) == 1, err[:300]
