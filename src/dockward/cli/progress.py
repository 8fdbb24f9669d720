"""A rich progress bar on stderr, fed by the library's progress messages ("layer 3/12").

Library code only calls a `Callable[[str], None]`; the CLI decides how that looks. On a
terminal it is one transient rich bar (spinner, message, bar, N/M, elapsed); a message carrying
"N/M" makes the bar determinate. Off a terminal (CI logs, pipes) nothing is written.
"""

from __future__ import annotations

import atexit
import re
import sys
from typing import Any

_COUNT = re.compile(r"\b(\d+)/(\d+)\b")


class ProgressBar:
    """Callable with a message; `done()` removes the bar (also run at exit, as a safety net)."""

    def __init__(self) -> None:
        self._progress: Any = None
        self._task: Any = None

    def __call__(self, message: str) -> None:
        if self._progress is None:
            self._start(message)
        fields: dict[str, Any] = {"description": message}
        m = _COUNT.search(message)
        if m and int(m.group(2)) > 0:
            fields.update(completed=int(m.group(1)), total=int(m.group(2)))
        self._progress.update(self._task, **fields)

    def _start(self, message: str) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            SpinnerColumn,
            TextColumn,
            TimeElapsedColumn,
        )

        self._progress = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=Console(stderr=True),
            transient=True,
        )
        self._progress.start()
        self._task = self._progress.add_task(message, total=None)
        atexit.register(self.done)

    def done(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None


def progress_bar(enabled: bool | None = None) -> ProgressBar | None:
    """A bar when `enabled` (default: stderr is a terminal), else None (callers skip progress)."""
    if enabled is None:
        enabled = sys.stderr.isatty()
    return ProgressBar() if enabled else None
