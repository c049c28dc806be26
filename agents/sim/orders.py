"""What happens when an agent's messages reach the engine: the clearing house's pre-trade gate,
the engine call, and the engine's output recorded, settled, published and reported.

`OrderFlow` is a part of `SimMarket` (a mixin over the market's state, for the same reason as
`agents.sim.publish.Publisher`: these are hot paths). With the clearing cores on, every new
order and replace passes the same `clearing.risk.RiskGate` the live exchange uses and every
trade settles in the `clearing.ledger.Ledger` when it happens.
"""

from __future__ import annotations

from bisect import bisect_left
from operator import itemgetter
from typing import TYPE_CHECKING, Any

from agents.events import Quote, TradeTick
from agents.sim.context import _CANCEL, _NEW, _QUOTE, _REPLACE, _REPORT, _TRADE
from exchange.events import ACCEPTED, BOOK, CANCELLED, REJECTED, STATUS, TRADE
from exchange.reports import reject_raw

if TYPE_CHECKING:
    from agents.portfolio import OpenOrder
    from agents.sim.context import SimContext

__all__ = ["OrderFlow"]

_NEVER = 2**63
_GATE_SYNC = 8192  # settled trades between two settled-state updates of the risk gate (the
# gate counts unsettled fills as pending, so its answers do not depend on this; only its cost)
_NO_LEVEL = (0, 0)  # (qty, count) of a price level that is not in the book
_TS = itemgetter(0)
# engine rejects of a replace that say the order moved on (filled, cancelled) or the request
# changed nothing: races of the order's life, not refusals of its terms (not in `refusal_log`)
_LATE = frozenset(("unknown_order", "replace_changes_nothing", "replace_qty_not_above_filled",
                   "symbol_mismatch"))  # fmt: skip


class OrderFlow:
    """The engine's side of the simulated market (part of `SimMarket`)."""

    _wake_at: int
    refusal_log: list[tuple]
    _population: dict[Any, str]

    def _risk_state(self, account: str) -> dict[str, Any]:
        assert self.ledger is not None
        acct = self.ledger.accounts[account]
        lim = acct.limits
        return {
            "account": account, "token_hash": "", "cash": acct.cash,
            "positions": {s: p.qty for s, p in acct.positions.items()},
            "credit_limit": acct.credit_limit, "short_limit": lim.short_limit,
            "max_position": lim.max_position, "max_order_notional": lim.max_order_notional,
            "short_margin": lim.short_margin,
        }  # fmt: skip

    def _refuse(self, ctx: SimContext, order: OpenOrder, reason: str, ts: int, kind: str) -> None:
        """The gate said no: the agent hears it as the live exchange would say it."""
        self.refusal_log.append((ts, ctx.account, self._population[ctx.account], reason))
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
                if ev[6] == "new" or (ev[6] == "replace" and ev[7] not in _LATE):
                    account = ev[5]  # the engine refused an order's terms
                    self.refusal_log.append(
                        (ts, account, self._population.get(account, str(account)), ev[7])
                    )
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

