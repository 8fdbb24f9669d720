"""Scan an image: inventory (SBOM), vulnerabilities from the local DB, image checks -> Report.

Library API for the proxy and updater:

    from dockward.scan import scan_image, ScanCache
    result = scan_image("registry:5000/app:1.2", db_path, cache=ScanCache())
    result.counts()        # {"critical": 0, "high": 2, ...}
    result.worst           # Severity | None (worst unwaived vulnerability)
    ScanCache().lookup("sha256:...")  # ScanSummary | None: was this digest scanned, how bad
"""

from dockward.scan.cache import ScanCache, ScanSummary
from dockward.scan.content import ImageContent, content_from_files
from dockward.scan.core import (
    Inventory,
    ScanOptions,
    ScanResult,
    inventory,
    scan_image,
    scan_inventory,
)
from dockward.scan.rules import rules
from dockward.scan.waivers import Waivers, load_ignore_file, load_openvex

__all__ = [
    "ImageContent",
    "Inventory",
    "ScanCache",
    "ScanOptions",
    "ScanResult",
    "ScanSummary",
    "Waivers",
    "content_from_files",
    "inventory",
    "load_ignore_file",
    "load_openvex",
    "rules",
    "scan_image",
    "scan_inventory",
]
