"""The live agent runner: many `Agent`s on one asyncio loop, trading on a real exchange.

ARCHITECTURE.md: hundreds of agents per process, one loop. Each agent gets its own account (an
order-entry session is one account), its own `LiveContext`, and its own random streams; market
data (book, trades, fair values) is received once per runner and fanned out.

Time as the agent sees it. Everything an agent hears (market data, its own reports) reaches
its handlers one *network latency* after the runner received it, and everything it does leaves
one *decision delay plus network latency* after its handler ran, drawn per message from its
`LatencyConfig` with its own stream (`agent_rng(seed, name + ":latency")`, as in simulated time).
An agent's messages never overtake each other. Agents with the same fixed latency share one
timer per delivery, so a large crowd costs one callback per market-data message, not hundreds.

A handler that raises is logged and counted; it never stops the runner or the other agents.

Stopping (SIGINT/SIGTERM or `stop()`): every agent's `on_stop`, then a mass cancel per account,
then the runner waits (bounded) until the cancels are confirmed and clearing has settled every
fill the agents saw, and compares each agent's own view of cash and positions with clearing's.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import signal
import sys
import time
from collections import defaultdict, deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import structlog
import zmq.asyncio

from agents.agent import Agent, Context, agent_rng, dispatch_report
from agents.client import ExchangeClient, MarketDataClient
from agents.config import LatencyConfig
from agents.events import Quote, TradeTick
from agents.portfolio import OpenOrder, Portfolio
from agents.settings import ClientSettings
from clearing.client import ClearingClient, ClearingError
from clearing.fees import FeeSchedule
from exchange.protocol import CancelOrder, MassCancel, NewOrder, ReplaceOrder
from exchange.reports import reject_raw
from exchange.symbols import SymbolSpec

__all__ = ["AgentSpec", "LiveContext", "Runner"]

log = structlog.get_logger("runner")


def _raise_fd_limit() -> None:
    """One TCP connection per agent: lift the soft open-files limit to the hard one."""
    try:
        import resource

        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft < hard:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    except (ImportError, ValueError, OSError):
        pass


_FRESH_TOKEN_RETRY = frozenset({"clearing_unavailable", "invalid_token"})


class _Latency:
    """Per-agent delays in seconds, drawn from the agent's own latency stream."""

    __slots__ = ("decision", "kind", "mean", "rng")

    def __init__(self, cfg: LatencyConfig, rng: np.random.Generator) -> None:
        self.kind = cfg.kind
        self.mean = cfg.network_us / 1e6
        self.decision = cfg.decision_us / 1e6
        self.rng = rng

    def network(self) -> float:
        if self.kind == "fixed" or self.mean == 0:
            return self.mean
        if self.kind == "uniform":
            return self.mean * (0.5 + self.rng.random())
        return float(self.rng.exponential(self.mean))


def _run_tag() -> str:
    """Four random base-36 characters: short, so ids stay well under the protocol's limit."""
    n = secrets.randbelow(36**4)
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    return "".join(digits[n // 36**i % 36] for i in range(4))


class LiveContext(Context):
    """`Context` over a real exchange session (see the module docstring for timing)."""

    def __init__(
        self,
        runner: Runner,
        agent: Agent,
        name: str,
        account: str,
        client: ExchangeClient,
        latency: LatencyConfig,
        seed: int,
        specs: Mapping[str, SymbolSpec],
        portfolio: Portfolio,
    ) -> None:
        super().__init__(name, account, specs, agent_rng(seed, name), portfolio,
                         log=log.bind(agent=name))  # fmt: skip
        self._id_prefix = f"{name}.{runner.run_tag}"
        self.runner = runner
        self.agent = agent
        self.client = client
        self.latency = _Latency(latency, agent_rng(seed, name + ":latency"))
        self._loop = runner.loop
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._last_departure = 0.0
        self._last_arrival = 0.0
        self._reconnecting: asyncio.Future | None = None
        self.errors = 0
        self.rejects = 0
        self.calls = 0  # handler calls (decisions)

    # ------------------------------------------------------------------ the host's part
    def now(self) -> int:
        return time.time_ns()

    def _depart(self, msg: Any) -> None:
        """Send after decision delay + network latency, never before an earlier message."""
        lat = self.latency
        at = self._loop.time() + lat.decision + lat.network()
        if at < self._last_departure:
            at = self._last_departure
        self._last_departure = at
        if at <= self._loop.time():
            self._ship(msg)
        else:
            self._loop.call_at(at, self._ship, msg)

    def _ship(self, msg: Any) -> None:
        if self.runner.stopping_sends:
            return
        if self._reconnecting is None:
            try:
                self.client.send_nowait(msg)
                return
            except Exception as exc:
                log.warning("send_failed", agent=self.name, error=str(exc))
                self.session_lost("send_failed")
        # Not connected: the agent hears a reject (no order stays "pending" forever).
        if msg.type == "new_order":
            self.on_report_dict(reject_raw(msg, "not_connected", self.account, time.time_ns()))

    def session_lost(self, why: str) -> None:
        """The exchange went away (goodbye, or restarted without us): log on again, with
        backoff, until it answers. Its journal keeps our open orders; fills reach us again."""
        if self._reconnecting is not None or self.runner.stopping_sends:
            return
        log.warning("session_lost", agent=self.name, why=why)
        self._reconnecting = asyncio.ensure_future(self._reconnect())

    async def _reconnect(self) -> None:
        delay = 0.2
        try:
            while not self.runner.stopping_sends:
                await asyncio.sleep(delay)  # backoff between logon attempts
                try:
                    recovered = self.client.recovered
                    await self.client.close()
                    await self.client.connect(timeout=5.0)
                    self.client.listener = self.on_report
                    # What happened while we were away: orders that are no longer open (their
                    # last reports may be lost) are forgotten; missed fills are recovered from
                    # clearing when the runner reconciles.
                    with contextlib.suppress(Exception):
                        infos = await self.client.fetch_open_orders()
                        gone = self.portfolio.resync_orders({i.client_order_id for i in infos})
                        if gone:
                            log.info("orders_resynced", agent=self.name, gone=gone)
                    # connect() asked for the reports missed meanwhile (ResendRequest); only if
                    # the exchange no longer had some must clearing's records fill in
                    if self.client.resend_incomplete:
                        self.runner.gaps = True
                    self.runner.resent += self.client.recovered - recovered
                    log.info("session_restored", agent=self.name,
                             reports_recovered=self.client.recovered - recovered)
                    return
                except Exception as exc:
                    log.info("reconnect_failed", agent=self.name, error=str(exc)[:200])
                    delay = min(delay * 2, 5.0)
        finally:
            self._reconnecting = None

    def _send_new(self, order: OpenOrder, order_type: str, tif: str, post_only: bool) -> None:
        self._depart(NewOrder(
            client_order_id=order.client_order_id, symbol=order.symbol, side=order.side,
            order_type=order_type, qty=order.qty, price=order.price, time_in_force=tif,
            post_only=post_only,
        ))  # fmt: skip

    def _send_cancel(self, order: OpenOrder) -> None:
        self._depart(CancelOrder(
            client_order_id=f"{order.client_order_id}x{next(self._ids)}", symbol=order.symbol,
            orig_client_order_id=order.client_order_id,
        ))  # fmt: skip

    def _send_replace(self, order: OpenOrder, qty: int, price: int | None) -> None:
        self._depart(ReplaceOrder(
            client_order_id=f"{order.client_order_id}r{next(self._ids)}", symbol=order.symbol,
            orig_client_order_id=order.client_order_id, qty=qty, price=price,
        ))  # fmt: skip

    def _send_cancel_all(self, symbol: str | None) -> None:
        self._depart(MassCancel(client_order_id=f"{self.name}.m{next(self._ids)}", symbol=symbol))

    def set_timer(self, name: str, interval_ns: int, repeat: bool = True) -> None:
        self.cancel_timer(name)
        delay = max(interval_ns, 1) / 1e9
        at = self._loop.time() + delay
        self._timers[name] = self._loop.call_at(at, self._fire, name, delay, repeat, at)

    def _fire(self, name: str, delay: float, repeat: bool, due: float) -> None:
        now = self._loop.time()
        self.runner.timer_lateness.append(now - due)
        if repeat:
            at = max(due + delay, now)  # fixed rate, without a burst after a stall
            self._timers[name] = self._loop.call_at(at, self._fire, name, delay, repeat, at)
        else:
            self._timers.pop(name, None)
        self.call(self.agent.on_timer, name)

    def cancel_timer(self, name: str) -> None:
        handle = self._timers.pop(name, None)
        if handle is not None:
            handle.cancel()

    def cancel_timers(self) -> None:
        for handle in self._timers.values():
            handle.cancel()
        self._timers.clear()

    def book(self, symbol: str, levels: int = 10) -> tuple[list[tuple], list[tuple]]:
        local = self.runner.books.get(symbol)
        return local.levels(levels) if local is not None else ([], [])

    # ------------------------------------------------------------------ incoming
    def call(self, handler: Callable[..., Any], *args: Any) -> None:
        """Run one handler; an exception is the agent's problem, not the runner's."""
        if self.runner.stopped_agents:
            return
        self.calls += 1
        try:
            handler(*args)
        except Exception:
            self.errors += 1
            if self.errors <= 5:
                log.exception("agent_handler_failed", agent=self.name, handler=handler.__name__)

    def on_report(self, msg: Any) -> None:
        """An execution report, cancel reject or mass-cancel report from the exchange."""
        if msg.type == "mass_cancel_report":
            return  # every cancelled order also has its own report
        self.on_report_dict(msg.model_dump())

    def on_report_dict(self, report: dict[str, Any]) -> None:
        at = self._loop.time() + self.latency.network()
        if at < self._last_arrival:
            at = self._last_arrival  # reports keep their order
        self._last_arrival = at
        self._loop.call_at(at, self._deliver, report)

    def _deliver(self, report: dict[str, Any]) -> None:
        try:
            dispatch_report(self.agent, report)
        except Exception:
            self.errors += 1
            log.exception("agent_report_failed", agent=self.name)
        if report.get("exec_type") == "rejected" or report.get("type") == "cancel_reject":
            self._rejected(report)
        self.runner.note_fill(report)

    def _rejected(self, report: dict[str, Any]) -> None:
        """Count a refusal; say it in the log (the first few, then every thousandth) unless
        the agent handles `on_reject` itself: an agent whose every order is refused must not
        look like one that is merely quiet."""
        self.rejects += 1
        self.runner.reject_reasons[str(report.get("reject_reason") or report.get("reason"))] += 1
        if type(self.agent).on_reject is Agent.on_reject and (
            self.rejects <= 5 or self.rejects % 1000 == 0
        ):
            log.warning("order_rejected", agent=self.name, reason=report.get("reject_reason"),
                        client_order_id=report.get("client_order_id"),
                        text=report.get("text") or None, rejects=self.rejects)  # fmt: skip


@dataclass
class AgentSpec:
    """One agent to run: an instance, its name, latency, and where its account comes from."""

    agent: Agent
    name: str
    latency: LatencyConfig = field(default_factory=LatencyConfig)
    account: str | None = None  # default: the name
    token: str | None = None  # given: use this existing account; else clearing opens one
    cash: int | None = None
    positions: dict[str, int] | None = None


class Runner:
    def __init__(
        self,
        specs: list[AgentSpec],
        settings: ClientSettings | None = None,
        symbols: list[SymbolSpec] | None = None,
        seed: int = 1,
    ) -> None:
        self.settings = s = settings or ClientSettings()
        # This run's tag in its agents' client order ids (the exchange keeps an account's ids
        # for the day: a runner started again must not reuse the ids of its earlier runs)
        self.run_tag = _run_tag()
        self.specs = specs
        self.seed = seed
        self.symbol_specs = {sp.symbol: sp for sp in (symbols or [])}
        self.contexts: list[LiveContext] = []
        self.books: dict[str, Any] = {}
        self.loop: asyncio.AbstractEventLoop
        self.stopping_sends = False
        self.stopped_agents = False
        self.max_trade_id = 0
        self.fills = 0
        self.reject_reasons: dict[str, int] = defaultdict(int)  # (metrics)
        self.volume: dict[str, int] = {}  # lots traded on the feed since start, per symbol
        self.gaps = False  # a session was lost and restored: reports may be missing
        self.recovered = 0  # fills booked from clearing's records at the end
        self.resent = 0  # reports the exchange sent again after a reconnection
        self.timer_lateness: deque[float] = deque(maxlen=100_000)  # seconds late, recent timers
        self.started_at = 0.0
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task] = []
        _raise_fd_limit()
        self._ctx = zmq.asyncio.Context()
        self._ctx.set(zmq.MAX_SOCKETS, 65_536)  # one order-entry socket per agent
        self.md = MarketDataClient(settings=s, context=self._ctx)
        self.result: dict[str, Any] = {}

    def note_fill(self, report: Mapping[str, Any]) -> None:
        tid = report.get("trade_id")
        if tid:
            self.fills += 1
            if tid > self.max_trade_id:
                self.max_trade_id = tid

    def stop(self) -> None:
        """First call: stop cleanly. A second one (Ctrl-C again): leave now."""
        if self._stop.is_set():
            log.warning("runner_forced_exit")
            os._exit(130)
        self._stop.set()

    # ------------------------------------------------------------------ start
    async def _open_accounts(
        self, specs: list[AgentSpec] | None = None
    ) -> list[tuple[AgentSpec, str, str, Any]]:
        """(spec, account, token, balance) per agent (default: every spec); accounts opened
        or taken back."""
        s = self.settings
        admin = ClearingClient(s.clearing, admin_token=s.admin_token, ctx=self._ctx)
        out = []
        try:
            for spec in self.specs if specs is None else specs:
                account = spec.account or spec.name
                token = spec.token
                if token is None:
                    opened = await admin.open_account(
                        account, cash=spec.cash, positions=spec.positions, if_exists="rotate"
                    )
                    token = opened.token
                owner = ClearingClient(s.clearing, account=account, token=token, ctx=self._ctx)
                balance = await owner.balance()
                await owner.close()
                out.append((spec, account, token, balance))
        finally:
            await admin.close()
        return out

    async def run(self) -> dict[str, Any]:
        self.loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                self.loop.add_signal_handler(sig, self.stop)
        accounts = await self._open_accounts()
        for spec, account, token, balance in accounts:
            await self._bind(spec, account, token, balance)
        self._start_market_data()
        if self.settings.metrics_port:
            from agents.runner_metrics import RunnerMetrics

            RunnerMetrics(self).serve(self.settings.metrics_port, self.settings.metrics_host)
        self.started_at = self.loop.time()
        for ctx in self.contexts:
            ctx.call(ctx.agent.on_start)
        log.info("runner_started", agents=len(self.contexts), symbols=list(self.symbol_specs))
        if not sys.stdout.isatty():  # for the launcher reading our stdout, not for a person
            print("AGORA_READY " + json.dumps({"agents": len(self.contexts)}), flush=True)
        await self._stop.wait()
        return await self._shutdown()

    async def _bind(self, spec: AgentSpec, account: str, token: str, balance: Any) -> LiveContext:
        s = self.settings
        client = ExchangeClient(account, token, gateway=s.gateway, settings=s,
                                context=self._ctx)  # fmt: skip
        # A token just issued may not have reached the exchange's gate yet: retry a short
        # while on invalid_token too (the clearing's state is on its way).
        await client.connect(retry=_FRESH_TOKEN_RETRY)
        if not self.symbol_specs:
            self.symbol_specs = {sym: SymbolSpec(symbol=sym) for sym in client.symbols}
        portfolio = Portfolio(
            cash=balance.cash, positions={p.symbol: p.qty for p in balance.positions},
            fees=balance.fees or FeeSchedule(), multipliers=balance.multipliers or {},
        )  # fmt: skip
        ctx = LiveContext(self, spec.agent, spec.name, account, client, spec.latency,
                          self.seed, self.symbol_specs, portfolio)  # fmt: skip
        client.listener = ctx.on_report
        client.on_lost = ctx.session_lost
        spec.agent.bind(ctx)
        self.contexts.append(ctx)
        return ctx

    async def add_agent(self, spec: AgentSpec) -> LiveContext:
        """Open (or take back) `spec`'s account, log it on and start it now: an agent a stress
        scenario brings into the running market (`agents.stress.live`)."""
        ((_, account, token, balance),) = await self._open_accounts([spec])
        self.specs.append(spec)
        ctx = await self._bind(spec, account, token, balance)
        if len(self.contexts) > 1:  # the market as the others see it, until the next update
            ctx.quotes.update(self.contexts[0].quotes)
            ctx.last_prices.update(self.contexts[0].last_prices)
        ctx.call(ctx.agent.on_start)
        log.info("agent_added", agent=spec.name, account=account)
        return ctx

    # ------------------------------------------------------------------ market data fan-out
    def _groups(self, handler: str) -> list[tuple[float | None, list[LiveContext]]]:
        """Agents that override `handler`, grouped: (shared fixed latency, agents) or
        (None, [agent]) for agents whose latency is drawn per message."""
        fixed: dict[float, list[LiveContext]] = defaultdict(list)
        singles = []
        for ctx in self.contexts:
            if getattr(type(ctx.agent), handler) is getattr(Agent, handler):
                continue
            if ctx.latency.kind == "fixed":
                fixed[ctx.latency.mean].append(ctx)
            else:
                singles.append((None, [ctx]))
        return list(fixed.items()) + singles

    def _fan_out(self, groups: list, apply: Callable[[LiveContext], None]) -> None:
        loop = self.loop
        for latency, ctxs in groups:
            delay = latency if latency is not None else ctxs[0].latency.network()
            if delay <= 0:
                self._deliver_all(ctxs, apply)
            else:
                loop.call_later(delay, self._deliver_all, ctxs, apply)

    @staticmethod
    def _deliver_all(ctxs: list[LiveContext], apply: Callable[[LiveContext], None]) -> None:
        for ctx in ctxs:
            apply(ctx)

    def _start_market_data(self) -> None:
        book_groups = self._groups("on_book")
        trade_groups = self._groups("on_trade")
        fundamental_groups = self._groups("on_fundamental")
        everyone = self.contexts

        async def books(symbol: str) -> None:
            last = None
            async for book in self.md.watch_order_book(symbol):
                self.books[symbol] = book
                bid, ask = book.best_bid, book.best_ask
                bids, asks = book.levels(1)
                q = Quote(symbol, bid, bids[0][1] if bids else 0, ask, asks[0][1] if asks else 0,
                          time.time_ns())  # fmt: skip
                if last is not None and (q.bid, q.bid_qty, q.ask, q.ask_qty) == last:
                    continue
                last = (q.bid, q.bid_qty, q.ask, q.ask_qty)
                for ctx in everyone:
                    ctx.quotes[symbol] = q

                def on_book(ctx: LiveContext, q: Quote = q) -> None:
                    ctx.call(ctx.agent.on_book, q)

                self._fan_out(book_groups, on_book)

        async def trades(symbol: str) -> None:
            async for t in self.md.watch_trades(symbol):
                self.volume[symbol] = self.volume.get(symbol, 0) + t.qty
                tick = TradeTick(symbol, t.price, t.qty, t.aggressor_side, t.trade_id, t.ts)
                for ctx in everyone:
                    ctx.last_prices[symbol] = t.price

                def on_trade(ctx: LiveContext, tick: TradeTick = tick) -> None:
                    ctx.call(ctx.agent.on_trade, tick)

                self._fan_out(trade_groups, on_trade)

        async def fundamentals(endpoint: str) -> None:
            from agents.fundamental import FundamentalFeed

            async with FundamentalFeed(endpoint, ctx=self._ctx) as feed:
                async for msg in feed:
                    for ctx in everyone:
                        ctx.fundamentals[msg.symbol] = msg.value

                    def on_fundamental(ctx: LiveContext, m: Any = msg) -> None:
                        ctx.call(ctx.agent.on_fundamental, m.symbol, m.value)

                    self._fan_out(fundamental_groups, on_fundamental)

        for symbol in self.symbol_specs:
            self._tasks.append(asyncio.create_task(self._guard(books, symbol, "book")))
            self._tasks.append(asyncio.create_task(self._guard(trades, symbol, "trades")))
        if self.settings.fundamental:
            self._tasks.append(asyncio.create_task(
                self._guard(fundamentals, self.settings.fundamental, "fundamental")
            ))  # fmt: skip
            from agents.stress.live import follow, population_of

            population = population_of(self.specs[0].name) if self.specs else None
            self._tasks.append(asyncio.create_task(self._guard(
                lambda ep: follow(self, self._ctx, ep, population), self.settings.fundamental,
                "scenarios",
            )))  # fmt: skip

    async def _guard(self, follow: Callable[[str], Any], arg: str, what: str) -> None:
        """Follow a stream; when it ends (the exchange said goodbye) or fails, follow it
        again after a pause, so a restarted exchange is picked up again."""
        while not self.stopping_sends:
            try:
                await follow(arg)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("market_data_failed", stream=what)
            await asyncio.sleep(1.0)  # back off before resubscribing

    # ------------------------------------------------------------------ stop
    async def _shutdown(self, cancel_timeout: float = 10.0, settle_timeout: float = 30.0) -> dict:
        elapsed = self.loop.time() - self.started_at
        calls = sum(ctx.calls for ctx in self.contexts)
        late = sorted(self.timer_lateness)
        self.load = {
            "seconds": round(elapsed, 3), "decisions": calls,
            "decisions_per_s": round(calls / elapsed, 1) if elapsed else 0.0,
            "timer_late_p50_ms": round(late[len(late) // 2] * 1e3, 2) if late else None,
            "timer_late_p99_ms": round(late[int(len(late) * 0.99)] * 1e3, 2) if late else None,
        }  # fmt: skip
        log.info("runner_stopping", agents=len(self.contexts), **self.load)
        for ctx in self.contexts:
            ctx.call(ctx.agent.on_stop)
            ctx.cancel_timers()
        self.stopped_agents = True  # no more handlers: the agents are done deciding
        for ctx in self.contexts:
            with contextlib.suppress(Exception):
                ctx.client.send_nowait(MassCancel(client_order_id=f"{ctx.name}.stop"))
        deadline = self.loop.time() + cancel_timeout
        while any(ctx.portfolio.orders for ctx in self.contexts):
            if self.loop.time() > deadline:
                break
            await asyncio.sleep(0.05)  # reports arrive on the loop; this only yields to them
        self.stopping_sends = True
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        result = await self._reconcile(settle_timeout)
        for ctx in self.contexts:
            await ctx.client.close()
        await self.md.close()
        self._ctx.term()
        self.result = result
        return result

    async def _reconcile(self, timeout: float) -> dict[str, Any]:
        """Each agent's own view against clearing's, once clearing has every fill."""
        s = self.settings
        rows, mismatches = [], []
        deadline = self.loop.time() + timeout
        for ctx in self.contexts:
            left = deadline - self.loop.time()
            if left <= 0:  # clearing is too slow or gone: say so for the rest, do not hang
                mismatches.append({"agent": ctx.name, "error": "clearing did not answer"})
                continue
            owner = ClearingClient(s.clearing, account=ctx.account, token=ctx.client.token,
                                   ctx=self._ctx, timeout=left)  # fmt: skip
            try:
                while True:
                    bal = await owner.balance()
                    if bal.settled_through >= self.max_trade_id or self.loop.time() > deadline:
                        break
                    await asyncio.sleep(0.1)  # clearing settles asynchronously
            except ClearingError as exc:
                mismatches.append({"agent": ctx.name, "error": str(exc)})
                await owner.close()
                continue
            mine = ctx.portfolio
            if self.gaps:
                # sessions were lost: book what the exchange journalled but could not tell
                # us, from clearing's records (never in a run without a gap, so a lost report
                # there still shows up as a mismatch)
                with contextlib.suppress(ClearingError):
                    owner.timeout = max(1.0, deadline - self.loop.time())
                    recovered = mine.recover(await owner.all_trades())
                    if recovered:
                        log.info("fills_recovered", agent=ctx.name, fills=recovered)
                        self.recovered += recovered
            await owner.close()
            theirs = {p.symbol: p.qty for p in bal.positions if p.qty}
            own = {k: v for k, v in mine.positions.items() if v}
            if bal.cash != mine.cash or theirs != own:
                mismatches.append({"agent": ctx.name, "clearing_cash": bal.cash,
                                   "own_cash": mine.cash, "clearing_positions": theirs,
                                   "own_positions": own})  # fmt: skip
            rows.append({"agent": ctx.name, "account": ctx.account,
                         "strategy": type(ctx.agent).__name__,
                         "cash": bal.cash, "positions": theirs, "pnl": bal.pnl,
                         "fills": mine.fills, "volume": mine.volume,
                         "posted": ctx.qty_posted,
                         "orders": ctx.orders_sent, "rejects": ctx.rejects,
                         "errors": ctx.errors})  # fmt: skip
        result = {
            "agents": len(self.contexts), "fills": self.fills, "max_trade_id": self.max_trade_id,
            "orders": sum(c.orders_sent for c in self.contexts),
            "rejects": sum(c.rejects for c in self.contexts),
            "errors": sum(c.errors for c in self.contexts), "mismatches": mismatches,
            "recovered_fills": self.recovered, "resent_reports": self.resent,
            "load": getattr(self, "load", {}), "pnl": rows,
        }  # fmt: skip
        log.info("runner_stopped", agents=result["agents"], orders=result["orders"],
                 fills=result["fills"], mismatches=len(mismatches))  # fmt: skip
        return result
