"""Benchmark: import all of ../shared/data/osv into a fresh vulnerability DB; time and size.

.venv/bin/python bench/scan_db.py [OSV_DIR]
"""

from __future__ import annotations

import resource
import sys
import tempfile
import time
from pathlib import Path

from dockward.sbom.model import Package
from dockward.vulndb import import_path, match_packages, open_db, status

REPO = Path(__file__).resolve().parent.parent
DEFAULT = REPO.parent.parent / "shared" / "data" / "osv"


def main() -> None:
    src = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT
    if not src.is_dir():
        src = Path("/work/shared/data/osv")
    with tempfile.TemporaryDirectory(prefix="dwscan-bench-") as tmp:
        db = Path(tmp) / "vulndb.sqlite"
        t0, c0 = time.perf_counter(), time.process_time()
        stats = import_path(db, [src / "PyPI", src / "Go"])
        took, cpu = time.perf_counter() - t0, time.process_time() - c0
        st = status(db)
        print(
            f"import: {stats.records} records ({stats.affected} affected rows) in {took:.2f} s "
            f"wall, {cpu:.2f} s CPU"
        )
        print(f"db size: {st.size / 1e6:.1f} MB; by ecosystem: {st.by_ecosystem}")
        pkgs = [Package(f"p{i}", "1.0.0", "pypi", "", "PyPI", "bench") for i in range(1000)] + [
            Package("requests", "2.25.0", "pypi", "", "PyPI", "bench")
        ]
        conn = open_db(db)
        t0 = time.perf_counter()
        found = match_packages(conn, pkgs)
        took = time.perf_counter() - t0
        conn.close()
        print(f"match: {len(pkgs)} packages in {took * 1000:.1f} ms ({len(found)} matches)")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS: {peak:.0f} MB")


if __name__ == "__main__":
    main()
