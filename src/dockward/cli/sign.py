"""`dockward sign`: cosign-compatible key-based image signatures (ECDSA P-256)."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from dockward.cli.common import EXIT_FINDINGS, EXIT_OK, env_default, env_list
from dockward.errors import DockwardError, UsageError
from dockward.policy.cosign import (
    SignatureError,
    generate_key_pair,
    load_private_key,
    load_public_key,
    sign_image,
    verify_image,
)
from dockward.registry import InvalidReference, RegistryClient, insecure_hosts, parse_reference
from dockward.util.fs import atomic_write


def register(sub: Any) -> None:
    p = sub.add_parser(
        "sign",
        help="sign an image in its registry (cosign format) or verify a signature",
        description="Sign IMAGE's manifest digest with an ECDSA P-256 key and push the "
        "signature under the `sha256-<digest>.sig` tag, as `cosign sign --key` does. "
        "`--verify` checks with the public key instead; `--generate-key PREFIX` writes "
        "PREFIX.key (0600) and PREFIX.pub.",
    )
    p.add_argument("image", nargs="?", help="image reference in a registry (tag or digest)")
    p.add_argument(
        "--key",
        default=env_default("SIGN_KEY"),
        help="PEM private key (sign) or public key (--verify) [DOCKWARD_SIGN_KEY]",
    )
    p.add_argument("--verify", action="store_true", help="verify instead of signing")
    p.add_argument("--generate-key", metavar="PREFIX", help="write a new key pair and exit")
    p.add_argument(
        "--insecure-registry",
        action="append",
        default=None,
        help="registry host:port reached over plain HTTP [DOCKWARD_INSECURE_REGISTRIES]",
    )
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if args.generate_key:
        private, public = generate_key_pair()
        for path in (f"{args.generate_key}.key", f"{args.generate_key}.pub"):
            if os.path.exists(path):
                raise UsageError(f"{path} exists; not overwriting a key")
        atomic_write(f"{args.generate_key}.key", private.decode(), mode=0o600)
        atomic_write(f"{args.generate_key}.pub", public.decode())
        sys.stdout.write(f"wrote {args.generate_key}.key and {args.generate_key}.pub\n")
        return EXIT_OK
    if not args.image or not args.key:
        raise UsageError("sign needs IMAGE and --key (or --generate-key PREFIX)")
    try:
        ref = parse_reference(args.image)
    except InvalidReference as exc:
        raise UsageError(str(exc)) from exc
    insecure = insecure_hosts(args.insecure_registry or env_list("INSECURE_REGISTRIES"))
    client = RegistryClient(insecure=insecure, timeout=10.0)
    digest = client.resolve(ref)
    if args.verify:
        try:
            v = verify_image(client, load_public_key(args.key), ref, digest)
        except SignatureError as exc:
            sys.stderr.write(f"dockward: {ref.name}@{digest}: {exc}\n")
            return EXIT_FINDINGS
        sys.stdout.write(f"{ref.name}@{digest}: {v.signatures} valid signature(s)\n")
        return EXIT_OK
    try:
        tag = sign_image(client, load_private_key(args.key), ref, digest)
    except DockwardError:
        raise
    sys.stdout.write(f"signed {ref.name}@{digest} -> {ref.name}:{tag}\n")
    return EXIT_OK
