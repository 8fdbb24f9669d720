"""Subordinate id ranges (/etc/subuid, /etc/subgid) for `userns-remap`.

dockerd maps container root to the first id of the remap user's subordinate range; with
`"userns-remap": "default"` it creates the user `dockremap` and its ranges itself (useradd,
usermod), with a named user it refuses to start when the user or its ranges are missing.
"""

from __future__ import annotations

import grp
import pwd
import shutil
from dataclasses import dataclass
from pathlib import Path

DEFAULT_REMAP_USER = "dockremap"
MIN_RANGE = 65536  # a full 16-bit id space: images with uids up to 65535 keep working


@dataclass(frozen=True, slots=True)
class IdRange:
    start: int
    count: int

    @property
    def end(self) -> int:
        return self.start + self.count - 1

    def __str__(self) -> str:
        return f"{self.start}-{self.end}"


@dataclass(frozen=True, slots=True)
class RemapCheck:
    """What remapping to `user` would do on this host; `problems` stop dockerd from starting."""

    user: str
    group: str
    uid_ranges: tuple[IdRange, ...]
    gid_ranges: tuple[IdRange, ...]
    problems: tuple[str, ...]
    notes: tuple[str, ...]

    @property
    def root_uid(self) -> int | None:
        return self.uid_ranges[0].start if self.uid_ranges else None

    @property
    def root_gid(self) -> int | None:
        return self.gid_ranges[0].start if self.gid_ranges else None


def parse_subid(text: str, names: set[str]) -> tuple[IdRange, ...]:
    """The ranges of `names` (user name or numeric id) in subuid/subgid syntax `name:start:count`.
    Malformed lines are skipped, as shadow's tools do."""
    out: list[IdRange] = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split(":")
        if len(parts) != 3 or parts[0] not in names:
            continue
        try:
            start, count = int(parts[1]), int(parts[2])
        except ValueError:
            continue
        if start >= 0 and count > 0:
            out.append(IdRange(start, count))
    return tuple(out)


def _read(path: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""


def check_remap(
    value: str, *, subuid: str = "/etc/subuid", subgid: str = "/etc/subgid"
) -> RemapCheck:
    """Check the subordinate ids of a `userns-remap` value (`default`, `user`, `user:group`)."""
    user, _, group = value.partition(":")
    default = user == "default"
    if default:
        user = DEFAULT_REMAP_USER
    group = group or user
    problems: list[str] = []
    notes: list[str] = []
    uid_names, gid_names = {user}, {group}
    try:
        pw = pwd.getpwnam(user)
        uid_names.add(str(pw.pw_uid))
    except KeyError:
        if not default:
            problems.append(f"user {user!r} does not exist (dockerd cannot start with it)")
    try:
        gid_names.add(str(grp.getgrnam(group).gr_gid))
    except KeyError:
        if not default:
            problems.append(f"group {group!r} does not exist")
    uids = parse_subid(_read(subuid), uid_names)
    gids = parse_subid(_read(subgid), gid_names)
    if default and not (uids and gids):
        missing = [t for t in ("useradd", "usermod") if shutil.which(t) is None]
        if missing:
            problems.append(
                f"dockerd creates {user} and its ranges with useradd/usermod, "
                f"but {', '.join(missing)} is not installed"
            )
        else:
            notes.append(
                f"dockerd will create user {user} and give it {MIN_RANGE} subordinate uids and "
                f"gids in {subuid} and {subgid} at its first start"
            )
    else:
        for kind, ranges, path in (("uid", uids, subuid), ("gid", gids, subgid)):
            if not ranges:
                problems.append(f"no subordinate {kind} range for {user} in {path}")
            elif sum(r.count for r in ranges) < MIN_RANGE:
                notes.append(
                    f"{user} has only {sum(r.count for r in ranges)} subordinate {kind}s: images "
                    f"with {kind}s above that fail to unpack"
                )
            elif ranges[0].start == 0:
                problems.append(f"the subordinate {kind} range of {user} starts at 0 (host root)")
        if uids and gids:
            notes.append(
                f"container root becomes host uid {uids[0].start} gid {gids[0].start} "
                f"(ranges {', '.join(map(str, uids))} / {', '.join(map(str, gids))})"
            )
    return RemapCheck(user, group, uids, gids, tuple(problems), tuple(notes))
