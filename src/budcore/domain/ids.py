"""First-class identifiers.

``TenantId`` and ``ProjectId`` are distinct types for the type checker so that a tenant is never
passed where a project is expected; at run time they are plain strings (cheap to hash, stored as is).
"""

from __future__ import annotations

import re
import uuid
from typing import NewType

from budcore.domain.errors import ValidationError

TenantId = NewType("TenantId", str)
ProjectId = NewType("ProjectId", str)
JobId = NewType("JobId", str)

# Kubernetes-compatible names: tenants map to namespaces, so the same rules keep them portable.
_NAME = re.compile(r"^[a-z0-9]([-a-z0-9_.]{0,251}[a-z0-9])?$")


def check_name(value: str, field: str) -> str:
    """Validate an identifier (lower-case alphanumerics, '-', '_', '.'; at most 253 characters)."""
    if not isinstance(value, str) or not _NAME.match(value):
        raise ValidationError(
            f"invalid identifier {value!r}: use lower-case letters, digits, '-', '_' or '.', "
            "starting and ending with a letter or digit (at most 253 characters)",
            path=field,
        )
    return value


def new_job_id() -> JobId:
    """A fresh random job id."""
    return JobId(uuid.uuid4().hex)
