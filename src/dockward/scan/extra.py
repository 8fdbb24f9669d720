"""The scan report's typed `extra`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

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
