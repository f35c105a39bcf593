"""The reservation store conformance kit, unchanged, against PostgreSQL (races included)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

pytest.importorskip("sqlalchemy")

import sqlalchemy as sa
from budcore_adapters.postgres import PoolSettings, create_engine
from budcore_adapters.postgres.reservations import PostgresReservationStore
from budcore_adapters.postgres.schema import reservations
from sqlalchemy.engine import Engine

from budcore.ports import ReservationStore
from budcore.testing.reservations import ReservationStoreConformance

pytestmark = pytest.mark.postgres


@pytest.fixture(scope="module")
def engine(pg_url: str) -> Iterator[Engine]:
    engine = create_engine(pg_url, PoolSettings(size=8, max_overflow=4))
    yield engine
    engine.dispose()


class TestPostgresReservationStore(ReservationStoreConformance):
    # Several services share one database: the race tests run, each thread on its own store.
    concurrent_bookers = 4
    # The property tests' example count is the active hypothesis profile's (tests/conftest.py).

    @pytest.fixture(autouse=True)
    def _bind(self, engine: Engine) -> None:
        self.engine = engine

    def make_store(self) -> ReservationStore:
        with self.engine.begin() as conn:
            conn.execute(sa.delete(reservations))
        return PostgresReservationStore(engine=self.engine, check_schema=False)

    def share(self, store: ReservationStore) -> ReservationStore:
        return PostgresReservationStore(engine=self.engine, check_schema=False)
