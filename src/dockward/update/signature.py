"""Signature before update: the policy's cosign key check (DW-P008) on the new digest, before it
is pulled. `--verify-key FILE` applies to every container; the label `dockward.update.verify-key`
adds a key for one container (it can only add a requirement: a label never replaces the global
key). An unsigned or wrongly signed digest is refused and reported; a key that cannot be read
refuses too (fail closed).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from dockward.errors import DockwardError
from dockward.policy.checks import SIGNATURE
from dockward.policy.cosign import SignatureError, load_public_key, verify_image
from dockward.registry import ImageRef, RegistryClient, RegistryError

VERIFY_LABELS = ("dockward.update.verify-key",)
RULE = SIGNATURE.id  # the policy rule this check is, named by its object


class SignatureCheck:
    def __init__(self, registry: RegistryClient, key_path: str | None = None) -> None:
        self.registry = registry
        self._keys: dict[str, Any] = {}
        self.global_key = ""
        if key_path:
            self._keys[key_path] = load_public_key(key_path)  # bad key: ConfigError, exit 2
            self.global_key = key_path

    def keys_for(self, labels: Mapping[str, str]) -> list[str]:
        paths = [self.global_key] if self.global_key else []
        for label in VERIFY_LABELS:
            value = labels.get(label, "").strip()
            if value and value not in paths:
                paths.append(value)
        return paths

    def failures(self, ref: ImageRef, digest: str, labels: Mapping[str, str]) -> list[str]:
        """Why the digest may not be taken ([] = signed with every key that applies)."""
        out: list[str] = []
        for path in self.keys_for(labels):
            try:
                key = self._keys.get(path)
                if key is None:
                    key = self._keys[path] = load_public_key(path)
                verify_image(self.registry, key, ref, digest)
            except SignatureError as exc:
                out.append(f"{RULE} key {Path(path).name}: {exc}")
            except RegistryError as exc:
                out.append(f"{RULE} key {Path(path).name}: signature not readable: {exc}")
            except DockwardError as exc:  # the key itself (ConfigError): refuse, never skip
                out.append(f"{RULE}: {exc}")
        return out
