"""Run an unchanged `Agent` over a tape: the replay's `Context`, and the host loop around it.

The agent sees what it sees live and in simulated time: `on_start`, `on_book` with each
quote, `on_trade` with each trade, its execution reports through `dispatch_report` (the same
book-keeping as both other hosts), timers on the tape's clock, and it acts through
`ctx.submit/cancel/replace`. Those go into the replay's order slots (`agents.replay.orders`)
with the configured latency; the loop (`agents.replay.loop`) decides fills by the chosen rule.

Handlers are only called for what the agent's class overrides (as in the simulated market),
and the loop runs compiled between them: an agent on a 100 ms timer costs one Python call per
timer, whatever the number of updates in between.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Iterable, Mapping
from typing import Any

from agents.agent import Agent, Context, agent_rng, dispatch_report
from agents.events import Quote, TradeTick
from agents.portfolio import OpenOrder, Portfolio
from agents.replay import orders as o
from agents.replay.config import ReplayConfig
from agents.replay.loop import STOP_QUOTE, STOP_TRADE, run_span
from agents.replay.record import Record
from agents.replay.tape import NO_ASK, NO_BID, QUOTE, Chunk
from agents.units import CASH_UNIT
from clearing.fees import fee_for
from clearing.ledger import multiplier
from exchange.symbols import SymbolSpec

__all__ = ["Replay", "ReplayContext"]

_SIDES = {1: "buy", -1: "sell"}
_AGGRESSOR = {1: "buy", -1: "sell", 0: "none"}


def _multiplier(spec: SymbolSpec) -> int:
    """Cash units per tick x lot; 1 when the tick is finer than a cent (cash then counts
    ticks x lots, said in the summary)."""
    try:
        return multiplier(spec.tick_size, spec.lot_size, CASH_UNIT)
    except ValueError:
        return 1


class ReplayContext(Context):
    """`Context` on the tape's clock; orders go to the replay's slots (see the module doc)."""

    def __init__(self, host: Replay, agent: Agent, name: str, seed: int) -> None:
        cfg = host.config
        portfolio = Portfolio(
            cash=cfg.starting_cash, fees=cfg.fees,
            multipliers={s: _multiplier(spec) for s, spec in host.specs.items()},
        )  # fmt: skip
        super().__init__(name, cfg.account, host.specs, agent_rng(seed, name), portfolio)
        self.agent = agent
        self._host = host

    # ------------------------------------------------------------------ the host's part
    def now(self) -> int:
        return self._host.now

    def _send_new(self, order: OpenOrder, order_type: str, tif: str, post_only: bool) -> None:
        self._host.send_new(order, order_type, tif)

    def _send_cancel(self, order: OpenOrder) -> None:
        self._host.send_cancel(order)

    def _send_replace(self, order: OpenOrder, qty: int, price: int | None) -> None:
        self._host.send_replace(order, qty, price)

    def _send_cancel_all(self, symbol: str | None) -> None:
        for order in self.portfolio.open_orders(symbol):
            self._host.send_cancel(order)

    def set_timer(self, name: str, interval_ns: int, repeat: bool = True) -> None:
        interval_ns = int(interval_ns)
        if interval_ns < 0 or (repeat and interval_ns == 0):
            raise ValueError(f"timer interval must be positive, got {interval_ns}")
        self._host.set_timer(name, interval_ns, repeat)

    def cancel_timer(self, name: str) -> None:
        self._host.timers.pop(name, None)

    def book(self, symbol: str, levels: int = 10) -> tuple[list[tuple], list[tuple]]:
        """The top level only: a top-of-book tape has no deeper levels (count unknown: 0)."""
        q = self.quote(symbol)
        if q is None:
            return [], []
        bids = [] if q.bid is None else [(q.bid, q.bid_qty, 0)]
        asks = [] if q.ask is None else [(q.ask, q.ask_qty, 0)]
        return bids, asks

    # ------------------------------------------------------------------ the view
    def quote(self, symbol: str) -> Quote | None:
        return self._host.quote_of(symbol)

    def last_price(self, symbol: str) -> int | None:
        return self._host.last_of(symbol)

    # Context.__init__ assigns these; the view is the loop's market state instead.
    @property  # type: ignore[override]
    def quotes(self) -> dict[str, Quote]:
        return {s: q for s in self.symbols if (q := self.quote(s)) is not None}

    @quotes.setter
    def quotes(self, _: Any) -> None:
        pass

    @property  # type: ignore[override]
    def last_prices(self) -> dict[str, int]:
        return {s: p for s in self.symbols if (p := self.last_price(s)) is not None}

    @last_prices.setter
    def last_prices(self, _: Any) -> None:
        pass


class Replay:
    """One agent over one tape (see the module docstring); `run` returns its `Record`."""

    def __init__(
        self,
        agent: Agent,
        symbols: list[str],
        config: ReplayConfig | None = None,
        specs: Mapping[str, SymbolSpec] | None = None,
        name: str = "backtest",
        seed: int = 1,
    ) -> None:
        self.config = config or ReplayConfig()
        self.symbols = list(symbols)
        self.sym_index = {s: i for i, s in enumerate(self.symbols)}
        specs = dict(specs or {})
        self.specs = {s: specs.get(s) or SymbolSpec(symbol=s) for s in self.symbols}
        self.mkt, self.ords, self.rep, self.ctl, self.acct = o.new_state(len(self.symbols))
        self.prm = self.config.params()
        self.now = 0
        self.timers: dict[str, int] = {}
        self._heap: list[tuple[int, int, str, int, int]] = []
        self._tokens = itertools.count(1)
        self.record = Record()
        self.agent = agent
        self.ctx = ReplayContext(self, agent, name, seed)
        self._by_oid: dict[int, OpenOrder] = {}
        self._slot: dict[str, int] = {}
        self._trade_ids = itertools.count(1)
        cls = type(agent)
        self._mask = (STOP_QUOTE if cls.on_book is not Agent.on_book else 0) | (
            STOP_TRADE if cls.on_trade is not Agent.on_trade else 0)  # fmt: skip
        self._started = False
        self._next_sample = 0
        self._cols: tuple = ()
        self._n = 0
        self._i = 0

    # ------------------------------------------------------------------ the market view
    def quote_of(self, symbol: str) -> Quote | None:
        i = self.sym_index.get(symbol)
        if i is None or self.mkt[i, o.M_TS] < 0:
            return None
        m = self.mkt[i]
        bid, ask = int(m[o.M_BID]), int(m[o.M_ASK])
        return Quote(symbol, None if bid == NO_BID else bid, int(m[o.M_BIDQ]),
                     None if ask == NO_ASK else ask, int(m[o.M_ASKQ]), int(m[o.M_TS]))  # fmt: skip

    def last_of(self, symbol: str) -> int | None:
        i = self.sym_index.get(symbol)
        if i is None:
            return None
        last = int(self.mkt[i, o.M_LAST])
        return None if last < 0 else last

    def mid_of(self, i: int) -> float | None:
        bid, ask = int(self.mkt[i, o.M_BID]), int(self.mkt[i, o.M_ASK])
        if bid != NO_BID and ask != NO_ASK:
            return (bid + ask) / 2
        last = int(self.mkt[i, o.M_LAST])
        return None if last < 0 else float(last)

    # ------------------------------------------------------------------ orders in
    def _reject(self, order: OpenOrder, reason: str) -> None:
        dispatch_report(self.agent, {
            "type": "execution_report", "client_order_id": order.client_order_id,
            "order_id": 0, "symbol": order.symbol, "side": order.side, "exec_type": "rejected",
            "order_status": "rejected", "price": order.price, "qty": order.qty, "cum_qty": 0,
            "leaves_qty": 0, "reject_reason": reason, "ts": self.now,
        })  # fmt: skip

    def send_new(self, order: OpenOrder, order_type: str, tif: str) -> None:
        rec = self.record
        rec.order(self.now, self.config.account, order.symbol, "new", order.side, order.price,
                  order.qty, order.client_order_id)  # fmt: skip
        sym = self.sym_index.get(order.symbol)
        if sym is None:
            return self._reject(order, "unknown_symbol")
        if order.qty <= 0:
            return self._reject(order, "invalid_qty")
        if order.price is not None and order.price <= 0:
            return self._reject(order, "invalid_price")
        kind = o.MARKET if order.price is None else (o.IOC if tif in ("IOC", "FOK") else o.LIMIT)
        side = 1 if order.side == "buy" else -1
        at = self.now + int(self.prm[o.P_LAT_ORDER])
        slot = o.new_order(self.ords, self.ctl, sym, side, order.price or 0, order.qty, kind, at)
        if slot < 0:
            return self._reject(order, "too_many_orders")
        oid = int(self.ords[slot, o.O_OID])
        order.order_id = oid
        self._by_oid[oid] = order
        self._slot[order.client_order_id] = slot
        return None

    def send_cancel(self, order: OpenOrder) -> None:
        self.record.order(self.now, self.config.account, order.symbol, "cancel", order.side,
                          order.price, order.leaves_qty, order.client_order_id)  # fmt: skip
        slot = self._slot.get(order.client_order_id)
        if slot is not None:
            o.cancel_order(self.ords, self.ctl, slot, self.now + int(self.prm[o.P_LAT_CANCEL]))

    def send_replace(self, order: OpenOrder, qty: int, price: int | None) -> None:
        price = order.price if price is None else price
        self.record.order(self.now, self.config.account, order.symbol, "replace", order.side,
                          price, qty, order.client_order_id)  # fmt: skip
        slot = self._slot.get(order.client_order_id)
        if slot is None or price is None or qty <= 0 or price <= 0:
            dispatch_report(self.agent, {"type": "cancel_reject", "orig_client_order_id":
                            order.client_order_id, "symbol": order.symbol,
                            "reject_reason": "invalid_replace", "ts": self.now})  # fmt: skip
            return
        o.replace_order(self.ords, self.ctl, slot, price, qty,
                        self.now + int(self.prm[o.P_LAT_ORDER]))  # fmt: skip

    # ------------------------------------------------------------------ timers
    def set_timer(self, name: str, interval_ns: int, repeat: bool) -> None:
        token = next(self._tokens)
        self.timers[name] = token
        heapq.heappush(self._heap, (self.now + interval_ns, token, name, token,
                                    interval_ns if repeat else 0))  # fmt: skip

    def _next_timer(self) -> int:
        heap = self._heap
        while heap and self.timers.get(heap[0][2]) != heap[0][3]:
            heapq.heappop(heap)  # cancelled or replaced
        return heap[0][0] if heap else o.NEVER

    def _fire(self) -> None:
        due, _, name, token, interval = heapq.heappop(self._heap)
        self.now = due
        if interval:
            heapq.heappush(self._heap, (due + interval, next(self._tokens), name, token, interval))
        else:
            self.timers.pop(name, None)
        self.agent.on_timer(name)

    # ------------------------------------------------------------------ reports out
    def _reports(self) -> None:
        n = int(self.ctl[o.C_NREP])
        rows = self.rep[:n].tolist()
        self.ctl[o.C_NREP] = 0
        agent, rec, fees = self.agent, self.record, self.config.fees
        for kind, oid, ts, sym, side, price, qty, leaves, cum, rule, liq in rows:
            order = self._by_oid.get(oid)
            if order is None:
                continue
            clid = order.client_order_id
            symbol = self.symbols[sym]
            report: dict[str, Any] = {
                "type": "execution_report", "client_order_id": clid, "order_id": oid,
                "symbol": symbol, "side": _SIDES[side], "price": order.price,
                "qty": cum + leaves, "cum_qty": cum, "leaves_qty": leaves, "ts": ts,
            }  # fmt: skip
            done = False
            if kind == o.REP_FILL:
                liquidity = "maker" if liq == o.LIQ_MAKER else "taker"
                report.update(exec_type="trade", last_qty=qty, last_price=price,
                              liquidity=liquidity, trade_id=next(self._trade_ids),
                              order_status="filled" if leaves == 0 else "partially_filled")
                mult = self.ctx.portfolio.multipliers.get(symbol, 1)
                fee = fee_for(price * qty * mult, fees.rate(liquidity))
                rec.fill(ts, clid, symbol, _SIDES[side], price, qty, rule, liquidity, fee,
                         self.mid_of(sym))  # fmt: skip
                done = leaves == 0
            elif kind == o.REP_NEW:
                report.update(exec_type="new", order_status="new")
            elif kind == o.REP_CANCELED:
                report.update(exec_type="canceled", order_status="canceled")
                done = True
            else:
                report.update(exec_type="replaced", price=price,
                              order_status="new" if cum == 0 else "partially_filled")
            self.now = max(self.now, ts)
            dispatch_report(agent, report)
            if done:
                self._by_oid.pop(oid, None)
                self._slot.pop(clid, None)

    # ------------------------------------------------------------------ samples
    def _sample(self, ts: int) -> None:
        p = self.ctx.portfolio
        for i, symbol in enumerate(self.symbols):
            mid = self.mid_of(i)
            pos = p.position(symbol)
            mult = p.multipliers.get(symbol, 1)
            equity = None if mid is None else p.cash + pos * mid * mult
            self.record.sample(ts, self.config.account, symbol, pos, p.cash, mid, equity)

    # ------------------------------------------------------------------ the loop
    def start(self, ts: int) -> None:
        self.now = ts
        self._started = True
        self._next_sample = ts
        self.record.first_ts = ts
        self.ctx.agent.bind(self.ctx)
        self.agent.on_start()

    def load(self, chunk: Chunk) -> None:
        """Make `chunk` the part of the tape `drive` applies next (chunks in tape order)."""
        self._cols = chunk.contiguous().columns()
        self._n = len(chunk)
        self._i = 0
        if self._n and not self._started:
            # the first update is the market the strategy starts in: applied, then on_start
            self._i = run_span(0, 1, o.NEVER, 0, *self._cols, self.mkt, self.ords, self.acct,
                               self.rep, self.ctl, self.prm)  # fmt: skip
            self.start(int(self._cols[0][0]))

    def drive(self, until: int = o.NEVER) -> bool:
        """Apply the loaded chunk up to the first update stamped at or after `until`: True
        when that time was reached (the clock is then `until`), False when the chunk ran out.
        """
        cols = self._cols
        n = self._n
        if not n:
            return False
        ts_, kind_, sym_, a_, b_, c_, d_ = cols
        mkt, ords, acct, rep, ctl, prm = self.mkt, self.ords, self.acct, self.rep, self.ctl, \
            self.prm  # fmt: skip
        mask, agent = self._mask, self.agent
        i = self._i
        reached = False
        while i < n:
            timer = self._next_timer()
            stop = min(timer, self._next_sample, until)
            j = run_span(i, n, stop, mask, *cols, mkt, ords, acct, rep, ctl, prm)
            if j == i:  # a sample, a timer or `until` is due before update i
                if self._next_sample <= stop:
                    self._sample(self._next_sample)
                    self._next_sample += self.config.sample_ns
                elif timer <= stop:
                    self._fire()
                    if ctl[o.C_NREP]:
                        self._reports()
                else:
                    self.now = max(self.now, until)
                    reached = True
                    break
                continue
            i = j
            last = j - 1
            self.now = int(ts_[last])
            if ctl[o.C_NREP]:
                self._reports()
            if mask:
                sym = int(sym_[last])
                if kind_[last] == QUOTE:
                    if mask & STOP_QUOTE:
                        agent.on_book(self.quote_of(self.symbols[sym]))  # type: ignore[arg-type]
                elif mask & STOP_TRADE:
                    aggr = _AGGRESSOR.get(int(c_[last]), "none")
                    agent.on_trade(TradeTick(self.symbols[sym], int(a_[last]), int(b_[last]),
                                             aggr, int(d_[last]), self.now))  # fmt: skip
            if ctl[o.C_NREP]:
                self._reports()
        self._i = i
        self.record.last_ts = int(ts_[i - 1]) if i else self.record.last_ts
        self.record.events = int(ctl[o.C_EVENTS])
        return reached

    def feed(self, chunk: Chunk) -> None:
        """Apply one chunk of the tape (chunks in tape order)."""
        self.load(chunk)
        self.drive()

    def finish(self) -> Record:
        """Stop the agent (open orders are then dropped) and take a last sample."""
        if self._started:
            self.agent.on_stop()
            self._sample(self.now)
        return self.record

    def run(self, chunks: Iterable[Chunk]) -> Record:
        for chunk in chunks:
            self.feed(chunk)
        return self.finish()

