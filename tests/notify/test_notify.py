"""The notification layer: shoutrrr URLs translated, Apprise delivering to local receivers over its
real transport, background delivery with spool, retries and a rate limit, no secret in messages."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dockward.errors import UsageError
from dockward.notify import Note, NotifyError, build, parse_destination, split_urls, to_apprise
from dockward.notify.destinations import AppriseDestination
from dockward.notify.urls import redact
from dockward.notify.worker import NotifyWorker, RateLimit
from tests.conftest import free_port
from tests.notify.receivers import Behaviour, InterceptProxy, Receiver, make_ca

FIXED_HOSTS = ["hooks.slack.com", "discord.com", "prod-00.westus.logic.azure.com"]
NOTE = Note("dockward update: 1 updated", "- web (reg/web:1): updated\n", "success", {"n": 1})


@pytest.fixture
def proxy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[InterceptProxy]:
    ca, leaf, key = make_ca(tmp_path, FIXED_HOSTS)
    with InterceptProxy(leaf, key, Behaviour(status=200, body=b"ok")) as px:
        monkeypatch.setenv("HTTPS_PROXY", f"http://127.0.0.1:{px.port}")
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(ca))
        monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
        yield px


def _send(url: str, note: Note = NOTE) -> list[str]:
    n = build([url], None).start()
    n.submit(note)
    return n.stop(10.0)


# Every shoutrrr service in Watchtower's notification docs (shoutrrr v0.8's list) that Apprise has:
# the shoutrrr URL, the Apprise plugin it becomes, and the fields it must carry over.
SHOUTRRR = [
    ("bark://devkey123@bark.example.com", "NotifyBark", {"host": "bark.example.com", "secure": True}),
    ("discord://tok3n@123456789", "NotifyDiscord", {"webhook_id": "123456789", "webhook_token": "tok3n"}),
    (
        "smtp://user:pw@mail.example.com:587/?from=dw@example.com&to=a@example.com,b@example.com",
        "NotifyEmail",
        {"smtp_host": "mail.example.com", "port": 587, "user": "user"},
    ),
    ("gotify://gotify.example.com/Atoken123", "NotifyGotify", {"host": "gotify.example.com", "secure": True, "token": "Atoken123"}),
    ("gotify://gotify.example.com/Atoken123?disabletls=yes", "NotifyGotify", {"secure": False}),
    ("googlechat://chat.googleapis.com/v1/spaces/SPACE1/messages?key=Kk&token=Tt", "NotifyGoogleChat", {"workspace": "SPACE1", "webhook_key": "Kk", "webhook_token": "Tt"}),
    ("hangouts://chat.googleapis.com/v1/spaces/SPACE1/messages?key=Kk&token=Tt", "NotifyGoogleChat", {"workspace": "SPACE1"}),
    ("ifttt://iftttkey/?events=ev1,ev2", "NotifyIFTTT", {"webhook_id": "iftttkey", "events": ["ev1", "ev2"]}),
    ("join://shoutrrr:abcdefghijklmnopqrstuvwxyz012345@join/?devices=dev1,dev2", "NotifyJoin", {"apikey": "abcdefghijklmnopqrstuvwxyz012345", "targets": ["dev1", "dev2"]}),
    ("mattermost://bot@mm.example.com/hooktoken/town-square", "NotifyMattermost", {"host": "mm.example.com", "secure": True, "token": "hooktoken"}),
    ("matrix://user:pass@matrix.example.com:8448/?rooms=!room:example.com", "NotifyMatrix", {"host": "matrix.example.com", "secure": True}),
    ("ntfy://user:pass@ntfy.sh/alerts", "NotifyNtfy", {"host": "ntfy.sh", "secure": True, "topics": ["alerts"]}),
    ("ntfy://ntfy.local:8080/alerts?scheme=http", "NotifyNtfy", {"secure": False}),
    ("opsgenie://api.opsgenie.com/opsgeniekey?responders=team:ops", "NotifyOpsgenie", {"apikey": "opsgeniekey"}),
    ("pushbullet://pbtoken123/device1", "NotifyPushBullet", {"accesstoken": "pbtoken123"}),
    ("pushover://shoutrrr:apitoken123@userkey456/?devices=phone", "NotifyPushover", {"token": "apitoken123", "user_key": "userkey456"}),
    ("rocketchat://rc.example.com/tokA/tokB/general", "NotifyRocketChat", {"host": "rc.example.com", "secure": True}),
    ("slack://hook:T0000-B0000-XXXX@webhook?botname=dw", "NotifySlack", {"token_a": "T0000", "token_b": "B0000", "token_c": "XXXX", "user": "dw"}),
    ("slack://dw@T0000/B0000/XXXX", "NotifySlack", {"token_a": "T0000", "token_b": "B0000", "token_c": "XXXX"}),
    ("slack://xoxb:123456789012-1234567890123-4mt0t4l1YL3g1T5L4cK70k3N@C001CH4NN3L", "NotifySlack", {"access_token": "xoxb-123456789012-1234567890123-4mt0t4l1YL3g1T5L4cK70k3N"}),
    ("telegram://123456789:AAbbCCdd@telegram?chats=@mychannel,12345", "NotifyTelegram", {"bot_token": "123456789:AAbbCCdd"}),
    ("zulip://dw-bot%40example.zulipchat.com:bOtKeY0123456789abcdefABCDEF0123@example.zulipchat.com/?stream=ops&topic=updates", "NotifyZulip", {"botname": "dw", "token": "bOtKeY0123456789abcdefABCDEF0123", "organization": "example", "hostname": "zulipchat.com"}),
    ("generic://hooks.example.com/api/notify?@X-Custom=1&$source=dw", "NotifyJSON", {"host": "hooks.example.com", "secure": True}),
    ("generic+http://hooks.example.com:8080/api/notify?x=1", "NotifyJSON", {"host": "hooks.example.com", "secure": False, "port": 8080}),
]  # fmt: skip


@pytest.mark.parametrize(
    ("url", "plugin", "fields"), SHOUTRRR, ids=[u.split("://")[0] for u, _, _ in SHOUTRRR]
)
def test_shoutrrr_urls_become_the_apprise_service(
    url: str, plugin: str, fields: dict[str, Any]
) -> None:
    dest = parse_destination(url)
    assert isinstance(dest, AppriseDestination), url
    got = dest._plugin
    assert type(got).__name__ == plugin, to_apprise(url)
    for key, want in fields.items():
        value = getattr(got, key)
        if isinstance(want, list):
            value = [str(v).lstrip("#@") for v in value]
        assert value == want, (key, to_apprise(url))
    # What may be shown of the URL never includes its tokens or passwords.
    shown = dest.name
    for secret in (
        "tok3n",
        "Atoken123",
        "pass",
        "apitoken123",
        "AAbbCCdd",
        "botkey123",
        "XXXX",
        "pw@",
    ):
        assert secret not in shown


@pytest.mark.parametrize(
    ("url", "message"),
    [
        (
            "teams://group@tenant/altId/groupOwner?host=org.webhook.office.com",
            "teams://: Microsoft retired",
        ),
        ("nosuchservice://token@host", "nosuchservice://"),
        ("generic+ftp://host/x", "generic+ftp://"),
        ("discord://123456", "discord:// needs TOKEN@WEBHOOK_ID"),
        ("smtp://mail.example.com:25/?from=a@b.c", "smtp:// needs from= and to="),
        ("opsgenie://opsgenie.internal/key", "opsgenie://opsgenie.internal"),
        ("not a url", "expected stdout or SCHEME://"),
    ],
)
def test_services_apprise_lacks_are_refused_in_one_line(url: str, message: str) -> None:
    with pytest.raises(UsageError) as err:
        build([url], None)
    text = str(err.value)
    assert message in text and "\n" not in text
    assert "token@host" not in text and "altId" not in text


def test_watchtower_space_separated_urls_are_split() -> None:
    urls = split_urls(["discord://t@1 slack://a/b/c", "json://h/p?a=1,2,ntfy://h/t"])
    assert urls == ["discord://t@1", "slack://a/b/c", "json://h/p?a=1,2", "ntfy://h/t"]


# One receiver per service family Apprise reaches over HTTP: method, path and body shape.
def test_slack_webhook_through_apprise(proxy: InterceptProxy) -> None:
    assert _send("slack://hook:T0AAA-B0BBB-cccSECRET@webhook?botname=dw") == []
    (req,) = proxy.behaviour.wait(1)
    assert (req.method, req.host, req.path) == (
        "POST",
        "hooks.slack.com",
        "/services/T0AAA/B0BBB/cccSECRET",
    )
    body = req.json()
    assert body["username"] == "dw"
    assert body["attachments"][0]["title"] == NOTE.title
    assert body["attachments"][0]["text"].startswith("- web (reg/web:1): updated")
    assert proxy.connects == ["hooks.slack.com:443"]


def test_discord_webhook_through_apprise(proxy: InterceptProxy) -> None:
    proxy.behaviour.status = 204
    assert _send("discord://dTOKENsecret@112233445566") == []
    (req,) = proxy.behaviour.wait(1)
    assert (req.method, req.host) == ("POST", "discord.com")
    assert req.path.startswith("/api/webhooks/112233445566/dTOKENsecret")
    assert NOTE.title in req.json()["content"] and "web (reg/web:1)" in req.json()["content"]


def test_teams_workflow_through_apprise(proxy: InterceptProxy) -> None:
    proxy.behaviour.status = 202
    assert _send("workflows://prod-00.westus.logic.azure.com:443/wf123/SIGsecret") == []
    (req,) = proxy.behaviour.wait(1)
    assert req.method == "POST" and req.path.startswith(
        "/workflows/wf123/triggers/manual/paths/invoke"
    )
    assert "sig=SIGsecret" in req.path
    card = req.json()["attachments"][0]
    assert card["contentType"] == "application/vnd.microsoft.card.adaptive"
    assert NOTE.title in str(card["content"]["body"])


@pytest.mark.parametrize(
    ("family", "url", "path", "check"),
    [
        ("mattermost", "mattermost://dw@127.0.0.1:{port}/hookTOKEN/ops?disabletls=yes", "/hooks/hookTOKEN",
         lambda b, h: b["username"] == "dw" and b["channel"] == "ops" and NOTE.title in b["text"]),
        ("ntfy", "ntfy://127.0.0.1:{port}/updates?scheme=http", "/",
         lambda b, h: b["topic"] == "updates" and b["title"] == NOTE.title and "web" in b["message"]),
        ("gotify", "gotify://127.0.0.1:{port}/gotifyTOKEN?disabletls=yes", "/message",
         lambda b, h: h["X-Gotify-Key"] == "gotifyTOKEN" and b["title"] == NOTE.title),
        ("generic", "generic+http://127.0.0.1:{port}/hook/in", "/hook/in",
         lambda b, h: b["title"] == NOTE.title and b["message"] == NOTE.body.strip() and b["type"] == "success"),
        ("apprise-json", "json://127.0.0.1:{port}/apprise", "/apprise",
         lambda b, h: b["version"] == "1.0" and b["title"] == NOTE.title),
        ("dockward-webhook", "http://127.0.0.1:{port}/dw", "/dw",
         lambda b, h: b["n"] == 1 and b["text"].startswith(NOTE.title)),
    ],
)  # fmt: skip
def test_http_families_reach_a_local_receiver(family: str, url: str, path: str, check: Any) -> None:
    with Receiver() as rx:
        assert _send(url.format(port=rx.port)) == []
        (req,) = rx.behaviour.wait(1)
    assert req.method == "POST" and req.path == path, (family, req.path)
    assert req.headers["Content-Type"].startswith("application/json")
    assert check(req.json(), req.headers), req.body


def test_email_with_a_watchtower_smtp_url() -> None:
    from aiosmtpd.controller import Controller
    from aiosmtpd.handlers import Message

    mails: list[Any] = []

    class Collect(Message):
        def handle_message(self, message: Any) -> None:
            mails.append(message)

    port = free_port()
    controller = Controller(Collect(), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        url = f"smtp://127.0.0.1:{port}/?from=dockward@example.test&to=ops@example.test,dev@example.test&encryption=none"
        assert _send(url) == []
    finally:
        controller.stop()
    # Apprise sends one mail per recipient.
    assert sorted(m["To"] for m in mails) == ["dev@example.test", "ops@example.test"]
    assert all(m["Subject"] == NOTE.title for m in mails)
    assert all(m["From"] == "dockward@example.test" for m in mails)
    texts = [p.get_payload(decode=True).decode() for p in mails[0].walk() if not p.is_multipart()]
    assert any("web (reg/web:1)" in t for t in texts)


def test_a_down_destination_is_spooled_and_delivered_by_the_next_run(tmp_path: Path) -> None:
    port = free_port()  # nothing listens yet
    url = f"json://127.0.0.1:{port}/hook?token=SeCrEtToKeN"
    n = build([url], tmp_path)
    n.workers[0].backoff_min = 0.1
    n.start()
    n.submit(NOTE)
    warnings = n.stop(1.0)
    assert len(warnings) == 1 and "spooled" in warnings[0]
    assert "SeCrEtToKeN" not in warnings[0] and f"json://127.0.0.1:{port}" in warnings[0]
    assert len(list(tmp_path.rglob("*.json"))) == 1
    # The receiver is up now: the next process delivers what was spooled, oldest first.
    with Receiver(port=port) as rx:
        n2 = build([url], tmp_path).start()
        rx.behaviour.wait(1)
        assert n2.stop(5.0) == []
    assert [r.json()["title"] for r in rx.behaviour.requests] == [NOTE.title]
    assert list(tmp_path.rglob("*.json")) == []


def test_failures_are_retried_until_the_receiver_takes_it() -> None:
    with Receiver(Behaviour(status=500)) as rx:
        n = build([f"json://127.0.0.1:{rx.port}/x"], None)
        n.workers[0].backoff_min = 0.1
        n.start()
        n.submit(NOTE)
        rx.behaviour.wait(2)
        rx.behaviour.status = 200
        rx.behaviour.wait(3)
        warnings = n.stop(5.0)
    assert len(rx.behaviour.requests) >= 3
    assert n.workers[0].stats.delivered == 1 and n.workers[0].stats.failures >= 2
    assert warnings and "failed attempt" in warnings[0]


def test_submit_never_waits_for_a_slow_destination() -> None:
    with Receiver(Behaviour(delay=2.0)) as rx:
        n = build([f"json://127.0.0.1:{rx.port}/slow"], None).start()
        t0 = time.monotonic()
        for _ in range(50):
            n.submit(NOTE)
        assert time.monotonic() - t0 < 0.2
        n.stop(0.5)


def test_rate_limit_coalesces_a_burst_into_one_message() -> None:
    with Receiver() as rx:
        dest = parse_destination(f"json://127.0.0.1:{rx.port}/burst")
        worker = NotifyWorker(dest, None, RateLimit(per_minute=60, burst=1)).start()
        for i in range(30):
            worker.submit(Note(f"alert {i}", f"body {i}\n", "warning"))
        rx.behaviour.wait(2, timeout=5)
        worker.stop(3.0)
    titles = [r.json()["title"] for r in rx.behaviour.requests]
    assert titles[0] == "alert 0"
    assert len(titles) == 2, titles
    assert titles[1].startswith("29 notifications")
    assert "body 29" in rx.behaviour.requests[1].json()["message"]
    assert worker.stats.delivered == 30 and worker.stats.messages == 2


def test_rate_limit_without_a_limit_sends_each() -> None:
    limit = RateLimit(0)
    assert limit.wait_time() == 0.0
    now = [0.0]
    limit = RateLimit(per_minute=6, burst=2, clock=lambda: now[0])
    assert limit.wait_time() == 0.0
    limit.take()
    limit.take()
    assert limit.wait_time() == pytest.approx(10.0)
    now[0] = 10.0
    assert limit.wait_time() == 0.0


def test_apprise_messages_with_tokens_stay_out_of_logs(caplog: pytest.LogCaptureFixture) -> None:
    port = free_port()
    caplog.set_level(logging.DEBUG)
    dest = parse_destination(f"mmost://127.0.0.1:{port}/MMsecretTOKEN")
    with pytest.raises(NotifyError) as err:
        dest.send([NOTE])
    assert "MMsecretTOKEN" not in str(err.value)
    assert "Connection error" in str(err.value)  # Apprise's reason, scrubbed
    assert "MMsecretTOKEN" not in caplog.text
    assert redact(f"discord://tok@{port}") == "discord://…"


def test_token_pieces_of_a_host_are_scrubbed() -> None:
    from dockward.notify.urls import scrub, secrets_of

    url = "tgram://123456789:AAbbCCddEEff/987654"
    text = "POST https://api.telegram.org/bot123456789:AAbbCCddEEff/sendMessage chat 987654"
    out = scrub(text, secrets_of(url))
    assert "AAbbCCddEEff" not in out and "123456789" not in out and "987654" not in out
