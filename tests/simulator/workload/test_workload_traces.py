"""Trace readers on the shipped samples, malformed rows, mapping, ordering and options."""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path
from typing import Any

import pytest
from budcore_simulator.workload import (
    BudcoreCsvTrace,
    HeliosTrace,
    JobArrival,
    PaiTrace,
    SwfTrace,
    TraceOptions,
    generate_arrivals,
    merge_arrivals,
    open_trace,
    parse_generator_spec,
    parse_trace_spec,
)
from budcore_simulator.workload.traces import SAMPLES_DIR, sanitize_name

from budcore.domain.errors import ValidationError

GiB = 2**30
BUDCORE = SAMPLES_DIR / "budcore_jobs.csv"
HELIOS = SAMPLES_DIR / "helios_cluster_log.csv"
PAI_JOBS = SAMPLES_DIR / "pai_job_table.csv"
PAI_TASKS = SAMPLES_DIR / "pai_task_table.csv"
SWF = SAMPLES_DIR / "sample.swf"

HELIOS_HEADER = "job_id,user,vc,gpu_num,cpu_num,node_num,state,submit_time,start_time,end_time,duration,queue"


def arrival(**fields: Any) -> JobArrival:
    defaults: dict[str, Any] = {
        "tenant": "default",
        "local_queue": "default",
        "priority": "normal",
        "job_type": "batch",
        "checkpoint_interval_s": None,
        "deadline_s": None,
        "accelerator": None,
    }
    return JobArrival(**{**defaults, **fields})


def assert_sorted(arrivals: list[JobArrival]) -> None:
    assert [a.submit_s for a in arrivals] == sorted(a.submit_s for a in arrivals)
    assert arrivals[0].submit_s == 0.0


# budcore CSV --------------------------------------------------------------------------------------
def test_budcore_csv_sample() -> None:
    reader = BudcoreCsvTrace(
        BUDCORE, mapping={"rules": [{"match": {"user": "*"}, "tenant": "{user}", "local_queue": "notebooks"}]}
    )
    arrivals = list(reader)
    assert arrivals[0] == JobArrival(
        submit_s=0.0,
        runtime_s=7200.0,
        gpus_per_pod=8,
        pods=1,
        cpu_milli=32_000,
        memory_bytes=256 * GiB,
        tenant="research",
        local_queue="research-train",
        priority="high",
        job_type="training",
        job_class="finetune",
        job_id="llm-ft-001",
        checkpoint_interval_s=1800.0,
        deadline_s=None,
        accelerator="nvidia-h100-80gb",
    )
    assert arrivals[1].deadline_s == 2000.0  # rebased with the submit times
    ids = [a.job_id for a in arrivals]
    # notebook-001 comes one row after pretrain-001 in the file but is submitted earlier
    assert ids[:6] == [
        "llm-ft-001",
        "emb-batch-001",
        "chat-svc-001",
        "notebook-001",
        "pretrain-001",
        "eval-001",
    ]
    assert ids.index("sweep-001") < ids.index("sweep-002") < ids.index("sweep-003")  # ties keep file order
    notebook = arrivals[3]
    assert (notebook.tenant, notebook.local_queue, notebook.priority) == ("alice", "notebooks", "low")
    eval_job = arrivals[5]
    assert (eval_job.cpu_milli, eval_job.memory_bytes) == (4000, 32 * GiB)  # defaults per GPU
    etl = next(a for a in arrivals if a.job_id == "etl-001")
    assert (etl.gpus_per_pod, etl.cpu_milli) == (0, 16_000)  # CPU-only rows are kept in budcore CSV
    pretrain = next(a for a in arrivals if a.job_id == "pretrain-001")
    assert (pretrain.pods, pretrain.total_gpus) == (4, 32)
    assert_sorted(arrivals)
    assert reader.report.rows == 19 and reader.report.emitted == 19 and reader.report.reordered == 1


def test_budcore_csv_rejects_unknown_and_missing_columns(tmp_path: Path) -> None:
    path = tmp_path / "jobs.csv"
    path.write_text("job_id,submit_s,runtime_s,gpus\nj1,0,10,1\n")
    with pytest.raises(ValidationError) as info:
        list(BudcoreCsvTrace(path))
    assert (info.value.source, info.value.line, info.value.path) == (str(path), 1, "header")
    assert "gpus" in info.value.message
    path.write_text("job_id,submit_s\nj1,0\n")
    with pytest.raises(ValidationError, match="runtime_s"):
        list(BudcoreCsvTrace(path))


BAD_BUDCORE_ROWS = [
    ("j2,5,abc,1,,,", "runtime_s"),
    ("j3,6,10,-1,,,", "gpus_per_pod"),
    ("j4,7,10,1,lots,,", "cpu"),
    ("j5,8,10,1,,,Team A", "tenant"),
    ("j6,9,-10,1,,,", "runtime_s"),
]


def test_budcore_csv_malformed_rows_strict_and_lenient(tmp_path: Path) -> None:
    path = tmp_path / "jobs.csv"
    lines = ["job_id,submit_s,runtime_s,gpus_per_pod,cpu,memory,tenant", "j1,0,10,1,,,"]
    lines += [row for row, _ in BAD_BUDCORE_ROWS]
    lines.append("j7,10,10,1,,,")
    path.write_text("\n".join(lines) + "\n")

    lenient = BudcoreCsvTrace(path)
    assert [a.job_id for a in lenient] == ["j1", "j7"]
    report = lenient.report
    assert report.skipped == len(BAD_BUDCORE_ROWS)
    assert [(d.line, d.field) for d in report.details] == [
        (3 + i, field) for i, (_, field) in enumerate(BAD_BUDCORE_ROWS)
    ]
    assert str(report.details[0]).startswith(f"{path}:3: runtime_s:")

    with pytest.raises(ValidationError) as info:
        list(BudcoreCsvTrace(path, strict=True))
    error = info.value
    assert (error.source, error.line, error.path) == (str(path), 3, "runtime_s")
    assert str(error).startswith(f"{path}:3: runtime_s:")


# Helios -------------------------------------------------------------------------------------------
def test_helios_sample() -> None:
    reader = HeliosTrace(HELIOS)
    arrivals = list(reader)
    assert arrivals[0] == arrival(
        submit_s=0.0,
        runtime_s=36848.0,
        gpus_per_pod=1,
        pods=1,
        cpu_milli=1000,
        memory_bytes=32 * GiB,
        job_class="helios",
        job_id="helios-1425511",
    )
    assert arrivals[1] == arrival(
        submit_s=26.0,
        runtime_s=249.0,
        gpus_per_pod=4,
        pods=1,
        cpu_milli=16_000,
        memory_bytes=128 * GiB,
        job_class="helios",
        job_id="helios-1425512",
    )
    gang = next(a for a in arrivals if a.job_id == "helios-1425521")
    assert (gang.pods, gang.gpus_per_pod, gang.cpu_milli) == (4, 8, 32_000)
    assert_sorted(arrivals)
    assert (reader.report.rows, reader.report.emitted, reader.report.filtered) == (20, 18, 2)
    assert len(list(HeliosTrace(HELIOS, include_cpu_only=True))) == 20
    completed = list(HeliosTrace(HELIOS, states=("COMPLETED",)))
    assert len(completed) == 10


def test_helios_user_and_vc_mapping() -> None:
    mapping = {
        "rules": [
            {
                "match": {"vc": "vcJkd"},
                "tenant": "vision",
                "local_queue": "vision-{user}",
                "priority": "high",
            },
            {"match": {"vc": "vc[hp]*", "user": "uVMrF"}, "tenant": "nlp", "accelerator": "nvidia-a100-80gb"},
            {"match": {"vc": "vc*"}, "tenant": "{vc}"},
        ],
        "default_local_queue": "shared",
    }
    by_id = {a.job_id: a for a in HeliosTrace(HELIOS, mapping=mapping)}
    first = by_id["helios-1425511"]
    assert (first.tenant, first.local_queue, first.priority) == ("vision", "vision-uxbbc", "high")
    nlp = by_id["helios-1425512"]
    assert (nlp.tenant, nlp.local_queue, nlp.accelerator) == ("nlp", "shared", "nvidia-a100-80gb")
    other = by_id["helios-1425513"]  # vcpDC but user uzqls: falls through to the glob rule
    assert (other.tenant, other.local_queue, other.priority) == ("vcpdc", "shared", "normal")


def test_mapping_errors_name_the_field() -> None:
    with pytest.raises(ValidationError) as info:
        SwfTrace(SWF, mapping={"rules": [{"match": {"vc": "x"}, "tenant": "t"}]})
    assert info.value.path == "mapping.rules[0].match.vc"
    with pytest.raises(ValidationError) as info:
        HeliosTrace(HELIOS, mapping={"rules": [{"match": {"vc": "x"}, "tenant": "Not Valid"}]})
    assert "rules[0].tenant" in info.value.path
    with pytest.raises(ValidationError) as info:
        HeliosTrace(HELIOS, mapping={"rules": [{"match": {"vc": "x"}, "tenant": "{queue}"}]})
    assert info.value.path == "mapping.rules[0].tenant"


def test_helios_malformed_rows(tmp_path: Path) -> None:
    path = tmp_path / "cluster_log.csv"
    path.write_text(
        "\n".join(
            [
                HELIOS_HEADER,
                "1,uA,vcA,1,1,1,COMPLETED,2020-06-09 18:41:01,2020-06-09 18:41:01,2020-06-09 18:42:01,60,0",
                "2,uA,vcA,four,1,1,COMPLETED,2020-06-09 18:41:02,2020-06-09 18:41:02,"
                "2020-06-09 18:42:01,59,0",
                "3,uA,vcA,1,1,1,COMPLETED,yesterday,2020-06-09 18:41:03,2020-06-09 18:42:01,58,0",
                "4,uA,vcA,1,1,1,COMPLETED,2020-06-09 18:41:04,,,,0",
                "5,uA,vcA,1,1,1,COMPLETED,2020-06-09 18:41:05,2020-06-09 18:41:05,2020-06-09 18:42:05,,0",
                "6,uA,vcA,1,1,1,COMPLETED,2020-06-09 18:41:06,2020-06-09 18:41:06,"
                "2020-06-09 18:42:01,55,0,extra",
            ]
        )
        + "\n"
    )
    reader = HeliosTrace(path)
    arrivals = list(reader)
    # row 5 has no duration but start/end times: runtime is their difference
    assert [(a.job_id, a.submit_s, a.runtime_s) for a in arrivals] == [
        ("helios-1", 0.0, 60.0),
        ("helios-5", 4.0, 60.0),
    ]
    assert [(d.line, d.field) for d in reader.report.details] == [
        (3, "gpu_num"),
        (4, "submit_time"),
        (5, "duration"),
        (7, "row"),
    ]
    with pytest.raises(ValidationError) as info:
        list(HeliosTrace(path, strict=True))
    assert (info.value.source, info.value.line, info.value.path) == (str(path), 3, "gpu_num")


def test_reorder_window_and_late_rows(tmp_path: Path) -> None:
    rows = [HELIOS_HEADER]
    for job, minute in [(1, 0), (2, 5), (3, 2), (4, 6), (5, 7), (6, 8), (7, 1), (8, 9)]:
        stamp = f"2020-06-09 10:{minute:02d}:00"
        rows.append(f"{job},uA,vcA,1,1,1,COMPLETED,{stamp},{stamp},{stamp},60,0")
    path = tmp_path / "cluster_log.csv"
    path.write_text("\n".join(rows) + "\n")

    wide = HeliosTrace(path, reorder_window=10)
    assert [a.job_id for a in wide] == [f"helios-{n}" for n in (1, 7, 3, 2, 4, 5, 6, 8)]
    assert wide.report.reordered == 2

    # row 3 is within a window of 2, row 7 (minute 1) arrives after minute 5 was emitted
    narrow = HeliosTrace(path, reorder_window=2)
    assert [a.job_id for a in narrow] == [f"helios-{n}" for n in (1, 3, 2, 4, 5, 6, 8)]
    assert [(d.line, d.field) for d in narrow.report.details] == [(8, "submit_time")]
    assert "reorder_window" in narrow.report.details[0].reason

    with pytest.raises(ValidationError) as info:
        list(HeliosTrace(path, reorder_window=0, strict=True))
    assert info.value.line == 4 and "out of order" in info.value.message


def test_gzip_origin_horizon_limit_and_reiteration(tmp_path: Path) -> None:
    packed = tmp_path / "cluster_log.csv.gz"
    with HELIOS.open("rb") as src, gzip.open(packed, "wb") as dst:
        shutil.copyfileobj(src, dst)
    reader = HeliosTrace(packed)
    assert list(reader) == list(HeliosTrace(HELIOS))
    assert list(reader) == list(HeliosTrace(HELIOS))  # a reader can be replayed
    assert reader.report.emitted == 18

    assert len(list(HeliosTrace(HELIOS, limit=5))) == 5
    assert [a.submit_s for a in HeliosTrace(HELIOS, horizon=120)] == [0.0, 26.0, 27.0, 64.0]
    origin = HeliosTrace(HELIOS, origin=1591728060.0)  # 2020-06-09 18:41:00 UTC
    first = next(iter(origin))
    assert first.submit_s == 1.0
    later = list(HeliosTrace(HELIOS, origin=1591728180.0))  # 18:43:00: earlier rows are filtered
    assert later[0].job_id == "helios-1425516" and later[0].submit_s == 2.0


# PAI ----------------------------------------------------------------------------------------------
def test_pai_sample() -> None:
    reader = PaiTrace(PAI_JOBS, PAI_TASKS)
    arrivals = list(reader)
    assert arrivals[0] == arrival(
        submit_s=0.0,
        runtime_s=38.0,  # span of the job's tasks
        gpus_per_pod=1,  # plan_gpu 50 (half a GPU) asks for one whole GPU
        pods=1,
        cpu_milli=6000,  # plan_cpu 600 = 6 cores
        memory_bytes=31_457_280_000,  # plan_mem 29.296875 GiB
        job_class="pai",
        job_id="pai-4f057009a5d481acec67b088",
    )
    # worker x4 (one GPU each) + ps x2 (CPU only): four GPU pods sharing the job's CPU and memory
    assert arrivals[1] == arrival(
        submit_s=52.0,
        runtime_s=3801.0,
        gpus_per_pod=1,
        pods=4,
        cpu_milli=14_000,
        memory_bytes=83_886_080_000,
        job_class="pai",
        job_id="pai-6a2d1b0c9e8f7a6b5c4d3e2f",
    )
    assert_sorted(arrivals)
    report = reader.report
    assert (report.rows, report.emitted, report.filtered, report.skipped, report.reordered) == (
        12,
        10,
        1,
        1,
        1,
    )
    assert (report.details[0].line, report.details[0].field) == (6, "end_time")
    assert len(list(PaiTrace(PAI_JOBS, PAI_TASKS, include_cpu_only=True))) == 11
    assert len(list(PaiTrace(PAI_JOBS, PAI_TASKS, states=("Terminated",)))) == 8


def test_pai_mapping_by_user_and_gpu_type() -> None:
    mapping = {
        "rules": [
            {"match": {"gpu_type": "V100*"}, "tenant": "team-{user}", "accelerator": "nvidia-v100"},
            {"match": {"user": "58540f191766"}, "tenant": "team-a", "local_queue": "team-a-lq"},
        ]
    }
    by_id = {a.job_id.removeprefix("pai-"): a for a in PaiTrace(PAI_JOBS, PAI_TASKS, mapping=mapping)}
    v100 = by_id["6a2d1b0c9e8f7a6b5c4d3e2f"]
    assert (v100.tenant, v100.local_queue, v100.accelerator) == (
        "team-58540f191766",
        "default",
        "nvidia-v100",
    )
    misc = by_id["4f057009a5d481acec67b088"]
    assert (misc.tenant, misc.local_queue, misc.accelerator) == ("team-a", "team-a-lq", None)


def test_pai_header_rows_and_malformed_tasks(tmp_path: Path) -> None:
    jobs = tmp_path / "pai_job_table.csv"
    tasks = tmp_path / "pai_task_table.csv"
    jobs.write_text(
        "job_name,inst_id,user,status,start_time,end_time\n"
        "j1,i1,u1,Terminated,100.0,200.0\n"
        "j2,i2,u1,Terminated,110.0\n"
        "j3,i3,u2,Terminated,120.0,300.0\n"
        "j4,i4,u2,Terminated,130.0,300.0\n"
    )
    tasks.write_text(
        "j1,worker,1.0,Terminated,101.0,200.0,600.0,30.0,100.0,T4\n"
        "j3,worker,two,Terminated,121.0,300.0,600.0,30.0,100.0,T4\n"
        "j4,worker,1.0,Terminated,131.0,300.0,600.0,30.0,-5,T4\n"
    )
    reader = PaiTrace(jobs, tasks)
    assert [a.job_id for a in reader] == ["pai-j1"]
    details = [(Path(d.source).name, d.line, d.field) for d in reader.report.details]
    assert details == [
        ("pai_task_table.csv", 2, "inst_num"),
        ("pai_task_table.csv", 3, "plan_gpu"),
        ("pai_job_table.csv", 3, "row"),
        ("pai_job_table.csv", 4, "job_name"),
        ("pai_job_table.csv", 5, "job_name"),
    ]
    with pytest.raises(ValidationError) as info:
        list(PaiTrace(jobs, tasks, strict=True))
    assert (info.value.source, info.value.line, info.value.path) == (str(tasks), 2, "inst_num")


# SWF ----------------------------------------------------------------------------------------------
def test_swf_sample_as_gpus() -> None:
    reader = SwfTrace(SWF)
    arrivals = list(reader)
    assert arrivals[0] == arrival(
        submit_s=0.0,
        runtime_s=3540.0,
        gpus_per_pod=8,
        pods=1,
        cpu_milli=32_000,
        memory_bytes=32 * GiB,  # 4 GiB per processor x 8
        job_class="swf",
        job_id="swf-1",
        estimated_runtime_s=3600.0,  # field 9, requested time
    )
    by_id = {a.job_id: a for a in arrivals}
    assert (by_id["swf-13"].pods, by_id["swf-13"].gpus_per_pod) == (8, 8)
    assert by_id["swf-7"].runtime_s == 3400.0  # the summary line, not the partial executions
    assert "swf-4" not in by_id
    assert_sorted(arrivals)
    report = reader.report
    assert (report.rows, report.emitted, report.filtered, report.skipped) == (20, 17, 2, 1)
    assert (report.details[0].line, report.details[0].field) == (24, "run_time")
    completed = list(SwfTrace(SWF, states=("completed",)))
    assert len(completed) == 14


def test_swf_as_cpus_and_queue_mapping() -> None:
    mapping = {
        "rules": [{"match": {"queue": "3"}, "tenant": "long-jobs", "local_queue": "q{queue}-g{group}"}]
    }
    arrivals = {a.job_id: a for a in SwfTrace(SWF, swf_processors="cpus", cpus_per_node=16, mapping=mapping)}
    big = arrivals["swf-13"]  # 64 processors on 16-CPU nodes
    assert (big.pods, big.gpus_per_pod, big.cpu_milli) == (4, 0, 16_000)
    assert (big.tenant, big.local_queue) == ("long-jobs", "q3-g1")
    assert arrivals["swf-2"].tenant == "default"
    assert len(arrivals) == 17  # CPU jobs are what was asked for: none filtered


def test_swf_malformed_lines(tmp_path: Path) -> None:
    path = tmp_path / "bad.swf"
    path.write_text(
        "; header\n"
        "1 0 0 100 4 -1 -1 4 -1 -1 1 1 1 1 1 1 -1 -1\n"
        "2 10 0 100 4 -1 -1 4 -1 -1 1 1 1 1 1\n"
        "3 x 0 100 4 -1 -1 4 -1 -1 1 1 1 1 1 1 -1 -1\n"
        "4 20 0 100 -1 -1 -1 -1 -1 -1 1 1 1 1 1 1 -1 -1\n"
    )
    reader = SwfTrace(path)
    assert [a.job_id for a in reader] == ["swf-1"]
    assert [(d.line, d.field) for d in reader.report.details] == [
        (3, "row"),
        (4, "submit_time"),
        (5, "allocated_processors"),
    ]
    with pytest.raises(ValidationError) as info:
        list(SwfTrace(path, strict=True))
    assert (info.value.line, info.value.path) == (3, "row")


# scenario specs -----------------------------------------------------------------------------------
def test_open_trace_from_a_spec_with_relative_paths() -> None:
    spec = parse_trace_spec(
        {
            "format": "pai",
            "path": "pai_job_table.csv",
            "task_path": "pai_task_table.csv",
            "job_class": "alibaba",
        }
    )
    reader = open_trace(spec, base_dir=SAMPLES_DIR)
    assert isinstance(reader, PaiTrace)
    assert next(iter(reader)).job_id == "alibaba-4f057009a5d481acec67b088"
    for fmt, name, kind in [
        ("helios", HELIOS, HeliosTrace),
        ("swf", SWF, SwfTrace),
        ("budcore", BUDCORE, BudcoreCsvTrace),
    ]:
        reader = open_trace(parse_trace_spec({"format": fmt, "path": str(name)}))
        assert isinstance(reader, kind) and len(list(reader)) > 10


@pytest.mark.parametrize(
    ("data", "path"),
    [
        ({"format": "pai", "path": "x.csv"}, "trace.task_path"),
        ({"format": "helios", "path": "x.csv", "task_path": "y.csv"}, "trace.task_path"),
        ({"format": "parquet", "path": "x"}, "trace.format"),
        ({"format": "helios", "path": "x.csv", "reorder_window": -1}, "trace.reorder_window"),
        ({"format": "helios", "path": "x.csv", "cpu_per_gpu": "many"}, "trace.cpu_per_gpu"),
        ({"format": "helios", "path": "x.csv", "mapping": {"default_tenant": "A B"}}, "trace.mapping"),
    ],
)
def test_bad_trace_specs_name_the_field(data: dict[str, Any], path: str) -> None:
    with pytest.raises(ValidationError) as info:
        parse_trace_spec(data, prefix="trace")
    assert info.value.path.startswith(path), str(info.value)


def test_missing_files_and_states_on_budcore(tmp_path: Path) -> None:
    with pytest.raises(ValidationError) as info:
        HeliosTrace(tmp_path / "nope.csv")
    assert info.value.path == "path"
    with pytest.raises(ValidationError) as info:
        PaiTrace(PAI_JOBS, tmp_path / "nope.csv")
    assert info.value.path == "task_path"
    with pytest.raises(ValidationError) as info:
        BudcoreCsvTrace(BUDCORE, TraceOptions(states=("done",)))
    assert info.value.path == "states"


@pytest.mark.parametrize(
    ("raw", "name"),
    [("vcJkd", "vcjkd"), ("u/x y", "u-x-y"), ("--A--", "a"), ("58540f191766", "58540f191766")],
)
def test_sanitize_name(raw: str, name: str) -> None:
    assert sanitize_name(raw) == name


def test_traces_and_generators_merge_into_one_ordered_stream() -> None:
    generated = generate_arrivals(
        parse_generator_spec(
            {
                "classes": [
                    {
                        "name": "probe",
                        "tenant": "ops",
                        "local_queue": "ops",
                        "count": 5,
                        "arrivals": {"kind": "fixed", "interval": 26},
                        "runtime": {"kind": "fixed", "value": 10},
                    }
                ]
            }
        ),
        seed=0,
    )
    merged = list(merge_arrivals(HeliosTrace(HELIOS, limit=4), generated))
    assert [(a.submit_s, a.job_id) for a in merged] == [
        (0.0, "helios-1425511"),
        (0.0, "probe-0"),
        (26.0, "helios-1425512"),
        (26.0, "probe-1"),
        (27.0, "helios-1425513"),
        (52.0, "probe-2"),
        (64.0, "helios-1425514"),
        (78.0, "probe-3"),
        (104.0, "probe-4"),
    ]


def test_swf_requested_time_is_the_declared_runtime_estimate() -> None:
    arrivals = {a.job_id: a for a in open_trace(parse_trace_spec({"format": "swf", "path": str(SWF)}))}
    assert (arrivals["swf-1"].runtime_s, arrivals["swf-1"].estimate_s) == (3540.0, 3600.0)
    assert (arrivals["swf-2"].runtime_s, arrivals["swf-2"].estimate_s) == (600.0, 900.0)
