"""budcore jobs as Kubernetes workloads that Kueue admits.

:func:`manifest` turns a budcore :class:`~budcore.domain.job.Job` into the object Kueue queues, and
:func:`submit` creates it in the cluster, exactly once.

**Which Kubernetes kind, and why.**

* A job with **one pod set** becomes a ``batch/v1`` **Job** (:func:`job_manifest`): the most widely
  understood workload kind, built into every cluster (no extra controller to install), and Kueue's
  first integration. Its ``parallelism`` and ``completions`` are the pod set's ``count``: the pods
  are identical and Kueue admits them together (one Workload, one pod set named ``main``); a
  ``min_count`` becomes Kueue's ``kueue.x-k8s.io/job-min-parallelism`` annotation (partial
  admission).
* A job with **several pod sets** (a gang such as a driver plus workers, each with its own shape)
  becomes a **JobSet** (``jobset.x-k8s.io/v1alpha2``, :func:`jobset_manifest`), with one replicated
  Job per pod set. A batch Job cannot express two pod shapes, and a "plain pod group" would lose
  the Job controller's completion tracking; JobSet is the gang kind Kueue integrates with (one
  Workload whose pod sets are the replicated Jobs, admitted all-or-nothing), and it is what
  Kubernetes SIG Apps recommends for multi-template batch work. It needs the JobSet controller in
  the cluster: :func:`submit` checks the API is served and otherwise refuses with an error that
  says so, rather than creating something nothing will run.

**What the object says** (the same for both kinds):

* ``metadata.namespace``: the job's tenant (tenants are namespaces; see
  :mod:`budcore.domain.ids`), or the namespace given;
* ``metadata.name``: :func:`object_name`, derived from the tenant, the job id and the retry attempt
  alone, so every (re)submission of the same attempt names the same object and the API server's
  name uniqueness makes a duplicate impossible. A readable prefix from ``job.name`` would make
  the name change if the job were ever renamed, so the readable name goes into the
  ``budcore.io/job-name`` label instead;
* labels ``kueue.x-k8s.io/queue-name`` (``job.local_queue``: required, Kueue ignores a job without
  it), ``kueue.x-k8s.io/priority-class`` (``job.priority_class_name`` or the built-in class's
  WorkloadPriorityClass ``budcore-<class>``), ``kueue.x-k8s.io/max-exec-time-seconds`` (from
  ``max_duration``: Kueue deactivates the workload once its admitted time reaches it, across
  evictions), and the owner labels ``budcore.io/job-id``, ``budcore.io/tenant``,
  ``budcore.io/attempt`` and ``app.kubernetes.io/managed-by: budcore`` that the status reconciler
  (:mod:`.sync`) selects by;
* ``spec.suspend: true``: Kueue creates the Workload and unsuspends the job when it admits it;
* pods: one container per pod set, the image from ``job.spec["image"]`` (required: there is no
  sensible default image, and a placeholder would run and "succeed" doing nothing), optional
  ``command``/``args``/``env`` (and per-pod-set overrides under ``job.spec["pod_sets"][name]``);
  requests *and* limits from the pod set's per-pod :class:`~budcore.domain.resources.ResourceVector`
  in Kubernetes quantities (extended resources such as GPUs must have limits equal to requests;
  equal CPU and memory limits give the Guaranteed QoS class batch GPU work wants); the pod set's
  node selector, tolerations and required node affinity (Kueue adds the admitted flavor's node
  labels and tolerations itself when it unsuspends the job); ``restartPolicy: Never`` and
  ``backoffLimit: 0``: a failed pod fails the job at once, because budcore owns retries (its
  lifecycle's ``failed → queued`` with backoff and a retry budget), and a Kubernetes retry behind
  its back would spend quota budcore does not know about; ``activeDeadlineSeconds`` from
  ``max_duration`` (Kubernetes' own per-run limit, a second line of defence).

``job.request.accelerator_type`` (a set as ``A|B``) is recorded as the ``budcore.io/accelerator-type``
annotation only:
in a Kueue cluster the ResourceFlavor chosen by Kueue decides the accelerator. To restrict the
flavors, give the pod set a ``node_selector`` on a label the flavors define (budcore's generated
flavors use ``budcore.io/accelerator``); a selector on a label that nodes lack would leave the pods
unschedulable, so budcore does not invent one.

**Validation before sending.** The manifest is checked against the Kubernetes OpenAPI model of
its kind through the official client's typed models (``V1Job``, and ``V1JobTemplateSpec`` for each
JobSet replicated job): an unknown field or a wrong type is a budcore ``ValidationError`` naming
the field (``spec.template.spec.containers[0].resources.limits.cpu``), never an HTTP 422 from the
API server. Names and label values are checked against the Kubernetes syntax rules too.

**Exactly once.** :func:`submit` creates the object (``POST``); if the name is taken (409
``AlreadyExists``) it reads the existing object, and if that carries the same ``budcore.io/job-id``,
tenant and attempt it is the earlier submission: success, nothing created. Any other owner is a
:class:`NameClashError`. Server-side apply is deliberately not used: an apply with ``force`` of the
submitted spec (``suspend: true``) would take ``spec.suspend`` back from Kueue and stop a running
job on every resubmission.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from budcore.domain.errors import BudcoreError, ValidationError, ValidationErrors
from budcore.domain.job import DeploymentType, Job, PodSet
from budcore.domain.priority import PRIORITY_CLASS_LABEL

from .client import JOBS, JOBSETS, KubeClient, KubeError, ResourceType

__all__ = [
    "ACCELERATOR_ANNOTATION",
    "ATTEMPT_LABEL",
    "JOB_ID_LABEL",
    "JOB_NAME_LABEL",
    "MANAGED_BY_LABEL",
    "MANAGED_BY_VALUE",
    "MAX_EXEC_TIME_LABEL",
    "MIN_PARALLELISM_ANNOTATION",
    "OWNED_SELECTOR",
    "PRIORITY_CLASS_LABEL",
    "QUEUE_NAME_LABEL",
    "TENANT_LABEL",
    "NameClashError",
    "SubmitResult",
    "job_manifest",
    "jobset_manifest",
    "manifest",
    "object_name",
    "owner_key",
    "resource_type_of",
    "submit",
    "validate_manifest",
    "withdraw",
]

QUEUE_NAME_LABEL: Final = "kueue.x-k8s.io/queue-name"
MAX_EXEC_TIME_LABEL: Final = "kueue.x-k8s.io/max-exec-time-seconds"
MIN_PARALLELISM_ANNOTATION: Final = "kueue.x-k8s.io/job-min-parallelism"
MANAGED_BY_LABEL: Final = "app.kubernetes.io/managed-by"
MANAGED_BY_VALUE: Final = "budcore"
JOB_ID_LABEL: Final = "budcore.io/job-id"
TENANT_LABEL: Final = "budcore.io/tenant"
ATTEMPT_LABEL: Final = "budcore.io/attempt"
JOB_NAME_LABEL: Final = "budcore.io/job-name"
ACCELERATOR_ANNOTATION: Final = "budcore.io/accelerator-type"

#: What the status reconciler lists and watches: the workloads budcore submitted.
OWNED_SELECTOR: Final = f"{MANAGED_BY_LABEL}={MANAGED_BY_VALUE},{JOB_ID_LABEL}"

JOBSET_API_VERSION: Final = "jobset.x-k8s.io/v1alpha2"

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_LABEL_VALUE = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$")
_MAX_NAME = 63  # a Job's name is also the value of its pods' batch.kubernetes.io/job-name label
_HASH_CHARS = 20
_SPEC_KEYS = ("image", "command", "args", "env")


class NameClashError(BudcoreError):
    """The object name of a budcore job is taken by an object that is not that job's submission."""


@dataclass(frozen=True, slots=True)
class SubmitResult:
    """What :func:`submit` did: the object's kind, namespace and name, and whether it created it
    (``False``: it already existed from an earlier submission of the same job and attempt)."""

    kind: str
    namespace: str
    name: str
    created: bool
    object: dict[str, Any]

    @property
    def uid(self) -> str:
        return str((self.object.get("metadata") or {}).get("uid") or "")


# -- names and labels --------------------------------------------------------------------------


def object_name(job: Job) -> str:
    """The Kubernetes name of ``job``'s current attempt: ``budcore-<20 hex chars>[-r<n>]``.

    The hash covers the tenant and the id (ids are unique per tenant, and two tenants may share a
    namespace), so the name depends on nothing that can change; a retry (``retry_count`` n > 0)
    is a new run and gets its own object, ``-r<n>``: the failed attempt's Job stays as its record.
    """
    digest = hashlib.sha256(f"{job.tenant}\x00{job.id}".encode()).hexdigest()[:_HASH_CHARS]
    suffix = f"-r{job.retry_count}" if job.retry_count else ""
    return f"budcore-{digest}{suffix}"


def owner_key(obj: Mapping[str, Any]) -> tuple[str, str, int] | None:
    """(tenant, job id, attempt) from a submitted object's owner labels, ``None`` if not budcore's."""
    labels = (obj.get("metadata") or {}).get("labels") or {}
    if labels.get(MANAGED_BY_LABEL) != MANAGED_BY_VALUE:
        return None
    job_id, tenant = labels.get(JOB_ID_LABEL), labels.get(TENANT_LABEL)
    if not job_id or not tenant:
        return None
    try:
        attempt = int(labels.get(ATTEMPT_LABEL) or 0)
    except ValueError:
        return None
    return str(tenant), str(job_id), attempt


def _readable(name: str) -> str:
    """``job.name`` as a label value (lower-case, invalid characters as '-', at most 63)."""
    slug = re.sub(r"[^a-z0-9._-]+", "-", name.lower())[:_MAX_NAME]
    return re.sub(r"^[^a-z0-9]+|[^a-z0-9]+$", "", slug)


def _check_label_value(value: str, path: str) -> None:
    if len(value) > _MAX_NAME or not _LABEL_VALUE.match(value):
        raise ValidationError(
            f"{value!r} cannot be a Kubernetes label value (at most 63 characters: letters, digits, "
            "'-', '_', '.', starting and ending with a letter or digit)",
            path=path,
        )


def _namespace(job: Job, namespace: str | None) -> str:
    chosen = namespace if namespace is not None else job.tenant
    if len(chosen) > _MAX_NAME or not _DNS_LABEL.match(chosen):
        what = "namespace" if namespace is not None else f"tenant {job.tenant!r} as namespace"
        raise ValidationError(
            f"{what}: {chosen!r} is not a valid Kubernetes namespace (a DNS-1123 label: at most 63 "
            "lower-case letters, digits and '-'); pass namespace= to submit into another one",
            path="namespace" if namespace is not None else "tenant",
        )
    return chosen


def _labels(job: Job) -> dict[str, str]:
    """The workload object's labels: Kueue's, then budcore's owner labels."""
    if job.local_queue is None:
        raise ValidationError(
            "the job names no Kueue LocalQueue: set job.local_queue (label kueue.x-k8s.io/queue-name); "
            "Kueue ignores a job without it and the suspended job would never run",
            path="local_queue",
        )
    priority_class = job.priority_class_name or job.priority.kueue_class_name
    labels = {
        QUEUE_NAME_LABEL: job.local_queue,
        PRIORITY_CLASS_LABEL: priority_class,
        JOB_ID_LABEL: job.id,
        TENANT_LABEL: job.tenant,
        ATTEMPT_LABEL: str(job.retry_count),
        MANAGED_BY_LABEL: MANAGED_BY_VALUE,
    }
    readable = _readable(job.name)
    if readable:
        labels[JOB_NAME_LABEL] = readable
    seconds = _max_seconds(job)
    if seconds is not None:
        labels[MAX_EXEC_TIME_LABEL] = str(seconds)
    where = {
        QUEUE_NAME_LABEL: "local_queue",
        PRIORITY_CLASS_LABEL: "priority_class",
        JOB_ID_LABEL: "id",
        TENANT_LABEL: "tenant",
    }
    for key, value in labels.items():
        _check_label_value(value, where.get(key, f"metadata.labels[{key}]"))
    return labels


def _max_seconds(job: Job) -> int | None:
    """``max_duration`` in whole seconds (rounded up), or ``None``; Kubernetes needs at least 1."""
    if job.max_duration is None:
        return None
    seconds = math.ceil(job.max_duration.total_seconds())
    if seconds < 1:
        raise ValidationError(
            "max_duration must be at least 1 second to become activeDeadlineSeconds and "
            "kueue.x-k8s.io/max-exec-time-seconds",
            path="max_duration",
        )
    return seconds


# -- pods --------------------------------------------------------------------------------------


def _container_spec(job: Job, pod_set: PodSet) -> dict[str, Any]:
    """image/command/args/env for ``pod_set``: ``job.spec``'s, overridden by ``spec.pod_sets[name]``."""
    merged: dict[str, Any] = {k: job.spec[k] for k in _SPEC_KEYS if k in job.spec}
    overrides = job.spec.get("pod_sets")
    if overrides is not None:
        if not isinstance(overrides, Mapping):
            raise ValidationError("must map pod set names to container settings", path="spec.pod_sets")
        own = overrides.get(pod_set.name)
        if own is not None:
            if not isinstance(own, Mapping):
                raise ValidationError("must be a mapping", path=f"spec.pod_sets.{pod_set.name}")
            merged.update({k: own[k] for k in _SPEC_KEYS if k in own})
    image = merged.get("image")
    if not isinstance(image, str) or not image.strip():
        raise ValidationError(
            f"a container image is required to submit to Kubernetes (pod set {pod_set.name!r}): "
            'set job.spec["image"] (or spec["pod_sets"][name]["image"])',
            path="spec.image",
        )
    container: dict[str, Any] = {"name": _container_name(pod_set.name), "image": image.strip()}
    for key in ("command", "args"):
        value = merged.get(key)
        if value is None:
            continue
        if (
            isinstance(value, str)
            or not isinstance(value, Sequence)
            or not all(isinstance(v, str) for v in value)
        ):
            raise ValidationError("must be a list of strings", path=f"spec.{key}")
        container[key] = list(value)
    env = merged.get("env")
    if env is not None:
        if not isinstance(env, Mapping):
            raise ValidationError("must map variable names to values", path="spec.env")
        container["env"] = [{"name": str(k), "value": str(v)} for k, v in env.items()]
    return container


def _container_name(pod_set_name: str) -> str:
    name = re.sub(r"[^a-z0-9-]+", "-", pod_set_name.lower()).strip("-")[:_MAX_NAME].strip("-")
    return name or "main"


def _resources(pod_set: PodSet) -> dict[str, Any]:
    amounts = dict(pod_set.resources.to_kube())
    amounts.update(dict.fromkeys(pod_set.zero_requests, "0"))
    amounts = dict(sorted(amounts.items()))
    return {"requests": dict(amounts), "limits": dict(amounts)} if amounts else {}


def _placement(pod_set: PodSet) -> dict[str, Any]:
    """nodeSelector, tolerations and required node affinity of the pod spec."""
    out: dict[str, Any] = {}
    if pod_set.node_selector:
        out["nodeSelector"] = dict(pod_set.node_selector)
    if pod_set.tolerations:
        tolerations = []
        for t in pod_set.tolerations:
            entry: dict[str, Any] = {"operator": t.operator}
            if t.key:
                entry["key"] = t.key
            if t.value:
                entry["value"] = t.value
            if t.effect:
                entry["effect"] = t.effect
            if t.toleration_seconds is not None:
                entry["tolerationSeconds"] = t.toleration_seconds
            tolerations.append(entry)
        out["tolerations"] = tolerations
    if pod_set.required_node_affinity:
        terms = [
            {
                "matchExpressions": [
                    {"key": e.key, "operator": e.operator, **({"values": list(e.values)} if e.values else {})}
                    for e in term.match_expressions
                ]
            }
            for term in pod_set.required_node_affinity
        ]
        out["affinity"] = {
            "nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": terms}}
        }
    return out


def _pod_template(job: Job, pod_set: PodSet) -> dict[str, Any]:
    container = _container_spec(job, pod_set)
    resources = _resources(pod_set)
    if resources:
        container["resources"] = resources
    return {
        "metadata": {"labels": {JOB_ID_LABEL: job.id, TENANT_LABEL: job.tenant}},
        "spec": {"restartPolicy": "Never", "containers": [container], **_placement(pod_set)},
    }


def _job_spec(job: Job, pod_set: PodSet, *, suspend: bool) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "parallelism": pod_set.count,
        "completions": pod_set.count,
        "backoffLimit": 0,
        "template": _pod_template(job, pod_set),
    }
    if suspend:
        spec = {"suspend": True, **spec}
    seconds = _max_seconds(job)
    if seconds is not None:
        spec["activeDeadlineSeconds"] = seconds
    return spec


def _metadata(job: Job, namespace: str | None) -> dict[str, Any]:
    if job.deployment_type not in (None, DeploymentType.DOCKER):
        raise ValidationError(
            f"deployment_type {job.deployment_type.value!r} cannot run as a Kubernetes batch workload: "
            "only container images (docker) can; deploy helm charts and models with their own tooling",
            path="deployment_type",
        )
    _check_label_value(job.id, "id")
    metadata: dict[str, Any] = {
        "name": object_name(job),
        "namespace": _namespace(job, namespace),
        "labels": _labels(job),
    }
    annotations = {}
    if job.request.accelerators:  # a set as "A|B" (budcore.domain.accelerators)
        annotations[ACCELERATOR_ANNOTATION] = "|".join(job.request.accelerators)
    if annotations:
        metadata["annotations"] = annotations
    return metadata


# -- manifests ---------------------------------------------------------------------------------


def job_manifest(job: Job, *, namespace: str | None = None) -> dict[str, Any]:
    """The suspended ``batch/v1`` Job for a single-pod-set ``job`` (see the module docstring).

    A job with several pod sets is refused here (a batch Job has one pod template): use
    :func:`manifest`, which makes those a JobSet. Bad input is a ``ValidationError`` naming the
    job field (``local_queue``, ``spec.image``, ``tenant``...) or the manifest field.
    """
    if len(job.request.pod_sets) != 1:
        names = ", ".join(p.name for p in job.request.pod_sets)
        raise ValidationError(
            f"a batch/v1 Job has one pod template, this job has {len(job.request.pod_sets)} pod sets "
            f"({names}): submit it as a JobSet (manifest() chooses)",
            path="request.pod_sets",
        )
    pod_set = job.request.pod_sets[0]
    metadata = _metadata(job, namespace)
    if pod_set.min_count is not None and pod_set.min_count < pod_set.count:
        metadata.setdefault("annotations", {})[MIN_PARALLELISM_ANNOTATION] = str(pod_set.min_count)
    document = {
        "apiVersion": JOBS.api_version,
        "kind": JOBS.kind,
        "metadata": metadata,
        "spec": _job_spec(job, pod_set, suspend=True),
    }
    validate_manifest(document)
    return document


def jobset_manifest(job: Job, *, namespace: str | None = None) -> dict[str, Any]:
    """The suspended JobSet (``jobset.x-k8s.io/v1alpha2``) for a multi-pod-set gang.

    One replicated Job (``replicas: 1``) per pod set, named after it, with ``parallelism`` =
    ``completions`` = the pod set's count; ``failurePolicy.maxRestarts: 0`` (budcore owns
    retries) and the default success policy (every replicated Job completes). Kueue makes one
    Workload with a pod set per replicated Job and admits them together. ``min_count`` (partial
    admission) is not supported for JobSets by Kueue and is refused.
    """
    metadata = _metadata(job, namespace)
    replicated = []
    seen: set[str] = set()
    for index, pod_set in enumerate(job.request.pod_sets):
        path = f"request.pod_sets[{index}]"
        rjob = pod_set.name
        # JobSet names a child Job <jobset>-<replicatedJob>-<index>; it must stay a valid name.
        longest = _MAX_NAME - len(metadata["name"]) - len("--0")
        if len(rjob) > longest or not _DNS_LABEL.match(rjob):
            raise ValidationError(
                f"pod set name {rjob!r} must be a DNS-1123 label of at most {longest} characters to name "
                "a JobSet replicated job",
                path=f"{path}.name",
            )
        if pod_set.min_count is not None and pod_set.min_count < pod_set.count:
            raise ValidationError(
                "partial admission (min_count) is supported by Kueue for batch Jobs only, not JobSets",
                path=f"{path}.min_count",
            )
        seen.add(rjob)
        replicated.append(
            {"name": rjob, "replicas": 1, "template": {"spec": _job_spec(job, pod_set, suspend=False)}}
        )
    document = {
        "apiVersion": JOBSET_API_VERSION,
        "kind": "JobSet",
        "metadata": metadata,
        "spec": {"suspend": True, "failurePolicy": {"maxRestarts": 0}, "replicatedJobs": replicated},
    }
    validate_manifest(document)
    return document


def manifest(job: Job, *, namespace: str | None = None) -> dict[str, Any]:
    """The workload object for ``job``: a batch Job for one pod set, a JobSet for several."""
    if len(job.request.pod_sets) == 1:
        return job_manifest(job, namespace=namespace)
    return jobset_manifest(job, namespace=namespace)


def resource_type_of(document: Mapping[str, Any]) -> ResourceType:
    """The :class:`ResourceType` a manifest of :func:`manifest` is created as."""
    return JOBSETS if document.get("kind") == "JobSet" else JOBS


# -- validation against the Kubernetes OpenAPI models ------------------------------------------


def validate_manifest(document: Mapping[str, Any]) -> None:
    """Check a Job or JobSet manifest against the Kubernetes OpenAPI models; raise naming the field.

    A ``batch/v1`` Job is validated as ``V1Job``; a JobSet's envelope is budcore's own fixed
    structure (the Kubernetes client has no JobSet model) and each replicated job's template is
    validated as ``V1JobTemplateSpec``. Every problem found is reported (``ValidationErrors``).
    """
    kind = document.get("kind")
    metadata = document.get("metadata") or {}
    where = f"{kind} {metadata.get('namespace', '')}/{metadata.get('name', '')}"
    problems: list[ValidationError] = []
    if kind == "JobSet":
        problems += _model_problems("V1ObjectMeta", metadata, "metadata")
        spec = document.get("spec") or {}
        for index, rjob in enumerate(spec.get("replicatedJobs") or []):
            prefix = f"spec.replicatedJobs[{index}].template"
            problems += _model_problems("V1JobTemplateSpec", rjob.get("template"), prefix)
    elif kind == "Job":
        problems += _model_problems("V1Job", document, "")
    else:
        problems.append(ValidationError(f"cannot validate kind {kind!r}", path="kind"))
    if problems:
        errors = [ValidationError(f"{where}: {p.message}", path=p.path) for p in problems]
        raise errors[0] if len(errors) == 1 else ValidationErrors(errors)


def _model_problems(model_name: str, data: Any, prefix: str) -> list[ValidationError]:
    """Problems of ``data`` as the client's model ``model_name`` (pydantic models from client
    v35 on; the ``openapi_types`` walk for older clients, whose models accept anything)."""
    import kubernetes.client

    model = getattr(kubernetes.client, model_name)
    validate = getattr(model, "model_validate", None)
    if validate is None:
        return _walk(model, data, prefix)
    import pydantic

    try:
        validate(data)
    except pydantic.ValidationError as exc:
        return [
            ValidationError(_pydantic_message(err), path=_join(prefix, _loc_path(err["loc"])))
            for err in exc.errors()
        ]
    return []


def _pydantic_message(err: Any) -> str:
    kind = str(err.get("type", ""))
    if kind == "extra_forbidden":
        return "unknown field (not in the Kubernetes API)"
    if kind == "missing":
        return "required field is missing"
    value = err.get("input")
    return f"{err.get('msg', 'invalid')} (got {value!r})"


def _loc_path(loc: Sequence[Any]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def _join(prefix: str, path: str) -> str:
    if not prefix:
        return path
    if not path:
        return prefix
    return prefix + path if path.startswith("[") else f"{prefix}.{path}"


_PRIMITIVES: dict[str, tuple[type, ...]] = {
    "str": (str,),
    "int": (int,),
    "bool": (bool,),
    "float": (int, float),
    "object": (object,),
    "datetime": (str,),
    "date": (str,),
}


def _walk(model: Any, data: Any, path: str) -> list[ValidationError]:
    """Unknown fields and wrong types of ``data`` against an ``openapi_types`` model (old clients)."""
    if not isinstance(data, Mapping):
        return [ValidationError(f"must be an object, got {type(data).__name__}", path=path)]
    by_json = {json_key: attr for attr, json_key in model.attribute_map.items()}
    problems: list[ValidationError] = []
    for key, value in data.items():
        here = _join(path, str(key))
        attr = by_json.get(key)
        if attr is None:
            problems.append(ValidationError("unknown field (not in the Kubernetes API)", path=here))
            continue
        if value is not None:
            problems += _check_type(model.openapi_types[attr], value, here)
    return problems


def _check_type(type_name: str, value: Any, path: str) -> list[ValidationError]:
    import kubernetes.client

    match = re.fullmatch(r"(?:List|list)\[(.+)\]", type_name)
    if match:
        if not isinstance(value, list):
            return [ValidationError(f"must be a list, got {type(value).__name__}", path=path)]
        return [p for i, item in enumerate(value) for p in _check_type(match.group(1), item, f"{path}[{i}]")]
    match = re.fullmatch(r"(?:Dict\[str, (.+)\]|dict\(str, (.+)\))", type_name)
    if match:
        inner = match.group(1) or match.group(2)
        if not isinstance(value, Mapping):
            return [ValidationError(f"must be an object, got {type(value).__name__}", path=path)]
        return [p for k, item in value.items() for p in _check_type(inner, item, f"{path}.{k}")]
    expected = _PRIMITIVES.get(type_name)
    if expected is not None:
        wrong = not isinstance(value, expected) or (type_name in ("int", "float") and isinstance(value, bool))
        if wrong:
            return [ValidationError(f"must be {type_name}, got {type(value).__name__} {value!r}", path=path)]
        return []
    return _walk(getattr(kubernetes.client, type_name), value, path)


# -- talking to the cluster --------------------------------------------------------------------


def submit(client: KubeClient, job: Job, *, namespace: str | None = None) -> SubmitResult:
    """Create ``job``'s workload object (a suspended Job or JobSet) once; Kueue takes it from there.

    Safe to call again for the same job and attempt (after a crash, a timeout, a retried request):
    an existing object carrying this job's ``budcore.io/job-id``, tenant and attempt labels is the
    earlier submission and is returned with ``created=False``; nothing is created or changed. An
    object of that name that belongs to anything else raises :class:`NameClashError`. Invalid input
    raises ``ValidationError`` before any request; server errors (403 in a forbidden namespace,
    an unreachable server) raise the client's one-line :class:`~.client.KubeError`.
    """
    document = manifest(job, namespace=namespace)
    rt = resource_type_of(document)
    if rt is JOBSETS and JOBSETS.version not in client.api_versions(JOBSETS.group):
        raise ValidationError(
            f"job {job.id!r} has {len(job.request.pod_sets)} pod sets and is submitted as a JobSet, but "
            f"the cluster ({client.context or client.server}) does not serve {JOBSET_API_VERSION}: "
            "install the JobSet controller (and enable Kueue's jobset integration)",
            path="request.pod_sets",
        )
    meta = document["metadata"]
    ns, name = str(meta["namespace"]), str(meta["name"])
    for _ in range(3):  # a concurrent delete between the 409 and the read: create again
        try:
            created = client.create(rt, document)
        except KubeError as exc:
            if exc.status != 409:
                raise
        else:
            return SubmitResult(rt.kind, ns, name, True, created)
        existing = client.get(rt, name, ns)
        if existing is None:
            continue
        wanted = (job.tenant, job.id, job.retry_count)
        found = owner_key(existing)
        if found != wanted:
            owner = (
                f"budcore job {found[1]!r} of tenant {found[0]!r} (attempt {found[2]})"
                if found
                else "an object budcore did not submit"
            )
            raise NameClashError(
                f"{client.context or client.server}: {rt.kind} {ns}/{name} already exists and belongs to "
                f"{owner}, not to job {job.id!r} of tenant {job.tenant!r} (attempt {job.retry_count})"
            )
        return SubmitResult(rt.kind, ns, name, False, existing)
    raise KubeError(
        f"{client.context or client.server}: create {rt.kind} {ns}/{name}: the name stays taken "
        "although no object is found: retry later",
        status=409,
        reason="AlreadyExists",
        kind=rt.kind,
        name=name,
        namespace=ns,
        context=client.context,
        verb="create",
    )


def withdraw(client: KubeClient, job: Job, *, namespace: str | None = None) -> bool:
    """Delete ``job``'s current workload object (a cancellation, or a copy in another cluster);
    its pods go with it. ``False`` when there was nothing to delete. Objects that carry another
    owner's labels are left alone (:class:`NameClashError`)."""
    ns = _namespace(job, namespace)
    name = object_name(job)
    rt = JOBSETS if len(job.request.pod_sets) > 1 else JOBS
    existing = client.get(rt, name, ns)
    if existing is None:
        return False
    if owner_key(existing) != (job.tenant, job.id, job.retry_count):
        raise NameClashError(
            f"{client.context or client.server}: {rt.kind} {ns}/{name} does not belong to job {job.id!r}: "
            "not deleted"
        )
    return client.delete(rt, name, ns, propagation="Background")
