"""Socket events beyond AF_PACKET (socket, connect, accept of AF_INET/AF_INET6 with fd.l4proto and
both ends), and the open record's descriptor and flags, on events recorded from this host by
`falco_scenario.py --more`: busybox nc over TCP in a container, a TCP and a UDP socket over ::1
on the host, ssh's non-blocking connects to a documentation address on ports 443 and 22."""

from __future__ import annotations

import socket
import threading
from pathlib import Path
from typing import Any

import pytest

from dockward.monitor import compile_book, load_files
from dockward.monitor.dispatch import Dispatcher
from dockward.monitor.service import Monitor, read_events
from dockward.monitor.sources import OpenLog, accept_fields
from dockward.monitor.sysevents import l4proto, open_flag_names, socket_of_fd

MORE = Path(__file__).resolve().parent.parent / "fixtures" / "monitor" / "falco-events-more.jsonl"

RULES = """
- rule: Outbound TCP to a web port by ssh
  desc: ssh connecting to 443/8080 (Falco's ssh_non_standard_ports, without the CIDR part)
  condition: evt.type = connect and fd.l4proto = tcp and fd.sport in (443, 8080) and proc.name = ssh
  output: ssh to %fd.sip:%fd.sport (%fd.l4proto) from %fd.cip:%fd.cport res=%evt.res
  priority: NOTICE
- rule: Connected UDP socket
  desc: a connect on a UDP socket
  condition: evt.type = connect and fd.l4proto = udp
  output: udp connect to %fd.name
  priority: NOTICE
- rule: Leaves the loopback network
  desc: an IPv4 connection with an end outside 127.0.0.0/8 (Falco's either-end fd.net)
  condition: evt.type = connect and fd.typechar = 4 and fd.net != "127.0.0.0/8"
  output: to %fd.name
  priority: NOTICE
- rule: To the documentation network
  desc: a connection whose server is in TEST-NET-3
  condition: evt.type = connect and fd.snet in ("203.0.113.0/24", "198.51.100.0/24")
  output: to %fd.name
  priority: NOTICE
- rule: Over IPv6 loopback
  desc: either end is ::1
  condition: evt.type = connect and fd.ip = "::1"
  output: to %fd.name
  priority: NOTICE
- rule: Accepted over IPv6
  desc: an accepted TCP connection over IPv6
  condition: evt.type in (accept, accept4) and fd.typechar = 6 and fd.l4proto = tcp
  output: accepted %fd.name
  priority: NOTICE
"""


@pytest.fixture(scope="module")
def events() -> list[dict[str, Any]]:
    return list(read_events(MORE))


def _of(events: list[dict[str, Any]], etype: str, **where: Any) -> list[dict[str, Any]]:
    return [
        e
        for e in events
        if e["evt.type"] == etype and all(e.get(k.replace("_", ".")) == v for k, v in where.items())
    ]


def test_inet_sockets_carry_family_and_protocol(events: list[dict[str, Any]]) -> None:
    sockets = _of(events, "socket")
    assert {e["evt.arg.domain"] for e in sockets} == {"AF_INET", "AF_INET6"}
    by_proto = {(e["evt.arg.domain"], e["fd.l4proto"]) for e in sockets}
    assert {("AF_INET", "tcp"), ("AF_INET6", "tcp"), ("AF_INET6", "udp")} <= by_proto
    assert all(e["fd.num"] >= 0 and e["fd.typechar"] in ("4", "6") for e in sockets)


def test_connect_has_the_protocol_and_both_ends(events: list[dict[str, Any]]) -> None:
    # busybox nc in the container: gone before /proc could be read, the socket event says tcp
    nc = _of(events, "connect", fd_sport=7777)
    assert [(e["fd.sip"], e["fd.l4proto"]) for e in nc] == [("127.0.0.1", "tcp")]
    assert nc[0]["container.name"].startswith("dwfalco-app-")
    v6 = _of(events, "connect", fd_typechar="6")
    assert {e["fd.l4proto"] for e in v6} == {"tcp", "udp"}
    assert all(e["fd.sip"] == "::1" and e["fd.cip"] == "::1" and e["fd.cport"] > 0 for e in v6)
    ssh = _of(events, "connect", proc_name="ssh")
    assert sorted(e["fd.sport"] for e in ssh) == [22, 443]
    assert {(e["evt.res"], e["fd.l4proto"], e["fd.sip"]) for e in ssh} == {
        ("EINPROGRESS", "tcp", "203.0.113.7")
    }


def test_accept_names_client_and_server(events: list[dict[str, Any]]) -> None:
    (acc,) = _of(events, "accept4", fd_typechar="6")
    (tcp,) = [e for e in _of(events, "connect", fd_typechar="6") if e["fd.l4proto"] == "tcp"]
    # the server end is where the client connected to; the client end is the client's socket
    assert (acc["fd.sip"], acc["fd.sport"]) == (tcp["fd.sip"], tcp["fd.sport"])
    assert (acc["fd.cip"], acc["fd.cport"]) == (tcp["fd.cip"], tcp["fd.cport"])
    assert acc["fd.name"] == f"::1:{tcp['fd.cport']}->::1:{tcp['fd.sport']}"
    # busybox nc passes no address buffer: no client, the listening socket says tcp
    (nc,) = _of(events, "accept")
    assert nc["fd.l4proto"] == "tcp" and "fd.cip" not in nc


def test_rules_on_the_socket_fields(events: list[dict[str, Any]], tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(RULES)
    monitor = Monitor(compile_book(load_files([str(path)])), Dispatcher([]))
    fired: dict[str, list[dict[str, Any]]] = {}
    for ev in events:
        for alert in monitor.process(dict(ev)):
            fired.setdefault(alert.rule, []).append(ev)
    assert [e["fd.sport"] for e in fired["Outbound TCP to a web port by ssh"]] == [443]
    assert [e["fd.l4proto"] for e in fired["Connected UDP socket"]] == ["udp"]
    ssh = [(e["proc.name"], e["fd.sport"]) for e in fired["To the documentation network"]]
    assert ssh == [("ssh", 443), ("ssh", 22)]
    # 127.0.0.1 -> 127.0.0.1 stays inside; the host's 192.0.2.2 -> 203.0.113.7 leaves
    assert [e["fd.sip"] for e in fired["Leaves the loopback network"]] == ["203.0.113.7"] * 2
    assert {e["fd.l4proto"] for e in fired["Over IPv6 loopback"]} == {"tcp", "udp"}
    # busybox nc listens on a dual-stack AF_INET6 socket: its accept is IPv6 too
    assert [e["evt.type"] for e in fired["Accepted over IPv6"]] == ["accept", "accept4"]


def test_address_fields_refuse_what_they_cannot_compare(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    bad = "- rule: r\n  desc: d\n  condition: fd.net contains 10\n  output: o\n  priority: INFO\n"
    path.write_text(bad + bad.replace("r\n", "s\n").replace("contains 10", '= "10.0.0.0/33"'))
    engine = compile_book(load_files([str(path)]))
    assert "does not apply to addresses" in engine.disabled["r"]
    assert "10.0.0.0/33" in engine.disabled["s"]


def test_l4proto_from_socket_arguments() -> None:
    assert l4proto(socket.SOCK_STREAM | socket.SOCK_CLOEXEC, 0) == "tcp"
    assert l4proto(socket.SOCK_DGRAM, 0) == "udp"
    assert l4proto(socket.SOCK_DGRAM, socket.IPPROTO_ICMP) == "icmp"
    assert l4proto(socket.SOCK_RAW, 255) == "raw"
    assert l4proto(socket.SOCK_SEQPACKET, 0) is None


def test_socket_of_a_live_descriptor_and_accept_fields() -> None:
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    port = srv.getsockname()[1]
    cli = socket.create_connection(("127.0.0.1", port), timeout=5)
    conn, peer = srv.accept()
    try:
        me = threading.get_native_id()
        local = socket_of_fd(me, conn.fileno())
        assert local["fd.l4proto"] == "tcp" and local["fd.typechar"] == "4"
        assert (local["fd.lip"], local["fd.lport"]) == ("127.0.0.1", port)
        addr = "0200" + peer[1].to_bytes(2, "big").hex() + "7f000001" + "00" * 8
        got = accept_fields(addr, me, conn.fileno())
        assert got["fd.name"] == f"127.0.0.1:{peer[1]}->127.0.0.1:{port}"
        assert socket_of_fd(me, 0) == {} or socket_of_fd(me, 0)["fd.l4proto"]
        assert socket_of_fd(me, 999_999) == {}
    finally:
        for s in (cli, conn, srv):
            s.close()


def test_open_flags_as_falco_prints_them() -> None:
    assert open_flag_names(0) == "O_RDONLY"
    assert open_flag_names(0o1101) == "O_CREAT|O_TRUNC|O_WRONLY"
    assert open_flag_names(0o2000 | 0o2000000 | 2) == "O_APPEND|O_CLOEXEC|O_RDWR"


def test_open_log_pairs_merged_closes_by_access_mode() -> None:
    log = OpenLog()
    log.add(7, "/var/log/syslog", 42, 3, 0o2101, "syslog")  # O_APPEND|O_CREAT|O_WRONLY
    log.add(7, "/var/log/syslog", 42, 3, 0o1101)  # O_TRUNC|O_CREAT|O_WRONLY
    log.add(7, "/var/log/syslog", 42, 4, 0, "../log/syslog")  # O_RDONLY
    # one fanotify record for the three closes: both writes for the write, the read for the read
    assert log.take(7, "/var/log/syslog", 42, True) == [(3, 0o2101, "syslog"), (3, 0o1101, "")]
    assert log.take(7, "/other/name", 42, False) == [(4, 0, "../log/syslog")]  # by inode
    assert log.take(7, "/var/log/syslog", 42, False, wait=0.01) == []
    assert log.take(8, "/var/log/syslog", 42, True) == []  # another process's open
