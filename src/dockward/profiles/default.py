"""Docker's default seccomp profile as data dockward owns (the engine 20.10 profile)."""

from __future__ import annotations

from functools import cache
from importlib import resources

import yaml

from dockward.model.container import DEFAULT_CAPABILITIES
from dockward.profiles.seccomp import SeccompProfile, parse_profile, resolve
from dockward.profiles.syscalls import host_arch

DEFAULT_ENGINE = "20.10"


@cache
def default_profile() -> SeccompProfile:
    """The default profile with its cap/arch/kernel conditions, as dockerd ships it."""
    text = resources.files("dockward.profiles").joinpath("data/seccomp-default.yaml").read_text()
    return parse_profile(yaml.safe_load(text))


def host_kernel() -> tuple[int, int]:
    import os

    release = os.uname().release
    parts = release.split(".")
    try:
        return int(parts[0]), int("".join(ch for ch in parts[1] if ch.isdigit()) or 0)
    except (IndexError, ValueError):
        return (0, 0)


def default_for(
    caps: frozenset[str] | set[str] = DEFAULT_CAPABILITIES,
    arch: str | None = None,
    kernel: tuple[int, int] | None = None,
) -> SeccompProfile:
    """The default profile as the engine applies it to a container with bounding set `caps`."""
    return resolve(default_profile(), caps, arch or host_arch(), kernel or host_kernel())
