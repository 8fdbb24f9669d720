"""Package URLs (https://github.com/package-url/purl-spec), built per type."""

from __future__ import annotations

import re
from urllib.parse import quote


def _q(text: str) -> str:
    return quote(text, safe=".-_~")


def pep503(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def purl(
    type: str,
    name: str,
    version: str,
    namespace: str = "",
    qualifiers: dict[str, str] | None = None,
) -> str:
    if type == "pypi":
        name = pep503(name)
    ns = "/".join(_q(p) for p in namespace.split("/") if p)
    out = f"pkg:{type}/{ns + '/' if ns else ''}{_q(name)}"
    if version:
        out += f"@{_q(version)}"
    quals = {k: v for k, v in (qualifiers or {}).items() if v}
    if quals:
        out += "?" + "&".join(f"{k}={_q(v)}" for k, v in sorted(quals.items()))
    return out


def npm_purl(name: str, version: str) -> str:
    if name.startswith("@") and "/" in name:
        scope, _, bare = name.partition("/")
        return purl("npm", bare, version, scope)
    return purl("npm", name, version)


def golang_purl(module: str, version: str) -> str:
    ns, _, name = module.rpartition("/")
    return purl("golang", name, version, ns)
