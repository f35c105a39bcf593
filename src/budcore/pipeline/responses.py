"""What the pipeline engine makes of an HTTP answer: success or failure, and the step's outputs.

The request itself is an adapter's business (the :class:`~budcore.ports.pipeline_effects.ApiCaller`
port; the built-in one is ``budcore_adapters.http.HttpxApiCaller``, on httpx): it returns every
status as an :class:`~budcore.ports.pipeline_effects.HttpResponse`, and which statuses count as
success is the step's decision (its ``expect_status``), made here. A failure is *transient* (worth
retrying) for 408, 429 and 5xx; the other 4xx are permanent: asking again gets the same answer.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from budcore.ports.pipeline_effects import HttpRequest, HttpResponse, StepFailure

__all__ = ["classify", "masked_url", "one_line", "outputs_from"]

_SNIPPET_CHARS = 200
_TRANSIENT_STATUSES = frozenset({408, 429})


# -- --------------------------------------------------------
def classify(
    response: HttpResponse, expect: tuple[int, ...] = (), request: HttpRequest | None = None
) -> StepFailure | None:
    """``None`` if the status is expected (``expect``, or 200-299 when it is empty), else the failure.

    The failure is transient for 408, 429 and 5xx. Its message is one line,
    ``HTTP 503 from POST http://…: <first 200 characters of the body>``; pass ``request`` for the
    method and URL (an :class:`HttpResponse` does not carry them), else it reads ``HTTP 503: …``.
    """
    status = response.status
    if (status in expect) if expect else (200 <= status <= 299):
        return None
    where = ""
    if request is not None:
        url = masked_url(request.url)
        where = f" from {request.method.upper()} {url}"
    snippet = _snippet(response.body)
    message = f"HTTP {status}{where}" + (f": {snippet}" if snippet else "")
    return StepFailure(message, transient=status in _TRANSIENT_STATUSES or 500 <= status <= 599)


def outputs_from(response: HttpResponse) -> dict[str, Any]:
    """A step's outputs: a JSON object's keys plus ``status_code``, else ``status_code`` and ``body``.

    ``status_code`` is the answer's status even if the object has a key of that name.
    """
    if isinstance(response.body, dict):
        return {**response.body, "status_code": response.status}
    return {"status_code": response.status, "body": response.body}


# -- messages -----------------------------------------------------------------------------------
def one_line(value: object) -> str:
    return " ".join(str(value).split())


def _snippet(body: Any) -> str:
    if body is None:
        return ""
    if isinstance(body, str):
        text = body
    else:
        text = json.dumps(body, ensure_ascii=False, separators=(",", ":"), default=str)
    text = one_line(text)
    return text if len(text) <= _SNIPPET_CHARS else text[:_SNIPPET_CHARS] + "…"


def masked_url(raw: str) -> str:
    """The URL for messages, with a password in it masked."""
    try:
        parts = urlsplit(raw)
    except ValueError:
        return raw
    if not parts.password:
        return raw
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    netloc = f"{parts.username or ''}:***@{host}{port}"
    return urlunsplit(parts._replace(netloc=netloc))
