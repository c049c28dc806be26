"""Margin on short positions: the pure rule (`clearing.margin`), the gate that applies it before
a short sale and the ledger's margin call, checked against exact rational arithmetic."""

from __future__ import annotations

import itertools
import sqlite3
from fractions import Fraction
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from clearing.fees import FeeSchedule, fee_for
from clearing.ledger import Ledger, Limits
from clearing.margin import UNPRICED, margin_shortfall
from clearing.risk import RiskGate, hash_token
from clearing.store import Store
from exchange.engine import Engine
from exchange.symbols import SymbolSpec

SYMS = ("AGR", "BXT")
qtys = st.integers(-10_000, 10_000)
prices = st.integers(1, 1_000_000)
fractions = st.sampled_from([0.0, 0.25, 0.3, 0.5, 1.0, 1.5]) | st.floats(0.0, 10.0)


def exact_shortfall(cash: int, positions: dict, marks: dict, mult: dict, fraction: float) -> int:
    """The rule written out with fractions: what equity lacks of fraction x short notional."""
    bps = round(fraction * 10_000)
    if bps <= 0:
        return 0
    equity = Fraction(cash)
    short = Fraction(0)
    for s, q in positions.items():
        if q < 0 and s not in marks:
            return UNPRICED
        if s in marks:
            v = q * marks[s] * mult.get(s, 1)
            equity += v
            short += max(-v, 0)
    if not short:
        return 0  # margin is on short positions only (a negative balance is credit's rule)
    need = short * bps / 10_000
    lack = need - equity
    return max(int(-(-lack // 1)), 0)  # whole cash units, rounded up


@settings(max_examples=400, deadline=None)
@given(cash=st.integers(-10**12, 10**12), positions=st.dictionaries(st.sampled_from(SYMS), qtys),
       marks=st.dictionaries(st.sampled_from(SYMS), prices),
       mult=st.dictionaries(st.sampled_from(SYMS), st.integers(1, 100)), fraction=fractions)
def test_the_rule_is_the_exact_rule(cash, positions, marks, mult, fraction) -> None:
    got = margin_shortfall(cash, positions, marks, mult, fraction)
    assert got == exact_shortfall(cash, positions, marks, mult, fraction)
    if 0 < got < UNPRICED:
        # the shortfall is exactly what covers it: one unit less does not
        assert margin_shortfall(cash + got, positions, marks, mult, fraction) == 0
        assert margin_shortfall(cash + got - 1, positions, marks, mult, fraction) == 1


@settings(max_examples=300, deadline=None)
@given(cash=st.integers(-10**10, 10**10), more=st.integers(0, 10**10),
       positions=st.dictionaries(st.sampled_from(SYMS), qtys),
       marks=st.fixed_dictionaries({s: prices for s in SYMS}), f1=fractions, f2=fractions)
def test_more_cash_never_hurts_and_a_higher_fraction_never_helps(
    cash, more, positions, marks, f1, f2,
) -> None:  # fmt: skip
    lo, hi = sorted((f1, f2))
    assert margin_shortfall(cash + more, positions, marks, {}, hi) <= margin_shortfall(
        cash, positions, marks, {}, hi)  # fmt: skip
    assert margin_shortfall(cash, positions, marks, {}, lo) <= margin_shortfall(
        cash, positions, marks, {}, hi)  # fmt: skip
    longs = {s: abs(q) for s, q in positions.items()}
    assert margin_shortfall(cash, longs, marks, {}, hi) == 0  # no short, no margin
    assert margin_shortfall(cash, positions, marks, {}, 0.0) == 0  # margin off


def test_a_short_without_a_mark_cannot_be_valued() -> None:
    assert margin_shortfall(10**9, {"AGR": -1}, {}, {}, 0.5) == UNPRICED
    assert margin_shortfall(0, {"AGR": 5}, {}, {}, 0.5) == 0  # a long without a mark: no short


def test_limits_refuse_a_maintenance_margin_above_the_initial_one() -> None:
    with pytest.raises(ValidationError, match="maintenance_margin"):
        Limits(short_limit=10, short_margin=0.3, maintenance_margin=0.5)
    assert Limits(short_limit=10, short_margin=0.5, maintenance_margin=0.3).short_margin == 0.5


# ------------------------------------------------------------------------------- the gate

FEES = FeeSchedule(maker_bps=-1.0, taker_bps=4.0)  # reservations and proceeds use 4 bps


def gate_for(cash: int, pos: int, limits: Limits, mark: int | None) -> tuple[RiskGate, Engine]:
    gate = RiskGate(FEES, {"AGR": 1})
    gate.update(0, [{
        "account": "A", "token_hash": hash_token("t"), "cash": cash, "positions": {"AGR": pos},
        "credit_limit": 0, "short_limit": limits.short_limit, "max_position": None,
        "max_order_notional": None, "short_margin": limits.short_margin,
    }], marks=None if mark is None else {"AGR": mark})  # fmt: skip
    return gate, Engine([SymbolSpec(symbol="AGR")])


def worst_case_shortfall(cash: int, pos: int, sells: list[tuple[int, int]], mark: int,
                         fraction: float, buys: list[tuple[int, int]] = ()) -> int:  # fmt: skip
    """Every sell filled at the lower of its price and the mark, fees at the dearer rate; every
    buy paid for with its fee, its shares worth the lower of its price and the mark."""
    for price, qty in buys:
        cash -= price * qty + fee_for(price * qty, 4.0) - min(price, mark) * qty
    for price, qty in sells:
        notional = min(price, mark) * qty
        cash += notional - fee_for(notional, 4.0)
        pos -= qty
    return exact_shortfall(cash, {"AGR": pos}, {"AGR": mark}, {}, fraction)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cash=st.integers(0, 5_000_000), pos=st.integers(0, 500), mark=st.integers(50, 20_000),
       fraction=st.sampled_from([0.25, 0.5, 1.0, 2.0]),
       sells=st.lists(st.tuples(st.integers(40, 25_000), st.integers(1, 300)), max_size=25))
def test_the_gate_accepts_a_short_sale_exactly_when_its_worst_case_keeps_the_margin(
    cash, pos, mark, fraction, sells,
) -> None:  # fmt: skip
    limits = Limits(short_limit=10**9, short_margin=fraction)
    gate, engine = gate_for(cash, pos, limits, mark)
    resting: list[tuple[int, int]] = []
    clid = itertools.count(1)
    for price, qty in sells:
        offered = sum(q for _p, q in resting)
        reason = gate.check_new("A", c := next(clid), "AGR", "sell", qty, price)
        opens_short = pos - offered - qty < 0
        lacks = worst_case_shortfall(cash, pos, [*resting, (price, qty)], mark, fraction)
        if opens_short and lacks:
            assert reason == "insufficient_margin"
        else:
            assert reason is None
            gate.on_events(engine.submit("AGR", "sell", "limit", qty, price, "A", c))
            resting.append((price, qty))
    # whatever rests, the account's worst case keeps its margin (or sells only what it holds)
    if sum(q for _p, q in resting) > pos:
        assert worst_case_shortfall(cash, pos, resting, mark, fraction) == 0


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cash=st.integers(0, 2_000_000), mark=st.integers(50, 20_000),
       buys=st.lists(st.tuples(st.integers(40, 1_000), st.integers(1, 300)), max_size=5),
       sells=st.lists(st.tuples(st.integers(1_001, 25_000), st.integers(1, 300)), max_size=12))
def test_resting_bids_count_at_their_worst_in_the_margin(cash, mark, buys, sells) -> None:
    gate, engine = gate_for(cash, 0, Limits(short_limit=10**9, short_margin=0.5), mark)
    clid = itertools.count(1)
    bids: list[tuple[int, int]] = []
    for price, qty in buys:
        if gate.check_new("A", c := next(clid), "AGR", "buy", qty, price) is None:
            gate.on_events(engine.submit("AGR", "buy", "limit", qty, price, "A", c))
            bids.append((price, qty))
    asks: list[tuple[int, int]] = []
    for price, qty in sells:
        reason = gate.check_new("A", c := next(clid), "AGR", "sell", qty, price)
        lacks = worst_case_shortfall(cash, 0, [*asks, (price, qty)], mark, 0.5, bids)
        assert reason == ("insufficient_margin" if lacks else None)
        if reason is None:
            gate.on_events(engine.submit("AGR", "sell", "limit", qty, price, "A", c))
            asks.append((price, qty))


def test_a_resting_bid_is_not_money_gone() -> None:
    gate, engine = gate_for(100_000, 0, Limits(short_limit=1_000, short_margin=0.5), 10_000)
    assert gate.check_new("A", 1, "AGR", "buy", 9, 9_000) is None  # reserves 81,032
    gate.on_events(engine.submit("AGR", "buy", "limit", 9, 9_000, "A", 1))
    # 10 short at the 100.00 mark needs 50,000: with the bid's 81,032 gone and nothing for its
    # shares equity would be 18,928; its shares are worth 81,000 if it fills
    assert gate.check_new("A", 2, "AGR", "sell", 10, 10_100) is None
    assert gate.check_new("A", 3, "AGR", "sell", 20, 10_100) == "insufficient_margin"


def test_no_shorts_stays_insufficient_position_whatever_the_margin() -> None:
    gate, _ = gate_for(10**9, 5, Limits(), 10_000)
    assert gate.check_new("A", 1, "AGR", "sell", 6, 10_000) == "insufficient_position"
    assert gate.check_new("A", 2, "AGR", "sell", 5, 10_000) is None


def test_buying_back_a_short_is_never_refused_for_margin() -> None:
    # short 100 at mark 100.00 with equity far below the margin: sells refused, buys not
    gate, _ = gate_for(1_050_000, -100, Limits(short_limit=1_000, short_margin=0.5), 10_000)
    assert gate.check_new("A", 1, "AGR", "sell", 1, 10_000) == "insufficient_margin"
    assert gate.check_new("A", 2, "AGR", "buy", 100, 10_000) is None


def test_a_replace_that_lowers_a_short_sales_price_below_the_mark_is_margin_checked() -> None:
    gate, engine = gate_for(100_000, 0, Limits(short_limit=1_000, short_margin=0.5), 10_000)
    assert gate.check_new("A", 1, "AGR", "sell", 10, 10_000) is None  # needs 50,000: has 100,000
    gate.on_events(engine.submit("AGR", "sell", "limit", 10, 10_000, "A", 1))
    oid = next(iter(gate.orders))
    assert gate.check_replace("A", oid, 10, 20_000) is None  # a higher price: less risk
    # selling at 1.00 a share worth 100.00 loses 99,000 of equity: refused
    assert gate.check_replace("A", oid, 10, 100) == "insufficient_margin"
    assert gate.check_replace("A", oid, 30, 10_000) == "insufficient_margin"  # 150,000 short
    # 200,000 short needs 100,000; the sale's fee leaves 99,920: refused; 190,000 short is not
    assert gate.check_replace("A", oid, 20, 10_000) == "insufficient_margin"
    assert gate.check_replace("A", oid, 19, 10_000) is None


def test_the_gate_marks_from_the_trades_it_follows_and_keeps_them_across_a_restart() -> None:
    gate, engine = gate_for(10**7, 100, Limits(short_limit=1_000, short_margin=0.5), None)
    gate.update(0, [{"account": "B", "token_hash": "", "cash": 10**7, "positions": {},
                     "credit_limit": 0, "short_limit": 0, "max_position": None,
                     "max_order_notional": None}])  # fmt: skip
    gate.on_events(engine.submit("AGR", "sell", "limit", 10, 12_345, "A", 1))
    gate.on_events(engine.submit("AGR", "buy", "limit", 10, 12_345, "B", 1))
    assert gate.marks == {"AGR": 12_345}
    gate.update(0, [], marks={"AGR": 1})  # clearing's settled mark does not override a newer one
    assert gate.marks == {"AGR": 12_345}
    again = RiskGate(FEES, {"AGR": 1})
    again.restore_state(gate.snapshot_state())
    assert again.marks == {"AGR": 12_345}


# ------------------------------------------------------------------------------ the ledger

def test_the_ledger_puts_an_account_in_a_margin_call_when_the_price_rises() -> None:
    ledger = Ledger(FeeSchedule(maker_bps=0, taker_bps=0), {"AGR": 1})
    limits = Limits(short_limit=1_000, short_margin=0.5, maintenance_margin=0.3)
    ledger.open_account("S", cash=50_000, limits=limits)
    ledger.open_account("L", cash=10**9)
    ledger.settle_trade(1, "AGR", 10_000, 10, "buy", "L", "S")  # S short 10 at 100.00
    s = ledger.accounts["S"]
    # equity 50,000 = 0.5 x 100,000: at the initial margin, above maintenance
    assert ledger.margin_shortfall(s) == 0 and ledger.margin_calls() == []
    ledger.settle_trade(2, "AGR", 11_600, 1, "buy", "L", "S")  # the mark rises to 116.00
    # equity 150,000 + 11,600 - 11 x 11,600 = 34,000 < 0.3 x 127,600 = 38,280
    assert ledger.margin_shortfall(s) == 38_280 - 34_000
    assert ledger.margin_calls() == ["S"]


# ------------------------------------------------------------------------------- the store

def test_margins_persist_and_an_older_database_gains_them_as_off(tmp_path: Path) -> None:
    path = tmp_path / "clearing.db"
    ledger = Ledger()
    limits = Limits(short_limit=50, short_margin=0.5, maintenance_margin=0.25)
    changes = ledger.open_account("M", cash=1_000, limits=limits)
    changes += ledger.open_account("old", cash=1_000)
    store = Store(path)
    store.commit(ledger, changes)
    store.close()
    again = Ledger()
    Store(path).load(again)
    assert again.accounts["M"].limits == limits

    # a database from before margins: no such columns (and rows that never had them)
    with sqlite3.connect(path) as conn:
        conn.execute("ALTER TABLE accounts DROP COLUMN short_margin")
        conn.execute("ALTER TABLE accounts DROP COLUMN maintenance_margin")
    older = Ledger()
    store = Store(path)  # adds the columns, meaning "no margin rule"
    store.load(older)
    assert older.accounts["M"].limits == Limits(short_limit=50)
    assert older.accounts["old"].limits == Limits()
    store.commit(older, [], touched=["M"])  # and writes them from now on
    store.close()


def test_a_market_file_with_maintenance_above_initial_margin_is_one_clear_error(
    tmp_path: Path,
) -> None:
    from agents.config import load_market
    from exchange.errors import UserError

    bad = tmp_path / "m.toml"
    bad.write_text('[[symbols]]\nsymbol = "AGR"\n[clearing]\nshort_limit = 10\n'
                   "short_margin = 0.3\nmaintenance_margin = 0.5\n")  # fmt: skip
    with pytest.raises(UserError, match=r"maintenance_margin 0\.5 is above short_margin 0\.3"):
        load_market(bad)
    bad.write_text('[[symbols]]\nsymbol = "AGR"\n[clearing]\nshort_limit = 10\n'
                   "short_margin = 0.5\nmaintenance_margin = 0.3\n")  # fmt: skip
    assert load_market(bad).clearing.limits() == Limits(short_limit=10, short_margin=0.5,
                                                        maintenance_margin=0.3)  # fmt: skip
