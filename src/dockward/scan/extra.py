"""The scan report's typed `extra`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from dockward.model.finding import ReportExtra
from dockward.sbom.model import ImageExtra


@dataclass(frozen=True, slots=True)
class ScanExtra(ImageExtra):
    """`dockward scan`: the image, its SBOM, every match (waived or not) and the DB used."""

    db: Mapping[str, Any] = field(default_factory=dict)
    ignored_unfixed: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "image": dict(self.image),
            "sbom": dict(self.sbom),
            "vulnerabilities": [dict(v) for v in self.vulnerabilities],
            "db": dict(self.db),
            "ignored_unfixed": self.ignored_unfixed,
        }


@dataclass(frozen=True, slots=True)
class RegistryScanExtra(ReportExtra):
    """`dockward scan --registry`: what the registry walk found and scanned."""

    host: str = ""
    prefix: str = ""
    repositories: int = 0
    tags: int = 0
    manifests: int = 0
    scanned: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "registry": {
                "host": self.host,
                "prefix": self.prefix,
                "repositories": self.repositories,
                "tags": self.tags,
                "manifests": self.manifests,
                "scanned": self.scanned,
            }
        }


@dataclass(frozen=True, slots=True)
class HostImagesExtra(ReportExtra):
    """`dockward scan --all-images`, one host: how many images it holds."""

    images: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"images": self.images}


@dataclass(frozen=True, slots=True)
class FleetImagesExtra(ReportExtra):
    """`dockward scan --all-images` over hosts: distinct images scanned."""

    images_scanned: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"images_scanned": self.images_scanned}
