"""Benchmark: what the proxy adds per request, and its throughput, against the direct socket
and docker-socket-proxy's HAProxy configuration.

    .venv/bin/python bench/proxy_bench.py [--requests 2000] [--concurrency 1,32] [--logs-mb 1024]

Targets: direct /var/run/docker.sock; `dockward proxy` (docker-socket-proxy variables,
CONTAINERS=1, decision log to a file) on a unix socket and on TCP; Debian `haproxy` with
docker-socket-proxy's haproxy.cfg (bench/proxy_haproxy.cfg) on TCP. Each client process keeps
one HTTP/1.1 connection and sends requests back to back.
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing as mp
import os
import queue
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
DOCKER = "/var/run/docker.sock"
PREFIX = "dwproxy-bench"
DW_TCP = 15620
HAPROXY_TCP = 15621
BASE_TCP = 15622


class UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str) -> None:
        super().__init__("docker")
        self.path = path

    def connect(self) -> None:
        s = socket.socket(socket.AF_UNIX)
        s.connect(self.path)
        self.sock = s


def connection(target: str) -> http.client.HTTPConnection:
    if target.startswith("unix://"):
        return UnixConnection(target.removeprefix("unix://"))
    host, port = target.removeprefix("tcp://").split(":")
    c = http.client.HTTPConnection(host, int(port))
    c.connect()
    c.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return c


def worker(target: str, path: str, n: int, start: Any, out: Any) -> None:
    conn = connection(target)
    for _ in range(20):  # warm up
        conn.request("GET", path)
        conn.getresponse().read()
    lat: list[float] = []
    start.wait()
    for _ in range(n):
        t0 = time.perf_counter()
        conn.request("GET", path)
        r = conn.getresponse()
        r.read()
        lat.append(time.perf_counter() - t0)
        if r.status != 200:
            raise SystemExit(f"{target}{path}: HTTP {r.status}")
    out.put(lat)


def run_load(target: str, path: str, clients: int, n: int) -> dict[str, float]:
    ctx = mp.get_context("fork")
    start, out = ctx.Event(), ctx.Queue()
    procs = [ctx.Process(target=worker, args=(target, path, n, start, out)) for _ in range(clients)]
    for p in procs:
        p.start()
    time.sleep(0.5)
    t0 = time.perf_counter()
    start.set()
    lat: list[float] = []
    for _ in procs:
        while True:  # a client that died (the daemon went away) must not hang the run
            try:
                lat += out.get(timeout=1)
                break
            except queue.Empty:
                dead = [p for p in procs if p.exitcode not in (None, 0)]
                if dead:
                    for p in procs:
                        p.kill()
                    raise SystemExit(
                        f"{target}{path}: a client failed (exit {dead[0].exitcode})"
                    ) from None
    wall = time.perf_counter() - t0
    for p in procs:
        p.join()
    lat.sort()
    return {
        "rps": len(lat) / wall,
        "p50_ms": lat[len(lat) // 2] * 1000,
        "p99_ms": lat[int(len(lat) * 0.99)] * 1000,
        "mean_ms": statistics.fmean(lat) * 1000,
    }


def _stat(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process and its live children (dockward's workers): their own cost,
    whatever else the machine is doing."""
    total = 0
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            fields = _stat(int(d.name))
        except OSError:
            continue
        if int(d.name) == pid or int(fields[1]) == pid:
            total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def wait_port(host: str, port: int) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            socket.create_connection((host, port), 0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"nothing listens on {host}:{port}")


def start_dockward(
    tmp: Path, src: Path = REPO / "src", name: str = "dw", port: int = DW_TCP
) -> subprocess.Popen[bytes]:
    env = dict(os.environ, PYTHONPATH=str(src), CONTAINERS="1", LOG_LEVEL="info")
    sock = tmp / f"{name}.sock"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "dockward",
            "proxy",
            "--listen",
            f"unix://{sock}",
            "--listen",
            f"tcp://127.0.0.1:{port}",
            "--log",
            str(tmp / f"{name}-decisions.jsonl"),
        ],
        env=env,
        stderr=subprocess.DEVNULL,
    )
    wait_port("127.0.0.1", port)
    return proc


def start_haproxy(tmp: Path) -> subprocess.Popen[bytes] | None:
    binary = shutil.which("haproxy") or (
        "/usr/sbin/haproxy" if os.path.exists("/usr/sbin/haproxy") else None
    )
    if binary is None:
        print(
            "haproxy not installed: skipping that column (scripts/setup.sh --test installs it)",
            file=sys.stderr,
        )
        return None
    env = dict(
        os.environ,
        CONTAINERS="1",
        EVENTS="1",
        PING="1",
        VERSION="1",
        POST="0",
        LOG_LEVEL="info",
        SOCKET_PATH=DOCKER,
        BIND=f"127.0.0.1:{HAPROXY_TCP}",
        PIDFILE=str(tmp / "haproxy.pid"),
    )
    proc = subprocess.Popen(
        [binary, "-db", "-f", str(REPO / "bench" / "proxy_haproxy.cfg")],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wait_port("127.0.0.1", HAPROXY_TCP)
    return proc


def log_container(mb: int) -> str:
    import docker

    api = docker.APIClient(base_url=f"unix://{DOCKER}", version="1.41")
    for c in api.containers(all=True, filters={"label": f"dockward.test={PREFIX}"}):
        api.remove_container(c["Id"], force=True)
    line = "0123456789abcdefghijklmnopqrstuvwxyz" * 3
    cid = api.create_container(
        "dockward-lab/busybox:1.0",
        ["sh", "-c", f"yes {line} | head -c {mb * 1024 * 1024}"],
        labels={"dockward.test": PREFIX},
    )["Id"]
    api.start(cid)
    api.wait(cid, timeout=600)
    return str(cid)


def read_logs(target: str, cid: str) -> float:
    """MB/s of the raw answer (chunk framing included), read with large recv() calls."""
    if target.startswith("unix://"):
        s = socket.socket(socket.AF_UNIX)
        s.connect(target.removeprefix("unix://"))
    else:
        host, port = target.removeprefix("tcp://").split(":")
        s = socket.create_connection((host, int(port)))
    t0 = time.perf_counter()
    s.sendall(
        f"GET /v1.41/containers/{cid}/logs?stdout=1 HTTP/1.1\r\nHost: docker\r\n"
        "Connection: close\r\n\r\n".encode()
    )
    total = 0
    while chunk := s.recv(1 << 20):
        total += len(chunk)
    wall = time.perf_counter() - t0
    s.close()
    return total / wall / (1 << 20)


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--requests", type=int, default=2000, help="requests per client")
    ap.add_argument("--concurrency", default="1,32")
    ap.add_argument("--logs-mb", type=int, default=1024, help="size of the logs stream (0: skip)")
    ap.add_argument("--json", help="write the figures to this file")
    ap.add_argument(
        "--baseline",
        metavar="SRC",
        help="also run the dockward of another source tree (e.g. `git archive` of an older "
        "commit's src/), as dockward-base, in the same run",
    )
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix=f"{PREFIX}-"))
    procs = [start_dockward(tmp)]
    targets = {
        "direct": f"unix://{DOCKER}",
        "dockward-unix": f"unix://{tmp / 'dw.sock'}",
        "dockward-tcp": f"tcp://127.0.0.1:{DW_TCP}",
    }
    pids = {"dockward-unix": procs[0].pid, "dockward-tcp": procs[0].pid}
    if args.baseline:
        base = start_dockward(tmp, Path(args.baseline).resolve(), "base", BASE_TCP)
        procs.append(base)
        targets["dockward-base-unix"] = f"unix://{tmp / 'base.sock'}"
        targets["dockward-base-tcp"] = f"tcp://127.0.0.1:{BASE_TCP}"
        pids["dockward-base-unix"] = pids["dockward-base-tcp"] = base.pid
    hap = start_haproxy(tmp)
    if hap:
        procs.append(hap)
        pids["haproxy-tcp"] = hap.pid
        targets["haproxy-tcp"] = f"tcp://127.0.0.1:{HAPROXY_TCP}"
    results: dict[str, Any] = {"requests": {}, "logs": {}}
    try:
        for path in ("/_ping", "/v1.41/containers/json"):
            for clients in (int(x) for x in args.concurrency.split(",")):
                n = args.requests if clients == 1 else max(args.requests // 4, 200)
                for name, target in targets.items():
                    key = f"{path} c={clients} {name}"
                    pid = pids.get(name)
                    cpu0 = cpu_seconds(pid) if pid else 0.0
                    results["requests"][key] = r = run_load(target, path, clients, n)
                    if pid:
                        r["proxy_cpu_us_per_req"] = (cpu_seconds(pid) - cpu0) / (n * clients) * 1e6
                    cpu = f"  proxy CPU {r['proxy_cpu_us_per_req']:.0f} us/req" if pid else ""
                    direct = results["requests"].get(f"{path} c={clients} direct")
                    if direct is not None and name != "direct":
                        r["p50_added_ms"] = r["p50_ms"] - direct["p50_ms"]
                        cpu = f"  p50 added {r['p50_added_ms']:+.3f} ms{cpu}"
                    print(
                        f"{key:48} {r['rps']:9.0f} req/s  p50 {r['p50_ms']:.3f} ms"
                        f"  p99 {r['p99_ms']:.3f} ms{cpu}",
                        flush=True,
                    )
        if args.logs_mb:
            cid = log_container(args.logs_mb)
            read_logs(targets["direct"], cid)  # warm the page cache: every target reads warm
            for name, target in targets.items():
                mbps = read_logs(target, cid)
                results["logs"][name] = mbps
                print(f"logs {args.logs_mb} MB {name:24} {mbps:8.0f} MB/s", flush=True)
    finally:
        for p in procs:
            p.send_signal(signal.SIGTERM)
            p.wait(10)
        if args.logs_mb:
            import docker

            api = docker.APIClient(base_url=f"unix://{DOCKER}", version="1.41")
            for c in api.containers(all=True, filters={"label": f"dockward.test={PREFIX}"}):
                api.remove_container(c["Id"], force=True)
        shutil.rmtree(tmp, ignore_errors=True)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
