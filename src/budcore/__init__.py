"""budcore: who runs where and when on heterogeneous GPU fleets.

The public entry points are re-exported here; see :mod:`budcore.domain` for the model,
:mod:`budcore.ports` for the Protocols adapters implement, and :mod:`budcore.plugins` for the
registry that finds adapters by name.

The re-exports are resolved on first use (PEP 562), so ``import budcore`` — which every
``budcore`` command does, ``budcore --version`` included — does not load the domain model and
pydantic until something asks for them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from budcore.domain import (
        BudcoreError,
        ConflictError,
        InvalidTransitionError,
        Job,
        JobPriority,
        JobStatus,
        JobType,
        NotFoundError,
        PluginError,
        PodSet,
        ResourceRequest,
        ResourceVector,
        ValidationError,
    )

    __version__: str

__all__ = [
    "BudcoreError",
    "ConflictError",
    "InvalidTransitionError",
    "Job",
    "JobPriority",
    "JobStatus",
    "JobType",
    "NotFoundError",
    "PluginError",
    "PodSet",
    "ResourceRequest",
    "ResourceVector",
    "ValidationError",
    "__version__",
]


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("budcore")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
        return "0.0.0+unknown"


def __getattr__(name: str) -> Any:
    if name == "__version__":
        value: Any = _version()
    elif name in __all__:
        import budcore.domain

        value = getattr(budcore.domain, name)
    else:
        raise AttributeError(f"module 'budcore' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
