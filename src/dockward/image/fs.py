"""ImageFS: a read-only merged view of an image's layers, built from layer streams.

Each layer is read once, front to back. Its entries' metadata is kept; file bodies are kept only
when a probe asks for them (bounded), so nothing is ever extracted to the host.
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, BinaryIO, Protocol

from dockward.image.tarstream import (
    DEFAULT_LIMITS,
    ArchiveError,
    Limits,
    TarEntry,
    TarStream,
    normalize,
)

WHITEOUT = ".wh."
OPAQUE = ".wh..wh..opq"
MAX_SYMLINK_HOPS = 40


@dataclass(frozen=True, slots=True)
class Entry:
    """One path of the merged view (paths are relative, no leading slash)."""

    path: str
    kind: str  # file, dir, symlink, hardlink, char, block, fifo, other
    mode: int
    uid: int
    gid: int
    size: int
    layer: int
    link: str = ""

    @property
    def setuid(self) -> bool:
        return self.kind == "file" and bool(self.mode & 0o4000)

    @property
    def setgid(self) -> bool:
        return self.kind == "file" and bool(self.mode & 0o2000)


class Body(Protocol):
    def read(self, n: int = -1) -> bytes: ...


class Probe(Protocol):
    """Asks for some entries' bodies while a layer streams by; returns a small summary."""

    @property
    def name(self) -> str: ...

    def wants(self, path: str, entry: TarEntry) -> bool: ...

    def read(self, path: str, entry: TarEntry, body: Body) -> Any: ...


@dataclass(frozen=True, slots=True)
class Capture:
    """The standard probe: keep the whole body of matching files up to `limit` bytes."""

    name: str
    match: Callable[[str], bool]
    limit: int = 8 << 20

    def wants(self, path: str, entry: TarEntry) -> bool:
        return entry.is_file and self.match(path)

    def read(self, path: str, entry: TarEntry, body: Body) -> Any:
        if entry.size > self.limit:
            return None  # recorded as too large; catalogers report it, memory stays bounded
        return body.read(entry.size)


@dataclass(slots=True)
class LayerIndex:
    """What one layer holds: entries in order and the probes' results per path."""

    digest: str
    entries: list[Entry] = field(default_factory=list)
    probed: dict[str, dict[str, Any]] = field(default_factory=dict)
    size: int = 0


def index_layer(
    stream: BinaryIO,
    layer: int,
    digest: str,
    probes: Sequence[Probe] = (),
    limits: Limits = DEFAULT_LIMITS,
) -> LayerIndex:
    """Read one (decompressed) layer tar into a LayerIndex; hostile entries raise ArchiveError."""
    where = f"layer {digest[:19] or layer}"
    out = LayerIndex(digest)
    seen_files: set[str] = set()
    tar = TarStream(stream, where, limits)
    for te in tar:
        path = normalize(te.name, where, limits)
        if not path:
            continue
        link = te.linkname
        if te.kind == "hardlink":
            target = normalize(link, where, limits)
            # A hard link may only name a file already in this layer: no forward refs, no loops.
            if target not in seen_files or target == path:
                raise ArchiveError(f"{where}: hard link {path!r} -> {link!r} names no earlier file")
            link = target
        if te.kind == "file":
            seen_files.add(path)
        out.entries.append(Entry(path, te.kind, te.mode, te.uid, te.gid, te.size, layer, link))
        out.size += te.size
        for probe in probes:
            if probe.wants(path, te):
                out.probed.setdefault(probe.name, {})[path] = probe.read(path, te, tar)
                break
    return out


class ImageFS:
    """The merged, read-only view: whiteouts and opaque directories applied in layer order.

    Building it consumes the layers' entry lists (their probe results stay).
    """

    def __init__(self, layers: Sequence[LayerIndex]) -> None:
        self.layers = tuple(layers)
        self._entries: dict[str, Entry] = {"": Entry("", "dir", 0o755, 0, 0, 0, -1)}
        self._children: dict[str, set[str]] = {"": set()}
        self._probed: dict[str, dict[str, tuple[int, Any]]] = {}
        for i, layer in enumerate(self.layers):
            self._apply(i, layer)
        for layer in self.layers:
            layer.entries.clear()  # merged into the view; per-layer copies would double memory

    def _remove(self, path: str) -> None:
        entry = self._entries.pop(path, None)
        if entry is None:
            return
        for child in list(self._children.pop(path, ())):
            self._remove(f"{path}/{child}" if path else child)
        parent, _, name = path.rpartition("/")
        self._children.get(parent, set()).discard(name)
        for found in self._probed.values():
            found.pop(path, None)

    def _add(self, entry: Entry) -> None:
        parent, _, name = entry.path.rpartition("/")
        if parent not in self._entries:
            self._add(Entry(parent, "dir", 0o755, 0, 0, 0, entry.layer))
        elif self._entries[parent].kind == "symlink":
            raise ArchiveError(
                f"layer {entry.layer}: entry {entry.path!r} goes through the symlink {parent!r}"
            )
        old = self._entries.get(entry.path)
        if old is not None and not (old.kind == "dir" and entry.kind == "dir"):
            self._remove(entry.path)
        self._entries[entry.path] = entry
        self._children.setdefault(parent, set()).add(name)
        if entry.kind == "dir":
            self._children.setdefault(entry.path, set())

    def _apply(self, index: int, layer: LayerIndex) -> None:
        own: set[str] = set()
        for e in layer.entries:
            parent, _, name = e.path.rpartition("/")
            if name == OPAQUE:
                for child in list(self._children.get(parent, ())):
                    child_path = f"{parent}/{child}" if parent else child
                    if child_path not in own:
                        self._remove(child_path)
                continue
            if name.startswith(WHITEOUT):
                self._remove(f"{parent}/{name[len(WHITEOUT) :]}" if parent else name[4:])
                continue
            if e.layer != index:
                e = Entry(e.path, e.kind, e.mode, e.uid, e.gid, e.size, index, e.link)
            self._add(e)
            own.add(e.path)
        for probe, found in layer.probed.items():
            slot = self._probed.setdefault(probe, {})
            for path, value in found.items():
                if path in self._entries and self._entries[path].layer == index:
                    slot[path] = (index, value)

    def get(self, path: str) -> Entry | None:
        return self._entries.get(path.strip("/"))

    def __contains__(self, path: object) -> bool:
        return isinstance(path, str) and path.strip("/") in self._entries

    def __iter__(self) -> Iterator[Entry]:
        return (e for p, e in self._entries.items() if p)

    def __len__(self) -> int:
        return len(self._entries) - 1

    def listdir(self, path: str) -> list[str]:
        return sorted(self._children.get(path.strip("/"), ()))

    def resolve(self, path: str) -> str | None:
        """Follow symlinks inside the image root (as the kernel does in the container).

        A target never leaves the root: `..` stops at `/`. Loops give None.
        """
        parts = [p for p in path.strip("/").split("/") if p]
        done: list[str] = []
        hops = 0
        while parts:
            part = parts.pop(0)
            if part == ".":
                continue
            if part == "..":
                if done:
                    done.pop()
                continue
            here = "/".join([*done, part])
            entry = self._entries.get(here)
            if entry is not None and entry.kind == "symlink":
                hops += 1
                if hops > MAX_SYMLINK_HOPS:
                    return None
                target = entry.link
                if target.startswith("/"):
                    done = []
                parts = [p for p in target.split("/") if p] + parts
                continue
            done.append(part)
        return "/".join(done)

    def probed(self, probe: str) -> dict[str, tuple[int, Any]]:
        """Results of one probe in the merged view: path -> (layer index, value)."""
        return self._probed.get(probe, {})

    def history(self, probe: str, path: str) -> list[tuple[int, Any]]:
        """A probed path's value in every layer that wrote it (oldest first)."""
        return [
            (i, layer.probed[probe][path])
            for i, layer in enumerate(self.layers)
            if path in layer.probed.get(probe, {})
        ]

    def read(self, path: str) -> bytes | None:
        """A captured file's body (following symlinks), or None if it was not captured."""
        real = self.resolve(path)
        if real is None:
            return None
        entry = self._entries.get(real)
        if entry is not None and entry.kind == "hardlink":
            real = entry.link
        for found in self._probed.values():
            hit = found.get(real)
            if hit is not None and isinstance(hit[1], bytes):
                return hit[1]
        return None

    def glob_dir(self, directory: str) -> Iterable[Entry]:
        base = directory.strip("/")
        for name in self.listdir(base):
            entry = self._entries.get(f"{base}/{name}" if base else name)
            if entry is not None:
                yield entry


def join(*parts: str) -> str:
    return posixpath.join(*parts).strip("/")
