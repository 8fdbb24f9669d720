"""Benchmark: dockward in its container vs on the host, same machine, same run.

    .venv/bin/python bench/service_bench.py [--image dockward:local] [--requests 300] [--execs 10]

- image size (`docker image inspect`), and with --build the time of scripts/build-image.sh;
- proxy: added latency of `GET /containers/json?limit=1`, one keep-alive connection, requests
  back to back: direct engine socket (anchor) vs `dockward proxy --workers 1` on the host vs the
  same in the image with the deployment's settings (deploy/compose.yaml's user, groups,
  capabilities, read-only rootfs, limits; engine socket mounted, its socket in a bind-mounted
  directory);
- monitor: `docker exec` of a shell with a tty in a lab container until the alert line is in the
  monitor's file output, with the deployment's sources (engine events and audit): on the host
  (root) vs in the image with the deployment's settings (root with NET_ADMIN, AUDIT_READ,
  AUDIT_CONTROL, host network and pid namespaces, read-only rootfs, limits), alternated rounds.
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
    docker("run", "-d", "--name", name, "--label", f"dockward.test={PREFIX}", *deployed_flags("proxy"),
           "-e", "CONTAINERS=1", "-v", f"{DOCKER}:{DOCKER}", "-v", f"{cdir}:/run/dockward",
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


def _alert_latency(alerts: Path, lab: str, runs: int, tag: str) -> list[float]:
    """Per exec, the time until an alert naming its own command line is in the file: the audit
    source sees every container on the machine, so other alerts arrive in between. A warm-up
    exec first (not counted) waits until the pipeline alerts at all."""
    import docker as dockerpy

    api = dockerpy.APIClient(base_url=f"unix://{DOCKER}")

    def one(marker: str, timeout: float) -> float | None:
        offset = alerts.stat().st_size if alerts.exists() else 0
        # an interactive shell lives on: its /proc entry names its container when the alert
        # is attributed (a shell gone within a millisecond takes the slower path)
        ex = api.exec_create(lab, ["sh", "-c", f"echo {marker}; sleep 2"], tty=True, stdin=True)
        t = time.perf_counter()
        api.exec_start(ex["Id"], detach=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if alerts.exists():
                with alerts.open("rb") as fh:
                    fh.seek(offset)
                    if f"echo {marker}".encode() in fh.read():
                        return (time.perf_counter() - t) * 1000
            time.sleep(0.002)
        return None

    out = []
    one(f"{PREFIX}-{tag}-warmup", 60)
    for i in range(runs):
        time.sleep(2.5)  # the last shell gone, past the throttle's per-container window
        ms = one(f"{PREFIX}-{tag}-{i}", 30)
        if ms is not None:
            out.append(ms)
    api.close()
    return out


def deployed_flags(service: str) -> list[str]:
    """`docker run` flags of a service's security settings and namespaces in deploy/compose.yaml."""
    import yaml

    from dockward.lint.interpolate import interpolate_tree

    doc = yaml.safe_load((REPO / "deploy/compose.yaml").read_text())
    env = {**os.environ, "DOCKER_GID": str(os.stat(DOCKER).st_gid)}
    svc = interpolate_tree(doc["services"][service], env)
    flags: list[str] = []
    if svc.get("user"):
        flags += ["--user", str(svc["user"])]
    for g in svc.get("group_add") or ():
        flags += ["--group-add", str(g)]
    for key, flag in (("cap_drop", "--cap-drop"), ("cap_add", "--cap-add"),
                      ("security_opt", "--security-opt"), ("tmpfs", "--tmpfs")):  # fmt: skip
        for v in svc.get(key) or ():
            flags += [flag, str(v)]
    if svc.get("read_only"):
        flags.append("--read-only")
    for key, flag in (("network_mode", "--network"), ("pid", "--pid"), ("mem_limit", "--memory"),
                      ("pids_limit", "--pids-limit"), ("cpus", "--cpus")):  # fmt: skip
        if svc.get(key):
            flags += [flag, str(svc[key])]
    return flags


def bench_monitor(image: str, runs: int, work: Path, sources: list[str]) -> dict[str, Any]:
    """The deployment's sources (engine events and audit) on the host (root, the engine socket)
    and in the image with the deployment's settings (its user, capabilities, host network and
    pid namespaces, read-only rootfs), the engine socket mounted read-only; alternated rounds."""
    lab = f"{PREFIX}-lab"
    docker("rm", "-f", lab, check=False)
    docker("run", "-d", "--name", lab, "--label", f"dockward.test={PREFIX}", LAB, "sleep", "3600")
    args = ["monitor", "run", *(a for s in sources for a in ("--source", s))]
    host_ms: list[float] = []
    container_ms: list[float] = []
    rounds = 2
    try:
        for r in range(rounds):
            host_dir = work / f"mon-host{r}"
            host_dir.mkdir()
            host = subprocess.Popen(
                [str(REPO / ".venv/bin/dockward"), *args, "--output",
                 f"file:{host_dir / 'alerts.jsonl'}", "--spool-dir", str(host_dir / "spool")],
                stderr=subprocess.DEVNULL,
            )  # fmt: skip
            try:
                host_ms += _alert_latency(host_dir / "alerts.jsonl", lab, runs // rounds, f"h{r}")
            finally:
                host.terminate()
                host.wait(30)
            cdir = work / f"mon-c{r}"
            cdir.mkdir(mode=0o777)
            cdir.chmod(0o777)
            name = f"{PREFIX}-monitor"
            docker("rm", "-f", name, check=False)
            docker("run", "-d", "--name", name, "--label", f"dockward.test={PREFIX}",
                   *deployed_flags("monitor"), "-e", "DOCKWARD_METRICS_LISTEN=127.0.0.1:15779",
                   "-v", f"{DOCKER}:{DOCKER}:ro", "-v", f"{cdir}:/out", image, *args,
                   "--output", "file:/out/alerts.jsonl", "--spool-dir", "/tmp/spool")  # fmt: skip
            deadline = time.monotonic() + 60  # the container's interpreter starts slower
            while time.monotonic() < deadline:
                health = subprocess.run(["docker", "exec", name, "dockward", "health"],
                                        capture_output=True)  # fmt: skip
                if health.returncode == 0:
                    break
                time.sleep(1)
            try:
                container_ms += _alert_latency(cdir / "alerts.jsonl", lab, runs // rounds, f"c{r}")
            finally:
                logs = subprocess.run(["docker", "logs", "--tail", "5", name],
                                      capture_output=True, text=True).stderr  # fmt: skip
                docker("rm", "-f", name, check=False)
            if len(container_ms) < (r + 1) * (runs // rounds):
                print(f"container monitor: missing alerts; its log: {logs[-800:]}")
    finally:
        docker("rm", "-f", lab, check=False)
    return {"host": stats(host_ms), "container": stats(container_ms),
            "alerts": {"host": len(host_ms), "container": len(container_ms), "execs": runs}}  # fmt: skip


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--image", default="dockward:local")
    p.add_argument("--requests", type=int, default=300)
    p.add_argument("--execs", type=int, default=10)
    p.add_argument("--build", action="store_true", help="also time scripts/build-image.sh")
    p.add_argument("--sources", default="docker,audit", help="the monitor's (the deployment's)")
    p.add_argument("--no-proxy", action="store_true", help="the monitor only")
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
        if not args.no_proxy:
            out["proxy"] = bench_proxy(args.image, args.requests, work)
        out["monitor_exec_to_alert"] = bench_monitor(
            args.image, args.execs, work, args.sources.split(",")
        )
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
