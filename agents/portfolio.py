"""An agent's own view of its orders, positions and cash, kept from its own execution reports.

Pure book-keeping (no IO), shared by the live runner and the simulated-time kernel. It uses the
clearing house's fee function and cash multipliers, so at the end of a run an agent's own view
equals what the clearing house settled for its account (the agents issue's integration test
checks exactly that).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

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
        self.trade_ids: set[int] = set()  # the fills booked, by exchange trade id

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
        liquidity = u.liquidity or "taker"
        fee = self._book_fill(u.symbol, u.side, u.last_price, u.last_qty, liquidity, u.trade_id)
        return Fill(
            u.client_order_id, u.order_id, u.symbol, u.side, u.last_price, u.last_qty,
            liquidity, fee, u.trade_id or 0, u.ts,
        )  # fmt: skip

    def _book_fill(
        self, symbol: str, side: str, price: int, qty: int, liquidity: str,
        trade_id: int | None = None, fee: int | None = None,
    ) -> int:  # fmt: skip
        """Cash, position, fee and counters of one fill (both `apply` paths); returns the fee."""
        if trade_id:
            if trade_id in self.trade_ids:
                return 0  # booked already (recovered from clearing before its report came)
            self.trade_ids.add(trade_id)
        notional = price * qty * self.multipliers.get(symbol, 1)
        if fee is None:
            fee = fee_for(notional, self.fees.rate(liquidity))
        if side == "buy":
            self.cash -= notional + fee
            self.positions[symbol] = self.positions.get(symbol, 0) + qty
        else:
            self.cash += notional - fee
            self.positions[symbol] = self.positions.get(symbol, 0) - qty
        self.fees_paid += fee
        self.volume += qty
        self.fills += 1
        return fee

    def apply_report(self, report: Mapping[str, Any]) -> None:
        """`apply(order_update(report))` for an agent that wants neither update nor fill.

        The same book-keeping straight from the wire dict: most of a simulated crowd has no
        `on_order`/`on_fill`, and building an `OrderUpdate` (and a `Fill`) per report only to
        throw it away was the largest single cost of delivering its reports.
        """
        if report["type"] == "cancel_reject":
            order = self.orders.get(report.get("orig_client_order_id") or "")
            if order is not None:
                order.cancel_pending = False
            return
        exec_type = report["exec_type"]
        if exec_type == "trade":
            last_qty = report.get("last_qty", 0)
            last_price = report.get("last_price")
            if last_qty > 0 and last_price is not None:
                self._book_fill(report["symbol"], report["side"], last_price, last_qty,
                                report.get("liquidity") or "taker",
                                report.get("trade_id"))  # fmt: skip
        clid = report["client_order_id"]
        order = self.orders.get(clid)
        if order is None:
            return
        if exec_type == "replaced":
            order.price = report.get("price")
        order.order_id = report["order_id"] or order.order_id
        order.qty = report["qty"]
        order.cum_qty = report["cum_qty"]
        order.leaves_qty = report["leaves_qty"]
        status = order.status = report["order_status"]
        if status in _DONE:
            del self.orders[clid]

    def recover(self, records: Any) -> int:
        """Book fills this view never heard of, from clearing's trade records of the account.

        An exchange that dies between journalling a trade and sending its reports leaves the
        agent without them (clearing settles them from the journal). After such a gap the
        runner asks clearing for the account's trades and books the missing ones here, with
        clearing's own fee; returns how many.
        """
        n = 0
        for r in records:
            if r.trade_id not in self.trade_ids:
                self._book_fill(r.symbol, r.side, r.price, r.qty, r.liquidity, r.trade_id, r.fee)
                n += 1
        return n

    def resync_orders(self, open_ids: set[str]) -> int:
        """Forget orders the exchange no longer has open (done while we were away)."""
        gone = [clid for clid in self.orders if clid not in open_ids]
        for clid in gone:
            del self.orders[clid]
        return len(gone)

    def equity(self, marks: dict[str, float]) -> float:
        """Cash plus positions marked at `marks` (ticks per symbol), in cash units."""
        value = float(self.cash)
        for symbol, qty in self.positions.items():
            mark = marks.get(symbol)
            if qty and mark is not None:
                value += qty * mark * self.multipliers.get(symbol, 1)
        return value
