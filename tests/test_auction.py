"""Call auctions: the clearing-price rules, the engine's uncross, batch and opening auctions."""

from __future__ import annotations

import pytest
from engine_helpers import SYM, buy, cancels, kinds, make, of, oid, reject_reason, sell, trades
from hypothesis import given, settings
from hypothesis import strategies as st

from exchange.auction import AuctionResult, clearing_price
from exchange.constants import CancelReason, RejectReason


# --------------------------------------------------------------------------- clearing_price
def test_no_crossing_interest_gives_no_auction():
    assert clearing_price([(99, 5)], [(101, 5)], 0, 0, 100) is None
    assert clearing_price([], [(101, 5)], 0, 0, 100) is None
    assert clearing_price([], [], 0, 0, 100) is None
    assert clearing_price([], [], 3, 0, 100) is None  # market buys but nobody sells


def test_price_maximises_executable_volume_first():
    # volume: 99 -> 4, 100 -> 4, 101 -> 5, 102 -> 5; the reference (99) loses to volume.
    bids = [(102, 5), (100, 5)]
    asks = [(99, 4), (101, 8)]
    assert clearing_price(bids, asks, 0, 0, 99) == AuctionResult(101, 5, -7)


def test_then_minimises_the_surplus():
    # volume 5 at 100, 101 and 102; surplus +2 at 100, -3 at 101 and 102. Reference 102 loses.
    bids = [(102, 5), (100, 2)]
    asks = [(100, 5), (101, 3)]
    assert clearing_price(bids, asks, 0, 0, 102) == AuctionResult(100, 5, 2)


@pytest.mark.parametrize(
    ("reference", "price"), [(100, 100), (101, 101), (200, 102), (50, 98), (98, 98)]
)
def test_then_is_closest_to_the_reference(reference, price):
    # Every price in [98, 102] executes 5 with no surplus: the reference decides.
    assert clearing_price([(102, 5)], [(98, 5)], 0, 0, reference) == AuctionResult(price, 5, 0)


def test_duplicate_price_levels_are_summed():
    assert clearing_price([(101, 2), (101, 3)], [(100, 5)], 0, 0, 100) == AuctionResult(100, 5, 0)


def test_market_orders_count_at_every_price():
    # Market buy 4 against limit sells: demand is 4 at every price.
    assert clearing_price([], [(99, 2), (101, 2)], 4, 0, 100) == AuctionResult(101, 4, 0)
    # Only market orders on both sides: they meet at the reference price.
    assert clearing_price([], [], 3, 5, 123) == AuctionResult(123, 3, -2)


def test_market_sell_against_limit_buy_clears_at_reference_when_inside():
    assert clearing_price([(105, 4)], [], 0, 4, 100) == AuctionResult(100, 4, 0)
    assert clearing_price([(95, 4)], [], 0, 4, 100) == AuctionResult(95, 4, 0)


def _brute_force(bids, asks, mkt_buy, mkt_sell, reference):
    """Every integer price, keyed by the four rules in order; None if nothing executes."""
    top = max([p for p, _ in bids + asks] + [reference]) + 2
    best = None
    for p in range(1, top):
        demand = mkt_buy + sum(q for bp, q in bids if bp >= p)
        supply = mkt_sell + sum(q for ap, q in asks if ap <= p)
        volume = min(demand, supply)
        if volume > 0:
            key = (-volume, abs(demand - supply), abs(p - reference), p)
            if best is None or key < best[0]:
                best = (key, AuctionResult(p, volume, demand - supply))
    return None if best is None else best[1]


_levels = st.lists(st.tuples(st.integers(1, 30), st.integers(1, 6)), max_size=5)


@settings(max_examples=300, deadline=None)
@given(
    bids=_levels,
    asks=_levels,
    mkt_buy=st.integers(0, 6),
    mkt_sell=st.integers(0, 6),
    reference=st.integers(1, 35),
)
def test_clearing_price_matches_brute_force_over_every_price(
    bids, asks, mkt_buy, mkt_sell, reference
):
    """The four rules (volume, surplus, distance to reference, lower price) over all prices."""
    assert clearing_price(bids, asks, mkt_buy, mkt_sell, reference) == _brute_force(
        bids, asks, mkt_buy, mkt_sell, reference
    )


# --------------------------------------------------------------------------- engine: call auction
def test_start_auction_announces_the_phase_and_stops_matching():
    engine = make()
    (status,) = of(engine.start_auction(SYM, 5), "status")
    assert (status.phase, status.reason, status.ts) == ("auction", "call", 5)
    assert engine.phase(SYM) == "auction"
    sell(engine, 2, 9_990)
    events = buy(engine, 2, 10_010)
    assert trades(events) == [] and kinds(events) == ["accepted", "book"]
    assert engine.depth(SYM) == ([(10_010, 2, 1)], [(9_990, 2, 1)])  # crossed, by design


def test_market_orders_wait_for_the_uncross_in_an_auction():
    engine = make()
    engine.start_auction(SYM)
    order = oid(buy(engine, 3))
    assert engine.order(order) is not None
    assert engine.depth(SYM) == ([], [])  # market orders sit on no price level


@pytest.fixture
def collected():
    """An opening auction with market buy 1, bids 102 x 3, 102 x 4, 101 x 2; asks 100 x 5, 101 x 4.

    Demand: 10 at <= 101, 8 at 102. Supply: 5 at 100, 9 at >= 101. Price 101, volume 9.
    """
    engine = make(opening_auction=True, reference_price=100)
    ids = {
        "s1": oid(sell(engine, 5, 100, account="s1")),
        "b1": oid(buy(engine, 3, 102, account="b1")),
        "mb": oid(buy(engine, 1, account="mb")),
        "b2": oid(buy(engine, 2, 101, account="b2")),
        "s2": oid(sell(engine, 4, 101, account="s2")),
        "b3": oid(buy(engine, 4, 102, account="b3")),
    }
    return engine, ids


def test_opening_auction_starts_in_auction_phase(collected):
    engine, _ = collected
    assert engine.phase(SYM) == "auction"
    assert engine.indicative_auction(SYM) == AuctionResult(101, 9, 1)
    assert engine.last_trade(SYM) is None


def test_uncross_allocates_by_price_time_priority_at_one_price(collected):
    engine, ids = collected
    events = engine.uncross(SYM, ts=50)
    expected = [
        (ids["mb"], ids["s1"], 1),  # market orders first
        (ids["b1"], ids["s1"], 3),  # then the best price, oldest first
        (ids["b3"], ids["s1"], 1),
        (ids["b3"], ids["s2"], 3),
        (ids["b2"], ids["s2"], 1),  # the worst eligible price gets the rest
    ]
    assert [(t[2], t[3], t[1]) for t in trades(events)] == expected
    assert {(t[0], t[4]) for t in trades(events)} == {(101, "none")}
    assert engine.depth(SYM) == ([(101, 1, 1)], [])
    assert engine.order(ids["b2"]).leaves == 1
    assert engine.last_trade(SYM) == (101, 1)
    (status,) = of(events, "status")
    assert (status.phase, status.reason, status.ts) == ("continuous", "uncross", 50)
    assert kinds(events)[-1] == "status"


def test_uncross_emits_one_book_event_per_touched_level(collected):
    engine, _ = collected
    books = {(b.side, b.price): (b.qty, b.count) for b in of(engine.uncross(SYM), "book")}
    assert books == {
        ("buy", 102): (0, 0),
        ("buy", 101): (1, 1),
        ("sell", 100): (0, 0),
        ("sell", 101): (0, 0),
    }


def test_after_uncross_trading_is_continuous(collected):
    engine, ids = collected
    engine.uncross(SYM)
    events = sell(engine, 1, 101, account="late")
    assert trades(events) == [(101, 1, ids["b2"], oid(events), "sell")]


def test_uncross_without_crossing_interest_just_changes_phase():
    engine = make(opening_auction=True)
    buy(engine, 1, 9_990)
    sell(engine, 1, 10_010)
    events = engine.uncross(SYM)
    assert kinds(events) == ["status"]
    assert engine.phase(SYM) == "continuous"
    assert engine.depth(SYM) == ([(9_990, 1, 1)], [(10_010, 1, 1)])


def test_unfilled_market_orders_are_cancelled_by_the_uncross():
    engine = make(opening_auction=True, reference_price=100)
    sell(engine, 2, 100)
    market = oid(buy(engine, 5))
    events = engine.uncross(SYM)
    assert [t[:2] for t in trades(events)] == [(100, 2)]
    assert cancels(events) == [(market, 3, CancelReason.AUCTION_UNFILLED)]
    assert engine.order(market) is None


def test_auction_reference_is_the_last_trade_price():
    engine = make(reference_price=100)
    sell(engine, 1, 105)
    buy(engine, 1, 105)  # last trade 105
    engine.start_auction(SYM)
    buy(engine, 1, 110)
    sell(engine, 1, 100)
    assert [t[:2] for t in trades(engine.uncross(SYM))] == [(105, 1)]


def test_auction_reference_is_the_spec_reference_without_trades():
    engine = make(opening_auction=True, reference_price=103)
    buy(engine, 1, 110)
    sell(engine, 1, 100)
    assert [t[:2] for t in trades(engine.uncross(SYM))] == [(103, 1)]


def test_uncross_with_clear_book_empties_the_book():
    engine = make(opening_auction=True, reference_price=100)
    buy(engine, 3, 101)
    rest_bid = oid(buy(engine, 2, 95))
    rest_ask = oid(sell(engine, 4, 100))
    events = engine.uncross(SYM, clear_book=True)
    assert [t[:2] for t in trades(events)] == [(100, 3)]
    assert sorted(cancels(events)) == [
        (rest_bid, 2, CancelReason.PERIOD_END),
        (rest_ask, 1, CancelReason.PERIOD_END),
    ]
    assert engine.depth(SYM) == ([], [])
    assert engine.open_orders("b") == [] and engine.open_orders("s") == []


def test_uncross_then_sets_the_next_phase():
    engine = make(opening_auction=True)
    engine.uncross(SYM, then="auction")
    assert engine.phase(SYM) == "auction"


def test_cancelled_auction_order_does_not_take_part():
    engine = make(opening_auction=True, reference_price=100)
    first = oid(sell(engine, 2, 100, account="a"))
    second = oid(sell(engine, 2, 100, account="c"))
    market = oid(buy(engine, 2, account="m"))
    engine.cancel("a", first)
    engine.cancel("m", market)
    buy(engine, 2, 100, account="b")
    assert [t[3] for t in trades(engine.uncross(SYM))] == [second]


def test_replace_of_auction_market_order():
    engine = make(opening_auction=True)
    market = oid(buy(engine, 3, account="m"))
    assert reject_reason(engine.replace("m", 3, 10_000, order_id=market)) == (
        RejectReason.PRICE_ON_MARKET
    )
    (rep,) = of(engine.replace("m", 2, order_id=market), "replaced")
    assert (rep.price, rep.qty, rep.leaves, rep.priority_kept) == (None, 2, 2, True)
    assert engine.indicative_auction(SYM) is None
    sell(engine, 5, 10_000)
    assert engine.indicative_auction(SYM) == AuctionResult(10_000, 2, -3)


def test_ioc_and_fok_rejected_in_opening_auction():
    engine = make(opening_auction=True)
    for tif in ("IOC", "FOK"):
        assert reject_reason(buy(engine, 1, 10_000, tif=tif)) == RejectReason.TIF_NOT_IN_AUCTION


# --------------------------------------------------------------------------- batch auctions
def test_batch_mode_collects_then_uncrosses_every_interval():
    engine = make(batch_interval_ns=100, reference_price=100)
    assert engine.phase(SYM) == "auction"
    buy(engine, 2, 101, ts=10)
    sell(engine, 2, 99, ts=20)
    assert engine.advance(99) == []
    events = engine.advance(100)
    assert [t[:2] + t[4:] for t in trades(events)] == [(100, 2, "none")]
    (status,) = of(events, "status")
    assert (status.phase, status.reason) == ("auction", "batch")
    assert engine.phase(SYM) == "auction"
    # The next batch is due at 200.
    buy(engine, 1, 100, ts=150)
    sell(engine, 1, 100, ts=150)
    assert engine.advance(199) == []
    assert [t[:2] for t in trades(engine.advance(200))] == [(100, 1)]


def test_batch_uncross_runs_before_a_late_order_joins_the_next_batch():
    engine = make(batch_interval_ns=100, reference_price=100)
    buy(engine, 1, 100, ts=10)
    sell(engine, 1, 100, ts=10)
    events = buy(engine, 5, 105, ts=130)
    assert kinds(events)[0] == "trade"
    assert kinds(events)[-2:] == ["accepted", "book"]
    assert [t[:2] for t in trades(events)] == [(100, 1)]
    assert engine.depth(SYM) == ([(105, 5, 1)], [])


def test_batch_schedule_catches_up_after_a_gap():
    engine = make(batch_interval_ns=100, reference_price=100)
    engine.advance(450)  # batches due at 100..400 collapse into one; the next is due at 500
    buy(engine, 1, 100, ts=460)
    sell(engine, 1, 100, ts=460)
    assert engine.advance(499) == []
    assert len(trades(engine.advance(500))) == 1


def test_batch_mode_rests_unmatched_orders_into_the_next_batch():
    engine = make(batch_interval_ns=100, reference_price=100)
    early = oid(buy(engine, 2, 99, ts=10))
    engine.advance(100)
    late = oid(sell(engine, 2, 99, ts=110))
    assert trades(engine.advance(200)) == [(99, 2, early, late, "none")]


def test_batch_clear_book_empties_the_book_after_each_batch():
    engine = make(batch_interval_ns=100, batch_clear_book=True, reference_price=100)
    big = oid(buy(engine, 3, 101, ts=10))
    sell(engine, 1, 100, ts=10)
    low = oid(buy(engine, 1, 90, ts=10))
    events = engine.advance(100)
    assert [t[:2] for t in trades(events)] == [(100, 1)]
    assert sorted(cancels(events)) == [
        (big, 2, CancelReason.PERIOD_END),
        (low, 1, CancelReason.PERIOD_END),
    ]
    assert engine.depth(SYM) == ([], [])
    assert engine.phase(SYM) == "auction"


def test_batch_mode_rejects_ioc():
    engine = make(batch_interval_ns=100)
    assert reject_reason(buy(engine, 1, 10_000, tif="IOC")) == RejectReason.TIF_NOT_IN_AUCTION
