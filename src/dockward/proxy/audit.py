"""The decision log: one JSON object per line, to a file or syslog. Never logs credentials."""

from __future__ import annotations

import json
import logging
import logging.handlers
import time
from typing import Any

from dockward.errors import ConfigError

_LOGGER = "dockward.proxy.decisions"


class DecisionLog:
    def __init__(self, target: str = "", level: str = "info") -> None:
        """`target`: "" (off), "-" (stderr), a file path, or `syslog[:/dev/log|host:port]`."""
        self.logger = logging.getLogger(f"{_LOGGER}.{id(self)}")
        self.logger.propagate = False
        self.logger.setLevel(logging.INFO)
        self.allowed_too = level.lower() in ("debug", "info")
        self.enabled = bool(target)
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
                raise ConfigError(f"cannot open syslog {address}: {exc}") from None
            handler.ident = "dockward-proxy: "
        elif target:
            try:
                handler = logging.handlers.WatchedFileHandler(target, encoding="utf-8")
            except OSError as exc:
                raise ConfigError(f"cannot open decision log {target}: {exc.strerror}") from None
        if handler is not None:
            handler.setFormatter(logging.Formatter("%(message)s"))
            self.logger.addHandler(handler)

    def record(self, **fields: Any) -> None:
        if not self.enabled or (fields.get("decision") == "allow" and not self.allowed_too):
            return
        fields = {"ts": time.strftime("%Y-%m-%dT%H:%M:%S%z"), **fields}
        self.logger.info(json.dumps(fields, separators=(",", ":"), default=str))

    def event(self, message: str, **fields: Any) -> None:
        if self.enabled:
            self.logger.info(
                json.dumps({"ts": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "event": message, **fields})
            )

    def close(self) -> None:
        for h in list(self.logger.handlers):
            h.close()
            self.logger.removeHandler(h)
