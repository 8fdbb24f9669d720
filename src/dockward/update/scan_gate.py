"""The vulnerability gate's scanner: dockward.scan over the local vulnerability DB."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from dockward.scan import ScanOptions, scan_image
from dockward.update.gates import Scanner, Vulnerability
from dockward.vulndb.osv import severity_of
from dockward.vulndb.store import default_db_path


def db_location(db_path: str | None) -> Path:
    return Path(db_path) if db_path else default_db_path()


def available(db_path: str | None) -> tuple[bool, str]:
    """Can the gate run? (yes/no, why not)."""
    path = db_location(db_path)
    if not path.exists():
        return False, f"no vulnerability DB at {path} (import one with `dockward db`)"
    return True, ""


def dockward_scanner(db_path: str | None, docker_host: str | None = None) -> Scanner:
    """Scan an image (by id, from the daemon) once; unwaived matches become Vulnerabilities."""
    options = ScanOptions(source="daemon", docker_host=docker_host)
    path = db_location(db_path)
    seen: dict[str, list[Vulnerability]] = {}

    def scan(image: Mapping[str, Any]) -> list[Vulnerability]:
        image_id = str(image.get("Id") or "")
        if image_id not in seen:
            result = scan_image(image_id, path, options)
            seen[image_id] = [
                Vulnerability(m.vuln_id, severity_of(m.severity), m.package.name)
                for m in result.matches
                if m.vuln_id not in result.waived
            ]
        return seen[image_id]

    return scan
