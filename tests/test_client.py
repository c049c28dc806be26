"""The client SDK against a real exchange process, and its pure local book."""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import zmq
import zmq.asyncio

from agents.client import (
    ClientError,
    ExchangeClient,
    LocalBook,
    LogonRefused,
    MarketDataClient,
    RequestRejected,
    SessionClosed,
)
from agents.settings import ClientSettings
from deploy.launch import Proc, start_exchange
from exchange.protocol import (
    BookDelta,
    BookSnapshot,
    CancelReject,
    ExecutionReport,
    Goodbye,
    LogonReply,
    ProtocolError,
    ProtocolReject,
    Trade,
    decode,
    decode_batch,
    encode_batch,
)
from exchange.server import ExchangeServer
from exchange.settings import ExchangeSettings

SYM = "AGR"
WAIT = 30.0  # a safety net against hangs, never a synchronisation


# ------------------------------------------------------------------------------ LocalBook


def delta(seq: int, side: str, price: int, qty: int, count: int) -> BookDelta:
    return BookDelta(symbol=SYM, seq=seq, side=side, price=price, qty=qty, count=count)


def test_local_book_applies_deltas_after_its_snapshot() -> None:
    book = LocalBook(SYM)
    assert not book.apply(delta(1, "buy", 99, 1, 1))  # no snapshot yet: must sync first
    book.apply_snapshot(BookSnapshot(symbol=SYM, seq=5, bids=[(99, 3, 1)], asks=[(101, 2, 2)]))
    assert book.apply(delta(4, "buy", 99, 100, 9))  # stale: already in the snapshot
    assert book.bids == {99: (3, 1)}
    assert book.apply(delta(6, "buy", 100, 4, 1))
    assert book.apply(delta(7, "sell", 101, 0, 0))
    assert (book.best_bid, book.best_ask, book.seq) == (100, None, 7)
    assert book.levels(1) == ([(100, 4, 1)], [])


def test_local_book_detects_a_gap() -> None:
    book = LocalBook(SYM)
    book.apply_snapshot(BookSnapshot(symbol=SYM, seq=1))
    assert not book.apply(delta(3, "buy", 100, 1, 1))
    assert not book.synced and book.bids == {}
    assert not book.apply(delta(4, "buy", 100, 1, 1))  # stays out of sync until a snapshot


# ------------------------------------------------------------------------------ live


@pytest.fixture
def exchange(tmp_path: Path) -> Iterator[Proc]:
    # Tiny queues on the feed, so that a subscriber that stops reading loses messages soon.
    proc = start_exchange(
        tmp_path / "ex", AGORA_EXCHANGE_FEED_HWM="1", AGORA_EXCHANGE_FEED_SNDBUF="4096"
    )
    yield proc
    proc.stop()


def settings_for(proc: Proc) -> ClientSettings:
    r = proc.ready
    return ClientSettings(
        gateway=r["gateway"], feed=r["feed"], snapshot=r["snapshot"], dropcopy=r["dropcopy"]
    )


async def test_orders_round_trip_through_the_sdk(exchange: Proc) -> None:
    s = settings_for(exchange)
    async with (
        ExchangeClient("alice", settings=s) as alice,
        ExchangeClient("bob", settings=s) as bob,
    ):
        assert alice.symbols == [SYM]
        ask = await alice.create_order(SYM, "sell", "limit", 10, 10_010)
        assert (ask.exec_type, ask.leaves_qty) == ("new", 10)
        fills = alice.reports()
        assert (await anext(fills)).exec_type == "new"

        bid = await bob.create_order(SYM, "buy", "limit", 4, 10_020, {"time_in_force": "IOC"})
        assert bid.exec_type == "new"
        maker_fill = await asyncio.wait_for(anext(fills), WAIT)  # a resting order's fill
        assert (maker_fill.exec_type, maker_fill.last_qty, maker_fill.leaves_qty) == ("trade", 4, 6)

        edited = await alice.edit_order(ask.order_id, SYM, amount=8)
        assert (edited.exec_type, edited.leaves_qty) == ("replaced", 4)
        cancelled = await alice.cancel_order(client_order_id=ask.client_order_id, symbol=SYM)
        assert (cancelled.exec_type, cancelled.cancelled_qty) == ("canceled", 4)
        again = await alice.cancel_order(ask.order_id, SYM)
        assert (again.type, again.reject_reason) == ("cancel_reject", "unknown_order")

        bad = await alice.create_order(SYM, "buy", "limit", 1, 99_999)
        assert (bad.exec_type, bad.reject_reason) == ("rejected", "price_outside_band")


async def test_pipelined_and_batched_orders_are_correlated(exchange: Proc) -> None:
    s = settings_for(exchange)
    async with ExchangeClient("carol", settings=s) as carol:
        prices = [9_900 + i for i in range(50)]
        acks = await asyncio.gather(
            *(carol.create_order(SYM, "buy", "limit", 1 + i % 3, p) for i, p in enumerate(prices))
        )
        assert [a.price for a in acks] == prices  # each future got its own order's ack
        assert len({a.order_id for a in acks}) == 50
        batch = await carol.create_orders(
            [{"symbol": SYM, "side": "sell", "amount": 2, "price": 10_100 + i} for i in range(20)]
        )
        assert [b.price for b in batch] == [10_100 + i for i in range(20)]
        opens = await carol.fetch_open_orders(SYM)
        assert len(opens) == 70
        book = await carol.fetch_order_book(SYM, limit=3)
        assert [level[0] for level in book.bids] == [9_949, 9_948, 9_947]
        report = await carol.cancel_all()
        assert report.cancelled == 70
        assert await carol.fetch_open_orders() == []


async def _until(gen: AsyncIterator[LocalBook], pred: Callable[[LocalBook], bool]) -> LocalBook:
    """Read the generator until `pred` holds (a lost tail is revealed by the next heartbeat)."""
    while True:
        book = await asyncio.wait_for(anext(gen), WAIT)
        if pred(book):
            return book


async def test_watch_order_book_converges_and_resyncs_after_a_gap(exchange: Proc) -> None:
    """A subscriber that stops reading loses messages (HWM 1), notices and resynchronises."""
    s = settings_for(exchange)
    md = MarketDataClient(settings=s, rcvhwm=1, rcvbuf=4096)
    async with ExchangeClient("dave", settings=s) as dave:
        books = md.watch_order_book(SYM)
        await asyncio.wait_for(anext(books), WAIT)  # the initial snapshot
        # The subscription goes live asynchronously: enter orders until one is seen.
        # (asyncio.wait, not wait_for: a timeout must not cancel the generator.)
        price = 9_000
        seen = asyncio.ensure_future(anext(books))
        while not seen.done():
            await dave.create_order(SYM, "buy", "limit", 1, price)
            price += 1
            await asyncio.wait({seen}, timeout=0.5)
        # Stop reading while a burst goes through: the feed must drop messages for us.
        rng = random.Random(7)
        for _ in range(40):
            await dave.create_orders([
                {"symbol": SYM, "side": rng.choice(["buy", "sell"]), "amount": rng.randint(1, 5),
                 "price": rng.choice([9_950 - rng.randint(0, 40), 10_050 + rng.randint(0, 40)])}
                for _ in range(50)
            ])  # fmt: skip
        final = await md.fetch_order_book(SYM)
        book = await _until(books, lambda b: b.synced and b.seq >= final.seq)
        assert md.resyncs >= 1
        assert book.levels() == (final.bids, final.asks)
        await books.aclose()
    await md.close()


async def test_watch_trades_and_ticker(exchange: Proc) -> None:
    s = settings_for(exchange)
    md = MarketDataClient(settings=s)
    async with (
        ExchangeClient("erin", settings=s) as erin,
        ExchangeClient("fred", settings=s) as fred,
    ):
        tickers = md.watch_ticker(SYM)
        trades = md.watch_trades(SYM)
        first_tick = asyncio.ensure_future(anext(tickers))
        first_trade = asyncio.ensure_future(anext(trades))
        price = 10_000
        while not (first_tick.done() and first_trade.done()):
            await erin.create_order(SYM, "sell", "limit", 1, price)
            await fred.create_order(SYM, "buy", "limit", 1, price)
            await asyncio.wait({first_tick, first_trade}, timeout=0.5)
        trade, tick = first_trade.result(), first_tick.result()
        assert trade.qty == 1 and trade.aggressor_side == "buy"
        assert tick.type == "top_of_book"
        await tickers.aclose()
        await trades.aclose()
    await md.close()


async def test_logon_refused_with_a_reason(tmp_path: Path) -> None:
    def only_admins(account: str, token: str) -> str | None:
        return None if token == "secret" else "bad_token"

    bind = "tcp://127.0.0.1:*"
    settings = ExchangeSettings(
        gateway_bind=bind, feed_bind=bind, snapshot_bind=bind, dropcopy_bind=bind,
        data_dir=tmp_path / "ex",
    )  # fmt: skip
    server = ExchangeServer(settings, authenticate=only_admins)
    task = asyncio.create_task(server.serve())
    try:
        while "dropcopy" not in server.endpoints:  # bound synchronously at start of serve()
            await asyncio.sleep(0)
        s = ClientSettings(gateway=server.endpoints["gateway"])
        with pytest.raises(LogonRefused) as refused:
            await ExchangeClient("zed", token="guess", settings=s).connect()
        assert refused.value.reason == "bad_token"
        async with ExchangeClient("zed", token="secret", settings=s) as ok:
            assert (await ok.create_order(SYM, "buy", "limit", 1, 9_999)).exec_type == "new"
    finally:
        server.stop()
        await asyncio.wait_for(task, WAIT)


def test_agora_watch_shows_the_live_book(exchange: Proc) -> None:
    import os
    import subprocess
    import sys

    r = exchange.ready
    env = {**os.environ, "AGORA_FEED": r["feed"], "AGORA_SNAPSHOT": r["snapshot"]}

    async def place() -> None:
        async with ExchangeClient("gina", settings=settings_for(exchange)) as gina:
            await gina.create_order(SYM, "buy", "limit", 7, 9_876)

    asyncio.run(place())
    out = subprocess.run(
        [sys.executable, "-m", "deploy.cli", "watch", SYM, "--seconds", "1.5"],
        env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert "98.76" in out.stdout and "AGR" in out.stdout  # a price, not 9876 ticks


# ------------------------------------------------------------------------------ fake exchange
# Scripted ZeroMQ peers: deterministic, no exchange process, sleeps never used to synchronise.

FAST = 2.0  # a safety net against hangs in the fake-exchange tests


def _er(clid: str, oid: int, exec_type: str, **kw: object) -> ExecutionReport:
    base: dict = dict(
        order_id=oid, client_order_id=clid, account="alice", symbol=SYM, side="buy",
        exec_type=exec_type, order_status=exec_type, order_type="limit", price=100, qty=5,
        cum_qty=0, leaves_qty=5, seq=1,
    )  # fmt: skip
    base.update(kw)
    return ExecutionReport(**base)


@contextlib.asynccontextmanager
async def fake_gateway(
    handler: Callable[[Any], list[Any]], logon: bool = True
) -> AsyncIterator[str]:
    """A ROUTER that accepts any logon and answers every other message with `handler`."""
    sock = zmq.asyncio.Context.instance().socket(zmq.ROUTER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.bind("tcp://127.0.0.1:*")

    async def run() -> None:
        while True:
            ident, payload = await sock.recv_multipart()
            try:
                msgs = decode_batch(payload)
            except ProtocolError:
                msgs = [decode(payload)]
            for m in msgs:
                if m.type == "logon":
                    if not logon:
                        continue
                    out = [LogonReply(account=m.account, accepted=True, symbols=[SYM])]
                else:
                    out = handler(m)
                if out:
                    await sock.send_multipart([ident, encode_batch(out)])

    task = asyncio.create_task(run())
    try:
        yield sock.getsockopt_string(zmq.LAST_ENDPOINT)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        sock.close()


async def test_two_cancels_of_one_order_each_get_an_answer() -> None:
    answered: list[str] = []

    def h(m: Any) -> list[Any]:
        assert m.type == "cancel_order"
        answered.append(m.client_order_id)
        if len(answered) == 1:
            return [_er("o1", 7, "canceled", leaves_qty=0, qty=0, cancelled_qty=5)]
        return [
            CancelReject(
                client_order_id=m.client_order_id,
                order_id=7,
                symbol=SYM,
                account="alice",
                response_to="cancel",
                reject_reason="unknown_order",
            )
        ]

    async with fake_gateway(h) as ep, ExchangeClient("alice", gateway=ep) as c:
        first, second = await asyncio.wait_for(
            asyncio.gather(c.cancel_order(7, SYM), c.cancel_order(7, SYM)), FAST
        )
        assert first.type == "execution_report" and first.exec_type == "canceled"
        assert second.type == "cancel_reject" and second.client_order_id == answered[1]
        assert c._pending == {}


async def test_rate_limited_open_orders_request_raises() -> None:
    def h(m: Any) -> list[Any]:
        return [ProtocolReject(reason="rate_limited", text="too many", ref_type=m.type)]

    async with fake_gateway(h) as ep, ExchangeClient("alice", gateway=ep) as c:
        with pytest.raises(RequestRejected) as rejected:
            await asyncio.wait_for(c.fetch_open_orders(), FAST)
        assert rejected.value.reason == "rate_limited"
        assert c._pending == {}


async def test_client_order_ids_fit_for_the_longest_account() -> None:
    seen: list[str] = []

    def h(m: Any) -> list[Any]:
        seen.append(m.client_order_id)
        return [_er(m.client_order_id, 1, "new")]

    async with fake_gateway(h) as ep, ExchangeClient("a" * 64, gateway=ep) as c:
        ack = await asyncio.wait_for(c.create_order(SYM, "buy", "limit", 5, 100), FAST)
        assert ack.exec_type == "new"
        ids = {c.next_client_order_id() for _ in range(1000)} | set(seen)
        assert len(ids) == 1001 and max(map(len, ids)) <= 64
        other = ExchangeClient("a" * 64, gateway=ep)
        assert other.next_client_order_id() != seen[0]  # two sessions never share ids


async def test_goodbye_fails_requests_and_ends_reports() -> None:
    bye = [Goodbye(reason="bye")]
    async with fake_gateway(lambda m: bye) as ep, ExchangeClient("alice", gateway=ep) as c:
        reports = c.reports()
        with pytest.raises(SessionClosed):
            await asyncio.wait_for(c.create_order(SYM, "buy", "limit", 5, 100), FAST)
        with pytest.raises(StopAsyncIteration):
            await asyncio.wait_for(anext(reports), FAST)
        with pytest.raises(SessionClosed):
            await c.create_order(SYM, "buy", "limit", 5, 100)


async def test_close_ends_reports_after_the_queued_ones() -> None:
    async with fake_gateway(lambda m: [_er(m.client_order_id, 1, "new")]) as ep:
        c = await ExchangeClient("alice", gateway=ep).connect()
        await asyncio.wait_for(c.create_order(SYM, "buy", "limit", 5, 100), FAST)
        await c.close()
        got = [r.exec_type async for r in c.reports()]
        assert got == ["new"]


async def test_connect_times_out_without_a_logon_reply() -> None:
    async with fake_gateway(lambda m: [], logon=False) as ep:
        c = ExchangeClient("alice", gateway=ep)
        with pytest.raises(ClientError, match="no logon reply"):
            await asyncio.wait_for(c.connect(timeout=0.05), FAST)
        assert c.closed


async def test_abandoned_snapshot_reply_is_not_given_to_the_next_request() -> None:
    snap = zmq.asyncio.Context.instance().socket(zmq.ROUTER)
    snap.setsockopt(zmq.LINGER, 0)
    snap.bind("tcp://127.0.0.1:*")
    md = MarketDataClient(snapshot=snap.getsockopt_string(zmq.LAST_ENDPOINT))
    try:
        first = asyncio.create_task(md.fetch_order_book("AAA"))
        ident, _ = await asyncio.wait_for(snap.recv_multipart(), FAST)
        first.cancel()  # the caller gives up ...
        await asyncio.gather(first, return_exceptions=True)
        late = encode_batch([BookSnapshot(symbol="AAA", seq=1)])
        await snap.send_multipart([ident, late])  # ... and the reply comes late
        second = asyncio.create_task(md.fetch_order_book("BBB"))
        ident, _ = await asyncio.wait_for(snap.recv_multipart(), FAST)
        await snap.send_multipart([ident, encode_batch([BookSnapshot(symbol="BBB", seq=2)])])
        assert (await asyncio.wait_for(second, FAST)).symbol == "BBB"
        # An unanswered request times out, and the one after it still gets its own answer.
        with pytest.raises(ClientError, match="no snapshot reply"):
            await md.fetch_order_book("CCC", timeout=0.05)
        ident, _ = await asyncio.wait_for(snap.recv_multipart(), FAST)  # CCC, never answered
        third = asyncio.create_task(md.fetch_order_book("DDD"))
        ident, _ = await asyncio.wait_for(snap.recv_multipart(), FAST)
        await snap.send_multipart([ident, encode_batch([BookSnapshot(symbol="DDD", seq=3)])])
        assert (await asyncio.wait_for(third, FAST)).symbol == "DDD"
    finally:
        await md.close()
        snap.close()


async def test_watch_skips_malformed_frames_and_ends_on_goodbye() -> None:
    ctx = zmq.asyncio.Context.instance()
    pub = ctx.socket(zmq.XPUB)
    pub.setsockopt(zmq.LINGER, 0)
    pub.bind("tcp://127.0.0.1:*")
    md = MarketDataClient(
        feed=pub.getsockopt_string(zmq.LAST_ENDPOINT), snapshot="tcp://127.0.0.1:1"
    )
    try:
        trades = md.watch_trades(SYM)
        nxt = asyncio.ensure_future(anext(trades))
        subs = set()
        while len(subs) < 2:  # the stream's topic and the goodbye topic
            subs.add(await asyncio.wait_for(pub.recv(), FAST))
        assert subs == {b"\x01" + f"{SYM}|trades".encode(), b"\x01*|goodbye"}
        topic = f"{SYM}|trades".encode()
        trade = Trade(symbol=SYM, trade_id=1, seq=1, price=100, qty=2, aggressor_side="buy")
        await pub.send_multipart([topic, b"\xc1 not msgpack"])
        await pub.send_multipart([topic])
        await pub.send_multipart([topic, encode_batch([trade])])
        assert (await asyncio.wait_for(nxt, FAST)).trade_id == 1
        await pub.send_multipart([b"*|goodbye", encode_batch([Goodbye(reason="bye")])])
        with pytest.raises(StopAsyncIteration):
            await asyncio.wait_for(anext(trades), FAST)
        assert md._subs == []
    finally:
        await md.close()
        pub.close()
