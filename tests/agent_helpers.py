"""A fake host for agent unit tests: records what an agent does, lets a test play the market.

`FakeContext` is a real `agents.agent.Context` (so book-keeping is the shared code) whose
transport hooks append to lists. A test pushes market data (`push_quote`, `push_trade`,
`push_fundamental`), moves a virtual clock (`advance`, which fires due timers in time order)
and answers the agent's orders with execution reports shaped like the exchange's (`ack`,
`fill`, `cancel_ack`, `replace_ack`), delivered through `agents.agent.dispatch_report`.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from agents.agent import Agent, Context, agent_rng, dispatch_report
from agents.events import Quote, TradeTick
from agents.portfolio import OpenOrder, Portfolio
from exchange.symbols import SymbolSpec


@dataclass(slots=True)
class SentOrder:
    client_order_id: str
    symbol: str
    side: str
    qty: int
    price: int | None
    order_type: str
    tif: str
    post_only: bool
    ts: int


@dataclass(slots=True)
class _Timer:
    due: int
    interval: int
    repeat: bool
    seq: int


class FakeContext(Context):
    """A recording `Context` with a settable virtual clock (ns)."""

    def __init__(
        self,
        symbols: Iterable[str] = ("X",),
        *,
        seed: int = 0,
        name: str = "t",
        specs: Mapping[str, SymbolSpec] | None = None,
        cash: int = 0,
        positions: dict[str, int] | None = None,
        start_ns: int = 0,
    ) -> None:
        if specs is None:
            specs = {s: SymbolSpec(symbol=s) for s in symbols}
        super().__init__(
            name, f"acct-{name}", specs, agent_rng(seed, name), Portfolio(cash, positions)
        )
        self.clock = start_ns
        self.sent: list[SentOrder] = []
        self.cancels: list[str] = []
        self.cancel_times: dict[str, int] = {}
        self.cancel_alls: list[str | None] = []
        self.replaces: list[tuple[str, int, int | None]] = []
        self.timer_calls: list[tuple[str, int, bool]] = []
        self.cancelled_timers: list[str] = []
        self.timers: dict[str, _Timer] = {}
        self.books: dict[str, tuple[list[tuple], list[tuple]]] = {}
        self.reports: list[dict[str, Any]] = []
        self.agent: Agent | None = None
        self._seq = itertools.count()
        self._order_ids = itertools.count(1)
        self._trade_ids = itertools.count(1)

    # ------------------------------------------------------------------ host hooks
    def now(self) -> int:
        return self.clock

    def _send_new(self, order: OpenOrder, order_type: str, tif: str, post_only: bool) -> None:
        o = order
        sent = SentOrder(
            o.client_order_id, o.symbol, o.side, o.qty, o.price, order_type, tif, post_only,
            self.clock,
        )  # fmt: skip
        self.sent.append(sent)

    def _send_cancel(self, order: OpenOrder) -> None:
        self.cancels.append(order.client_order_id)
        self.cancel_times[order.client_order_id] = self.clock

    def _send_replace(self, order: OpenOrder, qty: int, price: int | None) -> None:
        self.replaces.append((order.client_order_id, qty, price))

    def _send_cancel_all(self, symbol: str | None) -> None:
        self.cancel_alls.append(symbol)

    def set_timer(self, name: str, interval_ns: int, repeat: bool = True) -> None:
        assert interval_ns > 0, f"timer {name!r} set with interval {interval_ns}"
        self.timer_calls.append((name, interval_ns, repeat))
        self.timers[name] = _Timer(self.clock + interval_ns, interval_ns, repeat, next(self._seq))

    def cancel_timer(self, name: str) -> None:
        self.cancelled_timers.append(name)
        self.timers.pop(name, None)

    def book(self, symbol: str, levels: int = 10) -> tuple[list[tuple], list[tuple]]:
        bids, asks = self.books.get(symbol, ([], []))
        return bids[:levels], asks[:levels]

    # ------------------------------------------------------------------ driving the agent
    def attach(self, agent: Agent, start: bool = True) -> Agent:
        agent.bind(self)
        self.agent = agent
        if start:
            agent.on_start()
        return agent

    def _agent(self) -> Agent:
        assert self.agent is not None, "attach an agent first"
        return self.agent

    def advance(self, ns: int) -> None:
        """Move the clock forward by `ns`, firing every timer that falls due on the way."""
        until = self.clock + ns
        agent = self._agent()
        while True:
            due = [(t.due, t.seq, name) for name, t in self.timers.items() if t.due <= until]
            if not due:
                break
            when, _, name = min(due)
            timer = self.timers[name]
            self.clock = when
            if timer.repeat:
                timer.due += timer.interval
            else:
                del self.timers[name]
            agent.on_timer(name)
        self.clock = until

    def push_quote(
        self,
        symbol: str,
        bid: int | None,
        ask: int | None,
        bid_qty: int = 10,
        ask_qty: int = 10,
    ) -> Quote:
        q = Quote(symbol, bid, bid_qty if bid is not None else 0, ask,
                  ask_qty if ask is not None else 0, self.clock)  # fmt: skip
        self.quotes[symbol] = q
        self._agent().on_book(q)
        return q

    def push_trade(self, symbol: str, price: int, qty: int = 1, aggressor: str = "buy") -> None:
        self.last_prices[symbol] = price
        tick = TradeTick(symbol, price, qty, aggressor, next(self._trade_ids), self.clock)
        self._agent().on_trade(tick)

    def push_fundamental(self, symbol: str, value: float) -> None:
        self.fundamentals[symbol] = value
        self._agent().on_fundamental(symbol, value)

    # ------------------------------------------------------------------ own reports
    def _report(self, order: OpenOrder, exec_type: str, status: str, **kw: Any) -> dict[str, Any]:
        if not order.order_id:
            order.order_id = next(self._order_ids)
        report: dict[str, Any] = {
            "type": "execution_report",
            "client_order_id": order.client_order_id,
            "order_id": order.order_id,
            "account": self.account,
            "symbol": order.symbol,
            "side": order.side,
            "exec_type": exec_type,
            "order_status": status,
            "order_type": "limit" if order.price is not None else "market",
            "price": order.price,
            "qty": order.qty,
            "cum_qty": order.cum_qty,
            "leaves_qty": order.leaves_qty,
            "last_qty": 0,
            "last_price": None,
            "liquidity": None,
            "trade_id": None,
            "ts": self.clock,
            "seq": len(self.reports) + 1,
        }
        report.update(kw)
        self.reports.append(report)
        dispatch_report(self._agent(), report)
        return report

    def order(self, clid: str) -> OpenOrder:
        return self.portfolio.orders[clid]

    def ack(self, clid: str) -> dict[str, Any]:
        return self._report(self.order(clid), "new", "new")

    def ack_all(self) -> None:
        for order in list(self.portfolio.orders.values()):
            if order.status == "pending_new":
                self.ack(order.client_order_id)

    def fill(
        self,
        clid: str,
        qty: int | None = None,
        price: int | None = None,
        liquidity: str = "taker",
    ) -> dict[str, Any]:
        """Fill `qty` (default: all that is left) of an open order at `price` (default: its
        limit, else the last trade price)."""
        order = self.order(clid)
        qty = order.leaves_qty if qty is None else qty
        assert 0 < qty <= order.leaves_qty
        if price is None:
            price = order.price if order.price is not None else self.last_prices[order.symbol]
        cum = order.cum_qty + qty
        leaves = order.leaves_qty - qty
        return self._report(
            order, "trade", "filled" if leaves == 0 else "partially_filled",
            qty=cum + leaves, cum_qty=cum, leaves_qty=leaves, last_qty=qty, last_price=price,
            liquidity=liquidity, trade_id=next(self._trade_ids),
        )  # fmt: skip

    def fill_all(self, price: int | None = None) -> None:
        """Fill every open order completely."""
        for clid in list(self.portfolio.orders):
            self.fill(clid, price=price)

    def cancel_ack(self, clid: str) -> dict[str, Any]:
        order = self.order(clid)
        return self._report(
            order, "canceled", "canceled", qty=order.cum_qty, leaves_qty=0,
            cancelled_qty=order.leaves_qty,
        )  # fmt: skip

    def expire_all(self) -> None:
        """Cancel-acknowledge every open order (IOC remainders, end of day)."""
        for clid in list(self.portfolio.orders):
            self.cancel_ack(clid)

    def replace_ack(self, clid: str) -> dict[str, Any]:
        """Accept the latest replace request for `clid`."""
        order = self.order(clid)
        _, qty, price = next(r for r in reversed(self.replaces) if r[0] == clid)
        price = order.price if price is None else price
        return self._report(
            order, "replaced", "replaced", price=price, qty=qty, leaves_qty=qty - order.cum_qty
        )

    # ------------------------------------------------------------------ looking
    def limit_orders(self, side: str | None = None) -> list[SentOrder]:
        return [o for o in self.sent if o.price is not None and (side is None or o.side == side)]

    def market_orders(self, side: str | None = None) -> list[SentOrder]:
        return [o for o in self.sent if o.price is None and (side is None or o.side == side)]

    def working(self, side: str | None = None) -> list[OpenOrder]:
        """Open orders that are not being cancelled."""
        return [
            o
            for o in self.portfolio.orders.values()
            if not o.cancel_pending and (side is None or o.side == side)
        ]
