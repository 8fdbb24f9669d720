"""dpkg: /var/lib/dpkg/status and distroless status.d/, with each package's owned files."""

from __future__ import annotations

import re
from collections.abc import Iterator

from dockward.image.fs import ImageFS
from dockward.sbom.model import Distro, Package
from dockward.sbom.probes import DPKG_STATUS
from dockward.sbom.purl import purl

_SOURCE = re.compile(r"(\S+)(?:\s+\((\S+)\))?")


def paragraphs(text: str) -> Iterator[dict[str, str]]:
    fields: dict[str, str] = {}
    key = ""
    for line in text.splitlines():
        if not line.strip():
            if fields:
                yield fields
            fields, key = {}, ""
            continue
        if line[0] in " \t":
            if key:
                fields[key] += "\n" + line.strip()
            continue
        key, _, value = line.partition(":")
        key = key.strip()
        fields[key] = value.strip()
    if fields:
        yield fields


def _installed(p: dict[str, str]) -> bool:
    status = p.get("Status")
    return status is None or status.split()[-1:] == ["installed"]


def _versions(text: str) -> set[tuple[str, str]]:
    return {(p.get("Package", ""), p.get("Version", "")) for p in paragraphs(text) if _installed(p)}


def owned_files(fs: ImageFS) -> set[str]:
    """Every path some dpkg package owns (from info/*.list), without the leading slash."""
    owned: set[str] = set()
    for path, (_, data) in fs.probed("pkgdb").items():
        if path.startswith("var/lib/dpkg/info/") and path.endswith(".list") and data:
            owned.update(
                line.strip().lstrip("/") for line in data.decode("utf-8", "replace").splitlines()
            )
    return owned


def catalog_dpkg(fs: ImageFS, distro: Distro | None) -> tuple[list[Package], list[str]]:
    notes: list[str] = []
    found = fs.probed("pkgdb")
    sources: list[tuple[str, int, bytes]] = []
    for path, (layer, data) in found.items():
        if path == DPKG_STATUS or (
            path.startswith("var/lib/dpkg/status.d/") and not path.endswith(".md5sums")
        ):
            if data is None:
                notes.append(f"{path}: too large to read")
                continue
            sources.append((path, layer, data))
    if not sources:
        return [], notes
    # The layer that added a package: the first of the unbroken run of layers that list it at
    # its current version (later layers rewrite the status file without changing it).
    history = fs.history("pkgdb", DPKG_STATUS)
    first_seen: dict[tuple[str, str], int] = {}
    for layer, data in history:
        if data is None:
            continue
        present = _versions(data.decode("utf-8", "replace"))
        first_seen = {k: first_seen.get(k, layer) for k in present}
    distro_q = f"{distro.id}-{distro.version}" if distro else ""
    ecosystem = distro.osv_ecosystem if distro else ""
    namespace = distro.id if distro else "debian"
    packages: list[Package] = []
    for path, layer, data in sorted(sources):
        for p in paragraphs(data.decode("utf-8", "replace")):
            name, version = p.get("Package", ""), p.get("Version", "")
            if not name or not version or not _installed(p):
                continue
            arch = p.get("Architecture", "")
            src_name, src_version = name, version
            m = _SOURCE.fullmatch(p.get("Source", "").strip())
            if m:
                src_name = m.group(1)
                src_version = m.group(2) or version
            added = first_seen.get((name, version), layer)
            files = (f"/var/lib/dpkg/info/{name}.list", f"/var/lib/dpkg/info/{name}:{arch}.list")
            qualifiers = {"arch": arch, "distro": distro_q}
            if src_name != name or src_version != version:
                qualifiers["upstream"] = (
                    src_name if src_version == version else f"{src_name}@{src_version}"
                )
            packages.append(
                Package(
                    name=name,
                    version=version,
                    type="deb",
                    purl=purl("deb", name, version, namespace, qualifiers),
                    ecosystem=ecosystem,
                    cataloger="dpkg",
                    layer=fs.layers[added].digest if 0 <= added < len(fs.layers) else "",
                    locations=(f"/{path}", *[f for f in files if f.lstrip("/") in fs]),
                    source_name=src_name,
                    source_version=src_version,
                    arch=arch,
                )
            )
    return packages, notes
