"""Multi-platform tags: an image index in the real registry, resolved to this host's platform."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import requests

from tests.update.conftest import LABEL, PREFIX, Registry, build_version, push
from tests.update.test_update_e2e import _update, events

DOCKER_V2 = "application/vnd.docker.distribution.manifest.v2+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"


def _descriptor(registry: Registry, repo: str, tag: str, arch: str) -> dict[str, Any]:
    resp = requests.get(
        f"http://{registry.host}/v2/{repo}/manifests/{tag}",
        headers={"Accept": DOCKER_V2},
        timeout=10,
    )
    resp.raise_for_status()
    return {
        "mediaType": DOCKER_V2,
        "size": len(resp.content),
        "digest": resp.headers["Docker-Content-Digest"],
        "platform": {"os": "linux", "architecture": arch},
    }


def _put_index(registry: Registry, repo: str, tag: str, entries: list[dict[str, Any]]) -> str:
    body = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries})
    resp = requests.put(
        f"http://{registry.host}/v2/{repo}/manifests/{tag}",
        data=body,
        headers={"Content-Type": OCI_INDEX},
        timeout=10,
    )
    assert resp.status_code == 201, resp.text
    return str(resp.headers["Docker-Content-Digest"])


def test_index_is_resolved_to_this_platform(clean: Any, registry: Registry, tmp_path: Path) -> None:
    client = clean
    v1, v2 = build_version(client, "v1"), build_version(client, "v2")
    repo, name = f"{PREFIX}/multi", f"{PREFIX}-multi"
    push(client, v1, registry, repo, "v1")
    push(client, v2, registry, repo, "v2")
    amd_v1, amd_v2 = (_descriptor(registry, repo, t, "amd64") for t in ("v1", "v2"))
    arm_v1, arm_v2 = (_descriptor(registry, repo, t, "arm64") for t in ("v1", "v2"))
    index1 = _put_index(registry, repo, "stable", [amd_v1, arm_v1])
    ref = registry.ref(repo, "stable")
    for _ in client.pull(f"{registry.host}/{repo}", tag="stable", stream=True):
        pass
    assert client.inspect_image(ref)["Id"] == v1
    c = client.create_container(ref, name=name, labels={**LABEL, "dockward.update": "true"})
    client.start(c["Id"])

    code, doc, err = _update(tmp_path, "--monitor-only", name)
    assert events(doc)[name]["status"] == "current", err
    assert events(doc)[name]["new_digest"] == index1

    # Only the arm64 image changed: a new index digest, but nothing new for this host.
    _put_index(registry, repo, "stable", [amd_v1, arm_v2])
    code, doc, err = _update(tmp_path, name)
    assert code == 0, err
    assert events(doc)[name]["status"] == "current"
    assert events(doc)[name]["reason"] == "same image for this platform"
    assert client.inspect_container(name)["Id"] == c["Id"]

    index3 = _put_index(registry, repo, "stable", [arm_v2, amd_v2])
    code, doc, err = _update(tmp_path, name)
    assert code == 0, err
    assert events(doc)[name]["status"] == "updated"
    assert events(doc)[name]["new_digest"] == index3
    assert client.inspect_container(name)["Image"] == v2
