"""The order book and its queries: L2 depth, L3 queues, queue position, imbalance, mid, spread."""

from __future__ import annotations

import pytest
from engine_helpers import SYM, buy, make, oid, queue, sell

from exchange.book import Book, Order


def _order(order_id: int, side: str, price: int, qty: int) -> Order:
    return Order(
        order_id, None, "a", SYM, side, "limit", price, qty, "GTC", False, "cancel_newest", 0
    )


def _add(book: Book, order: Order) -> None:
    """Rest an order the way the engine does: back of its level, level totals updated."""
    level = book.side(order.side).level(order.price)
    level.orders.append(order)
    level.qty += order.leaves
    level.count += 1


# --------------------------------------------------------------------------- the data structure
def test_empty_book_has_no_prices():
    book = Book(SYM)
    assert (book.best_bid, book.best_ask, book.mid, book.spread) == (None, None, None, None)
    assert book.depth() == ([], [])
    assert book.imbalance() is None
    assert not book.is_crossed()


def test_sides_order_prices_best_first():
    book = Book(SYM)
    for i, price in enumerate((100, 103, 101)):
        _add(book, _order(i + 1, "buy", price, 1))
    for i, price in enumerate((110, 107, 108)):
        _add(book, _order(i + 10, "sell", price, 2))
    assert book.bids.prices() == [103, 101, 100]
    assert book.asks.prices() == [107, 108, 110]
    assert (book.best_bid, book.best_ask) == (103, 107)
    assert book.depth(2) == ([(103, 1, 1), (101, 1, 1)], [(107, 2, 1), (108, 2, 1)])


def test_dropping_the_best_level_exposes_the_next_one():
    book = Book(SYM)
    for i, price in enumerate((100, 101, 102)):
        _add(book, _order(i + 1, "sell", price, 1))
    book.asks.drop(101)  # not the best: best unchanged
    assert book.best_ask == 100
    book.asks.drop(100)  # the best: the stale 101 must be skipped
    assert book.best_ask == 102
    book.asks.drop(102)
    assert book.best_ask is None
    assert len(book.asks) == 0


def test_level_live_skips_dead_orders_and_compact_keeps_order():
    book = Book(SYM)
    orders = [_order(i, "buy", 100, 1) for i in range(1, 6)]
    for o in orders:
        _add(book, o)
    orders[1].leaves = 0
    orders[3].leaves = 0
    level = book.bids.levels[100]
    assert [o.order_id for o in level.live()] == [1, 3, 5]
    level.compact()
    assert [o.order_id for o in level.orders] == [1, 3, 5]
    assert [o.order_id for o in book.level_orders("buy", 100)] == [1, 3, 5]
    assert book.level_orders("buy", 99) == []


def test_side_orders_iterates_in_price_then_time_priority():
    book = Book(SYM)
    _add(book, _order(1, "sell", 101, 1))
    _add(book, _order(2, "sell", 100, 1))
    _add(book, _order(3, "sell", 101, 1))
    _add(book, _order(4, "sell", 100, 1))
    assert [o.order_id for o in book.asks.orders()] == [2, 4, 1, 3]


def test_is_crossed():
    book = Book(SYM)
    _add(book, _order(1, "buy", 100, 1))
    _add(book, _order(2, "sell", 101, 1))
    assert not book.is_crossed()
    _add(book, _order(3, "buy", 101, 1))
    assert book.is_crossed()


def test_order_clone_is_an_independent_copy():
    order = _order(7, "buy", 100, 10)
    order.leaves = 6
    twin = order.clone()
    twin.price = 105
    twin.leaves = 1
    assert (order.price, order.leaves, order.cum) == (100, 6, 4)
    assert (twin.order_id, twin.price, twin.qty, twin.cum) == (7, 105, 10, 9)


# --------------------------------------------------------------------------- engine queries
@pytest.fixture
def ladder():
    """Bids 9_998 x (2, 3), 9_997 x 4, 9_995 x 1; asks 10_001 x 5, 10_003 x (1, 1)."""
    engine = make()
    buy(engine, 2, 9_998)
    buy(engine, 3, 9_998)
    buy(engine, 4, 9_997)
    buy(engine, 1, 9_995)
    sell(engine, 5, 10_001)
    sell(engine, 1, 10_003)
    sell(engine, 1, 10_003)
    return engine


def test_l2_depth_full_and_truncated(ladder):
    bids = [(9_998, 5, 2), (9_997, 4, 1), (9_995, 1, 1)]
    asks = [(10_001, 5, 1), (10_003, 2, 2)]
    assert ladder.depth(SYM) == (bids, asks)
    assert ladder.depth(SYM, 2) == (bids[:2], asks)
    assert ladder.depth(SYM, 1) == (bids[:1], asks[:1])
    assert ladder.depth(SYM, 0) == ([], [])


def test_l2_depth_follows_a_partial_fill(ladder):
    sell(ladder, 3, 9_998)
    assert ladder.depth(SYM, 1) == ([(9_998, 2, 1)], [(10_001, 5, 1)])


def test_l3_level_orders_in_time_priority(ladder):
    assert queue(ladder, "buy", 9_998) == [1, 2]
    assert [o.leaves for o in ladder.level_orders(SYM, "buy", 9_998)] == [2, 3]
    assert queue(ladder, "sell", 10_003) == [6, 7]
    assert queue(ladder, "sell", 10_002) == []


def test_best_bid_ask_mid_spread(ladder):
    assert (ladder.best_bid(SYM), ladder.best_ask(SYM)) == (9_998, 10_001)
    assert ladder.spread(SYM) == 3
    assert ladder.mid(SYM) == 9_999.5


def test_mid_and_spread_undefined_with_one_side_empty():
    engine = make()
    buy(engine, 1, 9_000)
    assert engine.mid(SYM) is None and engine.spread(SYM) is None


def test_imbalance(ladder):
    assert ladder.imbalance(SYM) == pytest.approx((5 - 5) / 10)
    assert ladder.imbalance(SYM, 2) == pytest.approx((9 - 7) / 16)
    assert ladder.imbalance(SYM, 10) == pytest.approx((10 - 7) / 17)
    assert make().imbalance(SYM) is None


def test_imbalance_is_one_sided_extreme():
    engine = make()
    buy(engine, 4, 9_000)
    assert engine.imbalance(SYM) == 1.0
    sell(engine, 4, 11_000)
    sell(engine, 4, 11_000)
    assert engine.imbalance(SYM) == pytest.approx(-1 / 3)


def test_queue_position_counts_orders_and_quantity_ahead():
    engine = make()
    a = oid(buy(engine, 2, 9_000))
    b = oid(buy(engine, 3, 9_000))
    c = oid(buy(engine, 4, 9_000))
    assert [engine.queue_position(x) for x in (a, b, c)] == [(0, 0), (1, 2), (2, 5)]
    engine.cancel("b", b)
    assert engine.queue_position(c) == (1, 2)
    sell(engine, 1, 9_000)  # partial fill of a: c's quantity ahead shrinks, not its rank
    assert engine.queue_position(c) == (1, 1)
    sell(engine, 1, 9_000)
    assert engine.queue_position(c) == (0, 0)
    assert engine.queue_position(a) is None
    assert engine.queue_position(999) is None


def test_queue_position_is_per_level():
    engine = make()
    buy(engine, 5, 9_001)
    lower = oid(buy(engine, 1, 9_000))
    assert engine.queue_position(lower) == (0, 0)


def test_book_events_carry_level_totals():
    engine = make()
    buy(engine, 2, 9_000)
    events = buy(engine, 3, 9_000)
    assert events[-1][0] == "book" and events[-1][3:] == ("buy", 9_000, 5, 2)
