"""The layer cache: a rescan of an unchanged archive or daemon image reads no layer again, and
nothing but an unchanged file or the daemon's own digests can ever be answered from it."""

from __future__ import annotations

import shutil
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest

from dockward.image.archive import RACY_SECONDS, load_archive
from dockward.image.daemon import load_daemon
from dockward.image.fs import LayerIndex
from dockward.image.tarstream import Limits
from dockward.sbom import default_probes
from dockward.scan import ScanOptions, inventory
from dockward.scan.layercache import LayerCache, signature


def _cache(path: Path, binaries: bool = True) -> LayerCache:
    return LayerCache(path, signature(default_probes(include_binaries=binaries), Limits()))


def _settled_copy(src: Path, dest: Path) -> Path:
    """A copy old enough to get a cache key (a file changed just now gets none)."""
    shutil.copyfile(src, dest)
    time.sleep(RACY_SECONDS + 0.2)
    return dest


def _snapshot(layers: tuple[LayerIndex, ...]) -> list[Any]:
    return [(la.digest, la.size, list(la.entries), la.probed) for la in layers]


def _pkgs(ref: str, cache: Path, source: str) -> dict[tuple[str, str], str]:
    inv = inventory(ref, ScanOptions(source=source, layer_cache=str(cache)))
    return {(p.type, p.name): p.version for p in inv.sbom.packages}


def test_an_unchanged_archive_is_answered_from_the_cache(
    fixture_image: dict[str, Any], tmp_path: Path
) -> None:
    archive = _settled_copy(fixture_image["archive"], tmp_path / "image.tar")
    cache = _cache(tmp_path / "layers.sqlite")
    first = load_archive(archive, default_probes(), cache=cache)
    assert (cache.hits, cache.misses) == (0, len(first.layers))
    again = _cache(tmp_path / "layers.sqlite")
    second = load_archive(archive, default_probes(), cache=again)
    assert (again.hits, again.misses) == (len(first.layers), 0)
    assert _snapshot(second.layers) == _snapshot(first.layers)
    # Another probe set (no binaries) is another signature: a miss, not a stale answer.
    other = _cache(tmp_path / "layers.sqlite", binaries=False)
    load_archive(archive, default_probes(include_binaries=False), cache=other)
    assert other.hits == 0


def test_a_changed_archive_is_read_again(fixture_image: dict[str, Any], tmp_path: Path) -> None:
    archive = _settled_copy(fixture_image["archive"], tmp_path / "image.tar")
    cache = tmp_path / "layers.sqlite"
    assert _pkgs(str(archive), cache, "archive")[("pypi", "requests")] == "2.25.0"
    # Same size, same inode, one version digit changed inside a layer.
    data = archive.read_bytes()
    at = data.index(b"Name: requests\nVersion: 2.25.0")
    with open(archive, "r+b") as fh:
        fh.seek(at + len(b"Name: requests\nVersion: 2.25."))
        fh.write(b"9")
    assert _pkgs(str(archive), cache, "archive")[("pypi", "requests")] == "2.25.9"


def test_a_file_changed_just_now_is_not_cached(
    fixture_image: dict[str, Any], tmp_path: Path
) -> None:
    archive = tmp_path / "image.tar"
    shutil.copyfile(fixture_image["archive"], archive)
    cache = _cache(tmp_path / "layers.sqlite")
    load_archive(archive, default_probes(), cache=cache)
    load_archive(archive, default_probes(), cache=cache)
    assert (cache.hits, cache.misses) == (0, 0)  # no key: the cache is not even asked
    assert not (tmp_path / "layers.sqlite").exists()


class _NoExport:
    """The real client, except that exporting the image is an error."""

    def __init__(self, api: Any) -> None:
        self._api = api

    def __getattr__(self, name: str) -> Any:
        return getattr(self._api, name)

    def get_image(self, *args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the image was exported although the cache holds all of it")


def test_a_daemon_image_scanned_before_is_not_exported_again(
    docker_api: Any, fixture_image: dict[str, Any], tmp_path: Path
) -> None:
    ref = fixture_image["ref"]
    cache = _cache(tmp_path / "layers.sqlite")
    first = load_daemon(docker_api, ref, default_probes(), cache=cache)
    diff_ids = docker_api.inspect_image(ref)["RootFS"]["Layers"]
    assert [la.digest for la in first.layers] == diff_ids
    snapshot = _snapshot(first.layers)
    with pytest.raises(AssertionError, match="exported"):
        load_daemon(_NoExport(docker_api), ref, default_probes())  # no cache: must export
    second = load_daemon(_NoExport(docker_api), ref, default_probes(), cache=cache)
    assert _snapshot(second.layers) == snapshot
    assert second.config == first.config and second.config_digest == fixture_image["id"]
    assert second.repo_tags == first.repo_tags


def test_a_damaged_or_unusable_cache_is_a_miss_never_an_error(
    fixture_image: dict[str, Any], tmp_path: Path
) -> None:
    archive = _settled_copy(fixture_image["archive"], tmp_path / "image.tar")
    path = tmp_path / "layers.sqlite"
    want = _pkgs(str(archive), path, "archive")
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE layers SET data = x'00ff00ff'")
    assert _pkgs(str(archive), path, "archive") == want
    blocked = tmp_path / "blocked"
    blocked.mkdir()
    assert _pkgs(str(archive), blocked, "archive") == want  # a directory where the file goes
    path.write_bytes(b"not a database at all" * 100)
    assert _pkgs(str(archive), path, "archive") == want


def test_the_cache_stays_within_its_size(fixture_image: dict[str, Any], tmp_path: Path) -> None:
    archive = _settled_copy(fixture_image["archive"], tmp_path / "image.tar")
    loaded = load_archive(archive, default_probes())
    path = tmp_path / "layers.sqlite"
    small = LayerCache(path, "sig", max_bytes=1)
    for i, layer in enumerate(loaded.layers):
        small.put(f"file:test:{i}", layer)
    count = sqlite3.connect(path).execute("SELECT COUNT(*) FROM layers").fetchone()[0]
    assert count == 0  # every entry is over the bound: nothing kept
    roomy = LayerCache(path, "sig", max_bytes=1 << 30)
    for i, layer in enumerate(loaded.layers):
        roomy.put(f"file:test:{i}", layer)
    total = sqlite3.connect(path).execute("SELECT SUM(size) FROM layers").fetchone()[0]
    # Full to the byte: one more entry pushes out the least recently used one, and only that.
    tight = LayerCache(path, "sig", max_bytes=total)
    tight.put("file:test:new", loaded.layers[0])
    keys = {r[0] for r in sqlite3.connect(path).execute("SELECT key FROM layers")}
    assert keys == {f"file:test:{i}" for i in range(1, len(loaded.layers))} | {"file:test:new"}


def test_the_report_says_what_the_cache_answered(
    fixture_image: dict[str, Any], tmp_path: Path
) -> None:
    archive = _settled_copy(fixture_image["archive"], tmp_path / "image.tar")
    options = ScanOptions(source="archive", layer_cache=str(tmp_path / "layers.sqlite"))
    first = inventory(str(archive), options).image_info()["layer_cache"]
    again = inventory(str(archive), options).image_info()["layer_cache"]
    n = len(inventory(str(archive), options).loaded.layers)
    assert first == {"hits": 0, "misses": n} and again == {"hits": n, "misses": 0}
    off = inventory(str(archive), ScanOptions(source="archive", layer_cache=None))
    assert off.image_info()["layer_cache"] is None


def test_the_cache_files_are_private(fixture_image: dict[str, Any], tmp_path: Path) -> None:
    """What the secret check captured lives in the cache: nobody else may read it, even with a
    permissive umask and a pre-existing world-readable file."""
    import os
    import stat

    path = tmp_path / "layers.sqlite"
    path.touch(mode=0o644)
    old = os.umask(0o022)
    try:
        archive = _settled_copy(fixture_image["archive"], tmp_path / "image.tar")
        cache = _cache(path)
        load_archive(archive, default_probes(), cache=cache)
        files = [p for p in tmp_path.iterdir() if p.name.startswith("layers.sqlite")]
        assert len(files) >= 2  # the DB and its WAL files, still open
        for p in files:
            assert stat.S_IMODE(p.stat().st_mode) == 0o600, p
        cache.close()
    finally:
        os.umask(old)
