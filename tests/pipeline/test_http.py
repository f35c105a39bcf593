"""HttpxApiCaller against a real local HTTP server (no mocked client)."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import pytest
from budcore_adapters.http import DEFAULT_USER_AGENT, HttpxApiCaller
from pipeline.httpserver import LocalHttpServer, RecordedRequest, Reply

from budcore.pipeline.responses import classify, outputs_from
from budcore.ports.pipeline_effects import ApiCaller, HttpRequest, HttpResponse, StepFailure


@pytest.fixture
def server() -> Iterator[LocalHttpServer]:
    with LocalHttpServer() as running:
        yield running


@pytest.fixture
def caller() -> Iterator[HttpxApiCaller]:
    with HttpxApiCaller(trust_env=False) as api:
        yield api


def _failure(caller: HttpxApiCaller, request: HttpRequest) -> StepFailure:
    with pytest.raises(StepFailure) as caught:
        caller.call(request)
    assert "\n" not in caught.value.message
    return caught.value


def test_it_is_an_api_caller(caller: HttpxApiCaller) -> None:
    assert isinstance(caller, ApiCaller)


def test_post_json_round_trip_with_idempotency_key(server: LocalHttpServer, caller: HttpxApiCaller) -> None:
    server.route("POST", "/api/v1/optimize", json={"config": {"tensor_parallel": 2}})
    response = caller.call(
        HttpRequest(
            "post",
            f"{server.url}/api/v1/optimize?dry=1",
            headers={"X-Tenant": "acme"},
            body={"model": "llama", "gpus": [1, 2]},
            key="run-1/optimize/1",
        )
    )
    assert response.status == 200
    assert response.body == {"config": {"tensor_parallel": 2}}
    assert response.headers["content-type"] == "application/json"
    [seen] = server.requests
    assert (seen.method, seen.path, seen.query) == ("POST", "/api/v1/optimize", "dry=1")
    assert seen.json == {"model": "llama", "gpus": [1, 2]}
    assert seen.idempotency_key == "run-1/optimize/1"
    assert seen.headers["x-tenant"] == "acme"
    assert seen.headers["content-type"] == "application/json"
    assert seen.headers["user-agent"] == DEFAULT_USER_AGENT
    assert DEFAULT_USER_AGENT.startswith("budcore-pipeline/")


def test_get_without_key_or_body(server: LocalHttpServer, caller: HttpxApiCaller) -> None:
    server.route("GET", "/status", json=[1, 2, 3])
    response = caller.call(HttpRequest("GET", f"{server.url}/status"))
    assert (response.status, response.body) == (200, [1, 2, 3])
    [seen] = server.requests
    assert seen.idempotency_key is None
    assert seen.body == b""


def test_the_engine_key_wins_over_a_header_and_default_headers_apply(server: LocalHttpServer) -> None:
    server.route("PUT", "/thing", status=204)
    defaults = {"Authorization": "Bearer t", "X-A": "default"}
    own = {"idempotency-key": "mine", "X-A": "own"}
    with HttpxApiCaller(default_headers=defaults, trust_env=False) as api:
        api.call(HttpRequest("PUT", f"{server.url}/thing", headers=own, key="k/1"))
    [seen] = server.requests
    assert seen.idempotency_key == "k/1"
    assert seen.headers["authorization"] == "Bearer t"
    assert seen.headers["x-a"] == "own"


def test_a_replayed_key_is_applied_once(server: LocalHttpServer, caller: HttpxApiCaller) -> None:
    server.route("POST", "/jobs", responses=[(201, {"id": 1}), (201, {"id": 2})])
    first = caller.call(HttpRequest("POST", f"{server.url}/jobs", body={}, key="r/s/1"))
    again = caller.call(HttpRequest("POST", f"{server.url}/jobs", body={}, key="r/s/1"))
    other = caller.call(HttpRequest("POST", f"{server.url}/jobs", body={}, key="r/s/2"))
    assert (first.body, again.body, other.body) == ({"id": 1}, {"id": 1}, {"id": 2})
    assert server.calls("/jobs") == 3
    assert server.applied("/jobs") == 2
    assert server.keys("/jobs") == ["r/s/1", "r/s/2"]


def test_text_body_is_sent_as_text(server: LocalHttpServer, caller: HttpxApiCaller) -> None:
    server.route("POST", "/echo", text="ok")
    caller.call(HttpRequest("POST", f"{server.url}/echo", body="héllo"))
    caller.call(HttpRequest("POST", f"{server.url}/echo", body="a,b", headers={"Content-Type": "text/csv"}))
    plain, csv = server.requests
    assert plain.text == "héllo"
    assert plain.headers["content-type"] == "text/plain; charset=utf-8"
    assert csv.headers["content-type"] == "text/csv"


def test_a_body_json_cannot_encode_is_a_permanent_failure(caller: HttpxApiCaller) -> None:
    failure = _failure(caller, HttpRequest("POST", "http://127.0.0.1:9/x", body={"when": object()}))
    assert not failure.transient
    assert "POST http://127.0.0.1:9/x" in failure.message


def test_response_decoding(server: LocalHttpServer, caller: HttpxApiCaller) -> None:
    server.route("GET", "/html", text="<p>hi</p>", headers={"Content-Type": "text/html"})
    server.route("GET", "/sniffed", text='{"a": 1}')  # text/plain, but a JSON object
    server.route("GET", "/number", text="42")  # stays text
    server.route("GET", "/bad-json", text="{nope", headers={"Content-Type": "application/problem+json"})
    server.route("GET", "/vendor", text='{"b": 2}', headers={"Content-Type": "application/vnd.x+json"})
    latin = Reply(200, "café".encode("latin-1"), {"Content-Type": "text/plain; charset=latin-1"})
    server.route("GET", "/latin", responses=[latin])
    server.route("GET", "/bytes", responses=[Reply(200, b"\xff\xfe", {"Content-Type": "text/plain"})])

    def body(path: str) -> object:
        return caller.call(HttpRequest("GET", f"{server.url}{path}")).body

    assert body("/html") == "<p>hi</p>"
    assert body("/sniffed") == {"a": 1}
    assert body("/number") == "42"
    assert body("/bad-json") == "{nope"
    assert body("/vendor") == {"b": 2}
    assert body("/latin") == "café"
    assert body("/bytes") == "\ufffd\ufffd"


def test_every_status_is_returned_and_classified(server: LocalHttpServer, caller: HttpxApiCaller) -> None:
    server.route("POST", "/busy", status=503, json={"error": "overloaded"})
    server.route("POST", "/slow-down", status=429, text="too many")
    server.route("POST", "/gone", status=410, text="gone")
    requests = {path: HttpRequest("POST", f"{server.url}{path}", body={}) for path in ("/busy", "/slow-down")}
    requests["/gone"] = HttpRequest("POST", f"{server.url}/gone", body={})
    requests["/missing"] = HttpRequest("POST", f"{server.url}/missing", body={})

    busy = caller.call(requests["/busy"])
    assert (busy.status, busy.body) == (503, {"error": "overloaded"})
    failure = classify(busy, (), requests["/busy"])
    assert failure is not None and failure.transient
    assert failure.message == f'HTTP 503 from POST {server.url}/busy: {{"error":"overloaded"}}'

    slow = classify(caller.call(requests["/slow-down"]), (), requests["/slow-down"])
    assert slow is not None and slow.transient
    assert slow.message == f"HTTP 429 from POST {server.url}/slow-down: too many"

    missing = caller.call(requests["/missing"])
    assert missing.status == 404  # the server's default
    not_found = classify(missing, (), requests["/missing"])
    assert not_found is not None and not not_found.transient
    assert not_found.message.startswith(f"HTTP 404 from POST {server.url}/missing: ")

    gone = caller.call(requests["/gone"])
    assert classify(gone, (410,)) is None  # expected by the step
    unexpected = classify(gone, (200,))
    assert unexpected is not None and not unexpected.transient
    assert unexpected.message == "HTTP 410: gone"  # without the request: no method or URL


def test_classify_rules() -> None:
    def failure(status: int, expect: tuple[int, ...] = (), body: object = "") -> StepFailure | None:
        return classify(HttpResponse(status, body), expect)

    assert failure(200) is None and failure(204) is None and failure(299) is None
    assert failure(200, (201,)) is not None
    assert failure(404, (404,)) is None
    for status in (408, 429, 500, 502, 599):
        found = failure(status)
        assert found is not None and found.transient, status
    for status in (300, 301, 400, 401, 403, 404, 409, 422):
        found = failure(status)
        assert found is not None and not found.transient, status
    long = failure(500, body="x" * 500 + "\nsecond line")
    assert long is not None and long.message == "HTTP 500: " + "x" * 200 + "…"
    multiline = failure(500, body="line one\n  line two")
    assert multiline is not None and multiline.message == "HTTP 500: line one line two"
    assert (failure(502, body=None) or StepFailure("")).message == "HTTP 502"


def test_timeout_is_transient_and_prompt(server: LocalHttpServer, caller: HttpxApiCaller) -> None:
    server.route("POST", "/slow", json={}, delay_s=2.0)
    url = f"{server.url}/slow"
    started = time.monotonic()
    failure = _failure(caller, HttpRequest("POST", url, body={}, timeout_s=0.3))
    elapsed = time.monotonic() - started
    assert failure.transient
    assert failure.message == f"timed out after 0.3 s: POST {url}"
    assert elapsed < 0.3 + 1.0


def test_connection_refused_is_transient(caller: HttpxApiCaller) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}/api"
    failure = _failure(caller, HttpRequest("GET", url, timeout_s=2.0))
    assert failure.transient
    assert f"GET {url}" in failure.message
    assert "ConnectError" in failure.message


def test_a_declared_oversized_answer_is_refused_before_reading(
    server: LocalHttpServer, caller: HttpxApiCaller
) -> None:
    server.route("GET", "/huge", body_bytes=5_000_000)
    failure = _failure(caller, HttpRequest("GET", f"{server.url}/huge", max_response_bytes=1000))
    assert not failure.transient
    assert "Content-Length 5000000 > 1000 bytes" in failure.message
    assert f"GET {server.url}/huge" in failure.message


def test_an_undeclared_oversized_answer_stops_at_the_bound(
    server: LocalHttpServer, caller: HttpxApiCaller
) -> None:
    total = 64_000_000  # more than loopback socket buffers hold: the server sees the hang-up
    server.route("GET", "/stream", body_bytes=total, content_length=False)
    started = time.monotonic()
    failure = _failure(caller, HttpRequest("GET", f"{server.url}/stream", max_response_bytes=100_000))
    assert not failure.transient
    assert "more than 100000 bytes" in failure.message
    assert time.monotonic() - started < 2.0
    deadline = time.monotonic() + 2.0
    written, aborted = server.bytes_written("GET", "/stream")
    while not aborted and time.monotonic() < deadline:  # bounded: the handler notices the hang-up
        time.sleep(0.02)
        written, aborted = server.bytes_written("GET", "/stream")
    assert aborted and written < total


def test_an_answer_within_the_bound_is_read(server: LocalHttpServer, caller: HttpxApiCaller) -> None:
    server.route("GET", "/exact", body_bytes=1000, content_length=False)
    response = caller.call(HttpRequest("GET", f"{server.url}/exact", max_response_bytes=1000))
    assert response.body == "x" * 1000


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("file:///etc/passwd", "scheme file is not allowed"),
        ("ftp://x/y", "scheme ftp is not allowed"),
        ("http:///no-host", "no host"),
        ("example.com/path", "scheme (none) is not allowed"),
    ],
)
def test_refused_urls(caller: HttpxApiCaller, url: str, reason: str) -> None:
    failure = _failure(caller, HttpRequest("GET", url))
    assert not failure.transient
    assert reason in failure.message
    assert url.split("/")[-1] in failure.message


def test_allowed_schemes_can_be_narrowed(server: LocalHttpServer) -> None:
    with HttpxApiCaller(allowed_schemes=("HTTPS",), trust_env=False) as api:
        failure = _failure(api, HttpRequest("GET", f"{server.url}/x"))
    assert "scheme http is not allowed (https)" in failure.message
    assert server.requests == []


def test_a_password_in_the_url_is_masked(caller: HttpxApiCaller) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    failure = _failure(caller, HttpRequest("GET", f"http://bot:s3cret@127.0.0.1:{port}/x", timeout_s=2.0))
    assert "s3cret" not in failure.message
    assert f"http://bot:***@127.0.0.1:{port}/x" in failure.message


def test_redirects_are_answers_unless_followed(server: LocalHttpServer) -> None:
    server.route("GET", "/old", status=302, headers={"Location": "/new"})
    server.route("GET", "/new", json={"moved": True})
    with HttpxApiCaller(trust_env=False) as api:
        assert api.call(HttpRequest("GET", f"{server.url}/old")).status == 302
    with HttpxApiCaller(follow_redirects=True, trust_env=False) as api:
        assert api.call(HttpRequest("GET", f"{server.url}/old")).body == {"moved": True}


def test_cookies_do_not_carry_between_calls(server: LocalHttpServer, caller: HttpxApiCaller) -> None:
    server.route("GET", "/login", text="ok", headers={"Set-Cookie": "session=abc; Path=/"})
    server.route("GET", "/after", text="ok")
    caller.call(HttpRequest("GET", f"{server.url}/login"))
    caller.call(HttpRequest("GET", f"{server.url}/after"))
    assert "cookie" not in server.requests[-1].headers


def test_a_flaky_sequence_then_success(server: LocalHttpServer, caller: HttpxApiCaller) -> None:
    flaky = [(503, {"error": "warming up"}), (200, {"config": {"tensor_parallel": 2}})]
    server.route("POST", "/api/v1/optimize", responses=flaky)
    statuses = []
    for attempt in range(1, 4):  # bounded, as the engine's allowance would be
        request = HttpRequest("POST", f"{server.url}/api/v1/optimize", body={}, key=f"r/optimize/{attempt}")
        response = caller.call(request)
        statuses.append(response.status)
        if classify(response, ()) is None:
            break
    assert statuses == [503, 200]
    assert server.applied("/api/v1/optimize") == 2


def test_a_handler_route(server: LocalHttpServer, caller: HttpxApiCaller) -> None:
    def double(request: RecordedRequest) -> tuple[int, object]:
        return 200, {"doubled": request.json["n"] * 2}

    server.route("POST", "/double", handler=double)
    assert caller.call(HttpRequest("POST", f"{server.url}/double", body={"n": 21})).body == {"doubled": 42}


def test_outputs_from_shapes() -> None:
    assert outputs_from(HttpResponse(200, {"config": {"tensor_parallel": 2}})) == {
        "config": {"tensor_parallel": 2},
        "status_code": 200,
    }
    assert outputs_from(HttpResponse(201, {"status_code": "theirs"})) == {"status_code": 201}
    assert outputs_from(HttpResponse(200, [1, 2])) == {"status_code": 200, "body": [1, 2]}
    assert outputs_from(HttpResponse(404, "not here")) == {"status_code": 404, "body": "not here"}
    assert outputs_from(HttpResponse(204, "")) == {"status_code": 204, "body": ""}


def test_the_server_stops_cleanly() -> None:
    server = LocalHttpServer().start()
    server.route("GET", "/ping", text="pong")
    url = f"{server.url}/ping"
    with HttpxApiCaller(trust_env=False) as api:
        assert api.call(HttpRequest("GET", url)).body == "pong"
    server.stop()
    server.stop()  # idempotent
    with HttpxApiCaller(trust_env=False) as api:
        assert _failure(api, HttpRequest("GET", url, timeout_s=1.0)).transient
