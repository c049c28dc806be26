"""Handing what the engine published to the agents: public data (top of book, trades, fair
values) to every agent with a handler for it, and each agent's own channel (reports and the
public items of random-latency agents).

`Publisher` is a part of `SimMarket` (a mixin over the market's state, not a separate object:
these are the simulator's hottest paths, and an extra indirection per delivery costs). Agents
with the same fixed latency share one delivery event per publication (`_Bucket`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from agents.agent import dispatch_report
from agents.sim.context import _QUOTE, _REPORT, _TRADE

if TYPE_CHECKING:
    from agents.sim.context import SimContext
    from agents.sim.kernel import Kernel

__all__ = ["Publisher"]


class _Bucket:
    """Agents with the same fixed latency that want public data: one delivery per publication."""

    __slots__ = ("at", "batch", "latency", "members", "sent")

    def __init__(self, latency: int) -> None:
        self.latency = latency
        self.members: list[SimContext] = []
        self.batch: list | None = None
        self.at = -1
        self.sent = -1


class Publisher:
    """Delivery of published items to the agents (part of `SimMarket`)."""

    kernel: Kernel
    _buckets: dict[int, dict[int, _Bucket]]
    _bucket_delivery: dict
    _eager_random: dict[int, list[SimContext]]
    handler_calls: int
    deliveries: int

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

