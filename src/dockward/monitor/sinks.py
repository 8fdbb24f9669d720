"""Alert sinks: stdout, JSON-lines file, syslog (RFC 5424 over UDP/TCP/TLS), webhook,
Elasticsearch/OpenSearch `_bulk`, Splunk HEC. A sink only sends; queueing, retries and the
spool are the dispatcher's job. `send` raises SinkError when the alert was not accepted.
"""

from __future__ import annotations

import json
import os
import socket
import ssl
import stat
import sys
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TextIO

from dockward import __version__
from dockward.errors import ConfigError, DockwardError
from dockward.monitor.alert import Alert

MAX_SYSLOG_UDP = 8000


class SinkError(DockwardError):
    """The sink did not take the alert (down, refused, timed out)."""


class Sink(Protocol):
    name: str

    def send(self, alerts: Sequence[Alert]) -> None: ...

    def close(self) -> None: ...


def text_line(alert: Alert) -> str:
    return f"{alert.time}: {alert.priority.label} {alert.output}"


class StdoutSink:
    def __init__(self, as_json: bool, stream: TextIO | None = None) -> None:
        self.name = "stdout-json" if as_json else "stdout"
        self.as_json = as_json
        self.stream = stream or sys.stdout
        self._lock = threading.Lock()

    def send(self, alerts: Sequence[Alert]) -> None:
        text = "".join((a.to_json() if self.as_json else text_line(a)) + "\n" for a in alerts)
        with self._lock:
            try:
                self.stream.write(text)
                self.stream.flush()
            except (OSError, ValueError) as exc:
                raise SinkError(f"stdout: {exc}") from exc

    def close(self) -> None:
        return None


class FileSink:
    """JSON lines, rotated at `max_bytes` into `path.1` .. `path.N`."""

    def __init__(self, path: str, max_bytes: int = 100 << 20, backups: int = 5) -> None:
        self.name = f"file:{path}"
        self.path = Path(path)
        self.max_bytes = max_bytes
        self.backups = backups
        if not self.path.parent.is_dir():
            raise ConfigError(f"alert file {path}: directory {self.path.parent} does not exist")

    def _rotate(self) -> None:
        for i in range(self.backups - 1, 0, -1):
            older = Path(f"{self.path}.{i}")
            if older.exists():
                os.replace(older, f"{self.path}.{i + 1}")
        if self.backups > 0:
            os.replace(self.path, f"{self.path}.1")
        else:
            self.path.unlink()

    def send(self, alerts: Sequence[Alert]) -> None:
        data = "".join(a.to_json() + "\n" for a in alerts).encode("utf-8")
        try:
            if self.path.exists() and self.path.stat().st_size + len(data) > self.max_bytes:
                self._rotate()
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
            try:
                os.write(fd, data)
                if stat.S_ISREG(os.fstat(fd).st_mode):  # a pipe or /dev/null cannot fsync
                    os.fsync(fd)
            finally:
                os.close(fd)
        except OSError as exc:
            raise SinkError(f"{self.path}: {exc.strerror}") from exc

    def close(self) -> None:
        return None


FACILITIES = {
    "kern": 0,
    "user": 1,
    "daemon": 3,
    "auth": 4,
    "syslog": 5,
    "authpriv": 10,
    "local0": 16,
    "local1": 17,
    "local2": 18,
    "local3": 19,
    "local4": 20,
    "local5": 21,
    "local6": 22,
    "local7": 23,
}


def _sd_escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("]", "\\]")


def rfc5424(alert: Alert, facility: int, hostname: str, as_json: bool) -> str:
    pri = facility * 8 + int(alert.priority)
    params = {
        "rule": alert.rule,
        "priority": alert.priority.label,
        "source": alert.source,
        "uuid": alert.id,
        "container": str(alert.container.get("name") or alert.container.get("id") or "host"),
    }
    sd = "[dockward@32473 " + " ".join(f'{k}="{_sd_escape(v)}"' for k, v in params.items()) + "]"
    msg = alert.to_json() if as_json else f"{alert.rule}: {alert.output}"
    stamp = alert.time[:26] + "Z"  # RFC 5424 allows at most 6 fraction digits
    host = (hostname or alert.hostname or "-")[:255]
    return f"<{pri}>1 {stamp} {host} dockward {os.getpid()} alert {sd} {msg}"


@dataclass(frozen=True, slots=True)
class SyslogTarget:
    transport: str  # udp, tcp, tls
    host: str
    port: int
    facility: int
    as_json: bool
    ca_file: str | None
    insecure: bool


class SyslogSink:
    def __init__(self, target: SyslogTarget, hostname: str = "", timeout: float = 5.0) -> None:
        self.name = f"syslog+{target.transport}://{target.host}:{target.port}"
        self.t = target
        self.hostname = hostname or socket.gethostname()
        self.timeout = timeout
        self._sock: socket.socket | None = None

    def _connect(self) -> socket.socket:
        if self._sock is not None:
            return self._sock
        try:
            if self.t.transport == "udp":
                sock = socket.socket(_family(self.t.host), socket.SOCK_DGRAM)
                sock.connect((self.t.host, self.t.port))
            else:
                sock = socket.create_connection((self.t.host, self.t.port), timeout=self.timeout)
                if self.t.transport == "tls":
                    ctx = ssl.create_default_context(cafile=self.t.ca_file)
                    if self.t.insecure:
                        ctx.check_hostname = False
                        ctx.verify_mode = ssl.CERT_NONE
                    sock = ctx.wrap_socket(sock, server_hostname=self.t.host)
            sock.settimeout(self.timeout)
        except (OSError, ssl.SSLError) as exc:
            raise SinkError(f"{self.name}: {exc}") from exc
        self._sock = sock
        return sock

    def send(self, alerts: Sequence[Alert]) -> None:
        sock = self._connect()
        try:
            for a in alerts:
                line = rfc5424(a, self.t.facility, self.hostname, self.t.as_json).encode("utf-8")
                if self.t.transport == "udp":
                    sock.send(line[:MAX_SYSLOG_UDP])
                else:
                    # RFC 6587 octet counting: messages may contain newlines.
                    sock.sendall(str(len(line)).encode() + b" " + line)
        except (OSError, ssl.SSLError) as exc:
            self.close()
            raise SinkError(f"{self.name}: {exc}") from exc

    def close(self) -> None:
        if self._sock is not None:
            try:
                self._sock.close()
            finally:
                self._sock = None


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


class HttpSink:
    """POST alerts as JSON; the flavour decides the body and endpoint."""

    def __init__(
        self,
        url: str,
        flavour: str = "webhook",
        token: str | None = None,
        ca_file: str | None = None,
        insecure: bool = False,
        timeout: float = 5.0,
    ) -> None:
        parsed = urllib.parse.urlsplit(url)
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            raise ConfigError(f"output URL {url!r} must be http:// or https:// with a host")
        self.flavour = flavour
        self.url = url
        if flavour == "elasticsearch":
            self.url = url.rstrip("/") + "/_bulk"
        elif flavour == "splunk" and "/services/collector" not in parsed.path:
            self.url = url.rstrip("/") + "/services/collector/event"
        safe = parsed._replace(netloc=parsed.hostname + (f":{parsed.port}" if parsed.port else ""))
        self.name = f"{flavour}:{urllib.parse.urlunsplit(safe)}"
        self.token = token
        self.timeout = timeout
        self.context: ssl.SSLContext | None = None
        if parsed.scheme == "https":
            self.context = ssl.create_default_context(cafile=ca_file)
            if insecure:
                self.context.check_hostname = False
                self.context.verify_mode = ssl.CERT_NONE

    def _body(self, alerts: Sequence[Alert]) -> tuple[bytes, str]:
        match self.flavour:
            case "elasticsearch":
                lines: list[str] = []
                for a in alerts:
                    lines.append(json.dumps({"create": {"_id": a.id}}))
                    doc = a.to_dict()
                    doc["@timestamp"] = doc["time"]
                    lines.append(json.dumps(doc, sort_keys=True))
                return ("\n".join(lines) + "\n").encode(), "application/x-ndjson"
            case "splunk":
                events = [
                    json.dumps(
                        {
                            "time": a.time_ns / 1e9,
                            "host": a.hostname,
                            "source": "dockward",
                            "sourcetype": "dockward:alert",
                            "event": a.to_dict(),
                        },
                        sort_keys=True,
                    )
                    for a in alerts
                ]
                return "\n".join(events).encode(), "application/json"
            case _:
                if len(alerts) == 1:
                    return alerts[0].to_json().encode(), "application/json"
                return json.dumps([a.to_dict() for a in alerts]).encode(), "application/json"

    def send(self, alerts: Sequence[Alert]) -> None:
        if self.flavour == "webhook" and len(alerts) > 1:
            # One alert per request, as Falco's http_output: receivers expect an object.
            for a in alerts:
                self.send([a])
            return
        body, ctype = self._body(alerts)
        headers = {"Content-Type": ctype, "User-Agent": f"dockward/{__version__}"}
        if self.token and self.flavour == "splunk":
            headers["Authorization"] = f"Splunk {self.token}"
        elif self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        req = urllib.request.Request(self.url, data=body, headers=headers, method="POST")  # noqa: S310
        try:
            with urllib.request.urlopen(req, timeout=self.timeout, context=self.context) as resp:  # noqa: S310
                answer = resp.read(1 << 20)
        except urllib.error.HTTPError as exc:
            raise SinkError(f"{self.name}: HTTP {exc.code}") from exc
        except (urllib.error.URLError, OSError, ssl.SSLError) as exc:
            raise SinkError(f"{self.name}: {getattr(exc, 'reason', exc)}") from exc
        if self.flavour == "elasticsearch":
            _check_bulk(answer, self.name)

    def close(self) -> None:
        return None


def _check_bulk(answer: bytes, name: str) -> None:
    try:
        data: Any = json.loads(answer or b"{}")
    except ValueError as exc:
        raise SinkError(f"{name}: _bulk answer is not JSON") from exc
    if not isinstance(data, dict) or not data.get("errors"):
        return
    for item in data.get("items") or []:
        result: Any = next(iter(item.values()), {}) if isinstance(item, dict) else {}
        status = int(result.get("status", 0)) if isinstance(result, dict) else 0
        # 409: created before (a retry after a lost answer) - already delivered.
        if status >= 300 and status != 409:
            raise SinkError(f"{name}: _bulk item failed with status {status}")


_PRIORITY_LEVEL = {
    "emergency": "failure",
    "alert": "failure",
    "critical": "failure",
    "error": "failure",
    "warning": "warning",
}


def alert_note(alerts: Sequence[Alert]) -> Any:
    """Alerts as one chat message (dockward.notify.Note): one alert, or a coalesced burst."""
    from dockward.notify.destinations import Note, coalesce

    notes = []
    for a in alerts:
        where = str(a.container.get("name") or a.container.get("id") or "host")
        title = f"{a.priority.label.capitalize()}: {a.rule} ({where} on {a.hostname})"
        body = f"{a.output}\n{a.time} rule {a.rule} source {a.source}\n"
        level = _PRIORITY_LEVEL.get(a.priority.label.lower(), "info")
        notes.append(Note(title, body, level, a.to_dict()))
    return coalesce(notes)


class NotifySink:
    """Apprise/shoutrrr destinations for alerts (chat), rate limited per destination.

    Over the limit the sink waits (the output worker only; detection never waits): alerts that
    arrive meanwhile queue up and go out as one coalesced message, so a burst does not flood a
    channel. A longer wait than `max_hold` seconds hands the batch back as undelivered (spooled
    and retried, still coalesced).
    """

    def __init__(self, url: str, per_minute: float = 20.0, burst: int = 5) -> None:
        from dockward.notify.destinations import parse_destination
        from dockward.notify.worker import RateLimit

        self.dest = parse_destination(url)
        self.name = self.dest.name
        self.limit = RateLimit(per_minute, burst)
        self.max_hold = 10.0

    def send(self, alerts: Sequence[Alert]) -> None:
        import time

        from dockward.notify.destinations import NotifyError

        pending = list(alerts)
        try:
            # One message per alert while the limit allows, then the rest as one message.
            while pending and self.limit.wait_time() == 0.0:
                self.dest.send([alert_note(pending[:1])])
                self.limit.take()
                pending.pop(0)
            if not pending:
                return
            hold = self.limit.wait_time()
            if hold > self.max_hold:
                raise SinkError(f"{self.name}: rate limit, {hold:.0f}s until the next message")
            time.sleep(hold)
            self.limit.wait_time()
            self.dest.send([alert_note(pending)])
            self.limit.take()
        except NotifyError as exc:
            # The worker spools the whole batch: delivery is at least once.
            raise SinkError(str(exc)) from exc

    def close(self) -> None:
        return None
