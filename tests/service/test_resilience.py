"""Services that lose the engine, the proxy or their own process: nothing lost, nothing hangs.

On the host with real processes: a `dockward proxy` killed with SIGKILL (its whole process
group, as the engine kills a container) and started again on the same unix socket; `update` and
`monitor` waiting for it with /healthz failing instead of exiting; the monitor's engine events
asked again from where the stream broke; SIGTERM in the middle of an update transaction and of
a monitor's slow output. The deployed (container) variants are in test_deployment.py.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests

from dockward.monitor.sources import _EventCursor
from tests.conftest import REPO, free_port, kill_after
from tests.conftest import until as _until
from tests.update.conftest import Registry, push, registry

__all__ = ["registry"]  # the session fixture, used here

RUN = f"dw12a{os.getpid()}"
ENV = {**os.environ, "PYTHONPATH": str(REPO / "src")}


def _exec_alerted(alerts: Path, name: str) -> bool:
    """The monitor's file output holds a "Docker exec into container" alert of container `name`."""
    if not alerts.exists():
        return False
    docs = [json.loads(x) for x in alerts.read_text().splitlines() if x.strip()]
    return any(
        d["rule"] == "Docker exec into container"
        and d.get("output_fields", {}).get("container.name") == name
        for d in docs
    )


def _dockward(*args: str, **kw: Any) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "dockward", *args], env={**ENV, **kw.pop("env", {})},
        text=True, **kw,
    )  # fmt: skip


def _healthz(port: int) -> tuple[int, dict[str, Any]]:
    try:
        r = requests.get(f"http://127.0.0.1:{port}/healthz", timeout=2)
    except requests.RequestException:
        return 0, {}
    return r.status_code, r.json()


class Proxy:
    """`dockward proxy` on a unix socket, in its own process group (a container's stand-in)."""

    def __init__(self, sock: Path, log: Path) -> None:
        self.sock = sock
        self.log = log
        self.proc: subprocess.Popen[str] | None = None

    def start(self) -> None:
        env = {"CONTAINERS": "1", "IMAGES": "1", "INFO": "1", "EXEC": "1", "EVENTS": "1"}
        with open(self.log, "a") as log:
            self.proc = _dockward("proxy", "--listen", f"unix://{self.sock}", "--workers", "1",
                                  "--log", "", env=env, stdout=log, stderr=log,
                                  start_new_session=True)  # fmt: skip
        _until(lambda: self.answers() or self.proc.poll() is not None, 30, "the proxy")  # type: ignore[union-attr]
        assert self.proc.poll() is None, self.log.read_text()

    def answers(self) -> bool:
        import socket

        try:
            with socket.socket(socket.AF_UNIX) as s:
                s.settimeout(2)
                s.connect(str(self.sock))
                s.sendall(b"GET /_ping HTTP/1.1\r\nHost: d\r\nConnection: close\r\n\r\n")
                return b" 200 " in s.recv(200)
        except OSError:
            return False

    def kill9(self) -> None:
        """SIGKILL to the whole group, as the engine kills a container: the socket file stays."""
        assert self.proc is not None
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)


@pytest.fixture
def proxy(tmp_path: Path) -> Iterator[Proxy]:
    p = Proxy(tmp_path / "proxy.sock", tmp_path / "proxy.log")
    try:
        yield p
    finally:
        p.stop()


def _json_lines(text: str) -> list[dict[str, Any]]:
    out = []
    for line in text.splitlines():
        if line.startswith("{"):
            out.append(json.loads(line))
    return out


def test_update_waits_for_the_proxy_and_survives_its_kill_9(proxy: Proxy, tmp_path: Path) -> None:
    port = free_port()
    err = tmp_path / "update.err"
    with open(err, "w") as fh:
        update = _dockward(
            "update", "--interval", "1", "--scope", f"{RUN}-none", "--host", f"unix://{proxy.sock}",
            "--metrics-listen", f"127.0.0.1:{port}", "--state-dir", str(tmp_path / "state"),
            "--vuln-gate", "off", "--rules-gate", "off", "--format", "json",
            stdout=subprocess.PIPE, stderr=fh,
        )  # fmt: skip
    watchdog = kill_after(update, 120)
    try:
        # No proxy yet: the service waits, failing /healthz, instead of exiting 2.
        _code, doc = _until(lambda: _healthz(port)[0] == 503 and _healthz(port), 30, "503")
        assert "waiting for the engine" in doc["checks"]["engine"]["detail"], doc
        proxy.start()
        _until(lambda: _healthz(port)[0] == 200, 30, "update healthy once the proxy is up")
        _until(lambda: '"event": "cycle"' in err.read_text(), 30, "a cycle logged")
        proxy.kill9()  # the socket file stays behind, nobody listens on it
        assert proxy.sock.exists()
        _until(lambda: _healthz(port)[0] == 503, 30, "update failing while the proxy is gone")
        _until(lambda: '"event": "cycle failed"' in err.read_text(), 30, "the failed cycle logged")
        assert update.poll() is None, err.read_text()
        mark = len(err.read_text())
        proxy.start()  # the same socket path: the stale socket is replaced
        _until(lambda: _healthz(port)[0] == 200, 30, "update healthy again")
        _until(lambda: '"event": "cycle"' in err.read_text()[mark:], 30, "cycles again")
        update.send_signal(signal.SIGTERM)
        out, _ = update.communicate(timeout=60)
    finally:
        watchdog.cancel()
        if update.poll() is None:
            update.kill()
    assert update.returncode == 0, err.read_text()[-2000:]
    json.loads(out)  # the run's report
    events = {e["event"] for e in _json_lines(err.read_text())}
    assert {"waiting for the engine", "cycle", "cycle failed"} <= events, events


def test_monitor_waits_for_the_proxy_and_loses_no_engine_event_across_its_kill_9(
    proxy: Proxy, tmp_path: Path, docker_api: Any, lab_image: str
) -> None:
    port = free_port()
    alerts = tmp_path / "alerts.jsonl"
    err = tmp_path / "monitor.err"
    with open(err, "w") as fh:
        monitor = _dockward(
            "monitor", "run", "--source", "docker", "--min-priority", "informational",
            "-H", f"unix://{proxy.sock}", "--metrics-listen", f"127.0.0.1:{port}",
            "-o", f"file:{alerts}", "--spool-dir", str(tmp_path / "spool"),
            stdout=subprocess.DEVNULL, stderr=fh,
        )  # fmt: skip
    watchdog = kill_after(monitor, 150)
    name = f"{RUN}-lab"
    try:
        _code, doc = _until(lambda: _healthz(port)[0] == 503 and _healthz(port), 30, "503")
        assert "Connection refused" in json.dumps(doc) or "No such file" in json.dumps(doc), doc
        proxy.start()
        _until(lambda: "monitor running" in err.read_text(), 60, "the monitor running")
        _until(lambda: _healthz(port)[0] == 200, 30, "the monitor healthy")
        c = docker_api.create_container(
            lab_image, "sleep 120", name=name, labels={"dockward.test": RUN}
        )
        docker_api.start(c["Id"])
        time.sleep(1.0)
        proxy.kill9()
        # While the proxy is down: an exec the monitor must still report once it is back.
        ex = docker_api.exec_create(c["Id"], ["sh", "-c", "true"])
        docker_api.exec_start(ex["Id"])
        time.sleep(1.0)
        proxy.start()
        _until(
            lambda: _exec_alerted(alerts, name),
            40,
            "the exec made while the proxy was down, alerted",
        )
        monitor.send_signal(signal.SIGTERM)
        monitor.wait(30)
    finally:
        watchdog.cancel()
        if monitor.poll() is None:
            monitor.kill()
        docker_api.remove_container(name, force=True) if _exists(docker_api, name) else None
    assert monitor.returncode == 0, err.read_text()[-2000:]


def _exists(api: Any, name: str) -> bool:
    try:
        api.inspect_container(name)
    except Exception:
        return False
    return True


def test_event_cursor_asks_from_the_newest_event_and_drops_repeats() -> None:
    cursor = _EventCursor(5 * 10**9)
    ev = {"Type": "container", "Action": "start", "Actor": {"ID": "a"}, "timeNano": 6 * 10**9 + 7}
    assert cursor.fresh({**ev, "timeNano": 4 * 10**9}) is False  # before the start
    assert cursor.fresh(ev) is True
    assert cursor.since() == "6.000000007"
    assert cursor.fresh(ev) is False  # asked again after a reconnect: seen
    assert cursor.fresh({**ev, "Action": "die"}) is True  # the same nanosecond, another event
    assert cursor.fresh({**ev, "timeNano": 6 * 10**9 + 8}) is True


def test_monitor_that_cannot_subscribe_to_the_proc_connector_fails_in_one_line(
    tmp_path: Path,
) -> None:
    """Root without CAP_NET_ADMIN: the proc connector refuses; the monitor, whose detector never
    started, used to crash with "cannot join thread before it is started"."""
    r = subprocess.run(
        ["setpriv", "--bounding-set=-net_admin,-audit_control,-audit_read", sys.executable,
         "-m", "dockward", "monitor", "run", "--source", "proc", "-o", "json",
         "--spool-dir", str(tmp_path / "s"), "--duration", "5"],
        env=ENV, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert r.returncode == 2, r.stderr
    assert r.stderr.startswith("dockward: error: proc connector: cannot subscribe"), r.stderr
    assert "Traceback" not in r.stderr and r.stderr.count("\n") == 1, r.stderr


class SlowReceiver:
    """A webhook that takes `delay` seconds per request and records what it got."""

    def __init__(self, delay: float) -> None:
        self.bodies: list[bytes] = []
        self.delay = delay
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                time.sleep(receiver.delay)
                receiver.bodies.append(body)
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, format: str, *args: Any) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_sigterm_puts_every_alert_not_yet_delivered_into_the_spool(tmp_path: Path) -> None:
    """A slow output at SIGTERM: the monitor delivers for --flush-timeout (5 s), then everything
    else, the batch in the middle of being sent included, is in the spool; none is lost."""
    n = 300
    receiver = SlowReceiver(0.1)  # a batch (200) takes 20 s: more than the flush gets
    falco = tmp_path / "falco.jsonl"
    falco.write_text("")
    spool = tmp_path / "spool"
    err = tmp_path / "monitor.err"
    with open(err, "w") as fh:
        monitor = _dockward(
            "monitor", "run", "--source", "proc", "--falco-input", str(falco),
            "-o", f"http://127.0.0.1:{receiver.port}/alerts", "--spool-dir", str(spool),
            stdout=subprocess.DEVNULL, stderr=fh,
        )  # fmt: skip
    watchdog = kill_after(monitor, 90)
    try:
        _until(lambda: "monitor running" in err.read_text(), 60, "the monitor running")
        with open(falco, "a") as fh:
            for i in range(n):
                doc = {"rule": f"{RUN} flush", "priority": "Warning", "output": f"flush-{i}-end",
                       "time": "2026-12-07T18:00:00.000000000Z", "output_fields": {}}  # fmt: skip
                fh.write(json.dumps(doc) + "\n")
        _until(lambda: len(receiver.bodies) >= 10, 30, "some alerts delivered")
        monitor.send_signal(signal.SIGTERM)
        monitor.wait(60)
    finally:
        watchdog.cancel()
        if monitor.poll() is None:
            monitor.kill()
        receiver.close()
    assert monitor.returncode == 0, err.read_text()[-2000:]
    marker = re.compile(rb"flush-(\d+)-end")
    delivered = {int(m) for b in receiver.bodies for m in marker.findall(b)}
    spooled = {int(m) for f in spool.rglob("*.json") for m in marker.findall(f.read_bytes())}
    assert len(delivered) < n, "the receiver got everything: the flush was not cut short"
    assert spooled, "nothing was spooled"
    assert delivered | spooled == set(range(n)), sorted(set(range(n)) - delivered - spooled)[:10]


def _falco_lines(path: Path, label: str, n: int) -> None:
    with open(path, "a") as fh:
        for i in range(n):
            doc = {"rule": f"{RUN} {label}", "priority": "Warning", "output": f"{label}-{i}-end",
                   "time": "2026-12-07T18:00:00.000000000Z", "output_fields": {}}  # fmt: skip
            fh.write(json.dumps(doc) + "\n")


def test_kill_9_loses_no_alert_the_monitor_held_in_memory(tmp_path: Path) -> None:
    """A slow webhook holds a send in flight and the queue fills behind it; kill -9 then takes
    the process with everything it held. Started again with the same output and spool
    directory (reading a fresh input: nothing is detected twice), the monitor delivers every
    alert the first one had not: each was journaled before its output saw it."""
    n = 300
    receiver = SlowReceiver(0.1)
    spool = tmp_path / "spool"
    monitors: list[subprocess.Popen[str]] = []

    def start(falco: Path, err: Path) -> subprocess.Popen[str]:
        falco.write_text("")
        with open(err, "w") as fh:
            monitors.append(_dockward(
                "monitor", "run", "--source", "proc", "--falco-input", str(falco),
                "-o", f"http://127.0.0.1:{receiver.port}/alerts", "--spool-dir", str(spool),
                stdout=subprocess.DEVNULL, stderr=fh,
            ))  # fmt: skip
        _until(lambda: "monitor running" in err.read_text(), 60, "the monitor running")
        return monitors[-1]

    try:
        first = start(tmp_path / "falco1.jsonl", tmp_path / "m1.err")
        _falco_lines(tmp_path / "falco1.jsonl", "held", n)
        _until(lambda: len(receiver.bodies) >= 5, 30, "some alerts delivered")
        first.kill()
        first.wait(30)
        early = len(receiver.bodies)
        receiver.delay = 0.0
        start(tmp_path / "falco2.jsonl", tmp_path / "m2.err")
        marker = re.compile(rb"held-(\d+)-end")

        def delivered() -> set[int]:
            return {int(m) for b in list(receiver.bodies) for m in marker.findall(b)}

        try:
            _until(lambda: delivered() == set(range(n)), 60, "every alert delivered")
        except AssertionError as exc:
            missing = sorted(set(range(n)) - delivered())
            left = sorted(p.name for p in spool.rglob("*"))
            raise AssertionError(
                f"{exc}: {len(missing)} missing ({missing[:10]}...); spool {left[:10]}; "
                f"{(tmp_path / 'm2.err').read_text()[-1500:]}"
            ) from None
    finally:
        for m in monitors:
            if m.poll() is None:
                m.kill()
                m.wait(30)
        receiver.close()
    assert early < n / 2, "the first monitor delivered most: too little was held to prove much"


def _version(docker_api: Any, v: int) -> str:
    """Images of this run's own (the update tests' shared lab tags are rebuilt and removed by
    their concurrent runs)."""
    from dockward.engine.lab import build_busybox_image

    extra = f'RUN ["/bin/busybox", "sh", "-c", "echo {v} > /v"]'
    return build_busybox_image(docker_api, f"{RUN}/app:v{v}", extra=extra)


@pytest.mark.parametrize("step", ["stopped", "renamed"])
def test_sigterm_in_the_middle_of_an_update_transaction_lets_it_finish(
    registry: Registry, docker_api: Any, tmp_path: Path, step: str
) -> None:
    """SIGTERM right after a step (the old container stopped, or renamed to its backup): update
    does not stop between two steps; it creates, starts and health-gates the new one, removes
    the backup and exits 0 with its report. Read from the engine: one container of the name,
    on v2."""
    v1, v2 = _version(docker_api, 1), _version(docker_api, 2)
    repo, name = f"{RUN}/sigterm-{step}", f"{RUN}-sigterm-{step}"
    push(docker_api, v1, registry, repo, "stable")
    c = docker_api.create_container(
        registry.ref(repo, "stable"), "sleep 300", name=name,
        labels={"dockward.test": RUN, "dockward.update": "true"},
    )  # fmt: skip
    docker_api.start(c["Id"])
    push(docker_api, v2, registry, repo, "stable")
    state = tmp_path / "state"
    update = _dockward(
        "update", name, "--interval", "3600", "--progress", "--state-dir", str(state),
        "--stop-timeout", "1", "--min-uptime", "3", "--rules-gate", "off", "--vuln-gate", "off",
        "--format", "json", "--host", "unix:///var/run/docker.sock",
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    watchdog = kill_after(update, 120)
    lines: list[str] = []
    try:
        assert update.stderr is not None
        for line in update.stderr:
            lines.append(line)
            if line.strip().endswith(f"{name}: {step}"):
                update.send_signal(signal.SIGTERM)
                break
        else:
            raise AssertionError(f"no `{step}` step: " + "".join(lines)[-3000:])
        out, err = update.communicate(timeout=90)
        lines.append(err)
        log = "".join(lines)
        assert update.returncode == 0, log[-3000:]
        assert f"{name}: healthy" in log, log[-3000:]  # the steps after SIGTERM ran
        json.loads(out)  # the run's report
        assert list(state.glob("*.json")) == []  # nothing left in the journal
        ours = docker_api.containers(all=True, filters={"label": f"dockward.test={RUN}"})
        names = [n for x in ours for n in x["Names"] if n.startswith(f"/{name}")]
        assert names == [f"/{name}"], names  # no backup left, nothing lost
        now = docker_api.inspect_container(name)
        assert now["Id"] != c["Id"] and now["Image"] == v2 and now["State"]["Running"]
    finally:
        watchdog.cancel()
        if update.poll() is None:
            update.kill()
        with contextlib.suppress(Exception):
            docker_api.remove_container(name, force=True)
        for image in (v1, v2):
            with contextlib.suppress(Exception):
                docker_api.remove_image(image, force=True)


def test_a_scheduled_run_that_cannot_reach_the_engine_is_retried_before_its_next_time() -> None:
    """An hourly audit whose run found the proxy restarting is not left failing for an hour."""
    from dockward.errors import ConnectionFailed
    from dockward.model.finding import Report
    from dockward.service.reports import run_on_schedule
    from dockward.update.schedule import Schedule

    stop = threading.Event()
    calls: list[float] = []
    outcomes: list[str] = []

    def once() -> Report:
        calls.append(time.monotonic())
        if len(calls) <= 2:
            raise ConnectionFailed("cannot reach the Docker daemon")
        return Report("audit", ())

    def after(report: Report | None, _duration: float, error: str) -> None:
        outcomes.append("ok" if report is not None else error)

    t = threading.Thread(
        target=run_on_schedule,
        args=(Schedule.parse(3600, None), stop, once, after, 0.05, 1.0),
        daemon=True,
    )
    t.start()
    t.join(2)
    still_waiting = t.is_alive()  # after a successful run: the hour
    stop.set()
    t.join(5)
    assert len(calls) == 3 and outcomes[:2] == ["cannot reach the Docker daemon"] * 2, outcomes
    assert outcomes[2] == "ok"
    assert calls[2] - calls[0] < 2.0  # retried within the backoff, not the hour
    assert still_waiting


def test_a_monitor_killed_and_started_again_alerts_on_engine_events_of_its_downtime(
    tmp_path: Path, docker_api: Any, lab_image: str
) -> None:
    """The docker source's position is kept beside the spool: a restarted monitor asks the
    engine for what happened while it was down (here: an exec), not only from its start on."""
    alerts = tmp_path / "alerts.jsonl"
    spool = tmp_path / "spool"
    name = f"{RUN}-down-lab"
    args = ("monitor", "run", "--source", "docker", "--min-priority", "informational",
            "-H", "unix:///var/run/docker.sock", "-o", f"file:{alerts}", "--spool-dir", str(spool))  # fmt: skip

    def start() -> tuple[subprocess.Popen[str], Path]:
        err = tmp_path / f"monitor-{time.monotonic_ns()}.err"
        with open(err, "w") as fh:
            proc = _dockward(*args, stdout=subprocess.DEVNULL, stderr=fh)
        _until(lambda: "monitor running" in err.read_text(), 60, "the monitor running")
        return proc, err

    first, _ = start()
    watchdog = kill_after(first, 120)
    second = None
    try:
        c = docker_api.create_container(lab_image, "sleep 120", name=name,
                                        labels={"dockward.test": RUN})  # fmt: skip
        docker_api.start(c["Id"])
        _until(lambda: alerts.exists() or (spool / "docker-events.cursor").exists(), 20, "events")
        time.sleep(1.5)
        first.kill()  # SIGKILL: no flush, no goodbye
        first.wait(10)
        ex = docker_api.exec_create(c["Id"], ["sh", "-c", "true"])
        docker_api.exec_start(ex["Id"])
        time.sleep(1.0)
        second, err = start()
        _until(
            lambda: _exec_alerted(alerts, name),
            30,
            "the exec made while the monitor was down, alerted",
        )
        second.send_signal(signal.SIGTERM)
        second.wait(30)
        assert second.returncode == 0, err.read_text()[-2000:]
    finally:
        watchdog.cancel()
        for proc in (first, second):
            if proc is not None and proc.poll() is None:
                proc.kill()
        with contextlib.suppress(Exception):
            docker_api.remove_container(name, force=True)
