"""Benchmark notifications: latency from an update's end and from a monitor alert to a local
receiver, and the updater's cycle time with 100 containers and 10 notification destinations.

    .venv/bin/python bench/notify_bench.py [--messages 200] [--containers 100] [--images 10]
                                           [--destinations 10] [--cycles 5] [--no-docker]

Anchors in the same run: a direct `requests.post` to the same receiver (latency), the monitor's
own webhook output (alert latency), and the same cycle without destinations (cycle time).
The cycle part starts its own `docker-registry` on 127.0.0.1:15832 and 100 busybox containers
(label dockward.test=dwnotify-bench, removed at the end).
"""

from __future__ import annotations

import argparse
import signal
import statistics
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

import requests
from tests.notify.receivers import Behaviour, Receiver

from dockward.monitor.alert import Alert
from dockward.monitor.dispatch import OutputWorker
from dockward.monitor.loader import Priority
from dockward.monitor.sinks import HttpSink, NotifySink
from dockward.notify import Note, build
from dockward.notify.spool import Spool

PORT = 15832
LABEL = {"dockward.test": "dwnotify-bench"}
SCOPE = "dwnotify-bench"


def _stats(xs: list[float]) -> str:
    xs = sorted(xs)
    p95 = xs[min(len(xs) - 1, int(len(xs) * 0.95))]
    return f"median {statistics.median(xs) * 1000:.2f} ms, p95 {p95 * 1000:.2f} ms"


def _arrival(rx: Receiver, n: int, timeout: float = 10.0) -> float:
    deadline = time.monotonic() + timeout
    while len(rx.behaviour.requests) < n:
        if time.monotonic() > deadline:
            raise RuntimeError("receiver did not get the message")
        time.sleep(0.0002)
    return time.monotonic()


def update_latency(messages: int) -> None:
    note = Note("dockward update: 1 updated", "- web (reg/web:1): updated\n", "success", {})
    urls = {
        "json:// (Apprise)": "json://127.0.0.1:{p}/hook",
        "ntfy://": "ntfy://127.0.0.1:{p}/updates?scheme=http",
        "gotify://": "gotify://127.0.0.1:{p}/Atoken?disabletls=yes",
        "mmost:// (Mattermost)": "mmost://127.0.0.1:{p}/hooktoken",
        "http:// (dockward JSON)": "http://127.0.0.1:{p}/dw",
    }
    with Receiver() as rx:
        anchor = []
        for i in range(messages):
            t = time.monotonic()
            requests.post(f"http://127.0.0.1:{rx.port}/direct", json={"i": i}, timeout=5).close()
            anchor.append(_arrival(rx, i + 1) - t)
        base = statistics.median(anchor)
        print(f"anchor: direct requests.post to the receiver: {_stats(anchor)}")
    for label, url in urls.items():
        with Receiver() as rx:
            n = build([url.format(p=rx.port)], None).start()
            lat = []
            for i in range(messages):
                t = time.monotonic()
                n.submit(note)  # what the updater does at a cycle's end
                lat.append(_arrival(rx, i + 1) - t)
            n.stop(2.0)
        print(
            f"update end -> {label} receiver: {_stats(lat)} "
            f"({statistics.median(lat) / base:.1f}x the direct POST)"
        )


def _alert(i: int) -> Alert:
    return Alert(
        str(uuid.uuid4()),
        time.time_ns(),
        "Terminal shell in container",
        Priority.WARNING,
        f"A shell was spawned in a container (n={i})",
        "syscall",
        ("container", "shell"),
        "bench-host",
        {"id": "0123456789ab", "name": "web"},
    )


def alert_latency(messages: int, spool_root: Path) -> None:
    results: dict[str, float] = {}
    for label, make in (
        ("monitor webhook output (anchor)", lambda p: HttpSink(f"http://127.0.0.1:{p}/a")),
        (
            "ntfy:// via the notification layer",
            lambda p: NotifySink(f"ntfy://127.0.0.1:{p}/a?scheme=http", 0),
        ),
        ("json:// via the notification layer", lambda p: NotifySink(f"json://127.0.0.1:{p}/a", 0)),
    ):
        with Receiver() as rx:
            sink: Any = make(rx.port)
            worker = OutputWorker(sink, Spool(spool_root / label.split()[0].strip(":/")))
            worker.start()
            lat = []
            for i in range(messages):
                t = time.monotonic()
                worker.submit(_alert(i))
                lat.append(_arrival(rx, i + 1) - t)
            worker.stop(2.0)
        results[label] = statistics.median(lat)
        anchor = results.get("monitor webhook output (anchor)", statistics.median(lat))
        print(f"alert -> {label}: {_stats(lat)} ({statistics.median(lat) / anchor:.1f}x)")


def _push(client: Any, image: str, target: str, tag: str) -> None:
    client.tag(image, target, tag, force=True)
    for chunk in client.push(target, tag, stream=True, decode=True):
        if "error" in chunk:
            raise RuntimeError(chunk["error"])


def _cleanup(client: Any) -> None:
    found = client.containers(all=True, filters={"label": "dockward.test=dwnotify-bench"})
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda c: client.remove_container(c["Id"], force=True), found))


def cycle_time(containers: int, images: int, destinations: int, cycles: int) -> None:
    from tests.update.conftest import _start_registry, _stop, build_version

    from dockward.engine import connect, resolve_endpoint
    from dockward.notify.gotemplate import Template
    from dockward.update import (
        CycleOptions,
        Journal,
        RegistryClient,
        Selection,
        UpdateOptions,
        Updater,
        run_cycle,
    )
    from dockward.update.notify import WATCHTOWER_PORCELAIN, render_template

    client = connect(resolve_endpoint(), timeout=300)
    _cleanup(client)
    proc, root = _start_registry(PORT)
    host = f"127.0.0.1:{PORT}"
    try:
        v1 = build_version(client, "v1")
        refs = []
        for i in range(images):
            _push(client, v1, f"{host}/nbench/app{i}", "stable")
            refs.append(f"{host}/nbench/app{i}:stable")

        def run_one(n: int) -> None:
            c = client.create_container(
                refs[n % len(refs)],
                name=f"dwnotify-bench-{n:03d}",
                labels={**LABEL, "dockward.update.scope": SCOPE},
                host_config=client.create_host_config(network_mode="none"),
                healthcheck={"Test": ["NONE"]},
            )
            client.start(c["Id"])

        with ThreadPoolExecutor(8) as pool:
            list(pool.map(run_one, range(containers)))
        options = CycleOptions(selection=Selection(all=True, scope=SCOPE))
        template = Template(WATCHTOWER_PORCELAIN)  # a message every cycle (100 lines)
        kinds = ["json://127.0.0.1:{p}/h", "ntfy://127.0.0.1:{p}/t?scheme=http", "gotify://127.0.0.1:{p}/Tok?disabletls=yes",
                 "mmost://127.0.0.1:{p}/hook", "http://127.0.0.1:{p}/dw"]  # fmt: skip
        receivers = [Receiver(Behaviour(delay=0.0)) for _ in range(destinations)]
        # One destination answers slowly (2 s): the cycle must not wait for it.
        if receivers:
            receivers[-1].behaviour.delay = 2.0
        for r in receivers:
            r.__enter__()
        state = Path(tempfile.mkdtemp(prefix="dwnotify-bench-state-"))
        try:
            with Journal(state).locked() as journal:
                updater = Updater(client, journal, UpdateOptions())
                run_cycle(client, RegistryClient(), updater, options)  # warm-up, not timed
                for label, count in (
                    ("no destinations (anchor)", 0),
                    ("destinations", destinations),
                ):
                    urls = [
                        kinds[i % len(kinds)].format(p=r.port)
                        for i, r in enumerate(receivers[:count])
                    ]
                    notes = build(urls, None).start()
                    times, delivered = [], []
                    for _ in range(cycles):
                        before = [len(r.behaviour.requests) for r in receivers[:count]]
                        t = time.monotonic()
                        cycle = run_cycle(client, RegistryClient(), updater, options)
                        notes.submit(render_template(template, cycle, "bench", "bench", True))
                        end = time.monotonic()
                        times.append(end - t)
                        fast = [r for r in receivers[: max(0, count - 1)]]
                        for r, b in zip(fast, before, strict=False):
                            while len(r.behaviour.requests) <= b:
                                time.sleep(0.001)
                        delivered.append(time.monotonic() - end)
                        assert len(cycle.events) == containers
                    notes.stop(5.0)
                    if count == 0:
                        anchor = statistics.median(times)
                        print(
                            f"update cycle, {containers} containers / {images} images, "
                            f"{label}: median {anchor:.3f}s"
                        )
                    else:
                        med = statistics.median(times)
                        print(
                            f"update cycle, {containers} containers, {count} {label} (one answering "
                            f"in 2 s): median {med:.3f}s ({med / anchor:.2f}x); the {count - 1} "
                            f"fast ones had the message {statistics.median(delivered) * 1000:.1f} ms "
                            "after the cycle ended"
                        )
        finally:
            for r in receivers:
                r.__exit__()
    finally:
        _cleanup(client)
        _stop(proc, root)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--messages", type=int, default=200)
    ap.add_argument("--containers", type=int, default=100)
    ap.add_argument("--images", type=int, default=10)
    ap.add_argument("--destinations", type=int, default=10)
    ap.add_argument("--cycles", type=int, default=5)
    ap.add_argument("--no-docker", action="store_true", help="latency parts only")
    args = ap.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    update_latency(args.messages)
    alert_latency(args.messages, Path(tempfile.mkdtemp(prefix="dwnotify-bench-spool-")))
    if not args.no_docker:
        cycle_time(args.containers, args.images, args.destinations, args.cycles)


if __name__ == "__main__":
    main()
