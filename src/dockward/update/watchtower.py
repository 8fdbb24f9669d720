"""Watchtower's flags and environment, as `dockward update` arguments (a drop-in replacement).

A compose service that ran `containrrr/watchtower` runs dockward with only the image changed:
with no dockward subcommand on the command line and Watchtower's variables or flags present,
`dockward` translates them here. Every flag and `WATCHTOWER_*`/Docker variable in Watchtower's
documentation (docs/arguments.md, notifications.md, private-registries.md, lifecycle-hooks.md)
is in OPTIONS: mapped to dockward's option, accepted because dockward already behaves that way,
or not supported, with the reason (printed as a one-line warning when set).
"""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from dockward.errors import UsageError

Mapper = Callable[[str], list[str]]


@dataclass(frozen=True, slots=True)
class Option:
    name: str  # Watchtower's long flag without dashes (or the variable for env-only options)
    env: tuple[str, ...]
    takes_value: bool
    short: str = ""
    to: Mapper | None = None  # value -> dockward update arguments
    status: str = "mapped"  # mapped | same (dockward's behaviour already) | unsupported | legacy
    why: str = ""
    secret_file: bool = False  # Watchtower reads the value from a file when it names one


def _true(value: str) -> bool:
    return value.strip().lower() in ("1", "true", "yes", "on", "t")


def _flag(*args: str) -> Mapper:
    return lambda v: list(args) if _true(v) else []


def _value(flag: str) -> Mapper:
    return lambda v: [flag, v] if v.strip() else []


_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
_UNIT = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def go_duration(text: str) -> float:
    """Go's time.ParseDuration ("10s", "1m30s", "500ms"); a bare number is seconds."""
    text = text.strip()
    try:
        return float(text)
    except ValueError:
        pass
    pos, total = 0, 0.0
    for m in _DURATION.finditer(text):
        if m.start() != pos:
            break
        total += float(m.group(1)) * _UNIT[m.group(2)]
        pos = m.end()
    if pos != len(text) or not text:
        raise UsageError(f"Watchtower duration {text!r}: expected e.g. 10s, 1m30s")
    return total


def _stop_timeout(v: str) -> list[str]:
    return ["--stop-timeout", str(max(1, round(go_duration(v))))]


def _interval(v: str) -> list[str]:
    return ["--interval", str(go_duration(v))]


def _log_level(v: str) -> list[str]:
    return ["--progress"] if v.strip().lower() in ("debug", "trace") else []


def _porcelain(v: str) -> list[str]:
    if v.strip() != "v1":
        raise UsageError(f"--porcelain {v}: Watchtower knows only v1")
    return [
        "--notify",
        "stdout",
        "--notification-report",
        "--notification-template",
        "porcelain.v1",
    ]


def _no_restart(v: str) -> list[str]:
    # Pulling without recreating leaves the container on its old image: dockward reports instead.
    return ["--monitor-only"] if _true(v) else []


def _notifications(v: str) -> list[str]:
    return []  # resolved with the legacy variables in _legacy_urls


def _notify_urls(v: str) -> list[str]:
    out: list[str] = []
    for url in v.split():
        out += ["--notify", url]
    return out


OPTIONS: tuple[Option, ...] = (
    Option("help", (), False, "h", None, "same", "dockward's own --help"),
    Option("TZ", ("TZ",), True, to=None, status="same",
           why="cron schedules are evaluated in TZ (an IANA zone), as in Watchtower"),
    Option("cleanup", ("WATCHTOWER_CLEANUP",), False, "c", _flag("--cleanup")),
    Option("remove-volumes", ("WATCHTOWER_REMOVE_VOLUMES",), False, status="unsupported",
           why="dockward moves the old container's anonymous volumes to the new one, so nothing "
           "is left to remove and no data is lost on update"),
    Option("debug", ("WATCHTOWER_DEBUG",), False, "d", _flag("--progress")),
    Option("trace", ("WATCHTOWER_TRACE",), False, to=_flag("--progress")),
    Option("log-level", ("WATCHTOWER_LOG_LEVEL",), True, to=_log_level),
    Option("log-format", ("WATCHTOWER_LOG_FORMAT",), True, "l", status="unsupported",
           why="dockward prints one report per run, not log lines; use --format json for machines"),
    Option("no-color", ("NO_COLOR",), False, status="same",
           why="dockward's terminal output honours NO_COLOR"),
    Option("host", ("DOCKER_HOST",), True, "H", _value("--host")),
    Option("api-version", ("DOCKER_API_VERSION",), True, "a", _value("--api-version")),
    Option("tlsverify", ("DOCKER_TLS_VERIFY",), False, "v", status="unsupported",
           why="dockward does not speak TLS to a remote engine (DOCKER_CERT_PATH); use the local "
           "socket or a dockward proxy in front of it"),
    Option("DOCKER_CERT_PATH", ("DOCKER_CERT_PATH",), True, status="unsupported",
           why="see --tlsverify"),
    Option("DOCKER_CONFIG", ("DOCKER_CONFIG",), True, to=_value("--docker-config")),
    Option("REPO_USER", ("REPO_USER",), True, status="unsupported",
           why="one login for every registry; mount a config.json (DOCKER_CONFIG) with per-registry "
           "auths or credential helpers instead"),
    Option("REPO_PASS", ("REPO_PASS",), True, status="unsupported", why="see REPO_USER"),
    Option("include-restarting", ("WATCHTOWER_INCLUDE_RESTARTING",), False, status="same",
           why="dockward always includes restarting (and paused) containers"),
    Option("include-stopped", ("WATCHTOWER_INCLUDE_STOPPED",), False, "S",
           _flag("--include-stopped")),
    Option("revive-stopped", ("WATCHTOWER_REVIVE_STOPPED",), False,
           to=_flag("--revive-stopped")),
    Option("interval", ("WATCHTOWER_POLL_INTERVAL",), True, "i", _interval),
    Option("label-enable", ("WATCHTOWER_LABEL_ENABLE",), False, "e", status="mapped",
           why="dockward's default (opt-in by label); without it, --all"),
    Option("disable-containers", ("WATCHTOWER_DISABLE_CONTAINERS",), True, "x",
           lambda v: ["--disable-containers", v] if v.strip() else []),
    Option("monitor-only", ("WATCHTOWER_MONITOR_ONLY",), False, "m", to=_flag("--monitor-only")),
    Option("label-take-precedence", ("WATCHTOWER_LABEL_TAKE_PRECEDENCE",), False,
           status="unsupported",
           why="a container's monitor-only/no-pull label adds to the global flag; a label cannot "
           "switch a global --monitor-only off"),
    Option("no-restart", ("WATCHTOWER_NO_RESTART",), False, to=_no_restart,
           why="pulling without recreating leaves the container on its old image; dockward "
           "reports the update (--monitor-only) instead"),
    Option("no-pull", ("WATCHTOWER_NO_PULL",), False, to=_flag("--no-pull")),
    Option("no-startup-message", ("WATCHTOWER_NO_STARTUP_MESSAGE",), False, status="same",
           why="dockward sends no startup message"),
    Option("run-once", ("WATCHTOWER_RUN_ONCE",), False, "R", _flag("--once")),
    Option("http-api-update", ("WATCHTOWER_HTTP_API_UPDATE",), False, to=_flag("--http-api-update")),
    Option("http-api-token", ("WATCHTOWER_HTTP_API_TOKEN",), True, to=_value("--http-api-token"),
           secret_file=True),
    Option("http-api-periodic-polls", ("WATCHTOWER_HTTP_API_PERIODIC_POLLS",), False,
           to=_flag("--http-api-periodic-polls")),
    Option("http-api-metrics", ("WATCHTOWER_HTTP_API_METRICS",), False,
           to=_flag("--http-api-metrics")),
    Option("scope", ("WATCHTOWER_SCOPE",), True, to=_value("--scope")),
    Option("schedule", ("WATCHTOWER_SCHEDULE",), True, "s", _value("--schedule")),
    Option("rolling-restart", ("WATCHTOWER_ROLLING_RESTART",), False, status="same",
           why="dockward updates one container at a time, each behind its health gate"),
    Option("stop-timeout", ("WATCHTOWER_TIMEOUT",), True, "t", to=_stop_timeout),
    Option("warn-on-head-failure", ("WATCHTOWER_WARN_ON_HEAD_FAILURE",), True, status="same",
           why="a failed registry check is always reported for its container and never "
           "triggers a blind pull"),
    Option("health-check", (), False, status="mapped", why="exits 0 (for a HEALTHCHECK)"),
    Option("porcelain", ("WATCHTOWER_PORCELAIN",), True, "P", _porcelain),
    Option("enable-lifecycle-hooks", ("WATCHTOWER_LIFECYCLE_HOOKS",), False,
           to=_flag("--enable-lifecycle-hooks")),
    # Notifications (docs/notifications.md).
    Option("notifications-level", ("WATCHTOWER_NOTIFICATIONS_LEVEL",), True, status="unsupported",
           why="dockward notifies what happened to containers, not log lines of a level"),
    Option("notifications-hostname", ("WATCHTOWER_NOTIFICATIONS_HOSTNAME",), True,
           to=_value("--notifications-hostname")),
    Option("notifications-delay", ("WATCHTOWER_NOTIFICATIONS_DELAY",), True, status="unsupported",
           why="messages go out when the cycle ends, in the background"),
    Option("notification-title-tag", ("WATCHTOWER_NOTIFICATION_TITLE_TAG",), True,
           to=_value("--notification-title-tag")),
    Option("notification-skip-title", ("WATCHTOWER_NOTIFICATION_SKIP_TITLE",), False,
           to=_flag("--notification-skip-title")),
    Option("notification-log-stdout", ("WATCHTOWER_NOTIFICATION_LOG_STDOUT",), False,
           status="same", why="logger:// notifications go to stdout"),
    Option("notification-url", ("WATCHTOWER_NOTIFICATION_URL",), True, to=_notify_urls,
           secret_file=True),
    Option("notification-template", ("WATCHTOWER_NOTIFICATION_TEMPLATE",), True,
           to=_value("--notification-template")),
    Option("notification-report", ("WATCHTOWER_NOTIFICATION_REPORT",), False,
           to=_flag("--notification-report")),
    Option("notifications", ("WATCHTOWER_NOTIFICATIONS",), True, "n", _notifications,
           why="legacy types email, slack, gotify become notification URLs; msteams is refused "
           "(Microsoft retired its connectors); shoutrrr uses WATCHTOWER_NOTIFICATION_URL"),
    Option("notification-email-from", ("WATCHTOWER_NOTIFICATION_EMAIL_FROM",), True, status="legacy"),
    Option("notification-email-to", ("WATCHTOWER_NOTIFICATION_EMAIL_TO",), True, status="legacy"),
    Option("notification-email-server", ("WATCHTOWER_NOTIFICATION_EMAIL_SERVER",), True,
           status="legacy"),
    Option("notification-email-server-port", ("WATCHTOWER_NOTIFICATION_EMAIL_SERVER_PORT",), True,
           status="legacy"),
    Option("notification-email-server-user", ("WATCHTOWER_NOTIFICATION_EMAIL_SERVER_USER",), True,
           status="legacy"),
    Option("notification-email-server-password",
           ("WATCHTOWER_NOTIFICATION_EMAIL_SERVER_PASSWORD",), True, status="legacy",
           secret_file=True),
    Option("notification-email-server-tls-skip-verify",
           ("WATCHTOWER_NOTIFICATION_EMAIL_SERVER_TLS_SKIP_VERIFY",), False, status="unsupported",
           why="dockward verifies the mail server's certificate"),
    Option("notification-email-delay", ("WATCHTOWER_NOTIFICATION_EMAIL_DELAY",), True,
           status="unsupported", why="messages go out when the cycle ends"),
    Option("notification-email-subjecttag", ("WATCHTOWER_NOTIFICATION_EMAIL_SUBJECTTAG",), True,
           to=_value("--notification-title-tag")),
    Option("notification-slack-hook-url", ("WATCHTOWER_NOTIFICATION_SLACK_HOOK_URL",), True,
           status="legacy", secret_file=True),
    Option("notification-slack-identifier", ("WATCHTOWER_NOTIFICATION_SLACK_IDENTIFIER",), True,
           status="legacy"),
    Option("notification-slack-channel", ("WATCHTOWER_NOTIFICATION_SLACK_CHANNEL",), True,
           status="legacy"),
    Option("notification-slack-icon-emoji", ("WATCHTOWER_NOTIFICATION_SLACK_ICON_EMOJI",), True,
           status="unsupported", why="Apprise's Slack message carries its own icon"),
    Option("notification-slack-icon-url", ("WATCHTOWER_NOTIFICATION_SLACK_ICON_URL",), True,
           status="unsupported", why="Apprise's Slack message carries its own icon"),
    Option("notification-msteams-hook", ("WATCHTOWER_NOTIFICATION_MSTEAMS_HOOK_URL",), True,
           status="legacy", secret_file=True),
    Option("notification-msteams-data", ("WATCHTOWER_NOTIFICATION_MSTEAMS_USE_LOG_DATA",), False,
           status="unsupported", why="Microsoft retired the Office 365 connectors"),
    Option("notification-gotify-url", ("WATCHTOWER_NOTIFICATION_GOTIFY_URL",), True,
           status="legacy"),
    Option("notification-gotify-token", ("WATCHTOWER_NOTIFICATION_GOTIFY_TOKEN",), True,
           status="legacy", secret_file=True),
    Option("notification-gotify-tls-skip-verify",
           ("WATCHTOWER_NOTIFICATION_GOTIFY_TLS_SKIP_VERIFY",), False, status="legacy"),
)  # fmt: skip

BY_FLAG = {o.name: o for o in OPTIONS} | {o.short: o for o in OPTIONS if o.short}
BY_ENV = {e: o for o in OPTIONS for e in o.env}
DOCKWARD_TOP = ("--version", "--debug")


@dataclass
class Translation:
    argv: list[str] = field(default_factory=list)  # `dockward update ...`
    warnings: list[str] = field(default_factory=list)
    health_check: bool = False


def wants_watchtower(
    argv: Sequence[str], env: Mapping[str, str], subcommands: Sequence[str]
) -> bool:
    """No dockward subcommand, and Watchtower's variables or flags: the drop-in mode."""
    for arg in argv:
        if not arg.startswith("-"):
            if arg in subcommands:
                return False
            break
    if any(k.startswith("WATCHTOWER_") for k in env):
        return True
    for arg in argv:
        name = arg.lstrip("-").split("=", 1)[0]
        if arg.startswith("-") and arg not in DOCKWARD_TOP and name in BY_FLAG and name != "help":
            return True
    return False


def _read_secret(value: str) -> str:
    """Watchtower: a value naming an existing file means the file's content."""
    path = Path(value.strip())
    if value.strip().startswith("/") and path.is_file():
        try:
            return path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise UsageError(f"cannot read {path}: {exc.strerror}") from exc
    return value


def _parse_argv(argv: Sequence[str]) -> tuple[dict[str, str], list[str]]:
    values: dict[str, str] = {}
    names: list[str] = []
    i = 0
    while i < len(argv):
        arg = argv[i]
        i += 1
        if arg in ("--help", "-h") and len(argv) == 1:
            continue  # the image's default CMD: run, as Watchtower's image does
        if not arg.startswith("-") or arg == "-":
            names.append(arg)
            continue
        key, eq, inline = arg.lstrip("-").partition("=")
        opt = BY_FLAG.get(key)
        if opt is None:
            raise UsageError(f"Watchtower flag {arg.split('=')[0]} is unknown")
        if opt.takes_value:
            if eq:
                value = inline
            elif i < len(argv):
                value = argv[i]
                i += 1
            else:
                raise UsageError(f"Watchtower flag {arg} needs a value")
        else:
            value = inline if eq else "true"
        values[opt.name] = value
    return values, names


def _legacy_urls(get: Callable[[str], str]) -> list[str]:
    kinds = [k for k in re.split(r"[\s,]+", get("notifications").lower()) if k]
    urls: list[str] = []
    for kind in kinds:
        if kind == "shoutrrr":
            continue
        if kind == "email":
            server = get("notification-email-server")
            sender, to = get("notification-email-from"), get("notification-email-to")
            if not server or not sender or not to:
                raise UsageError(
                    "WATCHTOWER_NOTIFICATIONS=email needs WATCHTOWER_NOTIFICATION_EMAIL_SERVER, "
                    "_FROM and _TO"
                )
            user = get("notification-email-server-user")
            password = get("notification-email-server-password")
            auth = ""
            if user:
                auth = urllib.parse.quote(user, safe="")
                auth += (":" + urllib.parse.quote(password, safe="")) if password else ""
                auth += "@"
            port = get("notification-email-server-port") or "25"
            query = urllib.parse.urlencode({"from": sender, "to": to})
            urls.append(f"smtp://{auth}{server}:{port}/?{query}")
        elif kind == "slack":
            hook = get("notification-slack-hook-url")
            m = re.match(r"https://hooks\.slack\.com/services/([^/]+)/([^/]+)/([^/?]+)", hook)
            if not m:
                raise UsageError(
                    "WATCHTOWER_NOTIFICATION_SLACK_HOOK_URL: expected "
                    "https://hooks.slack.com/services/A/B/C"
                )
            bot = urllib.parse.quote(get("notification-slack-identifier") or "watchtower", safe="")
            url = f"slack://{bot}@{m.group(1)}/{m.group(2)}/{m.group(3)}"
            channel = get("notification-slack-channel").lstrip("#")
            urls.append(url + (f"/%23{urllib.parse.quote(channel, safe='')}" if channel else ""))
        elif kind == "gotify":
            base, token = get("notification-gotify-url"), get("notification-gotify-token")
            parts = urllib.parse.urlsplit(base)
            if parts.scheme not in ("http", "https") or not parts.netloc or not token:
                raise UsageError(
                    "WATCHTOWER_NOTIFICATIONS=gotify needs WATCHTOWER_NOTIFICATION_GOTIFY_URL "
                    "(http(s)://HOST) and _TOKEN"
                )
            scheme = "gotifys" if parts.scheme == "https" else "gotify"
            verify = "?verify=no" if _true(get("notification-gotify-tls-skip-verify")) else ""
            path = parts.path.rstrip("/")
            urls.append(f"{scheme}://{parts.netloc}{path}/{urllib.parse.quote(token)}{verify}")
        elif kind == "msteams":
            raise UsageError(
                "WATCHTOWER_NOTIFICATIONS=msteams: Microsoft retired the Office 365 connectors; "
                "use a Teams Workflow URL (workflows://) in WATCHTOWER_NOTIFICATION_URL"
            )
        else:
            raise UsageError(f"WATCHTOWER_NOTIFICATIONS: unknown type {kind!r}")
    return urls


def translate(argv: Sequence[str], env: Mapping[str, str]) -> Translation:
    """Watchtower's command line and environment -> `dockward update` arguments."""
    flags, names = _parse_argv(argv)
    out = Translation()

    def get(name: str) -> str:
        opt = BY_FLAG[name]
        value = flags[name] if name in flags else next((env[e] for e in opt.env if e in env), "")
        return _read_secret(value) if opt.secret_file and value else value

    if _true(flags.get("health-check", "")):
        out.health_check = True
        return out
    args: list[str] = []
    for opt in OPTIONS:
        given = opt.name in flags or any(e in env for e in opt.env)
        if not given:
            continue
        value = get(opt.name)
        if opt.status == "unsupported":
            if value and (opt.takes_value or _true(value)):
                label = f"--{opt.name}" if opt.name.islower() else opt.name
                out.warnings.append(f"{label}: not supported: {opt.why}")
            continue
        if opt.to is not None:
            args += opt.to(value)
    if not _true(get("label-enable")) and not names:
        args.append("--all")  # Watchtower without --label-enable: every container not opted out
    for url in _legacy_urls(get):
        args += ["--notify", url]
    if not any(a in ("--interval", "--schedule", "--once", "--http-api-update") for a in args):
        args += ["--interval", "86400"]  # Watchtower's default poll interval
    out.argv = ["update", *args, *names]
    return out


def table() -> list[tuple[str, str, str, str]]:
    """(flag, variables, status, what dockward does) for the README and the test."""
    rows = []
    for o in OPTIONS:
        flag = f"--{o.name}" if o.name.islower() else ""
        rows.append((flag, ", ".join(o.env), o.status, o.why))
    return rows
