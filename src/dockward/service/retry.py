"""Waiting for what a service needs (the engine, through the proxy) instead of exiting.

A deployed service starts before, or survives a restart of, the proxy it reaches the engine
through: it retries with a capped exponential backoff, says so on /healthz (failing while it
waits) and in its log, and stops waiting on SIGTERM.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TypeVar

from dockward.errors import ConnectionFailed

T = TypeVar("T")


class Backoff:
    """first, 2*first, 4*first ... capped at `most`; `reset()` after a success."""

    def __init__(self, first: float = 0.5, most: float = 15.0) -> None:
        self.first = first
        self.most = most
        self.delay = first

    def next(self) -> float:
        delay = self.delay
        self.delay = min(self.delay * 2, self.most)
        return delay

    def reset(self) -> None:
        self.delay = self.first


class Waiting:
    """What a service waits for, as a health check: failing with the last error while waiting."""

    def __init__(self) -> None:
        self.error = "not connected yet"
        self._lock = threading.Lock()

    def set(self, error: str) -> None:
        with self._lock:
            self.error = error

    def check(self) -> tuple[bool, str]:
        with self._lock:
            error = self.error
        return (not error, error or "connected")


def until_connected(
    connect: Callable[[], T],
    stop: threading.Event,
    waiting: Waiting | None = None,
    on_wait: Callable[[str, float], None] | None = None,
    backoff: Backoff | None = None,
) -> T | None:
    """`connect()` until it stops raising ConnectionFailed; None when `stop` is set first."""
    backoff = backoff or Backoff()
    while not stop.is_set():
        try:
            value = connect()
        except ConnectionFailed as exc:
            delay = backoff.next()
            if waiting is not None:
                waiting.set(str(exc))
            if on_wait is not None:
                on_wait(str(exc), delay)
            stop.wait(delay)
            continue
        if waiting is not None:
            waiting.set("")
        return value
    return None
