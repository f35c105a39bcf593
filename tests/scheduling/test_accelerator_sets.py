"""Accelerator sets (issue #18): a job that accepts any of several accelerator types.

The set is a filter on the ClusterQueue's flavors, never an order: Kueue's flavor assigner tries
the flavors in the ClusterQueue's order, so a job accepting {V100 16 GB, V100 32 GB} on a queue
listing ``[v100-32, v100-16]`` gets ``v100-32`` while it has room, then ``v100-16``, and never a
flavor providing neither. The expected flavors below follow from the queue's order and quotas by
hand.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError as PydanticValidationError
from support.admission import GPU, config, cq, fill, job

from budcore.config.jobs import job_from_document
from budcore.config.yamlsource import load_yaml_text
from budcore.cost.guard import job_cost
from budcore.cost.prices import price_book_from_hourly
from budcore.domain.accelerators import canonical_accelerators, parse_accelerators
from budcore.domain.errors import ValidationErrors
from budcore.domain.job import Job, ResourceRequest
from budcore.scheduling import Scheduler
from budcore.testing.examples import examples

V16, V32, T4 = "nvidia-v100-16gb", "nvidia-v100-32gb", "nvidia-t4-16gb"
LABEL = "budcore.io/accelerator"
# Flavor name -> the accelerator its nodes carry.
FLAVORS = {"v100-32": V32, "v100-16": V16, "t4": T4}
LABELS = {name: {LABEL: slug} for name, slug in FLAVORS.items()}


def _scheduler(order: list[str], gpus: dict[str, int]) -> Scheduler:
    """One ClusterQueue ``q`` listing ``order``'s flavors in that order, with ``gpus`` each."""
    quotas = {name: {GPU: gpus[name]} for name in order}
    return Scheduler(config([cq("q", quotas)], flavors={n: LABELS[n] for n in order}))


def _flavor(s: Scheduler, job_id: str) -> str:
    return s.admitted[job_id].flavors["main"][GPU]


# Parsing -----------------------------------------------------------------------------------------
def test_the_written_forms_parse_to_the_same_members() -> None:
    assert parse_accelerators("A|B") == ("A", "B")
    assert parse_accelerators(" A | B |A") == ("A", "B")  # spaces stripped, duplicates dropped
    assert parse_accelerators(["A", "B|C"]) == ("A", "B", "C")
    assert parse_accelerators(None) == ()
    assert canonical_accelerators(["x", " y"]) == "x|y"
    assert canonical_accelerators([]) is None


@pytest.mark.parametrize(
    ("value", "words"),
    [
        ("A||B", "empty accelerator type"),
        ("", "empty accelerator type"),
        (["A", 3], "is a string, got int"),
        (7, "a string or a list of strings, got int"),
        ("A|B\x00", "NUL"),
    ],
)
def test_a_bad_set_is_a_one_line_error(value: object, words: str) -> None:
    with pytest.raises(ValueError, match=words) as caught:
        parse_accelerators(value)
    assert "\n" not in str(caught.value)


def test_a_request_keeps_one_form_and_reads_what_it_accepts() -> None:
    single = ResourceRequest(accelerator_type=V16)
    assert (single.accelerator_type, single.accelerator_types, single.accelerators) == (V16, (), (V16,))
    several = ResourceRequest(accelerator_type=f"{V16}|{V32}")
    assert (several.accelerator_type, several.accelerator_types) == (None, (V16, V32))
    assert several == ResourceRequest(accelerator_types=[V16, V32])  # type: ignore[arg-type]
    assert ResourceRequest(accelerator_types=[V16]) == single  # type: ignore[arg-type]  # a set of one
    assert ResourceRequest().accelerators == ()
    with pytest.raises(PydanticValidationError, match="not both"):
        ResourceRequest(accelerator_type=V16, accelerator_types=(V32, T4))
    # A variant that pins one type (a deadline option, a price) means that type.
    assert several.model_copy(update={"accelerator_type": T4}).accelerators == (T4,)


def test_a_single_type_dumps_as_before_and_a_set_round_trips() -> None:
    assert "accelerator_types" not in ResourceRequest(accelerator_type=V16).model_dump(mode="json")
    several = ResourceRequest.single(gpus=2, accelerator_type=f"{V16}|{V32}")
    doc = several.model_dump(mode="json")
    assert doc["accelerator_types"] == [V16, V32] and doc["accelerator_type"] is None
    assert ResourceRequest.model_validate(doc) == several
    assert ResourceRequest.model_validate_json(several.model_dump_json()) == several


# The flavor assigner ---------------------------------------------------------------------------
def test_a_set_gets_the_first_flavor_with_room_in_the_queues_order() -> None:
    # The queue lists v100-32 before v100-16; the job lists V16 first: the queue's order wins.
    s = _scheduler(["t4", "v100-32", "v100-16"], {"t4": 8, "v100-32": 4, "v100-16": 4})
    wanted = f"{V16}|{V32}"
    admitted = fill(
        s, [job("q", 4, accelerator=wanted, name="first"), job("q", 2, accelerator=wanted, name="next")]
    )
    assert admitted == ["first", "next"]
    assert _flavor(s, "first") == "v100-32"  # t4 has room but is not in the set
    assert _flavor(s, "next") == "v100-16"  # v100-32 is full (4 of 4)
    fill(s, [job("q", 4, accelerator=wanted, name="waits")])
    assert "waits" not in s.admitted  # 2 left on v100-16, 8 on t4: never t4
    assert s.usage_of("q").get(("t4", GPU), 0) == 0


def test_a_set_no_flavor_provides_names_the_set() -> None:
    s = _scheduler(["t4"], {"t4": 8})
    fill(s, [job("q", 1, accelerator=f"{V16}|{V32}", name="no-v100")])
    assert "no-v100" not in s.admitted
    assert f"provides any of the accelerator types {V16}|{V32}" in s.explain("no-v100")


def test_a_failed_single_type_does_not_hold_back_a_set_that_includes_another() -> None:
    # BestEffortFIFO skips requests at least as large as one that failed for quota in the cycle:
    # a set must not be judged by a single type's failure (nor the reverse).
    s = _scheduler(["v100-32", "v100-16"], {"v100-32": 2, "v100-16": 4})
    admitted = fill(
        s,
        [
            job("q", 4, accelerator=V32, name="only-32"),
            job("q", 4, accelerator=f"{V32}|{V16}", name="either"),
        ],
    )
    assert admitted == ["either"]
    assert _flavor(s, "either") == "v100-16"


def test_a_failed_set_does_not_hold_back_a_job_that_accepts_any_flavor() -> None:
    # The set fails for quota (2 GPUs on v100-32); a job of the same size asking for no type is
    # not implied by it: t4 has room.
    s = _scheduler(["v100-32", "t4"], {"v100-32": 2, "t4": 8})
    admitted = fill(s, [job("q", 4, accelerator=f"{V16}|{V32}", name="either"), job("q", 4, name="any")])
    assert admitted == ["any"]
    assert _flavor(s, "any") == "t4"


def set_jobs() -> st.SearchStrategy[list[tuple[int, tuple[str, ...]]]]:
    members = st.lists(st.sampled_from(sorted(FLAVORS.values())), min_size=1, max_size=3, unique=True)
    return st.lists(st.tuples(st.integers(1, 6), members.map(tuple)), min_size=1, max_size=12)


@settings(max_examples=examples(200), deadline=None)
@given(
    order=st.permutations(sorted(FLAVORS)),
    quotas=st.tuples(st.integers(0, 8), st.integers(0, 8), st.integers(0, 8)),
    jobs=set_jobs(),
)
def test_an_admitted_jobs_flavor_is_always_in_its_set(
    order: list[str], quotas: tuple[int, int, int], jobs: list[tuple[int, tuple[str, ...]]]
) -> None:
    gpus = dict(zip(order, quotas, strict=True))
    s = _scheduler(list(order), gpus)
    submitted = [
        job("q", n, accelerator="|".join(accepted), name=f"j{i}") for i, (n, accepted) in enumerate(jobs)
    ]
    fill(s, submitted)
    for i, (_, accepted) in enumerate(jobs):
        if f"j{i}" in s.admitted:
            assert FLAVORS[_flavor(s, f"j{i}")] in accepted
    for name in order:  # never more than the quota, whatever the sets
        assert s.usage_of("q").get((name, GPU), 0) <= gpus[name] * 1000


@settings(max_examples=examples(200), deadline=None)
@given(
    order=st.permutations(sorted(FLAVORS)),
    quotas=st.tuples(st.integers(0, 8), st.integers(0, 8), st.integers(0, 8)),
)
def test_a_lone_set_job_gets_the_first_accepted_flavor_of_the_queue_that_fits(
    order: list[str], quotas: tuple[int, int, int]
) -> None:
    gpus = dict(zip(order, quotas, strict=True))
    s = _scheduler(list(order), gpus)
    fill(s, [job("q", 3, accelerator=f"{V16}|{V32}", name="lone")])
    fitting = [name for name in order if FLAVORS[name] in (V16, V32) and gpus[name] >= 3]
    if fitting:
        assert _flavor(s, "lone") == fitting[0]
    else:
        assert "lone" not in s.admitted


# Documents and stores --------------------------------------------------------------------------
JOB_YAML = """\
apiVersion: budcore.io/v1alpha1
kind: Job
metadata: {{name: either-v100, namespace: research}}
spec:
  request:
    accelerator_type: {accelerator}
    pod_sets: [{{name: main, count: 1, resources: {{nvidia.com/gpu: 1}}}}]
"""


@pytest.mark.parametrize("accelerator", [f'"{V16}|{V32}"', f"[{V16}, {V32}]"])
def test_a_job_document_takes_the_set_in_either_form(accelerator: str) -> None:
    (document,) = load_yaml_text(JOB_YAML.format(accelerator=accelerator), "job.yaml")
    job_ = job_from_document(document)
    assert job_.request.accelerators == (V16, V32)
    assert Job.model_validate(job_.model_dump(mode="json")) == job_


def test_a_bad_set_in_a_job_document_names_the_file_and_field() -> None:
    (document,) = load_yaml_text(JOB_YAML.format(accelerator=f'"{V16}||{V32}"'), "job.yaml")
    with pytest.raises(ValidationErrors) as caught:
        job_from_document(document)
    text = str(caught.value)
    assert "job.yaml" in text and "empty accelerator type" in text and "Traceback" not in text


def test_the_postgres_document_round_trips_a_set() -> None:
    records = pytest.importorskip("budcore_adapters.postgres.records")
    original = job("q", 2, accelerator=f"{V32}|{V16}", name="pg")
    row = records.job_row(original)
    assert records.job_from_doc(row["doc"]).request.accelerators == (V32, V16)
    assert records.job_from_json(original.model_dump_json()) == original


def test_the_guard_prices_a_set_at_its_dearest_member() -> None:
    book = price_book_from_hourly({V16: "2.00", V32: "3.00"})
    base = job("q", 2, accelerator=f"{V16}|{V32}", name="priced")
    priced = base.model_copy(update={"estimated_duration": timedelta(hours=1)})
    assert job_cost(priced, book) == Decimal("6.00")  # 2 GPUs x 1 h x 3.00, the 32 GB price
    unpriced = priced.model_copy(
        update={"request": ResourceRequest.single(gpus=2, accelerator_type=f"{V16}|{T4}")}
    )
    assert job_cost(unpriced, book) == f"the price book has no price for {T4}"


def test_a_kueue_job_records_the_set_in_its_annotation() -> None:
    submit = pytest.importorskip("budcore_adapters.kueue.submit")
    base = job("q", 1, accelerator=f"{V16}|{V32}", name="k8s")
    manifest = submit.manifest(base.model_copy(update={"spec": {"image": "busybox"}}), namespace="team")
    assert manifest["metadata"]["annotations"][submit.ACCELERATOR_ANNOTATION] == f"{V16}|{V32}"


names = st.text(
    st.characters(blacklist_characters="|\x00", blacklist_categories=("Cs",)), min_size=1, max_size=8
)


@settings(max_examples=examples(300), deadline=None)
@given(members=st.lists(names.filter(str.strip), min_size=1, max_size=4))
def test_any_set_round_trips_through_json_in_its_one_form(members: list[str]) -> None:
    expected = tuple(dict.fromkeys(m.strip() for m in members))
    for request in (
        ResourceRequest(accelerator_types=members),  # type: ignore[arg-type]
        ResourceRequest(accelerator_type="|".join(members)),
    ):
        assert request.accelerators == expected
        assert (request.accelerator_type is None) == (len(expected) > 1)
        assert ResourceRequest.model_validate_json(request.model_dump_json()) == request
