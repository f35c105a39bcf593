"""One error hierarchy for everything budcore raises on purpose.

Callers (services, the CLI, plugin authors) catch ``BudcoreError`` and get a message a person can
act on; nothing at the public API leaks a bare ``KeyError`` or ``TypeError`` for bad input.
"""

from __future__ import annotations

from collections.abc import Sequence


class BudcoreError(Exception):
    """Root of every error budcore raises deliberately."""


class ValidationError(BudcoreError, ValueError):
    """Input that does not satisfy the model.

    ``path`` names the field (``spec.resourceGroups[0].flavors[1].name``); ``source`` and ``line``
    locate it in a file when the input came from one.
    """

    def __init__(
        self,
        message: str,
        *,
        path: str = "",
        source: str | None = None,
        line: int | None = None,
    ) -> None:
        self.message = message
        self.path = path
        self.source = source
        self.line = line
        super().__init__(self._render())

    def _render(self) -> str:
        where = ""
        if self.source:
            where = self.source + (f":{self.line}" if self.line else "")
        elif self.line:
            where = f"line {self.line}"
        parts = [p for p in (where, self.path) if p]
        prefix = ": ".join(parts)
        return f"{prefix}: {self.message}" if prefix else self.message


class ValidationErrors(ValidationError):  # noqa: N818 - a collection of ValidationError
    """Several validation failures reported together, so a user fixes a file in one pass."""

    def __init__(self, errors: Sequence[ValidationError]) -> None:
        self.errors = list(errors)
        if not self.errors:
            raise ValueError("ValidationErrors needs at least one error")
        first = self.errors[0]
        super().__init__(first.message, path=first.path, source=first.source, line=first.line)
        self.args = ("\n".join(str(e) for e in self.errors),)

    def __str__(self) -> str:
        return "\n".join(str(e) for e in self.errors)


class NotFoundError(BudcoreError, LookupError):
    """A named object (job, queue, flavor, plugin target) does not exist in the scope asked."""

    def __init__(self, kind: str, key: str, scope: str | None = None) -> None:
        self.kind = kind
        self.key = key
        self.scope = scope
        where = f" in {scope}" if scope else ""
        super().__init__(f"{kind} {key!r} not found{where}")


class ConflictError(BudcoreError):
    """An optimistic-concurrency write lost: the stored version moved on since it was read."""

    def __init__(self, kind: str, key: str, expected_version: int, actual_version: int) -> None:
        self.kind = kind
        self.key = key
        self.expected_version = expected_version
        self.actual_version = actual_version
        super().__init__(
            f"{kind} {key!r} was modified concurrently: "
            f"write based on version {expected_version}, stored version is {actual_version}"
        )


class AlreadyExistsError(BudcoreError):
    """Creating an object whose key is taken (and no idempotency key makes it a replay)."""

    def __init__(self, kind: str, key: str) -> None:
        self.kind = kind
        self.key = key
        super().__init__(f"{kind} {key!r} already exists")


class ImmutableError(BudcoreError):
    """Changing an object that may no longer change (a pipeline version that has runs)."""

    def __init__(self, kind: str, key: str, detail: str) -> None:
        self.kind = kind
        self.key = key
        super().__init__(f"{kind} {key!r} cannot change: {detail}")


class InvalidTransitionError(BudcoreError):
    """A job state change that the lifecycle table does not allow."""

    def __init__(self, job_id: str, from_state: str, to_state: str, detail: str = "") -> None:
        self.job_id = job_id
        self.from_state = from_state
        self.to_state = to_state
        extra = f": {detail}" if detail else ""
        super().__init__(f"job {job_id!r}: illegal transition {from_state} -> {to_state}{extra}")


class AdmissionRejectedError(BudcoreError):
    """Base for a request refused by policy rather than malformed."""


class QuotaRejectedError(AdmissionRejectedError):
    """A request that can never fit its queue's quota (not merely 'not now')."""


class BudgetRejectedError(AdmissionRejectedError):
    """A request that would exceed a job or tenant budget."""


class CapacityError(BudcoreError):
    """The cluster backend cannot place a workload on the nodes it has."""


class PluginError(BudcoreError):
    """A plugin failed to load, or a name resolves to no registered adapter."""
