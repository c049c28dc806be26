"""Unit and property tests for the pure clearing ledger (`clearing.ledger`, `clearing.fees`)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from clearing.fees import FeeSchedule, fee_for
from clearing.ledger import (
    FEE_ACCOUNT,
    Change,
    Ledger,
    LedgerError,
    Limits,
    OutOfOrder,
    Position,
    multiplier,
)

SYM = "AGR"


def trade(
    trade_id: int,
    buyer: str,
    seller: str,
    price: int,
    qty: int,
    aggressor: str = "buy",
    symbol: str = SYM,
    ts: int = 0,
) -> dict:
    return {
        "trade_id": trade_id, "symbol": symbol, "price": price, "qty": qty,
        "aggressor_side": aggressor, "buy_account": buyer, "sell_account": seller, "ts": ts,
    }  # fmt: skip


class Tape:
    """Feeds trades to a ledger with consecutive ids."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger

    def __call__(self, buyer: str, seller: str, price: int, qty: int, **kw) -> list[Change]:
        out = self.ledger.settle(
            trade(self.ledger.settled_through + 1, buyer, seller, price, qty, **kw)
        )
        assert out is not None
        return out


def total_cash(ledger: Ledger) -> int:
    return sum(a.cash for a in ledger.accounts.values())


# ---------------------------------------------------------------------------------- fees


@pytest.mark.parametrize(
    ("notional", "bps", "fee"),
    [
        (0, 5.0, 0),
        (123_456, 0.0, 0),
        (10_000, 1.0, 1),
        (5_000, 1.0, 0),  # 0.5 -> 0 (truncated)
        (15_000, 1.0, 1),  # 1.5 -> 1
        (25_000, 1.0, 2),  # 2.5 -> 2
        (35_000, 1.0, 3),  # 3.5 -> 3
        (14_999, 1.0, 1),
        (1_000_000, 2.5, 250),
        (15_000, -1.0, -1),  # rebates truncate toward zero too: never more than exact
        (25_000, -1.0, -2),
        (1_000_000, -0.5, -50),
        (100, 100.0, 1),
    ],
)
def test_fee_for_truncates_toward_zero(notional: int, bps: float, fee: int) -> None:
    assert fee_for(notional, bps) == fee
    assert isinstance(fee_for(notional, bps), int)


def test_fee_schedule_rates_and_bounds() -> None:
    fs = FeeSchedule(maker_bps=-1.5, taker_bps=4.0)
    assert fs.rate("taker") == 4.0
    assert fs.rate("maker") == -1.5
    assert fs.rate("auction") == -1.5  # anything but taker pays the maker rate
    assert FeeSchedule().rate("taker") == 0.0
    with pytest.raises(ValidationError):
        FeeSchedule(taker_bps=-1)
    with pytest.raises(ValidationError):
        FeeSchedule(maker_bps=-101)
    with pytest.raises(ValidationError):
        FeeSchedule(taker_bps=101)
    with pytest.raises(ValidationError):
        FeeSchedule(bogus=1)


def test_multiplier() -> None:
    assert multiplier(Decimal("0.01"), Decimal("1"), Decimal("0.01")) == 1
    assert multiplier(Decimal("0.05"), Decimal("100"), Decimal("0.01")) == 500
    with pytest.raises(ValueError):
        multiplier(Decimal("0.001"), Decimal("1"), Decimal("0.01"))
    with pytest.raises(ValueError):
        multiplier(Decimal("0.015"), Decimal("1"), Decimal("0.01"))


# ---------------------------------------------------------------------------------- accounts


def test_open_account_initial_allocation() -> None:
    ledger = Ledger(multipliers={SYM: 2})
    changes = ledger.open_account(
        "a", cash=500, positions={SYM: 10, "ZZZ": 0, "NOPRICE": 3},
        cost_prices={SYM: 100}, token_hash="h", ts=7,
    )  # fmt: skip
    acct = ledger.get("a")
    assert acct.cash == 500
    assert acct.deposits == 500
    assert acct.fees_paid == 0
    assert acct.token_hash == "h"
    assert acct.limits == Limits()
    assert acct.positions[SYM] == Position(10, 2000, 0)  # 10 lots x 100 ticks x multiplier 2
    assert acct.positions["NOPRICE"] == Position(3, 0, 0)  # no cost price: cost 0
    assert "ZZZ" not in acct.positions  # zero positions are not opened
    assert changes == [
        Change("open", "a", 500, ts=7),
        Change("open", "a", 0, SYM, 10, ts=7),
        Change("open", "a", 0, "NOPRICE", 3, ts=7),
    ]
    assert acct.positions[SYM].avg_cost == 200.0
    assert Position().avg_cost == 0.0


def test_open_account_with_limits_and_credit() -> None:
    ledger = Ledger()
    ledger.open_account("a", cash=1000, limits=Limits(leverage=3.0, short_limit=5))
    acct = ledger.get("a")
    assert acct.limits.short_limit == 5
    assert acct.credit_limit == 2000


def test_open_account_refusals() -> None:
    ledger = Ledger()
    ledger.open_account("a", cash=10)
    with pytest.raises(LedgerError) as exc:
        ledger.open_account("a", cash=99)
    assert exc.value.reason == "account_exists"
    assert ledger.get("a").cash == 10  # untouched
    with pytest.raises(LedgerError) as exc:
        ledger.open_account(FEE_ACCOUNT)
    assert exc.value.reason == "account_exists"
    with pytest.raises(LedgerError) as exc:
        ledger.open_account("b", cash=-1)
    assert exc.value.reason == "invalid_amount"
    with pytest.raises(LedgerError) as exc:
        ledger.open_account("c", positions={SYM: -1})
    assert exc.value.reason == "invalid_amount"
    assert "b" not in ledger.accounts and "c" not in ledger.accounts
    with pytest.raises(LedgerError) as exc:
        ledger.get("nobody")
    assert exc.value.reason == "unknown_account"


def test_deposit_and_withdraw() -> None:
    ledger = Ledger()
    ledger.open_account("a", cash=100)
    assert ledger.deposit("a", 50, ts=3) == Change("deposit", "a", 50, ts=3)
    acct = ledger.get("a")
    assert (acct.cash, acct.deposits) == (150, 150)
    assert ledger.withdraw("a", 150, ts=4) == Change("withdraw", "a", -150, ts=4)
    assert (acct.cash, acct.deposits) == (0, 0)
    with pytest.raises(LedgerError) as exc:
        ledger.withdraw("a", 1)
    assert exc.value.reason == "insufficient_funds"
    assert (acct.cash, acct.deposits) == (0, 0)


@pytest.mark.parametrize("amount", [0, -1, -100])
def test_deposit_withdraw_invalid_amounts(amount: int) -> None:
    ledger = Ledger()
    ledger.open_account("a", cash=100)
    for op in (ledger.deposit, ledger.withdraw):
        with pytest.raises(LedgerError) as exc:
            op("a", amount)
        assert exc.value.reason == "invalid_amount"
    assert ledger.get("a").cash == 100


def test_deposit_withdraw_unknown_account() -> None:
    ledger = Ledger()
    for op in (ledger.deposit, ledger.withdraw):
        with pytest.raises(LedgerError) as exc:
            op("ghost", 5)
        assert exc.value.reason == "unknown_account"
    assert "ghost" not in ledger.accounts


def test_withdraw_respects_the_credit_line() -> None:
    ledger = Ledger()
    ledger.open_account("a", cash=1000, limits=Limits(leverage=2.0))
    ledger.open_account("s", positions={SYM: 100})
    tape = Tape(ledger)
    tape("a", "s", 100, 15)  # cash 1000 - 1500 = -500, within the 1000 credit line
    acct = ledger.get("a")
    assert acct.cash == -500
    assert ledger.violations == []
    # After withdrawing 200: deposits 800 -> credit 800, cash -700 >= -800.
    ledger.withdraw("a", 200)
    assert (acct.cash, acct.deposits, acct.credit_limit) == (-700, 800, 800)
    # Another 200: deposits 600 -> credit 600, cash -900 < -600: refused, nothing changes.
    with pytest.raises(LedgerError) as exc:
        ledger.withdraw("a", 200)
    assert exc.value.reason == "insufficient_funds"
    assert (acct.cash, acct.deposits) == (-700, 800)
    # x is allowed iff -700 - x >= -(800 - x), i.e. x <= 50.
    with pytest.raises(LedgerError):
        ledger.withdraw("a", 51)
    ledger.withdraw("a", 50)
    assert (acct.cash, acct.deposits, acct.credit_limit) == (-750, 750, 750)


def test_withdraw_with_credit_from_positive_cash() -> None:
    ledger = Ledger()
    ledger.open_account("a", cash=1000, limits=Limits(leverage=3.0))
    # Withdraw 1000: deposits 0 -> credit 0, cash 0 >= 0: allowed (credit only against deposits).
    ledger.withdraw("a", 1000)
    assert ledger.get("a").cash == 0
    with pytest.raises(LedgerError):
        ledger.withdraw("a", 1)


def test_set_limits() -> None:
    ledger = Ledger()
    ledger.open_account("a")
    ledger.set_limits("a", Limits(short_limit=7))
    assert ledger.get("a").limits.short_limit == 7
    with pytest.raises(LedgerError):
        ledger.set_limits("nobody", Limits())


# ---------------------------------------------------------------------------------- settlement


def test_settle_moves_cash_and_positions_with_multiplier() -> None:
    ledger = Ledger(multipliers={"BIG": 5})
    ledger.open_account("b", cash=10_000)
    ledger.open_account("s", positions={"BIG": 10})
    changes = ledger.settle(trade(1, "b", "s", 100, 3, symbol="BIG", ts=42))
    assert changes == [
        Change("trade", "b", -1500, "BIG", 3, 0, 1, 42),
        Change("trade", "s", 1500, "BIG", -3, 0, 1, 42),
        Change("fee", FEE_ACCOUNT, 0, trade_id=1, ts=42),
    ]
    b, s = ledger.get("b"), ledger.get("s")
    assert b.cash == 8500 and s.cash == 1500
    assert b.positions["BIG"].qty == 3 and s.positions["BIG"].qty == 7
    assert b.positions["BIG"].cost == 1500
    assert ledger.marks == {"BIG": 100}
    assert ledger.settled_through == 1


@pytest.mark.parametrize(
    ("aggressor", "buy_fee", "sell_fee"),
    [
        ("buy", 50, -10),  # buyer took: taker 5 bps; seller rested: maker rebate 1 bp
        ("sell", -10, 50),
        ("none", -10, -10),  # auction: both maker
    ],
)
def test_fee_attribution(aggressor: str, buy_fee: int, sell_fee: int) -> None:
    ledger = Ledger(FeeSchedule(maker_bps=-1.0, taker_bps=5.0))
    ledger.open_account("b", cash=200_000)
    ledger.open_account("s", positions={SYM: 1000})
    before = total_cash(ledger)
    changes = Tape(ledger)("b", "s", 100, 1000, aggressor=aggressor)  # notional 100_000
    assert changes is not None
    b, s, f = ledger.get("b"), ledger.get("s"), ledger.get(FEE_ACCOUNT)
    assert b.cash == 200_000 - 100_000 - buy_fee
    assert s.cash == 100_000 - sell_fee
    assert (b.fees_paid, s.fees_paid) == (buy_fee, sell_fee)
    assert f.cash == buy_fee + sell_fee
    assert total_cash(ledger) == before  # conserved exactly, rebates included
    assert [c.fee for c in changes] == [buy_fee, sell_fee, 0]
    assert changes[2].cash_delta == buy_fee + sell_fee
    assert sum(c.cash_delta for c in changes) == 0


def test_idempotent_settlement() -> None:
    ledger = Ledger(FeeSchedule(taker_bps=10))
    ledger.open_account("b", cash=10_000)
    ledger.open_account("s", positions={SYM: 10})
    t = trade(1, "b", "s", 100, 5)
    assert ledger.settle(t) is not None
    snapshot = (
        {n: (a.cash, a.fees_paid, dict((s, (p.qty, p.cost, p.realised))
                                       for s, p in a.positions.items()))
         for n, a in ledger.accounts.items()},
        dict(ledger.marks), ledger.settled_through,
    )  # fmt: skip
    assert ledger.settle(t) is None
    assert ledger.settle({**t, "price": 999, "qty": 1}) is None  # same id: still a duplicate
    again = (
        {n: (a.cash, a.fees_paid, dict((s, (p.qty, p.cost, p.realised))
                                       for s, p in a.positions.items()))
         for n, a in ledger.accounts.items()},
        dict(ledger.marks), ledger.settled_through,
    )  # fmt: skip
    assert again == snapshot


def test_gap_raises_out_of_order_and_changes_nothing() -> None:
    ledger = Ledger(settled_through=5)
    ledger.open_account("b", cash=1000)
    with pytest.raises(OutOfOrder) as exc:
        ledger.settle(trade(7, "b", "s", 10, 1))
    assert exc.value.expected == 6
    assert exc.value.reason == "out_of_order"
    assert isinstance(exc.value, LedgerError)
    assert ledger.settled_through == 5
    assert "s" not in ledger.accounts
    assert ledger.get("b").cash == 1000
    assert ledger.settle(trade(5, "b", "s", 10, 1)) is None  # at or below: duplicate
    assert ledger.settle(trade(6, "b", "s", 10, 1)) is not None
    assert ledger.settled_through == 6
    with pytest.raises(OutOfOrder):  # a gap is named before the record is read
        ledger.settle({"trade_id": 9})


def test_unknown_accounts_are_auto_opened() -> None:
    ledger = Ledger()
    changes = ledger.settle(trade(1, "x", "y", 10, 2))
    assert changes is not None
    x, y = ledger.get("x"), ledger.get("y")
    assert (x.cash, x.positions[SYM].qty) == (-20, 2)
    assert (y.cash, y.positions[SYM].qty) == (20, -2)
    assert x.token_hash == "" and x.deposits == 0
    # Both broke the default rules: recorded, not refused.
    assert (1, "x", "cash_below_floor") in ledger.violations
    assert (1, "y", "short_limit") in ledger.violations


def test_avg_cost_add_reduce_close() -> None:
    ledger = Ledger()
    ledger.open_account("a", cash=100_000)
    ledger.open_account("m", cash=100_000, positions={SYM: 1000})
    tape = Tape(ledger)
    tape("a", "m", 100, 10)
    pos = ledger.get("a").positions[SYM]
    assert (pos.qty, pos.cost, pos.realised) == (10, 1000, 0)
    tape("a", "m", 130, 5)  # add: cost 1000 + 650
    assert (pos.qty, pos.cost, pos.realised) == (15, 1650, 0)
    assert pos.avg_cost == 110.0
    tape("m", "a", 120, 6)  # reduce: closed 1650 * 6/15 = 660, proceeds 720
    assert (pos.qty, pos.cost, pos.realised) == (9, 990, 60)
    assert pos.avg_cost == 110.0
    tape("m", "a", 90, 9)  # close: proceeds 810 - 990
    assert (pos.qty, pos.cost, pos.realised) == (0, 0, -120)
    assert ledger.get("a").cash == 100_000 - 1000 - 650 + 720 + 810
    assert ledger.unrealised(ledger.get("a"), SYM) == 0


def test_reduce_rounds_the_closed_cost() -> None:
    ledger = Ledger()
    ledger.open_account("a", cash=1000)
    ledger.open_account("m", positions={SYM: 100})
    tape = Tape(ledger)
    tape("a", "m", 10, 1)
    tape("a", "m", 11, 2)
    pos = ledger.get("a").positions[SYM]
    assert (pos.qty, pos.cost) == (3, 32)
    tape("m", "a", 12, 1)  # closed round(32/3) = 11
    assert (pos.qty, pos.cost, pos.realised) == (2, 21, 1)
    tape("m", "a", 12, 1)  # closed round(10.5) = 10 (half to even)
    assert (pos.qty, pos.cost, pos.realised) == (1, 11, 3)
    tape("m", "a", 12, 1)  # closed 11
    assert (pos.qty, pos.cost, pos.realised) == (0, 0, 4)
    assert pos.realised == 3 * 12 - 32  # rounding only moves realised between steps


def test_flip_long_to_short_and_back_to_flat() -> None:
    ledger = Ledger()
    ledger.open_account("a", cash=10_000, limits=Limits(short_limit=100))
    ledger.open_account("m", cash=10_000, positions={SYM: 1000})
    tape = Tape(ledger)
    tape("a", "m", 100, 10)
    tape("m", "a", 120, 15)  # close 10 at 120 (+200), open short 5 at 120
    acct = ledger.get("a")
    pos = acct.positions[SYM]
    assert (pos.qty, pos.cost, pos.realised) == (-5, -600, 200)
    assert pos.avg_cost == 120.0
    assert ledger.unrealised(acct, SYM) == 0  # mark 120
    tape("a", "m", 100, 5)  # cover 5 at 100: +100
    assert (pos.qty, pos.cost, pos.realised) == (0, 0, 300)
    assert acct.cash == 10_000 - 1000 + 1800 - 500
    assert ledger.violations == []


def test_flip_short_to_long() -> None:
    ledger = Ledger()
    ledger.open_account("a", cash=10_000, limits=Limits(short_limit=100))
    ledger.open_account("m", cash=10_000, positions={SYM: 1000})
    tape = Tape(ledger)
    tape("m", "a", 50, 10)  # short 10 at 50
    pos = ledger.get("a").positions[SYM]
    assert (pos.qty, pos.cost, pos.realised) == (-10, -500, 0)
    tape("m", "a", 60, 4)  # add to the short: cost -500 - 240
    assert (pos.qty, pos.cost, pos.realised) == (-14, -740, 0)
    tape("a", "m", 40, 20)  # cover 14 at 40 (realised 740 - 560 = 180), open long 6 at 40
    assert (pos.qty, pos.cost, pos.realised) == (6, 240, 180)
    assert pos.avg_cost == 40.0
    assert ledger.unrealised(ledger.get("a"), SYM) == 0


def test_unrealised_equity_and_pnl_at_marks() -> None:
    ledger = Ledger(FeeSchedule(maker_bps=0, taker_bps=100), multipliers={SYM: 2})
    ledger.open_account("a", cash=10_000, positions={"OTHER": 4}, cost_prices={"OTHER": 25})
    ledger.open_account("m", cash=10_000, positions={SYM: 100})
    tape = Tape(ledger)
    tape("a", "m", 100, 10)  # notional 2000, a pays taker 1% = 20
    acct = ledger.get("a")
    assert acct.cash == 10_000 - 2000 - 20
    assert acct.fees_paid == 20
    assert ledger.unrealised(acct, SYM) == 0
    tape("m", "a", 110, 4, aggressor="buy")  # a sells 4 as maker (0 bps) at 110: mark 110
    pos = acct.positions[SYM]
    # closed cost 2000 * 4/10 = 800, proceeds 880: realised 80; remaining 6 lots cost 1200
    assert (pos.qty, pos.cost, pos.realised) == (6, 1200, 80)
    assert ledger.unrealised(acct, SYM) == 6 * 110 * 2 - 1200  # 120
    assert ledger.unrealised(acct, "OTHER") == 0  # no mark yet
    assert ledger.unrealised(acct, "NEVER") == 0
    equity = acct.cash + 6 * 110 * 2 + 100  # OTHER at cost (4 x 25)
    assert ledger.equity(acct) == equity
    assert ledger.pnl(acct) == 80 + 120 - 20
    assert ledger.pnl(acct) == equity - acct.deposits - 100
    # Once OTHER trades its position counts at the mark.
    ledger.open_account("o", cash=1000)
    tape("o", "a", 30, 1, symbol="OTHER")
    assert ledger.unrealised(acct, "OTHER") == 3 * 30 - 75
    assert acct.positions["OTHER"].realised == 30 - 25


def test_violations_cash_floor() -> None:
    ledger = Ledger()
    ledger.open_account("a", cash=1000)
    ledger.open_account("lev", cash=1000, limits=Limits(leverage=2.0))
    ledger.open_account("m", positions={SYM: 100})
    tape = Tape(ledger)
    tape("a", "m", 100, 10)  # cash exactly 0: fine
    assert ledger.violations == []
    tape("a", "m", 1, 1)  # cash -1
    assert ledger.violations == [(2, "a", "cash_below_floor")]
    tape("lev", "m", 100, 20)  # cash -1000 == -credit: fine
    assert len(ledger.violations) == 1
    tape("lev", "m", 1, 1)
    assert ledger.violations[-1] == (4, "lev", "cash_below_floor")
    # The trade is booked regardless.
    assert ledger.get("lev").cash == -1001


def test_violations_short_limit_and_max_position() -> None:
    ledger = Ledger()
    ledger.open_account("b", cash=10**6, limits=Limits(max_position=5))
    ledger.open_account("s", positions={SYM: 3}, limits=Limits(short_limit=2))
    tape = Tape(ledger)
    tape("b", "s", 10, 5)  # b at 5 (= max), s at -2 (= -short_limit)
    assert ledger.violations == []
    tape("b", "s", 10, 1)  # b at 6, s at -3
    assert sorted(ledger.violations) == [(2, "b", "max_position"), (2, "s", "short_limit")]
    assert ledger.get("s").positions[SYM].qty == -3


def test_fee_account_receives_all_fees() -> None:
    ledger = Ledger(FeeSchedule(maker_bps=1, taker_bps=3))
    ledger.open_account("a", cash=10**7, positions={SYM: 10**4})
    ledger.open_account("b", cash=10**7, positions={SYM: 10**4})
    tape = Tape(ledger)
    tape("a", "b", 1234, 77, aggressor="buy")
    tape("b", "a", 999, 13, aggressor="sell")
    tape("a", "b", 4321, 5, aggressor="none")
    fees = ledger.get(FEE_ACCOUNT)
    assert fees.cash == ledger.get("a").fees_paid + ledger.get("b").fees_paid
    assert fees.cash > 0
    assert total_cash(ledger) == 2 * 10**7


# ---------------------------------------------------------------------------------- property

ACCOUNTS = ["a", "b", "c"]
SYMBOLS = {"AGR": 1, "BIG": 3}
COST_PRICES = {"AGR": 100, "BIG": 40}
INITIAL_CASH = {"a": 50_000, "b": 0, "c": 7_777}
INITIAL_POS = {"a": {"AGR": 20}, "b": {"AGR": 5, "BIG": 9}, "c": {}}

trade_st = st.tuples(
    st.permutations(ACCOUNTS).map(lambda p: (p[0], p[1])),
    st.sampled_from(sorted(SYMBOLS)),
    st.integers(1, 500),
    st.integers(1, 40),
    st.sampled_from(["buy", "sell", "none"]),
)
fees_st = st.builds(
    FeeSchedule,
    maker_bps=st.sampled_from([0.0, -1.0, -0.5, 1.5, 2.0]),
    taker_bps=st.sampled_from([0.0, 0.5, 2.5, 10.0, 100.0]),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(fees=fees_st, trades=st.lists(trade_st, max_size=40))
def test_random_trades_conserve_and_account_for_pnl(fees: FeeSchedule, trades: list) -> None:
    ledger = Ledger(fees, SYMBOLS)
    initial_cost = {}
    for name in ACCOUNTS:
        ledger.open_account(
            name, INITIAL_CASH[name], INITIAL_POS[name], cost_prices=COST_PRICES,
        )  # fmt: skip
        initial_cost[name] = sum(
            q * COST_PRICES[s] * SYMBOLS[s] for s, q in INITIAL_POS[name].items()
        )
    initial_total_cash = total_cash(ledger)
    initial_qty = {s: sum(p.get(s, 0) for p in INITIAL_POS.values()) for s in SYMBOLS}
    cash_from_changes = dict(INITIAL_CASH)
    cash_from_changes[FEE_ACCOUNT] = 0

    for i, ((buyer, seller), symbol, price, qty, aggressor) in enumerate(trades, start=1):
        changes = ledger.settle(trade(i, buyer, seller, price, qty, aggressor, symbol))
        assert changes is not None
        for c in changes:
            cash_from_changes[c.account] += c.cash_delta

    assert ledger.settled_through == len(trades)
    # Positions: every symbol's total is the initial allocation.
    for symbol in SYMBOLS:
        assert sum(
            a.positions[symbol].qty for a in ledger.accounts.values() if symbol in a.positions
        ) == initial_qty[symbol]
    # Cash: conserved exactly, fee account included; the change records say the same.
    assert total_cash(ledger) == initial_total_cash
    assert {n: a.cash for n, a in ledger.accounts.items()} == cash_from_changes
    assert ledger.get(FEE_ACCOUNT).cash == sum(ledger.get(n).fees_paid for n in ACCOUNTS)

    for name in ACCOUNTS:
        acct = ledger.get(name)
        realised = sum(p.realised for p in acct.positions.values())
        unrealised = sum(ledger.unrealised(acct, s) for s in acct.positions)
        equity = ledger.equity(acct)
        # realised - cost moves by exactly -(signed notional) on every leg (add, reduce, flip:
        # the rounded closed cost leaves `cost` and enters `realised`), and cash moves by
        # -(signed notional) - fee, so the identity below holds to the cash unit, with no
        # rounding slack at all.
        assert realised + unrealised == (
            equity - (INITIAL_CASH[name] + initial_cost[name]) + acct.fees_paid
        )
        assert ledger.pnl(acct) == equity - acct.deposits - initial_cost[name]
        for pos in acct.positions.values():
            assert pos.qty != 0 or pos.cost == 0  # a flat position carries no cost
            assert pos.qty * pos.cost >= 0  # cost basis has the sign of the position
