"""Cycle events -> the shared Report, so every output format works for `dockward update`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from dockward import __version__
from dockward.model.finding import Report, ReportExtra, Result, Rule, Severity, Status
from dockward.update.cycle import CycleResult, Event

_REM_CURRENT = "Nothing to do."
CURRENT = Rule(
    "DW-U001",
    "Container runs the current image of its tag",
    Severity.MEDIUM,
    "update",
    "Run `dockward update` (without --monitor-only) or pull and recreate the container.",
    doc="The registry's digest for the container's tag differs from the running image.",
)
APPLIED = Rule(
    "DW-U002",
    "Update applied and healthy",
    Severity.INFO,
    "update",
    _REM_CURRENT,
    doc="The container was recreated with the same configuration on the new image.",
)
GATED = Rule(
    "DW-U003",
    "Update refused by a gate",
    Severity.HIGH,
    "update",
    "Fix the new image (vulnerabilities, policy, container rules) or allow-list the finding.",
    doc="The new image failed the policy, vulnerability or container-rules gate.",
)
HEALTH = Rule(
    "DW-U004",
    "New image failed the health gate; rolled back",
    Severity.HIGH,
    "update",
    "Fix the image or its healthcheck; the old container keeps running.",
    doc="The replacement did not become healthy in time and the old container was restored.",
)
FAILED = Rule(
    "DW-U005",
    "Update failed",
    Severity.HIGH,
    "update",
    "Read the message; the old container was restored where it still existed.",
    doc="An engine or registry error stopped the update.",
)
RULES = (CURRENT, APPLIED, GATED, HEALTH, FAILED)


@dataclass(frozen=True, slots=True)
class UpdateExtra(ReportExtra):
    """`dockward update`: every cycle's events, recoveries and clean-up, and the API version."""

    cycles: tuple[Mapping[str, Any], ...] = ()
    api_version: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "update": {
                "cycles": [dict(c) for c in self.cycles],
                "api_version": self.api_version,
            }
        }


def _result(e: Event) -> Result:
    evidence = tuple(
        (k, v)
        for k, v in (
            ("image", e.image),
            ("old_image_id", e.old_image_id),
            ("new_image_id", e.new_image_id),
            ("old_digest", e.old_digest),
            ("new_digest", e.new_digest),
            ("seconds", f"{e.elapsed:.2f}" if e.elapsed else ""),
            ("fixed", ", ".join(e.fixed)),
        )
        if v
    )
    target = f"container {e.container}"
    match e.status:
        case "current":
            return Result(CURRENT, Status.PASS, target, e.reason, evidence)
        case "outdated":
            return Result(CURRENT, Status.FAIL, target, e.reason, evidence)
        case "updated":
            return Result(APPLIED, Status.PASS, target, f"updated: {e.reason}", evidence)
        case "refused":
            return Result(GATED, Status.FAIL, target, e.reason, evidence)
        case "rolled-back":
            return Result(HEALTH, Status.FAIL, target, e.reason, evidence)
        case "failed":
            return Result(FAILED, Status.FAIL, target, e.reason, evidence)
        case "skipped" | "waiting":
            return Result(CURRENT, Status.SKIP, target, e.reason, evidence)
        case "error":
            return Result(CURRENT, Status.ERROR, target, e.reason, evidence)


# Past a check that found a newer image, these leave the container on its old one.
_LEFT_OUTDATED = frozenset({"outdated", "waiting", "refused", "rolled-back", "failed"})


def outdated_after(cycle: CycleResult) -> int:
    """Containers the cycle left running an image older than their tag's: found outdated and not
    updated (monitor only, cooldown, a gate, a rollback, a failure, or skipped or an error after
    the registry named a newer digest)."""
    return sum(
        1
        for e in cycle.events
        if e.status in _LEFT_OUTDATED
        or (
            e.status in ("skipped", "error")
            and bool(e.new_digest)
            and bool(e.old_digest)
            and e.new_digest != e.old_digest
        )
    )


def build_report(
    cycles: Sequence[CycleResult], started: str, finished: str, host: str = ""
) -> Report:
    results: list[Result] = []
    warnings: list[str] = []
    for cycle in cycles:
        results += [_result(e) for e in cycle.events]
        warnings += [f"recovered {r.name}: {r.action}: {r.detail}" for r in cycle.recovered]
        warnings += list(cycle.warnings)
    last = cycles[-1] if cycles else None
    extra = UpdateExtra(
        cycles=tuple(
            {
                "events": [e.to_dict() for e in c.events],
                "recovered": [
                    {"container": r.name, "action": r.action, "detail": r.detail}
                    for r in c.recovered
                ],
                "removed_images": list(c.removed_images),
                "restarted_dependents": list(c.restarted),
                "check_seconds": round(c.check_seconds, 3),
            }
            for c in cycles
        ),
        api_version=last.api_version if last else "",
    )
    return Report(
        command="update",
        results=tuple(results),
        started=started,
        finished=finished,
        hosts=(host,) if host else (),
        warnings=tuple(warnings),
        extra=extra,
        tool_version=__version__,
    )
