"""AppArmor from bane TOML and dockward YAML: golden files, every one compiled by apparmor_parser."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from dockward.errors import DockwardError, InputError
from dockward.profiles.apparmor import (
    install,
    load_spec,
    parse_bane_toml,
    parse_yaml,
    render,
    validate,
)

HERE = Path(__file__).parent / "apparmor"
INPUTS = sorted(p.name for p in HERE.iterdir() if p.suffix in (".toml", ".yaml"))
UPDATE = os.environ.get("DOCKWARD_UPDATE_GOLDEN") == "1"


@pytest.mark.parametrize("name", INPUTS)
def test_golden_and_accepted_by_apparmor_parser(name: str) -> None:
    text = render(load_spec(str(HERE / name)))
    golden = HERE / (name.rsplit(".", 1)[0] + ".profile")
    if UPDATE:
        golden.write_text(text)
    assert text == golden.read_text()
    validate(text)


def test_bane_semantics() -> None:
    spec = load_spec(str(HERE / "nginx.toml"))
    text = render(spec)
    assert "profile docker-nginx flags=(attach_disconnected,mediate_deleted) {" in text
    assert "  deny /bin/** wl," in text and "  audit /** w," in text
    assert "  /var/run/nginx.pid w," in text and "  /usr/sbin/nginx ix," in text
    assert "  deny /bin/sh mrwklx," in text and "  capability chown," in text
    assert "  capability,\n" not in text
    assert "  network,\n" in text and "  deny network raw," in text
    deny = render(load_spec(str(HERE / "deny-caps.toml")))
    assert "  capability,\n" in deny and "  deny capability sys_admin," in deny
    assert "capability sys_admin,\n" not in deny.replace("deny capability sys_admin,", "")
    assert "  network inet tcp," in deny and "deny network raw" not in deny
    minimal = render(load_spec(str(HERE / "minimal.toml")))
    assert "capability" not in minimal.replace("deny capability", "")
    # the docker-default template parts
    for rule in (
        "signal (receive) peer=runc,",
        "ptrace (trace,read,tracedby,readby) peer=docker-minimal,",
        "deny @{PROC}/sysrq-trigger rwklx,",
        "deny /sys/firmware/** rwklx,",
        "deny mount,",
    ):
        assert rule in minimal


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('Name = "x"\n[Filesystem]\nWritablePaths = ["/a, /b"]\n', "not a safe AppArmor path"),
        ('Name = "x"\n[Filesystem]\nWritablePaths = ["/a\\n}"]\n', "not a safe AppArmor path"),
        ('Name = "x"\n[Filesystem]\nWritablePaths = ["relative"]\n', "not a safe AppArmor path"),
        ('Name = "x y"\n', "Name must be"),
        ('Name = "x"\nBogus = 1\n', "unknown key Bogus"),
        ('Name = "x"\n[Capabilities]\nAllow = ["root"]\n', "unknown capability"),
        ('Name = "x"\n[Network]\nProtocols = ["sctp"]\n', "unknown protocol"),
        ('Name = "x"\n[Network]\nRaw = "yes"\n', "expected true or false"),
        ("Name = ", "not TOML"),
    ],
)
def test_hostile_or_bad_input_is_one_clear_error(text: str, message: str) -> None:
    with pytest.raises(InputError, match=message):
        parse_bane_toml(text, "in.toml")


def test_yaml_unknown_key() -> None:
    with pytest.raises(InputError, match=r"unknown key filesystem\.rw"):
        parse_yaml("name: a\nfilesystem: {rw: [/x]}\n")


def test_install_says_the_kernel_has_no_apparmor() -> None:
    if Path("/sys/module/apparmor/parameters/enabled").exists():
        pytest.skip("this kernel has AppArmor; the no-AppArmor message is not reachable")
    spec = load_spec(str(HERE / "minimal.toml"))
    with pytest.raises(DockwardError, match="no AppArmor"):
        install(render(spec), spec, profile_dir="/tmp/dwharden-aa-never")
    assert not Path("/tmp/dwharden-aa-never").exists()


def test_parser_rejection_is_reported() -> None:
    with pytest.raises(InputError, match="apparmor_parser rejected"):
        validate("profile broken {\n  not a rule\n}\n")
