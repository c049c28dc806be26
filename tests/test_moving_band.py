"""A price band that follows the market: a slow drift is followed, a sudden move still halts.

The band lives in the matching engine, which both the exchange process and the simulated market
run, so the same rule is checked on the core, on a real exchange process, and in simulated time.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import zmq
from engine_helpers import SYM, buy, make, of, reject_reason, sell
from wire import WireClient

from agents.agent import Agent
from agents.config import MarketConfig
from agents.sim import SimMarket
from deploy.launch import Proc, start_exchange
from exchange.constants import RejectReason
from exchange.protocol import NewOrder

R = RejectReason
WINDOW = 1_000  # breaker window (ns)


def _drift(engine, start: int, step_bps: int, steps: int, ts0: int = 0) -> tuple[int, int]:
    """Trade at prices rising `step_bps` per step, each step after the breaker window has passed.

    Returns (last price, last ts)."""
    price, ts = start, ts0
    for _ in range(steps):
        price = price * (10_000 + step_bps) // 10_000
        ts += 2 * WINDOW
        assert reject_reason(sell(engine, 1, price, account="s", ts=ts)) is None
        assert of(buy(engine, 1, price, account="b", ts=ts), "trade"), f"no trade at {price}"
    return price, ts


def test_band_following_the_last_trade_lets_a_slow_drift_through_and_halts_a_jump():
    engine = make(band_bps=1_000, band_reference="last", halt_move_bps=500,
                  halt_window_ns=WINDOW, halt_duration_ns=10**9)  # fmt: skip
    price, ts = _drift(engine, 10_000, 300, 12)  # +3 % a step, 12 steps: about +42 %
    assert price > 11_000  # beyond the static band's edge
    assert engine.market(SYM).band == (-(-price * 9_000 // 10_000), price * 11_000 // 10_000)
    assert reject_reason(buy(engine, 1, price * 10_500 // 10_000, account="b", ts=ts)) is None
    # a sudden +8 % move within the breaker window halts the symbol
    jump = price * 10_800 // 10_000
    sell(engine, 1, jump, account="s", ts=ts + 1)
    events = buy(engine, 1, jump, account="b", ts=ts + 2)
    assert [s.phase for s in of(events, "status")] == ["halted"]
    assert not of(events, "trade")


def test_static_band_refuses_the_same_drift():
    engine = make(band_bps=1_000, halt_move_bps=500, halt_window_ns=WINDOW)
    ts = 0
    price = 10_000
    while price * 10_300 // 10_000 <= 11_000:
        price, ts = _drift(engine, price, 300, 1, ts)
    beyond = price * 10_300 // 10_000
    assert reject_reason(sell(engine, 1, beyond, account="s", ts=ts + 2 * WINDOW)) == (
        R.PRICE_OUTSIDE_BAND
    )


def test_band_following_auctions_moves_at_the_reopening_not_on_trades():
    engine = make(band_bps=1_000, band_reference="auction", halt_move_bps=500,
                  halt_window_ns=WINDOW, halt_duration_ns=100)  # fmt: skip
    _drift(engine, 10_000, 300, 1)
    assert engine.market(SYM).band == (9_000, 11_000)  # continuous trades leave it alone
    sell(engine, 5, 10_900, account="s", ts=10_000)
    halted = buy(engine, 5, 10_900, account="b", ts=10_001)  # +5.8 %: the breaker trips
    assert [s.phase for s in of(halted, "status")] == ["halted"]
    reopened = engine.advance(10_200)
    (trade,) = of(reopened, "trade")
    assert trade.price == 10_900
    assert engine.market(SYM).band == (9_810, 11_990)


# --------------------------------------------------------------------------- the live exchange
@pytest.fixture
def ctx() -> Iterator[zmq.Context]:
    context = zmq.Context()
    yield context
    context.destroy(linger=0)


def _order(clid: str, side: str, price: int) -> NewOrder:
    return NewOrder(client_order_id=clid, symbol="AGR", side=side, order_type="limit", qty=1,
                    price=price)  # fmt: skip


def test_live_exchange_band_follows_the_market(tmp_path: Path, ctx: zmq.Context) -> None:
    symbols = json.dumps([{"symbol": "AGR", "reference_price": 10_000, "band_bps": 1_000,
                           "band_reference": "last"}])  # fmt: skip
    proc: Proc = start_exchange(tmp_path / "ex", AGORA_EXCHANGE_SYMBOLS=symbols)
    try:
        gw = proc.ready["gateway"]
        alice, bob = WireClient(ctx, gw, "alice"), WireClient(ctx, gw, "bob")
        price = 10_000
        for i in range(8):  # +5 % a step: each inside the band around the last trade
            price = price * 10_500 // 10_000
            alice.send(_order(f"a{i}", "sell", price))
            assert alice.wait_for_order(f"a{i}", "new").leaves_qty == 1
            bob.send(_order(f"b{i}", "buy", price))
            assert bob.wait_for_order(f"b{i}", "trade").last_price == price
        assert price > 14_000  # far beyond the first band's 11,000
        bob.send(_order("far", "buy", price * 11_500 // 10_000))  # 15 % away: still refused
        assert bob.wait_for_order("far", "rejected").reject_reason == "price_outside_band"
    finally:
        err = proc.stop()
    assert proc.returncode == 0, err[-3000:]


# --------------------------------------------------------------------------- simulated time
class _AtF(Agent):
    """Every second, one lot on its side at F(t): a buyer and a seller trade at F."""

    def __init__(self, side: str) -> None:
        super().__init__()
        self.side = side

    def on_start(self) -> None:
        self.ctx.set_timer("t", 1_000_000_000)

    def on_timer(self, name: str) -> None:
        f = self.ctx.fundamental("AGR")
        if f is not None:
            self.ctx.submit("AGR", self.side, 1, round(f / 0.01))


def _sim_last_price(band_reference: str) -> tuple[int | None, float]:
    cfg = MarketConfig.model_validate({
        "seed": 3,
        "symbols": [{"symbol": "AGR", "reference_price": 10_000, "band_bps": 1_000,
                     "band_reference": band_reference}],
        # F drifts up about 0.1 % a second: +35 % in 300 s
        "fundamental": {"process": "gaussian", "scale": 0.0, "mean_reversion": 0.0,
                        "jumps": {"rate": 10.0, "scale": 1e-9, "mean": 0.0001}},
        "fundamental_interval_s": 0.1,
        "clearing": {"starting_cash": 10**12, "starting_positions": {"AGR": 10_000}},
    })  # fmt: skip
    market = SimMarket.from_config(cfg)
    market.add_agent(_AtF("sell"), "seller")
    market.add_agent(_AtF("buy"), "buyer")
    market.run(duration_ns=300 * 1_000_000_000)
    f = market.agent("buyer").fundamental("AGR")
    return market.last_price("AGR"), float(f or 0)


def test_simulated_band_follows_a_drifting_fundamental_that_the_static_band_stops():
    last, f = _sim_last_price("last")
    assert f > 130.0
    assert last is not None and abs(last * 0.01 - f) / f < 0.01
    stuck, _ = _sim_last_price("static")
    assert stuck is not None and stuck <= 11_000
