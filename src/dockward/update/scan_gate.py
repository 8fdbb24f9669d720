"""The vulnerability gate's scanner: dockward.scan over the local vulnerability DB.

dockward.scan is another capability of this package, built in parallel; it is looked up at run
time so `dockward update` works (with a warning) in a build without it.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from dockward.errors import ConfigError
from dockward.update.gates import Scanner, Vulnerability


def scan_module() -> Any | None:
    try:
        return importlib.import_module("dockward.scan.core")
    except ImportError:
        return None


def available(db_path: str | None) -> tuple[bool, str]:
    """Can the gate run? (yes/no, why not)."""
    core = scan_module()
    if core is None:
        return False, "dockward.scan is not part of this build"
    path = Path(db_path) if db_path else Path(str(core.default_db_path()))
    if not path.exists():
        return False, f"no vulnerability DB at {path} (import one with `dockward vulndb`)"
    return True, ""


def dockward_scanner(db_path: str | None) -> Scanner:
    """Scan an image (by id, from the daemon) once; unwaived matches become Vulnerabilities."""
    core = scan_module()
    if core is None:
        raise ConfigError("the vulnerability gate needs dockward.scan, which this build lacks")
    seen: dict[str, list[Vulnerability]] = {}

    def scan(image: Mapping[str, Any]) -> list[Vulnerability]:
        image_id = str(image.get("Id") or "")
        if image_id not in seen:
            result = core.scan_image(image_id, db_path)
            seen[image_id] = [
                Vulnerability(str(m.vuln_id), core.severity_of(m.severity), str(m.package.name))
                for m in result.matches
                if m.vuln_id not in result.waived
            ]
        return seen[image_id]

    return scan
