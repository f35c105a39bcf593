"""A small, typed, generic Kubernetes REST client for the Kueue adapter.

Why not the generated typed APIs of the official client: budcore talks to custom resources (every
Kueue kind, in two API versions), to core and batch types, and uses server-side apply and watches;
the generated ``CustomObjectsApi``/``BatchV1Api`` split those into dozens of differently shaped
methods and model classes. Here every request goes the same way — a path built from a
:class:`ResourceType`, a JSON (or apply-YAML, which JSON is) body, a JSON answer decoded into plain
dicts — so render/apply, submit/sync and fleet code share one small surface that is easy to fake.

Why still the official client underneath: :func:`kubernetes.config.new_client_from_config` and its
``ApiClient`` handle everything a kubeconfig can say (bearer tokens, client certificates, CA data,
exec credential plugins with refresh, proxies); we reuse its connection pool and auth rather than
re-implementing them, and never shell out to kubectl.

Errors are budcore errors with one clear line: :class:`KubeError` names the kubeconfig context, the
verb, the kind and ``namespace/name``, the HTTP status and the server's own message;
:class:`WatchExpired` (HTTP 410 or a watch ``ERROR`` event with code 410) tells a watcher to
re-list. Nothing here retries on its own: callers (the status reconciler) own their backoff.
"""

from __future__ import annotations

import builtins
import json
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import quote, urlencode

from budcore.domain.errors import BudcoreError, PluginError, ValidationError

if TYPE_CHECKING:  # the kubernetes package is imported only when a client is built
    import kubernetes.client

__all__ = [
    "CLUSTER_SCOPED_KUEUE_KINDS",
    "DEFAULT_TIMEOUT_S",
    "JOBS",
    "JOBSETS",
    "KUEUE_GROUP",
    "KUEUE_KINDS",
    "KUEUE_VERSIONS",
    "NAMESPACES",
    "NODES",
    "PODS",
    "KubeClient",
    "KubeError",
    "ResourceType",
    "WatchEvent",
    "WatchExpired",
    "builtin_types",
    "kueue_type",
    "resource_type_for",
]

DEFAULT_TIMEOUT_S = 30.0
"""Connect and read timeout of every non-watch request."""

WATCH_READ_GRACE_S = 10
"""A watch's read timeout is its ``timeoutSeconds`` plus this grace (bookmarks keep it alive)."""


@dataclass(frozen=True, slots=True)
class ResourceType:
    """Where a kind lives in the REST API: group, version, plural and scope.

    Frozen and hashable, so it can key dicts (the test double's router, a reconciler's caches).
    """

    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool

    def path(
        self, namespace: str | None = None, name: str | None = None, subresource: str | None = None
    ) -> str:
        """The request path: ``/api/v1/nodes``, ``/apis/batch/v1/namespaces/ns/jobs/x/status``.

        A namespaced type without a namespace gives the all-namespaces collection (list/watch).
        """
        base = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        if self.namespaced and namespace:
            base += f"/namespaces/{quote(namespace, safe='')}"
        base += f"/{self.plural}"
        if name is not None:
            base += f"/{quote(name, safe='')}"
            if subresource:
                base += f"/{subresource}"
        return base

    @property
    def api_version(self) -> str:
        """``"batch/v1"``, ``"v1"``, ``"kueue.x-k8s.io/v1beta2"``."""
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def group_resource(self) -> str:
        """``jobs.batch`` — how the apiserver names the resource in its messages."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    def with_version(self, version: str) -> ResourceType:
        """The same resource served at another version (``v1beta1`` ↔ ``v1beta2``)."""
        return ResourceType(self.group, version, self.plural, self.kind, self.namespaced)


NODES = ResourceType("", "v1", "nodes", "Node", False)
NAMESPACES = ResourceType("", "v1", "namespaces", "Namespace", False)
PODS = ResourceType("", "v1", "pods", "Pod", True)
JOBS = ResourceType("batch", "v1", "jobs", "Job", True)
JOBSETS = ResourceType("jobset.x-k8s.io", "v1alpha2", "jobsets", "JobSet", True)

KUEUE_GROUP = "kueue.x-k8s.io"
KUEUE_VERSIONS = ("v1beta1", "v1beta2")
# kind → (plural, namespaced)
KUEUE_KINDS: Mapping[str, tuple[str, bool]] = {
    "ResourceFlavor": ("resourceflavors", False),
    "ClusterQueue": ("clusterqueues", False),
    "Cohort": ("cohorts", False),
    "WorkloadPriorityClass": ("workloadpriorityclasses", False),
    "LocalQueue": ("localqueues", True),
    "Workload": ("workloads", True),
}
CLUSTER_SCOPED_KUEUE_KINDS = frozenset(k for k, (_, namespaced) in KUEUE_KINDS.items() if not namespaced)


def kueue_type(kind: str, version: str = "v1beta2") -> ResourceType:
    """The :class:`ResourceType` of a Kueue kind at ``v1beta1`` or ``v1beta2``."""
    if kind not in KUEUE_KINDS:
        raise ValidationError(f"unknown Kueue kind {kind!r}; known kinds: {', '.join(sorted(KUEUE_KINDS))}")
    if version not in KUEUE_VERSIONS:
        raise ValidationError(
            f"unsupported Kueue API version {version!r}; supported: {', '.join(KUEUE_VERSIONS)}"
        )
    plural, namespaced = KUEUE_KINDS[kind]
    return ResourceType(KUEUE_GROUP, version, plural, kind, namespaced)


def builtin_types() -> tuple[ResourceType, ...]:
    """Every resource type the adapter uses (both Kueue versions included)."""
    kueue = tuple(kueue_type(kind, version) for version in KUEUE_VERSIONS for kind in KUEUE_KINDS)
    return (NODES, NAMESPACES, PODS, JOBS, JOBSETS, *kueue)


def resource_type_for(api_version: str, kind: str) -> ResourceType:
    """The :class:`ResourceType` of a manifest's ``apiVersion``/``kind`` (rendered documents)."""
    for rt in builtin_types():
        if rt.api_version == api_version and rt.kind == kind:
            return rt
    raise ValidationError(f"no resource type known for apiVersion {api_version!r} kind {kind!r}")


class KubeError(BudcoreError):
    """A Kubernetes request that failed, in one line.

    ``"<context>: <verb> <Kind> <ns/name>: HTTP 403 Forbidden: <message>"``. ``status`` is the HTTP
    status (0 when the server could not be reached or the connection broke), ``reason`` the
    Kubernetes ``Status.reason`` (``AlreadyExists``, ``Conflict``, ``NotFound``, ``Forbidden``,
    ``Unauthorized``, ``Expired``, ``Unreachable``, ``Disconnected``...).
    """

    def __init__(
        self,
        message: str,
        *,
        status: int = 0,
        reason: str = "",
        kind: str = "",
        name: str = "",
        namespace: str = "",
        context: str = "",
        verb: str = "",
    ) -> None:
        self.message = message
        self.status = status
        self.reason = reason
        self.kind = kind
        self.name = name
        self.namespace = namespace
        self.context = context
        self.verb = verb
        super().__init__(message)

    @classmethod
    def build(
        cls,
        *,
        context: str,
        verb: str,
        kind: str,
        name: str = "",
        namespace: str = "",
        status: int,
        reason: str,
        detail: str,
    ) -> KubeError:
        """The error with its standard one-line message assembled from its parts."""
        target = (
            f"{namespace}/{name}"
            if namespace and name
            else (name or (f"in {namespace}" if namespace else ""))
        )
        what = " ".join(p for p in (verb, kind, target) if p)
        head = f"{context or '(no context)'}: {what}"
        code = f"HTTP {status} {reason}".rstrip() if status else reason
        detail = " ".join(detail.split())  # one line, whatever the server sent
        message = f"{head}: {code}: {detail}" if detail else f"{head}: {code}"
        return cls(
            message,
            status=status,
            reason=reason,
            kind=kind,
            name=name,
            namespace=namespace,
            context=context,
            verb=verb,
        )


class WatchExpired(KubeError):  # noqa: N818 - the Kubernetes name for it ("Expired", 410 Gone)
    """The watch's resourceVersion is older than the server's event history: re-list, then watch."""


@dataclass(frozen=True, slots=True)
class WatchEvent:
    """One watch event: ``ADDED``, ``MODIFIED``, ``DELETED`` or ``BOOKMARK`` and its object."""

    type: str
    object: dict[str, Any]

    @property
    def resource_version(self) -> str:
        """The object's (for a bookmark: the stream's) ``metadata.resourceVersion``."""
        metadata = self.object.get("metadata") or {}
        return str(metadata.get("resourceVersion") or "")


def _status_parts(status: int, body: bytes | str | None, fallback_reason: str) -> tuple[str, str]:
    """(reason, message) from a ``Status`` JSON body, tolerating anything else."""
    reason, message = fallback_reason, ""
    if body:
        text = body.decode("utf-8", errors="replace") if isinstance(body, bytes) else body
        try:
            decoded = json.loads(text)
        except ValueError:
            message = text.strip()[:500]
        else:
            if isinstance(decoded, dict):
                reason = str(decoded.get("reason") or reason)
                message = str(decoded.get("message") or "")
            else:
                message = text.strip()[:500]
    if not reason:
        from http import HTTPStatus

        try:
            reason = HTTPStatus(status).phrase.replace(" ", "")
        except ValueError:
            reason = "Error"
    return reason, message


def _load_kubeconfig_documents(paths: list[Path], shown: str, context: str | None) -> tuple[list[str], str]:
    """(known context names, current-context) of the kubeconfig files, or a ValidationError."""
    import yaml

    names: list[str] = []
    current = ""
    for path in paths:
        if not path.is_file():
            raise ValidationError(
                f"kubeconfig file not found (context {context or '(current)'})", source=str(path)
            )
        try:
            document = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise ValidationError(
                f"not a readable kubeconfig (context {context or '(current)'}): {first}", source=str(path)
            ) from None
        if document is None:
            continue
        if not isinstance(document, dict):
            raise ValidationError(
                f"not a kubeconfig: expected a mapping, got {type(document).__name__} "
                f"(context {context or '(current)'})",
                source=str(path),
            )
        for entry in document.get("contexts") or []:
            if isinstance(entry, dict) and isinstance(entry.get("name"), str) and entry["name"] not in names:
                names.append(entry["name"])
        if not current and isinstance(document.get("current-context"), str):
            current = document["current-context"]
    if not names:
        raise ValidationError(
            f"kubeconfig defines no contexts (context {context or '(current)'})", source=shown
        )
    return names, current


class KubeClient:
    """Generic Kubernetes REST over the official client's ``ApiClient`` (see the module docstring).

    Thread-safe to the extent the underlying urllib3 pool is: one client may serve a reconciler's
    watch threads and its writers at once. Objects are plain dicts as the server sends them.
    """

    def __init__(
        self,
        api_client: kubernetes.client.ApiClient,
        *,
        context: str = "",
        timeout_s: float = DEFAULT_TIMEOUT_S,
    ) -> None:
        self.api_client = api_client
        self.context = context
        self.timeout_s = timeout_s

    @property
    def server(self) -> str:
        """The API server URL (for messages)."""
        return str(self.api_client.configuration.host)

    # -- construction -------------------------------------------------------------------------

    @classmethod
    def from_kubeconfig(
        cls, path: str | os.PathLike[str] | None = None, context: str | None = None
    ) -> KubeClient:
        """A client for ``context`` (default: the current context) of the kubeconfig at ``path``.

        ``path`` defaults to ``$KUBECONFIG`` (several files joined by ``os.pathsep`` are merged as
        kubectl does) or ``~/.kube/config``. A missing or unreadable file, YAML that is not a
        kubeconfig, no contexts, or an unknown context is a :class:`ValidationError` naming the
        file and the context and listing the contexts it knows.
        """
        raw = (os.environ.get("KUBECONFIG") or "~/.kube/config") if path is None else os.fspath(path)
        paths = [Path(p).expanduser() for p in raw.split(os.pathsep) if p]
        if not paths:
            raise ValidationError("no kubeconfig file given (KUBECONFIG is empty)")
        shown = os.pathsep.join(str(p) for p in paths)
        names, current = _load_kubeconfig_documents(paths, shown, context)
        chosen = context or current
        if not chosen:
            raise ValidationError(
                "kubeconfig has no current-context and no context was given; "
                f"known contexts: {', '.join(names)}",
                source=shown,
            )
        if chosen not in names:
            raise ValidationError(
                f"context {chosen!r} not found; known contexts: {', '.join(names)}",
                source=shown,
            )
        try:
            import urllib3
            from kubernetes import config as kube_config
            from kubernetes.client import Configuration
        except ModuleNotFoundError as exc:
            raise PluginError(
                f"the Kueue adapter needs the {exc.name!r} package: pip install 'budcore[kueue]'"
            ) from None
        # type.__call__ skips the client's "copy the process-wide default" metaclass, as
        # new_client_from_config itself does. Retries: a refused connection is retried twice at
        # once (a blip), a read never (urllib3's default would silently make a 30 s timeout 2 min).
        configuration = type.__call__(Configuration)
        configuration.retries = urllib3.Retry(total=2, connect=2, read=0, status=0, other=0, redirect=0)
        try:
            api_client = kube_config.new_client_from_config(  # type: ignore[no-untyped-call]
                config_file=shown, context=chosen, persist_config=False, client_configuration=configuration
            )
        except (kube_config.ConfigException, ValueError, TypeError, KeyError, OSError) as exc:
            detail = " ".join(str(exc).split()) or type(exc).__name__
            raise ValidationError(f"context {chosen!r} is not usable: {detail}", source=shown) from None
        return cls(api_client, context=chosen)

    def close(self) -> None:
        """Release the connection pool."""
        self.api_client.close()  # type: ignore[no-untyped-call]

    def __enter__(self) -> KubeClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the verbs ----------------------------------------------------------------------------

    def get(self, rt: ResourceType, name: str, namespace: str | None = None) -> dict[str, Any] | None:
        """The object, or ``None`` when it does not exist (404)."""
        try:
            return self._json("GET", rt, rt.path(namespace, name), verb="get", name=name, namespace=namespace)
        except KubeError as exc:
            if exc.status == 404:
                return None
            raise

    def list(
        self,
        rt: ResourceType,
        namespace: str | None = None,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
    ) -> tuple[list[dict[str, Any]], str]:
        """The items (with ``apiVersion``/``kind`` filled in) and the list's ``resourceVersion``.

        Watch from that resourceVersion to see every change after the list.
        """
        query: list[tuple[str, str]] = []
        if label_selector:
            query.append(("labelSelector", label_selector))
        if field_selector:
            query.append(("fieldSelector", field_selector))
        answer = self._json("GET", rt, rt.path(namespace), query=query, verb="list", namespace=namespace)
        items = [item for item in answer.get("items") or [] if isinstance(item, dict)]
        for item in items:
            item.setdefault("apiVersion", rt.api_version)
            item.setdefault("kind", rt.kind)
        metadata = answer.get("metadata") or {}
        return items, str(metadata.get("resourceVersion") or "")

    def create(self, rt: ResourceType, obj: dict[str, Any], *, dry_run: bool = False) -> dict[str, Any]:
        """POST the object; an existing name is ``KubeError(status=409, reason="AlreadyExists")``."""
        body = self._with_type(rt, obj)
        name, namespace = _name_of(body)
        query = [("dryRun", "All")] if dry_run else []
        return self._json(
            "POST",
            rt,
            rt.path(namespace),
            query=query,
            body=body,
            verb="create",
            name=name,
            namespace=namespace,
        )

    def replace(self, rt: ResourceType, obj: dict[str, Any]) -> dict[str, Any]:
        """PUT the whole object; a stale ``metadata.resourceVersion`` is a 409 ``Conflict``."""
        body = self._with_type(rt, obj)
        name, namespace = _name_of(body)
        return self._json(
            "PUT", rt, rt.path(namespace, name), body=body, verb="replace", name=name, namespace=namespace
        )

    def apply(
        self,
        rt: ResourceType,
        obj: dict[str, Any],
        *,
        field_manager: str = "budcore",
        force: bool = True,
        dry_run: bool = False,
    ) -> dict[str, Any]:
        """Server-side apply: ``PATCH application/apply-patch+yaml`` (JSON is YAML) of ``obj``.

        Creates the object when absent; an apply that changes nothing leaves it (and its
        resourceVersion) untouched. ``dry_run`` answers what would be stored without storing it.
        """
        body = self._with_type(rt, obj)
        name, namespace = _name_of(body)
        query = [("fieldManager", field_manager)]
        if force:
            query.append(("force", "true"))
        if dry_run:
            query.append(("dryRun", "All"))
        return self._json(
            "PATCH",
            rt,
            rt.path(namespace, name),
            query=query,
            body=body,
            content_type="application/apply-patch+yaml",
            verb="apply",
            name=name,
            namespace=namespace,
        )

    def patch(
        self, rt: ResourceType, name: str, namespace: str | None, patch: dict[str, Any]
    ) -> dict[str, Any]:
        """JSON merge-patch (RFC 7386) of the object (``None`` values delete keys)."""
        return self._json(
            "PATCH",
            rt,
            rt.path(namespace, name),
            body=patch,
            content_type="application/merge-patch+json",
            verb="patch",
            name=name,
            namespace=namespace,
        )

    def patch_status(
        self, rt: ResourceType, name: str, namespace: str | None, patch: dict[str, Any]
    ) -> dict[str, Any]:
        """JSON merge-patch of the ``status`` subresource (only ``status`` changes there)."""
        return self._json(
            "PATCH",
            rt,
            rt.path(namespace, name, "status"),
            body=patch,
            content_type="application/merge-patch+json",
            verb="patch status of",
            name=name,
            namespace=namespace,
        )

    def delete(
        self, rt: ResourceType, name: str, namespace: str | None = None, *, propagation: str = "Background"
    ) -> bool:
        """Delete the object (dependents by ``propagation``); ``False`` when it was already absent."""
        body = {"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": propagation}
        try:
            self._json(
                "DELETE",
                rt,
                rt.path(namespace, name),
                body=body,
                verb="delete",
                name=name,
                namespace=namespace,
            )
        except KubeError as exc:
            if exc.status == 404:
                return False
            raise
        return True

    def api_versions(self, group: str) -> builtins.list[str]:
        """The versions the server serves for an API group, preferred first; ``[]`` if none.

        Lets the adapter pick ``v1beta2`` or fall back to ``v1beta1`` on an older Kueue.
        """
        rt = ResourceType(group, "", "", "APIGroup", False)
        try:
            answer = self._json("GET", rt, f"/apis/{group}", verb="discover", name=group)
        except KubeError as exc:
            if exc.status == 404:
                return []
            raise
        preferred = str((answer.get("preferredVersion") or {}).get("version") or "")
        versions = [str(v.get("version")) for v in answer.get("versions") or [] if isinstance(v, dict)]
        if preferred in versions:
            versions.remove(preferred)
            versions.insert(0, preferred)
        return versions

    def watch(
        self,
        rt: ResourceType,
        *,
        namespace: str | None = None,
        resource_version: str,
        label_selector: str | None = None,
        timeout_s: int = 300,
    ) -> Iterator[WatchEvent]:
        """Stream the changes after ``resource_version`` (bookmarks included) for ``timeout_s``.

        A too-old resourceVersion (HTTP 410, or a watch ``ERROR`` event with code 410) raises
        :class:`WatchExpired`: list again and watch from the list's resourceVersion. The iterator
        ends when the server ends the watch (timeout) or the connection drops: watch again from
        the last event's resourceVersion. Close the generator to stop early.
        """
        query = [
            ("watch", "1"),
            ("allowWatchBookmarks", "true"),
            ("resourceVersion", resource_version),
            ("timeoutSeconds", str(int(timeout_s))),
        ]
        if label_selector:
            query.append(("labelSelector", label_selector))
        response = self._send(
            "GET",
            rt,
            rt.path(namespace),
            query=query,
            verb="watch",
            namespace=namespace,
            timeout=(self.timeout_s, float(timeout_s + WATCH_READ_GRACE_S)),
        )
        return self._events(response, rt, namespace)

    # -- plumbing -----------------------------------------------------------------------------

    def _events(self, response: Any, rt: ResourceType, namespace: str | None) -> Iterator[WatchEvent]:
        import urllib3.exceptions

        clean = False
        try:
            for line in _lines(response):
                try:
                    event = json.loads(line)
                except ValueError:
                    raise self._error(
                        "watch",
                        rt,
                        "",
                        namespace,
                        0,
                        "BadResponse",
                        f"not a JSON watch event: {line[:200]!r}",
                    ) from None
                if not isinstance(event, dict):
                    continue
                kind = str(event.get("type") or "")
                obj = event.get("object")
                if not isinstance(obj, dict):
                    obj = {}
                if kind == "ERROR":
                    code = int(obj.get("code") or 0)
                    reason = str(obj.get("reason") or "Error")
                    raise self._error(
                        "watch",
                        rt,
                        "",
                        namespace,
                        code,
                        reason,
                        str(obj.get("message") or ""),
                        expired=code == 410,
                    )
                if kind != "BOOKMARK":
                    obj.setdefault("apiVersion", rt.api_version)
                    obj.setdefault("kind", rt.kind)
                yield WatchEvent(kind, obj)
            clean = True
        except (urllib3.exceptions.HTTPError, OSError):
            return  # the connection dropped or timed out: the caller watches again
        finally:
            if clean:
                response.release_conn()  # the stream ended at a chunk boundary: reusable
            else:
                response.close()  # stopped early or broken: never hand the socket back to the pool

    def _with_type(self, rt: ResourceType, obj: Mapping[str, Any]) -> dict[str, Any]:
        body = dict(obj)
        body.setdefault("apiVersion", rt.api_version)
        body.setdefault("kind", rt.kind)
        return body

    def _json(
        self,
        method: str,
        rt: ResourceType,
        path: str,
        *,
        query: Sequence[tuple[str, str]] | None = None,
        body: Any = None,
        content_type: str = "application/json",
        verb: str,
        name: str = "",
        namespace: str | None = None,
    ) -> dict[str, Any]:
        response = self._send(
            method,
            rt,
            path,
            query=query,
            body=body,
            content_type=content_type,
            verb=verb,
            name=name,
            namespace=namespace,
        )
        import urllib3.exceptions

        try:
            data = response.data
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise self._error(verb, rt, name, namespace, 0, "Disconnected", f"{self.server}: {exc}") from None
        finally:
            response.release_conn()
        try:
            decoded = json.loads(data) if data else {}
        except ValueError:
            raise self._error(
                verb, rt, name, namespace, response.status, "BadResponse", f"not JSON: {data[:200]!r}"
            ) from None
        if not isinstance(decoded, dict):
            raise self._error(verb, rt, name, namespace, response.status, "BadResponse", "not a JSON object")
        return cast(dict[str, Any], decoded)

    def _send(
        self,
        method: str,
        rt: ResourceType,
        path: str,
        *,
        query: Sequence[tuple[str, str]] | None = None,
        body: Any = None,
        content_type: str = "application/json",
        verb: str,
        name: str = "",
        namespace: str | None = None,
        timeout: tuple[float, float] | None = None,
    ) -> Any:
        """Send one request; answer the open urllib3 response of a 2xx, raise KubeError otherwise."""
        import urllib3.exceptions
        from kubernetes.client.exceptions import ApiException

        headers = {"Accept": "application/json"}
        if body is not None:
            headers["Content-Type"] = content_type
        # param_serialize adds the kubeconfig's auth (a bearer token, refreshed by exec plugins).
        _, url, headers, _, _ = self.api_client.param_serialize(
            method=method, resource_path=path, header_params=headers, auth_settings=["BearerToken"]
        )
        if query:
            url += "?" + urlencode(query)
        try:
            rest = self.api_client.call_api(
                method,
                url,
                header_params=headers,
                body=body,
                _request_timeout=timeout or (self.timeout_s, self.timeout_s),
            )
        except ApiException as exc:  # TLS errors surface as status 0
            if not exc.status:
                raise self._unreachable(verb, rt, name, namespace, str(exc.reason)) from None
            reason, detail = _status_parts(int(exc.status), exc.body, str(exc.reason or ""))
            raise self._error(verb, rt, name, namespace, int(exc.status), reason, detail) from None
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            if _timed_out(exc):
                limit = (timeout or (self.timeout_s, self.timeout_s))[1]
                raise self._error(
                    verb,
                    rt,
                    name,
                    namespace,
                    0,
                    "Timeout",
                    f"no answer from {self.server} within {limit:g} s",
                ) from None
            raise self._unreachable(verb, rt, name, namespace, _root_cause(exc)) from None
        response = rest.response
        status = int(response.status)
        if 200 <= status < 300:
            return response
        try:
            data = response.data
        except (urllib3.exceptions.HTTPError, OSError):
            data = b""
        finally:
            response.release_conn()
        reason, detail = _status_parts(status, data, "")
        raise self._error(verb, rt, name, namespace, status, reason, detail, expired=status == 410)

    def _error(
        self,
        verb: str,
        rt: ResourceType,
        name: str,
        namespace: str | None,
        status: int,
        reason: str,
        detail: str,
        *,
        expired: bool = False,
    ) -> KubeError:
        cls = WatchExpired if expired else KubeError
        return cls.build(
            context=self.context,
            verb=verb,
            kind=rt.kind,
            name=name,
            namespace=namespace or "",
            status=status,
            reason=reason,
            detail=detail,
        )

    def _unreachable(
        self, verb: str, rt: ResourceType, name: str, namespace: str | None, cause: str
    ) -> KubeError:
        return self._error(
            verb, rt, name, namespace, 0, "Unreachable", f"cannot reach {self.server}: {cause}"
        )


def _name_of(obj: Mapping[str, Any]) -> tuple[str, str | None]:
    metadata = obj.get("metadata")
    if not isinstance(metadata, Mapping) or not metadata.get("name"):
        raise ValidationError(f"{obj.get('kind', 'object')} without metadata.name", path="metadata.name")
    namespace = metadata.get("namespace")
    return str(metadata["name"]), (str(namespace) if namespace else None)


def _timed_out(exc: BaseException) -> bool:
    """A read timeout (possibly wrapped in urllib3's ``MaxRetryError``), not a refused connection."""
    import urllib3.exceptions

    reason = getattr(exc, "reason", None)
    return isinstance(exc, urllib3.exceptions.ReadTimeoutError) or isinstance(
        reason, urllib3.exceptions.ReadTimeoutError
    )


def _root_cause(exc: BaseException) -> str:
    """The innermost reason of a urllib3 error (``MaxRetryError`` wraps the socket error)."""
    reason: BaseException | None = getattr(exc, "reason", None)
    while isinstance(reason, BaseException) and getattr(reason, "reason", None) is not None:
        nested = getattr(reason, "reason", None)
        if not isinstance(nested, BaseException):
            break
        reason = nested
    text = str(reason if isinstance(reason, BaseException) else exc)
    # urllib3 prefixes the connection object's repr: keep the OS message
    marker = text.rfind("]")
    if "Errno" in text and marker != -1:
        text = text[text.rfind("[Errno") :]
    return " ".join(text.split()) or type(exc).__name__


def _lines(response: Any) -> Iterator[str]:
    """JSON lines of a streamed (chunked or close-delimited) watch response."""
    buffer = bytearray()
    for chunk in _chunks(response):
        buffer.extend(chunk)
        while True:
            end = buffer.find(b"\n")
            if end == -1:
                break
            line = bytes(buffer[:end]).strip()
            del buffer[: end + 1]
            if line:
                yield line.decode("utf-8", errors="replace")
    tail = bytes(buffer).strip()
    if tail:
        yield tail.decode("utf-8", errors="replace")


def _chunks(response: Any) -> Iterator[bytes]:
    """Bytes as they arrive: one HTTP chunk at a time, or whatever a close-delimited body has."""
    if response.chunked:
        yield from response.stream(amt=None, decode_content=True)
        return
    while True:
        data = response.read1(65536)
        if not data:
            return
        yield data
