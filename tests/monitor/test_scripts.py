"""proc.script: the script file an interpreter was asked to run, from argv."""

from __future__ import annotations

import pytest

from dockward.monitor.scripts import script_path


@pytest.mark.parametrize(
    ("argv", "cwd", "expected"),
    [
        (("sh", "/dev/shm/x.sh"), None, "/dev/shm/x.sh"),
        (("bash", "-o", "posix", "--norc", "run.sh", "a"), "/tmp", "/tmp/run.sh"),
        (("python3.11", "-u", "-W", "ignore", "/tmp/a.py"), None, "/tmp/a.py"),
        (("busybox", "sh", "../shm/y"), "/dev/mqueue", "/dev/shm/y"),
        (("perl", "-Ilib", "/var/tmp/p.pl"), None, "/var/tmp/p.pl"),
        (("node", "--require", "x", "/tmp/n.js"), None, "/tmp/n.js"),
        (("php", "-f", "/tmp/x.php"), None, "/tmp/x.php"),
        (("sh", "-c", "/tmp/x.sh"), None, None),  # inline code, not a script file
        (("bash", "-ec", "echo"), None, None),
        (("python3", "-m", "http.server"), None, None),
        (("perl", "-e", "print 1"), None, None),
        (("sh",), None, None),
        (("ls", "/tmp/x.sh"), None, None),  # not an interpreter
    ],
)
def test_script_path(argv: tuple[str, ...], cwd: str | None, expected: str | None) -> None:
    assert script_path(argv, None, cwd) == expected
