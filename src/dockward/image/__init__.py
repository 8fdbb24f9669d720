"""Image sources (daemon, docker-archive, OCI layout, registry) -> ImageFS, never extracted."""

from dockward.image.archive import LoadedImage, Platform, load_archive, load_stream
from dockward.image.daemon import load_daemon
from dockward.image.fs import Capture, Entry, ImageFS, LayerIndex, Probe, index_layer
from dockward.image.registry import ImageRef, load_registry
from dockward.image.spec import spec_from_config
from dockward.image.tarstream import ArchiveError, Limits

__all__ = [
    "ArchiveError",
    "Capture",
    "Entry",
    "ImageFS",
    "ImageRef",
    "LayerIndex",
    "Limits",
    "LoadedImage",
    "Platform",
    "Probe",
    "index_layer",
    "load_archive",
    "load_daemon",
    "load_registry",
    "load_stream",
    "spec_from_config",
]
