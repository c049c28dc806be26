"""The exchange as a real process on 127.0.0.1: order entry, feed, snapshots, journal, hardening."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from pathlib import Path

import msgpack
import pytest
import zmq
from wire import FeedSubscriber, SnapshotClient, WireClient, apply_deltas, book_of

from deploy.launch import Proc, start_exchange
from exchange.journal import Journal
from exchange.protocol import (
    CancelOrder,
    Heartbeat,
    Logon,
    MassCancel,
    NewOrder,
    OpenOrdersRequest,
    ReplaceOrder,
    SnapshotRequest,
    TradeReplayRequest,
)

SYM = "AGR"
SYMBOLS = json.dumps([
    {"symbol": SYM, "reference_price": 10_000, "band_bps": 1_000, "max_qty": 1_000_000},
    {"symbol": "AUC", "reference_price": 5_000, "opening_auction": True},
])  # fmt: skip


@pytest.fixture
def ctx() -> Iterator[zmq.Context]:
    context = zmq.Context()
    yield context
    context.destroy(linger=0)


@pytest.fixture
def exchange(tmp_path: Path) -> Iterator[Proc]:
    proc = start_exchange(tmp_path / "ex", AGORA_EXCHANGE_SYMBOLS=SYMBOLS)
    yield proc
    err = proc.stop()
    assert proc.returncode == 0, err[-3000:]


def limit(clid: str, side: str, qty: int, price: int, **kw: object) -> NewOrder:
    return NewOrder(
        client_order_id=clid, symbol=kw.pop("symbol", SYM), side=side, order_type="limit",
        qty=qty, price=price, **kw,
    )  # fmt: skip


# ------------------------------------------------------------------------------ order entry


def test_order_round_trip_fills_reach_both_sides(exchange: Proc, ctx: zmq.Context) -> None:
    gw = exchange.ready["gateway"]
    alice, bob = WireClient(ctx, gw, "alice"), WireClient(ctx, gw, "bob")
    alice.send(limit("a1", "sell", 10, 10_010))
    ack = alice.wait_for_order("a1", "new")
    assert (ack.order_id > 0, ack.leaves_qty, ack.account) == (True, 10, "alice")

    bob.send(limit("b1", "buy", 4, 10_020))
    assert bob.wait_for_order("b1", "new").leaves_qty == 4
    taker = bob.wait_for_order("b1", "trade")
    maker = alice.wait_for_order("a1", "trade")  # a resting order's fill reaches its owner
    assert (taker.last_qty, taker.last_price, taker.liquidity) == (4, 10_010, "taker")
    assert (maker.last_qty, maker.leaves_qty, maker.liquidity) == (4, 6, "maker")
    assert maker.trade_id == taker.trade_id
    assert taker.order_status == "filled" and maker.order_status == "partially_filled"

    # Replace: quantity down keeps the order; then cancel it.
    alice.send(ReplaceOrder(client_order_id="a1-r", symbol=SYM, orig_client_order_id="a1", qty=8))
    replaced = alice.wait_for_order("a1", "replaced")
    assert (replaced.qty, replaced.cum_qty, replaced.leaves_qty) == (8, 4, 4)
    alice.send(CancelOrder(client_order_id="a1-c", symbol=SYM, order_id=ack.order_id))
    cancelled = alice.wait_for_order("a1", "canceled")
    assert (cancelled.cancelled_qty, cancelled.leaves_qty, cancelled.qty) == (4, 0, 4)

    # The account is the session's: bob cannot cancel alice's order even by naming it.
    alice.send(limit("a2", "sell", 1, 10_030))
    a2 = alice.wait_for_order("a2", "new")
    bob.send(CancelOrder(client_order_id="b-c", symbol=SYM, order_id=a2.order_id, account="alice"))
    refused = bob.wait(lambda m: m.type == "cancel_reject")
    assert (refused.reject_reason, refused.client_order_id) == ("unknown_order", "b-c")


def test_open_orders_and_mass_cancel(exchange: Proc, ctx: zmq.Context) -> None:
    carol = WireClient(ctx, exchange.ready["gateway"], "carol")
    for i in range(3):
        carol.send(limit(f"c{i}", "buy", 1 + i, 9_990 - i))
        carol.wait_for_order(f"c{i}", "new")
    carol.send(OpenOrdersRequest(request_id="q1"))
    listing = carol.wait(lambda m: m.type == "open_orders")
    assert [o.client_order_id for o in listing.orders] == ["c0", "c1", "c2"]
    assert [o.leaves_qty for o in listing.orders] == [1, 2, 3]
    carol.send(MassCancel(client_order_id="kill", symbol=SYM))
    report = carol.wait(lambda m: m.type == "mass_cancel_report")
    assert (report.client_order_id, report.cancelled) == ("kill", 3)
    assert sum(1 for m in carol.inbox if getattr(m, "exec_type", "") == "canceled") == 3
    carol.send(OpenOrdersRequest(request_id="q2"))
    assert carol.wait(lambda m: m.type == "open_orders").orders == []


# fmt: off
ENGINE_REJECTS = [
    # (setup orders, the request, expected reason)
    ([], limit("x", "buy", 1, 100, symbol="NOPE"), "unknown_symbol"),
    ([], limit("x", "buy", 1, 50_000), "price_outside_band"),
    ([], limit("x", "buy", 2_000_000, 10_000), "quantity_too_large"),
    (
        [limit("s", "sell", 1, 10_001)],
        limit("x", "buy", 1, 10_001, post_only=True),
        "post_only_would_take",
    ),
    ([limit("x", "buy", 1, 9_000)], limit("x", "buy", 1, 9_000), "duplicate_client_order_id"),
    (
        [],
        limit("x", "buy", 1, 5_000, symbol="AUC", time_in_force="IOC"),
        "tif_not_allowed_in_auction",
    ),
    ([], CancelOrder(client_order_id="c", symbol=SYM, order_id=999_999), "unknown_order"),
    ([], CancelOrder(client_order_id="c", symbol=SYM, orig_client_order_id="zz"), "unknown_order"),
    (
        [limit("o", "buy", 5, 9_000)],
        ReplaceOrder(client_order_id="r", symbol=SYM, orig_client_order_id="o", qty=5),
        "replace_changes_nothing",
    ),
    ([], MassCancel(client_order_id="m", symbol="NOPE"), "unknown_symbol"),
]
# fmt: on


@pytest.mark.parametrize(("setup", "request_", "reason"), ENGINE_REJECTS, ids=lambda v: str(v)[:30])
def test_every_engine_reject_reaches_the_client(
    exchange: Proc, ctx: zmq.Context, setup: list, request_: object, reason: str
) -> None:
    dave = WireClient(ctx, exchange.ready["gateway"], "dave")
    for order in setup:
        dave.send(order)
        dave.wait_for_order(order.client_order_id, "new")
    dave.send(request_)
    reply = dave.wait(lambda m: getattr(m, "reject_reason", None) is not None)
    assert reply.reject_reason == reason
    assert reply.type == ("execution_report" if isinstance(request_, NewOrder) else "cancel_reject")


def test_foreign_order_reject_is_unknown_order(exchange: Proc, ctx: zmq.Context) -> None:
    gw = exchange.ready["gateway"]
    eve, mallory = WireClient(ctx, gw, "eve"), WireClient(ctx, gw, "mallory")
    eve.send(limit("e1", "buy", 1, 9_500))
    oid = eve.wait_for_order("e1", "new").order_id
    mallory.send(ReplaceOrder(client_order_id="m1", symbol=SYM, order_id=oid, qty=9))
    assert mallory.wait(lambda m: m.type == "cancel_reject").reject_reason == "unknown_order"


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"\xc1garbage", "malformed"),
        (msgpack.packb({"type": "launch_missiles", "v": 1}), "unknown_type"),
        (msgpack.packb({**limit("q", "buy", 1, 1).model_dump(), "v": 99}), "unsupported_version"),
        (msgpack.packb({**limit("q", "buy", 1, 1).model_dump(), "qty": 0}), "invalid_message"),
        (msgpack.packb({**limit("q", "buy", 1, 1).model_dump(), "qty": "5"}), "invalid_message"),
        (b"\x00" * 70_000, "message_too_large"),
        (msgpack.packb(Heartbeat().model_dump()), "unexpected_message"),
    ],
    ids=["garbage", "unknown-type", "version", "qty-0", "qty-str", "oversized", "wrong-kind"],
)
def test_protocol_rejects_say_why(
    exchange: Proc, ctx: zmq.Context, payload: bytes, reason: str
) -> None:
    frank = WireClient(ctx, exchange.ready["gateway"], "frank")
    frank.send_raw(payload)
    assert frank.wait(lambda m: m.type == "protocol_reject").reason == reason


def test_requests_before_logon_and_floods_are_refused(tmp_path: Path, ctx: zmq.Context) -> None:
    proc = start_exchange(
        tmp_path / "ex", AGORA_EXCHANGE_RATE_LIMIT="1", AGORA_EXCHANGE_RATE_BURST="5"
    )
    try:
        anon = WireClient(ctx, proc.ready["gateway"])
        anon.send(limit("n1", "buy", 1, 9_900))
        assert anon.wait(lambda m: m.type == "protocol_reject").reason == "not_logged_on"

        greedy = WireClient(ctx, proc.ready["gateway"], "greedy")
        greedy.send_batch([limit(f"g{i}", "buy", 1, 9_000 + i) for i in range(20)])
        reports = [greedy.wait(lambda m: m.type == "execution_report") for _ in range(20)]
        reasons = [r.reject_reason for r in reports]
        assert reasons.count(None) >= 5 and "rate_limited" in reasons  # burst 5, then refused
        assert all(r in (None, "rate_limited") for r in reasons)
    finally:
        proc.stop()


# ------------------------------------------------------------------------------ feed


def _random_flow(clients: list[WireClient], n: int, seed: int) -> None:
    """Random limit/market/cancel/replace traffic; waits for each request's answer."""
    rng = random.Random(seed)
    live: dict[int, list[str]] = {i: [] for i in range(len(clients))}
    for k in range(n):
        i = rng.randrange(len(clients))
        c = clients[i]
        r = rng.random()
        if r < 0.6 or not live[i]:
            clid = f"o{k}"
            side = rng.choice(["buy", "sell"])
            price = (
                10_000 + (rng.randint(1, 15) * (-1 if side == "buy" else 1)) + rng.randint(-3, 3)
            )
            c.send(limit(clid, side, rng.randint(1, 20), price))
            c.wait(lambda m, clid=clid: getattr(m, "client_order_id", None) == clid)
            live[i].append(clid)
        elif r < 0.85:
            clid = live[i].pop(rng.randrange(len(live[i])))
            c.send(CancelOrder(client_order_id=f"x{k}", symbol=SYM, orig_client_order_id=clid))
            c.wait(lambda m, clid=clid, k=k: getattr(m, "client_order_id", None) in (clid, f"x{k}"))
        else:
            clid = rng.choice(live[i])
            c.send(ReplaceOrder(
                client_order_id=f"r{k}", symbol=SYM, orig_client_order_id=clid,
                qty=rng.randint(1, 30), price=10_000 + rng.randint(-12, 12),
            ))  # fmt: skip
            c.wait(lambda m, clid=clid, k=k: getattr(m, "client_order_id", None) in (clid, f"r{k}"))


def test_feed_rebuilds_the_book_and_late_joiners_converge(exchange: Proc, ctx: zmq.Context) -> None:
    r = exchange.ready
    def has_delta(sub: FeedSubscriber) -> bool:
        return any(m.type == "book_delta" for _, m in sub.messages)

    early = FeedSubscriber(ctx, r["feed"], [f"{SYM}|"])
    snaps = SnapshotClient(ctx, r["snapshot"])
    clients = [WireClient(ctx, r["gateway"], f"trader{i}") for i in range(4)]
    # A subscription takes effect asynchronously (the slow joiner): as in the Clone pattern,
    # a subscriber takes its snapshot once its subscription has delivered something, so the
    # deltas it holds reach back to the snapshot whatever the machine's load.
    _random_flow(clients, 10, seed=1)
    early.poll_until(has_delta)
    start = snaps.snapshot(SYM)
    _random_flow(clients, 140, seed=3)

    late = FeedSubscriber(ctx, r["feed"], [f"{SYM}|book"])
    _random_flow(clients, 10, seed=2)
    late.poll_until(has_delta)
    late_snap = snaps.snapshot(SYM)
    _random_flow(clients, 140, seed=4)
    final = snaps.snapshot(SYM)
    assert final.seq > late_snap.seq > start.seq

    def seen_book_seq(sub: FeedSubscriber, seq: int) -> bool:
        return any(m.type == "book_delta" and m.seq >= seq for _, m in sub.messages)

    for sub, snap in ((early, start), (late, late_snap)):
        sub.poll_until(lambda s: seen_book_seq(s, final.seq))
        deltas = [m for t, m in sub.messages if t == f"{SYM}|book" and m.type == "book_delta"]
        # The late joiner may have subscribed after its snapshot's seq: only then would it
        # need a newer snapshot; here the deltas it holds must reach back to the snapshot.
        assert deltas[0].seq <= snap.seq + 1, "subscriber missed deltas after its snapshot"
        assert apply_deltas(snap, deltas) == book_of(final)

    # Every stream's sequence numbers are contiguous; trades carry prices and ids.
    for channel in ("trades", "tob", "book"):
        seqs = [
            m.seq for t, m in early.messages if t == f"{SYM}|{channel}" and m.type != "heartbeat"
        ]
        assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), channel
    trades = [m for t, m in early.messages if m.type == "trade"]
    assert trades and all(t.qty > 0 for t in trades)


def test_drop_copy_stream_and_replay_agree(exchange: Proc, ctx: zmq.Context) -> None:
    r = exchange.ready
    drop = FeedSubscriber(ctx, r["dropcopy"], ["trades", "heartbeat"])
    # Wait until the subscription is live: heartbeats arrive once it is.
    drop.poll_until(lambda s: any(m.type == "heartbeat" for _, m in s.messages))
    clients = [WireClient(ctx, r["gateway"], f"t{i}") for i in range(3)]
    _random_flow(clients, 200, seed=3)
    snaps = SnapshotClient(ctx, r["snapshot"])
    replayed = snaps.all_trades()
    assert replayed and [t.trade_id for t in replayed] == list(range(1, len(replayed) + 1))
    drop.poll_until(
        lambda s: any(
            m.type == "trade_capture" and m.trade_id == len(replayed) for _, m in s.messages
        )
    )
    streamed = [m for _, m in drop.messages if m.type == "trade_capture"]
    assert streamed == replayed
    assert {t.buy_account for t in streamed} <= {"t0", "t1", "t2"}


def test_snapshot_service_rejects_unknown_symbols_and_junk(
    exchange: Proc, ctx: zmq.Context
) -> None:
    snaps = SnapshotClient(ctx, exchange.ready["snapshot"])
    assert snaps.request(SnapshotRequest(symbol="NOPE")).reason == "unknown_symbol"
    assert snaps.request(Logon(account="x")).reason == "unexpected_message"
    page = snaps.request(TradeReplayRequest(from_trade_id=1))
    assert (page.trades, page.end_trade_id) == ([], 0)
    snaps.sock.send(b"\xff\x00junk")
    assert msgpack.unpackb(snaps.sock.recv())[0]["reason"] == "malformed"
    assert snaps.snapshot(SYM).bids == []


# ------------------------------------------------------------------------------ durability


def test_kill_9_and_restart_restores_books_orders_and_sequences(
    tmp_path: Path, ctx: zmq.Context
) -> None:
    data = tmp_path / "ex"
    proc = start_exchange(data, AGORA_EXCHANGE_SYMBOLS=SYMBOLS)
    r = proc.ready
    clients = [WireClient(ctx, r["gateway"], f"k{i}") for i in range(3)]
    _random_flow(clients, 200, seed=4)
    snaps = SnapshotClient(ctx, r["snapshot"])
    before = snaps.snapshot(SYM)
    trades_before = snaps.all_trades()
    opens_before = []
    for c in clients:
        c.send(OpenOrdersRequest(request_id="before"))
        opens_before.append(c.wait(lambda m: m.type == "open_orders").orders)
    # One more acknowledged order, then kill -9 with no chance to flush anything else.
    clients[0].send(limit("last", "buy", 3, 9_950))
    last_ack = clients[0].wait_for_order("last", "new")
    proc.kill()
    for c in clients:
        c.close()
    snaps.close()

    ports = {k: v for k, v in r.items() if k in ("gateway", "feed", "snapshot", "dropcopy")}
    again = start_exchange(data, ports, AGORA_EXCHANGE_SYMBOLS=SYMBOLS)
    try:
        snaps = SnapshotClient(ctx, again.ready["snapshot"])
        after = snaps.snapshot(SYM)
        expected = book_of(before)
        level = expected["buy"].get(9_950, (0, 0))
        expected["buy"][9_950] = (level[0] + 3, level[1] + 1)
        assert book_of(after) == expected
        assert after.seq == before.seq + 1  # the acknowledged order's book delta
        assert snaps.all_trades() == trades_before
        clients = [WireClient(ctx, again.ready["gateway"], f"k{i}") for i in range(3)]
        for i, c in enumerate(clients):
            c.send(OpenOrdersRequest(request_id="after"))
            orders = c.wait(lambda m: m.type == "open_orders").orders
            if i == 0:
                assert orders[-1].order_id == last_ack.order_id
                orders = orders[:-1]
            assert orders == opens_before[i]
        # Ids continue where they stopped: no reuse.
        clients[1].send(limit("next", "sell", 1, 10_500))
        assert clients[1].wait_for_order("next", "new").order_id == last_ack.order_id + 1
    finally:
        assert again.stop() is not None
    assert again.returncode == 0


def test_torn_journal_tail_is_dropped_cleanly(tmp_path: Path, ctx: zmq.Context) -> None:
    data = tmp_path / "ex"
    proc = start_exchange(data)
    c = WireClient(ctx, proc.ready["gateway"], "t")
    c.send(limit("a", "buy", 1, 9_900))
    c.wait_for_order("a", "new")
    proc.stop()
    journal = data / "exchange.journal"
    original = journal.read_bytes()
    with open(journal, "ab") as f:
        f.write(b"\x40\x00\x00\x00\x12\x34")  # a record header promising 64 bytes, cut short
    again = start_exchange(data)
    try:
        snaps = SnapshotClient(ctx, again.ready["snapshot"])
        assert snaps.snapshot("AGR").bids == [(9_900, 1, 1)]
    finally:
        err = again.stop()
    assert "journal_torn_tail_dropped" in err
    # The torn bytes are gone; what follows the good records is the new start's epoch record.
    after = journal.read_bytes()
    assert after.startswith(original)
    records = list(Journal(journal).replay())
    assert records[-1] == ["E", 1] and records.count(["E", 1]) == 1


# ------------------------------------------------------------------------------ hardening


def test_fuzzing_never_crashes_the_gateway_or_touches_a_book(
    exchange: Proc, ctx: zmq.Context
) -> None:
    rng = random.Random(5)
    r = exchange.ready
    fuzzer = WireClient(ctx, r["gateway"], "fuzz")
    honest = WireClient(ctx, r["gateway"], "honest")
    honest.send(limit("h1", "sell", 5, 10_050))
    honest.wait_for_order("h1", "new")
    base = limit("f", "buy", 1, 9_000).model_dump()
    junk_values = [None, -1, 0, 2**64 - 1, "", "x" * 5000, 1.5, [], {}, True, b"\x00", "buy"]
    for i in range(400):
        if i % 2:
            payload = rng.randbytes(rng.randint(0, 200))
        else:
            m = dict(base)
            key = rng.choice([*m, "extra"])
            m[key] = rng.choice(junk_values)
            payload = msgpack.packb(m if rng.random() < 0.8 else [m, m], use_bin_type=True)
        fuzzer.send_raw(payload)
    # A last honest request on the fuzzer's own connection: when its answer arrives, every
    # fuzz frame before it has been handled.
    fuzzer.send(limit("ok", "buy", 1, 9_001))
    fuzzer.wait_for_order("ok", "new")
    kinds = {m.type for m in fuzzer.inbox}
    assert kinds <= {"protocol_reject", "execution_report"}
    # The book holds the honest order and the fuzzer's valid one only; matching still works.
    snap = SnapshotClient(ctx, r["snapshot"]).snapshot(SYM)
    fuzz_orders = sum(
        1 for m in fuzzer.inbox if m.type == "execution_report" and m.exec_type == "new"
    )
    assert sum(c for _, _, c in snap.bids) + sum(c for _, _, c in snap.asks) == 2 + fuzz_orders
    buyer = WireClient(ctx, r["gateway"], "buyer")
    buyer.send(limit("b1", "buy", 5, 10_050))
    assert buyer.wait_for_order("b1", "trade").last_qty == 5
    assert honest.wait_for_order("h1", "trade").leaves_qty == 0
    assert exchange.returncode is None


def test_sigterm_says_goodbye_and_exits_cleanly(tmp_path: Path, ctx: zmq.Context) -> None:
    proc = start_exchange(tmp_path / "ex")
    feed = FeedSubscriber(ctx, proc.ready["feed"], ["*|"])
    feed.poll_until(lambda s: any(m.type == "heartbeat" for _, m in s.messages))
    client = WireClient(ctx, proc.ready["gateway"], "bye")
    err = proc.stop()
    assert proc.returncode == 0, err
    feed.poll_until(lambda s: any(m.type == "goodbye" for _, m in s.messages))
    assert client.wait(lambda m: m.type == "goodbye").reason
    assert "exchange_stopped" in err


def test_metrics_endpoint_counts_messages_and_rejects(tmp_path: Path, ctx: zmq.Context) -> None:
    import socket
    import urllib.request

    with socket.socket() as s:  # a free port for the HTTP endpoint (zmq ports use "*")
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = start_exchange(tmp_path / "ex", AGORA_EXCHANGE_METRICS_PORT=str(port))
    try:
        c = WireClient(ctx, proc.ready["gateway"], "m")
        c.send(limit("a", "buy", 1, 50_000))  # outside the band
        assert c.wait_for_order("a", "rejected").reject_reason == "price_outside_band"
        c.send(limit("b", "buy", 1, 9_990))
        c.wait_for_order("b", "new")
        with urllib.request.urlopen(proc.ready["metrics"], timeout=20) as response:
            text = response.read().decode()
        assert 'agora_exchange_messages_total{type="new_order"} 2.0' in text
        assert 'agora_exchange_rejects_total{reason="price_outside_band"} 1.0' in text
        assert "agora_exchange_batch_seconds_bucket" in text
    finally:
        proc.stop()
