"""The distribution client against a real docker-registry and token service."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from dockward.errors import InputError
from dockward.image.registry import load_registry
from dockward.registry import (
    DigestMismatch,
    NotFound,
    Platform,
    RegistryClient,
    RegistryError,
    insecure_hosts,
    parse_reference,
)
from tests.registry.conftest import (
    PASSWORD,
    PROXY_PORT,
    REPO,
    USER,
    FaultProxy,
    Served,
    login,
    token_config,
    write_config,
)
from tests.update.conftest import _start_registry, _stop

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_anonymous_pull_and_platform_selection(served: Served, tmp_path: Path) -> None:
    client = RegistryClient(write_config(tmp_path, {}))
    ref = parse_reference(f"{served.host}/{REPO}:multi")
    assert client.head(ref).digest == served.index and client.head(ref).is_index
    amd = client.manifest(ref, platform=Platform("linux", "amd64"))
    assert amd.digest == served.single and not amd.is_index
    arm = client.manifest(ref, platform=Platform("linux", "arm64"))
    assert arm.digest != served.single
    assert (
        client.config_digest(ref, served.index, Platform("linux", "amd64"))
        == (amd.doc["config"]["digest"])
    )
    with pytest.raises(InputError, match="no manifest for platform linux/s390x"):
        client.manifest(ref, platform=Platform("linux", "s390x"))
    assert client.manifest(ref).is_index  # no platform asked: the index itself
    config = client.blob(ref, amd.doc["config"]["digest"])
    assert b'"amd64"' in config
    with pytest.raises(NotFound, match="not found"):
        client.head(parse_reference(f"{served.host}/{REPO}:absent"))
    # Anonymous callers may pull but not push: the token service grants `pull` only.
    with pytest.raises(RegistryError, match="refused access"):
        client.push_blob(ref, b"anonymous")
    assert served.tokens.requests and not any(r["sent_credentials"] for r in served.tokens.requests)


def test_login_from_docker_config_reaches_the_token_service(served: Served, tmp_path: Path) -> None:
    served.tokens.requests.clear()
    client = RegistryClient(login(tmp_path, served.host))
    ref = parse_reference(f"{served.host}/{REPO}:single")
    pushed = client.push_blob(ref, b"with a login")
    assert client.blob(ref, pushed) == b"with a login"
    assert all(r["authed"] for r in served.tokens.requests)
    wrong = RegistryClient(login(tmp_path, served.host, password="nope"))
    with pytest.raises(RegistryError, match=r"token server refused \(HTTP 401\)") as err:
        wrong.head(ref)
    assert "nope" not in str(err.value) and PASSWORD not in str(err.value)


def test_identity_token_is_exchanged_as_the_docker_cli_does(served: Served, tmp_path: Path) -> None:
    ref = parse_reference(f"{served.host}/{REPO}:single")
    entry = {"identitytoken": served.tokens.refresh_token}
    served.tokens.requests.clear()
    client = RegistryClient(write_config(tmp_path, {"auths": {served.host: entry}}))
    client.push_blob(ref, b"pushed with an identity token")
    assert served.tokens.requests[-1]["authed"]
    stale = write_config(tmp_path, {"auths": {served.host: {"identitytoken": "expired"}}})
    with pytest.raises(RegistryError, match=r"token server refused \(HTTP 401\)"):
        RegistryClient(stale).push_blob(ref, b"pushed with a stale identity token")


@pytest.fixture
def netns() -> Iterator[tuple[str, str]]:
    """A network namespace with its own address, reached over a veth pair: another host."""
    tag = uuid.uuid4().hex[:6]
    name, outer, inner = f"dw11a-{tag}", f"dw11a{tag}o", f"dw11a{tag}i"
    third = int(tag[:2], 16) % 250 + 1
    host_ip, ns_ip = f"10.211.{third}.1", f"10.211.{third}.2"

    def ip(*args: str) -> None:
        subprocess.run(["ip", *args], check=True, capture_output=True, timeout=10)

    ip("netns", "add", name)
    try:
        ip("link", "add", outer, "type", "veth", "peer", "name", inner)
        ip("link", "set", inner, "netns", name)
        ip("addr", "add", f"{host_ip}/30", "dev", outer)
        ip("link", "set", outer, "up")
        ip("-n", name, "addr", "add", f"{ns_ip}/30", "dev", inner)
        ip("-n", name, "link", "set", inner, "up")
        ip("-n", name, "link", "set", "lo", "up")
        yield name, ns_ip
    finally:
        subprocess.run(["ip", "link", "del", outer], capture_output=True, timeout=10)
        subprocess.run(["ip", "netns", "del", name], capture_output=True, timeout=10)


def _token_service_in(netns: str, address: str, port: int, keydir: Path) -> subprocess.Popen[str]:
    env = dict(os.environ, PYTHONPATH=f"{REPO_ROOT}{os.pathsep}{REPO_ROOT / 'src'}")
    argv = [sys.executable, "-m", "tests.registry.tokenserver", address, str(port), USER]
    proc = subprocess.Popen(
        ["ip", "netns", "exec", netns, *argv, PASSWORD, str(keydir)],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
        cwd=REPO_ROOT,
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    return proc


def test_plain_http_realm_on_another_host_receives_no_credentials(
    netns: tuple[str, str], keydir: Path, tmp_path: Path
) -> None:
    name, address = netns
    token_port, registry_port = 15873, 15874
    tokens = _token_service_in(name, address, token_port, keydir)
    realm = f"http://{address}:{token_port}/token"
    proc, root = _start_registry(registry_port, token=token_config(realm, keydir / "cert.pem"))
    host = f"127.0.0.1:{registry_port}"
    ref = parse_reference(f"{host}/{REPO}:single")
    try:
        store = login(tmp_path, host)
        # The token (anonymous, pull) is good: the registry answers 404 for the empty repo.
        with pytest.raises(NotFound):
            RegistryClient(store).head(ref)
        # scan --insecure-registry trusts the image's registry, not the realm it names.
        with pytest.raises(NotFound):
            load_registry(str(ref), (), insecure=True, docker_config=str(tmp_path))
        # A daemon that lists the realm's host as insecure would send them: the rule's other side.
        trusting = RegistryClient(store, insecure=insecure_hosts([f"{address}:{token_port}"]))
        with pytest.raises(NotFound):
            trusting.head(ref)
    finally:
        _stop(proc, root)
        tokens.terminate()
        out, _ = tokens.communicate(timeout=10)
    asked = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    assert [e["sent_credentials"] for e in asked] == [False, False, True]
    assert asked[2]["authed"]


def test_oversized_token_answer_is_refused(served: Served, tmp_path: Path) -> None:
    ref = parse_reference(f"{served.host}/{REPO}:single")
    served.tokens.pad = 2 << 20
    try:
        with pytest.raises(RegistryError, match="token answer larger than 1048576 bytes"):
            RegistryClient(write_config(tmp_path, {})).head(ref)
        served.tokens.pad = 900_000
        assert RegistryClient(write_config(tmp_path, {})).head(ref).digest == served.single
    finally:
        served.tokens.pad = 0


def test_cred_helper_runs_as_the_docker_cli_runs_it(
    served: Served, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bindir, log = tmp_path / "bin", tmp_path / "helper.log"
    bindir.mkdir()
    helper = f"dw11a{uuid.uuid4().hex[:8]}"
    script = bindir / f"docker-credential-{helper}"
    script.write_text(
        "#!/bin/sh\n"
        f'echo "argv: $*" >> {log}\n'
        f'echo "stdin: $(cat)" >> {log}\n'
        f'[ -e {tmp_path / "fail"} ] && {{ echo "credentials not found"; exit 1; }}\n'
        f'echo \'{{"ServerURL":"x","Username":"{USER}","Secret":"{PASSWORD}"}}\'\n'
    )
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")
    store = write_config(tmp_path, {"credHelpers": {served.host: helper}})
    ref = parse_reference(f"{served.host}/{REPO}:single")
    served.tokens.requests.clear()
    RegistryClient(store).push_blob(ref, b"pushed with a helper's login")
    assert log.read_text().splitlines() == ["argv: get", f"stdin: {served.host}"]
    assert served.tokens.requests[-1]["authed"]
    (tmp_path / "fail").touch()  # the helper has nothing: anonymous, so no push
    with pytest.raises(RegistryError, match="refused access"):
        RegistryClient(store).push_blob(ref, b"pushed without a login")


def test_429_is_retried_after_retry_after(
    served: Served, proxy: FaultProxy, tmp_path: Path
) -> None:
    client = RegistryClient(write_config(tmp_path, {}))
    ref = parse_reference(f"127.0.0.1:{PROXY_PORT}/{REPO}:single")
    proxy.throttle["/manifests/single"] = ["1"]
    assert client.head(ref).digest == served.single
    manifest_hits = [s for s in proxy.seen if "/manifests/single" in s[2]]
    assert manifest_hits[0][3] == 429 and manifest_hits[1][0] - manifest_hits[0][0] >= 0.95
    # A wait longer than the client's bound is reported at once, not slept through.
    proxy.throttle["/manifests/single"] = ["120"]
    started = time.monotonic()
    with pytest.raises(RegistryError, match=r"rate limit reached \(HTTP 429\)"):
        client.head(ref)
    assert time.monotonic() - started < 5


def test_content_that_does_not_match_its_digest_is_refused(
    served: Served, proxy: FaultProxy, tmp_path: Path
) -> None:
    client = RegistryClient(write_config(tmp_path, {}))
    ref = parse_reference(f"127.0.0.1:{PROXY_PORT}/{REPO}:single")
    with client.open_blob(ref, served.layer) as blob:
        blob.verify()
    assert client.manifest(ref, served.single).digest == served.single
    proxy.corrupt |= {f"/blobs/{served.layer}", f"/manifests/{served.single}"}
    with client.open_blob(ref, served.layer) as blob, pytest.raises(DigestMismatch):
        blob.verify()
    with pytest.raises(DigestMismatch):
        client.blob(ref, served.layer)
    with pytest.raises(DigestMismatch):
        client.manifest(ref, served.single)
