"""What a replay run keeps: the strategy's fills, orders and inventory/PnL samples, as columns.

Plain ``{column: list}`` tables, like the simulated market's outputs (`agents.sim.output`),
named and laid out as the run-directory tables other tools read (``orders``: ts, account,
symbol, action, side, price, qty, clid; ``positions``: ts, account, symbol, position, cash).
``fills`` adds what a replay alone knows: the rule that made each fill and the mid at the time.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["RULE_NAMES", "Record"]

RULE_NAMES = ("quote-through", "trade-through", "taker")


def _cols(*names: str) -> dict[str, list]:
    return {n: [] for n in names}


@dataclass
class Record:
    """The tables of one run (see the module docstring)."""

    fills: dict[str, list] = field(default_factory=lambda: _cols(
        "ts", "clid", "symbol", "side", "price", "qty", "rule", "liquidity", "fee", "mid"))
    orders: dict[str, list] = field(default_factory=lambda: _cols(
        "ts", "account", "symbol", "action", "side", "price", "qty", "clid"))
    positions: dict[str, list] = field(default_factory=lambda: _cols(
        "ts", "account", "symbol", "position", "cash", "mid", "equity"))
    events: int = 0
    first_ts: int | None = None
    last_ts: int | None = None

    def fill(self, ts: int, clid: str, symbol: str, side: str, price: int, qty: int, rule: int,
             liquidity: str, fee: int, mid: float | None) -> None:  # fmt: skip
        for key, value in (("ts", ts), ("clid", clid), ("symbol", symbol), ("side", side),
                           ("price", price), ("qty", qty), ("rule", RULE_NAMES[rule]),
                           ("liquidity", liquidity), ("fee", fee), ("mid", mid)):  # fmt: skip
            self.fills[key].append(value)

    def order(self, ts: int, account: str, symbol: str, action: str, side: str,
              price: int | None, qty: int, clid: str) -> None:  # fmt: skip
        for key, value in (("ts", ts), ("account", account), ("symbol", symbol),
                           ("action", action), ("side", side), ("price", price), ("qty", qty),
                           ("clid", clid)):  # fmt: skip
            self.orders[key].append(value)

    def sample(self, ts: int, account: str, symbol: str, position: int, cash: int,
               mid: float | None, equity: float | None) -> None:  # fmt: skip
        for key, value in (("ts", ts), ("account", account), ("symbol", symbol),
                           ("position", position), ("cash", cash), ("mid", mid),
                           ("equity", equity)):  # fmt: skip
            self.positions[key].append(value)
