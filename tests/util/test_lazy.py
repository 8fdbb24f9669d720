"""Package attributes load on first use: an archive scan never imports the HTTP stack."""

from __future__ import annotations

import subprocess
import sys

import pytest


def _modules_after(code: str) -> set[str]:
    out = subprocess.run(
        [sys.executable, "-c", f"import sys\n{code}\nprint(' '.join(sys.modules))"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return set(out.stdout.split())


def test_the_scan_command_imports_no_http_yaml_or_terminal_library_up_front() -> None:
    loaded = _modules_after("import dockward.cli.scan, dockward.scan, dockward.vulndb")
    assert not loaded & {"requests", "urllib3", "yaml", "rich", "docker"}


def test_a_lazy_name_loads_its_module_and_is_then_a_plain_attribute() -> None:
    loaded = _modules_after(
        "import dockward.vulndb as v\n"
        "assert 'dockward.vulndb.update' not in sys.modules\n"
        "f = v.update_db\n"
        "assert v.__dict__['update_db'] is f"
    )
    assert {"dockward.vulndb.update", "requests"} <= loaded


def test_an_unknown_name_is_an_attribute_error() -> None:
    import dockward.image

    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        _ = dockward.image.nope  # type: ignore[attr-defined]
    with pytest.raises(ImportError):
        from dockward.image import nope  # type: ignore[attr-defined]  # noqa: F401
