"""Container metadata for events: cgroup -> container id -> Falco container.* fields.

The spec comes from `ContainerSpec.from_inspect`, and `container.failed_rules` from the shared
container rules, so a monitor rule about a container's configuration judges it exactly as
`dockward audit` does.
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

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
    spec = ContainerSpec.from_inspect(data)
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


class ContainerCache:
    """Bounded, thread-safe id -> ContainerInfo; a miss inspects the container once."""

    def __init__(
        self,
        inspect: Callable[[str], Mapping[str, Any]] | None,
        max_entries: int = 4096,
    ) -> None:
        self._inspect = inspect
        self._max = max_entries
        self._items: OrderedDict[str, ContainerInfo | None] = OrderedDict()
        self._lock = threading.Lock()

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
            return None
        self.put(info)
        return info

    def get(self, container_id: str) -> ContainerInfo | None:
        with self._lock:
            if container_id in self._items:
                return self._items[container_id]
        return self.refresh(container_id)

    def all(self) -> list[ContainerInfo]:
        with self._lock:
            return [i for i in self._items.values() if i is not None]

    def fields_for(self, container_id: str | None) -> Mapping[str, Any]:
        if not container_id:
            return HOST_FIELDS
        info = self.get(container_id)
        if info is None:
            return {
                "container.id": container_id[:12],
                "container.full_id": container_id,
                "container.type": "docker",
            }
        return info.fields
