"""Is each managed container on the current image of its tag? One HEAD per distinct image."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Literal

import docker.errors

from dockward.errors import DockwardError
from dockward.registry import ImageRef, Platform, RegistryClient, RemoteManifest, parse_reference
from dockward.update.select import Managed

CheckStatus = Literal["current", "outdated", "error", "skipped"]
ARCH_ALIASES = {"x86_64": "amd64", "aarch64": "arm64"}


@dataclass(frozen=True, slots=True)
class CheckResult:
    container: Managed
    status: CheckStatus
    reason: str
    ref: ImageRef | None = None
    local_image_id: str = ""
    local_digest: str = ""
    remote_digest: str = ""
    remote_image_id: str = ""  # the config digest for our platform, when it had to be fetched


def repo_digests(image: Mapping[str, Any], ref: ImageRef) -> set[str]:
    out: set[str] = set()
    for item in image.get("RepoDigests") or ():
        name, _, digest = str(item).partition("@")
        try:
            if parse_reference(name).name == ref.name:
                out.add(digest)
        except DockwardError:
            continue
    return out


def platform_of(image: Mapping[str, Any]) -> Platform:
    arch = str(image.get("Architecture") or "amd64")
    return Platform(
        str(image.get("Os") or "linux"),
        ARCH_ALIASES.get(arch, arch),
        str(image.get("Variant") or ""),
    )


def check_all(
    client: Any, registry: RegistryClient, managed: Sequence[Managed], workers: int = 16
) -> list[CheckResult]:
    refs: dict[str, ImageRef] = {}
    early: dict[str, CheckResult] = {}
    for m in managed:
        text = m.image
        if text.startswith("sha256:") or not text:
            early[m.id] = CheckResult(m, "skipped", "created from an image ID, not a tag")
            continue
        try:
            ref = parse_reference(text)
        except DockwardError as exc:
            early[m.id] = CheckResult(m, "error", str(exc))
            continue
        if ref.pinned:
            early[m.id] = CheckResult(m, "skipped", f"pinned to {ref.digest}", ref)
            continue
        refs[m.id] = ref

    image_ids = {m.image_id for m in managed if m.id in refs}
    images: dict[str, Mapping[str, Any]] = {}
    for image_id in image_ids:
        try:
            images[image_id] = client.inspect_image(image_id)
        except docker.errors.NotFound:
            images[image_id] = {}

    distinct = sorted({str(r) for r in refs.values()})
    heads: dict[str, RemoteManifest | DockwardError] = {}
    with ThreadPoolExecutor(max_workers=max(1, min(workers, len(distinct) or 1))) as pool:
        for text, result in zip(
            distinct, pool.map(lambda t: _head(registry, t), distinct), strict=True
        ):
            heads[text] = result

    results: dict[str, CheckResult] = dict(early)
    need_config: dict[tuple[str, str, Platform], list[Managed]] = {}
    for m in managed:
        if m.id not in refs:
            continue
        ref = refs[m.id]
        image_id = m.image_id
        image = images.get(image_id, {})
        head = heads[str(ref)]
        local = repo_digests(image, ref)
        local_digest = sorted(local)[0] if local else ""
        if isinstance(head, DockwardError):
            results[m.id] = CheckResult(m, "error", str(head), ref, image_id, local_digest)
            continue
        if head.digest in local:
            results[m.id] = CheckResult(
                m, "current", "digest matches the registry", ref, image_id, head.digest, head.digest
            )
            continue
        key = (str(ref), head.digest, platform_of(image))
        need_config.setdefault(key, []).append(m)

    # The tag's digest differs from ours: a new image, or only another platform changed.
    keys = list(need_config)
    with ThreadPoolExecutor(max_workers=max(1, min(workers, len(keys) or 1))) as pool:
        configs = list(pool.map(lambda k: _config(registry, refs[need_config[k][0].id], k), keys))
    for key, config in zip(keys, configs, strict=True):
        for m in need_config[key]:
            ref = refs[m.id]
            image_id = m.image_id
            local = repo_digests(images.get(image_id, {}), ref)
            local_digest = sorted(local)[0] if local else ""
            if isinstance(config, DockwardError):
                results[m.id] = CheckResult(
                    m, "error", str(config), ref, image_id, local_digest, key[1]
                )
            elif config == image_id:
                results[m.id] = CheckResult(
                    m,
                    "current",
                    "same image for this platform",
                    ref,
                    image_id,
                    local_digest,
                    key[1],
                    config,
                )
            else:
                results[m.id] = CheckResult(
                    m,
                    "outdated",
                    "registry has a newer image",
                    ref,
                    image_id,
                    local_digest,
                    key[1],
                    config,
                )
    return [results[m.id] for m in managed]


def _head(registry: RegistryClient, text: str) -> RemoteManifest | DockwardError:
    try:
        return registry.head(parse_reference(text))
    except DockwardError as exc:
        return exc


def _config(
    registry: RegistryClient, ref: ImageRef, key: tuple[str, str, Platform]
) -> str | DockwardError:
    try:
        return registry.config_digest(ref, key[1], key[2])
    except DockwardError as exc:
        return exc
