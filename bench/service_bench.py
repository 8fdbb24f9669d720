"""Benchmark: dockward in its container vs on the host, same machine, same run.

    .venv/bin/python bench/service_bench.py [--image dockward:local] [--requests 300] [--execs 10]

- image size (`docker image inspect`), and with --build the time of scripts/build-image.sh;
- proxy: added latency of `GET /containers/json?limit=1`, one keep-alive connection, requests
  back to back: direct engine socket (anchor) vs `dockward proxy --workers 1` on the host vs the
  same in the image (engine socket mounted, its socket in a bind-mounted directory);
- monitor: `docker exec` of a shell with a tty in a lab container until the alert line is in the
  monitor's file output (docker source), on the host vs in the image.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import socket
import statistics
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
DOCKER = "/var/run/docker.sock"
PREFIX = "dw12bench"
LAB = "dockward-lab/busybox:1.0"


class UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str) -> None:
        super().__init__("docker")
        self.unix_path = path

    def connect(self) -> None:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(self.unix_path)
        self.sock = s


def _wait_socket(path: Path, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if path.exists():
            try:
                c = UnixConnection(str(path))
                c.request("GET", "/_ping")
                if c.getresponse().status == 200:
                    c.close()
                    return
            except OSError:
                pass
        time.sleep(0.1)
    raise SystemExit(f"no proxy at {path}")


def latencies(path: str, n: int) -> list[float]:
    c = UnixConnection(path)
    out = []
    for _ in range(n + 20):
        t = time.perf_counter()
        c.request("GET", "/containers/json?limit=1")
        r = c.getresponse()
        r.read()
        assert r.status == 200, r.status
        out.append((time.perf_counter() - t) * 1000)
    c.close()
    return out[20:]  # warm-up left out


def stats(ms: list[float]) -> dict[str, float]:
    if not ms:
        return {}  # nothing arrived: printed as such
    ms = sorted(ms)
    return {
        "median_ms": round(statistics.median(ms), 3),
        "p95_ms": round(ms[int(len(ms) * 0.95)], 3),
    }


def docker(*args: str, check: bool = True) -> str:
    return subprocess.run(["docker", *args], check=check, capture_output=True, text=True).stdout


def bench_proxy(image: str, n: int, work: Path) -> dict[str, Any]:
    gid = os.stat(DOCKER).st_gid
    host_sock = work / "host.sock"
    env = {**os.environ, "CONTAINERS": "1"}
    host = subprocess.Popen(
        [str(REPO / ".venv/bin/dockward"), "proxy", "--workers", "1", "--log", "",
         "--listen", f"unix://{host_sock}"],
        env=env, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    cdir = work / "c"
    cdir.mkdir()
    os.chown(cdir, 10001, 10001)
    name = f"{PREFIX}-proxy"
    docker("rm", "-f", name, check=False)
    docker("run", "-d", "--name", name, "--label", f"dockward.test={PREFIX}", "--user", "10001:10001",
           "--group-add", str(gid), "--read-only", "--tmpfs", "/tmp", "--cap-drop", "ALL", "--security-opt",
           "no-new-privileges", "-e", "CONTAINERS=1", "-v", f"{DOCKER}:{DOCKER}", "-v", f"{cdir}:/run/dockward",
           image, "proxy", "--workers", "1", "--log", "", "--listen", "unix:///run/dockward/p.sock")  # fmt: skip
    try:
        _wait_socket(host_sock)
        _wait_socket(cdir / "p.sock")
        direct, on_host, in_container = [], [], []
        for _ in range(3):  # interleaved rounds: the machine's load hits all three alike
            direct += latencies(DOCKER, n // 3)
            on_host += latencies(str(host_sock), n // 3)
            in_container += latencies(str(cdir / "p.sock"), n // 3)
        d, h, c = stats(direct), stats(on_host), stats(in_container)
        return {
            "direct": d, "host_proxy": h, "container_proxy": c,
            "added_median_ms_host": round(h["median_ms"] - d["median_ms"], 3),
            "added_median_ms_container": round(c["median_ms"] - d["median_ms"], 3),
        }  # fmt: skip
    finally:
        host.terminate()
        host.wait(30)
        docker("rm", "-f", name, check=False)


def _alert_latency(alerts: Path, lab: str, runs: int) -> list[float]:
    import docker as dockerpy

    api = dockerpy.APIClient(base_url=f"unix://{DOCKER}")
    out = []
    for i in range(runs):
        seen = alerts.read_text().count("\n") if alerts.exists() else 0
        ex = api.exec_create(lab, ["sh", "-c", f"echo {PREFIX}-{i}"], tty=True, stdin=True)
        t = time.perf_counter()
        api.exec_start(ex["Id"])
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if alerts.exists() and alerts.read_text().count("\n") > seen:
                out.append((time.perf_counter() - t) * 1000)
                break
            time.sleep(0.002)
        time.sleep(1.2)  # past the throttle's and the rule's per-container windows
    api.close()
    return out


def bench_monitor(image: str, runs: int, work: Path) -> dict[str, Any]:
    lab = f"{PREFIX}-lab"
    docker("rm", "-f", lab, check=False)
    docker("run", "-d", "--name", lab, "--label", f"dockward.test={PREFIX}", LAB, "sleep", "600")
    result: dict[str, Any] = {}
    try:
        host_dir = work / "mon-host"
        host_dir.mkdir()
        host = subprocess.Popen(
            [str(REPO / ".venv/bin/dockward"), "monitor", "run", "--source", "docker",
             "--output", f"file:{host_dir / 'alerts.jsonl'}", "--spool-dir", str(host_dir / "spool")],
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        time.sleep(3)
        result["host"] = stats(_alert_latency(host_dir / "alerts.jsonl", lab, runs))
        host.terminate()
        host.wait(30)
        cdir = work / "mon-c"
        cdir.mkdir(mode=0o777)
        cdir.chmod(0o777)
        name = f"{PREFIX}-monitor"
        docker("rm", "-f", name, check=False)
        docker("run", "-d", "--name", name, "--label", f"dockward.test={PREFIX}", "--user", "0:0",
               "--read-only", "--tmpfs", "/tmp", "--cap-drop", "ALL", "--security-opt", "no-new-privileges",
               "-v", f"{DOCKER}:{DOCKER}:ro", "-v", f"{cdir}:/out", image, "monitor", "run",
               "--source", "docker", "--output", "file:/out/alerts.jsonl", "--spool-dir", "/tmp/spool")  # fmt: skip
        time.sleep(15)  # the container's interpreter starts slower on a loaded machine
        try:
            result["container"] = stats(_alert_latency(cdir / "alerts.jsonl", lab, runs))
        finally:
            docker("rm", "-f", name, check=False)
    finally:
        docker("rm", "-f", lab, check=False)
    return result


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--image", default="dockward:local")
    p.add_argument("--requests", type=int, default=300)
    p.add_argument("--execs", type=int, default=10)
    p.add_argument("--build", action="store_true", help="also time scripts/build-image.sh")
    args = p.parse_args()
    out: dict[str, Any] = {}
    if args.build:
        t = time.perf_counter()
        subprocess.run([str(REPO / "scripts/build-image.sh"), args.image], check=True)
        out["build_seconds"] = round(time.perf_counter() - t, 1)
    out["image_mb"] = round(int(docker("image", "inspect", "-f", "{{.Size}}", args.image)) / 1e6, 1)
    with tempfile.TemporaryDirectory(prefix=f"{PREFIX}-") as tmp:
        work = Path(tmp)
        work.chmod(0o755)
        out["proxy"] = bench_proxy(args.image, args.requests, work)
        out["monitor_exec_to_alert"] = bench_monitor(args.image, args.execs, work)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
