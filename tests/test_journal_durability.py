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

from exchange.server import ExchangeServer
from exchange.settings import ExchangeSettings


class _Sock:
    def __init__(self, log: list[tuple], name: str) -> None:
        self.log, self.name = log, name

    def send_multipart(self, frames: list[bytes], flags: int = 0) -> None:
        self.log.append(("send", self.name, frames))


def _server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, **kw: Any) -> tuple:
    log: list[tuple] = []
    s = ExchangeSettings(data_dir=tmp_path, snapshot_every_records=0, snapshot_every_s=0, **kw)
    server = ExchangeServer(s)
    now = [100.0]
    server._mono = lambda: now[0]
    server._gw, server._feed = _Sock(log, "gateway"), _Sock(log, "feed")
    server._dropsock, server._snap = _Sock(log, "dropcopy"), _Sock(log, "snapshot")
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
    server._on_frame(identity, msgpack.packb(logon))
    server._flush()


def test_group_commit_holds_replies_until_the_fsync_that_covers_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server, log, now = _server(tmp_path, monkeypatch, durability="group", group_commit_ms=10)
    _logon(server, b"alice")
    _logon(server, b"bob")
    log.clear()
    now[0] += 1.0
    server._on_frame(b"alice", _order("a1", "sell", 10_000))
    server._flush()  # the first write after a quiet spell: synced and sent at once
    assert log[0] == ("fsync", server.journal.committed)
    assert [e[0] for e in log[1:]] == ["send"] * (len(log) - 1) and len(log) > 1
    log.clear()

    now[0] += 0.004  # 4 ms after that fsync: the next batch waits
    server._on_frame(b"bob", _order("b1", "buy", 10_000))  # a trade: acks, fills, feed, drop copy
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
    server._on_frame(b"alice", _order("a1", "sell", 10_000))
    server._flush()
    now[0] += 0.001
    server._on_frame(b"alice", _order("a2", "sell", 10_001))
    server._flush()
    log.clear()
    server._heartbeat()  # heartbeats carry the last trade id: not ahead of what is on disk
    assert log[0] == ("fsync", server.journal.committed) and not server._held


def test_always_fsyncs_every_commit_before_its_replies(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server, log, _now = _server(tmp_path, monkeypatch, durability="always")
    _logon(server, b"alice")
    for i in range(3):
        log.clear()
        server._on_frame(b"alice", _order(f"a{i}", "sell", 10_000 + i))
        server._flush()
        assert log[0] == ("fsync", server.journal.committed)
        assert [e[0] for e in log[1:]] == ["send"] * (len(log) - 1) and len(log) > 1


def test_none_never_fsyncs_and_the_old_switch_means_always(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server, log, _now = _server(tmp_path / "a", monkeypatch, durability="none")
    _logon(server, b"alice")
    server._on_frame(b"alice", _order("a1", "sell", 10_000))
    server._flush()
    assert all(e[0] == "send" for e in log) and log
    assert ExchangeSettings(fsync=True).fsync_policy == "always"
    assert ExchangeSettings(fsync=True, durability="group").fsync_policy == "group"
