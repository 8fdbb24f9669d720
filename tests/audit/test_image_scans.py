"""CIS 4.4 from dockward's own scans: the audit reads the scan records `dockward scan` wrote."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from dockward.engine.lab import build_busybox_image
from tests.conftest import run_cli
from tests.scan.conftest import OSV

OSV_GO = OSV / "Go"
UNSCANNED = "dwaudit/unscanned:1"


def _i007(env: dict[str, str]) -> dict[str, tuple[str, str]]:
    res = run_cli("audit", "--section", "image", "-f", "json", "--fail-on", "never", env=env)
    assert res.code == 0, res.err
    return {
        r["target"]: (r["status"], r["message"])
        for r in json.loads(res.out)["results"]
        if r["rule_id"] == "DW-I007"
    }


def _of(results: dict[str, tuple[str, str]], docker_api: Any, ref: str) -> tuple[str, str]:
    """The image's result under whichever of its tags the audit names it by: another run may
    have tagged the shared lab image too (the proxy tests push it under their registry's name)."""
    for tag in docker_api.inspect_image(ref)["RepoTags"] or [ref]:
        if f"image {tag}" in results:
            return results[f"image {tag}"]
    raise AssertionError(f"no DW-I007 result for {ref}: {sorted(results)}")


def test_scanned_unscanned_and_stale_images(
    docker_api: Any, lab_image: str, tmp_path: Path
) -> None:
    from dockward.vulndb import import_path

    build_busybox_image(docker_api, UNSCANNED, extra="LABEL scanned=no\n")
    env = {"DOCKWARD_DB": str(tmp_path / "vulndb.sqlite")}
    # No scan records anywhere: the check can only be skipped.
    before = _i007(env)
    assert _of(before, docker_api, lab_image)[0] == "skip"
    import_path(tmp_path / "vulndb.sqlite", [OSV_GO])
    scan = run_cli("scan", lab_image, "--fail-on", "never", "-f", "json", env=env)
    assert scan.code == 0, scan.err
    after = _i007(env)
    assert _of(after, docker_api, lab_image)[0] == "pass", after
    status, message = _of(after, docker_api, UNSCANNED)
    assert status == "fail" and "never scanned" in message
    # The DB changes after the scan: the record no longer says much.
    time.sleep(1.1)
    import_path(tmp_path / "vulndb.sqlite", [OSV_GO])
    status, message = _of(_i007(env), docker_api, lab_image)
    assert status == "fail" and "before the vulnerability DB was last updated" in message
    run_cli("scan", lab_image, "--fail-on", "never", "-f", "json", env=env)
    assert _of(_i007(env), docker_api, lab_image)[0] == "pass"
