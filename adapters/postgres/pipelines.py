"""Pipelines and runs that outlive an engine: the :class:`~budcore.ports.pipeline_store.PipelineStore` port.

Three tables (revision ``0006_pipelines``): ``budcore_pipelines`` (a definition per ``(id,
version)`` with the digest of its canonical JSON), ``budcore_pipeline_runs`` (a run's header and
its optimistic-concurrency ``version``) and ``budcore_pipeline_steps`` (one row per step record,
with the ``position`` it was created at). The JSON codecs are the in-memory store's
(:mod:`budcore_adapters.inmemory.pipelines`), so both stores normalise a run alike (datetimes in
UTC, values JSON cannot hold refused) and the conformance kit holds them to the same answers.

**Saving a run writes what changed, atomically.** :meth:`PostgresPipelineStore.save_run` is one
transaction: ``UPDATE … SET header, status, version = version + 1 WHERE run_id = :id AND version =
:v`` (no row: the run is read to raise ``NotFoundError`` or ``ConflictError`` with the stored
version), then one ``INSERT … SELECT … FROM jsonb_array_elements(:records) WITH ORDINALITY … ON
CONFLICT (run_id, step_id) DO UPDATE SET record`` for the named records only. The ``UPDATE`` holds
the run's row lock until commit, so of two engines saving from one version the second waits, then
finds the version moved on and writes nothing. A new record gets the next position (after every
stored one, in the order of ``run.steps``), an existing one keeps its own, so ``get_run`` gives
the records back in creation order.

**A version with runs is immutable, also under concurrency.** :meth:`~PostgresPipelineStore.save_pipeline`
locks the definition's row (``SELECT … FOR UPDATE``) before it compares digests and looks for runs,
and :meth:`~PostgresPipelineStore.create_run` locks it ``FOR SHARE`` before inserting the run: a
run being created and a definition being changed wait for each other, so a definition never changes
under a run that saw the old one. A run row also references its definition (foreign key).

**Reading** a run is one statement: the header and the step records aggregated in order
(``json_agg(record ORDER BY position)``), fetched as text and parsed once.

**Bad input** is a :class:`~budcore.domain.errors.ValidationError` naming the field before any
statement is sent: a NUL character (``\\x00``, which PostgreSQL cannot store) in a key or a
document, a version outside ``INTEGER``, a naive datetime, a value JSON cannot hold. PostgreSQL
keeps JSON numbers as ``numeric``, so a float written without a fraction in JSONB's output (``1e16``
comes back as ``10000000000000000``) is read back as an equal ``int``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection, Iterable
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from budcore_adapters.inmemory.pipelines import (
    changed_steps,
    decode_run,
    dump_pipeline,
    encode_header,
    encode_step,
    in_run_order,
    load_pipeline,
    pipeline_immutable,
    pipeline_not_found,
    run_conflict,
    run_identity_changed,
)
from sqlalchemy.dialects.postgresql import JSONB, aggregate_order_by
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.engine import Connection

from budcore.domain.errors import NotFoundError, ValidationError
from budcore.domain.timeutil import ensure_utc
from budcore.pipeline.model import PipelineSpec
from budcore.pipeline.state import PipelineRun, RunStatus

from .engine import run_transaction
from .errors import DatabaseError
from .job_store import OnJobStoreEngine
from .records import check_no_nul
from .schema import pipeline_runs, pipeline_steps, pipelines

__all__ = ["PostgresPipelineStore"]

MAX_INT = 2**31 - 1  # INTEGER: pipeline versions and run versions

P, R, S = pipelines.c, pipeline_runs.c, pipeline_steps.c

# A run's step records as one JSON array, in creation order ('[]' for none).
_STEPS_JSON = (
    sa.select(
        sa.func.coalesce(
            sa.func.json_agg(aggregate_order_by(S.record, S.position)), sa.literal_column("'[]'::json")
        )
    )
    .where(S.run_id == R.run_id)
    .scalar_subquery()
)
_RUN = (
    sa.cast(R.header, sa.Text).label("header"),
    R.version,
    sa.cast(_STEPS_JSON, sa.Text).label("steps"),
)


def _key(value: object, path: str) -> str:
    if not isinstance(value, str):
        raise ValidationError(f"{path} must be a string, got {type(value).__name__}", path=path)
    if "\x00" in value:
        raise ValidationError(f"NUL character (\\x00) in {path}: PostgreSQL cannot store it", path=path)
    return value


def _int4(value: object, path: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= MAX_INT:
        raise ValidationError(f"{path} must be an integer from 1 to {MAX_INT}, got {value!r}", path=path)
    return value


# A JSON string (skipped), or a number with a positive exponent (what json.dumps writes for a float
# from 1e16 on: ``1.2345e+20``).
_STRING_OR_BIG_FLOAT = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|(-?\d+(?:\.\d+)?[eE]\+?\d+)')


def _positional(match: re.Match[str]) -> str:
    number = match.group(1)
    if number is None:
        return match.group(0)
    digits = format(Decimal(number), "f")
    return digits if "." in digits else digits + ".0"


def _no_nul(text: str, what: str, path: str) -> str:
    """Refuse the JSON text of a document holding a NUL, naming the field under ``path``.

    ``json.dumps`` escapes every control character, so a NUL can only appear as ``\\u0000``; the
    document is parsed only then, to find the field.
    """
    if "\\u0000" in text:
        try:
            check_no_nul(json.loads(text), what)
        except ValidationError as exc:
            raise ValidationError(exc.message, path=f"{path}.{exc.path}".rstrip(".")) from None
    return text


def _jsonb_text(text: str) -> str:
    """The JSON text ``text`` as it must be sent to a JSONB column, its big floats kept floats.

    JSONB keeps numbers as ``numeric`` and prints ``1.2345e+20`` back as
    ``123450000000000000000``, which Python reads as an ``int`` (not even equal to the float);
    written positionally with a fraction, ``123450000000000000000.0``, it is printed back so and
    read as the same float.
    """
    if "e+" in text or "E+" in text:
        text = _STRING_OR_BIG_FLOAT.sub(_positional, text)
    return text


def _jsonb(text: str) -> sa.Cast[Any]:
    """The JSON text ``text`` as a JSONB parameter (see :func:`_jsonb_text`)."""
    return sa.cast(sa.literal(_jsonb_text(text), sa.Text), JSONB)


def _identity(run: PipelineRun) -> tuple[str, int, str]:
    """What a run is of and for: fixed once it is created."""
    return (
        _key(run.pipeline_id, "pipeline_id"),
        _int4(run.pipeline_version, "pipeline_version"),
        _key(run.tenant, "tenant"),
    )


def _header(run: PipelineRun, version: int) -> str:
    return _no_nul(encode_header(run, version), "pipeline run", "run")


def _records(run: PipelineRun, ids: Iterable[str]) -> str:
    """The step records ``ids`` of ``run`` as one JSON array, in that order."""
    texts = (_no_nul(encode_step(k, run.steps[k]), "pipeline run", f"steps.{k}") for k in ids)
    return "[" + ",".join(texts) + "]"


def _decode(row: Any) -> PipelineRun:
    return decode_run(json.loads(row.header), int(row.version), json.loads(row.steps))


def _read_run(conn: Connection, run_id: str) -> PipelineRun | None:
    row = conn.execute(sa.select(*_RUN).where(R.run_id == run_id)).first()
    return None if row is None else _decode(row)


def _upsert_steps() -> sa.Insert:
    """Write the step records of the JSON array ``:records`` (in run order) of run ``:run``: a new
    one gets the next position after the stored ones, an existing one keeps its position and gets
    the new record. Built once: the engine saves after every step."""
    run_id = sa.bindparam("run", type_=sa.Text)
    records = sa.cast(sa.bindparam("records", type_=sa.Text), JSONB)
    elements = sa.func.jsonb_array_elements(records).table_valued(
        sa.column("value", JSONB), with_ordinality="ordinality"
    )
    after = (
        sa.select(sa.func.coalesce(sa.func.max(S.position), -1) + 1)
        .where(S.run_id == run_id)
        .scalar_subquery()
    )
    rows = sa.select(
        run_id, elements.c.value["step_id"].astext, after + elements.c.ordinality - 1, elements.c.value
    )
    insert = pg_insert(pipeline_steps).from_select(["run_id", "step_id", "position", "record"], rows)
    return insert.on_conflict_do_update(
        index_elements=[S.run_id, S.step_id], set_={"record": insert.excluded.record}
    )


_UPSERT_STEPS = _upsert_steps()


class PostgresPipelineStore(OnJobStoreEngine):
    """Pipeline definitions and runs in PostgreSQL (the ``PipelineStore`` port).

    Built like the other components (:class:`~budcore_adapters.postgres.job_store.OnJobStoreEngine`:
    a ``url``, a shared ``engine``, or an existing job ``store``'s pool).
    """

    # Pipelines -----------------------------------------------------------------------------------
    def save_pipeline(self, spec: PipelineSpec) -> PipelineSpec:
        """Store ``spec`` (its canonical form, which it returns); a no-op for the same content, an
        ``ImmutableError`` for changed content of a version with runs."""
        data, digest = dump_pipeline(spec)
        document = _jsonb(_no_nul(json.dumps(data), "pipeline", "spec"))
        pipeline_id, version = _key(spec.id, "id"), _int4(spec.version, "version")
        canonical = load_pipeline(data)
        this = (P.id == pipeline_id, P.version == version)

        def work(conn: Connection) -> PipelineSpec:
            for _ in range(2):  # a second round only when a racing save inserted the row first
                row = conn.execute(sa.select(P.digest).where(*this).with_for_update()).first()
                if row is None:
                    values = {"id": pipeline_id, "version": version, "spec": document, "digest": digest}
                    insert = pg_insert(pipelines).values(**values).on_conflict_do_nothing()
                    if conn.execute(insert.returning(P.id)).first() is not None:
                        return canonical
                    continue
                if row.digest == digest:
                    return canonical
                used = sa.exists().where(R.pipeline_id == pipeline_id, R.pipeline_version == version)
                if conn.execute(sa.select(used)).scalar():
                    latest = conn.execute(sa.select(sa.func.max(P.version)).where(P.id == pipeline_id))
                    raise pipeline_immutable(pipeline_id, version, latest.scalar())
                conn.execute(sa.update(pipelines).where(*this).values(spec=document, digest=digest))
                return canonical
            raise DatabaseError(f"pipeline {pipeline_id!r} version {version}: inserted and gone at once")

        return run_transaction(self._engine, work)

    def get_pipeline(self, pipeline_id: str, version: int | None = None) -> PipelineSpec:
        key = _key(pipeline_id, "pipeline_id")
        stmt = sa.select(sa.cast(P.spec, sa.Text)).where(P.id == key)
        if version is not None:
            stmt = stmt.where(P.version == _int4(version, "version"))
        stmt = stmt.order_by(P.version.desc()).limit(1)

        def work(conn: Connection) -> str:
            text = conn.execute(stmt).scalar()
            if text is None:
                known = (
                    version is not None and conn.execute(sa.select(sa.exists().where(P.id == key))).scalar()
                )
                raise pipeline_not_found(key, version, bool(known))
            return str(text)

        return load_pipeline(json.loads(run_transaction(self._engine, work)))

    # Runs ----------------------------------------------------------------------------------------
    def create_run(self, run: PipelineRun) -> PipelineRun:
        """Store ``run`` with version 1 (and return it), or return the stored run of its ``run_id``."""
        header, records = _header(run, 1), _records(run, run.steps)
        run_id, (pipeline_id, version, tenant) = _key(run.run_id, "run_id"), _identity(run)
        header_jsonb, steps = _jsonb(header), {"run": run_id, "records": _jsonb_text(records)}
        created = None if run.created_at is None else ensure_utc(run.created_at, "created_at")
        row = {
            "run_id": run_id,
            "pipeline_id": pipeline_id,
            "pipeline_version": version,
            "tenant": tenant,
            "status": RunStatus(run.status).value,
            "header": header_jsonb,
            "version": 1,
            "created_at": created,
        }
        lock = sa.select(P.id).where(P.id == pipeline_id, P.version == version).with_for_update(read=True)
        insert = pg_insert(pipeline_runs).values(**row).on_conflict_do_nothing().returning(R.run_id)

        def work(conn: Connection) -> PipelineRun:
            stored = _read_run(conn, run_id)
            if stored is not None:
                return stored
            if conn.execute(lock).first() is None:
                known = conn.execute(sa.select(sa.exists().where(P.id == pipeline_id))).scalar()
                raise pipeline_not_found(pipeline_id, version, bool(known))
            if conn.execute(insert).first() is None:  # created by a racing replay meanwhile
                stored = _read_run(conn, run_id)
                if stored is None:
                    raise DatabaseError(f"pipeline run {run_id!r}: inserted and gone at once")
                return stored
            if run.steps:
                conn.execute(_UPSERT_STEPS, steps)
            return decode_run(json.loads(header), 1, json.loads(records))

        return run_transaction(self._engine, work)

    def get_run(self, run_id: str) -> PipelineRun:
        key = _key(run_id, "run_id")

        def work(conn: Connection) -> PipelineRun:
            stored = _read_run(conn, key)
            if stored is None:
                raise NotFoundError("pipeline run", key)
            return stored

        return run_transaction(self._engine, work)

    def save_run(self, run: PipelineRun, changed: Collection[str]) -> PipelineRun:
        """Write the header and the ``changed`` step records if ``run.version`` is the stored
        version (``ConflictError`` otherwise, writing nothing); set ``run.version`` to the new one."""
        header = _jsonb(_header(run, run.version + 1))
        ids = in_run_order(run, changed_steps(run, changed))
        run_id, identity = _key(run.run_id, "run_id"), _identity(run)
        steps = {"run": run_id, "records": _jsonb_text(_records(run, ids))}
        created = None if run.created_at is None else ensure_utc(run.created_at, "created_at")
        update = (
            sa.update(pipeline_runs)
            .where(
                R.run_id == run_id,
                R.version == run.version,
                R.pipeline_id == identity[0],
                R.pipeline_version == identity[1],
                R.tenant == identity[2],
            )
            .values(
                header=header,
                status=RunStatus(run.status).value,
                created_at=created,
                version=R.version + 1,
            )
            .returning(R.version)
        )
        current = sa.select(R.version, R.pipeline_id, R.pipeline_version, R.tenant).where(R.run_id == run_id)

        def work(conn: Connection) -> int:
            version = conn.execute(update).scalar()
            if version is None:
                row = conn.execute(current).first()
                if row is None:
                    raise NotFoundError("pipeline run", run_id)
                if row.version != run.version:
                    raise run_conflict(run_id, run.version, row.version)
                if (row.pipeline_id, row.pipeline_version, row.tenant) != identity:
                    raise run_identity_changed(run_id, (row.pipeline_id, row.pipeline_version), row.tenant)
                raise DatabaseError(f"pipeline run {run_id!r}: the update matched no row")
            if ids:
                conn.execute(_UPSERT_STEPS, steps)
            return int(version)

        run.version = run_transaction(self._engine, work)
        return run

    def list_runs(
        self,
        *,
        pipeline_id: str | None = None,
        tenant: str | None = None,
        statuses: Collection[RunStatus] | None = None,
    ) -> list[PipelineRun]:
        """Runs matching every given filter, by ``(created_at, run_id)`` (runs without
        ``created_at`` last); ``statuses`` empty matches none."""
        where: list[sa.ColumnElement[bool]] = []
        if pipeline_id is not None:
            where.append(R.pipeline_id == _key(pipeline_id, "pipeline_id"))
        if tenant is not None:
            where.append(R.tenant == _key(tenant, "tenant"))
        if statuses is not None:
            wanted = sorted({RunStatus(s).value for s in statuses})
            if not wanted:
                return []
            where.append(R.status.in_(wanted))
        stmt = sa.select(*_RUN).where(*where).order_by(R.created_at, R.run_id)

        def work(conn: Connection) -> list[PipelineRun]:
            return [_decode(row) for row in conn.execute(stmt)]

        return run_transaction(self._engine, work)
