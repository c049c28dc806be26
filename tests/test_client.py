"""The client SDK against a real exchange process, and its pure local book."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest

from agents.client import ExchangeClient, LocalBook, LogonRefused, MarketDataClient
from agents.settings import ClientSettings
from deploy.launch import Proc, start_exchange
from exchange.protocol import BookDelta, BookSnapshot
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
    assert "9876" in out.stdout and "AGR" in out.stdout
