"""A service's own log: one JSON object a line on stderr (what `docker logs` keeps)."""

from __future__ import annotations

import datetime as dt
import json
import sys
from typing import Any, TextIO


def log_event(command: str, event: str, stream: TextIO | None = None, **fields: Any) -> None:
    """{"time", "command", "event", **fields} as one line; never raises on a closed stream."""
    doc = {
        "time": dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds"),
        "command": command,
        "event": event,
        **fields,
    }
    out = stream or sys.stderr
    try:
        out.write(json.dumps(doc, default=str, sort_keys=False) + "\n")
        out.flush()
    except (OSError, ValueError):
        pass
