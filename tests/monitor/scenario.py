"""A scripted attack on lab containers, used by the live test and to record the replay fixture.

Run `python -m tests.monitor.scenario OUT.jsonl` (as root, daemon running) to record the events
the monitor sees into tests/fixtures/monitor/events.jsonl-style JSON lines.
"""

from __future__ import annotations

import contextlib
import json
import sys
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

LABEL = {"dockward.test": "dwmon"}
PREFIX = "dwmon"

ATTACK = (
    "echo 'root:!:19000::::::' > /etc/shadow; cat /etc/shadow > /dev/null; "
    "nc -w 1 127.0.0.1 1 < /dev/null; "
    "cp /bin/busybox /tmp/xmrig; /tmp/xmrig --url stratum+tcp://pool.example:3333; "
    "ln -sf /bin/busybox /tmp/apk; /tmp/apk add curl; "
    "ln -sf /bin/busybox /tmp/docker; /tmp/docker ps; true"
)


# Scripts run by an interpreter: from /dev/shm and /tmp (dropped payloads, by absolute and by
# relative path) and from /srv (quiet).
SCRIPTS = (
    "printf 'true\\n' > /dev/shm/stage.sh; sh /dev/shm/stage.sh; "
    "printf 'true\\n' > /tmp/rel.sh; cd /tmp && sh ./rel.sh; "
    "mkdir -p /srv; printf 'true\\n' > /srv/ok.sh; sh /srv/ok.sh; true"
)


@dataclass
class Lab:
    run_id: str
    web: str
    hostnet: str
    sock: str
    priv: str = ""  # created privileged, never started


def remove_stale(api: Any) -> None:
    for c in api.containers(all=True, filters={"label": "dockward.test=dwmon"}):
        with contextlib.suppress(Exception):
            api.remove_container(c["Id"], force=True)


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


def start_lab(api: Any, image: str) -> Lab:
    run_id = uuid.uuid4().hex[:6]
    web = f"{PREFIX}-web-{run_id}"
    hostnet = f"{PREFIX}-hostnet-{run_id}"
    sock = f"{PREFIX}-sock-{run_id}"
    _run(api, image, web)
    _run(api, image, hostnet, network_mode="host")
    _run(api, image, sock, binds=["/var/run/docker.sock:/var/run/docker.sock:ro"])
    priv = f"{PREFIX}-priv-{run_id}"
    api.create_container(
        image,
        command=["sleep", "300"],
        name=priv,
        labels=LABEL,
        host_config=api.create_host_config(privileged=True),
    )
    return Lab(run_id, web, hostnet, sock, priv)


def exec_in(api: Any, container: str, cmd: list[str], tty: bool = False) -> None:
    ex = api.exec_create(container, cmd, tty=tty)
    api.exec_start(ex["Id"], tty=tty)


def attack(api: Any, lab: Lab) -> None:
    """What an intruder does; plus benign commands that must not alert."""
    exec_in(api, lab.web, ["cat", "/etc/passwd"])
    exec_in(api, lab.web, ["ls", "/"])
    exec_in(api, lab.web, ["sh", "-c", ATTACK])
    exec_in(api, lab.web, ["sh", "-c", "true"], tty=True)
    exec_in(api, lab.web, ["sh", "-c", SCRIPTS])
    # Every capability for one command: the engine records and starts it (this kernel then
    # refuses the capabilities, which changes nothing for the alert).
    with contextlib.suppress(Exception):
        ex = api.exec_create(lab.web, ["id"], privileged=True)
        api.exec_start(ex["Id"])


def stop_lab(api: Any, lab: Lab) -> None:
    for name in (lab.web, lab.hostnet, lab.sock, lab.priv):
        with contextlib.suppress(Exception):
            api.remove_container(name, force=True)


def record(out: Path) -> None:
    """Run the monitor with --record around the scenario; keep this lab's events only."""
    from dockward.engine import connect, resolve_endpoint
    from dockward.engine.lab import build_busybox_image
    from dockward.monitor import MonitorConfig, run_live

    api = connect(resolve_endpoint())
    image = "dockward-lab/busybox:1.0"
    build_busybox_image(api, image)
    remove_stale(api)
    raw = out.with_suffix(".all.jsonl")
    cfg = MonitorConfig(
        outputs=("file:/dev/null",),
        spool_dir="/tmp/dwmon-record-spool",
        record=str(raw),
    )
    stop = threading.Event()
    ready = threading.Event()
    t = threading.Thread(target=run_live, args=(cfg, api, stop, lambda m: ready.set()))
    t.start()
    ready.wait(30)
    lab = start_lab(api, image)
    time.sleep(1.0)
    attack(api, lab)
    time.sleep(2.0)
    stop.set()
    t.join(30)
    stop_lab(api, lab)
    keep = []
    for line in raw.read_text().splitlines():
        ev = json.loads(line)
        if lab.run_id in str(ev.get("container.name") or ""):
            ev.pop("container.labels", None)
            keep.append(json.dumps(ev, sort_keys=True))
    out.write_text("\n".join(keep) + "\n")
    raw.unlink()


if __name__ == "__main__":
    record(Path(sys.argv[1]))
