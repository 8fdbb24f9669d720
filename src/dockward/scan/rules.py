"""File-level image rules (what dockle checks) over ImageContent. Secret values never leave."""

from __future__ import annotations

import re
from typing import Any

from dockward.model.finding import Rule, Severity
from dockward.model.image import ImageSpec
from dockward.rules.registry import Fail, Info, Outcome, Pass, RuleSet, Skip
from dockward.rules.secrets import SECRET_VALUE_SHAPES
from dockward.sbom.model import Distro
from dockward.sbom.osdetect import end_of_life
from dockward.sbom.probes import GIT_DIR
from dockward.scan.content import ImageContent, content_from_files

rules = RuleSet("image-content")
KIND = "image-content"

# The rule of every vulnerability result. A result's rule is this one with the advisory's id
# (CVE, GHSA, OSV, ...), title, severity and fix, so each advisory is its own rule in SARIF and
# waivers; the registry documents the family under DW-V001.
VULNERABILITY = Rule(
    id="DW-V001",
    title="No package with a known vulnerability",
    severity=Severity.HIGH,
    kind="vulnerability",
    groups=("vulnerable-image",),
    remediation="Upgrade the package to the fixed version, or waive the advisory with a reason "
    "and an expiry.",
    doc="Packages of the image's SBOM matched against the local vulnerability database (OSV); "
    "each affected package and advisory is one failing result whose rule id is the advisory's "
    "id and whose severity is the advisory's. Not scored: the count is reported instead.",
    scored=False,
)

PASSWD = b"root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n"
SHADOW = b"root:*:19000:0:99999:7:::\napp:!:19000:0:99999:7:::\n"
PEM = b"-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----\n"


def _ex(bad: dict[str, Any], good: dict[str, Any] | None = None, **kw: Any) -> Any:
    base: dict[str, Any] = {"etc/passwd": PASSWD, "etc/shadow": SHADOW, "bin/sh": (b"x", 0o755)}
    good_kw = {k: v for k, v in kw.items() if not k.startswith("bad_")}
    bad_kw = {k.removeprefix("bad_"): v for k, v in kw.items() if k.startswith("bad_")}
    return (
        content_from_files({**base, **bad}, **{**good_kw, **bad_kw}),
        content_from_files({**base, **(good or {})}, **good_kw),
    )


@rules.rule(
    "DW-I101",
    "No setuid or setgid files in the image",
    severity=Severity.LOW,
    kind=KIND,
    cis="4.8",
    scored=False,
    references=("dockle CIS-DI-0008",),
    remediation="Remove the bits in the Dockerfile: `RUN find / -xdev -perm /6000 -type f -exec "
    "chmod a-s {} +` (keep only those the workload needs), or run with `--security-opt "
    "no-new-privileges`.",
    examples=lambda: _ex({"usr/bin/passwd": (b"x", 0o4755)}),
)
def setuid_files(image: ImageContent) -> Outcome:
    """Setuid and setgid binaries are the usual way from a process inside the container to root
    in it; most images need none."""
    found = sorted(
        f"/{e.path} ({'setuid' if e.setuid else 'setgid'}, layer {e.layer})"
        for e in image.fs
        if e.setuid or e.setgid
    )
    if found:
        return Fail(
            f"{len(found)} setuid/setgid file(s): {', '.join(found[:10])}", {"files": found}
        )
    return Pass()


def _mask(text: str) -> str:
    return text[:4] + "****" if len(text) > 8 else "****"


def _secret_kind(path: str, body: bytes | None) -> str | None:
    name = path.rsplit("/", 1)[-1]
    if GIT_DIR.fullmatch(path):
        return "git repository metadata"
    text = body.decode("utf-8", "replace") if body else ""
    for kind, pattern in SECRET_VALUE_SHAPES.items():
        m = pattern.search(text)
        if m:
            return f"{kind} ({_mask(m.group(0))})"
    if name in ("credentials",) and "aws_secret_access_key" in text:
        return "AWS credentials file"
    if name.startswith(".env") and re.search(
        r"(?im)^\s*[A-Z_]*(SECRET|TOKEN|PASSWORD|KEY)\w*\s*=\s*\S", text
    ):
        return ".env file with secrets"
    if path.endswith(".docker/config.json") and '"auth"' in text:
        return "Docker registry credentials"
    creds = (".netrc", ".pgpass", ".git-credentials", ".pypirc")
    if (name in creds and text.strip()) or (name == ".npmrc" and "_auth" in text):
        return f"credentials file {name}"
    return None


@rules.rule(
    "DW-I102",
    "No secrets left in image files",
    severity=Severity.HIGH,
    kind=KIND,
    cis="4.10",
    references=("dockle CIS-DI-0010", "dockle DKL-DI-0005"),
    remediation="Do not COPY keys, .env files, credentials or .git into the image (use "
    "`.dockerignore` and `RUN --mount=type=secret`); deleting them in a later layer does not "
    "remove them. Rotate every exposed secret.",
    examples=lambda: _ex(
        {"root/.ssh/id_rsa": PEM}, {"etc/ssl/certs/ca.pem": b"-----BEGIN CERTIFICATE-----\n"}
    ),
)
def secret_files(image: ImageContent) -> Outcome:
    """Private keys, cloud credentials, `.env` files and `.git` directories in any layer, also
    those a later layer deleted: every layer is shipped. Values are masked in the output."""
    hits: list[str] = []
    for i, layer in enumerate(image.fs.layers):
        for path, body in sorted(layer.probed.get("secret", {}).items()):
            kind = _secret_kind(path, body if isinstance(body, bytes) else None)
            if kind is None:
                continue
            current = image.fs.get(path)
            note = (
                ""
                if current is not None and current.layer == i
                else ", deleted later but still in the layer"
            )
            hits.append(f"/{path}: {kind} (layer {i}{note})")
    if hits:
        return Fail(f"{len(hits)} secret file(s): {'; '.join(hits[:5])}", {"files": hits})
    return Pass()


def _lines(image: ImageContent, path: str) -> list[list[str]] | None:
    data = image.fs.read(path)
    if data is None:
        return None
    return [
        ln.split(":")
        for ln in data.decode("utf-8", "replace").splitlines()
        if ln.strip() and not ln.startswith("#")
    ]


@rules.rule(
    "DW-I103",
    "No accounts with an empty password",
    severity=Severity.HIGH,
    kind=KIND,
    references=("dockle CIS-DI-0009",),
    remediation="Lock the account: `RUN passwd -l NAME` (or set `*`/`!` in /etc/shadow).",
    examples=lambda: _ex({"etc/shadow": b"root::19000:0:99999:7:::\n"}),
)
def empty_passwords(image: ImageContent) -> Outcome:
    """An account with an empty password field lets anyone `su` to it without a password."""
    rows = _lines(image, "etc/shadow")
    if rows is None:
        return Skip("no /etc/shadow in the image")
    empty = [r[0] for r in rows if len(r) > 1 and r[1] == ""]
    if empty:
        return Fail(f"accounts with an empty password: {', '.join(empty)}", {"accounts": empty})
    return Pass()


@rules.rule(
    "DW-I104",
    "No duplicate UIDs or user names",
    severity=Severity.MEDIUM,
    kind=KIND,
    references=("dockle DKL-LI-0003",),
    remediation="Give every account in /etc/passwd its own UID and name.",
    examples=lambda: _ex({"etc/passwd": PASSWD + b"toor:x:0:0::/root:/bin/sh\n"}),
)
def duplicate_uids(image: ImageContent) -> Outcome:
    """Two accounts with one UID are one identity under two names: a hidden root account is the
    classic case."""
    rows = _lines(image, "etc/passwd")
    if rows is None:
        return Skip("no /etc/passwd in the image")
    by_uid: dict[str, list[str]] = {}
    names: dict[str, int] = {}
    for r in rows:
        if len(r) >= 3:
            by_uid.setdefault(r[2], []).append(r[0])
            names[r[0]] = names.get(r[0], 0) + 1
    dups = [f"uid {uid}: {', '.join(n)}" for uid, n in by_uid.items() if len(n) > 1]
    dups += [f"name {n} ({c}x)" for n, c in names.items() if c > 1]
    if dups:
        return Fail(f"duplicate accounts: {'; '.join(dups)}", {"duplicates": dups})
    return Pass()


@rules.rule(
    "DW-I105",
    "Image is not referenced by the `latest` tag only",
    severity=Severity.LOW,
    kind=KIND,
    references=("dockle DKL-DI-0006",),
    remediation="Tag images with a version (`app:1.4.2`) or pin by digest.",
    examples=lambda: _ex(
        {}, bad_spec=ImageSpec(id="sha256:" + "c" * 64, repo_tags=("app:latest",), user="app")
    ),
)
def latest_tag(image: ImageContent) -> Outcome:
    """`latest` moves: what was scanned is not what the next pull runs."""
    tags = [t for t in image.spec.repo_tags if t != "<none>:<none>"]
    if tags and all(
        t.rsplit(":", 1)[-1] == "latest" or ":" not in t.rsplit("/", 1)[-1] for t in tags
    ):
        return Fail(f"only tagged latest: {', '.join(tags)}", {"tags": tags})
    return Pass(evidence={"tags": tags})


@rules.rule(
    "DW-I106",
    "Operating system still gets security updates",
    severity=Severity.HIGH,
    kind=KIND,
    references=("trivy: end-of-life OS detection",),
    remediation="Rebuild on a supported release of the distribution.",
    examples=lambda: _ex(
        {}, distro=Distro("debian", "12", "bookworm"), bad_distro=Distro("debian", "9", "stretch")
    ),
)
def os_end_of_life(image: ImageContent) -> Outcome:
    """An end-of-life release gets no security fixes: every later CVE in it stays open, and
    scanners (this one too) may no longer have advisories for it."""
    if image.distro is None:
        return Info("operating system not detected") if len(image.fs) else Skip("empty image")
    eol = end_of_life(image.distro)
    name = image.distro.pretty or f"{image.distro.id} {image.distro.version}"
    if eol is None:
        return Info(f"{name}: end-of-life date unknown", {"os": name})
    if eol <= image.today:
        return Fail(f"{name} reached end of life on {eol}", {"os": name, "eol": str(eol)})
    return Pass(f"{name} supported until {eol}", {"os": name, "eol": str(eol)})


__all__ = ["rules"]
