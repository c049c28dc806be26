"""The agent's side of the simulated market: `SimContext`, the `agents.agent.Context` that an
unmodified `Agent` runs against on the virtual clock, and its lazily updated view of what was
published (`_Cursor`).

Why a module of its own: what an agent may see and when its messages arrive is the part of the
simulator a strategy author reasons about (the model is described in `agents.sim.market`);
the market's bookkeeping around the engine lives in `agents.sim.orders` and the delivery of
public data in `agents.sim.publish`.
"""

from __future__ import annotations

import itertools
from bisect import bisect_right
from heapq import heappush
from typing import TYPE_CHECKING, Any

import numpy as np

from agents.agent import Agent, Context, agent_rng, wants_reports
from agents.config import LatencyConfig
from agents.events import Quote
from agents.portfolio import OpenOrder, Portfolio

if TYPE_CHECKING:
    from agents.sim.market import SimMarket

__all__ = ["SimContext"]

_NS_PER_US = 1_000

# outbound message kinds (agent -> engine)
_NEW, _CANCEL, _REPLACE, _CANCEL_ALL = 0, 1, 2, 3
# inbound item kinds (engine/feeds -> agent)
_REPORT, _QUOTE, _TRADE, _FUND = 0, 1, 2, 3

_BLOCK = 512  # latency draws taken from the generator at once


def _view_dict(attr: str, horizon: str, sync: str) -> Any:
    """A view dict of `SimContext` (``ctx.quotes`` ...): every symbol's stream brought up to
    the context's horizon (`_Cursor`) when the dict is read; `Context.__init__` sets it."""

    def get(self: SimContext) -> dict:
        for cur in self._cur.values():
            if getattr(cur, horizon) != self._horizon:
                getattr(cur, sync)(self)
        return getattr(self, attr)

    def put(self: SimContext, value: dict) -> None:
        setattr(self, attr, value)

    return property(get, put)


class SimContext(Context):
    """`Context` on the virtual clock: see the module docstring for when things arrive."""

    def __init__(
        self,
        market: SimMarket,
        agent: Agent,
        name: str,
        account: str,
        latency: LatencyConfig,
        portfolio: Portfolio,
    ) -> None:
        seed = market.seed
        super().__init__(
            name, account, market.specs, agent_rng(seed, name), portfolio=portfolio, log=None
        )
        self.agent = agent
        self._market = market
        kernel = self._kernel = market.kernel
        # the kernel's scheduling recipe, inlined on the hot paths (see kernel.py: "Speed")
        self._heap = kernel._heap
        self._bits = kernel._bits
        self._next_seq = kernel._next_seq
        self._arrive_cb = market._arrive
        self._fire_cb = market._fire
        self._deliver_cb = market._deliver
        self._order_log: list[tuple] | None = market.order_log
        self.latency = latency
        self._lat_rng = agent_rng(seed, name + ":latency")
        self._net_ns = round(latency.network_us * _NS_PER_US)
        self._dec_ns = round(latency.decision_us * _NS_PER_US)
        self._kind = latency.kind
        self._fixed = latency.kind == "fixed" or self._net_ns == 0
        self._draws: list[int] = []
        self._view_ns = self._net_ns
        cls = type(agent)
        self.wants_book = cls.on_book is not Agent.on_book
        self.wants_trade = cls.on_trade is not Agent.on_trade
        self.wants_fundamental = cls.on_fundamental is not Agent.on_fundamental
        # reports only update the portfolio: no handler runs, so no view refresh either
        self.plain_reports = not wants_reports(cls)
        # channels: the list of the batch in flight (None: nothing in flight), its arrival
        # time, and the time it was sent (messages sent at the same instant share a batch)
        self._out: list | None = None
        self._out_at = -1
        self._out_sent = -1
        self._in: list | None = None
        self._in_at = -1
        self._in_sent = -1
        self._timers: dict[str, int] = {}
        self._timer_ids = itertools.count(1)
        # The view: what was published up to `_horizon` (``now - view latency`` when the
        # agent's latest handler started; -1: no handler yet), brought up to date per symbol
        # and stream when something reads it (see `_Cursor`).
        self._horizon = -1
        self._cur: dict[str, _Cursor] = {s: _Cursor(market, s) for s in self.symbols}
        self.draw_log: list[int] | None = None  # set to a list to record every latency draw
        self.initial_cash = portfolio.cash
        self.initial_positions = dict(portfolio.positions)

    # ------------------------------------------------------------------ latency
    def draw_latency(self) -> int:
        """One network latency (ns) from this agent's own latency stream."""
        if self._fixed:
            return self._net_ns
        draws = self._draws
        if not draws:
            mean = self._net_ns
            if self._kind == "uniform":
                block = self._lat_rng.uniform(0.5 * mean, 1.5 * mean, _BLOCK)
            else:
                block = self._lat_rng.exponential(mean, _BLOCK)
            # rint rounds half to even, exactly as round() does: the same integers, at once
            draws.extend(np.rint(block[::-1]).astype(np.int64).tolist())
        d = draws.pop()
        if self.draw_log is not None:
            self.draw_log.append(d)
        return d

    # ------------------------------------------------------------------ Context: host part
    def now(self) -> int:
        return self._kernel.now

    def _send(self, msg: tuple) -> None:
        now = self._kernel.now
        batch = self._out
        if batch is not None and self._out_sent == now:
            batch.append(msg)  # same handler call (or same instant): same packet
            return
        draws = self._draws
        if self._fixed:
            at = now + self._dec_ns + self._net_ns
        elif draws and self.draw_log is None:
            at = now + self._dec_ns + draws.pop()
        else:
            at = now + self._dec_ns + self.draw_latency()
        self._out_sent = now
        if batch is not None and at <= self._out_at:
            batch.append(msg)  # FIFO: cannot overtake the message still in flight
            return
        batch = self._out = [msg]
        self._out_at = at
        heappush(self._heap, (at, self._bits(32), self._next_seq(), self._arrive_cb,
                              (self, batch)))  # fmt: skip

    # With the market's `order_log` on, each action is logged when the agent sends it, as
    # (ts, account, symbol, action, side, price, qty, clid): a cancel names the order's side,
    # price and open quantity; a replace its new price and total quantity; a mass cancel is
    # one "cancel" row with no order (side, price, qty and clid None).
    def _send_new(self, order: OpenOrder, order_type: str, tif: str, post_only: bool) -> None:
        log = self._order_log
        if log is not None:
            log.append((self._kernel.now, self.account, order.symbol, "new", order.side,
                        order.price, order.qty, order.client_order_id))  # fmt: skip
        self._send((_NEW, order, order_type, tif, post_only))

    def _send_cancel(self, order: OpenOrder) -> None:
        log = self._order_log
        if log is not None:
            log.append((self._kernel.now, self.account, order.symbol, "cancel", order.side,
                        order.price, order.leaves_qty, order.client_order_id))  # fmt: skip
        self._send((_CANCEL, order))

    def _send_replace(self, order: OpenOrder, qty: int, price: int | None) -> None:
        log = self._order_log
        if log is not None:
            log.append((self._kernel.now, self.account, order.symbol, "replace", order.side,
                        order.price if price is None else price, qty,
                        order.client_order_id))  # fmt: skip
        self._send((_REPLACE, order, qty, price))

    def _send_cancel_all(self, symbol: str | None) -> None:
        log = self._order_log
        if log is not None:
            log.append((self._kernel.now, self.account, symbol, "cancel", None, None, None,
                        None))  # fmt: skip
        self._send((_CANCEL_ALL, symbol))

    def set_timer(self, name: str, interval_ns: int, repeat: bool = True) -> None:
        interval_ns = int(interval_ns)
        if interval_ns < 0 or (repeat and interval_ns == 0):
            raise ValueError(f"timer interval must be positive, got {interval_ns}")
        token = next(self._timer_ids)
        self._timers[name] = token
        heappush(self._heap, (
            self._kernel.now + interval_ns, self._bits(32), self._next_seq(), self._fire_cb,
            (self, name, token, interval_ns if repeat else 0),
        ))  # fmt: skip

    def cancel_timer(self, name: str) -> None:
        self._timers.pop(name, None)

    def book(self, symbol: str, levels: int = 10) -> tuple[list[tuple], list[tuple]]:
        return self._market.depth_at(symbol, self._kernel.now - self._view_ns, levels)

    # ------------------------------------------------------------------ the agent's view
    def refresh(self) -> None:
        """Show what was published up to ``now - view latency`` (what every handler sees).

        The host calls it: before `on_stop`, and when `SimMarket.run` returns, so a read
        outside a handler sees the market as of the market's clock (see `Context.quote`)."""
        self._horizon = self._kernel.now - self._view_ns

    # The view is brought up to date when read, not when a handler starts: most handlers
    # read one stream of one symbol (a crowd trader reads the last price), or nothing. What
    # a read returns is what an eager update at the handler's start would have shown, because
    # the horizon is fixed for the handler and published history is only ever appended to.
    def quote(self, symbol: str) -> Quote | None:
        cur = self._cur.get(symbol)
        if cur is not None and cur.qh != self._horizon:
            cur.sync_quote(self)
        return self._quotes.get(symbol)

    def last_price(self, symbol: str) -> int | None:
        cur = self._cur.get(symbol)
        if cur is not None and cur.th != self._horizon:
            cur.sync_trade(self)
        return self._last_prices.get(symbol)

    def fundamental(self, symbol: str) -> float | None:
        cur = self._cur.get(symbol)
        if cur is not None and cur.fh != self._horizon:
            cur.sync_fundamental(self)
        return self._fundamentals.get(symbol)

    # The dicts themselves are up to date whenever they are read, too (a cold path: the
    # accessors above are what strategies call).
    quotes = _view_dict("_quotes", "qh", "sync_quote")
    last_prices = _view_dict("_last_prices", "th", "sync_trade")
    fundamentals = _view_dict("_fundamentals", "fh", "sync_fundamental")

    def _push(self, item: tuple) -> None:
        """An item for this agent, arriving one network latency from now (FIFO)."""
        now = self._kernel.now
        batch = self._in
        if batch is not None and self._in_sent == now:
            batch.append(item)
            return
        draws = self._draws
        if self._fixed:
            at = now + self._net_ns
        elif draws and self.draw_log is None:
            at = now + draws.pop()  # draw_latency() in short
        else:
            at = now + self.draw_latency()
        self._in_sent = now
        if batch is not None and at <= self._in_at:
            batch.append(item)
            return
        batch = self._in = [item]
        self._in_at = at
        heappush(self._heap, (at, self._bits(32), self._next_seq(), self._deliver_cb,
                              (self, batch)))  # fmt: skip


class _Cursor:
    """One agent's position in one symbol's published history, per stream (quotes, trades,
    fair values): the index of the item it shows, and the horizon it was brought up to."""

    __slots__ = ("f", "f_ts", "f_val", "fh", "q", "q_ts", "q_val", "qh", "sym", "t", "t_px",
                 "t_ts", "th")  # fmt: skip

    def __init__(self, market: SimMarket, sym: str) -> None:
        self.sym = sym
        self.q = self.t = self.f = -1  # nothing shown yet
        self.qh = self.th = self.fh = -1  # the horizon of the last update, per stream
        self.q_ts, self.q_val = market._q_ts[sym], market._q[sym]
        self.t_ts, self.t_px = market._t_ts[sym], market._t_px[sym]
        self.f_ts, self.f_val = market._f_ts[sym], market._f_val[sym]

    # Each brings one stream up to the context's horizon: the last item published at or
    # before it, never an earlier one than shown already (a view does not go back in time).
    def sync_quote(self, ctx: SimContext) -> None:
        h = self.qh = ctx._horizon
        ts = self.q_ts
        i = self.q + 1
        if i < len(ts) and ts[i] <= h:
            i = self.q = bisect_right(ts, h, i) - 1
            ctx._quotes[self.sym] = self.q_val[i]

    def sync_trade(self, ctx: SimContext) -> None:
        h = self.th = ctx._horizon
        ts = self.t_ts
        i = self.t + 1
        if i < len(ts) and ts[i] <= h:
            i = self.t = bisect_right(ts, h, i) - 1
            ctx._last_prices[self.sym] = self.t_px[i]

    def sync_fundamental(self, ctx: SimContext) -> None:
        h = self.fh = ctx._horizon
        ts = self.f_ts
        i = self.f + 1
        if i < len(ts) and ts[i] <= h:
            i = self.f = bisect_right(ts, h, i) - 1
            ctx._fundamentals[self.sym] = self.f_val[i]
