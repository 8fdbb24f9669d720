"""Platforms (`linux/arm64/v8`) and choosing one image from an index (registry, OCI layout)."""

from __future__ import annotations

import platform as host_platform
from dataclasses import dataclass
from typing import Any

from dockward.errors import InputError

ARCH_ALIASES = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm"}


class PlatformNotFound(InputError):
    """An index without an image for the platform asked for."""


@dataclass(frozen=True, slots=True)
class Platform:
    os: str = "linux"
    architecture: str = "amd64"
    variant: str = ""

    @classmethod
    def parse(cls, text: str | None) -> Platform:
        """`os/arch[/variant]`; None or "" is this host's platform."""
        if not text:
            machine = host_platform.machine().lower()
            return cls("linux", ARCH_ALIASES.get(machine, machine))
        parts = text.split("/")
        if len(parts) not in (2, 3) or not all(parts):
            raise InputError(f"bad platform {text!r} (expected os/arch[/variant])")
        return cls(parts[0], parts[1], parts[2] if len(parts) == 3 else "")

    def __str__(self) -> str:
        return "/".join(x for x in (self.os, self.architecture, self.variant) if x)


def select_platform(index: dict[str, Any], want: Platform, where: str) -> dict[str, Any]:
    """`want`'s descriptor in an index: the exact variant first, then an entry without one, then
    (when no variant is asked for) any variant of the architecture."""
    entries = [m for m in index.get("manifests") or [] if isinstance(m, dict)]
    best: tuple[int, dict[str, Any]] | None = None
    for entry in entries:
        p = entry.get("platform")
        if not isinstance(p, dict):
            continue
        if p.get("os") != want.os or p.get("architecture") != want.architecture:
            continue
        variant = str(p.get("variant") or "")
        score = 3 if variant == want.variant else 2 if not variant else 0 if want.variant else 1
        if score and (best is None or score > best[0]):
            best = (score, entry)
    if best is not None:
        return best[1]
    if len(entries) == 1 and not isinstance(entries[0].get("platform"), dict):
        return entries[0]
    offered = ", ".join(
        "/".join(str(m["platform"].get(k) or "") for k in ("os", "architecture", "variant")).rstrip(
            "/"
        )
        for m in entries
        if isinstance(m.get("platform"), dict)
    )
    raise PlatformNotFound(
        f"{where}: no manifest for platform {want} (offered: {offered or 'none'})"
    )
