"""ImageContent: what file-level image rules judge (the spec, the merged FS, the OS)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from dockward.image.fs import Entry, ImageFS, LayerIndex
from dockward.image.tarstream import TarEntry
from dockward.model.image import ImageSpec
from dockward.sbom.model import Distro


@dataclass(frozen=True, slots=True)
class SecretFile:
    """A file that looks like a secret, in some layer (even if a later layer deleted it)."""

    path: str
    layer: int
    kind: str
    removed_later: bool


@dataclass(frozen=True, slots=True)
class ImageContent:
    spec: ImageSpec
    fs: ImageFS
    distro: Distro | None = None
    today: dt.date = field(default_factory=lambda: dt.datetime.now(dt.UTC).date())


def content_from_files(
    files: dict[str, bytes | tuple[bytes, int]],
    spec: ImageSpec | None = None,
    distro: Distro | None = None,
    today: dt.date | None = None,
) -> ImageContent:
    """A one-layer image built in memory: for rule examples and unit tests.

    A value may be `(body, mode)`; directories are implied.
    """
    from dockward.sbom.probes import default_probes

    layer = LayerIndex("sha256:" + "0" * 64)
    probes = default_probes(include_binaries=False)
    for path, value in files.items():
        body, mode = value if isinstance(value, tuple) else (value, 0o644)
        te = TarEntry(path, "file", mode, 0, 0, len(body), "")
        layer.entries.append(Entry(path, "file", mode, 0, 0, len(body), 0))
        for probe in probes:
            if probe.wants(path, te):
                layer.probed.setdefault(probe.name, {})[path] = body
                break
    return ImageContent(
        spec or ImageSpec(id="sha256:" + "b" * 64, repo_tags=("app:1.0",), user="app"),
        ImageFS([layer]),
        distro,
        today or dt.date(2026, 1, 1),
    )
