"""Registry walk: 200 tags on Debian's docker-registry, walked and scanned by digest.

Run: `.venv/bin/python -m bench.registry_walk_bench [--tags 200] [--anchor 20]`
Pushes small distinct OCI images (one layer each; every 4th tag names an earlier manifest, so
~150 distinct digests), then times the walk alone (catalog, tags, one HEAD per tag) and
`dockward scan --registry` end to end (each manifest scanned once), for the anchor and for
--tags in the same run.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import json
import os
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

from tests.update.conftest import _start_registry, _stop

from dockward.registry import RegistryClient, parse_reference
from dockward.scan.registry_walk import walk_registry

REPO = Path(__file__).resolve().parent.parent
PORT = 15918


def push_image(client: RegistryClient, host: str, repo: str, tag: str, seed: int) -> str:
    ref = parse_reference(f"{host}/{repo}")
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        data = f"image {seed}\n".encode()
        info = tarfile.TarInfo(f"etc/dwbench-{seed}")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    layer = gzip.compress(raw.getvalue(), mtime=0)
    diff = "sha256:" + hashlib.sha256(gzip.decompress(layer)).hexdigest()
    config = json.dumps(
        {"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": [diff]}}
    ).encode()
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": client.push_blob(ref, config),
            "size": len(config),
        },
        "layers": [
            {
                "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                "digest": client.push_blob(ref, layer),
                "size": len(layer),
            }
        ],
    }
    return client.push_manifest(ref, tag, manifest)


def fill(client: RegistryClient, host: str, prefix: str, tags: int) -> None:
    for i in range(tags):
        repo = f"{prefix}/app{i % 10}"
        seed = i - 1 if i % 4 == 3 else i  # every 4th tag re-tags the previous image
        push_image(client, host, repo, f"t{i}", seed)


def time_walk(client: RegistryClient, host: str, prefix: str) -> tuple[float, int, int]:
    t = time.perf_counter()
    w = walk_registry(client, host, prefix, 8)
    return time.perf_counter() - t, w.tags, len(w.manifests)


def time_scan(host: str, prefix: str, db: Path) -> float:
    t = time.perf_counter()
    subprocess.run(
        [
            sys.executable,
            "-m",
            "dockward",
            "scan",
            "--registry",
            f"{host}/{prefix}",
            "--db",
            str(db),
            "--no-store",
            "-f",
            "json",
            "-o",
            os.devnull,
            "--fail-on",
            "never",
        ],
        env=dict(os.environ, PYTHONPATH=str(REPO / "src")),
        check=True,
    )
    return time.perf_counter() - t


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--tags", type=int, default=200)
    p.add_argument("--anchor", type=int, default=20)
    a = p.parse_args()
    proc, root = _start_registry(PORT)
    host = f"127.0.0.1:{PORT}"
    work = Path(tempfile.mkdtemp(prefix="dwwalk-bench-"))
    try:
        from dockward.vulndb import import_path

        db = work / "vulndb.sqlite"
        osv = REPO / "tests" / "scan" / "fixtures" / "osv"
        import_path(db, [osv])
        client = RegistryClient()
        fill(client, host, "anchor", a.anchor)
        fill(client, host, "bench", a.tags)
        for prefix in ("anchor", "bench"):
            walk_s, tags, manifests = time_walk(client, host, prefix)
            scan_s = time_scan(host, prefix, db)
            print(
                f"registry walk {tags} tags ({manifests} manifests): walk {walk_s:.2f} s, "
                f"walk + scan each manifest once {scan_s:.1f} s ({scan_s / max(manifests, 1) * 1000:.0f} ms "
                f"per manifest)"
            )
    finally:
        _stop(proc, root)


if __name__ == "__main__":
    main()
