"""One worker per destination: a bounded queue, a disk spool, retries and a rate limit.

The caller (the updater's cycle, the monitor's dispatcher) never waits: `submit` queues or spills
to the spool. The worker sends oldest first; a failure spools what it held and retries with
backoff; the rate limit (messages per minute, with a burst) holds a burst back and sends it as
one coalesced message instead of flooding a channel.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from dockward.notify.destinations import Destination, Note, NotifyError
from dockward.notify.spool import Spool

MAX_BATCH = 50


@dataclass
class NotifyStats:
    submitted: int = 0
    delivered: int = 0  # notes
    messages: int = 0  # sends (a coalesced burst is one)
    spooled: int = 0
    dropped: int = 0
    failures: int = 0
    last_error: str = ""


class RateLimit:
    """Token bucket: `per_minute` messages, up to `burst` at once; 0 = unlimited."""

    def __init__(
        self, per_minute: float = 0.0, burst: int = 1, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.rate = per_minute / 60.0
        self.burst = max(1, burst)
        self.clock = clock
        self.tokens = float(self.burst)
        self.last = clock()

    def wait_time(self) -> float:
        """Seconds until a message may go (0 = now)."""
        if self.rate <= 0:
            return 0.0
        now = self.clock()
        self.tokens = min(float(self.burst), self.tokens + (now - self.last) * self.rate)
        self.last = now
        return 0.0 if self.tokens >= 1.0 else (1.0 - self.tokens) / self.rate

    def take(self) -> None:
        if self.rate > 0:
            self.tokens -= 1.0


class NotifyWorker:
    def __init__(
        self,
        destination: Destination,
        spool: Spool | None = None,
        rate: RateLimit | None = None,
        queue_size: int = 1000,
        backoff_min: float = 0.5,
        backoff_max: float = 60.0,
    ) -> None:
        self.destination = destination
        self.name = destination.name
        self.spool = spool
        self.rate = rate or RateLimit()
        self.queue: queue.Queue[Note] = queue.Queue(maxsize=queue_size)
        self.stats = NotifyStats()
        self.backoff_min = backoff_min
        self.backoff_max = backoff_max
        self._backoff = backoff_min
        self._retry_at = 0.0
        self._stop = threading.Event()
        self._deadline = float("inf")
        self._retry: list[Note] = []
        self._thread = threading.Thread(target=self._run, name=f"notify {self.name}", daemon=True)

    def start(self) -> NotifyWorker:
        self._thread.start()
        return self

    def submit(self, note: Note) -> None:
        """Never blocks: a full queue spills to the spool (or counts a drop)."""
        self.stats.submitted += 1
        try:
            self.queue.put_nowait(note)
        except queue.Full:
            self._spill([note])

    def _spill(self, notes: list[Note], keep: bool = False) -> None:
        """To the spool; without one, failed notes wait in memory (`keep`) for the retry."""
        for n in notes:
            if self.spool is not None and self.spool.put(n.to_json()):
                self.stats.spooled += 1
            elif keep and self.spool is None and len(self._retry) < self.queue.maxsize:
                self._retry.append(n)
            else:
                self.stats.dropped += 1

    def _from_spool(self) -> tuple[list[str], list[Note]]:
        if self.spool is None or not len(self.spool):
            return [], []
        names: list[str] = []
        notes: list[Note] = []
        for name, text in self.spool.oldest(MAX_BATCH):
            names.append(name)
            try:
                notes.append(Note.from_json(text))
            except (ValueError, KeyError, TypeError):
                self.stats.dropped += 1
        return names, notes

    def _take(self, timeout: float, limit: int) -> list[Note]:
        out: list[Note] = []
        try:
            out.append(self.queue.get(timeout=timeout) if timeout > 0 else self.queue.get_nowait())
        except queue.Empty:
            return out
        while len(out) < limit:
            try:
                out.append(self.queue.get_nowait())
            except queue.Empty:
                break
        return out

    def _sleep(self, seconds: float) -> bool:
        """Wait (False when stopping past the flush deadline)."""
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            if self._stop.is_set() and time.monotonic() >= self._deadline:
                return False
            time.sleep(min(0.05, max(0.0, end - time.monotonic())))
        return True

    def _run(self) -> None:
        while True:
            stopping = self._stop.is_set()
            if stopping and time.monotonic() >= self._deadline:
                return
            wait = self._retry_at - time.monotonic()
            if wait > 0:
                if not self._sleep(min(wait, 0.2)):
                    return
                continue
            names, batch = self._from_spool()
            from_spool = bool(names)
            if not from_spool and self._retry:
                batch, self._retry = self._retry[:MAX_BATCH], self._retry[MAX_BATCH:]
            elif not from_spool:
                # One at a time while the rate allows; a held-back burst goes out as one.
                batch = self._take(0.0 if stopping else 0.1, 1)
                if not batch:
                    if stopping:
                        return
                    continue
            hold = self.rate.wait_time()
            if hold > 0:
                # Held back by the rate limit: what arrives meanwhile goes out with it.
                if not self._sleep(hold):
                    if not from_spool:
                        self._spill(batch)
                    return
                if not from_spool:
                    batch += self._take(0.0, MAX_BATCH - len(batch))
            try:
                if batch:
                    self.destination.send(batch)
                    self.rate.take()
            except NotifyError as exc:
                self.stats.failures += 1
                self.stats.last_error = str(exc)[:300]
                self._retry_at = time.monotonic() + self._backoff
                self._backoff = min(self._backoff * 2, self.backoff_max)
                if not from_spool:
                    self._spill(batch, keep=not self._stop.is_set())
                continue
            self._backoff = self.backoff_min
            self.stats.delivered += len(batch)
            self.stats.messages += 1 if batch else 0
            for name in names:
                assert self.spool is not None
                self.spool.remove(name)

    def stop(self, flush_timeout: float = 10.0) -> NotifyStats:
        """Deliver what is queued within the timeout; the rest stays in the spool for next time."""
        self._deadline = time.monotonic() + flush_timeout
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(flush_timeout + 1.0)
        rest: list[Note] = []
        while True:
            try:
                rest.append(self.queue.get_nowait())
            except queue.Empty:
                break
        self._spill(self._retry + rest)
        self._retry = []
        return self.stats


class Notifications:
    """All destinations of one process: `submit` fans a note out, never waiting."""

    def __init__(self, workers: list[NotifyWorker]) -> None:
        self.workers = workers

    def start(self) -> Notifications:
        for w in self.workers:
            w.start()
        return self

    def submit(self, note: Note | None) -> None:
        if note is None:
            return
        for w in self.workers:
            w.submit(note)

    def stop(self, flush_timeout: float = 10.0) -> list[str]:
        """Stop every worker (in parallel); warnings for destinations that did not take all."""
        threads = [
            threading.Thread(target=w.stop, args=(flush_timeout,), daemon=True)
            for w in self.workers
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join(flush_timeout + 2.0)
        warnings: list[str] = []
        for w in self.workers:
            s = w.stats
            if s.failures or s.dropped or (s.spooled > 0 and s.delivered < s.submitted):
                warnings.append(
                    f"notification via {w.name}: {s.failures} failed attempt(s), "
                    f"{s.submitted - s.delivered - s.dropped} spooled for later, {s.dropped} dropped"
                    + (f"; last error: {s.last_error}" if s.last_error else "")
                )
        return warnings
