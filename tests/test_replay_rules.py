"""The two fill rules, the queue model, fill sizes and latency on hand-written tapes whose
answer is known, boundary cases included (equal price, the update just before the latency)."""

from __future__ import annotations

import pytest

from tests.replay_helpers import fills, replay, tape

QT = {"fill_rule": "quote-through"}
TT = {"fill_rule": "trade-through"}
START = ("q", 0, 6120, 5, 6130, 5)  # the book when the strategy starts: 61.20 / 61.30


# ---------------------------------------------------------------- quote-through
def test_quote_through_an_offer_fills_when_a_later_bid_reaches_it() -> None:
    t = tape(START, ("q", 1, 6124, 5, 6131, 5), ("q", 2, 6130, 5, 6135, 5),
             ("q", 3, 6140, 5, 6145, 5))  # fmt: skip
    rec, agent = replay(t, [("sell", 5, 6125)], **QT)
    # 61.24 does not reach the offer at 61.25; 61.30 a millisecond later does; whole, own price
    assert fills(rec) == [(2.0, "sell", 6125, 5, "quote-through")]
    assert agent.ctx.position("X") == -5 and not agent.ctx.open_orders()
    assert [f.qty for f in agent.fills] == [5]


def test_quote_through_equal_price_fills_and_one_tick_short_does_not() -> None:
    eq = tape(START, ("q", 1, 6125, 3, 6131, 5))
    assert fills(replay(eq, [("sell", 2, 6125)], **QT)[0]) == [(1.0, "sell", 6125, 2,
                                                                 "quote-through")]
    short = tape(START, ("q", 1, 6124, 3, 6131, 5))
    assert fills(replay(short, [("sell", 2, 6125)], **QT)[0]) == []


def test_quote_through_a_bid_fills_when_a_later_ask_comes_down_to_it() -> None:
    t = tape(START, ("q", 1, 6110, 5, 6121, 5), ("q", 2, 6110, 5, 6120, 4))
    assert fills(replay(t, [("buy", 3, 6120)], **QT)[0]) == [(2.0, "buy", 6120, 3,
                                                               "quote-through")]


def test_quote_through_ignores_trades() -> None:
    t = tape(START, ("t", 1, 6126, 9, "buy"), ("t", 2, 6140, 9, "buy"))
    assert fills(replay(t, [("sell", 2, 6125)], **QT)[0]) == []


def test_capped_size_fills_at_most_the_crossing_quote_then_the_rest() -> None:
    t = tape(START, ("q", 1, 6126, 2, 6131, 5), ("q", 2, 6127, 4, 6131, 5))
    rec, agent = replay(t, [("sell", 5, 6125)], size="capped", **QT)
    assert fills(rec) == [(1.0, "sell", 6125, 2, "quote-through"),
                          (2.0, "sell", 6125, 3, "quote-through")]  # fmt: skip
    assert agent.ctx.position("X") == -5


# ---------------------------------------------------------------- trade-through
def test_trade_through_fills_on_a_trade_above_the_offer_not_at_it() -> None:
    t = tape(START, ("t", 1, 6125, 4, "buy"), ("t", 2, 6124, 4, "sell"),
             ("t", 3, 6126, 1, "buy"))  # fmt: skip
    rec, _ = replay(t, [("sell", 5, 6125)], **TT)
    # 61.25 (equal) and 61.24 do not fill; 61.26 does, all of it (size whole)
    assert fills(rec) == [(3.0, "sell", 6125, 5, "trade-through")]


def test_trade_through_a_bid_fills_on_a_trade_below_it_capped_by_the_trade() -> None:
    t = tape(START, ("t", 1, 6120, 9, "sell"), ("t", 2, 6119, 2, "sell"))
    rec, _ = replay(t, [("buy", 5, 6120)], size="capped", **TT)
    assert fills(rec) == [(2.0, "buy", 6120, 2, "trade-through")]


def test_trade_through_ignores_quotes_moving_through() -> None:
    t = tape(START, ("q", 1, 6140, 5, 6145, 5))
    assert fills(replay(t, [("sell", 5, 6125)], **TT)[0]) == []


# ---------------------------------------------------------------- latency
@pytest.mark.parametrize("rule", [QT, TT])
def test_an_order_is_filled_only_by_updates_from_its_arrival_on(rule: dict) -> None:
    if rule is QT:
        early = [("q", 0.999, 6130, 5, 6135, 5), ("q", 0.9995, 6120, 5, 6130, 5)]
        at = ("q", 1.0, 6130, 5, 6135, 5)
    else:
        early = [("t", 0.999, 6126, 5, "buy")]
        at = ("t", 1.0, 6126, 5, "buy")
    # sent at 0 with 1 ms latency: an update 1 µs before arrival cannot fill it, the one
    # stamped exactly at arrival can
    rec, agent = replay(tape(START, *early, at), [("sell", 5, 6125)], latency_ns=1_000_000,
                        **rule)  # fmt: skip
    assert [f[0] for f in fills(rec)] == [1.0]
    assert agent.fills[0].price == 6125 and agent.fills[0].liquidity == "maker"


def test_an_order_arriving_into_a_market_through_its_price_takes_the_quote() -> None:
    # the bid moved to 61.30 while the offer at 61.25 was on its way: it arrives marketable
    # and sells at the bid, as a taker
    t = tape(START, ("q", 0.5, 6130, 2, 6135, 5), ("q", 1.0, 6130, 2, 6135, 5))
    rec, _ = replay(t, [("sell", 5, 6125)], latency_ns=1_000_000, size="capped", **QT)
    assert fills(rec)[0] == (1.0, "sell", 6130, 2, "taker")


def test_a_cancelled_order_fills_until_the_cancel_arrives() -> None:
    later = [(1, "cancel", [0])]
    base = [START, ("q", 1, 6120, 5, 6130, 5)]  # the cancel goes out at 1 ms
    before = tape(*base, ("q", 1.4, 6126, 5, 6131, 5))
    rec, _ = replay(before, [("sell", 5, 6125)], later, cancel_latency_ns=500_000, **QT)
    assert fills(rec) == [(1.4, "sell", 6125, 5, "quote-through")]
    after = tape(*base, ("q", 1.5, 6126, 5, 6131, 5))  # exactly when the cancel arrives
    rec, agent = replay(after, [("sell", 5, 6125)], later, cancel_latency_ns=500_000, **QT)
    assert fills(rec) == [] and not agent.ctx.open_orders()


def test_a_strategy_cannot_react_to_the_update_that_fills_it() -> None:
    # with zero latency, an order sent in reply to an update is live from the next update on
    t = tape(START, ("q", 1, 6126, 5, 6131, 5), ("q", 1, 6126, 5, 6131, 5))
    rec, _ = replay(t, [], [(1, "submit", ["sell", 5, 6125])], **QT)
    assert len(fills(rec)) == 1 and fills(rec)[0][0] == 1.0
    assert rec.fills["ts"][0] == rec.orders["ts"][0]  # same stamp, the next update


def test_a_replace_moves_the_order_after_the_latency() -> None:
    t = tape(START, ("q", 0.1, 6120, 5, 6130, 5), ("q", 1, 6120, 5, 6130, 5),
             ("q", 1.5, 6126, 5, 6131, 5), ("q", 2.5, 6128, 5, 6131, 5))  # fmt: skip
    # sent at 1 ms, arriving at 2 ms: at 1.5 ms the order still sits at 61.25 and fills there
    rec, _ = replay(t, [("sell", 5, 6125)], [(1, "replace", [0, 5, 6128])],
                    latency_ns=1_000_000, **QT)  # fmt: skip
    assert fills(rec) == [(1.5, "sell", 6125, 5, "quote-through")]
    # sent at 0.1 ms, arriving at 1.1 ms: 61.26 no longer reaches it, 61.28 does
    rec, agent = replay(t, [("sell", 5, 6125)], [(0.1, "replace", [0, 5, 6128])],
                        latency_ns=1_000_000, **QT)  # fmt: skip
    assert fills(rec) == [(2.5, "sell", 6128, 5, "quote-through")]
    assert agent.ctx.position("X") == -5


# ---------------------------------------------------------------- queue model
def test_queue_trades_at_the_price_eat_the_displayed_queue_first() -> None:
    # the offer joins 3 lots displayed at 61.30; buyers take 2, then 2 more: 1 left for us
    t = tape(START, ("t", 1, 6130, 2, "buy"), ("t", 2, 6130, 2, "buy"),
             ("t", 3, 6130, 5, "buy"))  # fmt: skip
    start = ("q", 0, 6120, 5, 6130, 3)
    t = tape(start, *[("t", r[1], r[2], r[3], r[4]) for r in
                      [("t", 1, 6130, 2, "buy"), ("t", 2, 6130, 2, "buy"),
                       ("t", 3, 6130, 5, "buy")]])  # fmt: skip
    rec, _ = replay(t, [("sell", 4, 6130)], queue="displayed", size="capped", **TT)
    assert fills(rec) == [(2.0, "sell", 6130, 1, "trade-through"),
                          (3.0, "sell", 6130, 3, "trade-through")]  # fmt: skip
    rec, _ = replay(t, [("sell", 4, 6130)], queue="displayed", size="whole", **TT)
    assert fills(rec) == [(2.0, "sell", 6130, 4, "trade-through")]
    rec, _ = replay(t, [("sell", 4, 6130)], queue="none", **TT)
    assert fills(rec) == []  # without a queue model a trade at the price never fills


def test_queue_only_the_other_side_eats_it_and_a_smaller_display_lowers_it() -> None:
    start = ("q", 0, 6120, 5, 6130, 3)
    t = tape(start, ("t", 1, 6130, 3, "sell"),  # a seller at 61.30: not our queue
             ("q", 2, 6120, 5, 6130, 1),  # the display drops to 1: at most 1 ahead of us
             ("t", 3, 6130, 2, "buy"))  # fmt: skip
    rec, _ = replay(t, [("sell", 4, 6130)], queue="displayed", size="capped", **TT)
    assert fills(rec) == [(3.0, "sell", 6130, 1, "trade-through")]


def test_queue_an_order_improving_the_best_has_nothing_ahead() -> None:
    t = tape(START, ("t", 1, 6128, 2, "buy"))
    rec, _ = replay(t, [("sell", 4, 6128)], queue="displayed", size="capped", **TT)
    assert fills(rec) == [(1.0, "sell", 6128, 2, "trade-through")]


def test_queue_through_the_price_fills_whatever_the_queue() -> None:
    t = tape(("q", 0, 6120, 5, 6130, 50), ("t", 1, 6131, 2, "buy"))
    rec, _ = replay(t, [("sell", 4, 6130)], queue="displayed", **TT)
    assert fills(rec) == [(1.0, "sell", 6130, 4, "trade-through")]


def test_queue_quote_through_equal_price_counts_the_quote_against_the_queue() -> None:
    start = ("q", 0, 6120, 5, 6130, 3)
    # locked quotes at 61.30: the bids there meet the 3 lots ahead of us first
    t = tape(start, ("q", 1, 6130, 2, 6130, 5), ("q", 2, 6130, 2, 6130, 5),
             ("q", 3, 6130, 4, 6130, 5))  # fmt: skip
    rec, _ = replay(t, [("sell", 4, 6130)], queue="displayed", size="capped", **QT)
    # 2 eat the queue (1 left); the same quote again is not new interest; 4 more: 3 for us
    assert fills(rec) == [(3.0, "sell", 6130, 3, "quote-through")]


# ---------------------------------------------------------------- marketable orders
def test_a_marketable_order_takes_the_displayed_quote_on_arrival() -> None:
    t = tape(START, ("q", 1, 6120, 5, 6130, 2))
    rec, agent = replay(t, [("buy", 3, 6135)], size="capped", **QT)
    # at arrival (the first update) 5 are offered at 61.30: all 3 at 61.30, as a taker
    assert fills(rec) == [(0.0, "buy", 6130, 3, "taker")]
    assert agent.fills[0].liquidity == "taker"


def test_a_market_order_fills_at_the_opposite_best_and_its_rest_is_cancelled() -> None:
    t = tape(("q", 0, 6120, 5, 6130, 2), ("q", 1, 6120, 5, 6130, 2))
    rec, agent = replay(t, [("buy", 3, None)], size="capped", **QT)
    assert fills(rec) == [(0.0, "buy", 6130, 2, "taker")]
    assert agent.ctx.position("X") == 2 and not agent.ctx.open_orders()


def test_bad_orders_are_rejected_with_a_reason() -> None:
    from agents.replay.driver import Replay
    from tests.replay_helpers import Script

    agent = Script({"orders": [("sell", 0, 6125), ("sell", 1, -5)]})
    rejects = []
    agent.on_reject = rejects.append  # type: ignore[method-assign]
    Replay(agent, ["X"]).run([tape(START)])
    assert [r.reason for r in rejects] == ["invalid_qty", "invalid_price"]
