"""Run every cataloger over an ImageFS into one Sbom."""

from __future__ import annotations

from dockward.image.fs import ImageFS
from dockward.sbom.apk import catalog_apk
from dockward.sbom.dpkg import catalog_dpkg, owned_files
from dockward.sbom.golang import catalog_go
from dockward.sbom.langs import catalog_java, catalog_npm, catalog_python
from dockward.sbom.model import Package, Sbom
from dockward.sbom.osdetect import detect_distro
from dockward.sbom.rpm import catalog_rpm


def build_sbom(fs: ImageFS) -> Sbom:
    distro = detect_distro(fs)
    packages: list[Package] = []
    notes: list[str] = []
    owned = owned_files(fs)
    for found, why in (
        catalog_dpkg(fs, distro),
        catalog_apk(fs, distro),
        catalog_rpm(fs, distro),
        catalog_python(fs, owned),
        catalog_npm(fs, owned),
        catalog_go(fs),
        catalog_java(fs),
    ):
        packages.extend(found)
        notes.extend(why)
    packages.sort(key=lambda p: (p.type, p.name, p.version, p.locations))
    return Sbom(tuple(packages), distro, tuple(notes))
