"""One Compose service (already merged and interpolated) -> ContainerSpec."""

from __future__ import annotations

import os
import posixpath
import re
import shlex
from collections.abc import Mapping
from typing import Any

from dockward.errors import InputError
from dockward.model.container import (
    ContainerSpec,
    Device,
    Healthcheck,
    Mount,
    PortBinding,
    RestartPolicy,
    SecurityOptions,
    Ulimit,
    normalise_capability,
)
from dockward.model.finding import Location

_BYTES = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([bkmgt]?)b?\s*$", re.IGNORECASE)
_UNITS = {"": 1, "b": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}
MAX_PORT_RANGE = 1024


def parse_bytes(value: Any, what: str = "size") -> int:
    """`512m`, `1gb`, `1.5g`, `1024` (bytes) -> bytes. -1 stays -1 (unlimited)."""
    if value is None or value == "":
        return 0
    if isinstance(value, bool):
        raise InputError(f"{what}: expected a size, got {value!r}")
    if isinstance(value, int | float):
        return int(value)
    m = _BYTES.match(str(value))
    if not m:
        if str(value).strip() == "-1":
            return -1
        raise InputError(f"{what}: invalid size {value!r}")
    return int(float(m.group(1)) * _UNITS[m.group(2).lower()])


def as_bool(value: Any, what: str = "value") -> bool:
    if isinstance(value, bool):
        return value
    if value is None:
        return False
    text = str(value).strip().lower()
    if text in ("true", "yes", "y", "on", "1"):
        return True
    if text in ("false", "no", "n", "off", "0", ""):
        return False
    raise InputError(f"{what}: expected true or false, got {value!r}")


def as_int(value: Any, what: str = "value") -> int:
    if isinstance(value, bool):
        raise InputError(f"{what}: expected a number, got {value!r}")
    try:
        return int(str(value).strip()) if not isinstance(value, int) else value
    except ValueError as exc:
        raise InputError(f"{what}: expected a number, got {value!r}") from exc


def as_list(value: Any, what: str) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, list):
        return value
    if isinstance(value, str):
        return [value]
    raise InputError(f"{what}: expected a list")


def kv_pairs(value: Any, what: str, sep: str = "=") -> dict[str, str | None]:
    """Compose "list or mapping" fields (environment, labels, sysctls): both become a mapping."""
    if value is None:
        return {}
    if isinstance(value, dict):
        return {str(k): (None if v is None else _scalar_text(v)) for k, v in value.items()}
    if isinstance(value, list):
        out: dict[str, str | None] = {}
        for item in value:
            key, has, val = str(item).partition(sep)
            out[key.strip()] = val if has else None
        return out
    raise InputError(f"{what}: expected a list or a mapping")


def _scalar_text(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


def _command(value: Any, what: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, list):
        return tuple(str(v) for v in value)
    try:
        return tuple(shlex.split(str(value)))
    except ValueError as exc:
        raise InputError(f"{what}: {exc}") from exc


def _host_path(source: str, project_dir: str) -> str:
    if source.startswith("~"):
        source = os.path.expanduser(source)
    if not source.startswith("/"):
        source = posixpath.join(project_dir, source)
    return posixpath.normpath(source)


def _is_path(source: str) -> bool:
    return source.startswith(("/", ".", "~")) or source in (".", "..")


def parse_short_volume(
    text: str, project_dir: str, named: Mapping[str, Mapping[str, Any]]
) -> Mount:
    parts = text.split(":")
    if len(parts) == 1:
        return Mount("volume", "", parts[0])
    source, target = parts[0], parts[1]
    flags = set(",".join(parts[2:]).split(",")) if len(parts) > 2 else set()
    read_only = "ro" in flags
    propagation = next(
        (f for f in flags if f in ("shared", "rshared", "slave", "rslave", "private", "rprivate")),
        "",
    )
    if _is_path(source):
        return Mount("bind", _host_path(source, project_dir), target, read_only, propagation)
    return _named_volume(source, target, read_only, named, propagation)


def _named_volume(
    name: str,
    target: str,
    read_only: bool,
    named: Mapping[str, Mapping[str, Any]],
    propagation: str = "",
) -> Mount:
    # A local volume with `o: bind` and a `device` is a bind mount of that host path in disguise.
    decl = named.get(name) or {}
    opts = decl.get("driver_opts") if isinstance(decl, dict) else None
    if (
        isinstance(opts, dict)
        and "bind" in str(opts.get("o", "")).split(",")
        and opts.get("device")
    ):
        return Mount("bind", str(opts["device"]), target, read_only, propagation)
    return Mount("volume", name, target, read_only, propagation)


def parse_long_volume(
    item: Mapping[str, Any], project_dir: str, named: Mapping[str, Mapping[str, Any]], what: str
) -> Mount:
    kind = str(item.get("type") or "volume")
    target = str(item.get("target") or "")
    if not target:
        raise InputError(f"{what}: a long-syntax volume needs `target`")
    source = str(item.get("source") or "")
    read_only = as_bool(item.get("read_only", False), what)
    bind_opts = item.get("bind")
    bind: Mapping[str, Any] = bind_opts if isinstance(bind_opts, dict) else {}
    propagation = str(bind.get("propagation") or "")
    if kind == "bind":
        return Mount("bind", _host_path(source, project_dir), target, read_only, propagation)
    if kind == "volume" and source:
        return _named_volume(source, target, read_only, named, propagation)
    return Mount(kind, source, target, read_only, propagation)


def _port_range(text: str, what: str) -> list[int]:
    if not text:
        return []
    lo, dash, hi = text.partition("-")
    try:
        start, end = int(lo), int(hi) if dash else int(lo)
    except ValueError as exc:
        raise InputError(f"{what}: invalid port {text!r}") from exc
    if not 0 <= start <= end <= 65535 or end - start > MAX_PORT_RANGE:
        raise InputError(f"{what}: invalid port range {text!r}")
    return list(range(start, end + 1))


def parse_short_port(text: str, what: str) -> list[PortBinding]:
    """`[[IP:](HOST|RANGE):]CONTAINER[/PROTO]`, IPv6 hosts in brackets."""
    spec, _, proto = text.partition("/")
    proto = proto or "tcp"
    host_ip = ""
    if spec.startswith("["):
        end = spec.find("]")
        if end < 0:
            raise InputError(f"{what}: invalid port {text!r}")
        host_ip, spec = spec[1:end], spec[end + 1 :].lstrip(":")
    parts = spec.split(":")
    if len(parts) == 3:
        host_ip, host, container = parts
    elif len(parts) == 2:
        host, container = parts
    elif len(parts) == 1:
        host, container = "", parts[0]
    else:
        raise InputError(f"{what}: invalid port {text!r}")
    cports = _port_range(container, what)
    hports = _port_range(host, what)
    if not cports:
        raise InputError(f"{what}: invalid port {text!r}")
    out = []
    for i, cport in enumerate(cports):
        hport = hports[i] if i < len(hports) else (hports[0] if len(hports) == 1 else 0)
        out.append(PortBinding(cport, proto, host_ip, hport))
    return out


def _ports(value: Any, what: str) -> tuple[PortBinding, ...]:
    out: list[PortBinding] = []
    for item in as_list(value, what):
        if isinstance(item, dict):
            proto = str(item.get("protocol") or "tcp")
            published = str(item.get("published") or "")
            cports = _port_range(str(item.get("target") or ""), what)
            hports = _port_range(published, what)
            for i, cport in enumerate(cports):
                hport = hports[i] if i < len(hports) else (hports[0] if hports else 0)
                out.append(PortBinding(cport, proto, str(item.get("host_ip") or ""), hport))
        else:
            out += parse_short_port(str(item), what)
    return tuple(out)


def _ulimits(value: Any, what: str) -> tuple[Ulimit, ...]:
    if value is None:
        return ()
    if not isinstance(value, dict):
        raise InputError(f"{what}: expected a mapping")
    out = []
    for name, lim in value.items():
        if isinstance(lim, dict):
            out.append(
                Ulimit(str(name), as_int(lim.get("soft"), what), as_int(lim.get("hard"), what))
            )
        else:
            n = as_int(lim, what)
            out.append(Ulimit(str(name), n, n))
    return tuple(out)


def parse_device(text: str) -> Device:
    parts = text.split(":")
    host = parts[0]
    container = parts[1] if len(parts) > 1 and parts[1] else host
    perms = parts[2] if len(parts) > 2 else "rwm"
    if len(parts) == 2 and set(parts[1]) <= set("rwm") and parts[1]:
        container, perms = host, parts[1]
    return Device(host, container, perms)


def _devices(value: Any, what: str) -> tuple[Device, ...]:
    out = []
    for item in as_list(value, what):
        if isinstance(item, dict):
            src = str(item.get("source") or "")
            out.append(
                Device(src, str(item.get("target") or src), str(item.get("permissions") or "rwm"))
            )
        else:
            out.append(parse_device(str(item)))
    return tuple(out)


def parse_restart(text: str) -> RestartPolicy:
    name, _, count = text.strip().partition(":")
    name = name.strip().lower()
    if name not in ("", "no", "always", "unless-stopped", "on-failure"):
        raise InputError(f"restart: unknown policy {text!r}")
    return RestartPolicy(name if name != "no" else "no", int(count) if count.isdigit() else 0)


def _restart(service: Mapping[str, Any], deploy: Mapping[str, Any], what: str) -> RestartPolicy:
    if service.get("restart") is not None:
        return parse_restart(str(service["restart"]))
    policy = deploy.get("restart_policy")
    if isinstance(policy, dict):
        condition = str(policy.get("condition") or "any")
        attempts = as_int(policy.get("max_attempts") or 0, what)
        name = {"any": "always", "on-failure": "on-failure", "none": "no"}.get(condition, condition)
        if name == "always" and attempts:
            name = "on-failure"
        return RestartPolicy(name, attempts)
    return RestartPolicy()


def _healthcheck(value: Any, what: str) -> Healthcheck | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise InputError(f"{what}: expected a mapping")
    if as_bool(value.get("disable", False), what):
        return Healthcheck(("NONE",))
    test = value.get("test")
    if test is None:
        return None
    if isinstance(test, list):
        return Healthcheck(tuple(str(t) for t in test))
    return Healthcheck(("CMD-SHELL", str(test)))


def _secret_mounts(
    value: Any, top_secrets: Mapping[str, Any], project_dir: str, what: str
) -> tuple[Mount, ...]:
    # File-backed secrets are bind mounts of that file (outside swarm), so the mount rules see them.
    out = []
    for item in as_list(value, what):
        if isinstance(item, dict):
            name = str(item.get("source") or "")
            target = str(item.get("target") or name)
        else:
            name = target = str(item)
        decl = top_secrets.get(name)
        if isinstance(decl, dict) and decl.get("file"):
            dest = target if target.startswith("/") else f"/run/secrets/{target}"
            out.append(Mount("bind", _host_path(str(decl["file"]), project_dir), dest, True))
    return tuple(out)


def _limits(deploy: Mapping[str, Any]) -> Mapping[str, Any]:
    resources = deploy.get("resources")
    if isinstance(resources, dict) and isinstance(resources.get("limits"), dict):
        limits: Mapping[str, Any] = resources["limits"]
        return limits
    return {}


def _nano_cpus(value: Any, what: str) -> int:
    if value is None or value == "":
        return 0
    try:
        return int(float(str(value)) * 1e9)
    except ValueError as exc:
        raise InputError(f"{what}: invalid cpus {value!r}") from exc


def service_to_spec(
    name: str,
    service: Mapping[str, Any],
    *,
    project_dir: str = ".",
    source: Location | None = None,
    volumes: Mapping[str, Any] | None = None,
    secrets: Mapping[str, Any] | None = None,
    env_files: Mapping[str, str] | None = None,
) -> ContainerSpec:
    """Build the ContainerSpec of one service. `volumes`/`secrets` are the top-level sections
    (to see through named volumes and file secrets); `env_files` the already-read env_file
    values (lowest precedence under `environment`)."""
    if not isinstance(service, Mapping):
        raise InputError(f"service {name}: expected a mapping")
    what = f"services.{name}"
    named = {str(k): (v if isinstance(v, dict) else {}) for k, v in (volumes or {}).items()}
    deploy_opts = service.get("deploy")
    deploy: Mapping[str, Any] = deploy_opts if isinstance(deploy_opts, dict) else {}
    limits = _limits(deploy)
    mounts: list[Mount] = []
    for i, item in enumerate(as_list(service.get("volumes"), f"{what}.volumes")):
        where = f"{what}.volumes[{i}]"
        if isinstance(item, dict):
            mounts.append(parse_long_volume(item, project_dir, named, where))
        else:
            mounts.append(parse_short_volume(str(item), project_dir, named))
    for item in as_list(service.get("tmpfs"), f"{what}.tmpfs"):
        target, _, opts = str(item).partition(":")
        mounts.append(Mount("tmpfs", "", target, "ro" in opts.split(",")))
    mounts += _secret_mounts(service.get("secrets"), secrets or {}, project_dir, f"{what}.secrets")
    env: dict[str, str | None] = dict(env_files or {})
    env.update(kv_pairs(service.get("environment"), f"{what}.environment"))
    memory = parse_bytes(service.get("mem_limit"), f"{what}.mem_limit") or parse_bytes(
        limits.get("memory"), f"{what}.deploy.resources.limits.memory"
    )
    pids = service.get("pids_limit", limits.get("pids"))
    user = service.get("user")
    return ContainerSpec(
        name=str(service.get("container_name") or name),
        image=str(service.get("image") or ""),
        privileged=as_bool(service.get("privileged", False), f"{what}.privileged"),
        cap_add=tuple(
            normalise_capability(str(c)) for c in as_list(service.get("cap_add"), f"{what}.cap_add")
        ),
        cap_drop=tuple(
            normalise_capability(str(c))
            for c in as_list(service.get("cap_drop"), f"{what}.cap_drop")
        ),
        user="" if user is None else str(user),
        mounts=tuple(mounts),
        network_mode=str(service.get("network_mode") or ""),
        pid_mode=str(service.get("pid") or ""),
        ipc_mode=str(service.get("ipc") or ""),
        uts_mode=str(service.get("uts") or ""),
        userns_mode=str(service.get("userns_mode") or ""),
        cgroupns_mode=str(service.get("cgroup") or ""),
        cgroup_parent=str(service.get("cgroup_parent") or ""),
        security=SecurityOptions.parse(
            [str(o) for o in as_list(service.get("security_opt"), f"{what}.security_opt")]
        ),
        read_only_rootfs=as_bool(service.get("read_only", False), f"{what}.read_only"),
        memory=memory,
        memory_swap=parse_bytes(service.get("memswap_limit"), f"{what}.memswap_limit"),
        cpu_shares=as_int(service.get("cpu_shares") or 0, f"{what}.cpu_shares"),
        nano_cpus=_nano_cpus(service.get("cpus", limits.get("cpus")), f"{what}.cpus"),
        cpu_quota=as_int(service.get("cpu_quota") or 0, f"{what}.cpu_quota"),
        cpuset_cpus=str(service.get("cpuset") or ""),
        pids_limit=None if pids is None else as_int(pids, f"{what}.pids_limit"),
        ulimits=_ulimits(service.get("ulimits"), f"{what}.ulimits"),
        devices=_devices(service.get("devices"), f"{what}.devices"),
        device_cgroup_rules=tuple(
            str(r)
            for r in as_list(service.get("device_cgroup_rules"), f"{what}.device_cgroup_rules")
        ),
        ports=_ports(service.get("ports"), f"{what}.ports"),
        restart=_restart(service, deploy, f"{what}.restart"),
        healthcheck=_healthcheck(service.get("healthcheck"), f"{what}.healthcheck"),
        env=tuple(k if v is None else f"{k}={v}" for k, v in env.items()),
        labels={k: v or "" for k, v in kv_pairs(service.get("labels"), f"{what}.labels").items()},
        sysctls={
            k: v or "" for k, v in kv_pairs(service.get("sysctls"), f"{what}.sysctls").items()
        },
        entrypoint=_command(service.get("entrypoint"), f"{what}.entrypoint"),
        command=_command(service.get("command"), f"{what}.command"),
        source=source,
        origin="compose",
    )
