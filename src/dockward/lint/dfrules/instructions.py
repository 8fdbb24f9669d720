"""Dockerfile rules over instructions: USER, FROM, ADD/COPY, ENV/ARG, EXPOSE, VOLUME, HEALTHCHECK."""

from __future__ import annotations

import posixpath
import re

from dockward.lint.dfrules.support import (
    GOOD,
    HIGH,
    INFO,
    KIND,
    LOW,
    MED,
    df,
    ex,
    final_stages,
    instructions,
    last_in_chain,
    rules,
)
from dockward.lint.dockerfile import (
    Dockerfile,
    expand_vars,
    parse_arg,
    parse_key_values,
    split_words,
)
from dockward.rules.registry import Fail, Outcome, Pass
from dockward.rules.secrets import SECRET_NAME, secret_env_findings, secret_shape

_ROOT = re.compile(r"^(root|0)(:.*)?$")
_ARCHIVE = re.compile(r"\.(tar|tar\.gz|tgz|tar\.bz2|tbz2?|tar\.xz|txz|tar\.zst|tzst)$", re.I)
_URL = re.compile(r"^(https?|ftp)://", re.I)
_GIT = re.compile(r"^(git@|git://|https?://.*\.git(#.*)?$)", re.I)


def _stage_env(d: Dockerfile) -> dict[str, str]:
    env = dict(d.global_args)
    for ins in instructions(d, final_stages(d)[::-1]):
        if ins.keyword == "ARG":
            env.update({k: v for k, v in parse_arg(ins.args) if v is not None})
        elif ins.keyword == "ENV":
            env.update({k: v for k, v, _ in parse_key_values(ins.args)})
    return env


@rules.rule(
    "DW-B001",
    "Final image does not run as root",
    severity=MED,
    kind=KIND,
    references=(
        "hadolint DL3002",
        "dockle CIS-DI-0001",
        "checkov CKV_DOCKER_3",
        "checkov CKV_DOCKER_8",
    ),
    remediation="Add `USER 10001:10001` (a numeric non-root user created in the image) after the "
    "steps that need root.",
    examples=lambda: ex("FROM registry.example/base:1.2.3\nUSER root\n"),
)
def final_user_not_root(d: Dockerfile) -> Outcome:
    """A container runs as the image's last USER. Without one (or with root) every process in it
    is root: one escape bug away from root on the host."""
    stage = d.final_stage
    if stage is None:
        return Pass()
    ins = last_in_chain(d, "USER")
    if ins is None:
        return Fail(
            "no USER in the final stage: runs as root unless the base image sets a user",
            location=stage.from_instruction.location(d.path),
        )
    user = expand_vars(ins.args.strip(), _stage_env(d))
    if _ROOT.match(user):
        return Fail(
            f"last USER is root ({ins.args.strip()})", {"user": user}, location=ins.location(d.path)
        )
    return Pass(evidence={"user": user})


@rules.rule(
    "DW-B002",
    "USER is numeric",
    severity=INFO,
    kind=KIND,
    references=("hadolint DL3066",),
    remediation="Use `USER 10001:10001` instead of a name: Kubernetes `runAsNonRoot` and "
    "reviewers can only verify a numeric UID.",
    examples=lambda: ex("FROM registry.example/base:1.2.3\nUSER app\n"),
)
def numeric_user(d: Dockerfile) -> Outcome:
    """A user name may map to UID 0 in the image's /etc/passwd; only a UID can be checked
    without the image."""
    ins = last_in_chain(d, "USER")
    if ins is None:
        return Pass()
    user = expand_vars(ins.args.strip(), _stage_env(d)).split(":")[0]
    if user and not user.isdigit() and user != "root":
        return Fail(f"USER {user} is a name, not a UID", location=ins.location(d.path))
    return Pass()


def _is_stage_ref(d: Dockerfile, index: int, base: str) -> bool:
    return base.lower() in {s.name.lower() for s in d.stages[:index] if s.name}


@rules.rule(
    "DW-B003",
    "Base image pinned to a version",
    severity=MED,
    kind=KIND,
    references=("hadolint DL3006", "hadolint DL3007", "dockle DKL-DI-0006", "checkov CKV_DOCKER_7"),
    remediation="Pin the base image: `FROM debian:12.5-slim` or, better, "
    "`FROM debian:12.5-slim@sha256:...`.",
    examples=lambda: ex("FROM debian\nHEALTHCHECK CMD true\nUSER 1000\n"),
)
def base_pinned(d: Dockerfile) -> list[Outcome] | Outcome:
    """`latest` or no tag builds from whatever was pushed last: not reproducible and not what
    was reviewed. ARG values are substituted first; references to earlier stages are fine."""
    out: list[Outcome] = []
    for stage in d.stages:
        ref = stage.base_resolved
        if not ref or "$" in ref or ref.lower() == "scratch" or "@sha256:" in ref:
            continue
        if _is_stage_ref(d, stage.index, ref):
            continue
        tag = ref.rsplit("/", 1)[-1].partition(":")[2]
        if not tag or tag == "latest":
            loc = stage.from_instruction.location(d.path)
            out.append(
                Fail(f"base image {ref} is not pinned to a version", {"image": ref}, location=loc)
            )
    return out or Pass()


def registry_of(ref: str) -> str:
    """The registry of a FROM reference, as Docker reads it (dockward.registry); a reference
    that only build arguments complete is not parseable, so its first component decides."""
    from dockward.registry.reference import InvalidReference, parse_reference

    try:
        registry = parse_reference(ref).registry
        hub = registry in ("registry-1.docker.io", "index.docker.io")
        return "docker.io" if hub else registry.lower()
    except InvalidReference:
        first, slash, _ = ref.partition("/")
        if slash and ("." in first or ":" in first or first == "localhost"):
            return first.lower()
        return "docker.io"


@rules.rule(
    "DW-B004",
    "Base images from trusted registries",
    severity=MED,
    kind=KIND,
    references=("hadolint DL3026",),
    remediation="Pull base images only from the registries in `[lint] trusted_registries` of "
    "dockward.toml (or `--trusted-registry`).",
    examples=lambda: (
        _with_trusted(df("FROM evil.example/base:1\n")),
        _with_trusted(df("FROM registry.example/base:1\n")),
    ),
)
def trusted_registry(d: Dockerfile) -> list[Outcome] | Outcome:
    """With an allow-list configured, every base image must come from it (Docker Hub is
    `docker.io`). Without one this rule passes."""
    if not d.trusted_registries:
        return Pass()
    out: list[Outcome] = []
    for stage in d.stages:
        ref = stage.base_resolved
        if not ref or "$" in ref or ref.lower() == "scratch" or _is_stage_ref(d, stage.index, ref):
            continue
        reg = registry_of(ref)
        if reg not in d.trusted_registries:
            out.append(
                Fail(
                    f"base image {ref} comes from {reg}, not a trusted registry",
                    {"registry": reg},
                    location=stage.from_instruction.location(d.path),
                )
            )
    return out or Pass()


def _with_trusted(d: Dockerfile) -> Dockerfile:
    from dataclasses import replace

    return replace(d, trusted_registries=("registry.example",))


def _sources(args: str) -> list[str]:
    words = [w.text for w in split_words(args)]
    return words[:-1] if len(words) >= 2 else []


def _copy_sources(ins_args: str, json_args: tuple[str, ...] | None) -> list[str]:
    if json_args is not None:
        return list(json_args[:-1])
    return _sources(ins_args)


@rules.rule(
    "DW-B005",
    "COPY instead of ADD for local files",
    severity=LOW,
    kind=KIND,
    references=("hadolint DL3020", "dockle CIS-DI-0009", "checkov CKV_DOCKER_4"),
    remediation="Use `COPY` for local files; keep `ADD` for local tar archives it should unpack.",
    examples=lambda: ex("FROM registry.example/base:1.2.3\nADD app.py /app/\n"),
)
def copy_not_add(d: Dockerfile) -> list[Outcome] | Outcome:
    """ADD silently unpacks archives and fetches URLs; COPY does only what it says."""
    out: list[Outcome] = []
    for ins in instructions(d):
        if ins.keyword != "ADD":
            continue
        srcs = _copy_sources(ins.args, ins.json_args)
        local = [
            s for s in srcs if not _URL.match(s) and not _GIT.match(s) and not _ARCHIVE.search(s)
        ]
        if local or (ins.heredocs and not srcs):
            out.append(
                Fail(
                    f"ADD used for local files: {', '.join(local) or 'heredoc'}",
                    location=ins.location(d.path),
                )
            )
    return out or Pass()


@rules.rule(
    "DW-B006",
    "No ADD from a URL without a checksum",
    severity=MED,
    kind=KIND,
    references=("hadolint DL3020",),
    remediation="Download with `ADD --checksum=sha256:... URL` or `RUN curl -fsSLo f URL && "
    "echo 'SUM  f' | sha256sum -c`.",
    examples=lambda: ex(
        "FROM registry.example/base:1.2.3\nADD https://example.com/app.tgz /opt/\n"
    ),
)
def add_url_checksum(d: Dockerfile) -> list[Outcome] | Outcome:
    """ADD of a URL trusts whatever the server (or anyone on the path) returns at build time."""
    out: list[Outcome] = []
    for ins in instructions(d):
        if ins.keyword != "ADD":
            continue
        urls = [s for s in _copy_sources(ins.args, ins.json_args) if _URL.match(s) or _GIT.match(s)]
        if urls and ins.flag("checksum") is None:
            out.append(
                Fail(f"ADD fetches {', '.join(urls)} unverified", location=ins.location(d.path))
            )
    return out or Pass()


@rules.rule(
    "DW-B007",
    "HEALTHCHECK defined",
    severity=LOW,
    kind=KIND,
    references=("hadolint DL3057", "dockle CIS-DI-0006", "checkov CKV_DOCKER_2"),
    remediation='Add `HEALTHCHECK CMD ["/app", "healthcheck"]` (or set one in compose).',
    examples=lambda: ex("FROM registry.example/base:1.2.3\nUSER 1000\n"),
)
def healthcheck_defined(d: Dockerfile) -> Outcome:
    """Without a health check, the engine, compose and `dockward update` cannot tell a hung
    service from a healthy one."""
    stage = d.final_stage
    if stage is None:
        return Pass()
    ins = last_in_chain(d, "HEALTHCHECK")
    if ins is None:
        return Fail(
            "no HEALTHCHECK in the final stage", location=stage.from_instruction.location(d.path)
        )
    if ins.args.strip().upper() == "NONE":
        return Fail("HEALTHCHECK NONE disables the health check", location=ins.location(d.path))
    return Pass()


@rules.rule(
    "DW-B008",
    "At most one HEALTHCHECK per stage",
    severity=LOW,
    kind=KIND,
    references=("hadolint DL3012",),
    remediation="Keep one HEALTHCHECK; only the last one takes effect.",
    examples=lambda: ex(GOOD + "HEALTHCHECK CMD true\n"),
)
def one_healthcheck(d: Dockerfile) -> list[Outcome] | Outcome:
    """Only the last HEALTHCHECK counts; an earlier one is dead code that misleads readers."""
    out: list[Outcome] = []
    for stage in d.stages:
        checks = [i for i in stage.instructions if i.keyword == "HEALTHCHECK"]
        for extra in checks[1:]:
            out.append(
                Fail("more than one HEALTHCHECK in this stage", location=extra.location(d.path))
            )
    return out or Pass()


@rules.rule(
    "DW-B009",
    "No secrets in ENV or ARG",
    severity=HIGH,
    kind=KIND,
    references=("hadolint DL3064", "dockle CIS-DI-0010", "checkov CKV_SECRET_*"),
    remediation="Use `RUN --mount=type=secret,id=NAME` for build secrets and runtime secrets "
    "(files) for the container; never ENV or ARG.",
    examples=lambda: ex("FROM registry.example/base:1.2.3\nENV DB_PASSWORD=hunter2hunter2\n"),
)
def no_secret_env(d: Dockerfile) -> list[Outcome] | Outcome:
    """ENV values are stored in the image config and ARG values in its history: anyone who can
    pull the image can read them. Detected by name (PASSWORD, TOKEN, ...) and by value shape.
    Values are never shown."""
    out: list[Outcome] = []
    for ins in instructions(d):
        if ins.keyword == "ENV":
            for key, value, word in parse_key_values(ins.args):
                hits = secret_env_findings([f"{key}={value}"])
                from_arg = value.startswith("$") and SECRET_NAME.search(key)
                if hits or from_arg:
                    what = hits[0] if hits else f"{key} (copied from a build argument)"
                    out.append(
                        Fail(f"secret in ENV: {what}", location=ins.word_location(d.path, word))
                    )
        elif ins.keyword == "ARG":
            for word in split_words(ins.args):
                key, _, value = word.text.partition("=")
                if SECRET_NAME.search(key) or (value and secret_shape(value)):
                    out.append(
                        Fail(
                            f"secret-looking build argument {key}",
                            location=ins.word_location(d.path, word),
                        )
                    )
    return out or Pass()


@rules.rule(
    "DW-B010",
    "SSH port not exposed",
    severity=LOW,
    kind=KIND,
    references=("checkov CKV_DOCKER_1",),
    remediation="Remove `EXPOSE 22` and sshd; use `docker exec` for access.",
    examples=lambda: ex("FROM registry.example/base:1.2.3\nEXPOSE 80 22/tcp\n"),
)
def no_ssh_port(d: Dockerfile) -> list[Outcome] | Outcome:
    """An exposed SSH port means an SSH daemon in the container: one more service to patch and
    one more way in."""
    out: list[Outcome] = []
    for ins in instructions(d):
        if ins.keyword != "EXPOSE":
            continue
        for word in split_words(ins.args):
            port = word.text.split("/")[0]
            lo, _, hi = port.partition("-")
            if lo.isdigit() and int(lo) <= 22 <= int(hi if hi.isdigit() else lo):
                out.append(
                    Fail(f"port 22 exposed ({word.text})", location=ins.word_location(d.path, word))
                )
    return out or Pass()


_SYSTEM_MOUNTS = ("/dev", "/proc", "/sys")


@rules.rule(
    "DW-B011",
    "No VOLUME on /dev, /proc or /sys",
    severity=HIGH,
    kind=KIND,
    references=("dockle DKL-DI-0002",),
    remediation="Remove the VOLUME; kernel filesystems must stay the container runtime's.",
    examples=lambda: ex('FROM registry.example/base:1.2.3\nVOLUME ["/data", "/proc"]\n'),
)
def no_system_volume(d: Dockerfile) -> list[Outcome] | Outcome:
    """A volume over a kernel filesystem hides the runtime's masking of sensitive paths."""
    out: list[Outcome] = []
    for ins in instructions(d):
        if ins.keyword != "VOLUME":
            continue
        paths = (
            list(ins.json_args)
            if ins.json_args is not None
            else [w.text for w in split_words(ins.args)]
        )
        for p in paths:
            norm = posixpath.normpath(p) if p else p
            if any(norm == m or norm.startswith(m + "/") for m in _SYSTEM_MOUNTS):
                out.append(Fail(f"VOLUME on {p}", location=ins.location(d.path)))
    return out or Pass()


@rules.rule(
    "DW-B012",
    "No whole filesystem copied from another stage",
    severity=LOW,
    kind=KIND,
    references=("hadolint DL3067",),
    remediation="Copy only the artifacts you need: `COPY --from=build /app/bin /usr/local/bin/`.",
    examples=lambda: ex(
        "FROM registry.example/base:1.2.3 AS build\nFROM registry.example/base:1.2.3\n"
        "COPY --from=build / /\n"
    ),
)
def no_whole_fs_copy(d: Dockerfile) -> list[Outcome] | Outcome:
    """Copying `/` from a build stage carries its compilers, caches and secrets into the image."""
    out: list[Outcome] = []
    for ins in instructions(d):
        if (
            ins.keyword == "COPY"
            and ins.flag("from") is not None
            and "/" in _copy_sources(ins.args, ins.json_args)
        ):
            out.append(
                Fail(f"COPY --from={ins.flag('from')} copies /", location=ins.location(d.path))
            )
    return out or Pass()


_SECRET_FILES = re.compile(
    r"(^|/)(id_(rsa|dsa|ecdsa|ed25519)|\.env|\.npmrc|\.pypirc|\.netrc|\.git-credentials|"
    r"\.htpasswd|credentials(\.json)?|\.aws|\.ssh|\.docker/config\.json|\.kube/config)$|"
    r"\.(pem|key|p12|pfx|jks|keystore)$",
    re.I,
)


@rules.rule(
    "DW-B013",
    "No secret files copied into the image",
    severity=MED,
    kind=KIND,
    references=("dockle CIS-DI-0010", "dockle DKL-LI-0003"),
    remediation="Mount secrets at build time (`RUN --mount=type=secret`) or at run time; add "
    "them to .dockerignore.",
    examples=lambda: ex("FROM registry.example/base:1.2.3\nCOPY id_rsa .env /root/\n"),
)
def no_secret_files(d: Dockerfile) -> list[Outcome] | Outcome:
    """Keys, `.env`, `.npmrc` and credential files copied into a layer stay in the image for
    everyone who can pull it, even if a later step deletes them."""
    out: list[Outcome] = []
    for ins in instructions(d):
        if ins.keyword not in ("COPY", "ADD"):
            continue
        hits = [
            s for s in _copy_sources(ins.args, ins.json_args) if _SECRET_FILES.search(s.rstrip("/"))
        ]
        if hits:
            out.append(
                Fail(f"secret files copied: {', '.join(hits)}", location=ins.location(d.path))
            )
    return out or Pass()


@rules.rule(
    "DW-B014",
    "No world-writable permissions set by COPY/ADD",
    severity=MED,
    kind=KIND,
    remediation="Use `--chmod=0755` (or tighter); never give others write access.",
    examples=lambda: ex("FROM registry.example/base:1.2.3\nCOPY --chmod=777 app /app\n"),
)
def copy_chmod(d: Dockerfile) -> list[Outcome] | Outcome:
    """A world-writable file in the image lets any process in the container replace it."""
    out: list[Outcome] = []
    for ins in instructions(d):
        mode = ins.flag("chmod")
        if ins.keyword in ("COPY", "ADD") and mode and mode.isdigit() and int(mode[-1]) & 2:
            out.append(Fail(f"--chmod={mode} is world-writable", location=ins.location(d.path)))
    return out or Pass()


@rules.rule(
    "DW-B015",
    "No insecure build entitlements",
    severity=HIGH,
    kind=KIND,
    remediation="Remove `RUN --security=insecure` (it runs the step privileged) and "
    "`--network=host` unless the builder is isolated.",
    examples=lambda: ex(
        "FROM registry.example/base:1.2.3\nRUN --security=insecure mount -t tmpfs x /mnt\n"
    ),
)
def no_insecure_entitlement(d: Dockerfile) -> list[Outcome] | Outcome:
    """`--security=insecure` runs a build step as a privileged container on the build host."""
    out: list[Outcome] = []
    for ins in instructions(d):
        if ins.keyword == "RUN" and ins.flag("security") == "insecure":
            out.append(
                Fail("RUN --security=insecure runs privileged", location=ins.location(d.path))
            )
    return out or Pass()


@rules.rule(
    "DW-B016",
    "No secret values in LABEL",
    severity=HIGH,
    kind=KIND,
    references=("checkov CKV_SECRET_*",),
    remediation="Remove the credential from the label and rotate it.",
    examples=lambda: ex(
        "FROM registry.example/base:1.2.3\nLABEL repo=https://bob:hunter2x@git.example/r.git\n"
    ),
)
def no_secret_labels(d: Dockerfile) -> list[Outcome] | Outcome:
    """Labels are part of the image config, visible to anyone who can pull it."""
    out: list[Outcome] = []
    for ins in instructions(d):
        if ins.keyword == "LABEL":
            for key, value, word in parse_key_values(ins.args):
                kind = secret_shape(value)
                if kind:
                    out.append(
                        Fail(
                            f"LABEL {key} holds a {kind}", location=ins.word_location(d.path, word)
                        )
                    )
    return out or Pass()
