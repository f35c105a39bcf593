"""A local Kubernetes API-server test double, with a scripted Kueue, for the Kueue adapter's tests.

Why: no cluster can run where budcore's tests run, yet the adapter's value is in the protocol
details — resourceVersions, 409s, 404s, server-side apply, watch streams with bookmarks and 410
Gone, status subresources, dropped connections, restarts. :class:`FakeApiServer` is a real HTTP/1.1
server on 127.0.0.1 (a port of its own) speaking that REST and watch protocol, so every request goes
through the real client code (``KubeClient`` over the official ``ApiClient`` and urllib3), and
:class:`KueueController` plays Kueue's (and the Job controller's) part on the server's store.

What it serves: core ``v1`` nodes, namespaces, pods; ``batch/v1`` jobs; ``jobset.x-k8s.io/v1alpha2``
jobsets; ``kueue.x-k8s.io`` ``v1beta1`` and ``v1beta2`` resourceflavors, clusterqueues, cohorts,
localqueues, workloadpriorityclasses, workloads; discovery (``/api``, ``/apis``, ``/apis/GROUP``,
``/apis/GROUP/VERSION``) and ``/version``/``/healthz``. One store keyed by group and plural (as etcd
is): an object written at one Kueue version is read at the other with only ``apiVersion`` changed.

What it checks: bearer token (401), forbidden namespaces (403), apiVersion/kind/name/namespace of a
body against the URL (400), DNS-subdomain names and label keys/values (422), AlreadyExists and
resourceVersion preconditions (409), NotFound (404), ``fieldManager`` required for apply (400), the
event window (410 Expired), label selectors (``=``, ``==``, ``!=``, ``in``, ``notin``, ``k``, ``!k``)
and ``metadata.name``/``metadata.namespace`` field selectors. Writes that change nothing (PUT, merge
patch or apply) are no-ops that keep the resourceVersion, like the real apiserver.

What it does NOT check (a real cluster, the ``cluster`` suite, does):
- server-side apply field ownership is approximate: fields a manager applied and then drops are
  removed, lists are atomic (replaced, never merged by key), ``force=false`` conflicts are only
  detected between Apply managers, and Update (PUT/merge-patch) writes record no managedFields;
- no RBAC (only a namespace deny list), no admission webhooks (Kueue's webhook would suspend a Job
  created unsuspended with a queue name; here it stays as sent), no defaulting beyond a few Job
  fields (parallelism, completions, backoffLimit, suspend), no pod-template selector or labels;
- no CRD structural-schema validation or version conversion (budcore validates with the shipped CRD
  schemas itself), no strategic-merge-patch semantics (treated as a JSON merge patch), no JSON patch;
- no finalizers or deletionTimestamp: deletes are immediate, and garbage collection of dependents
  (ownerReferences) is synchronous;
- no pagination (``limit``/``continue``), no ``sendInitialEvents``, no protobuf, no table output;
- namespaces need not exist before objects are created in them (only ``default`` is pre-created);
- BOOKMARKs come after ``bookmark_interval_s`` (0.2 s) of quiet, not about once a minute, so tests
  see them; a watch from ``""``/``"0"`` starts with synthetic ADDED events of the current objects;
- KueueController is a script, not Kueue: no fair sharing, cohorts, borrowing, preemption decisions,
  admission checks, partial admission (``job-min-parallelism``), ``max-exec-time-seconds``
  deactivation or flavor node selectors injected into pod templates; no webhook, so a Job created
  unsuspended is left alone. It admits by a policy the test sets (immediately, after a delay,
  never, or FIFO within a GPU capacity), uses the LocalQueue's ClusterQueue and that queue's first
  flavor, evicts only when told, and plays the Job/JobSet controllers' part only as far as
  ``status`` (active, startTime, succeeded/failed, Complete/Failed, JobSet terminalState) goes.

Speed: 1,000 Jobs created, admitted and finished with a watch following them take about 2 s
(TCP_NODELAY on the server's sockets matters: headers and body are separate writes).
"""

from __future__ import annotations

import bisect
import contextlib
import copy
import hashlib
import heapq
import itertools
import json
import re
import shutil
import socket
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import yaml
from budcore_adapters.kueue.client import (
    JOBS,
    JOBSETS,
    KUEUE_GROUP,
    KUEUE_VERSIONS,
    NAMESPACES,
    KubeClient,
    ResourceType,
    builtin_types,
    kueue_type,
)

__all__ = ["EVICTION_REASONS", "FakeApiServer", "KueueController"]

Obj = dict[str, Any]

QUEUE_LABEL = "kueue.x-k8s.io/queue-name"
PRIORITY_LABEL = "kueue.x-k8s.io/priority-class"
EVICTION_REASONS = (
    "Preempted",
    "PodsReadyTimeout",
    "InactiveWorkload",
    "AdmissionCheck",
    "ClusterQueueStopped",
    "Deactivated",
)

_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_LABEL_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# --------------------------------------------------------------------------------------------------
# Resources served
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Resource:
    """One served resource across its versions (the store keys by group and plural)."""

    group: str
    plural: str
    kind: str
    namespaced: bool
    versions: tuple[str, ...]
    status_subresource: bool = True
    keep_status_on_create: bool = False  # nodes keep the status they are created with
    builtin: bool = True  # built-in kinds: list items carry no apiVersion/kind (CRDs' do)

    def api_version(self, version: str) -> str:
        return f"{self.group}/{version}" if self.group else version

    @property
    def group_resource(self) -> str:
        return f"{self.plural}.{self.group}" if self.group else self.plural

    def rt(self, version: str) -> ResourceType:
        return ResourceType(self.group, version, self.plural, self.kind, self.namespaced)


def _resources(kueue_versions: Iterable[str]) -> dict[tuple[str, str], _Resource]:
    served = tuple(v for v in KUEUE_VERSIONS if v in set(kueue_versions))
    out: dict[tuple[str, str], _Resource] = {}
    for rt in builtin_types():
        if rt.group == KUEUE_GROUP:
            if rt.version not in served:
                continue
            out[(rt.group, rt.plural)] = _Resource(
                rt.group,
                rt.plural,
                rt.kind,
                rt.namespaced,
                served,
                status_subresource=rt.kind not in ("ResourceFlavor", "WorkloadPriorityClass"),
                builtin=False,
            )
        else:
            out[(rt.group, rt.plural)] = _Resource(
                rt.group,
                rt.plural,
                rt.kind,
                rt.namespaced,
                (rt.version,),
                keep_status_on_create=rt.kind == "Node",
                builtin=rt.group in ("", "batch"),
            )
    return out


# --------------------------------------------------------------------------------------------------
# Errors, selectors, merges
# --------------------------------------------------------------------------------------------------


class ApiError(Exception):
    """An error answer: HTTP status, Kubernetes reason and message (a ``Status`` body)."""

    def __init__(self, code: int, reason: str, message: str, details: Obj | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details = details or {}

    def status(self) -> Obj:
        body: Obj = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }
        if self.details:
            body["details"] = self.details
        return body


def _not_found(res: _Resource, name: str) -> ApiError:
    return ApiError(
        404,
        "NotFound",
        f'{res.group_resource} "{name}" not found',
        {"name": name, "group": res.group, "kind": res.plural},
    )


def _conflict(res: _Resource, name: str) -> ApiError:
    return ApiError(
        409,
        "Conflict",
        f'Operation cannot be fulfilled on {res.group_resource} "{name}": the object has been modified; '
        "please apply your changes to the latest version and try again",
        {"name": name, "group": res.group, "kind": res.plural},
    )


def _invalid(res: _Resource, name: str, detail: str) -> ApiError:
    return ApiError(422, "Invalid", f'{res.kind} "{name}" is invalid: {detail}')


Requirement = tuple[str, str, frozenset[str]]  # (key, operator, values)


def parse_label_selector(text: str) -> list[Requirement]:
    """``a=b,c!=d,e in (x,y),f notin (z),g,!h`` → requirements (400 if malformed)."""
    terms: list[str] = []
    depth, start = 0, 0
    for i, ch in enumerate(text):
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif ch == "," and depth == 0:
            terms.append(text[start:i])
            start = i + 1
    terms.append(text[start:])
    out: list[Requirement] = []
    for raw in terms:
        term = raw.strip()
        if not term:
            continue
        m = re.fullmatch(r"([^\s!=()]+)\s+(in|notin)\s+\(([^)]*)\)", term)
        if m:
            values = frozenset(v.strip() for v in m.group(3).split(",") if v.strip())
            out.append((m.group(1), m.group(2), values))
            continue
        m = re.fullmatch(r"([^\s!=()]+)\s*(!=|==|=)\s*([^\s!=(),]*)", term)
        if m:
            out.append((m.group(1), "notin" if m.group(2) == "!=" else "in", frozenset([m.group(3)])))
            continue
        m = re.fullmatch(r"(!?)\s*([^\s!=(),]+)", term)
        if m:
            out.append((m.group(2), "!" if m.group(1) else "exists", frozenset()))
            continue
        raise ApiError(400, "BadRequest", f"unable to parse requirement: {term!r}")
    return out


def _selected(labels: Mapping[str, str], requirements: Iterable[Requirement]) -> bool:
    for key, op, values in requirements:
        if op == "in" and labels.get(key) not in values:
            return False
        if op == "notin" and key in labels and labels[key] in values:
            return False
        if op == "exists" and key not in labels:
            return False
        if op == "!" and key in labels:
            return False
    return True


def _field_selector(text: str) -> list[Requirement]:
    """``metadata.name=x,metadata.namespace!=y`` (the field selectors every resource supports)."""
    out: list[Requirement] = []
    for raw in text.split(","):
        term = raw.strip()
        if not term:
            continue
        m = re.fullmatch(r"(metadata\.name|metadata\.namespace)\s*(!=|==|=)\s*(\S*)", term)
        if not m:
            raise ApiError(400, "BadRequest", f'field label not supported: "{term}"')
        out.append(
            (m.group(1).split(".")[1], "notin" if m.group(2) == "!=" else "in", frozenset([m.group(3)]))
        )
    return out


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch (``None`` deletes a key; lists and scalars replace)."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def _apply_merge(target: Any, applied: Any) -> Any:
    """Server-side-apply merge: maps merge recursively, lists and scalars replace."""
    if not isinstance(applied, dict) or not isinstance(target, dict):
        return copy.deepcopy(applied)
    result = dict(target)
    for key, value in applied.items():
        result[key] = _apply_merge(result.get(key), value)
    return result


def _leaf_paths(obj: Any, prefix: tuple[str, ...] = ()) -> set[tuple[str, ...]]:
    """Paths of the fields an applied configuration sets (maps are walked, lists are atomic)."""
    if isinstance(obj, dict) and obj:
        paths: set[tuple[str, ...]] = set()
        for key, value in obj.items():
            paths |= _leaf_paths(value, (*prefix, str(key)))
        return paths
    return {prefix} if prefix else set()


def _fields_v1(paths: Iterable[tuple[str, ...]]) -> Obj:
    """The ``fieldsV1`` form (``{"f:spec": {"f:x": {}}}``) of a set of field paths."""
    root: Obj = {}
    for path in sorted(paths):
        node = root
        for part in path:
            node = node.setdefault(f"f:{part}", {})
    return root


def _paths_of_fields_v1(fields: Mapping[str, Any], prefix: tuple[str, ...] = ()) -> set[tuple[str, ...]]:
    paths: set[tuple[str, ...]] = set()
    for key, value in fields.items():
        if not key.startswith("f:"):
            continue
        path = (*prefix, key[2:])
        if isinstance(value, Mapping) and any(k.startswith("f:") for k in value):
            paths |= _paths_of_fields_v1(value, path)
        else:
            paths.add(path)
    return paths


def _get_path(obj: Any, path: tuple[str, ...]) -> tuple[bool, Any]:
    node = obj
    for part in path:
        if not isinstance(node, dict) or part not in node:
            return False, None
        node = node[part]
    return True, node


def _remove_path(obj: Obj, path: tuple[str, ...]) -> None:
    """Delete a field, then the maps it leaves empty."""
    chain: list[Obj] = [obj]
    node: Any = obj
    for part in path[:-1]:
        node = node.get(part) if isinstance(node, dict) else None
        if not isinstance(node, dict):
            return
        chain.append(node)
    node.pop(path[-1], None)
    for parent, part in zip(reversed(chain[:-1]), reversed(path[:-1]), strict=False):
        child = parent.get(part)
        if isinstance(child, dict) and not child:
            del parent[part]
        else:
            break


def _without_rv(obj: Obj) -> Obj:
    meta = dict(obj.get("metadata") or {})
    meta.pop("resourceVersion", None)
    return {**obj, "metadata": meta}


def _labels(obj: Obj) -> Mapping[str, str]:
    labels = (obj.get("metadata") or {}).get("labels") or {}
    return labels if isinstance(labels, dict) else {}


def _copy_json(obj: Any) -> Any:
    return json.loads(json.dumps(obj))


# --------------------------------------------------------------------------------------------------
# The store
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Event:
    rv: int
    key: tuple[str, str]  # (group, plural)
    type: str
    obj: Obj  # the object after the change (for DELETED: its last state, with the deletion's RV)
    old: Obj | None  # before the change (selector transitions for watches)


class Store:
    """Objects and the event log, under one condition variable (thread-safe).

    Every write goes through :meth:`_commit`/:meth:`_drop`: a new global resourceVersion, an event
    in the log (trimmed to ``window`` events; older resourceVersions then answer 410) and a wake-up
    for the watches. Stored objects are never mutated in place, so events can share them.
    """

    def __init__(self, resources: dict[tuple[str, str], _Resource], window: int) -> None:
        self.resources = resources
        self.cond = threading.Condition(threading.RLock())
        self.rv = 0
        self.objects: dict[tuple[str, str], dict[tuple[str, str], Obj]] = {key: {} for key in resources}
        self.log: list[_Event] = []
        self.floor = 0  # a watch from RV >= floor can be served from the log
        self.window = window
        self._uids = itertools.count(1)

    # -- reads --

    def get(self, res: _Resource, namespace: str, name: str) -> Obj | None:
        with self.cond:
            return self.objects[(res.group, res.plural)].get((namespace, name))

    def select(self, res: _Resource, namespace: str | None) -> tuple[list[Obj], int]:
        with self.cond:
            objs = self.objects[(res.group, res.plural)]
            items = [o for (ns, _), o in sorted(objs.items()) if namespace is None or ns == namespace]
            return items, self.rv

    def events_after(self, rv: int) -> list[_Event]:
        """Log events with resourceVersion > rv (caller holds the lock and checked the floor)."""
        start = bisect.bisect_right(self.log, rv, key=lambda e: e.rv)
        return self.log[start:]

    # -- writes (callers hold the lock) --

    def _commit(self, res: _Resource, obj: Obj, old: Obj | None) -> Obj:
        """Store ``obj`` (a fresh dict) with a new resourceVersion and log ADDED/MODIFIED."""
        self.rv += 1
        meta = dict(obj.get("metadata") or {})
        meta["resourceVersion"] = str(self.rv)
        stored = {**obj, "metadata": meta}
        key = (meta.get("namespace", "") if res.namespaced else "", meta["name"])
        self.objects[(res.group, res.plural)][key] = stored
        self._log(_Event(self.rv, (res.group, res.plural), "MODIFIED" if old else "ADDED", stored, old))
        return stored

    def _drop(self, res: _Resource, namespace: str, name: str) -> Obj | None:
        old = self.objects[(res.group, res.plural)].pop((namespace, name), None)
        if old is None:
            return None
        self.rv += 1
        gone = {**old, "metadata": {**old["metadata"], "resourceVersion": str(self.rv)}}
        self._log(_Event(self.rv, (res.group, res.plural), "DELETED", gone, old))
        uid = old["metadata"].get("uid")
        if uid:
            self._collect_dependents(uid)
        return gone

    def _collect_dependents(self, uid: str) -> None:
        """Background garbage collection, synchronously: delete objects owned by ``uid``."""
        for key, objs in self.objects.items():
            res = self.resources[key]
            for (ns, name), obj in list(objs.items()):
                owners = obj["metadata"].get("ownerReferences") or []
                if any(isinstance(o, dict) and o.get("uid") == uid for o in owners):
                    self._drop(res, ns, name)

    def _log(self, event: _Event) -> None:
        self.log.append(event)
        if len(self.log) > self.window + max(16, self.window // 4):
            cut = len(self.log) - self.window
            self.floor = self.log[cut - 1].rv
            del self.log[:cut]
        self.cond.notify_all()

    def compact(self) -> None:
        with self.cond:
            self.log.clear()
            self.floor = self.rv
            self.cond.notify_all()

    def new_uid(self, seed: str) -> str:
        return str(uuid.uuid5(uuid.NAMESPACE_URL, f"{seed}#{next(self._uids)}"))

    # -- the write operations (the HTTP handlers and the controller both use these) --

    def create(
        self, res: _Resource, namespace: str, body: Obj, *, dry_run: bool = False, manager: str = ""
    ) -> Obj:
        with self.cond:
            obj = _copy_json(body)
            meta = obj.setdefault("metadata", {})
            if not isinstance(meta, dict):
                raise ApiError(400, "BadRequest", "metadata must be an object")
            if not meta.get("name") and meta.get("generateName"):
                meta["name"] = (
                    f"{meta['generateName']}{hashlib.sha1(str(self.rv + 1).encode()).hexdigest()[:5]}"
                )
            name = str(meta.get("name") or "")
            self._validate(res, namespace, obj, name)
            if res.namespaced:
                meta["namespace"] = namespace
            else:
                meta.pop("namespace", None)
            if self.get(res, namespace if res.namespaced else "", name) is not None:
                raise ApiError(
                    409,
                    "AlreadyExists",
                    f'{res.group_resource} "{name}" already exists',
                    {"name": name, "group": res.group, "kind": res.plural},
                )
            meta.pop("resourceVersion", None)
            meta["uid"] = self.new_uid(f"{res.plural}/{namespace}/{name}")
            meta["creationTimestamp"] = _now()
            meta["generation"] = 1
            if manager:
                meta["managedFields"] = [_managed_entry(manager, obj, res)]
            if res.status_subresource and not res.keep_status_on_create:
                obj.pop("status", None)
            _default(res, obj)
            if dry_run:
                return dict(obj)
            return self._commit(res, obj, None)

    def update(
        self,
        res: _Resource,
        namespace: str,
        name: str,
        body: Obj,
        *,
        subresource: str = "",
        dry_run: bool = False,
    ) -> Obj:
        with self.cond:
            ns = namespace if res.namespaced else ""
            old = self.get(res, ns, name)
            if old is None:
                raise _not_found(res, name)
            obj = _copy_json(body)
            self._validate(res, namespace, obj, name)
            want_rv = str((obj.get("metadata") or {}).get("resourceVersion") or "")
            if want_rv and want_rv != old["metadata"]["resourceVersion"]:
                raise _conflict(res, name)
            new = self._merge_update(res, old, obj, subresource)
            return self._write(res, old, new, dry_run=dry_run)

    def patch(
        self,
        res: _Resource,
        namespace: str,
        name: str,
        patch: Obj,
        *,
        subresource: str = "",
        dry_run: bool = False,
    ) -> Obj:
        with self.cond:
            ns = namespace if res.namespaced else ""
            old = self.get(res, ns, name)
            if old is None:
                raise _not_found(res, name)
            if not isinstance(patch, dict):
                raise ApiError(400, "BadRequest", "a merge patch must be a JSON object")
            want_rv = str((patch.get("metadata") or {}).get("resourceVersion") or "")
            if want_rv and want_rv != old["metadata"]["resourceVersion"]:
                raise _conflict(res, name)
            patched = merge_patch(old, patch)
            self._validate(res, namespace, patched, name)
            new = self._merge_update(res, old, patched, subresource)
            return self._write(res, old, new, dry_run=dry_run)

    def apply(
        self,
        res: _Resource,
        namespace: str,
        name: str,
        applied: Obj,
        *,
        manager: str,
        force: bool,
        subresource: str = "",
        dry_run: bool = False,
    ) -> Obj:
        with self.cond:
            if not isinstance(applied, dict):
                raise ApiError(400, "BadRequest", "an apply patch must be an object")
            for required in ("apiVersion", "kind"):
                if not applied.get(required):
                    raise ApiError(400, "BadRequest", f"{required} must be set in an apply patch")
            ns = namespace if res.namespaced else ""
            old = self.get(res, ns, name)
            obj = _copy_json(applied)
            obj.setdefault("metadata", {}).setdefault("name", name)
            if old is None:
                if subresource:
                    raise _not_found(res, name)
                return self.create(res, namespace, obj, dry_run=dry_run, manager=manager)
            self._validate(res, namespace, obj, name)
            obj["metadata"].pop("resourceVersion", None)
            for server_field in ("uid", "creationTimestamp", "generation", "managedFields"):
                obj["metadata"].pop(server_field, None)
            if subresource == "status":
                obj = {"status": obj.get("status") or {}}
            new_paths = _leaf_paths({k: v for k, v in obj.items() if k not in ("apiVersion", "kind")})
            managed = [dict(m) for m in old["metadata"].get("managedFields") or []]
            mine = next(
                (
                    m
                    for m in managed
                    if m.get("manager") == manager
                    and m.get("operation") == "Apply"
                    and m.get("subresource", "") == subresource
                ),
                None,
            )
            others = [m for m in managed if m is not mine]
            other_paths: set[tuple[str, ...]] = set()
            for m in others:
                other_paths |= _paths_of_fields_v1(m.get("fieldsV1") or {})
            if not force:
                for path in new_paths & other_paths:
                    found, current = _get_path(old, path)
                    wanted = _get_path(obj, path)[1]
                    if found and current != wanted:
                        raise ApiError(
                            409,
                            "Conflict",
                            f"Apply failed with 1 conflict: conflict with another manager: .{'.'.join(path)}",
                        )
            merged = _apply_merge(old, {k: v for k, v in obj.items()})
            if mine is not None:  # fields this manager applied before and no longer does
                for path in _paths_of_fields_v1(mine.get("fieldsV1") or {}) - new_paths - other_paths:
                    _remove_path(merged, path)
            if force:  # forced fields leave the other managers
                for m in others:
                    theirs = _paths_of_fields_v1(m.get("fieldsV1") or {})
                    if theirs & new_paths:
                        m["fieldsV1"] = _fields_v1(theirs - new_paths)
            entry = _managed_entry(manager, obj, res, subresource)
            if mine is not None and mine.get("fieldsV1") == entry["fieldsV1"]:
                entry = mine
            fields = [entry if m is mine else m for m in managed if m is mine or m.get("fieldsV1")]
            if mine is None:
                fields.append(entry)
            merged["metadata"] = {**merged["metadata"], "managedFields": fields}
            new = self._merge_update(res, old, merged, subresource)
            return self._write(res, old, new, dry_run=dry_run)

    def delete(self, res: _Resource, namespace: str, name: str, *, dry_run: bool = False) -> Obj:
        with self.cond:
            ns = namespace if res.namespaced else ""
            old = self.get(res, ns, name)
            if old is None:
                raise _not_found(res, name)
            if dry_run:
                return old
            gone = self._drop(res, ns, name)
            assert gone is not None
            return gone

    # -- helpers --

    def _merge_update(self, res: _Resource, old: Obj, obj: Obj, subresource: str) -> Obj:
        """The object an update stores: status only through /status, server metadata kept."""
        if subresource == "status":
            new = {**old, "status": obj.get("status") or {}}
            return new
        new = dict(obj)
        meta = dict(new.get("metadata") or {})
        for server_field in ("uid", "creationTimestamp", "generation", "namespace", "name"):
            if server_field in old["metadata"]:
                meta[server_field] = old["metadata"][server_field]
        if "managedFields" not in meta and old["metadata"].get("managedFields"):
            meta["managedFields"] = old["metadata"]["managedFields"]
        new["metadata"] = meta
        if res.status_subresource:
            if "status" in old:
                new["status"] = old["status"]
            else:
                new.pop("status", None)
        _default(res, new)
        spec_old = {k: v for k, v in old.items() if k not in ("metadata", "status")}
        spec_new = {k: v for k, v in new.items() if k not in ("metadata", "status")}
        if spec_old != spec_new:
            meta["generation"] = int(old["metadata"].get("generation") or 1) + 1
        return new

    def _write(self, res: _Resource, old: Obj, new: Obj, *, dry_run: bool) -> Obj:
        if _without_rv(new) == _without_rv(old):
            return old  # nothing changed: no write, no event, same resourceVersion
        if dry_run:
            return {
                **new,
                "metadata": {**new["metadata"], "resourceVersion": old["metadata"]["resourceVersion"]},
            }
        return self._commit(res, new, old)

    def _validate(self, res: _Resource, namespace: str, obj: Obj, name: str) -> None:
        kind = obj.get("kind")
        if kind and kind != res.kind:
            raise ApiError(400, "BadRequest", f"the kind in the body ({kind}) does not match {res.kind}")
        api_version = obj.get("apiVersion")
        if api_version and api_version not in {res.api_version(v) for v in res.versions}:
            raise ApiError(
                400, "BadRequest", f"the API version in the data ({api_version}) does not match the resource"
            )
        meta = obj.get("metadata") or {}
        body_name = str(meta.get("name") or "")
        if not body_name:
            raise _invalid(res, "", "metadata.name: Required value: name or generateName is required")
        if name and body_name != name:
            raise ApiError(
                400,
                "BadRequest",
                f"the name of the object ({body_name}) does not match the name on the URL ({name})",
            )
        if len(body_name) > 253 or not _DNS_SUBDOMAIN.match(body_name):
            raise _invalid(
                res,
                body_name,
                f'metadata.name: Invalid value: "{body_name}": a lowercase RFC 1123 subdomain must '
                "consist of lower case alphanumeric characters, '-' or '.'",
            )
        body_ns = meta.get("namespace")
        if res.namespaced and body_ns and body_ns != namespace:
            raise ApiError(
                400,
                "BadRequest",
                f"the namespace of the provided object ({body_ns}) does not match the namespace sent on "
                f"the request ({namespace})",
            )
        for key, value in (meta.get("labels") or {}).items():
            prefix, _, label = str(key).rpartition("/")
            if (
                not label
                or len(label) > 63
                or not _LABEL_NAME.match(label)
                or (prefix and (len(prefix) > 253 or not _DNS_SUBDOMAIN.match(prefix)))
            ):
                raise _invalid(
                    res, body_name, f'metadata.labels: Invalid value: "{key}": not a valid label key'
                )
            if not isinstance(value, str) or len(value) > 63 or not _LABEL_VALUE.match(value):
                raise _invalid(
                    res,
                    body_name,
                    f'metadata.labels: Invalid value: "{value}": a valid label must be 63 '
                    "characters or less, alphanumeric, '-', '_' or '.'",
                )


def _managed_entry(manager: str, obj: Obj, res: _Resource, subresource: str = "") -> Obj:
    body = {k: v for k, v in obj.items() if k not in ("apiVersion", "kind")}
    meta = {k: v for k, v in (body.get("metadata") or {}).items() if k in ("labels", "annotations")}
    body["metadata"] = meta
    if not meta:
        body.pop("metadata")
    entry: Obj = {
        "manager": manager,
        "operation": "Apply",
        "apiVersion": str(obj.get("apiVersion") or res.api_version(res.versions[-1])),
        "time": _now(),
        "fieldsType": "FieldsV1",
        "fieldsV1": _fields_v1(_leaf_paths(body)),
    }
    if subresource:
        entry["subresource"] = subresource
    return entry


def _default(res: _Resource, obj: Obj) -> None:
    """The few defaults the real apiserver adds that the adapter reads back."""
    if res.kind == "Job":
        spec = obj.setdefault("spec", {})
        if isinstance(spec, dict):
            if "parallelism" not in spec and "completions" not in spec:
                spec["completions"] = 1  # both unset: one pod; parallelism alone is a work queue
            spec.setdefault("parallelism", 1)
            spec.setdefault("backoffLimit", 6)
            spec.setdefault("suspend", False)
            spec.setdefault("completionMode", "NonIndexed")
    elif res.kind == "Namespace":
        obj.setdefault("status", {"phase": "Active"})
    elif res.kind == "Workload":
        spec = obj.setdefault("spec", {})
        if isinstance(spec, dict):
            spec.setdefault("active", True)


# --------------------------------------------------------------------------------------------------
# HTTP
# --------------------------------------------------------------------------------------------------


@dataclass(slots=True)
class _Route:
    res: _Resource
    version: str
    namespace: str | None
    name: str | None
    subresource: str


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    block_on_close = False

    def __init__(self, address: tuple[str, int], app: FakeApiServer) -> None:
        self.app = app
        self.connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()
        super().__init__(address, _Handler)

    def finish_request(self, request: Any, client_address: Any) -> None:
        with self.connections_lock:
            self.connections.add(request)
        try:
            super().finish_request(request, client_address)
        finally:
            with self.connections_lock:
                self.connections.discard(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that went away mid-answer is normal for a test double

    def cut_connections(self) -> None:
        with self.connections_lock:
            conns = list(self.connections)
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server
    timeout = 60  # idle keep-alive connections end on their own

    def setup(self) -> None:
        super().setup()
        # headers and body leave in separate writes: without this, Nagle's algorithm and the
        # client's delayed ACK cost 40 ms per request
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self.server.app.dispatch(self, "GET")

    def do_POST(self) -> None:
        self.server.app.dispatch(self, "POST")

    def do_PUT(self) -> None:
        self.server.app.dispatch(self, "PUT")

    def do_PATCH(self) -> None:
        self.server.app.dispatch(self, "PATCH")

    def do_DELETE(self) -> None:
        self.server.app.dispatch(self, "DELETE")

    def send_json(self, code: int, body: Obj) -> None:
        data = json.dumps(body, separators=(",", ":")).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
        self.wfile.flush()

    def read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""


@dataclass(eq=False)
class _Watch:
    conn: socket.socket
    cut: bool = False


@dataclass
class _Faults:
    delay_s: float = 0.0
    conflicts: int = 0
    forbidden: set[str] = field(default_factory=set)


class FakeApiServer:
    """The Kubernetes API-server double (see the module docstring). Use as a context manager.

    ``token``: the bearer token every request must carry (``None``: no authentication).
    ``kueue_versions``: the Kueue API versions served. ``window``: events kept for watches.
    ``bookmark_interval_s``: quiet time after which a watch gets a BOOKMARK.
    ``expired_as_http``: answer a too-old watch with HTTP 410 instead of a 200 and an ERROR event.
    """

    def __init__(
        self,
        *,
        token: str | None = "test-token",
        context: str = "fake-cluster",
        kueue_versions: Iterable[str] = KUEUE_VERSIONS,
        window: int = 100_000,
        bookmark_interval_s: float = 0.2,
        expired_as_http: bool = False,
        user: str = "system:serviceaccount:budcore:budcore",
    ) -> None:
        self.token = token
        self.context = context
        self.user = user
        self.bookmark_interval_s = bookmark_interval_s
        self.expired_as_http = expired_as_http
        self.resources = _resources(kueue_versions)
        self.store = Store(self.resources, window)
        self.faults = _Faults()
        self._faults_lock = threading.Lock()
        self._watches: set[_Watch] = set()
        self._watches_lock = threading.Lock()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._port = 0
        self._closed = False
        self._tmp = Path(tempfile.mkdtemp(prefix="budcore-fake-apiserver-"))
        self.requests = 0
        self.store.create(self._res(NAMESPACES), "", {"metadata": {"name": "default"}})

    # -- lifecycle --

    def start(self) -> FakeApiServer:
        if self._server is not None:
            return self
        deadline = time.monotonic() + 5.0
        while True:  # after restart() the old port may linger for a moment
            try:
                self._server = _Server(("127.0.0.1", self._port), self)
                break
            except OSError:
                if time.monotonic() > deadline or not self._port:
                    raise
                time.sleep(0.02)
        self._port = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="fake-apiserver",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving: the port refuses connections, open watches and keep-alives are cut."""
        server, thread = self._server, self._thread
        self._server, self._thread = None, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        self.drop_watches()
        server.cut_connections()
        if thread is not None:
            thread.join(timeout=5.0)

    def restart(self, down_s: float = 0.2) -> None:
        """An apiserver restart over the same etcd: down for ``down_s``, same port, same store."""
        self.stop()
        time.sleep(down_s)
        if not self._closed:
            self.start()

    def close(self) -> None:
        self._closed = True
        self.stop()
        with self.store.cond:
            self.store.cond.notify_all()
        shutil.rmtree(self._tmp, ignore_errors=True)

    def __enter__(self) -> FakeApiServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def running(self) -> bool:
        return self._server is not None

    @property
    def port(self) -> int:
        return self._port

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._port}"

    # -- faults --

    def drop_watches(self) -> int:
        """Cut every open watch stream (the client sees the connection end); answers how many."""
        with self._watches_lock:
            watches = list(self._watches)
        for w in watches:
            w.cut = True
            with contextlib.suppress(OSError):
                w.conn.shutdown(socket.SHUT_RDWR)
        with self.store.cond:
            self.store.cond.notify_all()
        return len(watches)

    def delay(self, seconds: float) -> None:
        """Answer every following request ``seconds`` late (0 to stop)."""
        with self._faults_lock:
            self.faults.delay_s = seconds

    def conflict_next(self, n: int = 1) -> None:
        """The next ``n`` writes over HTTP answer 409 Conflict (the controller is not affected)."""
        with self._faults_lock:
            self.faults.conflicts = n

    def compact(self) -> None:
        """Forget the event log: watching from any older resourceVersion is 410 Expired."""
        self.store.compact()

    def forbid(self, namespace: str) -> None:
        """Every request in ``namespace`` answers 403 Forbidden."""
        with self._faults_lock:
            self.faults.forbidden.add(namespace)

    def allow(self, namespace: str) -> None:
        with self._faults_lock:
            self.faults.forbidden.discard(namespace)

    @property
    def open_watches(self) -> int:
        with self._watches_lock:
            return len(self._watches)

    # -- kubeconfig and clients --

    def kubeconfig(
        self,
        directory: str | Path | None = None,
        *,
        token: str | None = None,
        context: str | None = None,
        namespace: str | None = None,
    ) -> Path:
        """Write a kubeconfig for this server (``token`` defaults to the server's own)."""
        context = context or self.context
        user: Obj = {"token": token if token is not None else self.token} if (token or self.token) else {}
        ctx: Obj = {"cluster": context, "user": f"{context}-user"}
        if namespace:
            ctx["namespace"] = namespace
        document = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": context, "cluster": {"server": self.url}}],
            "users": [{"name": f"{context}-user", "user": user}],
            "contexts": [{"name": context, "context": ctx}],
            "current-context": context,
        }
        base = Path(directory) if directory is not None else self._tmp
        base.mkdir(parents=True, exist_ok=True)
        path = base / f"kubeconfig-{context}-{self._port}.yaml"
        path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
        return path

    def client(self, *, token: str | None = None, context: str | None = None) -> KubeClient:
        """A :class:`KubeClient` for this server, built from a kubeconfig like any other."""
        return KubeClient.from_kubeconfig(self.kubeconfig(token=token, context=context), context=context)

    # -- direct store access for tests (no HTTP, same write path: events and RVs as usual) --

    @property
    def resource_version(self) -> int:
        with self.store.cond:
            return self.store.rv

    def _res(self, rt: ResourceType) -> _Resource:
        res = self.resources.get((rt.group, rt.plural))
        if res is None:
            raise KeyError(f"{rt.group_resource} is not served")
        return res

    def objects(self, rt: ResourceType, namespace: str | None = None) -> list[Obj]:
        res = self._res(rt)
        items, _ = self.store.select(res, namespace if res.namespaced else None)
        return [self._present(res, rt.version, o) for o in items]

    def get_object(self, rt: ResourceType, name: str, namespace: str | None = None) -> Obj | None:
        res = self._res(rt)
        obj = self.store.get(res, (namespace or "default") if res.namespaced else "", name)
        return None if obj is None else self._present(res, rt.version, obj)

    def put_object(self, rt: ResourceType, obj: Obj) -> Obj:
        """Create or overwrite ``obj`` as given, status included (seed nodes, act as another writer)."""
        res = self._res(rt)
        meta = obj.get("metadata") or {}
        namespace = str(meta.get("namespace") or "default") if res.namespaced else ""
        body = {**_copy_json(obj), "apiVersion": rt.api_version, "kind": rt.kind}
        with self.store.cond:
            old = self.store.get(res, namespace, str(meta.get("name")))
            if old is None:
                created = self.store.create(res, namespace, body)
                if "status" in body:
                    created = self.store.update(
                        res, namespace, created["metadata"]["name"], body, subresource="status"
                    )
                return self._present(res, rt.version, created)
            body.setdefault("metadata", {})["resourceVersion"] = ""
            updated = self.store.update(res, namespace, str(meta["name"]), body)
            if "status" in body:
                updated = self.store.update(res, namespace, str(meta["name"]), body, subresource="status")
            return self._present(res, rt.version, updated)

    def delete_object(self, rt: ResourceType, name: str, namespace: str | None = None) -> bool:
        res = self._res(rt)
        try:
            self.store.delete(res, (namespace or "default") if res.namespaced else "", name)
        except ApiError:
            return False
        return True

    # -- request handling --

    def dispatch(self, handler: _Handler, method: str) -> None:
        try:
            body = handler.read_body()
            with self._faults_lock:
                self.requests += 1
                delay = self.faults.delay_s
            if delay > 0:
                time.sleep(delay)
            self._authenticate(handler)
            url = urlsplit(handler.path)
            query = {k: v[-1] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
            path = url.path.rstrip("/") or "/"
            discovery = self._discovery(path)
            if discovery is not None:
                if method != "GET":
                    raise ApiError(405, "MethodNotAllowed", f"{method} is not allowed on {path}")
                handler.send_json(200, discovery)
                return
            route = self._route(path)
            self._authorize(route, method, query)
            if method == "GET" and route.name is None and query.get("watch") in ("1", "true"):
                self._watch(handler, route, query)
                return
            code, answer = self._handle(method, route, query, body, handler.headers.get("Content-Type") or "")
            handler.send_json(code, answer)
        except ApiError as exc:
            with contextlib.suppress(OSError):
                handler.send_json(exc.code, exc.status())
        except OSError:
            handler.close_connection = True

    def _authenticate(self, handler: _Handler) -> None:
        if self.token is None:
            return
        if handler.headers.get("Authorization") != f"Bearer {self.token}":
            raise ApiError(401, "Unauthorized", "Unauthorized")

    def _authorize(self, route: _Route, method: str, query: Mapping[str, str]) -> None:
        with self._faults_lock:
            forbidden = route.namespace in self.faults.forbidden if route.namespace else False
        if not forbidden:
            return
        verb = {"GET": "get", "POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}[method]
        if method == "GET" and route.name is None:
            verb = "watch" if query.get("watch") in ("1", "true") else "list"
        res = route.res
        what = f'{res.group_resource} "{route.name}"' if route.name else res.group_resource
        resource = f"{res.plural}/{route.subresource}" if route.subresource else res.plural
        raise ApiError(
            403,
            "Forbidden",
            f'{what} is forbidden: User "{self.user}" cannot {verb} resource "{resource}" in API group '
            f'"{res.group}" in the namespace "{route.namespace}"',
            {"name": route.name or "", "group": res.group, "kind": res.plural},
        )

    def _discovery(self, path: str) -> Obj | None:
        if path in ("/healthz", "/readyz", "/livez"):
            return {"status": "ok"}
        if path == "/version":
            return {
                "major": "1",
                "minor": "31",
                "gitVersion": "v1.31.0-budcore-fake",
                "platform": "linux/amd64",
            }
        if path == "/api":
            return {"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": []}
        groups: dict[str, list[str]] = {}
        for res in self.resources.values():
            if res.group:
                groups.setdefault(res.group, [])
                for v in res.versions:
                    if v not in groups[res.group]:
                        groups[res.group].append(v)
        if path == "/apis":
            return {
                "kind": "APIGroupList",
                "apiVersion": "v1",
                "groups": [self._group_doc(g, vs) for g, vs in sorted(groups.items())],
            }
        parts = path.strip("/").split("/")
        if len(parts) == 2 and parts[0] == "apis":
            if parts[1] not in groups:
                raise ApiError(404, "NotFound", "the server could not find the requested resource")
            return self._group_doc(parts[1], groups[parts[1]])
        if (len(parts) == 3 and parts[0] == "apis") or (len(parts) == 2 and parts == ["api", "v1"]):
            group, version = (parts[1], parts[2]) if parts[0] == "apis" else ("", "v1")
            served = [r for r in self.resources.values() if r.group == group and version in r.versions]
            if not served:
                raise ApiError(404, "NotFound", "the server could not find the requested resource")
            resources: list[Obj] = []
            verbs = ["create", "delete", "get", "list", "patch", "update", "watch"]
            for r in served:
                resources.append(
                    {
                        "name": r.plural,
                        "singularName": r.kind.lower(),
                        "namespaced": r.namespaced,
                        "kind": r.kind,
                        "verbs": verbs,
                    }
                )
                if r.status_subresource:
                    resources.append(
                        {
                            "name": f"{r.plural}/status",
                            "singularName": "",
                            "namespaced": r.namespaced,
                            "kind": r.kind,
                            "verbs": ["get", "patch", "update"],
                        }
                    )
            return {
                "kind": "APIResourceList",
                "apiVersion": "v1",
                "groupVersion": f"{group}/{version}" if group else version,
                "resources": resources,
            }
        return None

    @staticmethod
    def _group_doc(group: str, versions: list[str]) -> Obj:
        ordered = sorted(versions, reverse=True)  # v1beta2 before v1beta1: the preferred first
        docs = [{"groupVersion": f"{group}/{v}", "version": v} for v in ordered]
        return {
            "kind": "APIGroup",
            "apiVersion": "v1",
            "name": group,
            "versions": docs,
            "preferredVersion": docs[0],
        }

    def _route(self, path: str) -> _Route:
        parts = [unquote(p) for p in path.strip("/").split("/")]
        if parts[:2] == ["api", "v1"]:
            group, version, rest = "", "v1", parts[2:]
        elif len(parts) >= 3 and parts[0] == "apis":
            group, version, rest = parts[1], parts[2], parts[3:]
        else:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        namespace: str | None = None
        if len(rest) >= 3 and rest[0] == "namespaces":
            candidate = self.resources.get((group, rest[2]))
            if candidate is not None and candidate.namespaced:
                namespace, rest = rest[1], rest[2:]
        if not rest or len(rest) > 3:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        res = self.resources.get((group, rest[0]))
        if res is None or version not in res.versions:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        name = rest[1] if len(rest) >= 2 else None
        subresource = rest[2] if len(rest) == 3 else ""
        if subresource and (subresource != "status" or not res.status_subresource):
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        if res.namespaced and name is not None and namespace is None:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        return _Route(res, version, namespace, name, subresource)

    def _present(self, res: _Resource, version: str, obj: Obj) -> Obj:
        return {**obj, "apiVersion": res.api_version(version), "kind": res.kind}

    def _take_conflict(self) -> bool:
        with self._faults_lock:
            if self.faults.conflicts > 0:
                self.faults.conflicts -= 1
                return True
        return False

    def _handle(
        self, method: str, route: _Route, query: Mapping[str, str], raw: bytes, ctype: str
    ) -> tuple[int, Obj]:
        res, version = route.res, route.version
        namespace = route.namespace or ""
        dry_run = query.get("dryRun") == "All"
        store = self.store
        if method == "GET":
            if route.name is None:
                return 200, self._list(route, query)
            obj = store.get(res, namespace, route.name)
            if obj is None:
                raise _not_found(res, route.name)
            return 200, self._present(res, version, obj)
        if method in ("POST", "PUT", "PATCH", "DELETE") and self._take_conflict():
            raise _conflict(res, route.name or "")
        body = self._decode(raw, ctype)
        if method == "POST":
            if route.name is not None:
                raise ApiError(405, "MethodNotAllowed", "POST on a named object is not allowed")
            if res.namespaced and not route.namespace:
                raise ApiError(404, "NotFound", "the server could not find the requested resource")
            created = store.create(res, namespace, body, dry_run=dry_run)
            return 201, self._present(res, version, created)
        if route.name is None:
            raise ApiError(405, "MethodNotAllowed", f"{method} on a collection is not supported")
        if method == "PUT":
            updated = store.update(
                res, namespace, route.name, body, subresource=route.subresource, dry_run=dry_run
            )
            return 200, self._present(res, version, updated)
        if method == "PATCH":
            kind = ctype.split(";")[0].strip().lower()
            if kind == "application/apply-patch+yaml":
                manager = query.get("fieldManager") or ""
                if not manager:
                    raise ApiError(
                        400,
                        "BadRequest",
                        'PatchOptions.meta.k8s.io "" is invalid: fieldManager: Required value: is required '
                        "for apply patch",
                    )
                existed = store.get(res, namespace, route.name) is not None
                applied = store.apply(
                    res,
                    namespace,
                    route.name,
                    body,
                    manager=manager,
                    force=query.get("force") == "true",
                    subresource=route.subresource,
                    dry_run=dry_run,
                )
                return (200 if existed else 201), self._present(res, version, applied)
            if kind in ("application/merge-patch+json", "application/strategic-merge-patch+json"):
                patched = store.patch(
                    res, namespace, route.name, body, subresource=route.subresource, dry_run=dry_run
                )
                return 200, self._present(res, version, patched)
            raise ApiError(
                415, "UnsupportedMediaType", f"the body of the request was in an unknown format: {kind}"
            )
        # DELETE
        store.delete(res, namespace, route.name, dry_run=dry_run)
        return 200, {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Success",
            "details": {"name": route.name, "group": res.group, "kind": res.plural},
        }

    @staticmethod
    def _decode(raw: bytes, ctype: str) -> Any:
        if not raw:
            return {}
        try:
            if "yaml" in ctype:
                return yaml.safe_load(raw.decode("utf-8"))
            return json.loads(raw)
        except (ValueError, yaml.YAMLError) as exc:
            raise ApiError(400, "BadRequest", f"the request body is not valid: {exc}") from None

    def _filters(self, query: Mapping[str, str]) -> Callable[[Obj], bool]:
        labels = parse_label_selector(query.get("labelSelector") or "")
        fields = _field_selector(query.get("fieldSelector") or "")

        def match(obj: Obj) -> bool:
            meta = obj.get("metadata") or {}
            names = {"name": str(meta.get("name") or ""), "namespace": str(meta.get("namespace") or "")}
            return _selected(_labels(obj), labels) and _selected(names, fields)

        return match

    def _list(self, route: _Route, query: Mapping[str, str]) -> Obj:
        res, version = route.res, route.version
        match = self._filters(query)
        items, rv = self.store.select(res, route.namespace if res.namespaced else None)
        out = []
        for obj in items:
            if not match(obj):
                continue
            if res.builtin:
                out.append({k: v for k, v in obj.items() if k not in ("apiVersion", "kind")})
            else:
                out.append(self._present(res, version, obj))
        return {
            "kind": f"{res.kind}List",
            "apiVersion": res.api_version(version),
            "metadata": {"resourceVersion": str(rv)},
            "items": out,
        }

    # -- watch --

    def _watch(self, handler: _Handler, route: _Route, query: Mapping[str, str]) -> None:
        res, version = route.res, route.version
        match = self._filters(query)
        bookmarks = query.get("allowWatchBookmarks") in ("1", "true")
        timeout = min(float(query.get("timeoutSeconds") or 1800), 3600.0)
        deadline = time.monotonic() + timeout
        key = (res.group, res.plural)
        raw_rv = query.get("resourceVersion") or ""
        try:
            since = int(raw_rv) if raw_rv else 0
        except ValueError:
            raise ApiError(400, "BadRequest", f"invalid resourceVersion {raw_rv!r}") from None
        initial: list[Obj] = []
        store = self.store
        expired = False
        with store.cond:
            if raw_rv in ("", "0"):
                items, since = store.select(res, route.namespace if res.namespaced else None)
                initial = [o for o in items if match(o)]
            elif since < store.floor:
                expired = True
        if expired and self.expired_as_http:
            raise _expired(since)
        watch = _Watch(handler.connection)
        with self._watches_lock:
            self._watches.add(watch)
        try:
            handler.send_response(200)
            handler.send_header("Content-Type", "application/json")
            handler.send_header("Transfer-Encoding", "chunked")
            handler.end_headers()

            def send(event_type: str, obj: Obj) -> None:
                line = json.dumps({"type": event_type, "object": obj}, separators=(",", ":")).encode() + b"\n"
                handler.wfile.write(f"{len(line):x}\r\n".encode() + line + b"\r\n")

            if expired:
                send("ERROR", _expired(since).status())
                handler.wfile.write(b"0\r\n\r\n")
                handler.wfile.flush()
                return
            for obj in initial:
                send("ADDED", self._present(res, version, obj))
            handler.wfile.flush()
            last_sent = time.monotonic()
            while not watch.cut and self._server is not None:
                now = time.monotonic()
                if now >= deadline:
                    break
                batch: list[tuple[str, Obj]] = []
                gone = False
                with store.cond:
                    if since < store.floor:
                        gone = True
                    else:
                        events = store.events_after(since)
                        if not events:
                            wait = min(deadline - now, self.bookmark_interval_s, 0.25)
                            store.cond.wait(timeout=max(wait, 0.001))
                            events = store.events_after(since) if since >= store.floor else []
                        for event in events:
                            if event.key == key:
                                translated = _translate(event, route.namespace, match)
                                if translated is not None:
                                    batch.append(translated)
                            since = event.rv
                        current = store.rv
                if gone:
                    send("ERROR", _expired(since).status())
                    break
                if watch.cut:
                    break
                if batch:
                    for event_type, obj in batch:
                        send(event_type, self._present(res, version, obj))
                    handler.wfile.flush()
                    last_sent = time.monotonic()
                elif bookmarks and time.monotonic() - last_sent >= self.bookmark_interval_s:
                    since = max(since, current)
                    send(
                        "BOOKMARK",
                        {
                            "kind": res.kind,
                            "apiVersion": res.api_version(version),
                            "metadata": {"resourceVersion": str(since)},
                        },
                    )
                    handler.wfile.flush()
                    last_sent = time.monotonic()
            if not watch.cut:
                handler.wfile.write(b"0\r\n\r\n")
                handler.wfile.flush()
            else:
                handler.close_connection = True
        except OSError:
            handler.close_connection = True
        finally:
            with self._watches_lock:
                self._watches.discard(watch)


def _expired(rv: int) -> ApiError:
    return ApiError(410, "Expired", f"too old resource version: {rv}")


def _translate(event: _Event, namespace: str | None, match: Callable[[Obj], bool]) -> tuple[str, Obj] | None:
    """The event as a watch with this namespace and selector sees it (objects entering/leaving)."""
    if namespace is not None and event.obj["metadata"].get("namespace", "") != namespace:
        return None
    now_in = match(event.obj)
    was_in = event.old is not None and match(event.old)
    if event.type == "DELETED":
        return ("DELETED", event.obj) if was_in else None
    if event.type == "ADDED":
        return ("ADDED", event.obj) if now_in else None
    if now_in and was_in:
        return ("MODIFIED", event.obj)
    if now_in:
        return ("ADDED", event.obj)
    if was_in:
        return ("DELETED", event.obj)
    return None


# --------------------------------------------------------------------------------------------------
# The scripted Kueue
# --------------------------------------------------------------------------------------------------


def _condition(type_: str, status: bool, reason: str, message: str, generation: int = 1) -> Obj:
    return {
        "type": type_,
        "status": "True" if status else "False",
        "reason": reason,
        "message": message,
        "lastTransitionTime": _now(),
        "observedGeneration": generation,
    }


def _set_conditions(conditions: list[Obj], *new: Obj) -> list[Obj]:
    """Upsert by type; keep lastTransitionTime when the status did not change (as Kubernetes does)."""
    out = [dict(c) for c in conditions]
    for cond in new:
        for i, old in enumerate(out):
            if old.get("type") == cond["type"]:
                if old.get("status") == cond["status"]:
                    cond = {
                        **cond,
                        "lastTransitionTime": old.get("lastTransitionTime", cond["lastTransitionTime"]),
                    }
                out[i] = cond
                break
        else:
            out.append(cond)
    return out


def _pod_sets(owner: Obj) -> list[Obj]:
    """Kueue's pod sets of a Job (one, ``main``) or a JobSet (one per replicated Job)."""
    spec = owner.get("spec") or {}
    if owner.get("kind") == "JobSet" or "replicatedJobs" in spec:
        out = []
        for rjob in spec.get("replicatedJobs") or []:
            job_spec = ((rjob.get("template") or {}).get("spec")) or {}
            count = int(rjob.get("replicas") or 1) * int(job_spec.get("parallelism") or 1)
            out.append(
                {"name": rjob.get("name", "main"), "count": count, "template": job_spec.get("template") or {}}
            )
        return out
    return [
        {"name": "main", "count": int(spec.get("parallelism") or 1), "template": spec.get("template") or {}}
    ]


def _pod_set_usage(pod_set: Mapping[str, Any]) -> dict[str, float]:
    """Requested resources of a pod set (requests, else limits, × count); quantities in plain numbers."""
    usage: dict[str, float] = {}
    count = int(pod_set.get("count") or 1)
    for container in ((pod_set.get("template") or {}).get("spec") or {}).get("containers") or []:
        resources = container.get("resources") or {}
        amounts = {**(resources.get("limits") or {}), **(resources.get("requests") or {})}
        for name, qty in amounts.items():
            with contextlib.suppress(ValueError):
                usage[str(name)] = usage.get(str(name), 0.0) + _number(qty) * count
    return usage


def _number(qty: Any) -> float:
    """A Kubernetes quantity as a float (enough for the suffixes tests use)."""
    text = str(qty).strip()
    units = {
        "m": 1e-3,
        "k": 1e3,
        "M": 1e6,
        "G": 1e9,
        "T": 1e12,
        "Ki": 2**10,
        "Mi": 2**20,
        "Gi": 2**30,
        "Ti": 2**40,
    }
    for suffix in sorted(units, key=len, reverse=True):
        if text.endswith(suffix):
            return float(text[: -len(suffix)]) * units[suffix]
    return float(text)


def _gpus(owner: Obj) -> float:
    """GPUs an owner asks for: the ``*/gpu`` resources of all its pod sets."""
    return sum(v for ps in _pod_sets(owner) for k, v in _pod_set_usage(ps).items() if k.endswith("/gpu"))


def _qty(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def _workload_name(prefix: str, owner_name: str, uid: str) -> str:
    digest = hashlib.sha1(f"{owner_name}/{uid}/{prefix}".encode()).hexdigest()[:5]
    return f"{prefix}-{owner_name[: 63 - len(prefix) - 7]}-{digest}"


@dataclass
class _Tracked:
    owner: _Resource  # batch/v1 jobs or jobset.x-k8s.io jobsets
    namespace: str
    name: str
    workload: str
    gpus: float
    seq: int
    state: str = "pending"  # pending | admitted | finished | inactive
    eligible_at: float | None = 0.0  # when it may be admitted (None: only by admit())

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.owner.plural, self.namespace, self.name)


class KueueController:
    """Scripted Kueue (and Job/JobSet controllers) acting on a :class:`FakeApiServer`'s store in-process.

    It follows the store's event log (not HTTP, so restarts and dropped watches do not affect it)
    and reacts to ``batch/v1`` Jobs and ``jobset.x-k8s.io`` JobSets labelled
    ``kueue.x-k8s.io/queue-name`` that are suspended: it creates their Workload
    (``job-<name>-<hash>``/``jobset-<name>-<hash>``, owned by them, one pod set per replicated Job),
    admits it by the policy — ``admit_after_s`` (0: at once, N: after N seconds, None: only when
    :meth:`admit` is called) and ``gpu_capacity`` (FIFO with skipping, at most that many GPUs
    admitted at once) — which sets QuotaReserved and Admitted with ``status.admission`` (the
    LocalQueue's ClusterQueue, its first flavor), unsuspends the owner and starts it
    (``status.active``, ``startTime``, PodsReady). ``run_s`` finishes admitted owners after that
    long (``outcome(owner) -> bool`` decides success); :meth:`finish` and :meth:`evict` do it on
    demand. Writes go through the store's write path, so they bump resourceVersions and reach
    every watch. ``errors`` collects exceptions of the controller thread (tests assert it empty).
    """

    def __init__(
        self,
        server: FakeApiServer,
        *,
        admit_after_s: float | None = 0.0,
        gpu_capacity: float | None = None,
        run_s: float | None = None,
        outcome: Callable[[Obj], bool] | None = None,
        cluster_queue: str = "cluster-queue",
        flavor: str = "default-flavor",
        version: str = "v1beta2",
        pods_ready: bool = True,
    ) -> None:
        self.server = server
        self.store = server.store
        self.admit_after_s = admit_after_s
        self.gpu_capacity = gpu_capacity
        self.run_s = run_s
        self.outcome = outcome
        self.cluster_queue = cluster_queue
        self.flavor = flavor
        self.pods_ready = pods_ready
        self.version = version
        self.owners = [server._res(JOBS), server._res(JOBSETS)]
        self.workloads_res = server._res(kueue_type("Workload", version))
        self._tracked: dict[tuple[str, str, str], _Tracked] = {}
        self._by_workload: dict[tuple[str, str], tuple[str, str, str]] = {}
        self._timers: list[tuple[float, int, str, tuple[str, str, str]]] = []
        self._seq = itertools.count()
        self._since = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.errors: list[BaseException] = []

    # -- lifecycle --

    def start(self) -> KueueController:
        with self.store.cond:
            self._resync()
        self._thread = threading.Thread(target=self._run, name="fake-kueue", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        with self.store.cond:
            self.store.cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=5.0)
            self._thread = None

    def __enter__(self) -> KueueController:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- what tests drive --

    def admit(self, job: str | Mapping[str, Any]) -> None:
        """Admit the owner's Workload now (whatever the policy says; capacity is not checked)."""
        with self.store.cond:
            tracked = self._find(job)
            if tracked.state == "pending":
                self._admit(tracked)

    def finish(self, job: str | Mapping[str, Any], ok: bool = True, message: str = "") -> None:
        """Finish the owner: Job Complete/Failed (JobSet Completed/Failed) and Workload Finished."""
        with self.store.cond:
            self._finish(self._find(job), ok, message)

    def evict(
        self,
        job: str | Mapping[str, Any],
        reason: str = "Preempted",
        message: str = "",
        *,
        requeue: bool | None = None,
    ) -> None:
        """Evict the Workload (``Evicted`` with ``reason``) and re-suspend the owner.

        ``requeue`` (default: yes, except for InactiveWorkload and Deactivated, which also set
        ``spec.active: false``) puts it back in the queue under the admission policy.
        """
        with self.store.cond:
            self._evict(self._find(job), reason, message, requeue)

    def workload_name(self, job: str | Mapping[str, Any]) -> str:
        with self.store.cond:
            return self._find(job).workload

    def state(self, job: str | Mapping[str, Any]) -> str:
        """``pending``, ``admitted``, ``finished``, ``inactive`` or ``unknown``."""
        with self.store.cond:
            try:
                return self._find(job).state
            except KeyError:
                return "unknown"

    @property
    def admitted_gpus(self) -> float:
        with self.store.cond:
            return sum(t.gpus for t in self._tracked.values() if t.state == "admitted")

    def counts(self) -> dict[str, int]:
        """How many tracked owners are in each state."""
        with self.store.cond:
            out: dict[str, int] = {}
            for t in self._tracked.values():
                out[t.state] = out.get(t.state, 0) + 1
            return out

    def _find(self, job: str | Mapping[str, Any]) -> _Tracked:
        if isinstance(job, Mapping):
            meta = job.get("metadata") or {}
            namespace, name = str(meta.get("namespace") or "default"), str(meta["name"])
            plurals = ["jobsets"] if job.get("kind") == "JobSet" else ["jobs", "jobsets"]
        else:
            ns, _, name = job.rpartition("/")
            namespace, plurals = ns or "default", ["jobs", "jobsets"]
        for plural in plurals:
            tracked = self._tracked.get((plural, namespace, name))
            if tracked is not None:
                return tracked
        raise KeyError(f"no workload tracked for {namespace}/{name}")

    # -- the loop --

    def _resync(self) -> None:
        """Pick up every owner in the store (at start, and when the log was compacted under us)."""
        for owner in self.owners:
            items, _ = self.store.select(owner, None)
            for obj in items:
                self._on_owner(owner, obj)
        self._since = self.store.rv

    def _run(self) -> None:
        store = self.store
        while not self._stop.is_set():
            try:
                with store.cond:
                    if self._since < store.floor:
                        self._resync()
                    events = store.events_after(self._since)
                    if not events:
                        wait = 0.05
                        if self._timers:
                            wait = min(wait, max(self._timers[0][0] - time.monotonic(), 0.0))
                        if wait > 0:
                            store.cond.wait(timeout=wait)
                        events = store.events_after(self._since) if self._since >= store.floor else []
                    if events:
                        self._since = events[-1].rv
                    for event in events:
                        self._on_event(event)
                    self._fire_timers()
                    self._schedule()
            except Exception as exc:  # a bug in the script must fail the test, not hang it
                self.errors.append(exc)
                time.sleep(0.01)

    def _on_event(self, event: _Event) -> None:
        for owner in self.owners:
            if event.key == (owner.group, owner.plural):
                if event.type == "DELETED":
                    meta = event.obj["metadata"]
                    self._forget((owner.plural, meta.get("namespace", ""), meta["name"]))
                else:
                    self._on_owner(owner, event.obj)
                return
        if event.key == (self.workloads_res.group, self.workloads_res.plural) and event.type == "DELETED":
            meta = event.obj["metadata"]
            key = self._by_workload.get((meta.get("namespace", ""), meta["name"]))
            if key is not None:
                self._forget(key)

    def _forget(self, key: tuple[str, str, str]) -> None:
        tracked = self._tracked.pop(key, None)
        if tracked is not None:
            self._by_workload.pop((tracked.namespace, tracked.workload), None)

    def _on_owner(self, owner: _Resource, obj: Obj) -> None:
        meta = obj["metadata"]
        key = (owner.plural, meta.get("namespace", ""), meta["name"])
        if key in self._tracked or QUEUE_LABEL not in (meta.get("labels") or {}):
            return
        spec = obj.get("spec") or {}
        status = obj.get("status") or {}
        if not spec.get("suspend") or status.get("completionTime") or status.get("terminalState"):
            return
        prefix = "jobset" if owner.kind == "JobSet" else "job"
        workload = _workload_name(prefix, meta["name"], meta.get("uid", ""))
        tracked = _Tracked(owner, key[1], key[2], workload, _gpus(obj), next(self._seq))
        self._tracked[key] = tracked
        self._by_workload[(tracked.namespace, workload)] = key
        if self.store.get(self.workloads_res, tracked.namespace, workload) is None:
            self.store.create(self.workloads_res, tracked.namespace, self._workload_for(owner, obj, workload))
            self._set_workload_status(
                tracked, conditions=[_condition("QuotaReserved", False, "Pending", "Waiting for quota")]
            )
        self._enqueue(tracked)

    def _enqueue(self, tracked: _Tracked) -> None:
        tracked.state = "pending"
        if self.admit_after_s is None:
            tracked.eligible_at = None
        elif self.admit_after_s <= 0:
            tracked.eligible_at = 0.0
        else:
            tracked.eligible_at = time.monotonic() + self.admit_after_s
            heapq.heappush(self._timers, (tracked.eligible_at, next(self._seq), "wake", tracked.key))

    def _fire_timers(self) -> None:
        now = time.monotonic()
        while self._timers and self._timers[0][0] <= now:
            _, _, action, key = heapq.heappop(self._timers)
            tracked = self._tracked.get(key)
            if tracked is None:
                continue
            if action == "finish" and tracked.state == "admitted":
                obj = self.store.get(tracked.owner, tracked.namespace, tracked.name)
                ok = True if self.outcome is None or obj is None else self.outcome(obj)
                self._finish(tracked, ok, "")

    def _schedule(self) -> None:
        pending = [t for t in self._tracked.values() if t.state == "pending" and t.eligible_at is not None]
        if not pending:
            return
        now = time.monotonic()
        used = sum(t.gpus for t in self._tracked.values() if t.state == "admitted")
        for tracked in sorted(pending, key=lambda t: t.seq):
            if tracked.eligible_at is not None and tracked.eligible_at > now:
                continue
            if self.gpu_capacity is not None and used + tracked.gpus > self.gpu_capacity:
                continue  # a smaller one behind may still fit
            self._admit(tracked)
            used += tracked.gpus

    # -- the transitions (callers hold the store lock) --

    def _workload_for(self, owner: _Resource, obj: Obj, name: str) -> Obj:
        meta = obj["metadata"]
        labels = meta.get("labels") or {}
        workload_spec: Obj = {"queueName": labels[QUEUE_LABEL], "podSets": _pod_sets(obj), "active": True}
        priority_class = labels.get(PRIORITY_LABEL)
        if priority_class:
            workload_spec["priorityClassName"] = priority_class
            workload_spec["priorityClassSource"] = "kueue.x-k8s.io/workloadpriorityclass"
            wpc = self.store.get(self.server._res(kueue_type("WorkloadPriorityClass")), "", priority_class)
            workload_spec["priority"] = int((wpc or {}).get("value") or 0)
        return {
            "apiVersion": f"{KUEUE_GROUP}/{self.version}",
            "kind": "Workload",
            "metadata": {
                "name": name,
                "namespace": meta.get("namespace", "default"),
                "labels": {"kueue.x-k8s.io/job-uid": meta.get("uid", "")},
                "ownerReferences": [
                    {
                        "apiVersion": owner.api_version(owner.versions[-1]),
                        "kind": owner.kind,
                        "name": meta["name"],
                        "uid": meta.get("uid", ""),
                        "controller": True,
                        "blockOwnerDeletion": True,
                    }
                ],
            },
            "spec": workload_spec,
        }

    def _set_workload_status(self, tracked: _Tracked, *, conditions: list[Obj], **fields: Any) -> None:
        wl = self.store.get(self.workloads_res, tracked.namespace, tracked.workload)
        if wl is None:
            return
        status = dict(wl.get("status") or {})
        status["conditions"] = _set_conditions(status.get("conditions") or [], *conditions)
        for key, value in fields.items():
            if value is None:
                status.pop(key, None)
            else:
                status[key] = value
        self.store.update(
            self.workloads_res,
            tracked.namespace,
            tracked.workload,
            {**wl, "status": status},
            subresource="status",
        )

    def _update_owner(self, tracked: _Tracked, spec: Obj | None = None, status: Obj | None = None) -> None:
        obj = self.store.get(tracked.owner, tracked.namespace, tracked.name)
        if obj is None:
            return
        if spec is not None:
            obj = self.store.update(
                tracked.owner, tracked.namespace, tracked.name, merge_patch(obj, {"spec": spec})
            )
        if status is not None:
            self.store.update(
                tracked.owner,
                tracked.namespace,
                tracked.name,
                {**obj, "status": merge_patch(obj.get("status") or {}, status)},
                subresource="status",
            )

    def _admission(self, tracked: _Tracked) -> Obj:
        wl = self.store.get(self.workloads_res, tracked.namespace, tracked.workload) or {}
        spec = wl.get("spec") or {}
        lq = self.store.get(
            self.server._res(kueue_type("LocalQueue")), tracked.namespace, str(spec.get("queueName") or "")
        )
        cluster_queue = str(((lq or {}).get("spec") or {}).get("clusterQueue") or self.cluster_queue)
        cq = self.store.get(self.server._res(kueue_type("ClusterQueue")), "", cluster_queue)
        flavor = self.flavor
        for group in ((cq or {}).get("spec") or {}).get("resourceGroups") or []:
            flavors = group.get("flavors") or []
            if flavors:
                flavor = str(flavors[0].get("name") or flavor)
                break
        assignments = []
        for pod_set in spec.get("podSets") or []:
            usage = _pod_set_usage(pod_set)
            assignments.append(
                {
                    "name": pod_set.get("name", "main"),
                    "flavors": dict.fromkeys(usage or {"cpu": 0}, flavor),
                    "resourceUsage": {k: _qty(v) for k, v in usage.items()},
                    "count": int(pod_set.get("count") or 1),
                }
            )
        return {"clusterQueue": cluster_queue, "podSetAssignments": assignments}

    def _admit(self, tracked: _Tracked) -> None:
        admission = self._admission(tracked)
        cq = admission["clusterQueue"]
        wl = self.store.get(self.workloads_res, tracked.namespace, tracked.workload) or {}
        evicted = [c for c in (wl.get("status") or {}).get("conditions") or [] if c.get("type") == "Evicted"]
        conditions = [
            _condition("QuotaReserved", True, "QuotaReserved", f"Quota reserved in ClusterQueue {cq}"),
            _condition("Admitted", True, "Admitted", "The workload is admitted"),
        ]
        if evicted and evicted[0].get("status") == "True":
            conditions.append(
                _condition("Evicted", False, "QuotaReserved", f"Previously: {evicted[0].get('message', '')}")
            )
        if self.pods_ready:
            conditions.append(_condition("PodsReady", True, "PodsReady", "All pods reached readiness"))
        self._set_workload_status(tracked, conditions=conditions, admission=admission)
        tracked.state = "admitted"
        obj = self.store.get(tracked.owner, tracked.namespace, tracked.name) or {}
        if tracked.owner.kind == "JobSet":
            replicated = [
                {"name": ps["name"], "ready": ps["count"], "active": ps["count"], "succeeded": 0, "failed": 0}
                for ps in _pod_sets(obj)
            ]
            self._update_owner(tracked, spec={"suspend": False}, status={"replicatedJobsStatus": replicated})
        else:
            parallelism = int((obj.get("spec") or {}).get("parallelism") or 1)
            self._update_owner(
                tracked, spec={"suspend": False}, status={"active": parallelism, "startTime": _now()}
            )
        if self.run_s is not None:
            heapq.heappush(
                self._timers, (time.monotonic() + self.run_s, next(self._seq), "finish", tracked.key)
            )

    def _finish(self, tracked: _Tracked, ok: bool, message: str) -> None:
        if tracked.state == "finished":
            return
        tracked.state = "finished"
        obj = self.store.get(tracked.owner, tracked.namespace, tracked.name) or {}
        conditions = list((obj.get("status") or {}).get("conditions") or [])
        if tracked.owner.kind == "JobSet":
            text = message or ("jobset completed successfully" if ok else "jobset failed")
            kind, reason = ("Completed", "AllJobsCompleted") if ok else ("Failed", "FailedJobs")
            status: Obj = {
                "terminalState": kind,
                "conditions": _set_conditions(conditions, _condition(kind, True, reason, text)),
                "replicatedJobsStatus": [
                    {
                        "name": ps["name"],
                        "ready": 0,
                        "active": 0,
                        "succeeded": 1 if ok else 0,
                        "failed": 0 if ok else 1,
                    }
                    for ps in _pod_sets(obj)
                ],
            }
        elif ok:
            text = message or "Reached expected number of succeeded pods"
            completions = int((obj.get("spec") or {}).get("completions") or 1)
            conditions = _set_conditions(
                conditions,
                _condition("SuccessCriteriaMet", True, "CompletionsReached", text),
                _condition("Complete", True, "CompletionsReached", text),
            )
            status = {
                "active": 0,
                "succeeded": completions,
                "completionTime": _now(),
                "conditions": conditions,
            }
        else:
            text = message or "Job has reached the specified backoff limit"
            conditions = _set_conditions(
                conditions,
                _condition("FailureTarget", True, "BackoffLimitExceeded", text),
                _condition("Failed", True, "BackoffLimitExceeded", text),
            )
            status = {"active": 0, "failed": 1, "conditions": conditions}
        self._update_owner(tracked, status=status)
        finished = message or ("Job finished successfully" if ok else "Job failed")
        self._set_workload_status(
            tracked, conditions=[_condition("Finished", True, "Succeeded" if ok else "Failed", finished)]
        )

    def _evict(self, tracked: _Tracked, reason: str, message: str, requeue: bool | None) -> None:
        if tracked.state in ("finished", "inactive"):
            return
        text = message or f"The workload was evicted: {reason}"
        conditions = [
            _condition("Evicted", True, reason, text),
            _condition("QuotaReserved", False, "Pending", text),
            _condition("Admitted", False, "NoReservation", "The workload has no reservation"),
        ]
        if reason == "Preempted":
            conditions.append(_condition("Preempted", True, "InClusterQueue", text))
        if self.pods_ready and tracked.state == "admitted":
            conditions.append(_condition("PodsReady", False, "Pending", "Not all pods are ready"))
        self._set_workload_status(tracked, conditions=conditions, admission=None)
        inactive = reason in ("InactiveWorkload", "Deactivated")
        if inactive:
            wl = self.store.get(self.workloads_res, tracked.namespace, tracked.workload)
            if wl is not None:
                self.store.update(
                    self.workloads_res,
                    tracked.namespace,
                    tracked.workload,
                    merge_patch(wl, {"spec": {"active": False}}),
                )
        obj = self.store.get(tracked.owner, tracked.namespace, tracked.name) or {}
        suspended = _set_conditions(
            list((obj.get("status") or {}).get("conditions") or []),
            _condition("Suspended", True, "JobSuspended", "Job suspended"),
        )
        if tracked.owner.kind == "JobSet":
            status: Obj = {"conditions": suspended, "replicatedJobsStatus": None}
        else:
            status = {"active": 0, "startTime": None, "conditions": suspended}
        self._update_owner(tracked, spec={"suspend": True}, status=status)
        if requeue is None:
            requeue = not inactive
        if requeue:
            self._enqueue(tracked)
        else:
            tracked.state = "inactive"


def wait_until(predicate: Callable[[], bool], timeout_s: float = 5.0, interval_s: float = 0.01) -> bool:
    """Poll ``predicate`` until true or ``timeout_s`` (a bounded loop for tests)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval_s)
    return predicate()
