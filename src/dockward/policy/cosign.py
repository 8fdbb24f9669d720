"""cosign-compatible image signatures: simple-signing payloads under the `sha256-<hex>.sig` tag.

Key-based cosign only (ECDSA P-256 + SHA-256); keyless (Fulcio/Rekor) is out of scope.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from dockward.errors import ConfigError, DockwardError
from dockward.registry import ImageRef, NotFound, RegistryClient, RegistryError

SIMPLE_SIGNING = "application/vnd.dev.cosign.simplesigning.v1+json"
SIGNATURE_ANNOTATION = "dev.cosignproject.cosign/signature"
PAYLOAD_TYPE = "cosign container image signature"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
MAX_PAYLOAD = 1 << 20  # simple-signing payloads are a few hundred bytes


class SignatureError(DockwardError):
    pass


def signature_tag(digest: str) -> str:
    algo, _, hexpart = digest.partition(":")
    return f"{algo}-{hexpart}.sig"


def load_public_key(path: str | Path) -> ec.EllipticCurvePublicKey:
    try:
        key = serialization.load_pem_public_key(Path(path).read_bytes())
    except OSError as exc:
        raise ConfigError(f"cannot read public key {path}: {exc.strerror}") from exc
    except ValueError as exc:
        raise ConfigError(f"{path}: not a PEM public key") from exc
    if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name != "secp256r1":
        raise ConfigError(f"{path}: not an ECDSA P-256 public key")
    return key


def load_private_key(path: str | Path, password: bytes | None = None) -> ec.EllipticCurvePrivateKey:
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read private key {path}: {exc.strerror}") from exc
    if b"ENCRYPTED COSIGN PRIVATE KEY" in data:
        raise ConfigError(
            f"{path}: cosign's scrypt/secretbox key format is not supported; export a PKCS#8 "
            "PEM key (openssl ecparam -name prime256v1 -genkey) or use `dockward sign --generate-key`"
        )
    try:
        key = serialization.load_pem_private_key(data, password)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"{path}: cannot load private key ({exc})") from exc
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != "secp256r1":
        raise ConfigError(f"{path}: not an ECDSA P-256 private key")
    return key


def generate_key_pair() -> tuple[bytes, bytes]:
    """(PKCS#8 private PEM, SubjectPublicKeyInfo public PEM)."""
    key = ec.generate_private_key(ec.SECP256R1())
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return private, public


def simple_signing_payload(ref: ImageRef, digest: str) -> bytes:
    """The payload `cosign sign` writes, byte for byte (Go's json.Marshal field order)."""
    body = {
        "critical": {
            "identity": {"docker-reference": ref.name},
            "image": {"docker-manifest-digest": digest},
            "type": PAYLOAD_TYPE,
        },
        "optional": None,
    }
    return json.dumps(body, separators=(",", ":")).encode()


def verify_payload(
    key: ec.EllipticCurvePublicKey, payload: bytes, signature_b64: str, digest: str
) -> None:
    """Check one signature and that its payload names exactly `digest`."""
    try:
        sig = base64.b64decode("".join(signature_b64.split()), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise SignatureError("signature is not base64") from exc
    try:
        key.verify(sig, payload, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature as exc:
        raise SignatureError("signature does not verify with the configured key") from exc
    try:
        doc = json.loads(payload)
        critical = doc["critical"]
        signed_digest = critical["image"]["docker-manifest-digest"]
        kind = critical["type"]
    except (ValueError, KeyError, TypeError) as exc:
        raise SignatureError("payload is not a cosign simple-signing document") from exc
    if kind != PAYLOAD_TYPE:
        raise SignatureError(f"payload type {kind!r} is not {PAYLOAD_TYPE!r}")
    if signed_digest != digest:
        raise SignatureError(f"signature is for {signed_digest}, not {digest}")


@dataclass(frozen=True, slots=True)
class Verified:
    digest: str
    signatures: int


def verify_image(
    client: RegistryClient, key: ec.EllipticCurvePublicKey, ref: ImageRef, digest: str
) -> Verified:
    """At least one layer of the `.sig` manifest must verify; returns how many did."""
    try:
        raw = client.manifest(ref, signature_tag(digest)).body
    except NotFound as exc:
        raise SignatureError(f"no signature for {ref.name}@{digest}") from exc
    try:
        manifest = json.loads(raw)
        layers: list[dict[str, Any]] = manifest["layers"]
    except (ValueError, KeyError, TypeError) as exc:
        raise SignatureError("signature manifest is malformed") from exc
    good, errors = 0, []
    for layer in layers[:32]:
        if not isinstance(layer, dict) or layer.get("mediaType") != SIMPLE_SIGNING:
            continue
        sig = (layer.get("annotations") or {}).get(SIGNATURE_ANNOTATION)
        if not isinstance(sig, str):
            continue
        try:
            payload = client.blob(ref, str(layer.get("digest")), MAX_PAYLOAD)
            verify_payload(key, payload, sig, digest)
            good += 1
        except (SignatureError, RegistryError) as exc:
            errors.append(str(exc))
    if not good:
        raise SignatureError(errors[0] if errors else "signature manifest has no cosign layer")
    return Verified(digest, good)


def sign_image(
    client: RegistryClient, key: ec.EllipticCurvePrivateKey, ref: ImageRef, digest: str
) -> str:
    """Sign `digest` and push the signature as cosign does; returns the signature tag."""
    payload = simple_signing_payload(ref, digest)
    signature = base64.b64encode(key.sign(payload, ec.ECDSA(hashes.SHA256()))).decode()
    tag = signature_tag(digest)
    layers: list[dict[str, Any]] = []
    try:
        existing = client.manifest(ref, tag).body
        layers = [x for x in json.loads(existing).get("layers", []) if isinstance(x, dict)]
    except NotFound:
        pass
    payload_digest = client.push_blob(ref, payload)
    layers.append(
        {
            "mediaType": SIMPLE_SIGNING,
            "size": len(payload),
            "digest": payload_digest,
            "annotations": {SIGNATURE_ANNOTATION: signature},
        }
    )
    config = json.dumps(
        {
            "architecture": "",
            "created": "0001-01-01T00:00:00Z",
            "history": [{"created": "0001-01-01T00:00:00Z"}],
            "os": "",
            "rootfs": {
                "type": "layers",
                # simple-signing payloads are stored uncompressed: diff id == digest
                "diff_ids": [str(x["digest"]) for x in layers],
            },
            "config": {},
        },
        separators=(",", ":"),
    ).encode()
    config_digest = client.push_blob(ref, config)
    client.push_manifest(
        ref,
        tag,
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "size": len(config), "digest": config_digest},
            "layers": layers,
        },
    )
    return tag
