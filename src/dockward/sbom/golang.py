"""Go binaries: module versions and the Go toolchain (stdlib) version from build info."""

from __future__ import annotations

from dockward.image.fs import ImageFS
from dockward.sbom.model import Package
from dockward.sbom.probes import GoBuildInfo
from dockward.sbom.purl import golang_purl


def _mods(info: GoBuildInfo) -> list[tuple[str, str]]:
    mods: list[tuple[str, str]] = []
    for line in info.modinfo.splitlines():
        parts = line.split("\t")
        if parts[0] in ("mod", "dep") and len(parts) >= 3:
            mods.append((parts[1], parts[2]))
        elif parts[0] == "=>" and len(parts) >= 3 and mods and parts[2] not in ("", "(devel)"):
            # A replace directive with a version: the replacement is what ships. A local-path
            # replacement has none; the required version is the best name it has.
            mods[-1] = (parts[1], parts[2])
    return mods


def catalog_go(fs: ImageFS) -> tuple[list[Package], list[str]]:
    out: list[Package] = []
    notes: list[str] = []
    for path, (layer, info) in sorted(fs.probed("go").items()):
        if not isinstance(info, GoBuildInfo):
            continue
        digest = fs.layers[layer].digest
        if not info.go_version:
            notes.append(f"/{path}: Go binary built before Go 1.18; module versions unreadable")
            continue
        stdlib = info.go_version.removeprefix("go").split(" ")[0].split("-")[0]
        out.append(
            Package(
                "stdlib",
                stdlib,
                "golang",
                golang_purl("stdlib", "v" + stdlib),
                "Go",
                "go",
                digest,
                (f"/{path}",),
            )
        )
        for module, version in _mods(info):
            if version == "(devel)":
                continue
            out.append(
                Package(
                    module,
                    version,
                    "golang",
                    golang_purl(module, version),
                    "Go",
                    "go",
                    digest,
                    (f"/{path}",),
                )
            )
    return out, notes
