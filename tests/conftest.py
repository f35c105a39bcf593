"""Shared test configuration: hypothesis profiles.

``ci`` (the default under CI) runs the property tests with their declared example counts;
``dev`` is quicker for local iteration (50 examples where a test declares none); ``thorough`` runs
every property at 10,000 examples at least. ``BUDCORE_PROPERTY_EXAMPLES=N`` raises every property
to ``N`` examples under any profile (:mod:`budcore.testing.examples`: each test's declared count
goes through ``examples(n)``, and so does each profile's default here).
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

from budcore.testing.examples import examples

settings.register_profile(
    "ci",
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    print_blob=True,
    max_examples=examples(100),  # hypothesis' own default
)
settings.register_profile("dev", deadline=None, max_examples=examples(50))
settings.register_profile(
    "thorough", deadline=None, max_examples=examples(10_000), suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
