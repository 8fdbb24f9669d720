"""Image references as Docker reads them (distribution/reference's grammar and normalisation).

`nginx` is `docker.io/library/nginx:latest`; the first path component names a registry when it
has a `.` or a `:`, is `localhost` or has an upper-case letter; names are lower case, at most 255
characters; tags are `[\\w][\\w.-]{0,127}`; digests name a known algorithm with its full length.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from dockward.errors import InputError

DOCKER_HUB = "docker.io"
# Docker Hub's registry API lives on another host than its name.
DOCKER_HUB_API = "registry-1.docker.io"
NAME_MAX = 255

_PATH_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_PATH = re.compile(rf"{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*")
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN = re.compile(
    rf"(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|\[[a-fA-F0-9:]+\])(?::[0-9]+)?"
)
_TAG = re.compile(r"[\w][\w.-]{0,127}", re.ASCII)
_DIGEST = re.compile(r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}")
_IDENTIFIER = re.compile(r"[a-f0-9]{64}")
# go-digest's registered algorithms and their hex lengths (lower case only).
DIGEST_HEX = {"sha256": 64, "sha384": 96, "sha512": 128}


class InvalidReference(InputError):
    """Text that Docker would not accept as an image reference."""


@dataclass(frozen=True, slots=True)
class ImageRef:
    registry: str  # docker.io for Docker Hub
    repository: str  # library/nginx
    tag: str = "latest"  # "" only when a digest is given without a tag
    digest: str = ""

    @property
    def api_host(self) -> str:
        return DOCKER_HUB_API if self.registry == DOCKER_HUB else self.registry

    @property
    def name(self) -> str:
        """`docker.io/library/nginx`: the repository, fully qualified."""
        return f"{self.registry}/{self.repository}"

    @property
    def reference(self) -> str:
        """What the manifest URL names: the digest when pinned, else the tag."""
        return self.digest or self.tag

    @property
    def pinned(self) -> bool:
        """A digest-pinned reference never changes, so there is nothing to update."""
        return bool(self.digest)

    @property
    def canonical(self) -> str:
        """`docker.io/library/nginx:1@sha256:..`, as distribution/reference's String()."""
        out = self.name
        if self.tag:
            out += f":{self.tag}"
        return f"{out}@{self.digest}" if self.digest else out

    def familiar(self) -> str:
        """The short form the Docker CLI shows (`nginx:1`, `127.0.0.1:5000/app:2`)."""
        base = self.name
        if self.registry == DOCKER_HUB:
            # Docker drops library/ only from two-component names: library/a/b stays as it is.
            one = self.repository.count("/") == 1
            base = self.repository.removeprefix("library/") if one else self.repository
        if self.tag:
            base += f":{self.tag}"
        return f"{base}@{self.digest}" if self.digest else base

    def with_digest(self, digest: str) -> ImageRef:
        return ImageRef(self.registry, self.repository, self.tag, digest)

    def __str__(self) -> str:
        return self.familiar()


def parse_reference(text: str) -> ImageRef:
    """Parse like `docker pull` (ParseNormalizedNamed + TagNameOnly); InvalidReference if refused."""
    ref = text.strip()
    if not ref or len(ref) > 1024:
        raise InvalidReference(f"invalid image reference {text[:80]!r}")
    if _IDENTIFIER.fullmatch(ref):
        raise InvalidReference(
            f"invalid image reference {text!r}: a 64-hex string is an image id, not a name"
        )
    name, _, digest = ref.partition("@")
    if digest:
        _check_digest(digest, text)
    tag = ""
    slash, colon = name.rfind("/"), name.rfind(":")
    if colon > slash:
        name, tag = name[:colon], name[colon + 1 :]
        if not _TAG.fullmatch(tag):
            raise InvalidReference(f"invalid tag in image reference {text!r}")
    first, sep, rest = name.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost" or first != first.lower()):
        if not _DOMAIN.fullmatch(first):
            raise InvalidReference(f"invalid registry in image reference {text!r}")
        registry, path = first, rest
    else:
        registry, path = DOCKER_HUB, name
    if registry == "index.docker.io":
        registry = DOCKER_HUB
    if path != path.lower():
        raise InvalidReference(f"invalid image reference {text!r}: repository must be lower case")
    if not _PATH.fullmatch(path):
        raise InvalidReference(f"invalid repository in image reference {text!r}")
    if registry == DOCKER_HUB and "/" not in path:
        path = "library/" + path
    if len(registry) + 1 + len(path) > NAME_MAX:
        raise InvalidReference(
            f"invalid image reference {text[:80]!r}: name longer than {NAME_MAX}"
        )
    return ImageRef(registry, path, tag or ("" if digest else "latest"), digest)


def _check_digest(digest: str, text: str) -> None:
    algorithm, _, hexpart = digest.partition(":")
    if not _DIGEST.fullmatch(digest):
        raise InvalidReference(f"invalid digest in image reference {text!r}")
    if DIGEST_HEX.get(algorithm) != len(hexpart) or hexpart != hexpart.lower():
        raise InvalidReference(f"unsupported or malformed digest in image reference {text!r}")
