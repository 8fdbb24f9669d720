"""`dockward scan`: vulnerabilities, SBOM and image checks of one image, offline first."""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Iterator
from typing import Any

from dockward.cli._service import add_schedule_options, run_maybe_scheduled
from dockward.cli.common import (
    EXIT_FINDINGS,
    EXIT_OK,
    add_output_options,
    default_format,
    env_default,
    env_flag,
    env_list,
    env_option,
    fail_threshold,
    write_output,
)
from dockward.cli.progress import progress_bar
from dockward.errors import DockwardError, UsageError
from dockward.image.tarstream import Limits
from dockward.model.finding import Report
from dockward.report import FORMATTERS, register_formatter, render
from dockward.sbom.formats import render_cyclonedx, render_spdx

for _name, _fmt in (("cyclonedx", render_cyclonedx), ("spdx", render_spdx)):
    if _name not in FORMATTERS:
        register_formatter(_name, _fmt)


def add_image_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("image", nargs="?", help="image reference (daemon, then registry), or a path")
    g = p.add_argument_group("image source")
    src = g.add_mutually_exclusive_group()
    src.add_argument("--archive", metavar="TAR", help="a `docker save` archive")
    src.add_argument("--oci", metavar="PATH", help="an OCI image layout (directory or tar)")
    g.add_argument(
        "--source",
        choices=("auto", "daemon", "registry"),
        default=env_default("SCAN_SOURCE", "auto"),
        help="where IMAGE comes from (default auto: the local daemon, else the registry) "
        "[DOCKWARD_SCAN_SOURCE]",
    )
    g.add_argument(
        "--platform",
        default=env_default("PLATFORM"),
        help="os/arch[/variant] to pick from a multi-platform image (default: this host's) "
        "[DOCKWARD_PLATFORM]",
    )
    g.add_argument(
        "--insecure-registry",
        action="store_true",
        default=env_flag("INSECURE_REGISTRY"),
        help="talk plain HTTP to the registry (always so for localhost) [DOCKWARD_INSECURE_REGISTRY=1]",
    )
    g.add_argument(
        "--host",
        "-H",
        default=env_default("HOST"),
        help="Docker host for daemon images [DOCKWARD_HOST]",
    )
    env_option(
        g,
        "--max-layer-size",
        env="MAX_LAYER_SIZE",
        type=int,
        default=64 << 30,
        help="refuse layers that unpack to more bytes than this (tar bombs)",
    )
    g.add_argument(
        "--no-binaries",
        action="store_true",
        default=env_flag("NO_BINARIES"),
        help="do not read executables for Go build info (faster) [DOCKWARD_NO_BINARIES=1]",
    )
    g.add_argument(
        "--no-layer-cache",
        action="store_true",
        default=env_flag("NO_LAYER_CACHE"),
        help="read every layer again instead of reusing what an earlier scan of an unchanged "
        "archive or daemon layer found (layers.sqlite beside the DB) [DOCKWARD_NO_LAYER_CACHE=1]",
    )


def image_ref(args: argparse.Namespace) -> tuple[str, str]:
    if args.archive:
        return args.archive, "archive"
    if args.oci:
        return args.oci, "oci"
    if not args.image:
        raise UsageError("name an IMAGE, or give --archive TAR or --oci PATH")
    return args.image, args.source


@contextlib.contextmanager
def progress_status(enabled: bool) -> Iterator[Any]:
    """A rich progress bar while an image is read (layer N/M) and matched; none off a terminal."""
    bar = progress_bar(enabled)
    try:
        yield bar
    finally:
        if bar is not None:
            bar.done()


def register(sub: Any) -> None:
    p = sub.add_parser(
        "scan",
        help="scan an image for known vulnerabilities and image problems (offline)",
        description="Scan an image (local daemon, registry, docker-save archive or OCI layout): "
        "its packages (dpkg, apk, rpm, Python, npm, Go, Java) are matched against the local "
        "OSV database (`dockward db`), and image checks run (root user, setuid files, secrets, "
        "end-of-life OS, ...). Layers are read as streams, never extracted.",
    )
    add_image_options(p)
    p.add_argument("--db", default=env_default("DB"), help="vulnerability database [DOCKWARD_DB]")
    p.add_argument(
        "--ignore-unfixed",
        action="store_true",
        default=env_flag("IGNORE_UNFIXED"),
        help="leave out vulnerabilities with no fixed version [DOCKWARD_IGNORE_UNFIXED=1]",
    )
    p.add_argument(
        "--ignore-file",
        default=env_default("IGNORE_FILE"),
        help="YAML `ignore:` list of {id, reason, expires, package} [DOCKWARD_IGNORE_FILE]",
    )
    p.add_argument(
        "--vex",
        action="append",
        default=None,
        help="OpenVEX document; not_affected/fixed statements waive findings (repeatable) "
        "[DOCKWARD_VEX, comma-separated]",
    )
    p.add_argument(
        "--no-cache",
        action="store_true",
        default=env_flag("NO_SCAN_CACHE"),
        help="do not record the result in the scan cache beside the DB [DOCKWARD_NO_SCAN_CACHE=1]",
    )
    r = p.add_argument_group("registry walk")
    r.add_argument(
        "--registry",
        default=env_default("REGISTRY"),
        metavar="HOST[/PREFIX]",
        help="scan a registry: every repository (under PREFIX) and tag, each manifest once by "
        "digest, credentials from the Docker config; recorded in the result store "
        "[DOCKWARD_REGISTRY]",
    )
    env_option(
        r,
        "--registry-parallel",
        env="REGISTRY_PARALLEL",
        type=int,
        default=8,
        help="concurrent registry requests of the walk (default 8)",
    )
    r.add_argument(
        "--attach",
        action="store_true",
        default=env_flag("ATTACH"),
        help="with --registry: push each image's SBOM and vulnerability report to its repository "
        "as an OCI artifact (referrers API, or the sha256-<hex> tag scheme) [DOCKWARD_ATTACH=1]",
    )
    a = p.add_argument_group("every image of many hosts")
    a.add_argument(
        "--all-images",
        action="store_true",
        default=env_flag("ALL_IMAGES"),
        help="scan every image of each host (-H, comma-separated, --hosts-file, --inventory); an "
        "image id seen on several hosts is scanned once; one stored run per host "
        "[DOCKWARD_ALL_IMAGES=1]",
    )
    from dockward.cli.fleetopts import add_fleet_options, add_record_options

    add_fleet_options(p)
    add_record_options(p)
    add_output_options(p, default_fail_on="high")
    add_schedule_options(p, "scan")
    p.set_defaults(run=run)


def emit_scan(report: Report, args: argparse.Namespace) -> int:
    from dockward.scan.table import render_scan_table

    threshold = fail_threshold(args.fail_on)
    fmt = args.format or default_format(args.output)
    text = render_scan_table(report) if fmt == "table" else render(report, fmt)
    write_output(text, args.output)
    if threshold is not None and report.fails_at(threshold):
        return EXIT_FINDINGS
    return EXIT_OK


def run(args: argparse.Namespace) -> int:
    import time

    from dockward.cli.fleetopts import event_outputs, open_run_store, send_posture_events
    from dockward.scan import (
        ScanCache,
        ScanOptions,
        Waivers,
        load_ignore_file,
        load_openvex,
        scan_image,
    )

    if args.registry:
        return run_registry(args)
    if args.all_images:
        return run_all_images(args)
    if args.attach:
        raise UsageError("--attach goes with --registry")
    ref, source = image_ref(args)
    ignores = load_ignore_file(args.ignore_file) if args.ignore_file else []
    vex = [st for path in (args.vex or env_list("VEX")) for st in load_openvex(path)]
    options = ScanOptions(
        source=source,
        platform=args.platform,
        insecure_registry=args.insecure_registry,
        limits=Limits(max_total_size=args.max_layer_size),
        ignore_unfixed=args.ignore_unfixed,
        waivers=Waivers(tuple(ignores), tuple(vex)),
        binaries=not args.no_binaries,
        docker_host=args.host,
        layer_cache=None if args.no_layer_cache else "",
    )

    events = event_outputs(args)
    store = open_run_store(args)  # a bad --store is a usage error before any work

    def once() -> Report:
        started = time.time()
        with progress_status(sys.stderr.isatty()) as say:
            result = scan_image(
                ref,
                args.db,
                options,
                progress=say,
                cache=None
                if args.no_cache
                else ScanCache(None if not args.db else _cache_beside(args.db)),
            )
        if store is not None:
            # A run of its own per image, under the image's name: an image's history and drift
            # are its own, apart from the hosts' `--all-images` runs.
            with store.batch("scan") as batch:
                ruleset = f"db {result.db_updated}"  # what a scan matched against
                batch.record(result.image, result.report, started, time.time(), ruleset)
            send_posture_events(store, "scan", batch.run_ids, events)
        return result.report

    try:
        return run_maybe_scheduled(args, "scan", once, emit_scan)
    finally:
        if store is not None:
            store.close()


def _cache_beside(db: str) -> str:
    from pathlib import Path

    return str(Path(db).with_name("scans.sqlite"))


def run_registry(args: argparse.Namespace) -> int:
    """`scan --registry HOST[/PREFIX]`: walk, scan each manifest once, record the run."""
    import time

    from dockward.cli.fleetopts import event_outputs, open_run_store, send_posture_events
    from dockward.registry import RegistryClient, insecure_hosts, is_loopback_host
    from dockward.scan import ScanOptions
    from dockward.scan.registry_walk import parse_registry_target, scan_walk, walk_registry

    if args.image or args.archive or args.oci:
        raise UsageError("--registry walks a registry: name no IMAGE, --archive or --oci with it")
    host, prefix = parse_registry_target(args.registry)
    events = event_outputs(args)
    store = open_run_store(args)
    try:
        insecure = insecure_hosts([host]) if args.insecure_registry else is_loopback_host
        client = RegistryClient(insecure=insecure)
        started = time.time()
        with progress_status(sys.stderr.isatty()) as say:
            walk = walk_registry(client, host, prefix, args.registry_parallel)
            options = ScanOptions(
                source="registry",
                platform=args.platform,
                insecure_registry=args.insecure_registry,
                limits=Limits(max_total_size=args.max_layer_size),
                ignore_unfixed=args.ignore_unfixed,
                binaries=not args.no_binaries,
                layer_cache=None if args.no_layer_cache else "",
            )
            report, scans = scan_walk(
                walk, args.db, options, say, attach_with=client if args.attach else None
            )
        # the rule set of a scan is the vulnerability DB it matched against
        ruleset = f"db {scans[0].db_updated}" if scans else "db"
        if store is not None:
            with store.batch("scan") as batch:
                batch.record(report.hosts[0], report, started, time.time(), ruleset)
            send_posture_events(store, "scan", batch.run_ids, events)
    finally:
        if store is not None:
            store.close()
    return emit_scan(report, args)


def run_all_images(args: argparse.Namespace) -> int:
    """`scan --all-images`: every image of every host, through the fleet runner."""
    import threading
    import time
    from dataclasses import replace

    from dockward import __version__
    from dockward.cli.fleetopts import (
        event_outputs,
        fleet_options,
        open_run_store,
        send_posture_events,
    )
    from dockward.engine import connect, resolve_endpoint
    from dockward.errors import ConnectionFailed
    from dockward.fleet import FleetHost, error_result, gather, run_fleet
    from dockward.model.finding import Result
    from dockward.scan import ScanOptions, scan_image
    from dockward.scan.core import ScanResult
    from dockward.scan.extra import FleetImagesExtra, HostImagesExtra

    if args.image or args.archive or args.oci or args.registry:
        raise UsageError("--all-images scans the hosts' images: name no IMAGE, archive or registry")
    urls = [u.strip() for u in (args.host or "").split(",") if u.strip()]
    hosts = gather(
        urls,
        [],
        args.hosts_file or env_list("HOSTS_FILE"),
        args.inventory or env_list("INVENTORY"),
        args.limit or env_list("LIMIT"),
    )
    opts = fleet_options(args)
    endpoints = {h: resolve_endpoint(h.url, h.context) for h in hosts}
    names = {h: h.name or endpoints[h].url for h in hosts}
    events = event_outputs(args)
    store = open_run_store(args)
    seen: dict[str, ScanResult | None] = {}
    pending: dict[str, threading.Event] = {}
    lock = threading.Lock()

    def scan_host(host: FleetHost) -> Report:
        url = endpoints[host].url
        client = connect(endpoints[host], timeout=60)
        try:
            images = client.images()
        finally:
            client.close()
        results: list[Result] = []
        warnings: list[str] = []
        for summary in images:
            iid = str(summary.get("Id") or "")
            tags = [t for t in summary.get("RepoTags") or [] if t != "<none>:<none>"]
            shown = tags[0] if tags else iid[:19]
            with lock:
                mine = iid not in pending
                if mine:
                    pending[iid] = threading.Event()
                done = pending[iid]
            if not mine:
                done.wait(opts.deadline)  # another host's worker is scanning this image id
            else:
                options = ScanOptions(
                    source="daemon",
                    limits=Limits(max_total_size=args.max_layer_size),
                    ignore_unfixed=args.ignore_unfixed,
                    binaries=not args.no_binaries,
                    docker_host=url,
                    layer_cache=None if args.no_layer_cache else "",
                )
                found: ScanResult | None = None
                try:
                    found = scan_image(iid, args.db, options)
                except DockwardError as exc:
                    warnings.append(f"{shown}: not scanned: {exc}")
                finally:
                    with lock:
                        seen[iid] = found
                    done.set()
            scanned = seen.get(iid)
            if scanned is None:
                continue
            for r in scanned.report.results:
                target = (
                    f"image {shown}: {r.target}"
                    if r.rule.kind == "vulnerability"
                    else f"image {shown}"
                )
                results.append(replace(r, target=target, host=names[host]))
        return Report(
            command="scan",
            results=tuple(results),
            hosts=(names[host],),
            warnings=tuple(warnings),
            tool_version=__version__,
            extra=HostImagesExtra(len(images)),
        )

    reports: dict[FleetHost, Report] = {}
    failed: dict[FleetHost, tuple[str, int]] = {}
    try:
        from contextlib import nullcontext

        with store.batch("scan") if store is not None else nullcontext() as batch:
            for outcome in run_fleet(hosts, scan_host, opts):
                if outcome.value is not None:
                    reports[outcome.host] = outcome.value
                else:
                    failed[outcome.host] = (outcome.error, outcome.attempts)
                if batch is not None:
                    batch.record(
                        names[outcome.host],
                        outcome.value,
                        outcome.started,
                        outcome.finished,
                        "scan",
                        error=outcome.error,
                    )
        if store is not None and batch is not None:
            send_posture_events(store, "scan", batch.run_ids, events)
    finally:
        if store is not None:
            store.close()
    if len(hosts) == 1 and failed:
        raise ConnectionFailed(failed[hosts[0]][0])
    results: list[Result] = []
    warnings: list[str] = []
    for h in hosts:
        if h in reports:
            results += reports[h].results
            warnings += [f"{names[h]}: {w}" for w in reports[h].warnings]
        else:
            results.append(error_result(names[h], *failed[h]))
            warnings.append(f"{names[h]}: not scanned: {failed[h][0]}")
    report = Report(
        command="scan",
        results=tuple(results),
        started=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        hosts=tuple(names[h] for h in hosts),
        warnings=tuple(warnings),
        tool_version=__version__,
        extra=FleetImagesExtra(sum(1 for v in seen.values() if v is not None)),
    )
    return emit_scan(report, args)
