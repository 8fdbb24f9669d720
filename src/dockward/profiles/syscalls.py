"""Syscall names and numbers per architecture, and the arch names seccomp profiles use."""

from __future__ import annotations

import json
import platform
from functools import cache
from importlib import resources

# Go arch names (profile `arches`) to libseccomp arch names, and back.
GO_TO_SCMP: dict[str, str] = {
    "amd64": "SCMP_ARCH_X86_64",
    "x86": "SCMP_ARCH_X86",
    "386": "SCMP_ARCH_X86",
    "x32": "SCMP_ARCH_X32",
    "arm64": "SCMP_ARCH_AARCH64",
    "arm": "SCMP_ARCH_ARM",
    "mips": "SCMP_ARCH_MIPS",
    "mips64": "SCMP_ARCH_MIPS64",
    "mips64n32": "SCMP_ARCH_MIPS64N32",
    "mipsel": "SCMP_ARCH_MIPSEL",
    "mipsel64": "SCMP_ARCH_MIPSEL64",
    "mipsel64n32": "SCMP_ARCH_MIPSEL64N32",
    "ppc": "SCMP_ARCH_PPC",
    "ppc64": "SCMP_ARCH_PPC64",
    "ppc64le": "SCMP_ARCH_PPC64LE",
    "s390": "SCMP_ARCH_S390",
    "s390x": "SCMP_ARCH_S390X",
    "riscv64": "SCMP_ARCH_RISCV64",
    "loong64": "SCMP_ARCH_LOONGARCH64",
}
SCMP_ARCHES = frozenset(GO_TO_SCMP.values())

# audit's `arch=` field (AUDIT_ARCH_*) to the syscall table it numbers into.
AUDIT_ARCH_TABLE: dict[int, str] = {0xC000003E: "x86_64", 0x40000003: "x86"}

# Machine names from uname to Go arch names.
_MACHINE_TO_GO = {"x86_64": "amd64", "aarch64": "arm64", "s390x": "s390x", "ppc64le": "ppc64le"}


def host_arch() -> str:
    """The host's Go arch name (`amd64` on x86_64)."""
    machine = platform.machine()
    return _MACHINE_TO_GO.get(machine, machine)


@cache
def _tables() -> dict[str, dict[str, int]]:
    raw = resources.files("dockward.profiles").joinpath("data/syscalls.json").read_text()
    tables: dict[str, dict[str, int]] = json.loads(raw)["tables"]
    return tables


def table(name: str = "x86_64") -> dict[str, int]:
    """Syscall name -> number for one table (`x86_64` or `x86`)."""
    try:
        return _tables()[name]
    except KeyError as exc:
        raise KeyError(f"no syscall table for {name}") from exc


@cache
def names_by_number(name: str = "x86_64") -> dict[int, str]:
    return {nr: n for n, nr in table(name).items()}


def known_names() -> frozenset[str]:
    """Every syscall name any table knows (profiles may name calls of other arches)."""
    out: set[str] = set()
    for t in _tables().values():
        out.update(t)
    return frozenset(out)
