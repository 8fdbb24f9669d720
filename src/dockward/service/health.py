"""Named liveness checks: a service is healthy when every check is."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

HealthCheck = Callable[[], tuple[bool, str]]  # (alive, what was seen)


@dataclass(frozen=True, slots=True)
class CheckResult:
    name: str
    ok: bool
    detail: str


class Health:
    def __init__(self) -> None:
        self._checks: dict[str, HealthCheck] = {}
        self._lock = threading.Lock()

    def add(self, name: str, check: HealthCheck) -> None:
        with self._lock:
            self._checks[name] = check

    def add_thread(self, name: str, thread: threading.Thread | None) -> None:
        """A worker thread that must stay alive for the service to work."""

        def check() -> tuple[bool, str]:
            if thread is None:
                return False, "not started"
            return (True, "running") if thread.is_alive() else (False, "stopped")

        self.add(name, check)

    def run(self) -> tuple[bool, list[CheckResult]]:
        with self._lock:
            checks = list(self._checks.items())
        out: list[CheckResult] = []
        for name, check in checks:
            try:
                ok, detail = check()
            except Exception as exc:  # a check that breaks is a failing check, not a crash
                ok, detail = False, f"{type(exc).__name__}: {exc}"[:300]
            out.append(CheckResult(name, ok, detail))
        return all(c.ok for c in out), out
