"""The registry as a fleet member: walk its catalog and tags, scan each manifest once by digest."""

from __future__ import annotations

import re
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from dockward.errors import UsageError
from dockward.model.finding import Report, Result
from dockward.scan.extra import RegistryScanExtra

_HOST = re.compile(r"^[A-Za-z0-9.-]+(:\d{1,5})?$|^\[[0-9A-Fa-f:]+\](:\d{1,5})?$")
_REFERRERS_TAG = re.compile(r"^sha(256|512)-[0-9a-f]{64,128}$")
_PREFIX = re.compile(r"^[a-z0-9]+(?:[._-][a-z0-9]+)*(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)*$")


def parse_registry_target(text: str) -> tuple[str, str]:
    """HOST[/PREFIX] -> (host, prefix)."""
    host, _, prefix = text.strip().strip("/").partition("/")
    if not _HOST.match(host):
        raise UsageError(f"--registry {text!r}: expected HOST[:PORT][/PREFIX]")
    if prefix and not _PREFIX.match(prefix):
        raise UsageError(f"--registry {text!r}: {prefix!r} is not a repository prefix")
    return host, prefix


@dataclass(frozen=True, slots=True)
class Walk:
    """What the walk found: each manifest digest with every repo:tag that names it."""

    host: str
    prefix: str
    repositories: tuple[str, ...]
    manifests: dict[str, tuple[str, ...]]  # digest -> ("repo:tag", ...)
    tags: int
    errors: tuple[str, ...]


def walk_registry(client: Any, host: str, prefix: str, parallel: int = 8) -> Walk:
    """List the repositories under PREFIX and resolve every tag to its digest (HEAD only)."""
    from dockward.registry import RegistryError, parse_reference

    root = parse_reference(f"{host}/{prefix or 'library/catalog'}")
    repos = sorted(
        r for r in client.catalog(root) if not prefix or r == prefix or r.startswith(prefix + "/")
    )
    errors: list[str] = []

    def tags_of(repo: str) -> list[tuple[str, str]]:
        ref = parse_reference(f"{host}/{repo}")
        try:
            # sha256-<hex> tags hold referrers indexes (OCI tag scheme), not images
            return [(repo, t) for t in client.tags(ref) if not _REFERRERS_TAG.match(t)]
        except RegistryError as exc:
            errors.append(str(exc))
            return []

    def digest_of(item: tuple[str, str]) -> tuple[str, str, str]:
        repo, tag = item
        try:
            return repo, tag, str(client.head(parse_reference(f"{host}/{repo}:{tag}")).digest)
        except RegistryError as exc:
            errors.append(str(exc))
            return repo, tag, ""

    with ThreadPoolExecutor(max(1, parallel)) as pool:
        pairs = [p for found in pool.map(tags_of, repos) for p in found]
        resolved = list(pool.map(digest_of, pairs))
    manifests: dict[str, list[str]] = {}
    for repo, tag, digest in resolved:
        if digest:
            manifests.setdefault(digest, []).append(f"{repo}:{tag}")
    return Walk(
        host,
        prefix,
        tuple(repos),
        {d: tuple(sorted(names)) for d, names in manifests.items()},
        len(pairs),
        tuple(errors),
    )


def scan_walk(
    walk: Walk,
    db: str | Path | None,
    options: Any,
    progress: Callable[[str], None] | None = None,
    attach_with: Any = None,
) -> tuple[Report, list[Any]]:
    """Scan each manifest once; every result names the image ("HOST/REPO:TAG (+N)"). With a
    registry client in ATTACH_WITH, the SBOM and vulnerability report are pushed to every
    repository that names the manifest, as an OCI artifact referring to it."""
    from dockward import __version__
    from dockward.errors import DockwardError
    from dockward.scan import scan_image

    results: list[Result] = []
    warnings = list(walk.errors)
    scans = []
    for n, (digest, names) in enumerate(sorted(walk.manifests.items()), 1):
        first_repo = names[0].rsplit(":", 1)[0]
        ref = f"{walk.host}/{first_repo}@{digest}"
        shown = f"{walk.host}/{names[0]}" + (f" (+{len(names) - 1} tags)" if len(names) > 1 else "")
        if progress:
            progress(f"scanning {n}/{len(walk.manifests)}: {shown}")
        try:
            scanned = scan_image(ref, db, options)
        except DockwardError as exc:
            warnings.append(f"{shown}: not scanned: {exc}")
            continue
        scans.append(scanned)
        if attach_with is not None:
            warnings += _attach(attach_with, walk.host, digest, names, scanned)
        tags = ("tags", ", ".join(f"{walk.host}/{x}" for x in names))
        for r in scanned.report.results:
            target = (
                f"image {shown}: {r.target}" if r.rule.kind == "vulnerability" else f"image {shown}"
            )
            results.append(
                replace(r, target=target, evidence=(*r.evidence, ("digest", digest), tags))
            )
        warnings += [f"{shown}: {w}" for w in scanned.report.warnings]
    name = f"{walk.host}/{walk.prefix}" if walk.prefix else walk.host
    report = Report(
        command="scan",
        results=tuple(results),
        hosts=(name,),
        warnings=tuple(warnings),
        tool_version=__version__,
        extra=RegistryScanExtra(
            host=walk.host,
            prefix=walk.prefix,
            repositories=len(walk.repositories),
            tags=walk.tags,
            manifests=len(walk.manifests),
            scanned=len(scans),
        ),
    )
    return report, scans


def _attach(client: Any, host: str, digest: str, names: tuple[str, ...], scanned: Any) -> list[str]:
    from dockward.errors import DockwardError
    from dockward.registry import parse_reference
    from dockward.sbom.formats import render_cyclonedx
    from dockward.scan.attach import attach_scan

    sbom = render_cyclonedx(scanned.report)
    problems = []
    for repo in sorted({n.rsplit(":", 1)[0] for n in names}):
        ref = parse_reference(f"{host}/{repo}")
        try:
            subject = client.manifest(ref, digest)
            attach_scan(client, ref, subject, scanned, sbom)
        except DockwardError as exc:
            problems.append(f"{host}/{repo}@{digest}: not attached: {exc}")
    return problems


__all__ = ["Walk", "parse_registry_target", "scan_walk", "walk_registry"]
