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


class ScanCacheSource:
    """dockward.scan's record of scanned digests (`ScanCache.lookup`)."""

    def __init__(self, cache: object) -> None:
        self.cache = cache

    def worst_severity(self, image: str, digest: str) -> Severity | None:
        summary = self.cache.lookup(digest)  # type: ignore[attr-defined]
        if summary is None:
            return None
        worst = summary.worst
        return worst if isinstance(worst, Severity) else Severity.INFO


def default_source(cache_path: str = "") -> VulnerabilitySource:
    """dockward's scan record when `dockward.scan` is installed, else always-unscanned."""
    import importlib

    try:
        scan = importlib.import_module("dockward.scan")
        cache = scan.ScanCache(cache_path or None)
    except (ImportError, AttributeError):
        return NoScanDB("dockward.scan is not available")
    return ScanCacheSource(cache)
