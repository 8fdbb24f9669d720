"""Run the proxy: listeners, signals (SIGHUP reloads the policy atomically), shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import grp
import os
import pwd
import signal
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from dockward.errors import ConfigError, DockwardError
from dockward.policy.admission import ImageGate
from dockward.policy.imageref import ImageRef, ReferenceError_, parse_image_ref
from dockward.policy.model import load_policy
from dockward.policy.vulns import default_source
from dockward.proxy.audit import DecisionLog
from dockward.proxy.authz import Authorizer, CompatAuthorizer, CompatSettings, PolicyAuthorizer
from dockward.proxy.server import ProxyServer, start_listeners


@dataclass(frozen=True, slots=True)
class ProxyConfig:
    listen: tuple[str, ...] = ("tcp://127.0.0.1:2375",)
    upstream: str = "/var/run/docker.sock"
    socket_mode: int = 0o660
    socket_owner: str = ""  # user[:group]
    policy: str = ""  # empty: docker-socket-proxy environment variables
    log: str = "-"
    log_level: str = "info"
    env: Mapping[str, str] = field(default_factory=dict)


def parse_listen(url: str) -> tuple[str, str, int]:
    """('unix', path, 0) or ('tcp', host, port)."""
    if url.startswith("unix://"):
        path = url.removeprefix("unix://")
        if not path.startswith("/"):
            raise ConfigError(f"--listen {url}: unix socket path must be absolute")
        return "unix", path, 0
    if url.startswith("/"):
        return "unix", url, 0
    rest = url.removeprefix("tcp://")
    host, sep, port = rest.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(f"--listen {url}: expected unix:///path or tcp://host:port")
    return "tcp", host.strip("[]") or "127.0.0.1", int(port)


def _owner(spec: str) -> tuple[int, int]:
    if not spec:
        return -1, -1
    user, _, group = spec.partition(":")
    try:
        uid = -1 if not user else int(user) if user.isdigit() else pwd.getpwnam(user).pw_uid
        gid = -1 if not group else int(group) if group.isdigit() else grp.getgrnam(group).gr_gid
    except KeyError:
        raise ConfigError(f"--socket-owner {spec}: no such user or group") from None
    return uid, gid


def build_authorizer(cfg: ProxyConfig) -> Authorizer:
    if cfg.policy:
        return PolicyAuthorizer(load_policy(cfg.policy))
    return CompatAuthorizer(CompatSettings.from_env(cfg.env))


def local_digest_lookup(upstream: str) -> Callable[[str, ImageRef], str]:
    """The manifest digest of a local image for the repository it is referenced by."""

    def lookup(text: str, ref: ImageRef) -> str:
        from dockward.engine import connect, resolve_endpoint

        try:
            api = connect(resolve_endpoint(f"unix://{upstream}"), timeout=10)
            try:
                info = api.inspect_image(text)
            finally:
                api.close()
        except Exception:  # the image may not be local yet: fall back to the registry
            return ""
        for rd in info.get("RepoDigests") or []:
            try:
                candidate = parse_image_ref(str(rd))
            except ReferenceError_:
                continue
            if candidate.name == ref.name and candidate.digest:
                return candidate.digest
        return ""

    return lookup


def local_image_lookup(upstream: str) -> Callable[[str], str]:
    """The id of the local image a reference names, or "" when the daemon does not have it."""

    def lookup(text: str) -> str:
        from dockward.engine import connect, resolve_endpoint

        try:
            api = connect(resolve_endpoint(f"unix://{upstream}"), timeout=10)
            try:
                return str(api.inspect_image(text).get("Id") or "")
            finally:
                api.close()
        except Exception:  # not local (or no daemon): the registry digest is the key
            return ""

    return lookup


async def serve(cfg: ProxyConfig, ready: Callable[[str], None] | None = None) -> None:
    log = DecisionLog(cfg.log, cfg.log_level)
    gate = ImageGate(
        vulns=default_source(),
        local_digest=local_digest_lookup(cfg.upstream),
        local_image=local_image_lookup(cfg.upstream),
    )
    server = ProxyServer(cfg.upstream, build_authorizer(cfg), log, gate)
    unix, tcp = [], []
    uid, gid = _owner(cfg.socket_owner)
    for url in cfg.listen:
        kind, where, port = parse_listen(url)
        if kind == "unix":
            unix.append((where, cfg.socket_mode, uid, gid))
        else:
            tcp.append((where, port))
    try:
        listeners = await start_listeners(server, unix, tcp, ready)
    except OSError as exc:
        raise ConfigError(f"cannot listen: {exc}") from None
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()

    def reload() -> None:
        with contextlib.suppress(DockwardError):
            log.reopen()  # after logrotate
        try:
            server.authorizer = build_authorizer(cfg)
            log.event("policy reloaded", policy=cfg.policy or "environment")
        except DockwardError as exc:
            log.event("policy reload failed; keeping the previous policy", error=str(exc))

    loop.add_signal_handler(signal.SIGHUP, reload)
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    log.event("listening", listen=list(cfg.listen), upstream=cfg.upstream, pid=os.getpid())
    try:
        await stop.wait()
    finally:
        for srv in listeners:
            srv.close()
        for path, *_ in unix:
            with contextlib.suppress(OSError):
                os.unlink(path)
        log.event("stopped")
        log.close()


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop when installed: it cuts the proxy's own per-request cost (bench/proxy_bench.py)."""
    try:
        import uvloop
    except ImportError:
        return None
    factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    return factory


def run_proxy(cfg: ProxyConfig, ready: Callable[[str], None] | None = None) -> None:
    build_authorizer(cfg)  # a bad policy or environment fails before anything listens
    with asyncio.Runner(loop_factory=_loop_factory()) as runner:
        runner.run(serve(cfg, ready))
