"""One distribution client for every command that talks to a registry.

`parse_reference` reads image references as Docker does, `CredentialStore` finds logins as the
Docker CLI does, and `RegistryClient` speaks the distribution API (auth challenges, manifests and
indexes, verified blobs, pushes, retries). Names are imported on first use: reading an archive
needs `Platform` but not the HTTP stack.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from dockward.util.lazy import lazy_attributes

if TYPE_CHECKING:
    from dockward.registry.client import (
        BlobReader as BlobReader,
    )
    from dockward.registry.client import (
        DigestMismatch as DigestMismatch,
    )
    from dockward.registry.client import (
        Manifest as Manifest,
    )
    from dockward.registry.client import (
        NotFound as NotFound,
    )
    from dockward.registry.client import (
        RegistryClient as RegistryClient,
    )
    from dockward.registry.client import (
        RegistryError as RegistryError,
    )
    from dockward.registry.client import (
        RemoteManifest as RemoteManifest,
    )
    from dockward.registry.client import (
        insecure_hosts as insecure_hosts,
    )
    from dockward.registry.client import (
        is_loopback_host as is_loopback_host,
    )
    from dockward.registry.client import (
        parse_challenge as parse_challenge,
    )
    from dockward.registry.credentials import (
        Credentials as Credentials,
    )
    from dockward.registry.credentials import (
        CredentialStore as CredentialStore,
    )
    from dockward.registry.platform import (
        Platform as Platform,
    )
    from dockward.registry.platform import (
        PlatformNotFound as PlatformNotFound,
    )
    from dockward.registry.platform import (
        select_platform as select_platform,
    )
    from dockward.registry.reference import (
        DOCKER_HUB as DOCKER_HUB,
    )
    from dockward.registry.reference import (
        ImageRef as ImageRef,
    )
    from dockward.registry.reference import (
        InvalidReference as InvalidReference,
    )
    from dockward.registry.reference import (
        parse_reference as parse_reference,
    )

_WHERE = {
    "BlobReader": "client",
    "CredentialStore": "credentials",
    "Credentials": "credentials",
    "DOCKER_HUB": "reference",
    "DigestMismatch": "client",
    "ImageRef": "reference",
    "InvalidReference": "reference",
    "Manifest": "client",
    "NotFound": "client",
    "Platform": "platform",
    "PlatformNotFound": "platform",
    "RegistryClient": "client",
    "RegistryError": "client",
    "RemoteManifest": "client",
    "insecure_hosts": "client",
    "is_loopback_host": "client",
    "parse_challenge": "client",
    "parse_reference": "reference",
    "select_platform": "platform",
}

__all__ = sorted(_WHERE)

__getattr__ = lazy_attributes(__name__, _WHERE)
