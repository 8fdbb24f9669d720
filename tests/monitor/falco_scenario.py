"""What Falco's stable rules watch for, done for real on this host, recorded for replay.

Run `python -m tests.monitor.falco_scenario OUT.jsonl` (as root, daemon running): the monitor
records every event while lab containers (and one host process) create symlinks and hard links
over sensitive files, open a packet socket, redirect a shell's stdio to a TCP connection, try to
load a kernel module, write a cgroup release_agent, read /etc/shadow, and ptrace; each also does
the harmless look-alike (the quiet case). Only this run's events are kept.
`python -m tests.monitor.falco_scenario falco-events-shells.jsonl --shells` records only a web
server (busybox httpd) whose CGI script starts a shell, and the same shell started by a shell.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

LABEL = {"dockward.test": "dwfalco"}
PREFIX = "dwfalco"

# The lab image has no /etc/shadow: the first command writes one. Descriptors are held open a few
# seconds (tail -f, exec 3>) so the file source can still find the opener's descriptor.
# Busybox runs its applets through /proc/self/exe (proc.name `exe`); tools Falco's rules name
# are called through links in /tmp/bin so their proc.name is the tool's.
TOOLS = (
    "mkdir -p /tmp/bin; for t in nc find shred; do ln -s /bin/busybox /tmp/bin/$t; done; "
    "/tmp/bin/find / -name id_rsa > /dev/null 2>&1; "
    "/tmp/bin/find / -path '*/.aws/credentials' > /dev/null 2>&1; "
    "/tmp/bin/find /etc -name hosts > /dev/null 2>&1; "
    "cp /bin/busybox /dev/shm/x; /dev/shm/x true; "
    "cp /bin/busybox /tmp/dropped; /tmp/dropped true; /bin/busybox true; "
    "echo data > /tmp/wipe; /tmp/bin/shred -u /tmp/wipe; echo data > /tmp/del; rm /tmp/del; "
)
APP = (
    TOOLS + "echo 'root:*:19000::::::' > /etc/shadow; "
    "ln -s /etc/shadow /tmp/shadow-link; ln -s /etc/hostname /tmp/ok-link; "
    "ln /etc/shadow /tmp/shadow-hard; ln /etc/passwd /tmp/ok-hard; "
    "timeout 3 tail -f /etc/shadow > /dev/null; timeout 3 tail -f /etc/passwd > /dev/null; "
    "arping -c 1 -w 1 -I eth0 127.0.0.1 > /dev/null 2>&1; ping -c 1 -W 1 127.0.0.1 > /dev/null; "
    "(/tmp/bin/nc -l -p 7777 > /dev/null &); sleep 0.5; /tmp/bin/nc 127.0.0.1 7777 -e /bin/sleep 1; "
    "echo quiet > /tmp/out; insmod /bin/busybox 2>/dev/null; "
    "exec 3> /tmp/release_agent; sleep 3; exec 3>&-; true"
)
# A web server that spawns a shell (Run shell untrusted): busybox httpd runs a CGI script that
# starts /bin/sh; the look-alike is the same shell started by a program that is no server.
CGI = "#!/bin/sh\necho Content-Type: text/plain; echo; /bin/sh -c 'echo hi'\n"
SHELLS = (
    "mkdir -p /tmp/www/cgi-bin; printf '%s' \"$CGI\" > /tmp/www/cgi-bin/status; "
    "chmod 755 /tmp/www/cgi-bin/status; (/bin/httpd -f -p 127.0.0.1:8088 -h /tmp/www &); sleep 0.5; "
    "wget -q -O /dev/null http://127.0.0.1:8088/cgi-bin/status; "
    "/bin/timeout 5 /bin/sh -c 'echo quiet'; sleep 0.5; true"
)
# --more: what the rules on opens, module loads, /dev/shm, memfd and sockets watch for. (Not
# debugfs in a privileged container: no privileged container starts on this host, whose
# capability bounding set lacks CAP_SYS_RESOURCE, so runc cannot apply "all capabilities".)
# Openers do not hold their descriptors: fd.num comes from the open's own audit record.
LINKS = "mkdir -p /tmp/bin; for t in cat insmod; do ln -s /bin/busybox /tmp/bin/$t; done; "
MORE_APP = (
    LINKS + "echo 'root:*:19000::::::' > /etc/shadow; "
    "/tmp/bin/cat /etc/shadow > /dev/null; /tmp/bin/cat /etc/passwd > /dev/null; "
    # a path with traversals, then the plain one, read by a child of xargs (the rule spares
    # shells' children)
    "echo /var/../tmp/../etc/passwd | xargs /tmp/bin/cat > /dev/null; "
    "echo /etc/passwd | xargs /tmp/bin/cat > /dev/null; "
    "echo x > /tmp/release_agent; "
    "mkdir -p /var/log; touch /var/log/syslog; echo y >> /var/log/syslog; : > /var/log/syslog; "
    "/tmp/bin/insmod /bin/busybox 2>/dev/null; "
    "(nc -l -p 7777 > /dev/null &); sleep 0.5; echo hi | nc 127.0.0.1 7777; "
    "sleep 1; true"
)
MORE_ADM = "echo x > /tmp/release_agent; sleep 1; true"
MORE_MOD = LINKS + "/tmp/bin/insmod /bin/busybox 2>/dev/null; true"
MORE_SHM = "cp /bin/busybox /dev/shm/true; /dev/shm/true; cd /dev/shm && /bin/busybox true; true"
HOST_MORE = """
import os, socket, subprocess, time
# Fileless execution: /bin/true copied into a memfd and executed from it; then /bin/true itself.
pid = os.fork()
if pid == 0:
    fd = os.memfd_create("dwfalco-payload", 0)
    with open("/bin/true", "rb") as f:
        os.write(fd, f.read())
    os.execv(f"/proc/self/fd/{fd}", ["dwfalco-payload"])
os.waitpid(pid, 0)
subprocess.run(["/bin/true"])
# IPv6 sockets: a TCP connection over ::1 (socket, connect, accept), a connected UDP socket.
srv = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
srv.bind(("::1", 0))
srv.listen(1)
port = srv.getsockname()[1]
cli = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
cli.connect(("::1", port))
conn, _ = srv.accept()
udp = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
udp.connect(("::1", port))
time.sleep(1.0)
# ssh to a documentation address (TEST-NET-3) on a port of ssh_non_standard_ports, then on 22.
for port in ("443", "22"):
    subprocess.run(["ssh", "-o", "ConnectTimeout=1", "-o", "BatchMode=yes", "-p", port,
                    "dwfalco@203.0.113.7", "true"], capture_output=True, timeout=20)
"""
PRIVILEGED_WORK = (
    "insmod /bin/busybox 2>/dev/null; exec 3> /tmp/release_agent; sleep 3; exec 3>&-; true"
)


def _run(api: Any, image: str, name: str, **host: Any) -> str:
    created = api.create_container(
        image,
        command=["sleep", "300"],
        name=name,
        labels=LABEL,
        host_config=api.create_host_config(**host),
    )
    api.start(created["Id"])
    return str(created["Id"])


def _exec(api: Any, container: str, script: str, env: dict[str, str] | None = None) -> None:
    ex = api.exec_create(container, ["sh", "-c", script], environment=env)
    api.exec_start(ex["Id"])


PTRACE = """
import ctypes, os, subprocess, sys
libc = ctypes.CDLL(None, use_errno=True)
libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p]
target = subprocess.Popen(["sleep", "5"])
libc.ptrace(16, target.pid, None, None)  # PTRACE_ATTACH
os.waitpid(target.pid, 0)
libc.ptrace(17, target.pid, None, None)  # PTRACE_DETACH
target.kill()
target.wait()
pid = os.fork()
if pid == 0:
    libc.ptrace(0, 0, None, None)  # PTRACE_TRACEME
    os._exit(0)
os.waitpid(pid, 0)
"""


def _host_more() -> int:
    proc = subprocess.Popen([sys.executable, "-c", HOST_MORE])
    proc.wait(timeout=60)
    return proc.pid


def _more(api: Any, image: str, run_id: str) -> int:
    names = {k: f"{PREFIX}-{k}-{run_id}" for k in ("app", "adm", "mod", "shm")}
    # No SYS_MODULE, no seccomp filter: the module load reaches the kernel (the look-alike).
    _run(api, image, names["app"], security_opt=["seccomp=unconfined"])
    _run(api, image, names["adm"], cap_add=["SYS_ADMIN"])
    _run(api, image, names["mod"], cap_add=["SYS_MODULE"])
    _run(api, image, names["shm"], tmpfs={"/dev/shm": "exec"})
    time.sleep(1.5)
    _exec(api, names["app"], MORE_APP)
    _exec(api, names["adm"], MORE_ADM)
    _exec(api, names["mod"], MORE_MOD)
    _exec(api, names["shm"], MORE_SHM)
    helper = _host_more()
    time.sleep(2.0)
    return helper


def _ptrace_on_host(run_id: str) -> int:
    """ptrace(PTRACE_ATTACH) of a sleeping child, then PTRACE_TRACEME in another, in a separate
    host process (the monitor ignores its own process); returns that process's pid."""
    proc = subprocess.Popen([sys.executable, "-c", PTRACE, run_id])
    proc.wait(timeout=30)
    return proc.pid


SSHD_CONFIG = """Port {port}
ListenAddress 127.0.0.1
HostKey {d}/host
AuthorizedKeysFile {d}/keys/%u
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
PermitRootLogin prohibit-password
PidFile {d}/sshd.pid
"""


def _ssh_logins() -> int:
    """A host sshd (openssh-server) on a free loopback port; `nobody` (a system user) logs in
    with a key and runs a command (its shell, nologin, is what sshd starts), then root does the
    same (the quiet case: no system user). Returns the listener's pid."""
    import os
    import shutil
    import socket
    import tempfile

    d = tempfile.mkdtemp(prefix="dwfalco-sshd-")
    os.chmod(d, 0o755)
    os.mkdir(f"{d}/keys")
    for key in ("host", "client"):
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", f"{d}/{key}"], check=True
        )
    pub = Path(f"{d}/client.pub").read_text()
    for user in ("nobody", "root"):
        Path(f"{d}/keys/{user}").write_text(pub)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    Path(f"{d}/sshd_config").write_text(SSHD_CONFIG.format(port=port, d=d))
    os.makedirs("/run/sshd", exist_ok=True)
    subprocess.run(["/usr/sbin/sshd", "-f", f"{d}/sshd_config", "-E", f"{d}/log"], check=True)
    time.sleep(0.5)
    pid = int(Path(f"{d}/sshd.pid").read_text())
    opts = ["-i", f"{d}/client", "-p", str(port), "-o", "StrictHostKeyChecking=no",
            "-o", "UserKnownHostsFile=/dev/null", "-o", "BatchMode=yes"]  # fmt: skip
    for login, cmd in (("nobody", "id"), ("root", "true")):
        subprocess.run(["ssh", *opts, f"{login}@127.0.0.1", cmd], timeout=20, capture_output=True)
    time.sleep(0.5)
    os.kill(pid, 15)
    shutil.rmtree(d, ignore_errors=True)
    return pid


def record(out: Path, shells: bool = False, logins: bool = False, more: bool = False) -> None:
    from dockward.engine import connect, resolve_endpoint
    from dockward.engine.lab import build_busybox_image
    from dockward.monitor import MonitorConfig, run_live

    api = connect(resolve_endpoint())
    image = "dockward-lab/busybox:1.0"
    build_busybox_image(api, image)
    for c in api.containers(all=True, filters={"label": "dockward.test=dwfalco"}):
        with contextlib.suppress(Exception):
            api.remove_container(c["Id"], force=True)
    run_id = uuid.uuid4().hex[:6]
    raw = out.with_suffix(".all.jsonl")
    cfg = MonitorConfig(
        outputs=("file:/dev/null",), spool_dir="/tmp/dwfalco-record-spool", record=str(raw)
    )
    stop, ready = threading.Event(), threading.Event()
    summary: list[Any] = []
    t = threading.Thread(
        target=lambda: summary.append(run_live(cfg, api, stop, lambda m: ready.set()))
    )
    t.start()
    ready.wait(30)
    sshd = helper = -1
    if more:
        tracer = -1
        helper = _more(api, image, run_id)
    elif logins:
        tracer = -1
        sshd = _ssh_logins()
        time.sleep(1.0)
    elif shells:
        names = [f"{PREFIX}-web-{run_id}"]
        _run(api, image, names[0])
        time.sleep(1.5)
        _exec(api, names[0], SHELLS, {"CGI": CGI})
        tracer = -1
        time.sleep(2.0)
    else:
        tracer = _scenario(api, image, run_id)
    stop.set()
    t.join(30)
    if summary:  # what the sources lost, if anything: a recording with losses is suspect
        print(json.dumps(summary[0].sources), file=sys.stderr)
    for c in api.containers(all=True, filters={"label": "dockward.test=dwfalco"}):
        if run_id in str(c.get("Names")):
            with contextlib.suppress(Exception):
                api.remove_container(c["Id"], force=True)
    keep = []
    for line in raw.read_text().splitlines():
        ev = json.loads(line)
        ours = run_id in str(ev.get("container.name") or "")
        tracer_side = tracer in (ev.get("proc.pid"), ev.get("proc.ppid"))
        # what sshd itself started (the login's command; not root's shell start-up files)
        below_sshd = sshd in (ev.get("proc.apid") or ()) and ev.get("proc.pname") == "sshd"
        # the host helper of --more and what it started (its fork, /bin/true, ssh)
        helped = (
            helper > 0
            and ev.get("container.id") == "host"
            and (
                helper in (ev.get("proc.pid"), ev.get("proc.ppid"))
                or helper in (ev.get("proc.apid") or ())
            )
        )
        if ours or below_sshd or helped or (ev.get("evt.type") == "ptrace" and tracer_side):
            ev.pop("container.labels", None)
            keep.append(json.dumps(ev, sort_keys=True))
    out.write_text("\n".join(keep) + "\n")
    raw.unlink()


def _scenario(api: Any, image: str, run_id: str) -> int:
    names = [f"{PREFIX}-app-{run_id}", f"{PREFIX}-mod-{run_id}", f"{PREFIX}-adm-{run_id}"]
    _run(api, image, names[0])
    _run(api, image, names[1], cap_add=["SYS_MODULE"])
    _run(api, image, names[2], cap_add=["SYS_ADMIN"])
    time.sleep(1.5)
    _exec(api, names[0], APP)
    tty = api.exec_create(names[0], ["sh", "-c", "true"], tty=True)  # a terminal shell
    api.exec_start(tty["Id"], tty=True)
    _exec(api, names[1], PRIVILEGED_WORK)
    _exec(api, names[2], PRIVILEGED_WORK)
    tracer = _ptrace_on_host(run_id)
    time.sleep(2.0)
    return tracer


if __name__ == "__main__":
    # `--shells`: only the web server spawning a shell (falco-events-shells.jsonl)
    # `--logins`: only ssh logins to a host sshd, of nobody and of root (falco-events-logins.jsonl)
    # `--more`: opens, module loads, /dev/shm, debugfs, memfd, sockets (falco-events-more.jsonl)
    flags = sys.argv[2:]
    record(
        Path(sys.argv[1]),
        shells="--shells" in flags,
        logins="--logins" in flags,
        more="--more" in flags,
    )
