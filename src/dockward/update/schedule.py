"""When to run: once, every N seconds, or on a cron schedule (5 fields, or 6 with seconds first);
and per container, by label, in the same process (Timetable)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field

from croniter import croniter

from dockward.errors import UsageError


@dataclass(frozen=True, slots=True)
class Schedule:
    interval: float = 0.0
    cron: str = ""
    labels_only: bool = False  # `--schedule labels`: no global cycles, containers' own only

    @property
    def once(self) -> bool:
        return not self.interval and not self.cron and not self.labels_only

    @classmethod
    def parse(cls, interval: float | None, cron: str | None) -> Schedule:
        if interval and cron:
            raise UsageError("--interval and --schedule exclude each other")
        if cron and cron.strip().lower() in ("labels", "label"):
            return cls(labels_only=True)
        if interval is not None and interval <= 0:
            raise UsageError("--interval must be a positive number of seconds")
        if cron:
            _croniter(cron, dt.datetime.now(dt.UTC))
            return cls(cron=cron.strip())
        return cls(interval=float(interval or 0))

    def next_run(self, now: dt.datetime) -> dt.datetime:
        if self.labels_only:
            return now + dt.timedelta(days=3650)
        if self.cron:
            nxt = _croniter(self.cron, now).get_next(dt.datetime)
            assert isinstance(nxt, dt.datetime)
            return nxt
        return now + dt.timedelta(seconds=self.interval)


def _croniter(expr: str, start: dt.datetime) -> croniter:
    fields = expr.split()
    if len(fields) not in (5, 6):
        raise UsageError(f"--schedule: expected 5 or 6 cron fields, got {len(fields)}: {expr!r}")
    try:
        # Six fields means seconds first, as in Watchtower's --schedule.
        return croniter(expr, start, second_at_beginning=len(fields) == 6)
    except (ValueError, KeyError) as exc:
        raise UsageError(f"--schedule: invalid cron expression {expr!r}: {exc}") from exc


SCHEDULE_LABEL = "dockward.update.schedule"
GLOBAL_LABEL = "dockward.update.global-schedule"  # "false": only the container's own schedule


@dataclass(frozen=True, slots=True)
class Due:
    """What to run now: the global cycle (minus opted-out containers) and/or named containers."""

    global_cycle: bool = False
    names: tuple[str, ...] = ()
    opted_out: tuple[str, ...] = ()


@dataclass
class Timetable:
    """The global schedule plus every container's own cron label, served by one process."""

    schedule: Schedule | None
    own: dict[str, tuple[str, Schedule, dt.datetime]] = field(default_factory=dict)
    opted_out: set[str] = field(default_factory=set)
    global_next: dt.datetime | None = None
    warnings: list[str] = field(default_factory=list)

    def refresh(self, labels: Mapping[str, Mapping[str, str]], now: dt.datetime) -> None:
        """Read the labels of the managed containers (name -> labels)."""
        seen: set[str] = set()
        self.opted_out = {
            name
            for name, lab in labels.items()
            if lab.get(GLOBAL_LABEL, "").strip().lower() in ("false", "0", "no", "off")
        }
        for name, lab in labels.items():
            expr = lab.get(SCHEDULE_LABEL, "").strip()
            if not expr:
                continue
            seen.add(name)
            if name in self.own and self.own[name][0] == expr:
                continue
            try:
                sched = Schedule.parse(None, expr)
            except UsageError as exc:
                note = f"{name}: label {SCHEDULE_LABEL}: {exc}"
                if note not in self.warnings:
                    self.warnings.append(note)
                continue
            self.own[name] = (expr, sched, sched.next_run(now))
        for gone in set(self.own) - seen:
            del self.own[gone]

    def next_wake(self, now: dt.datetime) -> dt.datetime | None:
        times = [t for _, _, t in self.own.values()]
        if self.schedule is not None and not self.schedule.once and not self.schedule.labels_only:
            if self.global_next is None:
                self.global_next = self.schedule.next_run(now)
            times.append(self.global_next)
        return min(times) if times else None

    def take_due(self, now: dt.datetime) -> Due:
        global_cycle = self.global_next is not None and self.global_next <= now
        if global_cycle and self.schedule is not None:
            self.global_next = self.schedule.next_run(now)
        names = []
        for name, (expr, sched, when) in sorted(self.own.items()):
            if when <= now:
                names.append(name)
                self.own[name] = (expr, sched, sched.next_run(now))
        return Due(global_cycle, tuple(names), tuple(sorted(self.opted_out)))
