"""Where a notification goes: stdout, dockward's JSON webhook, or any Apprise URL.

Apprise (the library the field uses for 100+ services) sends; a destination only turns notes
into one message and reports failure as NotifyError with a scrubbed reason. Queueing, retries,
rate limits and the spool are the worker's job (dockward.notify.worker).
"""

from __future__ import annotations

import json
import logging
import os
import sys
import threading
import urllib.parse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TextIO

import requests

from dockward.errors import DockwardError, UsageError
from dockward.notify.urls import redact, scheme_of, scrub, secrets_of, to_apprise

LEVELS = ("info", "success", "warning", "failure")
MAX_LINES = 40  # a coalesced message lists at most this many notes


class NotifyError(DockwardError):
    """A destination did not take the message (down, refused, timed out)."""


@dataclass(frozen=True, slots=True)
class Note:
    """One notification: a title, a text body, a level, and structured data for JSON receivers."""

    title: str
    body: str
    level: str = "info"
    payload: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(
            {"title": self.title, "body": self.body, "level": self.level, "payload": self.payload}
        )

    @classmethod
    def from_json(cls, text: str) -> Note:
        d = json.loads(text)
        return cls(
            str(d["title"]), str(d["body"]), str(d.get("level", "info")), d.get("payload", {})
        )


def coalesce(notes: Sequence[Note]) -> Note:
    """Several notes as one message (a burst held back by the rate limit, or spooled ones)."""
    if len(notes) == 1:
        return notes[0]
    order = {lvl: i for i, lvl in enumerate(LEVELS)}
    level = max((n.level for n in notes), key=lambda lvl: order.get(lvl, 0))
    lines = [
        f"- {n.title}: {n.body.strip().splitlines()[0] if n.body.strip() else ''}" for n in notes
    ]
    if len(lines) > MAX_LINES:
        lines = [*lines[:MAX_LINES], f"... and {len(lines) - MAX_LINES} more"]
    title = f"{len(notes)} notifications: {notes[0].title}"
    return Note(title, "\n".join(lines) + "\n", level, {"notes": [dict(n.payload) for n in notes]})


class Destination(Protocol):
    name: str

    def send(self, notes: Sequence[Note]) -> None: ...


class StreamDestination:
    def __init__(self, stream: TextIO | None = None) -> None:
        self.name = "stdout"
        self.stream = stream or sys.stdout

    def send(self, notes: Sequence[Note]) -> None:
        try:
            for n in notes:
                self.stream.write(f"{n.title}\n{n.body}")
            self.stream.flush()
        except (OSError, ValueError) as exc:
            raise NotifyError(f"stdout: {exc}") from exc


class WebhookDestination:
    """dockward's own JSON POST: {"text": ..., **payload} per note (update and monitor data)."""

    def __init__(self, url: str, timeout: float = 10.0) -> None:
        self.url = url
        self.name = redact(url)
        self.timeout = timeout
        self._secrets = secrets_of(url)

    def send(self, notes: Sequence[Note]) -> None:
        for n in notes:
            body = {"text": f"{n.title}\n{n.body}", **n.payload}
            try:
                resp = requests.post(
                    self.url,
                    data=json.dumps(body),
                    timeout=self.timeout,
                    headers={"Content-Type": "application/json"},
                    allow_redirects=False,
                )
                resp.close()
            except requests.RequestException as exc:
                reason = scrub(str(exc), self._secrets)[:200]
                raise NotifyError(f"{self.name}: {type(exc).__name__}: {reason}") from exc
            if resp.status_code >= 400:
                raise NotifyError(f"{self.name}: HTTP {resp.status_code}")


class _ThreadCapture(logging.Handler):
    """Apprise logs why a send failed; keep each thread's messages, scrubbed, for its error."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: dict[int, list[str]] = {}
        self.secrets: list[str] = []

    def filter(self, record: logging.LogRecord) -> bool:
        """As a logger filter: every handler (ours or anyone's) sees the scrubbed text."""
        try:
            record.msg = scrub(record.getMessage(), self.secrets)
            record.args = ()
        except Exception:  # a logging filter must not raise
            return False
        return True

    def emit(self, record: logging.LogRecord) -> None:
        text = str(record.msg)
        got = self.messages.setdefault(record.thread or 0, [])
        if len(got) < 20:
            got.append(text)

    def take(self) -> list[str]:
        return self.messages.pop(threading.get_ident(), [])


_CAPTURE = _ThreadCapture()
_CAPTURE_LOCK = threading.Lock()


def _capture(secrets: list[str]) -> _ThreadCapture:
    with _CAPTURE_LOCK:
        log = logging.getLogger("apprise")
        if _CAPTURE not in log.handlers:
            log.addHandler(_CAPTURE)
            # Apprise's debug lines carry full URLs: not produced at all; warnings are scrubbed.
            log.setLevel(logging.WARNING)
            log.addFilter(_CAPTURE)
            log.propagate = False
        merged = set(_CAPTURE.secrets) | set(secrets)
        _CAPTURE.secrets = sorted(merged, key=len, reverse=True)
    return _CAPTURE


_APPRISE_LEVEL = {"info": "info", "success": "success", "warning": "warning", "failure": "failure"}


class AppriseDestination:
    def __init__(self, url: str, shown: str = "") -> None:
        import apprise

        self.name = shown or redact(url)
        secrets = secrets_of(url)
        self._capture = _capture(secrets)
        plugin = apprise.Apprise.instantiate(url, suppress_exceptions=True)
        if plugin is None:
            scheme = scheme_of(url)
            raise UsageError(
                f"notification URL {self.name}: Apprise does not accept it "
                f"(unknown scheme {scheme}:// or missing parts)"
            )
        # Apprise pauses up to 5.5 s between two messages of one plugin; dockward paces each
        # destination itself (--notify-rate, coalescing a burst), so that pause would only
        # hold the worker.
        plugin.request_rate_per_sec = 0
        self._plugin: Any = plugin

    def send(self, notes: Sequence[Note]) -> None:
        note = coalesce(notes)
        self._capture.take()
        try:
            ok = bool(
                self._plugin.notify(
                    body=note.body or note.title,
                    title=note.title,
                    notify_type=_APPRISE_LEVEL.get(note.level, "info"),
                )
            )
        except Exception as exc:  # a plugin bug must not kill the worker
            raise NotifyError(f"{self.name}: {type(exc).__name__}") from exc
        said = self._capture.take()
        if not ok:
            reason = "; ".join(said[:2])[:240] or "not delivered"
            raise NotifyError(f"{self.name}: {reason}")


def parse_destination(spec: str, stdout: TextIO | None = None) -> Destination:
    """`stdout`, `logger://` (shoutrrr's), `http(s)://` (dockward's JSON), or an Apprise/shoutrrr URL.

    An SMTP URL without a password takes it from DOCKWARD_SMTP_PASSWORD (keep it out of argv).
    """
    spec = spec.strip()
    if spec in ("stdout", "logger://", "logger"):
        return StreamDestination(stdout)
    scheme = scheme_of(spec)
    if not scheme:
        raise UsageError(f"notification URL {redact(spec)}: expected stdout or SCHEME://...")
    if scheme in ("http", "https"):
        parts = urllib.parse.urlsplit(spec)
        if not parts.hostname:
            raise UsageError(f"notification URL {scheme}://: needs a host")
        return WebhookDestination(spec)
    url = to_apprise(spec)
    if scheme_of(url) in ("mailto", "mailtos"):
        url = _smtp_password(url)
    return AppriseDestination(url, shown=redact(spec))


def _smtp_password(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    password = os.environ.get("DOCKWARD_SMTP_PASSWORD", "")
    if not parts.username or parts.password or not password:
        return url
    netloc = (
        f"{parts.username}:{urllib.parse.quote(password, safe='')}@" + parts.netloc.split("@", 1)[1]
    )
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc))
