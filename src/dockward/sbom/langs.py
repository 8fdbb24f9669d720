"""Language packages: Python (dist-info, egg-info), npm (node_modules) and Java archives."""

from __future__ import annotations

import io
import json
import re
import zipfile
from email.parser import HeaderParser

from dockward.image.fs import ImageFS
from dockward.sbom.model import Package
from dockward.sbom.purl import npm_purl, pep503, purl

MAX_NESTING = 3
MAX_JAR_MEMBERS = 20_000


def _headers(data: bytes) -> dict[str, str]:
    msg = HeaderParser().parsestr(data.decode("utf-8", "replace"), headersonly=True)
    return {k: str(v) for k, v in msg.items()}


def catalog_python(fs: ImageFS, dpkg_owned: set[str]) -> tuple[list[Package], list[str]]:
    out: list[Package] = []
    notes: list[str] = []
    seen: set[tuple[str, str, str]] = set()
    for path, (layer, data) in sorted(fs.probed("python").items()):
        meta_dir = path.rsplit("/", 1)[0] if path.endswith(("/METADATA", "/PKG-INFO")) else path
        # A Python package installed by dpkg (python3-xyz) is the OS package: not counted twice.
        if meta_dir in dpkg_owned or path in dpkg_owned:
            continue
        if data is None:
            notes.append(f"/{path}: too large to read")
            continue
        h = _headers(data)
        name, version = h.get("Name", "").strip(), h.get("Version", "").strip()
        if not name or not version:
            continue
        site = meta_dir.rsplit("/", 1)[0]
        key = (site, pep503(name), version)
        if key in seen:
            continue
        seen.add(key)
        lic = h.get("License-Expression") or h.get("License") or ""
        out.append(
            Package(
                name=name,
                version=version,
                type="pypi",
                purl=purl("pypi", name, version),
                ecosystem="PyPI",
                cataloger="python",
                layer=fs.layers[layer].digest,
                locations=(f"/{path}",),
                licenses=(lic.strip(),) if lic.strip() and len(lic) < 200 else (),
            )
        )
    return out, notes


def catalog_npm(fs: ImageFS, dpkg_owned: set[str]) -> tuple[list[Package], list[str]]:
    out: list[Package] = []
    notes: list[str] = []
    for path, (layer, data) in sorted(fs.probed("npm").items()):
        if path in dpkg_owned:
            continue  # Debian's node-* packages: the OS package, not counted twice
        if data is None:
            notes.append(f"/{path}: too large to read")
            continue
        try:
            doc = json.loads(data)
        except (ValueError, UnicodeDecodeError):
            notes.append(f"/{path}: not JSON")
            continue
        if not isinstance(doc, dict):
            continue
        name, version = doc.get("name"), doc.get("version")
        if not isinstance(name, str) or not isinstance(version, str) or not name or not version:
            continue
        lic = doc.get("license")
        licenses = (lic,) if isinstance(lic, str) else ()
        out.append(
            Package(
                name=name,
                version=version,
                type="npm",
                purl=npm_purl(name, version),
                ecosystem="npm",
                cataloger="npm",
                layer=fs.layers[layer].digest,
                locations=(f"/{path}",),
                licenses=licenses,
            )
        )
    return out, notes


def _props(text: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith(("#", "!")):
            key, sep, value = line.partition("=")
            if sep:
                out[key.strip()] = value.strip()
    return out


def _jar_packages(data: bytes, name: str, depth: int) -> list[tuple[str, str, str]]:
    """(group:artifact, version, where) for a jar and the jars nested in it."""
    found: list[tuple[str, str, str]] = []
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        infos = zf.infolist()
        if len(infos) > MAX_JAR_MEMBERS:
            raise zipfile.BadZipFile("too many members")
        for info in infos:
            if info.filename.endswith("/pom.properties") and info.file_size < 1 << 16:
                p = _props(zf.read(info).decode("utf-8", "replace"))
                if p.get("groupId") and p.get("artifactId") and p.get("version"):
                    found.append((f"{p['groupId']}:{p['artifactId']}", p["version"], name))
        if not found:
            try:
                manifest = zf.read("META-INF/MANIFEST.MF").decode("utf-8", "replace")
            except KeyError:
                manifest = ""
            m = dict(
                (k.strip(), v.strip())
                for k, _, v in (ln.partition(":") for ln in manifest.splitlines())
                if v
            )
            version = m.get("Implementation-Version") or m.get("Bundle-Version", "")
            group = m.get("Implementation-Vendor-Id", "")
            artifact = m.get("Implementation-Title") or m.get("Bundle-SymbolicName", "")
            if not artifact or not version:
                fm = re.fullmatch(r"(.+?)-(\d[\w.\-]*)\.[jwe]ar", name.rsplit("/", 1)[-1])
                if fm:
                    artifact, version = fm.group(1), fm.group(2)
            if artifact and version:
                found.append((f"{group}:{artifact}" if group else artifact, version, name))
        if depth < MAX_NESTING:
            for info in infos:
                if info.filename.endswith((".jar", ".war")) and info.file_size < 64 << 20:
                    try:
                        found.extend(
                            _jar_packages(zf.read(info), f"{name}!/{info.filename}", depth + 1)
                        )
                    except (zipfile.BadZipFile, ValueError):
                        continue
    return found


def catalog_java(fs: ImageFS) -> tuple[list[Package], list[str]]:
    out: list[Package] = []
    notes: list[str] = []
    for path, (layer, data) in sorted(fs.probed("java").items()):
        if data is None:
            notes.append(f"/{path}: archive too large to read")
            continue
        try:
            found = _jar_packages(data, f"/{path}", 0)
        except (zipfile.BadZipFile, ValueError, RuntimeError) as exc:
            notes.append(f"/{path}: unreadable archive ({exc})")
            continue
        for ga, version, where in found:
            group, _, artifact = ga.rpartition(":")
            out.append(
                Package(
                    name=ga,
                    version=version,
                    type="maven",
                    purl=purl("maven", artifact, version, group),
                    ecosystem="Maven",
                    cataloger="java",
                    layer=fs.layers[layer].digest,
                    locations=(where,),
                )
            )
    return out, notes
