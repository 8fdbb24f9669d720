"""Each comparator against its ecosystem's own reference cases."""

from __future__ import annotations

import itertools

import pytest

from dockward.vulndb.versions import (
    VersionError,
    compare_apk,
    compare_dpkg,
    compare_go,
    compare_maven,
    compare_pep440,
    compare_rpm,
    compare_semver,
    rpmvercmp,
)

# rpm's own test suite (tests/rpmvercmp.at)
RPM = [
    ("1.0", "1.0", 0),
    ("1.0", "2.0", -1),
    ("2.0", "1.0", 1),
    ("2.0.1", "2.0.1", 0),
    ("2.0", "2.0.1", -1),
    ("2.0.1a", "2.0.1", 1),
    ("5.5p1", "5.5p2", -1),
    ("5.5p1", "5.5p10", -1),
    ("10xyz", "10.1xyz", -1),
    ("xyz10", "xyz10.1", -1),
    ("xyz.4", "8", -1),
    ("8", "xyz.4", 1),
    ("xyz.4", "2", -1),
    ("5.5p2", "5.6p1", -1),
    ("6.0.rc1", "6.0", 1),
    ("10b2", "10a1", 1),
    ("10a2", "10b2", -1),
    ("1.0a", "1.0aa", -1),
    ("10.0001", "10.1", 0),
    ("10.0001", "10.0039", -1),
    ("4.999.9", "5.0", -1),
    ("20101121", "20101122", -1),
    ("2_0", "2.0", 0),
    ("a+", "a_", 0),
    ("+a", "_a", 0),
    ("_+", "_", 0),
    ("1.0~rc1", "1.0", -1),
    ("1.0~rc1", "1.0~rc2", -1),
    ("1.0~rc1~git123", "1.0~rc1", -1),
    ("1.0^", "1.0", 1),
    ("1.0^git1", "1.0", 1),
    ("1.0^git1", "1.0^git2", -1),
    ("1.0^git1", "1.01", -1),
    ("1.0^20160101", "1.0.1", -1),
    ("1.0^20160102", "1.0^20160101^git1", 1),
    ("1.0~rc1^git1", "1.0~rc1", 1),
    ("1.0^git1~pre", "1.0^git1", -1),
]

# dpkg's rules (deb-version(7)) and Debian practice: epochs, `~`, +debNuM, +bN binNMUs
DPKG = [
    ("1.0", "1.0", 0),
    ("0:1.0", "1.0", 0),
    ("1:0.1", "9.9", 1),
    ("1.0~rc1", "1.0", -1),
    ("1.0~~", "1.0~", -1),
    ("1.0~", "1.0", -1),
    ("1.0-1", "1.0-1+b1", -1),
    ("6.0-3+b2", "6.0-3+deb12u1", -1),
    ("1.0+deb12u1", "1.0+deb12u2", -1),
    ("2.36-9+deb12u4", "2.36-9+deb12u10", -1),
    ("1.0a", "1.0", 1),
    ("1.0-1", "1.0-1ubuntu1", -1),
    ("1:1.2.13.dfsg-1", "1:1.2.13.dfsg-1+deb12u1", -1),
    ("7.88.1-10+deb12u5", "7.88.1-10", 1),
]

# apk-tools order (test/version.data and apk_version.c)
APK = [
    ("1.0", "1.0", 0),
    ("1.0_alpha1", "1.0_beta1", -1),
    ("1.0_beta1", "1.0_pre1", -1),
    ("1.0_pre1", "1.0_rc1", -1),
    ("1.0_rc1", "1.0", -1),
    ("1.0", "1.0_cvs1", -1),
    ("1.0_cvs1", "1.0_svn1", -1),
    ("1.0_svn1", "1.0_git20200101", -1),
    ("1.0_git20200101", "1.0_hg1", -1),
    ("1.0_hg1", "1.0_p1", -1),
    ("1.0_p1", "1.0_p2", -1),
    ("1.0-r0", "1.0-r1", -1),
    ("1.0a", "1.0b", -1),
    ("1.0", "1.0a", -1),
    ("1.2", "1.10", -1),
    ("1.0.1", "1.0", 1),
    ("2.34", "0.1.0_alpha", 1),
    ("0.1.0_alpha", "0.1.0_alpha2", -1),
    ("3.0.13-r0", "3.0.8-r5", 1),
]

# semver.org section 11, npm's order
SEMVER_ORDER = [
    "1.0.0-alpha",
    "1.0.0-alpha.1",
    "1.0.0-alpha.beta",
    "1.0.0-beta",
    "1.0.0-beta.2",
    "1.0.0-beta.11",
    "1.0.0-rc.1",
    "1.0.0",
    "2.0.0",
    "2.1.0",
    "2.1.1",
]

# PEP 440's own ordering example
PEP440_ORDER = [
    "1.0.dev456",
    "1.0a1",
    "1.0a2.dev456",
    "1.0a12.dev456",
    "1.0a12",
    "1.0b1.dev456",
    "1.0b2",
    "1.0b2.post345.dev456",
    "1.0b2.post345",
    "1.0rc1.dev456",
    "1.0rc1",
    "1.0",
    "1.0+abc.5",
    "1.0+abc.7",
    "1.0+5",
    "1.0.post456.dev34",
    "1.0.post456",
    "1.0.15",
    "1.1.dev1",
]


@pytest.mark.parametrize("a, b, want", RPM)
def test_rpmvercmp_reference(a: str, b: str, want: int) -> None:
    assert rpmvercmp(a, b) == want
    assert rpmvercmp(b, a) == -want


def test_rpm_epoch_and_release() -> None:
    assert compare_rpm("1:1.0-1.el9", "2.0-1.el9") == 1
    assert compare_rpm("1.0-1.el9", "1.0-2.el9") == -1
    assert compare_rpm("1.0-10.el9", "1.0-9.el9") == 1


@pytest.mark.parametrize("a, b, want", DPKG)
def test_dpkg_reference(a: str, b: str, want: int) -> None:
    assert compare_dpkg(a, b) == want
    assert compare_dpkg(b, a) == -want


@pytest.mark.parametrize("a, b, want", APK)
def test_apk_reference(a: str, b: str, want: int) -> None:
    assert compare_apk(a, b) == want
    assert compare_apk(b, a) == -want


def test_semver_precedence() -> None:
    for lo, hi in itertools.pairwise(SEMVER_ORDER):
        assert compare_semver(lo, hi) == -1 and compare_semver(hi, lo) == 1
    assert compare_semver("1.0.0+build.1", "1.0.0+build.2") == 0


def test_pep440_order() -> None:
    for lo, hi in itertools.pairwise(PEP440_ORDER):
        assert compare_pep440(lo, hi) == -1
    assert compare_pep440("1.0", "1.0.0") == 0


def test_go_versions() -> None:
    pseudo = "v0.0.0-20191109021931-daa7c04131f5"
    assert compare_go(pseudo, "v0.0.1") == -1
    assert compare_go("v1.2.4-0.20191109021931-daa7c04131f5", "v1.2.3") == 1
    assert compare_go("v1.2.4-0.20191109021931-daa7c04131f5", "v1.2.4") == -1
    assert compare_go("v2.0.0+incompatible", "2.0.0") == 0
    assert compare_go("1.19.8", "1.19.9") == -1  # stdlib versions in OSV have no `v`
    assert compare_go("1.20.0-0", "1.20.0") == -1


# Maven's own ComparableVersionTest sequences (each strictly increasing) and equalities.
MAVEN_QUALIFIERS = ["1-alpha2snapshot", "1-alpha2", "1-alpha-123", "1-beta-2", "1-beta123",
                    "1-m2", "1-m11", "1-rc", "1-cr2", "1-rc123", "1-SNAPSHOT", "1", "1-sp",
                    "1-sp2", "1-sp123", "1-abc", "1-def", "1-pom-1", "1-1-snapshot", "1-1",
                    "1-2", "1-123"]  # fmt: skip
MAVEN_NUMBERS = ["2.0", "2-1", "2.0.a", "2.0.0.a", "2.0.2", "2.0.123", "2.1.0", "2.1-a", "2.1b",
                 "2.1-c", "2.1-1", "2.1.0.1", "2.2", "2.123", "11.a2", "11.a11", "11.b2",
                 "11.b11", "11.m2", "11.m11", "11", "11.a", "11b", "11c", "11m"]  # fmt: skip
MAVEN_EQUAL = [("1", "1.0"), ("1", "1.0.0"), ("1", "1-0"), ("1.0", "1.0-0"), ("1a", "1-a"),
               ("1a", "1.0.0-a"), ("1.0.0x", "1-x"), ("1ga", "1"), ("1final", "1"),
               ("1cr", "1rc"), ("1a1", "1-alpha-1"), ("1b2", "1-beta-2"),
               ("1m3", "1-milestone-3"), ("1X", "1x"), ("1GA", "1"), ("1cR", "1Rc"),
               ("1m3", "1MILESTONE3")]  # fmt: skip


@pytest.mark.parametrize("order", [MAVEN_QUALIFIERS, MAVEN_NUMBERS], ids=["qualifiers", "numbers"])
def test_maven_reference_order(order: list[str]) -> None:
    for i, lo in enumerate(order):
        for hi in order[i + 1 :]:
            assert compare_maven(lo, hi) == -1 and compare_maven(hi, lo) == 1, (lo, hi)


@pytest.mark.parametrize("a, b", MAVEN_EQUAL)
def test_maven_reference_equal(a: str, b: str) -> None:
    assert compare_maven(a, b) == 0 and compare_maven(b, a) == 0


def test_maven_real_release_lines() -> None:
    assert compare_maven("2.9.10", "2.9.10.1") == -1  # jackson-databind's micro-patch
    assert compare_maven("2.15.0-rc1", "2.15.0") == -1
    assert compare_maven("2.17.1", "2.17.0") == 1
    assert compare_maven("1.2.17", "2.0-beta9") == -1  # log4j 1 vs 2
    assert compare_maven("2.0-beta9", "2.0-rc1") == -1


@pytest.mark.parametrize(
    "cmp, bad",
    [
        (compare_apk, "1.0_foo"),
        (compare_semver, "1.0"),
        (compare_pep440, "not a version"),
        (compare_go, "v1"),
        (compare_maven, ""),
    ],
)
def test_malformed_versions_raise(cmp: object, bad: str) -> None:
    with pytest.raises(VersionError):
        cmp(bad, "1.0.0")  # type: ignore[operator]
