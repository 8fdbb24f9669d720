"""How much of Falco's rule files dockward can run: rules that load, and why the others do not.

    .venv/bin/python bench/monitor_falco_rules.py falco_rules.yaml [more files...]

The files are not shipped with dockward (falcosecurity/rules, Apache-2.0); pass a checkout's
`rules/falco_rules.yaml`. Reports loaded/enabled rules and the reasons, grouped.
"""

from __future__ import annotations

import argparse
import json
import time
from collections import Counter

from dockward.monitor import compile_book, load_files


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("files", nargs="+")
    args = p.parse_args()
    t0 = time.perf_counter()
    book = load_files(args.files)
    engine = compile_book(book)
    ms = (time.perf_counter() - t0) * 1000
    enabled = [r for r in book.rules.values() if r.enabled]
    reasons = Counter(v.split(" is ")[0] for v in engine.disabled.values())
    print(
        json.dumps(
            {
                "files": args.files,
                "rules": len(book.rules),
                "enabled": len(enabled),
                "loaded": len(engine.rules),
                "share_loaded": f"{100 * len(engine.rules) / max(len(enabled), 1):.0f}%",
                "macros": len(book.macros),
                "lists": len(book.lists),
                "load_and_compile_ms": round(ms, 1),
                "loaded_rules": [r.name for r in engine.rules],
                "disabled_by": dict(reasons.most_common()),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
