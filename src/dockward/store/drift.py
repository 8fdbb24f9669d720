"""Drift: what changed on each host between a baseline run and its latest run."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

from dockward.model.finding import Severity
from dockward.store import Finding, RunInfo, Store, StoreError


@dataclass(frozen=True, slots=True)
class HostDrift:
    host: str
    current: RunInfo
    baseline: RunInfo | None
    new: tuple[Finding, ...] = ()
    fixed: tuple[Finding, ...] = ()
    changed: tuple[tuple[Finding, Finding], ...] = ()  # (before, after)
    newly_vulnerable: tuple[str, ...] = ()
    note: str = ""

    def worsened_at(self, threshold: Severity) -> bool:
        """Something new, or a severity raised, at or above THRESHOLD."""
        return any(f.severity >= threshold for f in self.new) or any(
            after.severity >= threshold and after.severity > before.severity
            for before, after in self.changed
        )


def compare(
    before: Sequence[Finding], after: Sequence[Finding]
) -> tuple[
    tuple[Finding, ...], tuple[Finding, ...], tuple[tuple[Finding, Finding], ...], tuple[str, ...]
]:
    """(new, fixed, severity changed, newly vulnerable images) between two runs' findings."""
    old = {f.key: f for f in before if f.failing}
    now = {f.key: f for f in after if f.failing}
    new = tuple(now[k] for k in sorted(now.keys() - old.keys()))
    fixed = tuple(old[k] for k in sorted(old.keys() - now.keys()))
    changed = tuple(
        (old[k], now[k])
        for k in sorted(old.keys() & now.keys())
        if old[k].severity != now[k].severity
    )
    was_vulnerable = {f.target for f in old.values() if f.vulnerable_image}
    newly = tuple(sorted({f.target for f in now.values() if f.vulnerable_image} - was_vulnerable))
    return new, fixed, changed, newly


def fleet_drift(
    store: Store,
    command: str = "audit",
    baseline: str | None = None,
    since: float | None = None,
    now: float | None = None,
) -> list[HostDrift]:
    """Per host: the latest run against BASELINE (a run id, whose run batch is the baseline for
    every host, or a batch id), or against the last good run at least SINCE seconds old, or
    (neither) against the last good run before the latest."""
    now = time.time() if now is None else now
    base_runs: dict[str, RunInfo] | None = None
    if baseline:
        batch = baseline
        if baseline.isdigit():
            run = store.run(int(baseline))
            if run is None:
                raise StoreError(f"no stored run {baseline}")
            batch = run.batch
        base_runs = {r.host: r for r in store.batch_runs(batch)}
        if not base_runs:
            raise StoreError(f"no stored run {baseline}")
    pairs: list[tuple[RunInfo, RunInfo | None, str]] = []
    for current in store.latest(command):
        if base_runs is not None:
            base = base_runs.get(current.host)
            note = "" if base is not None else "not in the baseline run"
            if base is not None and not base.ok:
                note, base = f"baseline run failed: {base.error}", None
        else:
            before = now - since if since is not None else current.started
            base = store.last_ok_before(command, current.host, before, exclude=current.id)
            if base is None and since is not None:  # a host younger than the window
                base = store.first_ok_after(command, current.host, before, exclude=current.id)
                base = base if base is not None and base.started < current.started else None
            note = "" if base is not None else "no earlier run to compare with"
        pairs.append((current, base, note))
    diffs = store.drift(
        [
            (current.id, base.id)
            for current, base, _ in pairs
            if current.ok and base is not None and base.id != current.id
        ]
    )
    out: list[HostDrift] = []
    for current, base, note in pairs:
        if not current.ok:
            out.append(
                HostDrift(current.host, current, base, note=f"latest run failed: {current.error}")
            )
            continue
        if base is None or base.id == current.id:
            out.append(HostDrift(current.host, current, None, note=note or "no earlier run"))
            continue
        new, fixed, changed, newly = diffs[current.id]
        out.append(
            HostDrift(
                current.host, current, base, tuple(new), tuple(fixed), tuple(changed), tuple(newly)
            )
        )
    return out


__all__ = ["HostDrift", "compare", "fleet_drift"]
