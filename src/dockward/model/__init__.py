"""The typed models every capability shares."""

from dockward.model.container import (
    DEFAULT_CAPABILITIES,
    ContainerSpec,
    Device,
    ExecSession,
    Healthcheck,
    Mount,
    PortBinding,
    RestartPolicy,
    SecurityOptions,
    Ulimit,
    normalise_capability,
)
from dockward.model.daemon import DaemonSpec, Setting
from dockward.model.finding import (
    SCHEMA_VERSION,
    Location,
    Report,
    Result,
    Rule,
    Severity,
    Status,
)
from dockward.model.host import FileInfo, HostSnapshot, NetworkInfo, Unavailable
from dockward.model.image import HistoryEntry, ImageSpec

__all__ = [
    "DEFAULT_CAPABILITIES",
    "SCHEMA_VERSION",
    "ContainerSpec",
    "DaemonSpec",
    "Device",
    "ExecSession",
    "FileInfo",
    "Healthcheck",
    "HistoryEntry",
    "HostSnapshot",
    "ImageSpec",
    "Location",
    "Mount",
    "NetworkInfo",
    "PortBinding",
    "Report",
    "RestartPolicy",
    "Result",
    "Rule",
    "SecurityOptions",
    "Setting",
    "Severity",
    "Status",
    "Ulimit",
    "Unavailable",
    "normalise_capability",
]
