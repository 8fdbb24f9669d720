"""What an update cycle says: dockward's message, or Watchtower's notification template.

Sending is dockward.notify's job (Apprise URLs, shoutrrr URLs, dockward's JSON webhook, stdout),
in the background: a cycle never waits for a chat service.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from dockward.notify.destinations import Note
from dockward.notify.gotemplate import Template, go_time_format
from dockward.update.cycle import CycleResult, Event

NOTEWORTHY = ("outdated", "updated", "rolled-back", "refused", "failed", "error")


@dataclass(frozen=True, slots=True)
class Message:
    subject: str
    text: str
    payload: dict[str, Any]


def compose(
    cycle: CycleResult, host: str = "", already: set[tuple[str, str, str]] | None = None
) -> Message | None:
    """One message per cycle with what changed; None when nothing is worth saying.

    `already` (kept by a long-running caller) suppresses repeats: the same container, status and
    new digest is reported once, not every interval (Watchtower's notification spam, #861).
    """
    events = [e for e in cycle.events if e.status in NOTEWORTHY]
    if already is not None:
        fresh = [e for e in events if (e.container, e.status, e.new_digest) not in already]
        already.update((e.container, e.status, e.new_digest) for e in events)
        events = fresh
    if not events and not cycle.recovered:
        return None
    counts: dict[str, int] = {}
    for e in events:
        counts[e.status] = counts.get(e.status, 0) + 1
    subject = "dockward update: " + ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
    if cycle.recovered and not events:
        subject = f"dockward update: recovered {len(cycle.recovered)} interrupted update(s)"
    lines = [_line(e) for e in events]
    lines += [f"- {r.name}: {r.action} after an interruption ({r.detail})" for r in cycle.recovered]
    payload = {
        "host": host,
        "subject": subject,
        "events": [e.to_dict() for e in events],
        "recovered": [{"container": r.name, "action": r.action} for r in cycle.recovered],
    }
    return Message(subject, "\n".join(lines) + "\n", payload)


def _line(e: Event) -> str:
    text = f"- {e.container} ({e.image}): {e.status}: {e.reason}"
    if e.old_digest or e.new_digest:
        text += f"\n    digest {e.old_digest or '?'} -> {e.new_digest or '?'}"
    if e.new_image_id:
        text += f"\n    image {e.old_image_id[:19]} -> {e.new_image_id[:19]}"
    if e.fixed:
        text += "\n    fixes " + ", ".join(e.fixed)
    return text


_LEVEL = {"failed": "failure", "rolled-back": "failure", "error": "warning", "refused": "warning"}


def to_note(message: Message, title: str | None = None) -> Note:
    level = "success"
    for e in message.payload.get("events", ()):
        lvl = _LEVEL.get(str(e.get("status")), "")
        if lvl == "failure" or (lvl == "warning" and level != "failure"):
            level = lvl
    return Note(message.subject if title is None else title, message.text, level, message.payload)


# Watchtower's notification data model, for WATCHTOWER_NOTIFICATION_TEMPLATE.

WATCHTOWER_DEFAULT = """
{{- if .Report -}}
  {{- with .Report -}}
    {{- if ( or .Updated .Failed ) -}}
{{len .Scanned}} Scanned, {{len .Updated}} Updated, {{len .Failed}} Failed
      {{- range .Updated}}
- {{.Name}} ({{.ImageName}}): {{.CurrentImageID.ShortID}} updated to {{.LatestImageID.ShortID}}
      {{- end -}}
      {{- range .Fresh}}
- {{.Name}} ({{.ImageName}}): {{.State}}
      {{- end -}}
      {{- range .Skipped}}
- {{.Name}} ({{.ImageName}}): {{.State}}: {{.Error}}
      {{- end -}}
      {{- range .Failed}}
- {{.Name}} ({{.ImageName}}): {{.State}}: {{.Error}}
      {{- end -}}
    {{- end -}}
  {{- end -}}
{{- else -}}
  {{range .Entries -}}{{.Message}}{{"\\n"}}{{- end -}}
{{- end -}}"""
WATCHTOWER_LEGACY = "{{range .}}{{.Message}}{{println}}{{end}}"
WATCHTOWER_PORCELAIN = """
{{- if .Report -}}
  {{- range .Report.All }}
    {{- .Name}} ({{.ImageName}}): {{.State -}}
    {{- with .Error}} Error: {{.}}{{end}}{{ println }}
  {{- else -}}
    no containers matched filter
  {{- end -}}
{{- end -}}"""
# Watchtower's named templates (pkg/notifications/common_templates.go).
NAMED_TEMPLATES = {
    "default": WATCHTOWER_DEFAULT,
    "default-legacy": WATCHTOWER_LEGACY,
    "porcelain.v1": WATCHTOWER_PORCELAIN,
    "porcelain.v1.summary-no-log": WATCHTOWER_PORCELAIN,
}


class ImageID(str):
    """An image id as Watchtower's template sees it: prints in full, `.ShortID` = 12 hex."""

    __slots__ = ()

    def ShortID(self) -> str:
        body = self.split(":", 1)[1] if self.startswith("sha256:") else str(self)
        return body[:12]


class GoTime:
    __slots__ = ("moment",)

    def __init__(self, moment: dt.datetime) -> None:
        self.moment = moment

    def Format(self, layout: str) -> str:
        return go_time_format(self.moment, layout)

    def __str__(self) -> str:
        return go_time_format(self.moment, "2006-01-02 15:04:05.000000 -0700 MST")


@dataclass(frozen=True, slots=True)
class ContainerReport:
    ID: str
    Name: str
    ImageName: str
    CurrentImageID: ImageID
    LatestImageID: ImageID
    State: str
    Error: str


# dockward's status -> Watchtower's state (refused and errors are Skipped, with the reason).
STATES = {
    "current": "Fresh",
    "outdated": "Stale",
    "updated": "Updated",
    "failed": "Failed",
    "rolled-back": "Failed",
    "refused": "Skipped",
    "skipped": "Skipped",
    "waiting": "Skipped",
    "error": "Skipped",
}


@dataclass(frozen=True, slots=True)
class WatchtowerReport:
    Scanned: tuple[ContainerReport, ...]
    Updated: tuple[ContainerReport, ...]
    Failed: tuple[ContainerReport, ...]
    Skipped: tuple[ContainerReport, ...]
    Stale: tuple[ContainerReport, ...]
    Fresh: tuple[ContainerReport, ...]
    All: tuple[ContainerReport, ...]


@dataclass(frozen=True, slots=True)
class Entry:
    Message: str
    Level: str
    Time: GoTime
    Data: Mapping[str, str]


def _report(events: Sequence[Event]) -> WatchtowerReport:
    rows = sorted(
        (
            ContainerReport(
                e.container,
                e.container,
                e.image,
                ImageID(e.old_image_id),
                ImageID(e.new_image_id or e.old_image_id),
                STATES.get(e.status, "Unknown"),
                e.reason if e.status not in ("current", "updated") else "",
            )
            for e in events
        ),
        key=lambda r: r.Name,
    )

    def pick(state: str) -> tuple[ContainerReport, ...]:
        return tuple(r for r in rows if r.State == state)

    scanned = tuple(r for r in rows if r.State != "Skipped")
    return WatchtowerReport(
        scanned,
        pick("Updated"),
        pick("Failed"),
        pick("Skipped"),
        pick("Stale"),
        pick("Fresh"),
        tuple(rows),
    )


def _entries(events: Sequence[Event], now: dt.datetime) -> list[Entry]:
    out: list[Entry] = []
    for e in events:
        if e.status == "current":
            continue
        new = ImageID(e.new_image_id).ShortID() if e.new_image_id else e.new_digest[7:19]
        if e.status in ("outdated", "updated", "refused", "failed", "rolled-back"):
            out.append(Entry(f"Found new {e.image} image ({new})", "info", GoTime(now), {}))
        if e.status == "updated":
            out.append(Entry(f"Stopping /{e.container} with SIGTERM", "info", GoTime(now), {}))
            out.append(Entry(f"Creating /{e.container}", "info", GoTime(now), {}))
        elif e.status != "outdated":
            level = "error" if e.status in ("failed", "rolled-back") else "warning"
            out.append(Entry(f"/{e.container}: {e.status}: {e.reason}", level, GoTime(now), {}))
    return out


def template_data(
    cycle: CycleResult, host: str, title: str, report: bool, now: dt.datetime | None = None
) -> Any:
    """`notification.Data` (report mode) or the entries list (legacy templates)."""
    entries = _entries(cycle.events, now or dt.datetime.now(dt.UTC))
    if not report:
        return entries
    return {
        "Title": title,
        "Host": host,
        "Entries": entries,
        "Report": _report(cycle.events),
    }


def render_template(
    template: Template, cycle: CycleResult, host: str, title: str, report: bool
) -> Note | None:
    """The template's text as a note; an empty text sends nothing (as in Watchtower)."""
    text = template.render(template_data(cycle, host, title, report))
    if not text.strip():
        return None
    events = [e for e in cycle.events if e.status in NOTEWORTHY]
    level = to_note(Message("", "", {"events": [e.to_dict() for e in events]})).level
    payload = {"host": host, "events": [e.to_dict() for e in cycle.events]}
    return Note(title, text, level, payload)
