"""Run one job over many hosts: bounded concurrency, a deadline per host, retries. A host that
fails is an error outcome for that host, never a failed run."""

from __future__ import annotations

import concurrent.futures
import multiprocessing
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from queue import Empty
from typing import Any, Generic, TypeVar

from dockward.fleet.hosts import FleetHost, gather, hosts_file, inventory
from dockward.model.finding import Result, Rule, Severity, Status

T = TypeVar("T")

UNREACHABLE = Rule(
    id="DW-N001",
    title="Host could not be audited",
    severity=Severity.HIGH,
    kind="fleet",
    remediation="Check that the engine answers at this address (socket, TLS certificates, ssh "
    "key) and that it answers within --host-timeout.",
    doc="The fleet runner could not collect this host within its deadline and retries. "
    "The run goes on with the other hosts; the host's earlier results stay in the store.",
    scored=False,
)


@dataclass(frozen=True, slots=True)
class FleetOptions:
    parallel: int = 8
    deadline: float = 300.0
    retries: int = 1
    retry_delay: float = 1.0


@dataclass(frozen=True, slots=True)
class Outcome(Generic[T]):
    host: FleetHost
    value: T | None
    error: str
    started: float
    finished: float
    attempts: int

    @property
    def ok(self) -> bool:
        return not self.error


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:500]


class _Deadline(Exception):
    pass


def _attempt(job: Callable[[FleetHost], T], host: FleetHost, timeout: float) -> T:
    """Run JOB in a daemon thread and give up on it after TIMEOUT: an engine that stops
    answering mid-collection must not hold the run (its thread ends with its API timeout)."""
    box: dict[str, object] = {}

    def target() -> None:
        try:
            box["value"] = job(host)
        except BaseException as exc:
            box["error"] = exc

    t = threading.Thread(target=target, name=f"fleet {host.name}", daemon=True)
    t.start()
    t.join(max(timeout, 0.0))
    if t.is_alive():
        raise _Deadline(f"no answer within the host deadline ({timeout:.0f} s left)")
    if "error" in box:
        raise box["error"]  # type: ignore[misc]
    return box["value"]  # type: ignore[return-value]


def _supervise(job: Callable[[FleetHost], T], host: FleetHost, opts: FleetOptions) -> Outcome[T]:
    started = time.time()
    end = time.monotonic() + opts.deadline
    error = ""
    attempts = 0
    while True:
        attempts += 1
        try:
            value = _attempt(job, host, end - time.monotonic())
            return Outcome(host, value, "", started, time.time(), attempts)
        except _Deadline as exc:
            error = str(exc)
            break
        except Exception as exc:
            error = _one_line(exc)
        if attempts > opts.retries or time.monotonic() + opts.retry_delay >= end:
            break
        time.sleep(opts.retry_delay * attempts)
    return Outcome(host, None, error or "failed", started, time.time(), attempts)


def run_fleet(
    hosts: Sequence[FleetHost], job: Callable[[FleetHost], T], opts: FleetOptions
) -> Iterator[Outcome[T]]:
    """Outcomes in the order hosts finish, at most `parallel` hosts at a time. A finished
    host's future is dropped once its outcome is handed on: nothing here holds the results of
    hosts already reported (as_completed over a list would keep every one to the end)."""
    workers = max(1, min(opts.parallel, len(hosts)))
    with concurrent.futures.ThreadPoolExecutor(workers, thread_name_prefix="fleet") as pool:
        pending = {pool.submit(_supervise, job, h, opts) for h in hosts}
        while pending:
            done, pending = concurrent.futures.wait(
                pending, return_when=concurrent.futures.FIRST_COMPLETED
            )
            while done:
                yield done.pop().result()


def run_fleet_sharded(
    hosts: Sequence[FleetHost], job: Callable[[FleetHost], T], opts: FleetOptions, workers: int
) -> Iterator[Outcome[T]]:
    """As run_fleet, with the hosts shared over WORKERS forked processes (collecting and judging
    are CPU work in Python: one process uses one core). Each outcome comes back through a queue
    when its host finishes; the hosts of a worker that dies are error outcomes."""
    if workers <= 1 or len(hosts) < 2 * workers:
        yield from run_fleet(hosts, job, opts)
        return
    ctx = multiprocessing.get_context("fork")
    # Small: a worker waits rather than buffer outcomes the parent has not taken yet.
    queue: Any = ctx.Queue(maxsize=2 * workers)
    shards = [list(hosts[i::workers]) for i in range(workers)]
    per_worker = replace(opts, parallel=max(1, opts.parallel // workers))

    def child(shard: list[FleetHost]) -> None:
        for outcome in run_fleet(shard, job, per_worker):
            queue.put(outcome)

    procs = [ctx.Process(target=child, args=(shard,), daemon=True) for shard in shards]
    for proc in procs:
        proc.start()
    reported: set[FleetHost] = set()
    try:
        while len(reported) < len(hosts):
            try:
                outcome = queue.get(timeout=0.5)
            except Empty:
                if all(p.exitcode is not None for p in procs):
                    try:
                        outcome = queue.get(timeout=2)
                    except Empty:
                        break
                else:
                    continue
            reported.add(outcome.host)
            yield outcome
        now = time.time()
        for h in hosts:
            if h not in reported:
                yield Outcome(h, None, "the worker process collecting it died", now, now, 0)
    finally:
        for proc in procs:
            if proc.is_alive():
                proc.kill()
            proc.join(5)
        queue.close()


def error_result(host: str, error: str, attempts: int) -> Result:
    return Result(
        UNREACHABLE,
        Status.ERROR,
        "host",
        f"{error} (after {attempts} attempt{'s' if attempts != 1 else ''})",
        (("error", error),),
        host,
    )


__all__ = [
    "UNREACHABLE",
    "FleetHost",
    "FleetOptions",
    "Outcome",
    "error_result",
    "gather",
    "hosts_file",
    "inventory",
    "run_fleet",
    "run_fleet_sharded",
]
