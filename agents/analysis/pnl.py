"""Trading PnL and inventory PnL: what an account's own trades made, apart from price drift.

Every agent of a market starts with an allocation (cash and, usually, shares). Its total PnL,
marked to market, is then the sum of two parts that mean very different things:

* **trading PnL**: what its own trades made, marked to market: for each trade
  ``(mark - trade price) x signed qty x multiplier - fee`` (signed qty: + bought, - sold).
  An agent that never trades has exactly 0.
* **inventory PnL**: the change in value of what it was given,
  ``starting position x (mark - starting mark) x multiplier``: pure price drift, the same for
  every agent with the same allocation, whatever it does.

A leaderboard ranked by the total ranks agents by the drift of the shares they were handed;
ranked by trading PnL it ranks them by what they did. Both the live leaderboard (`agora up`,
`agora accounts`) and the simulated market's results (`agora simulate`) use `split` here.

Everything is in integers: prices and marks in ticks, quantities in lots, cash and PnL in cash
units; `multipliers` are cash units per (tick x lot) per symbol (default 1, as in the
clearing house). `split` works from balances (start and end), `trading_from_fills` from the
trades one by one; the two agree exactly (the tests check it), because
``sum((mark - price) x q) - fees = (cash - cash0) + (pos - pos0) x mark``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

__all__ = ["PnlSplit", "TradeLeg", "split", "split_by", "trading_from_fills"]


@dataclass(frozen=True, slots=True)
class PnlSplit:
    """Trading and inventory PnL (cash units); `total` is their sum."""

    trading: int
    inventory: int

    @property
    def total(self) -> int:
        return self.trading + self.inventory

    def __add__(self, other: PnlSplit) -> PnlSplit:
        return PnlSplit(self.trading + other.trading, self.inventory + other.inventory)


@dataclass(frozen=True, slots=True)
class TradeLeg:
    """One fill of one account: side "buy" or "sell", price in ticks, qty in lots, fee in cash
    units (negative: a rebate)."""

    symbol: str
    side: str
    price: int
    qty: int
    fee: int = 0


def _signed(side: str, qty: int) -> int:
    if side == "buy":
        return qty
    if side == "sell":
        return -qty
    raise ValueError(f"side must be 'buy' or 'sell', not {side!r}")


def split(
    start_cash: int,
    start_positions: Mapping[str, int],
    cash: int,
    positions: Mapping[str, int],
    start_marks: Mapping[str, int],
    marks: Mapping[str, int],
    multipliers: Mapping[str, int] | None = None,
) -> PnlSplit:
    """Trading and inventory PnL of one account from its balances at the start and now.

    `start_marks` are the prices the allocation was valued at when it was given (the symbols'
    reference prices in Agora); `marks` the prices to value it at now (the last trades). A
    symbol missing from `marks` is marked at its starting mark (it has not traded).
    Deposits and withdrawals after the start are not trades: subtract them from `cash` first.
    """
    mult = multipliers or {}
    trading = cash - start_cash
    inventory = 0
    for symbol in set(start_positions) | set(positions):
        m = mult.get(symbol, 1)
        start_mark = start_marks.get(symbol)
        mark = marks.get(symbol, start_mark)
        held, given = positions.get(symbol, 0), start_positions.get(symbol, 0)
        if held != given:
            if mark is None:
                raise ValueError(f"no mark for {symbol!r}, whose position changed")
            trading += (held - given) * mark * m
        if given:
            if mark is None:
                raise ValueError(f"no starting mark for {symbol!r}")
            inventory += given * (mark - start_mark) * m  # type: ignore[operator]
    return PnlSplit(trading, inventory)


def trading_from_fills(
    fills: Iterable[TradeLeg],
    marks: Mapping[str, int],
    multipliers: Mapping[str, int] | None = None,
) -> int:
    """Trading PnL trade by trade: sum of ``(mark - price) x signed qty x multiplier - fee``."""
    mult = multipliers or {}
    total = 0
    for f in fills:
        total += (marks[f.symbol] - f.price) * _signed(f.side, f.qty) * mult.get(f.symbol, 1)
        total -= f.fee
    return total


def split_by(rows: Iterable[tuple[str, PnlSplit]]) -> dict[str, PnlSplit]:
    """Sum (key, split) pairs per key (e.g. per strategy class), keys in first-seen order."""
    out: dict[str, PnlSplit] = {}
    for key, value in rows:
        out[key] = out[key] + value if key in out else value
    return out
