"""`--output` specs -> sinks. Secrets (tokens) come from the environment, never from argv."""

from __future__ import annotations

import hashlib
import os
import re
import urllib.parse
from collections.abc import Callable
from pathlib import Path

from dockward.errors import UsageError
from dockward.monitor.dispatch import OutputWorker
from dockward.monitor.sinks import (
    FACILITIES,
    FileSink,
    HttpSink,
    NotifySink,
    Sink,
    StdoutSink,
    SyslogSink,
    SyslogTarget,
)
from dockward.notify.spool import Spool

OUTPUT_HELP = (
    "stdout | json (stdout, JSON lines) | file:PATH | syslog[+udp|+tcp|+tls]://HOST:PORT"
    "[?facility=local0&format=json&ca=FILE&insecure=1] | http(s)://URL (webhook, token from "
    "DOCKWARD_WEBHOOK_TOKEN) | elasticsearch+http(s)://HOST:PORT/INDEX (or opensearch+) | "
    "splunk+http(s)://HOST:PORT (token from DOCKWARD_SPLUNK_TOKEN) | a notification URL "
    "(Apprise's slack://, discord://, ntfy://, gotify://, mmost://, tgram://, workflows://, ... "
    "or Watchtower's shoutrrr URLs), rate limited per destination"
)
# Monitor outputs of its own; any other scheme is a notification URL (dockward.notify).
_OWN = ("syslog", "http", "https", "webhook", "elasticsearch", "opensearch", "splunk")


def _flag(query: dict[str, list[str]], key: str) -> bool:
    return (query.get(key) or ["0"])[-1].lower() in ("1", "true", "yes")


def _one(query: dict[str, list[str]], key: str) -> str | None:
    values = query.get(key)
    return values[-1] if values else None


def make_sink(
    spec: str,
    file_max_bytes: int = 100 << 20,
    file_backups: int = 5,
    notify_rate: float = 20.0,
    notify_burst: int = 5,
) -> Sink:
    if spec in ("stdout", "text"):
        return StdoutSink(as_json=False)
    if spec in ("json", "stdout:json"):
        return StdoutSink(as_json=True)
    if spec.startswith("file:"):
        path = spec[5:]
        if not path:
            raise UsageError("--output file: needs a path (file:/var/log/dockward/alerts.jsonl)")
        return FileSink(path, file_max_bytes, file_backups)
    head = spec.split("://", 1)[0].lower() if "://" in spec else ""
    if (head and not any(part in _OWN for part in head.split("+"))) or head.startswith("generic"):
        try:
            return NotifySink(spec, notify_rate, notify_burst)
        except UsageError as exc:
            raise UsageError(f"--output: {exc}") from exc
    parsed = urllib.parse.urlsplit(spec)
    scheme = parsed.scheme.lower()
    query = urllib.parse.parse_qs(parsed.query)
    if scheme.startswith("syslog"):
        transport = scheme.partition("+")[2] or "udp"
        if transport not in ("udp", "tcp", "tls"):
            raise UsageError(f"--output {spec}: syslog transport must be udp, tcp or tls")
        if not parsed.hostname:
            raise UsageError(f"--output {spec}: syslog needs HOST:PORT")
        facility_name = _one(query, "facility") or "local0"
        if facility_name not in FACILITIES:
            raise UsageError(f"--output {spec}: unknown syslog facility {facility_name}")
        try:
            port = parsed.port or (6514 if transport == "tls" else 514)
        except ValueError as exc:
            raise UsageError(f"--output {spec}: bad port") from exc
        return SyslogSink(
            SyslogTarget(
                transport,
                parsed.hostname,
                port,
                FACILITIES[facility_name],
                (_one(query, "format") or "text") == "json",
                _one(query, "ca"),
                _flag(query, "insecure"),
            )
        )
    flavour, _, inner = scheme.rpartition("+")
    if inner in ("http", "https"):
        flavour = {"": "webhook", "webhook": "webhook", "opensearch": "elasticsearch"}.get(
            flavour, flavour
        )
        if flavour not in ("webhook", "elasticsearch", "splunk"):
            raise UsageError(f"--output {spec}: unknown HTTP output {flavour}")
        url = urllib.parse.urlunsplit(parsed._replace(scheme=inner, query=""))
        token_env = "DOCKWARD_SPLUNK_TOKEN" if flavour == "splunk" else "DOCKWARD_WEBHOOK_TOKEN"
        if flavour == "elasticsearch":
            token_env = "DOCKWARD_ELASTIC_TOKEN"
        return HttpSink(
            url,
            flavour,
            token=os.environ.get(token_env) or None,
            ca_file=_one(query, "ca"),
            insecure=_flag(query, "insecure"),
        )
    raise UsageError(f"--output {spec!r}: expected {OUTPUT_HELP}")


def spool_dir_for(root: str | Path, name: str) -> Path:
    slug = re.sub(r"[^A-Za-z0-9]+", "-", name).strip("-")[:40]
    digest = hashlib.sha256(name.encode()).hexdigest()[:10]
    return Path(root) / f"{slug}-{digest}"


def make_workers(
    specs: list[str],
    spool_root: str | Path,
    queue_size: int,
    spool_max_files: int,
    spool_max_bytes: int,
    on_drop: Callable[[str, int], None] | None,
    file_max_bytes: int = 100 << 20,
    file_backups: int = 5,
    notify_rate: float = 20.0,
    notify_burst: int = 5,
) -> list[OutputWorker]:
    workers: list[OutputWorker] = []
    seen: set[str] = set()
    for spec in specs:
        sink = make_sink(spec, file_max_bytes, file_backups, notify_rate, notify_burst)
        if sink.name in seen:
            raise UsageError(f"--output {spec} given twice")
        seen.add(sink.name)
        spool = Spool(spool_dir_for(spool_root, sink.name), spool_max_files, spool_max_bytes)
        workers.append(OutputWorker(sink, spool, queue_size, on_drop))
    return workers
