"""Floods on the snapshot service and on clearing's account API are contained per address.

Real processes on 127.0.0.1 with free ports. A second source address is 127.0.0.2 (any
127.x address is loopback on Linux; ZeroMQ's ``tcp://SOURCE:0;HOST:PORT`` picks the source).
Where a test must know a frame was dropped unanswered, it waits for the process's own count
(the exchange's Prometheus counter, clearing's ``api_frames_dropped`` log line), never for a
stretch of wall time.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgpack
import pytest
import zmq
from hypothesis import given
from hypothesis import strategies as st
from probes import dealer, metric, wait_until

from clearing.client import ClearingClient
from clearing.house import ClearingHouse
from clearing.protocol import ListAccounts, OpenAccount, RiskState, RiskSubscribe
from clearing.protocol import decode as clearing_decode
from clearing.protocol import encode as clearing_encode
from clearing.store import Store
from deploy.launch import Proc, free_endpoint, start_clearing, start_exchange, start_market
from exchange.protocol import (
    Logon,
    NewOrder,
    SnapshotRequest,
    TapeRequest,
    TradeReplayRequest,
    encode,
)
from exchange.protocol.peers import AddressLimits
from exchange.settings import default_symbols

SYM = "AGR"
WAIT_S = 60.0  # a safety net against a hang, never a synchronisation


@pytest.fixture
def ctx() -> Iterator[zmq.Context]:
    context = zmq.Context()
    yield context
    context.destroy(linger=0)


def _port() -> str:
    return free_endpoint().rsplit(":", 1)[1]


def from_address(endpoint: str, source: str) -> str:
    """`endpoint` reached from the source address `source` (e.g. 127.0.0.2)."""
    return f"tcp://{source}:0;{endpoint.removeprefix('tcp://')}"








def replies(sock: zmq.Socket, n: int) -> list[dict[str, Any]]:
    """The next `n` replies (one message per frame on these services)."""
    out: list[dict[str, Any]] = []
    while len(out) < n:
        if not sock.poll(int(WAIT_S * 1000)):
            raise TimeoutError(f"{len(out)} replies of {n}")
        out.extend(_unpack(sock.recv()))
    return out


def _unpack(frame: bytes) -> list[dict[str, Any]]:
    obj = msgpack.unpackb(frame)
    return obj if isinstance(obj, list) else [obj]


def nothing_pending(sock: zmq.Socket) -> bool:
    return not sock.poll(0)


# ------------------------------------------------------------------ the snapshot service


def test_a_snapshot_flood_is_refused_then_dropped_while_another_address_is_served(
    tmp_path: Path, ctx: zmq.Context
) -> None:
    ex = start_exchange(
        tmp_path / "ex", AGORA_EXCHANGE_METRICS_PORT=_port(),
        AGORA_EXCHANGE_SNAPSHOT_BURST="20", AGORA_EXCHANGE_SNAPSHOT_RATE_LIMIT="0.0001",
    )  # fmt: skip
    try:
        snap = ex.ready["snapshot"]
        flood = dealer(ctx, snap)
        for i in range(100):
            req = SnapshotRequest(symbol=SYM) if i % 2 else TapeRequest(symbol=SYM, from_seq=1)
            flood.send(encode(req))
        # 20 answered, 20 refused (each a debt, down to a whole burst), 60 dropped unread.
        wait_until(
            lambda: metric(ex, "agora_exchange_dropped_total", 'reason="snapshot_rate"') == 60,
            "drops not counted",
        )
        got = replies(flood, 40)
        kinds = sorted(m["type"] for m in got[:20])
        assert kinds == ["book_snapshot"] * 10 + ["tape_replay"] * 10
        assert [(m["type"], m["reason"]) for m in got[20:]] == [
            ("protocol_reject", "rate_limited")
        ] * 20
        assert {m["ref_type"] for m in got[20:]} == {"snapshot_request", "tape_request"}
        # Another address is answered as if nothing happened.
        other = dealer(ctx, from_address(snap, "127.0.0.2"))
        other.send(encode(SnapshotRequest(symbol=SYM)))
        assert replies(other, 1)[0]["type"] == "book_snapshot"
        # A new connection from the flooding address: its first frame is read (and refused),
        # its next ones are dropped like the rest.
        again = dealer(ctx, snap)
        again.send(encode(SnapshotRequest(symbol=SYM)))
        assert replies(again, 1)[0]["reason"] == "rate_limited"
        again.send(encode(SnapshotRequest(symbol=SYM)))
        wait_until(
            lambda: metric(ex, "agora_exchange_dropped_total", 'reason="snapshot_rate"') == 61,
            "the second frame was not dropped",
        )
        assert nothing_pending(flood) and nothing_pending(again)
        # Order entry never noticed.
        gw = dealer(ctx, ex.ready["gateway"])
        gw.send(encode(Logon(account="calm")))
        assert replies(gw, 1)[0]["accepted"]
    finally:
        ex.stop()


def test_defaults_do_not_limit_a_client_catching_up_with_a_few_pages(
    tmp_path: Path, ctx: zmq.Context
) -> None:
    ex = start_exchange(tmp_path / "ex")
    try:
        sock = dealer(ctx, ex.ready["snapshot"])
        for i in range(200):  # a dashboard's worth of snapshots and tape pages at once
            sock.send(encode(SnapshotRequest(symbol=SYM) if i % 2 else
                             TapeRequest(symbol=SYM, from_seq=1)))  # fmt: skip
        got = replies(sock, 200)
        assert not [m for m in got if m["type"] == "protocol_reject"]
    finally:
        ex.stop()


def test_clearing_catch_up_through_the_trade_replay_is_not_limited(
    tmp_path: Path, ctx: zmq.Context
) -> None:
    """A clearing house started late catches up thousands of trades (a dozen replay pages)
    from an address that is a whole burst in debt: its replay connection is not limited."""
    token = "replay-token-for-the-test"
    admin = "admin-token-for-the-test"
    ex = start_exchange(
        tmp_path / "ex", AGORA_EXCHANGE_METRICS_PORT=_port(), AGORA_EXCHANGE_REPLAY_TOKEN=token,
        AGORA_EXCHANGE_SNAPSHOT_BURST="2", AGORA_EXCHANGE_SNAPSHOT_RATE_LIMIT="0.0001",
    )  # fmt: skip
    try:
        gw = ex.ready["gateway"]
        seller, buyer = dealer(ctx, gw), dealer(ctx, gw)
        for sock, name in ((seller, "seller"), (buyer, "buyer")):
            sock.send(encode(Logon(account=name)))
            assert replies(sock, 1)[0]["accepted"]
        trades = 2_000
        seller.send(encode(NewOrder(client_order_id="s", symbol=SYM, side="sell",
                                    order_type="limit", qty=trades, price=10_000)))  # fmt: skip
        assert replies(seller, 1)[0]["exec_type"] == "new"
        for start in range(0, trades, 100):
            buyer.send(msgpack.packb([
                NewOrder(client_order_id=f"b{i}", symbol=SYM, side="buy", order_type="limit",
                         qty=1, price=10_000).model_dump()
                for i in range(start, start + 100)
            ]))  # fmt: skip
        filled = 0
        while filled < trades:
            filled += sum(1 for m in replies(buyer, 1) if m.get("exec_type") == "trade")

        # The address is now a whole burst in debt on the snapshot service.
        flood = dealer(ctx, ex.ready["snapshot"])
        for _ in range(10):
            flood.send(encode(SnapshotRequest(symbol=SYM)))
        wait_until(
            lambda: metric(ex, "agora_exchange_dropped_total", 'reason="snapshot_rate"') == 6,
            "the address is not in debt",
        )
        assert [m["type"] for m in replies(flood, 4)] == ["book_snapshot"] * 2 + [
            "protocol_reject"
        ] * 2

        data = tmp_path / "clearing"
        house = ClearingHouse(Store(data / "clearing.sqlite"), default_symbols(), admin)
        for name in ("seller", "buyer"):
            house.handle(OpenAccount(admin_token=admin, account=name, cash=10**9,
                                     positions={SYM: 10_000}), ts=0)  # fmt: skip
        house.store.close()
        link = "link-secret-for-the-test"
        clearing = start_clearing(data, ex.ready, AGORA_CLEARING_ADMIN_TOKEN=admin,
                                  AGORA_CLEARING_LINK_SECRET=link,
                                  AGORA_CLEARING_EXCHANGE_TOKEN=token)  # fmt: skip
        try:
            risk = dealer(ctx, clearing.ready["api"])
            risk.send(clearing_encode(RiskSubscribe(admin_token=link)))
            deadline = time.monotonic() + WAIT_S
            settled = 0
            while settled < trades:
                assert risk.poll(int(max(0.0, deadline - time.monotonic()) * 1000)), settled
                msg = clearing_decode(risk.recv())
                if isinstance(msg, RiskState):
                    settled = max(settled, msg.settled_through)
            assert settled == trades
        finally:
            clearing.stop()
        assert len(Store(data / "clearing.sqlite").dump()["trades"]) == trades
        # ... while anyone else from that address is still limited.
        flood.send(encode(TradeReplayRequest(from_trade_id=1, max_count=10, token="guess")))
        wait_until(
            lambda: metric(ex, "agora_exchange_dropped_total", 'reason="snapshot_rate"') == 7,
            "a guessed token was not limited",
        )
    finally:
        ex.stop()


# ------------------------------------------------------------------ clearing's account API


def test_a_clearing_api_flood_is_refused_then_dropped_and_the_risk_link_goes_on(
    tmp_path: Path, ctx: zmq.Context
) -> None:
    m = start_market(tmp_path, clearing_env={
        "AGORA_CLEARING_API_BURST": "20", "AGORA_CLEARING_API_RATE_LIMIT": "0.0001",
    })  # fmt: skip
    try:
        api = m.endpoints["clearing"]
        flood = dealer(ctx, api)
        for i in range(100):
            req = ListAccounts(admin_token=m.admin_token, request_id=str(i + 1))
            flood.send(clearing_encode(req))
        got = [clearing_decode(flood.recv()) for _ in range(40) if flood.poll(int(WAIT_S * 1000))]
        assert [g.type for g in got] == ["account_list"] * 20 + ["clearing_reject"] * 20
        assert {(g.reason, g.ref_type) for g in got[20:]} == {("rate_limited", "list_accounts")}
        assert [g.request_id for g in got] == [str(i) for i in range(1, 41)]
        line = m.clearing.wait_log(
            lambda s: '"api_frames_dropped"' in s and json.loads(s)["dropped"] == 60,
            timeout=WAIT_S,
        )
        assert json.loads(line)["refused"] == 20
        assert nothing_pending(flood)

        # Another address is served; and an exchange restarting behind the flooding address
        # gets its risk link back (its first frame proves the link secret), so an account
        # opened now can log on at once.
        async def open_account() -> str:
            admin = ClearingClient(from_address(api, "127.0.0.2"), admin_token=m.admin_token)
            try:
                return (await admin.open_account("late", cash=1_000_000)).token
            finally:
                await admin.close()

        m.exchange.stop()
        m.exchange = Proc(m.exchange.args, m.exchange.env)
        late = asyncio.run(open_account())
        gw = dealer(ctx, m.exchange.ready["gateway"])
        deadline = time.monotonic() + WAIT_S
        while True:  # the new account is on its way to the gate: the risk link is up
            gw.send(encode(Logon(account="late", token=late)))
            reply = replies(gw, 1)[0]
            if reply["accepted"] or time.monotonic() > deadline:
                break
            time.sleep(0.1)  # backoff between logon attempts
        assert reply["accepted"], reply
        assert nothing_pending(flood)
    finally:
        m.stop()


def test_snapshot_limits_are_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from clearing.settings import ClearingSettings
    from exchange.settings import ExchangeSettings

    monkeypatch.setenv("AGORA_EXCHANGE_SNAPSHOT_RATE_LIMIT", "7.5")
    monkeypatch.setenv("AGORA_EXCHANGE_SNAPSHOT_BURST", "9")
    monkeypatch.setenv("AGORA_EXCHANGE_SNAPSHOT_TURN_FRAMES", "11")
    monkeypatch.setenv("AGORA_EXCHANGE_SNAPSHOT_TURN_S", "0.004")
    monkeypatch.setenv("AGORA_CLEARING_API_RATE_LIMIT", "3")
    monkeypatch.setenv("AGORA_CLEARING_API_BURST", "4")
    ex, cl = ExchangeSettings(), ClearingSettings()
    assert (ex.snapshot_rate_limit, ex.snapshot_burst) == (7.5, 9)
    assert (ex.snapshot_turn_frames, ex.snapshot_turn_s) == (11, 0.004)
    assert (cl.api_rate_limit, cl.api_burst) == (3.0, 4)


@given(st.lists(st.floats(min_value=0.0, max_value=5.0), min_size=1, max_size=300))
def test_an_address_costs_at_most_its_burst_and_twice_its_rate(gaps: list[float]) -> None:
    """Whatever the timing: served <= burst + rate*t, and decoded (served or refused)
    <= 2*burst + 2*rate*t; nothing is served while an address is in debt."""
    rate, burst = 2.0, 5
    limits = AddressLimits(rate, burst)
    now = 0.0
    served = refused = 0
    for gap in gaps:
        now += gap
        verdict = limits.judge("a", now)
        served += verdict == AddressLimits.SERVE
        refused += verdict == AddressLimits.REFUSE
        assert served <= burst + rate * now + 1e-9
        assert served + refused <= 2 * burst + 2 * rate * now + 1e-9
    assert limits.judge("b", now) == AddressLimits.SERVE  # another address: its own budget
