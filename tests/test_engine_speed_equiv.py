"""Pins the behaviour the engine's hot-path shortcuts must keep (see Engine.submit/cancel).

The fast paths claim a client order id with one ``setdefault``, build a resting Order without
calling ``Order.__init__``, rest a partly filled limit order without ``_after_take``/``_rest``,
and answer a cancel of an unknown order without building an output list first. Each test checks
the observable result of one of them against what the slow, general path would give.
"""

from __future__ import annotations

from engine_helpers import SYM, make, of

from exchange.book import Order
from exchange.constants import RejectReason
from exchange.events import view

R = RejectReason


def test_duplicate_client_order_id_is_refused_without_using_an_order_id() -> None:
    engine = make()
    first = engine.submit(SYM, "buy", "limit", 5, 9_990, "a", "c1", ts=1)
    dup = engine.submit(SYM, "sell", "limit", 5, 10_010, "a", "c1", ts=2)
    assert [view(e).reason for e in dup] == [R.DUPLICATE_CLIENT_ORDER_ID.value]
    assert engine.order_id_for("a", "c1") == view(first[0]).order_id == 1
    # Another account may use the same client id, and the refused order consumed no id.
    other = engine.submit(SYM, "sell", "limit", 5, 10_010, "b", "c1", ts=3)
    assert view(other[0]).order_id == 2 and engine.order_id_for("b", "c1") == 2


def test_unhashable_client_order_id_is_refused_and_claims_nothing() -> None:
    engine = make()
    bad = engine.submit(SYM, "buy", "limit", 5, 9_990, "a", ["x"], ts=1)
    assert [view(e).reason for e in bad] == [R.INVALID_CLIENT_ORDER_ID.value]
    good = engine.submit(SYM, "buy", "limit", 5, 9_990, "a", "x", ts=2)
    assert view(good[0]).order_id == 1


def test_resting_order_has_every_field_of_a_constructed_one() -> None:
    engine = make()
    engine.submit(SYM, "buy", "limit", 7, 9_990, "a", "c1", "DAY", ts=42)
    built = engine.order(1)
    expected = Order(1, "c1", "a", SYM, "buy", "limit", 9_990, 7, "DAY", False, "cancel_newest", 42)
    assert {s: getattr(built, s) for s in Order.__slots__} == {
        s: getattr(expected, s) for s in Order.__slots__
    }


def test_partly_filled_limit_order_rests_its_remainder() -> None:
    engine = make()
    engine.submit(SYM, "sell", "limit", 3, 10_000, "maker", "m1", ts=1)
    events = engine.submit(SYM, "buy", "limit", 10, 10_000, "taker", "t1", ts=2)
    assert [e[0] for e in events] == ["accepted", "trade", "book", "book"]
    seqs = [e[1] for e in events]
    assert seqs == list(range(seqs[0], seqs[0] + 4))  # no gap: the rest re-reads the sequence
    rest = view(events[-1])
    assert (rest.side, rest.price, rest.qty, rest.count) == ("buy", 10_000, 7, 1)
    taker = engine.order(view(events[0]).order_id)
    assert (taker.qty, taker.leaves, taker.cum) == (10, 7, 3)
    assert engine.level_orders(SYM, "buy", 10_000) == [taker]
    cancelled = engine.cancel("taker", client_order_id="t1", ts=3)
    assert [(view(e).kind, view(e).seq) for e in cancelled] == [
        ("cancelled", seqs[-1] + 1),
        ("book", seqs[-1] + 2),
    ]
    assert of(cancelled, "cancelled")[0].cancelled_qty == 7
    assert engine.depth(SYM) == ([], [])


def test_cancel_rejects_name_the_order_they_could_find() -> None:
    engine = make()
    engine.submit(SYM, "sell", "limit", 3, 10_000, "maker", "m1", ts=1)
    engine.submit(SYM, "buy", "limit", 3, 10_000, "taker", "t1", ts=2)  # fills m1 and t1
    for account, clid, order_id in (("maker", "m1", 1), ("taker", "t1", 2), ("nobody", "z", 0)):
        (event,) = engine.cancel(account, client_order_id=clid, ts=3)
        rej = view(event)
        assert (rej.kind, rej.reason, rej.order_id, rej.client_order_id) == (
            "rejected",
            R.UNKNOWN_ORDER.value,
            order_id,
            clid,
        )
    (event,) = engine.cancel(["unhashable"], client_order_id="m1", ts=4)
    assert view(event).reason == R.UNKNOWN_ORDER.value


def test_cancel_by_order_id_of_another_account_is_as_unknown() -> None:
    engine = make()
    engine.submit(SYM, "buy", "limit", 5, 9_990, "a", "c1", ts=1)
    (event,) = engine.cancel("b", order_id=1, ts=2)
    (unknown,) = engine.cancel("b", order_id=999, ts=2)
    assert event[:3] + event[4:] == unknown[:3] + unknown[4:]  # only the echoed id differs
    assert view(event).reason == R.UNKNOWN_ORDER.value
    assert engine.order(1).leaves == 5
    assert [o.order_id for o in engine.open_orders("a")] == [1]
