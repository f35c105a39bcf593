"""Test support for budcore users and plugin authors (needs the ``budcore[testing]`` extra).

- :mod:`budcore.testing.strategies`: hypothesis strategies that generate valid jobs, resource
  requests, resource vectors, quantities, nodes, fleets, workloads and Kueue queue configurations
  (``queue_configs``, ``cluster_queues``, ``resource_flavors``).
- :mod:`budcore.testing.conformance`: ``JobStoreConformance`` and ``ClusterBackendConformance``,
  pytest base classes that check an adapter against the port contracts.
- :mod:`budcore.testing.ledger`: ``AdmissionLedgerConformance``, the admission ledger port's kit.
- :mod:`budcore.testing.reservations`: ``ReservationStoreConformance``, the reservation store
  port's kit (no overbooking, also under concurrent bookers).
- :mod:`budcore.testing.fakes`: ``FakeClock`` and ``RecordingEventSink`` test doubles.
- :mod:`budcore.testing.examples`: ``examples(n)``, a property's example count, raised for every
  property at once by ``BUDCORE_PROPERTY_EXAMPLES`` (or ``HYPOTHESIS_PROFILE=thorough``).

Submodules are imported on demand: importing ``budcore.testing`` alone needs neither pytest nor
hypothesis. When pytest is installed, the conformance module is registered for pytest's assertion
rewriting so a failing kit check shows the compared values, as a test in the author's own suite
would.
"""

from budcore.testing.fakes import FakeClock, RecordingEventSink

try:
    import pytest
except ImportError:  # pragma: no cover - pytest is in the testing extra
    pass
else:
    pytest.register_assert_rewrite(
        "budcore.testing.conformance", "budcore.testing.ledger", "budcore.testing.reservations"
    )

__all__ = ["FakeClock", "RecordingEventSink"]
