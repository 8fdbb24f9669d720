"""The minimal capability set, found by running: drop ALL, add back only what the workload needs.

Greedy elimination from Docker's default set: each capability is removed in turn and kept out if
the workload still works. One-at-a-time removal finds a set in which every capability is needed
(a 1-minimal set) in at most N+2 runs.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import Any

from dockward.errors import DockwardError
from dockward.harden.runner import DEFAULT_SETTINGS, Outcome, Settings, Workload, run_once
from dockward.model.container import DEFAULT_CAPABILITIES, normalise_capability

# Capability names this engine (20.10) refuses, so they are never proposed.
ENGINE_REJECTS = frozenset({"PERFMON", "BPF", "CHECKPOINT_RESTORE"})


@dataclass(frozen=True, slots=True)
class Trial:
    caps: tuple[str, ...]
    outcome: Outcome


@dataclass(frozen=True, slots=True)
class CapsResult:
    cap_add: tuple[str, ...]
    before: tuple[str, ...]  # the set the workload ran with before
    trials: tuple[Trial, ...]
    seconds: float

    @property
    def cap_drop(self) -> tuple[str, ...]:
        return ("ALL",)


def minimal_capabilities(
    client: Any,
    workload: Workload,
    settings: Settings = DEFAULT_SETTINGS,
    *,
    candidates: Iterable[str] = DEFAULT_CAPABILITIES,
    prefix: str = "dockward-harden",
    service: bool | None = None,
    progress: Callable[[str], None] | None = None,
    known_working: bool = False,
) -> CapsResult:
    """The smallest set (by elimination) with which the workload still works. With
    `known_working` the caller has just run it with every candidate, so that run is not
    repeated."""
    t0 = time.monotonic()
    pool = sorted({normalise_capability(c) for c in candidates} - ENGINE_REJECTS - {"ALL"})
    trials: list[Trial] = []

    def attempt(caps: Iterable[str]) -> bool:
        chosen = tuple(sorted(caps))
        if progress:
            progress(f"trying cap_add={','.join(chosen) or '-'}")
        outcome = run_once(
            client,
            workload,
            replace(settings, cap_drop=("ALL",), cap_add=chosen),
            prefix=prefix,
            service=service,
        )
        trials.append(Trial(chosen, outcome))
        return outcome.ok

    if not known_working and not attempt(pool):
        last = trials[-1].outcome
        raise DockwardError(
            f"the workload fails even with every candidate capability: {last.reason}"
        )
    needed = set(pool)
    if not attempt(()):
        for cap in pool:
            if attempt(needed - {cap}):
                needed.discard(cap)
    else:
        needed = set()
    return CapsResult(
        cap_add=tuple(sorted(needed)),
        before=tuple(sorted(pool)),
        trials=tuple(trials),
        seconds=time.monotonic() - t0,
    )
