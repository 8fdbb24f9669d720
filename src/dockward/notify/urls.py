"""Notification URLs: Apprise's, and Watchtower's shoutrrr URLs translated to them.

Shoutrrr (Watchtower's notification library) and Apprise agree on some schemes and differ on most;
`to_apprise` rewrites every service Watchtower documents (shoutrrr v0.8's list) that Apprise
has, and refuses the rest with a one-line error naming the scheme. `redact` is the only form of a
URL that may reach a log, a report or an error message: scheme and server, never tokens.
"""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Callable

from dockward.errors import UsageError

# Schemes whose host is a server name (shown in logs); for the others the host is a token.
SERVER_SCHEMES = frozenset(
    {
        "json", "jsons", "form", "forms", "xml", "xmls", "ntfy", "ntfys", "gotify", "gotifys",
        "mmost", "mmosts", "mailto", "mailtos", "rocket", "rockets", "matrix", "matrixs",
        "bark", "barks", "workflow", "workflows", "http", "https", "smtp", "syslog", "zulip",
    }
)  # fmt: skip

# Shoutrrr services Watchtower documents that Apprise cannot reach: scheme -> why.
REFUSED = {
    "teams": "Microsoft retired the Office 365 connectors shoutrrr's teams:// posts to and Apprise "
    "has no client for them; create a Teams Workflow and use workflows://HOST/WORKFLOW/SIGNATURE",
}


def _q(parts: urllib.parse.SplitResult) -> dict[str, str]:
    return {k.lower(): v[-1] for k, v in urllib.parse.parse_qs(parts.query).items()}


def _yes(value: str | None) -> bool:
    return (value or "").strip().lower() in ("yes", "true", "1", "on")


def _hostport(parts: urllib.parse.SplitResult) -> str:
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    return host + (f":{parts.port}" if parts.port else "")


def _rawhost(parts: urllib.parse.SplitResult) -> str:
    """The host as written (urlsplit lowercases it; where the host is a token, case matters)."""
    host = parts.netloc.rsplit("@", 1)[-1]
    if host.startswith("["):
        return host.split("]", 1)[0] + "]"
    return urllib.parse.unquote(host.rsplit(":", 1)[0] if host.count(":") == 1 else host)


def _user(parts: urllib.parse.SplitResult) -> str:
    return urllib.parse.unquote(parts.username or "")


def _password(parts: urllib.parse.SplitResult) -> str:
    return urllib.parse.unquote(parts.password or "")


def _path(parts: urllib.parse.SplitResult) -> list[str]:
    return [urllib.parse.unquote(p) for p in parts.path.split("/") if p]


def _enc(value: str) -> str:
    return urllib.parse.quote(value, safe="")


def _query(params: dict[str, str]) -> str:
    kept = {k: v for k, v in params.items() if v != ""}
    return ("?" + urllib.parse.urlencode(kept)) if kept else ""


def _discord(p: urllib.parse.SplitResult) -> str:
    # discord://TOKEN@WEBHOOKID -> discord://WEBHOOKID/TOKEN
    token, webhook = _user(p), _rawhost(p)
    if not token or not webhook:
        raise UsageError("discord:// needs TOKEN@WEBHOOK_ID")
    return f"discord://{_enc(webhook)}/{_enc(token)}/"


def _slack(p: urllib.parse.SplitResult) -> str:
    q = _q(p)
    user, password, host = _user(p), _password(p), _rawhost(p)
    botname = q.get("botname", "")
    channel = q.get("channel", "")
    target = f"/{_enc('#' + channel.lstrip('#'))}" if channel else ""
    if user == "hook" and password:
        # slack://hook:A-B-C@webhook -> slack://[bot@]A/B/C
        tokens = password.split("-")
        if len(tokens) != 3:
            raise UsageError("slack://hook:TOKEN@webhook: the token has three parts A-B-C")
        bot = f"{_enc(botname)}@" if botname else ""
        return f"slack://{bot}{'/'.join(_enc(t) for t in tokens)}{target}"
    if user.startswith("xox") and password:
        # slack://xoxb:TOKEN@CHANNEL -> slack://xoxb-TOKEN/#CHANNEL
        bot = f"{_enc(botname)}@" if botname else ""
        return f"slack://{bot}{_enc(user + '-' + password)}/{_enc('#' + host.lstrip('#'))}"
    # Legacy slack://[botname@]A/B/C is Apprise's own syntax.
    tokens = [host, *_path(p)]
    if len(tokens) < 3:
        raise UsageError("slack:// needs hook:A-B-C@webhook, xoxb:TOKEN@CHANNEL or A/B/C")
    bot = f"{_enc(user or botname)}@" if (user or botname) else ""
    return f"slack://{bot}{'/'.join(_enc(t) for t in tokens[:3])}{target}"


def _smtp(p: urllib.parse.SplitResult) -> str:
    q = _q(p)
    if not q.get("from") or not q.get("to"):
        raise UsageError("smtp:// needs from= and to= parameters")
    encryption = q.get("encryption", "auto").lower()
    wants_tls = (
        encryption == "explicit"
        or _yes(q.get("usestarttls"))
        or q.get("starttls") == "1"
        or p.scheme == "smtp+starttls"
    )
    if encryption == "implicit" or (p.port == 465 and encryption == "auto"):
        scheme, mode = "mailtos", "ssl"
    elif wants_tls or (p.username and encryption != "none"):
        # A password never crosses the network in clear unless encryption=none says so.
        scheme, mode = "mailtos", "starttls"
    else:
        scheme, mode = "mailto", "insecure"
    auth = ""
    if _user(p):
        auth = _enc(_user(p)) + (f":{_enc(_password(p))}" if p.password else "") + "@"
    params = {"from": q["from"], "to": q["to"], "mode": mode, "smtp": p.hostname or ""}
    if q.get("fromname"):
        params["name"] = q["fromname"]
    return f"{scheme}://{auth}{_hostport(p)}{_query(params)}"


def _tls_scheme(base: str, secure: bool) -> str:
    return base + ("s" if secure else "")


def _gotify(p: urllib.parse.SplitResult) -> str:
    q = _q(p)
    path = _path(p)
    if not path:
        raise UsageError("gotify:// needs HOST/TOKEN")
    scheme = _tls_scheme("gotify", not _yes(q.get("disabletls")))
    params = {"priority": q.get("priority", "")}
    return f"{scheme}://{_hostport(p)}/{'/'.join(_enc(s) for s in path)}{_query(params)}"


def _mattermost(p: urllib.parse.SplitResult) -> str:
    q = _q(p)
    path = _path(p)
    if not path:
        raise UsageError("mattermost:// needs HOST/TOKEN")
    scheme = _tls_scheme("mmost", not _yes(q.get("disabletls")))
    user = _user(p) or q.get("username", "")
    bot = f"{_enc(user)}@" if user else ""
    channel = path[1] if len(path) > 1 else q.get("channel", "")
    params = {"channel": channel}
    return f"{scheme}://{bot}{_hostport(p)}/{_enc(path[0])}{_query(params)}"


def _ntfy(p: urllib.parse.SplitResult) -> str:
    q = _q(p)
    path = _path(p)
    if not path:
        raise UsageError("ntfy:// needs HOST/TOPIC")
    scheme = _tls_scheme("ntfy", q.get("scheme", "https").lower() != "http")
    auth = ""
    if _user(p):
        auth = f"{_enc(_user(p))}:{_enc(_password(p))}@"
    params = {"priority": q.get("priority", ""), "tags": q.get("tags", "")}
    return f"{scheme}://{auth}{_hostport(p)}/{_enc(path[-1])}{_query(params)}"


def _generic(p: urllib.parse.SplitResult, inner: str) -> str:
    q = urllib.parse.parse_qsl(p.query, keep_blank_values=True)
    secure = inner == "https" or (inner == "" and not any(
        k.lower() == "disabletls" and _yes(v) for k, v in q
    ))  # fmt: skip
    params: dict[str, str] = {}
    for k, v in q:
        if inner:
            params[f"-{k}"] = v  # generic+http(s): every query variable goes to the server
        elif k.startswith("@"):
            params[f"+{k[1:]}"] = v  # header
        elif k.startswith("$"):
            params[f":{k[1:]}"] = v  # extra JSON field
        elif k.lower() in ("template", "disabletls", "titlekey", "messagekey", "contenttype"):
            continue
        elif k.lower() == "method":
            params["method"] = v.upper()
        else:
            params[f"-{k}"] = v
    scheme = _tls_scheme("json", secure)
    return f"{scheme}://{p.netloc.rsplit('@', 1)[-1]}{p.path}{_query(params)}"


def _telegram(p: urllib.parse.SplitResult) -> str:
    q = _q(p)
    token = f"{_user(p)}:{_password(p)}"
    chats = [c for c in q.get("chats", "").split(",") if c]
    if not _user(p) or not chats:
        raise UsageError("telegram:// needs TOKEN@telegram?chats=CHAT[,CHAT]")
    return f"tgram://{_enc(token).replace('%3A', ':')}/{'/'.join(_enc(c) for c in chats)}/"


def _pushover(p: urllib.parse.SplitResult) -> str:
    q = _q(p)
    token, user_key = _password(p), _rawhost(p)
    if not token or not user_key:
        raise UsageError("pushover:// needs shoutrrr:API_TOKEN@USER_KEY")
    devices = [d for d in q.get("devices", "").split(",") if d]
    tail = "/".join(_enc(d) for d in devices)
    return f"pover://{_enc(user_key)}@{_enc(token)}/{tail}"


def _pushbullet(p: urllib.parse.SplitResult) -> str:
    token = _rawhost(p) or _user(p)
    targets = _path(p) + ([f"#{p.fragment}"] if p.fragment else [])
    return f"pbul://{_enc(token)}/{'/'.join(_enc(t) for t in targets)}"


def _join(p: urllib.parse.SplitResult) -> str:
    q = _q(p)
    devices = [d for d in q.get("devices", "").split(",") if d]
    if not _password(p) or not devices:
        raise UsageError("join:// needs shoutrrr:API_KEY@join?devices=D[,D]")
    return f"join://{_enc(_password(p))}/{'/'.join(_enc(d) for d in devices)}"


def _ifttt(p: urllib.parse.SplitResult) -> str:
    q = _q(p)
    events = [e for e in q.get("events", "").split(",") if e]
    if not _rawhost(p) or not events:
        raise UsageError("ifttt:// needs KEY?events=E[,E]")
    return f"ifttt://{_enc(_rawhost(p))}@{'/'.join(_enc(e) for e in events)}"


def _googlechat(p: urllib.parse.SplitResult) -> str:
    # googlechat://chat.googleapis.com/v1/spaces/FOO/messages?key=K&token=T
    q = _q(p)
    path = _path(p)
    try:
        space = path[path.index("spaces") + 1]
    except (ValueError, IndexError) as exc:
        raise UsageError("googlechat:// needs .../v1/spaces/SPACE/messages?key=K&token=T") from exc
    if not q.get("key") or not q.get("token"):
        raise UsageError("googlechat:// needs key= and token= parameters")
    return f"gchat://{_enc(space)}/{_enc(q['key'])}/{_enc(q['token'])}"


def _matrix(p: urllib.parse.SplitResult) -> str:
    q = _q(p)
    scheme = _tls_scheme("matrix", not _yes(q.get("disabletls")))
    rooms = [r for r in q.get("rooms", q.get("room", "")).split(",") if r]
    auth = f"{_enc(_user(p))}:{_enc(_password(p))}@" if _user(p) else f":{_enc(_password(p))}@"
    return f"{scheme}://{auth}{_hostport(p)}/{'/'.join(_enc(r) for r in rooms)}"


def _opsgenie(p: urllib.parse.SplitResult) -> str:
    q = _q(p)
    host = (p.hostname or "").lower()
    region = {"api.opsgenie.com": "us", "api.eu.opsgenie.com": "eu"}.get(host)
    if region is None:
        raise UsageError(f"opsgenie://{host}: Apprise reaches api.opsgenie.com and api.eu only")
    path = _path(p)
    if not path:
        raise UsageError("opsgenie:// needs HOST/API_KEY")
    targets = [t for t in q.get("responders", "").split(",") if t]
    tail = "/".join(_enc("@" + t.split(":", 1)[-1]) for t in targets)
    return f"opsgenie://{_enc(path[0])}/{tail}{_query({'region': region})}"


def _rocketchat(p: urllib.parse.SplitResult) -> str:
    q = _q(p)
    path = _path(p)
    if len(path) < 2:
        raise UsageError("rocketchat:// needs HOST/TOKEN_A/TOKEN_B[/CHANNEL]")
    scheme = _tls_scheme("rocket", not _yes(q.get("disabletls")))
    webhook = f"{_enc(path[0])}/{_enc(path[1])}"
    targets = "/".join(_enc(t if t[:1] in "#@" else "#" + t) for t in path[2:])
    return f"{scheme}://{webhook}@{_hostport(p)}/{targets}"


def _zulip(p: urllib.parse.SplitResult) -> str:
    q = _q(p)
    bot = _user(p).split("@", 1)[0]
    if not bot or not p.password or not p.hostname:
        raise UsageError("zulip:// needs BOT_MAIL:BOT_KEY@DOMAIN")
    stream = q.get("stream", "")
    return f"zulip://{_enc(bot)}@{p.hostname}/{_enc(_password(p))}/{_enc(stream)}"


def _bark(p: urllib.parse.SplitResult) -> str:
    q = _q(p)
    scheme = _tls_scheme("bark", q.get("scheme", "https").lower() != "http")
    key = _password(p) or _user(p)
    if not key:
        raise UsageError("bark:// needs DEVICE_KEY@HOST")
    return f"{scheme}://{_hostport(p)}/{_enc(key)}"


SHOUTRRR: dict[str, Callable[[urllib.parse.SplitResult], str]] = {
    "discord": _discord,
    "slack": _slack,
    "smtp": _smtp,
    "smtp+starttls": _smtp,
    "gotify": _gotify,
    "mattermost": _mattermost,
    "ntfy": _ntfy,
    "generic": lambda p: _generic(p, ""),
    "telegram": _telegram,
    "pushover": _pushover,
    "pushbullet": _pushbullet,
    "join": _join,
    "ifttt": _ifttt,
    "googlechat": _googlechat,
    "hangouts": _googlechat,
    "matrix": _matrix,
    "opsgenie": _opsgenie,
    "rocketchat": _rocketchat,
    "zulip": _zulip,
    "bark": _bark,
}


def scheme_of(url: str) -> str:
    return url.split("://", 1)[0].lower() if "://" in url else ""


def to_apprise(url: str) -> str:
    """The Apprise URL for a shoutrrr or Apprise URL (Apprise URLs pass unchanged)."""
    scheme = scheme_of(url)
    if scheme in REFUSED:
        raise UsageError(f"notification URL {scheme}://: {REFUSED[scheme]}")
    if scheme.startswith("generic+"):
        inner = scheme.removeprefix("generic+")
        if inner not in ("http", "https"):
            raise UsageError(f"notification URL {scheme}://: expected generic+http(s)://")
        return _generic(urllib.parse.urlsplit(url.split("+", 1)[1]), inner)
    convert = SHOUTRRR.get(scheme)
    if convert is None:
        return url
    try:
        parts = urllib.parse.urlsplit(url)
        parts.port  # noqa: B018 - raises on a bad port
    except ValueError as exc:
        raise UsageError(f"notification URL {scheme}://: cannot parse it") from exc
    try:
        return convert(parts)
    except UsageError as exc:
        raise UsageError(f"notification URL {exc}") from exc


def redact(url: str) -> str:
    """`scheme://server` for URLs naming a server, `scheme://…` otherwise: no token, ever."""
    scheme = scheme_of(url)
    if not scheme:
        return url if url in ("stdout", "logger") else "<notification URL>"
    if scheme.split("+")[-1] in SERVER_SCHEMES or scheme in SERVER_SCHEMES:
        try:
            host = urllib.parse.urlsplit(url).hostname or ""
            port = urllib.parse.urlsplit(url).port
        except ValueError:
            host, port = "", None
        if host:
            return f"{scheme}://{host}" + (f":{port}" if port else "")
    return f"{scheme}://…"


def secrets_of(url: str) -> list[str]:
    """The parts of a URL that may be secret (to scrub from library messages)."""
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:
        return []
    found = [parts.username or "", parts.password or ""]
    found += [s for s in parts.path.split("/") if s]
    found += [v for _, v in urllib.parse.parse_qsl(parts.query)]
    if scheme_of(url) not in SERVER_SCHEMES:
        # The host is a token here (tgram://BOT:TOKEN/..., discord://ID/...): every piece of it.
        found += [parts.netloc, *re.split(r"[@:]", parts.netloc)]
    out: set[str] = set()
    for s in found:
        if len(s) >= 4:
            out |= {
                s,
                urllib.parse.unquote(s),
                urllib.parse.quote(urllib.parse.unquote(s), safe=""),
            }
    return sorted(out, key=len, reverse=True)


def scrub(text: str, secrets: list[str]) -> str:
    for s in secrets:
        if s:
            text = text.replace(s, "***")
    return text
