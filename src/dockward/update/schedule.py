"""When to run: once, every N seconds, or on a cron schedule (5 fields, or 6 with seconds first)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from croniter import croniter

from dockward.errors import UsageError


@dataclass(frozen=True, slots=True)
class Schedule:
    interval: float = 0.0
    cron: str = ""

    @property
    def once(self) -> bool:
        return not self.interval and not self.cron

    @classmethod
    def parse(cls, interval: float | None, cron: str | None) -> Schedule:
        if interval and cron:
            raise UsageError("--interval and --schedule exclude each other")
        if interval is not None and interval <= 0:
            raise UsageError("--interval must be a positive number of seconds")
        if cron:
            _croniter(cron, dt.datetime.now(dt.UTC))
            return cls(cron=cron.strip())
        return cls(interval=float(interval or 0))

    def next_run(self, now: dt.datetime) -> dt.datetime:
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
