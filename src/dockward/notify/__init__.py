"""Notifications where people read them: one layer for update results, monitor alerts and fleet
events, on Apprise (Apprise URLs and Watchtower's shoutrrr URLs), delivered in the background."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from dockward.errors import UsageError
from dockward.notify.destinations import (
    AppriseDestination,
    Destination,
    Note,
    NotifyError,
    StreamDestination,
    WebhookDestination,
    coalesce,
    parse_destination,
)
from dockward.notify.spool import Spool
from dockward.notify.urls import redact, to_apprise
from dockward.notify.worker import Notifications, NotifyStats, NotifyWorker, RateLimit

__all__ = [
    "AppriseDestination",
    "Destination",
    "Note",
    "Notifications",
    "NotifyError",
    "NotifyStats",
    "NotifyWorker",
    "RateLimit",
    "StreamDestination",
    "WebhookDestination",
    "build",
    "coalesce",
    "parse_destination",
    "redact",
    "split_urls",
    "spool_dir",
    "to_apprise",
]


def split_urls(values: Sequence[str]) -> list[str]:
    """Flag values, each possibly several URLs separated by spaces (Watchtower) or commas."""
    out: list[str] = []
    for value in values:
        for part in re.split(r"\s+", value.strip()):
            # A comma separates URLs only where a new scheme follows (query strings keep theirs).
            out += [p for p in re.split(r",(?=[a-z][a-z0-9+]*://|stdout\b)", part) if p]
    return out


def spool_dir(root: str | Path, url: str) -> Path:
    """One spool per destination, named by scheme and a hash (the URL itself may hold a token)."""
    scheme = re.sub(r"[^a-z0-9]+", "-", url.split("://", 1)[0].lower())[:20] or "url"
    return Path(root) / f"{scheme}-{hashlib.sha256(url.encode()).hexdigest()[:12]}"


def build(
    urls: Sequence[str],
    spool_root: str | Path | None,
    per_minute: float = 0.0,
    burst: int = 5,
    stdout: TextIO | None = None,
) -> Notifications:
    """Parse every URL (a bad one is a one-line UsageError naming its scheme), one worker each."""
    workers: list[NotifyWorker] = []
    seen: set[str] = set()
    for url in urls:
        if url in seen:
            raise UsageError(f"notification URL {redact(url)} given twice")
        seen.add(url)
        dest = parse_destination(url, stdout)
        spool = Spool(spool_dir(spool_root, url), 1000, 16 << 20) if spool_root else None
        workers.append(NotifyWorker(dest, spool, RateLimit(per_minute, burst)))
    return Notifications(workers)
