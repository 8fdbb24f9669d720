"""Where the image gate learns an image's worst vulnerability: dockward's scan DB.

`dockward.scan` / `dockward.vulndb` provide the DB; until an image has been scanned, the answer
is "unscanned" and the gate refuses (fail closed).
"""

from __future__ import annotations

from typing import Protocol

from dockward.model.finding import Severity


class VulnerabilitySource(Protocol):
    def worst_severity(self, image: str, digest: str) -> Severity | None:
        """The worst severity among the image's known vulnerabilities (INFO when none);
        None when the image was never scanned."""
        ...


class NoScanDB:
    """Used when no scan DB is configured or importable: every image counts as unscanned."""

    def __init__(self, reason: str = "no vulnerability DB configured") -> None:
        self.reason = reason

    def worst_severity(self, image: str, digest: str) -> Severity | None:
        return None


def default_source(db_path: str = "") -> VulnerabilitySource:
    """The scan DB if `dockward.scan` offers a lookup, else an always-unscanned source."""
    import importlib

    try:
        verdicts = importlib.import_module("dockward.scan.verdicts")
    except ImportError:
        return NoScanDB("dockward.scan is not available")
    source: VulnerabilitySource = verdicts.open_source(db_path)
    return source
