"""Scan results attached to the image in its registry as an OCI artifact (SBOM + vulnerability
report), found again through the referrers API or, on registries without it, the referrers tag
scheme (`sha256-<hex>`, an index of the artifacts), so a host that never scanned the image can
answer "scanned, and how bad"."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from dockward.model.finding import Severity

ARTIFACT_TYPE = "application/vnd.dockward.scan.v1+json"
VULN_MEDIA = "application/vnd.dockward.vulnerabilities.v1+json"
SBOM_MEDIA = "application/vnd.cyclonedx+json"
EMPTY_MEDIA = "application/vnd.oci.empty.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
WORST = "dev.dockward.scan.worst"
DB_UPDATED = "dev.dockward.scan.db-updated"
SCANNED = "dev.dockward.scan.scanned"
MAX_ATTACHMENT_BYTES = 64 << 20


def _canonical(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc, separators=(",", ":")).encode()


def fallback_tag(digest: str) -> str:
    algorithm, _, hexpart = digest.partition(":")
    return f"{algorithm}-{hexpart}"[:128]


def attach_scan(client: Any, ref: Any, subject: Any, scanned: Any, sbom_json: str) -> str:
    """Push the artifact for SUBJECT (a registry Manifest) and, without a referrers API, add it
    to the fallback index. Returns the artifact's digest."""
    import datetime as dt

    from dockward.registry import NotFound

    # the gate asks about vulnerabilities: image checks (root user, ...) are not counted
    worst = max(
        (
            r.severity
            for r in scanned.report.results
            if r.failing and r.rule.kind == "vulnerability"
        ),
        default=None,
    )
    vulns = json.dumps(
        {
            "image": scanned.image,
            "manifest_digest": subject.digest,
            "worst": worst.label if worst is not None else "none",
            "db_updated": scanned.db_updated,
            "vulnerabilities": scanned.report.extra.to_dict().get("vulnerabilities", []),
        },
        sort_keys=True,
    ).encode()
    sbom = sbom_json.encode()
    empty = b"{}"
    layers = []
    for data, media in ((vulns, VULN_MEDIA), (sbom, SBOM_MEDIA)):
        layers.append(
            {"mediaType": media, "digest": client.push_blob(ref, data), "size": len(data)}
        )
    annotations = {
        WORST: worst.label if worst is not None else "none",
        DB_UPDATED: scanned.db_updated,
        SCANNED: dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": ARTIFACT_TYPE,
        "config": {"mediaType": EMPTY_MEDIA, "digest": client.push_blob(ref, empty), "size": 2},
        "layers": layers,
        "subject": {
            "mediaType": subject.media_type,
            "digest": subject.digest,
            "size": len(subject.body),
        },
        "annotations": annotations,
    }
    body = _canonical(manifest)
    digest = "sha256:" + hashlib.sha256(body).hexdigest()
    client.push_manifest(ref, digest, manifest)
    if client.referrers(ref, subject.digest) is not None:
        return digest
    tag = fallback_tag(subject.digest)
    try:
        index = client.manifest(ref, tag).doc
    except NotFound:
        index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []}
    entry = {
        "mediaType": OCI_MANIFEST,
        "digest": digest,
        "size": len(body),
        "artifactType": ARTIFACT_TYPE,
        "annotations": annotations,
    }
    index["manifests"] = [
        m for m in index.get("manifests") or [] if isinstance(m, dict) and m.get("digest") != digest
    ] + [entry]
    client.push_manifest(ref, tag, index)
    return digest


def attached_worst(client: Any, ref: Any, digest: str) -> tuple[Severity | None, str]:
    """The worst severity the newest dockward artifact attached to DIGEST records (INFO for none
    found by the scan), and its scan time; (None, "") when nothing is attached."""
    from dockward.registry import NotFound

    found = client.referrers(ref, digest)
    if found is None:
        try:
            found = client.manifest(ref, fallback_tag(digest)).doc.get("manifests") or []
        except NotFound:
            return None, ""
    ours = [
        m
        for m in found
        if isinstance(m, dict)
        and m.get("artifactType") == ARTIFACT_TYPE
        and isinstance(m.get("annotations"), dict)
    ]
    if not ours:
        return None, ""
    newest = max(ours, key=lambda m: str(m["annotations"].get(SCANNED, "")))
    label = str(newest["annotations"].get(WORST, ""))
    if label == "none":
        return Severity.INFO, str(newest["annotations"].get(SCANNED, ""))
    try:
        return Severity.parse(label), str(newest["annotations"].get(SCANNED, ""))
    except ValueError:
        return None, ""


class RegistryAttachmentSource:
    """A VulnerabilitySource for the policy gate: the scan attached in the image's registry.
    Anyone who may push to the repository may attach: trust it only where pushes are trusted."""

    def __init__(self, client: Any) -> None:
        self.client = client

    def worst_severity(self, image: str, digest: str) -> Severity | None:
        from dockward.errors import DockwardError
        from dockward.registry import parse_reference

        if not digest.startswith("sha256:"):
            return None
        try:
            ref = parse_reference(image)
            worst, _ = attached_worst(self.client, ref, digest)
        except (DockwardError, ValueError):
            return None
        return worst


class FirstKnown:
    """Ask several sources in order; the first that knows the image answers."""

    def __init__(self, *sources: Any) -> None:
        self.sources = sources

    def worst_severity(self, image: str, digest: str) -> Severity | None:
        for source in self.sources:
            found = source.worst_severity(image, digest)
            if found is not None:
                return found  # type: ignore[no-any-return]
        return None


__all__ = [
    "ARTIFACT_TYPE",
    "FirstKnown",
    "RegistryAttachmentSource",
    "attach_scan",
    "attached_worst",
    "fallback_tag",
]
