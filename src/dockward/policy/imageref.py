"""Docker image references: registry, repository, tag, digest (distribution/reference rules)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from dockward.errors import DockwardError

_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
_REPO = re.compile(
    r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$"
)
_TAG = re.compile(r"^[\w][\w.-]{0,127}$")
DOCKER_HUB = "docker.io"


class ReferenceError_(DockwardError, ValueError):
    pass


@dataclass(frozen=True, slots=True)
class ImageRef:
    registry: str  # docker.io for Docker Hub
    repository: str  # library/busybox
    tag: str = ""
    digest: str = ""

    @property
    def name(self) -> str:
        return f"{self.registry}/{self.repository}"

    def __str__(self) -> str:
        out = self.name
        if self.tag:
            out += f":{self.tag}"
        if self.digest:
            out += f"@{self.digest}"
        return out


def parse_image_ref(text: str) -> ImageRef:
    """Parse like the engine: the first component is a registry if it has '.' or ':' or is
    `localhost`; a missing tag is `latest` only when there is no digest."""
    ref = text.strip()
    if not ref:
        raise ReferenceError_("empty image reference")
    digest = ""
    if "@" in ref:
        ref, _, digest = ref.partition("@")
        if not _DIGEST.match(digest):
            raise ReferenceError_(f"bad digest in image reference {text!r}")
    tag = ""
    last = ref.rsplit("/", 1)[-1]
    if ":" in last:
        ref, _, tag = ref.rpartition(":")
        if not _TAG.match(tag):
            raise ReferenceError_(f"bad tag in image reference {text!r}")
    first, sep, rest = ref.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost"):
        registry, repo = first, rest
    else:
        registry, repo = DOCKER_HUB, ref
        if "/" not in repo:
            repo = f"library/{repo}"
    if registry in ("index.docker.io", "registry-1.docker.io"):
        registry = DOCKER_HUB
    if not _REPO.match(repo):
        raise ReferenceError_(f"bad repository name in image reference {text!r}")
    if not tag and not digest:
        tag = "latest"
    return ImageRef(registry, repo, tag, digest)
