"""Extra real dockerd instances with their own socket, data-root and exec-root, for daemon checks."""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import os
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.pidfiles import owned_pid, signal_owned

DOCKER = "/usr/bin/docker" if os.path.exists("/usr/bin/docker") else "docker"


@dataclass
class Daemon:
    name: str
    root: Path
    socket: str
    config_file: Path
    proc: subprocess.Popen[bytes]
    tmpfs: bool

    @property
    def url(self) -> str:
        return f"unix://{self.socket}"


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def make_tls(directory: Path, ips: tuple[str, ...] = ("127.0.0.1",)) -> dict[str, str]:
    """A CA, a server certificate for IPS (127.0.0.1) and a client certificate (docker's file
    names)."""
    directory.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.UTC)

    def cert(
        subject: str, key: Any, issuer: Any, issuer_key: Any, ca: bool, server: bool
    ) -> x509.Certificate:
        b = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
            .issuer_name(issuer)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=2))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()), False
            )
            .add_extension(
                x509.KeyUsage(
                    digital_signature=not ca,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=not ca,
                    key_cert_sign=ca,
                    crl_sign=ca,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
        )
        if server:
            b = b.add_extension(
                x509.SubjectAlternativeName(
                    [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ips]
                ),
                False,
            )
            b = b.add_extension(
                x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), False
            )
        elif not ca:
            b = b.add_extension(
                x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH]), False
            )
        return b.sign(issuer_key, hashes.SHA256())

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "dwaudit CA")])
    ca = cert("dwaudit CA", ca_key, ca_name, ca_key, True, False)
    files: dict[str, str] = {}
    for role, server in (("server", True), ("client", False)):
        key = ec.generate_private_key(ec.SECP256R1())
        crt = cert(f"dwaudit {role}", key, ca_name, ca_key, False, server)
        prefix = "server-" if server else ""
        (directory / f"{prefix}cert.pem").write_bytes(crt.public_bytes(serialization.Encoding.PEM))
        (directory / f"{prefix}key.pem").write_bytes(_key_pem(key))
        files[f"{role}_cert"] = str(directory / f"{prefix}cert.pem")
        files[f"{role}_key"] = str(directory / f"{prefix}key.pem")
    (directory / "ca.pem").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    files["ca"] = str(directory / "ca.pem")
    for path in directory.iterdir():
        os.chmod(path, 0o400 if path.name.endswith("key.pem") else 0o444)
    return files


def ensure_netns(netns: str) -> None:
    """A network namespace of our own, so a daemon with iptables does not touch the host's rules."""
    if not Path(f"/run/netns/{netns}").exists():
        subprocess.run(["ip", "netns", "add", netns], check=True)
    subprocess.run(["ip", "-n", netns, "link", "set", "lo", "up"], check=True)


def start_dockerd(
    name: str, config: dict[str, Any], netns: str, tmpfs_data_root: bool = False
) -> Daemon:
    """Start dockerd in its own network namespace: with `bridge: none` in the host's namespace
    dockerd deletes the host's docker0, and with iptables it rewrites the host's rules."""
    root = Path(f"/tmp/{name}")
    stop_stale(root)
    root.mkdir(parents=True, exist_ok=True)
    data = root / "data"
    data.mkdir(exist_ok=True)
    if tmpfs_data_root:
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=512m", "tmpfs", str(data)], check=True)
    socket = str(root / "docker.sock")
    full = {
        "data-root": str(data),
        "exec-root": str(root / "exec"),
        "pidfile": str(root / "docker.pid"),
        "hosts": [f"unix://{socket}"],
    }
    full.update(config)
    full["hosts"] = [f"unix://{socket}", *config.get("hosts", [])]
    cfg = root / "daemon.json"
    cfg.write_text(json.dumps(full, indent=2))
    os.chmod(cfg, 0o644)
    log = open(root / "dockerd.log", "wb")  # noqa: SIM115 - lives as long as the daemon
    # nsenter joins only the network namespace; `ip netns exec` would hide the cgroup mounts.
    prefix = ["nsenter", f"--net=/run/netns/{netns}"]
    ensure_netns(netns)
    proc = subprocess.Popen(
        [*prefix, "dockerd", "--config-file", str(cfg)],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    return Daemon(name, root, socket, cfg, proc, tmpfs_data_root)


def wait_ready(d: Daemon, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if d.proc.poll() is not None:
            raise RuntimeError(f"{d.name} exited: {(d.root / 'dockerd.log').read_text()[-2000:]}")
        res = subprocess.run([DOCKER, "-H", d.url, "info"], capture_output=True, check=False)
        if res.returncode == 0:
            return
        time.sleep(0.3)
    raise RuntimeError(f"{d.name} did not answer within {timeout}s")


def stop(d: Daemon) -> None:
    if d.proc.poll() is None:
        d.proc.send_signal(signal.SIGTERM)
        try:
            d.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            d.proc.kill()
            d.proc.wait()
    stop_stale(d.root)


def stop_stale(root: Path) -> None:
    """Stop a daemon an earlier run left behind and clean its directory."""
    pid = signal_owned(root / "docker.pid", str(root))  # never a pid reused by another process
    if pid is not None:
        for _ in range(100):
            if owned_pid(root / "docker.pid", str(root)) != pid:
                break
            time.sleep(0.1)
    if root.exists():
        mounts = Path("/proc/mounts").read_text().splitlines()
        for line in sorted(
            (m.split()[1] for m in mounts if m.split()[1].startswith(str(root))), reverse=True
        ):
            subprocess.run(["umount", "-l", line], check=False)
        shutil.rmtree(root, ignore_errors=True)
