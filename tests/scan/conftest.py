"""Scan fixtures: a test image built locally (FROM scratch + real files), its archives, a DB."""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import subprocess
import tarfile
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).resolve().parent
FIX = HERE / "fixtures"
OSV = FIX / "osv"
PREFIX = "dwscan"
IMAGE = "dwscan/fixture:1"
LABELS = {"dockward.test": PREFIX}
# Real packages of this Debian 12 host, taken from its dpkg database for the test image.
DPKG_PACKAGES = ("libyaml-0-2", "python3-yaml", "python3-six", "zlib1g")
PEM = (
    "-----BEGIN OPENSSH PRIVATE KEY-----\n"
    "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW\n"
    "-----END OPENSSH PRIVATE KEY-----\n"
)

DOCKERFILE = """FROM scratch
COPY rootfs/ /
RUN ["/bin/busybox", "sh", "-c", "/bin/busybox rm -f /root/.ssh/id_rsa && /bin/busybox rm -rf /opt/data && /bin/busybox mkdir -p /opt/data && echo new > /opt/data/new.txt && /bin/busybox chmod 4755 /usr/bin/fakesu"]
USER 1000
"""


def _host_dpkg(root: Path) -> None:
    """Paragraphs and file lists of a few real installed packages, and the files they own."""
    status = Path("/var/lib/dpkg/status").read_text()
    keep = []
    for para in status.split("\n\n"):
        m = re.search(r"^Package: (\S+)$", para, re.M)
        if m and m.group(1) in DPKG_PACKAGES:
            keep.append(para.strip())
    if len(keep) != len(DPKG_PACKAGES):
        pytest.skip(f"this host lacks some of {DPKG_PACKAGES} in its dpkg database")
    dpkg = root / "var/lib/dpkg"
    (dpkg / "info").mkdir(parents=True)
    (dpkg / "status").write_text("\n\n".join(keep) + "\n")
    for name in DPKG_PACKAGES:
        for lst in Path("/var/lib/dpkg/info").glob(f"{name}*.list"):
            if lst.name.split(":")[0].removesuffix(".list") != name:
                continue
            shutil.copy(lst, dpkg / "info" / lst.name)
            for line in lst.read_text().splitlines():
                src = Path(line)
                # Only Python metadata is copied: enough to prove dpkg-owned packages count once.
                if (".dist-info" in line or ".egg-info" in line) and src.is_file():
                    dest = root / line.lstrip("/")
                    dest.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy(src, dest)


def _write(root: Path, rel: str, data: str | bytes, mode: int = 0o644) -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    path.chmod(mode)


def _jar() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("META-INF/MANIFEST.MF", "Manifest-Version: 1.0\n")
        zf.writestr(
            "META-INF/maven/org.example/demo-lib/pom.properties",
            "groupId=org.example\nartifactId=demo-lib\nversion=2.4.1\n",
        )
        inner = io.BytesIO()
        with zipfile.ZipFile(inner, "w") as iz:
            iz.writestr(
                "META-INF/maven/com.fasterxml.jackson.core/jackson-databind/pom.properties",
                "groupId=com.fasterxml.jackson.core\nartifactId=jackson-databind\nversion=2.9.10\n",
            )
        zf.writestr("BOOT-INF/lib/jackson-databind-2.9.10.jar", inner.getvalue())
    return buf.getvalue()


def build_go_binary(dest: Path, workdir: Path) -> str:
    """Build the fixture Go app with this machine's Go; returns a skip reason or ""."""
    go = shutil.which("go")
    if not go:
        return "no Go toolchain (apt-get install golang-go)"
    src = workdir / "goapp"
    shutil.copytree(FIX / "goapp", src)
    env = dict(
        os.environ,
        CGO_ENABLED="0",
        GOFLAGS="-buildvcs=false -mod=mod",
        GOCACHE=str(workdir / "gocache"),
        GOPATH=str(workdir / "gopath"),
        GOPROXY="off",
    )
    proc = subprocess.run(
        [go, "build", "-trimpath", "-o", str(dest), "."],
        cwd=src,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    if proc.returncode != 0:
        return f"go build failed: {proc.stderr.strip()[:300]}"
    return ""


def build_rootfs(root: Path, workdir: Path) -> str:
    from dockward.engine.lab import find_static_busybox

    _write(root, "bin/busybox", Path(find_static_busybox()).read_bytes(), 0o755)
    _write(root, "etc/os-release", Path("/etc/os-release").read_text())
    _write(root, "etc/debian_version", Path("/etc/debian_version").read_text())
    _write(
        root,
        "etc/passwd",
        "root:x:0:0:root:/root:/bin/sh\ntoor:x:0:0::/root:/bin/sh\n"
        "app:x:1000:1000::/home/app:/bin/sh\n",
    )
    _write(
        root,
        "etc/shadow",
        "root:*:19000:0:99999:7:::\ntoor::19000:0:99999:7:::\napp:!:19000:0:99999:7:::\n",
        0o640,
    )
    _host_dpkg(root)
    site = "usr/local/lib/python3.11/site-packages"
    _write(
        root,
        f"{site}/requests-2.25.0.dist-info/METADATA",
        "Metadata-Version: 2.1\nName: requests\nVersion: 2.25.0\nLicense: Apache 2.0\n",
    )
    _write(
        root,
        f"{site}/py-1.11.0.dist-info/METADATA",
        "Metadata-Version: 2.1\nName: py\nVersion: 1.11.0\n",
    )
    _write(
        root,
        f"{site}/legacy_pkg-0.3.egg-info/PKG-INFO",
        "Metadata-Version: 1.0\nName: legacy-pkg\nVersion: 0.3\n",
    )
    nm = "srv/app/node_modules"
    _write(
        root,
        f"{nm}/lodash/package.json",
        json.dumps({"name": "lodash", "version": "4.17.20", "license": "MIT"}),
    )
    _write(
        root,
        f"{nm}/@types/node/package.json",
        json.dumps({"name": "@types/node", "version": "20.1.0"}),
    )
    _write(
        root,
        f"{nm}/express/node_modules/debug/package.json",
        json.dumps({"name": "debug", "version": "2.6.9"}),
    )
    _write(root, f"{nm}/express/package.json", json.dumps({"name": "express", "version": "4.17.1"}))
    _write(root, "srv/app/lib/demo.jar", _jar())
    _write(root, "usr/bin/fakesu", "#!/bin/sh\n", 0o755)
    _write(root, "root/.ssh/id_rsa", PEM, 0o600)
    _write(root, "srv/app/.env", "DATABASE_PASSWORD=hunter2hunter2\n")
    _write(root, "opt/data/old.txt", "old\n")
    reason = build_go_binary(root / "srv/app/server", workdir)
    if not reason:
        # The same binary twice: the same stdlib and modules at two locations, two findings.
        _write(root, "usr/local/bin/worker", (root / "srv/app/server").read_bytes(), 0o755)
    return reason


@pytest.fixture(scope="session")
def fixture_image(docker_api: Any, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The test image in the daemon; also its `docker save` archive. Rebuilt (cached) per run."""
    work = tmp_path_factory.mktemp(f"{PREFIX}-image")
    root = work / "ctx" / "rootfs"
    root.mkdir(parents=True)
    go_skip = build_rootfs(root, work)
    if go_skip:
        print(f"[dwscan] Go binary not in the test image: {go_skip}")
    (work / "ctx" / "Dockerfile").write_text(DOCKERFILE)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        tar.add(work / "ctx", arcname=".")
    buf.seek(0)
    for chunk in docker_api.build(
        fileobj=buf, custom_context=True, tag=IMAGE, rm=True, labels=LABELS, decode=True
    ):
        if "error" in chunk:
            raise RuntimeError(chunk["error"])
    archive = work / "image.tar"
    with open(archive, "wb") as fh:
        for chunk in docker_api.get_image(IMAGE):
            fh.write(chunk)
    return {
        "ref": IMAGE,
        "archive": archive,
        "go_skip": go_skip,
        "work": work,
        "id": docker_api.inspect_image(IMAGE)["Id"],
    }


@pytest.fixture(scope="session")
def vulndb(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from dockward.vulndb import import_path

    path = tmp_path_factory.mktemp(f"{PREFIX}-db") / "vulndb.sqlite"
    import_path(path, [OSV])
    return path


@pytest.fixture()
def http_dir(tmp_path: Path) -> Iterator[tuple[str, Path, list[dict[str, str]]]]:
    """A real local HTTP server (ETag + Last-Modified + x-goog-hash) serving a directory."""
    from tests.scan.httpserver import serve

    root = tmp_path / "www"
    root.mkdir()
    with serve(root) as (url, log):
        yield url, root, log


def maven_db(tmp: Path) -> Path:
    """A DB holding one Maven OSV record: jackson-databind [2.9.0, 2.9.10.1)."""
    from dockward.vulndb import import_path

    record: dict[str, Any] = {
        "schema_version": "1.6.0",
        "id": "DWTEST-MAVEN-1",
        "modified": "2026-01-01T00:00:00Z",
        "summary": "test advisory for the Maven comparator",
        "affected": [
            {
                "package": {
                    "ecosystem": "Maven",
                    "name": "com.fasterxml.jackson.core:jackson-databind",
                },
                "ranges": [
                    {
                        "type": "ECOSYSTEM",
                        "events": [{"introduced": "2.9.0"}, {"fixed": "2.9.10.1"}],
                    }
                ],
            }
        ],
    }
    src = tmp / "osv-maven"
    src.mkdir(exist_ok=True)
    (src / "DWTEST-MAVEN-1.json").write_text(json.dumps(record))
    db = tmp / "maven.sqlite"
    import_path(db, [src])
    return db
