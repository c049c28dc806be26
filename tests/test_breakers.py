"""Price protection: the static price band and the volatility breaker (halt, reopening auction)."""

from __future__ import annotations

import pytest
from engine_helpers import SYM, buy, cancels, kinds, make, of, oid, reject_reason, sell, trades

from exchange.breaker import VolatilityBreaker
from exchange.constants import CancelReason, RejectReason

R = RejectReason


# --------------------------------------------------------------------------- static band
@pytest.fixture
def banded():
    """Reference 10_000, band 5 %: limit prices must lie in [9_500, 10_500]."""
    return make(reference_price=10_000, band_bps=500)


@pytest.mark.parametrize("price", [9_500, 10_000, 10_500])
def test_limit_price_inside_band_is_accepted(banded, price):
    assert reject_reason(buy(banded, 1, price)) is None


@pytest.mark.parametrize("price", [9_499, 10_501, 1, 20_000])
def test_limit_price_outside_band_is_rejected(banded, price):
    assert reject_reason(buy(banded, 1, price)) == R.PRICE_OUTSIDE_BAND
    assert reject_reason(sell(banded, 1, price)) == R.PRICE_OUTSIDE_BAND
    assert banded.depth(SYM) == ([], [])


def test_market_orders_are_not_subject_to_the_band(banded):
    sell(banded, 1, 10_500)
    assert [t[:2] for t in trades(buy(banded, 1))] == [(10_500, 1)]


def test_replace_outside_band_is_rejected(banded):
    order = oid(buy(banded, 1, 10_000))
    assert reject_reason(banded.replace("b", 1, 10_501, order_id=order)) == R.PRICE_OUTSIDE_BAND
    assert banded.order(order).price == 10_000


def test_new_reference_price_moves_the_band(banded):
    (status,) = of(banded.set_reference_price(SYM, 11_000), "status")
    assert (status.band_low, status.band_high) == (10_450, 11_550)
    assert status.phase == "continuous"
    assert reject_reason(buy(banded, 1, 10_449)) == R.PRICE_OUTSIDE_BAND
    assert reject_reason(buy(banded, 1, 11_550)) is None


def test_no_band_by_default():
    engine = make(reference_price=10_000)
    assert reject_reason(buy(engine, 1, 1)) is None
    assert reject_reason(sell(engine, 1, 10**9)) is None


# --------------------------------------------------------------------------- volatility breaker
def _breaker(**kw):
    """Reference 10_000, 1 % move allowed within 1_000 ns; a halt lasts 500 ns."""
    spec = {"reference_price": 10_000, "halt_move_bps": 100, "halt_window_ns": 1_000}
    return make(**{**spec, "halt_duration_ns": 500, **kw})


def _asks(engine, *prices):
    return [oid(sell(engine, 1, p, account="m")) for p in prices]


def test_trade_at_the_band_edge_does_not_halt():
    engine = _breaker()
    _asks(engine, 10_100)
    assert [t[:2] for t in trades(buy(engine, 1, 10_100, ts=10))] == [(10_100, 1)]
    assert engine.phase(SYM) == "continuous"


def test_sweep_beyond_the_band_halts_after_trading_inside_it():
    engine = _breaker()
    _, _, far = _asks(engine, 10_050, 10_100, 10_150)
    events = buy(engine, 3, ts=10)  # market order
    taker = oid(events)
    assert [t[:2] for t in trades(events)] == [(10_050, 1), (10_100, 1)]
    (status,) = of(events, "status")
    assert (status.phase, status.reason, status.halt_until, status.ts) == (
        "halted",
        "volatility",
        510,
        10,
    )
    assert cancels(events) == [(taker, 1, CancelReason.HALTED)]
    assert engine.phase(SYM) == "halted"
    assert engine.depth(SYM) == ([], [(10_150, 1, 1)])
    assert engine.order(far).leaves == 1


def test_downward_sweep_halts_too():
    engine = _breaker()
    for p in (9_950, 9_900, 9_850):
        buy(engine, 1, p, account="m")
    events = sell(engine, 3, 9_800, tif="IOC", ts=10)
    assert [t[:2] for t in trades(events)] == [(9_950, 1), (9_900, 1)]
    assert of(events, "status")[0].phase == "halted"
    assert cancels(events) == [(oid(events), 1, CancelReason.HALTED)]


def test_halt_before_any_trade_when_the_best_price_is_already_outside():
    engine = _breaker()
    _asks(engine, 10_200)
    events = buy(engine, 1, 10_200, tif="IOC", ts=10)
    assert trades(events) == []
    assert engine.phase(SYM) == "halted"
    assert cancels(events) == [(oid(events), 1, CancelReason.HALTED)]


def test_gtc_remainder_rests_into_the_halt():
    engine = _breaker()
    _asks(engine, 10_050, 10_150)
    events = buy(engine, 3, 10_200, ts=10)
    order = oid(events)
    assert [t[:2] for t in trades(events)] == [(10_050, 1)]
    assert cancels(events) == []
    assert engine.order(order).leaves == 2
    assert engine.depth(SYM) == ([(10_200, 2, 1)], [(10_150, 1, 1)])  # crossed while halted


@pytest.fixture
def halted():
    engine = _breaker()
    _asks(engine, 10_050, 10_150)
    buy(engine, 2, ts=10)  # trades 10_050, then halts until 510
    assert engine.phase(SYM) == "halted"
    return engine


def test_orders_during_a_halt_are_collected_without_matching(halted):
    events = buy(halted, 2, 10_200, account="h", ts=100)
    assert kinds(events) == ["accepted", "book"]
    market = oid(sell(halted, 1, account="ms", ts=100))
    assert halted.order(market) is not None
    assert halted.depth(SYM) == ([(10_200, 2, 1)], [(10_150, 1, 1)])


@pytest.mark.parametrize("tif", ["IOC", "FOK"])
def test_ioc_and_fok_are_rejected_during_a_halt(halted, tif):
    assert reject_reason(buy(halted, 1, 10_200, tif=tif, ts=100)) == R.TIF_NOT_IN_AUCTION


def test_nothing_happens_before_the_halt_ends(halted):
    buy(halted, 2, 10_200, ts=100)
    assert halted.advance(509) == []
    assert halted.phase(SYM) == "halted"


def test_advance_after_halt_duration_runs_the_reopening_auction(halted):
    bid = oid(buy(halted, 2, 10_200, account="h", ts=100))
    events = halted.advance(510)
    assert [t[:2] for t in trades(events)] == [(10_150, 1)]
    (trade,) = of(events, "trade")
    assert (trade.buy_order_id, trade.aggressor, trade.ts) == (bid, "none", 510)
    (status,) = of(events, "status")
    assert (status.phase, status.reason, status.halt_until) == ("continuous", "reopening", None)
    assert kinds(events)[-1] == "status"
    assert halted.phase(SYM) == "continuous"
    assert halted.depth(SYM) == ([(10_200, 1, 1)], [])


def test_the_next_command_after_the_halt_runs_the_reopening_auction_first(halted):
    buy(halted, 1, 10_200, account="h", ts=100)
    events = sell(halted, 1, 10_300, account="late", ts=600)
    assert kinds(events)[:2] == ["trade", "book"]
    assert of(events, "status")[0].phase == "continuous"
    assert kinds(events)[-2:] == ["accepted", "book"]
    assert halted.depth(SYM) == ([], [(10_300, 1, 1)])


def test_cancel_after_the_halt_of_an_order_the_reopening_filled_is_rejected(halted):
    bid = oid(buy(halted, 1, 10_200, account="h", ts=100))
    events = halted.cancel("h", bid, ts=600)
    assert len(of(events, "trade")) == 1
    assert [r.reason for r in of(events, "rejected")] == [R.UNKNOWN_ORDER]


def test_replace_after_the_halt_runs_the_reopening_auction_first(halted):
    bid = oid(buy(halted, 3, 10_200, account="h", ts=100))
    events = halted.replace("h", 4, order_id=bid, ts=600)
    assert kinds(events)[0] == "trade"
    (rep,) = of(events, "replaced")
    assert (rep.qty, rep.leaves) == (4, 3)


def test_market_order_collected_in_a_halt_trades_in_the_reopening(halted):
    market = oid(buy(halted, 3, account="mb", ts=100))
    events = halted.advance(510)
    assert [(t[1], t[2]) for t in trades(events)] == [(1, market)]
    assert cancels(events) == [(market, 2, CancelReason.AUCTION_UNFILLED)]


def test_breaker_recentres_on_the_reopening_price(halted):
    buy(halted, 1, 10_200, account="h", ts=100)
    halted.advance(510)  # reopens at 10_150
    sell(halted, 1, 10_250, account="m", ts=520)  # > 1 % above 10_000, within 1 % of 10_150
    assert [t[:2] for t in trades(buy(halted, 1, 10_250, ts=530))] == [(10_250, 1)]
    assert halted.phase(SYM) == "continuous"


def test_trades_leaving_the_window_stop_constraining_the_band():
    def traded_at_10_100():
        engine = _breaker()
        _asks(engine, 10_100, 10_150)
        buy(engine, 1, 10_100, ts=0)
        return engine

    # Within the window, 10_150 is more than 1 % above the reference still in force: halt.
    inside = traded_at_10_100()
    buy(inside, 1, 10_150, ts=500)
    assert inside.phase(SYM) == "halted"
    # Once the window has passed, the band is centred on the last trade (10_100): allowed.
    later = traded_at_10_100()
    assert [t[:2] for t in trades(buy(later, 1, 10_150, ts=1_500))] == [(10_150, 1)]
    assert later.phase(SYM) == "continuous"


def test_manual_halt_with_an_end_time():
    engine = make(reference_price=100)
    (status,) = of(engine.halt(SYM, 5, until=50), "status")
    assert (status.phase, status.reason, status.halt_until) == ("halted", "manual", 50)
    buy(engine, 1, 101, ts=10)
    sell(engine, 1, 99, ts=10)
    assert [t[:2] for t in trades(engine.advance(50))] == [(100, 1)]
    assert engine.phase(SYM) == "continuous"


def test_manual_halt_without_end_waits_for_uncross():
    engine = make(reference_price=100)
    engine.halt(SYM, 5)
    buy(engine, 1, 101, ts=10)
    sell(engine, 1, 99, ts=10)
    assert engine.advance(10**15) == []
    assert [t[:2] for t in trades(engine.uncross(SYM, 20))] == [(100, 1)]


def test_mass_cancel_after_the_halt_runs_the_reopening_auction_first(halted):
    """Regression: mass_cancel used to cancel orders due to trade in the reopening auction."""
    buy(halted, 1, 10_200, account="h", ts=100)
    events = halted.mass_cancel("m", ts=600)
    assert [t[:2] for t in trades(events)] == [(10_150, 1)]
    assert halted.phase(SYM) == "continuous"


def test_end_of_day_after_the_halt_runs_the_reopening_auction_first(halted):
    """Regression: end_of_day used to expire DAY orders due to trade in the reopening auction."""
    buy(halted, 1, 10_200, account="h", ts=100, tif="DAY")
    events = halted.end_of_day(ts=600)
    assert [t[:2] for t in trades(events)] == [(10_150, 1)]
    assert halted.phase(SYM) == "continuous"


# --------------------------------------------------------------------------- the breaker itself
def test_breaker_band_is_within_move_of_every_price_in_the_window():
    breaker = VolatilityBreaker(move_bps=100, window_ns=1_000, reference=10_000)
    assert breaker.band(0) == (9_900, 10_100)
    breaker.record(10, 10_100)
    # high = 1 % above the window minimum (10_000), low = 1 % below the maximum (10_100)
    assert breaker.band(10) == (9_999, 10_100)
    breaker.record(20, 9_950)
    assert breaker.band(20) == (9_999, 10_049)
    # By 1_011 the first trade has left the window; 10_100 is now the anchor in force before it.
    assert breaker.band(1_011) == (9_999, 10_049)
    # At 1_020 both are out: only the last price (9_950) constrains.
    assert breaker.band(1_020) == (9_851, 10_049)


def test_breaker_reset_forgets_history():
    breaker = VolatilityBreaker(move_bps=100, window_ns=1_000, reference=10_000)
    breaker.record(10, 10_100)
    breaker.reset(20_000)
    assert breaker.band(11) == (19_800, 20_200)
