"""Lifecycle hooks run inside the container (Watchtower's labels and dockward's own)."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

WATCHTOWER = "com.centurylinklabs.watchtower."
HOOKS = ("pre-check", "pre-update", "post-update", "post-check")
EX_TEMPFAIL = 75  # Watchtower's convention: a pre-update hook exiting 75 skips this update
DEFAULT_TIMEOUT = 60.0


@dataclass(frozen=True, slots=True)
class HookResult:
    hook: str
    exit_code: int
    output: str
    timed_out: bool = False

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and not self.timed_out


def hook_command(labels: Mapping[str, str], hook: str) -> tuple[str, float]:
    """(command, timeout seconds) for a hook, or ("", 0) when none is set."""
    cmd = labels.get(f"dockward.update.{hook}") or labels.get(f"{WATCHTOWER}lifecycle.{hook}") or ""
    raw = labels.get(f"dockward.update.{hook}-timeout")
    timeout = DEFAULT_TIMEOUT
    if raw is None and f"{WATCHTOWER}lifecycle.{hook}-timeout" in labels:
        try:
            minutes = float(labels[f"{WATCHTOWER}lifecycle.{hook}-timeout"])
            timeout = minutes * 60 if minutes > 0 else 24 * 3600.0
        except ValueError:
            pass
    elif raw is not None:
        with contextlib.suppress(ValueError):
            timeout = max(1.0, float(raw))
    return cmd.strip(), timeout


def run_hook(client: Any, container_id: str, hook: str, command: str, timeout: float) -> HookResult:
    """`sh -c COMMAND` inside the container (as Watchtower does), bounded by `timeout`."""
    exec_id = client.exec_create(container_id, ["sh", "-c", command], stdout=True, stderr=True)[
        "Id"
    ]
    client.exec_start(exec_id, detach=True)
    deadline = time.monotonic() + timeout
    while True:
        info = client.exec_inspect(exec_id)
        # Right after a detached start the exec may not run yet: ExitCode stays null until it ends.
        if not info.get("Running") and info.get("ExitCode") is not None:
            return HookResult(hook, int(info["ExitCode"]), "")
        if time.monotonic() >= deadline:
            return HookResult(hook, -1, "", timed_out=True)
        time.sleep(0.1)
