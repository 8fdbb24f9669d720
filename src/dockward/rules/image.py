"""Image rules over ImageSpec (CIS section 4)."""

from __future__ import annotations

import re
from typing import Any

from dockward.model.finding import Severity
from dockward.model.image import HistoryEntry, ImageSpec, VulnScan
from dockward.rules.container import ROOT_USERS
from dockward.rules.registry import Context, Fail, Outcome, Pass, RuleSet, Skip
from dockward.rules.secrets import secret_env_findings, secret_shape

rules = RuleSet("image")


def example_image(**changes: Any) -> ImageSpec:
    from dataclasses import replace

    base = ImageSpec(
        id="sha256:" + "a" * 64,
        repo_tags=("app:1.0",),
        user="app",
        healthcheck=("CMD", "true"),
        history=(
            HistoryEntry("/bin/sh -c #(nop) ADD file:abc in / "),
            HistoryEntry("/bin/sh -c apt-get update && apt-get install -y curl"),
            HistoryEntry("/bin/sh -c #(nop) COPY file:def in /app "),
        ),
        vuln_scan=VulnScan("2026-01-01T00:00:00+00:00", "medium", {"medium": 2}),
        scans_known=True,
    )
    return replace(base, **changes)


def _ex(**bad: Any) -> tuple[ImageSpec, ImageSpec]:
    return example_image(**bad), example_image()


@rules.rule(
    "DW-I001",
    "Image defines a non-root user",
    severity=Severity.MEDIUM,
    kind="image",
    cis="4.1",
    remediation="Add `RUN useradd -r app` and `USER app` (or `USER 10001:10001`) to the Dockerfile.",
    examples=lambda: _ex(user="root:root"),
)
def image_user(image: ImageSpec, ctx: Context) -> Outcome:
    """An image without USER runs as root by default. `0:0`, `root:root` and `0:<gid>` are root
    (docker-bench missed these)."""
    if ROOT_USERS.match(image.user.strip()):
        return Fail(f"image user is root ({image.user or 'unset'})", {"user": image.user})
    return Pass(evidence={"user": image.user})


@rules.rule(
    "DW-I002",
    "Image has a HEALTHCHECK",
    severity=Severity.LOW,
    kind="image",
    cis="4.6",
    remediation="Add `HEALTHCHECK CMD ...` to the Dockerfile.",
    examples=lambda: _ex(healthcheck=None),
)
def image_healthcheck(image: ImageSpec, ctx: Context) -> Outcome:
    """Without a HEALTHCHECK, the engine and updaters cannot tell a hung service from a live one."""
    if not image.healthcheck or image.healthcheck[0] == "NONE":
        return Fail("no HEALTHCHECK")
    return Pass()


UPDATE = re.compile(
    r"\b(apt-get|apt|apk|yum|dnf|zypper|microdnf)\s+(-\S+\s+)*(update|upgrade|makecache)\b"
)
INSTALL = re.compile(r"\b(install|add)\b")


@rules.rule(
    "DW-I003",
    "Package index update not alone in a layer",
    severity=Severity.LOW,
    kind="image",
    cis="4.7",
    scored=False,
    remediation="Combine `apt-get update` and `apt-get install` in one RUN (and clean the lists).",
    examples=lambda: _ex(
        history=(
            HistoryEntry("/bin/sh -c apt-get update"),
            HistoryEntry("/bin/sh -c apt-get install -y x"),
        )
    ),
)
def update_not_alone(image: ImageSpec, ctx: Context) -> Outcome:
    """A cached `apt-get update` layer makes later builds install stale packages."""
    alone = [
        h.created_by
        for h in image.history
        if UPDATE.search(h.created_by) and not INSTALL.search(h.created_by)
    ]
    if alone:
        return Fail("package index updated in a layer of its own", {"layers": alone[:3]})
    return Pass()


@rules.rule(
    "DW-I004",
    "COPY used rather than ADD",
    severity=Severity.LOW,
    kind="image",
    cis="4.9",
    scored=False,
    remediation="Use `COPY` for local files; download with a verified `RUN curl` plus checksum.",
    examples=lambda: _ex(
        history=(
            HistoryEntry("/bin/sh -c #(nop) ADD file:abc in / "),
            HistoryEntry("/bin/sh -c #(nop) ADD https://example.com/x.tgz /opt/ "),
        )
    ),
)
def copy_not_add(image: ImageSpec, ctx: Context) -> Outcome:
    """ADD fetches URLs and unpacks archives implicitly. The base image's own rootfs layer
    (the first `ADD file:... in /`) is not counted."""
    adds = [
        h.created_by
        for i, h in enumerate(image.history)
        if re.search(r"(#\(nop\)\s+|^)ADD\s", h.created_by)
        and not (i == 0 and re.search(r"ADD (file|multi):\S+ in / ?$", h.created_by))
    ]
    if adds:
        return Fail(f"{len(adds)} ADD instruction(s) in the image history", {"layers": adds[:3]})
    return Pass()


@rules.rule(
    "DW-I005",
    "No secrets in image configuration or history",
    severity=Severity.HIGH,
    kind="image",
    cis="4.10",
    remediation="Use build secrets (`RUN --mount=type=secret`) and runtime secrets; rebuild the "
    "image without the value and rotate the secret.",
    examples=lambda: _ex(env=("API_TOKEN=abcd1234efgh5678",)),
)
def image_secrets(image: ImageSpec, ctx: Context) -> Outcome:
    """ENV values and build commands are stored in the image for anyone who can pull it."""
    hits = secret_env_findings(image.env)
    for h in image.history:
        shape = secret_shape(h.created_by)
        if shape:
            hits.append(f"history ({shape})")
    if hits:
        return Fail(f"secrets in image: {', '.join(hits)}", {"found": hits})
    return Pass()


@rules.rule(
    "DW-I006",
    "Image does not expose SSH",
    severity=Severity.MEDIUM,
    kind="image",
    references=("hadolint DL3011", "checkov CKV_DOCKER_1"),
    remediation="Remove `EXPOSE 22` and the SSH server from the image.",
    examples=lambda: _ex(exposed_ports=("22/tcp",)),
)
def no_ssh_port(image: ImageSpec, ctx: Context) -> Outcome:
    """Port 22 in an image means an SSH server inside it."""
    if "22/tcp" in image.exposed_ports:
        return Fail("image exposes port 22")
    return Pass()


@rules.rule(
    "DW-I007",
    "Image scanned, without high or critical vulnerabilities",
    severity=Severity.HIGH,
    kind="image",
    cis="4.4",
    references=("docker-bench 4.4 (manual there)",),
    groups=("vulnerable-image",),
    remediation="Scan the image (`dockward scan IMAGE`), then rebuild it on patched packages "
    "(or update to a fixed release) until no high or critical vulnerability is left; rescan "
    "after `dockward db update`.",
    examples=lambda: _ex(vuln_scan=VulnScan("2026-01-01", "critical", {"critical": 1})),
)
def image_scanned(image: ImageSpec, ctx: Context) -> Outcome:
    """CIS 4.4 asks that images be scanned and rebuilt with security patches; docker-bench can
    only remind you. The audit reads what `dockward scan` recorded for each image (its scan
    cache beside the vulnerability DB): never scanned, scanned before the DB last changed, or
    carrying high/critical vulnerabilities fails."""
    if not image.scans_known:
        return Skip("no scan records on this host (`dockward scan IMAGE` writes them)")
    scan = image.vuln_scan
    if scan is None:
        return Fail("image was never scanned")
    bad = {k: v for k, v in scan.counts.items() if k in ("critical", "high") and v}
    if bad:
        found = ", ".join(f"{v} {k}" for k, v in bad.items())
        return Fail(f"{found} vulnerabilities (scan of {scan.scanned})", {"counts": dict(bad)})
    if scan.stale:
        return Fail(f"scanned {scan.scanned}, before the vulnerability DB was last updated")
    return Pass()
