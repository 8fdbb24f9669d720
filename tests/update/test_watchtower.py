"""Watchtower's flags and environment: every documented one mapped or refused with a reason."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import pytest

from dockward.cli import build_parser
from dockward.errors import UsageError
from dockward.update.watchtower import BY_ENV, BY_FLAG, OPTIONS, go_duration, translate

DOCUMENTED = Path(__file__).parents[1] / "fixtures" / "update" / "watchtower-documented.txt"


def _documented() -> list[str]:
    return [
        line.strip()
        for line in DOCUMENTED.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]


def test_every_documented_flag_and_variable_is_in_the_table() -> None:
    names = _documented()
    assert len(names) > 100
    missing = [
        n
        for n in names
        if (n.lstrip("-") not in BY_FLAG if n.startswith("--") else n not in BY_ENV)
    ]
    assert missing == []


def _parse(argv: list[str]) -> argparse.Namespace:
    return build_parser(argv).parse_args(argv)


# name -> (environment or flag value, dockward attribute, expected value); every mapped option.
MAPPED: dict[str, tuple[str, str, Any]] = {
    "cleanup": ("true", "cleanup", True),
    "debug": ("true", "progress", True),
    "trace": ("true", "progress", True),
    "log-level": ("debug", "progress", True),
    "host": ("unix:///run/other.sock", "host", "unix:///run/other.sock"),
    "api-version": ("1.44", "api_version", "1.44"),
    "DOCKER_CONFIG": ("/etc/dw-docker", "docker_config", "/etc/dw-docker"),
    "include-stopped": ("true", "include_stopped", True),
    "revive-stopped": ("true", "revive_stopped", True),
    "interval": ("300", "interval", 300.0),
    "label-enable": ("true", "all", False),
    "disable-containers": ("db,cache", "disable_containers", ["db,cache"]),
    "monitor-only": ("true", "monitor_only", True),
    "no-restart": ("true", "monitor_only", True),
    "no-pull": ("true", "no_pull", True),
    "run-once": ("true", "once", True),
    "http-api-update": ("true", "http_api_update", True),
    "http-api-token": ("s3cret", "http_api_token", "s3cret"),
    "http-api-periodic-polls": ("true", "http_api_periodic_polls", True),
    "http-api-metrics": ("true", "http_api_metrics", True),
    "scope": ("prod", "scope", "prod"),
    "schedule": ("0 0 4 * * *", "schedule", "0 0 4 * * *"),
    "stop-timeout": ("1m30s", "stop_timeout", 90),
    "porcelain": ("v1", "notification_template", "porcelain.v1"),
    "enable-lifecycle-hooks": ("true", "enable_lifecycle_hooks", True),
    "notifications-hostname": ("edge-1", "notifications_hostname", "edge-1"),
    "notification-title-tag": ("prod", "notification_title_tag", "prod"),
    "notification-skip-title": ("true", "notification_skip_title", True),
    "notification-url": ("discord://t@1 ntfy://h/t", "notify", ["discord://t@1", "ntfy://h/t"]),
    "notification-template": ("{{range .}}{{.Message}}{{end}}", "notification_template",
                              "{{range .}}{{.Message}}{{end}}"),
    "notification-report": ("true", "notification_report", True),
    "notification-email-subjecttag": ("prod", "notification_title_tag", "prod"),
    "health-check": ("true", "", None),
}  # fmt: skip


# Legacy notification options (email/slack/gotify/msteams) are tested together below.
SINGLE = [o for o in OPTIONS if o.status != "legacy" and o.name not in ("help", "notifications")]


@pytest.mark.parametrize("opt", SINGLE, ids=[o.name for o in SINGLE])
def test_each_option_by_environment_and_by_flag(opt: Any) -> None:
    if opt.status in ("unsupported", "same"):
        assert opt.why, f"{opt.name}: a reason is required"
        value = "1" if not opt.takes_value else "x"
        env = {e: value for e in opt.env} or {}
        argv = [] if env else [f"--{opt.name}"]
        tr = translate(argv, env)
        if opt.status == "unsupported":
            assert len(tr.warnings) == 1 and opt.why in tr.warnings[0], tr.warnings
        else:
            assert tr.warnings == []
        return
    value, attr, want = MAPPED[opt.name]
    ways: list[tuple[list[str], dict[str, str]]] = []
    if opt.env:
        ways.append(([], {opt.env[0]: value}))
    if opt.name.islower():
        ways.append(([f"--{opt.name}", value] if opt.takes_value else [f"--{opt.name}"], {}))
    for argv, env in ways:
        tr = translate(argv, env)
        if opt.name == "health-check":
            assert tr.health_check
            continue
        assert tr.warnings == []
        args = _parse(tr.argv)
        assert args.command == "update"
        assert getattr(args, attr) == want, (opt.name, tr.argv)


def test_watchtower_defaults_are_all_containers_daily() -> None:
    args = _parse(translate([], {"WATCHTOWER_CLEANUP": "true"}).argv)
    assert args.all and args.interval == 86400.0 and args.cleanup
    # Container names on the command line: only those (as in Watchtower).
    args = _parse(translate(["--run-once", "web", "db"], {}).argv)
    assert args.containers == ["web", "db"] and not args.all and args.once


def test_legacy_notifications_become_urls() -> None:
    env = {
        "WATCHTOWER_NOTIFICATIONS": "email slack gotify",
        "WATCHTOWER_NOTIFICATION_EMAIL_FROM": "wt@example.com",
        "WATCHTOWER_NOTIFICATION_EMAIL_TO": "ops@example.com",
        "WATCHTOWER_NOTIFICATION_EMAIL_SERVER": "mail.example.com",
        "WATCHTOWER_NOTIFICATION_EMAIL_SERVER_PORT": "587",
        "WATCHTOWER_NOTIFICATION_EMAIL_SERVER_USER": "wt",
        "WATCHTOWER_NOTIFICATION_EMAIL_SERVER_PASSWORD": "pw",
        "WATCHTOWER_NOTIFICATION_SLACK_HOOK_URL": "https://hooks.slack.com/services/T0/B0/XX",
        "WATCHTOWER_NOTIFICATION_SLACK_IDENTIFIER": "wt-1",
        "WATCHTOWER_NOTIFICATION_SLACK_CHANNEL": "#ops",
        "WATCHTOWER_NOTIFICATION_GOTIFY_URL": "https://gotify.example.com/",
        "WATCHTOWER_NOTIFICATION_GOTIFY_TOKEN": "Agt0k",
        "WATCHTOWER_NOTIFICATION_GOTIFY_TLS_SKIP_VERIFY": "true",
    }
    args = _parse(translate([], env).argv)
    assert args.notify == [
        "smtp://wt:pw@mail.example.com:587/?from=wt%40example.com&to=ops%40example.com",
        "slack://wt-1@T0/B0/XX/%23ops",
        "gotifys://gotify.example.com/Agt0k?verify=no",
    ]
    from dockward.notify import build

    dests = build(args.notify, None).workers
    assert [w.name for w in dests] == [
        "smtp://mail.example.com:587",
        "slack://…",
        "gotifys://gotify.example.com",
    ]
    with pytest.raises(UsageError, match="msteams: Microsoft retired"):
        translate([], {"WATCHTOWER_NOTIFICATIONS": "msteams"})


def test_secrets_are_read_from_files(tmp_path: Path) -> None:
    (tmp_path / "token").write_text("from-a-file\n")
    (tmp_path / "url").write_text("discord://t@1\n")
    env = {
        "WATCHTOWER_HTTP_API_TOKEN": str(tmp_path / "token"),
        "WATCHTOWER_NOTIFICATION_URL": str(tmp_path / "url"),
    }
    args = _parse(translate([], env).argv)
    assert args.http_api_token == "from-a-file" and args.notify == ["discord://t@1"]


@pytest.mark.parametrize(
    ("argv", "env", "message"),
    [
        (["--no-such-flag"], {}, "Watchtower flag --no-such-flag is unknown"),
        (["--interval"], {}, "needs a value"),
        ([], {"WATCHTOWER_TIMEOUT": "ten"}, "Watchtower duration 'ten'"),
        ([], {"WATCHTOWER_PORCELAIN": "v2"}, "only v1"),
        ([], {"WATCHTOWER_NOTIFICATIONS": "pager"}, "unknown type 'pager'"),
    ],
)
def test_bad_watchtower_input_is_one_line(
    argv: list[str], env: dict[str, str], message: str
) -> None:
    with pytest.raises(UsageError, match=message):
        translate(argv, env)


def test_go_durations() -> None:
    assert go_duration("10s") == 10 and go_duration("1m30s") == 90 and go_duration("1h") == 3600
    assert go_duration("500ms") == 0.5 and go_duration("45") == 45
