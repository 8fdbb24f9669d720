"""apk: /lib/apk/db/installed."""

from __future__ import annotations

from dockward.image.fs import ImageFS
from dockward.sbom.model import Distro, Package
from dockward.sbom.probes import APK_INSTALLED
from dockward.sbom.purl import purl


def catalog_apk(fs: ImageFS, distro: Distro | None) -> tuple[list[Package], list[str]]:
    hit = fs.probed("pkgdb").get(APK_INSTALLED)
    if hit is None:
        return [], []
    layer, data = hit
    if data is None:
        return [], [f"/{APK_INSTALLED}: too large to read"]
    history = fs.history("pkgdb", APK_INSTALLED)
    first_seen: dict[tuple[str, str], int] = {}
    for layer_i, old in history:
        if old is not None:
            present = {
                (r.get("P", ""), r.get("V", "")) for r in _records(old.decode("utf-8", "replace"))
            }
            first_seen = {k: first_seen.get(k, layer_i) for k in present}
    ecosystem = distro.osv_ecosystem if distro and distro.id == "alpine" else ""
    distro_q = f"{distro.id}-{distro.version}" if distro else ""
    namespace = distro.id if distro else "alpine"
    out: list[Package] = []
    for r in _records(data.decode("utf-8", "replace")):
        name, version = r.get("P", ""), r.get("V", "")
        if not name or not version:
            continue
        origin = r.get("o", name)
        added = first_seen.get((name, version), layer)
        out.append(
            Package(
                name=name,
                version=version,
                type="apk",
                purl=purl(
                    "apk", name, version, namespace, {"arch": r.get("A", ""), "distro": distro_q}
                ),
                ecosystem=ecosystem,
                cataloger="apk",
                layer=fs.layers[added].digest,
                locations=(f"/{APK_INSTALLED}",),
                source_name=origin,
                source_version=version,
                licenses=tuple(x for x in r.get("L", "").split() if x),
                arch=r.get("A", ""),
            )
        )
    return out, []


def _records(text: str) -> list[dict[str, str]]:
    records: list[dict[str, str]] = []
    current: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip():
            if current:
                records.append(current)
            current = {}
            continue
        key, sep, value = line.partition(":")
        if sep and len(key) == 1 and key not in current:
            current[key] = value
    if current:
        records.append(current)
    return records
