"""One worker per output: a bounded queue, a disk spool and retries with backoff.

Detection never waits for an output: a full queue spills to the spool, a failing sink spools
and is retried (oldest first, so order is kept), and only a full spool drops an alert - which
is counted and reported as an alert itself. Every alert handed to an output is first appended
to that output's journal, and marked done once delivered or spooled: what a kill -9 takes out
of the queue, or out of a send in flight, goes to the spool at the next start (at least once).
"""

from __future__ import annotations

import json
import os
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from dockward.errors import ConfigError
from dockward.monitor.alert import Alert
from dockward.monitor.sinks import Sink, SinkError
from dockward.notify.spool import Spool

BATCH = 200


@dataclass
class OutputStats:
    delivered: int = 0
    spooled: int = 0
    dropped: int = 0
    failures: int = 0
    last_error: str = ""


class Journal:
    """The alerts an output holds in memory, on disk: one append-only file of `+SEQ JSON`
    lines, and `-SEQ,SEQ,...` lines for the ones delivered or spooled. Emptied whenever nothing
    is pending, and rewritten with only the pending ones when it passes `compact_bytes` (an
    output that is slow but never idle), so it stays about as small as the queue. Appended
    without fsync: it outlives the process (a kill -9, an OOM kill), not the machine - a power
    cut takes the last alerts, as it takes any buffer. A write that fails (disk full) leaves
    that alert unjournaled, never stops detection."""

    NAME = "journal"

    def __init__(self, directory: Path, compact_bytes: int = 8 << 20) -> None:
        self.path = directory / self.NAME
        self.compact_bytes = compact_bytes
        self._lock = threading.Lock()
        self._seq = 0
        self._pending: dict[int, bytes] = {}  # what the file must still bring back
        self._size = 0
        self._fd = -1

    def recover(self) -> list[str]:
        """The alerts an earlier process left pending, oldest first; then start empty."""
        try:
            text = self.path.read_bytes().decode("utf-8", "replace")
        except FileNotFoundError:
            text = ""
        entries: dict[int, str] = {}
        for line in text.split("\n"):
            if line.startswith("+"):
                seq, _, doc = line[1:].partition(" ")
                if seq.isdigit() and doc:
                    entries[int(seq)] = doc
            elif line.startswith("-"):
                for seq in line[1:].split(","):
                    if seq.isdigit():
                        entries.pop(int(seq), None)
        try:
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        except OSError as exc:
            raise ConfigError(f"spool directory {self.path.parent}: {exc.strerror}") from exc
        return [entries[k] for k in sorted(entries)]

    def clear(self) -> None:
        """What `recover` returned is safe elsewhere (the spool): forget it."""
        with self._lock:
            os.ftruncate(self._fd, 0)
            self._size = 0

    def add(self, doc: str) -> int:
        """Journal one alert (a one-line JSON document); its sequence number, 0 when unwritten."""
        with self._lock:
            self._seq += 1
            line = b"+%d %s\n" % (self._seq, doc.encode("utf-8"))
            try:
                os.write(self._fd, line)
            except OSError:
                return 0
            self._size += len(line)
            self._pending[self._seq] = line
            return self._seq

    def done(self, seqs: Sequence[int]) -> None:
        """These alerts are delivered or spooled."""
        with self._lock:
            seqs = [s for s in seqs if self._pending.pop(s, None) is not None]
            if not seqs:
                return
            try:
                if not self._pending:
                    os.ftruncate(self._fd, 0)  # nothing left in memory: nothing to remember
                    self._size = 0
                elif self._size > self.compact_bytes:
                    self._compact()
                else:
                    line = ("-" + ",".join(map(str, seqs)) + "\n").encode()
                    os.write(self._fd, line)
                    self._size += len(line)
            except OSError:
                pass  # at worst, delivered alerts come back once more after a crash

    def _compact(self) -> None:
        """Rewrite the file with the pending entries alone (replaced whole: a crash in the
        middle leaves the old file, which brings back the same alerts)."""
        tmp = self.path.with_name(self.NAME + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND, 0o600)
        try:
            data = b"".join(self._pending[k] for k in sorted(self._pending))
            os.write(fd, data)
            os.replace(tmp, self.path)
        except OSError:
            os.close(fd)
            raise
        os.close(self._fd)
        self._fd, self._size = fd, len(data)

    def close(self) -> None:
        with self._lock:
            if self._fd >= 0:
                os.close(self._fd)
                self._fd = -1


class OutputWorker:
    def __init__(
        self,
        sink: Sink,
        spool: Spool,
        queue_size: int = 10000,
        on_drop: Callable[[str, int], None] | None = None,
        backoff_min: float = 0.2,
        backoff_max: float = 30.0,
    ) -> None:
        self.sink = sink
        self.name = sink.name
        self.spool = spool
        self.queue: queue.Queue[tuple[int, Alert]] = queue.Queue(maxsize=queue_size)
        self.stats = OutputStats()
        self.on_drop = on_drop
        self.journal = Journal(spool.dir)
        # A crashed run's queue, behind what it had spooled; a full spool drops as ever.
        self._spool_docs(self.journal.recover())
        self.journal.clear()
        self.backoff_min = backoff_min
        self.backoff_max = backoff_max
        self._backoff = backoff_min
        self._retry_at = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"output {self.name}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def submit(self, alert: Alert, doc: str = "") -> None:
        """Hand one alert to this output (`doc`: its JSON, when the caller has it already)."""
        seq = self.journal.add(doc or alert.to_json())
        try:
            self.queue.put_nowait((seq, alert))
        except queue.Full:
            self._spill([(seq, alert)])

    def _spill(self, batch: list[tuple[int, Alert]]) -> None:
        self._spool([a for _, a in batch])
        self.journal.done([s for s, _ in batch])

    def _spool(self, alerts: list[Alert]) -> None:
        self._spool_docs([a.to_json() for a in alerts])

    def _spool_docs(self, docs: list[str]) -> None:
        for doc in docs:
            if self.spool.put(doc):
                self.stats.spooled += 1
            else:
                self.stats.dropped += 1
                if self.on_drop is not None:
                    self.on_drop(self.name, self.stats.dropped)

    def _failed(self, exc: SinkError) -> None:
        self.stats.failures += 1
        self.stats.last_error = str(exc)
        self._retry_at = time.monotonic() + self._backoff
        self._backoff = min(self._backoff * 2, self.backoff_max)

    def _drain_spool(self) -> bool:
        """Deliver spooled alerts oldest first; False when the sink is still down."""
        while len(self.spool):
            items = self.spool.oldest(BATCH)
            if not items:
                return True
            alerts: list[Alert] = []
            for _, text in items:
                try:
                    alerts.append(Alert.from_dict(json.loads(text)))
                except (ValueError, TypeError):
                    self.stats.dropped += 1
            try:
                if alerts:
                    self.sink.send(alerts)
            except SinkError as exc:
                self._failed(exc)
                return False
            for name, _ in items:
                self.spool.remove(name)
            self.stats.delivered += len(alerts)
            if self._stop.is_set() and time.monotonic() > self._deadline:
                return False
        self._backoff = self.backoff_min
        return True

    def _take(self, timeout: float) -> list[tuple[int, Alert]]:
        try:
            first = self.queue.get(timeout=timeout)
        except queue.Empty:
            return []
        batch = [first]
        while len(batch) < BATCH:
            try:
                batch.append(self.queue.get_nowait())
            except queue.Empty:
                break
        return batch

    _deadline = float("inf")
    _inflight: list[tuple[int, Alert]] = []  # being sent (spooled if stop finds it stuck)

    def _run(self) -> None:
        while True:
            stopping = self._stop.is_set()
            if len(self.spool) and time.monotonic() >= self._retry_at:
                self._drain_spool()
            batch = self._take(0.0 if stopping else 0.1)
            if not batch:
                if stopping:
                    return
                continue
            if len(self.spool) or time.monotonic() < self._retry_at:
                # Behind older spooled alerts (or the sink is known down): keep the order.
                self._spill(batch)
                continue
            self._inflight = batch
            try:
                self.sink.send([a for _, a in batch])
                self.stats.delivered += len(batch)
                self._backoff = self.backoff_min
                self.journal.done([s for s, _ in batch])
            except SinkError as exc:
                self._failed(exc)
                self._spill(batch)
            finally:
                self._inflight = []
            if stopping and time.monotonic() > self._deadline:
                self._spill(self._take_all())
                return

    def _take_all(self) -> list[tuple[int, Alert]]:
        out: list[tuple[int, Alert]] = []
        while True:
            try:
                out.append(self.queue.get_nowait())
            except queue.Empty:
                return out

    def stop(self, flush_timeout: float = 5.0) -> None:
        """Deliver what is queued within the timeout; the rest stays in the spool for next time."""
        self._deadline = time.monotonic() + flush_timeout
        self._stop.set()
        if self._thread.ident is not None:  # not started: what is queued goes to the spool
            self._thread.join(flush_timeout + 1.0)
        if self._thread.is_alive():
            # Still in a slow send: the batch it holds is spooled too (at least once: a
            # receiver may get some of it twice, none is lost).
            self._spill(list(self._inflight))
        self._spill(self._take_all())
        self.sink.close()
        self.journal.close()


class Dispatcher:
    """Fans every alert out to every output worker."""

    def __init__(self, workers: list[OutputWorker]) -> None:
        self.workers = workers

    def start(self) -> None:
        for w in self.workers:
            w.start()

    def submit(self, alert: Alert) -> None:
        doc = alert.to_json()  # once, for every output's journal
        for w in self.workers:
            w.submit(alert, doc)

    def stop(self, flush_timeout: float = 5.0) -> None:
        for w in self.workers:
            w.stop(flush_timeout)

    def stats(self) -> dict[str, OutputStats]:
        return {w.name: w.stats for w in self.workers}
