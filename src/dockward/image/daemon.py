"""Images from the local daemon: `GET /images/{name}/get`, parsed as it streams."""

from __future__ import annotations

import io
from collections.abc import Iterator, Sequence
from typing import Any, Protocol

from dockward.errors import ConnectionFailed, InputError
from dockward.image.archive import LayerStore, LoadedImage, Progress, load_stream
from dockward.image.fs import LayerIndex, Probe
from dockward.image.tarstream import DEFAULT_LIMITS, Limits
from dockward.registry.platform import Platform


class _Chunks(io.RawIOBase):
    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._buf = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buf: memoryview) -> int:  # type: ignore[override]
        while not self._buf:
            try:
                self._buf = next(self._chunks)
            except StopIteration:
                return 0
        n = min(len(buf), len(self._buf))
        buf[:n] = self._buf[:n]
        self._buf = self._buf[n:]
        return n


class DaemonStore(LayerStore, Protocol):
    """A LayerStore that also keeps image configs by image id."""

    def get_config(self, image_id: str) -> dict[str, Any] | None: ...

    def put_config(self, image_id: str, config: dict[str, Any]) -> None: ...


def _from_cache(cache: DaemonStore, image_id: str, diff_ids: list[str]) -> tuple[Any, ...] | None:
    """The config and every layer of an image the daemon reports, if all were kept before."""
    config = cache.get_config(image_id)
    rootfs = config.get("rootfs") if config is not None else None
    if config is None or not isinstance(rootfs, dict) or rootfs.get("diff_ids") != diff_ids:
        return None
    layers: list[LayerIndex] = []
    for diff_id in diff_ids:
        hit = cache.get(f"diff:{diff_id}", diff_id)
        if hit is None:
            return None
        layers.append(hit)
    return config, tuple(layers)


def load_daemon(
    client: Any,
    name: str,
    probes: Sequence[Probe],
    *,
    limits: Limits = DEFAULT_LIMITS,
    progress: Progress | None = None,
    cache: DaemonStore | None = None,
) -> LoadedImage:
    """Inspect, then export the image, unless the cache holds its config and every layer.

    The cache is keyed by what the daemon reports (image id, diff ids): the daemon verified
    those digests when the image was pulled or loaded, and the entries came from its export.
    """
    import docker.errors

    try:
        info = client.inspect_image(name)
    except docker.errors.ImageNotFound as exc:
        raise InputError(f"image {name!r} not found in the local daemon") from exc
    except docker.errors.APIError as exc:
        raise ConnectionFailed(f"daemon: {exc.explanation or exc}") from exc
    image_id = str(info.get("Id", ""))
    tags = tuple(str(t) for t in info.get("RepoTags") or ())
    digests = tuple(str(t) for t in info.get("RepoDigests") or ())
    rootfs = info.get("RootFS") or {}
    diff_ids = [str(d) for d in rootfs.get("Layers") or []] if isinstance(rootfs, dict) else []
    if cache is not None and diff_ids:
        found = _from_cache(cache, image_id, diff_ids)
        if found is not None:
            return LoadedImage(name, found[0], image_id, found[1], tags, digests)
    stream = io.BufferedReader(
        _Chunks(iter(client.get_image(image_id, chunk_size=1 << 20))), 1 << 20
    )
    loaded = load_stream(
        stream,
        f"daemon image {name}",
        probes,
        platform=Platform.parse(None),
        limits=limits,
        progress=progress,
    )
    config_rootfs = loaded.config.get("rootfs")
    exported = config_rootfs.get("diff_ids") if isinstance(config_rootfs, dict) else None
    if exported == diff_ids and len(diff_ids) == len(loaded.layers):
        for diff_id, layer in zip(diff_ids, loaded.layers, strict=True):
            layer.digest = diff_id  # the layer's content digest, not the export's v1 folder
        if cache is not None and loaded.config_digest == image_id:
            for diff_id, layer in zip(diff_ids, loaded.layers, strict=True):
                cache.put(f"diff:{diff_id}", layer)
            cache.put_config(image_id, loaded.config)
    return LoadedImage(
        name, loaded.config, image_id, loaded.layers, tags, digests, loaded.manifest_digest
    )
