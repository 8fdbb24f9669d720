"""Registry credentials as the Docker CLI finds them: config.json `auths`, `credsStore`, `credHelpers`."""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dockward.errors import ConfigError
from dockward.registry.reference import DOCKER_HUB

HUB_KEYS = ("https://index.docker.io/v1/", "index.docker.io", "docker.io", "registry-1.docker.io")
_HELPER_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")
MAX_CONFIG_BYTES = 1 << 20


@dataclass(frozen=True, slots=True)
class Credentials:
    # repr=False: credentials must never reach a log line or a traceback.
    username: str = field(default="", repr=False)
    password: str = field(default="", repr=False)
    identity_token: str = field(default="", repr=False)

    @property
    def empty(self) -> bool:
        return not (self.username or self.password or self.identity_token)

    def auth_config(self) -> dict[str, str]:
        """The shape docker-py's `pull(auth_config=...)` expects."""
        if self.identity_token:
            return {"identitytoken": self.identity_token}
        return {"username": self.username, "password": self.password}


def config_path() -> Path:
    base = os.environ.get("DOCKER_CONFIG") or str(Path.home() / ".docker")
    return Path(base) / "config.json"


@dataclass(frozen=True, slots=True)
class CredentialStore:
    auths: dict[str, dict[str, Any]] = field(default_factory=dict, repr=False)
    creds_store: str = ""
    cred_helpers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def load(cls, path: str | Path | None = None) -> CredentialStore:
        """Read the client config (a file, or a directory holding config.json); a missing file
        means anonymous access, a broken one is an error."""
        target = Path(path) if path else config_path()
        if target.is_dir():
            target = target / "config.json"
        try:
            with open(target, "rb") as fh:
                raw = fh.read(MAX_CONFIG_BYTES + 1)
        except FileNotFoundError:
            return cls()
        except OSError as exc:
            raise ConfigError(f"cannot read {target}: {exc.strerror}") from exc
        if len(raw) > MAX_CONFIG_BYTES:
            raise ConfigError(f"{target}: larger than 1 MiB")
        try:
            data = json.loads(raw)
        except (ValueError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{target}: not valid JSON ({exc})") from exc
        if not isinstance(data, dict):
            raise ConfigError(f"{target}: expected a JSON object")
        auths = data.get("auths") if isinstance(data.get("auths"), dict) else {}
        helpers = data.get("credHelpers") if isinstance(data.get("credHelpers"), dict) else {}
        return cls(
            {str(k): v for k, v in (auths or {}).items() if isinstance(v, dict)},
            str(data.get("credsStore") or ""),
            {str(k): str(v) for k, v in (helpers or {}).items()},
        )

    def lookup(self, registry: str) -> Credentials:
        keys = HUB_KEYS if registry == DOCKER_HUB else (registry,)
        helper = next((self.cred_helpers[k] for k in keys if k in self.cred_helpers), "")
        if helper or self.creds_store:
            found = _from_helper(helper or self.creds_store, keys[0])
            if not found.empty:
                return found
        for key, entry in self.auths.items():
            if _host_of(key) in keys or key in keys:
                return _from_entry(key, entry)
        return Credentials()


def _host_of(key: str) -> str:
    host = key.removeprefix("https://").removeprefix("http://")
    return host.split("/", 1)[0]


def _from_entry(key: str, entry: dict[str, Any]) -> Credentials:
    token = str(entry.get("identitytoken") or "")
    if entry.get("auth"):
        try:
            decoded = base64.b64decode(str(entry["auth"]), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError) as exc:
            raise ConfigError(f"docker config: the auth entry for {key} is not base64") from exc
        user, sep, password = decoded.partition(":")
        if not sep:
            raise ConfigError(f"docker config: the auth entry for {key} is not user:password")
        return Credentials(user, password, token)
    return Credentials(str(entry.get("username") or ""), str(entry.get("password") or ""), token)


def _from_helper(helper: str, server: str) -> Credentials:
    """Ask `docker-credential-<helper> get`, as the Docker CLI does (argv only, no shell)."""
    if not _HELPER_NAME.fullmatch(helper):
        raise ConfigError(f"docker config: invalid credential helper name {helper!r}")
    exe = shutil.which(f"docker-credential-{helper}")
    if exe is None:
        return Credentials()
    try:
        proc = subprocess.run(
            [exe, "get"], input=server, capture_output=True, text=True, timeout=15, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return Credentials()
    if proc.returncode != 0:
        return Credentials()
    try:
        data = json.loads(proc.stdout)
    except ValueError:
        return Credentials()
    if not isinstance(data, dict):
        return Credentials()
    user, secret = str(data.get("Username") or ""), str(data.get("Secret") or "")
    if user == "<token>":
        return Credentials(identity_token=secret)
    return Credentials(user, secret)
