"""`dockward update --store` records each cycle; the exporter serves the containers it left
outdated, scraped by a real Prometheus."""

from __future__ import annotations

import contextlib
import shutil
import uuid
from pathlib import Path
from typing import Any

import pytest

from dockward.store import open_store
from tests.store.test_exporter import Prometheus, serve_exporter
from tests.update.conftest import Registry, build_version, push
from tests.update.test_update_e2e import _update, events

pytestmark = pytest.mark.docker


def test_outdated_containers_gauge_from_stored_update_cycles(
    docker_api: Any, registry: Registry, tmp_path: Path
) -> None:
    if shutil.which("prometheus") is None:
        pytest.skip("needs Debian's prometheus")
    client = docker_api
    run = uuid.uuid4().hex[:8]
    scope = f"dwstore-{run}"  # this run's own: other runs' containers are never selected
    labels = {"dockward.test": scope, "dockward.update": "true", "dockward.update.scope": scope}
    v1, v2 = build_version(client, "v1"), build_version(client, "v2")
    repo = f"dwstore/app{run}"
    push(client, v1, registry, repo, "stable")
    ref = registry.ref(repo, "stable")
    names = [f"{scope}-a", f"{scope}-b"]
    try:
        for name in names:
            c = client.create_container(ref, name=name, labels=labels)
            client.start(c["Id"])
        store = f"sqlite://{tmp_path / 'h.sqlite'}"
        common = ("--all", "--scope", scope, "--store", store)
        code, doc, err = _update(tmp_path, *common)  # current: nothing outdated
        assert code == 0, err
        push(client, v2, registry, repo, "stable")
        code, doc, err = _update(tmp_path, *common, "--monitor-only")
        assert code == 0 and {e["status"] for e in events(doc).values()} == {"outdated"}, err
        s = open_store(store)
        (cycle,) = s.latest("update")
        assert cycle.outdated == 2 and cycle.ok and len(s.runs("update")) == 2
        assert {f.target for f in s.findings(cycle.id) if f.failing} == {
            f"container {n}" for n in names
        }
        s.close()
        with serve_exporter(store) as exporter:
            prom = Prometheus(exporter, tmp_path)
            try:
                (series,) = prom.wait_for("dockward_host_outdated_containers", "2")
                host = series["metric"]["host"]
                assert host == cycle.host
                code, doc, err = _update(tmp_path, *common)  # the update itself
                assert code == 0, err
                assert {e["status"] for e in events(doc).values()} == {"updated"}, doc
                prom.wait_for(f'dockward_host_outdated_containers{{host="{host}"}}', "0")
            finally:
                prom.close()
    finally:
        for c in client.containers(all=True, filters={"label": f"dockward.test={scope}"}):
            with contextlib.suppress(Exception):
                client.remove_container(c["Id"], force=True, v=True)
