"""Container metadata for events: cgroup -> container id -> Falco container.* fields.

The spec comes from `dockward.specs.from_inspect`, and `container.failed_rules` from the shared
container rules, so a monitor rule about a container's configuration judges it exactly as
`dockward audit` does.
"""

from __future__ import annotations

import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from dockward import specs
from dockward.model.container import ContainerSpec
from dockward.model.finding import Status
from dockward.rules import Context, run_check
from dockward.rules.container import rules as container_rules

HOST_FIELDS: dict[str, Any] = {
    "container.id": "host",
    "container.full_id": "host",
    "container.name": "host",
    "container.type": "host",
}

_CGROUP_ID = re.compile(r"(?:^|[/-])([0-9a-f]{64})(?:\.scope)?(?:/|$)")


def container_id_from_cgroup(text: str) -> str | None:
    """The 64-hex container id in /proc/<pid>/cgroup (cgroup v1 or v2, cgroupfs or systemd)."""
    for line in text.splitlines():
        path = line.split(":", 2)[-1]
        m = _CGROUP_ID.search(path)
        if m:
            return m.group(1)
    return None


def split_image(ref: str) -> tuple[str, str]:
    """`registry:5000/app:1.2@sha256:..` -> (`registry:5000/app`, `1.2`)."""
    name = ref.split("@", 1)[0]
    slash = name.rfind("/")
    colon = name.rfind(":")
    if colon > slash:
        return name[:colon], name[colon + 1 :]
    return name, ("" if "@" in ref else "latest")


def failed_rules(spec: ContainerSpec) -> list[str]:
    out: list[str] = []
    for entry in container_rules:
        for result in run_check(entry, spec, Context(), target=spec.display_name):
            if result.status is Status.FAIL:
                out.append(entry.rule.id)
                break
    return out


@dataclass(frozen=True, slots=True)
class ContainerInfo:
    spec: ContainerSpec
    fields: Mapping[str, Any]
    merged_dir: str = ""
    upper_dir: str = ""


def info_from_inspect(data: Mapping[str, Any]) -> ContainerInfo:
    spec = specs.from_inspect(data)
    repo, tag = split_image(spec.image)
    graph = data.get("GraphDriver") or {}
    gdata = graph.get("Data") or {} if isinstance(graph, dict) else {}
    mounts = [
        {
            "source": m.source,
            "dest": m.target,
            "mode": "ro" if m.read_only else "rw",
            "rw": not m.read_only,
            "propagation": m.propagation,
        }
        for m in spec.mounts
    ]
    fields: dict[str, Any] = {
        "container.id": spec.id[:12],
        "container.full_id": spec.id,
        "container.name": spec.name.lstrip("/"),
        "container.image": spec.image,
        "container.image.id": spec.image_id,
        "container.image.repository": repo,
        "container.image.tag": tag,
        "container.privileged": spec.privileged,
        "container.mounts": [
            f"{m['source']}:{m['dest']}:{m['mode']}:{str(m['rw']).lower()}:{m['propagation']}"
            for m in mounts
        ],
        "container.mount_list": mounts,
        "container.user": spec.user,
        "container.cap_add": list(spec.cap_add),
        "container.network_mode": spec.network_mode,
        "container.pid_mode": spec.pid_mode,
        "container.ipc_mode": spec.ipc_mode,
        "container.labels": [f"{k}={v}" for k, v in spec.labels.items()],
        "container.label_map": dict(spec.labels),
        "container.type": "docker",
        "container.failed_rules": failed_rules(spec),
    }
    return ContainerInfo(
        spec,
        fields,
        str(gdata.get("MergedDir") or "") if isinstance(gdata, dict) else "",
        str(gdata.get("UpperDir") or "") if isinstance(gdata, dict) else "",
    )


MISSING = object()
NEGATIVE_TTL = 30.0


class ContainerCache:
    """Bounded, thread-safe id -> ContainerInfo.

    `fetch` inspects in a small thread pool, so a slow daemon never stalls detection: the
    monitor parks a container's events until its metadata arrives (see Monitor.process).
    `get` inspects synchronously (replay, tests, and the last resort).
    """

    def __init__(
        self,
        inspect: Callable[[str], Mapping[str, Any]] | None,
        max_entries: int = 4096,
        workers: int = 4,
    ) -> None:
        self._inspect = inspect
        self._max = max_entries
        self._items: OrderedDict[str, ContainerInfo | None] = OrderedDict()
        self._failed: dict[str, float] = {}
        self._lock = threading.Lock()
        self._inflight: set[str] = set()
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="inspect") if inspect else None
        # Prefetching what runs at startup must not delay a container events are waiting for.
        self._background = ThreadPoolExecutor(2, thread_name_prefix="prefetch") if inspect else None
        self.on_info: list[Callable[[ContainerInfo], object]] = []

    @property
    def async_ok(self) -> bool:
        return self._pool is not None

    def peek(self, container_id: str) -> Any:
        """The cached info, None for a container that could not be inspected, or MISSING."""
        with self._lock:
            if container_id in self._items:
                return self._items[container_id]
            failed = self._failed.get(container_id)
        if failed is not None and time.monotonic() - failed < NEGATIVE_TTL:
            return None
        return MISSING

    def fetch(self, container_id: str, done: Callable[[str], None], urgent: bool = True) -> None:
        """Inspect in the background; `done(id)` runs when the cache has an answer."""
        if self._pool is None or self._background is None:
            done(container_id)
            return
        with self._lock:
            if container_id in self._inflight and not urgent:
                return
            self._inflight.add(container_id)

        def work() -> None:
            try:
                self.refresh(container_id)
            finally:
                with self._lock:
                    self._inflight.discard(container_id)
                done(container_id)

        (self._pool if urgent else self._background).submit(work)

    def close(self) -> None:
        for pool in (self._pool, self._background):
            if pool is not None:
                pool.shutdown(wait=False, cancel_futures=True)

    def put(self, info: ContainerInfo) -> None:
        with self._lock:
            self._items[info.spec.id] = info
            self._items.move_to_end(info.spec.id)
            while len(self._items) > self._max:
                self._items.popitem(last=False)

    def forget(self, container_id: str) -> None:
        with self._lock:
            self._items.pop(container_id, None)

    def refresh(self, container_id: str) -> ContainerInfo | None:
        if self._inspect is None:
            return None
        try:
            info = info_from_inspect(self._inspect(container_id))
        except Exception:  # gone, or the daemon is down: the event keeps its id only
            with self._lock:
                self._failed[container_id] = time.monotonic()
                if len(self._failed) > self._max:
                    self._failed.clear()
            return None
        self.put(info)
        for hook in self.on_info:
            hook(info)
        return info

    def get(self, container_id: str) -> ContainerInfo | None:
        with self._lock:
            if container_id in self._items:
                return self._items[container_id]
        return self.refresh(container_id)

    def all(self) -> list[ContainerInfo]:
        with self._lock:
            return [i for i in self._items.values() if i is not None]

    def fields_for(self, container_id: str | None, fetch: bool = True) -> Mapping[str, Any]:
        if not container_id:
            return HOST_FIELDS
        if fetch:
            info = self.get(container_id)
        else:
            found = self.peek(container_id)
            info = found if isinstance(found, ContainerInfo) else None
        if info is None:
            return {
                "container.id": container_id[:12],
                "container.full_id": container_id,
                "container.type": "docker",
            }
        return info.fields
