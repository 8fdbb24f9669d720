"""Benchmark `dockward update`: (1) checking N running containers against a real registry without
pulling (one HEAD per distinct image, in parallel); (2) new digest detected -> healthy new container.

    .venv/bin/python bench/update_check.py [--containers 100] [--images 10] [--runs 5]

Starts its own `docker-registry` on 127.0.0.1:15830 (data under /tmp/dwupd-bench-*), builds the
busybox lab images, runs the containers (label dockward.test=dwupd-bench) and removes them at the end.
"""

from __future__ import annotations

import argparse
import shutil
import signal
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from tests.update.conftest import _start_registry, _stop, build_version

from dockward.engine import connect, resolve_endpoint
from dockward.update import (
    Journal,
    RegistryClient,
    Selection,
    UpdateOptions,
    Updater,
    check_all,
    select,
)

PORT = 15830
LABEL = {"dockward.test": "dwupd-bench"}
SCOPE = "dwupd-bench"


def _push(client, image: str, target: str, tag: str) -> None:
    client.tag(image, target, tag, force=True)
    for chunk in client.push(target, tag, stream=True, decode=True):
        if "error" in chunk:
            raise RuntimeError(chunk["error"])


def _cleanup(client) -> None:
    found = client.containers(all=True, filters={"label": "dockward.test=dwupd-bench"})
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda c: client.remove_container(c["Id"], force=True), found))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--containers", type=int, default=100)
    ap.add_argument("--images", type=int, default=10)
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    # SIGTERM (e.g. from `timeout`) still runs the cleanup in `finally`.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    client = connect(resolve_endpoint(), timeout=300)
    _cleanup(client)
    proc, root = _start_registry(PORT)
    host = f"127.0.0.1:{PORT}"
    try:
        v1, v2 = build_version(client, "v1"), build_version(client, "v2")
        refs = []
        for i in range(args.images):
            _push(client, v1, f"{host}/bench/app{i}", "stable")
            refs.append(f"{host}/bench/app{i}:stable")
        t0 = time.monotonic()

        def run_one(n: int) -> None:
            c = client.create_container(
                refs[n % len(refs)],
                name=f"dwupd-bench-{n:03d}",
                labels={**LABEL, "dockward.update.scope": SCOPE},
                host_config=client.create_host_config(network_mode="none"),
                # No 1 s healthchecks on 100 containers: they would load the daemon, not the check.
                healthcheck={"Test": ["NONE"]},
            )
            client.start(c["Id"])

        with ThreadPoolExecutor(8) as pool:
            list(pool.map(run_one, range(args.containers)))
        print(f"started {args.containers} containers in {time.monotonic() - t0:.1f}s")
        selection = Selection(all=True, scope=SCOPE)
        registry = RegistryClient()

        # (1) check: nothing changed, so nothing is pulled
        managed = select(client, selection)
        assert len(managed) == args.containers
        checks, selects = [], []
        for _ in range(args.runs):
            t = time.monotonic()
            managed = select(client, selection)
            selects.append(time.monotonic() - t)
            registry = RegistryClient()  # cold: new connections and no cached tokens each run
            t = time.monotonic()
            results = check_all(client, registry, managed)
            checks.append(time.monotonic() - t)
            assert all(r.status == "current" for r in results), {r.status for r in results}
        # Half the images get a new digest: the check must notice exactly those.
        for i in range(0, args.images, 2):
            _push(client, v2, f"{host}/bench/app{i}", "stable")
        changed = []
        for _ in range(args.runs):
            registry = RegistryClient()
            t = time.monotonic()
            results = check_all(client, registry, select(client, selection))
            changed.append(time.monotonic() - t)
        outdated = sum(r.status == "outdated" for r in results)
        print(
            f"check {args.containers} containers / {args.images} images, nothing new: "
            f"median {statistics.median(checks):.3f}s (min {min(checks):.3f}s) "
            f"+ container listing {statistics.median(selects):.3f}s"
        )
        print(
            f"check with {args.images // 2 + args.images % 2} images changed: median "
            f"{statistics.median(changed):.3f}s incl. listing; {outdated} containers outdated"
        )

        # (2) new digest detected -> healthy new container (health gate on the image HEALTHCHECK)
        _cleanup(client)
        state = Path(tempfile.mkdtemp(prefix="dwupd-bench-state-"))
        timings = []
        target = f"{host}/bench/health"
        health_sel = Selection(all=True, scope=SCOPE + "-health")
        with Journal(state).locked() as journal:
            updater = Updater(client, journal, UpdateOptions(stop_timeout=1, min_uptime=1))
            for run in range(args.runs):
                _push(client, v1, target, "stable")
                c = client.create_container(
                    f"{target}:stable",
                    name=f"dwupd-bench-health-{run}",
                    labels={**LABEL, "dockward.update.scope": SCOPE + "-health"},
                    host_config=client.create_host_config(network_mode="none"),
                )
                client.start(c["Id"])
                _push(client, v2, target, "stable")
                t = time.monotonic()
                (r,) = check_all(client, RegistryClient(), select(client, health_sel))
                assert r.status == "outdated", r
                detected = time.monotonic()
                for _ in client.pull(target, tag="stable", stream=True):
                    pass
                pulled = time.monotonic() - detected
                new_id = client.inspect_image(str(r.ref))["Id"]
                old_image = client.inspect_image(r.local_image_id)
                inspect = client.inspect_container(r.container.id)
                applied = updater.apply(inspect, old_image, new_id)
                assert applied.status == "updated", applied
                total = time.monotonic() - detected
                assert applied.health is not None
                timings.append((total, pulled, applied.health.elapsed, detected - t))
                client.remove_container(applied.new_id, force=True)
        shutil.rmtree(state, ignore_errors=True)
        if timings:
            tot = statistics.median(t[0] for t in timings)
            print(
                f"new digest detected -> healthy new container: median {tot:.2f}s over "
                f"{len(timings)} (pull {statistics.median(t[1] for t in timings):.2f}s, health "
                f"gate {statistics.median(t[2] for t in timings):.2f}s; check "
                f"{statistics.median(t[3] for t in timings):.3f}s before; image HEALTHCHECK "
                "interval 1s, stop timeout 1s)"
            )
    finally:
        _cleanup(client)
        _stop(proc, root)


if __name__ == "__main__":
    main()
