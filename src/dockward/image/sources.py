"""Where an image is read from, behind one protocol: a docker-archive or OCI layout on disk, the
local daemon (`docker save`), a registry. Each gives the same `LoadedImage`, never extracted; a
caller picks sources and tries them in order (`scan --source auto`: archive path, daemon,
registry). The loaders are imported on first use, so an archive scan never pays for the registry
client's HTTP stack.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from dockward.image.tarstream import DEFAULT_LIMITS, Limits
from dockward.registry.platform import Platform

if TYPE_CHECKING:
    from dockward.image.archive import LoadedImage, Progress
    from dockward.image.daemon import DaemonStore
    from dockward.image.fs import Probe


class ImageSource(Protocol):
    """One place images are read from. `load` raises InputError when the image is not there
    (and ConnectionFailed when the place cannot be reached)."""

    @property
    def kind(self) -> str: ...

    def load(
        self,
        ref: str,
        probes: Sequence[Probe],
        *,
        limits: Limits = DEFAULT_LIMITS,
        progress: Progress | None = None,
        cache: DaemonStore | None = None,
    ) -> LoadedImage: ...


@dataclass(frozen=True, slots=True)
class ArchiveSource:
    """A docker-archive tarball (`docker save`) or an OCI layout directory or tarball."""

    platform: Platform | None = None
    kind: str = "archive"

    def load(
        self,
        ref: str,
        probes: Sequence[Probe],
        *,
        limits: Limits = DEFAULT_LIMITS,
        progress: Progress | None = None,
        cache: DaemonStore | None = None,
    ) -> LoadedImage:
        from dockward.image.archive import load_archive

        return load_archive(
            ref, probes, platform=self.platform, limits=limits, progress=progress, cache=cache
        )


@dataclass(frozen=True, slots=True)
class DaemonSource:
    """An image the local engine holds; `client` is a connected docker-py APIClient."""

    client: Any
    kind: str = "daemon"

    def load(
        self,
        ref: str,
        probes: Sequence[Probe],
        *,
        limits: Limits = DEFAULT_LIMITS,
        progress: Progress | None = None,
        cache: DaemonStore | None = None,
    ) -> LoadedImage:
        from dockward.image.daemon import load_daemon

        return load_daemon(self.client, ref, probes, limits=limits, progress=progress, cache=cache)


@dataclass(frozen=True, slots=True)
class RegistrySource:
    """An image in a registry, read through dockward.registry (credentials, digests verified)."""

    platform: Platform | None = None
    insecure: bool = False
    docker_config: str | None = None
    kind: str = "registry"

    def load(
        self,
        ref: str,
        probes: Sequence[Probe],
        *,
        limits: Limits = DEFAULT_LIMITS,
        progress: Progress | None = None,
        cache: DaemonStore | None = None,
    ) -> LoadedImage:
        from dockward.image.registry import load_registry

        return load_registry(
            ref,
            probes,
            platform=self.platform,
            insecure=self.insecure,
            docker_config=self.docker_config,
            limits=limits,
            progress=progress,
            cache=cache,
        )
