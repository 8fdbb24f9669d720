"""Parts of a proposal built without the engine: the learned seccomp profile from the recorded
calls (an observed call the default answers with an errno keeps that answer, a call's C-library
fallback is allowed with it), and what a trial wrote, less the mount points the engine made."""

from __future__ import annotations

from dockward.harden.learn import learned_names, learned_profile
from dockward.profiles.default import default_for
from dockward.profiles.seccomp import Effect, allowed, effects

OBSERVED = {"clone3", "read", "write", "openat", "mount"}


def _learned(caps: frozenset[str]) -> dict[str, Effect]:
    base = default_for(caps)
    keep = learned_names(set(OBSERVED), allowed(base))
    return dict(effects(learned_profile(base, set(OBSERVED), keep, set())))


def test_clone3_answers_enosys_and_clone_is_allowed_without_sys_admin() -> None:
    eff = _learned(frozenset())
    clone3 = eff["clone3"]
    assert clone3.action == "SCMP_ACT_ERRNO" and clone3.errno_ret == 38
    assert eff["clone"].action == "SCMP_ACT_ALLOW"  # not recorded
    assert "mount" not in eff  # denied by the default: the profile's EPERM, never wider
    assert {"read", "write", "openat"} <= set(eff)


def test_with_sys_admin_clone3_is_allowed_as_by_the_default() -> None:
    eff = _learned(frozenset({"CAP_SYS_ADMIN"}))
    assert eff["clone3"].action == "SCMP_ACT_ALLOW"
    assert eff["mount"].action == "SCMP_ACT_ALLOW"


def test_mount_points_the_engine_made_are_not_writes() -> None:
    from dockward.harden.propose import tmpfs_targets, written_paths

    # `docker diff` of the proxy: the bind targets and their new parents, nothing it wrote
    diff = [{"Kind": 0, "Path": "/run"}, {"Kind": 1, "Path": "/run/docker.sock"},
            {"Kind": 0, "Path": "/etc"}, {"Kind": 1, "Path": "/etc/dockward"},
            {"Kind": 1, "Path": "/etc/dockward/proxy-policy.yaml"}]  # fmt: skip
    targets = {"/var/run/docker.sock", "/etc/dockward/proxy-policy.yaml", "/run/dockward"}
    assert written_paths(diff, targets) == ()
    # a file the workload wrote beside a mount point still counts
    wrote = [*diff, {"Kind": 1, "Path": "/etc/app.conf"}, {"Kind": 2, "Path": "/var/gone"}]
    assert written_paths(wrote, targets) == ("/etc/app.conf",)
    assert tmpfs_targets(written_paths(wrote, targets)) == ("/etc",)
    assert written_paths(diff, set()) == tuple(sorted(c["Path"] for c in diff))
