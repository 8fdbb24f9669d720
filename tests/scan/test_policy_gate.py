"""The admission policy's vulnerability gate reads what `dockward scan` recorded: scanned and
clean passes, scanned and critical is refused, never scanned fails closed (real daemon, CLI)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from tests.conftest import run_cli

POLICY = "admission:\n  images:\n    fail_on_severity: high\n"


def _gate(res_out: str) -> dict[str, str]:
    return {
        r["target"]: (r["status"], r["message"])
        for r in json.loads(res_out)["results"]
        if r["rule_id"] == "DW-P007"
    }


def test_vulnerability_gate_uses_the_scan_record(
    fixture_image: dict[str, Any], vulndb: Path, lab_image: str, tmp_path: Path
) -> None:
    db = tmp_path / "vulndb.sqlite"
    shutil.copy(vulndb, db)
    env = {"DOCKWARD_DB": str(db)}
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY)
    check = ("policy", "check", "--policy", str(policy), "-f", "json")

    res = run_cli(*check, "--image", lab_image, env=env)
    assert res.code == 1, res.err
    status, message = _gate(res.out)[lab_image]
    assert status == "fail" and "never scanned" in message  # fail closed

    for image in (lab_image, fixture_image["ref"]):
        assert run_cli("scan", image, "-f", "json", "--fail-on", "never", env=env).code == 0

    res = run_cli(*check, "--image", lab_image, env=env)
    assert res.code == 0, res.out
    assert _gate(res.out)[lab_image][0] == "pass"

    res = run_cli(*check, "--image", fixture_image["ref"], env=env)
    assert res.code == 1
    status, message = _gate(res.out)[fixture_image["ref"]]
    assert status == "fail" and "critical vulnerabilities" in message

    # The same gate on a `docker run` line of the vulnerable image.
    res = run_cli(*check, "--run", f"docker run --rm {fixture_image['ref']}", env=env)
    assert res.code == 1 and "critical vulnerabilities" in res.out
