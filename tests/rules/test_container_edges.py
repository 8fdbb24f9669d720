"""Container-rule edge cases beyond the registry examples."""

from __future__ import annotations

import pytest

from dockward.catalog import default_rules
from dockward.model import Mount, Status
from dockward.rules import Context, run_check
from dockward.rules.container import hardened_example


def _status(rule_id: str, **changes: object) -> Status:
    entry = default_rules().get(rule_id)
    [result] = run_check(entry, hardened_example().with_changes(**changes), Context(), target="t")
    return result.status


@pytest.mark.parametrize(
    ("rules", "expected"),
    [
        (("c *:* rwm",), Status.FAIL),
        (("a",), Status.FAIL),
        (("b *:5 r",), Status.FAIL),
        (("c 1:3 rwm",), Status.PASS),  # one named device (/dev/null)
        (("b 8:* rwm",), Status.FAIL),  # every SCSI disk, read, write and mknod
        (("b 8:0 m",), Status.FAIL),  # mknod of /dev/sda
        (("b 259:1 w",), Status.FAIL),
        (("b 8:0 r",), Status.PASS),  # read-only, named major
        (("c 1:1 r",), Status.FAIL),  # /dev/mem
        (("c 1:2 rw",), Status.FAIL),  # /dev/kmem
        (("c 1:4 rwm",), Status.FAIL),  # /dev/port
        (("c 1:11 r",), Status.FAIL),  # /dev/kmsg
        (("c 1:* rwm",), Status.FAIL),  # includes /dev/mem
        (("c 162:0 rw",), Status.FAIL),  # /dev/raw/rawctl
        (("c 202:* rw",), Status.FAIL),  # msr
        (("c 10:200 rwm",), Status.PASS),  # /dev/net/tun
        (("c 226:* rw", "c 1:5 rwm"), Status.PASS),  # DRI, /dev/zero
        (("c 1:3 rwm", "b 7:* rwm"), Status.FAIL),
        (("garbage",), Status.FAIL),
    ],
)
def test_device_cgroup_rules(rules: tuple[str, ...], expected: Status) -> None:
    assert _status("DW-C019", device_cgroup_rules=rules) is expected


def test_device_cgroup_rule_message_names_the_grant() -> None:
    entry = default_rules().get("DW-C019")
    spec = hardened_example().with_changes(device_cgroup_rules=("b 8:* rwm", "c 1:3 rwm"))
    [result] = run_check(entry, spec, Context(), target="t")
    assert "b 8:* rwm (write and mknod on block major 8 (SCSI/SATA disks))" in result.message
    assert dict(result.evidence)["cgroup_rules"] == "['b 8:* rwm']"


@pytest.mark.parametrize(
    ("source", "read_only", "expected"),
    [
        ("/usr/bin", True, Status.FAIL),  # a system subdirectory, whole
        ("/usr/bin/tool", False, Status.FAIL),  # writable below code
        ("/usr/lib/x86_64-linux-gnu", False, Status.FAIL),
        ("/usr/local/bin", False, Status.FAIL),
        ("/etc/nginx", False, Status.FAIL),  # writable host configuration
        ("/etc/nginx", True, Status.PASS),
        ("/etc/shadow", True, Status.FAIL),
        ("/var/lib", True, Status.FAIL),
        ("/run/dbus", False, Status.FAIL),
        ("/run/user/1000/app", False, Status.PASS),
        ("/usr/splunk/var/data", False, Status.PASS),  # application data under /usr/<vendor>
        ("/usr/share/nginx/html", False, Status.PASS),
        ("/usr/local/myvendor/data", False, Status.PASS),
        ("/var/www/site", False, Status.PASS),
        ("/var/lib/app", False, Status.PASS),
        ("/usr//bin/../bin", True, Status.FAIL),  # normalised before judging
        ("/srv/data", False, Status.PASS),
    ],
)
def test_sensitive_mounts_by_what_the_path_is(
    source: str, read_only: bool, expected: Status
) -> None:
    mount = Mount("bind", source, "/m", read_only)
    assert _status("DW-C007", mounts=(mount,)) is expected
