"""Images from the local daemon: `GET /images/{name}/get`, parsed as it streams."""

from __future__ import annotations

import io
from collections.abc import Iterator, Sequence
from typing import Any

from dockward.errors import ConnectionFailed, InputError
from dockward.image.archive import LoadedImage, Platform, Progress, load_stream
from dockward.image.fs import Probe
from dockward.image.tarstream import DEFAULT_LIMITS, Limits


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


def load_daemon(
    client: Any,
    name: str,
    probes: Sequence[Probe],
    *,
    limits: Limits = DEFAULT_LIMITS,
    progress: Progress | None = None,
) -> LoadedImage:
    import docker.errors

    try:
        info = client.inspect_image(name)
    except docker.errors.ImageNotFound:
        raise InputError(f"image {name!r} not found in the local daemon") from None
    except docker.errors.APIError as exc:
        raise ConnectionFailed(f"daemon: {exc.explanation or exc}") from exc
    image_id = str(info.get("Id", ""))
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
    return LoadedImage(
        name,
        loaded.config,
        image_id,
        loaded.layers,
        tuple(str(t) for t in info.get("RepoTags") or ()),
        tuple(str(t) for t in info.get("RepoDigests") or ()),
        loaded.manifest_digest,
    )
