"""Trading PnL vs inventory PnL (`agents.analysis.pnl`): a hand-computed case, then properties."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agents.analysis.pnl import PnlSplit, TradeLeg, split, split_by, trading_from_fills
from agents.events import OrderUpdate
from agents.portfolio import OpenOrder, Portfolio
from clearing.fees import FeeSchedule


def test_hand_computed_split() -> None:
    # 1,000,000 cash units and 100 AGR given at the reference price 10,000 ticks.
    # Buy 10 at 10,100 paying a 20 fee; sell 4 at 10,300 with a 3 rebate; the mark is 10,200.
    fills = [TradeLeg("AGR", "buy", 10_100, 10, 20), TradeLeg("AGR", "sell", 10_300, 4, -3)]
    # (10,200 - 10,100) x 10 - 20 = 980; (10,200 - 10,300) x -4 + 3 = 403
    assert trading_from_fills(fills, {"AGR": 10_200}) == 1_383
    cash = 1_000_000 - 101_000 - 20 + 41_200 + 3
    got = split(1_000_000, {"AGR": 100}, cash, {"AGR": 106}, {"AGR": 10_000}, {"AGR": 10_200})
    assert got == PnlSplit(trading=1_383, inventory=100 * 200)
    assert got.total == 21_383  # = equity now - equity at the start
    assert (cash + 106 * 10_200) - (1_000_000 + 100 * 10_000) == 21_383


def test_an_idle_account_has_no_trading_pnl_and_a_multiplier_scales_both() -> None:
    idle = split(500, {"AGR": 7}, 500, {"AGR": 7}, {"AGR": 100}, {"AGR": 90}, {"AGR": 3})
    assert idle == PnlSplit(trading=0, inventory=7 * (90 - 100) * 3)
    # a symbol that never traded is marked at its starting mark: no drift
    assert split(0, {"XYZ": 5}, 0, {"XYZ": 5}, {"XYZ": 100}, {}) == PnlSplit(0, 0)
    with pytest.raises(ValueError, match="side"):
        trading_from_fills([TradeLeg("AGR", "short", 1, 1)], {"AGR": 1})


def test_split_by_sums_per_key_in_first_seen_order() -> None:
    rows = [("ZI", PnlSplit(1, 10)), ("MM", PnlSplit(5, 0)), ("ZI", PnlSplit(-3, 10))]
    assert split_by(rows) == {"ZI": PnlSplit(-2, 20), "MM": PnlSplit(5, 0)}
    assert list(split_by(rows)) == ["ZI", "MM"]


SYMBOLS = ("AGR", "XYZ")
fill = st.tuples(
    st.sampled_from(SYMBOLS), st.sampled_from(("buy", "sell")), st.integers(1, 50_000),
    st.integers(1, 1_000), st.sampled_from(("maker", "taker")),
)  # fmt: skip


@given(
    start_cash=st.integers(0, 10**12),
    start_pos=st.fixed_dictionaries({s: st.integers(0, 10_000) for s in SYMBOLS}),
    start_marks=st.fixed_dictionaries({s: st.integers(1, 50_000) for s in SYMBOLS}),
    marks=st.fixed_dictionaries({s: st.integers(1, 50_000) for s in SYMBOLS}),
    mult=st.fixed_dictionaries({s: st.integers(1, 100) for s in SYMBOLS}),
    fills=st.lists(fill, max_size=40),
)
def test_trading_plus_inventory_is_the_total_and_both_ways_agree(
    start_cash: int, start_pos: dict, start_marks: dict, marks: dict, mult: dict, fills: list
) -> None:
    # Book the fills the way an agent does (the clearing house's fee function included).
    p = Portfolio(start_cash, start_pos, FeeSchedule(maker_bps=-1.0, taker_bps=2.5), mult)
    legs = []
    for i, (symbol, side, price, qty, liquidity) in enumerate(fills):
        clid = f"o{i}"
        p.sent(OpenOrder(clid, symbol, side, price, qty))
        f = p.apply(OrderUpdate(
            client_order_id=clid, order_id=i + 1, symbol=symbol, side=side, exec_type="trade",
            status="filled", price=price, qty=qty, cum_qty=qty, leaves_qty=0, last_price=price,
            last_qty=qty, liquidity=liquidity, trade_id=i + 1, ts=i,
        ))  # fmt: skip
        assert f is not None
        legs.append(TradeLeg(symbol, side, price, qty, f.fee))
    got = split(start_cash, start_pos, p.cash, p.positions, start_marks, marks, mult)
    # the total is the change in equity: now at today's marks, then at the starting marks
    equity_now = p.cash + sum(q * marks[s] * mult[s] for s, q in p.positions.items())
    equity_start = start_cash + sum(q * start_marks[s] * mult[s] for s, q in start_pos.items())
    assert got.total == equity_now - equity_start
    assert got.trading == trading_from_fills(legs, marks, mult)
    assert got.inventory == sum(start_pos[s] * (marks[s] - start_marks[s]) * mult[s]
                                for s in SYMBOLS)  # fmt: skip
    if not fills:
        assert got.trading == 0
