"""Where the dashboard's figures come from: the public feed, the snapshot service, clearing's
account API, the fair-value feed and the services' Prometheus pages.

The dashboard is a client like any other: it subscribes to the feed's `trades`, `tob` and
`status` channels only (the PUB filters at the exchange, so the L2 deltas that make most of a
busy feed never reach it), and asks the snapshot service for each book every `poll_s`
instead of rebuilding books from deltas. Each source is one asyncio task that never lets an
error end it: a source that fails is shown as failing (``errors``) and asked again.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import urllib.request
from typing import Any

import msgpack
import structlog
import zmq
import zmq.asyncio

from agents.config import MarketConfig
from dashboard import scrape
from dashboard.metrics import DashboardMetrics
from dashboard.settings import DashboardSettings
from dashboard.state import MarketState
from exchange.protocol import SnapshotRequest, SymbolControl, decode_batch, encode

__all__ = ["Sources", "control_symbol"]

log = structlog.get_logger("dashboard")

_TIMEOUT_S = 5.0
_DRAIN = 500  # feed frames read per turn of the loop


async def _ask(ctx: zmq.asyncio.Context, endpoint: str, msg: Any, timeout: float) -> Any:
    """One request to the snapshot service on a fresh DEALER, one reply (or TimeoutError)."""
    sock = ctx.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    try:
        sock.connect(endpoint)
        await sock.send(encode(msg))
        if not await sock.poll(int(timeout * 1000), zmq.POLLIN):
            raise TimeoutError(f"no answer from {endpoint} within {timeout:g} s")
        return decode_batch(await sock.recv())[0]
    finally:
        sock.close()


async def control_symbol(
    ctx: zmq.asyncio.Context, endpoint: str, symbol: str, action: str, token: str
) -> tuple[bool, str, str]:
    """Ask the exchange to halt or resume `symbol` with the operator's `token`.

    Returns (accepted, reason, text). The exchange checks the token; this only carries it.
    """
    try:
        reply = await _ask(ctx, endpoint, SymbolControl(symbol=symbol, action=action,
                                                        token=token), _TIMEOUT_S)  # fmt: skip
    except (TimeoutError, zmq.ZMQError, ValueError) as exc:
        return False, "unavailable", str(exc)
    if reply.type == "market_status":
        return True, reply.phase, f"{symbol} is {reply.phase}"
    return False, getattr(reply, "reason", "refused"), getattr(reply, "text", "")


class Sources:
    """The dashboard's input tasks; results land in `state`, `leaderboard`, `services`."""

    def __init__(
        self, settings: DashboardSettings, state: MarketState, metrics: DashboardMetrics,
        market: MarketConfig | None,
    ) -> None:  # fmt: skip
        self.s = settings
        self.state = state
        self.metrics = metrics
        self.market = market
        self.ctx = zmq.asyncio.Context()
        self.admin_token = settings.resolve_admin_token()
        self.leaderboard: dict[str, Any] = {"rows": [], "note": "not read yet"}
        self.leaderboard_version = 0
        self.services: dict[str, Any] = {"rows": []}
        self.services_version = 0
        self.errors: dict[str, str] = {}
        self._readings: dict[str, scrape.Reading] = {}
        self.accounts_history: dict[str, list[tuple[int, int]]] = {}  # account -> (ts, equity)
        self.started = time.time()
        self._own_last: tuple[float, float] | None = None  # (when, feed messages) last read

    def tasks(self) -> list[asyncio.Task]:
        jobs = [self.feed(), self.books(), self.accounts(), self.scrape()]
        if self.s.fundamental:
            jobs.append(self.fundamental())
        return [asyncio.create_task(j) for j in jobs]

    def close(self) -> None:
        self.ctx.destroy(linger=0)

    # ------------------------------------------------------------------ the feed
    async def feed(self) -> None:
        sub = self.ctx.socket(zmq.SUB)
        sub.setsockopt(zmq.LINGER, 0)
        sub.setsockopt(zmq.RCVHWM, 100_000)
        sub.connect(self.s.feed)
        for spec in self.s.symbols:
            for channel in ("trades", "tob", "status"):
                sub.setsockopt(zmq.SUBSCRIBE, f"{spec.symbol}|{channel}".encode())
        # Wait on the asyncio socket, drain the plain one: an awaited receive of a frame that
        # is already there never yields to the loop, so a busy feed would starve the updates.
        raw = zmq.Socket.shadow(sub.underlying)
        unpack, on_feed, metrics = msgpack.unpackb, self.state.on_feed, self.metrics
        try:
            while True:
                await sub.poll(1000, zmq.POLLIN)
                n, last = 0, None
                for _ in range(_DRAIN):
                    try:
                        frames = raw.recv_multipart(zmq.NOBLOCK)
                    except zmq.Again:
                        break
                    if len(frames) != 2:
                        continue
                    try:
                        msgs = unpack(frames[1])
                    except Exception:  # a frame we cannot read is counted, never fatal
                        metrics.bad_frames.inc()
                        continue
                    if msgs.__class__ is not list or not msgs:
                        continue
                    on_feed(msgs)
                    n += len(msgs)
                    last = msgs[-1]
                if n:
                    metrics.took(n)
                if last.__class__ is dict and last.get("ts").__class__ is int and last["ts"]:
                    metrics.feed_lag.observe(max(0.0, time.time() - last["ts"] / 1e9))
                await asyncio.sleep(0)  # the updates and the browsers get their turn
        finally:
            sub.close()

    async def fundamental(self) -> None:
        from agents.fundamental.messages import MalformedFundamental, decode_fundamental

        sub = self.ctx.socket(zmq.SUB)
        sub.setsockopt(zmq.LINGER, 0)
        sub.connect(self.s.fundamental)
        for spec in self.s.symbols:
            sub.setsockopt(zmq.SUBSCRIBE, spec.symbol.encode())
        try:
            while True:
                frames = await sub.recv_multipart()
                if len(frames) != 2:
                    continue
                try:
                    msg = decode_fundamental(frames[1])
                except MalformedFundamental:
                    self.metrics.bad_frames.inc()
                    continue
                self.state.on_fundamental(msg.symbol, msg.ts, msg.value)
        finally:
            sub.close()

    # ------------------------------------------------------------------ polled sources
    async def _every(self, name: str, job: Any) -> None:
        while True:
            try:
                await job()
                self.errors.pop(name, None)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if self.errors.get(name) != str(exc):
                    log.warning("source_failed", source=name, error=str(exc)[:200])
                self.errors[name] = str(exc)[:200]
            await asyncio.sleep(self.s.poll_s)  # a polling period, not a synchronisation

    async def books(self) -> None:
        async def read() -> None:
            for spec in self.s.symbols:
                msg = SnapshotRequest(symbol=spec.symbol, depth=self.s.depth_levels)
                reply = await _ask(self.ctx, self.s.snapshot, msg, _TIMEOUT_S)
                if reply.type == "book_snapshot":
                    self.state.on_depth(spec.symbol, reply.bids, reply.asks, reply.seq)
                    if reply.phase is not None:
                        self.state.on_phase(spec.symbol, reply.phase, reply.band_low,
                                            reply.band_high)  # fmt: skip

        await self._every("books", read)

    async def accounts(self) -> None:
        from clearing.client import ClearingClient
        from deploy import leaderboard

        if not self.s.clearing:
            self.leaderboard = {"rows": [], "note": "no clearing house configured"}
            return
        if not self.admin_token:
            self.leaderboard = {"rows": [], "note": "the leaderboard needs the admin token "
                                "(AGORA_DASHBOARD_ADMIN_TOKEN or _ADMIN_TOKEN_FILE)"}  # fmt: skip
            self.leaderboard_version += 1
            return
        client = ClearingClient(self.s.clearing, admin_token=self.admin_token)

        async def read() -> None:
            reply = await asyncio.wait_for(client.list_accounts(), _TIMEOUT_S * 2)
            rows = leaderboard.rank(reply.accounts, self.market)
            now = time.time_ns()
            for r in rows:
                hist = self.accounts_history.setdefault(r.account, [])
                hist.append((now, r.equity))
                del hist[:-1000]
            self.leaderboard = self._board(rows, reply.settled_through)
            self.leaderboard_version += 1

        try:
            await self._every("accounts", read)
        finally:
            with contextlib.suppress(Exception):
                await client.close()

    def _board(self, rows: list[Any], settled_through: int) -> dict[str, Any]:
        from agents.units import money, shares, spec_for
        from dashboard.risk import risk_figures
        from deploy.leaderboard import by_strategy

        def m(v: float | None) -> str:
            return "-" if v is None else money(v)

        out = []
        for i, r in enumerate(rows, 1):
            risk = risk_figures(self.accounts_history.get(r.account, []), self.s.poll_s)
            out.append({
                "rank": i, "account": r.account, "strategy": r.strategy,
                "trading_pnl": m(r.trading_pnl), "inventory_pnl": m(r.inventory_pnl),
                "pnl": m(r.pnl), "equity": m(r.equity), "fees": m(r.fees),
                "positions": {s: shares(spec_for(s, self.s.symbols), q)
                              for s, q in r.positions.items()},
                "risk": risk,
            })  # fmt: skip
        classes = [{**g, **{k: m(g[k]) for k in ("trading_pnl", "inventory_pnl", "pnl",
                                                 "trading_pnl_per_agent")}}
                   for g in by_strategy(rows)]  # fmt: skip
        note = "ranked by trading PnL" if self.market is not None else (
            "total PnL only: no market file to split it")  # fmt: skip
        return {"rows": out, "classes": classes, "note": note, "accounts": len(rows),
                "settled_through": settled_through}  # fmt: skip

    async def scrape(self) -> None:
        urls = dict(self.s.service_metrics)

        def fetch(url: str) -> str:
            with urllib.request.urlopen(url, timeout=_TIMEOUT_S) as resp:
                return resp.read().decode()

        async def read() -> None:
            rows = [self._own_row()]
            for name, url in urls.items():
                old = self._readings.get(name)
                try:
                    text = await asyncio.to_thread(fetch, url)
                    new = scrape.parse(text, time.monotonic())
                except Exception as exc:
                    rows.append(scrape.summarise(name, None, None, time.time(), str(exc)[:120]))
                    continue
                self._readings[name] = new
                rows.append(scrape.summarise(name, new, old, time.time()))
            note = "" if urls else ("the other services' figures need their metrics: start "
                                    "the market with `agora up --metrics`")  # fmt: skip
            self.services = {"rows": rows, "note": note}
            self.services_version += 1

        await self._every("services", read)

    def _own_row(self) -> dict[str, Any]:
        """The dashboard's own figures, which need no metrics endpoint."""
        m = self.metrics
        now = time.monotonic()
        total = m.feed_total
        last = self._own_last
        rate = (total - last[1]) / (now - last[0]) if last and now > last[0] else None
        self._own_last = (now, total)
        row: dict[str, Any] = {
            "service": "dashboard", "up": True, "uptime_s": round(time.time() - self.started),
            "rates": {"feed messages/s": round(rate, 1)} if rate is not None else {},
            "rejects": {}, "browsers": m.browser_count, "feed_gaps": self.state.gaps,
        }  # fmt: skip
        if self.errors:
            row["errors"] = dict(self.errors)
        return row
