"""Catalogers per ecosystem (dpkg, apk, rpm, python, npm, go, java) -> Sbom of Packages."""

from dockward.sbom.catalog import build_sbom
from dockward.sbom.formats import render_cyclonedx, render_spdx
from dockward.sbom.model import Distro, Package, Sbom
from dockward.sbom.osdetect import detect_distro, end_of_life
from dockward.sbom.probes import default_probes

__all__ = [
    "Distro",
    "Package",
    "Sbom",
    "build_sbom",
    "default_probes",
    "detect_distro",
    "end_of_life",
    "render_cyclonedx",
    "render_spdx",
]
