"""Hostile layers are refused with a clear error; the merged view applies whiteouts."""

from __future__ import annotations

import gzip
import io
import os
import tarfile

import pytest

from dockward.image import ArchiveError, ImageFS, Limits, index_layer
from dockward.image.tarstream import TarStream, decompressed

DEFAULT = Limits()


def layer(*members: tuple[str, str, bytes | str], fmt: int = tarfile.PAX_FORMAT) -> io.BytesIO:
    """A real tar made by tarfile: (name, type, body-or-linkname)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as tar:
        for name, kind, body in members:
            info = tarfile.TarInfo(name)
            if kind == "file":
                data = body if isinstance(body, bytes) else body.encode()
                info.size = len(data)
                info.mode = 0o644
                tar.addfile(info, io.BytesIO(data))
                continue
            info.type = {
                "dir": tarfile.DIRTYPE,
                "symlink": tarfile.SYMTYPE,
                "hardlink": tarfile.LNKTYPE,
            }[kind]
            info.linkname = str(body)
            tar.addfile(info)
    buf.seek(0)
    return buf


def fs_of(*layers: io.BytesIO, limits: Limits = DEFAULT) -> ImageFS:
    return ImageFS(
        [index_layer(data, i, f"sha256:{i}", (), limits) for i, data in enumerate(layers)]
    )


@pytest.mark.parametrize(
    "members, message",
    [
        ([("../../etc/passwd", "file", "x")], "path traversal"),
        ([("a/../../x", "file", "x")], "path traversal"),
        ([("/etc/passwd", "file", "x")], "absolute path"),
        ([("a", "hardlink", "b")], "names no earlier file"),
        ([("a", "hardlink", "a")], "names no earlier file"),
        ([("a", "file", "x"), ("b", "hardlink", "../a")], "path traversal"),
        ([("x", "symlink", "/etc"), ("x/passwd", "file", "pwn")], "goes through the symlink"),
    ],
)
def test_hostile_entries_are_refused(members: list[tuple[str, str, str]], message: str) -> None:
    with pytest.raises(ArchiveError, match=message):
        fs_of(layer(*members))


def test_tar_bomb_and_oversized_entries_are_refused() -> None:
    big = layer(("a", "file", b"x" * 5000), ("b", "file", b"y" * 5000))
    with pytest.raises(ArchiveError, match="tar bomb"):
        fs_of(big, limits=Limits(max_total_size=8000))
    big.seek(0)
    with pytest.raises(ArchiveError, match="over the 4096-byte limit"):
        fs_of(big, limits=Limits(max_entry_size=4096))
    many = layer(*[(f"f{i}", "file", "") for i in range(20)])
    with pytest.raises(ArchiveError, match="more than 10 entries"):
        fs_of(many, limits=Limits(max_entries=10))


def test_huge_pax_header_is_refused_without_reading_it() -> None:
    long_name = "d/" + "n" * 3000
    data = layer((long_name, "file", "x"))
    with pytest.raises(ArchiveError, match="extended header"):
        fs_of(data, limits=Limits(max_header_size=1024))
    data.seek(0)
    assert fs_of(data).get(long_name) is not None  # within limits it reads fine


def test_gnu_longname_and_corruption() -> None:
    name = "deep/" + "x" * 200
    good = layer((name, "file", "body"), fmt=tarfile.GNU_FORMAT)
    assert fs_of(good).get(name) is not None
    raw = bytearray(layer(("a", "file", "x")).getvalue())
    raw[0] ^= 0xFF
    with pytest.raises(ArchiveError, match="bad header checksum"):
        fs_of(io.BytesIO(bytes(raw)))
    cut = layer(("a", "file", b"x" * 2000)).getvalue()[:1024]
    with pytest.raises(ArchiveError, match="truncated"):
        list(_drain(io.BytesIO(cut)))


def _with_field(data: bytes, start: int, value: bytes) -> bytes:
    """The first header with one field replaced and its checksum made right again."""
    raw = bytearray(data)
    raw[start : start + len(value)] = value
    raw[148:156] = b" " * 8
    raw[148:156] = b"%06o\0 " % sum(raw[:512])
    return bytes(raw)


@pytest.mark.parametrize("size", [b"-0000001\0", b"+0000001\0", b"0_000001\0", b"\t0000001\0"])
def test_octal_fields_take_only_octal_digits(size: bytes) -> None:
    good = layer(("a", "file", b"x"), fmt=tarfile.USTAR_FORMAT).getvalue()
    assert [e.size for e in TarStream(io.BytesIO(_with_field(good, 124, b"0000001\0"))) if e]
    with pytest.raises(ArchiveError, match="bad size field"):
        _drain(io.BytesIO(_with_field(good, 124, size.ljust(12, b"\0"))))


def test_octal_fields_tolerate_padding_and_trailing_bytes_after_nul() -> None:
    good = layer(("a", "file", b"x"), fmt=tarfile.USTAR_FORMAT).getvalue()
    for size in (b"          1\0", b"1\0garbage\0\0\0", b"00000000001 "):
        entries = list(TarStream(io.BytesIO(_with_field(good, 124, size))))
        assert [e.size for e in entries] == [1], size


def _drain(f: io.BytesIO) -> list[bytes]:
    t = TarStream(f)
    return [t.read() for _ in t]


def test_whiteouts_and_opaque_directories() -> None:
    base = layer(
        ("etc/a", "file", "1"),
        ("etc/b", "file", "2"),
        ("opt/x/old", "file", "o"),
        ("opt/x/sub/deep", "file", "d"),
        ("keep", "file", "k"),
    )
    top = layer(
        ("etc/.wh.a", "file", ""),
        ("opt/x/.wh..wh..opq", "file", ""),
        ("opt/x/new", "file", "n"),
        ("keep", "file", "k2"),
    )
    fs = fs_of(base, top)
    assert fs.get("etc/a") is None and fs.get("etc/b") is not None
    assert fs.listdir("opt/x") == ["new"]
    assert fs.get("opt/x/sub/deep") is None
    assert fs.get("keep").layer == 1
    # an opaque marker after the layer's own entries keeps them
    late = layer(("opt/x/newer", "file", "n"), ("opt/x/.wh..wh..opq", "file", ""))
    assert fs_of(base, late).listdir("opt/x") == ["newer"]


def test_symlinks_resolve_inside_the_image_root() -> None:
    fs = fs_of(
        layer(
            ("etc/passwd", "file", "root"),
            ("a/up", "symlink", "../../../../etc"),
            ("loop1", "symlink", "loop2"),
            ("loop2", "symlink", "loop1"),
            ("abs", "symlink", "/etc/passwd"),
        )
    )
    assert fs.resolve("a/up/passwd") == "etc/passwd"  # `..` stops at the image root
    assert fs.resolve("abs") == "etc/passwd"
    assert fs.resolve("loop1") is None


def test_hard_links_to_earlier_files_are_kept() -> None:
    fs = fs_of(layer(("bin/a", "file", "x"), ("bin/b", "hardlink", "bin/a")))
    entry = fs.get("bin/b")
    assert entry is not None and entry.kind == "hardlink" and entry.link == "bin/a"


def _compressed(kind: str, data: bytes) -> bytes:
    if kind == "gzip":
        return gzip.compress(data)
    import zstandard

    return zstandard.ZstdCompressor(write_checksum=True).compress(data)


@pytest.mark.parametrize("kind", ["gzip", "zstd"])
def test_compressed_layers_are_read_and_damage_is_a_clear_error(kind: str) -> None:
    plain = layer(("etc/os-release", "file", "ID=debian\n"), ("big", "file", os.urandom(50000)))
    packed = _compressed(kind, plain.getvalue())
    fs = ImageFS([index_layer(decompressed(io.BytesIO(packed), "l"), 0, "sha256:0")])
    assert fs.get("etc/os-release") is not None and fs.get("big") is not None
    # a damaged frame or deflate header, and a stream cut short
    broken = bytearray(packed)
    broken[4 if kind == "zstd" else 12] ^= 0xFF
    with pytest.raises(ArchiveError, match=r"corrupt compressed layer|not a tar archive"):
        _drain(decompressed(io.BytesIO(bytes(broken)), "l"))  # type: ignore[arg-type]
    cut = packed[: len(packed) // 2]
    with pytest.raises(ArchiveError, match=r"corrupt compressed layer|truncated"):
        _drain(decompressed(io.BytesIO(cut), "l"))  # type: ignore[arg-type]
