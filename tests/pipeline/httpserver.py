"""A real HTTP server on 127.0.0.1 for pipeline tests: scripted routes, recorded requests.

Built on the standard library's :class:`http.server.ThreadingHTTPServer` (port 0, a daemon
thread), so the code under test talks to a socket rather than to a mocked client::

    with LocalHttpServer() as server:
        server.route("POST", "/api/v1/optimize", json={"config": {"tensor_parallel": 2}})
        ...  # call f"{server.url}/api/v1/optimize"
        assert server.calls("/api/v1/optimize") == 1

A route answers with one response (``status``/``json``/``text``), a sequence (``responses=[(503,
{...}), (200, {...})]``, the last one repeated once the sequence is used up), or a ``handler``
called with the :class:`RecordedRequest`; it can wait before answering (``delay_s``) or send a
body of ``body_bytes`` bytes (with or without a ``Content-Length``). Anything unrouted gets 404.

Every request is recorded (method, path, headers, body, parsed JSON, ``Idempotency-Key``).
:meth:`LocalHttpServer.calls` counts raw requests; :meth:`LocalHttpServer.applied` counts
effects, deduplicated by ``Idempotency-Key`` as an idempotent server would apply them (a request
without a key is one effect). A request repeating a key that already got a 2xx answer on the same
route is answered with that stored answer, without consuming the route's sequence.
"""

from __future__ import annotations

import json as jsonlib
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

import pytest

__all__ = ["LocalHttpServer", "RecordedRequest", "Reply", "http_server"]

_CHUNK = 64 * 1024


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str  # without the query string
    query: str
    headers: Mapping[str, str]  # names lower-cased
    body: bytes
    json: Any  # the parsed JSON body, None when there is none or it is not JSON
    idempotency_key: str | None

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")


@dataclass(frozen=True)
class Reply:
    """One answer: ``body`` is JSON-encoded unless it is ``str`` (text/plain) or ``bytes``."""

    status: int = 200
    body: Any = None
    headers: Mapping[str, str] = field(default_factory=dict)


ReplySpec = Reply | tuple[int, Any] | tuple[int, Any, Mapping[str, str]]
Handler = Callable[[RecordedRequest], ReplySpec]


@dataclass
class _Route:
    replies: list[Reply]
    handler: Handler | None = None
    delay_s: float = 0.0
    body_bytes: int | None = None
    content_length: bool = True
    served: int = 0  # answers given from ``replies``
    by_key: dict[str, Reply] = field(default_factory=dict)  # 2xx answers, for replays
    bytes_written: int = 0  # of the last ``body_bytes`` answer
    aborted: bool = False  # the client hung up during the last ``body_bytes`` answer


def _as_reply(spec: ReplySpec) -> Reply:
    if isinstance(spec, Reply):
        return spec
    if len(spec) == 2:
        return Reply(spec[0], spec[1])
    return Reply(spec[0], spec[1], spec[2])


def _encode(body: Any) -> tuple[bytes, str]:
    if body is None:
        return b"", "text/plain; charset=utf-8"
    if isinstance(body, bytes):
        return body, "application/octet-stream"
    if isinstance(body, str):
        return body.encode("utf-8"), "text/plain; charset=utf-8"
    return jsonlib.dumps(body).encode("utf-8"), "application/json"


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def _serve(self) -> None:
        owner = self.server.owner
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        try:
            parsed = jsonlib.loads(body) if body else None
        except ValueError:
            parsed = None
        parts = urlsplit(self.path)
        recorded = RecordedRequest(
            method=self.command,
            path=parts.path,
            query=parts.query,
            headers={name.lower(): value for name, value in self.headers.items()},
            body=body,
            json=parsed,
            idempotency_key=self.headers.get("Idempotency-Key"),
        )
        route, reply = owner._answer(recorded)
        if route is not None and route.delay_s > 0 and owner._stopping.wait(route.delay_s):
            self.close_connection = True
            return
        try:
            if route is not None and route.body_bytes is not None:
                self._send_large(route, reply)
            else:
                self._send(reply)
        except (BrokenPipeError, ConnectionResetError):  # the client hung up (a timeout test)
            self.close_connection = True

    def _send(self, reply: Reply) -> None:
        content, content_type = _encode(reply.body)
        self.send_response(reply.status)
        headers = {"Content-Type": content_type, **reply.headers, "Content-Length": str(len(content))}
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(content)

    def _send_large(self, route: _Route, reply: Reply) -> None:
        total = route.body_bytes or 0
        self.send_response(reply.status)
        self.send_header("Content-Type", "application/octet-stream")
        if route.content_length:
            self.send_header("Content-Length", str(total))
        else:  # the body ends when the connection closes
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        chunk = b"x" * _CHUNK
        written = 0
        route.aborted = False
        try:
            while written < total:  # bounded by ``total``
                piece = chunk[: min(_CHUNK, total - written)]
                self.wfile.write(piece)
                written += len(piece)
        except (BrokenPipeError, ConnectionResetError):
            route.aborted = True
            self.close_connection = True
        finally:
            route.bytes_written = written

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def do_PUT(self) -> None:
        self._serve()

    def do_PATCH(self) -> None:
        self._serve()

    def do_DELETE(self) -> None:
        self._serve()

    def do_HEAD(self) -> None:
        self._serve()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    owner: LocalHttpServer

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client hanging up mid-answer is routine in these tests


class LocalHttpServer:
    """An HTTP server on ``127.0.0.1:<free port>`` for the duration of a ``with`` block."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._routes: dict[tuple[str, str], _Route] = {}
        self._requests: list[RecordedRequest] = []
        self._stopping = threading.Event()
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.owner = self
        self._thread: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------------------------
    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> LocalHttpServer:
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket (idempotent); wakes handlers waiting on ``delay_s``."""
        self._stopping.set()
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self._server.server_close()

    def __enter__(self) -> LocalHttpServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- scripting -------------------------------------------------------------------------------
    def route(
        self,
        method: str,
        path: str,
        *,
        status: int = 200,
        json: Any = None,
        text: str | None = None,
        headers: Mapping[str, str] | None = None,
        responses: Sequence[ReplySpec] | None = None,
        handler: Handler | None = None,
        delay_s: float = 0.0,
        body_bytes: int | None = None,
        content_length: bool = True,
    ) -> None:
        """Script ``method path`` (replacing an earlier script of it)."""
        if responses:
            replies = [_as_reply(spec) for spec in responses]
        else:
            replies = [Reply(status, text if text is not None else json, dict(headers or {}))]
        new = _Route(replies, handler, delay_s, body_bytes, content_length)
        with self._lock:
            self._routes[(method.upper(), path)] = new

    def _answer(self, request: RecordedRequest) -> tuple[_Route | None, Reply]:
        with self._lock:
            self._requests.append(request)
            route = self._routes.get((request.method, request.path))
            if route is None and request.method == "HEAD":
                route = self._routes.get(("GET", request.path))
            if route is None:
                return None, Reply(404, {"error": f"no route for {request.method} {request.path}"})
            key = request.idempotency_key
            if key and key in route.by_key:
                return route, route.by_key[key]
            if route.handler is not None:
                reply = _as_reply(route.handler(request))
            else:
                reply = route.replies[min(route.served, len(route.replies) - 1)]
                route.served += 1
            if key and 200 <= reply.status <= 299:
                route.by_key[key] = reply
            return route, reply

    # -- what was received -----------------------------------------------------------------------
    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request received so far, in order (a copy)."""
        with self._lock:
            return list(self._requests)

    def requests_to(self, path: str, method: str | None = None) -> list[RecordedRequest]:
        return [r for r in self.requests if r.path == path and (method is None or r.method == method.upper())]

    def calls(self, path: str, method: str | None = None) -> int:
        """Raw requests to ``path``, retries and replays included."""
        return len(self.requests_to(path, method))

    def keys(self, path: str, method: str | None = None) -> list[str]:
        """The distinct ``Idempotency-Key`` values sent to ``path``, in first-seen order."""
        seen = dict.fromkeys(r.idempotency_key for r in self.requests_to(path, method) if r.idempotency_key)
        return list(seen)

    def applied(self, path: str, method: str | None = None) -> int:
        """Effects on ``path`` deduplicated by ``Idempotency-Key`` (a keyless request is one)."""
        requests = self.requests_to(path, method)
        return len(self.keys(path, method)) + sum(1 for r in requests if not r.idempotency_key)

    def bytes_written(self, method: str, path: str) -> tuple[int, bool]:
        """Bytes of the last ``body_bytes`` answer on the route, and whether the client hung up."""
        with self._lock:
            route = self._routes[(method.upper(), path)]
            return route.bytes_written, route.aborted


@pytest.fixture
def http_server() -> Iterator[LocalHttpServer]:
    """A running :class:`LocalHttpServer`, stopped after the test (import it into a test module)."""
    with LocalHttpServer() as server:
        yield server
