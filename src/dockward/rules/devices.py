"""What a device cgroup rule (`--device-cgroup-rule`, compose `device_cgroup_rules`) grants.

A rule reads `TYPE MAJOR:MINOR ACCESS`: TYPE is `a` (all), `b` (block) or `c` (character),
MAJOR and MINOR a number or `*`, ACCESS a subset of `r` (read), `w` (write), `m` (mknod). The
rule lets the container open (r/w) or create (m) device nodes of those numbers; with the default
MKNOD capability, `m` alone is enough to make the node and `rw` to use it.

Judged as granting too much (numbers from the kernel's Documentation/admin-guide/devices.txt):

| rule | why |
|---|---|
| `a` (any access) | every device on the host |
| `b` with `w` or `m`, any numbers | raw write to disks: 3 IDE, 7 loop, 8 SCSI/SATA, 9 md, 179 MMC, 259 NVMe, 253/254 device-mapper and virtio |
| `b` or `c` with major `*` | whole device classes, including the ones below |
| `c 1:1` `/dev/mem`, `c 1:2` `/dev/kmem`, `c 1:4` `/dev/port` | physical and kernel memory, I/O ports |
| `c 1:11` `/dev/kmsg` | the kernel log: read secrets and addresses, write forged kernel messages |
| `c 1:*` | includes the memory devices above |
| `c 162:*` `/dev/raw/*` | raw I/O on block devices, past the block-device rules |
| `c 202:*` `/dev/cpu/N/msr` | model-specific registers: kernel and firmware control |
| `c 10:231` `/dev/snapshot` | the hibernation image: all of memory |

A named character device outside this list (`c 1:3` /dev/null, `c 10:200` /dev/net/tun,
`c 226:*` DRI) passes, as does a read-only block rule naming its major.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_RULE = re.compile(r"^([abc])(?:\s+(\d+|\*):(\d+|\*)(?:\s+([rwm]{1,3}))?)?$")

# (major, minor or None for every minor) -> what it is
DANGEROUS_CHAR: dict[tuple[int, int | None], str] = {
    (1, 1): "/dev/mem (physical memory)",
    (1, 2): "/dev/kmem (kernel memory)",
    (1, 4): "/dev/port (I/O ports)",
    (1, 11): "/dev/kmsg (kernel messages)",
    (162, None): "/dev/raw (raw block I/O)",
    (202, None): "/dev/cpu/*/msr (CPU model-specific registers)",
    (10, 231): "/dev/snapshot (hibernation image of memory)",
}

BLOCK_MAJORS: dict[int, str] = {
    3: "IDE disks",
    7: "loop devices",
    8: "SCSI/SATA disks",
    9: "md RAID",
    179: "MMC/SD cards",
    253: "device-mapper or virtio disks",
    254: "device-mapper or virtio disks",
    259: "NVMe and extended partitions",
}


@dataclass(frozen=True, slots=True)
class CgroupRule:
    kind: str  # a, b, c
    major: int | None  # None: any
    minor: int | None
    access: str

    @classmethod
    def parse(cls, text: str) -> CgroupRule | None:
        m = _RULE.match(text.strip())
        if m is None:
            return None
        kind, major, minor, access = m.groups()
        return cls(
            kind,
            None if major in (None, "*") else int(major),
            None if minor in (None, "*") else int(minor),
            access or "rwm",
        )


def _char_danger(rule: CgroupRule) -> str:
    if rule.major is None:
        return "every character device (wildcard major)"
    for (major, minor), what in DANGEROUS_CHAR.items():
        if rule.major == major and (minor is None or rule.minor is None or rule.minor == minor):
            return what
    return ""


def excessive_grant(text: str) -> str:
    """Why the device cgroup rule `text` grants too much, or "" when it does not."""
    rule = CgroupRule.parse(text)
    if rule is None:
        return "not a device cgroup rule (TYPE MAJOR:MINOR ACCESS)"
    if rule.kind == "a":
        return "every device"
    if rule.kind == "b":
        writes = [what for a, what in (("w", "write"), ("m", "mknod")) if a in rule.access]
        family = "every block device"
        if rule.major is not None:
            family = f"block major {rule.major}"
            if rule.major in BLOCK_MAJORS:
                family += f" ({BLOCK_MAJORS[rule.major]})"
        if writes:
            return f"{' and '.join(writes)} on {family}"
        if rule.major is None:
            return f"read on {family} (wildcard major)"
        return ""
    return _char_danger(rule)
