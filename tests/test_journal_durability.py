"""Durability policies in the exchange's send path, with fake sockets, fsync and clock.

Nothing here waits on time: the server's monotonic clock is a variable the test moves, fsync is
a function that records what it would have covered, and sockets record what they sent, so the
order of "fsync" and "send" is checked exactly.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import msgpack
import pytest
import zmq

from exchange.server import ExchangeServer
from exchange.settings import ExchangeSettings


class _Sock:
    def __init__(self, log: list[tuple], name: str) -> None:
        self.log, self.name = log, name

    def send_multipart(self, frames: list[bytes], flags: int = 0) -> None:
        self.log.append(("send", self.name, frames))


class _Frame:
    """A received frame as the gateway sees it: its payload and its connection's descriptor."""

    def __init__(self, payload: bytes, fd: int) -> None:
        self.bytes, self.fd = payload, fd
        self.buffer = memoryview(payload)

    def get(self, key: Any) -> Any:
        return self.fd if key == zmq.SRCFD else "127.0.0.1"


class _Peers:
    """The gateway's connection tracker: one connection per fd; `close` queues its event."""

    def __init__(self) -> None:
        self.live: set[int] = set()
        self.generation: dict[int, int] = {}
        self.closed: list[tuple[int, int]] = []

    def open(self, fd: int) -> None:
        self.live.add(fd)
        self.generation[fd] = self.generation.get(fd, 0) + 1

    def close_connection(self, fd: int) -> None:
        self.live.discard(fd)
        self.closed.append((fd, self.generation[fd]))

    def drain(self) -> list[tuple[int, int]]:
        out, self.closed = self.closed, []
        return out

    def connection(self, frame: _Frame) -> tuple[int, int]:
        fd = frame.fd
        return (fd, self.generation.get(fd, 0) if fd in self.live else 0)

    def address(self, conn: tuple[int, int], frame: _Frame) -> str:
        return "127.0.0.1"

    def close(self) -> None:
        pass


_FDS = {b"alice": 11, b"bob": 12}


def _frame(server: ExchangeServer, identity: bytes, payload: bytes) -> None:
    server._sync_connections()  # (as the gateway drain does before each group of frames)
    server._on_frame(identity, _Frame(payload, _FDS[identity]))  # type: ignore[arg-type]


def _server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, **kw: Any) -> tuple:
    log: list[tuple] = []
    s = ExchangeSettings(data_dir=tmp_path, snapshot_every_records=0, snapshot_every_s=0, **kw)
    server = ExchangeServer(s)
    now = [100.0]
    server._mono = lambda: now[0]
    server._gw, server._feed = _Sock(log, "gateway"), _Sock(log, "feed")
    server._dropsock, server._snap = _Sock(log, "dropcopy"), _Sock(log, "snapshot")
    server._gw_peers = _Peers()  # type: ignore[assignment]
    for fd in _FDS.values():
        server._gw_peers.open(fd)
    journal = server.journal
    monkeypatch.setattr(os, "fsync", lambda fd: log.append(("fsync", journal.committed)))
    return server, log, now


def _order(clid: str, side: str, price: int) -> bytes:
    return msgpack.packb({
        "type": "new_order", "v": 1, "client_order_id": clid, "symbol": "AGR", "side": side,
        "order_type": "limit", "qty": 1, "price": price,
    })  # fmt: skip


def _logon(server: ExchangeServer, identity: bytes) -> None:
    logon = {"type": "logon", "v": 1, "account": identity.decode()}
    _frame(server, identity, msgpack.packb(logon))
    server._flush()


def test_group_commit_holds_replies_until_the_fsync_that_covers_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server, log, now = _server(tmp_path, monkeypatch, durability="group", group_commit_ms=10)
    _logon(server, b"alice")
    _logon(server, b"bob")
    log.clear()
    now[0] += 1.0
    _frame(server, b"alice", _order("a1", "sell", 10_000))
    server._flush()  # the first write after a quiet spell: synced and sent at once
    assert log[0] == ("fsync", server.journal.committed)
    assert [e[0] for e in log[1:]] == ["send"] * (len(log) - 1) and len(log) > 1
    log.clear()

    now[0] += 0.004  # 4 ms after that fsync: the next batch waits
    _frame(server, b"bob", _order("b1", "buy", 10_000))  # a trade: acks, fills, feed, drop copy
    server._flush()
    covered = server.journal.committed
    assert log == [] and server._held
    assert server._release_due == pytest.approx(101.010)  # the loop's wake-up, traffic or not
    now[0] += 0.005
    server._release_if_due()
    assert log == []  # still within the 10 ms
    now[0] += 0.002
    server._release_if_due()
    assert log[0] == ("fsync", covered)  # one fsync, covering everything held...
    sent = {e[1] for e in log[1:]}
    assert sent == {"gateway", "feed", "dropcopy"}  # ...then acks, market data and drop copy
    assert not server._held and server.journal.synced == covered


def test_readers_of_the_state_settle_the_group_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server, log, now = _server(tmp_path, monkeypatch, durability="group", group_commit_ms=50)
    _logon(server, b"alice")
    _frame(server, b"alice", _order("a1", "sell", 10_000))
    server._flush()
    now[0] += 0.001
    _frame(server, b"alice", _order("a2", "sell", 10_001))
    server._flush()
    log.clear()
    server._heartbeat()  # heartbeats carry the last trade id: not ahead of what is on disk
    assert log[0] == ("fsync", server.journal.committed) and not server._held


def test_resend_replies_wait_for_the_group_fsync_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server, log, now = _server(tmp_path, monkeypatch, durability="group", group_commit_ms=10)
    _logon(server, b"alice")
    _frame(server, b"alice", _order("a1", "sell", 10_000))
    server._flush()
    now[0] += 0.001
    _frame(server, b"alice", _order("a2", "sell", 10_001))  # journalled, not yet on disk
    resend = {"type": "resend_request", "v": 1, "request_id": "r1", "from_seq": 1}
    _frame(server, b"alice", msgpack.packb(resend))  # both reports again, acks not yet sent
    log.clear()
    server._flush()
    assert log == [] and server._held  # the resend reply waits with the ack it repeats
    now[0] += 0.010
    server._release_if_due()
    assert log[0] == ("fsync", server.journal.committed)
    replies = [m for e in log[1:] if e[1] == "gateway" for m in msgpack.unpackb(e[2][1])]
    assert [m["type"] for m in replies][-1] == "resend_reply"
    assert [m["account_seq"] for m in replies if m["type"] == "execution_report"] == [1, 2, 1, 2]


def test_replies_held_for_a_connection_that_closed_are_dropped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A routing id freed by a closed connection may be taken by the next one: what group
    commit held for the old connection must not reach it."""
    server, log, now = _server(tmp_path, monkeypatch, durability="group", group_commit_ms=10)
    _logon(server, b"alice")
    _logon(server, b"bob")
    _frame(server, b"bob", _order("b0", "buy", 9_000))
    server._flush()
    log.clear()
    now[0] += 0.001
    _frame(server, b"alice", _order("a1", "sell", 10_000))
    _frame(server, b"bob", _order("b1", "buy", 9_001))
    server._flush()
    assert log == [] and server._held
    server._gw_peers.close_connection(_FDS[b"alice"])
    now[0] += 0.010
    server._release_if_due()
    assert log[0][0] == "fsync"
    to = {e[2][0] for e in log[1:] if e[1] == "gateway"}
    assert to == {b"bob"} and b"alice" not in server.sessions


def test_always_fsyncs_every_commit_before_its_replies(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server, log, _now = _server(tmp_path, monkeypatch, durability="always")
    _logon(server, b"alice")
    for i in range(3):
        log.clear()
        _frame(server, b"alice", _order(f"a{i}", "sell", 10_000 + i))
        server._flush()
        assert log[0] == ("fsync", server.journal.committed)
        assert [e[0] for e in log[1:]] == ["send"] * (len(log) - 1) and len(log) > 1


def test_none_never_fsyncs_and_the_old_switch_means_always(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server, log, _now = _server(tmp_path / "a", monkeypatch, durability="none")
    _logon(server, b"alice")
    _frame(server, b"alice", _order("a1", "sell", 10_000))
    server._flush()
    assert all(e[0] == "send" for e in log) and log
    assert ExchangeSettings(fsync=True).fsync_policy == "always"
    assert ExchangeSettings(fsync=True, durability="group").fsync_policy == "group"
