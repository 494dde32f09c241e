"""Schedules: `[schedules.<name>]` in turing.toml, their cron ticks, and firing each tick once.

    [schedules.skills]
    cron = "*/5 * * * *"          # croniter syntax; a sixth field is seconds: "* * * * * */10"
    workflows = ["job_skills"]    # names or aliases; default: every workflow with a source
    max_tasks = 500               # at most this many NEW tasks per workflow per tick
    discover = true               # the default; see below for false
    timezone = "UTC"              # the zone the cron fields are read in (IANA name)

A tick with `discover = true` discovers the schedule's workflows and enqueues what is pending
(at most `max_tasks` new tasks per workflow); the workers process the queue continuously.
A tick with `discover = false` does not discover: it processes up to `max_tasks` tasks of
its workflows that are already queued (enqueued by `turing discover`, another schedule or
your application) right then, and workers do not process those workflows between ticks.
Use it to run a queue off-peak ("0 2 * * *": the night's batch, at most 10,000 tasks).

Exactly once: every worker computes the same tick times; the one whose insert into
`turing_schedule_ticks` (primary key schedule + tick) succeeds runs the tick; the others
see the conflict and skip it. No leader election, no clock agreement beyond the cron grid.

Missed ticks: only the latest due tick is ever considered. Ticks that passed while no
worker ran (or while a worker was busy) are not caught up one by one; on start a worker
fires the latest past tick if nobody fired it yet, so at most one tick runs late. Discovery
is idempotent and finds everything still pending, so skipping stale ticks loses nothing.
A worker that dies between winning a tick and finishing it leaves the tick fired but
unfinished (`finished_at` empty); it is not run again (at most once), the next tick
discovers what it missed.

Plugging into the project file (`turing.config.Config`):

    schedules: dict[str, ScheduleTable] = Field(default_factory=dict)

`schedules_from_config(config)` turns that mapping into `Schedule` objects.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter  # type: ignore[import-untyped]
from pydantic import BaseModel, ConfigDict, Field, field_validator

from turing.errors import ConfigError, TuringError
from turing.store.schedules import Tick, TickStore

if TYPE_CHECKING:  # kept light: turing.config imports this module for ScheduleTable
    from turing.store.store import Store
    from turing.workflow import Workflow


class ScheduleTable(BaseModel):
    """`[schedules.NAME]`: when to discover (or process) which workflows."""

    model_config = ConfigDict(extra="forbid")

    cron: str = Field(description="cron expression (croniter); a 6th field is seconds")
    workflows: list[str] | None = Field(
        default=None, description="names or aliases; default every workflow with a source"
    )
    max_tasks: int | None = Field(default=None, gt=0, description="per workflow per tick")
    discover: bool = True
    timezone: str = "UTC"

    @field_validator("cron")
    @classmethod
    def _valid_cron(cls, value: str) -> str:
        text = " ".join(value.split())
        if not text or not croniter.is_valid(text):
            raise ValueError(
                f"{value!r} is not a cron expression (five fields like '*/5 * * * *', "
                "a sixth for seconds, or @hourly/@daily/...)"
            )
        return text

    @field_validator("timezone")
    @classmethod
    def _valid_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r} (an IANA name like 'UTC')") from None
        return value

    @field_validator("workflows")
    @classmethod
    def _some_workflows(cls, value: list[str] | None) -> list[str] | None:
        if value is not None and not value:
            raise ValueError("an empty list schedules nothing; leave it out for every workflow")
        return value


@dataclass(frozen=True)
class Schedule:
    """One schedule; tick times are epoch seconds on its cron grid."""

    name: str
    cron: str
    workflows: tuple[str, ...] | None = None
    max_tasks: int | None = None
    discover: bool = True
    timezone: str = "UTC"

    def __post_init__(self) -> None:
        # Validate like the config does, so programmatic schedules fail early too.
        ScheduleTable(
            cron=self.cron,
            workflows=list(self.workflows) if self.workflows is not None else None,
            max_tasks=self.max_tasks,
            timezone=self.timezone,
        )

    @classmethod
    def from_table(cls, name: str, table: ScheduleTable) -> Schedule:
        return cls(
            name,
            table.cron,
            tuple(table.workflows) if table.workflows is not None else None,
            table.max_tasks,
            table.discover,
            table.timezone,
        )

    def _at(self, now: float) -> datetime:
        return datetime.fromtimestamp(now, ZoneInfo(self.timezone))

    def latest_tick(self, now: float) -> float:
        """The last tick strictly before `now` (a tick at exactly `now` is due an instant later)."""
        return float(croniter(self.cron, self._at(now)).get_prev(float))

    def next_tick(self, now: float) -> float:
        """The first tick after `now`."""
        return float(croniter(self.cron, self._at(now)).get_next(float))

    def describe(self) -> str:
        what = "process queued" if not self.discover else "discover"
        scope = ", ".join(self.workflows) if self.workflows else "every workflow"
        cap = f", at most {self.max_tasks}" if self.max_tasks else ""
        per = " new per workflow per tick" if self.max_tasks and self.discover else ""
        per = per or (" per tick" if self.max_tasks else "")
        return f"{self.cron} ({self.timezone}): {what} {scope}{cap}{per}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "cron": self.cron,
            "workflows": list(self.workflows) if self.workflows is not None else None,
            "max_tasks": self.max_tasks,
            "discover": self.discover,
            "timezone": self.timezone,
        }


def schedules_from_config(config: Any) -> list[Schedule]:
    """The `[schedules]` of a `Config` (none while `Config` has no such field)."""
    tables: Mapping[str, ScheduleTable | Mapping[str, Any]] = getattr(config, "schedules", {})
    return parse_schedules(tables)


def parse_schedules(tables: Mapping[str, ScheduleTable | Mapping[str, Any]]) -> list[Schedule]:
    out = []
    for name, table in sorted(tables.items()):
        model = table if isinstance(table, ScheduleTable) else ScheduleTable.model_validate(table)
        out.append(Schedule.from_table(name, model))
    return out


def when(ts: float | None, zone: str = "UTC") -> str:
    """A tick time for people: `2024-05-01 12:05:00 UTC`."""
    if ts is None:
        return ""
    at = datetime.fromtimestamp(ts, UTC if zone == "UTC" else ZoneInfo(zone))
    return at.strftime("%Y-%m-%d %H:%M:%S ") + (at.tzname() or zone)


# ---------------------------------------------------------------- ticks in the database
def claim_tick(store: Store, schedule: str, tick_at: float, worker: str) -> bool:
    """Try to fire a tick: True for exactly one caller per (schedule, tick), ever."""
    return TickStore(store.db).claim(schedule, tick_at, worker, time.time())


def finish_tick(
    store: Store,
    schedule: str,
    tick_at: float,
    worker: str,
    *,
    tasks: int,
    error: str | None = None,
) -> None:
    TickStore(store.db).finish(
        schedule, tick_at, worker, time.time(), tasks=tasks, error=error[:2000] if error else None
    )


def last_ticks(store: Store) -> dict[str, Tick]:
    """The newest fired tick of every schedule that ever fired."""
    return TickStore(store.db).last()


def ticks(store: Store, schedule: str | None = None) -> list[Tick]:
    return TickStore(store.db).list(schedule)


def resolve_workflows(
    schedules: Sequence[Schedule], resolve: Callable[[str], Workflow]
) -> list[Schedule]:
    """Schedules with workflow aliases resolved to names (`resolve(key) -> Workflow`)."""
    out = []
    for s in schedules:
        if s.workflows is None:
            out.append(s)
            continue
        try:
            names = tuple(dict.fromkeys(resolve(w).name for w in s.workflows))
        except TuringError as exc:
            raise ConfigError(f"[schedules.{s.name}] workflows: {exc}") from exc
        out.append(Schedule(s.name, s.cron, names, s.max_tasks, s.discover, s.timezone))
    return out
