"""OCI layouts made by skopeo, and a real registry (Debian's docker-registry) with platforms
and basic auth from a Docker config file."""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
import subprocess
import tempfile
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from dockward.errors import ConnectionFailed, InputError
from dockward.image import ArchiveError
from dockward.scan import ScanOptions, inventory

OPEN_PORT, AUTH_PORT, TOKEN_PORT, TOKEN_REGISTRY_PORT = 15400, 15401, 15402, 15403


def _skopeo() -> str:
    path = shutil.which("skopeo")
    if not path:
        pytest.skip("skopeo is not installed (scripts/setup.sh --test installs it)")
    return path


def _blob(layout: Path, data: bytes) -> dict[str, Any]:
    digest = hashlib.sha256(data).hexdigest()
    (layout / "blobs" / "sha256" / digest).write_bytes(data)
    return {"digest": f"sha256:{digest}", "size": len(data)}


def make_multiplatform(layout: Path) -> None:
    """Turn a one-image OCI layout into an index of linux/amd64 and a fake linux/arm64 image
    (same layers, its own config), the way multi-arch images are published."""
    index = json.loads((layout / "index.json").read_text())
    desc = index["manifests"][0]
    manifest = json.loads((layout / "blobs" / "sha256" / desc["digest"][7:]).read_text())
    config = json.loads(
        (layout / "blobs" / "sha256" / manifest["config"]["digest"][7:]).read_text()
    )
    arm_config = dict(config, architecture="arm64")
    arm_manifest = dict(
        manifest, config=dict(manifest["config"], **_blob(layout, json.dumps(arm_config).encode()))
    )
    arm = _blob(layout, json.dumps(arm_manifest).encode())
    entries = [
        {
            "mediaType": desc["mediaType"],
            "digest": desc["digest"],
            "size": desc["size"],
            "platform": {"os": "linux", "architecture": "amd64"},
        },
        {
            "mediaType": desc["mediaType"],
            **arm,
            "platform": {"os": "linux", "architecture": "arm64"},
        },
    ]
    nested = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": entries,
    }
    top = _blob(layout, json.dumps(nested).encode())
    index["manifests"] = [
        {
            "mediaType": "application/vnd.oci.image.index.v1+json",
            **top,
            "annotations": {"org.opencontainers.image.ref.name": "multi"},
        }
    ]
    (layout / "index.json").write_text(json.dumps(index))


@pytest.fixture(scope="session")
def oci_layout(fixture_image: dict[str, Any]) -> Path:
    skopeo = _skopeo()
    out = fixture_image["work"] / "oci"
    if not out.exists():
        subprocess.run(
            [
                skopeo,
                "copy",
                "-q",
                f"docker-archive:{fixture_image['archive']}",
                f"oci:{out}:fixture",
            ],
            check=True,
            capture_output=True,
            timeout=300,
        )
    return out


def test_oci_layout_dir_and_tar(
    oci_layout: Path, fixture_image: dict[str, Any], tmp_path: Path
) -> None:
    inv = inventory(str(oci_layout), ScanOptions(source="oci"))
    ref = inventory(str(fixture_image["archive"]), ScanOptions(source="archive"))
    assert [p.purl for p in inv.sbom.packages] == [p.purl for p in ref.sbom.packages]
    tar = tmp_path / "layout.tar"
    subprocess.run(["tar", "-C", str(oci_layout), "-cf", str(tar), "."], check=True)
    assert len(inventory(str(tar), ScanOptions(source="oci")).sbom.packages) == len(
        inv.sbom.packages
    )


def test_zstd_layers_give_the_same_inventory(fixture_image: dict[str, Any], tmp_path: Path) -> None:
    out = tmp_path / "zstd"
    subprocess.run(
        [
            _skopeo(),
            "copy",
            "-q",
            "--dest-compress",
            "--dest-compress-format",
            "zstd",
            f"docker-archive:{fixture_image['archive']}",
            f"oci:{out}:fixture",
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    index = json.loads((out / "index.json").read_text())
    digest = index["manifests"][0]["digest"].split(":")[1]
    manifest = json.loads((out / "blobs" / "sha256" / digest).read_bytes())
    assert {la["mediaType"] for la in manifest["layers"]} == {
        "application/vnd.oci.image.layer.v1.tar+zstd"
    }
    inv = inventory(str(out), ScanOptions(source="oci", layer_cache=None))
    ref = inventory(str(fixture_image["archive"]), ScanOptions(source="archive", layer_cache=None))
    assert [p.purl for p in inv.sbom.packages] == [p.purl for p in ref.sbom.packages]
    assert inv.fs.get("usr/bin/fakesu") is not None


def test_oci_platform_selection_and_digest_check(oci_layout: Path, tmp_path: Path) -> None:
    multi = tmp_path / "multi"
    shutil.copytree(oci_layout, multi)
    make_multiplatform(multi)
    assert inventory(str(multi), ScanOptions(platform="linux/arm64")).spec.architecture == "arm64"
    assert inventory(str(multi), ScanOptions(platform="linux/amd64")).spec.architecture == "amd64"
    with pytest.raises(InputError, match="no manifest for platform linux/s390x"):
        inventory(str(multi), ScanOptions(platform="linux/s390x"))
    # a tampered layer blob no longer matches its digest
    biggest = max((multi / "blobs" / "sha256").iterdir(), key=lambda p: p.stat().st_size)
    data = bytearray(biggest.read_bytes())
    data[-1] ^= 1
    biggest.write_bytes(bytes(data))
    with pytest.raises(ArchiveError, match="does not match its digest"):
        inventory(str(multi), ScanOptions(platform="linux/amd64"))


def _wait(url: str) -> None:
    for _ in range(100):
        try:
            requests.get(url, timeout=1)
            return
        except requests.RequestException:
            time.sleep(0.1)
    raise RuntimeError(f"registry at {url} did not start")


@pytest.fixture(scope="session")
def registry() -> Iterator[dict[str, Any]]:
    """Two real registries on one storage dir: open on 15400, basic auth (htpasswd) on 15401."""
    binary = shutil.which("docker-registry")
    if not binary:
        pytest.skip("docker-registry is not installed (scripts/setup.sh --test installs it)")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import crypt  # bcrypt through libxcrypt, as htpasswd would write it

    base = Path(tempfile.mkdtemp(prefix="dwscan-registry-"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        (base / "htpasswd").write_text(
            f"scanner:{crypt.crypt('s3cret', crypt.mksalt(crypt.METHOD_BLOWFISH))}\n"
        )
    from tests.registry.tokenserver import ISSUER, SERVICE, TokenServer, make_key

    make_key(base)
    tokens = TokenServer("127.0.0.1", TOKEN_PORT, "scanner", "s3cret", base)
    tokens.anonymous = False
    tokens.start()
    token_auth = (
        f"auth:\n  token:\n    realm: http://127.0.0.1:{TOKEN_PORT}/token\n"
        f"    service: {SERVICE}\n    issuer: {ISSUER}\n    rootcertbundle: {base}/cert.pem\n"
    )
    procs = []
    for port, auth in (
        (OPEN_PORT, ""),
        (AUTH_PORT, f"auth:\n  htpasswd:\n    realm: dwscan\n    path: {base}/htpasswd\n"),
        (TOKEN_REGISTRY_PORT, token_auth),
    ):
        cfg = base / f"config-{port}.yml"
        cfg.write_text(
            f"version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {base}/data\n"
            f"http:\n  addr: 127.0.0.1:{port}\n{auth}"
        )
        procs.append(
            subprocess.Popen(
                [binary, "serve", str(cfg)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )
        )
        _wait(f"http://127.0.0.1:{port}/v2/")
    try:
        yield {"base": base}
    finally:
        for p in procs:
            p.terminate()
            p.wait(timeout=10)
        tokens.stop()
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="session")
def pushed(
    registry: dict[str, Any], oci_layout: Path, fixture_image: dict[str, Any]
) -> dict[str, str]:
    skopeo = _skopeo()
    multi = registry["base"] / "multi-layout"
    shutil.copytree(oci_layout, multi)
    make_multiplatform(multi)
    single = f"127.0.0.1:{OPEN_PORT}/dwscan/fixture:1"
    many = f"127.0.0.1:{OPEN_PORT}/dwscan/multi:1"
    subprocess.run(
        [
            skopeo,
            "copy",
            "-q",
            "--dest-tls-verify=false",
            f"docker-archive:{fixture_image['archive']}",
            f"docker://{single}",
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    subprocess.run(
        [
            skopeo,
            "copy",
            "-q",
            "--all",
            "--dest-tls-verify=false",
            f"oci:{multi}:multi",
            f"docker://{many}",
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    return {"single": single, "multi": many}


def test_registry_image_and_platforms(
    pushed: dict[str, str], fixture_image: dict[str, Any]
) -> None:
    inv = inventory(pushed["single"], ScanOptions(source="registry"))
    ref = inventory(str(fixture_image["archive"]), ScanOptions(source="archive"))
    assert [p.purl for p in inv.sbom.packages] == [p.purl for p in ref.sbom.packages]
    assert inv.loaded.repo_digests[0].startswith(f"127.0.0.1:{OPEN_PORT}/dwscan/fixture@sha256:")
    arm = inventory(pushed["multi"], ScanOptions(source="registry", platform="linux/arm64"))
    assert arm.spec.architecture == "arm64"
    with pytest.raises(InputError, match="not found"):
        inventory(f"127.0.0.1:{OPEN_PORT}/dwscan/absent:1", ScanOptions(source="registry"))


def test_registry_basic_auth_from_docker_config(pushed: dict[str, str], tmp_path: Path) -> None:
    ref = pushed["single"].replace(str(OPEN_PORT), str(AUTH_PORT))
    with pytest.raises(ConnectionFailed, match="needs a login"):
        inventory(ref, ScanOptions(source="registry", docker_config=str(tmp_path / "none")))
    cfg = tmp_path / "config.json"
    auth = base64.b64encode(b"scanner:s3cret").decode()
    cfg.write_text(json.dumps({"auths": {f"127.0.0.1:{AUTH_PORT}": {"auth": auth}}}))
    inv = inventory(ref, ScanOptions(source="registry", docker_config=str(cfg)))
    assert any(p.name == "requests" for p in inv.sbom.packages)
    cfg.write_text(
        json.dumps(
            {
                "auths": {
                    f"127.0.0.1:{AUTH_PORT}": {"auth": base64.b64encode(b"scanner:wrong").decode()}
                }
            }
        )
    )
    with pytest.raises(ConnectionFailed, match=r"refused access \(HTTP 401\)"):
        inventory(ref, ScanOptions(source="registry", docker_config=str(cfg)))


def test_scan_cache_answers_by_registry_digest(
    pushed: dict[str, str], vulndb: Path, tmp_path: Path
) -> None:
    from dockward.model import Severity
    from dockward.scan import ScanCache, scan_image

    cache = ScanCache(tmp_path / "scans.sqlite")
    result = scan_image(pushed["single"], vulndb, ScanOptions(source="registry"), cache=cache)
    assert result.manifest_digest.startswith("sha256:")
    by_manifest = cache.lookup(f"127.0.0.1:{OPEN_PORT}/dwscan/fixture@{result.manifest_digest}")
    by_config = cache.lookup(result.image_id)
    assert by_manifest is not None and by_config is not None
    assert by_manifest.worst is Severity.CRITICAL and by_manifest.counts == result.counts()


def test_registry_bearer_token_auth(pushed: dict[str, str], tmp_path: Path) -> None:
    ref = pushed["single"].replace(str(OPEN_PORT), str(TOKEN_REGISTRY_PORT))
    cfg = tmp_path / "config.json"
    cfg.write_text(
        json.dumps(
            {
                "auths": {
                    f"127.0.0.1:{TOKEN_REGISTRY_PORT}": {
                        "auth": base64.b64encode(b"scanner:s3cret").decode()
                    }
                }
            }
        )
    )
    inv = inventory(ref, ScanOptions(source="registry", docker_config=str(cfg)))
    assert any(p.name == "requests" for p in inv.sbom.packages)
    with pytest.raises(ConnectionFailed, match="refused"):
        inventory(ref, ScanOptions(source="registry", docker_config=str(tmp_path / "none")))


def test_registry_layers_scanned_before_are_not_downloaded_again(
    pushed: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dockward.registry import RegistryClient

    cache = str(tmp_path / "layers.sqlite")
    first = inventory(pushed["single"], ScanOptions(source="registry", layer_cache=cache))
    layers = {la.digest for la in first.loaded.layers}
    fetched: list[str] = []
    real_request = RegistryClient._request

    def no_layer_downloads(self: Any, method: str, ref: Any, url: str, **kwargs: Any) -> Any:
        fetched.append(url)
        if any(url.endswith(f"blobs/{d}") for d in layers):
            raise AssertionError(f"layer downloaded again: {url}")
        return real_request(self, method, ref, url, **kwargs)

    monkeypatch.setattr(RegistryClient, "_request", no_layer_downloads)
    again = inventory(pushed["single"], ScanOptions(source="registry", layer_cache=cache))
    assert [p.purl for p in again.sbom.packages] == [p.purl for p in first.sbom.packages]
    assert any("manifests/" in u for u in fetched)  # the registry is still asked what the tag is
    # Without the cache every layer is downloaded (and the patched client refuses).
    with pytest.raises(AssertionError, match="layer downloaded again"):
        inventory(pushed["single"], ScanOptions(source="registry", layer_cache=None))
