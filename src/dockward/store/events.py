"""Posture changes as events through the monitor's outputs (syslog, webhook, Elasticsearch,
Splunk), so the SIEM sees new failures and fixes next to runtime alerts."""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from pathlib import Path

from dockward.model.finding import Severity
from dockward.monitor.alert import Alert
from dockward.monitor.loader import Priority
from dockward.store import Finding
from dockward.store.drift import HostDrift

SPOOL_MAX_FILES = 10000
SPOOL_MAX_BYTES = 64 << 20
NEW_RULE = "Posture: new failure"
FIXED_RULE = "Posture: failure fixed"
DOWN_RULE = "Posture: host not audited"

_PRIORITY = {
    Severity.CRITICAL: Priority.CRITICAL,
    Severity.HIGH: Priority.ERROR,
    Severity.MEDIUM: Priority.WARNING,
    Severity.LOW: Priority.NOTICE,
    Severity.INFO: Priority.INFORMATIONAL,
}


def _alert(
    rule: str, priority: Priority, output: str, d: HostDrift, fields: dict[str, object]
) -> Alert:
    return Alert(
        id=uuid.uuid4().hex,
        time_ns=int(d.current.finished * 1e9) or time.time_ns(),
        rule=rule,
        priority=priority,
        output=output,
        source="dockward",
        tags=("posture", "dockward", d.current.command),
        hostname=d.host,
        container={},
        output_fields={
            "dockward.host": d.host,
            "dockward.run": d.current.id,
            "dockward.baseline_run": d.baseline.id if d.baseline else None,
            **fields,
        },
    )


def _fields(f: Finding) -> dict[str, object]:
    return {
        "dockward.rule_id": f.rule_id,
        "dockward.severity": f.severity.label,
        "dockward.target": f.target,
        "dockward.cis": f.cis,
    }


def posture_alerts(drifts: Sequence[HostDrift]) -> list[Alert]:
    """One alert per new failure (its severity's priority), per fix (notice), per host that could
    not be audited (error)."""
    out: list[Alert] = []
    for d in drifts:
        if not d.current.ok:
            out.append(
                _alert(DOWN_RULE, Priority.ERROR, f"{d.host} not audited: {d.current.error}", d, {})
            )
            continue
        if d.baseline is None:
            continue  # a first run is a baseline, not news
        for f in d.new:
            out.append(
                _alert(
                    NEW_RULE,
                    _PRIORITY[f.severity],
                    f"new {f.severity.label} failure on {d.host}: {f.rule_id} {f.title} ({f.target})",
                    d,
                    _fields(f),
                )
            )
        for before, after in d.changed:
            if after.severity > before.severity:
                out.append(
                    _alert(
                        NEW_RULE,
                        _PRIORITY[after.severity],
                        f"{after.rule_id} on {d.host} rose from {before.severity.label} to "
                        f"{after.severity.label} ({after.target})",
                        d,
                        {**_fields(after), "dockward.severity_before": before.severity.label},
                    )
                )
        for f in d.fixed:
            out.append(
                _alert(
                    FIXED_RULE,
                    Priority.NOTICE,
                    f"fixed on {d.host}: {f.rule_id} {f.title} ({f.target})",
                    d,
                    _fields(f),
                )
            )
    return out


def send_events(
    specs: Sequence[str],
    alerts: Sequence[Alert],
    spool_root: str | Path,
    timeout: float = 10.0,
) -> list[str]:
    """Send ALERTS to every output as the monitor does: one worker per output with a disk spool
    under SPOOL_ROOT (one directory per output). Events an earlier run could not deliver go
    first, oldest first; a failing output is retried with backoff for up to TIMEOUT seconds,
    and what it still has not taken stays spooled for the next run (a warning, not a failed
    run). Delivery is at least once: each event carries its id."""
    from dockward.monitor.dispatch import Dispatcher
    from dockward.monitor.outputs import make_workers

    workers = make_workers(
        list(specs),
        spool_root,
        queue_size=max(1, len(alerts)),
        spool_max_files=SPOOL_MAX_FILES,
        spool_max_bytes=SPOOL_MAX_BYTES,
        on_drop=None,
    )
    dispatcher = Dispatcher(workers)
    dispatcher.start()
    for alert in alerts:
        dispatcher.submit(alert)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(len(w.spool) or not w.queue.empty() for w in workers):
        time.sleep(0.05)
    dispatcher.stop(flush_timeout=max(0.5, deadline - time.monotonic()))
    warnings: list[str] = []
    for w in workers:
        if w.stats.dropped:
            warnings.append(f"events to {w.name}: {w.stats.dropped} dropped (its spool is full)")
        if len(w.spool):
            why = f": {w.stats.last_error}" if w.stats.last_error else ""
            warnings.append(
                f"events to {w.name} not delivered{why}; {len(w.spool)} spooled in "
                f"{w.spool.dir}, sent on the next run"
            )
    return warnings


def check_outputs(specs: Sequence[str]) -> None:
    """A bad --events spec is a usage error before any work."""
    from dockward.monitor.outputs import make_sink

    for spec in specs:
        make_sink(spec).close()


__all__ = ["DOWN_RULE", "FIXED_RULE", "NEW_RULE", "check_outputs", "posture_alerts", "send_events"]
