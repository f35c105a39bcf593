"""Which priority a job competes with: Kueue's WorkloadPriorityClass resolution.

Priority follows Kueue: a job's priority value (``Job.priority_value``) is the ``value`` of the
WorkloadPriorityClass it names (``Job.priority_class`` or the label
``kueue.x-k8s.io/priority-class``), else its built-in class's value, and that one value orders the
queue *and* decides preemption. These are pure functions of the queue configuration and the job,
so the scheduler, the forecaster and a service validating a submission resolve alike.
"""

from __future__ import annotations

from budcore.domain.errors import ValidationError
from budcore.domain.job import Job
from budcore.domain.priority import (
    PRIORITY_CLASS_LABEL,
    PRIORITY_MAX,
    PRIORITY_MIN,
    JobPriority,
    check_critical_value,
)
from budcore.scheduling.queues import QueueConfig


def resolve_priority(config: QueueConfig, job: Job, priority: int | None = None) -> Job:
    """``job`` with the priority it competes with: the copy ``Scheduler.submit`` queues.

    - ``job.priority_class`` (or the label ``kueue.x-k8s.io/priority-class``) names a
      WorkloadPriorityClass of ``config.priority_classes``: its ``value`` becomes
      ``workload_priority``. The built-in names ``budcore-<class>`` also set ``job.priority``
      to that class (their value: the configuration's object when it defines one, else the
      built-in value); a job whose ``priority`` is a different non-default class is an error.
    - ``priority`` given: it is the value, whatever the class says.
    - Neither: the job unchanged (the five built-in classes behave exactly as before).

    A critical job keeps its protection whatever value it gets, and may not get a value below
    critical's (see :mod:`budcore.domain.priority`, "The critical rule"). Returns ``job``
    itself when nothing changes.
    """
    klass = job.priority
    value = job.workload_priority
    name = job.priority_class_name
    field = "priority_class" if job.priority_class is not None else f"labels[{PRIORITY_CLASS_LABEL}]"
    if name is not None:
        try:
            value = config.priority_class_value(name)
        except ValidationError as exc:
            raise ValidationError(f"job {job.id!r}: {exc.message}", path=field) from None
        builtin = JobPriority.from_kueue_class_name(name)
        if builtin is not None:
            if klass is not builtin and klass is not JobPriority.NORMAL:
                raise ValidationError(
                    f"job {job.id!r}: priority {klass.value!r} contradicts priority class {name!r} "
                    f"(the built-in class {builtin.value!r})",
                    path=field,
                )
            klass = builtin
            if name not in config.priority_classes:
                value = None  # the built-in value
    if priority is not None:
        if isinstance(priority, bool) or not PRIORITY_MIN <= priority <= PRIORITY_MAX:
            raise ValidationError(
                f"job {job.id!r}: priority must be an int32, got {priority!r}", path="priority"
            )
        value, field = priority, "priority"
    problem = check_critical_value(klass, value)
    if problem is not None:
        raise ValidationError(f"job {job.id!r}: {problem}", path=field)
    effective = klass.value_int if value is None else value
    if klass is job.priority and effective == job.priority_value:
        return job
    return job.model_copy(update={"priority": klass, "workload_priority": value})


def repriced_by_class(old: QueueConfig, new: QueueConfig, job: Job) -> Job | None:
    """The job re-resolved under ``new`` when it took its value from a class whose value changed.

    None when nothing changes: the job names no class, its value was set explicitly (it differs
    from what the class said under ``old``), or the class is gone (the value stays), as Kueue's
    WorkloadPriorityClassReconciler does.
    """
    name = job.priority_class_name
    if name is None:
        return None
    try:
        if job.priority_value != old.priority_class_value(name):
            return None  # an explicit value, not the class's
        resolved = resolve_priority(new, job)
    except ValidationError:
        return None  # the class is gone: the value stays
    return resolved if resolved.priority_value != job.priority_value else None
