"""CycloneDX 1.6 and SPDX 2.3 JSON, rendered from a scan/sbom Report's `extra`."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import uuid
from collections.abc import Mapping
from typing import Any

from dockward import __version__
from dockward.errors import UsageError
from dockward.model.finding import Report
from dockward.sbom.model import ImageExtra


def _parts(report: Report) -> tuple[dict[str, Any], list[dict[str, Any]], dict[str, Any] | None]:
    extra = _image_extra(report)
    if extra is None:
        raise UsageError(
            f"the {report.command} report carries no SBOM (use `dockward sbom` or scan)"
        )
    sbom = extra.sbom
    return dict(extra.image), list(sbom.get("packages") or []), sbom.get("distro")


def _image_extra(report: Report) -> ImageExtra | None:
    """The scan/sbom report's extra; a report read back from JSON is rebuilt from its dict."""
    extra = report.extra
    if isinstance(extra, ImageExtra):
        return extra
    data = extra.to_dict()
    if not isinstance(data.get("sbom"), dict):
        return None
    image = data.get("image")
    vulns = data.get("vulnerabilities")
    return ImageExtra(
        image if isinstance(image, dict) else {},
        data["sbom"],
        tuple(v for v in vulns if isinstance(v, dict)) if isinstance(vulns, list) else (),
    )


def _stamp(report: Report) -> str:
    return report.finished or dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def render_cyclonedx(report: Report) -> str:
    image, packages, distro = _parts(report)

    # One component per package copy: the same purl at two locations (a Go module in two
    # binaries) is two components, each affected on its own.
    def key(p: Mapping[str, Any]) -> tuple[str, tuple[str, ...]]:
        return str(p["purl"]), tuple(p.get("locations") or ())

    ref_of = {key(p): f"pkg-{i}" for i, p in enumerate(packages)}
    components: list[dict[str, Any]] = []
    if distro:
        components.append(
            {
                "type": "operating-system",
                "bom-ref": "os",
                "name": distro["id"],
                "version": distro["version"],
                "description": distro.get("name", ""),
            }
        )
    for p in packages:
        comp: dict[str, Any] = {
            "type": "library",
            "bom-ref": ref_of[key(p)],
            "name": p["name"],
            "version": p["version"],
            "purl": p["purl"],
            "properties": [
                {"name": "dockward:cataloger", "value": p["cataloger"]},
                {"name": "dockward:layer", "value": p.get("layer", "")},
                *({"name": "dockward:location", "value": loc} for loc in p.get("locations", [])),
            ],
        }
        if p.get("licenses"):
            comp["licenses"] = [{"license": {"name": lic}} for lic in p["licenses"]]
        components.append(comp)
    doc: dict[str, Any] = {
        "bomFormat": "CycloneDX",
        "specVersion": "1.6",
        "serialNumber": f"urn:uuid:{uuid.uuid4()}",
        "version": 1,
        "metadata": {
            "timestamp": _stamp(report),
            "tools": {
                "components": [{"type": "application", "name": "dockward", "version": __version__}]
            },
            "component": {
                "type": "container",
                "bom-ref": "image",
                "name": image.get("name", "image"),
                "version": image.get("id", ""),
            },
        },
        "components": components,
        "dependencies": [{"ref": "image", "dependsOn": [c["bom-ref"] for c in components]}],
    }
    extra = _image_extra(report)
    vulns = extra.vulnerabilities if extra is not None else ()
    if vulns:
        by_id: dict[str, dict[str, Any]] = {}
        for v in vulns:
            ref = ref_of.get(key(v), "image")
            entry = by_id.setdefault(
                v["id"],
                {
                    "id": v["id"],
                    "ratings": [{"severity": v["severity"], "method": "other"}],
                    "affects": [],
                    **({"recommendation": f"upgrade to {v['fixed']}"} if v.get("fixed") else {}),
                },
            )
            if {"ref": ref} not in entry["affects"]:
                entry["affects"].append({"ref": ref})
        doc["vulnerabilities"] = list(by_id.values())
    return json.dumps(doc, indent=2) + "\n"


def _spdx_id(text: str) -> str:
    return "SPDXRef-" + "".join(c if c.isalnum() or c in ".-" else "-" for c in text)[:200]


def render_spdx(report: Report) -> str:
    image, packages, _ = _parts(report)
    name = str(image.get("name", "image"))
    root = "SPDXRef-Image"
    pkgs: list[dict[str, Any]] = [
        {
            "SPDXID": root,
            "name": name,
            "versionInfo": str(image.get("id", "")),
            "downloadLocation": "NOASSERTION",
            "primaryPackagePurpose": "CONTAINER",
            "filesAnalyzed": False,
        }
    ]
    rels = [
        {
            "spdxElementId": "SPDXRef-DOCUMENT",
            "relationshipType": "DESCRIBES",
            "relatedSpdxElement": root,
        }
    ]
    for i, p in enumerate(packages):
        sid = _spdx_id(f"Package-{i}-{p['type']}-{p['name']}")
        pkgs.append(
            {
                "SPDXID": sid,
                "name": p["name"],
                "versionInfo": p["version"],
                "downloadLocation": "NOASSERTION",
                "filesAnalyzed": False,
                "licenseConcluded": "NOASSERTION",
                "licenseDeclared": "NOASSERTION",
                "copyrightText": "NOASSERTION",
                "sourceInfo": f"{p['cataloger']}: {', '.join(p.get('locations', []))}"[:500],
                "externalRefs": [
                    {
                        "referenceCategory": "PACKAGE-MANAGER",
                        "referenceType": "purl",
                        "referenceLocator": p["purl"],
                    }
                ],
            }
        )
        rels.append(
            {"spdxElementId": root, "relationshipType": "CONTAINS", "relatedSpdxElement": sid}
        )
    digest = hashlib.sha256(json.dumps(packages, sort_keys=True).encode()).hexdigest()[:16]
    doc = {
        "spdxVersion": "SPDX-2.3",
        "dataLicense": "CC0-1.0",
        "SPDXID": "SPDXRef-DOCUMENT",
        "name": name,
        "documentNamespace": f"https://dockward.dev/spdx/{_spdx_id(name)[8:]}-{digest}-{uuid.uuid4()}",
        "creationInfo": {
            "created": _stamp(report).replace("+00:00", "Z"),
            "creators": [f"Tool: dockward-{__version__}"],
        },
        "packages": pkgs,
        "relationships": rels,
    }
    return json.dumps(doc, indent=2) + "\n"
