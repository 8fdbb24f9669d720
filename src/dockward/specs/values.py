"""Value syntaxes shared by the compose and `docker run` readers: sizes, booleans, ports,
volumes, devices, restart policies."""

from __future__ import annotations

import csv
import os
import posixpath
import re
from collections.abc import Mapping, Sequence
from typing import Any

from dockward.errors import InputError
from dockward.model.container import Device, Mount, PortBinding, RestartPolicy

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


def host_path(source: str, project_dir: str) -> str:
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
        return Mount("bind", host_path(source, project_dir), target, read_only, propagation)
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
        return Mount("bind", host_path(source, project_dir), target, read_only, propagation)
    if kind == "volume" and source:
        return _named_volume(source, target, read_only, named, propagation)
    return Mount(kind, source, target, read_only, propagation)


def port_range(text: str, what: str) -> list[int]:
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
    cports = port_range(container, what)
    hports = port_range(host, what)
    if not cports:
        raise InputError(f"{what}: invalid port {text!r}")
    out = []
    for i, cport in enumerate(cports):
        hport = hports[i] if i < len(hports) else (hports[0] if len(hports) == 1 else 0)
        out.append(PortBinding(cport, proto, host_ip, hport))
    return out


def parse_device(text: str) -> Device:
    parts = text.split(":")
    host = parts[0]
    container = parts[1] if len(parts) > 1 and parts[1] else host
    perms = parts[2] if len(parts) > 2 else "rwm"
    if len(parts) == 2 and set(parts[1]) <= set("rwm") and parts[1]:
        container, perms = host, parts[1]
    return Device(host, container, perms)


def parse_restart(text: str) -> RestartPolicy:
    name, _, count = text.strip().partition(":")
    name = name.strip().lower()
    if name not in ("", "no", "always", "unless-stopped", "on-failure"):
        raise InputError(f"restart: unknown policy {text!r}")
    return RestartPolicy(name if name != "no" else "no", int(count) if count.isdigit() else 0)


def parse_port_key(key: str) -> tuple[int, str]:
    """`80/tcp`, `8000-8010/udp` (the first port of a range) -> (port, protocol)."""
    port, _, proto = key.partition("/")
    try:
        return int(port.split("-")[0]), (proto or "tcp")
    except ValueError:
        return 0, proto or "tcp"


def unmasks_system_paths(security_opts: Sequence[str]) -> bool:
    """`--security-opt systempaths=unconfined`: the Docker CLI sends empty MaskedPaths and
    ReadonlyPaths, so /proc and /sys are not masked."""
    for opt in security_opts:
        key, sep, value = str(opt).partition("=")
        if not sep:
            key, sep, value = str(opt).partition(":")
        if key.strip().lower() == "systempaths" and value.strip().lower() == "unconfined":
            return True
    return False


def parse_gpus(text: str) -> str:
    """`--gpus all|N|device=0,2|count=2,driver=nvidia,capabilities=...` -> the form of
    `dockward.specs.hostconfig.device_requests` (driver, count, devices, capabilities)."""
    value = text.strip()
    if value == "all":
        return "driver=,count=all,capabilities=gpu"
    if value.isdigit():
        return f"driver=,count={value},capabilities=gpu"
    try:
        fields = next(csv.reader([value]))
    except (csv.Error, StopIteration) as exc:
        raise InputError(f"--gpus: invalid value {text!r}") from exc
    kv: dict[str, str] = {}
    for f in fields:
        key, eq, val = f.partition("=")
        if not eq:
            raise InputError(f"--gpus: invalid value {text!r}")
        kv[key.strip().lower()] = val
    parts = [f"driver={kv.get('driver', '')}", f"count={kv.get('count', '0')}"]
    if kv.get("device"):
        parts.append(f"device={kv['device']}")
    parts.append(f"capabilities={kv.get('capabilities', 'gpu')}")
    return ",".join(parts)
