"""`scan --registry`: a walk of the local docker-registry (several repositories and tags), each
manifest scanned once by digest, recorded in the store."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dockward.store import open_store
from tests.conftest import run_cli
from tests.update.conftest import _start_registry, _stop

PORT = 15914


def _push(archive: Path, target: str) -> None:
    """Copy a `docker save` archive to the registry with skopeo: no tag is added to the shared
    daemon's images (other tests compare their repo tags)."""
    import subprocess

    subprocess.run(
        [
            "skopeo",
            "copy",
            "--dest-tls-verify=false",
            f"docker-archive:{archive}",
            f"docker://{target}",
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )


@pytest.fixture(scope="module")
def walk_registry(
    docker_api: Any,
    fixture_image: dict[str, Any],
    lab_image: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[str]:
    proc, root = _start_registry(PORT)
    host = f"127.0.0.1:{PORT}"
    lab_archive = tmp_path_factory.mktemp("walk") / "lab.tar"
    lab_archive.write_bytes(b"".join(docker_api.get_image(lab_image)))
    try:
        for target in ("walk/app:1", "walk/app:latest", "walk/copy:1"):
            _push(fixture_image["archive"], f"{host}/{target}")
        _push(lab_archive, f"{host}/walk/busy:1")
        _push(lab_archive, f"{host}/other/busy:1")
        yield host
    finally:
        _stop(proc, root)


def test_walk_scans_each_manifest_once_and_records_it(
    walk_registry: str, vulndb: Path, tmp_path: Path
) -> None:
    store = str(tmp_path / "reg.sqlite")
    res = run_cli(
        "scan",
        "--registry",
        f"{walk_registry}/walk",
        "--db",
        str(vulndb),
        "--store",
        store,
        "-f",
        "json",
        "--fail-on",
        "never",
        timeout=300,
    )
    assert res.code == 0, res.err
    doc = json.loads(res.out)
    assert doc["extra"]["registry"] == {
        "host": walk_registry,
        "prefix": "walk",
        "repositories": 3,
        "tags": 4,
        "manifests": 2,
        "scanned": 2,
    }
    vulns = [r for r in doc["results"] if doc["rules"][r["rule_id"]]["kind"] == "vulnerability"]
    assert vulns, "the fixture image has known-vulnerable packages"
    app = [r for r in vulns if "walk/app:1 (+2 tags)" in r["target"]]
    assert app and all(r["evidence"]["tags"].count(walk_registry) == 3 for r in app)
    s = open_store(store)
    (run,) = s.latest("scan")
    assert run.host == f"{walk_registry}/walk" and run.ok and run.vulnerable_images
    assert sum(run.vulnerable_images.values()) == 1  # the busybox image has no packages
    s.close()


def test_bad_registry_arguments(tmp_path: Path) -> None:
    for bad in ("http://x/y", "host/UPPER", "a b"):
        res = run_cli("scan", "--registry", bad, "--no-store")
        assert res.code == 2 and res.err.count("\n") == 1, (bad, res.err)
    res = run_cli("scan", "img", "--registry", "127.0.0.1:1", "--no-store")
    assert res.code == 2 and "name no IMAGE" in res.err
    res = run_cli("scan", "--registry", "127.0.0.1:1/x", "--no-store", "--fail-on", "never")
    assert res.code == 2 and "127.0.0.1:1" in res.err and res.err.count("\n") == 1


def test_catalog_and_tags_follow_link_pages(walk_registry: str) -> None:
    from dockward.registry import RegistryClient, parse_reference

    client = RegistryClient()
    ref = parse_reference(f"{walk_registry}/walk/app")
    assert client.catalog(ref, page=1) == ["other/busy", "walk/app", "walk/busy", "walk/copy"]
    assert client.catalog(ref, page=1, limit=2) == ["other/busy", "walk/app"]
    assert sorted(client.tags(ref, page=1)) == ["1", "latest"]


def test_attached_scan_answers_policy_check_on_a_host_that_never_scanned(
    walk_registry: str, vulndb: Path, tmp_path: Path
) -> None:
    from dockward.registry import RegistryClient, parse_reference
    from dockward.scan.attach import ARTIFACT_TYPE, attached_worst, fallback_tag

    res = run_cli(
        "scan",
        "--registry",
        f"{walk_registry}/walk",
        "--db",
        str(vulndb),
        "--attach",
        "--no-store",
        "-f",
        "json",
        "--fail-on",
        "never",
        timeout=300,
    )
    assert res.code == 0, res.err
    assert not [w for w in json.loads(res.out)["warnings"] if "not attached" in w]
    client = RegistryClient()
    ref = parse_reference(f"{walk_registry}/walk/app:1")
    digest = client.head(ref).digest
    # docker-registry 2.8 has no referrers API: the tag scheme holds the index
    assert client.referrers(ref, digest) is None
    index = client.manifest(ref, fallback_tag(digest)).doc
    assert [m["artifactType"] for m in index["manifests"]] == [ARTIFACT_TYPE]
    worst, _ = attached_worst(client, ref, digest)
    assert worst is not None and worst.label in ("critical", "high", "medium", "low")
    copy = parse_reference(f"{walk_registry}/walk/copy:1")  # same manifest, its own artifact
    assert attached_worst(client, copy, digest)[0] == worst
    busy = parse_reference(f"{walk_registry}/walk/busy:1")
    assert attached_worst(client, busy, client.head(busy).digest)[0].label == "info"  # type: ignore[union-attr]

    policy = tmp_path / "policy.yaml"
    policy.write_text("admission:\n  images:\n    fail_on_severity: critical\n")
    env = {"DOCKER_HOST": "tcp://127.0.0.1:1", "XDG_CACHE_HOME": str(tmp_path / "empty-cache")}
    image = f"{walk_registry}/walk/app:1"
    base = ("policy", "check", "--policy", str(policy), "--image", image, "-f", "json")
    never = run_cli(*base, "--fail-on", "never", env=env)
    assert never.code == 0, never.err
    (r,) = [
        x
        for x in json.loads(never.out)["results"]
        if x["rule_id"] == "DW-P004" or "scanned" in x["message"]
    ]
    assert r["status"] == "fail" and "never scanned" in r["message"]
    known = run_cli(*base, "--registry-scans", "--fail-on", "never", env=env)
    assert known.code == 0, known.err
    msgs = [x["message"] for x in json.loads(known.out)["results"]]
    assert not any("never scanned" in m for m in msgs), msgs
    clean = run_cli(
        *base[:-4],
        "--image",
        f"{walk_registry}/walk/busy:1",
        "--registry-scans",
        "-f",
        "json",
        "--fail-on",
        "low",
        env=env,
    )
    assert clean.code == 0, clean.out
    # a second walk skips the sha256-<hex> referrers tags
    again = run_cli(
        "scan",
        "--registry",
        f"{walk_registry}/walk",
        "--db",
        str(vulndb),
        "--no-store",
        "-f",
        "json",
        "--fail-on",
        "never",
        timeout=300,
    )
    assert json.loads(again.out)["extra"]["registry"]["tags"] == 4
    _proxy_gate_reads_attached_scans(f"{walk_registry}/walk/busy:1", tmp_path)


def _create_through(proxy_socket: str, image: str) -> tuple[int, str]:
    """POST /containers/create through the proxy: (status, body)."""
    import http.client
    import socket

    class Unix(http.client.HTTPConnection):
        def connect(self) -> None:
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.sock.settimeout(30)
            self.sock.connect(proxy_socket)

    conn = Unix("localhost")
    body = json.dumps({"Image": image, "Cmd": ["true"], "Labels": {"dockward.test": "dwwalk"}})
    conn.request("POST", "/v1.41/containers/create", body, {"Content-Type": "application/json"})
    res = conn.getresponse()
    out = (res.status, res.read().decode(errors="replace"))
    conn.close()
    return out


def _proxy_gate_reads_attached_scans(image: str, tmp_path: Path) -> None:
    """The proxy's image gate, like `policy check --registry-scans`: an image this host never
    scanned is denied, unless the proxy opts in to the scan attached in its registry (the image
    is not on the daemon: an admitted create reaches it and gets its 404)."""
    from dockward.policy.admission import ImageGate
    from dockward.policy.model import parse_policy
    from dockward.policy.vulns import NoScanDB
    from dockward.proxy.authz import PolicyAuthorizer
    from dockward.proxy.runner import with_registry_scans
    from tests.proxy.conftest import RunningProxy

    policy = parse_policy(
        {"default": {"allow": ["*"]}, "admission": {"images": {"fail_on_severity": "low"}}}
    )
    for opted_in in (False, True):
        work = tmp_path / f"proxy-{opted_in}"
        work.mkdir()
        gate = ImageGate(vulns=NoScanDB("no local scan"))
        proxy = RunningProxy(
            PolicyAuthorizer(policy), work, gate=with_registry_scans(gate) if opted_in else gate
        )
        try:
            status, body = _create_through(proxy.socket, image)
        finally:
            proxy.close()
        if opted_in:
            assert status == 404 and "No such image" in body, (status, body)
        else:
            assert status == 403 and "never scanned" in body, (status, body)
