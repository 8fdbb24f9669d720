"""Ignore files (id, reason, expiry) and OpenVEX statements that mark findings not affected."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dockward.errors import InputError
from dockward.vulndb.match import Match


@dataclass(frozen=True, slots=True)
class IgnoreEntry:
    id: str
    reason: str
    expires: dt.date | None = None
    package: str = ""


@dataclass(frozen=True, slots=True)
class VexStatement:
    vulnerability: str
    aliases: tuple[str, ...]
    products: tuple[str, ...]
    status: str
    justification: str


def _date(value: Any, where: str) -> dt.date | None:
    if value in (None, ""):
        return None
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError as exc:
        raise InputError(f"{where}: expires must be YYYY-MM-DD, got {value!r}") from exc


def load_ignore_file(path: str | Path) -> list[IgnoreEntry]:
    """YAML: `ignore: [{id: CVE-..., reason: ..., expires: 2026-12-31, package: name}]`.

    A reason is required: an ignore nobody can explain is how risk gets forgotten.
    """
    import yaml  # only when an ignore file is given

    p = Path(path)
    try:
        doc = yaml.safe_load(p.read_text())
    except OSError as exc:
        raise InputError(f"cannot read ignore file {p}: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        raise InputError(f"{p}: not YAML ({str(exc).splitlines()[0]})") from exc
    items = doc.get("ignore") if isinstance(doc, dict) else None
    if not isinstance(items, list):
        raise InputError(f"{p}: expected a top-level `ignore:` list")
    out = []
    for i, item in enumerate(items, 1):
        where = f"{p}: entry {i}"
        if not isinstance(item, dict) or not isinstance(item.get("id"), str) or not item["id"]:
            raise InputError(f"{where}: needs an `id`")
        if not str(item.get("reason") or "").strip():
            raise InputError(f"{where} ({item['id']}): needs a `reason`")
        unknown = set(item) - {"id", "reason", "expires", "package"}
        if unknown:
            raise InputError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}")
        out.append(
            IgnoreEntry(
                item["id"],
                str(item["reason"]).strip(),
                _date(item.get("expires"), where),
                str(item.get("package") or ""),
            )
        )
    return out


def load_openvex(path: str | Path) -> list[VexStatement]:
    p = Path(path)
    try:
        doc = json.loads(p.read_text())
    except OSError as exc:
        raise InputError(f"cannot read VEX file {p}: {exc.strerror}") from exc
    except ValueError as exc:
        raise InputError(f"{p}: not JSON ({exc})") from exc
    if not isinstance(doc, dict) or not str(doc.get("@context", "")).startswith(
        "https://openvex.dev/ns"
    ):
        raise InputError(f"{p}: not an OpenVEX document (no openvex @context)")
    out = []
    for i, st in enumerate(doc.get("statements") or [], 1):
        if not isinstance(st, dict) or not isinstance(st.get("vulnerability"), dict | str):
            raise InputError(f"{p}: statement {i} is malformed")
        vuln = st["vulnerability"]
        name = vuln if isinstance(vuln, str) else str(vuln.get("name") or vuln.get("@id") or "")
        aliases = (
            tuple(str(a) for a in (vuln.get("aliases") or [])) if isinstance(vuln, dict) else ()
        )
        products = []
        for prod in st.get("products") or []:
            if isinstance(prod, str):
                products.append(prod)
            elif isinstance(prod, dict):
                products.append(str(prod.get("@id") or ""))
                products.extend(
                    str(s.get("@id") or "")
                    for s in prod.get("subcomponents") or []
                    if isinstance(s, dict)
                )
        status = str(st.get("status") or "")
        if status not in ("not_affected", "affected", "fixed", "under_investigation"):
            raise InputError(f"{p}: statement {i} has unknown status {status!r}")
        just = str(
            st.get("justification")
            or st.get("impact_statement")
            or st.get("status_notes")
            or status
        )
        out.append(VexStatement(name, aliases, tuple(x for x in products if x), status, just))
    return out


def _bare_purl(purl: str) -> str:
    return purl.split("?", 1)[0].split("#", 1)[0]


def _purl_matches(product: str, purl: str) -> bool:
    want, have = _bare_purl(product), _bare_purl(purl)
    return want == have or ("@" not in want and have.split("@", 1)[0] == want)


@dataclass(frozen=True, slots=True)
class Waivers:
    ignores: tuple[IgnoreEntry, ...] = ()
    vex: tuple[VexStatement, ...] = ()

    def reason_for(
        self, m: Match, image_names: tuple[str, ...], today: dt.date
    ) -> tuple[str, list[str]]:
        """(why this finding is waived or "", warnings)."""
        ids = {m.vuln_id, *m.aliases}
        warnings: list[str] = []
        for ig in self.ignores:
            if ig.id in ids and (not ig.package or ig.package == m.package.name):
                if ig.expires is not None and ig.expires < today:
                    warnings.append(f"ignore for {ig.id} expired on {ig.expires}; not applied")
                    continue
                return f"ignored: {ig.reason}", warnings
        for st in self.vex:
            if st.status not in ("not_affected", "fixed"):
                continue
            if not ({st.vulnerability, *st.aliases} & ids):
                continue
            if not st.products or any(
                _purl_matches(prod, m.package.purl) or prod in image_names for prod in st.products
            ):
                return f"VEX {st.status}: {st.justification}", warnings
        return "", warnings

    def unused(self, seen: set[str]) -> list[str]:
        return [
            f"ignore entry {ig.id} matched no finding" for ig in self.ignores if ig.id not in seen
        ]
