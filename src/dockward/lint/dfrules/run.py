"""Dockerfile rules over RUN bodies, parsed as shell: every command in any position is seen."""

from __future__ import annotations

import posixpath
import re
from collections.abc import Callable, Iterable

from dockward.lint.dfrules.support import (
    HIGH,
    INFO,
    KIND,
    LOW,
    MED,
    RunCommand,
    commands_of,
    ex,
    final_stages,
    instructions,
    rules,
    run_commands,
    short_flags,
)
from dockward.lint.dockerfile import Dockerfile, Instruction, parse_key_values
from dockward.lint.shell import SHELLS, Word
from dockward.rules.registry import Fail, Outcome, Pass
from dockward.rules.secrets import secret_shape

BASE = "FROM registry.example/base:1.2.3\n"
DOWNLOADERS = frozenset({"curl", "wget", "fetch"})
INTERPRETERS = SHELLS | {
    "python",
    "python2",
    "python3",
    "perl",
    "ruby",
    "node",
    "php",
    "source",
    ".",
}
APT = frozenset({"apt-get", "apt", "aptitude"})
RPM_MANAGERS = frozenset({"yum", "dnf", "tdnf", "microdnf", "zypper"})


def _fails(items: Iterable[tuple[RunCommand, str]]) -> list[Outcome]:
    seen: set[tuple[int, int, str]] = set()
    out: list[Outcome] = []
    for rc, message in items:
        loc = rc.loc()
        key = (loc.line, loc.column, message)
        if key in seen:
            continue
        seen.add(key)
        out.append(Fail(message, location=loc))
    return out


def _result(items: Iterable[tuple[RunCommand, str]]) -> list[Outcome] | Outcome:
    return _fails(items) or Pass()


def _sudo_word(rc: RunCommand) -> Word | None:
    argv = rc.command.argv
    unwrapped = rc.command.unwrapped()
    wrappers = argv[: len(argv) - len(unwrapped)] + unwrapped[:1]
    return next((w for w in wrappers if w.text.rsplit("/", 1)[-1] in ("sudo", "doas")), None)


@rules.rule(
    "DW-B020",
    "No sudo in RUN",
    severity=HIGH,
    kind=KIND,
    references=("hadolint DL3004", "dockle DKL-DI-0001", "checkov CKV2_DOCKER_1"),
    remediation="RUN steps already run as the current USER; switch with `USER root` ... "
    "`USER 10001` around the steps that need root, and do not install sudo.",
    examples=lambda: ex(BASE + "RUN apt-get update && sudo apt-get install -y curl\n"),
)
def no_sudo(d: Dockerfile) -> list[Outcome] | Outcome:
    """sudo in an image means a setuid path to root stays available to the running container;
    its TTY and environment handling also behaves unpredictably in builds."""
    out: list[Outcome] = []
    for rc in run_commands(d):
        sudo = _sudo_word(rc)
        if sudo is not None:
            out.append(Fail("sudo used in RUN", location=rc.loc(sudo)))
    return out or Pass()


def _curl_insecure(rc: RunCommand) -> str:
    for w in rc.args:
        t = w.text
        if rc.program == "curl" and (
            t in ("--insecure", "--proxy-insecure") or "k" in short_flags(t)
        ):
            return f"curl {t} disables TLS verification"
        if rc.program == "wget" and t == "--no-check-certificate":
            return "wget --no-check-certificate disables TLS verification"
    if rc.program == "git":
        texts = [w.text.lower() for w in rc.args]
        joined = " ".join(texts)
        if re.search(r"http\.sslverify[= ](false|0|no)", joined):
            return "git http.sslVerify=false disables TLS verification"
    return ""


@rules.rule(
    "DW-B021",
    "TLS verification not disabled for downloads",
    severity=HIGH,
    kind=KIND,
    references=("checkov CKV2_DOCKER_2", "checkov CKV2_DOCKER_3"),
    remediation="Drop `curl -k`/`--insecure`, `wget --no-check-certificate` and "
    "`git -c http.sslVerify=false`; install the CA certificate instead.",
    examples=lambda: ex(
        BASE + "RUN apt-get update && curl -fsSLk -o /tmp/x https://example.com/x\n"
    ),
)
def download_tls(d: Dockerfile) -> list[Outcome] | Outcome:
    """Without certificate checks anyone on the network path can replace what is downloaded."""
    return _result((rc, msg) for rc in run_commands(d) if (msg := _curl_insecure(rc)))


def _plain_http_index(args: list[str], options: tuple[str, ...]) -> bool:
    for i, t in enumerate(args):
        name, eq, value = t.partition("=")
        if name in options:
            url = value if eq else (args[i + 1] if i + 1 < len(args) else "")
            if url.startswith("http://"):
                return True
    return False


def _pkg_tls(rc: RunCommand) -> str:
    prog, texts = rc.program, [w.text for w in rc.args]
    low = [t.lower() for t in texts]
    if prog.startswith("pip") or (prog.startswith("python") and "pip" in texts[:2]):
        if any(t == "--trusted-host" or t.startswith("--trusted-host=") for t in low):
            return "pip --trusted-host skips TLS verification for that host"
        if "config" in low and any("trusted-host" in t for t in low):
            return "pip config trusted-host skips TLS verification"
        if _plain_http_index(low, ("-i", "--index-url", "--extra-index-url")):
            return "pip installs from a plain-HTTP index"
    if prog in ("npm", "yarn", "pnpm"):
        if _plain_http_index(low, ("--registry",)):
            return f"{prog} installs from a plain-HTTP registry"
        if any(re.fullmatch(r"--strict-ssl(=false)?", t) for t in low) and (
            "false" in low or "--strict-ssl=false" in low
        ):
            return f"{prog} strict-ssl false disables TLS verification"
        if "strict-ssl" in low and "false" in low:
            return f"{prog} strict-ssl false disables TLS verification"
    if prog in RPM_MANAGERS and any(re.search(r"sslverify=(0|false|no)", t) for t in low):
        return f"{prog} sslverify off disables TLS verification"
    if prog in ("echo", "printf", "sed", "tee") and any(
        re.search(r"sslverify\s*=\s*(0|false|no)\b", t) for t in low
    ):
        return "sslverify disabled in a repository configuration"
    if prog == "conda" and "ssl_verify" in low and "false" in low:
        return "conda ssl_verify false disables TLS verification"
    return ""


@rules.rule(
    "DW-B022",
    "TLS verification not disabled for package managers",
    severity=HIGH,
    kind=KIND,
    references=("checkov CKV2_DOCKER_4", "checkov CKV2_DOCKER_13", "checkov CKV2_DOCKER_15"),
    remediation="Remove `pip --trusted-host`, `npm/yarn config set strict-ssl false` and "
    "`sslverify=0`; trust the proxy's CA instead.",
    examples=lambda: ex(BASE + "RUN pip install --trusted-host pypi.example flask==3.0.0\n"),
)
def package_tls(d: Dockerfile) -> list[Outcome] | Outcome:
    """A package manager that does not verify TLS installs whatever a network attacker serves."""
    return _result((rc, msg) for rc in run_commands(d) if (msg := _pkg_tls(rc)))


TLS_ENV: dict[str, Callable[[str], bool]] = {
    "PYTHONHTTPSVERIFY": lambda v: v.strip() == "0",
    "NODE_TLS_REJECT_UNAUTHORIZED": lambda v: v.strip() == "0",
    "NPM_CONFIG_STRICT_SSL": lambda v: v.strip().lower() in ("false", "0", "no"),
    "YARN_STRICT_SSL": lambda v: v.strip().lower() in ("false", "0", "no"),
    "GIT_SSL_NO_VERIFY": lambda v: v.strip().lower() not in ("", "0", "false", "no"),
    "PIP_TRUSTED_HOST": lambda v: bool(v.strip()),
    "CURL_CA_BUNDLE": lambda v: v.strip() == "",
    "REQUESTS_CA_BUNDLE": lambda v: v.strip() == "",
}


def _tls_env_hits(pairs: Iterable[tuple[str, str]]) -> list[str]:
    return [k for k, v in pairs if k.upper() in TLS_ENV and TLS_ENV[k.upper()](v)]


@rules.rule(
    "DW-B023",
    "No environment variable disables TLS verification",
    severity=HIGH,
    kind=KIND,
    references=(
        "checkov CKV2_DOCKER_5",
        "checkov CKV2_DOCKER_6",
        "checkov CKV2_DOCKER_12",
        "checkov CKV2_DOCKER_14",
        "checkov CKV2_DOCKER_16",
    ),
    remediation="Remove PYTHONHTTPSVERIFY=0, NODE_TLS_REJECT_UNAUTHORIZED=0, "
    "NPM_CONFIG_STRICT_SSL=false, GIT_SSL_NO_VERIFY, PIP_TRUSTED_HOST from ENV and RUN.",
    examples=lambda: ex(BASE + "ENV NODE_TLS_REJECT_UNAUTHORIZED=0\n"),
)
def env_tls(d: Dockerfile) -> list[Outcome] | Outcome:
    """These variables turn off certificate checks for every later build step and, in ENV, for
    the running container too."""
    out: list[Outcome] = []
    for ins in instructions(d):
        if ins.keyword == "ENV":
            for key, value, word in parse_key_values(ins.args):
                if _tls_env_hits([(key, value)]):
                    out.append(
                        Fail(
                            f"ENV {key}={value} disables TLS verification",
                            location=ins.word_location(d.path, word),
                        )
                    )
    for rc in run_commands(d):
        words = list(rc.command.assignments)
        if rc.program == "export" or rc.program == "env":
            words += [w for w in rc.command.argv[1:] if "=" in w.text]
        pairs = [tuple(w.text.split("=", 1)) for w in words]
        for hit in _tls_env_hits([(p[0], p[1]) for p in pairs if len(p) == 2]):
            out.append(Fail(f"{hit} set in RUN disables TLS verification", location=rc.loc()))
    return out or Pass()


def _sig_bypass(rc: RunCommand) -> str:
    prog, low = rc.program, [w.text.lower() for w in rc.args]
    if prog == "apk" and "--allow-untrusted" in low:
        return "apk --allow-untrusted installs unsigned packages"
    if prog in APT:
        for t in low:
            if t in (
                "--allow-unauthenticated",
                "--force-yes",
                "--allow-insecure-repositories",
                "--allow-downgrades",
            ):
                return f"{prog} {t} accepts unauthenticated packages"
            if re.search(
                r"allowunauthenticated=(true|1|yes)|allowinsecurerepositories=(true|1)", t
            ):
                return f"{prog} -o {t} accepts unauthenticated packages"
    if prog in RPM_MANAGERS and any(t in ("--nogpgcheck", "--no-gpg-checks") for t in low):
        return f"{prog} --nogpgcheck installs unsigned packages"
    if prog in RPM_MANAGERS and any(re.search(r"gpgcheck=(0|false|no)", t) for t in low):
        return f"{prog} gpgcheck=0 installs unsigned packages"
    if prog == "rpm" and (
        bad := [
            t for t in low if t in ("--nodigest", "--nosignature", "--noverify", "--nofiledigest")
        ]
    ):
        return f"rpm {' '.join(bad)} skips package verification"
    if prog in ("echo", "printf", "tee", "sed") and any(
        "[trusted=yes]" in t or re.search(r"gpgcheck\s*=\s*0\b", t) for t in low
    ):
        return "repository configured without signature checks"
    if prog == "gpg" and "--always-trust" in low:
        return "gpg --always-trust accepts any key"
    return ""


@rules.rule(
    "DW-B024",
    "Package signatures verified",
    severity=HIGH,
    kind=KIND,
    references=(
        "checkov CKV2_DOCKER_7",
        "checkov CKV2_DOCKER_8",
        "checkov CKV2_DOCKER_9",
        "checkov CKV2_DOCKER_10",
        "checkov CKV2_DOCKER_11",
    ),
    remediation="Remove `--allow-untrusted`, `--allow-unauthenticated`, `--force-yes`, "
    "`--nogpgcheck`, `rpm --nosignature`, `[trusted=yes]`; import the repository key instead.",
    examples=lambda: ex(BASE + "RUN apk add --no-cache --allow-untrusted ./pkg.apk\n"),
)
def signatures_verified(d: Dockerfile) -> list[Outcome] | Outcome:
    """Skipping signature checks installs packages anyone on the path or a compromised mirror
    could have changed."""
    return _result((rc, msg) for rc in run_commands(d) if (msg := _sig_bypass(rc)))


def _pipe_to_shell(rcs: list[RunCommand]) -> list[tuple[RunCommand, str]]:
    out: list[tuple[RunCommand, str]] = []
    by_pipeline: dict[tuple[int, int, int], list[RunCommand]] = {}
    for rc in rcs:
        key = (id(rc.script), rc.command.depth, rc.command.pipeline)
        by_pipeline.setdefault(key, []).append(rc)
        # `sh -c "$(curl ...)"`, `bash <(curl ...)`, `. <(wget -O- ...)`
        if rc.program in INTERPRETERS:
            for w in rc.command.unwrapped()[1:]:
                for sub in w.subs:
                    if any(c.program in DOWNLOADERS for c in sub.all_commands()):
                        out.append((rc, f"downloaded script run by {rc.program}"))
    for group in by_pipeline.values():
        seen_download = None
        for rc in group:
            if rc.program in DOWNLOADERS and rc.command.pipe_out:
                seen_download = rc
            elif seen_download is not None and rc.command.pipe_in and rc.program in INTERPRETERS:
                out.append((seen_download, f"{seen_download.program} piped into {rc.program}"))
                seen_download = None
    return out


@rules.rule(
    "DW-B025",
    "No download piped into a shell",
    severity=HIGH,
    kind=KIND,
    remediation="Download to a file, verify its checksum or signature, then run it: "
    "`curl -fsSLo install.sh URL && echo 'SUM  install.sh' | sha256sum -c && sh install.sh`.",
    examples=lambda: ex(
        BASE + "RUN set -e; curl -fsSL https://get.example.sh \\\n    | sudo -E bash -\n"
    ),
)
def no_curl_pipe_shell(d: Dockerfile) -> list[Outcome] | Outcome:
    """`curl | sh` runs whatever the server returns at build time, unreviewed and unverified;
    a truncated download can even run half a script."""
    out: list[Outcome] = []
    for ins in instructions(d):
        if ins.keyword == "RUN":
            out += _fails(_pipe_to_shell(commands_of(d, ins)))
    return out or Pass()


def _shell_has_pipefail(d: Dockerfile, ins: Instruction) -> bool:
    shell: tuple[str, ...] | None = None
    for stage in d.stages:
        if stage.index != ins.stage:
            continue
        for i in stage.instructions:
            if i is ins:
                break
            if i.keyword == "SHELL" and i.json_args is not None:
                shell = i.json_args
    if shell is None:
        return False
    prog = shell[0].rsplit("/", 1)[-1] if shell else ""
    if prog not in SHELLS:
        return True  # pwsh, cmd: no POSIX pipes semantics to fix
    return "pipefail" in " ".join(shell)


@rules.rule(
    "DW-B026",
    "Pipes in RUN use pipefail",
    severity=LOW,
    kind=KIND,
    references=("hadolint DL4006",),
    remediation='Add `SHELL ["/bin/bash", "-o", "pipefail", "-c"]` before the RUN, or start the '
    "RUN with `set -o pipefail &&`.",
    examples=lambda: ex(BASE + "RUN wget -O - https://example.com/x | tar xz\n"),
)
def pipefail(d: Dockerfile) -> list[Outcome] | Outcome:
    """Without pipefail, `curl ... | tar x` succeeds when the download fails: the build goes on
    with a missing or partial file."""
    out: list[Outcome] = []
    for ins in instructions(d):
        if ins.keyword != "RUN" or ins.json_args is not None:
            continue
        rcs = commands_of(d, ins)
        if not any(rc.command.pipe_out and rc.command.depth == 0 for rc in rcs):
            continue
        if _shell_has_pipefail(d, ins):
            continue
        if any(rc.program == "set" and any("pipefail" in w.text for w in rc.args) for rc in rcs):
            continue
        out.append(
            Fail(
                "pipe without pipefail: a failing command before `|` is ignored",
                location=ins.location(d.path),
            )
        )
    return out or Pass()


def _manager_action(rc: RunCommand) -> tuple[str, str]:
    """(family, action) of a package-manager command: ("apt", "install"), ("apk", "add")..."""
    prog = rc.program
    sub = rc.subcommand()
    if prog in APT:
        return "apt", sub
    if prog == "apk":
        return "apk", sub
    if prog in RPM_MANAGERS:
        return prog, sub
    return "", ""


@rules.rule(
    "DW-B027",
    "Package index update installs in the same RUN",
    severity=LOW,
    kind=KIND,
    references=("dockle CIS-DI-0007", "checkov CKV_DOCKER_5"),
    remediation="Combine `apt-get update && apt-get install -y ...` in one RUN.",
    examples=lambda: ex(BASE + "RUN apt-get update\nRUN apt-get install -y curl=8.5.0-2\n"),
)
def update_with_install(d: Dockerfile) -> list[Outcome] | Outcome:
    """A cached `apt-get update` layer makes later installs use a stale index: old, vulnerable
    package versions or failing builds."""
    out: list[Outcome] = []
    for ins in instructions(d):
        if ins.keyword != "RUN":
            continue
        rcs = commands_of(d, ins)
        actions = [(rc, *_manager_action(rc)) for rc in rcs]
        updates = [
            rc
            for rc, fam, act in actions
            if act in ("update", "makecache", "refresh") and fam in ("apt", "apk")
        ]
        installs = [
            rc for rc, fam, act in actions if act in ("install", "add", "upgrade", "dist-upgrade")
        ]
        if updates and not installs:
            out.append(
                Fail(
                    "package index updated without an install in the same RUN",
                    location=updates[0].loc(),
                )
            )
    return out or Pass()


def _cache_mount(ins: Instruction, path: str) -> bool:
    return any(k == "mount" and "type=cache" in v and path in v for k, v in ins.flags)


def _removes(rcs: list[RunCommand], path: str) -> bool:
    return any(rc.program == "rm" and any(w.text.startswith(path) for w in rc.args) for rc in rcs)


@rules.rule(
    "DW-B028",
    "apt lists removed after install",
    severity=LOW,
    kind=KIND,
    references=("hadolint DL3009", "dockle DKL-DI-0005"),
    remediation="End the RUN with `&& rm -rf /var/lib/apt/lists/*` (or use "
    "`--mount=type=cache,target=/var/lib/apt`).",
    examples=lambda: ex(
        BASE + "RUN apt-get update && apt-get install -y --no-install-recommends curl=8.5.0-2\n"
    ),
)
def apt_lists_removed(d: Dockerfile) -> list[Outcome] | Outcome:
    """The apt package lists add tens of MB to the image and date it. Only the stages that ship
    in the final image are checked."""
    out: list[Outcome] = []
    for ins in instructions(d, final_stages(d)):
        if ins.keyword != "RUN":
            continue
        rcs = commands_of(d, ins)
        installs = [rc for rc in rcs if rc.program in APT and rc.subcommand() == "install"]
        if not installs:
            continue
        if _removes(rcs, "/var/lib/apt/lists") or _cache_mount(ins, "/var/lib/apt"):
            continue
        if any(rc.program in APT and rc.subcommand() == "dist-clean" for rc in rcs):
            continue
        out.append(
            Fail("apt lists not removed in the RUN that installs", location=installs[0].loc())
        )
    return out or Pass()


@rules.rule(
    "DW-B029",
    "apk cache not kept",
    severity=LOW,
    kind=KIND,
    references=("hadolint DL3019", "dockle DKL-DI-0004"),
    remediation="Use `apk add --no-cache ...`.",
    examples=lambda: ex(BASE + "RUN apk add curl=8.5.0-r0\n"),
)
def apk_no_cache(d: Dockerfile) -> list[Outcome] | Outcome:
    """The apk index cache stays in the layer unless `--no-cache` is used."""
    out: list[Outcome] = []
    for ins in instructions(d, final_stages(d)):
        if ins.keyword != "RUN":
            continue
        rcs = commands_of(d, ins)
        if _removes(rcs, "/var/cache/apk") or _cache_mount(ins, "/var/cache/apk"):
            continue
        for rc in rcs:
            if (
                rc.program == "apk"
                and rc.subcommand() == "add"
                and "--no-cache" not in rc.arg_texts()
            ):
                out.append(Fail("apk add without --no-cache", location=rc.loc()))
    return out or Pass()


@rules.rule(
    "DW-B030",
    "No full distribution upgrade",
    severity=INFO,
    kind=KIND,
    references=("dockle DKL-DI-0003", "hadolint DL3035"),
    remediation="Use a newer, patched base image instead of upgrading every package in a layer.",
    examples=lambda: ex(BASE + "RUN apt-get update && apt-get dist-upgrade -y\n"),
)
def no_dist_upgrade(d: Dockerfile) -> list[Outcome] | Outcome:
    """A dist-upgrade makes the image differ from its base in unreviewed ways and may pull in
    packages that need a restart or a newer kernel."""
    return _result(
        (rc, f"{rc.program} {rc.subcommand()}")
        for rc in run_commands(d)
        if (rc.program in APT and rc.subcommand() in ("dist-upgrade", "full-upgrade"))
        or (rc.program == "zypper" and rc.subcommand() in ("dist-upgrade", "dup"))
    )


@rules.rule(
    "DW-B031",
    "apt-get instead of apt",
    severity=INFO,
    kind=KIND,
    references=("hadolint DL3027", "checkov CKV_DOCKER_9"),
    remediation="Use `apt-get` (stable CLI) instead of `apt` in scripts.",
    examples=lambda: ex(BASE + "RUN apt install -y curl\n"),
)
def apt_get_not_apt(d: Dockerfile) -> list[Outcome] | Outcome:
    """`apt` has no stable command-line interface and warns so when used in scripts."""
    return _result(
        (rc, "apt used instead of apt-get") for rc in run_commands(d) if rc.program == "apt"
    )


@rules.rule(
    "DW-B032",
    "No recommended packages pulled in",
    severity=INFO,
    kind=KIND,
    references=("hadolint DL3015",),
    remediation="Add `--no-install-recommends` to `apt-get install`.",
    examples=lambda: ex(BASE + "RUN apt-get install -y curl=8.5.0-2\n"),
)
def no_recommends(d: Dockerfile) -> list[Outcome] | Outcome:
    """Recommended packages grow the attack surface with software nobody asked for."""

    def bad(rc: RunCommand) -> bool:
        texts = rc.arg_texts()
        return (
            rc.program in APT
            and rc.subcommand() == "install"
            and "--no-install-recommends" not in texts
            and not any("install-recommends=false" in t.lower() for t in texts)
        )

    return _result(
        (rc, "apt-get install without --no-install-recommends") for rc in run_commands(d) if bad(rc)
    )


_OPTS_WITH_VALUE = {
    "pip": {
        "-r",
        "-c",
        "-e",
        "-i",
        "-t",
        "--index-url",
        "--extra-index-url",
        "--target",
        "--prefix",
        "--root",
        "--requirement",
        "--constraint",
        "-f",
        "--find-links",
        "--trusted-host",
        "--platform",
        "--python-version",
        "--src",
        "--cache-dir",
    },
    "apt": {"-o", "-t", "--target-release", "-c"},
    "apk": {"-X", "--repository", "-t", "--virtual", "--root", "-p"},
    "npm": {"--prefix", "--registry", "-w", "--workspace"},
    "gem": {"-v", "--version", "-i", "--install-dir", "-s", "--source", "-n", "--bindir"},
    "rpm": {
        "--setopt",
        "--repo",
        "--enablerepo",
        "--disablerepo",
        "-c",
        "--releasever",
        "--installroot",
    },
    "go": {"-C", "-o", "-tags", "-ldflags"},
}


def _packages(rc: RunCommand, family: str) -> list[str]:
    out: list[str] = []
    args = list(rc.args)
    skip_next = False
    started = False
    opts = _OPTS_WITH_VALUE.get(family, set())
    for w in args:
        t = w.text
        if skip_next:
            skip_next = False
            continue
        if t.startswith("-"):
            if t in opts:
                skip_next = True
            continue
        if not started:
            started = True  # the subcommand
            continue
        out.append(t)
    return out


def _unpinned(rc: RunCommand) -> list[str]:
    prog, sub = rc.program, rc.subcommand()
    if prog in ("apt-get", "apt") and sub == "install":
        return [p for p in _packages(rc, "apt") if "=" not in p and not p.endswith(".deb")]
    if prog == "apk" and sub == "add":
        return [p for p in _packages(rc, "apk") if "=" not in p and not p.endswith(".apk")]
    if (prog.startswith("pip") or prog in ("uv",)) and sub == "install":
        if any(t in ("-r", "--requirement") for t in rc.arg_texts()):
            return []
        return [
            p
            for p in _packages(rc, "pip")
            if not re.search(r"==|@|\.whl$|\.tar\.gz$|\.zip$|^[./]|://", p)
        ]
    if (prog in ("npm", "pnpm") and sub in ("install", "i", "add")) or (
        prog == "yarn" and sub == "add"
    ):
        return [
            p
            for p in _packages(rc, "npm")
            if "@" not in p.lstrip("@") and not p.startswith((".", "/")) and "://" not in p
        ]
    if prog == "gem" and sub == "install":
        if any(t in ("-v", "--version") for t in rc.arg_texts()):
            return []
        return [p for p in _packages(rc, "gem") if ":" not in p]
    if prog in RPM_MANAGERS and sub == "install":
        return [
            p
            for p in _packages(rc, "rpm")
            if not re.search(r"-\d", p) and not p.endswith(".rpm") and "://" not in p
        ]
    if prog == "go" and sub == "install":
        return [p for p in _packages(rc, "go") if "@" not in p or p.endswith("@latest")]
    return []


@rules.rule(
    "DW-B033",
    "Package versions pinned",
    severity=INFO,
    kind=KIND,
    references=(
        "hadolint DL3008",
        "hadolint DL3013",
        "hadolint DL3016",
        "hadolint DL3018",
        "hadolint DL3028",
        "hadolint DL3033",
        "hadolint DL3037",
        "hadolint DL3041",
        "hadolint DL3062",
    ),
    remediation="Pin versions: `apt-get install curl=8.5.0-2`, `pip install flask==3.0.0`, "
    "`npm install left-pad@1.3.0`, `apk add curl=8.5.0-r0`, `go install x@v1.2.3`.",
    examples=lambda: ex(BASE + "RUN pip install flask requests==2.31.0\n"),
)
def packages_pinned(d: Dockerfile) -> list[Outcome] | Outcome:
    """Unpinned packages make the build non-reproducible: a rebuild can pull a different (or
    compromised) version."""
    return _result(
        (rc, f"{rc.program} {rc.subcommand()}: unpinned {', '.join(pk)}")
        for rc in run_commands(d)
        if (pk := _unpinned(rc))
    )


_MODE_OPTION = re.compile(r"-[rwxXst]+")


def _chmod(rc: RunCommand) -> tuple[str, bool, list[str]]:
    """(mode, recursive, targets) of a chmod command; mode "" when there is none."""
    mode, recursive, targets = "", False, []
    for w in rc.args:
        t = w.text
        if not mode and t.startswith("-") and not _MODE_OPTION.fullmatch(t):
            recursive |= t in ("-R", "--recursive") or (not t.startswith("--") and "R" in t[1:])
            continue
        if not mode:
            mode = t
        else:
            targets.append(posixpath.normpath(t))
    return mode, recursive, targets


def _mode_grants(mode: str) -> tuple[bool, bool]:
    """(others may write, sticky bit set) for an octal or symbolic chmod mode."""
    if re.fullmatch(r"[0-7]{3,5}", mode):
        sticky = len(mode) >= 4 and bool(int(mode[-4]) & 1)
        return bool(int(mode[-1]) & 2), sticky
    writes = sticky = False
    for clause in mode.split(","):
        m = re.fullmatch(r"([ugoa]*)([+=])([rwxXst]*)", clause)
        if m is None:
            continue
        who, _, perms = m.groups()
        # Without a who, umask (022 in builds) keeps others from writing.
        writes |= "w" in perms and ("o" in who or "a" in who)
        sticky |= "t" in perms
    return writes, sticky


def _sticky_targets(d: Dockerfile) -> set[str]:
    out: set[str] = set()
    for rc in run_commands(d):
        if rc.program == "chmod":
            mode, _, targets = _chmod(rc)
            if _mode_grants(mode)[1]:
                out.update(targets)
    return out


def _world_writable(rc: RunCommand, sticky_dirs: set[str]) -> str:
    if rc.program != "chmod":
        return ""
    mode, recursive, targets = _chmod(rc)
    writes, sticky = _mode_grants(mode)
    if not writes:
        return ""
    # A sticky world-writable directory (/tmp's 1777) lets others create files but not replace
    # anyone else's: the shared-temp pattern, not a weakness. Recursive, it reaches the files.
    if not recursive and targets and (sticky or all(t in sticky_dirs for t in targets)):
        return ""
    if recursive and sticky:
        return f"chmod -R {mode} makes the files below world-writable (sticky only protects directories)"
    return f"chmod {mode} makes files world-writable"


@rules.rule(
    "DW-B034",
    "No world-writable files",
    severity=MED,
    kind=KIND,
    remediation="Grant write access to the owner only (`chmod 755`, `chmod u+w`) and `chown` the "
    "files to the runtime user if it must write them.",
    examples=lambda: ex(BASE + "RUN mkdir -p /app && chmod -R 777 /app\n"),
)
def no_world_writable(d: Dockerfile) -> list[Outcome] | Outcome:
    """A world-writable file or directory lets any process in the container change what others
    execute or read. A directory with the sticky bit (`chmod 1777`, `chmod +t`, the shared-temp
    pattern) is not reported: others may add files there but not replace anyone else's."""
    sticky = _sticky_targets(d)
    return _result((rc, msg) for rc in run_commands(d) if (msg := _world_writable(rc, sticky)))


def _password_change(rc: RunCommand) -> str:
    prog, texts = rc.program, rc.arg_texts()
    if prog in ("chpasswd", "chgpasswd"):
        return f"{prog} sets a password from the build"
    if prog == "passwd" and any(t in ("-d", "--delete") for t in texts):
        return "passwd -d leaves an account without a password"
    if prog in ("usermod", "useradd") and any(t in ("-p", "--password") for t in texts):
        return f"{prog} -p sets a password hash in the image"
    return ""


@rules.rule(
    "DW-B035",
    "No passwords set in the image",
    severity=MED,
    kind=KIND,
    references=("checkov CKV2_DOCKER_17", "dockle DKL-LI-0001"),
    remediation="Do not give image accounts passwords; lock them (`usermod -L`) and use keys or "
    "`docker exec`.",
    examples=lambda: ex(BASE + "RUN echo 'root:toor' | chpasswd\n"),
)
def no_passwords(d: Dockerfile) -> list[Outcome] | Outcome:
    """A password set at build time is in the layer history and the same in every container."""
    return _result((rc, msg) for rc in run_commands(d) if (msg := _password_change(rc)))


ADMIN_TOOLS = frozenset(
    {"ssh", "vim", "shutdown", "service", "ps", "free", "top", "kill", "mount", "ifconfig", "nano"}
)


@rules.rule(
    "DW-B036",
    "No interactive or host-administration commands in RUN",
    severity=INFO,
    kind=KIND,
    references=("hadolint DL3001",),
    remediation="Remove ssh, vim, shutdown, service, mount ... from RUN: they do nothing useful "
    "in a build.",
    examples=lambda: ex(BASE + "RUN service nginx start\n"),
)
def no_admin_tools(d: Dockerfile) -> list[Outcome] | Outcome:
    """These commands manage a host or need a terminal; in a build they point at a design that
    treats the container like a VM."""
    return _result(
        (rc, f"{rc.program} used in RUN") for rc in run_commands(d) if rc.program in ADMIN_TOOLS
    )


@rules.rule(
    "DW-B037",
    "No credentials in RUN",
    severity=HIGH,
    kind=KIND,
    references=("checkov CKV_SECRET_*",),
    remediation="Use `RUN --mount=type=secret,id=token` and read the secret from "
    "/run/secrets/token; rotate the leaked credential.",
    examples=lambda: ex(
        BASE
        + "RUN git clone https://bob:ghp_0123456789abcdefghijABCDEFGHIJ0123456789@github.com/o/r\n"
    ),
)
def no_run_credentials(d: Dockerfile) -> list[Outcome] | Outcome:
    """A token or password in a RUN line is stored in the image history for everyone who can
    pull the image. The value is never shown."""
    out: list[Outcome] = []
    for rc in run_commands(d):
        for w in rc.command.words:
            kind = secret_shape(w.text)
            if kind:
                out.append(Fail(f"{kind} in RUN", location=rc.loc(w)))
                break
    return out or Pass()


def _setuid(rc: RunCommand) -> str:
    if rc.program != "chmod":
        return ""
    for w in rc.args:
        t = w.text
        octal = re.fullmatch(r"[0-7]{4}", t) is not None and t[0] in "2346"
        if octal or re.search(r"(^|,)[ugoa]*\+[rwxXt]*s", t):
            return f"chmod {t} sets a setuid/setgid bit"
    return ""


@rules.rule(
    "DW-B038",
    "No setuid or setgid bits set",
    severity=LOW,
    kind=KIND,
    references=("dockle CIS-DI-0008",),
    remediation="Do not add setuid/setgid bits; give the binary the one capability it needs "
    "(`setcap`) or run it as the right user.",
    examples=lambda: ex(BASE + "RUN chmod u+s /usr/local/bin/helper\n"),
)
def no_setuid(d: Dockerfile) -> list[Outcome] | Outcome:
    """A setuid-root binary is a ready-made way to root inside the container for any user."""
    return _result((rc, msg) for rc in run_commands(d) if (msg := _setuid(rc)))
