"""Learning mode end to end: `dockward proxy --learn` while the docker CLI plays a
Portainer-like session (root) and a Traefik-like one (uid 65534), then `dockward policy check`
proves the learned policy accepts the recorded session and refuses a privileged create."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO, run_cli
from tests.proxy.conftest import PREFIX

RUN = f"{PREFIX}-learn-{os.getpid()}"


@pytest.fixture
def workdir() -> Iterator[Path]:
    d = Path(tempfile.mkdtemp(prefix=f"{PREFIX}-learn-"))
    os.chmod(d, 0o755)
    yield d
    shutil.rmtree(d, ignore_errors=True)


def _docker(sock: Path, *args: str, home: str = "", nobody: bool = False) -> str:
    env = {"PATH": os.environ["PATH"], "HOME": home or os.environ.get("HOME", "/root")}
    if home:
        env["DOCKER_CONFIG"] = home
    argv = ["docker", "-H", f"unix://{sock}", *args]
    if nobody:
        setpriv = shutil.which("setpriv")
        assert setpriv, "util-linux setpriv is part of Debian's base system"
        argv = [setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", *argv]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=60, env=env)
    assert out.returncode == 0, f"{args}: {out.stderr}"
    return out.stdout


def test_learn_then_check(workdir: Path, lab_image: str, docker_api: object) -> None:
    learned = workdir / "learned.yaml"
    sock = workdir / "p.sock"
    data = workdir / "data"
    data.mkdir()
    env = dict(os.environ, PYTHONPATH=str(REPO / "src"))
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "dockward",
            "proxy",
            "--listen",
            f"unix://{sock}",
            "--socket-mode",
            "0666",
            "--learn",
            str(learned),
            "--log",
            str(workdir / "decisions.jsonl"),
        ],
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    home = tempfile.mkdtemp(prefix=f"{PREFIX}-home-")
    os.chmod(home, 0o777)
    try:
        deadline = time.monotonic() + 15
        while not sock.exists():
            assert proc.poll() is None and time.monotonic() < deadline, "proxy did not start"
            time.sleep(0.05)
        since = str(int(time.time()) - 1)
        # Portainer-like: lists everything, manages a container with a bind mount
        for args in (["version"], ["ps", "-a"], ["images"], ["network", "ls"], ["volume", "ls"]):
            _docker(sock, *args)
        cid = _docker(
            sock,
            "create",
            "--label",
            f"dockward.test={RUN}",
            "-v",
            f"{data}:/data",
            "--cap-drop",
            "ALL",
            "--cap-add",
            "CHOWN",
            lab_image,
            "sleep",
            "30",
        ).strip()
        _docker(sock, "start", cid)
        _docker(sock, "logs", cid)
        _docker(sock, "inspect", cid)
        _docker(sock, "stop", "-t", "1", cid)
        _docker(sock, "rm", cid)
        # Traefik-like: read-only discovery, as another user
        _docker(sock, "version", home=home, nobody=True)
        _docker(sock, "ps", home=home, nobody=True)
        _docker(
            sock,
            "events",
            "--since",
            since,
            "--until",
            str(int(time.time()) + 1),
            home=home,
            nobody=True,
        )
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(15)
        shutil.rmtree(home, ignore_errors=True)
    text = learned.read_text()
    assert text.startswith("# Learned by `dockward proxy --learn`")
    policy = yaml.safe_load(text)
    clients = {c["name"]: c for c in policy["clients"]}
    assert set(clients) == {"uid-0", "uid-65534"}, clients.keys()
    traefik = clients["uid-65534"]
    assert traefik["uid"] == [65534]
    assert set(traefik["allow"]) == {"ping", "version", "containers.list", "events"}
    portainer = clients["uid-0"]
    assert {
        "containers.create",
        "containers.start",
        "containers.stop",
        "containers.delete",
        "containers.logs",
        "images.list",
        "networks.list",
    } <= set(portainer["allow"])
    assert "containers.export" not in portainer["allow"]
    assert portainer["admission"]["capabilities"] == ["CHOWN"]
    assert portainer["admission"]["bind_paths"] == [str(data)]
    assert "DW-C001" in portainer["admission"]["deny"]
    # the learned policy accepts the recorded session ...
    session = Path(f"{learned}.session.jsonl")
    ok = run_cli("policy", "check", "--policy", str(learned), "--session", str(session))
    assert ok.code == 0, ok.out + ok.err
    # ... and refuses a privileged create, and a create by the read-only client
    priv = run_cli(
        "policy",
        "check",
        "--policy",
        str(learned),
        "--client",
        "uid-0",
        "--run",
        f"docker run --privileged {lab_image} true",
    )
    assert priv.code == 1 and "DW-C001" in priv.out
    create = next(
        json.loads(x) for x in session.read_text().splitlines() if "containers/create" in x
    )
    create["client"] = {"uid": 65534, "gid": 65534}
    forged = workdir / "forged.jsonl"
    forged.write_text(json.dumps(create) + "\n")
    refused = run_cli("policy", "check", "--policy", str(learned), "--session", str(forged))
    assert refused.code == 1 and "DW-P011" in refused.out
