"""The HTTP side of ``api_call`` steps: :class:`HttpxApiCaller`, an :class:`ApiCaller` on ``httpx``.

One :meth:`HttpxApiCaller.call` is one attempt: it sends exactly one request (redirects are not
followed unless asked) and never retries. Retrying, and the backoff between attempts, belong to
the engine, which knows the step's allowance; this module only says whether a failure is worth
retrying. *Transient* (``StepFailure(transient=True)``): a timeout, a refused connection, a DNS
failure, a connection dropped or a malformed answer from the server; and HTTP 408, 429 and 5xx
(:func:`budcore.pipeline.responses.classify`). Everything else is permanent: a URL whose scheme
is not allowed (``file:``, ``ftp:``) or that has no host, a body that cannot be encoded as JSON,
an answer bigger than the request's bound, and the other 4xx (asking again gets the same answer).

Each request carries ``Idempotency-Key: <run/step/attempt>`` so that a server honouring keys
applies a request re-sent after a crash once.

Why the size bound, and why the body is streamed: a step's answer ends up in the run's state
(its outputs), so an endpoint that answers with gigabytes, by mistake or malice, must not be able
to exhaust the memory of the process running every pipeline. The response is therefore read in
chunks as it arrives, and the attempt fails as soon as more than ``max_response_bytes`` have
arrived (or at once when ``Content-Length`` already says so); an unbounded body is never
buffered. The bound counts decoded bytes, so a small compressed answer that inflates past it is
refused too.

Every status comes back as an :class:`HttpResponse`: which statuses count as success is the
step's decision (its ``expect`` list), made by the engine with
:func:`budcore.pipeline.responses.classify`, which also turns an answer into the step's outputs.

This is an adapter (the core reaches HTTP only through the ``ApiCaller`` port): it registers as the
``httpx`` api caller through the ``budcore.plugins`` entry point, like every other adapter.

The client is shared by every call (connection pooling) and keeps no cookies, so nothing a server
sets leaks into another step's or another run's requests.
"""

from __future__ import annotations

import http.cookiejar
import json
import time
from collections.abc import Mapping
from types import TracebackType
from typing import Any

import httpx

from budcore import __version__
from budcore.pipeline.responses import one_line as _one_line
from budcore.ports.pipeline_effects import HttpRequest, HttpResponse, StepFailure

__all__ = ["DEFAULT_USER_AGENT", "HttpxApiCaller"]

DEFAULT_USER_AGENT = f"budcore-pipeline/{__version__}"


class HttpxApiCaller:
    """Sends a step's :class:`HttpRequest` with one reused :class:`httpx.Client`.

    ``transport`` replaces the network (tests); ``allowed_schemes`` are the URL schemes a
    pipeline may call; ``default_headers`` go with every request (a request's own headers win);
    ``trust_env`` lets ``HTTP(S)_PROXY``/``NO_PROXY`` and ``SSL_CERT_FILE`` from the environment
    apply, as httpx does by default.
    """

    def __init__(
        self,
        *,
        transport: httpx.BaseTransport | None = None,
        allowed_schemes: tuple[str, ...] = ("http", "https"),
        default_headers: Mapping[str, str] | None = None,
        verify: bool = True,
        follow_redirects: bool = False,
        user_agent: str = DEFAULT_USER_AGENT,
        trust_env: bool = True,
    ) -> None:
        self.allowed_schemes = tuple(scheme.lower() for scheme in allowed_schemes)
        headers = httpx.Headers({"User-Agent": user_agent})
        headers.update(dict(default_headers or {}))
        # A jar whose policy accepts no cookie: a shared client must not carry one step's
        # session into another's request.
        no_cookies = http.cookiejar.CookieJar(http.cookiejar.DefaultCookiePolicy(allowed_domains=[]))
        self._client = httpx.Client(
            transport=transport,
            headers=headers,
            cookies=no_cookies,
            verify=verify,
            follow_redirects=follow_redirects,
            trust_env=trust_env,
        )

    # -- lifecycle -------------------------------------------------------------------------------
    def close(self) -> None:
        """Close the pooled connections (idempotent)."""
        self._client.close()

    def __enter__(self) -> HttpxApiCaller:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- ApiCaller -------------------------------------------------------------------------------
    def call(self, request: HttpRequest) -> HttpResponse:
        """Send ``request`` once; its answer whatever the status, or ``StepFailure`` if none."""
        url = self._check_url(request.url)
        method = request.method.upper()
        where = f"{method} {_display(url)}"
        timeout_s = request.timeout_s
        try:
            built = self._client.build_request(
                method, url, timeout=httpx.Timeout(timeout_s), **_body_and_headers(request)
            )
        except (TypeError, ValueError) as exc:  # a body json cannot encode, a header value
            raise StepFailure(f"cannot build request {where}: {_one_line(exc)}") from None
        deadline = time.monotonic() + timeout_s
        try:
            response = self._client.send(built, stream=True)
            try:
                content = _read_bounded(response, request.max_response_bytes, where, deadline)
            finally:
                response.close()
        except httpx.TimeoutException:
            raise StepFailure(f"timed out after {timeout_s:g} s: {where}", transient=True) from None
        except (httpx.UnsupportedProtocol, httpx.LocalProtocolError) as exc:
            # Our request cannot be sent as it is: asking again changes nothing.
            raise StepFailure(f"cannot send {where} ({type(exc).__name__}: {_one_line(exc)})") from None
        except httpx.TransportError as exc:  # connect (refused, DNS), read, remote protocol, proxy
            raise StepFailure(
                f"no answer from {where} ({type(exc).__name__}: {_one_line(exc)})", transient=True
            ) from None
        except httpx.TooManyRedirects as exc:
            raise StepFailure(f"too many redirects from {where}: {_one_line(exc)}") from None
        except httpx.DecodingError as exc:  # a Content-Encoding the body does not match
            raise StepFailure(f"undecodable answer from {where}: {_one_line(exc)}") from None
        return HttpResponse(
            status=response.status_code,
            body=_decode(content, response.headers),
            headers=dict(response.headers.items()),
        )

    def _check_url(self, raw: str) -> httpx.URL:
        try:
            url = httpx.URL(raw)
        except (httpx.InvalidURL, TypeError, ValueError) as exc:
            raise StepFailure(f"invalid URL {raw!r}: {_one_line(exc)}") from None
        if url.scheme.lower() not in self.allowed_schemes:
            allowed = ", ".join(self.allowed_schemes)
            scheme = url.scheme or "(none)"
            raise StepFailure(f"refusing URL {_display(url)!r}: scheme {scheme} is not allowed ({allowed})")
        if not url.host:
            raise StepFailure(f"refusing URL {_display(url)!r}: it has no host")
        return url


# -- request and response bodies ----------------------------------------------------------------
def _body_and_headers(request: HttpRequest) -> dict[str, Any]:
    """``build_request`` keyword arguments for the request's headers and body."""
    headers = httpx.Headers(dict(request.headers))
    if request.key:
        headers["Idempotency-Key"] = request.key  # the engine's key wins over a header of the same name
    body = request.body
    if body is None:
        return {"headers": headers}
    if isinstance(body, str):
        if "content-type" not in headers:
            headers["Content-Type"] = "text/plain; charset=utf-8"
        return {"headers": headers, "content": body.encode("utf-8")}
    return {"headers": headers, "json": body}


def _read_bounded(response: httpx.Response, limit: int, where: str, deadline: float) -> bytes:
    """The (decoded) body, failing as soon as more than ``limit`` bytes arrive.

    httpx's timeout bounds each read; ``deadline`` also bounds the whole answer, so a server
    trickling bytes cannot hold an attempt for longer than its timeout (checked between chunks).
    """
    declared = str(response.headers.get("content-length", ""))
    if declared.isdigit() and int(declared) > limit and "content-encoding" not in response.headers:
        raise StepFailure(f"answer too large from {where}: Content-Length {declared} > {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    for chunk in response.iter_bytes():
        size += len(chunk)
        if size > limit:
            raise StepFailure(f"answer too large from {where}: more than {limit} bytes")
        chunks.append(chunk)
        if time.monotonic() > deadline:
            raise httpx.ReadTimeout("the answer took longer than the timeout")
    return b"".join(chunks)


def _content_type(headers: httpx.Headers) -> str:
    return str(headers.get("content-type", ""))


def _media_type(headers: httpx.Headers) -> str:
    return _content_type(headers).partition(";")[0].strip().lower()


def _is_json_type(media_type: str) -> bool:
    return media_type == "application/json" or media_type.endswith("+json")


def _charset(headers: httpx.Headers) -> str:
    for param in _content_type(headers).split(";")[1:]:
        name, _, value = param.partition("=")
        if name.strip().lower() == "charset" and value.strip():
            return value.strip().strip("\"'")
    return "utf-8"


def _decode(content: bytes, headers: httpx.Headers) -> Any:
    """The JSON value of a JSON answer, else its text.

    An answer without a JSON content type counts as JSON only when its text is a JSON object or
    array: a ``text/plain`` "42" or "true" stays text rather than changing type.
    """
    try:
        text = content.decode(_charset(headers), errors="replace")
    except LookupError:  # an unknown charset
        text = content.decode("utf-8", errors="replace")
    stripped = text.strip()
    if _is_json_type(_media_type(headers)) or stripped[:1] in ("{", "["):
        try:
            return json.loads(text)
        except ValueError:
            return text
    return text


def _display(url: httpx.URL) -> str:
    """The URL for messages, with a password in it masked."""
    if url.password:
        url = url.copy_with(username=url.username, password="***")
    return str(url)
