"""Version ordering exactly as each ecosystem defines it.

Libraries where they are right: `packaging` (PEP 440), `python-debian` (dpkg). By hand, each
checked against the ecosystem's own reference cases in the tests: rpm (rpmvercmp; the PyPI ports
are unmaintained), apk (apk-tools' order; `univers` rejects `_git` suffixes) and SemVer 2.0 (npm,
Go with pseudo-versions and `+incompatible`, crates.io), where the libraries disagree on build
metadata and the `v` prefix.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable

from debian.debian_support import Version as DebVersion
from packaging.version import InvalidVersion
from packaging.version import Version as PepVersion

from dockward.errors import DockwardError


class VersionError(DockwardError, ValueError):
    """A version string that the ecosystem does not accept."""


def _sign(x: int) -> int:
    return (x > 0) - (x < 0)


def compare_pep440(a: str, b: str) -> int:
    try:
        va, vb = PepVersion(a), PepVersion(b)
    except InvalidVersion as exc:
        raise VersionError(str(exc)) from exc
    return (va > vb) - (va < vb)


def compare_dpkg(a: str, b: str) -> int:
    try:
        va, vb = DebVersion(a), DebVersion(b)
    except ValueError as exc:
        raise VersionError(str(exc)) from exc
    return (va > vb) - (va < vb)


_SEMVER = re.compile(
    r"v?(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-((?:0|[1-9]\d*|\d*[A-Za-z-][0-9A-Za-z-]*)(?:\.(?:0|[1-9]\d*|\d*[A-Za-z-][0-9A-Za-z-]*))*))?"
    r"(?:\+([0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?"
)


def _semver_key(v: str) -> tuple[int, int, int, tuple[str, ...] | None]:
    m = _SEMVER.fullmatch(v.strip())
    if not m:
        raise VersionError(f"not a SemVer version: {v!r}")
    pre = tuple(m.group(4).split(".")) if m.group(4) else None
    return int(m.group(1)), int(m.group(2)), int(m.group(3)), pre


def compare_semver(a: str, b: str) -> int:
    """SemVer 2.0 precedence: build metadata (`+incompatible`) ignored, prereleases lower."""
    ka, kb = _semver_key(a), _semver_key(b)
    if ka[:3] != kb[:3]:
        return (ka[:3] > kb[:3]) - (ka[:3] < kb[:3])
    pa, pb = ka[3], kb[3]
    if pa is None or pb is None:
        return (pa is None) - (pb is None)
    for x, y in zip(pa, pb, strict=False):
        if x == y:
            continue
        xn, yn = x.isdigit(), y.isdigit()
        if xn and yn:
            return _sign(int(x) - int(y))
        if xn != yn:
            return -1 if xn else 1
        return -1 if x < y else 1
    return _sign(len(pa) - len(pb))


def compare_go(a: str, b: str) -> int:
    """Go module versions are SemVer with a `v`; OSV's Go records omit it, the stdlib's too."""
    return compare_semver(a if a.startswith("v") else "v" + a, b if b.startswith("v") else "v" + b)


def compare_rpm(a: str, b: str) -> int:
    """rpm's [epoch:]version-release order (rpmvercmp on each part, `~` and `^` included)."""

    def split(evr: str) -> tuple[int, str, str]:
        epoch = 0
        if ":" in evr:
            e, _, evr = evr.partition(":")
            if not e.isdigit():
                raise VersionError(f"bad rpm epoch in {evr!r}")
            epoch = int(e)
        version, _, release = evr.rpartition("-") if "-" in evr else (evr, "", "")
        return epoch, version, release

    ea, va, ra = split(a)
    eb, vb, rb = split(b)
    if ea != eb:
        return _sign(ea - eb)
    return rpmvercmp(va, vb) or (rpmvercmp(ra, rb) if ra and rb else 0)


_RPM_SEG = re.compile(r"(\d+|[A-Za-z]+|~|\^)")


def rpmvercmp(a: str, b: str) -> int:
    if a == b:
        return 0
    sa, sb = _RPM_SEG.findall(a), _RPM_SEG.findall(b)
    i = 0
    while True:
        x = sa[i] if i < len(sa) else None
        y = sb[i] if i < len(sb) else None
        if x == "~" or y == "~":
            if x != y:
                return -1 if x == "~" else 1
            i += 1
            continue
        if x == "^" or y == "^":
            if x is None:
                return -1
            if y is None:
                return 1
            if x != y:
                return -1 if x == "^" else 1
            i += 1
            continue
        if x is None or y is None:
            if x is None and y is None:
                return 0
            return -1 if x is None else 1
        if x.isdigit() != y.isdigit():
            return 1 if x.isdigit() else -1
        c = _sign(int(x) - int(y)) if x.isdigit() else (x > y) - (x < y)
        if c:
            return c
        i += 1


_APK = re.compile(
    r"(\d+(?:\.\d+)*)([a-z]?)((?:_(?:alpha|beta|pre|rc|cvs|svn|git|hg|p)\d*)*)(?:-r(\d+))?"
)
_APK_SUFFIX = {
    "alpha": -4,
    "beta": -3,
    "pre": -2,
    "rc": -1,
    "cvs": 1,
    "svn": 2,
    "git": 3,
    "hg": 4,
    "p": 5,
}


def _apk_key(v: str) -> tuple[tuple[int, ...], int, tuple[tuple[int, int], ...], int]:
    m = _APK.fullmatch(v.strip())
    if not m:
        raise VersionError(f"not an apk version: {v!r}")
    nums = tuple(int(x) for x in m.group(1).split("."))
    letter = ord(m.group(2)) if m.group(2) else 0
    suffixes = tuple(
        (_APK_SUFFIX[name], int(num or 0))
        for name, num in re.findall(r"_([a-z]+)(\d*)", m.group(3))
    )
    return nums, letter, suffixes, int(m.group(4) or 0)


def compare_apk(a: str, b: str) -> int:
    """apk-tools order: numbers, letter, suffixes (`_alpha < _beta < _pre < _rc < none < _cvs <
    _svn < _git < _hg < _p`), then `-rN`."""
    ka, kb = _apk_key(a), _apk_key(b)
    na, nb = ka[0], kb[0]
    for i in range(max(len(na), len(nb))):
        x = na[i] if i < len(na) else -1
        y = nb[i] if i < len(nb) else -1
        if x != y:
            return _sign(x - y)
    if ka[1] != kb[1]:
        return _sign(ka[1] - kb[1])
    sa, sb = ka[2], kb[2]
    for i in range(max(len(sa), len(sb))):
        sx = sa[i] if i < len(sa) else (0, 0)
        sy = sb[i] if i < len(sb) else (0, 0)
        if sx != sy:
            return (sx > sy) - (sx < sy)
    return _sign(ka[3] - kb[3])


# Maven (OSV's "Maven" ecosystem orders versions as Maven's ComparableVersion does): the version
# splits into numbers and qualifiers at '.', '-' and digit/letter changes; '-' and a change
# start a nested list; trailing "null" items (0, release qualifiers, empty lists) do not count.
_MAVEN_QUALIFIERS = ("alpha", "beta", "milestone", "rc", "snapshot", "", "sp")
_MAVEN_ALIASES = {"ga": "", "final": "", "release": "", "cr": "rc"}
_MAVEN_SHORT = {"a": "alpha", "b": "beta", "m": "milestone"}
_MAVEN_RELEASE = str(_MAVEN_QUALIFIERS.index(""))


def _maven_string(text: str, followed_by_digit: bool) -> str:
    if followed_by_digit and len(text) == 1:
        text = _MAVEN_SHORT.get(text, text)  # a1 = alpha-1, b1 = beta-1, m1 = milestone-1
    return _MAVEN_ALIASES.get(text, text)


def _maven_item(is_digit: bool, text: str) -> int | str:
    return int(text) if is_digit else _maven_string(text, False)


def _maven_null(item: object) -> bool:
    if isinstance(item, int):
        return item == 0
    if isinstance(item, str):
        return item == ""
    return isinstance(item, list) and not item


def _maven_normalize(items: list[object]) -> None:
    for i in range(len(items) - 1, -1, -1):
        if _maven_null(items[i]):
            del items[i]
        elif not isinstance(items[i], list):
            break


def _maven_parse(version: str) -> list[object]:
    text = version.lower()
    if not text or len(text) > 256 or not text.isprintable():
        raise VersionError(f"not a Maven version: {version!r}")
    top: list[object] = []
    current = top
    lists = [top]
    is_digit = False
    start = 0

    def nest() -> None:
        nonlocal current
        child: list[object] = []
        current.append(child)
        current = child
        lists.append(child)

    for i, c in enumerate(text):
        if c in ".-":
            current.append(0 if i == start else _maven_item(is_digit, text[start:i]))
            start = i + 1
            if c == "-":
                nest()
        elif c in "0123456789":
            if not is_digit and i > start:
                current.append(_maven_string(text[start:i], True))
                start = i
                nest()
            is_digit = True
        else:
            if is_digit and i > start:
                current.append(_maven_item(True, text[start:i]))
                start = i
                nest()
            is_digit = False
    if len(text) > start:
        current.append(_maven_item(is_digit, text[start:]))
    for items in reversed(lists):
        _maven_normalize(items)
    return top


def _maven_qualifier(q: str) -> str:
    """Known qualifiers in their order, then unknown ones after them, lexically."""
    if q in _MAVEN_QUALIFIERS:
        return str(_MAVEN_QUALIFIERS.index(q))
    return f"{len(_MAVEN_QUALIFIERS)}-{q}"


def _maven_cmp(a: object, b: object) -> int:
    """Item a against item b (b may be None: past the end of the other version)."""
    if isinstance(a, int):
        if b is None:
            return 0 if a == 0 else 1
        if isinstance(b, int):
            return _sign(a - b)
        return 1  # 1.1 > 1-sp, 1.1 > 1-1
    if isinstance(a, str):
        if b is None:
            q = _maven_qualifier(a)
            return (q > _MAVEN_RELEASE) - (q < _MAVEN_RELEASE)  # 1-rc < 1 < 1-sp
        if isinstance(b, str):
            qa, qb = _maven_qualifier(a), _maven_qualifier(b)
            return (qa > qb) - (qa < qb)
        return -1  # 1.any < 1.1, 1.any < 1-1
    assert isinstance(a, list)
    if b is None:
        return _maven_cmp(a[0], None) if a else 0
    if isinstance(b, int):
        return -1  # 1-1 < 1.0.x
    if isinstance(b, str):
        return 1  # 1-1 > 1-sp
    assert isinstance(b, list)
    for i in range(max(len(a), len(b))):
        x = a[i] if i < len(a) else None
        y = b[i] if i < len(b) else None
        r = (0 if y is None else -_maven_cmp(y, None)) if x is None else _maven_cmp(x, y)
        if r:
            return r
    return 0


def compare_maven(a: str, b: str) -> int:
    return _maven_cmp(_maven_parse(a), _maven_parse(b))


Comparator = Callable[[str, str], int]

COMPARATORS: dict[str, Comparator] = {
    "PyPI": compare_pep440,
    "Go": compare_go,
    "Maven": compare_maven,
    "npm": compare_semver,
    "crates.io": compare_semver,
    "Debian": compare_dpkg,
    "Ubuntu": compare_dpkg,
    "Alpine": compare_apk,
    "Wolfi": compare_apk,
    "Chainguard": compare_apk,
    "Rocky Linux": compare_rpm,
    "AlmaLinux": compare_rpm,
    "Red Hat": compare_rpm,
    "openSUSE": compare_rpm,
    "SUSE": compare_rpm,
}


def base_ecosystem(ecosystem: str) -> str:
    return ecosystem.split(":", 1)[0]


def comparator(ecosystem: str) -> Comparator | None:
    return COMPARATORS.get(base_ecosystem(ecosystem))


def sort_key(ecosystem: str) -> Callable[[str], object]:
    cmp = comparator(ecosystem)
    if cmp is None:
        raise VersionError(f"no version order for ecosystem {ecosystem!r}")
    return functools.cmp_to_key(cmp)
