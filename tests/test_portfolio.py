"""An agent's own book-keeping: fills booked once, missed fills recovered, stale orders dropped."""

from __future__ import annotations

from types import SimpleNamespace

from agents.portfolio import OpenOrder, Portfolio
from clearing.fees import FeeSchedule, fee_for


def _fill(clid: str, side: str, price: int, qty: int, trade_id: int, leaves: int = 0) -> dict:
    return {
        "type": "execution_report", "client_order_id": clid, "order_id": 1, "symbol": "AGR",
        "side": side, "exec_type": "trade",
        "order_status": "filled" if not leaves else "partially_filled", "price": price,
        "qty": qty + leaves, "cum_qty": qty, "leaves_qty": leaves, "last_qty": qty,
        "last_price": price, "liquidity": "taker", "trade_id": trade_id, "ts": 1,
    }  # fmt: skip


def test_a_fill_is_booked_once_whichever_way_it_arrives() -> None:
    fees = FeeSchedule(maker_bps=-1, taker_bps=5)
    p = Portfolio(cash=1_000_000, positions={"AGR": 10}, fees=fees)
    p.sent(OpenOrder("a.1", "AGR", "buy", 10_000, 4, leaves_qty=4))
    p.apply_report(_fill("a.1", "buy", 10_000, 3, trade_id=7, leaves=1))
    fee = fee_for(30_000, 5)
    assert (p.cash, p.positions["AGR"], p.fills) == (1_000_000 - 30_000 - fee, 13, 1)
    # clearing's record of the same trade (after a lost session) changes nothing
    same = SimpleNamespace(trade_id=7, symbol="AGR", side="buy", price=10_000, qty=3,
                           liquidity="taker", fee=fee)  # fmt: skip
    assert p.recover([same]) == 0
    assert (p.cash, p.positions["AGR"]) == (1_000_000 - 30_000 - fee, 13)
    # a trade the view never heard of is booked with clearing's own fee
    missed = SimpleNamespace(trade_id=9, symbol="AGR", side="sell", price=10_100, qty=2,
                             liquidity="maker", fee=-2)  # fmt: skip
    assert p.recover([same, missed]) == 1
    assert p.cash == 1_000_000 - 30_000 - fee + 20_200 + 2
    assert p.positions["AGR"] == 11
    # and if its report turns up late after all, it is not booked twice
    p.apply_report(_fill("gone", "sell", 10_100, 2, trade_id=9))
    assert p.positions["AGR"] == 11 and p.fills == 2


def test_orders_the_exchange_no_longer_has_are_forgotten() -> None:
    p = Portfolio()
    for clid in ("a.1", "a.2", "a.3"):
        p.sent(OpenOrder(clid, "AGR", "buy", 100, 1, leaves_qty=1))
    assert p.resync_orders({"a.2"}) == 2
    assert list(p.orders) == ["a.2"]
