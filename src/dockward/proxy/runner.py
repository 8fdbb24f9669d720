"""Run the proxy: listeners, signals (SIGHUP reloads the policy atomically), shutdown.

With several workers (the default on a multi-core host, as HAProxy runs a thread per core), the
parent binds the sockets, forks the workers that serve them, and stays small: it forwards SIGHUP
once the new policy has loaded, restarts a worker that dies, and on SIGTERM stops them all and
removes its unix sockets.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import fcntl
import grp
import os
import pwd
import signal
import socket
import stat
import struct
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from dockward.errors import ConfigError, DockwardError
from dockward.policy.admission import ImageGate
from dockward.policy.model import load_policy, read_policy_text
from dockward.policy.vulns import default_source
from dockward.proxy.audit import DecisionLog
from dockward.proxy.authz import Authorizer, CompatAuthorizer, CompatSettings, PolicyAuthorizer
from dockward.proxy.learn import LearnAuthorizer, Learner
from dockward.proxy.server import ProxyServer, serve_sockets, start_listeners
from dockward.registry import ImageRef, InvalidReference, parse_reference

# Within Docker's default 10 s between SIGTERM and SIGKILL (docker stop, compose down).
DRAIN_SECONDS = 8.0


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
    workers: int = 1  # processes serving the same sockets
    learn: str = ""  # --learn: write the policy that allows what was seen (one worker)
    learn_strict: bool = False  # learn only from what the current policy allows
    registry_scans: bool = False  # also trust scans attached to images in their registry
    drain_timeout: float = DRAIN_SECONDS  # on SIGTERM: how long requests in flight may take


def default_workers() -> int:
    """One worker per CPU this process may use, at most 8."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = os.cpu_count() or 1
    return max(1, min(cpus, 8))


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
    except KeyError as exc:
        raise ConfigError(f"--socket-owner {spec}: no such user or group") from exc
    return uid, gid


def build_authorizer(cfg: ProxyConfig, text: str | None = None) -> Authorizer:
    """The policy file's (or `text`, its content as read once elsewhere), or the environment's."""
    if cfg.policy:
        return PolicyAuthorizer(load_policy(cfg.policy, text))
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
                candidate = parse_reference(str(rd))
            except InvalidReference:
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


def bind_sockets(cfg: ProxyConfig) -> list[tuple[str, socket.socket]]:
    """Every --listen address bound and listening, before any worker exists: (url, socket)."""
    uid, gid = _owner(cfg.socket_owner)
    out: list[tuple[str, socket.socket]] = []
    try:
        for url in cfg.listen:
            kind, where, port = parse_listen(url)
            if kind == "unix":
                if os.path.lexists(where):
                    if not stat.S_ISSOCK(os.lstat(where).st_mode):
                        raise ConfigError(f"{where} exists and is not a socket")
                    os.unlink(where)
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                old = os.umask(0o177)  # no window in which the socket is wider than asked
                try:
                    s.bind(where)
                finally:
                    os.umask(old)
                os.chmod(where, cfg.socket_mode)
                if uid != -1 or gid != -1:
                    os.chown(where, uid, gid)
                url = f"unix://{where}"
            else:
                family = socket.AF_INET6 if ":" in where else socket.AF_INET
                s = socket.socket(family, socket.SOCK_STREAM)
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                s.bind((where, port))
                url = f"tcp://{where}:{port}"
            s.listen(1024)
            s.setblocking(False)
            out.append((url, s))
    except OSError as exc:
        for _, s in out:
            s.close()
        raise ConfigError(f"cannot listen: {exc}") from exc
    return out


def with_registry_scans(gate: ImageGate) -> ImageGate:
    """Images the local scan cache does not know are looked up in their registry: the scan
    `dockward scan --registry --attach` attached (plain HTTP only for loopback and the
    registries the gate's policy names insecure)."""
    from dockward.registry import RegistryClient, is_loopback_host
    from dockward.scan.attach import FirstKnown, RegistryAttachmentSource

    hosts = gate.insecure  # the live set: policies add their insecure registries to it
    attached = RegistryAttachmentSource(
        RegistryClient(insecure=lambda h: h in hosts or is_loopback_host(h), timeout=10.0)
    )
    gate.vulns = FirstKnown(gate.vulns, attached)
    return gate


async def serve(
    cfg: ProxyConfig,
    ready: Callable[[str], None] | None = None,
    sockets: list[tuple[str, socket.socket]] | None = None,
    authorizer: Authorizer | None = None,
    control: int | None = None,
) -> None:
    """Serve until SIGTERM/SIGINT. With `sockets`, this is a worker: the parent bound them,
    logs start and stop, removes the unix sockets, and hands over the policy it validated
    (`authorizer`): a worker that starts later never depends on what the file says then."""
    worker = sockets is not None
    log = DecisionLog(cfg.log, cfg.log_level)
    gate = ImageGate(
        vulns=default_source(),
        local_digest=local_digest_lookup(cfg.upstream),
        local_image=local_image_lookup(cfg.upstream),
    )
    if cfg.registry_scans:
        with_registry_scans(gate)
    server = ProxyServer(cfg.upstream, authorizer or build_authorizer(cfg), log, gate)
    if cfg.learn:
        server.learner = Learner(cfg.learn)
        if not cfg.learn_strict:
            server.authorizer = LearnAuthorizer()
    unix, tcp = [], []
    uid, gid = _owner(cfg.socket_owner)
    for url in cfg.listen:
        kind, where, port = parse_listen(url)
        if kind == "unix":
            unix.append((where, cfg.socket_mode, uid, gid))
        else:
            tcp.append((where, port))
    try:
        if sockets is not None:
            listeners = await serve_sockets(server, [s for _, s in sockets])
            unix = []  # the parent owns them
        else:
            listeners = await start_listeners(server, unix, tcp, ready)
    except OSError as exc:
        raise ConfigError(f"cannot listen: {exc}") from exc
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()

    def reload() -> None:
        with contextlib.suppress(DockwardError):
            log.reopen()  # after logrotate
        if worker:
            return  # a SIGHUP sent to every process: the policy comes from the parent's pipe
        if cfg.learn and not cfg.learn_strict:
            return  # learning forwards everything: no policy to reload
        try:
            server.authorizer = build_authorizer(cfg)
            log.event("policy reloaded", policy=cfg.policy or "environment")
        except DockwardError as exc:
            log.event("policy reload failed; keeping the previous policy", error=str(exc))

    loop.add_signal_handler(signal.SIGHUP, reload)
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    if control is not None:
        channel = _Control(control, cfg, server, log, stop)
        loop.add_reader(control, channel.readable)
    if worker:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGHUP})
    if not worker:
        log.event("listening", listen=list(cfg.listen), upstream=cfg.upstream, pid=os.getpid())
    try:
        await stop.wait()
        # Stop accepting (new clients find no socket, or a refused connection), then let the
        # requests in flight finish within the deadline.
        for srv in listeners:
            srv.close()
        for path, *_ in unix:
            with contextlib.suppress(OSError):
                os.unlink(path)
        unix = []
        in_flight = len(server.sessions)
        cut = await server.drain(cfg.drain_timeout)
        if in_flight:
            log.event("drained", connections=in_flight, cut=cut, pid=os.getpid())
    finally:
        for srv in listeners:
            srv.close()
        for path, *_ in unix:
            with contextlib.suppress(OSError):
                os.unlink(path)
        if server.learner is not None:
            server.learner.write()
        if not worker:
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
    if cfg.workers > 1 and not cfg.learn:
        _Supervisor(cfg).run(ready)
        return
    with asyncio.Runner(loop_factory=_loop_factory()) as runner:
        runner.run(serve(cfg, ready))


_FRAME = struct.Struct("!cI")  # kind, length; then the payload
MAX_POLICY_BYTES = 256 << 10
PIPE_BYTES = 1 << 20  # room for a few policy frames a worker has not read yet
F_SETPIPE_SZ = 1031


class _Control:
    """A worker's end of the pipe from its parent. On reload the parent sends the policy text it
    has just validated, so every worker runs exactly those bytes (never a later edit of the
    file); `R` with no text: reopen the log only (environment settings do not change)."""

    def __init__(
        self,
        fd: int,
        cfg: ProxyConfig,
        server: ProxyServer,
        log: DecisionLog,
        stop: asyncio.Event,
    ) -> None:
        self.fd, self.cfg, self.server, self.log, self.stop = fd, cfg, server, log, stop
        self.buf = b""

    def readable(self) -> None:
        try:
            data = os.read(self.fd, 65536)
        except BlockingIOError:
            return
        if not data:  # the parent is gone
            asyncio.get_running_loop().remove_reader(self.fd)
            self.stop.set()
            return
        self.buf += data
        while len(self.buf) >= _FRAME.size:
            kind, size = _FRAME.unpack_from(self.buf)
            if len(self.buf) < _FRAME.size + size:
                return
            payload = self.buf[_FRAME.size : _FRAME.size + size]
            self.buf = self.buf[_FRAME.size + size :]
            with contextlib.suppress(DockwardError):
                self.log.reopen()
            if kind == b"P":
                try:
                    self.server.authorizer = build_authorizer(self.cfg, payload.decode())
                except DockwardError as exc:  # a key file it names changed since the check
                    self.log.event(
                        "policy reload failed; keeping the previous policy", error=str(exc)
                    )


_PARENT_SIGNALS = {signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGCHLD}
PR_SET_PDEATHSIG = 1
RESPAWN_WINDOW = 10.0  # seconds: more deaths than workers within it is a crash loop


def _die_with_parent() -> None:
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


class _Supervisor:
    """The parent of the workers: binds, forks, forwards signals, restarts, cleans up."""

    def __init__(self, cfg: ProxyConfig) -> None:
        self.cfg = cfg
        self.log = DecisionLog(cfg.log, cfg.log_level)
        self.sockets: list[tuple[str, socket.socket]] = []
        self.children: dict[int, int] = {}  # pid -> slot
        self.pipes: dict[int, int] = {}  # pid -> write end of its control pipe
        self.replaced: set[int] = set()  # workers killed to be replaced, not crashed
        self.text = read_policy_text(cfg.policy) if cfg.policy else None
        self.authorizer = build_authorizer(cfg, self.text)  # the last policy that loaded
        self.deaths: list[float] = []

    def _spawn(self, slot: int) -> None:
        r, w = os.pipe()
        with contextlib.suppress(OSError):  # a smaller pipe only means replacing more often
            fcntl.fcntl(w, F_SETPIPE_SZ, PIPE_BYTES)
        pid = os.fork()
        if pid:
            os.close(r)
            os.set_blocking(w, False)  # a worker that stops reading must not stall the parent
            self.children[pid] = slot
            self.pipes[pid] = w
            return
        os.close(w)
        for other in self.pipes.values():
            os.close(other)  # the other workers' pipes are the parent's business
        os.set_blocking(r, False)
        code = 0
        try:  # the worker: default signal handling back, then its own event loop
            for sig in _PARENT_SIGNALS:
                signal.signal(sig, signal.SIG_DFL)
            # SIGHUP stays blocked until serve() has its handler: a reload sent while this
            # worker starts is then delivered late, not fatal (its default action).
            signal.pthread_sigmask(signal.SIG_SETMASK, {signal.SIGHUP})
            _die_with_parent()
            self.log.close()
            with asyncio.Runner(loop_factory=_loop_factory()) as runner:
                runner.run(serve(self.cfg, None, self.sockets, self.authorizer, r))
        except BaseException as exc:  # a worker says why it failed, then exits 1
            code = 1
            with contextlib.suppress(Exception):
                os.write(
                    2, f"dockward proxy: worker failed: {type(exc).__name__}: {exc}\n".encode()
                )
        finally:
            os._exit(code)

    def _reap(self) -> list[tuple[int, str, bool]]:
        """Workers that exited: (slot, how, replaced on purpose)."""
        slots = []
        while self.children:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break
            slot = self.children.pop(pid, None)
            pipe = self.pipes.pop(pid, None)
            if pipe is not None:
                os.close(pipe)
            if slot is not None:
                how = (
                    f"signal {signal.Signals(os.WTERMSIG(status)).name}"
                    if os.WIFSIGNALED(status)
                    else f"exit {os.waitstatus_to_exitcode(status)}"
                )
                slots.append((slot, how, pid in self.replaced))
                self.replaced.discard(pid)
        return slots

    def _reload(self) -> None:
        with contextlib.suppress(DockwardError):
            self.log.reopen()
        try:
            text = read_policy_text(self.cfg.policy) if self.cfg.policy else None
            if text is not None and len(text.encode()) > MAX_POLICY_BYTES:
                raise ConfigError(f"{self.cfg.policy}: larger than {MAX_POLICY_BYTES} bytes")
            authorizer = build_authorizer(self.cfg, text)
        except DockwardError as exc:
            # Workers keep what they have: none of them is even asked to read the bad file.
            self.log.event("policy reload failed; keeping the previous policy", error=str(exc))
            return
        self.text, self.authorizer = text, authorizer  # what workers started from now get
        payload = (text or "").encode()
        frame = _FRAME.pack(b"P" if text is not None else b"R", len(payload)) + payload
        for pid, pipe in list(self.pipes.items()):
            try:
                sent = os.write(pipe, frame)
            except (BlockingIOError, BrokenPipeError):
                sent = -1
            if sent != len(frame):
                # It could not take the new policy: replace it (the new one starts with it).
                # A replacement is not a crash: it does not count towards a crash loop.
                self.log.event("worker did not take the policy; replacing it", pid=pid)
                self.replaced.add(pid)
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        self.log.event("policy reloaded", policy=self.cfg.policy or "environment")

    def _stop(self) -> None:
        for url, s in self.sockets:  # new clients find no socket while the workers drain
            s.close()
            if url.startswith("unix://"):
                with contextlib.suppress(OSError):
                    os.unlink(url.removeprefix("unix://"))
        for pid in self.children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + self.cfg.drain_timeout + 2
        while self.children and time.monotonic() < deadline:
            if not self._reap():
                time.sleep(0.02)
        for pid in self.children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self._reap()

    def run(self, ready: Callable[[str], None] | None) -> None:
        signal.pthread_sigmask(signal.SIG_BLOCK, _PARENT_SIGNALS)
        self.sockets = bind_sockets(self.cfg)
        try:
            for slot in range(self.cfg.workers):
                self._spawn(slot)
            for url, _ in self.sockets:
                if ready is not None:
                    ready(url)
            self.log.event(
                "listening",
                listen=list(self.cfg.listen),
                upstream=self.cfg.upstream,
                pid=os.getpid(),
                workers=self.cfg.workers,
            )
            self._loop()
        finally:
            self._stop()
            for url, s in self.sockets:
                s.close()
                if url.startswith("unix://"):
                    with contextlib.suppress(OSError):
                        os.unlink(url.removeprefix("unix://"))
            self.log.event("stopped")
            self.log.close()
            signal.pthread_sigmask(signal.SIG_UNBLOCK, _PARENT_SIGNALS)

    def _loop(self) -> None:
        while True:
            info = signal.sigtimedwait(_PARENT_SIGNALS, 1.0)
            sig = info.si_signo if info is not None else None
            if sig in (signal.SIGTERM, signal.SIGINT):
                return
            if sig == signal.SIGHUP:
                self._reload()
            for slot, how, replaced in self._reap():
                now = time.monotonic()
                self.deaths = [t for t in self.deaths if now - t < RESPAWN_WINDOW]
                if not replaced:
                    self.deaths.append(now)
                if len(self.deaths) > self.cfg.workers:
                    self.log.event("workers keep dying; stopping", deaths=len(self.deaths))
                    raise DockwardError("proxy workers keep dying (see the decision log)")
                self.log.event("worker exited; starting another", slot=slot, how=how)
                self._spawn(slot)
