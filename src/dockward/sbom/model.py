"""What an image contains: packages with purls, the layer that added them, and its OS."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from dockward.model.finding import ReportExtra


@dataclass(frozen=True, slots=True)
class Distro:
    id: str  # os-release ID: debian, alpine, ubuntu, rhel, ...
    version: str  # VERSION_ID or release file: 12, 3.20.3, 22.04
    codename: str = ""
    pretty: str = ""

    @property
    def osv_ecosystem(self) -> str:
        """The OSV ecosystem name for this release: `Debian:12`, `Alpine:v3.20`, `Ubuntu:22.04`."""
        major_minor = ".".join(self.version.split(".")[:2])
        match self.id:
            case "debian":
                return f"Debian:{self.version.split('.')[0]}"
            case "alpine":
                return f"Alpine:v{major_minor}"
            case "ubuntu":
                return f"Ubuntu:{major_minor}"
            case "rocky":
                return f"Rocky Linux:{self.version.split('.')[0]}"
            case "almalinux":
                return f"AlmaLinux:{self.version.split('.')[0]}"
            case "wolfi" | "chainguard":
                return self.id.capitalize()
            case _:
                return ""

    def to_dict(self) -> dict[str, str]:
        return {
            "id": self.id,
            "version": self.version,
            "codename": self.codename,
            "name": self.pretty,
        }


@dataclass(frozen=True, slots=True)
class Package:
    name: str
    version: str
    type: str  # purl type: deb, apk, rpm, pypi, npm, golang, maven
    purl: str
    ecosystem: str  # OSV ecosystem used to match: Debian:12, PyPI, Go, npm, Maven, ...
    cataloger: str
    layer: str = ""  # diff digest (or archive path) of the layer that added it
    locations: tuple[str, ...] = ()
    source_name: str = ""  # OS packages: the source package advisories are filed against
    source_version: str = ""
    licenses: tuple[str, ...] = ()
    arch: str = ""

    @property
    def match_name(self) -> str:
        return self.source_name or self.name

    @property
    def match_version(self) -> str:
        return self.source_version or self.version

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": self.name,
            "version": self.version,
            "type": self.type,
            "purl": self.purl,
            "ecosystem": self.ecosystem,
            "cataloger": self.cataloger,
            "layer": self.layer,
            "locations": list(self.locations),
            "licenses": list(self.licenses),
        }
        if self.source_name:
            out["source"] = {"name": self.source_name, "version": self.source_version}
        if self.arch:
            out["arch"] = self.arch
        return out


@dataclass(frozen=True, slots=True)
class Sbom:
    packages: tuple[Package, ...]
    distro: Distro | None = None
    notes: tuple[str, ...] = field(default=())  # what a cataloger could not read, and why

    def to_dict(self) -> dict[str, Any]:
        return {
            "distro": self.distro.to_dict() if self.distro else None,
            "packages": [p.to_dict() for p in self.packages],
            "notes": list(self.notes),
        }


@dataclass(frozen=True, slots=True)
class ImageExtra(ReportExtra):
    """`dockward sbom` (and the base of scan's): the image and its SBOM, as JSON documents."""

    image: Mapping[str, Any] = field(default_factory=dict)
    sbom: Mapping[str, Any] = field(default_factory=dict)
    vulnerabilities: tuple[Mapping[str, Any], ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"image": dict(self.image), "sbom": dict(self.sbom)}
