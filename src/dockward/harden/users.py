"""A named user's uid/gid, read from the image's /etc/passwd and /etc/group.

The files are read through dockward's image filesystem (the daemon's export, streamed; only
those two bodies are kept), never extracted to the host and never by running the image.
"""

from __future__ import annotations

from typing import Any

from dockward.errors import DockwardError
from dockward.image.daemon import load_daemon
from dockward.image.fs import Capture, ImageFS

_FILES = ("etc/passwd", "etc/group")


def _table(data: bytes | None) -> list[list[str]]:
    if not data:
        return []
    text = data.decode("utf-8", "replace")
    return [line.split(":") for line in text.splitlines() if line and not line.startswith("#")]


def _lookup(rows: list[list[str]], name: str, column: int) -> str:
    for row in rows:
        if len(row) > column and row[0] == name and row[column].isdigit():
            return row[column]
    return ""


def numeric_user(user: str, passwd: bytes | None, group: bytes | None) -> str:
    """`name[:group]` -> `uid:gid` from the two files' text; "" when it cannot be resolved.

    Without a group the user's primary group (passwd's gid column) is taken, as the engine does.
    """
    name, _, grp = user.partition(":")
    users = _table(passwd)
    uid = name if name.isdigit() else _lookup(users, name, 2)
    if not uid:
        return ""
    if grp:
        gid = grp if grp.isdigit() else _lookup(_table(group), grp, 2)
    elif name.isdigit():
        gid = next((r[3] for r in users if len(r) > 3 and r[2] == uid and r[3].isdigit()), uid)
    else:
        gid = _lookup(users, name, 3)
    return f"{uid}:{gid}" if gid else ""


def resolve_user(client: Any, image: str, user: str) -> str:
    """The numeric `uid:gid` of `user` in `image` (numeric users are returned as they are)."""
    name, _, grp = user.partition(":")
    if not user or (name.isdigit() and (not grp or grp.isdigit())):
        return user
    try:
        loaded = load_daemon(client, image, [Capture("passwd", lambda p: p in _FILES, 1 << 20)])
    except DockwardError:
        return ""
    fs = ImageFS(loaded.layers)
    return numeric_user(user, fs.read("etc/passwd"), fs.read("etc/group"))
