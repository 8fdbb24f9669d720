"""Alerts: what a fired rule produces, in Falco's JSON shape plus dockward's container block."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from dataclasses import dataclass, field
from typing import Any

from dockward.monitor.engine import Match
from dockward.monitor.fields import Event
from dockward.monitor.loader import Priority

_CONTAINER_KEYS = (
    "container.id",
    "container.name",
    "container.image",
    "container.image.repository",
    "container.image.tag",
)


def _jsonable(value: Any) -> Any:
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    return str(value)


def iso_time(ns: int) -> str:
    secs, rem = divmod(ns, 1_000_000_000)
    stamp = dt.datetime.fromtimestamp(secs, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{stamp}.{rem:09d}Z"


@dataclass(frozen=True, slots=True)
class Alert:
    id: str
    time_ns: int
    rule: str
    priority: Priority
    output: str
    source: str
    tags: tuple[str, ...]
    hostname: str
    container: dict[str, Any]
    output_fields: dict[str, Any] = field(default_factory=dict)

    @property
    def time(self) -> str:
        return iso_time(self.time_ns)

    def to_dict(self) -> dict[str, Any]:
        when = self.time
        return {
            "uuid": self.id,
            "time": when,
            "rule": self.rule,
            "priority": self.priority.label,
            "output": f"{when}: {self.priority.label} {self.output}",
            "output_fields": _jsonable(self.output_fields),
            "source": self.source,
            "tags": list(self.tags),
            "hostname": self.hostname,
            "container": _jsonable(self.container),
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), separators=(",", ":"), sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Alert:
        """An alert back from the spool, or a Falco JSON alert read as input."""
        time_text = str(data.get("time") or "")
        try:
            time_ns = _parse_time(time_text)
        except ValueError:
            time_ns = 0
        output = str(data.get("output") or "")
        prefix = f"{time_text}: "
        if output.startswith(prefix):
            output = output[len(prefix) :].split(" ", 1)[-1]
        try:
            priority = Priority.parse(str(data.get("priority") or "warning"))
        except ValueError:
            priority = Priority.WARNING
        fields = data.get("output_fields") or {}
        container = data.get("container") or {
            k.removeprefix("container.").replace(".", "_"): fields.get(k)
            for k in _CONTAINER_KEYS
            if isinstance(fields, dict) and k in fields
        }
        return cls(
            id=str(data.get("uuid") or uuid.uuid4().hex),
            time_ns=time_ns,
            rule=str(data.get("rule") or ""),
            priority=priority,
            output=output,
            source=str(data.get("source") or "syscall"),
            tags=tuple(str(t) for t in data.get("tags") or ()),
            hostname=str(data.get("hostname") or ""),
            container=dict(container) if isinstance(container, dict) else {},
            output_fields=dict(fields) if isinstance(fields, dict) else {},
        )


def _parse_time(text: str) -> int:
    main, _, frac = text.rstrip("Z").partition(".")
    secs = dt.datetime.strptime(main, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=dt.UTC).timestamp()
    digits = (frac + "000000000")[:9] if frac else "0"
    return int(secs) * 1_000_000_000 + int(digits)


def alert_from_match(match: Match, ev: Event, hostname: str, time_ns: int) -> Alert:
    container = {
        k.removeprefix("container.").replace(".", "_"): ev.get(k)
        for k in _CONTAINER_KEYS
        if ev.get(k) is not None
    }
    return Alert(
        id=uuid.uuid4().hex,
        time_ns=int(ev.get("evt.time") or time_ns),
        rule=match.rule.name,
        priority=match.rule.priority,
        output=match.output,
        source=match.rule.source,
        tags=match.rule.tags,
        hostname=hostname,
        container=container,
        output_fields=match.fields,
    )
