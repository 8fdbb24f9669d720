"""Image sources (daemon, docker-archive, OCI layout, registry) -> ImageFS, never extracted.

Names are imported on first use: a scan of an archive never pays for the registry client's
HTTP stack (about 60 ms of imports).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from dockward.util.lazy import lazy_attributes

if TYPE_CHECKING:
    from dockward.image.archive import (
        LoadedImage as LoadedImage,
    )
    from dockward.image.archive import (
        Platform as Platform,
    )
    from dockward.image.archive import (
        load_archive as load_archive,
    )
    from dockward.image.archive import (
        load_stream as load_stream,
    )
    from dockward.image.daemon import (
        load_daemon as load_daemon,
    )
    from dockward.image.fs import (
        Capture as Capture,
    )
    from dockward.image.fs import (
        Entry as Entry,
    )
    from dockward.image.fs import (
        ImageFS as ImageFS,
    )
    from dockward.image.fs import (
        LayerIndex as LayerIndex,
    )
    from dockward.image.fs import (
        Probe as Probe,
    )
    from dockward.image.fs import (
        index_layer as index_layer,
    )
    from dockward.image.registry import (
        load_registry as load_registry,
    )
    from dockward.image.spec import (
        spec_from_config as spec_from_config,
    )
    from dockward.image.tarstream import (
        ArchiveError as ArchiveError,
    )
    from dockward.image.tarstream import (
        Limits as Limits,
    )

_WHERE = {
    "ArchiveError": "tarstream",
    "Capture": "fs",
    "Entry": "fs",
    "ImageFS": "fs",
    "LayerIndex": "fs",
    "Limits": "tarstream",
    "LoadedImage": "archive",
    "Platform": "archive",
    "Probe": "fs",
    "index_layer": "fs",
    "load_archive": "archive",
    "load_daemon": "daemon",
    "load_registry": "registry",
    "load_stream": "archive",
    "spec_from_config": "spec",
}

__all__ = sorted(_WHERE)

__getattr__ = lazy_attributes(__name__, _WHERE)
