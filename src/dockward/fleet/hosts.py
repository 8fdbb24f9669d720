"""Where a fleet's hosts come from: -H, Docker contexts, a hosts file, an Ansible inventory."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dockward.errors import InputError

MAX_FILE_BYTES = 16 * 1024 * 1024
# An inventory variable that names the engine outright (tcp:// with TLS, a socket path, ssh://).
DOCKER_HOST_VAR = "dockward_docker_host"


@dataclass(frozen=True, slots=True)
class FleetHost:
    """One member of the fleet: the name runs are stored under, and how to reach its engine.
    `url` None means the default (DOCKER_HOST or the local socket) or `context`, a Docker context;
    an empty name is the URL the host resolves to."""

    name: str
    url: str | None = None
    context: str | None = None


def _read(path: str, what: str) -> str:
    p = Path(path)
    try:
        if p.stat().st_size > MAX_FILE_BYTES:
            raise InputError(f"{path}: {what} larger than {MAX_FILE_BYTES // 2**20} MiB")
        return p.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise InputError(f"{path}: no such file") from exc
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: not UTF-8 text") from exc
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc.strerror}") from exc


_URL = re.compile(r"^(unix|tcp|ssh|npipe)://\S+$|^/\S+$")


def check_url(url: str, origin: str) -> str:
    if not _URL.match(url):
        raise InputError(f"{origin}: {url!r} is not a Docker host URL (unix://, tcp://, ssh://)")
    return url


def hosts_file(path: str) -> list[FleetHost]:
    """One Docker host URL per line; blank lines and # comments are ignored."""
    out = []
    for n, raw in enumerate(_read(path, "hosts file").splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if line:
            out.append(FleetHost(check_url(line, f"{path}:{n}"), line))
    return out


def _ssh_url(name: str, hostvars: dict[str, Any], origin: str) -> str:
    explicit = hostvars.get(DOCKER_HOST_VAR)
    if explicit:
        return check_url(str(explicit), f"{origin}: host {name}")
    address = str(hostvars.get("ansible_host") or name)
    if not re.fullmatch(r"[A-Za-z0-9._:\[\]-]+", address):
        raise InputError(f"{origin}: host {name}: bad ansible_host {address!r}")
    if ":" in address and not address.startswith("["):
        address = f"[{address}]"
    user = hostvars.get("ansible_user") or hostvars.get("ansible_ssh_user")
    if user is not None and not re.fullmatch(r"[A-Za-z0-9._-]+", str(user)):
        raise InputError(f"{origin}: host {name}: bad ansible_user {user!r}")
    port = hostvars.get("ansible_port") or hostvars.get("ansible_ssh_port")
    if port is not None and not str(port).isdigit():
        raise InputError(f"{origin}: host {name}: bad ansible_port {port!r}")
    return f"ssh://{user + '@' if user else ''}{address}{':' + str(port) if port else ''}"


@dataclass
class _Group:
    hosts: dict[str, dict[str, Any]]
    vars: dict[str, Any]
    children: list[str]


def _resolve(groups: dict[str, _Group], origin: str, limit: Sequence[str]) -> list[FleetHost]:
    """Host vars over group vars, child groups over their parents (Ansible's order, simplified:
    the nearest group wins)."""
    parents: dict[str, list[str]] = {}
    for name, g in groups.items():
        for child in g.children:
            parents.setdefault(child, []).append(name)

    def chain(group: str, seen: frozenset[str] = frozenset()) -> list[str]:
        out = [group]
        for parent in parents.get(group, []):
            if parent not in seen:
                out += chain(parent, seen | {group})
        return out

    def members(group: str, seen: frozenset[str] = frozenset()) -> set[str]:
        g = groups.get(group)
        if g is None or group in seen:
            return set()
        out = set(g.hosts)
        for child in g.children:
            out |= members(child, seen | {group})
        return out

    unknown = [g for g in limit if g not in groups]
    if unknown:
        raise InputError(f"{origin}: no group {', '.join(unknown)} in the inventory")
    wanted = set().union(*(members(g) for g in limit)) if limit else None
    hostvars: dict[str, dict[str, Any]] = {}
    order: list[str] = []
    for gname, g in groups.items():
        for host, hv in g.hosts.items():
            if host not in hostvars:
                order.append(host)
                hostvars[host] = {}
            merged: dict[str, Any] = {}
            for ancestor in ["all", *reversed(chain(gname))]:
                merged.update(groups[ancestor].vars if ancestor in groups else {})
            merged.update(hv)
            hostvars[host].update(merged)
    return [
        FleetHost(h, _ssh_url(h, hostvars[h], origin))
        for h in order
        if wanted is None or h in wanted
    ]


def _ini_value(text: str) -> Any:
    text = text.strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return text[1:-1]
    return text


def parse_ini_inventory(text: str, origin: str, limit: Sequence[str] = ()) -> list[FleetHost]:
    groups: dict[str, _Group] = {"all": _Group({}, {}, []), "ungrouped": _Group({}, {}, [])}
    section, kind = "ungrouped", "hosts"
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        m = re.fullmatch(r"\[([A-Za-z0-9_.-]+)(?::(vars|children))?\]", line)
        if m:
            section, kind = m.group(1), m.group(2) or "hosts"
            groups.setdefault(section, _Group({}, {}, []))
            continue
        if line.startswith("["):
            raise InputError(f"{origin}:{n}: bad section header {line!r}")
        g = groups[section]
        if kind == "vars":
            key, sep, value = line.partition("=")
            if not sep:
                raise InputError(f"{origin}:{n}: expected key=value")
            g.vars[key.strip()] = _ini_value(value)
        elif kind == "children":
            g.children.append(line.split()[0])
        else:
            name, *pairs = line.split()
            if re.search(r"\[\d+:\d+\]", name):
                raise InputError(f"{origin}:{n}: host ranges ({name}) are not supported")
            hv: dict[str, Any] = {}
            for pair in pairs:
                key, sep, value = pair.partition("=")
                if not sep:
                    raise InputError(f"{origin}:{n}: expected key=value, got {pair!r}")
                hv[key] = _ini_value(value)
            g.hosts[name] = {**g.hosts.get(name, {}), **hv}
    return _resolve(groups, origin, limit)


def parse_yaml_inventory(text: str, origin: str, limit: Sequence[str] = ()) -> list[FleetHost]:
    import yaml

    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise InputError(f"{origin}: not YAML: {str(exc).splitlines()[0]}") from exc
    if not isinstance(data, dict):
        raise InputError(f"{origin}: an inventory is a mapping of groups")
    groups: dict[str, _Group] = {}

    def walk(name: str, node: Any) -> None:
        if node is None:
            node = {}
        if not isinstance(node, dict):
            raise InputError(f"{origin}: group {name} is not a mapping")
        g = groups.setdefault(name, _Group({}, {}, []))
        for host, hv in (node.get("hosts") or {}).items():
            if hv is not None and not isinstance(hv, dict):
                raise InputError(f"{origin}: host {host} has vars that are not a mapping")
            g.hosts[str(host)] = dict(hv or {})
        vars_ = node.get("vars") or {}
        if not isinstance(vars_, dict):
            raise InputError(f"{origin}: vars of group {name} are not a mapping")
        g.vars.update(vars_)
        for child, sub in (node.get("children") or {}).items():
            g.children.append(str(child))
            walk(str(child), sub)

    for name, node in data.items():
        walk(str(name), node)
    return _resolve(groups, origin, limit)


def inventory(path: str, limit: Sequence[str] = ()) -> list[FleetHost]:
    """An Ansible inventory, INI or YAML (by content), as fleet hosts reached over ssh://."""
    text = _read(path, "inventory")
    first = next(
        (ln.strip() for ln in text.splitlines() if ln.strip() and not ln.startswith("#")), ""
    )
    if path.endswith((".yml", ".yaml")) or first.endswith(":") or first == "---":
        return parse_yaml_inventory(text, path, limit)
    return parse_ini_inventory(text, path, limit)


def gather(
    urls: Iterable[str],
    contexts: Iterable[str],
    files: Iterable[str],
    inventories: Iterable[str],
    limit: Sequence[str] = (),
) -> list[FleetHost]:
    """Every host named, in order, each once (by name); none named is the default host."""
    found: list[FleetHost] = [FleetHost(u, u) for u in urls]
    found += [FleetHost("", None, c) for c in contexts]
    for f in files:
        found += hosts_file(f)
    for inv in inventories:
        found += inventory(inv, limit)
    unique: list[FleetHost] = []
    seen: set[tuple[str, str | None, str | None]] = set()
    for h in found:
        if (h.name, h.url, h.context) not in seen:
            seen.add((h.name, h.url, h.context))
            unique.append(h)
    return unique or [FleetHost("")]
