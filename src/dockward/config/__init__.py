"""dockward.toml / [tool.dockward]: settings and waivers."""

from __future__ import annotations

import fnmatch
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dockward.errors import ConfigError


@dataclass(frozen=True, slots=True)
class Waiver:
    rule: str
    reason: str
    target: str = "*"
    host: str = "*"
    origin: str = ""

    def matches(self, rule_id: str, cis: str, target: str, host: str) -> bool:
        return (
            (self.rule in (rule_id, f"CIS {cis}", cis) or fnmatch.fnmatchcase(rule_id, self.rule))
            and fnmatch.fnmatchcase(target, self.target)
            and fnmatch.fnmatchcase(host or "", self.host)
        )


@dataclass(frozen=True, slots=True)
class Config:
    path: str = ""
    fail_on: str | None = None
    waivers: tuple[Waiver, ...] = ()
    docker_group_allow: tuple[str, ...] = ()
    raw: dict[str, Any] = field(default_factory=dict)


def _is_file(path: Path) -> bool:
    """A directory the user may not search (a service's cwd) holds no config for them."""
    try:
        return path.is_file()
    except OSError:
        return False


def find_config(start: Path | None = None) -> Path | None:
    here = (start or Path.cwd()).resolve()
    for d in (here, *here.parents):
        for name in ("dockward.toml", ".dockward.toml"):
            if _is_file(d / name):
                return d / name
        pp = d / "pyproject.toml"
        if _is_file(pp):
            try:
                if "dockward" in tomllib.loads(pp.read_text(encoding="utf-8")).get("tool", {}):
                    return pp
            except (tomllib.TOMLDecodeError, OSError):
                pass
    return None


def load_config(path: str | Path | None) -> Config:
    """Load a config file; `None` searches upwards from the working directory."""
    p = Path(path) if path else find_config()
    if p is None:
        return Config()
    try:
        data = tomllib.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError(f"{p}: config file not found") from exc
    except OSError as exc:
        raise ConfigError(f"{p}: cannot read: {exc.strerror}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{p}: invalid TOML: {exc}") from exc
    if p.name == "pyproject.toml":
        data = data.get("tool", {}).get("dockward", {})
    if not isinstance(data, dict):
        raise ConfigError(f"{p}: expected a table")
    waivers = []
    for i, w in enumerate(data.get("waivers", []) or []):
        if not isinstance(w, dict) or not isinstance(w.get("rule"), str):
            raise ConfigError(f"{p}: waivers[{i}] needs a `rule` string")
        if not str(w.get("reason") or "").strip():
            raise ConfigError(f"{p}: waivers[{i}] ({w['rule']}) needs a `reason`")
        waivers.append(
            Waiver(
                w["rule"],
                str(w["reason"]),
                str(w.get("target", "*")),
                str(w.get("host", "*")),
                f"{p}:waivers[{i}]",
            )
        )
    allow = data.get("docker_group_allow", []) or []
    fail_on = data.get("fail_on")
    return Config(
        path=str(p),
        fail_on=str(fail_on) if fail_on else None,
        waivers=tuple(waivers),
        docker_group_allow=tuple(str(a) for a in allow),
        raw=data,
    )
