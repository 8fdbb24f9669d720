"""What `dockward scan` recorded, attached to the images an audit collected (CIS 4.4)."""

from __future__ import annotations

import contextlib
from dataclasses import replace

from dockward.model.image import ImageSpec, VulnScan
from dockward.scan.cache import ScanCache
from dockward.vulndb.store import default_db_path, status


def attach_scan_records(images: list[ImageSpec]) -> list[ImageSpec]:
    """Attach what `dockward scan` recorded (the scan cache beside the default DB), if any."""
    cache = ScanCache()
    try:
        records = cache.summaries()
    except Exception:  # an unreadable cache is no scan records, never a failed audit
        records = []
    if not records:
        return images
    db_updated = ""
    with contextlib.suppress(Exception):
        db_updated = status(default_db_path()).updated
    out = []
    for image in images:
        keys = {image.id, *(d.rsplit("@", 1)[-1] for d in image.repo_digests)}
        found = next((s for digests, s in records if digests & keys), None)
        scan = None
        if found is not None:
            scan = VulnScan(
                scanned=found.scanned,
                worst=found.worst.label if found.worst is not None else "",
                counts=dict(found.counts),
                stale=bool(db_updated and found.db_updated and found.db_updated < db_updated),
            )
        out.append(replace(image, vuln_scan=scan, scans_known=True))
    return out
