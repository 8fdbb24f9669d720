"""docker-save archives and OCI image layouts (directory or tar), read as streams."""

from __future__ import annotations

import io
import json
import os
import stat
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Protocol

from dockward.image.fs import LayerIndex, Probe, index_layer
from dockward.image.tarstream import (
    DEFAULT_LIMITS,
    ArchiveError,
    Hashing,
    Limits,
    TarStream,
    Window,
    decompressed,
    normalize,
)
from dockward.registry.platform import Platform as Platform
from dockward.registry.platform import select_platform

MAX_JSON = 16 << 20
INDEX_TYPES = {
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
}

Progress = Callable[[str], None]


@dataclass(frozen=True, slots=True)
class LoadedImage:
    """An image read from a source: its config, layer indexes and names."""

    source: str
    config: dict[str, Any]
    config_digest: str
    layers: tuple[LayerIndex, ...]
    repo_tags: tuple[str, ...] = ()
    repo_digests: tuple[str, ...] = ()
    manifest_digest: str = ""


def _json(data: bytes, what: str) -> Any:
    try:
        return json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ArchiveError(f"{what}: malformed JSON ({exc})") from exc


class _Body(io.RawIOBase):
    def __init__(self, tar: TarStream) -> None:
        self._tar = tar

    def readable(self) -> bool:
        return True

    def readinto(self, buf: memoryview) -> int:  # type: ignore[override]
        data = self._tar.read(len(buf))
        buf[: len(data)] = data
        return len(data)


class LayerStore(Protocol):
    """Indexed layers kept between reads (dockward.scan.layercache.LayerCache)."""

    def get(self, key: str, digest: str) -> LayerIndex | None: ...

    def put(self, key: str, index: LayerIndex) -> None: ...


# A file changed within this many seconds of being read could change again without its
# timestamps moving (they tick at the file system's granularity): such a file gets no cache key.
RACY_SECONDS = 2.0


def file_key(st: os.stat_result, offset: int, length: int) -> str:
    """A region of a local file, valid while the file is unchanged (ctime cannot be set).

    "" for a file modified in the last RACY_SECONDS (the "racily clean" case of git's index).
    """
    if time.time_ns() - max(st.st_mtime_ns, st.st_ctime_ns) < RACY_SECONDS * 1e9:
        return ""
    return (
        f"file:{st.st_dev}:{st.st_ino}:{st.st_size}:{st.st_mtime_ns}:{st.st_ctime_ns}:"
        f"{offset}:{length}"
    )


def _regular_file(f: BinaryIO) -> os.stat_result | None:
    try:
        st = os.fstat(f.fileno())
    except (AttributeError, OSError, ValueError):
        return None
    return st if stat.S_ISREG(st.st_mode) else None


# name, kind, size, body (a buffered reader with peek(), or None), symlink target, cache key
Member = tuple[str, str, int, Any, str, str]


def _tar_members(f: BinaryIO, where: str, limits: Limits) -> Iterator[Member]:
    tar = TarStream(f, where, limits)
    st = _regular_file(f)
    for te in tar:
        name = normalize(te.name, where, limits)
        if te.kind == "file":
            # A seekable archive gives each member a seekable window, so the layer reader can
            # seek past the bodies it does not want instead of reading them.
            raw: io.RawIOBase = Window(f, tar.offset, te.size) if tar.offset >= 0 else _Body(tar)
            key = file_key(st, tar.offset, te.size) if st is not None and tar.offset >= 0 else ""
            yield name, "file", te.size, io.BufferedReader(raw, 1 << 20), "", key
        elif te.kind == "symlink":
            yield name, "symlink", 0, None, te.linkname, ""


def _dir_members(root: Path, where: str) -> Iterator[Member]:
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        for fn in sorted(filenames) + [
            d for d in dirnames if os.path.islink(os.path.join(dirpath, d))
        ]:
            full = os.path.join(dirpath, fn)
            rel = os.path.relpath(full, root).replace(os.sep, "/")
            st = os.lstat(full)
            if stat.S_ISLNK(st.st_mode):
                yield rel, "symlink", 0, None, os.readlink(full), ""
            elif stat.S_ISREG(st.st_mode):
                with open(full, "rb") as fh:
                    yield rel, "file", st.st_size, fh, "", file_key(st, 0, st.st_size)


def read_members(
    members: Iterator[Member],
    where: str,
    probes: Sequence[Probe],
    limits: Limits,
    progress: Progress | None,
    cache: LayerStore | None = None,
) -> tuple[dict[str, Any], dict[str, LayerIndex], dict[str, str]]:
    """Small JSON members kept, layers indexed as they stream by, symlinks recorded.

    With a cache, a layer whose file region was indexed before (and is unchanged) is not read.
    """
    docs: dict[str, Any] = {}
    layers: dict[str, LayerIndex] = {}
    links: dict[str, str] = {}
    for name, kind, size, body, target, key in members:
        if kind == "symlink":
            links[name] = normalize(
                os.path.normpath(os.path.join(os.path.dirname(name), target)), where, limits
            )
            continue
        assert body is not None
        is_blob = name.startswith("blobs/")
        if name.endswith("/layer.tar") or (is_blob and size > 0):
            # Only layers are stored, so a hit is a layer (and a blob that was verified then).
            hit = cache.get(key, name) if cache is not None and key else None
            if hit is not None:
                layers[name] = hit
                continue
            head = body.peek(1)[:1]
            if head == b"{" and size <= MAX_JSON:
                data = body.read(size)
                docs[name] = _json(data, f"{where}: {name}")
                if is_blob:
                    _verify(name, data, where)
                continue
            if progress:
                progress(f"layer {len(layers) + 1}")
            if not name.startswith("blobs/sha256/"):
                # docker-save v1 paths (`<id>/layer.tar`) are not content addresses: no digest
                # to check, so the layer is read through its seekable window.
                stream = decompressed(body, f"{where}: {name}")
                layers[name] = index_layer(stream, -1, name, probes, limits)
            else:
                hashing = Hashing(body)
                stream = decompressed(io.BufferedReader(hashing, 1 << 20), f"{where}: {name}")
                try:
                    layers[name] = index_layer(stream, -1, name, probes, limits)
                except ArchiveError:
                    # A blob that is not what its name says: say that, not what broke in it.
                    hashing.drain()
                    _check_digest(name, hashing.hexdigest(), where)
                    raise
                hashing.drain()
                _check_digest(name, hashing.hexdigest(), where)
            if cache is not None and key:
                cache.put(key, layers[name])
            continue
        if size <= MAX_JSON and (name.endswith(".json") or name in ("repositories", "oci-layout")):
            docs[name] = _json(body.read(size), f"{where}: {name}")
    return docs, layers, links


def _check_digest(name: str, actual: str, where: str) -> None:
    if actual != name.rsplit("/", 1)[-1]:
        raise ArchiveError(f"{where}: blob {name} does not match its digest")


def _verify(name: str, data: bytes, where: str) -> None:
    import hashlib

    if name.startswith("blobs/sha256/") and hashlib.sha256(data).hexdigest() != name.split("/")[-1]:
        raise ArchiveError(f"{where}: blob {name} does not match its digest")


def _blob(digest: str) -> str:
    algo, _, hexd = str(digest).partition(":")
    if algo != "sha256" or len(hexd) != 64 or not all(c in "0123456789abcdef" for c in hexd):
        raise ArchiveError(f"unsupported or malformed digest {digest!r}")
    return f"blobs/sha256/{hexd}"


def assemble(
    where: str,
    docs: dict[str, Any],
    layers: dict[str, LayerIndex],
    links: dict[str, str],
    platform: Platform,
    tag: str | None = None,
) -> LoadedImage:
    def layer(path: str) -> LayerIndex:
        path = links.get(path, path)
        if path not in layers:
            raise ArchiveError(f"{where}: layer {path} is missing from the archive")
        return layers[path]

    def doc(path: str) -> Any:
        path = links.get(path, path)
        if path not in docs:
            raise ArchiveError(f"{where}: {path} is missing from the archive")
        return docs[path]

    manifest = docs.get("manifest.json")
    if isinstance(manifest, list) and manifest:
        chosen = manifest[0]
        if tag:
            for m in manifest:
                if isinstance(m, dict) and tag in (m.get("RepoTags") or []):
                    chosen = m
        if not isinstance(chosen, dict) or not isinstance(chosen.get("Layers"), list):
            raise ArchiveError(f"{where}: malformed manifest.json")
        cfg_path = str(chosen.get("Config", ""))
        config = doc(cfg_path)
        digest = cfg_path.removesuffix(".json").rsplit("/", 1)[-1]
        return LoadedImage(
            where,
            config,
            "sha256:" + digest,
            tuple(layer(str(p)) for p in chosen["Layers"]),
            tuple(str(t) for t in chosen.get("RepoTags") or ()),
        )
    index = docs.get("index.json")
    if isinstance(index, dict):
        desc = (
            select_platform(index, platform, where)
            if len(index.get("manifests") or []) != 1
            else index["manifests"][0]
        )
        if tag:
            for m in index.get("manifests") or []:
                ann = m.get("annotations") or {}
                if tag in (
                    ann.get("org.opencontainers.image.ref.name"),
                    ann.get("io.containerd.image.name"),
                ):
                    desc = m
        manifest_digest = str(desc.get("digest", ""))
        body = doc(_blob(manifest_digest))
        while isinstance(body, dict) and (
            body.get("mediaType") in INDEX_TYPES or "manifests" in body
        ):
            desc = select_platform(body, platform, where)
            manifest_digest = str(desc.get("digest", ""))
            body = doc(_blob(manifest_digest))
        if not isinstance(body, dict) or not isinstance(body.get("layers"), list):
            raise ArchiveError(f"{where}: malformed image manifest")
        cfg_digest = str((body.get("config") or {}).get("digest", ""))
        config = doc(_blob(cfg_digest))
        ann = desc.get("annotations") or {}
        name = ann.get("org.opencontainers.image.ref.name") or ""
        return LoadedImage(
            where,
            config,
            cfg_digest,
            tuple(layer(_blob(str(d.get("digest", "")))) for d in body["layers"]),
            (name,) if name else (),
            (),
            manifest_digest,
        )
    raise ArchiveError(f"{where}: neither a docker-save archive nor an OCI image layout")


def load_archive(
    path: str | Path,
    probes: Sequence[Probe],
    *,
    platform: Platform | None = None,
    tag: str | None = None,
    limits: Limits = DEFAULT_LIMITS,
    progress: Progress | None = None,
    cache: LayerStore | None = None,
) -> LoadedImage:
    """A docker-save tar, an OCI layout tar, or an OCI layout directory."""
    p = Path(path)
    where = str(path)
    want = platform or Platform.parse(None)
    if p.is_dir():
        if not (p / "index.json").is_file():
            raise ArchiveError(f"{where}: not an OCI image layout (no index.json)")
        docs, layers, links = read_members(
            _dir_members(p, where), where, probes, limits, progress, cache
        )
        return assemble(where, docs, layers, links, want, tag)
    try:
        fh = open(p, "rb")  # noqa: SIM115 - closed below; open errors need their own message
    except OSError as exc:
        raise ArchiveError(f"cannot open {where}: {exc.strerror}") from exc
    with fh:
        return load_stream(
            fh,
            where,
            probes,
            platform=want,
            tag=tag,
            limits=limits,
            progress=progress,
            cache=cache,
        )


def load_stream(
    fh: BinaryIO,
    where: str,
    probes: Sequence[Probe],
    *,
    platform: Platform | None = None,
    tag: str | None = None,
    limits: Limits = DEFAULT_LIMITS,
    progress: Progress | None = None,
    cache: LayerStore | None = None,
) -> LoadedImage:
    docs, layers, links = read_members(
        _tar_members(fh, where, limits), where, probes, limits, progress, cache
    )
    return assemble(where, docs, layers, links, platform or Platform.parse(None), tag)
