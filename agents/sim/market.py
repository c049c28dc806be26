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

Where things are: this module builds and runs the market and answers its views and results;
`agents.sim.context` is the agent's side (`SimContext`, its view), `agents.sim.orders` what
happens when a message reaches the engine (gate, engine, settlement, records) and
`agents.sim.publish` how published items reach the agents. Code outside the simulator drives a
market through the public methods here (`add_agent`, `run`, `schedule`, `agent`, `population`,
`quotes`, `last_price`, `depth_at`, `results`, `top_of_book`), never through the underscore
parts.
"""

from __future__ import annotations

import gc
import importlib
from collections.abc import Iterable, Mapping
from decimal import Decimal
from heapq import heappush
from typing import Any

from agents.agent import Agent
from agents.config import LatencyConfig, MarketConfig, Population
from agents.events import Quote
from agents.portfolio import Portfolio
from agents.sim.context import _FUND, _QUOTE, _TRADE, SimContext
from agents.sim.kernel import Kernel
from agents.sim.orders import _NEVER, OrderFlow
from agents.sim.publish import Publisher, _Bucket
from clearing.fees import FeeSchedule
from clearing.ledger import Ledger, multiplier
from clearing.link import worst_price_from
from clearing.risk import RiskGate
from exchange.engine import Engine
from exchange.reports import Reporter
from exchange.symbols import SymbolSpec

__all__ = ["SimContext", "SimMarket", "population_of", "resolve_strategy"]

_GC_GEN0 = 50_000  # young-generation threshold while the kernel runs (see `SimMarket.run`)


class SimMarket(OrderFlow, Publisher):
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
        record_orders: bool = False,
        positions_interval_ns: int | None = None,
    ) -> None:
        """`config` gives the symbols, fees, starting cash/positions and fundamental settings
        (explicit keyword arguments override it); `seed` defaults to ``config.seed``.

        The run's story, for the run directory (`agents.sim.output`): with `record_orders`,
        every order action an agent sends is kept in `order_log`; with
        `positions_interval_ns`, every account's positions and cash are sampled on that grid
        (from ``start_ns``) into `position_log`; every refused order is kept in `refusal_log`
        (always: refusals are rare and explain a market that stops trading). None of this
        schedules a kernel event or draws a random number, so it never changes the history.

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
            self.limits = config.clearing.limits()
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
        # (ts, account, symbol, action, side, price, qty, clid) as the agents send them
        self.order_log: list[tuple] | None = [] if record_orders else None
        # (ts, account, population, reason) for each refused new order or replace
        self.refusal_log: list[tuple] = []
        # (ts, account, symbol, position, cash) on a regular grid
        if positions_interval_ns is not None and positions_interval_ns <= 0:
            raise ValueError("positions_interval_ns must be positive")
        self.positions_interval_ns = positions_interval_ns
        self.position_log: list[tuple] | None = [] if positions_interval_ns else None
        self._next_sample = start_ns
        self._population: dict[Any, str] = {}  # account -> population, for refusals
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
        self._population[account] = population_of(name)
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

    def population(self, name: str) -> list[SimContext]:
        """The agents of population `name` (named ``{name}-{i}`` by `add_population`), in the
        order they were added."""
        prefix = name + "-"
        return [c for c in self.agents
                if c.name.startswith(prefix) and c.name[len(prefix):].isdigit()]  # fmt: skip

    def schedule(self, ts: int, fn: Any, *args: Any) -> None:
        """Call ``fn(*args)`` at virtual time `ts` (at once if `ts` has passed), in the kernel's
        seeded tie order: how scenarios and outside drivers act on a running market."""
        self.kernel.schedule(max(int(ts), self.kernel.now), fn, *args)

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
            max_events: int | None = None, refresh: bool = True) -> int:  # fmt: skip
        """Start if needed, then run the kernel up to `until_ns` (or `duration_ns` from now).

        While the kernel runs, the garbage collector's young generation is collected every
        `_GC_GEN0` allocations instead of every 700 (restored on return): a run allocates
        millions of short-lived tuples and dicts that die young anyway, and the default
        threshold made the collector a fifth of the run's time (`bench/simulate.py`: 67k ->
        81k events/s over 8 simulated minutes). Reference cycles are still collected.

        When it returns, every agent's view (`Context.quote`, `last_price`, `fundamental`,
        `quotes`, ...) shows the market as of the new time less the agent's latency, so that
        code driving the market between runs (an RL environment, a notebook) reads what the
        agent would see now, as a handler starting at this instant would. ``refresh=False``
        leaves the views where each agent's last handler left them: a driver that reads only
        its own agents between runs (the RL `crowd` background, stepping a few hundred times a
        simulated minute) refreshes those itself (`SimContext.refresh`) rather than every
        agent of the crowd after every slice. The run's events are the same either way.
        """
        self.start()
        if duration_ns is not None:
            until_ns = self.kernel.now + duration_ns
        old = gc.get_threshold()
        if old[0] and old[0] < _GC_GEN0:
            gc.set_threshold(_GC_GEN0, *old[1:])
        try:
            if self.position_log is None:
                return self.kernel.run(until_ns, max_events)
            return self._run_sampling(until_ns, max_events)
        finally:
            if gc.get_threshold()[0] == _GC_GEN0 and old[0] != _GC_GEN0:
                gc.set_threshold(*old)
            if refresh:  # every handler sets its own horizon: no effect on the run
                for ctx in self.agents:
                    ctx.refresh()

    def _run_sampling(self, until_ns: int | None, max_events: int | None) -> int:
        """`kernel.run` in pieces that end on the positions grid, sampling at each grid time
        the state after every event up to it (stopping the kernel between two events and
        going on changes nothing: the event past the limit goes back with its own key)."""
        kernel = self.kernel
        interval = self.positions_interval_ns
        assert interval is not None
        limit = until_ns if until_ns is not None else 2**63
        budget = max_events if max_events is not None else 2**63
        n = 0
        while self._next_sample <= limit and n < budget:
            if until_ns is None and kernel.peek() is None:
                return n  # nothing left to run: the grid would go on forever
            n += kernel.run(self._next_sample, budget - n)
            if kernel.now < self._next_sample:
                return n  # stopped, or out of budget, before the grid time
            self._sample_positions(self._next_sample)
            self._next_sample += interval
            if kernel._stopped:  # `kernel.stop()` in the grid's last event: stop here too
                return n
        if n < budget:
            n += kernel.run(until_ns, budget - n)
        return n

    def _sample_positions(self, ts: int) -> None:
        """One row per account and symbol: its position and cash as the clearing house holds
        them at `ts` (settled at the trade), else as the agent's portfolio shows them."""
        log = self.position_log
        assert log is not None
        symbols = self.symbols
        ledger = self.ledger
        for ctx in self.agents:
            account = ctx.account
            if ledger is not None:
                acct = ledger.accounts[account]
                cash = acct.cash
                held = acct.positions
                for sym in symbols:
                    pos = held.get(sym)
                    log.append((ts, account, sym, pos.qty if pos is not None else 0, cash))
            else:
                p = ctx.portfolio
                for sym in symbols:
                    log.append((ts, account, sym, p.position(sym), p.cash))

    def drain_orders(self) -> list[tuple]:
        """The `order_log` rows recorded since the last drain; the log is emptied in place, so
        a long run can stream its orders to disk chunk by chunk (`agents.sim.sweep`)."""
        return _drain(self.order_log)

    def drain_positions(self) -> list[tuple]:
        """The `position_log` rows sampled since the last drain (emptied in place)."""
        return _drain(self.position_log)

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


def _drain(log: list[tuple] | None) -> list[tuple]:
    if log is None:
        return []
    rows = log[:]
    del log[:]  # in place: every context appends to this very list
    return rows


def population_of(name: str) -> str:
    """Agents of a population are named ``{population}-{i}`` (`SimMarket.add_population`);
    anyone else is their own population."""
    head, sep, tail = name.rpartition("-")
    return head if sep and tail.isdigit() else name


def _fundamental_from_config(config: MarketConfig, specs: Mapping[str, SymbolSpec], seed: int):
    from agents.fundamental.model import FundamentalConfig, FundamentalModel

    data = dict(config.fundamental)
    data.setdefault(
        "symbols", {s: spec.ticks_to_price(spec.reference_price) for s, spec in specs.items()}
    )
    data.setdefault("seed", seed)
    # stepped every publication unless the file says otherwise, as `MarketConfig.fundamental_model`
    # gives the live fundamental process: one market file, one F process, live or simulated
    data.setdefault("step_s", config.fundamental_interval_s)
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
