"""A small fleet of real engines: three dockerd instances in their own network namespaces, one
reached over TCP with TLS (through a veth pair), one over ssh (a private sshd, key auth)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.audit.daemons import Daemon, ensure_netns, make_tls, start_dockerd, stop, wait_ready
from tests.conftest import free_port
from tests.pidfiles import signal_owned

VETH_HOST, VETH_NS = "dwf14-h", "dwf14-n"
HOST_IP, NS_IP = "10.214.14.1", "10.214.14.2"
TCP_PORT = 2376


def veth(netns: str) -> None:
    """A link from the host's namespace into NETNS, so TCP to the daemon there works."""
    subprocess.run(["ip", "link", "del", VETH_HOST], capture_output=True, check=False)
    subprocess.run(
        ["ip", "link", "add", VETH_HOST, "type", "veth", "peer", "name", VETH_NS, "netns", netns],
        check=True,
    )
    subprocess.run(["ip", "addr", "add", f"{HOST_IP}/30", "dev", VETH_HOST], check=True)
    subprocess.run(["ip", "link", "set", VETH_HOST, "up"], check=True)
    subprocess.run(["ip", "-n", netns, "addr", "add", f"{NS_IP}/30", "dev", VETH_NS], check=True)
    subprocess.run(["ip", "-n", netns, "link", "set", VETH_NS, "up"], check=True)


@dataclass
class Sshd:
    root: Path
    port: int
    proc: subprocess.Popen[bytes]
    bindir: Path

    @property
    def url(self) -> str:
        return f"ssh://root@127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        """The client side: an `ssh` on PATH that uses this test's key and known_hosts (OpenSSH
        reads ~/.ssh from the password database, not $HOME)."""
        return {"PATH": f"{self.bindir}:{os.environ.get('PATH', '/usr/bin:/bin')}"}


def start_sshd(root: Path, docker_host: str) -> Sshd:
    """sshd on 127.0.0.1 (key auth only) whose sessions talk to DOCKER_HOST."""
    if root.exists():
        signal_owned(root / "sshd.pid", str(root))  # its argv names root/sshd_config
        shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    os.chmod(root, 0o700)
    Path("/run/sshd").mkdir(exist_ok=True)
    for name, kind in (("host_key", "ed25519"), ("id_client", "ed25519")):
        subprocess.run(
            ["ssh-keygen", "-q", "-t", kind, "-N", "", "-f", str(root / name)], check=True
        )
    (root / "authorized_keys").write_text((root / "id_client.pub").read_text())
    port = free_port()
    (root / "sshd_config").write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {root / 'host_key'}\n"
        f"PidFile {root / 'sshd.pid'}\nAuthorizedKeysFile {root / 'authorized_keys'}\n"
        "PasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\n"
        "PermitRootLogin prohibit-password\nStrictModes no\n"
        f"SetEnv DOCKER_HOST={docker_host}\n"
    )
    host_pub = (root / "host_key.pub").read_text().split()
    (root / "known_hosts").write_text(f"[127.0.0.1]:{port} {host_pub[0]} {host_pub[1]}\n")
    (root / "ssh_config").write_text(
        f"Host *\n  IdentityFile {root / 'id_client'}\n  IdentitiesOnly yes\n"
        f"  UserKnownHostsFile {root / 'known_hosts'}\n  StrictHostKeyChecking yes\n"
        "  BatchMode yes\n  ConnectTimeout 10\n"
    )
    bindir = root / "bin"
    bindir.mkdir()
    wrapper = bindir / "ssh"
    wrapper.write_text(f'#!/bin/sh\nexec /usr/bin/ssh -F {root / "ssh_config"} "$@"\n')
    wrapper.chmod(0o755)
    proc = subprocess.Popen(
        ["/usr/sbin/sshd", "-D", "-e", "-f", str(root / "sshd_config")],
        stdout=open(root / "sshd.log", "wb"),  # noqa: SIM115 - lives as long as sshd
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            if proc.poll() is not None:
                raise RuntimeError((root / "sshd.log").read_text()) from None
            time.sleep(0.1)
    return Sshd(root, port, proc, bindir)


def stop_sshd(s: Sshd) -> None:
    if s.proc.poll() is None:
        s.proc.terminate()
        try:
            s.proc.wait(10)
        except subprocess.TimeoutExpired:
            s.proc.kill()
            s.proc.wait()
    shutil.rmtree(s.root, ignore_errors=True)


class HungEngine:
    """A socket that accepts connections and never answers: an engine that stopped responding."""

    def __init__(self, path: Path) -> None:
        path.unlink(missing_ok=True)
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.bind(str(path))
        self.sock.listen(16)
        self.conns: list[socket.socket] = []
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"unix://{self.path}"

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.conns.append(conn)

    def close(self) -> None:
        self.sock.close()
        for c in self.conns:
            c.close()
        self.path.unlink(missing_ok=True)


@dataclass
class Fleet:
    a: Daemon
    b: Daemon
    c: Daemon
    sshd: Sshd
    tls: dict[str, str]
    hung: HungEngine
    daemons: list[Daemon] = field(default_factory=list)

    @property
    def tcp_url(self) -> str:
        return f"tcp://{NS_IP}:{TCP_PORT}"

    def env(self) -> dict[str, str]:
        return {
            **self.sshd.env(),
            "DOCKER_CERT_PATH": str(Path(self.tls["ca"]).parent),
            "DOCKER_TLS_VERIFY": "1",
        }


def start_fleet(base: Path) -> Fleet:
    tls = make_tls(base / "tls", ips=(NS_IP,))
    ensure_netns("dwfleet-b")
    veth("dwfleet-b")  # before dockerd b binds its TCP address
    a = start_dockerd("dwfleet-a", {"iptables": False, "bridge": "none"}, netns="dwfleet-a")
    b = start_dockerd(
        "dwfleet-b",
        {
            "iptables": False,
            "bridge": "none",
            "hosts": [f"tcp://{NS_IP}:{TCP_PORT}"],
            "tlsverify": True,
            "tlscacert": tls["ca"],
            "tlscert": tls["server_cert"],
            "tlskey": tls["server_key"],
        },
        netns="dwfleet-b",
    )
    c = start_dockerd("dwfleet-c", {"iptables": False, "bridge": "none"}, netns="dwfleet-c")
    started = [a, b, c]
    try:
        for d in started:
            wait_ready(d, timeout=180)  # the machine is shared: slow under load, not broken
        sshd = start_sshd(base / "sshd", c.url)
    except BaseException:
        for d in started:
            stop(d)
        raise
    return Fleet(a, b, c, sshd, tls, HungEngine(base / "hung.sock"), started)


def stop_fleet(f: Fleet) -> None:
    f.hung.close()
    stop_sshd(f.sshd)
    for d in f.daemons:
        stop(d)
    subprocess.run(["ip", "link", "del", VETH_HOST], capture_output=True, check=False)
