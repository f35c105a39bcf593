"""Capacity bookings in the simulator (issue #13): the scenario's ``reservations`` are booked on the
scheduler before the run, the cycle at a booking's start evicts what stands in its room (the engine
stops, releases and requeues it like a preemption victim), and the report measures each booking's
use by its owner and charges the unused booked time."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest
from budcore_simulator.build import build_simulation
from budcore_simulator.engine import JobRecord, Simulation, SimulationResult
from budcore_simulator.report import build_report, records_csv
from budcore_simulator.scenario import load_scenario, scenario_json_schema
from budcore_simulator.status import SimJobStatus

from budcore.cli import main
from budcore.domain.errors import ValidationError

HOUR = 3600.0

# One ClusterQueue of 8 GPUs (two 4-GPU nodes); tenant a books all of them from 2 h to 4 h.
HEAD = """\
name: booking
seed: 1
fleet:
  pools:
    - {name: a100, gpus_per_node: 4, nodes: NODES, price_per_gpu_hour: "2.00"}
queues:
  documents:
    - {apiVersion: kueue.x-k8s.io/v1beta2, kind: ResourceFlavor, metadata: {name: a100},
       spec: {nodeLabels: {budcore.io/pool: a100}}}
    - apiVersion: kueue.x-k8s.io/v1beta2
      kind: ClusterQueue
      metadata: {name: cq}
      spec:
        namespaceSelector: {}
        preemption: {withinClusterQueue: LowerPriority}
        resourceGroups:
          - coveredResources: [nvidia.com/gpu, cpu, memory]
            flavors:
              - name: a100
                resources:
                  - {name: nvidia.com/gpu, nominalQuota: QUOTA}
                  - {name: cpu, nominalQuota: 256}
                  - {name: memory, nominalQuota: 4Ti}
    - {apiVersion: kueue.x-k8s.io/v1beta2, kind: LocalQueue, metadata: {name: q, namespace: a},
       spec: {clusterQueue: cq}}
    - {apiVersion: kueue.x-k8s.io/v1beta2, kind: LocalQueue, metadata: {name: q, namespace: b},
       spec: {clusterQueue: cq}}
policy: {preemption_grace: GRACE}
reservations:
  - name: slot
    owner: a
    cluster_queue: cq
    flavor: a100
    resource: nvidia.com/gpu
    quantity: 8
    start: 2h
    end: 4h
"""


def scenario(classes: str, *, nodes: int = 2, quota: int = 8, grace: str = "0s", extra: str = "") -> str:
    head = HEAD.replace("NODES", str(nodes)).replace("QUOTA", str(quota)).replace("GRACE", grace)
    return f"{head}{extra}workload:\n  generators:\n    classes:\n{classes}"


def job_class(
    name: str,
    tenant: str,
    gpus: int,
    at: str,
    runtime: str,
    count: int = 1,
    more: dict[str, str] | None = None,
) -> str:
    fields = "".join(f", {k}: {v}" for k, v in (more or {}).items())
    return (
        f"      - {{name: {name}, tenant: {tenant}, local_queue: q, count: {count}, gpus: {gpus}, "
        f"gpus_per_node: 4, start: {at}, arrivals: {{kind: fixed, interval: 1s}}, "
        f"runtime: {{kind: fixed, value: {runtime}}}{fields}}}\n"
    )


def run(tmp_path: Path, text: str) -> tuple[SimulationResult, dict[str, JobRecord]]:
    path = tmp_path / "scenario.yaml"
    path.write_text(text)
    result = build_simulation(load_scenario(path)).run()
    return result, {r.arrival.job_id: r for r in result.records}


# (a) The owner finds its room at the start ---------------------------------------------------------
FILLERS = job_class("filler", "b", 4, "0s", "10h", count=2)
OWNER = job_class("owner", "a", 8, "2h", "1h")


@pytest.mark.parametrize("grace", [0.0, 30.0])
def test_the_owner_starts_at_the_start_and_the_preemptible_guests_are_evicted_and_requeued(
    tmp_path: Path, grace: float
) -> None:
    """Tenant b's preemptible jobs fill the 8 GPUs before the booking (they may: they can be
    evicted). At 2 h the cycle evicts them; after the preemption grace period they are stopped and
    requeued, and the owner's 8-GPU job, submitted at 2 h, starts in that same instant's cycles.
    The guests come back when the booking ends at 4 h (the owner's job ended at 3 h, but the room
    is the owner's until 4 h)."""
    result, jobs = run(tmp_path, scenario(FILLERS + OWNER, grace=f"{grace:g}s"))
    owner = jobs["owner-0"]
    assert owner.start_s == 2 * HOUR + grace and owner.status is SimJobStatus.COMPLETED
    for job_id in ("filler-0", "filler-1"):
        filler = jobs[job_id]
        assert filler.start_s is not None and filler.start_s < HOUR
        assert (filler.evictions, filler.preemptions) == (1, 0)
        assert filler.status is SimJobStatus.COMPLETED
        # Requeued at the eviction and back when the booking ends; the work since the (absent)
        # checkpoint was lost.
        assert filler.end_s == pytest.approx(4 * HOUR + 10 * HOUR)
        assert filler.lost_gpu_s == pytest.approx(4 * (2 * HOUR + grace - filler.start_s))
    assert result.stats.evictions == 2 and result.stats.preemptions == 0
    report = build_report(result)
    assert report["engine"]["evictions"] == 2 and report["overall"]["evictions"] == 2
    assert report["reservations"]["slot"]["evicted_at_start"] == 2
    rows = records_csv(result.records, end_s=result.horizon_s).splitlines()
    assert rows[0].split(",").index("evictions") == rows[0].split(",").index("preemptions") + 1


def test_an_evicted_job_says_why_until_it_runs_again(tmp_path: Path) -> None:
    seen: list[str] = []

    def watch(sim: Simulation, now: float) -> None:
        record = sim.records.get("filler-0")
        if record is not None and record.status is SimJobStatus.QUEUED and 2 * HOUR <= now < 4 * HOUR:
            seen.append(record.reason)

    path = tmp_path / "scenario.yaml"
    path.write_text(scenario(FILLERS + OWNER))
    build_simulation(load_scenario(path), observer=watch).run()
    assert seen and seen[0].startswith("evicted (reservation slot for a starts at 2026-01-05T02:00:00")


def test_the_booked_room_survives_a_controller_restart(tmp_path: Path) -> None:
    """The controller restarts at 3 h, inside the booking: its rebuilt scheduler books again, so a
    guest arriving meanwhile still waits for the end (the owner's job is done by then)."""
    extra = "failures: {controller_restart: {every: 3h, downtime: 2m}}\n"
    guest = job_class("guest", "b", 4, "2h30m", "1h")
    _, jobs = run(tmp_path, scenario(OWNER + guest, extra=extra))
    assert jobs["owner-0"].start_s == 2 * HOUR
    assert jobs["guest-0"].start_s == 4 * HOUR


# (b) Who may use the room before the start ---------------------------------------------------------
@pytest.mark.parametrize(
    ("fields", "runtime", "start", "end"),
    [
        # No runtime to go by and not preemptible: it could still hold the room at 2 h, so it
        # waits, with the 8 GPUs idle, until the booking is over.
        ({"preemptible": "false", "declare_runtime": "false"}, 1.5, 4.0, 5.5),
        # Not preemptible but declared to end by the start: it may use the room meanwhile.
        ({"preemptible": "false"}, 1.5, 0.0, 1.5),
        # Preemptible: it may use the room; still there at 2 h, it is evicted, requeued, and runs
        # its 3 h again from the end of the booking.
        ({"declare_runtime": "false"}, 3.0, 0.0, 7.0),
    ],
)
def test_a_guest_uses_the_room_before_the_start_only_if_it_ends_by_then_or_can_be_evicted(
    tmp_path: Path, fields: dict[str, str], runtime: float, start: float, end: float
) -> None:
    guest = job_class("guest", "b", 4, "0s", f"{runtime}h", more=fields)
    result, jobs = run(tmp_path, scenario(guest))
    record = jobs["guest-0"]
    assert (record.start_s, record.end_s) == (start * HOUR, end * HOUR)
    assert record.evictions == (1 if end - start > runtime else 0)
    assert record.status is SimJobStatus.COMPLETED
    csv_row = next(r for r in records_csv(result.records).splitlines() if r.startswith("guest-0,"))
    estimate = csv_row.split(",")[13]
    assert (estimate == "") == ("declare_runtime" in fields)


def test_a_guest_without_a_runtime_never_runs_in_the_booked_room(tmp_path: Path) -> None:
    """The same guest, watched after every event: it holds no quota at any instant of
    ``[submission, end of the booking)``."""
    guest = job_class("guest", "b", 4, "30m", "1h", more={"preemptible": "false", "declare_runtime": "false"})
    path = tmp_path / "scenario.yaml"
    path.write_text(scenario(guest))
    held: list[float] = []

    def watch(sim: Simulation, now: float) -> None:
        record = sim.records.get("guest-0")
        if record is not None and record.admission is not None:
            held.append(now)

    build_simulation(load_scenario(path), observer=watch).run()
    assert held and min(held) == 4 * HOUR


# (c) Reservation use, by hand -------------------------------------------------------------------
# 16 GPUs, four 4-GPU nodes; tenant a books 8 of them from 2 h to 4 h at $2.00 per GPU-hour.
#   owner-early: 4 GPUs, 1 h to 2 h 30 m          -> 0.5 h × 4 = 2 GPU-h inside the booking
#   owner-big:   8 GPUs, 3 h to 5 h               -> 1 h × 8   = 8 GPU-h inside it
#   owner-small: 4 GPUs, 3 h to 3 h 30 m, beside owner-big: 12 GPUs, counted up to the 8 booked
#   guest:       tenant b, 4 GPUs, 3 h to 3 h 30 m: not the owner's, not counted
# Booked 8 × 2 = 16 GPU-h, used 10, unused 6 (62.5%), unused booked cost 6 × $2.00 = $12.00.
USE = (
    job_class("owner-early", "a", 4, "1h", "1h30m")
    + job_class("owner-big", "a", 8, "3h", "2h")
    + job_class("owner-small", "a", 4, "3h", "30m")
    + job_class("guest", "b", 4, "3h", "30m")
)


def test_reservation_use_is_exact_for_a_hand_computed_case(tmp_path: Path) -> None:
    result, jobs = run(tmp_path, scenario(USE, nodes=4, quota=16))
    assert jobs["owner-early-0"].start_s == HOUR and jobs["owner-big-0"].start_s == 3 * HOUR
    assert jobs["owner-small-0"].start_s == 3 * HOUR and jobs["guest-0"].start_s == 3 * HOUR
    (booking,) = result.reservations
    assert booking.use.booked == 16 * HOUR * 1000 and booking.use.used == 10 * HOUR * 1000
    assert booking.price == Decimal("2.00") and booking.evicted == 0
    report = build_report(result)
    assert report["reservations"] == {
        "slot": {
            "owner": "a",
            "cluster_queue": "cq",
            "flavor": "a100",
            "resource": "nvidia.com/gpu",
            "quantity": 8.0,
            "jobs": [],
            "start_s": 2 * HOUR,
            "end_s": 4 * HOUR,
            "booked_hours": 16.0,
            "used_hours": 10.0,
            "unused_hours": 6.0,
            "utilisation": 0.625,
            "evicted_at_start": 0,
            "unused_cost": "12.00",
        }
    }
    assert report["cost"]["unused_booked"] == "12.00"
    assert report["cost"]["unused_booked_by_tenant"] == {"a": "12.00"}
    # The jobs' own cost is unchanged by the booking: jobs.csv still adds up to the total.
    assert Decimal(report["cost"]["total"]) == sum(Decimal(c) for c in report["cost"]["by_tenant"].values())


def test_a_booking_for_named_jobs_counts_only_those(tmp_path: Path) -> None:
    text = scenario(USE, nodes=4, quota=16).replace("    end: 4h\n", "    end: 4h\n    jobs: [owner-big-0]\n")
    result, _ = run(tmp_path, text)
    (booking,) = result.reservations
    assert booking.use.used == 8 * HOUR * 1000  # owner-big alone, 3 h to 4 h


def test_a_booking_cut_by_the_horizon_is_measured_up_to_the_end_of_the_run(tmp_path: Path) -> None:
    text = scenario(USE, nodes=4, quota=16).replace("seed: 1\n", "seed: 1\nhorizon: 3h\n")
    result, _ = run(tmp_path, text)
    (booking,) = result.reservations
    # Booked 2 h to 3 h (8 GPU-h); owner-early used 4 GPUs from 2 h to 2 h 30 m.
    assert (booking.use.booked, booking.use.used) == (8 * HOUR * 1000, 2 * HOUR * 1000)


def test_absolute_times_mean_the_same_as_offsets(tmp_path: Path) -> None:
    offsets, _ = run(tmp_path, scenario(USE, nodes=4, quota=16))
    text = scenario(USE, nodes=4, quota=16).replace(
        "    start: 2h\n", '    start: "2026-01-05T03:00:00+01:00"\n'
    )
    absolute, _ = run(tmp_path, text.replace("    end: 4h\n", "    end: 2026-01-05T04:00:00Z\n"))
    assert build_report(absolute)["reservations"] == build_report(offsets)["reservations"]


def test_an_unpriced_flavor_reports_no_unused_cost(tmp_path: Path) -> None:
    text = scenario(USE, nodes=4, quota=16).replace(', price_per_gpu_hour: "2.00"', "")
    result, _ = run(tmp_path, text)
    report = build_report(result)
    assert report["reservations"]["slot"]["unused_cost"] is None
    assert report["cost"]["unused_booked"] == "0.00" and report["cost"]["unused_booked_by_tenant"] == {}


def test_a_run_without_bookings_reports_none(tmp_path: Path) -> None:
    text = scenario(USE, nodes=4, quota=16)
    text = text[: text.index("reservations:")] + text[text.index("workload:") :]
    result, _ = run(tmp_path, text)
    report = build_report(result)
    assert result.reservations == [] and "reservations" not in report
    assert "unused_booked" not in report["cost"]


# (d) Scenario validation ------------------------------------------------------------------------
SECOND = """\
  - name: other
    owner: b
    cluster_queue: cq
    flavor: a100
    resource: nvidia.com/gpu
    quantity: 4
    start: 3h
    end: 5h
"""


def error_of(tmp_path: Path, text: str) -> ValidationError:
    path = tmp_path / "scenario.yaml"
    path.write_text(text)
    with pytest.raises(ValidationError) as info:
        load_scenario(path)
    return info.value


def line_of(text: str, needle: str, after: str = "reservations:") -> int:
    lines = text.splitlines()
    first = next(i for i, line in enumerate(lines) if after in line)
    return next(i for i, line in enumerate(lines[first:], first + 1) if needle in line)


def test_a_conflicting_booking_is_refused_naming_file_line_field_and_the_overlap(tmp_path: Path) -> None:
    classes = job_class("owner", "a", 8, "2h", "1h")
    text = scenario(classes).replace("workload:", SECOND + "workload:", 1)
    error = error_of(tmp_path, text)
    line = line_of(text, "start: 3h")
    assert (error.path, error.line) == ("reservations[1].start", line)
    assert str(error).startswith(f"{tmp_path / 'scenario.yaml'}:{line}: reservations[1].start: ")
    assert "conflicts with slot" in error.message and "from 2026-01-05T03:00:00+00:00 to" in error.message
    assert "12 nvidia.com/gpu booked of a nominal quota of 8" in error.message


def test_a_booking_larger_than_the_quota_names_its_quantity(tmp_path: Path) -> None:
    text = scenario(job_class("owner", "a", 8, "2h", "1h")).replace("    quantity: 8\n", "    quantity: 9\n")
    error = error_of(tmp_path, text)
    assert (error.path, error.line) == ("reservations[0].quantity", line_of(text, "quantity: 9"))
    assert "more than the nominal quota 8" in error.message


@pytest.mark.parametrize(
    ("old", "new", "path", "words"),
    [
        (
            "flavor: a100",
            "flavor: h100",
            "flavor",
            "ClusterQueue cq has no flavor 'h100' (its flavors: a100)",
        ),
        ("cluster_queue: cq", "cluster_queue: nope", "cluster_queue", "unknown ClusterQueue 'nope'"),
        ("resource: nvidia.com/gpu", "resource: amd.com/gpu", "resource", "has no quota for 'amd.com/gpu'"),
        ("owner: a", "owner: c", "owner", "'c' has no LocalQueue"),
        ("end: 4h", "end: 2h", "end", "must be after start"),
        ("start: 2h", "start: soon", "start", "invalid duration 'soon'"),
        ("start: 2h", 'start: "2026-01-05T02:00:00"', "start", "naive datetime"),
        ("quantity: 8", "quantity: 0", "quantity", "must be positive"),
        ("name: slot", "name: Slot_1", "name", "invalid identifier 'Slot_1'"),
    ],
)
def test_a_bad_booking_names_file_line_and_field(
    tmp_path: Path, old: str, new: str, path: str, words: str
) -> None:
    head, booking = scenario(job_class("owner", "a", 8, "2h", "1h")).split("reservations:\n")
    booking = booking.replace(f" {old}\n", f" {new}\n", 1)
    text = f"{head}reservations:\n{booking}"
    error = error_of(tmp_path, text)
    assert error.path == f"reservations[0].{path}" and words in error.message
    assert error.line == line_of(text, new) and error.source == str(tmp_path / "scenario.yaml")


def test_booking_names_are_unique(tmp_path: Path) -> None:
    second = SECOND.replace("name: other", "name: slot").replace(
        "start: 3h\n    end: 5h", "start: 5h\n    end: 6h"
    )
    text = scenario(job_class("owner", "a", 8, "2h", "1h")).replace("workload:", second + "workload:", 1)
    error = error_of(tmp_path, text)
    assert error.path == "reservations[1].name" and "duplicate reservation name 'slot'" in error.message


def test_the_section_is_in_the_json_schema(tmp_path: Path) -> None:
    schema = scenario_json_schema()
    assert "reservations" in schema["properties"]
    jsonschema = pytest.importorskip("jsonschema")
    import yaml

    document = yaml.safe_load(scenario(USE, nodes=4, quota=16))
    jsonschema.validate(document, schema)


# Through the command line ------------------------------------------------------------------------
def test_simulate_prints_and_writes_the_reservation_block(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "scenario.yaml"
    path.write_text(scenario(FILLERS + OWNER))
    out = tmp_path / "out"
    assert main(["simulate", str(path), "--out", str(out), "--no-plots"]) == 0
    printed = " ".join(capsys.readouterr().out.split())  # the console wraps long lines
    assert "reservation slot: 8 nvidia.com/gpu on a100 for a, 2.0h to 4.0h into the run" in printed
    assert "booked 16.0 GPU-h, used 8.0 (50.0%), unused 8.0, unused booked cost $16.00 (a)" in printed
    assert "2 workload(s) evicted at its start" in printed
    report = json.loads((out / "report.json").read_text())
    assert report["reservations"]["slot"]["unused_cost"] == "16.00"


def test_a_plan_point_whose_scaled_quota_cannot_hold_the_booking_is_infeasible(tmp_path: Path) -> None:
    from budcore_simulator.sweep import parse_vary, plan_specs

    path = tmp_path / "scenario.yaml"
    path.write_text(scenario(FILLERS + OWNER))  # 8 GPUs booked of 8
    points = plan_specs(load_scenario(path), [parse_vary("pool.a100.nodes=1,2,3")])
    reasons = [spec.infeasible for _, spec in points]
    assert reasons[1:] == ["", ""]
    assert reasons[0].startswith("the scaled quotas cannot hold reservation slot: ")
    assert "more than the nominal quota 4" in reasons[0]
