"""image -> sbom -> vulnerabilities + image rules -> Report, and the library entry points."""

from __future__ import annotations

import contextlib
import datetime as dt
import os
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from dockward import __version__
from dockward.errors import ConnectionFailed, DockwardError, InputError
from dockward.image.archive import LoadedImage
from dockward.image.fs import ImageFS
from dockward.image.sources import ArchiveSource, DaemonSource, ImageSource, RegistrySource
from dockward.image.spec import spec_from_config
from dockward.image.tarstream import Limits
from dockward.model.finding import Report, Result, Severity, Status
from dockward.model.image import ImageSpec
from dockward.registry.platform import Platform
from dockward.rules import Context, run_check
from dockward.rules import image as image_rules
from dockward.sbom import Sbom, build_sbom, default_probes
from dockward.scan.cache import ScanCache
from dockward.scan.content import ImageContent
from dockward.scan.extra import ScanExtra
from dockward.scan.layercache import LayerCache, signature
from dockward.scan.rules import VULNERABILITY
from dockward.scan.rules import rules as content_rules
from dockward.scan.waivers import Waivers
from dockward.vulndb.match import Match, match_packages
from dockward.vulndb.osv import severity_of
from dockward.vulndb.store import default_db_path, open_db

Progress = Callable[[str], None]
STALE_DAYS = 7
SOURCES = ("auto", "daemon", "archive", "oci", "registry")


@dataclass(frozen=True, slots=True)
class ScanOptions:
    source: str = "auto"
    platform: str | None = None
    insecure_registry: bool = False
    docker_config: str | None = None
    limits: Limits = field(default_factory=Limits)
    ignore_unfixed: bool = False
    waivers: Waivers = field(default_factory=Waivers)
    binaries: bool = True  # look for Go build info in executables
    docker_host: str | None = None
    # Indexed layers kept between scans (scan/layercache.py): "" beside the DB, a path, or None
    # for no layer cache.
    layer_cache: str | None = ""


@dataclass(frozen=True, slots=True)
class Inventory:
    """An image read and catalogued: its names, its merged FS and its packages."""

    loaded: LoadedImage
    spec: ImageSpec
    fs: ImageFS
    sbom: Sbom
    # layers answered by the layer cache, and layers read (None: no cache in use)
    layer_cache: tuple[int, int] | None = None

    @property
    def name(self) -> str:
        return self.spec.display_name if self.spec.repo_tags else self.loaded.source

    def image_info(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "source": self.loaded.source,
            "id": self.loaded.config_digest,
            "manifest_digest": self.loaded.manifest_digest,
            "repo_tags": list(self.loaded.repo_tags),
            "repo_digests": list(self.loaded.repo_digests),
            "os": self.sbom.distro.to_dict() if self.sbom.distro else None,
            "platform": f"{self.spec.os}/{self.spec.architecture}",
            "layers": [layer.digest for layer in self.loaded.layers],
            "files": len(self.fs),
            "layer_cache": (
                {"hits": self.layer_cache[0], "misses": self.layer_cache[1]}
                if self.layer_cache is not None
                else None
            ),
        }


def layer_cache_for(options: ScanOptions, db_path: str | Path | None) -> LayerCache | None:
    if options.layer_cache is None:
        return None
    path = options.layer_cache or Path(db_path or default_db_path()).with_name("layers.sqlite")
    probes = default_probes(include_binaries=options.binaries)
    return LayerCache(path, signature(probes, options.limits))


def load_image(
    ref: str,
    options: ScanOptions,
    progress: Progress | None = None,
    layers: LayerCache | None = None,
) -> LoadedImage:
    probes = default_probes(include_binaries=options.binaries)
    platform = Platform.parse(options.platform)
    source = options.source
    if source not in SOURCES:
        raise InputError(f"unknown image source {source!r} (expected one of {', '.join(SOURCES)})")

    def read(src: ImageSource) -> LoadedImage:
        return src.load(ref, probes, limits=options.limits, progress=progress, cache=layers)

    if source in ("archive", "oci") or (source == "auto" and os.path.exists(ref)):
        return read(ArchiveSource(platform))
    if source in ("daemon", "auto"):
        from dockward.engine import connect, resolve_endpoint

        try:
            client = connect(resolve_endpoint(options.docker_host), timeout=300)
        except ConnectionFailed:
            if source == "daemon":
                raise
            client = None
        if client is not None:
            try:
                return read(DaemonSource(client))
            except InputError:
                if source == "daemon":
                    raise
            finally:
                client.close()
    try:
        return read(RegistrySource(platform, options.insecure_registry, options.docker_config))
    except (ConnectionFailed, InputError) as exc:
        if source != "auto":
            raise
        raise type(exc)(f"image {ref!r} is not in the local daemon, and {exc}") from exc


def inventory(
    ref: str,
    options: ScanOptions | None = None,
    progress: Progress | None = None,
    db_path: str | Path | None = None,
) -> Inventory:
    """Read an image (daemon, archive, OCI layout or registry) and catalogue its packages.

    `db_path` only places the layer cache beside that DB (see ScanOptions.layer_cache).
    """
    opts = options or ScanOptions()
    layers = layer_cache_for(opts, db_path)
    try:
        loaded = load_image(ref, opts, progress, layers)
    finally:
        if layers is not None:
            layers.close()
    fs = ImageFS(loaded.layers)
    spec = spec_from_config(
        loaded.config, loaded.config_digest, loaded.repo_tags, loaded.repo_digests
    )
    if progress:
        progress("cataloguing packages")
    stats = (layers.hits, layers.misses) if layers is not None else None
    return Inventory(loaded, spec, fs, build_sbom(fs), stats)


@dataclass(frozen=True, slots=True)
class ScanResult:
    """What `scan_image` returns: the report plus the facts the proxy and updater ask about."""

    image: str
    image_id: str
    manifest_digest: str
    repo_digests: tuple[str, ...]
    sbom: Sbom
    matches: tuple[Match, ...]
    waived: dict[str, str]  # vulnerability id -> why
    report: Report
    db_updated: str

    def counts(self) -> dict[str, int]:
        """Unwaived vulnerabilities by severity (critical..info), unknown counted as medium."""
        out = {s.label: 0 for s in sorted(Severity, reverse=True)}
        for m in self.matches:
            if m.vuln_id not in self.waived:
                out[severity_of(m.severity).label] += 1
        return out

    @property
    def worst(self) -> Severity | None:
        sev = [severity_of(m.severity) for m in self.matches if m.vuln_id not in self.waived]
        return max(sev) if sev else None

    @property
    def worst_finding(self) -> Severity | None:
        """Worst failing result, vulnerabilities and image checks together."""
        return self.report.worst_failing()

    def fails_at(self, threshold: Severity) -> bool:
        return self.report.fails_at(threshold)


# Installed by the OS package manager: one copy, no per-file location worth naming.
OS_PACKAGE_TYPES = frozenset({"deb", "apk", "rpm"})


def _vuln_result(m: Match, waived: str) -> Result:
    sev = severity_of(m.severity)
    fix = (
        f"Upgrade {m.package.name} to {m.fixed} or later."
        if m.fixed
        else "No fixed version yet: mitigate, or waive it with a reason and an expiry."
    )
    rule = replace(
        VULNERABILITY,
        id=m.vuln_id,
        title=m.summary or m.vuln_id,
        severity=sev,
        remediation=fix,
        doc=m.summary,
        references=m.references,
    )
    evidence = {
        "package": m.package.name,
        "installed": m.package.version,
        "fixed": m.fixed or "unfixed",
        "purl": m.package.purl,
        "ecosystem": m.package.ecosystem,
        "layer": m.package.layer,
        "locations": ", ".join(m.package.locations),
        "aliases": ", ".join(m.aliases),
        "severity_source": f"CVSS {m.score} {m.vector}".strip()
        if m.score is not None
        else (m.severity or "unknown"),
    }
    if m.package.source_name and m.package.source_name != m.package.name:
        evidence["source_package"] = f"{m.package.source_name} {m.package.source_version}"
    where = ""
    if m.package.type not in OS_PACKAGE_TYPES and m.package.locations:
        where = f" in {', '.join(m.package.locations)}"
    msg = f"{m.package.name} {m.package.version}{where} is affected" + (
        f"; fixed in {m.fixed}" if m.fixed else "; no fix available"
    )
    return Result(
        rule,
        Status.FAIL,
        f"{m.package.name}@{m.package.version}",
        msg,
        tuple(evidence.items()),
        waived=waived,
    )


def rule_results(inv: Inventory, today: dt.date | None = None) -> list[Result]:
    content = ImageContent(
        inv.spec, inv.fs, inv.sbom.distro, today or dt.datetime.now(dt.UTC).date()
    )
    target = inv.name
    out: list[Result] = []
    for entry in image_rules.rules:
        out.extend(run_check(entry, inv.spec, Context(), target=target))
    for entry in content_rules:
        out.extend(run_check(entry, content, target=target))
    return out


def scan_inventory(
    inv: Inventory,
    db_path: str | Path | None = None,
    options: ScanOptions | None = None,
    *,
    started: str = "",
) -> ScanResult:
    opts = options or ScanOptions()
    warnings_db: list[str] = []
    conn = open_db(db_path or default_db_path())
    try:
        matches = match_packages(conn, inv.sbom.packages)
        row = conn.execute("SELECT value FROM meta WHERE key='updated'").fetchone()
        db_updated = str(row[0]) if row else ""
    finally:
        conn.close()
    with contextlib.suppress(ValueError):
        age = dt.datetime.now(dt.UTC) - dt.datetime.fromisoformat(db_updated)
        if age > dt.timedelta(days=STALE_DAYS):
            warnings_db = [f"vulnerability database is {age.days} days old (dockward db update)"]
    dropped = 0
    if opts.ignore_unfixed:
        dropped = sum(1 for m in matches if m.unfixed)
        matches = [m for m in matches if not m.unfixed]
    today = dt.datetime.now(dt.UTC).date()
    names = (
        inv.loaded.config_digest,
        inv.loaded.manifest_digest,
        *inv.loaded.repo_tags,
        *inv.loaded.repo_digests,
    )
    warnings: list[str] = list(warnings_db)
    waived: dict[str, str] = {}
    results: list[Result] = []
    seen_ids: set[str] = set()
    for m in sorted(
        matches,
        key=lambda m: (m.package.name, m.package.version, -severity_of(m.severity), m.vuln_id),
    ):
        why, warn = opts.waivers.reason_for(m, names, today)
        warnings.extend(w for w in warn if w not in warnings)
        if why:
            waived[m.vuln_id] = why
        seen_ids.update((m.vuln_id, *m.aliases))
        results.append(_vuln_result(m, why))
    warnings.extend(opts.waivers.unused(seen_ids))
    results.extend(rule_results(inv, today))
    warnings.extend(inv.sbom.notes)
    report = Report(
        command="scan",
        results=tuple(results),
        started=started,
        finished=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        hosts=(),
        warnings=tuple(warnings),
        extra=ScanExtra(
            image=inv.image_info(),
            sbom=inv.sbom.to_dict(),
            vulnerabilities=tuple(
                m.to_dict() | {"waived": waived.get(m.vuln_id, "")} for m in matches
            ),
            db={"path": str(db_path or default_db_path()), "updated": db_updated},
            ignored_unfixed=dropped,
        ),
        tool_version=__version__,
    )
    return ScanResult(
        inv.name,
        inv.loaded.config_digest,
        inv.loaded.manifest_digest,
        inv.loaded.repo_digests,
        inv.sbom,
        tuple(matches),
        waived,
        report,
        db_updated,
    )


def scan_image(
    ref: str,
    db_path: str | Path | None = None,
    options: ScanOptions | None = None,
    *,
    progress: Progress | None = None,
    cache: ScanCache | None = None,
) -> ScanResult:
    """Scan one image by reference, archive path or OCI layout; record it in `cache` if given."""
    started = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    open_db(db_path or default_db_path()).close()  # fail before reading a large image
    inv = inventory(ref, options, progress, db_path)
    if progress:
        progress("matching vulnerabilities")
    result = scan_inventory(inv, db_path, options, started=started)
    if cache is not None:
        cache.record(result)
    return result


__all__ = ["DockwardError", "ScanCache", "ScanResult", "scan_image"]
