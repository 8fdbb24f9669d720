"""Secret detection by variable name and by value shape. Values never leave this module."""

from __future__ import annotations

import math
import re

SECRET_NAME = re.compile(
    r"(PASSW(OR)?D|PASSPHRASE|SECRET|TOKEN|API_?KEY|ACCESS_?KEY|PRIVATE_?KEY|CREDENTIALS?|AUTH)"
    r"(?!_FILE$|_PATH$|_DIR$|_URL$|_HOST$|_USER(NAME)?$|_ID$)",
    re.IGNORECASE,
)
NOT_SECRET_VALUES = {"", "true", "false", "yes", "no", "none", "null", "changeme", "0", "1"}

SECRET_VALUE_SHAPES: dict[str, re.Pattern[str]] = {
    "AWS access key": re.compile(r"\b(AKIA|ASIA)[0-9A-Z]{16}\b"),
    "GitHub token": re.compile(r"\bgh[pousr]_[A-Za-z0-9]{36,}\b"),
    "GitLab token": re.compile(r"\bglpat-[A-Za-z0-9_-]{20,}\b"),
    "Slack token": re.compile(r"\bxox[baprs]-[A-Za-z0-9-]{10,}\b"),
    "private key": re.compile(r"-----BEGIN ([A-Z]+ )?PRIVATE KEY-----"),
    "JWT": re.compile(r"\beyJ[A-Za-z0-9_-]{10,}\.eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}"),
    "password in URL": re.compile(r"[a-z][a-z0-9+.-]*://[^/\s:@]+:[^/\s@]+@", re.IGNORECASE),
    "Stripe key": re.compile(r"\b[sr]k_live_[A-Za-z0-9]{20,}\b"),
    "Google API key": re.compile(r"\bAIza[0-9A-Za-z_-]{35}\b"),
}


def secret_shape(value: str) -> str | None:
    """The kind of secret a value looks like, or None."""
    for kind, pattern in SECRET_VALUE_SHAPES.items():
        if pattern.search(value):
            return kind
    return None


def _entropy(value: str) -> float:
    if not value:
        return 0.0
    counts = {c: value.count(c) for c in set(value)}
    return -sum(n / len(value) * math.log2(n / len(value)) for n in counts.values())


def secret_env_findings(env: tuple[str, ...] | list[str]) -> list[str]:
    """Names (never values) of variables that hold a secret, each with why."""
    hits: list[str] = []
    for item in env:
        name, sep, value = item.partition("=")
        if not sep:
            continue
        shape = secret_shape(value)
        if shape:
            hits.append(f"{name} ({shape})")
        elif (
            SECRET_NAME.search(name)
            and value.strip().lower() not in NOT_SECRET_VALUES
            and not value.startswith(("/", "$"))
            and len(value) >= 4
        ):
            hits.append(f"{name} (name)")
        elif (
            len(value) >= 32 and _entropy(value) > 4.5 and re.fullmatch(r"[A-Za-z0-9+/=_-]+", value)
        ):
            hits.append(f"{name} (high-entropy value)")
    return hits
