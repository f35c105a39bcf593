"""budcore: who runs where and when on heterogeneous GPU fleets.

The public entry points are re-exported here; see :mod:`budcore.domain` for the model,
:mod:`budcore.ports` for the Protocols adapters implement, and :mod:`budcore.plugins` for the
registry that finds adapters by name.
"""

from importlib.metadata import PackageNotFoundError, version

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

try:
    __version__ = version("budcore")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
    __version__ = "0.0.0+unknown"

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
