"""Exchange + clearing as real processes on loopback: settlement, authentication, restarts."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import zmq
import zmq.asyncio

from agents.client import ExchangeClient, LogonRefused
from clearing.client import ClearingClient, ClearingError
from clearing.fees import FeeSchedule
from clearing.house import ClearingHouse
from clearing.protocol import OpenAccount, RiskState, RiskSubscribe, decode, encode
from clearing.store import Store
from deploy.launch import Market, start_clearing, start_market
from exchange.protocol import TradeReplayRequest, decode_batch
from exchange.protocol import encode as encode_exchange
from exchange.settings import default_symbols

FEES_ENV = {"AGORA_CLEARING_FEES": '{"maker_bps": -1, "taker_bps": 5}'}
WAIT_S = 60.0  # a safety net against a hang, never a synchronisation


@pytest.fixture
async def market(tmp_path: Path) -> AsyncIterator[Market]:
    m = start_market(tmp_path, clearing_env=FEES_ENV)
    try:
        yield m
    finally:
        m.stop()


async def settled_through(endpoint: str, link_secret: str, target: int) -> int:
    """Follow clearing's risk feed (pushed states + heartbeats) until it has settled `target`."""
    ctx = zmq.asyncio.Context.instance()
    sock = ctx.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(endpoint)
    try:
        await sock.send(encode(RiskSubscribe(admin_token=link_secret)))  # the risk stream's secret
        async with asyncio.timeout(WAIT_S):
            while True:
                msg = decode(await sock.recv())
                if isinstance(msg, RiskState) and msg.settled_through >= target:
                    return msg.settled_through
    finally:
        sock.close()


async def exchange_trade_count(snapshot: str, token: str) -> int:
    reply = await trade_replay(snapshot, token)
    assert reply.type == "trade_replay", reply
    return reply.end_trade_id


async def trade_replay(snapshot: str, token: str) -> Any:
    ctx = zmq.asyncio.Context.instance()
    sock = ctx.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(snapshot)
    try:
        await sock.send(encode_exchange(TradeReplayRequest(from_trade_id=1, max_count=1,
                                                           token=token)))  # fmt: skip
        async with asyncio.timeout(WAIT_S):
            return decode_batch(await sock.recv())[0]
    finally:
        sock.close()


async def test_trades_settle_with_fees_and_owners_read_only_their_records(market: Market) -> None:
    ep = market.endpoints
    admin = ClearingClient(ep["clearing"], admin_token=market.admin_token)
    alice = await admin.open_account("alice", cash=1_000_000)
    bob = await admin.open_account("bob", cash=0, positions={"AGR": 100})

    ca = await ExchangeClient("alice", alice.token, gateway=ep["gateway"]).connect()
    cb = await ExchangeClient("bob", bob.token, gateway=ep["gateway"]).connect()
    watcher = ClearingClient(ep["clearing"], account="alice", token=alice.token)
    updates = watcher.watch()
    try:
        assert (await anext(updates)).cash == 1_000_000  # the balance now, then every change
        assert (await cb.create_order("AGR", "sell", "limit", 40, 10_000)).exec_type == "new"
        fill = await ca.create_order("AGR", "buy", "limit", 30, 10_000)
        assert fill.exec_type == "new"
        pushed = await asyncio.wait_for(anext(updates), WAIT_S)  # pushed when it settled
        assert pushed.settled_through >= 1 and pushed.positions[0].qty == 30
        await watcher.close()
        await settled_through(ep["clearing"], market.link_secret, 1)

        mine = ClearingClient(ep["clearing"], account="alice", token=alice.token)
        bal = await mine.balance()
        notional = 30 * 10_000
        taker_fee = round(notional * 5 / 10_000)
        assert bal.cash == 1_000_000 - notional - taker_fee
        assert bal.positions[0].symbol == "AGR" and bal.positions[0].qty == 30
        assert bal.fees_paid == taker_fee
        history = await mine.all_trades()
        assert [(t.side, t.qty, t.liquidity, t.fee) for t in history] == [
            ("buy", 30, "taker", taker_fee)
        ]
        theirs = ClearingClient(ep["clearing"], account="bob", token=bob.token)
        bob_bal = await theirs.balance()
        assert bob_bal.cash == notional + round(notional * 1 / 10_000)  # maker rebate
        assert bob_bal.positions[0].qty == 70

        # Another account's records with my token: refused, with a reason.
        with pytest.raises(ClearingError) as exc:
            await mine.balance("bob")
        assert exc.value.reason == "invalid_credentials"
        with pytest.raises(ClearingError) as exc:
            await mine.trades("bob")
        assert exc.value.reason == "invalid_credentials"
        # Admin operations need the admin token.
        with pytest.raises(ClearingError) as exc:
            await ClearingClient(ep["clearing"], admin_token="guess").deposit("alice", 5)
        assert exc.value.reason == "not_authorised"
        leaderboard = await admin.list_accounts()
        assert {a.account for a in leaderboard.accounts} == {"alice", "bob"}
        for c in (mine, theirs):
            await c.close()
    finally:
        await ca.close()
        await cb.close()
        await admin.close()


async def test_exchange_refuses_wrong_tokens_foreign_orders_and_unfunded_orders(
    market: Market,
) -> None:
    ep = market.endpoints
    admin = ClearingClient(ep["clearing"], admin_token=market.admin_token)
    alice = await admin.open_account("alice", cash=50_000)
    bob = await admin.open_account("bob", cash=50_000, positions={"AGR": 5})
    with pytest.raises(LogonRefused) as refused:
        await ExchangeClient("alice", "not-the-token", gateway=ep["gateway"]).connect()
    assert refused.value.reason == "invalid_credentials"
    with pytest.raises(LogonRefused) as refused:
        await ExchangeClient("mallory", alice.token, gateway=ep["gateway"]).connect()
    assert refused.value.reason == "invalid_credentials"  # same as a wrong token

    ca = await ExchangeClient("alice", alice.token, gateway=ep["gateway"]).connect()
    cb = await ExchangeClient("bob", bob.token, gateway=ep["gateway"]).connect()
    try:
        resting = await cb.create_order("AGR", "sell", "limit", 5, 10_100)
        assert resting.exec_type == "new"
        # Alice cannot cancel or amend Bob's order, by exchange id or by his client id.
        by_id = await ca.cancel_order(resting.order_id, "AGR")
        assert by_id.type == "cancel_reject" and by_id.reject_reason == "unknown_order"
        by_clid = await ca.cancel_order(None, "AGR", client_order_id=resting.client_order_id)
        assert by_clid.type == "cancel_reject"
        amend = await ca.edit_order(resting.order_id, "AGR", amount=1)
        assert amend.type == "cancel_reject"
        # Pre-trade risk: beyond cash, beyond position, and the sum of open orders counts.
        too_big = await ca.create_order("AGR", "buy", "limit", 6, 10_000)
        assert too_big.exec_type == "rejected" and too_big.reject_reason == "insufficient_funds"
        ok = await ca.create_order("AGR", "buy", "limit", 3, 10_000)
        assert ok.exec_type == "new"
        second = await ca.create_order("AGR", "buy", "limit", 3, 10_000)
        assert second.reject_reason == "insufficient_funds"  # 3 + 3 lots > 50,000 cents
        oversell = await cb.create_order("AGR", "sell", "limit", 1, 10_200)
        assert oversell.reject_reason == "insufficient_position"  # all 5 already offered
        raise_qty = await cb.edit_order(resting.order_id, "AGR", amount=6)
        assert raise_qty.type == "cancel_reject"
        assert raise_qty.reject_reason == "insufficient_position"
        # The replay service is the clearing house's: no token, no trades.
        no_token = await trade_replay(ep["snapshot"], "")
        assert no_token.type == "protocol_reject" and no_token.reason == "not_authorised"
    finally:
        await ca.close()
        await cb.close()
        await admin.close()


async def _trade_randomly(
    clients: list[ExchangeClient], orders: int, seed: int, halfway: asyncio.Event,
    resume: asyncio.Event,
) -> None:  # fmt: skip
    rnd = random.Random(seed)
    for i in range(orders):
        client = clients[i % len(clients)]
        side = "buy" if rnd.random() < 0.5 else "sell"
        price = 10_000 + rnd.randint(-2, 2)
        await client.create_order("AGR", side, "limit", rnd.randint(1, 5), price)
        if i == orders // 2:
            halfway.set()
            await resume.wait()


async def test_kill_9_clearing_mid_stream_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    m = start_market(tmp_path / "live", clearing_env=FEES_ENV)
    ep = m.endpoints
    names = [f"t{i}" for i in range(4)]
    try:
        admin = ClearingClient(ep["clearing"], admin_token=m.admin_token)
        tokens = {}
        for n in names:
            tokens[n] = (await admin.open_account(n, cash=5_000_000, positions={"AGR": 500})).token
        await admin.close()
        clients = [
            await ExchangeClient(n, tokens[n], gateway=ep["gateway"]).connect() for n in names
        ]
        halfway, resume = asyncio.Event(), asyncio.Event()
        flow = asyncio.create_task(_trade_randomly(clients, 600, 7, halfway, resume))
        await halfway.wait()
        before = await settled_through(ep["clearing"], m.link_secret, 1)
        m.clearing.kill()  # kill -9, mid-stream: the second half trades while it is down
        resume.set()
        await flow
        total = await exchange_trade_count(ep["snapshot"], m.admin_token)
        assert total > before + 20
        m.clearing = start_clearing(
            tmp_path / "live" / "clearing", m.exchange.ready, api=ep["clearing"],
            AGORA_CLEARING_ADMIN_TOKEN=m.admin_token, AGORA_CLEARING_LINK_SECRET=m.link_secret,
            **FEES_ENV,
        )  # fmt: skip
        assert await settled_through(ep["clearing"], m.link_secret, total) == total
        for c in clients:
            await c.close()
        m.clearing.stop()

        # The uninterrupted run: a fresh clearing house, the same accounts, the whole stream.
        ref_dir = tmp_path / "reference"
        house = ClearingHouse(
            Store(ref_dir / "clearing.sqlite"), default_symbols(), m.admin_token,
            fees=FeeSchedule(maker_bps=-1, taker_bps=5),
        )  # fmt: skip
        for n in names:
            house.handle(OpenAccount(
                admin_token=m.admin_token, account=n, cash=5_000_000, positions={"AGR": 500}
            ), ts=0)  # fmt: skip
        house.store.close()
        ref = start_clearing(ref_dir, m.exchange.ready, AGORA_CLEARING_ADMIN_TOKEN=m.admin_token,
                             AGORA_CLEARING_LINK_SECRET=m.link_secret, **FEES_ENV)  # fmt: skip
        assert await settled_through(ref.ready["api"], m.link_secret, total) == total
        ref.stop()
    finally:
        m.stop()

    live = Store(tmp_path / "live" / "clearing" / "clearing.sqlite").dump()
    reference = Store(ref_dir / "clearing.sqlite").dump()
    assert len(live["trades"]) == total
    assert live["trades"] == reference["trades"]
    assert live["positions"] == reference["positions"]
    # accounts: everything but the token hash (each run issued its own tokens)
    def without_token(rows: list[tuple]) -> list[tuple]:
        return [r[:1] + r[2:] for r in rows]

    assert without_token(live["accounts"]) == without_token(reference["accounts"])
    trade_changes = [c for c in live["changes"] if c[1] in ("trade", "fee")]
    assert trade_changes == [c for c in reference["changes"] if c[1] in ("trade", "fee")]
    assert len(trade_changes) == 3 * total  # two legs and the fee, once per trade
    assert live["meta"] == reference["meta"]


async def test_withdrawal_cannot_take_cash_that_open_orders_count_on(market: Market) -> None:
    ep = market.endpoints
    admin = ClearingClient(ep["clearing"], admin_token=market.admin_token)
    alice = await admin.open_account("alice", cash=50_000)
    ca = await ExchangeClient("alice", alice.token, gateway=ep["gateway"]).connect()
    try:
        resting = await ca.create_order("AGR", "buy", "limit", 3, 10_000)  # reserves 30,015
        assert resting.exec_type == "new"
        with pytest.raises(ClearingError) as refused:
            await admin.withdraw("alice", 30_000)  # clearing alone would pay this out
        assert refused.value.reason == "insufficient_funds"
        after = await admin.withdraw("alice", 19_000)  # what the open order leaves free
        assert after.cash == 31_000
        # the gate has the new balance: the open order still fits, nothing more does
        more = await ca.create_order("AGR", "buy", "limit", 1, 10_000)
        assert more.exec_type == "rejected" and more.reject_reason == "insufficient_funds"
        cancel = await ca.cancel_order(resting.order_id, "AGR")
        assert cancel.exec_type == "canceled"
        assert (await admin.withdraw("alice", 31_000)).cash == 0
    finally:
        await ca.close()
        await admin.close()


async def test_a_new_token_ends_the_sessions_and_subscriptions_of_the_old_one(
    market: Market,
) -> None:
    from agents.client import SessionClosed

    ep = market.endpoints
    admin = ClearingClient(ep["clearing"], admin_token=market.admin_token)
    old = await admin.open_account("alice", cash=100_000)
    old_session = await ExchangeClient("alice", old.token, gateway=ep["gateway"]).connect()
    new = await admin.open_account("alice", if_exists="rotate")
    assert new.token != old.token
    # once the exchange knows the new token, it has ended the old one's session
    new_session = await ExchangeClient("alice", new.token, gateway=ep["gateway"]).connect(
        retry=frozenset({"invalid_credentials"})
    )
    try:
        with pytest.raises(SessionClosed):
            await old_session.create_order("AGR", "buy", "limit", 1, 10_000)
        assert (await new_session.create_order("AGR", "buy", "limit", 1, 10_000)).exec_type == (
            "new"
        )
        with pytest.raises(LogonRefused) as refused:
            await ExchangeClient("alice", old.token, gateway=ep["gateway"]).connect()
        assert refused.value.reason == "invalid_credentials"
        with pytest.raises(ClearingError) as exc:
            await ClearingClient(ep["clearing"], account="alice", token=old.token).balance()
        assert exc.value.reason == "invalid_credentials"
    finally:
        await old_session.close()
        await new_session.close()
        await admin.close()
