"""deploy/compose.yaml on the real dockerd, with the image scripts/build-image.sh builds.

One deployment for the module: every service healthy; the docker CLI through the proxy's socket
reads and is refused a privileged create; the monitor in its container alerts on a shell exec;
Prometheus scrapes every service; audit and scan of the deployment itself.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from tests.conftest import REPO, run_cli
from tests.service.test_service import _free_port
from tests.update.conftest import _start_registry, _stop

pytestmark = pytest.mark.docker
SERVICES = ("proxy", "update", "monitor", "audit", "scan")
PROJECT = f"dw12deploy{os.getpid()}"
SCOPE = "dw12deploy"
APP = "dw12deploy-app"


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


def _until(pred: Callable[[], Any], seconds: float, what: str) -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = pred()
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


class Deployment:
    def __init__(self, image: str, root: Path, registry_port: int) -> None:
        self.root = root
        self.ports = {s: _free_port() for s in SERVICES}
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
        update["labels"]["dockward.ignore"] = "DW-C011"
        update["labels"]["dockward.ignore.reason"] = "test: the registry listens on 127.0.0.1"
        update["environment"]["DOCKWARD_METRICS_LISTEN"] = f"127.0.0.1:{self.ports['update']}"
        for svc in doc["services"].values():
            svc["volumes"] = [
                v.replace("./proxy-policy.yaml", str(REPO / "deploy/proxy-policy.yaml"))
                for v in svc.get("volumes", [])
            ]
        for name, where in (("proxy-socket", self.socket_dir), ("monitor-alerts", self.alerts_dir)):
            doc["volumes"][name] = {
                "driver": "local",
                "driver_opts": {"type": "none", "o": "bind", "device": str(where)},
            }
        self.compose_file = root / "compose.yaml"
        self.compose_file.write_text(yaml.safe_dump(doc, sort_keys=False))
        self.registry_port = registry_port

    def compose(self, *args: str, timeout: int = 300) -> subprocess.CompletedProcess[str]:
        cmd = ["docker-compose", "-p", PROJECT, "-f", str(self.compose_file), *args]
        return subprocess.run(cmd, env=self.env, capture_output=True, text=True, timeout=timeout)

    def container(self, service: str) -> str:
        return f"{PROJECT}_{service}_1"

    def health(self, service: str) -> str:
        out = subprocess.run(
            ["docker", "inspect", "-f", "{{.State.Health.Status}}", self.container(service)],
            capture_output=True, text=True,
        ).stdout  # fmt: skip
        return out.strip()

    @property
    def socket(self) -> Path:
        return self.socket_dir / "proxy.sock"


def _remove_stale_deployments() -> None:
    """A run killed before its teardown leaves its project's containers and network behind, and
    that network's fixed subnet would make the next `up` fail: remove earlier runs' leftovers."""
    kinds = (("container", ["-a"], "ID"), ("network", [], "ID"), ("volume", [], "Name"))
    for kind, extra, key in kinds:
        fmt = "{{." + key + '}} {{.Label "com.docker.compose.project"}}'
        listed = subprocess.run(
            ["docker", kind, "ls", *extra, "--filter", "label=com.docker.compose.project",
             "--format", fmt],
            capture_output=True, text=True,
        ).stdout  # fmt: skip
        stale = [
            line.split()[0]
            for line in listed.splitlines()
            if len(line.split()) == 2
            and line.split()[1].startswith(SCOPE)
            and line.split()[1] != PROJECT
        ]
        if stale:
            rm = ["docker", kind, "rm", *(["-f", "-v"] if kind == "container" else []), *stale]
            subprocess.run(rm, capture_output=True)


@pytest.fixture(scope="module")
def deployment(image: str) -> Iterator[Deployment]:
    if not shutil.which("docker-compose"):
        pytest.fail("docker-compose is missing: scripts/setup.sh installs it")
    _remove_stale_deployments()
    registry_port = _free_port()
    reg, reg_root = _start_registry(registry_port)
    # Not under pytest's 0700 base: the docker CLI runs as uid 10001 and must reach the socket.
    root = Path(tempfile.mkdtemp(prefix=f"{PROJECT}-"))
    root.chmod(0o755)
    dep = Deployment(image, root, registry_port)
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
        subprocess.run(["docker", "rm", "-f", APP], capture_output=True)
        # Kept after the run (the deployment's root is removed): what failed is diagnosable.
        logs = dep.compose("logs", "--no-color", "--tail", "300").stdout
        Path(tempfile.gettempdir(), f"{PROJECT}-compose.log").write_text(logs)
        dep.compose("down", "-v", "--timeout", "30")
        _stop(reg, reg_root)
        shutil.rmtree(root, ignore_errors=True)


def test_every_service_becomes_healthy(deployment: Deployment) -> None:
    for s in SERVICES:
        _until(lambda s=s: deployment.health(s) == "healthy", 180, f"{s} healthy")


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
    _until(lambda: deployment.health("proxy") == "healthy", 180, "proxy healthy")
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
    _until(lambda: deployment.health("monitor") == "healthy", 180, "monitor healthy")
    name = f"{PROJECT}-lab"
    c = docker_api.create_container(
        lab_image, "sleep 60", name=name, labels={"dockward.test": PROJECT}
    )
    try:
        docker_api.start(c["Id"])
        ex = docker_api.exec_create(c["Id"], ["sh", "-c", "echo hi"], tty=True, stdin=True)
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

        _until(shell_alert, 60, "a shell alert for the lab container")
    finally:
        docker_api.remove_container(name, force=True)


def test_prometheus_scrapes_every_service(deployment: Deployment, tmp_path: Path) -> None:
    exe = shutil.which("prometheus")
    if exe is None:
        pytest.fail("prometheus is missing: scripts/setup.sh installs it")
    for s in SERVICES:
        if s != "scan":  # scan is healthy only with its DB; it still serves metrics
            _until(lambda s=s: deployment.health(s) == "healthy", 180, f"{s} healthy")
    targets = [f"127.0.0.1:{p}" for p in deployment.ports.values()]
    (tmp_path / "prometheus.yml").write_text(
        "global: {scrape_interval: 1s, scrape_timeout: 1s}\n"
        "scrape_configs:\n"
        f"  - job_name: dockward\n    static_configs: [{{targets: {json.dumps(targets)}}}]\n"
    )
    port = _free_port()
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

        _until(all_up, 60, "prometheus to scrape every service")
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
        _until(lambda s=s: deployment.health(s) == "healthy", 180, f"{s} healthy")
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
