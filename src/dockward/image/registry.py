"""Images from a registry, read layer by layer as they download (dockward.registry's client)."""

from __future__ import annotations

import io
import json
from collections.abc import Sequence

from dockward.image.archive import LayerStore, LoadedImage, Platform, Progress
from dockward.image.fs import LayerIndex, Probe, index_layer
from dockward.image.tarstream import DEFAULT_LIMITS, ArchiveError, Limits, decompressed
from dockward.registry import (
    CredentialStore,
    ImageRef,
    RegistryClient,
    insecure_hosts,
    is_loopback_host,
    parse_reference,
)


def load_layer(
    client: RegistryClient,
    ref: ImageRef,
    digest: str,
    probes: Sequence[Probe],
    limits: Limits,
    cache: LayerStore | None = None,
) -> LayerIndex:
    """One layer blob, read as it downloads and checked against its digest.

    With a cache, a blob indexed before is not downloaded: a digest names its content
    wherever it is served from, and an entry is only stored once the download matched it.
    """
    key = f"blob:{digest}"
    if cache is not None:
        hit = cache.get(key, digest)
        if hit is not None:
            return hit
    with client.open_blob(ref, digest) as blob:
        stream = decompressed(io.BufferedReader(blob, 1 << 20), f"{ref} {digest[:19]}")
        index = index_layer(stream, -1, digest, probes, limits)
        blob.verify()
    if cache is not None:
        cache.put(key, index)
    return index


def load_registry(
    reference: str,
    probes: Sequence[Probe],
    *,
    platform: Platform | None = None,
    insecure: bool = False,
    docker_config: str | None = None,
    limits: Limits = DEFAULT_LIMITS,
    progress: Progress | None = None,
    cache: LayerStore | None = None,
) -> LoadedImage:
    ref = parse_reference(reference)
    client = RegistryClient(
        CredentialStore.load(docker_config),
        # --insecure-registry trusts the image's registry, not every host it names (token realms)
        insecure=insecure_hosts([ref.api_host]) if insecure else is_loopback_host,
    )
    found = client.manifest(ref, platform=platform or Platform.parse(None))
    layers_doc, config_doc = found.doc.get("layers"), found.doc.get("config")
    if not isinstance(layers_doc, list) or not isinstance(config_doc, dict):
        raise ArchiveError(f"{ref}: unsupported manifest (schema 1?)")
    cfg_digest = str(config_doc.get("digest", ""))
    config = json.loads(client.blob(ref, cfg_digest))
    layers = []
    for i, d in enumerate(layers_doc):
        if progress:
            progress(f"layer {i + 1}/{len(layers_doc)}")
        layers.append(load_layer(client, ref, str(d.get("digest", "")), probes, limits, cache))
    return LoadedImage(
        ref.canonical,
        config,
        cfg_digest,
        tuple(layers),
        (f"{ref.name}:{ref.tag}",) if not ref.digest else (),
        (f"{ref.name}@{found.digest}",),
        found.digest,
    )
