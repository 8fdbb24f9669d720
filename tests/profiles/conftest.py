"""Fixtures: a FROM-scratch image with the static syscall probe (compiled here with gcc -static)."""

from __future__ import annotations

import io
import shutil
import subprocess
import tarfile
from pathlib import Path
from typing import Any

import pytest

PROBE_SRC = Path(__file__).parent / "probe" / "syscall_probe.c"
PROBE_IMAGE = "dwharden/probe:1"
PREFIX = "dwharden"


def build_probe_image(client: Any, tmp: Path) -> str:
    if shutil.which("gcc") is None:
        pytest.fail(
            "gcc is needed to build the syscall probe (scripts/setup.sh --test installs it)"
        )
    binary = tmp / "syscall_probe"
    subprocess.run(["gcc", "-static", "-O2", "-o", str(binary), str(PROBE_SRC)], check=True)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        df = b'FROM scratch\nCOPY syscall_probe /probe\nENTRYPOINT ["/probe"]\n'
        info = tarfile.TarInfo("Dockerfile")
        info.size = len(df)
        tar.addfile(info, io.BytesIO(df))
        tar.add(str(binary), arcname="syscall_probe")
    buf.seek(0)
    for chunk in client.build(
        fileobj=buf, custom_context=True, tag=PROBE_IMAGE, rm=True, decode=True
    ):
        if "error" in chunk:
            pytest.fail(chunk["error"])
    return PROBE_IMAGE


@pytest.fixture(scope="session")
def probe_image(docker_api: Any, tmp_path_factory: pytest.TempPathFactory) -> str:
    return build_probe_image(docker_api, tmp_path_factory.mktemp("probe"))


def run_probe(client: Any, image: str, **settings: Any) -> dict[int, int]:
    """Run the probe under the given settings; {syscall number: errno (0 ok, -1 killed)}."""
    import time

    from dockward.harden.runner import Settings, Workload, started, state

    with started(client, Workload(image), Settings(**settings), prefix=PREFIX) as cid:
        deadline = time.monotonic() + 60
        while state(client, cid).get("Running") and time.monotonic() < deadline:
            time.sleep(0.1)
        out = client.logs(cid, stdout=True, stderr=False).decode()
    pairs = (line.split() for line in out.splitlines() if line.strip())
    return {int(nr): int(err) for nr, err in pairs}
