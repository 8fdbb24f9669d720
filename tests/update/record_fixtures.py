"""Re-record the unit-test fixtures from the real daemon: `python -m tests.update.record_fixtures`.

Creates the same richly configured container as the end-to-end test (plus a link and an
anonymous volume), stores its inspect and its image's inspect, then removes what it made.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

from dockward.engine import connect, resolve_endpoint
from tests.update.conftest import LABEL, PREFIX, build_version, lab_tag, remove_ours
from tests.update.test_update_e2e import NET1, NET2, SUBNET1, SUBNET2, _full_container, _network

OUT = Path(__file__).resolve().parent.parent / "fixtures" / "update"


def main() -> None:
    client = connect(resolve_endpoint())
    remove_ours(client)
    _network(client, NET1, SUBNET1)
    _network(client, NET2, SUBNET2)
    image = build_version(client, "v1")
    bind_dir = tempfile.mkdtemp(prefix=f"{PREFIX}-bind-")
    full = _full_container(client, lab_tag("v1"), f"{PREFIX}-full", bind_dir)
    target = client.create_container(lab_tag("v1"), name=f"{PREFIX}-target", labels=LABEL)
    client.start(target["Id"])
    linked = client.create_container(
        lab_tag("v1"),
        name=f"{PREFIX}-linked",
        labels={**LABEL, "dockward.update": "true"},
        volumes=["/anon"],
        host_config=client.create_host_config(links={f"{PREFIX}-target": "db"}),
    )
    client.start(linked["Id"])
    OUT.mkdir(parents=True, exist_ok=True)
    for name, cid in (("full", full), ("linked", linked["Id"])):
        (OUT / f"container_{name}.json").write_text(
            json.dumps(client.inspect_container(cid), indent=1, sort_keys=True) + "\n"
        )
    listing = client.containers(all=True, filters={"label": f"dockward.test={PREFIX}"})
    (OUT / "containers_list.json").write_text(json.dumps(listing, indent=1, sort_keys=True) + "\n")
    (OUT / "image_v1.json").write_text(
        json.dumps(client.inspect_image(image), indent=1, sort_keys=True) + "\n"
    )
    remove_ours(client)
    shutil.rmtree(bind_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
