"""A compose service that ran containrrr/watchtower, run as dockward with only the image changed:
its environment and command against the real dockerd and a local registry."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from tests.conftest import run_cli
from tests.notify.receivers import Receiver
from tests.update.conftest import Registry, build_version, lab_tag, push

# Our own label and names: other update tests clean up theirs (dwupd) concurrently.
PREFIX = "dwwt"
LABEL = {"dockward.test": PREFIX}


COMPOSE = """
services:
  watchtower:
    image: containrrr/watchtower
    container_name: watchtower
    restart: unless-stopped
    volumes:
      - /var/run/docker.sock:/var/run/docker.sock
    environment:
      WATCHTOWER_CLEANUP: "true"
      WATCHTOWER_LABEL_ENABLE: "true"
      WATCHTOWER_SCOPE: dwwt
      WATCHTOWER_INCLUDE_RESTARTING: "true"
      WATCHTOWER_NOTIFICATIONS: shoutrrr
      WATCHTOWER_NOTIFICATION_URL: "generic+http://127.0.0.1:{port}/watchtower"
      WATCHTOWER_NOTIFICATION_REPORT: "true"
      WATCHTOWER_NOTIFICATION_TITLE_TAG: lab
      WATCHTOWER_NOTIFICATION_TEMPLATE: |-
        {{- if .Report -}}
          {{- with .Report -}}
        {{len .Scanned}} Scanned, {{len .Updated}} Updated, {{len .Failed}} Failed
              {{- range .Updated}}
        - {{.Name}} ({{.ImageName}}): {{.CurrentImageID.ShortID}} updated to {{.LatestImageID.ShortID}}
              {{- end -}}
          {{- end -}}
        {{- else -}}
          {{range .Entries -}}{{.Message}}{{"\\n"}}{{- end -}}
        {{- end -}}
      TZ: Europe/Berlin
    command: --run-once --stop-timeout 5s
"""


def test_a_watchtower_compose_service_runs_with_only_the_image_changed(
    mine: Any, registry: Registry, tmp_path: Path
) -> None:
    client = mine
    v1, v2 = build_version(client, "v1-wt"), build_version(client, "v2-wt")
    repo, name = f"{PREFIX}/watchtower", f"{PREFIX}-wt-app"
    other_repo, other = f"{PREFIX}/wt-other", f"{PREFIX}-wt-other"
    push(client, v1, registry, repo, "stable")
    push(client, v1, registry, other_repo, "stable")
    client.remove_image(lab_tag("v1-wt"))  # only the registry tags name v1 now
    # Scoped (WATCHTOWER_SCOPE), so no other test's containers on this daemon are touched.
    scope = {"com.centurylinklabs.watchtower.scope": PREFIX}
    labels = {**LABEL, **scope, "com.centurylinklabs.watchtower.enable": "true"}
    for ref, cname, lab in (
        (registry.ref(repo, "stable"), name, labels),
        (registry.ref(other_repo, "stable"), other, {**LABEL, **scope}),
    ):
        c = client.create_container(ref, name=cname, labels=lab)
        client.start(c["Id"])
    push(client, v2, registry, repo, "stable")
    push(client, v2, registry, other_repo, "stable")

    with Receiver() as rx:
        service = yaml.safe_load(COMPOSE.replace("{port}", str(rx.port)))["services"]["watchtower"]
        assert service["image"] == "containrrr/watchtower"
        service["image"] = "dockward"  # the only change; its entrypoint is `dockward`
        env = {str(k): str(v) for k, v in service["environment"].items()}
        # The test's own state directory (the image keeps it in /var/lib/dockward).
        env["DOCKWARD_UPDATE_STATE_DIR"] = str(tmp_path)
        env["DOCKWARD_UPDATE_MIN_UPTIME"] = "1"
        res = run_cli(*service["command"].split(), env=env)
        doc = json.loads(res.out)
        assert res.code == 0, (res.err, doc["extra"]["update"]["cycles"])
        got = rx.behaviour.wait(1)
    # Only the opted-in container was updated (WATCHTOWER_LABEL_ENABLE), and v1 was cleaned up.
    assert client.inspect_container(name)["Image"] == v2
    assert client.inspect_container(other)["Image"] == v1
    doc = json.loads(res.out)
    (cycle,) = doc["extra"]["update"]["cycles"]
    assert [(e["container"], e["status"]) for e in cycle["events"]] == [(name, "updated")]
    assert client.images(quiet=True, filters={"dangling": True}) is not None
    assert v1 in [i["Id"] for i in client.images(all=True)]  # still used by the other container
    # The notification: Watchtower's report template, through the translated generic+http URL.
    (req,) = got
    assert req.method == "POST" and req.path == "/watchtower"
    body = req.json()
    assert body["title"].startswith("[lab] dockward updates on ")
    assert body["message"] == (
        f"1 Scanned, 1 Updated, 0 Failed\n"
        f"- {name} ({registry.ref(repo, 'stable')}): {v1[7:19]} updated to {v2[7:19]}"
    )


def test_revive_stopped_starts_the_updated_replacement(
    mine: Any, registry: Registry, tmp_path: Path
) -> None:
    client = mine
    v1, v2 = build_version(client, "v1-revive"), build_version(client, "v2-revive")
    repo, name = f"{PREFIX}/revive", f"{PREFIX}-revive"
    push(client, v1, registry, repo, "stable")
    old = client.create_container(registry.ref(repo, "stable"), name=name, labels=LABEL)
    push(client, v2, registry, repo, "stable")
    # Watchtower's WATCHTOWER_INCLUDE_STOPPED + WATCHTOWER_REVIVE_STOPPED, container named.
    env = {
        "WATCHTOWER_INCLUDE_STOPPED": "true",
        "WATCHTOWER_REVIVE_STOPPED": "true",
        "DOCKWARD_UPDATE_STATE_DIR": str(tmp_path),
        "DOCKWARD_UPDATE_MIN_UPTIME": "1",
    }
    res = run_cli("--run-once", name, env=env)
    doc = json.loads(res.out)
    (cycle,) = doc["extra"]["update"]["cycles"]
    assert [(e["container"], e["status"]) for e in cycle["events"]] == [(name, "updated")], res.err
    now = client.inspect_container(name)
    assert now["Id"] != old["Id"] and now["Image"] == v2 and now["State"]["Running"]
