"""Image rules against a real registry: `dockward sign`, cosign's format, pulls through the proxy."""

from __future__ import annotations

import base64
import hashlib
import json
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from dockward.policy.cosign import (
    OCI_CONFIG,
    OCI_MANIFEST,
    SIGNATURE_ANNOTATION,
    SIMPLE_SIGNING,
    load_public_key,
    signature_tag,
    verify_image,
)
from dockward.policy.model import parse_policy
from dockward.proxy.authz import PolicyAuthorizer
from dockward.registry import RegistryClient, insecure_hosts, parse_reference
from tests.conftest import run_cli
from tests.proxy.conftest import PREFIX, RunningProxy

FIX = Path(__file__).resolve().parents[1] / "policy" / "fixtures" / "cosign"


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("keys")
    out = run_cli("sign", "--generate-key", str(d / "cosign"))
    assert out.code == 0, out.err
    assert (d / "cosign.key").stat().st_mode & 0o777 == 0o600
    return d


@pytest.fixture(scope="module")
def signed(keys: Path, pushed_images: dict[str, str], registry: str) -> dict[str, str]:
    out = run_cli(
        "sign",
        "--key",
        str(keys / "cosign.key"),
        "--insecure-registry",
        registry,
        pushed_images["signed"],
    )
    assert out.code == 0, out.err
    return pushed_images


def test_sign_cli_and_verify(signed: dict[str, str], keys: Path, registry: str) -> None:
    ok = run_cli(
        "sign",
        "--verify",
        "--key",
        str(keys / "cosign.pub"),
        "--insecure-registry",
        registry,
        signed["signed"],
    )
    assert ok.code == 0 and "1 valid signature" in ok.out
    bad = run_cli(
        "sign",
        "--verify",
        "--key",
        str(keys / "cosign.pub"),
        "--insecure-registry",
        registry,
        signed["unsigned"],
    )
    assert bad.code == 1 and "no signature" in bad.err
    usage = run_cli("sign", signed["signed"])
    assert usage.code == 2 and "\n" not in usage.err.strip()


def test_signature_layout_is_cosigns(signed: dict[str, str], registry: str) -> None:
    client = RegistryClient(insecure=insecure_hosts([registry]))
    ref = parse_reference(signed["signed"])
    digest = client.resolve(ref)
    found = client.manifest(ref, signature_tag(digest))
    assert found.media_type == "application/vnd.oci.image.manifest.v1+json"
    manifest = json.loads(found.body)
    assert manifest["mediaType"] == OCI_MANIFEST and manifest["config"]["mediaType"] == OCI_CONFIG
    (layer,) = manifest["layers"]
    assert layer["mediaType"] == SIMPLE_SIGNING
    payload = json.loads(client.blob(ref, layer["digest"]))
    assert payload["critical"]["image"]["docker-manifest-digest"] == digest
    assert payload["critical"]["type"] == "cosign container image signature"
    assert base64.b64decode(layer["annotations"][SIGNATURE_ANNOTATION])


def test_published_cosign_signature_from_a_registry(registry: str) -> None:
    """cosign's own output (sigstore-rs fixture), stored the way cosign stores it, verifies."""
    client = RegistryClient(insecure=insecure_hosts([registry]))
    ref = parse_reference(f"{registry}/{PREFIX}/published")
    payload = (FIX / "sigstore-rs.payload.json").read_bytes()
    digest = "sha256:f3cfc9d0dbf931d3db4685ec659b7ac68e2a578219da4aae65427886e649b06b"
    pdigest = client.push_blob(ref, payload)
    config = json.dumps({"rootfs": {"type": "layers", "diff_ids": [pdigest]}}).encode()
    cdigest = client.push_blob(ref, config)
    client.push_manifest(
        ref,
        signature_tag(digest),
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "size": len(config), "digest": cdigest},
            "layers": [
                {
                    "mediaType": SIMPLE_SIGNING,
                    "size": len(payload),
                    "digest": pdigest,
                    "annotations": {
                        SIGNATURE_ANNOTATION: (FIX / "sigstore-rs.sig.b64").read_text()
                    },
                }
            ],
        },
    )
    assert hashlib.sha256(payload).hexdigest() == pdigest[7:]
    v = verify_image(client, load_public_key(FIX / "sigstore-rs.pub"), ref, digest)
    assert v.signatures == 1


def _pull(proxy: RunningProxy, ref: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["docker", "-H", proxy.url, "pull", ref], capture_output=True, text=True, timeout=120
    )


def test_pull_and_run_gated_by_signature(
    proxy_factory: Callable[..., RunningProxy],
    signed: dict[str, str],
    keys: Path,
    registry: str,
    docker_api: Any,
    clean_containers: None,
) -> None:
    policy = parse_policy(
        {
            "default": {"allow": ["*"]},
            "admission": {
                "images": {
                    "registries": [registry],
                    "cosign_key": str(keys / "cosign.pub"),
                    "insecure_registries": [registry],
                }
            },
        }
    )
    from dockward.policy.admission import ImageGate
    from dockward.proxy.runner import local_digest_lookup

    gate = ImageGate(local_digest=local_digest_lookup("/var/run/docker.sock"))
    proxy = proxy_factory(PolicyAuthorizer(policy), gate=gate)
    ok = _pull(proxy, signed["signed"])
    assert ok.returncode == 0, ok.stderr
    bad = _pull(proxy, signed["unsigned"])
    assert bad.returncode != 0 and "DW-P008" in bad.stderr and "no signature" in bad.stderr
    hub = _pull(proxy, "busybox:latest")
    assert hub.returncode != 0 and "DW-P005" in hub.stderr
    # containers/create judges the image too: the local image's digest for that repository
    run = subprocess.run(
        [
            "docker",
            "-H",
            proxy.url,
            "create",
            "--label",
            f"dockward.test={PREFIX}",
            signed["signed"],
            "true",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0, run.stderr
    run = subprocess.run(
        [
            "docker",
            "-H",
            proxy.url,
            "create",
            "--label",
            f"dockward.test={PREFIX}",
            signed["unsigned"],
            "true",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode != 0 and "DW-P008" in run.stderr
