"""Collect a HostSnapshot once, with concurrent inspects. Only collectors touch the host."""

from __future__ import annotations

import contextlib
import functools
import glob
import grp
import os
import pwd
import re
import shutil
import stat
import subprocess
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import docker.errors
import requests

from dockward import specs
from dockward.engine.client import Endpoint
from dockward.engine.daemon_config import (
    DEFAULT_CONFIG,
    find_dockerd_argv,
    load_daemon_json,
    merge_settings,
    parse_dockerd_argv,
)
from dockward.errors import ConnectionFailed
from dockward.model.container import ContainerSpec, ExecSession
from dockward.model.daemon import DaemonSpec
from dockward.model.host import FileInfo, HostSnapshot, NetworkInfo, Unavailable
from dockward.model.image import ImageSpec
from dockward.rules.host import AUDIT_TARGETS, BINARY_ALTERNATIVES
from dockward.specs.addresses import pools_of

Progress = Callable[[str], None]
WORKERS = 16

STATIC_FILES = (
    "/etc/docker",
    "/var/run/docker.sock",
    "/etc/default/docker",
    "/etc/sysconfig/docker",
    "/run/containerd/containerd.sock",
)
UNIT_DIRS = ("/etc/systemd/system", "/usr/lib/systemd/system", "/lib/systemd/system")


def stat_file(path: str) -> FileInfo | Unavailable:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return FileInfo(path, False)
    except PermissionError:
        return Unavailable(f"{path} is not readable (permission denied)")
    except OSError as exc:
        return Unavailable(f"{path}: {exc.strerror}")
    try:
        owner = pwd.getpwuid(st.st_uid).pw_name
    except KeyError:
        owner = str(st.st_uid)
    try:
        group = grp.getgrgid(st.st_gid).gr_name
    except KeyError:
        group = str(st.st_gid)
    return FileInfo(
        path,
        True,
        st.st_uid,
        st.st_gid,
        stat.S_IMODE(st.st_mode),
        owner,
        group,
        stat.S_ISDIR(st.st_mode),
        stat.S_ISSOCK(st.st_mode),
    )


def own_filesystem(path: str) -> bool | Unavailable:
    """Is `path` on another filesystem than `/` (userns-remap puts the root one level down)?"""
    try:
        return os.stat(path).st_dev != os.stat("/").st_dev
    except OSError as exc:
        return Unavailable(f"{path} not visible: {exc.strerror}")


def unit_paths() -> dict[str, str]:
    """Where the docker units live (`systemctl show` when systemd runs, else the unit dirs)."""
    out: dict[str, str] = {}
    systemctl = shutil.which("systemctl")
    for unit in ("docker.service", "docker.socket"):
        if systemctl and os.path.isdir("/run/systemd/system"):
            try:
                res = subprocess.run(
                    [systemctl, "show", "-p", "FragmentPath", unit],
                    capture_output=True,
                    text=True,
                    timeout=5,
                    check=False,
                )
                path = res.stdout.strip().partition("=")[2]
                if path:
                    out[unit] = path
                    continue
            except (OSError, subprocess.TimeoutExpired):
                pass
        for d in UNIT_DIRS:
            if os.path.exists(os.path.join(d, unit)):
                out[unit] = os.path.join(d, unit)
                break
    return out


def audit_rules() -> tuple[str, ...] | Unavailable:
    """Loaded rules (`auditctl -l`) plus the persistent rules files."""
    lines: list[str] = []
    sources: list[str] = []
    auditctl = shutil.which("auditctl")
    if auditctl:
        try:
            res = subprocess.run(
                [auditctl, "-l"], capture_output=True, text=True, timeout=5, check=False
            )
            if res.returncode == 0:
                lines += res.stdout.splitlines()
                sources.append("auditctl")
        except (OSError, subprocess.TimeoutExpired):
            pass
    for path in [*sorted(glob.glob("/etc/audit/rules.d/*.rules")), "/etc/audit/audit.rules"]:
        try:
            lines += Path(path).read_text(encoding="utf-8", errors="replace").splitlines()
            sources.append(path)
        except OSError:
            continue
    if not sources:
        return Unavailable("auditd is not installed (no auditctl, no /etc/audit rules)")
    return tuple(lines)


def docker_group() -> tuple[str, ...] | Unavailable:
    try:
        group = grp.getgrnam("docker")
    except KeyError:
        return ()
    members = set(group.gr_mem)
    with contextlib.suppress(OSError):
        members |= {p.pw_name for p in pwd.getpwall() if p.pw_gid == group.gr_gid}
    return tuple(sorted(members))


def content_trust() -> dict[str, str]:
    found: dict[str, str] = {}
    files = ["/etc/environment", *sorted(glob.glob("/etc/profile.d/*.sh"))]
    pattern = re.compile(r"^\s*(?:export\s+)?DOCKER_CONTENT_TRUST\s*=\s*['\"]?(\w*)", re.M)
    for path in files:
        try:
            text = Path(path).read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        m = pattern.search(text)
        if m:
            found[path] = m.group(1)
    return found


def listening_sockets() -> tuple[str, ...] | Unavailable:
    out: list[str] = []
    for path, v6 in (("/proc/net/tcp", False), ("/proc/net/tcp6", True)):
        try:
            lines = Path(path).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            parts = line.split()
            if len(parts) < 4 or parts[3] != "0A":  # LISTEN
                continue
            addr, _, port = parts[1].partition(":")
            out.append(f"{_ip(addr, v6)}:{int(port, 16)}")
    return tuple(out) if out else Unavailable("/proc/net/tcp not readable")


def _ip(hexaddr: str, v6: bool) -> str:
    if not v6:
        return ".".join(str(int(hexaddr[i : i + 2], 16)) for i in (6, 4, 2, 0))
    if set(hexaddr) == {"0"}:
        return "::"
    return "v6:" + hexaddr


_CONTAINER_ID = re.compile(r"(?:docker[-/]|/)([0-9a-f]{64})(?:\.scope)?$")


def container_processes(proc: str = "/proc") -> dict[str, list[str]]:
    """Command lines of every process, by the container id its cgroup names (one /proc pass:
    far cheaper than one `GET /containers/{id}/top` per container, which forks `ps` each time)."""
    out: dict[str, list[str]] = {}
    try:
        pids = [p for p in os.listdir(proc) if p.isdigit()]
    except OSError:
        return out
    for pid in pids:
        try:
            cgroups = Path(proc, pid, "cgroup").read_text()
        except OSError:
            continue
        cid = ""
        for line in cgroups.splitlines():
            m = _CONTAINER_ID.search(line.rsplit(":", 1)[-1])
            if m:
                cid = m.group(1)
                break
        if not cid:
            continue
        try:
            raw = Path(proc, pid, "cmdline").read_bytes()
        except OSError:
            continue
        cmd = " ".join(a.decode(errors="replace") for a in raw.split(b"\0") if a)
        out.setdefault(cid, []).append(cmd)
    return out


def _pmap(fn: Callable[[Any], Any], items: Iterable[Any]) -> list[Any]:
    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        return list(pool.map(fn, items))


class _Gone(Exception):
    pass


def _api(call: Callable[[], Any]) -> Any:
    try:
        return call()
    except docker.errors.NotFound as exc:
        raise _Gone() from exc
    except (docker.errors.APIError, requests.RequestException) as exc:
        raise ConnectionFailed(f"Docker API error: {exc}") from exc


MAX_EXECS = 64  # exec records looked at per container


def _exec_sessions(client: Any, data: dict[str, Any]) -> tuple[ExecSession, ...]:
    """The exec sessions the daemon still holds for a container (running, or ended in the last
    few minutes: dockerd forgets an ended exec at its next clean-up)."""
    out: list[ExecSession] = []
    for eid in list(data.get("ExecIDs") or [])[:MAX_EXECS]:
        try:
            ex = _api(functools.partial(client.exec_inspect, eid))
        except (_Gone, ConnectionFailed):
            continue  # ended and forgotten between the two calls
        pc = ex.get("ProcessConfig") or {}
        out.append(
            ExecSession(
                id=str(ex.get("ID") or eid),
                command=(
                    str(pc.get("entrypoint") or ""),
                    *(str(a) for a in pc.get("arguments") or ()),
                ),
                user=str(pc.get("user") or ""),
                privileged=bool(pc.get("privileged")),
                running=bool(ex.get("Running")),
            )
        )
    return tuple(out)


def collect_snapshot(
    client: Any,
    endpoint: Endpoint,
    progress: Progress | None = None,
    with_processes: bool = True,
    scan_records: Callable[[list[ImageSpec]], list[ImageSpec]] | None = None,
) -> HostSnapshot:
    """Everything the audit judges, collected once. `scan_records` attaches what `dockward
    scan` recorded about the images (`dockward.scan.attach_scan_records`); without it the
    images' scan state is unknown and the checks about it are skipped."""
    say = progress or (lambda _msg: None)
    warnings: list[str] = []
    info: dict[str, Any] = _api(client.info)
    version: dict[str, Any] = _api(client.version)

    say("networks")
    networks: list[NetworkInfo] = []
    for n in _api(client.networks):
        options = dict(n.get("Options") or {})
        members: tuple[str, ...] = ()
        if n.get("Name") == "bridge":
            try:
                nid = n["Id"]
                detail = _api(functools.partial(client.inspect_network, nid))
                members = tuple((detail.get("Containers") or {}).keys())
            except _Gone:
                pass
        networks.append(
            NetworkInfo(
                str(n.get("Name")),
                str(n.get("Id")),
                str(n.get("Driver")),
                options,
                members,
                str(n.get("Scope") or "local"),
                pools_of(n.get("IPAM")),
            )
        )

    pools = {n.name: n.pools for n in networks}

    say("containers")
    summaries = _api(lambda: client.containers(all=True))
    local_procs = container_processes() if endpoint.local and with_processes else {}

    def inspect_container(summary: dict[str, Any]) -> ContainerSpec | None:
        cid = summary["Id"]
        try:
            data = _api(lambda: client.inspect_container(cid))
            spec = specs.from_inspect(data, pools).with_changes(execs=_exec_sessions(client, data))
            if with_processes and spec.state == "running" and cid in local_procs:
                spec = spec.with_changes(processes=tuple(local_procs[cid]))
            elif with_processes and spec.state == "running":
                try:
                    top = _api(lambda: client.top(cid))
                    titles = top.get("Titles") or []
                    col = titles.index("CMD") if "CMD" in titles else len(titles) - 1
                    procs = tuple(str(p[col]) for p in top.get("Processes") or [] if len(p) > col)
                    spec = spec.with_changes(processes=procs)
                except (_Gone, ConnectionFailed):
                    pass
            return spec
        except _Gone:
            warnings.append(f"container {cid[:12]} disappeared during collection")
            return None

    say("images")
    image_summaries = _api(lambda: client.images(all=False))

    def inspect_image(summary: dict[str, Any]) -> ImageSpec | None:
        iid = summary["Id"]
        try:
            data = _api(lambda: client.inspect_image(iid))
            history = _api(lambda: client.history(iid))
            return ImageSpec.from_inspect(data, history)
        except _Gone:
            warnings.append(f"image {iid[:19]} disappeared during collection")
            return None

    containers = [c for c in _pmap(inspect_container, summaries) if c is not None]
    images = [i for i in _pmap(inspect_image, image_summaries) if i is not None]
    if scan_records is not None:
        images = scan_records(images)

    swarm: dict[str, Any] = {}
    nodes: tuple[dict[str, Any], ...] | Unavailable = Unavailable("not a swarm manager")
    sw = info.get("Swarm") or {}
    if sw.get("LocalNodeState") == "active" and sw.get("ControlAvailable"):
        try:
            swarm = _api(client.inspect_swarm)
            nodes = tuple(_api(client.nodes))
        except (_Gone, ConnectionFailed) as exc:
            nodes = Unavailable(f"swarm API failed: {exc}")

    if not endpoint.local:
        daemon = DaemonSpec(info=info, version=version, argv=None)
        return HostSnapshot(
            host=endpoint.url,
            local=False,
            daemon=daemon,
            containers=tuple(containers),
            images=tuple(images),
            networks=tuple(networks),
            swarm=swarm,
            swarm_nodes=nodes,
            docker_group=Unavailable("not a local host"),
            data_root_is_mount=Unavailable("not a local host"),
            content_trust=Unavailable("not a local host"),
            listening=Unavailable("not a local host"),
            audit_rules=Unavailable("not a local host"),
            warnings=tuple(warnings),
        )

    say("host")
    argv = find_dockerd_argv(endpoint.socket_path)
    argv_settings = parse_dockerd_argv(argv) if argv else {}
    config_file = str(argv_settings.get("config-file") or DEFAULT_CONFIG)
    json_settings, config_error = load_daemon_json(config_file)
    if argv is None:
        warnings.append(
            "dockerd process not visible: daemon settings read from daemon.json and /info only"
        )
    daemon = DaemonSpec(
        settings=merge_settings(argv_settings, json_settings),
        info=info,
        version=version,
        argv=argv,
        config_file=config_file,
        config_error=config_error,
    )
    units = unit_paths()
    paths: set[str] = set(STATIC_FILES) | {config_file, endpoint.socket_path} | set(units.values())
    for key in ("tlscacert", "tlscert", "tlskey"):
        if daemon.value(key):
            paths.add(str(daemon.value(key)))
    certs = tuple(
        sorted(
            p for p in glob.glob("/etc/docker/certs.d/**/*", recursive=True) if os.path.isfile(p)
        )
    )
    paths |= set(certs)
    for _cis, target, _what in AUDIT_TARGETS:
        if not target.startswith("unit:"):
            paths.add(target)
            if target in BINARY_ALTERNATIVES:
                paths.add(BINARY_ALTERNATIVES[target])
    files = {p: stat_file(p) for p in sorted(paths)}
    root = str(info.get("DockerRootDir") or "/var/lib/docker")
    return HostSnapshot(
        host=endpoint.url,
        local=True,
        daemon=daemon,
        socket_path=endpoint.socket_path,
        files=files,
        globbed={"/etc/docker/certs.d": certs},
        audit_rules=audit_rules(),
        containers=tuple(containers),
        images=tuple(images),
        networks=tuple(networks),
        swarm=swarm,
        swarm_nodes=nodes,
        docker_group=docker_group(),
        data_root_is_mount=own_filesystem(root),
        content_trust=content_trust(),
        listening=listening_sockets(),
        unit_paths=units,
        warnings=tuple(warnings),
    )
