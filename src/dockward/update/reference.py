"""Image references (`registry/repo:tag@digest`), parsed strictly as the distribution spec says."""

from __future__ import annotations

import re
from dataclasses import dataclass

from dockward.errors import InputError

DOCKER_HUB = "docker.io"
# Docker Hub's registry API lives on another host than its name.
DOCKER_HUB_API = "registry-1.docker.io"

_COMPONENT = re.compile(r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*")
_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
_DIGEST = re.compile(r"[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]{32,}")
_DOMAIN = re.compile(r"(?:[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*|\[[0-9A-Fa-f:]+\])(?::[0-9]{1,5})?")


@dataclass(frozen=True, slots=True)
class ImageRef:
    registry: str  # as written, docker.io for Docker Hub
    repository: str  # library/ added for official Hub images
    tag: str = "latest"
    digest: str = ""

    @property
    def api_host(self) -> str:
        return DOCKER_HUB_API if self.registry == DOCKER_HUB else self.registry

    @property
    def name(self) -> str:
        return f"{self.registry}/{self.repository}"

    @property
    def pinned(self) -> bool:
        """A digest-pinned reference never changes, so there is nothing to update."""
        return bool(self.digest)

    def familiar(self) -> str:
        """The short form the daemon shows (`nginx:1`, `127.0.0.1:5000/app:2`)."""
        repo = self.repository
        if self.registry == DOCKER_HUB:
            repo = repo.removeprefix("library/")
            base = repo
        else:
            base = f"{self.registry}/{repo}"
        if self.digest:
            return f"{base}@{self.digest}"
        return f"{base}:{self.tag}"

    def __str__(self) -> str:
        return self.familiar()


def parse_reference(text: str) -> ImageRef:
    """Parse an image reference; raise InputError on anything the daemon would also refuse."""
    ref = text.strip()
    if not ref or len(ref) > 512:
        raise InputError(f"invalid image reference {text!r}")
    name, _, digest = ref.partition("@")
    if digest and not _DIGEST.fullmatch(digest):
        raise InputError(f"invalid digest in image reference {text!r}")
    tag = ""
    slash = name.rfind("/")
    colon = name.rfind(":")
    if colon > slash:
        name, tag = name[:colon], name[colon + 1 :]
        if not _TAG.fullmatch(tag):
            raise InputError(f"invalid tag in image reference {text!r}")
    first, sep, rest = name.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost" or first != first.lower()):
        if not _DOMAIN.fullmatch(first):
            raise InputError(f"invalid registry in image reference {text!r}")
        registry, path = first, rest
    else:
        registry, path = DOCKER_HUB, name
    if registry in ("index.docker.io", "registry-1.docker.io"):
        registry = DOCKER_HUB
    parts = path.split("/")
    if not path or not all(_COMPONENT.fullmatch(p) for p in parts):
        raise InputError(f"invalid repository in image reference {text!r}")
    if registry == DOCKER_HUB and len(parts) == 1:
        path = "library/" + path
    return ImageRef(registry, path, tag or ("" if digest and not tag else "latest"), digest)
