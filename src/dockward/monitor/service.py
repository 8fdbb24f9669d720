"""The monitor: sources -> one event queue -> compiled rules -> throttle -> outputs."""

from __future__ import annotations

import json
import os
import queue
import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from dockward.errors import InputError
from dockward.model.container import Healthcheck
from dockward.monitor.alert import Alert, alert_from_match
from dockward.monitor.containers import MISSING, ContainerCache, ContainerInfo
from dockward.monitor.dispatch import Dispatcher
from dockward.monitor.engine import Engine
from dockward.monitor.fields import Event
from dockward.monitor.throttle import Throttle

PRIVATE_PREFIX = "_"
MAX_PARKED = 10000
PARK_TIMEOUT = 5.0
MAX_EVENT_LINE = 1 << 20


@dataclass
class MonitorStats:
    events: int = 0
    events_dropped: int = 0
    alerts: int = 0
    suppressed: int = 0
    by_source: dict[str, int] = field(default_factory=dict)
    by_rule: dict[tuple[str, str], int] = field(default_factory=dict)  # (rule, priority)
    lag_seconds: dict[str, float] = field(default_factory=dict)  # by source, last event


class Monitor:
    """Owns the event queue and the detection thread. Sources call `put(event)`."""

    def __init__(
        self,
        engine: Engine,
        dispatcher: Dispatcher,
        cache: ContainerCache | None = None,
        hostname: str | None = None,
        throttle: Throttle | None = None,
        queue_size: int = 100_000,
        recorder: IO[str] | None = None,
    ) -> None:
        self.engine = engine
        self.dispatcher = dispatcher
        self.cache = cache
        self.hostname = hostname or socket.gethostname()
        self.throttle = throttle or Throttle()
        self.events: queue.Queue[Event | None] = queue.Queue(maxsize=queue_size)
        self.stats = MonitorStats()
        self.recorder = recorder
        self.on_container_start: list[Callable[[str], None]] = []
        self.sources: list[Any] = []  # the live sources, for health and metrics
        self._drops_reported: dict[str, float] = {}
        self._parked: dict[str, list[Event]] = {}
        self._parked_since: dict[str, float] = {}
        self._parked_count = 0
        self._thread = threading.Thread(target=self._run, name="detector", daemon=True)
        self._lock = threading.Lock()

    def put(self, ev: Event) -> None:
        try:
            self.events.put_nowait(ev)
        except queue.Full:
            self.stats.events_dropped += 1

    def report_drop(self, output: str, dropped: int) -> None:
        """An output's spool is full: say so, as an alert (at most every 10 s per output)."""
        now = time.monotonic()
        with self._lock:
            if now - self._drops_reported.get(output, -1e9) < 10.0:
                return
            self._drops_reported[output] = now
        self.put(
            {
                "evt.source": "dockward",
                "evt.type": "dropped",
                "evt.time": time.time_ns(),
                "dockward.output": output,
                "dockward.dropped": dropped,
            }
        )

    def _park(self, cid: str, ev: Event) -> bool:
        """Hold an event until its container's metadata is fetched; False if full."""
        if self._parked_count >= MAX_PARKED or self.cache is None:
            return False
        waiting = self._parked.setdefault(cid, [])
        waiting.append(ev)
        self._parked_since.setdefault(cid, time.monotonic())
        self._parked_count += 1
        if len(waiting) == 1:
            self.cache.fetch(cid, lambda c: self.put({"_ready": c}))
        return True

    def _release(self, cid: str) -> list[Alert]:
        out: list[Alert] = []
        for ev in self._parked.pop(cid, []):
            self._parked_count -= 1
            out.extend(self._detect(ev))
        self._parked_since.pop(cid, None)
        return out

    def _release_stale(self) -> None:
        now = time.monotonic()
        for cid, since in list(self._parked_since.items()):
            if now - since > PARK_TIMEOUT:
                self._release(cid)

    def enrich(self, ev: Event) -> None:
        """Container fields for a source event (`_cid`: the full id, "" on the host)."""
        if "_cid" not in ev:
            return  # a recorded event: enriched when it was recorded
        cid = ev.pop("_cid")
        if self.cache is None:
            return
        ev.update(self.cache.fields_for(cid, fetch=not self.cache.async_ok))
        if not cid:
            return
        found = self.cache.peek(cid) if self.cache.async_ok else self.cache.get(cid)
        if not isinstance(found, ContainerInfo):
            return
        info = found
        exepath = ev.get("proc.exepath")
        if exepath and ev.get("evt.type") == "execve" and info.upper_dir:
            ev["proc.is_exe_upper_layer"] = os.path.isfile(info.upper_dir + exepath)
        health = healthcheck_command(info.spec.healthcheck)
        if health and ev.get("evt.source") == "docker" and "docker.exec.cmdline" in ev:
            ev["docker.exec.healthcheck"] = ev["docker.exec.cmdline"] == health
        elif health and ev.get("evt.type") == "execve":
            argv = f"{ev.get('proc.exe') or ''} {ev.get('proc.args') or ''}".strip()
            ev["proc.is_container_healthcheck"] = argv == health

    def process(self, ev: Event) -> list[Alert]:
        """Detect on one event; returns the alerts that passed the throttle (and sends them).

        An event of a container whose metadata is not cached yet waits (in order with the
        other events of that container) for a background inspect, at most PARK_TIMEOUT.
        """
        if "_ready" in ev:
            return self._release(str(ev["_ready"]))
        cid = ev.get("_cid")
        if cid and self.cache is not None and self.cache.async_ok:
            rename = ev.get("evt.source") == "docker" and ev.get("evt.type") == "rename"
            if rename:
                self.cache.forget(cid)
            unknown = cid in self._parked or self.cache.peek(cid) is MISSING
            if unknown and self._park(cid, ev):
                return []
        return self._detect(ev)

    def _detect(self, ev: Event) -> list[Alert]:
        self.stats.events += 1
        ev.setdefault("evt.num", self.stats.events)
        src = ev.get("evt.source", "syscall")
        self.stats.by_source[src] = self.stats.by_source.get(src, 0) + 1
        when = ev.get("evt.time")
        if isinstance(when, int) and "_cid" in ev:  # live events only, not replayed ones
            self.stats.lag_seconds[src] = max(0.0, (time.time_ns() - when) / 1e9)
        self.enrich(ev)
        if self.recorder is not None:
            self.recorder.write(json.dumps(_public(ev), default=str, sort_keys=True) + "\n")
        out: list[Alert] = []
        for m in self.engine.match(ev):
            alert = alert_from_match(m, ev, self.hostname, time.time_ns())
            if self.submit(alert):
                out.append(alert)
        if ev.get("evt.source") == "docker" and ev.get("evt.type") == "start":
            cid = ev.get("container.full_id")
            for hook in self.on_container_start:
                if isinstance(cid, str):
                    hook(cid)
        if ev.get("evt.source") == "docker" and ev.get("evt.type") == "destroy" and self.cache:
            full = ev.get("container.full_id")
            if isinstance(full, str):
                self.cache.forget(full)
        return out

    def submit(self, alert: Alert) -> bool:
        allowed, suppressed = self.throttle.allow(
            alert.rule,
            str(alert.container.get("id") or "host"),
            alert.output,
            time.monotonic(),
        )
        if not allowed:
            self.stats.suppressed += 1
            return False
        if suppressed:
            alert.output_fields["dockward.suppressed"] = suppressed
        self.stats.alerts += 1
        key = (alert.rule, alert.priority.name.lower())
        self.stats.by_rule[key] = self.stats.by_rule.get(key, 0) + 1
        self.dispatcher.submit(alert)
        return True

    def _run(self) -> None:
        while True:
            try:
                ev = self.events.get(timeout=0.2)
            except queue.Empty:
                self._release_stale()
                continue
            if ev is None:
                for cid in list(self._parked):
                    self._release(cid)
                return
            self.process(ev)
            if self._parked_since:
                self._release_stale()

    def start(self) -> None:
        self.dispatcher.start()
        self._thread.start()

    @property
    def detector(self) -> threading.Thread:
        return self._thread

    def stop(self, flush_timeout: float = 5.0) -> None:
        """Detect on every queued event, then flush the outputs (the rest is spooled)."""
        if self._thread.ident is not None:  # never started: a source failed to open first
            self.events.put(None)
            self._thread.join()
        if self.cache is not None:
            self.cache.close()
        self.dispatcher.stop(flush_timeout)
        if self.recorder is not None:
            self.recorder.flush()


def healthcheck_command(health: Healthcheck | None) -> str:
    """The command line the engine runs for a container's healthcheck ("" if none)."""
    if health is None or health.disabled:
        return ""
    kind, *rest = health.test
    if kind == "CMD-SHELL" and rest:
        return f"/bin/sh -c {rest[0]}"
    return " ".join(rest) if kind == "CMD" else ""


def _public(ev: Event) -> dict[str, Any]:
    return {k: v for k, v in ev.items() if not k.startswith(PRIVATE_PREFIX)}


def read_events(path: str | Path) -> Iterator[Event]:
    """Recorded events (JSON lines, one event object per line)."""
    try:
        fh = open(path, encoding="utf-8")  # noqa: SIM115 - closed below
    except OSError as exc:
        raise InputError(f"{path}: cannot read events: {exc.strerror}") from exc
    with fh:
        for lineno, line in enumerate(fh, 1):
            if len(line) > MAX_EVENT_LINE:
                raise InputError(f"{path}:{lineno}: event line longer than {MAX_EVENT_LINE}")
            line = line.strip()
            if not line:
                continue
            try:
                ev = json.loads(line)
            except ValueError as exc:
                raise InputError(f"{path}:{lineno}: not a JSON event: {exc}") from exc
            if not isinstance(ev, dict):
                raise InputError(f"{path}:{lineno}: an event must be a JSON object")
            yield ev


def replay(monitor: Monitor, events: Iterable[Event]) -> list[Alert]:
    out: list[Alert] = []
    for ev in events:
        out.extend(monitor.process(ev))
    return out
