"""Engine access and collectors: the only code that talks to Docker and the host."""

from dockward.engine.client import Endpoint, connect, resolve_endpoint
from dockward.engine.collect import collect_snapshot

__all__ = ["Endpoint", "collect_snapshot", "connect", "resolve_endpoint"]
