"""OSV records: read from JSON/YAML files, directories and zips; severity from CVSS."""

from __future__ import annotations

import json
import os
import re
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dockward.errors import InputError
from dockward.model.finding import Severity
from dockward.sbom.purl import pep503

MAX_RECORD = 16 << 20
MAX_ZIP_MEMBERS = 2_000_000
RECORD_SUFFIXES = (".json", ".yaml", ".yml")
LABELS = {
    "LOW": "low",
    "MODERATE": "medium",
    "MEDIUM": "medium",
    "HIGH": "high",
    "CRITICAL": "critical",
}


def normalize_name(ecosystem: str, name: str) -> str:
    base = ecosystem.split(":", 1)[0]
    if base == "PyPI":
        return pep503(name)
    return name.strip()


def score_label(score: float) -> str:
    if score >= 9.0:
        return "critical"
    if score >= 7.0:
        return "high"
    if score >= 4.0:
        return "medium"
    if score > 0.0:
        return "low"
    return "info"


def cvss_score(kind: str, vector: str) -> float | None:
    """The base score of a CVSS v2/v3/v4 vector; None when the vector is malformed."""
    from cvss import CVSS2, CVSS3, CVSS4  # type: ignore[import-untyped]

    try:
        if kind == "CVSS_V3":
            return float(CVSS3(vector).scores()[0])
        if kind == "CVSS_V4":
            return float(CVSS4(vector).base_score)
        if kind == "CVSS_V2":
            return float(CVSS2(vector).scores()[0])
    except Exception:  # the library raises many types for bad vectors; a bad vector is no score
        return None
    return None


@dataclass(frozen=True, slots=True)
class Rating:
    severity: str  # critical..info, or "" when the advisory gives none
    score: float | None = None
    vector: str = ""


def rating(record: dict[str, Any], affected: dict[str, Any] | None = None) -> Rating:
    """Per-package severity first, then CVSS v3, v4, v2, then the advisory's own label."""
    for source in (affected or {}, record):
        entries = [s for s in source.get("severity") or [] if isinstance(s, dict)]
        for kind in ("CVSS_V3", "CVSS_V4", "CVSS_V2"):
            for s in entries:
                if s.get("type") == kind:
                    score = cvss_score(kind, str(s.get("score", "")))
                    if score is not None:
                        return Rating(score_label(score), score, str(s["score"]))
    for holder in (affected or {}, record):
        for key in ("database_specific", "ecosystem_specific"):
            spec = holder.get(key)
            if isinstance(spec, dict):
                label = str(spec.get("severity") or spec.get("urgency") or "").upper()
                if label in LABELS:
                    return Rating(LABELS[label])
    return Rating("")


def severity_of(label: str) -> Severity:
    """Unknown severity counts as medium: it fails `--fail-on medium`, not `--fail-on high`."""
    return Severity.parse(label) if label else Severity.MEDIUM


def _load(data: bytes, name: str) -> list[dict[str, Any]]:
    # yaml is imported on first use: a scan never reads OSV records, only the DB.
    import yaml

    # The C loader when libyaml is there: the PyPI advisory set parses 5x faster.
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        doc = json.loads(data) if name.endswith(".json") else yaml.load(data, Loader=loader)  # noqa: S506 - a safe loader
    except (ValueError, yaml.YAMLError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InputError(f"{name}: not a valid OSV record ({first})") from exc
    docs = doc if isinstance(doc, list) else [doc]
    out = [d for d in docs if isinstance(d, dict)]
    if len(out) != len(docs):
        raise InputError(f"{name}: not an OSV record (expected an object)")
    return out


def iter_records(path: str | Path) -> Iterator[tuple[str, dict[str, Any]]]:
    """(origin, record) for an OSV file, a directory tree of them, or a zip (`all.zip`)."""
    p = Path(path)
    if p.is_dir():
        for dirpath, dirnames, filenames in os.walk(p):
            dirnames.sort()
            for fn in sorted(filenames):
                if fn.endswith(RECORD_SUFFIXES) and not fn.startswith("."):
                    yield from iter_records(Path(dirpath) / fn)
        return
    if not p.exists():
        raise InputError(f"{path}: no such file or directory")
    if p.suffix == ".zip":
        yield from _zip_records(p)
        return
    if not p.name.endswith(RECORD_SUFFIXES):
        raise InputError(
            f"{path}: not an OSV file (expected .json, .yaml, .yml, .zip or a directory)"
        )
    if p.stat().st_size > MAX_RECORD:
        raise InputError(f"{path}: larger than {MAX_RECORD} bytes")
    for rec in _load(p.read_bytes(), str(p)):
        yield str(p), rec


def _zip_records(p: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    try:
        zf = zipfile.ZipFile(p)
    except (zipfile.BadZipFile, OSError) as exc:
        raise InputError(f"{p}: not a zip archive ({exc})") from exc
    with zf:
        infos = zf.infolist()
        if len(infos) > MAX_ZIP_MEMBERS:
            raise InputError(f"{p}: more than {MAX_ZIP_MEMBERS} members")
        for info in infos:
            if info.is_dir() or not info.filename.endswith(RECORD_SUFFIXES):
                continue
            if info.file_size > MAX_RECORD:
                raise InputError(f"{p}!{info.filename}: larger than {MAX_RECORD} bytes")
            try:
                data = zf.read(info)
            except (zipfile.BadZipFile, OSError, EOFError) as exc:
                raise InputError(f"{p}!{info.filename}: corrupt ({exc})") from exc
            for rec in _load(data, f"{p}!{info.filename}"):
                yield f"{p}!{info.filename}", rec


_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{1,127}")


def validate(record: dict[str, Any], origin: str) -> str | None:
    """Why a record cannot be used, or None. Structure is checked, not trusted."""
    rid = record.get("id")
    if not isinstance(rid, str) or not _ID.fullmatch(rid):
        return f"{origin}: missing or malformed id"
    affected = record.get("affected")
    if affected is None:
        return None if record.get("withdrawn") else f"{origin}: {rid} lists no affected packages"
    if not isinstance(affected, list):
        return f"{origin}: {rid}: affected is not a list"
    for a in affected:
        if not isinstance(a, dict) or not isinstance(a.get("package"), dict):
            return f"{origin}: {rid}: malformed affected entry"
        for r in a.get("ranges") or []:
            if not isinstance(r, dict) or not isinstance(r.get("events"), list):
                return f"{origin}: {rid}: malformed range"
    return None
