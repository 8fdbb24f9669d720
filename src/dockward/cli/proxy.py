"""`dockward proxy`: a Docker socket proxy that reads what it lets through."""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from typing import Any

from dockward.cli._service import add_metrics_option
from dockward.cli.common import EXIT_OK, env_default, env_flag, env_list
from dockward.errors import ConfigError, UsageError
from dockward.proxy import ROUTES
from dockward.proxy.runner import (
    DRAIN_SECONDS,
    ProxyConfig,
    build_authorizer,
    default_workers,
    run_proxy,
)
from dockward.proxy.server import STREAM_GRACE


def register(sub: Any) -> None:
    p = sub.add_parser(
        "proxy",
        help="Docker socket proxy with body inspection and a policy",
        description="Listen on a unix socket and/or TCP and forward to the Docker socket, "
        "refusing what the policy does not allow. Without --policy, docker-socket-proxy's "
        "environment variables (CONTAINERS, IMAGES, POST, ALLOW_START, ...) apply with the same "
        "defaults; ALLOW_START/STOP/RESTARTS work without POST=1; reading container files (archive, "
        "export) needs ARCHIVE=1; the WebSocket attach with stdin needs POST=1. SIGHUP reloads "
        "the policy.",
    )
    p.add_argument(
        "--listen",
        action="append",
        default=None,
        help="unix:///path or tcp://host:port, repeatable (default tcp://127.0.0.1:2375) "
        "[DOCKWARD_PROXY_LISTEN, comma-separated]",
    )
    p.add_argument(
        "--upstream",
        default=env_default(
            "PROXY_UPSTREAM", os.environ.get("SOCKET_PATH", "/var/run/docker.sock")
        ),
        help="the Docker socket to forward to [DOCKWARD_PROXY_UPSTREAM, or SOCKET_PATH]",
    )
    p.add_argument(
        "--policy",
        default=env_default("PROXY_POLICY", ""),
        help="policy file (YAML); without it the docker-socket-proxy variables apply "
        "[DOCKWARD_PROXY_POLICY]",
    )
    p.add_argument(
        "--socket-mode",
        default=env_default("PROXY_SOCKET_MODE", "0660"),
        help="mode of the listening unix socket (default 0660) [DOCKWARD_PROXY_SOCKET_MODE]",
    )
    p.add_argument(
        "--socket-owner",
        default=env_default("PROXY_SOCKET_OWNER", ""),
        help="user[:group] owning the listening unix socket [DOCKWARD_PROXY_SOCKET_OWNER]",
    )
    p.add_argument(
        "--log",
        default=env_default("PROXY_LOG", "-"),
        help="decision log: '-' (stderr), a file, syslog, syslog:/dev/log or syslog:host:port; "
        "'' disables [DOCKWARD_PROXY_LOG]",
    )
    p.add_argument(
        "--log-level",
        default=env_default("PROXY_LOG_LEVEL", os.environ.get("LOG_LEVEL", "info")),
        help="info logs every decision, warning and above only refusals "
        "[DOCKWARD_PROXY_LOG_LEVEL, or LOG_LEVEL]",
    )
    p.add_argument(
        "--workers",
        default=env_default("PROXY_WORKERS", "auto"),
        help="processes serving the sockets; auto: one per CPU, at most 8 [DOCKWARD_PROXY_WORKERS]",
    )
    p.add_argument(
        "--drain-timeout",
        default=env_default("PROXY_DRAIN_TIMEOUT", str(DRAIN_SECONDS)),
        help="on SIGTERM: seconds the requests in flight may take to finish once the sockets "
        "stop accepting (streams that end only when their client leaves, such as events, logs "
        f"-f, attach and exec, get {STREAM_GRACE:g} s); default {DRAIN_SECONDS:g} "
        "[DOCKWARD_PROXY_DRAIN_TIMEOUT]",
    )
    add_metrics_option(p)
    p.add_argument(
        "--learn",
        metavar="FILE",
        default=env_default("PROXY_LEARN", ""),
        help="learning mode: forward everything, record per client the routes used and the "
        "shape of create bodies, and write the policy that allows exactly that to FILE (and the "
        "session to FILE.session.jsonl); one worker [DOCKWARD_PROXY_LEARN]",
    )
    p.add_argument(
        "--learn-strict",
        action="store_true",
        default=env_flag("PROXY_LEARN_STRICT"),
        help="with --learn: forward (and learn) only what the current policy or environment "
        "allows [DOCKWARD_PROXY_LEARN_STRICT=1]",
    )
    p.add_argument(
        "--registry-scans",
        action="store_true",
        default=env_flag("REGISTRY_SCANS"),
        help="for images this host never scanned, the image gate uses the scan `dockward scan "
        "--registry --attach` attached to the image in its registry (as `policy check "
        "--registry-scans`; trust it only where pushes are trusted) [DOCKWARD_REGISTRY_SCANS=1]",
    )
    p.add_argument("--check", action="store_true", help="validate the configuration and exit")
    p.add_argument("--routes", action="store_true", help="list the API route names and exit")
    p.set_defaults(run=run)


# Where the workers' counter files go when no temporary directory is writable (a read-only root
# file system without a /tmp): the engine gives every container a tmpfs /dev/shm.
SHM_FALLBACK = "/dev/shm"


def _metrics_dir() -> str:
    """A new private directory for the workers' counters (prometheus_client multiprocess)."""
    candidates = [None, SHM_FALLBACK]  # None: tempfile's choice (TMPDIR, /tmp, /var/tmp, cwd)
    last = ""
    for where in candidates:
        try:
            return tempfile.mkdtemp(prefix="dockward-proxy-metrics-", dir=where)
        except OSError as exc:
            last = str(exc.strerror or exc)
    raise ConfigError(
        f"--metrics-listen: no writable directory for the workers' counters ({last}): "
        "set TMPDIR, or mount a tmpfs on /tmp"
    )


def run(args: argparse.Namespace) -> int:
    if args.routes:
        from dockward.policy.routes import STDIN_ROUTES

        writes = set(STDIN_ROUTES.values())
        for r in ROUTES:
            extra = "  (with stdin set)" if r.name in writes else ""
            sys.stdout.write(f"{r.name:26} {r.method:6} {r.pattern.pattern[1:-1]}{extra}\n")
        return EXIT_OK
    try:
        mode = int(str(args.socket_mode), 8)
    except ValueError as exc:
        raise UsageError(f"--socket-mode {args.socket_mode!r} is not an octal mode") from exc
    listen = tuple(args.listen or env_list("PROXY_LISTEN") or ["tcp://127.0.0.1:2375"])
    if str(args.workers) == "auto":
        workers = default_workers()
    elif str(args.workers).isdigit() and 1 <= int(args.workers) <= 64:
        workers = int(args.workers)
    else:
        raise UsageError(f"--workers {args.workers!r}: expected auto or a number from 1 to 64")
    try:
        drain = float(args.drain_timeout)
    except ValueError:
        drain = -1.0
    if not 0 <= drain <= 3600:
        raise UsageError(f"--drain-timeout {args.drain_timeout!r}: expected seconds, 0 to 3600")
    cfg = ProxyConfig(
        listen=listen,
        upstream=args.upstream,
        socket_mode=mode,
        socket_owner=args.socket_owner,
        policy=args.policy,
        log=args.log,
        log_level=args.log_level,
        env=dict(os.environ),
        workers=1 if args.learn else workers,
        learn=args.learn,
        learn_strict=bool(args.learn_strict),
        registry_scans=bool(args.registry_scans),
        drain_timeout=drain,
    )
    if args.learn_strict and not args.learn:
        raise UsageError("--learn-strict needs --learn FILE")
    if args.check:
        build_authorizer(cfg)
        sys.stdout.write("configuration ok\n")
        return EXIT_OK

    def ready(url: str) -> None:
        sys.stderr.write(f"dockward proxy: listening on {url}\n")
        sys.stderr.flush()

    if not args.metrics_listen:
        run_proxy(cfg, ready)
        return EXIT_OK
    # Workers are forked: each counts into its own file here, the parent's /metrics sums them.
    # Set before prometheus_client is first imported (it picks its value store at import).
    metrics_dir = _metrics_dir()
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
    try:
        from dockward.service.proxy import start_proxy_metrics

        unix = [u.removeprefix("unix://") for u in listen if u.startswith("unix://")]
        server = start_proxy_metrics(args.metrics_listen, cfg.upstream, unix)
        try:
            run_proxy(cfg, ready)
        finally:
            server.close()
    finally:
        shutil.rmtree(metrics_dir, ignore_errors=True)
    return EXIT_OK
