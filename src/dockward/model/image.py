"""ImageSpec: an image's configuration and history."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    created_by: str
    empty_layer: bool = False
    comment: str = ""


@dataclass(frozen=True, slots=True)
class VulnScan:
    """What `dockward scan` recorded for an image (its scan cache), as the audit sees it."""

    scanned: str  # when
    worst: str  # worst unwaived vulnerability severity, "" when none
    counts: Mapping[str, int] = field(default_factory=dict)
    stale: bool = False  # the vulnerability DB was updated after this scan


@dataclass(frozen=True, slots=True)
class ImageSpec:
    id: str = ""
    repo_tags: tuple[str, ...] = ()
    repo_digests: tuple[str, ...] = ()
    user: str = ""
    healthcheck: tuple[str, ...] | None = None  # None: no HEALTHCHECK
    env: tuple[str, ...] = ()
    exposed_ports: tuple[str, ...] = ()
    volumes: tuple[str, ...] = ()
    entrypoint: tuple[str, ...] = ()
    command: tuple[str, ...] = ()
    labels: Mapping[str, str] = field(default_factory=dict)
    history: tuple[HistoryEntry, ...] = ()
    os: str = ""
    architecture: str = ""
    created: str = ""
    size: int = 0
    # The scan record: None with scans_known = never scanned; scans_known False = no scan
    # records on this host to look in (a check about them can only be skipped).
    vuln_scan: VulnScan | None = None
    scans_known: bool = False

    @property
    def display_name(self) -> str:
        if self.repo_tags and self.repo_tags[0] != "<none>:<none>":
            return self.repo_tags[0]
        return self.id.removeprefix("sha256:")[:12] or "image"

    @classmethod
    def from_inspect(
        cls, data: Mapping[str, Any], history: list[Mapping[str, Any]] | None = None
    ) -> ImageSpec:
        """From `GET /images/{name}/json` (and optionally `/history`, newest first)."""
        cfg = data.get("Config") if isinstance(data.get("Config"), dict) else {}
        assert isinstance(cfg, dict)
        hist = tuple(
            HistoryEntry(
                created_by=str(h.get("CreatedBy") or ""),
                empty_layer=str(h.get("Id") or "") == "<missing>" and not h.get("Size"),
                comment=str(h.get("Comment") or ""),
            )
            for h in reversed(history or [])
        )
        return cls(
            id=str(data.get("Id") or ""),
            repo_tags=tuple(str(t) for t in data.get("RepoTags") or ()),
            repo_digests=tuple(str(t) for t in data.get("RepoDigests") or ()),
            history=hist,
            os=str(data.get("Os") or ""),
            architecture=str(data.get("Architecture") or ""),
            created=str(data.get("Created") or ""),
            size=int(data.get("Size") or 0),
            **config_fields(cfg),
        )


def config_fields(cfg: Mapping[str, Any]) -> dict[str, Any]:
    """ImageSpec fields from an image's container config: `Config` in `GET /images/{id}/json`
    and `config` in the image config blob have the same keys."""
    hc = cfg.get("Healthcheck") if isinstance(cfg.get("Healthcheck"), dict) else None
    return {
        "user": str(cfg.get("User") or ""),
        "healthcheck": tuple(str(t) for t in hc.get("Test") or ()) if hc else None,
        "env": tuple(str(e) for e in cfg.get("Env") or ()),
        "exposed_ports": tuple(sorted(str(p) for p in (cfg.get("ExposedPorts") or {}))),
        "volumes": tuple(sorted(str(v) for v in (cfg.get("Volumes") or {}))),
        "entrypoint": tuple(str(e) for e in cfg.get("Entrypoint") or ()),
        "command": tuple(str(e) for e in cfg.get("Cmd") or ()),
        "labels": {str(k): str(v) for k, v in (cfg.get("Labels") or {}).items()},
    }
