"""cosign signatures: verified against a published cosign example; signed and verified locally."""

from __future__ import annotations

from pathlib import Path

import pytest

from dockward.errors import ConfigError
from dockward.policy.cosign import (
    SignatureError,
    generate_key_pair,
    load_private_key,
    load_public_key,
    signature_tag,
    simple_signing_payload,
    verify_payload,
)
from dockward.registry import parse_reference

FIX = Path(__file__).parent / "fixtures" / "cosign"
PUBLISHED_DIGEST = "sha256:f3cfc9d0dbf931d3db4685ec659b7ac68e2a578219da4aae65427886e649b06b"


def published() -> tuple[bytes, str]:
    return (FIX / "sigstore-rs.payload.json").read_bytes(), (
        FIX / "sigstore-rs.sig.b64"
    ).read_text()


def test_published_cosign_signature_verifies() -> None:
    payload, sig = published()
    verify_payload(load_public_key(FIX / "sigstore-rs.pub"), payload, sig, PUBLISHED_DIGEST)


def test_published_signature_with_wrapped_base64() -> None:
    payload, sig = published()
    verify_payload(
        load_public_key(FIX / "sigstore-rs.pub"),
        payload,
        sig[:40] + "\n" + sig[40:] + "\n",
        PUBLISHED_DIGEST,
    )


@pytest.mark.parametrize("tamper", ["payload", "digest", "key", "signature"])
def test_tampering_fails(tmp_path: Path, tamper: str) -> None:
    payload, sig = published()
    key = load_public_key(FIX / "sigstore-rs.pub")
    digest = PUBLISHED_DIGEST
    if tamper == "payload":
        payload = payload.replace(b"busybox", b"busyb0x")
    elif tamper == "digest":
        digest = "sha256:" + "0" * 64
    elif tamper == "key":
        (tmp_path / "k.pub").write_bytes(generate_key_pair()[1])
        key = load_public_key(tmp_path / "k.pub")
    else:
        sig = "MEUCIQ" + sig[6:10] + ("A" if sig[10] != "A" else "B") + sig[11:]
    with pytest.raises(SignatureError):
        verify_payload(key, payload, sig, digest)


def test_payload_matches_cosign_bytes() -> None:
    """dockward's payload is byte-identical to the one cosign produced for the same image."""
    ref = parse_reference("registry-testing.svc.lan/busybox")
    assert simple_signing_payload(ref, PUBLISHED_DIGEST) == published()[0]


def test_signature_tag() -> None:
    assert signature_tag(PUBLISHED_DIGEST) == f"sha256-{PUBLISHED_DIGEST[7:]}.sig"


def test_key_errors(tmp_path: Path) -> None:
    (tmp_path / "rsa.pub").write_text("not a key")
    with pytest.raises(ConfigError, match="not a PEM public key"):
        load_public_key(tmp_path / "rsa.pub")
    (tmp_path / "enc.key").write_text("-----BEGIN ENCRYPTED COSIGN PRIVATE KEY-----\nx\n")
    with pytest.raises(ConfigError, match="not supported"):
        load_private_key(tmp_path / "enc.key")
    with pytest.raises(ConfigError, match="cannot read"):
        load_public_key(tmp_path / "missing.pub")
