"""ImageSpec from an image config blob (the JSON a registry or archive carries, not inspect)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dockward.model.image import HistoryEntry, ImageSpec, config_fields


def spec_from_config(
    config: Mapping[str, Any],
    image_id: str,
    repo_tags: tuple[str, ...] = (),
    repo_digests: tuple[str, ...] = (),
    size: int = 0,
) -> ImageSpec:
    raw = config.get("config")
    cfg: Mapping[str, Any] = raw if isinstance(raw, dict) else {}
    history = config.get("history") if isinstance(config.get("history"), list) else []
    return ImageSpec(
        id=image_id,
        repo_tags=repo_tags,
        repo_digests=repo_digests,
        history=tuple(
            HistoryEntry(
                created_by=str(h.get("created_by") or ""),
                empty_layer=bool(h.get("empty_layer")),
                comment=str(h.get("comment") or ""),
            )
            for h in history or ()
            if isinstance(h, dict)
        ),
        os=str(config.get("os") or ""),
        architecture=str(config.get("architecture") or ""),
        created=str(config.get("created") or ""),
        size=size,
        **config_fields(cfg),
    )
