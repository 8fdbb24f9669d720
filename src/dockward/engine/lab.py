"""Local test and demo images: `FROM scratch` plus Debian's static busybox (nothing is pulled)."""

from __future__ import annotations

import io
import os
import shutil
import tarfile
from typing import Any

from dockward.errors import DockwardError

BUSYBOX_CANDIDATES = ("/bin/busybox", "/usr/bin/busybox")
DEFAULT_TAG = "dockward-lab/busybox:1.0"

DOCKERFILE = """FROM scratch
COPY busybox /bin/busybox
RUN ["/bin/busybox", "--install", "-s", "/bin"]
RUN ["/bin/busybox", "mkdir", "-p", "/tmp", "/etc", "/var/www"]
RUN ["/bin/busybox", "sh", "-c", "echo 'root:x:0:0:root:/root:/bin/sh' > /etc/passwd && echo 'app:x:1000:1000:app:/home/app:/bin/sh' >> /etc/passwd && echo 'root:x:0:' > /etc/group && echo 'app:x:1000:' >> /etc/group && chmod 1777 /tmp"]
{extra}
CMD ["sleep", "3600"]
"""


def find_static_busybox() -> str:
    for path in BUSYBOX_CANDIDATES:
        if os.path.isfile(path):
            return path
    found = shutil.which("busybox")
    if found:
        return found
    raise DockwardError("busybox-static is not installed (apt-get install busybox-static)")


def build_busybox_image(
    client: Any, tag: str = DEFAULT_TAG, extra: str = "", labels: dict[str, str] | None = None
) -> str:
    """Build (or reuse) a tiny image; returns its id. `extra` adds Dockerfile lines."""
    try:
        return str(client.inspect_image(tag)["Id"])
    except Exception:
        pass
    busybox = find_static_busybox()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        df = DOCKERFILE.format(extra=extra).encode()
        info = tarfile.TarInfo("Dockerfile")
        info.size = len(df)
        tar.addfile(info, io.BytesIO(df))
        tar.add(busybox, arcname="busybox")
    buf.seek(0)
    for chunk in client.build(
        fileobj=buf, custom_context=True, tag=tag, rm=True, labels=labels or {}, decode=True
    ):
        if "error" in chunk:
            raise DockwardError(f"building {tag} failed: {chunk['error'].strip()}")
    return str(client.inspect_image(tag)["Id"])
