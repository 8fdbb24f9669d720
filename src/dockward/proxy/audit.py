"""The decision log: one JSON object per line, to a file or syslog. Never logs credentials.

Off the hot path: inside a running event loop, records are queued and written 50 ms later, all
at once (one JSON encoding pass and one write for many requests); events, and records made
outside a loop, are written at once, after what is queued; stopping writes what is queued.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import logging.handlers
import os
import time
from collections.abc import Callable
from typing import Any

from dockward.errors import ConfigError

_LOGGER = "dockward.proxy.decisions"
FLUSH_SECONDS = 0.05  # records wait at most this long for the write that takes them all

# Called with ("decision", fields) for every decision and (message, fields) for every event,
# logged or not: the service metrics observe the proxy here (dockward.service.proxy).
OBSERVERS: list[Callable[[str, dict[str, Any]], None]] = []


def _observe(kind: str, fields: dict[str, Any]) -> None:
    for observer in OBSERVERS:
        with contextlib.suppress(Exception):  # counting must never break a request
            observer(kind, fields)


class DecisionLog:
    def __init__(self, target: str = "", level: str = "info") -> None:
        """`target`: "" (off), "-" (stderr), a file path, or `syslog[:/dev/log|host:port]`."""
        self.logger = logging.getLogger(f"{_LOGGER}.{id(self)}")
        self.logger.propagate = False
        self.logger.setLevel(logging.INFO)
        self.allowed_too = level.lower() in ("debug", "info")
        self.enabled = bool(target)
        self.path = ""
        self.fd = -1
        self.queue: list[dict[str, Any]] = []
        self._second = -1
        self._stamp = ""
        handler: logging.Handler | None = None
        if target == "-":
            handler = logging.StreamHandler()
        elif target.startswith("syslog"):
            _, _, where = target.partition(":")
            address: Any = where or "/dev/log"
            if ":" in where and not where.startswith("/"):
                host, _, port = where.rpartition(":")
                address = (host, int(port))
            try:
                handler = logging.handlers.SysLogHandler(
                    address=address, facility=logging.handlers.SysLogHandler.LOG_AUTH
                )
            except OSError as exc:
                raise ConfigError(f"cannot open syslog {address}: {exc}") from exc
            handler.ident = "dockward-proxy: "
        elif target:
            # A file gets one O_APPEND write per line (the logging machinery was a third of the
            # proxy's per-request cost); reopen() on SIGHUP follows log rotation.
            self.path = target
            self.reopen()
        if handler is not None:
            handler.setFormatter(logging.Formatter("%(message)s"))
            self.logger.addHandler(handler)

    def reopen(self) -> None:
        if not self.path:
            return
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o640)
        except OSError as exc:
            raise ConfigError(f"cannot open decision log {self.path}: {exc.strerror}") from exc
        old, self.fd = self.fd, fd
        if old >= 0:
            os.close(old)

    def _emit(self, lines: list[str]) -> None:
        if self.fd >= 0:
            with contextlib.suppress(OSError):  # a full disk must not stop the proxy
                os.write(self.fd, "".join(line + "\n" for line in lines).encode())
        else:
            for line in lines:
                self.logger.info(line)

    def _ts(self) -> str:
        now = int(time.time())
        if now != self._second:
            self._second, self._stamp = now, time.strftime("%Y-%m-%dT%H:%M:%S%z")
        return self._stamp

    def record(self, **fields: Any) -> None:
        if OBSERVERS:
            _observe("decision", fields)
        if not self.enabled or (fields.get("decision") == "allow" and not self.allowed_too):
            return
        fields = {"ts": self._ts(), **fields}
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self.queue.append(fields)
            self.flush()
            return
        if not self.queue:
            loop.call_later(FLUSH_SECONDS, self.flush)
        self.queue.append(fields)

    def flush(self) -> None:
        queue, self.queue = self.queue, []
        if queue:
            self._emit([json.dumps(f, separators=(",", ":"), default=str) for f in queue])

    def event(self, message: str, **fields: Any) -> None:
        if OBSERVERS:
            _observe(message, fields)
        if self.enabled:
            self.flush()
            line = json.dumps({"ts": self._ts(), "event": message, **fields}, default=str)
            self._emit([line])

    def close(self) -> None:
        self.flush()
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
        for h in list(self.logger.handlers):
            h.close()
            self.logger.removeHandler(h)
