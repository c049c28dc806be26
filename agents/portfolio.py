"""An agent's own view of its orders, positions and cash, kept from its own execution reports.

Pure book-keeping (no IO), shared by the live runner and the simulated-time kernel. It uses the
clearing house's fee function and cash multipliers, so at the end of a run an agent's own view
equals what the clearing house settled for its account (the agents issue's integration test
checks exactly that).
"""

from __future__ import annotations

from dataclasses import dataclass

from agents.events import Fill, OrderUpdate
from clearing.fees import FeeSchedule, fee_for

__all__ = ["OpenOrder", "Portfolio"]

_DONE = frozenset({"filled", "canceled", "rejected", "expired"})


@dataclass(slots=True)
class OpenOrder:
    """An order the agent has sent and that is not finished yet."""

    client_order_id: str
    symbol: str
    side: str
    price: int | None
    qty: int
    cum_qty: int = 0
    leaves_qty: int = 0
    order_id: int = 0
    status: str = "pending_new"
    cancel_pending: bool = False


class Portfolio:
    """Cash (integer cash units), positions (lots) and open orders of one account."""

    def __init__(
        self,
        cash: int = 0,
        positions: dict[str, int] | None = None,
        fees: FeeSchedule | None = None,
        multipliers: dict[str, int] | None = None,
    ) -> None:
        self.cash = cash
        self.positions: dict[str, int] = dict(positions or {})
        self.fees = fees or FeeSchedule()
        self.multipliers = multipliers or {}
        self.orders: dict[str, OpenOrder] = {}
        self.fees_paid = 0
        self.volume = 0
        self.fills = 0

    def position(self, symbol: str) -> int:
        return self.positions.get(symbol, 0)

    def sent(self, order: OpenOrder) -> None:
        self.orders[order.client_order_id] = order

    def open_orders(self, symbol: str | None = None) -> list[OpenOrder]:
        return [o for o in self.orders.values() if symbol is None or o.symbol == symbol]

    def apply(self, update: OrderUpdate) -> Fill | None:
        """Fold one execution report in; returns the fill it carries, if any."""
        order = self.orders.get(update.client_order_id)
        fill = None
        if update.exec_type == "trade" and update.last_qty > 0 and update.last_price is not None:
            fill = self._fill(update)
        if update.exec_type == "cancel_rejected":
            if order is not None:
                order.cancel_pending = False
            return None
        if order is None:
            return fill
        if update.exec_type == "replaced":
            # A replace keeps the client order id of the order it amends (see the live client);
            # the report carries the new price and quantities.
            order.price = update.price
        order.order_id = update.order_id or order.order_id
        order.qty = update.qty
        order.cum_qty = update.cum_qty
        order.leaves_qty = update.leaves_qty
        order.status = update.status
        if update.status in _DONE:
            del self.orders[update.client_order_id]
        return fill

    def _fill(self, u: OrderUpdate) -> Fill:
        assert u.last_price is not None
        notional = u.last_price * u.last_qty * self.multipliers.get(u.symbol, 1)
        liquidity = u.liquidity or "taker"
        fee = fee_for(notional, self.fees.rate(liquidity))
        if u.side == "buy":
            self.cash -= notional + fee
            self.positions[u.symbol] = self.positions.get(u.symbol, 0) + u.last_qty
        else:
            self.cash += notional - fee
            self.positions[u.symbol] = self.positions.get(u.symbol, 0) - u.last_qty
        self.fees_paid += fee
        self.volume += u.last_qty
        self.fills += 1
        return Fill(
            u.client_order_id, u.order_id, u.symbol, u.side, u.last_price, u.last_qty,
            liquidity, fee, u.trade_id or 0, u.ts,
        )  # fmt: skip

    def equity(self, marks: dict[str, float]) -> float:
        """Cash plus positions marked at `marks` (ticks per symbol), in cash units."""
        value = float(self.cash)
        for symbol, qty in self.positions.items():
            mark = marks.get(symbol)
            if qty and mark is not None:
                value += qty * mark * self.multipliers.get(symbol, 1)
        return value
