"""The agent API: a strategy is a class with small event handlers and a context to act through.

An `Agent` never sees a socket, an event loop or the wall clock. It is driven by a host (the
live runner, `agents.runner`, or the simulated-time kernel, `agents.sim`) that calls its
handlers and gives it a `Context`. Because both hosts implement the same `Context`, the same
class trades live and in simulated time.

    class Quoter(Agent):
        class Params(BaseModel):
            half_spread: int = 2          # ticks
            size: int = 5                 # lots

        def on_start(self) -> None:
            self.ctx.set_timer("requote", 1_000_000_000)       # every second

        def on_timer(self, name: str) -> None:
            q = self.ctx.quote("AGR")
            if q is None or q.mid is None:
                return
            self.ctx.cancel_all("AGR")
            mid = round(q.mid)
            self.ctx.buy("AGR", self.params.size, mid - self.params.half_spread)
            self.ctx.sell("AGR", self.params.size, mid + self.params.half_spread)

Handlers run one at a time (never concurrently) and should return quickly; anything an agent
does (orders, timers) takes effect after a modelled delay in simulated time and after a real
one live.
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np
import structlog
from pydantic import BaseModel, ConfigDict

from agents.events import Fill, OrderUpdate, Quote, TradeTick
from agents.portfolio import OpenOrder, Portfolio
from exchange.symbols import SymbolSpec

__all__ = [
    "Agent", "Context", "NoParams", "agent_rng", "dispatch_report", "order_update",
    "wants_reports",
]  # fmt: skip


class NoParams(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Agent:
    """Base class of every strategy. Override the handlers you need; all default to no-ops.

    `Params` (a pydantic model) declares the strategy's parameters with defaults; a host builds
    it from the command line (``--param k=v``) or a config file and validates it.
    """

    Params: ClassVar[type[BaseModel]] = NoParams
    symbols: ClassVar[list[str] | None] = None  # None: every symbol the host trades

    ctx: Context

    def __init__(self, params: BaseModel | Mapping[str, Any] | None = None) -> None:
        if params is None:
            params = self.Params()
        elif not isinstance(params, BaseModel):
            params = self.Params.model_validate(dict(params))
        self.params: Any = params

    def bind(self, ctx: Context) -> None:
        """Called once by the host before `on_start`."""
        self.ctx = ctx

    # ------------------------------------------------------------------ handlers
    def on_start(self) -> None:
        """The market is reachable: place initial orders, set timers."""

    def on_book(self, quote: Quote) -> None:
        """The top of book of a symbol changed (depth: `ctx.book(symbol)`)."""

    def on_trade(self, trade: TradeTick) -> None:
        """A public trade printed."""

    def on_order(self, update: OrderUpdate) -> None:
        """One of this agent's orders changed state (every execution report)."""

    def on_fill(self, fill: Fill) -> None:
        """One of this agent's orders traded (after `on_order` for the same report)."""

    def on_reject(self, update: OrderUpdate) -> None:
        """An order, replace or cancel was refused (after `on_order` for the same report);
        `update.reason` says why, e.g. "unknown_symbol", "insufficient_funds"."""

    def on_fundamental(self, symbol: str, value: float) -> None:
        """A new fair value F(t) (a decimal price) for `symbol`."""

    def on_timer(self, name: str) -> None:
        """A timer set with `ctx.set_timer` fired."""

    def on_stop(self) -> None:
        """The host is stopping; open orders are cancelled by the host after this."""


class Context:
    """What an agent can see and do. Hosts subclass it and implement the transport hooks.

    Book-keeping (client order ids, open orders, position, cash, fees) lives here, shared by
    every host; a host implements `now`, `_send_new`, `_send_cancel`, `_send_replace`,
    `_send_cancel_all`, `set_timer`, `cancel_timer` and `book`, and feeds market data into
    `quotes`, `last_prices` and `fundamentals`.
    """

    def __init__(
        self,
        name: str,
        account: str,
        specs: Mapping[str, SymbolSpec],
        rng: np.random.Generator,
        portfolio: Portfolio | None = None,
        log: Any = None,
    ) -> None:
        self.name = name
        self.account = account
        self.specs = dict(specs)
        self.symbols = list(self.specs)
        self.rng = rng
        self.portfolio = portfolio or Portfolio()
        self.quotes: dict[str, Quote] = {}
        self.last_prices: dict[str, int] = {}
        self.fundamentals: dict[str, float] = {}
        self.log = log
        self._ids = itertools.count(1)
        # Client order ids are "<prefix>.<n>": the name in simulated time (a run is a whole
        # day); a live host adds a tag of its own run, since the exchange keeps an account's
        # ids for the whole day and an agent attached again must not reuse its first run's.
        self._id_prefix = name
        self._warned_symbols: set[str] = set()
        self.orders_sent = 0
        self.qty_posted = 0  # lots offered: new orders and replaced ones (the fill ratio's base)

    # ------------------------------------------------------------------ the host's part
    def now(self) -> int:
        """Nanoseconds on the host's clock (virtual in simulated time)."""
        raise NotImplementedError

    def _send_new(self, order: OpenOrder, order_type: str, tif: str, post_only: bool) -> None:
        raise NotImplementedError

    def _send_cancel(self, order: OpenOrder) -> None:
        raise NotImplementedError

    def _send_replace(self, order: OpenOrder, qty: int, price: int | None) -> None:
        raise NotImplementedError

    def _send_cancel_all(self, symbol: str | None) -> None:
        raise NotImplementedError

    def set_timer(self, name: str, interval_ns: int, repeat: bool = True) -> None:
        """Call `on_timer(name)` after `interval_ns` (and every `interval_ns` if `repeat`).

        Setting a timer that exists replaces it.
        """
        raise NotImplementedError

    def cancel_timer(self, name: str) -> None:
        raise NotImplementedError

    def book(self, symbol: str, levels: int = 10) -> tuple[list[tuple], list[tuple]]:
        """L2 depth: (bids, asks), each a list of (price, qty, count), best first."""
        raise NotImplementedError

    # ------------------------------------------------------------------ acting
    def submit(
        self,
        symbol: str,
        side: str,
        qty: int,
        price: int | None = None,
        *,
        tif: str = "GTC",
        post_only: bool = False,
    ) -> str:
        """Send an order (a limit order when `price` is given, else a market order).

        Returns its client order id at once; the outcome arrives as `on_order` updates (and
        `on_reject` if it is refused: a symbol the market does not list is also logged).
        """
        if side not in ("buy", "sell"):
            raise ValueError(f"side must be 'buy' or 'sell', not {side!r}")
        if symbol not in self.specs and self.specs:
            self._unknown_symbol(symbol)
        clid = f"{self._id_prefix}.{next(self._ids)}"
        order = OpenOrder(clid, symbol, side, price, qty, 0, qty)  # positional: a hot path
        self.portfolio.orders[clid] = order  # Portfolio.sent, inlined
        self.orders_sent += 1
        self.qty_posted += qty
        self._send_new(order, "limit" if price is not None else "market", tif, post_only)
        return clid

    def _unknown_symbol(self, symbol: str) -> None:
        """Say once per symbol that the market does not list it (a typo in a strategy or its
        parameters); the order still goes out and comes back rejected ("unknown_symbol")."""
        if symbol in self._warned_symbols:
            return
        self._warned_symbols.add(symbol)
        log = self.log if self.log is not None else structlog.get_logger("agents")
        log.warning("order_for_unknown_symbol", agent=self.name, symbol=symbol,
                    symbols=self.symbols)  # fmt: skip

    def buy(self, symbol: str, qty: int, price: int | None = None, **kw: Any) -> str:
        return self.submit(symbol, "buy", qty, price, **kw)

    def sell(self, symbol: str, qty: int, price: int | None = None, **kw: Any) -> str:
        return self.submit(symbol, "sell", qty, price, **kw)

    def cancel(self, client_order_id: str) -> bool:
        """Ask to cancel an open order; False if it is unknown, done, or already being cancelled."""
        order = self.portfolio.orders.get(client_order_id)
        if order is None or order.cancel_pending:
            return False
        order.cancel_pending = True
        self._send_cancel(order)
        return True

    def cancel_all(self, symbol: str | None = None) -> int:
        """Cancel every open order (of `symbol`); returns how many were asked."""
        n = 0
        for order in self.portfolio.open_orders(symbol):
            if not order.cancel_pending:
                order.cancel_pending = True
                n += 1
        if n:
            self._send_cancel_all(symbol)
        return n

    def replace(
        self, client_order_id: str, *, qty: int | None = None, price: int | None = None
    ) -> bool:
        """Amend an open order: `qty` is the new total quantity; None keeps what it was."""
        order = self.portfolio.orders.get(client_order_id)
        if order is None or order.cancel_pending:
            return False
        new_qty = order.qty if qty is None else qty
        self.qty_posted += new_qty
        self._send_replace(order, new_qty, price)
        return True

    # ------------------------------------------------------------------ looking
    def open_orders(self, symbol: str | None = None) -> list[OpenOrder]:
        return self.portfolio.open_orders(symbol)

    def position(self, symbol: str) -> int:
        return self.portfolio.position(symbol)

    @property
    def cash(self) -> int:
        return self.portfolio.cash

    def quote(self, symbol: str) -> Quote | None:
        """The latest top of book of `symbol` this agent has seen (None: none published yet).

        In a handler it is what reached the agent by the time the handler started (in
        simulated time: what was published up to ``now`` less the agent's latency). Outside a
        handler it is just as current: live, the latest the feed delivered; in simulated time,
        as of the market's clock when `SimMarket.run` returned (so code that steps the market
        and reads between runs, such as an RL environment, needs nothing else). The same
        holds for `last_price`, `fundamental` and the `quotes`/`last_prices` dicts.
        """
        return self.quotes.get(symbol)

    def last_price(self, symbol: str) -> int | None:
        return self.last_prices.get(symbol)

    def fundamental(self, symbol: str) -> float | None:
        return self.fundamentals.get(symbol)

    def spec(self, symbol: str) -> SymbolSpec:
        return self.specs[symbol]

    def to_ticks(self, symbol: str, price: float) -> int:
        """A decimal price rounded to the nearest tick (for agent maths; orders take ticks)."""
        return max(1, round(price / float(self.specs[symbol].tick_size)))

    def to_price(self, symbol: str, ticks: float) -> float:
        return ticks * float(self.specs[symbol].tick_size)


def agent_rng(seed: int, name: str) -> np.random.Generator:
    """The agent's own generator, derived from (seed, name) only.

    Adding or removing an agent does not change any other agent's stream, and the derivation is
    the same on every machine (a hash of the name, not Python's salted `hash`).
    """
    digest = hashlib.blake2b(name.encode(), digest_size=8).digest()
    return np.random.default_rng(np.random.SeedSequence([seed, int.from_bytes(digest, "big")]))


def order_update(report: Mapping[str, Any]) -> OrderUpdate:
    """An execution report or cancel reject (a wire dict) as the agent's `OrderUpdate`."""
    if report["type"] == "cancel_reject":
        return OrderUpdate(
            client_order_id=report.get("orig_client_order_id") or "",
            order_id=report.get("order_id") or 0,
            symbol=report.get("symbol") or "",
            side="",
            exec_type="cancel_rejected",
            status="",
            price=None,
            qty=0,
            cum_qty=0,
            leaves_qty=0,
            reason=report.get("reject_reason"),
            ts=report.get("ts", 0),
        )
    return OrderUpdate(
        client_order_id=report["client_order_id"],
        order_id=report["order_id"],
        symbol=report["symbol"],
        side=report["side"],
        exec_type=report["exec_type"],
        status=report["order_status"],
        price=report.get("price"),
        qty=report["qty"],
        cum_qty=report["cum_qty"],
        leaves_qty=report["leaves_qty"],
        last_qty=report.get("last_qty", 0),
        last_price=report.get("last_price"),
        liquidity=report.get("liquidity"),
        trade_id=report.get("trade_id"),
        reason=report.get("reject_reason"),
        ts=report.get("ts", 0),
    )


def wants_reports(cls: type[Agent]) -> bool:
    """Whether `cls` overrides `on_order`, `on_fill` or `on_reject` (else its reports are
    book-keeping only)."""
    wants = _WANTS_REPORTS.get(cls)
    if wants is None:
        wants = _WANTS_REPORTS[cls] = (
            cls.on_order is not Agent.on_order or cls.on_fill is not Agent.on_fill
            or cls.on_reject is not Agent.on_reject
        )
    return wants


_WANTS_REPORTS: dict[type, bool] = {}


def dispatch_report(agent: Agent, report: Mapping[str, Any]) -> None:
    """Deliver one of the agent's own reports: book-keeping first, then `on_order`, `on_fill`.

    Both hosts call this, so an agent's view of its orders, position and cash is updated the
    same way live and in simulated time. An agent with neither handler gets the book-keeping
    only, straight from the dict (`Portfolio.apply_report`: same result, no update objects).
    """
    if not wants_reports(type(agent)):
        agent.ctx.portfolio.apply_report(report)
        return
    update = order_update(report)
    fill = agent.ctx.portfolio.apply(update)
    agent.on_order(update)
    if fill is not None:
        agent.on_fill(fill)
    elif update.exec_type == "rejected" or update.exec_type == "cancel_rejected":
        agent.on_reject(update)
