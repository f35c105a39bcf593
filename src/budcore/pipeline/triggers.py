"""When pipeline runs start: cron schedules (croniter), named events, and other pipelines' ends.

The engine does not own a timer thread: a service (or the simulator) asks :func:`next_fire` when
the next scheduled run is due and starts it then, so the same code runs on a wall clock and on a
virtual one. Cron expressions are the classic five fields (minute hour day-of-month month
day-of-week, with ``@daily``-style aliases), evaluated in the trigger's IANA timezone so that
"0 2 * * *" in Europe/Berlin means 02:00 Berlin time across daylight-saving changes.
"""

from __future__ import annotations

from datetime import datetime

from budcore.domain.errors import ValidationError
from budcore.pipeline.cron import check_cron, next_fire
from budcore.pipeline.model import PipelineSpec, TriggerType

__all__ = ["TriggerBook", "check_cron", "next_fire"]


class TriggerBook:
    """Which registered pipelines start on what: a cron schedule, a named event, another's end.

    An engine keeps one (:attr:`budcore.pipeline.engine.PipelineEngine.triggers`) and fills it as
    pipelines are registered. A schedule fires once per cron instant, the first instant after the
    pipeline was registered; :meth:`due` hands out each fire once. Run ids derived from the fire
    (see the engine) make starting them idempotent, so replicas that both see a fire start one run.
    """

    def __init__(self) -> None:
        self._specs: dict[str, PipelineSpec] = {}
        self._next: dict[str, datetime] = {}

    def add(self, spec: PipelineSpec, now: datetime) -> None:
        """Track ``spec``'s trigger (a newer version replaces an older one's)."""
        current = self._specs.get(spec.id)
        if current is not None and current.version > spec.version:
            return
        self._refuse_cycle(spec)
        self._specs[spec.id] = spec
        trigger = spec.trigger
        if trigger.type is TriggerType.SCHEDULE and trigger.cron is not None:
            if current is None or current.trigger != trigger:
                self._next[spec.id] = next_fire(trigger.cron, now, trigger.timezone)
        else:
            self._next.pop(spec.id, None)

    def _refuse_cycle(self, spec: PipelineSpec) -> None:
        """``after`` triggers must not chain back to ``spec``: each end would start the next forever."""
        seen = [spec.id]
        current = spec
        while current.trigger.type is TriggerType.AFTER and current.trigger.pipeline is not None:
            upstream = current.trigger.pipeline
            if upstream == spec.id:
                chain = " -> ".join([*seen, spec.id])
                raise ValidationError(
                    f"'after' triggers form a cycle: {chain} (each starts after the next)",
                    path="trigger.pipeline",
                )
            nxt = self._specs.get(upstream)
            if nxt is None or upstream in seen:
                return
            seen.append(upstream)
            current = nxt

    def due(self, now: datetime) -> list[tuple[PipelineSpec, datetime]]:
        """The scheduled fires at or before ``now`` not handed out yet, oldest first."""
        fired: list[tuple[PipelineSpec, datetime]] = []
        for pipeline_id, at in list(self._next.items()):
            spec = self._specs[pipeline_id]
            cron = spec.trigger.cron
            assert cron is not None
            while at <= now:
                fired.append((spec, at))
                at = next_fire(cron, at, spec.trigger.timezone)
            self._next[pipeline_id] = at
        return sorted(fired, key=lambda pair: (pair[1], pair[0].id))

    def next_fire(self) -> datetime | None:
        """The earliest scheduled fire to come."""
        return min(self._next.values(), default=None)

    def on_event(self, event: str) -> list[PipelineSpec]:
        """Pipelines started by ``event``."""
        return [
            spec
            for spec in self._specs.values()
            if spec.trigger.type is TriggerType.EVENT and spec.trigger.event == event
        ]

    def after(self, pipeline_id: str, status: str) -> list[PipelineSpec]:
        """Pipelines started when a run of ``pipeline_id`` ends with ``status``."""
        return [
            spec
            for spec in self._specs.values()
            if spec.trigger.type is TriggerType.AFTER
            and spec.trigger.pipeline == pipeline_id
            and ("any" in spec.trigger.on or status in spec.trigger.on)
        ]
