"""Unit tests of the matching engine in continuous trading: one test per rule."""

from __future__ import annotations

import pytest
from engine_helpers import (
    SYM,
    buy,
    cancels,
    kinds,
    make,
    of,
    oid,
    queue,
    reject_reason,
    sell,
    trades,
)

from exchange.constants import CancelReason, RejectReason
from exchange.engine import Engine
from exchange.symbols import SymbolSpec

R = RejectReason
C = CancelReason


# --------------------------------------------------------------------------- validation
# (request kwargs for Engine.submit, expected reason); each breaks exactly one rule.
_BASE = {"symbol": SYM, "side": "buy", "order_type": "limit", "qty": 5, "price": 10_000}
_NEW_ORDER_REJECTS = [
    ({"symbol": "NOPE"}, R.UNKNOWN_SYMBOL),
    ({"side": "hold"}, R.INVALID_SIDE),
    ({"side": "BUY"}, R.INVALID_SIDE),
    ({"order_type": "stop"}, R.INVALID_ORDER_TYPE),
    ({"tif": "GTD"}, R.INVALID_TIF),
    ({"stp": "cancel_everything"}, R.INVALID_STP),
    ({"qty": 0}, R.INVALID_QUANTITY),
    ({"qty": -3}, R.INVALID_QUANTITY),
    ({"qty": "5"}, R.INVALID_QUANTITY),
    ({"qty": True}, R.INVALID_QUANTITY),
    ({"qty": 1.5}, R.QUANTITY_OFF_LOT),
    ({"qty": 10**9 + 1}, R.QUANTITY_TOO_LARGE),
    ({"price": 0}, R.INVALID_PRICE),
    ({"price": -10}, R.INVALID_PRICE),
    ({"price": "10000"}, R.INVALID_PRICE),
    ({"price": 100.5}, R.PRICE_OFF_TICK),
    ({"price": None}, R.MISSING_PRICE),
    ({"order_type": "market"}, R.PRICE_ON_MARKET),
    ({"order_type": "market", "price": None, "post_only": True}, R.POST_ONLY_MARKET),
]


@pytest.mark.parametrize(
    ("change", "reason"), _NEW_ORDER_REJECTS, ids=[f"{r.value}-{c}" for c, r in _NEW_ORDER_REJECTS]
)
def test_invalid_new_order_is_rejected_with_its_reason(change, reason):
    engine = make()
    events = engine.submit(**{**_BASE, "account": "a", **change})
    assert reject_reason(events) == reason
    assert engine.depth(SYM) == ([], [])
    assert engine.snapshot_seq(SYM) == 0


def test_reject_event_fields():
    engine = make()
    events = engine.submit(SYM, "buy", "limit", 0, 100, account="a", client_order_id="c1")
    (ev,) = of(events, "rejected")
    assert (ev.kind, ev.seq, ev.symbol, ev.order_id) == ("rejected", 0, SYM, 0)
    assert (ev.client_order_id, ev.account, ev.request) == ("c1", "a", "new")


def test_quantity_above_symbol_max_is_rejected_and_max_itself_accepted():
    engine = make(max_qty=100)
    assert reject_reason(buy(engine, 101, 10_000)) == R.QUANTITY_TOO_LARGE
    assert reject_reason(buy(engine, 100, 10_000)) is None


def test_post_only_that_would_take_is_rejected():
    engine = make()
    sell(engine, 5, 10_000)
    assert reject_reason(buy(engine, 1, 10_000, post_only=True)) == R.POST_ONLY_WOULD_TAKE
    assert reject_reason(buy(engine, 1, 10_001, post_only=True)) == R.POST_ONLY_WOULD_TAKE
    assert engine.depth(SYM) == ([], [(10_000, 5, 1)])


def test_post_only_that_does_not_cross_rests():
    engine = make()
    sell(engine, 5, 10_000)
    events = buy(engine, 2, 9_999, post_only=True)
    assert kinds(events) == ["accepted", "book"]
    assert engine.best_bid(SYM) == 9_999


def test_duplicate_client_order_id_is_rejected_per_account():
    engine = make()
    buy(engine, 1, 9_000, account="a", client_order_id="c1")
    assert reject_reason(buy(engine, 1, 9_001, account="a", client_order_id="c1")) == (
        R.DUPLICATE_CLIENT_ORDER_ID
    )
    # The same client order id from another account is a different key.
    assert reject_reason(buy(engine, 1, 9_001, account="z", client_order_id="c1")) is None


def test_client_order_id_stays_taken_after_the_order_is_done_until_end_of_day():
    engine = make()
    first = oid(buy(engine, 1, 9_000, account="a", client_order_id="c1"))
    engine.cancel("a", first)
    assert reject_reason(buy(engine, 1, 9_000, account="a", client_order_id="c1")) == (
        R.DUPLICATE_CLIENT_ORDER_ID
    )
    engine.end_of_day()
    assert reject_reason(buy(engine, 1, 9_000, account="a", client_order_id="c1")) is None


def test_end_of_day_keeps_client_order_ids_of_open_orders():
    engine = make()
    buy(engine, 1, 9_000, account="a", client_order_id="live")
    engine.end_of_day()
    assert reject_reason(buy(engine, 1, 9_000, account="a", client_order_id="live")) == (
        R.DUPLICATE_CLIENT_ORDER_ID
    )
    assert engine.order_id_for("a", "live") == 1


def test_new_order_on_closed_market_is_rejected():
    engine = make()
    status = of(engine.close(SYM), "status")
    assert status[0].phase == "closed"
    assert reject_reason(buy(engine, 1, 10_000)) == R.MARKET_CLOSED
    assert reject_reason(sell(engine, 1)) == R.MARKET_CLOSED


def test_cancel_still_works_on_closed_market():
    engine = make()
    order = oid(buy(engine, 1, 9_000))
    engine.close(SYM)
    assert cancels(engine.cancel("b", order)) == [(order, 1, C.USER)]


def test_reopen_into_continuous_uncrosses_a_crossed_book_first():
    engine = make(reference_price=100)
    engine.start_auction(SYM)
    buy(engine, 2, 101)
    sell(engine, 1, 99)
    engine.close(SYM)
    events = engine.reopen(SYM, auction=False)
    assert [t[:2] for t in trades(events)] == [(100, 1)]
    assert engine.phase(SYM) == "continuous"
    assert engine.depth(SYM) == ([(101, 1, 1)], [])


def test_reopen_accepts_orders_again():
    engine = make()
    engine.close(SYM)
    engine.reopen(SYM, auction=False)
    assert engine.phase(SYM) == "continuous"
    assert reject_reason(buy(engine, 1, 10_000)) is None


def test_replace_on_closed_market_is_rejected():
    """Regression: replace used to be accepted while closed (a reprice could rest crossed)."""
    engine = make()
    sell(engine, 1, 10_001)
    order = oid(buy(engine, 1, 9_999))
    engine.close(SYM)
    assert reject_reason(engine.replace("b", 1, 10_001, order_id=order)) == R.MARKET_CLOSED


@pytest.mark.parametrize("tif", ["IOC", "FOK"])
def test_ioc_and_fok_are_rejected_while_collecting_for_an_auction(tif):
    engine = make()
    engine.start_auction(SYM, 0)
    assert reject_reason(buy(engine, 1, 10_000, tif=tif)) == R.TIF_NOT_IN_AUCTION


def test_rejected_orders_get_no_order_id():
    engine = make()
    buy(engine, 0, 10_000)
    engine.submit("NOPE", "buy", "limit", 1, 1)
    assert oid(buy(engine, 1, 9_000)) == 1
    assert oid(buy(engine, 1, 9_000)) == 2


# --------------------------------------------------------------------------- cancel
def test_cancel_unknown_order_is_rejected():
    engine = make()
    assert reject_reason(engine.cancel("a", 42)) == R.UNKNOWN_ORDER
    assert reject_reason(engine.cancel("a", client_order_id="nope")) == R.UNKNOWN_ORDER
    assert reject_reason(engine.cancel("a")) == R.UNKNOWN_ORDER


def test_cancel_of_another_accounts_order_is_rejected_and_order_survives():
    engine = make()
    order = oid(buy(engine, 3, 9_000, account="a"))
    foreign = engine.cancel("mallory", order, ts=5)
    assert reject_reason(foreign) == R.UNKNOWN_ORDER
    # indistinguishable from a cancel of an id nobody has: only the echoed id differs
    unknown = engine.cancel("mallory", order + 1000, ts=5)
    assert foreign[0][:3] + foreign[0][4:] == unknown[0][:3] + unknown[0][4:]
    assert engine.order(order).leaves == 3


def test_cancel_by_client_order_id_is_per_account():
    engine = make()
    order = oid(buy(engine, 3, 9_000, account="a", client_order_id="c"))
    assert reject_reason(engine.cancel("z", client_order_id="c")) == R.UNKNOWN_ORDER
    events = engine.cancel("a", client_order_id="c")
    assert cancels(events) == [(order, 3, C.USER)]


def test_cancel_emits_cancelled_then_level_change():
    engine = make()
    first = oid(buy(engine, 3, 9_000))
    buy(engine, 2, 9_000)
    events = engine.cancel("b", first)
    assert kinds(events) == ["cancelled", "book"]
    (book,) = of(events, "book")
    assert (book.side, book.price, book.qty, book.count) == ("buy", 9_000, 2, 1)
    assert engine.order(first) is None


def test_second_cancel_is_rejected_and_changes_nothing():
    engine = make()
    order = oid(buy(engine, 3, 9_000))
    buy(engine, 1, 9_000)
    engine.cancel("b", order)
    depth, seq = engine.depth(SYM), engine.snapshot_seq(SYM)
    assert reject_reason(engine.cancel("b", order)) == R.UNKNOWN_ORDER
    assert (engine.depth(SYM), engine.snapshot_seq(SYM)) == (depth, seq)


def test_cancel_of_filled_order_is_rejected():
    engine = make()
    order = oid(sell(engine, 1, 10_000))
    buy(engine, 1, 10_000)
    assert reject_reason(engine.cancel("s", order)) == R.UNKNOWN_ORDER


def test_mass_cancel_cancels_every_order_of_the_account_only():
    engine = Engine([SymbolSpec(symbol="X"), SymbolSpec(symbol="Y")])
    a1 = oid(engine.submit("X", "buy", "limit", 1, 9_000, account="a"))
    a2 = oid(engine.submit("Y", "sell", "limit", 2, 11_000, account="a"))
    other = oid(engine.submit("X", "buy", "limit", 3, 9_000, account="b"))
    events = engine.mass_cancel("a")
    assert sorted(cancels(events)) == [(a1, 1, C.MASS_CANCEL), (a2, 2, C.MASS_CANCEL)]
    assert engine.open_orders("a") == []
    assert [o.order_id for o in engine.open_orders("b")] == [other]
    assert engine.depth("X") == ([(9_000, 3, 1)], [])
    assert engine.depth("Y") == ([], [])


def test_mass_cancel_restricted_to_one_symbol():
    engine = Engine([SymbolSpec(symbol="X"), SymbolSpec(symbol="Y")])
    oid(engine.submit("X", "buy", "limit", 1, 9_000, account="a"))
    keep = oid(engine.submit("Y", "buy", "limit", 1, 9_000, account="a"))
    engine.mass_cancel("a", symbol="X")
    assert [o.order_id for o in engine.open_orders("a")] == [keep]


def test_mass_cancel_unknown_symbol_is_rejected():
    engine = make()
    buy(engine, 1, 9_000, account="a")
    assert reject_reason(engine.mass_cancel("a", symbol="NOPE")) == R.UNKNOWN_SYMBOL
    assert len(engine.open_orders("a")) == 1


# --------------------------------------------------------------------------- matching
def test_accepted_event_fields_and_sequential_ids():
    engine = make()
    events = engine.submit(SYM, "buy", "limit", 5, 9_900, account="a", client_order_id="c", ts=7)
    (acc,) = of(events, "accepted")
    assert acc.seq == 1 and acc.order_id == 1
    assert (acc.client_order_id, acc.account) == ("c", "a")
    assert (acc.side, acc.order_type) == ("buy", "limit")
    assert (acc.price, acc.qty, acc.tif, acc.ts) == (9_900, 5, "GTC", 7)
    assert oid(sell(engine, 1, 10_100)) == 2


def test_passive_limit_order_rests_and_announces_its_level():
    engine = make()
    events = buy(engine, 5, 9_900)
    assert kinds(events) == ["accepted", "book"]
    (book,) = of(events, "book")
    assert (book.side, book.price, book.qty, book.count) == ("buy", 9_900, 5, 1)
    assert engine.best_bid(SYM) == 9_900 and engine.best_ask(SYM) is None


def test_fill_happens_at_resting_price_not_incoming_limit():
    engine = make()
    maker = oid(sell(engine, 5, 10_000))
    taker_events = buy(engine, 5, 10_050)
    taker = oid(taker_events)
    assert trades(taker_events) == [(10_000, 5, taker, maker, "buy")]
    assert engine.depth(SYM) == ([], [])


def test_trade_event_reports_leaves_of_both_orders():
    engine = make()
    maker = oid(sell(engine, 5, 10_000, account="m"))
    (t,) = of(buy(engine, 2, 10_000, account="t"), "trade")
    assert (t.sell_order_id, t.sell_account, t.sell_leaves) == (maker, "m", 3)
    assert (t.buy_account, t.buy_leaves) == ("t", 0)


def test_sweep_walks_levels_best_first_then_remainder_rests():
    engine = make()
    a = oid(sell(engine, 1, 10_002))
    b = oid(sell(engine, 1, 10_000))
    c = oid(sell(engine, 1, 10_001))
    events = buy(engine, 5, 10_001)
    taker = oid(events)
    assert trades(events) == [(10_000, 1, taker, b, "buy"), (10_001, 1, taker, c, "buy")]
    assert [(e.price, e.qty) for e in of(events, "book")] == [(10_000, 0), (10_001, 0), (10_001, 3)]
    assert engine.depth(SYM) == ([(10_001, 3, 1)], [(10_002, 1, 1)])
    assert engine.order(a).leaves == 1


def test_sell_sweep_walks_bids_highest_first():
    engine = make()
    low = oid(buy(engine, 2, 9_990))
    high = oid(buy(engine, 2, 9_995))
    events = sell(engine, 3, 9_990)
    taker = oid(events)
    assert trades(events) == [(9_995, 2, high, taker, "sell"), (9_990, 1, low, taker, "sell")]


def test_time_priority_within_a_level():
    engine = make()
    first = oid(sell(engine, 2, 10_000, account="s1"))
    second = oid(sell(engine, 2, 10_000, account="s2"))
    third = oid(sell(engine, 2, 10_000, account="s3"))
    events = buy(engine, 3, 10_000)
    taker = oid(events)
    assert trades(events) == [(10_000, 2, taker, first, "buy"), (10_000, 1, taker, second, "buy")]
    assert queue(engine, "sell", 10_000) == [second, third]


def test_limit_order_does_not_trade_through_its_limit():
    engine = make()
    sell(engine, 5, 10_001)
    events = buy(engine, 5, 10_000)
    assert trades(events) == []
    assert engine.depth(SYM) == ([(10_000, 5, 1)], [(10_001, 5, 1)])


def test_market_order_sweeps_and_its_remainder_is_cancelled():
    engine = make()
    sell(engine, 1, 10_000)
    sell(engine, 1, 10_500)
    events = buy(engine, 5)
    taker = oid(events)
    assert [t[:2] for t in trades(events)] == [(10_000, 1), (10_500, 1)]
    assert cancels(events) == [(taker, 3, C.NO_LIQUIDITY)]
    assert engine.order(taker) is None
    assert engine.depth(SYM) == ([], [])


def test_market_order_into_empty_book_is_cancelled():
    engine = make()
    events = sell(engine, 4)
    assert kinds(events) == ["accepted", "cancelled"]
    assert cancels(events) == [(oid(events), 4, C.NO_LIQUIDITY)]


def test_ioc_fills_what_it_can_and_cancels_the_rest():
    engine = make()
    sell(engine, 2, 10_000)
    sell(engine, 2, 10_010)
    events = buy(engine, 5, 10_000, tif="IOC")
    taker = oid(events)
    assert [t[:2] for t in trades(events)] == [(10_000, 2)]
    assert cancels(events) == [(taker, 3, C.IOC)]
    assert engine.best_bid(SYM) is None


def test_ioc_that_does_not_cross_never_rests():
    engine = make()
    events = buy(engine, 5, 9_000, tif="IOC")
    assert kinds(events) == ["accepted", "cancelled"]
    assert engine.depth(SYM) == ([], [])


def test_fok_fills_completely_across_levels():
    engine = make()
    sell(engine, 2, 10_000)
    sell(engine, 3, 10_001)
    events = buy(engine, 5, 10_001, tif="FOK")
    assert sum(t[1] for t in trades(events)) == 5
    assert cancels(events) == []
    assert engine.depth(SYM) == ([], [])


def test_fok_that_cannot_fill_completely_does_nothing():
    engine = make()
    sell(engine, 2, 10_000)
    sell(engine, 3, 10_002)
    events = buy(engine, 5, 10_001, tif="FOK")
    taker = oid(events)
    assert trades(events) == []
    assert cancels(events) == [(taker, 5, C.FOK)]
    assert engine.depth(SYM) == ([], [(10_000, 2, 1), (10_002, 3, 1)])


def test_fok_market_order():
    engine = make()
    sell(engine, 2, 10_000)
    assert trades(buy(engine, 3, tif="FOK")) == []
    assert [t[:2] for t in trades(buy(engine, 2, tif="FOK"))] == [(10_000, 2)]


def test_fok_counts_only_other_accounts_liquidity_under_cancel_newest():
    engine = make()
    sell(engine, 2, 10_000, account="me")
    sell(engine, 5, 10_000, account="other")
    events = buy(engine, 3, 10_000, account="me", tif="FOK")
    assert trades(events) == [] and cancels(events)[0][2] == C.FOK
    assert engine.depth(SYM) == ([], [(10_000, 7, 2)])


def test_day_orders_expire_at_end_of_day_gtc_stay():
    engine = make()
    day = oid(buy(engine, 2, 9_000, tif="DAY"))
    gtc = oid(buy(engine, 3, 9_000, tif="GTC"))
    events = engine.end_of_day(ts=99)
    assert cancels(events) == [(day, 2, C.EXPIRED)]
    assert of(events, "cancelled")[0].ts == 99
    assert engine.order(day) is None and engine.order(gtc).leaves == 3
    assert engine.depth(SYM) == ([(9_000, 3, 1)], [])


def test_day_order_trades_like_gtc_before_expiry():
    engine = make()
    sell(engine, 5, 10_000, tif="DAY")
    events = buy(engine, 2, 10_000, tif="DAY")
    assert [t[:2] for t in trades(events)] == [(10_000, 2)]


def test_trade_ids_increase_across_symbols_and_seq_is_per_symbol():
    engine = Engine([SymbolSpec(symbol="X"), SymbolSpec(symbol="Y")])
    engine.submit("X", "sell", "limit", 1, 100, account="s")
    engine.submit("Y", "sell", "limit", 1, 100, account="s")
    tx = of(engine.submit("X", "buy", "limit", 1, 100, account="b"), "trade")
    ty = of(engine.submit("Y", "buy", "limit", 1, 100, account="b"), "trade")
    assert (tx[0].trade_id, ty[0].trade_id) == (1, 2)
    assert engine.snapshot_seq("X") == engine.snapshot_seq("Y")


def test_last_trade():
    engine = make()
    assert engine.last_trade(SYM) is None
    sell(engine, 5, 10_000)
    sell(engine, 5, 10_001)
    buy(engine, 7, 10_001)
    assert engine.last_trade(SYM) == (10_001, 2)


def test_open_orders_and_order_lookup_follow_fills():
    engine = make()
    maker = oid(sell(engine, 5, 10_000, account="m"))
    assert [o.order_id for o in engine.open_orders("m")] == [maker]
    buy(engine, 2, 10_000)
    assert (engine.order(maker).cum, engine.order(maker).leaves) == (2, 3)
    buy(engine, 3, 10_000)
    assert engine.order(maker) is None and engine.open_orders("m") == []


# --------------------------------------------------------------------------- self-trade prevention
def test_stp_cancel_newest_cancels_incoming_remainder_keeps_resting():
    engine = make()
    other = oid(sell(engine, 1, 10_000, account="o"))
    mine = oid(sell(engine, 2, 10_000, account="me"))
    events = buy(engine, 5, 10_000, account="me", stp="cancel_newest")
    taker = oid(events)
    assert trades(events) == [(10_000, 1, taker, other, "buy")]
    assert cancels(events) == [(taker, 4, C.SELF_TRADE)]
    assert engine.order(mine).leaves == 2
    assert engine.best_bid(SYM) is None


def test_stp_cancel_oldest_cancels_resting_and_keeps_matching():
    engine = make()
    mine = oid(sell(engine, 2, 10_000, account="me"))
    other = oid(sell(engine, 3, 10_000, account="o"))
    events = buy(engine, 3, 10_000, account="me", stp="cancel_oldest")
    taker = oid(events)
    assert cancels(events) == [(mine, 2, C.SELF_TRADE)]
    assert trades(events) == [(10_000, 3, taker, other, "buy")]
    assert engine.depth(SYM) == ([], [])


def test_stp_cancel_oldest_remainder_rests():
    engine = make()
    mine = oid(sell(engine, 2, 10_000, account="me"))
    events = buy(engine, 3, 10_000, account="me", stp="cancel_oldest")
    assert cancels(events) == [(mine, 2, C.SELF_TRADE)]
    assert engine.depth(SYM) == ([(10_000, 3, 1)], [])


def test_stp_cancel_both_cancels_both_orders():
    engine = make()
    mine = oid(sell(engine, 2, 10_000, account="me"))
    other = oid(sell(engine, 3, 10_000, account="o"))
    events = buy(engine, 3, 10_000, account="me", stp="cancel_both")
    taker = oid(events)
    assert cancels(events) == [(mine, 2, C.SELF_TRADE), (taker, 3, C.SELF_TRADE)]
    assert trades(events) == []
    assert engine.depth(SYM) == ([], [(10_000, 3, 1)])
    assert engine.order(other).leaves == 3


def test_account_none_never_triggers_self_trade_prevention():
    engine = Engine([SymbolSpec(symbol=SYM)])
    maker = oid(engine.submit(SYM, "sell", "limit", 1, 10_000, account=None))
    events = engine.submit(SYM, "buy", "limit", 1, 10_000, account=None)
    assert trades(events) == [(10_000, 1, oid(events), maker, "buy")]


def test_different_accounts_trade_normally_under_every_stp_mode():
    for stp in ("cancel_newest", "cancel_oldest", "cancel_both"):
        engine = make()
        sell(engine, 1, 10_000, account="x")
        assert len(trades(buy(engine, 1, 10_000, account="y", stp=stp))) == 1


# --------------------------------------------------------------------------- replace
def test_replace_quantity_down_keeps_priority():
    engine = make()
    first = oid(sell(engine, 5, 10_000, account="a"))
    second = oid(sell(engine, 5, 10_000, account="c"))
    events = engine.replace("a", 2, order_id=first)
    (rep,) = of(events, "replaced")
    assert (rep.order_id, rep.price, rep.qty, rep.leaves, rep.priority_kept) == (
        first, 10_000, 2, 2, True,
    )  # fmt: skip
    assert engine.queue_position(first) == (0, 0)
    assert queue(engine, "sell", 10_000) == [first, second]
    assert engine.depth(SYM) == ([], [(10_000, 7, 2)])
    taker = oid(ev := buy(engine, 3, 10_000))
    assert trades(ev) == [(10_000, 2, taker, first, "buy"), (10_000, 1, taker, second, "buy")]


def test_replace_quantity_up_loses_priority():
    engine = make()
    first = oid(sell(engine, 5, 10_000, account="a"))
    second = oid(sell(engine, 5, 10_000, account="c"))
    (rep,) = of(engine.replace("a", 6, order_id=first), "replaced")
    assert rep.priority_kept is False and rep.leaves == 6
    assert queue(engine, "sell", 10_000) == [second, first]
    assert engine.queue_position(first) == (1, 5)
    assert engine.depth(SYM) == ([], [(10_000, 11, 2)])


def test_replace_price_change_loses_priority_even_when_moving_back():
    engine = make()
    first = oid(sell(engine, 5, 10_000, account="a"))
    second = oid(sell(engine, 5, 10_000, account="c"))
    engine.replace("a", 5, 10_001, order_id=first)
    assert engine.depth(SYM) == ([], [(10_000, 5, 1), (10_001, 5, 1)])
    engine.replace("a", 5, 10_000, order_id=first)
    assert queue(engine, "sell", 10_000) == [second, first]


def test_replace_same_price_explicitly_with_lower_qty_keeps_priority():
    engine = make()
    first = oid(sell(engine, 5, 10_000, account="a"))
    sell(engine, 5, 10_000, account="c")
    (rep,) = of(engine.replace("a", 1, 10_000, order_id=first), "replaced")
    assert rep.priority_kept is True
    assert engine.queue_position(first) == (0, 0)


def test_marketable_reprice_takes_liquidity_as_aggressor():
    engine = make()
    maker = oid(sell(engine, 2, 10_001, account="m"))
    order = oid(buy(engine, 5, 9_990, account="t"))
    events = engine.replace("t", 5, 10_001, order_id=order)
    assert kinds(events)[:3] == ["book", "replaced", "trade"]
    assert trades(events) == [(10_001, 2, order, maker, "buy")]
    assert engine.depth(SYM) == ([(10_001, 3, 1)], [])
    assert engine.order(order).cum == 2


def test_replace_of_partially_filled_order_sets_total_quantity():
    engine = make()
    order = oid(sell(engine, 5, 10_000, account="a"))
    buy(engine, 2, 10_000)
    (rep,) = of(engine.replace("a", 4, order_id=order), "replaced")
    assert (rep.qty, rep.leaves) == (4, 2)
    assert engine.depth(SYM) == ([], [(10_000, 2, 1)])


def test_replace_quantity_not_above_filled_is_rejected():
    engine = make()
    order = oid(sell(engine, 5, 10_000, account="a"))
    buy(engine, 2, 10_000)
    assert reject_reason(engine.replace("a", 2, order_id=order)) == R.REPLACE_BELOW_FILLED
    assert reject_reason(engine.replace("a", 1, order_id=order)) == R.REPLACE_BELOW_FILLED
    assert engine.order(order).leaves == 3


def test_replace_that_changes_nothing_is_rejected():
    engine = make()
    order = oid(sell(engine, 5, 10_000, account="a"))
    assert reject_reason(engine.replace("a", 5, order_id=order)) == R.REPLACE_CHANGES_NOTHING
    assert reject_reason(engine.replace("a", 5, 10_000, order_id=order)) == (
        R.REPLACE_CHANGES_NOTHING
    )


def test_replace_unknown_or_foreign_order_is_rejected():
    engine = make()
    order = oid(sell(engine, 5, 10_000, account="a"))
    assert reject_reason(engine.replace("a", 3, order_id=999)) == R.UNKNOWN_ORDER
    assert reject_reason(engine.replace("mallory", 3, order_id=order)) == R.UNKNOWN_ORDER
    assert engine.order(order).qty == 5


@pytest.mark.parametrize(
    ("qty", "price", "reason"),
    [
        (0, None, R.INVALID_QUANTITY),
        (2.5, None, R.QUANTITY_OFF_LOT),
        (10**9 + 1, None, R.QUANTITY_TOO_LARGE),
        (5, 0, R.INVALID_PRICE),
        (5, 10_000.5, R.PRICE_OFF_TICK),
        (5, 9_999, R.POST_ONLY_WOULD_TAKE),
    ],
)
def test_invalid_replace_is_rejected(qty, price, reason):
    engine = make()
    buy(engine, 1, 9_999, account="x")
    order = oid(sell(engine, 5, 10_000, account="a", post_only=True))
    assert reject_reason(engine.replace("a", qty, price, order_id=order)) == reason
    assert engine.depth(SYM) == ([(9_999, 1, 1)], [(10_000, 5, 1)])


def test_replace_by_client_order_id_keeps_the_order_id():
    engine = make()
    order = oid(buy(engine, 5, 9_000, account="a", client_order_id="c"))
    (rep,) = of(engine.replace("a", 6, 9_001, client_order_id="c"), "replaced")
    assert rep.order_id == order
    assert engine.order(order).price == 9_001
    assert cancels(engine.cancel("a", client_order_id="c")) == [(order, 6, C.USER)]


def test_replace_of_filled_order_is_rejected():
    engine = make()
    order = oid(sell(engine, 1, 10_000, account="a"))
    buy(engine, 1, 10_000)
    assert reject_reason(engine.replace("a", 3, order_id=order)) == R.UNKNOWN_ORDER


# --------------------------------------------------------------------------- lazy deletion
def test_many_cancels_at_a_level_then_matching_is_still_fifo():
    engine = make()
    ids = [oid(sell(engine, 1, 10_000, account=f"s{i}")) for i in range(100)]
    for i, order in enumerate(ids):
        if i % 10:
            engine.cancel(f"s{i}", order)
    survivors = ids[::10]
    assert engine.depth(SYM) == ([], [(10_000, 10, 10)])
    assert queue(engine, "sell", 10_000) == survivors
    events = buy(engine, 10, 10_000)
    assert [t[3] for t in trades(events)] == survivors
    assert engine.depth(SYM) == ([], [])


def test_cancel_most_of_a_long_queue_keeps_queue_positions_right():
    engine = make()
    ids = [oid(buy(engine, 2, 9_000, account="a")) for _ in range(60)]
    for order in ids[:55]:
        engine.cancel("a", order)
    assert [engine.queue_position(o) for o in ids[55:]] == [(i, 2 * i) for i in range(5)]


def test_best_prices_update_as_levels_empty_by_cancel():
    engine = make()
    bids = {p: oid(buy(engine, 1, p)) for p in (9_990, 9_995, 9_998)}
    asks = {p: oid(sell(engine, 1, p)) for p in (10_005, 10_002, 10_010)}
    engine.cancel("b", bids[9_998])
    assert engine.best_bid(SYM) == 9_995
    engine.cancel("b", bids[9_990])  # a non-best level first
    engine.cancel("b", bids[9_995])
    assert engine.best_bid(SYM) is None
    engine.cancel("s", asks[10_002])
    assert engine.best_ask(SYM) == 10_005
    engine.cancel("s", asks[10_005])
    assert engine.best_ask(SYM) == 10_010


def test_level_emptied_by_fill_then_refilled():
    engine = make()
    sell(engine, 1, 10_000)
    sell(engine, 1, 10_001)
    buy(engine, 1, 10_000)
    assert engine.best_ask(SYM) == 10_001
    again = oid(sell(engine, 2, 10_000))
    assert engine.best_ask(SYM) == 10_000
    assert queue(engine, "sell", 10_000) == [again]
    assert engine.depth(SYM) == ([], [(10_000, 2, 1), (10_001, 1, 1)])


def test_cancelled_non_best_levels_are_skipped_by_a_later_sweep():
    engine = make()
    keep = [oid(sell(engine, 1, p)) for p in (10_000, 10_010)]
    gone = [oid(sell(engine, 1, p)) for p in range(10_001, 10_010)]
    for order in gone:
        engine.cancel("s", order)
    events = buy(engine, 3, 10_020)
    assert [(t[0], t[3]) for t in trades(events)] == [(10_000, keep[0]), (10_010, keep[1])]
    assert engine.depth(SYM) == ([(10_020, 1, 1)], [])


def test_sweep_after_many_cancelled_levels_matches_every_level():
    """Regression: a heap rebuild in the middle of a sweep left the sweep on a stale heap."""
    # Leave n stale (cancelled, non-best) price levels behind two live ones, then sweep both.
    # For some n the side's clean-up triggers in the middle of the sweep.
    for n in range(0, 160):
        engine = make()
        first = oid(sell(engine, 1, 10_001))
        second = oid(sell(engine, 1, 10_002))
        stale = [oid(sell(engine, 1, 10_100 + i)) for i in range(n)]
        for order in stale:
            engine.cancel("s", order)
        events = buy(engine, 3, 10_050)
        taker = oid(events)
        assert trades(events) == [
            (10_001, 1, taker, first, "buy"),
            (10_002, 1, taker, second, "buy"),
        ], n
        assert engine.depth(SYM) == ([(10_050, 1, 1)], []), n


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"tif": ["GTC"]}, R.INVALID_TIF),
        ({"stp": ["cancel_newest"]}, R.INVALID_STP),
        ({"client_order_id": ["c1"]}, R.INVALID_CLIENT_ORDER_ID),
        ({"client_order_id": "c1", "account": ["a"]}, R.INVALID_ACCOUNT),
    ],
    ids=["tif", "stp", "client_order_id", "account"],
)
def test_unhashable_field_values_are_rejected_not_raised(change, reason):
    engine = make()
    events = engine.submit(**{**_BASE, "account": "a", **change})
    assert reject_reason(events) == reason
    assert engine.depth(SYM) == ([], [])


@pytest.mark.parametrize(
    "kwargs",
    [{"order_id": [1]}, {"client_order_id": {"c": 1}}, {"client_order_id": "c1", "account": ["a"]}],
    ids=["order_id", "client_order_id", "account"],
)
def test_unhashable_cancel_and_replace_targets_are_unknown_orders(kwargs):
    engine = make()
    engine.submit(**{**_BASE, "account": "a", "client_order_id": "c1"})
    account = kwargs.pop("account", "a")
    assert reject_reason(engine.cancel(account, **kwargs)) == R.UNKNOWN_ORDER
    assert reject_reason(engine.replace(account, 1, **kwargs)) == R.UNKNOWN_ORDER
    assert reject_reason(engine.mass_cancel("a", symbol=["X"])) == R.UNKNOWN_SYMBOL
    assert len(engine.open_orders("a")) == 1
