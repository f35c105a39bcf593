"""The domain model: jobs, their lifecycle, priorities, resources, errors and events.

Pure Python and pydantic only: no I/O, no adapter, no infrastructure library.
"""

from budcore.domain.errors import (
    AdmissionRejectedError,
    AlreadyExistsError,
    BudcoreError,
    BudgetRejectedError,
    CapacityError,
    ConflictError,
    InvalidTransitionError,
    NotFoundError,
    PluginError,
    QuotaRejectedError,
    ValidationError,
    ValidationErrors,
)
from budcore.domain.events import DomainEvent, JobTransitioned
from budcore.domain.ids import JobId, ProjectId, TenantId, new_job_id
from budcore.domain.job import BudgetAction, Job, JobSource, JobStatus, JobType, PodSet, ResourceRequest
from budcore.domain.lifecycle import TRANSITIONS, BackoffPolicy, can_transition, transition
from budcore.domain.priority import PRIORITY_VALUES, JobPriority
from budcore.domain.quantity import format_quantity, parse_quantity
from budcore.domain.resources import ResourceVector

__all__ = [
    "PRIORITY_VALUES",
    "TRANSITIONS",
    "AdmissionRejectedError",
    "AlreadyExistsError",
    "BackoffPolicy",
    "BudcoreError",
    "BudgetAction",
    "BudgetRejectedError",
    "CapacityError",
    "ConflictError",
    "DomainEvent",
    "InvalidTransitionError",
    "Job",
    "JobId",
    "JobPriority",
    "JobSource",
    "JobStatus",
    "JobTransitioned",
    "JobType",
    "NotFoundError",
    "PluginError",
    "PodSet",
    "ProjectId",
    "QuotaRejectedError",
    "ResourceRequest",
    "ResourceVector",
    "TenantId",
    "ValidationError",
    "ValidationErrors",
    "can_transition",
    "format_quantity",
    "new_job_id",
    "parse_quantity",
    "transition",
]
