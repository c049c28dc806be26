"""A whole market in simulated time: one Engine, one Reporter, many agents, one virtual clock.

    from agents.sim import SimMarket
    from agents.config import LatencyConfig

    sim = SimMarket(config=None, seed=7)                 # default market: one symbol "AGR"
    sim.add_agent(MyAgent(), "alice", latency=LatencyConfig(network_us=50))
    sim.add_agent(MyAgent({"size": 3}), "bob", latency=LatencyConfig(network_us=500))
    sim.run(duration_ns=60 * 10**9)                      # on_start at t=0, then one minute
    sim.finish()                                         # on_stop; then sim.results() / output

Everything that happens is an event of `agents.sim.kernel.Kernel`; the agents are unmodified
`agents.Agent` subclasses bound to a `SimContext` (the simulated implementation of
`agents.agent.Context`). The engine and the reporter are the very objects the exchange process
runs, so an agent sees exactly the execution reports it would see live
(`Reporter.translate_raw`, then `agents.agent.dispatch_report`).

The model of time and latency
-----------------------------
* An agent's action (submit, cancel, replace, cancel_all) reaches the engine
  ``decision_us + network`` after the handler that took it, where ``network`` is drawn from the
  agent's *latency stream* (`LatencyConfig.kind`: fixed, uniform in [0.5, 1.5] x mean, or
  exponential). All actions of one handler call travel together (one draw), and an agent's
  messages never overtake each other (a connection is FIFO): a message whose draw would land
  before the agent's previous, still travelling message joins that message instead.
* The engine processes a message at its arrival time ``ts`` (the engine's clock is the virtual
  clock). Its events become: private execution reports for the owner, public trades and
  top-of-book changes for everyone, the recorded outputs.
* Every report and market-data item reaches an agent one network latency after ``ts``.
  Private reports always arrive as events (per agent, FIFO, one draw per engine call).
  Public data is delivered as an event (calling `on_book` / `on_trade` / `on_fundamental`) only
  to agents whose class overrides that handler (``type(agent).on_book is not Agent.on_book``);
  agents with the same fixed latency share one delivery event per publication (their
  handlers then run one after the other in the order they were added: harmless, since what
  they send travels on their own channels and ties at the engine are drawn at random). Top of
  book and fair values published in the same instant are conflated (the handler sees the
  last); every trade is delivered. Everybody else's view (`ctx.quotes`, `ctx.last_prices`,
  `ctx.fundamentals`, `ctx.book`) shows, in any of its handlers, what was published up to
  ``now - view latency``, where the view latency is the agent's mean network latency (equal to
  its latency for ``kind="fixed"``). It is brought up to date lazily, per symbol and stream,
  when the handler reads it. A view never goes back in time.
* `ctx.book(symbol, levels)` is the depth as published at ``now - view latency``: the market
  keeps a short log of level changes and undoes the ones the agent cannot have heard of yet.
* Timers are local: `set_timer(name, interval)` fires exactly ``interval`` ns later.
* Ties at one nanosecond are broken by the kernel's seeded random keys (see `kernel.py`), never
  by agent order.

Random streams: an agent's `ctx.rng` is ``agent_rng(seed, name)``; its latency draws come from
``agent_rng(seed, name + ":latency")``. Both depend on the seed and the name only, so adding an
agent changes no other agent's draws (the market it sees changes, of course).

Public market data other than top of book and trades (L2 deltas, status changes) is not
delivered to handlers (the `Agent` API has none); status changes are recorded in `status`.
Timed engine transitions (halt ends, batch auctions) run at their due time through
`engine.advance`, as the exchange process's timer does.

The clearing house's cores run here too (``clearing=True``, the default): every account is
opened in a `clearing.ledger.Ledger` with the config's starting cash, positions and limits;
every new order and replace passes the same `clearing.risk.RiskGate` the live exchange uses
(refused with the same reasons, as execution reports or cancel rejects); every trade is
settled in the ledger when it happens, and the gate hears the settled state every
`_GATE_SYNC` trades (live, it hears it when clearing has settled: the reservations and pending
fills cover the gap either way). So an agent that is short of cash or shares is refused in
simulated time exactly as it would be live, and `sim.ledger` holds clearing's view of every
account. `finish` calls `on_stop` but does not cancel the agents' open orders.
"""

from __future__ import annotations

import gc
import importlib
import itertools
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Mapping
from decimal import Decimal
from heapq import heappush
from operator import itemgetter
from typing import Any

import numpy as np

from agents.agent import Agent, Context, agent_rng, dispatch_report, wants_reports
from agents.config import LatencyConfig, MarketConfig, Population
from agents.events import Quote, TradeTick
from agents.portfolio import OpenOrder, Portfolio
from agents.sim.kernel import Kernel
from clearing.fees import FeeSchedule
from clearing.ledger import Ledger, Limits, multiplier
from clearing.link import worst_price_from
from clearing.risk import RiskGate
from exchange.engine import Engine
from exchange.events import ACCEPTED, BOOK, CANCELLED, REJECTED, STATUS, TRADE
from exchange.reports import Reporter, reject_raw
from exchange.symbols import SymbolSpec

__all__ = ["SimContext", "SimMarket", "resolve_strategy"]

_NEVER = 2**63
_NS_PER_US = 1_000

# outbound message kinds (agent -> engine)
_NEW, _CANCEL, _REPLACE, _CANCEL_ALL = 0, 1, 2, 3
# inbound item kinds (engine/feeds -> agent)
_REPORT, _QUOTE, _TRADE, _FUND = 0, 1, 2, 3

_BLOCK = 512  # latency draws taken from the generator at once
_GATE_SYNC = 8192  # settled trades between two settled-state updates of the risk gate (the
# gate counts unsettled fills as pending, so its answers do not depend on this; only its cost)
_GC_GEN0 = 50_000  # young-generation threshold while the kernel runs (see `SimMarket.run`)
_NO_LEVEL = (0, 0)  # (qty, count) of a price level that is not in the book
_TS = itemgetter(0)


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

    def _send_new(self, order: OpenOrder, order_type: str, tif: str, post_only: bool) -> None:
        self._send((_NEW, order, order_type, tif, post_only))

    def _send_cancel(self, order: OpenOrder) -> None:
        self._send((_CANCEL, order))

    def _send_replace(self, order: OpenOrder, qty: int, price: int | None) -> None:
        self._send((_REPLACE, order, qty, price))

    def _send_cancel_all(self, symbol: str | None) -> None:
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
        """Show what was published up to ``now - view latency`` (what every handler sees)."""
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


class _Bucket:
    """Agents with the same fixed latency that want public data: one delivery per publication."""

    __slots__ = ("at", "batch", "latency", "members", "sent")

    def __init__(self, latency: int) -> None:
        self.latency = latency
        self.members: list[SimContext] = []
        self.batch: list | None = None
        self.at = -1
        self.sent = -1


class SimMarket:
    """The engine, the reporter, the agents and the kernel of one simulated market."""

    def __init__(
        self,
        config: MarketConfig | None = None,
        seed: int | None = None,
        *,
        symbols: Iterable[SymbolSpec] | None = None,
        fundamental: Any = None,
        fundamental_interval_ns: int | None = None,
        fees: FeeSchedule | None = None,
        starting_cash: int | None = None,
        starting_positions: Mapping[str, int] | None = None,
        start_ns: int = 0,
        record_arrivals: bool = False,
        clearing: bool = True,
    ) -> None:
        """`config` gives the symbols, fees, starting cash/positions and fundamental settings
        (explicit keyword arguments override it); `seed` defaults to ``config.seed``.

        `fundamental` is any object with ``step(dt_seconds) -> {symbol: value}``; it is stepped
        every `fundamental_interval_ns` of virtual time (first at ``start_ns`` with dt = 0) and
        its values are published to the agents. With a config whose ``fundamental`` table is
        not empty and no object given, an `agents.fundamental.model.FundamentalModel` is built.
        """
        config = config or MarketConfig()
        self.config = config
        self.seed = config.seed if seed is None else seed
        specs = list(symbols) if symbols is not None else list(config.symbols)
        self.specs: dict[str, SymbolSpec] = {s.symbol: s for s in specs}
        self.symbols = list(self.specs)
        self.fees = fees if fees is not None else config.clearing.fees
        self.starting_cash = (
            starting_cash if starting_cash is not None else config.clearing.starting_cash
        )
        self.starting_positions = dict(
            starting_positions
            if starting_positions is not None
            else config.clearing.starting_positions
        )
        self.kernel = Kernel(self.seed, start_ns)
        self.start_ns = start_ns
        self.engine = Engine(specs, ts=start_ns)
        self.reporter = Reporter()
        # the clearing house's cores: ledger (settlement) and the exchange's pre-trade gate
        self.ledger: Ledger | None = None
        self.gate: RiskGate | None = None
        if clearing:
            mult = {sp.symbol: multiplier(sp.tick_size, sp.lot_size, Decimal("0.01"))
                    for sp in specs}  # fmt: skip
            self.multipliers = mult
            self.limits = Limits(leverage=config.clearing.leverage,
                                 short_limit=config.clearing.short_limit)  # fmt: skip
            self.ledger = Ledger(self.fees, mult)
            self.gate = RiskGate(self.fees, mult, worst_price_from(self.engine))
            self.gate.update(0, [])
        self._unsynced: set[str] = set()
        self._trades_since_sync = 0
        self._books = {s: self.engine.book(s) for s in self.symbols}

        self.agents: list[SimContext] = []
        self._by_name: dict[str, SimContext] = {}
        self._by_account: dict[Any, SimContext] = {}
        # public data deliveries, per channel (quotes, trades, fundamentals): fixed-latency
        # listeners share one event per latency; the others get their own (random draws)
        self._buckets: dict[int, dict[int, _Bucket]] = {_QUOTE: {}, _TRADE: {}, _FUND: {}}
        self._eager_random: dict[int, list[SimContext]] = {_QUOTE: [], _TRADE: [], _FUND: []}
        self._bucket_delivery = {
            _QUOTE: self._deliver_quotes, _TRADE: self._deliver_trades,
            _FUND: self._deliver_fundamentals,
        }  # fmt: skip
        self._book_listeners = 0
        self._trade_listeners = 0
        self._fund_listeners = 0

        # published history, per symbol (the lazy views bisect these)
        self._q_ts: dict[str, list[int]] = {s: [] for s in self.symbols}
        self._q: dict[str, list[Quote]] = {s: [] for s in self.symbols}
        self._top: dict[str, tuple] = {s: (None, 0, None, 0) for s in self.symbols}
        self._t_ts: dict[str, list[int]] = {s: [] for s in self.symbols}
        self._t_px: dict[str, list[int]] = {s: [] for s in self.symbols}
        self._f_ts: dict[str, list[int]] = {s: [] for s in self.symbols}
        self._f_val: dict[str, list[float]] = {s: [] for s in self.symbols}
        # depth: current levels and a log of recent changes, to show an agent a delayed book
        self._levels: dict[str, dict[tuple[str, int], tuple[int, int]]] = {
            s: {} for s in self.symbols
        }
        self._blog: dict[str, list[tuple]] = {s: [] for s in self.symbols}  # time order
        self._max_view_ns = 0

        # outputs (columns)
        self.trades: dict[str, list] = {
            k: []
            for k in ("ts", "trade_id", "symbol", "price", "qty", "aggressor",
                      "buy_account", "sell_account")
        }  # fmt: skip
        self._trade_cols = tuple(self.trades.values())  # the same lists, in that order
        self.status: list[tuple] = []  # raw STATUS events (phase changes)
        self.arrivals: list[tuple] | None = [] if record_arrivals else None
        self.orders_in = 0  # messages that reached the engine
        self.handler_calls = 0  # agent deliveries: timers, reports batches, public data
        # Events as a kernel with one message per event would count them: each message that
        # reaches the engine, each report or public item that reaches an agent, each timer and
        # market-internal step. The kernel pops fewer (`kernel.events_processed`): one pop
        # carries an agent's messages of one instant, or a publication to a bucket of agents.
        self.deliveries = 0
        self.engine_events = 0

        # fundamental value
        if fundamental is None and config.fundamental:
            fundamental = _fundamental_from_config(config, self.specs, self.seed)
        self.fundamental = fundamental
        self.fundamental_interval_ns = (
            fundamental_interval_ns
            if fundamental_interval_ns is not None
            else round(config.fundamental_interval_s * 1e9)
        )
        if self.fundamental is not None and self.fundamental_interval_ns <= 0:
            raise ValueError("fundamental_interval_ns must be positive")

        self._wake_at = _NEVER
        self._started = False
        self._finished = False

    # ------------------------------------------------------------------ building
    def add_agent(
        self,
        agent: Agent,
        name: str,
        account: str | None = None,
        latency: LatencyConfig | None = None,
        cash: int | None = None,
        positions: Mapping[str, int] | None = None,
    ) -> SimContext:
        """Bind `agent` to a new `SimContext` (account defaults to the name; one agent per
        account, so reports have one owner). Agents added after `start` start at once."""
        if name in self._by_name:
            raise ValueError(f"agent name {name!r} already used")
        account = name if account is None else account
        if account in self._by_account:
            raise ValueError(f"account {account!r} already has an agent")
        latency = latency or LatencyConfig()
        portfolio = Portfolio(
            cash=self.starting_cash if cash is None else cash,
            positions=dict(self.starting_positions if positions is None else positions),
            fees=self.fees,
            multipliers=getattr(self, "multipliers", None),
        )
        if self.ledger is not None and self.gate is not None:
            self.ledger.open_account(
                account, portfolio.cash, portfolio.positions, self.limits,
                cost_prices={s: sp.reference_price for s, sp in self.specs.items()},
            )  # fmt: skip
            # The gate hears the new account together with every account that traded since
            # the last sync: `update` retires all pending fills up to `settled_through`, so a
            # one-account update mid-run would leave the others without their recent fills.
            self._unsynced.add(account)
            self.sync_gate()
        ctx = SimContext(self, agent, name, account, latency, portfolio)
        agent.bind(ctx)
        self.agents.append(ctx)
        self._by_name[name] = ctx
        self._by_account[account] = ctx
        self._max_view_ns = max(self._max_view_ns, ctx._view_ns)
        for channel, wanted in (
            (_QUOTE, ctx.wants_book), (_TRADE, ctx.wants_trade), (_FUND, ctx.wants_fundamental)
        ):  # fmt: skip
            if not wanted:
                continue
            if ctx._fixed:
                buckets = self._buckets[channel]
                bucket = buckets.get(ctx._net_ns)
                if bucket is None:
                    bucket = buckets[ctx._net_ns] = _Bucket(ctx._net_ns)
                bucket.members.append(ctx)
            else:
                self._eager_random[channel].append(ctx)
        self._book_listeners += ctx.wants_book
        self._trade_listeners += ctx.wants_trade
        self._fund_listeners += ctx.wants_fundamental
        if self._started:
            self.kernel.schedule(self.kernel.now, self._start_agent, ctx)
        return ctx

    def add_population(self, population: Population, registry: Mapping[str, type] | None = None):
        """`population.count` agents named ``{population.name}-{i}`` (accounts the same)."""
        cls = resolve_strategy(population.strategy, registry)
        params = cls.Params.model_validate(dict(population.params))
        out = []
        for i in range(population.count):
            name = f"{population.name}-{i}"
            out.append(
                self.add_agent(
                    cls(params), name, latency=population.latency, cash=population.cash,
                    positions=population.positions,
                )
            )  # fmt: skip
        return out

    @classmethod
    def from_config(cls, config: MarketConfig, seed: int | None = None, **kw: Any) -> SimMarket:
        """A market with every population of `config` added."""
        market = cls(config, seed, **kw)
        for population in config.populations:
            market.add_population(population)
        return market

    def agent(self, name: str) -> SimContext:
        return self._by_name[name]

    # ------------------------------------------------------------------ running
    def start(self) -> None:
        """Schedule every agent's `on_start` at the start time (in the kernel's tie order) and
        the first fundamental step."""
        if self._started:
            return
        self._started = True
        now = self.kernel.now
        if self.fundamental is not None:
            self.kernel.schedule(now, self._fundamental_step, 0)
        for ctx in self.agents:
            self.kernel.schedule(now, self._start_agent, ctx)
        self._schedule_wake()

    def run(self, until_ns: int | None = None, duration_ns: int | None = None,
            max_events: int | None = None) -> int:  # fmt: skip
        """Start if needed, then run the kernel up to `until_ns` (or `duration_ns` from now).

        While the kernel runs, the garbage collector's young generation is collected every
        `_GC_GEN0` allocations instead of every 700 (restored on return): a run allocates
        millions of short-lived tuples and dicts that die young anyway, and the default
        threshold made the collector a fifth of the run's time (`bench/simulate.py`: 67k ->
        81k events/s over 8 simulated minutes). Reference cycles are still collected.
        """
        self.start()
        if duration_ns is not None:
            until_ns = self.kernel.now + duration_ns
        old = gc.get_threshold()
        if old[0] and old[0] < _GC_GEN0:
            gc.set_threshold(_GC_GEN0, *old[1:])
        try:
            return self.kernel.run(until_ns, max_events)
        finally:
            if gc.get_threshold()[0] == _GC_GEN0 and old[0] != _GC_GEN0:
                gc.set_threshold(*old)

    def finish(self) -> None:
        """Call every agent's `on_stop` (the orders they send then never arrive)."""
        if self._finished:
            return
        self._finished = True
        for ctx in self.agents:
            ctx.refresh()
            ctx.agent.on_stop()

    @property
    def now(self) -> int:
        return self.kernel.now

    # ------------------------------------------------------------------ kernel callbacks
    def _start_agent(self, ctx: SimContext) -> None:
        self.deliveries += 1
        ctx._horizon = self.kernel.now - ctx._view_ns
        ctx.agent.on_start()

    def _fire(self, ctx: SimContext, name: str, token: int, interval: int) -> None:
        timers = ctx._timers
        if timers.get(name) != token:
            return  # cancelled or replaced
        if interval:
            kernel = self.kernel
            heappush(kernel._heap, (kernel.now + interval, kernel._bits(32), kernel._next_seq(),
                                    self._fire, (ctx, name, token, interval)))  # fmt: skip
        else:
            del timers[name]
        self.handler_calls += 1
        self.deliveries += 1
        ctx._horizon = self.kernel.now - ctx._view_ns
        ctx.agent.on_timer(name)

    def _risk_state(self, account: str) -> dict[str, Any]:
        assert self.ledger is not None
        acct = self.ledger.accounts[account]
        lim = acct.limits
        return {
            "account": account, "token_hash": "", "cash": acct.cash,
            "positions": {s: p.qty for s, p in acct.positions.items()},
            "credit_limit": acct.credit_limit, "short_limit": lim.short_limit,
            "max_position": lim.max_position, "max_order_notional": lim.max_order_notional,
        }  # fmt: skip

    def _refuse(self, ctx: SimContext, order: OpenOrder, reason: str, ts: int, kind: str) -> None:
        """The gate said no: the agent hears it as the live exchange would say it."""
        oid = self.engine.order_id_for(ctx.account, order.client_order_id) or 0
        report = reject_raw(None, reason, ctx.account, ts, order.symbol, oid,
                            order.client_order_id, kind)  # fmt: skip
        if kind == "new":
            report["side"] = order.side
            report["price"] = order.price
            report["order_type"] = "limit" if order.price is not None else "market"
        ctx._push((_REPORT, report))

    def _arrive(self, ctx: SimContext, batch: list) -> None:
        """An agent's messages reach the engine."""
        if ctx._out is batch:
            ctx._out = None
        self.deliveries += len(batch)
        ts = self.kernel.now
        engine = self.engine
        gate = self.gate
        account = ctx.account
        arrivals = self.arrivals
        for msg in batch:
            kind = msg[0]
            if gate is not None and (kind == _NEW or kind == _REPLACE):
                if kind == _NEW:
                    o = msg[1]
                    reason = gate.check_new(account, o.client_order_id, o.symbol, o.side,
                                            o.qty, o.price)  # fmt: skip
                else:
                    o = msg[1]
                    oid = engine.order_id_for(account, o.client_order_id)
                    reason = gate.check_replace(account, oid, msg[2], msg[3])
                if reason is not None:
                    self.orders_in += 1
                    self._refuse(ctx, o, reason, ts, "new" if kind == _NEW else "replace")
                    continue
            if kind == _NEW:
                _, order, otype, tif, post_only = msg
                events = engine.submit(
                    order.symbol, order.side, otype, order.qty, order.price, account,
                    order.client_order_id, tif, ts, post_only,
                )  # fmt: skip
                if arrivals is not None:
                    arrivals.append((ts, ctx.name, "new", order.client_order_id))
            elif kind == _CANCEL:
                order = msg[1]
                events = engine.cancel(account, None, order.client_order_id, ts)
                if arrivals is not None:
                    arrivals.append((ts, ctx.name, "cancel", order.client_order_id))
            elif kind == _REPLACE:
                _, order, qty, price = msg
                events = engine.replace(account, qty, price, None, order.client_order_id, ts)
                if arrivals is not None:
                    arrivals.append((ts, ctx.name, "replace", order.client_order_id))
            else:
                order = None
                events = engine.mass_cancel(account, msg[1], ts)
                if arrivals is not None:
                    arrivals.append((ts, ctx.name, "cancel_all", msg[1]))
            self.orders_in += 1
            if events:
                self._process(events, ts, order if kind == _NEW else None)

    def _on_wake(self) -> None:
        now = self.kernel.now
        if now != self._wake_at:
            return  # superseded by an earlier wake-up, which rescheduled
        self._wake_at = _NEVER
        self.deliveries += 1
        events = self.engine.advance(now)
        if events:
            self._process(events, now, None)
        self._schedule_wake()

    def _schedule_wake(self) -> None:
        """Make sure `engine.advance` runs when the next timed transition is due."""
        wake = min((self.engine.market(s).wakeup for s in self.symbols), default=_NEVER)
        if wake < self._wake_at:
            self._wake_at = wake
            self.kernel.schedule(max(wake, self.kernel.now), self._on_wake)

    def _fundamental_step(self, dt_ns: int) -> None:
        kernel = self.kernel
        now = kernel.now
        self.deliveries += 1
        values = self.fundamental.step(dt_ns / 1e9)
        kernel.schedule(now + self.fundamental_interval_ns, self._fundamental_step,
                        self.fundamental_interval_ns)  # fmt: skip
        items = []
        for sym, value in values.items():
            if sym not in self._f_ts:
                continue
            ts_list = self._f_ts[sym]
            ts_list.append(now)
            self._f_val[sym].append(float(value))
            items.append((_FUND, sym, len(ts_list) - 1, float(value)))
        if items and self._fund_listeners:
            self._publish(items, now, _FUND)

    # ------------------------------------------------------------------ engine output
    def sync_gate(self) -> None:
        """Tell the gate what is settled (clearing's `RiskState` push, in simulated time)."""
        if self.gate is None or self.ledger is None:
            return
        states = [self._risk_state(a) for a in self._unsynced]
        self._unsynced.clear()
        self._trades_since_sync = 0
        self.gate.update(self.ledger.settled_through, states)

    def _process(self, events: list[tuple], ts: int, new_order: OpenOrder | None) -> None:
        """Record, publish and report the events of one engine call made at `ts`.

        With the clearing cores on, clearing's part comes first: the gate follows the engine
        and every trade settles in the ledger now (the gate hears the settled state every
        `_GATE_SYNC` trades). Both happen in the one pass over the events that records them
        (the gate is handed the events it follows, not the L2 deltas it skips); nothing the
        pass records reads the gate or the ledger, so the order of the two parts is free.
        """
        if len(events) == 2:
            ev, delta = events
            if delta[0] == BOOK and (ev[0] == ACCEPTED or ev[0] == CANCELLED):
                self._process_rest(ev, delta, ts)
                return
        self.engine_events += len(events)
        ledger = self.ledger
        touched: list[str] | None = None  # symbols whose book changed, in order
        status = False
        ticks: list[tuple] | None = None
        want_ticks = self._trade_listeners
        private: list[tuple] = []  # what the reporter and the gate need: all but L2 deltas
        keep = private.append
        trades = 0
        rejected = False  # only an engine reject becomes a report that needs filling in
        for ev in events:
            kind = ev[0]
            if kind == BOOK:
                sym = ev[2]
                self._level(ev, ts)
                if touched is None:
                    touched = [sym]
                elif sym not in touched:
                    touched.append(sym)
                continue
            keep(ev)
            if kind == TRADE:
                (_, _seq, sym, trade_id, price, qty, aggressor, _bo, buy_acct, _bl, _so,
                 sell_acct, _sl, _ts) = ev  # fmt: skip
                if ledger is not None:
                    ledger.settle_trade(trade_id, sym, price, qty, aggressor, buy_acct,
                                        sell_acct)  # fmt: skip
                    self._unsynced.add(buy_acct)
                    self._unsynced.add(sell_acct)
                    trades += 1
                (c_ts, c_id, c_sym, c_px, c_qty, c_agg, c_buy, c_sell) = self._trade_cols
                c_ts.append(ts)
                c_id.append(trade_id)
                c_sym.append(sym)
                c_px.append(price)
                c_qty.append(qty)
                c_agg.append(aggressor)
                c_buy.append(buy_acct)
                c_sell.append(sell_acct)
                t_ts = self._t_ts[sym]
                t_ts.append(ts)
                self._t_px[sym].append(price)
                if want_ticks:
                    if ticks is None:
                        ticks = []
                    tick = TradeTick(sym, price, qty, aggressor, trade_id, ts)
                    ticks.append((_TRADE, sym, len(t_ts) - 1, tick))
            elif kind == STATUS:
                self.status.append(ev)
                status = True
            elif kind == REJECTED:
                rejected = True
        gate = self.gate
        if gate is not None:
            gate.on_events(private)
            if trades:
                self._trades_since_sync += trades
                if self._trades_since_sync >= _GATE_SYNC:
                    self.sync_gate()
        if touched is not None:
            for sym in touched:
                self._book_changed(sym, ts)

        box = self.reporter.translate_raw(private, None, False)
        by_account = self._by_account
        for account, report in box.private:
            ctx = by_account.get(account)
            if ctx is None:
                continue
            if rejected and new_order is not None and report.get("exec_type") == "rejected":
                # the engine's reject has no request to name side/type/price: fill them in
                report["side"] = new_order.side
                report["price"] = new_order.price
                report["order_type"] = "limit" if new_order.price is not None else "market"
            ctx._push((_REPORT, report))
        if ticks is not None:
            self._publish(ticks, ts, _TRADE)
        if status:  # a phase change may move the next timed transition (halt end, batch)
            self._schedule_wake()

    def _process_rest(self, ev: tuple, delta: tuple, ts: int) -> None:
        """`_process` for the commonest engine output by far: one order accepted to rest (or
        cancelled) and its level's delta. The same steps in the same order, without the
        general loop's bookkeeping."""
        self.engine_events += 2
        self._level(delta, ts)
        accepted = ev[0] == ACCEPTED
        gate = self.gate
        if gate is not None:
            if accepted:
                gate.on_accepted(ev)
            else:
                gate.on_cancelled(ev)
        # Only a change at or inside the best price can move the top of book (one level
        # changed); most orders rest behind it, so most calls skip straight to the log.
        sym = delta[2]
        top = self._top[sym]
        if delta[3] == "buy":
            inside = top[0] is None or delta[4] >= top[0]
        else:
            inside = top[2] is None or delta[4] <= top[2]
        if inside:
            self._book_changed(sym, ts)
        elif len(self._blog[sym]) > 4096:
            self._trim_log(sym, ts)
        if accepted:
            ctx = self._by_account.get(ev[5])
            report = self.reporter.accepted(ev)
        else:
            ctx = self._by_account.get(ev[4])
            report = self.reporter.cancelled(ev)
        if ctx is not None:
            ctx._push((_REPORT, report))

    def _level(self, ev: tuple, ts: int) -> None:
        """Mirror one L2 delta (for delayed depth views: `depth_at`)."""
        sym = ev[2]
        key = (ev[3], ev[4])
        levels = self._levels[sym]
        if ev[6]:
            old = levels.get(key, _NO_LEVEL)
            levels[key] = (ev[5], ev[6])
        else:
            old = levels.pop(key, _NO_LEVEL)
        self._blog[sym].append((ts, key, old))

    def _book_changed(self, sym: str, ts: int) -> None:
        """Publish the top of book of `sym` if it moved; forget depth changes all have heard."""
        book = self._books[sym]
        bids, asks = book.bids, book.asks
        bheap, aheap = bids.heap, asks.heap
        if bheap:
            b = -bheap[0]
            bq = bids.levels[b].qty
        else:
            b, bq = None, 0
        if aheap:
            a = aheap[0]
            aq = asks.levels[a].qty
        else:
            a, aq = None, 0
        top = (b, bq, a, aq)
        if top != self._top[sym]:
            self._top[sym] = top
            quote = Quote(sym, b, bq, a, aq, ts)
            q_ts = self._q_ts[sym]
            q_ts.append(ts)
            self._q[sym].append(quote)
            if self._book_listeners:
                self._publish([(_QUOTE, sym, len(q_ts) - 1, quote)], ts, _QUOTE)
        if len(self._blog[sym]) > 4096:
            self._trim_log(sym, ts)

    def _trim_log(self, sym: str, ts: int) -> None:
        """Forget depth changes every agent has heard of."""
        log = self._blog[sym]
        del log[: bisect_left(log, ts - self._max_view_ns, key=_TS)]

    def _publish(self, items: list[tuple], ts: int, channel: int) -> None:
        """Hand public items of one channel to every agent with a handler for them."""
        schedule = self.kernel.schedule
        deliver = self._bucket_delivery[channel]
        for bucket in self._buckets[channel].values():
            batch = bucket.batch
            if batch is not None and bucket.sent == ts:
                batch.extend(items)
                continue
            bucket.sent = ts
            at = ts + bucket.latency
            if batch is not None and at <= bucket.at:
                batch.extend(items)
                continue
            batch = bucket.batch = list(items)
            bucket.at = at
            schedule(at, deliver, bucket, batch)
        for ctx in self._eager_random[channel]:
            for item in items:
                ctx._push(item)

    # One delivery event per bucket and publication: each member's handler runs with its view
    # at its horizon. Quotes and fair values of one instant are conflated (the handler sees the
    # latest); every trade is delivered. An item older than what the view shows already runs
    # no handler (and moves no view back), so the stream is brought up to date before the
    # comparison.
    def _deliver_quotes(self, bucket: _Bucket, batch: list) -> None:
        if bucket.batch is batch:
            bucket.batch = None
        self.handler_calls += len(bucket.members)
        self.deliveries += len(bucket.members) * len(batch)
        now = self.kernel.now
        for ctx in bucket.members:
            h = ctx._horizon = now - ctx._view_ns
            curs = ctx._cur
            for _, sym, i, quote in batch:
                cur = curs[sym]
                if cur.qh != h:
                    cur.sync_quote(ctx)
                if i >= cur.q:
                    cur.q = i
                    ctx._quotes[sym] = quote
                    ctx.agent.on_book(quote)

    def _deliver_trades(self, bucket: _Bucket, batch: list) -> None:
        if bucket.batch is batch:
            bucket.batch = None
        self.handler_calls += len(bucket.members)
        self.deliveries += len(bucket.members) * len(batch)
        now = self.kernel.now
        for ctx in bucket.members:
            h = ctx._horizon = now - ctx._view_ns
            curs = ctx._cur
            on_trade = ctx.agent.on_trade
            for _, sym, i, tick in batch:
                cur = curs[sym]
                if cur.th != h:
                    cur.sync_trade(ctx)
                if i > cur.t:
                    cur.t = i
                    ctx._last_prices[sym] = tick.price
                on_trade(tick)

    def _deliver_fundamentals(self, bucket: _Bucket, batch: list) -> None:
        if bucket.batch is batch:
            bucket.batch = None
        self.handler_calls += len(bucket.members)
        self.deliveries += len(bucket.members) * len(batch)
        now = self.kernel.now
        for ctx in bucket.members:
            h = ctx._horizon = now - ctx._view_ns
            curs = ctx._cur
            for _, sym, i, value in batch:
                cur = curs[sym]
                if cur.fh != h:
                    cur.sync_fundamental(ctx)
                if i >= cur.f:
                    cur.f = i
                    ctx._fundamentals[sym] = value
                    ctx.agent.on_fundamental(sym, value)

    def _deliver(self, ctx: SimContext, batch: list) -> None:
        """Items reach one agent (its own channel): its handlers run with its view."""
        if ctx._in is batch:
            ctx._in = None
        self.handler_calls += 1
        self.deliveries += len(batch)
        if ctx.plain_reports:
            # reports run no handler of this agent: book-keeping only, and the view stays
            # where it is (the next handler's view is the same either way)
            apply = ctx.portfolio.apply_report
            done = 0
            for item in batch:
                if item[0] != _REPORT:
                    break
                apply(item[1])
                done += 1
            else:
                return
            batch = batch[done:]
        h = ctx._horizon = self.kernel.now - ctx._view_ns
        agent = ctx.agent
        curs = ctx._cur
        for item in batch:
            kind = item[0]
            if kind == _REPORT:
                dispatch_report(agent, item[1])
                continue
            _, sym, i, obj = item
            cur = curs[sym]
            if kind == _QUOTE:
                if cur.qh != h:
                    cur.sync_quote(ctx)
                if i >= cur.q:
                    cur.q = i
                    ctx._quotes[sym] = obj
                    agent.on_book(obj)
            elif kind == _TRADE:
                if cur.th != h:
                    cur.sync_trade(ctx)
                if i > cur.t:
                    cur.t = i
                    ctx._last_prices[sym] = obj.price
                agent.on_trade(obj)
            else:
                if cur.fh != h:
                    cur.sync_fundamental(ctx)
                if i >= cur.f:
                    cur.f = i
                    ctx._fundamentals[sym] = obj
                    agent.on_fundamental(sym, obj)

    # ------------------------------------------------------------------ views
    def depth_at(
        self, symbol: str, horizon: int, levels: int = 10
    ) -> tuple[list[tuple], list[tuple]]:
        """L2 depth (bids, asks) of `symbol` as published up to virtual time `horizon`."""
        log = self._blog[symbol]
        if not log or log[-1][0] <= horizon:
            return self.engine.depth(symbol, levels)
        state = dict(self._levels[symbol])
        for ts, key, old in reversed(log):
            if ts <= horizon:
                break
            if old[1]:
                state[key] = old
            else:
                state.pop(key, None)
        bids = sorted(((p, q, c) for (s, p), (q, c) in state.items() if s == "buy"), reverse=True)
        asks = sorted((p, q, c) for (s, p), (q, c) in state.items() if s == "sell")
        return bids[:levels], asks[:levels]

    def quotes(self, symbol: str) -> list[Quote]:
        """Every top-of-book change of `symbol` so far, in order."""
        return self._q[symbol]

    def last_price(self, symbol: str) -> int | None:
        px = self._t_px[symbol]
        return px[-1] if px else None

    # ------------------------------------------------------------------ results
    def results(self) -> dict[str, list]:
        """Per agent: final cash, positions, fees, volume and PnL marked to the last trade.

        PnL = (cash - starting cash) + sum over symbols of (position - starting position) x
        last trade price x 1 (no multipliers yet); symbols that never traded mark at the spec's
        reference price.
        """
        marks = {
            s: (self.last_price(s) if self.last_price(s) is not None
                else self.specs[s].reference_price)
            for s in self.symbols
        }  # fmt: skip
        cols: dict[str, list] = {
            k: []
            for k in ("name", "account", "strategy", "cash", "pnl", "fees", "volume", "fills",
                      "orders_sent", "open_orders")
        }  # fmt: skip
        for s in self.symbols:
            cols[f"position_{s}"] = []
        for ctx in self.agents:
            p = ctx.portfolio
            pnl = p.cash - ctx.initial_cash
            for s in self.symbols:
                pnl += (p.position(s) - ctx.initial_positions.get(s, 0)) * marks[s]
            cols["name"].append(ctx.name)
            cols["account"].append(ctx.account)
            cols["strategy"].append(type(ctx.agent).__name__)
            cols["cash"].append(p.cash)
            cols["pnl"].append(pnl)
            cols["fees"].append(p.fees_paid)
            cols["volume"].append(p.volume)
            cols["fills"].append(p.fills)
            cols["orders_sent"].append(ctx.orders_sent)
            cols["open_orders"].append(len(p.orders))
            for s in self.symbols:
                cols[f"position_{s}"].append(p.position(s))
        return cols

    def top_of_book(self) -> dict[str, list]:
        """Every top-of-book change as columns (ts, symbol, bid, bid_qty, ask, ask_qty)."""
        cols: dict[str, list] = {k: [] for k in ("ts", "symbol", "bid", "bid_qty", "ask",
                                                 "ask_qty")}  # fmt: skip
        quotes = [q for s in self.symbols for q in self._q[s]]
        if len(self.symbols) > 1:
            quotes.sort(key=lambda q: q.ts)  # stable: same-ts changes keep their order
        for q in quotes:
            cols["ts"].append(q.ts)
            cols["symbol"].append(q.symbol)
            cols["bid"].append(q.bid)
            cols["bid_qty"].append(q.bid_qty)
            cols["ask"].append(q.ask)
            cols["ask_qty"].append(q.ask_qty)
        return cols


def _fundamental_from_config(config: MarketConfig, specs: Mapping[str, SymbolSpec], seed: int):
    from agents.fundamental.model import FundamentalConfig, FundamentalModel

    data = dict(config.fundamental)
    data.setdefault(
        "symbols", {s: spec.ticks_to_price(spec.reference_price) for s, spec in specs.items()}
    )
    data.setdefault("seed", seed)
    data["symbols"] = {k: Decimal(str(v)) for k, v in data["symbols"].items()}
    return FundamentalModel(FundamentalConfig.model_validate(data))


def resolve_strategy(name: str, registry: Mapping[str, type] | None = None) -> type[Agent]:
    """A strategy class: from `registry` when given, else `agents.strategies.load_strategy`
    (a registry name, "module:Class" or "path/file.py:Class")."""
    if registry is not None and name in registry:
        cls = registry[name]
    elif ":" in name and registry is not None:
        module, _, attr = name.partition(":")
        cls = getattr(importlib.import_module(module), attr)
    else:
        from agents.strategies import load_strategy

        cls = load_strategy(name)
    if not (isinstance(cls, type) and issubclass(cls, Agent)):
        raise TypeError(f"{name!r} is not an Agent subclass")
    return cls
