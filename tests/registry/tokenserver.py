"""A Docker registry token service (the distribution token spec) for the client tests.

Issues RS256 JWTs with the signing certificate in `x5c`; the real `docker-registry` verifies them
against the same certificate as its `rootcertbundle`. Anonymous callers get `pull`, the test user
`pull,push`. Every request is logged (scope, whether credentials came) to `requests` and, when run
as a program (inside a network namespace), as JSON lines on stdout.

    python -m tests.registry.tokenserver HOST PORT USER PASSWORD KEYDIR
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import secrets
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

ISSUER, SERVICE = "dw11a-issuer", "dw11a-registry"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def make_key(keydir: Path) -> Path:
    """An RSA key and its self-signed certificate in `keydir`; returns the certificate path."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, ISSUER)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    (keydir / "key.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    (keydir / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return keydir / "cert.pem"


class TokenServer:
    def __init__(self, host: str, port: int, user: str, password: str, keydir: Path) -> None:
        key = serialization.load_pem_private_key((keydir / "key.pem").read_bytes(), None)
        assert isinstance(key, rsa.RSAPrivateKey)
        self.key = key
        self.cert = x509.load_pem_x509_certificate((keydir / "cert.pem").read_bytes())
        self.user, self.password = user, password
        self.pad = 0  # bytes of padding in each answer (the oversized-answer test)
        self.anonymous = True  # False: a token only with the login
        self.refresh_token = secrets.token_hex(16)  # the identity token `docker login` would keep
        self.requests: list[dict[str, Any]] = []
        self.on_request = lambda entry: None
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                query = parse_qs(urlsplit(self.path).query)
                header = self.headers.get("Authorization", "")
                secret = f"{server.user}:{server.password}".encode()
                authed = header == "Basic " + base64.b64encode(secret).decode()
                entry = {
                    "scope": query.get("scope"),
                    "authed": authed,
                    "sent_credentials": bool(header),
                }
                server.requests.append(entry)
                server.on_request(entry)
                if (header or not server.anonymous) and not authed:
                    self.send_response(401)
                    self.end_headers()
                    return
                answer = {"token": server.token(query.get("scope", []), authed)}
                if server.pad:
                    answer["padding"] = "x" * server.pad
                body = json.dumps(answer).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self) -> None:
                """The OAuth2 form Docker sends with an identity token (grant_type=refresh_token)."""
                length = int(self.headers.get("Content-Length") or 0)
                form = parse_qs(self.rfile.read(length).decode())
                authed = form.get("grant_type") == ["refresh_token"] and form.get(
                    "refresh_token"
                ) == [server.refresh_token]
                entry = {"scope": form.get("scope"), "authed": authed, "sent_credentials": True}
                server.requests.append(entry)
                server.on_request(entry)
                if not authed:
                    self.send_response(401)
                    self.end_headers()
                    return
                token = server.token(form.get("scope", []), True)
                body = json.dumps({"access_token": token}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer((host, port), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def token(self, scopes: list[str], authed: bool) -> str:
        access = []
        for scope in scopes:
            kind, _, rest = scope.partition(":")
            name, _, actions = rest.rpartition(":")
            allowed = {"pull", "push"} if authed else {"pull"}
            access.append(
                {"type": kind, "name": name, "actions": sorted(set(actions.split(",")) & allowed)}
            )
        now = int(dt.datetime.now(dt.UTC).timestamp())
        der = self.cert.public_bytes(serialization.Encoding.DER)
        header = {"typ": "JWT", "alg": "RS256", "x5c": [base64.b64encode(der).decode()]}
        claims = {
            "iss": ISSUER,
            "sub": self.user if authed else "",
            "aud": SERVICE,
            "exp": now + 300,
            "nbf": now - 10,
            "iat": now,
            "jti": secrets.token_hex(8),
            "access": access,
        }
        signing = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"
        sig = self.key.sign(signing.encode(), padding.PKCS1v15(), hashes.SHA256())
        return f"{signing}.{_b64(sig)}"

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


if __name__ == "__main__":
    host, port, user, password, keydir = sys.argv[1:6]
    server = TokenServer(host, int(port), user, password, Path(keydir))

    def log(entry: dict[str, Any]) -> None:
        sys.stdout.write(json.dumps(entry) + "\n")
        sys.stdout.flush()

    server.on_request = log
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    server.httpd.serve_forever()
