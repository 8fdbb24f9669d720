"""Compose files -> services with their ContainerSpec and source location.

Follows the Compose Specification the way `docker compose config` resolves a project: every file
interpolated (`.env` + environment), `extends` resolved, files merged in order, profiles applied.
"""

from __future__ import annotations

import functools
import json
import os
import posixpath
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from dockward.errors import InputError
from dockward.lint.interpolate import interpolate_tree, parse_env_file
from dockward.lint.source import read_text
from dockward.lint.yamlpos import Pos, PosDoc, load_yaml
from dockward.model.container import ContainerSpec
from dockward.model.finding import Location
from dockward.specs.compose import service_to_spec
from dockward.specs.tables import COMPOSE_KEYS
from dockward.specs.values import kv_pairs

MAX_EXTENDS_DEPTH = 10
MAX_INCLUDE_DEPTH = 10

_MAP_OR_LIST = ("environment", "labels", "sysctls", "extra_hosts", "annotations")
# Mapping keys whose entries are items a finding can point at one by one.
_ITEM_MAPPINGS = ("environment", "sysctls", "extra_hosts", "ulimits", "labels", "networks")
_OVERRIDE = ("command", "entrypoint")


@dataclass(frozen=True, slots=True)
class ComposeService:
    """One resolved service: its spec, where it is declared, and where each key was set."""

    name: str
    spec: ContainerSpec
    location: Location
    key_locations: Mapping[str, Location]
    config: Mapping[str, Any]
    profiles: tuple[str, ...] = ()
    # Where each item of a list or mapping key is (by `item_id`), and how to build the spec of
    # a variant of the config (to judge one item alone).
    item_locations: Mapping[str, Mapping[str, Location]] = field(default_factory=dict)
    respec: Callable[[Mapping[str, Any]], ContainerSpec] | None = None

    def location_of(self, *keys: str) -> Location:
        """The location of the first of `keys` the service sets, else of the service itself."""
        for key in keys:
            loc = self.key_locations.get(key)
            if loc is not None:
                return loc
        return self.location

    def item_location(self, key: str, item: Any) -> Location:
        """Where one item of a list or mapping key is, else where the key is."""
        found = self.item_locations.get(key, {}).get(item_id(key, item))
        return found or self.location_of(key)


@dataclass(frozen=True, slots=True)
class ComposeProject:
    name: str
    files: tuple[str, ...]
    services: tuple[ComposeService, ...]
    warnings: tuple[str, ...] = ()
    inactive: tuple[str, ...] = ()  # services left out by profiles


@dataclass(slots=True)
class _Service:
    config: dict[str, Any]
    where: Location
    keys: dict[str, Location] = field(default_factory=dict)
    items: dict[str, dict[str, Location]] = field(default_factory=dict)

    def merge(self, other: _Service, config: Mapping[str, Any]) -> None:
        """Merge `config` (of `other`) over this service, keys and item locations too."""
        for k, v in config.items():
            if k == "extends":
                continue
            self.config[k] = merge_values(k, self.config.get(k), v)
            self.keys[k] = other.keys.get(k, other.where)
            self.items.setdefault(k, {}).update(other.items.get(k, {}))


def item_id(key: str, item: Any) -> str:
    """What identifies one item of a list or mapping key across merged files: the variable of an
    `environment` (`labels`, `sysctls`, `extra_hosts`) entry, else the item itself."""
    if key in _MAP_OR_LIST:
        sep = ":" if key == "extra_hosts" else "="
        return str(item).partition(sep)[0].strip()
    if key in ("networks", "ulimits"):
        return str(item)  # the item's name, a mapping key (or a `networks` list entry)
    return json.dumps(item, sort_keys=True, default=str)


def _item_locations(
    f: _File, name: str, config: Mapping[str, Any]
) -> dict[str, dict[str, Location]]:
    """The line and column of every item of the service's list and mapping keys."""
    out: dict[str, dict[str, Location]] = {}
    for key, value in config.items():
        base = ("services", name, str(key))
        if isinstance(value, list):
            out[str(key)] = {
                item_id(str(key), item): _loc(f.path, f.doc.pos((*base, i)))
                for i, item in enumerate(value)
                if f.doc.pos((*base, i)) is not None
            }
        elif isinstance(value, dict) and key in _ITEM_MAPPINGS:
            out[str(key)] = {
                str(k): _loc(f.path, f.doc.pos((*base, str(k))))
                for k in value
                if f.doc.pos((*base, str(k))) is not None
            }
    return out


@dataclass(slots=True)
class _File:
    path: str
    doc: PosDoc
    value: dict[str, Any]


def _loc(path: str, pos: Pos | None) -> Location:
    if pos is None:
        return Location(path, 1, 1)
    return Location(path, pos.line, pos.column, pos.end_line, pos.end_column)


def _merge_by(items: list[Any], key: Callable[[Any], str]) -> list[Any]:
    out: dict[str, Any] = {}
    for item in items:
        out[key(item)] = item
    return list(out.values())


def _mount_target(item: Any) -> str:
    if isinstance(item, dict):
        return str(item.get("target") or "")
    parts = str(item).split(":")
    return parts[1] if len(parts) > 1 else parts[0]


def _secret_key(item: Any) -> str:
    return str(item.get("source") or "") if isinstance(item, dict) else str(item)


def _dedupe(items: list[Any]) -> list[Any]:
    seen: list[Any] = []
    for item in items:
        if item not in seen:
            seen.append(item)
    return seen


def merge_values(key: str, base: Any, over: Any) -> Any:
    """Compose merge rules for one key of a service."""
    if over is None:
        return base
    if base is None or key in _OVERRIDE:
        return over
    if key in _MAP_OR_LIST:
        merged = kv_pairs(base, key, "=" if key != "extra_hosts" else ":")
        merged.update(kv_pairs(over, key, "=" if key != "extra_hosts" else ":"))
        return merged
    if isinstance(base, dict) and isinstance(over, dict):
        out = dict(base)
        for k, v in over.items():
            out[k] = merge_values(str(k), out.get(k), v) if k != "test" else v
        return out
    if isinstance(base, list) and isinstance(over, list):
        if key in ("volumes", "devices", "tmpfs"):
            return _merge_by(base + over, _mount_target)
        if key in ("secrets", "configs"):
            return _merge_by(base + over, _secret_key)
        return _dedupe(base + over)
    return over


class _Loader:
    def __init__(
        self,
        env: Mapping[str, str],
        max_bytes: int,
        read: Callable[[str], str] | None,
    ) -> None:
        self.env = env
        self.max_bytes = max_bytes
        self.read = read or (lambda p: read_text(p, max_bytes))
        self.warnings: list[str] = []
        self.files: dict[str, _File] = {}
        self._missing: set[str] = set()

    def _on_missing(self, name: str) -> None:
        if name not in self._missing:
            self._missing.add(name)
            self.warnings.append(f"variable {name} is not set; defaulting to an empty string")

    def load(self, path: str, text: str | None = None) -> _File:
        if path in self.files:
            return self.files[path]
        raw = text if text is not None else self.read(path)
        doc = load_yaml(raw, path)
        if doc.value is None:
            doc.value = {}
        if not isinstance(doc.value, dict):
            raise InputError(f"{path}:1: a compose file must be a mapping")
        try:
            value = interpolate_tree(doc.value, self.env, self._on_missing)
        except InputError as exc:
            raise InputError(f"{path}: {exc}") from exc
        services = value.get("services")
        if services is not None and not isinstance(services, dict):
            raise InputError(f"{_where(path, doc, ('services',))}: `services` must be a mapping")
        loaded = _File(path, doc, value)
        self.files[path] = loaded
        return loaded

    def service(self, f: _File, name: str, chain: tuple[tuple[str, str], ...] = ()) -> _Service:
        """A service of one file with its `extends` resolved."""
        if (f.path, name) in chain or len(chain) > MAX_EXTENDS_DEPTH:
            cycle = " -> ".join(f"{p}:{n}" for p, n in (*chain, (f.path, name)))
            raise InputError(f"extends cycle or too deep: {cycle}")
        services = f.value.get("services") or {}
        config = services.get(name)
        if config is None:
            raise InputError(f"{f.path}: no service {name!r}")
        if not isinstance(config, dict):
            raise InputError(
                f"{_where(f.path, f.doc, ('services', name))}: service must be a mapping"
            )
        keys = {str(k): _loc(f.path, f.doc.pos(("services", name, str(k)))) for k in config}
        where = _loc(f.path, f.doc.pos(("services", name)))
        own = _Service(dict(config), where, keys, _item_locations(f, name, config))
        ext = config.get("extends")
        if ext is None:
            return own
        if isinstance(ext, str):
            ext = {"service": ext}
        if not isinstance(ext, dict) or not ext.get("service"):
            raise InputError(
                f"{own.keys['extends'].path}:{own.keys['extends'].line}: `extends` needs a service"
            )
        other = f
        if ext.get("file"):
            target = posixpath.join(posixpath.dirname(f.path), str(ext["file"]))
            other = self.load(target)
        base = self.service(other, str(ext["service"]), (*chain, (f.path, name)))
        merged = _Service(
            dict(base.config),
            own.where,
            dict(base.keys),
            {k: dict(v) for k, v in base.items.items()},
        )
        merged.merge(own, config)
        merged.config.pop("extends", None)
        return merged


def _where(path: str, doc: PosDoc, key: tuple[str | int, ...]) -> str:
    pos = doc.pos(key)
    return f"{path}:{pos.line}:{pos.column}" if pos else path


def project_env(
    project_dir: str, env: Mapping[str, str] | None, read: Callable[[str], str]
) -> dict[str, str]:
    """`.env` in the project directory, overridden by the process environment."""
    out: dict[str, str] = {}
    dotenv = posixpath.join(project_dir, ".env")
    if os.path.isfile(dotenv):
        out.update(parse_env_file(read(dotenv)))
    out.update(os.environ if env is None else env)
    return out


def load_compose(
    paths: Sequence[str],
    env: Mapping[str, str] | None = None,
    profiles: Iterable[str] | None = None,
    *,
    texts: Mapping[str, str] | None = None,
    project_name: str | None = None,
    max_bytes: int = 4 * 1024 * 1024,
    project_directory: str | None = None,
    _chain: tuple[str, ...] = (),
) -> ComposeProject:
    """Load and resolve a Compose project from one or more files (merged in order, like `-f`).

    `env`: variables for interpolation (default: `os.environ`), over the project's `.env`.
    `profiles`: active profiles; `None` keeps every service (a linter should see them all),
    otherwise services with profiles are kept only when one of them is active.
    `texts`: file contents by path, instead of reading them (for `--stdin`).
    `project_directory`: where relative paths resolve (default: the first file's directory).
    `include:` entries are followed (recursively, as `docker compose` does): each included
    project resolves its own paths and `.env`, and its services join this project; a service
    defined on both sides is an error.
    Raises InputError (one line, with file:line) on a malformed project.
    """
    if not paths:
        raise InputError("no compose file given")
    texts = texts or {}

    def read(p: str) -> str:
        return texts[p] if p in texts else read_text(p, max_bytes)

    project_dir = project_directory or (
        posixpath.dirname(posixpath.abspath(paths[0])) if paths[0] != "-" else os.getcwd()
    )
    loader = _Loader(project_env(project_dir, env, read), max_bytes, read)
    included: list[ComposeProject] = []
    merged: dict[str, _Service] = {}
    top: dict[str, dict[str, Any]] = {"volumes": {}, "secrets": {}, "networks": {}}
    name = project_name
    for path in paths:
        f = loader.load(path, texts.get(path))
        name = name or (str(f.value["name"]) if f.value.get("name") else None)
        for section in ("volumes", "secrets", "networks"):
            block = f.value.get(section)
            if isinstance(block, dict):
                top[section].update({str(k): v for k, v in block.items()})
        if f.value.get("include"):
            for inc in _include_entries(f, path, project_dir):
                included.append(
                    _load_include(inc, env, profiles, texts, max_bytes, (*_chain, *paths))
                )
        for sname in f.value.get("services") or {}:
            svc = loader.service(f, str(sname))
            prev = merged.get(str(sname))
            if prev is None:
                merged[str(sname)] = svc
                continue
            prev.merge(svc, svc.config)
    active = None if profiles is None else set(profiles)
    services: list[ComposeService] = []
    inactive: list[str] = []
    for sname, svc in merged.items():
        svc_profiles = tuple(str(p) for p in (svc.config.get("profiles") or ()))
        if active is not None and svc_profiles and not active & set(svc_profiles):
            inactive.append(sname)
            continue
        for key, loc in svc.keys.items():
            if key not in COMPOSE_KEYS and not key.startswith("x-"):
                loader.warnings.append(
                    f"{loc.path}:{loc.line}:{loc.column}: unknown key {key!r} in service {sname}"
                )
        env_values = _env_files(svc, project_dir, read, loader.warnings)
        respec = functools.partial(
            service_to_spec,
            sname,
            project_dir=project_dir,
            source=svc.where,
            volumes=top["volumes"],
            secrets=top["secrets"],
            networks=top["networks"],
            env_files=env_values,
        )
        try:
            spec = respec(svc.config)
        except InputError as exc:
            raise InputError(f"{svc.where.path}:{svc.where.line}: {exc}") from exc
        services.append(
            ComposeService(
                sname,
                spec,
                svc.where,
                dict(svc.keys),
                svc.config,
                svc_profiles,
                svc.items,
                respec,
            )
        )
    own = {s.name: s for s in services}
    for sub in included:
        for s in sub.services:
            if s.name in own:
                first = own[s.name].location
                raise InputError(
                    f"{s.location.path}:{s.location.line}: service {s.name!r} is also defined in "
                    f"{first.path}:{first.line} (an included project may not redefine one)"
                )
            own[s.name] = s
            services.append(s)
        loader.warnings.extend(sub.warnings)
        inactive.extend(sub.inactive)
    return ComposeProject(
        name or posixpath.basename(project_dir),
        tuple(paths) + tuple(p for sub in included for p in sub.files),
        tuple(services),
        tuple(loader.warnings),
        tuple(inactive),
    )


@dataclass(frozen=True, slots=True)
class _Include:
    paths: tuple[str, ...]
    project_directory: str | None
    env_files: tuple[str, ...]
    where: str


def _include_entries(f: Any, path: str, project_dir: str) -> list[_Include]:
    """The `include:` list: short form (a path) or long form (path, project_directory,
    env_file), with paths relative to the including project's directory."""
    raw = f.value.get("include")
    if not isinstance(raw, list):
        raise InputError(f"{_where(path, f.doc, ('include',))}: `include` must be a list")
    out: list[_Include] = []
    for i, item in enumerate(raw):
        where = _where(path, f.doc, ("include", i))
        if isinstance(item, str):
            item = {"path": item}
        if not isinstance(item, dict) or not item.get("path"):
            raise InputError(f"{where}: an include entry needs a path")
        unknown = set(item) - {"path", "project_directory", "env_file"}
        if unknown:
            raise InputError(f"{where}: unknown include key {sorted(unknown)[0]!r}")
        paths = item["path"] if isinstance(item["path"], list) else [item["path"]]
        env_files = item.get("env_file") or []
        env_files = env_files if isinstance(env_files, list) else [env_files]
        pdir = item.get("project_directory")
        out.append(
            _Include(
                tuple(posixpath.normpath(posixpath.join(project_dir, str(p))) for p in paths),
                posixpath.normpath(posixpath.join(project_dir, str(pdir))) if pdir else None,
                tuple(posixpath.join(project_dir, str(e)) for e in env_files),
                where,
            )
        )
    return out


def _load_include(
    inc: _Include,
    env: Mapping[str, str] | None,
    profiles: Iterable[str] | None,
    texts: Mapping[str, str],
    max_bytes: int,
    chain: tuple[str, ...],
) -> ComposeProject:
    if len(chain) > MAX_INCLUDE_DEPTH:
        raise InputError(f"{inc.where}: includes nested more than {MAX_INCLUDE_DEPTH} deep")
    seen = {posixpath.abspath(p) for p in chain if p != "-"}
    for p in inc.paths:
        if posixpath.abspath(p) in seen:
            raise InputError(f"{inc.where}: include cycle through {p}")
    sub_env: dict[str, str] | None = None
    if inc.env_files:
        # The included project's variables: its env files, then the environment over them.
        sub_env = {}
        for e in inc.env_files:
            try:
                sub_env.update(parse_env_file(read_text(e, max_bytes)))
            except InputError as exc:
                raise InputError(f"{inc.where}: {exc}") from exc
        sub_env.update(os.environ if env is None else env)
    try:
        return load_compose(
            inc.paths,
            env if sub_env is None else sub_env,
            profiles,
            texts=texts,
            max_bytes=max_bytes,
            project_directory=inc.project_directory,
            _chain=chain,
        )
    except InputError as exc:
        raise InputError(f"{inc.where}: included: {exc}") from exc


def _env_files(
    svc: _Service, project_dir: str, read: Callable[[str], str], warnings: list[str]
) -> dict[str, str]:
    value = svc.config.get("env_file")
    items = value if isinstance(value, list) else ([value] if value else [])
    out: dict[str, str] = {}
    for item in items:
        path, required = (
            (item, True)
            if not isinstance(item, dict)
            else (item.get("path"), item.get("required", True))
        )
        full = posixpath.join(project_dir, str(path))
        try:
            out.update(parse_env_file(read(full)))
        except InputError as exc:
            if required is not False:
                loc = svc.keys.get("env_file", svc.where)
                warnings.append(f"{loc.path}:{loc.line}: env_file not read: {exc}")
    return out
