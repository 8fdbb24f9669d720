"""Which host paths a bind mount must not expose, judged by what the path is, not by its prefix.

Three kinds of host path (all paths normalised, matched on whole components):

- **Sensitive trees**: the path or anything below it fails, read-only too: the kernel's and the
  engine's interfaces and the host's secrets (`/boot`, `/dev`, `/proc`, `/sys`, `/var/lib/docker`,
  `/var/lib/containerd`, `/etc/shadow`, `/etc/gshadow`, `/etc/sudoers(.d)`, `/etc/ssh`,
  `/etc/docker`, `/root`, `/home`, `/lib/modules`, `/usr/lib/modules`).
- **System directories** and their system subdirectories fail when mounted whole, read-only too:
  `/`, `/etc`, `/usr`, `/bin`, `/sbin`, `/lib*`, `/var`, `/run`, `/var/run`, and
  `/usr/{bin,sbin,lib*,libexec,include,share,src,local}`,
  `/usr/local/{bin,sbin,lib*,libexec,share,etc}`, `/var/{lib,log,cache,spool,mail,opt,backups,tmp}`.
- **Code and configuration trees**: a *writable* mount at or below them fails (it can plant code the
  host runs or change its configuration): `/etc`, `/bin`, `/sbin`, `/lib*`, `/usr/bin`, `/usr/sbin`,
  `/usr/lib*`, `/usr/libexec`, `/usr/local/bin`, `/usr/local/sbin`, `/usr/local/lib*`,
  `/usr/local/libexec`, `/usr/local/etc`, `/var/spool/cron`, and `/run`, `/var/run` (the sockets of
  system daemons) except `/run/user`.

Anything else passes: application data below a system directory (`/usr/<vendor>/data`,
`/usr/share/nginx/html`, `/var/lib/app`, `/opt/app/data`) is the application's, writable or not.
"""

from __future__ import annotations

import posixpath

SENSITIVE_TREES = (
    "/boot",
    "/dev",
    "/proc",
    "/sys",
    "/var/lib/docker",
    "/var/lib/containerd",
    "/etc/shadow",
    "/etc/gshadow",
    "/etc/sudoers",
    "/etc/sudoers.d",
    "/etc/ssh",
    "/etc/docker",
    "/root",
    "/home",
    "/lib/modules",
    "/usr/lib/modules",
)

_LIBS = ("lib", "lib32", "lib64", "libx32")
SYSTEM_DIRS = frozenset(
    (
        "/",
        "/etc",
        "/usr",
        "/bin",
        "/sbin",
        *(f"/{lib}" for lib in _LIBS),
        "/var",
        "/run",
        "/var/run",
        *(
            f"/usr/{d}"
            for d in ("bin", "sbin", *_LIBS, "libexec", "include", "share", "src", "local")
        ),
        *(f"/usr/local/{d}" for d in ("bin", "sbin", *_LIBS, "libexec", "share", "etc")),
        *(
            f"/var/{d}"
            for d in ("lib", "log", "cache", "spool", "mail", "opt", "backups", "tmp", "local")
        ),
    )
)

CODE_AND_CONFIG_TREES = (
    "/etc",
    "/bin",
    "/sbin",
    *(f"/{lib}" for lib in _LIBS),
    "/usr/bin",
    "/usr/sbin",
    *(f"/usr/{lib}" for lib in _LIBS),
    "/usr/libexec",
    "/usr/local/bin",
    "/usr/local/sbin",
    *(f"/usr/local/{lib}" for lib in _LIBS),
    "/usr/local/libexec",
    "/usr/local/etc",
    "/var/spool/cron",
    "/run",
    "/var/run",
)
_WRITABLE_EXCEPTIONS = ("/run/user", "/var/run/user")


def under(path: str, tree: str) -> bool:
    return path == tree or (tree != "/" and path.startswith(tree + "/"))


def sensitive_reason(source: str, read_only: bool) -> str:
    """Why mounting host path `source` is sensitive, or "" when it is the application's own."""
    src = posixpath.normpath(source) if source else ""
    if src.startswith("//"):
        src = "/" + src.lstrip("/")
    for tree in SENSITIVE_TREES:
        if under(src, tree):
            return f"below {tree}" if src != tree else "host secrets or kernel interface"
    if src in SYSTEM_DIRS:
        return "a whole system directory"
    if not read_only and not any(under(src, t) for t in _WRITABLE_EXCEPTIONS):
        for tree in CODE_AND_CONFIG_TREES:
            if under(src, tree):
                return f"writable below {tree}"
    return ""
