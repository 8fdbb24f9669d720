"""An AppArmor profile from what the workload did: the programs it ran (the `exe` of its seccomp
audit records) and the paths it wrote (`docker diff`), validated by `apparmor_parser -Q -K`.

The profile follows docker-default, but replaces its `file,` (any file access) with: read
anywhere, write only under the directories the workload wrote to (and its tmpfs mounts), execute
only the programs it ran. When a learned path cannot be written as an AppArmor rule safely, the
profile keeps `file,` and says so, rather than deny something the workload needs.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterable
from dataclasses import dataclass

from dockward.errors import DockwardError
from dockward.harden.propose import tmpfs_targets
from dockward.harden.runner import Settings
from dockward.profiles.apparmor import AppArmorSpec, _path_ok, render, validate


@dataclass(frozen=True, slots=True)
class LearnedAppArmor:
    spec: AppArmorSpec
    text: str
    validated: bool | None  # None: apparmor_parser is not installed here
    note: str


def writable_paths(written: Iterable[str], tmpfs: Iterable[str]) -> tuple[str, ...]:
    """`/dir/**` for each written tree (as tmpfs_targets groups them), files written at `/`
    as themselves, and every tmpfs mount."""
    written = tuple(written)
    dirs = set(tmpfs_targets(written)) | {d.rstrip("/") or "/" for d in tmpfs}
    files = {p for p in written if p.count("/") == 1 and p not in dirs}
    return tuple(sorted({f"{d}/**" for d in dirs if d != "/"} | files))


def learn_apparmor(
    name: str,
    settings: Settings,
    executables: Iterable[str],
    written: Iterable[str],
    tmpfs: Iterable[str] = (),
) -> LearnedAppArmor:
    exes = sorted(set(executables))
    writable = writable_paths(written, [*settings.tmpfs, *tmpfs])
    unsafe = [p for p in [*exes, *writable] if not _path_ok(p)]
    strict = bool(exes) and not unsafe
    if not exes:
        note = "no program was recorded: file access left as docker-default's `file,`"
    elif unsafe:
        note = f"`file,` kept: {unsafe[0]!r} cannot be written as an AppArmor rule safely"
    else:
        note = f"file rules learned: exec {len(exes)} program(s), write {len(writable)} path(s)"
    spec = AppArmorSpec(
        name=name,
        writable_paths=tuple(p for p in writable if _path_ok(p)),
        allow_exec=tuple(exes) if strict else (),
        cap_allow=tuple(c.lower() for c in settings.cap_add),
        raw="NET_RAW" in settings.cap_add,
        strict_files=strict,
    )
    text = render(spec)
    validated: bool | None = None
    if shutil.which("apparmor_parser"):
        try:
            validate(text)
            validated = True
        except DockwardError as exc:
            validated = False
            note += f"; {exc}"
    return LearnedAppArmor(spec, text, validated, note)
