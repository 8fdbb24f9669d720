"""Real receivers for monitor outputs: an rsyslogd and an HTTP server, on this issue's ports."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import until

RSYSLOG_UDP = 15710
RSYSLOG_TCP = 15711
RSYSLOG_TLS = 15712
HTTP_PORT = 15720
HTTP_PORT_DOWN = 15721


def wait_for(predicate: Any, timeout: float = 15.0, interval: float = 0.05) -> Any:
    """`until` that hands back the predicate's last (false) value instead of raising: the
    monitor tests assert on it themselves, with their own message."""
    try:
        return until(predicate, timeout, "", interval)
    except AssertionError:
        return predicate()


def _self_signed(directory: Path) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def _has_openssl_driver() -> bool:
    return any(
        Path(d, "lmnsd_ossl.so").exists()
        for d in ("/usr/lib/x86_64-linux-gnu/rsyslog", "/usr/lib/aarch64-linux-gnu/rsyslog")
    )


@dataclass
class Rsyslog:
    dir: Path
    log: Path
    udp: int
    tcp: int
    tls: int | None
    ca: Path | None

    def lines(self) -> list[str]:
        try:
            return self.log.read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            return []


@pytest.fixture(scope="session")
def rsyslog() -> Iterator[Rsyslog]:
    binary = shutil.which("rsyslogd") or "/usr/sbin/rsyslogd"
    if not os.path.exists(binary):
        pytest.fail("rsyslogd is not installed (scripts/setup.sh --test installs rsyslog)")
    work = Path(tempfile.mkdtemp(prefix="dwmon-rsyslog-", dir="/tmp"))
    (work / "spool").mkdir()
    log = work / "received.log"
    ca: Path | None = None
    tls_port: int | None = None
    tls_input = ""
    if _has_openssl_driver():
        cert, key = _self_signed(work)
        ca, tls_port = cert, RSYSLOG_TLS
        tls_input = f"""
input(type="imtcp" port="{RSYSLOG_TLS}" address="127.0.0.1" streamDriver.name="ossl"
      streamDriver.mode="1" streamDriver.authMode="anon" streamDriver.CAFile="{cert}"
      streamDriver.CertFile="{cert}" streamDriver.KeyFile="{key}")
"""
    conf = work / "rsyslog.conf"
    conf.write_text(
        f"""
global(workDirectory="{work / "spool"}")
module(load="imudp")
input(type="imudp" port="{RSYSLOG_UDP}" address="127.0.0.1")
module(load="imtcp")
input(type="imtcp" port="{RSYSLOG_TCP}" address="127.0.0.1")
{tls_input}
template(name="dwmon" type="string" string="%rawmsg%\\n")
*.* action(type="omfile" file="{log}" template="dwmon")
""",
        encoding="utf-8",
    )
    pidfile = work / "rsyslogd.pid"
    proc = subprocess.Popen(
        [binary, "-n", "-f", str(conf), "-i", str(pidfile)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )

    def tcp_up() -> bool:
        try:
            socket.create_connection(("127.0.0.1", RSYSLOG_TCP), timeout=0.2).close()
            return True
        except OSError:
            return proc.poll() is not None

    wait_for(tcp_up, 20)
    if proc.poll() is not None:
        out = proc.stdout.read().decode() if proc.stdout else ""
        pytest.fail(f"rsyslogd did not start: {out}")
    try:
        yield Rsyslog(work, log, RSYSLOG_UDP, RSYSLOG_TCP, tls_port, ca)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        shutil.rmtree(work, ignore_errors=True)


@dataclass
class Receiver:
    port: int
    requests: list[dict[str, Any]] = field(default_factory=list)
    server: ThreadingHTTPServer | None = None
    thread: threading.Thread | None = None
    status: int = 200

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                receiver.requests.append(
                    {"path": self.path, "headers": dict(self.headers), "body": body}
                )
                answer = b"{}"
                if self.path.endswith("/_bulk"):
                    answer = json.dumps({"errors": False, "items": []}).encode()
                self.send_response(receiver.status)
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, format: str, *args: Any) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    def json_bodies(self) -> list[Any]:
        return [json.loads(r["body"]) for r in self.requests]


@pytest.fixture
def http_receiver() -> Iterator[Receiver]:
    r = Receiver(HTTP_PORT)
    r.start()
    try:
        yield r
    finally:
        r.stop()


@pytest.fixture
def spool_dir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="dwmon-spool-", dir="/tmp"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)
