"""Notifications of what changed: stdout, a webhook (JSON POST) or email over SMTP."""

from __future__ import annotations

import json
import os
import smtplib
from collections.abc import Sequence
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any, Protocol, TextIO
from urllib.parse import parse_qs, unquote, urlsplit

import requests

from dockward.errors import UsageError
from dockward.update.cycle import CycleResult, Event

NOTEWORTHY = ("outdated", "updated", "rolled-back", "refused", "failed", "error")


@dataclass(frozen=True, slots=True)
class Message:
    subject: str
    text: str
    payload: dict[str, Any]


class Notifier(Protocol):
    def send(self, message: Message) -> None: ...


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


@dataclass(frozen=True, slots=True)
class StreamNotifier:
    stream: TextIO

    def send(self, message: Message) -> None:
        self.stream.write(f"{message.subject}\n{message.text}")
        self.stream.flush()


@dataclass(frozen=True, slots=True)
class WebhookNotifier:
    url: str
    timeout: float = 10.0

    def send(self, message: Message) -> None:
        body = {"text": f"{message.subject}\n{message.text}", **message.payload}
        resp = requests.post(
            self.url,
            data=json.dumps(body),
            timeout=self.timeout,
            headers={"Content-Type": "application/json"},
            allow_redirects=False,
        )
        resp.close()
        if resp.status_code >= 400:
            raise OSError(f"webhook answered HTTP {resp.status_code}")


@dataclass(frozen=True, slots=True)
class SmtpNotifier:
    host: str
    port: int
    sender: str
    recipients: tuple[str, ...]
    starttls: bool = False
    username: str = ""
    # The password comes from DOCKWARD_SMTP_PASSWORD, never from the URL or argv.
    password: str = field(default="", repr=False)
    timeout: float = 10.0

    def send(self, message: Message) -> None:
        mail = EmailMessage()
        mail["Subject"] = message.subject
        mail["From"] = self.sender
        mail["To"] = ", ".join(self.recipients)
        mail.set_content(message.text)
        with smtplib.SMTP(self.host, self.port, timeout=self.timeout) as smtp:
            if self.starttls:
                smtp.starttls()
            if self.username:
                smtp.login(self.username, self.password)
            smtp.send_message(mail)


def parse_target(target: str, stdout: TextIO) -> Notifier:
    """`stdout`, `http(s)://...` (webhook) or `smtp://[user@]host:port?from=..&to=..[&starttls=1]`."""
    if target == "stdout":
        return StreamNotifier(stdout)
    parts = urlsplit(target)
    if parts.scheme in ("http", "https") and parts.netloc:
        return WebhookNotifier(target)
    if parts.scheme in ("smtp", "smtp+starttls") and parts.hostname:
        query = parse_qs(parts.query)
        sender = (query.get("from") or [""])[0]
        to = tuple(a for v in query.get("to", []) for a in v.split(",") if a)
        if not sender or not to:
            raise UsageError(f"--notify {parts.scheme}://: needs from= and to= parameters")
        return SmtpNotifier(
            parts.hostname,
            parts.port or 25,
            sender,
            to,
            starttls=parts.scheme == "smtp+starttls" or query.get("starttls") == ["1"],
            username=unquote(parts.username or ""),
            password=os.environ.get("DOCKWARD_SMTP_PASSWORD", ""),
        )
    raise UsageError(f"--notify: unsupported target {target[:80]!r} (stdout, http(s)://, smtp://)")


def deliver(notifiers: Sequence[Notifier], message: Message | None) -> list[str]:
    """Send to every target; a failing target becomes a warning, not a failed update."""
    if message is None:
        return []
    warnings: list[str] = []
    for n in notifiers:
        try:
            n.send(message)
        except (OSError, smtplib.SMTPException, requests.RequestException) as exc:
            warnings.append(f"notification via {type(n).__name__} failed: {exc}"[:300])
    return warnings
