"""DaemonSpec: the effective daemon settings, each with where it came from."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Setting:
    value: Any
    source: str  # "argv", "daemon.json", "info", "default"

    def describe(self, key: str) -> str:
        return f"{key}={self.value!r} ({self.source})"


@dataclass(frozen=True, slots=True)
class DaemonSpec:
    """Declared settings (argv over daemon.json) plus what the engine reports."""

    settings: Mapping[str, Setting] = field(default_factory=dict)
    info: Mapping[str, Any] = field(default_factory=dict)
    version: Mapping[str, Any] = field(default_factory=dict)
    argv: tuple[str, ...] | None = None  # None: the process is not visible (remote host)
    config_file: str = ""
    config_error: str = ""

    def get(self, key: str) -> Setting | None:
        return self.settings.get(key)

    def value(self, key: str, default: Any = None) -> Any:
        s = self.settings.get(key)
        return default if s is None else s.value

    def flag(self, key: str, default: bool = False) -> bool:
        v = self.value(key, default)
        if isinstance(v, str):
            return v.strip().lower() in ("1", "true", "yes", "")
        return bool(v)

    @property
    def security_options(self) -> tuple[str, ...]:
        return tuple(str(s) for s in self.info.get("SecurityOptions") or ())

    def security_option(self, name: str) -> dict[str, str] | None:
        """`name=seccomp,profile=builtin` -> {"name": "seccomp", "profile": "builtin"}."""
        for opt in self.security_options:
            parts = dict(p.partition("=")[::2] for p in opt.split(","))
            if parts.get("name") == name:
                return parts
        return None
