"""WorkloadPriorityClass: a job's priority is the value of the class it names, for order and preemption.

Kueue (kubernetes-sigs/kueue ``site/content/en/docs/concepts/workload_priority_class.md``): a job
names its ``WorkloadPriorityClass`` with the label ``kueue.x-k8s.io/priority-class``; the Workload
gets ``spec.priority`` = the class's ``value`` (``pkg/util/priority/priority.go``
``GetPriorityFromWorkloadPriorityClass``), and "the priority of workloads is used for: sorting the
workloads in the ClusterQueues; determining whether a workload can preempt others".

budcore keeps its five built-in classes (critical 1000, high 100, normal 10, low 1, spot 0) as they
were; a job may name any class of ``QueueConfig.priority_classes`` (``Job.priority_class`` or the
label), which ``Scheduler.submit`` resolves into ``Job.workload_priority`` — the ``priority_value``
that cycle.py puts on admissions and preemption requests. "Critical" (never a victim) stays keyed by
the class, not by the number (``budcore.domain.priority``, "The critical rule").
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from budcore.config.jobs import job_from_document
from budcore.config.kueue import loads_queue_config
from budcore.config.yamlsource import load_yaml_text
from budcore.domain.errors import ValidationError
from budcore.domain.job import Job, ResourceRequest
from budcore.domain.priority import PRIORITY_CLASS_LABEL, JobPriority
from budcore.domain.validation import validate_model
from budcore.ports.preemption_cost import VictimInfo
from budcore.scheduling import Scheduler
from budcore.scheduling.preemption import DecisionStatus
from budcore.scheduling.queues import QueueConfig

T0 = datetime(2026, 1, 1, tzinfo=UTC)

CLASSES = """
apiVersion: kueue.x-k8s.io/v1beta2
kind: WorkloadPriorityClass
metadata: {name: prod}
value: 5000
---
apiVersion: kueue.x-k8s.io/v1beta2
kind: WorkloadPriorityClass
metadata: {name: batch}
value: 6000
---
apiVersion: kueue.x-k8s.io/v1beta2
kind: WorkloadPriorityClass
metadata: {name: dev}
value: -10
---
apiVersion: kueue.x-k8s.io/v1beta2
kind: ResourceFlavor
metadata: {name: default}
---
apiVersion: kueue.x-k8s.io/v1beta2
kind: LocalQueue
metadata: {name: lq, namespace: ns}
spec: {clusterQueue: cq}
"""


def _config(preempt: bool) -> QueueConfig:
    preemption = "\n  preemption: {withinClusterQueue: LowerPriority}" if preempt else ""
    return loads_queue_config(
        CLASSES
        + f"""---
apiVersion: kueue.x-k8s.io/v1beta2
kind: ClusterQueue
metadata: {{name: cq}}
spec:
  namespaceSelector: {{}}{preemption}
  resourceGroups:
  - coveredResources: [cpu]
    flavors: [{{name: default, resources: [{{name: cpu, nominalQuota: 1}}]}}]
"""
    )


def _job(job_id: str, t: int = 0, **fields: object) -> Job:
    return Job.model_validate(
        {
            "id": job_id,
            "name": job_id,
            "tenant": "ns",
            "local_queue": "lq",
            "created_at": T0 + timedelta(seconds=t),
            "request": ResourceRequest.single(cpu=1, memory=0),
            **fields,
        }
    )


def _labelled(job_id: str, klass: str, t: int = 0, **fields: object) -> Job:
    return _job(job_id, t, labels={PRIORITY_CLASS_LABEL: klass}, **fields)


def _running_then_arrives(scheduler: Scheduler, running: Job, arriving: Job) -> list[tuple[str, str]]:
    """Admit ``running`` (it fills the queue), submit ``arriving``, return the preemption verdicts."""
    scheduler.submit(running)
    assert [a.job_id for a in scheduler.cycle(T0).admitted] == [running.id]
    scheduler.submit(arriving)
    result = scheduler.cycle(T0 + timedelta(seconds=10))
    return [(d.status.value, ",".join(d.victim_ids)) for d in result.preemptions]


# --- queue order ---------------------------------------------------------------------------------


def test_label_names_the_class_and_its_value_orders_the_queue() -> None:
    """audit y3: prod (5000) is admitted before an older dev (-10) job; both were 'normal' (10)."""
    scheduler = Scheduler(_config(preempt=False))
    dev = scheduler.submit(_labelled("dev-job", "dev", t=0))
    prod = scheduler.submit(_labelled("prod-job", "prod", t=1))
    assert (dev.priority, prod.priority) == (-10, 5000)
    assert (dev.job.priority_value, prod.job.priority_value) == (-10, 5000)
    assert [a.job_id for a in scheduler.cycle(T0).admitted] == ["prod-job"]


def test_priority_class_field_is_the_same_as_the_label() -> None:
    scheduler = Scheduler(_config(preempt=False))
    scheduler.submit(_job("dev-job", 0, priority_class="dev"))
    scheduler.submit(_job("prod-job", 1, priority_class="prod"))
    result = scheduler.cycle(T0)
    assert [a.job_id for a in result.admitted] == ["prod-job"]
    assert result.admitted[0].priority == 5000  # what preemption will compare


def test_job_yaml_accepts_the_kueue_label_and_the_field() -> None:
    text = f"""
apiVersion: budcore.io/v1alpha1
kind: Job
metadata:
  name: train
  namespace: ns
  labels: {{{PRIORITY_CLASS_LABEL}: prod}}
spec: {{local_queue: lq}}
---
apiVersion: budcore.io/v1alpha1
kind: Job
metadata: {{name: explore, namespace: ns}}
spec: {{local_queue: lq, priority_class: dev}}
"""
    train, explore = (job_from_document(d) for d in load_yaml_text(text))
    assert (train.priority_class_name, explore.priority_class_name) == ("prod", "dev")
    scheduler = Scheduler(_config(preempt=False))
    assert scheduler.resolve_priority(train).priority_value == 5000
    assert scheduler.resolve_priority(explore).priority_value == -10


# --- preemption ----------------------------------------------------------------------------------


def test_class_value_decides_preemption() -> None:
    """A dev (-10) arrival never preempts a running prod (5000) job; prod preempts dev."""
    verdicts = _running_then_arrives(
        Scheduler(_config(preempt=True)), _labelled("prod", "prod"), _labelled("dev", "dev", t=5)
    )
    assert verdicts == [("impossible", "")]
    verdicts = _running_then_arrives(
        Scheduler(_config(preempt=True)), _labelled("dev", "dev"), _labelled("prod", "prod", t=5)
    )
    assert verdicts == [("preempt", "dev")]


def test_submit_priority_sets_the_value_preemption_uses() -> None:
    """audit y3, second half: submit(priority=-10) used to order the queue only, so a 'high' job
    submitted with -10 preempted one submitted with 5000. One value now serves both (Kueue's
    Workload.spec.priority)."""
    scheduler = Scheduler(_config(preempt=True))
    scheduler.submit(_job("prod-running"), priority=5000)
    scheduler.cycle(T0)
    pending = scheduler.submit(_job("dev-new", 5, priority=JobPriority.HIGH), priority=-10)
    assert pending.job.priority_value == -10
    result = scheduler.cycle(T0 + timedelta(seconds=10))
    assert [(d.status, d.victim_ids) for d in result.preemptions] == [(DecisionStatus.IMPOSSIBLE, ())]
    assert "prod-running" in scheduler.admitted


def test_negative_and_custom_values_are_representable() -> None:
    job = _job("j", workload_priority=-10)
    assert job.priority_value == -10
    with pytest.raises(ValidationError, match="workload_priority"):
        validate_model(Job, {**job.model_dump(), "workload_priority": 2**31})


# --- errors: nothing is queued -------------------------------------------------------------------


def test_unknown_class_names_the_field_and_queues_nothing() -> None:
    scheduler = Scheduler(_config(preempt=False))
    with pytest.raises(ValidationError) as info:
        scheduler.submit(_job("j", priority_class="gold"))
    assert info.value.path == "priority_class"
    assert "WorkloadPriorityClass 'gold' does not exist" in str(info.value)
    assert "dev" in str(info.value) and "prod" in str(info.value)  # the known ones
    with pytest.raises(ValidationError) as info:
        scheduler.submit(_labelled("k", "gold"))
    assert info.value.path == f"labels[{PRIORITY_CLASS_LABEL}]"
    assert scheduler.pending.get("j") is None and scheduler.pending.get("k") is None
    assert not scheduler.pending.queues() or all(not q.entries for q in scheduler.pending.queues().values())


def test_label_and_field_must_agree() -> None:
    data = _job("j").model_dump()
    data.update(priority_class="prod", labels={PRIORITY_CLASS_LABEL: "dev"})
    with pytest.raises(ValidationError) as info:
        validate_model(Job, data)
    assert info.value.path == "labels"
    assert "contradicts priority_class 'prod'" in str(info.value)


def test_relabelling_a_job_changes_its_class() -> None:
    """Kueue lets the label change while the job is suspended; with_changes keeps that possible."""
    job = _labelled("j", "prod")
    relabelled = job.with_changes(labels={PRIORITY_CLASS_LABEL: "dev"})
    assert relabelled.priority_class_name == "dev"
    assert Scheduler(_config(preempt=False)).resolve_priority(relabelled).priority_value == -10


# --- the built-in classes ------------------------------------------------------------------------


@pytest.mark.parametrize("klass", list(JobPriority))
def test_builtin_classes_work_exactly_as_before(klass: JobPriority) -> None:
    scheduler = Scheduler(_config(preempt=False))
    job = _job("j", priority=klass)
    pending = scheduler.submit(job)
    assert pending.job is job  # no copy, no new value
    assert pending.priority == job.priority_value == klass.value_int
    assert job.workload_priority is None and job.priority_class_name is None


def test_builtin_kueue_class_names_resolve_to_the_builtin_class() -> None:
    """``budcore-<class>`` (JobPriority.kueue_class_name, the documents kueue_priority_classes()
    writes) names the built-in class even when the configuration does not define it."""
    scheduler = Scheduler(_config(preempt=False))
    resolved = scheduler.resolve_priority(_labelled("j", "budcore-critical"))
    assert resolved.priority is JobPriority.CRITICAL and resolved.priority_value == 1000
    assert VictimInfo.from_job(resolved).protected == "critical job"
    with pytest.raises(ValidationError, match="contradicts priority class 'budcore-critical'"):
        scheduler.resolve_priority(_labelled("k", "budcore-critical", priority=JobPriority.LOW))


# --- the critical rule ---------------------------------------------------------------------------


def test_a_class_above_critical_does_not_make_critical_jobs_preemptible() -> None:
    """A 'batch' (6000) arrival may preempt lower values, but never a critical (1000) job."""
    verdicts = _running_then_arrives(
        Scheduler(_config(preempt=True)),
        _job("critical", priority=JobPriority.CRITICAL),
        _labelled("batch", "batch", t=5),
    )
    assert verdicts == [("impossible", "")]


def test_a_class_above_critical_does_not_protect_its_jobs() -> None:
    """Protection is the class, not the number: a prod (5000) job is preempted by batch (6000)."""
    verdicts = _running_then_arrives(
        Scheduler(_config(preempt=True)), _labelled("prod", "prod"), _labelled("batch", "batch", t=5)
    )
    assert verdicts == [("preempt", "prod")]


def test_critical_jobs_keep_their_class_and_a_value_of_at_least_critical() -> None:
    scheduler = Scheduler(_config(preempt=False))
    above = scheduler.resolve_priority(_labelled("c", "prod", priority=JobPriority.CRITICAL))
    assert above.priority is JobPriority.CRITICAL and above.priority_value == 5000
    assert VictimInfo.from_job(above).critical
    with pytest.raises(ValidationError, match="a critical job needs a priority value of at least 1000"):
        scheduler.submit(_labelled("d", "dev", priority=JobPriority.CRITICAL))
    with pytest.raises(ValidationError, match="at least 1000"):
        scheduler.submit(_job("e", priority=JobPriority.CRITICAL), priority=5)
    with pytest.raises(ValidationError) as info:
        validate_model(Job, {**_job("f").model_dump(), "priority": "critical", "workload_priority": 5})
    assert info.value.path == "workload_priority"
    assert scheduler.pending.get("d") is None and scheduler.pending.get("e") is None


def test_aging_starts_from_the_resolved_value_and_never_grants_preemption() -> None:
    """Scheduler.age raises queue order only; its base is the class value, not the built-in 10."""
    from budcore.scheduling.preemption.aging import AgingPolicy

    scheduler = Scheduler(_config(preempt=False))
    scheduler.submit(_labelled("dev", "dev"))
    scheduler.age(T0 + timedelta(hours=1), AgingPolicy(step=1, interval=timedelta(minutes=15)))
    workload = scheduler.pending.get("dev")
    assert workload is not None
    assert workload.priority == -10 + 4  # four intervals of aging on top of dev's -10
    assert workload.job.priority_value == -10  # what preemption compares is unchanged


# --- a class whose value changes -----------------------------------------------------------------


def test_reconfigure_reprices_the_workloads_of_a_changed_class() -> None:
    """Kueue reconciles a WorkloadPriorityClass value change into the Workloads that reference it
    (kubernetes-sigs/kueue issue #8322, fixed by PR #8442); an explicit value is kept."""
    scheduler = Scheduler(_config(preempt=True))
    scheduler.submit(_labelled("prod-running", "prod"))
    scheduler.cycle(T0)
    scheduler.submit(_labelled("batch-waiting", "batch", t=1))
    scheduler.submit(_labelled("pinned", "batch", t=2), priority=7)
    assert scheduler.admitted["prod-running"].priority == 5000

    base = _config(preempt=True)
    classes = base.priority_classes
    cheaper = base.with_objects(
        priority_classes={
            **classes,
            "prod": classes["prod"].model_copy(update={"value": 1}),
            "batch": classes["batch"].model_copy(update={"value": 50}),
        }
    )
    scheduler.reconfigure(cheaper)
    assert scheduler.admitted["prod-running"].priority == 1
    waiting, pinned = scheduler.pending.get("batch-waiting"), scheduler.pending.get("pinned")
    assert waiting is not None and pinned is not None
    assert (waiting.priority, waiting.job.priority_value) == (50, 50)
    assert pinned.priority == 7  # set explicitly: not the class's value
    result = scheduler.cycle(T0 + timedelta(seconds=10))
    assert [(d.preemptor, d.victim_ids) for d in result.preemptions][:1] == [
        ("batch-waiting", ("prod-running",))
    ]
