"""The policy file through the proxy with the real docker CLI and daemon: allowed and refused."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from dockward.policy.model import parse_policy
from dockward.proxy.authz import PolicyAuthorizer
from tests.conftest import kill_after
from tests.proxy.conftest import PREFIX, RunningProxy

TOKEN = "ci-token-0123456789abcdef"
POLICY = {
    "admission": {
        "deny": ["privileged", "docker-socket", "host-namespaces", "sensitive-mounts", "devices"],
        "capabilities": ["NET_BIND_SERVICE"],
    },
    "clients": [
        {"name": "nobody", "uid": [65534], "allow": ["ping", "version", "containers.list"]},
        {
            "name": "ci",
            "token_sha256": [hashlib.sha256(TOKEN.encode()).hexdigest()],
            "allow": ["ping", "version", "images.list"],
        },
        {"name": "root", "uid": [0], "allow": ["*"], "deny": ["containers.export"]},
    ],
}
LABEL = ["--label", f"dockward.test={PREFIX}"]


@pytest.fixture
def proxy(proxy_factory: Callable[..., RunningProxy]) -> RunningProxy:
    return proxy_factory(PolicyAuthorizer(parse_policy(POLICY)))


def docker(
    proxy: RunningProxy, *args: str, timeout: int = 60, **kw: Any
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "DOCKER_HOST"}
    env["DOCKER_BUILDKIT"] = "0"
    return subprocess.run(
        ["docker", "-H", proxy.url, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        **kw,
    )


def test_run_allowed_and_refused(
    proxy: RunningProxy, lab_image: str, clean_containers: None
) -> None:
    ok = docker(
        proxy,
        "run",
        "-d",
        *LABEL,
        "--cap-drop",
        "ALL",
        "--cap-add",
        "NET_BIND_SERVICE",
        lab_image,
        "sleep",
        "30",
    )
    assert ok.returncode == 0, ok.stderr
    ps = docker(proxy, "ps", "--filter", f"label=dockward.test={PREFIX}", "-q")
    assert ok.stdout.strip()[:12] in ps.stdout
    cases = {
        "DW-C001": ["--privileged"],
        "DW-C008": ["-v", "/var/run/docker.sock:/var/run/docker.sock"],
        "DW-C011": ["--network", "host"],
        "DW-C017": ["--pid", "host"],
        "DW-C007": ["-v", "/etc:/host-etc"],
        "DW-C019": ["--device", "/dev/null:/dev/xnull"],
        "DW-P002": ["--cap-add", "SYS_TIME"],
    }
    # A device cgroup rule is judged by what it grants: every SCSI disk is refused.
    disks = ["--device-cgroup-rule", "b 8:* rwm"]
    for rule, flags in [*cases.items(), ("DW-C019", disks)]:
        out = docker(proxy, "run", "-d", *LABEL, *flags, lab_image, "true")
        assert out.returncode != 0, rule
        assert "refused by dockward policy" in out.stderr and rule in out.stderr, out.stderr
    null = docker(proxy, "create", *LABEL, "--device-cgroup-rule", "c 1:3 rwm", lab_image, "true")
    assert null.returncode == 0, null.stderr
    denials = [d for d in proxy.decisions() if d.get("decision") == "deny"]
    assert {d["route"] for d in denials} == {"containers.create"}
    assert all(d["client"]["uid"] == 0 and d["client_name"] == "root" for d in denials)
    assert all(isinstance(d["latency_ms"], float) for d in denials)


def test_route_rules_per_client(
    proxy: RunningProxy, lab_image: str, clean_containers: None, tmp_path: Path
) -> None:
    cid = docker(proxy, "create", *LABEL, lab_image, "true").stdout.strip()
    out = docker(proxy, "export", cid, "-o", str(tmp_path / "x.tar"))
    assert out.returncode != 0 and "containers.export not allowed for root" in out.stderr
    assert docker(proxy, "rm", cid).returncode == 0


def test_uid_client(proxy: RunningProxy) -> None:
    setpriv = shutil.which("setpriv")
    assert setpriv, "util-linux setpriv is part of Debian's base system"
    os.chmod(Path(proxy.socket).parent, 0o755)
    os.chmod(proxy.socket, 0o666)
    home = tempfile.mkdtemp(prefix=f"{PREFIX}-home-")
    os.chmod(home, 0o777)

    def as_nobody(*args: str) -> subprocess.CompletedProcess[str]:
        env = {"PATH": os.environ["PATH"], "HOME": home, "DOCKER_CONFIG": home}
        return subprocess.run(
            [
                setpriv,
                "--reuid=65534",
                "--regid=65534",
                "--clear-groups",
                "docker",
                "-H",
                proxy.url,
                *args,
            ],
            capture_output=True,
            text=True,
            timeout=30,
            env=env,
        )

    try:
        assert as_nobody("ps").returncode == 0
        out = as_nobody("images")
        assert out.returncode != 0 and "route images.list not allowed for nobody" in out.stderr
    finally:
        shutil.rmtree(home, ignore_errors=True)
    nobody = [d for d in proxy.decisions() if d.get("client_name") == "nobody"]
    assert nobody and all(d["client"]["uid"] == 65534 for d in nobody)


def test_bearer_token_and_tcp_source(proxy_factory: Callable[..., RunningProxy]) -> None:
    policy = dict(POLICY)
    policy["clients"] = [
        POLICY["clients"][1],
        {"name": "loopback", "source": ["127.0.0.0/8"], "allow": ["ping"]},
    ]
    p = proxy_factory(PolicyAuthorizer(parse_policy(policy)), tcp_port=15611)
    import docker as sdk

    api = sdk.APIClient(base_url="tcp://127.0.0.1:15611", version="1.41", timeout=30)
    assert api.ping()
    with pytest.raises(sdk.errors.APIError) as info:
        api.images()
    assert info.value.status_code == 403
    api.headers["Authorization"] = f"Bearer {TOKEN}"
    assert isinstance(api.images(), list)
    api.headers["Authorization"] = "Bearer wrong-token-0000000000"
    with pytest.raises(sdk.errors.APIError):
        api.images()
    names = [d.get("client_name") for d in p.decisions()]
    assert "ci" in names and "loopback" in names
    assert TOKEN not in p.log_path.read_text()


def test_streams_exec_logs_events_build(
    proxy: RunningProxy, lab_image: str, clean_containers: None, tmp_path: Path
) -> None:
    cid = docker(
        proxy,
        "run",
        "-d",
        *LABEL,
        lab_image,
        "sh",
        "-c",
        "i=0; while true; do echo line$i; i=$((i+1)); sleep 0.1; done",
    ).stdout.strip()
    assert cid
    follow = subprocess.Popen(
        ["docker", "-H", proxy.url, "logs", "-f", cid], stdout=subprocess.PIPE, text=True
    )
    assert follow.stdout is not None
    watchdog = kill_after(follow, 60)
    seen = [follow.stdout.readline().strip() for _ in range(5)]
    watchdog.cancel()
    follow.terminate()
    follow.wait(10)
    assert seen == [f"line{i}" for i in range(5)]
    # exec with stdin (half-close passes through) and with a pty
    piped = docker(proxy, "exec", "-i", cid, "sh", "-c", "cat; echo done", input="from-stdin\n")
    assert piped.stdout == "from-stdin\ndone\n"
    tty = subprocess.run(
        [
            "script",
            "-qec",
            f"docker -H {proxy.url} exec -it {cid} sh -c 'tty; exit 7'",
            "/dev/null",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert tty.returncode == 7 and "/dev/pts/" in tty.stdout
    # events stream while a container is created: `--since` replays what happened after the
    # stream was asked for, so a subscription still being set up cannot miss the event; a run
    # label keeps other tests' containers out; the read is bounded.
    run_label = f"dockward.test.run={os.getpid()}-{time.monotonic_ns()}"
    events = subprocess.Popen(
        [
            "docker",
            "-H",
            proxy.url,
            "events",
            "--since",
            str(int(time.time()) - 1),
            "--filter",
            f"label={run_label}",
            "--format",
            "{{.Action}}",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert events.stdout is not None
    try:
        made = docker(
            proxy, "create", *LABEL, "--label", run_label, lab_image, "true"
        ).stdout.strip()
        watchdog = kill_after(events, 60)
        assert events.stdout.readline().strip() == "create"
        watchdog.cancel()
    finally:
        events.terminate()
        events.wait(10)
    docker(proxy, "rm", made)
    # build: a tar context with a chunked or sized body, streamed progress
    (tmp_path / "Dockerfile").write_text(f"FROM {lab_image}\nRUN echo built > /built\n")
    built = docker(proxy, "build", "-q", "-t", f"{PREFIX}/built:1", str(tmp_path), timeout=120)
    assert built.returncode == 0, built.stderr
    # create/start/wait/logs rather than `run`: a container that exits at once can lose its
    # attach output under heavy load, with or without the proxy (the test host is shared)
    made = docker(proxy, "create", *LABEL, f"{PREFIX}/built:1", "cat", "/built").stdout.strip()
    assert docker(proxy, "start", made).returncode == 0
    docker(proxy, "wait", made)
    assert docker(proxy, "logs", made).stdout == "built\n"
    docker(proxy, "rm", made)
    host_net = docker(proxy, "build", "--network", "host", "-q", str(tmp_path))
    assert host_net.returncode != 0 and "DW-P010" in host_net.stderr
    docker(proxy, "rmi", f"{PREFIX}/built:1")


def test_attach_run_rm(proxy: RunningProxy, lab_image: str, clean_containers: None) -> None:
    out = docker(
        proxy,
        "run",
        "--rm",
        "-i",
        *LABEL,
        lab_image,
        "sh",
        "-c",
        "read x; echo got:$x",
        input="hi\n",
    )
    assert out.returncode == 0 and out.stdout == "got:hi\n", out.stderr


def test_decision_log_lines(proxy: RunningProxy) -> None:
    docker(proxy, "version")
    docs = proxy.decisions()
    ping = [d for d in docs if d.get("route") == "version"]
    assert ping and ping[0]["decision"] == "allow" and ping[0]["status"] == 200
    assert set(ping[0]) >= {"ts", "client", "method", "path", "route", "decision", "latency_ms"}


def test_large_build_context_streams_and_load_is_refused(
    proxy: RunningProxy, lab_image: str, tmp_path: Path
) -> None:
    """Build contexts are judged by their query, not buffered: larger than max_body is fine."""
    (tmp_path / "Dockerfile").write_text(f"FROM {lab_image}\nCOPY blob /blob\n")
    (tmp_path / "blob").write_bytes(os.urandom(3 * 1024 * 1024))
    built = docker(proxy, "build", "-q", "-t", f"{PREFIX}/big:1", str(tmp_path), timeout=180)
    assert built.returncode == 0, built.stderr
    docker(proxy, "rmi", f"{PREFIX}/big:1")
    tar = tmp_path / "img.tar"
    tar.write_bytes(b"\0" * 1024)
    load = docker(proxy, "load", "-i", str(tar))
    assert load.returncode != 0 and "DW-P009" in load.stderr
