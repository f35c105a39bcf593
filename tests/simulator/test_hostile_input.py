"""Hostile input: every number a scenario or a trace supplies is bounded, every file is read as
text or refused by name, and no input makes the load path raise anything but a clean error.

The bounds live in :mod:`budcore_simulator.workload.limits` (documented in
``simulator/workload/TRACES.md``); each case here was a hang, an ``OverflowError`` or silently
accepted before. The fuzz tests at the end run the load/validate path (``load_scenario``, the
first arrivals, a trace read to its end) on mutated scenarios and CSVs, each example under a
wall-clock bound, and accept only success or a one-line ``BudcoreError``.
"""

from __future__ import annotations

import gzip
import math
import shutil
from collections import deque
from collections.abc import Callable
from itertools import islice
from pathlib import Path
from typing import Any

import pytest
import yaml
from budcore_simulator.cli import builtin_scenarios
from budcore_simulator.cli import default_scenario_path as builtin_scenario_path
from budcore_simulator.scenario import load_scenario
from budcore_simulator.workload import generate_arrivals, parse_generator_spec
from budcore_simulator.workload.limits import MAX_DEVICES, MAX_JOBS, MAX_NODES, MAX_SAMPLES, MAX_SPAN_S
from budcore_simulator.workload.openb import OpenbTrace
from budcore_simulator.workload.traces import (
    BudcoreCsvTrace,
    HeliosTrace,
    PaiTrace,
    SwfTrace,
    TraceReader,
)
from hypothesis import example, given, settings
from hypothesis import strategies as st
from support.fuzz import FUZZ, HOSTILE_TEXT, clean_or_error, hostile_values, leaf_paths, replaced
from support.scenarios import SMALL

from budcore.domain.errors import BudcoreError, ValidationError, ValidationErrors
from budcore.testing.examples import examples

HEADER = "job_id,submit_s,runtime_s,gpus_per_pod,tenant,local_queue\n"
SCENARIOS_DIR = Path(builtin_scenario_path()).parent.parent
WORKLOAD = SMALL.index("workload:")
TRACE_SCENARIO = SMALL[:WORKLOAD] + "workload:\n  traces:\n    - {format: budcore, path: jobs.csv}\n"


def scenario(tmp_path: Path, text: str = SMALL, jobs: str | None = None) -> Path:
    path = tmp_path / "scenario.yaml"
    path.write_text(text)
    if jobs is not None:
        (tmp_path / "jobs.csv").write_text(jobs)
    return path


def load_error(path: Path) -> ValidationError:
    with pytest.raises(ValidationError) as info:
        loaded = load_scenario(path)
        list(loaded.arrivals())
    return info.value


# Bounds on scenario fields --------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("old", "new", "field", "words"),
    [
        ("horizon: 4h", "horizon: 1e308", "horizon", "10 years"),
        ("horizon: 4h", "horizon: 11y", "horizon", None),  # not a unit: still an error
        ("horizon: 4h", "horizon: 3651d", "horizon", "10 years"),
        ("rate: 20, per: 1h", "rate: 1000000, per: 1s", "workload.generators.classes[0].arrivals", "maximum"),
        ("nodes: 2,", "nodes: 100000000,", "fleet.pools[0].nodes", str(MAX_NODES)),
        ("gpus_per_node: 8,", "gpus_per_node: 1e30,", "fleet.pools[0].gpus_per_node", None),
        ("gpus_per_node: 8,", "gpus_per_node: 1000,", "fleet.pools[0].gpus_per_node", str(MAX_DEVICES)),
        ("nominalQuota: 16}", "nominalQuota: 1e400}", "nominalQuota", "quantity"),
        ("nominalQuota: 16}", "nominalQuota: 9223372036854775808}", "nominalQuota", "quantity"),
        ("nominalQuota: 256}", 'nominalQuota: "1e17"}', "nominalQuota", "quantity"),
        ("seed: 5", "seed: 1" + "0" * 30, "seed", None),
        ("horizon: 4h", "horizon: 4h\nsample_interval: 0.001", "sample_interval", "samples"),
        ("horizon: 4h", "horizon: 4h\nrunaway_factor: 1e300", "runaway_factor", None),
        ("horizon: 4h", "horizon: 4h\nstart: 9999-12-31T00:00:00Z", "start", "between"),
        (
            "gpus: {1: 0.6, 2: 0.2, 4: 0.1, 8: 0.1}\n",
            "gpus: {1: 0.6, 2: 0.2, 4: 0.1, 8: 0.1}\n  estimate_error: {sigma: 1e308}\n",
            "workload.estimate_error.sigma",
            None,
        ),
        (
            "horizon: 4h",
            "horizon: 4h\npolicy: {flavor_weights: {a100: 1e308}}",
            "policy.flavor_weights",
            None,
        ),
        ("horizon: 4h", "horizon: 4h\npolicy: {aging: {step: 1e12}}", "policy.aging.step", None),
        ("horizon: 4h", "horizon: 4h\nfailures: {mtbf: 1d, max_retries: 1e15}", "failures.max_retries", None),
        (
            "runtime: {kind: exponential, mean: 30m}",
            "runtime: {kind: exponential, mean: 1e308}",
            "mean",
            None,
        ),
        (
            "runtime: {kind: exponential, mean: 30m}",
            "runtime: {kind: lognormal, mu: 1e5, sigma: 1}",
            "mu",
            None,
        ),
        ("a100, product", 'a100, cpu: "1e400", product', "fleet.pools[0].cpu", "quantity"),
        # YAML numbers no field can hold: refused when read, before any conversion (int() of 5,000
        # digits is a ValueError, float() of 400 an OverflowError, 0x... a number nothing prints)
        ("seed: 5", "seed: " + "9" * 5000, "seed", "out of range"),
        ("horizon: 4h", "horizon: 1" + "0" * 400, "horizon", "2^1024"),
        ("horizon: 4h", "horizon: 1" + ":0" * 100_000, "horizon", "out of range"),
        ("nodes: 2,", "nodes: 0x" + "f" * 50_000 + ",", "fleet.pools[0].nodes", "out of range"),
        ("nominalQuota: 16}", "nominalQuota: 1" + ":0" * 200 + ".5}", "nominalQuota", "out of range"),
        ("horizon: 4h", "horizon: 4h\nstart: 2026-02-30", "start", "day is out of range"),
    ],
)
def test_numbers_above_their_maximum_name_file_line_and_field(
    tmp_path: Path, old: str, new: str, field: str, words: str | None
) -> None:
    assert old in SMALL
    error = load_error(scenario(tmp_path, SMALL.replace(old, new, 1)))
    text = str(error)
    assert field in text, text
    if words is not None:
        assert words in text, text
    problems = error.errors if isinstance(error, ValidationErrors) else [error]
    assert all(p.source is not None and "scenario.yaml" in p.source for p in problems)
    assert all(p.line is not None for p in problems), text


def test_a_class_submitting_more_jobs_than_a_run_may_hold_is_refused(tmp_path: Path) -> None:
    text = SMALL.replace("horizon: 4h", "horizon: 1000d").replace("rate: 20, per: 1h", "rate: 1000, per: 1s")
    error = load_error(scenario(tmp_path, text))
    assert error.path == "workload.generators.classes[0].arrivals"
    assert f"{MAX_JOBS:,}" in error.message
    # a count caps it: a fast class of a few jobs is fine
    text = text.replace("gpus: {1: 0.6", "count: 5\n        gpus: {1: 0.6")
    assert load_scenario(scenario(tmp_path, text)).scenario.horizon == 1000 * 86400


def test_a_node_dump_with_an_absurd_allocatable_is_refused(tmp_path: Path) -> None:
    dump = {
        "apiVersion": "v1",
        "kind": "List",
        "items": [
            {
                "metadata": {"name": "n0", "labels": {"nvidia.com/gpu.product": "NVIDIA-A100-SXM4-80GB"}},
                "status": {"allocatable": {"nvidia.com/gpu": "1e308", "cpu": "96", "memory": "1Ti"}},
            }
        ],
    }
    (tmp_path / "nodes.yaml").write_text(yaml.safe_dump(dump))
    text = SMALL.replace(
        "    - {name: a100, product: NVIDIA-A100-SXM4-80GB, gpus_per_node: 8, nodes: 2, "
        'price_per_gpu_hour: "3.50"}',
        "    []\n  nodes_file: nodes.yaml",
    ).replace("budcore.io/pool: a100", "nvidia.com/gpu.product: NVIDIA-A100-SXM4-80GB")
    error = load_error(scenario(tmp_path, text))
    assert error.source is not None and error.source.endswith("nodes.yaml")
    assert "allocatable" in error.path
    dump["items"][0]["status"]["allocatable"]["nvidia.com/gpu"] = "1000"  # type: ignore[index]
    (tmp_path / "nodes.yaml").write_text(yaml.safe_dump(dump))
    assert f"maximum of {MAX_DEVICES} devices" in load_error(scenario(tmp_path, text)).message


def test_pipeline_runs_every_instant_until_the_horizon_are_bounded(tmp_path: Path) -> None:
    folder = tmp_path / "pipelines"
    shutil.copytree(SCENARIOS_DIR / "pipelines", folder)
    path = folder / "scenario.yaml"
    text = path.read_text()
    assert "arrivals: {every: 1h, count: 10, start: 0}" in text
    path.write_text(text.replace("arrivals: {every: 1h, count: 10, start: 0}", "arrivals: {every: 1e-9}"))
    error = load_error(path)
    assert error.path == "workload.pipelines[0].arrivals.every"
    assert f"{MAX_JOBS:,}" in error.message


def test_drawn_runtimes_never_pass_the_longest_duration() -> None:
    spec = parse_generator_spec(
        {
            "classes": [
                {
                    "name": "tail",
                    "tenant": "t",
                    "local_queue": "q",
                    "count": 200,
                    "arrivals": {"kind": "fixed", "interval": 1},
                    "runtime": {"kind": "lognormal", "mu": 100, "sigma": 10},
                }
            ]
        }
    )
    runtimes = [a.runtime_s for a in generate_arrivals(spec, 1)]
    assert max(runtimes) == MAX_SPAN_S
    assert all(math.isfinite(r) for r in runtimes)


def test_estimates_of_modelled_misestimation_are_capped(tmp_path: Path) -> None:
    text = SMALL + "  estimate_error: {sigma: 10, bias: 1000}\n"
    arrivals = list(islice(load_scenario(scenario(tmp_path, text)).arrivals(), 50))
    assert max(a.estimated_runtime_s or 0 for a in arrivals) <= MAX_SPAN_S


# Bounds on trace rows ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("row", "field"),
    [
        ("b,1e308,60,1,team,main", "submit_s"),
        ("b,400000000,60,1,team,main", "submit_s"),
        ("b,0,1e308,1,team,main", "runtime_s"),
        ("b,0,60,1e30,team,main", "gpus_per_pod"),
        ("b,0,60,300,team,main", "gpus_per_pod"),
    ],
)
def test_trace_values_above_their_maximum_are_invalid_rows(tmp_path: Path, row: str, field: str) -> None:
    jobs = f"{HEADER}a,0,60,1,team,main\n{row}\n"
    loaded = load_scenario(scenario(tmp_path, TRACE_SCENARIO, jobs))
    assert [a.job_id for a in loaded.arrivals()] == ["a"]
    (reader,) = loaded.trace_readers
    (skipped,) = reader.report.details
    assert (skipped.line, skipped.field) == (3, field)
    strict = TRACE_SCENARIO.replace("path: jobs.csv}", "path: jobs.csv, strict: true}")
    error = load_error(scenario(tmp_path, strict, jobs))
    assert (error.line, error.path) == (3, field)
    assert error.source is not None and error.source.endswith("jobs.csv")


def test_without_a_horizon_a_run_is_bounded_by_its_samples(tmp_path: Path) -> None:
    text = TRACE_SCENARIO.replace("horizon: 4h", "sample_interval: 1s")
    jobs = f"{HEADER}a,0,60,1,team,main\nb,{MAX_SAMPLES + 10},60,1,team,main\n"
    error = load_error(scenario(tmp_path, text, jobs))
    assert error.path == "sample_interval"
    assert "samples" in error.message and "job b" in error.message


def test_a_trace_job_on_a_missing_local_queue_is_reported_not_silently_rejected(tmp_path: Path) -> None:
    jobs = f"{HEADER}a,0,60,1,team,main\nb,10,60,1,team,nope\nc,20,60,1,ghost,main\n"
    loaded = load_scenario(scenario(tmp_path, TRACE_SCENARIO, jobs))
    assert [a.job_id for a in loaded.arrivals()] == ["a"]
    (reader,) = loaded.trace_readers
    assert [(d.line, d.field) for d in reader.report.details] == [(3, "local_queue"), (4, "local_queue")]
    assert "LocalQueue team/nope" in reader.report.details[0].reason
    assert "LocalQueues: team/main" in reader.report.details[0].reason
    # every job on missing queues: no job at all, an error
    error = load_error(scenario(tmp_path, TRACE_SCENARIO, f"{HEADER}b,10,60,1,team,nope\n"))
    assert "no job read from" in error.message and "LocalQueue team/nope" in error.message


# Encodings ------------------------------------------------------------------------------------------
def test_a_utf8_byte_order_mark_does_not_hide_the_first_column(tmp_path: Path) -> None:
    path = tmp_path / "jobs.csv"
    path.write_bytes(b"\xef\xbb\xbf" + f"{HEADER}a,0,60,1,team,main\n".encode())
    assert [a.job_id for a in BudcoreCsvTrace(path)] == ["a"]


@pytest.mark.parametrize(
    ("content", "line", "words"),
    [
        (HEADER.encode() + b"a,0,60,1,t\xe9am,main\n", 2, "not UTF-8 text: byte 0xe9"),
        ("job_id,submit_s,runtime_s\n".encode("utf-16"), 1, "UTF-16"),
        (b"job_id,submit_s,runtime_s\na\x00,0,60\n", 2, "NUL bytes"),
        (b"\x7fELF\x02\x01\x01\x00\x00\x00", 1, "binary file"),
        (b"", None, "is empty"),
        (b"x" * (2**20 + 10), 1, "longer than 1 MiB"),
    ],
)
def test_bytes_that_are_not_a_text_trace_are_an_error_naming_the_file(
    tmp_path: Path, content: bytes, line: int | None, words: str
) -> None:
    path = tmp_path / "jobs.csv"
    path.write_bytes(content)
    with pytest.raises(ValidationError) as info:
        list(BudcoreCsvTrace(path))
    assert words in str(info.value)
    assert (info.value.source, info.value.line) == (str(path), line)


def test_a_gz_that_is_not_gzip_and_a_truncated_one_are_errors(tmp_path: Path) -> None:
    fake = tmp_path / "jobs.csv.gz"
    fake.write_bytes(f"{HEADER}a,0,60,1,team,main\n".encode())
    with pytest.raises(ValidationError, match="cannot read"):
        list(BudcoreCsvTrace(fake))
    whole = gzip.compress(f"{HEADER}".encode() + b"a,0,60,1,team,main\n" * 2000)
    fake.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(ValidationError, match="cannot read"):
        list(BudcoreCsvTrace(fake))


def test_a_header_without_rows_is_an_error_not_an_empty_workload(tmp_path: Path) -> None:
    error = load_error(scenario(tmp_path, TRACE_SCENARIO, HEADER))
    assert "no job read from" in error.message and "no data row" in error.message


def test_a_scenario_that_is_not_utf8_text_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "scenario.yaml"
    path.write_bytes(SMALL.encode().replace(b"name: small", b"name: sm\xe9ll"))
    with pytest.raises(BudcoreError) as info:
        load_scenario(path)
    assert str(path) in str(info.value)


# Fuzzing the load path -----------------------------------------------------------------------------
OPENB = """\
name: openb
horizon: 1h
fleet:
  node_list: {format: openb, path: nodes.csv}
  prices: {G2: "1.10"}
queues:
  documents:
    - {apiVersion: kueue.x-k8s.io/v1beta2, kind: ResourceFlavor, metadata: {name: t4},
       spec: {nodeLabels: {nvidia.com/gpu.product: T4}}}
    - {apiVersion: kueue.x-k8s.io/v1beta2, kind: ResourceFlavor, metadata: {name: g2},
       spec: {nodeLabels: {nvidia.com/gpu.product: G2}}}
    - apiVersion: kueue.x-k8s.io/v1beta2
      kind: ClusterQueue
      metadata: {name: cluster}
      spec:
        namespaceSelector: {}
        resourceGroups:
          - coveredResources: [nvidia.com/gpu, cpu, memory]
            flavors:
              - name: t4
                resources: [{name: nvidia.com/gpu, nominalQuota: 8}, {name: cpu, nominalQuota: 200},
                            {name: memory, nominalQuota: 2Ti}]
              - name: g2
                resources: [{name: nvidia.com/gpu, nominalQuota: 8}, {name: cpu, nominalQuota: 200},
                            {name: memory, nominalQuota: 2Ti}]
    - {apiVersion: kueue.x-k8s.io/v1beta2, kind: LocalQueue, metadata: {name: default, namespace: default},
       spec: {clusterQueue: cluster}}
workload:
  traces:
    - {format: openb, path: pods.csv, fractional: round-up}
"""
OPENB_FILES = {
    "nodes.csv": "sn,cpu_milli,memory_mib,gpu,model\nn0,104000,524288,2,T4\nn1,96000,393216,8,G2\n",
    "pods.csv": "name,cpu_milli,memory_mib,num_gpu,gpu_milli,gpu_spec,qos,pod_phase,creation_time,"
    "deletion_time,scheduled_time\np0,4000,8192,1,500,T4,LS,Running,0,600,0\n"
    "p1,8000,16384,2,1000,G2|T4,BE,Succeeded,60,900,61\n",
}
BASES = {
    "generators": SMALL,
    "trace": TRACE_SCENARIO,
    "openb": OPENB,
}


def write_inputs(tmp_path: Path) -> None:
    """The files the base scenarios name."""
    (tmp_path / "jobs.csv").write_text(f"{HEADER}a,0,60,1,team,main\nb,30,600,2,team,main\n")
    for name, text in OPENB_FILES.items():
        (tmp_path / name).write_text(text)


def test_the_fuzzed_scenarios_load_as_they_are(tmp_path: Path) -> None:
    write_inputs(tmp_path)
    for text in BASES.values():
        path = tmp_path / "scenario.yaml"
        path.write_text(text)
        assert list(islice(load_scenario(path).arrivals(), 3))


def exercise(path: Path) -> None:
    """The load path: validate the file, then the first arrivals (generators, traces)."""
    loaded = load_scenario(path)
    deque(islice(loaded.arrivals(), 200), maxlen=0)  # drawn and dropped


@FUZZ
@given(
    base=st.sampled_from(sorted(BASES)),
    edits=st.lists(st.tuples(st.integers(min_value=0), hostile_values), min_size=1, max_size=3),
)
def test_fuzz_scenario_fields(tmp_path: Path, base: str, edits: list[tuple[int, Any]]) -> None:
    data = yaml.safe_load(BASES[base])
    for index, value in edits:
        paths = leaf_paths(data)
        data = replaced(data, paths[index % len(paths)], value)
    path = tmp_path / "scenario.yaml"
    try:
        text = yaml.safe_dump(data, allow_unicode=True)
    except yaml.YAMLError:
        return  # not expressible as YAML: nothing to load
    path.write_text(text, encoding="utf-8")
    write_inputs(tmp_path)
    clean_or_error(lambda: exercise(path))


@settings(FUZZ, max_examples=examples(60))
@given(
    name=st.sampled_from(builtin_scenarios()),
    edits=st.lists(st.tuples(st.integers(min_value=0), hostile_values), min_size=1, max_size=2),
)
# Integers past a float's range in durations (horizon, sample_interval, runtime.mean) and a
# quota: float() of them was an OverflowError traceback (and int() of 4,301 digits a ValueError);
# the reader refuses them at their field now, before converting them.
@example(name="default", edits=[(4, 10**4000)])  # horizon
@example(name="budgets", edits=[(5, 10**309)])  # sample_interval
@example(name="pipelines", edits=[(50, 16**2000)])  # workload.generators.classes[0].runtime.mean
@example(name="nodes-dump", edits=[(63, -(10**400))])  # queues.documents[4]...nominalQuota
def test_fuzz_the_built_in_scenarios(tmp_path: Path, name: str, edits: list[tuple[int, Any]]) -> None:
    """Every built-in scenario (pipelines, bookings, money, node dumps, replicate blocks, ...) with
    hostile values in its fields, its side files beside it."""
    folder = tmp_path / name
    shutil.copytree(SCENARIOS_DIR / name, folder, dirs_exist_ok=True)
    data = yaml.safe_load((folder / "scenario.yaml").read_text())
    for index, value in edits:
        paths = leaf_paths(data)
        data = replaced(data, paths[index % len(paths)], value)
    path = folder / "scenario.yaml"
    try:
        path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    except yaml.YAMLError:
        return
    clean_or_error(lambda: exercise(path), seconds=20.0)


@FUZZ
@given(
    base=st.sampled_from(sorted(BASES)),
    position=st.integers(min_value=0),
    junk=st.binary(min_size=1, max_size=8)
    | st.sampled_from([b"\xef\xbb\xbf", b"\x00", b"{", b"&a", b"*a", b"!!python/object:os.system"]),
)
def test_fuzz_scenario_bytes(tmp_path: Path, base: str, position: int, junk: bytes) -> None:
    raw = BASES[base].encode()
    at = position % (len(raw) + 1)
    path = tmp_path / "scenario.yaml"
    path.write_bytes(raw[:at] + junk + raw[at:])
    write_inputs(tmp_path)
    clean_or_error(lambda: exercise(path))


READERS: dict[str, tuple[Callable[[Path], TraceReader], tuple[str, ...]]] = {
    "budcore": (
        BudcoreCsvTrace,
        (
            "job_id",
            "submit_s",
            "runtime_s",
            "gpus_per_pod",
            "pods",
            "cpu",
            "memory",
            "priority",
            "deadline_s",
            "checkpoint_interval_s",
            "max_duration_s",
        ),
    ),
    "helios": (
        HeliosTrace,
        (
            "job_id",
            "user",
            "vc",
            "gpu_num",
            "cpu_num",
            "node_num",
            "state",
            "submit_time",
            "start_time",
            "end_time",
            "duration",
        ),
    ),
    "openb": (
        OpenbTrace,
        (
            "name",
            "cpu_milli",
            "memory_mib",
            "num_gpu",
            "gpu_milli",
            "gpu_spec",
            "qos",
            "pod_phase",
            "creation_time",
            "deletion_time",
            "scheduled_time",
        ),
    ),
    "pai": (
        lambda path: PaiTrace(path, path),
        ("job_name", "inst_id", "user", "status", "start_time", "end_time"),
    ),
    "swf": (SwfTrace, ()),
}
cells = st.one_of(
    st.sampled_from(HOSTILE_TEXT),
    st.integers(min_value=-(2**70), max_value=2**70).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.sampled_from(
        ["0", "1", "8", "60", "1000", "V100M16|V100M32", "G2", "LS", "Running", "2020-01-01 00:00:00"]
    ),
    st.text(max_size=8),
)


@FUZZ
@given(
    fmt=st.sampled_from(sorted(READERS)),
    rows=st.lists(st.lists(cells, min_size=0, max_size=20), min_size=0, max_size=6),
    drop=st.integers(min_value=0, max_value=3),
    prefix=st.sampled_from([b"", b"\xef\xbb\xbf", b"\xff\xfe", b"\x00"]),
    separator=st.sampled_from([",", " ", "\t", ";"]),
    strict=st.booleans(),
)
def test_fuzz_trace_rows(
    tmp_path: Path,
    fmt: str,
    rows: list[list[str]],
    drop: int,
    prefix: bytes,
    separator: str,
    strict: bool,
) -> None:
    make, columns = READERS[fmt]
    header = list(columns[: len(columns) - drop] if drop < len(columns) else columns)
    lines = [separator.join(header)] if header else []
    lines += [separator.join(row) for row in rows]
    path = tmp_path / "trace.csv"
    path.write_bytes(prefix + "\n".join(lines).encode("utf-8", "surrogatepass"))

    def read() -> None:
        reader = make(path)
        if strict:
            reader.options = reader.options.model_copy(update={"strict": True})
        list(reader)

    clean_or_error(read)


@FUZZ
@given(fmt=st.sampled_from(sorted(READERS)), content=st.binary(max_size=300))
def test_fuzz_trace_bytes(tmp_path: Path, fmt: str, content: bytes) -> None:
    path = tmp_path / "trace.csv"
    path.write_bytes(content)
    clean_or_error(lambda: list(READERS[fmt][0](path)))
