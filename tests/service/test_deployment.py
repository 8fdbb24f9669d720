"""deploy/compose.yaml on the real dockerd, with the image scripts/build-image.sh builds.

One deployment for the module: every service healthy; the docker CLI through the proxy's socket
reads and is refused a privileged create; the monitor in its container alerts on a shell exec;
update through the proxy recreates a container from a local registry; Prometheus scrapes every
service; audit and scan record their runs; kill -9 of every service under load, nothing lost;
audit and scan of the deployment itself. The proxy's metrics on a read-only rootfs without /tmp.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from tests.conftest import REPO, free_port, run_cli, until
from tests.update.conftest import _start_registry, _stop

pytestmark = pytest.mark.docker
SERVICES = ("proxy", "update", "monitor", "audit", "scan")
PROJECT = f"dw12deploy{os.getpid()}"
SCOPE = "dw12deploy"
APP = f"{PROJECT}-app"  # unique per run: concurrent runs never touch each other's app


def _image_hash() -> str:
    h = hashlib.sha256()
    paths = [REPO / p for p in ("Dockerfile", ".dockerignore", "pyproject.toml", "README.md",
                                "scripts/build-image.sh")]  # fmt: skip
    paths += sorted(
        p for p in (REPO / "src").rglob("*") if p.is_file() and "__pycache__" not in p.parts
    )
    for p in paths:
        h.update(str(p.relative_to(REPO)).encode() + b"\0" + p.read_bytes())
    return h.hexdigest()[:12]


@pytest.fixture(scope="session")
def image() -> str:
    """Built once per content: a rerun with unchanged sources reuses the image."""
    tag = f"dockward:test-{_image_hash()}"
    if subprocess.run(["docker", "image", "inspect", tag], capture_output=True).returncode != 0:
        r = subprocess.run([str(REPO / "scripts/build-image.sh"), tag], capture_output=True,
                           text=True, timeout=900)  # fmt: skip
        assert r.returncode == 0, r.stderr[-3000:]
        old = subprocess.run(["docker", "images", "-q", "--filter", "reference=dockward:test-*"],
                             capture_output=True, text=True).stdout.split()  # fmt: skip
        new = subprocess.run(
            ["docker", "images", "-q", tag], capture_output=True, text=True
        ).stdout.split()
        for image_id in set(old) - set(new):
            subprocess.run(["docker", "rmi", image_id], capture_output=True)
    return tag


class Deployment:
    def __init__(self, image: str, root: Path, registry_port: int) -> None:
        self.root = root
        self.ports = {s: free_port() for s in SERVICES}
        self.env = {
            **os.environ,
            "DOCKWARD_IMAGE": image,
            "DOCKER_GID": str(os.stat("/var/run/docker.sock").st_gid),
            "DOCKWARD_UPDATE_INTERVAL": "3",
            "DOCKWARD_UPDATE_SCOPE": SCOPE,
            "DOCKWARD_AUDIT_INTERVAL": "30",
            "DOCKWARD_SCAN_INTERVAL": "3600",
            "DOCKWARD_SCAN_IMAGE": image,
            **{f"DOCKWARD_{s.upper()}_METRICS_PORT": str(p) for s, p in self.ports.items()},
        }
        self.socket_dir = root / "socket"
        self.alerts_dir = root / "alerts"
        for d in (self.socket_dir, self.alerts_dir):
            d.mkdir(mode=0o770)
            os.chown(d, 10001, 10001)
            d.chmod(0o770 if d is self.alerts_dir else 0o750)
        # The compose file as shipped, with three test changes: the proxy's socket and the alerts
        # in host directories the test reads, and update on the host network to reach the
        # registry on 127.0.0.1 as the engine does (published ports do not combine with that).
        doc = yaml.safe_load((REPO / "deploy/compose.yaml").read_text())
        update = doc["services"]["update"]
        update["network_mode"] = "host"
        update.pop("ports", None)
        update.pop("networks", None)
        update["labels"]["dockward.ignore"] += ",DW-C011"
        update["labels"]["dockward.ignore.reason"] += "; test: the registry listens on 127.0.0.1"
        update["environment"]["DOCKWARD_METRICS_LISTEN"] = f"127.0.0.1:{self.ports['update']}"
        net = _free_subnet()  # this run's own (below): the policy names its clients by it
        policy = root / "proxy-policy.yaml"
        policy.write_text(
            (REPO / "deploy/proxy-policy.yaml").read_text().replace("172.30.99.", f"{net}.")
        )
        policy.chmod(0o644)
        for svc in doc["services"].values():
            svc["volumes"] = [
                v.replace("./proxy-policy.yaml", str(policy)) for v in svc.get("volumes", [])
            ]
        for name, where in (("proxy-socket", self.socket_dir), ("monitor-alerts", self.alerts_dir)):
            doc["volumes"][name] = {
                "driver": "local",
                "driver_opts": {"type": "none", "o": "bind", "device": str(where)},
            }
        # A subnet of this run's own: a concurrent run of this module (another worktree) keeps
        # the shipped 172.30.99.0/24 or its own.
        ipam = doc["networks"]["internal"]["ipam"]["config"][0]
        for key in ("subnet", "ip_range"):
            ipam[key] = ipam[key].replace("172.30.99.", f"{net}.")
        doc["services"]["proxy"]["networks"]["internal"]["ipv4_address"] = f"{net}.2"
        for svc in ("audit", "scan"):
            doc["services"][svc]["command"] = [
                a.replace("172.30.99.2", f"{net}.2") for a in doc["services"][svc]["command"]
            ]
        self.compose_file = root / "compose.yaml"
        self.doc = doc
        self.registry_port = registry_port
        self.receiver_port = free_port()

    def write_compose(self) -> None:
        self.compose_file.write_text(yaml.safe_dump(self.doc, sort_keys=False))

    def compose(self, *args: str, timeout: int = 300) -> subprocess.CompletedProcess[str]:
        cmd = ["docker-compose", "-p", PROJECT, "-f", str(self.compose_file), *args]
        return subprocess.run(cmd, env=self.env, capture_output=True, text=True, timeout=timeout)

    def container(self, service: str) -> str:
        return f"{PROJECT}_{service}_1"

    def inspect(self, service: str, fmt: str) -> str:
        """`docker inspect -f FMT` of the service's container (its stderr when that fails)."""
        r = subprocess.run(["docker", "inspect", "-f", fmt, self.container(service)],
                           capture_output=True, text=True)  # fmt: skip
        return r.stdout.strip() or r.stderr.strip()

    def health(self, service: str) -> str:
        return self.inspect(service, "{{.State.Health.Status}}")

    @property
    def receiver_url(self) -> str:
        return f"http://127.0.0.1:{self.receiver_port}/alerts"

    def pid(self, service: str) -> int:
        """The service's process on the host; never 0 (os.kill(0, ...) is our process group)."""
        out = self.inspect(service, "{{.State.Pid}}")
        assert out.isdigit() and int(out) > 0, f"{service} is not running: {out}"
        return int(out)

    def logs(self, service: str, tail: int = 80) -> str:
        r = subprocess.run(["docker", "logs", "--tail", str(tail), self.container(service)],
                           capture_output=True, text=True)  # fmt: skip
        return r.stdout + r.stderr

    def healthz(self, service: str) -> bool:
        try:
            url = f"http://127.0.0.1:{self.ports[service]}/healthz"
            return requests.get(url, timeout=2).status_code == 200
        except requests.RequestException:
            return False

    @property
    def socket(self) -> Path:
        return self.socket_dir / "proxy.sock"


def _free_subnet() -> str:
    """172.30.N (N from 100) that no network of the engine uses."""
    ids = subprocess.run(["docker", "network", "ls", "-q"], capture_output=True, text=True)
    used = subprocess.run(
        ["docker", "network", "inspect", "-f", "{{range .IPAM.Config}}{{.Subnet}} {{end}}",
         *ids.stdout.split()],
        capture_output=True, text=True,
    ).stdout  # fmt: skip
    start = 100 + os.getpid() % 100
    for n in [*range(start, 200), *range(100, start)]:
        if f"172.30.{n}." not in used:
            return f"172.30.{n}"
    raise AssertionError("no free 172.30.N.0/24 subnet")


def _stale(project: str) -> bool:
    """A project of this module whose test process is gone (a concurrent run's is alive: its
    name carries its pid, and this machine's helpers share the pid namespace)."""
    if not project.startswith(SCOPE) or project == PROJECT:
        return False
    pid = project.removeprefix(SCOPE)
    if not pid.isdigit():
        return True
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def _remove_stale_deployments() -> None:
    """A run killed before its teardown leaves its project's containers and network behind, and
    that network's fixed subnet would make the next `up` fail: remove earlier runs' leftovers,
    and their apps and lab containers (labelled dockward.test=<project>)."""
    kinds = (
        ("container", ["-a"], "ID", "com.docker.compose.project"),
        ("container", ["-a"], "ID", "dockward.test"),
        ("network", [], "ID", "com.docker.compose.project"),
        ("volume", [], "Name", "com.docker.compose.project"),
    )
    for kind, extra, key, label in kinds:
        fmt = "{{." + key + '}} {{.Label "' + label + '"}}'
        listed = subprocess.run(
            ["docker", kind, "ls", *extra, "--filter", f"label={label}", "--format", fmt],
            capture_output=True, text=True,
        ).stdout  # fmt: skip
        stale = [
            line.split()[0]
            for line in listed.splitlines()
            if len(line.split()) == 2 and _stale(line.split()[1])
        ]
        if stale:
            rm = ["docker", kind, "rm", *(["-f", "-v"] if kind == "container" else []), *stale]
            subprocess.run(rm, capture_output=True)


@pytest.fixture(scope="module")
def deployment(image: str) -> Iterator[Deployment]:
    if not shutil.which("docker-compose"):
        pytest.fail("docker-compose is missing: scripts/setup.sh installs it")
    _remove_stale_deployments()
    registry_port = free_port()
    reg, reg_root = _start_registry(registry_port)
    # Not under pytest's 0700 base: the docker CLI runs as uid 10001 and must reach the socket.
    root = Path(tempfile.mkdtemp(prefix=f"{PROJECT}-"))
    root.chmod(0o755)
    dep = Deployment(image, root, registry_port)
    # A second monitor output, a webhook on the host that is down until the kill -9 test starts
    # it: what the monitor could not deliver waits in its spool, across its restart.
    dep.doc["services"]["monitor"]["command"] += ["--output", dep.receiver_url]
    dep.write_compose()
    osv = REPO / "tests/scan/fixtures/osv"
    try:
        r = dep.compose(
            "run", "--rm", "--no-deps", "-v", f"{osv}:/osv:ro", "scan", "db", "import", "/osv"
        )
        assert r.returncode == 0, r.stderr[-2000:]
        r = dep.compose("up", "-d")
        assert r.returncode == 0, r.stderr[-3000:]
        yield dep
    finally:
        # Kept after the run (the deployment's root is removed): what failed is diagnosable.
        logs = dep.compose("logs", "--no-color", "--tail", "300").stdout
        Path(tempfile.gettempdir(), f"{PROJECT}-compose.log").write_text(logs)
        for s in SERVICES:
            Path(tempfile.gettempdir(), f"{PROJECT}-{s}.log").write_text(dep.logs(s, 2000))
        dep.compose("down", "-v", "--timeout", "30")
        # After `down`: a running update would put back (roll back to) an app removed under it.
        # Everything of this run (the app, its backup, lab containers) carries its label.
        ours = subprocess.run(
            ["docker", "ps", "-aq", "--filter", f"label=dockward.test={PROJECT}"],
            capture_output=True, text=True,
        ).stdout.split()  # fmt: skip
        if ours:
            subprocess.run(["docker", "rm", "-f", *ours], capture_output=True)
        _stop(reg, reg_root)
        shutil.rmtree(root, ignore_errors=True)


def test_every_service_becomes_healthy(deployment: Deployment) -> None:
    for s in SERVICES:
        until(lambda s=s: deployment.health(s) == "healthy", 180, f"{s} healthy")


def _docker_as(dep: Deployment, gid: int, *args: str) -> subprocess.CompletedProcess[str]:
    """The docker CLI as uid 10001 with one group: the policy tells clients apart by gid."""
    return subprocess.run(
        ["setpriv", "--reuid", "10001", "--regid", str(gid), "--clear-groups",
         "docker", "-H", f"unix://{dep.socket}", *args],
        capture_output=True, text=True, timeout=120, env={**os.environ, "HOME": "/tmp"},
    )  # fmt: skip


def test_docker_cli_reads_through_the_proxy_and_a_privileged_create_is_refused(
    deployment: Deployment,
) -> None:
    until(lambda: deployment.health("proxy") == "healthy", 180, "proxy healthy")
    ps = _docker_as(deployment, 10010, "ps", "--format", "{{.Names}}")  # the dashboard client
    assert ps.returncode == 0, ps.stderr
    assert deployment.container("proxy") in ps.stdout
    refused = _docker_as(deployment, 10010, "rm", "-f", deployment.container("audit"))
    assert refused.returncode != 0
    assert "not allowed for dashboard" in refused.stderr, refused.stderr
    lab = "dockward-lab/busybox:1.0"
    priv = _docker_as(deployment, 10002, "create", "--privileged", lab)  # the update client
    assert priv.returncode != 0
    assert "DW-C001" in priv.stderr, priv.stderr
    anonymous = _docker_as(deployment, 12345, "ps")
    assert anonymous.returncode != 0


def test_monitor_in_its_container_alerts_on_a_shell_exec(
    deployment: Deployment, docker_api: Any, lab_image: str
) -> None:
    until(lambda: deployment.health("monitor") == "healthy", 180, "monitor healthy")
    name = f"{PROJECT}-lab"
    c = docker_api.create_container(
        lab_image, "sleep 60", name=name, labels={"dockward.test": PROJECT}
    )
    try:
        docker_api.start(c["Id"])
        # The shell lives a second: a process gone before the monitor reads its /proc cgroup is
        # attributed through its ancestors, which a sub-millisecond `echo` makes a race.
        ex = docker_api.exec_create(c["Id"], ["sh", "-c", "echo hi; sleep 1"], tty=True, stdin=True)
        docker_api.exec_start(ex["Id"])
        alerts = deployment.alerts_dir / "alerts.jsonl"

        def shell_alert() -> bool:
            if not alerts.exists():
                return False
            return any(
                json.loads(line).get("output_fields", {}).get("container.name") == name
                and "shell" in json.loads(line).get("rule", "").lower()
                for line in alerts.read_text().splitlines()
                if line.strip()
            )

        until(shell_alert, 60, "a shell alert for the lab container")
    finally:
        docker_api.remove_container(name, force=True)


def test_prometheus_scrapes_every_service(deployment: Deployment, tmp_path: Path) -> None:
    exe = shutil.which("prometheus")
    if exe is None:
        pytest.fail("prometheus is missing: scripts/setup.sh installs it")
    for s in SERVICES:
        if s != "scan":  # scan is healthy only with its DB; it still serves metrics
            until(lambda s=s: deployment.health(s) == "healthy", 180, f"{s} healthy")
    targets = [f"127.0.0.1:{p}" for p in deployment.ports.values()]
    (tmp_path / "prometheus.yml").write_text(
        "global: {scrape_interval: 1s, scrape_timeout: 1s}\n"
        "scrape_configs:\n"
        f"  - job_name: dockward\n    static_configs: [{{targets: {json.dumps(targets)}}}]\n"
    )
    port = free_port()
    prom = subprocess.Popen(
        [exe, f"--config.file={tmp_path / 'prometheus.yml'}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
         f"--web.listen-address=127.0.0.1:{port}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:

        def all_up() -> list[dict[str, Any]] | None:
            try:
                doc = requests.get(f"http://127.0.0.1:{port}/api/v1/targets", timeout=2).json()
            except (requests.RequestException, ValueError):
                return None
            active = doc["data"]["activeTargets"]
            return (
                active
                if len(active) == len(targets) and all(t["health"] == "up" for t in active)
                else None
            )

        until(all_up, 60, "prometheus to scrape every service")
        q = requests.get(f"http://127.0.0.1:{port}/api/v1/query",
                         params={"query": "dockward_proxy_requests_total"}, timeout=5).json()  # fmt: skip
        assert q["data"]["result"], q
    finally:
        prom.terminate()
        prom.wait(30)


def test_audit_of_the_deployment_fails_no_container_at_medium_except_waived(
    deployment: Deployment,
) -> None:
    for s in SERVICES:
        until(lambda s=s: deployment.health(s) == "healthy", 180, f"{s} healthy")
    r = run_cli("audit", "--section", "container", "-f", "json", "--fail-on", "never", timeout=300)
    assert r.code == 0, r.err
    doc = json.loads(r.out)
    ours = [x for x in doc["results"] if f"{PROJECT}_" in x["target"]]
    assert {x["target"].split()[-1] for x in ours} >= {deployment.container(s) for s in SERVICES}
    bad = [
        (x["rule_id"], x["target"], x["message"])
        for x in ours
        if x["status"] == "fail"
        and not x.get("waived")
        and x["severity"] in ("medium", "high", "critical")
    ]
    assert not bad, bad
    assert any(x.get("waived") for x in ours)  # the monitor's and the proxy's, with reasons


def test_scan_of_the_image_finds_no_fixable_high_or_critical(image: str, tmp_path: Path) -> None:
    db = tmp_path / "vulndb.sqlite"
    env = {"DOCKWARD_DB": str(db)}
    imp = run_cli("db", "import", str(REPO / "tests/scan/fixtures/osv"), env=env)
    assert imp.code == 0, imp.err
    r = run_cli("scan", image, "--source", "daemon", "--ignore-unfixed", "--fail-on", "high",
                "-f", "json", env=env, timeout=600)  # fmt: skip
    assert r.code == 0, r.out[-3000:]
    doc = json.loads(r.out)
    assert doc["results"], "the scan judged nothing"


def _push(docker_api: Any, image: str, repo: str, tag: str) -> None:
    docker_api.tag(image, repo, tag, force=True)
    for chunk in docker_api.push(repo, tag, stream=True, decode=True):
        assert "error" not in chunk, chunk


def _version(docker_api: Any, v: int) -> str:
    from dockward.engine.lab import build_busybox_image

    extra = f'RUN ["/bin/busybox", "sh", "-c", "echo {v} > /v"]'
    return build_busybox_image(docker_api, f"{PROJECT}/app:v{v}", extra=extra)


def _repo(dep: Deployment) -> str:
    return f"127.0.0.1:{dep.registry_port}/{PROJECT}/app"


def _ensure_app(dep: Deployment, docker_api: Any) -> dict[str, Any]:
    """The app update manages (v1 from the local registry), created once per run."""
    try:
        return dict(docker_api.inspect_container(APP))
    except Exception:
        pass
    _push(docker_api, _version(docker_api, 1), _repo(dep), "stable")
    c = docker_api.create_container(
        f"{_repo(dep)}:stable", "sleep 600", name=APP,
        labels={"dockward.test": PROJECT, "dockward.update": "true", "dockward.update.scope": SCOPE},
    )  # fmt: skip
    docker_api.start(c["Id"])
    return dict(docker_api.inspect_container(APP))


def _app_on(docker_api: Any, image_id: str, other_than: str = "") -> bool:
    try:
        now = docker_api.inspect_container(APP)
    except Exception:
        return False
    return bool(now["Image"] == image_id and now["Id"] != other_than and now["State"]["Running"])


def test_update_through_the_proxy_recreates_a_container_from_the_registry(
    deployment: Deployment, docker_api: Any
) -> None:
    until(lambda: deployment.healthz("update"), 180, "update healthy")
    before = _ensure_app(deployment, docker_api)
    v2 = _version(docker_api, 2)
    _push(docker_api, v2, _repo(deployment), "stable")
    try:
        until(lambda: _app_on(docker_api, v2, before["Id"]), 120, "update to recreate the app")
    except AssertionError as exc:
        raise AssertionError(f"{exc}; update's log:\n{deployment.logs('update')}") from None

    def updated_logged() -> bool:
        # The line comes at the end of the transaction (after the health gate), one per cycle.
        log = [json.loads(x) for x in deployment.logs("update", 400).splitlines() if x[:1] == "{"]
        return any(
            e.get("event") == "container" and e.get("container") == APP
            and e.get("status") == "updated" for e in log
        ) and any(e.get("event") == "cycle" for e in log)  # fmt: skip

    until(updated_logged, 60, "update's log line for the app")
    metrics = requests.get(f"http://127.0.0.1:{deployment.ports['update']}/metrics", timeout=5)
    assert "watchtower_scans_total" in metrics.text


def _stored_runs(dep: Deployment, service: str, command: str) -> int:
    """Runs in the result store of the service's volume (XDG_DATA_HOME), read in its container."""
    code = (
        "import sqlite3; c = sqlite3.connect('file:/var/lib/dockward/data/dockward/history.sqlite"
        f"?mode=ro', uri=True); print(c.execute(\"select count(*) from runs where command = "
        f"'{command}'\").fetchone()[0])"
    )
    r = subprocess.run(["docker", "exec", dep.container(service), "python3", "-c", code],
                       capture_output=True, text=True, timeout=60)  # fmt: skip
    return int(r.stdout.strip()) if r.returncode == 0 and r.stdout.strip().isdigit() else 0


def test_audit_and_scan_record_their_runs_in_the_store_volume(deployment: Deployment) -> None:
    """The result store is not on the read-only rootfs (nothing recorded, a warning) but in the
    `store` volume; the scan service's one-image scans are runs too (they were not)."""
    until(lambda: _stored_runs(deployment, "audit", "audit") >= 1, 240, "a stored audit run")
    until(lambda: _stored_runs(deployment, "scan", "scan") >= 1, 240, "a stored scan run")
    for service in ("audit", "scan"):
        log = deployment.logs(service)
        assert "run not recorded" not in log and "Read-only file system" not in log, log


class _Receiver:
    """The webhook the monitor's second output posts to (on the host; the monitor shares it)."""

    def __init__(self, port: int) -> None:
        self.bodies: list[bytes] = []
        bodies = self.bodies

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                bodies.append(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def got(self, needle: str) -> bool:
        return any(needle.encode() in b for b in list(self.bodies))

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class _Load:
    """docker CLI reads through the proxy, without pause, for as long as the test runs."""

    def __init__(self, dep: Deployment) -> None:
        self.dep = dep
        self.ok: list[float] = []
        self.failed: list[float] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.stop.is_set():
            try:
                r = _docker_as(self.dep, 10010, "ps", "-q")
                (self.ok if r.returncode == 0 else self.failed).append(time.monotonic())
            except subprocess.TimeoutExpired:
                self.failed.append(time.monotonic())
            time.sleep(0.1)

    def close(self) -> None:
        self.stop.set()
        self.thread.join(130)


def test_kill_9_of_every_service_under_load_loses_no_alert_and_no_container(
    deployment: Deployment, docker_api: Any, lab_image: str
) -> None:
    """SIGKILL to each service's process (a crash: `docker kill` would be a request to stop,
    which no restart policy undoes) while the docker CLI reads through the proxy, an alert
    waits in the monitor's spool and update is in the middle of replacing a container."""
    for s in SERVICES:
        until(lambda s=s: deployment.healthz(s), 240, f"{s} healthy")
    before = _ensure_app(deployment, docker_api)
    lab = f"{PROJECT}-kill-lab"
    c = docker_api.create_container(lab_image, "sleep 300", name=lab,
                                    labels={"dockward.test": PROJECT})  # fmt: skip
    load = _Load(deployment)
    receiver: _Receiver | None = None
    restarts = {
        s: docker_api.inspect_container(deployment.container(s))["RestartCount"] for s in SERVICES
    }
    try:
        docker_api.start(c["Id"])
        # An alert the webhook cannot take (nobody listens): delivered to the file, spooled for
        # the webhook. The exec's argv marks it.
        marker = f"dwkill{os.getpid()}"
        ex = docker_api.exec_create(
            c["Id"], ["sh", "-c", f"echo {marker}; sleep 1"], tty=True, stdin=True
        )
        docker_api.exec_start(ex["Id"])
        alerts = deployment.alerts_dir / "alerts.jsonl"
        until(lambda: alerts.exists() and marker in alerts.read_text(), 60, "the alert in the file")
        # update mid-transaction: v3 pushed, the app (PID 1 `sleep` ignores SIGTERM: its stop
        # takes --stop-timeout) is being stopped when update is killed.
        v3 = _version(docker_api, 3)
        _push(docker_api, v3, _repo(deployment), "stable")

        pushed = int(time.time()) - 1

        def stopping() -> bool:
            return _app_being_stopped(docker_api, before["Id"], pushed)

        until(stopping, 60, "update to start replacing the app")
        for s in ("update", "proxy", "monitor", "audit", "scan"):  # update first: mid-step
            os.kill(deployment.pid(s), signal.SIGKILL)
        killed_at = time.monotonic()
        receiver = _Receiver(deployment.receiver_port)
        for s in SERVICES:
            until(
                lambda s=s: docker_api.inspect_container(deployment.container(s))["RestartCount"]
                > restarts[s],
                60, f"the engine to restart {s}",
            )  # fmt: skip
        for s in SERVICES:
            try:
                until(lambda s=s: deployment.healthz(s), 120, f"{s} healthy after kill -9")
            except AssertionError as exc:
                state = deployment.inspect(s, "{{json .State}}")  # with its last health checks
                raise AssertionError(f"{exc}: {state}\n{deployment.logs(s)}") from None
        # No container lost: the interrupted replacement was rolled back or finished, then v3.
        until(lambda: _app_on(docker_api, v3), 120, "the app on v3")

        def ours() -> list[str]:
            found = docker_api.containers(
                all=True, filters={"label": f"dockward.update.scope={SCOPE}"}
            )
            return sorted(n for x in found for n in x["Names"] if n.startswith(f"/{PROJECT}"))

        # The backup goes once the new container passed the health gate: no duplicate, no
        # backup left over, and the app is still there.
        try:
            until(lambda: ours() == [f"/{APP}"], 60, "exactly the app, nothing left over")
        except AssertionError as exc:
            log = deployment.logs("update")
            raise AssertionError(f"{exc}: {ours()}; update's log:\n{log}") from None
        # No alert lost: the spooled alert reaches the webhook from the restarted monitor.
        until(lambda: receiver is not None and receiver.got(marker), 60, "the spooled alert")
        # The load: reads through the restarted proxy work again.
        until(lambda: load.ok and load.ok[-1] > killed_at, 60, "docker CLI reads again")
    finally:
        load.close()
        if receiver is not None:
            receiver.close()
        docker_api.remove_container(lab, force=True)


def _app_being_stopped(docker_api: Any, cid: str, since: int) -> bool:
    """The engine has sent the app its stop signal (update's first step) since `since`."""
    events = docker_api.events(since=since, until=int(time.time()) + 1, decode=True,
                               filters={"container": cid, "event": "kill"})  # fmt: skip
    return any(True for _ in events)


def test_proxy_metrics_on_a_read_only_rootfs_without_tmp(image: str) -> None:
    """No tmpfs on /tmp: the workers' counters go to the engine's /dev/shm."""
    name = f"{PROJECT}-ro-proxy"
    subprocess.run(["docker", "rm", "-f", name], capture_output=True)
    r = subprocess.run(
        ["docker", "run", "-d", "--name", name, "--read-only", "--label", f"dockward.test={PROJECT}",
         image, "proxy", "--listen", "tcp://127.0.0.1:2375", "--upstream", "/nonexistent.sock",
         "--metrics-listen", "127.0.0.1:9464", "--workers", "2"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    fetch = (
        "import urllib.request; print(urllib.request.urlopen("
        "'http://127.0.0.1:9464/metrics', timeout=5).read().decode())"
    )
    try:

        def metrics() -> str:
            got = subprocess.run(["docker", "exec", name, "python3", "-c", fetch],
                                 capture_output=True, text=True, timeout=30)  # fmt: skip
            return got.stdout if got.returncode == 0 else ""

        try:
            text = until(metrics, 60, "the proxy's /metrics")
        except AssertionError:
            logs = subprocess.run(["docker", "logs", name], capture_output=True, text=True)
            raise AssertionError(f"no metrics; proxy log: {logs.stderr[-2000:]}") from None
        assert "dockward_proxy_policy_reloads" in text or "dockward_proxy" in text, text[:500]
    finally:
        subprocess.run(["docker", "rm", "-f", name], capture_output=True)
