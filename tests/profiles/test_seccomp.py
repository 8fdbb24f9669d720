"""The seccomp model: strict parsing, rendering round trip, resolution, diff/merge/explain."""

from __future__ import annotations

import json

import pytest

from dockward.errors import InputError
from dockward.model.container import DEFAULT_CAPABILITIES
from dockward.profiles.compare import diff, explain, merge, restrict
from dockward.profiles.default import default_for, default_profile
from dockward.profiles.seccomp import allowed, dumps, effects, loads, parse_profile, render, resolve


def test_render_round_trips() -> None:
    prof = default_profile()
    assert loads(dumps(prof)) == prof


def test_default_counts_on_amd64() -> None:
    resolved = default_for(DEFAULT_CAPABILITIES, "amd64", (6, 1))
    names = allowed(resolved)
    assert 340 <= len(names) <= 380
    assert "mount" not in names and "unshare" not in names and "ptrace" in names
    eff = effects(resolved)
    assert str(eff["clone3"]) == "errno(38)"
    assert eff["clone"].conditional and eff["personality"].conditional


def test_resolution_follows_the_engine() -> None:
    raw = default_profile()
    with_admin = resolve(raw, DEFAULT_CAPABILITIES | {"SYS_ADMIN"}, "amd64", (6, 1))
    assert "mount" in allowed(with_admin)
    assert not effects(with_admin)["clone"].conditional
    assert effects(with_admin)["clone3"].action == "SCMP_ACT_ALLOW"
    old_kernel = resolve(raw, DEFAULT_CAPABILITIES, "amd64", (4, 4))
    assert "ptrace" not in allowed(old_kernel)
    arm = resolve(raw, DEFAULT_CAPABILITIES, "arm64", (6, 1))
    assert "arch_prctl" not in allowed(arm) and "set_tls" in allowed(arm)


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({"defaultAction": "SCMP_ACT_NOPE"}, "unknown action"),
        ({"defaultAction": "SCMP_ACT_ERRNO", "bogus": 1}, "unknown key 'bogus'"),
        (
            {
                "defaultAction": "SCMP_ACT_ERRNO",
                "architectures": ["SCMP_ARCH_X86_64"],
                "archMap": [{"architecture": "SCMP_ARCH_X86_64"}],
            },
            "cannot both",
        ),
        (
            {
                "defaultAction": "SCMP_ACT_ERRNO",
                "syscalls": [{"name": "read", "names": ["read"], "action": "SCMP_ACT_ALLOW"}],
            },
            "both 'name' and 'names'",
        ),
        (
            {
                "defaultAction": "SCMP_ACT_ERRNO",
                "syscalls": [
                    {
                        "names": ["read"],
                        "action": "SCMP_ACT_ALLOW",
                        "args": [{"index": 9, "value": 0, "op": "SCMP_CMP_EQ"}],
                    }
                ],
            },
            "index",
        ),
        (
            {
                "defaultAction": "SCMP_ACT_ERRNO",
                "syscalls": [
                    {"names": ["read"], "action": "SCMP_ACT_ALLOW", "includes": {"minKernel": "4"}}
                ],
            },
            "minKernel",
        ),
        (
            {
                "defaultAction": "SCMP_ACT_ERRNO",
                "syscalls": [{"names": ["../x"], "action": "SCMP_ACT_ALLOW"}],
            },
            "not a syscall name",
        ),
        ([], "expected an object"),
    ],
)
def test_strict_parsing(doc: object, message: str) -> None:
    with pytest.raises(InputError, match=message):
        parse_profile(doc)


def test_not_json_is_one_clear_error() -> None:
    with pytest.raises(InputError, match=r"p\.json: not JSON"):
        loads("{", "p.json")


def test_legacy_name_key_is_read() -> None:
    prof = parse_profile(
        {
            "defaultAction": "SCMP_ACT_ERRNO",
            "syscalls": [{"name": "read", "action": "SCMP_ACT_ALLOW"}],
        }
    )
    assert render(prof)["syscalls"][0]["names"] == ["read"]


def test_diff_merge_explain() -> None:
    base = default_for(DEFAULT_CAPABILITIES, "amd64", (6, 1))
    small = restrict(base, {"read", "write", "clone", "exit_group"})
    assert allowed(small) == {"read", "write", "clone", "exit_group"}
    assert effects(small)["clone"].conditional  # argument checks survive restriction
    d = diff(base, small)
    assert not d.added and len(d.removed) == len(allowed(base)) - 4
    extra = parse_profile(
        {
            "defaultAction": "SCMP_ACT_ERRNO",
            "defaultErrnoRet": 1,
            "syscalls": [{"names": ["mount", "read"], "action": "SCMP_ACT_ALLOW"}],
        }
    )
    merged = merge(small, extra)
    assert allowed(merged) == {"read", "write", "clone", "exit_group", "mount"}
    why = {e.syscall: e.why_default_denies for e in explain(merged, base, default_profile())}
    assert why == {"mount": "needs CAP_SYS_ADMIN"}
    with pytest.raises(InputError, match="different default actions"):
        merge(small, parse_profile({"defaultAction": "SCMP_ACT_KILL"}))


def test_rendered_json_is_what_dockerd_reads() -> None:
    out = json.loads(dumps(default_profile()))
    assert out["defaultAction"] == "SCMP_ACT_ERRNO" and out["defaultErrnoRet"] == 1
    assert out["archMap"][0] == {
        "architecture": "SCMP_ARCH_X86_64",
        "subArchitectures": ["SCMP_ARCH_X86", "SCMP_ARCH_X32"],
    }
    assert any(g.get("includes", {}).get("caps") == ["CAP_SYS_ADMIN"] for g in out["syscalls"])
