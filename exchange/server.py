"""The exchange process: the matching engine behind ZeroMQ sockets.

A thin shell (ARCHITECTURE.md): it decodes, journals, calls the engine, and sends what the pure
translation (`exchange.reports`, `exchange.feed`) produced. Sockets (defaults in
`exchange.settings`):

* gateway, ROUTER: order entry. A client's DEALER logs on (`Logon`) and then sends requests, one
  message or a batch per frame. Replies are always batch frames. Fills of resting orders go to
  every connection logged on as the order's account.
* feed, PUB: ``[topic, batch]`` frames, topic ``"{symbol}|{channel}"``; each message carries its
  stream's contiguous `seq` (see `exchange.feed`). Heartbeats on ``*|heartbeat``.
* snapshot, ROUTER: `SnapshotRequest` -> `BookSnapshot` (valid at the `book` stream's seq),
  `TradeReplayRequest` -> `TradeReplay` pages read from the journal (clearing's, with its
  token), `TapeRequest` -> `TapeReplay`, the public trade tape of a symbol by stream seq (open
  to anyone: no accounts, no order ids).
* drop copy, PUB: ``[b"trades", batch of TradeCapture]`` for clearing; `trade_id` is contiguous
  within an epoch (every start of the process is a new one, `exchange.epoch`), heartbeats carry
  the last trade id so a subscriber notices a lost tail.

Every execution report carries its account's ``account_seq``; a client that logs on again asks
for what it missed with a `ResendRequest` (answered from the reporter's window, which a journal
replay rebuilds).

The loop drains each readable socket with non-blocking receives, runs the whole batch through
the engine, commits the journal once, then sends every reply and feed frame: one write and a
few sends per batch instead of per message. That ordering is the durability promise: nothing
is acknowledged or published before it is in the journal.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import hmac
import importlib
import json
import signal
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from typing import Any, Protocol

import msgpack
import structlog
import zmq
import zmq.asyncio
from prometheus_client import CollectorRegistry, Histogram, Metric, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from exchange.engine import Engine
from exchange.epoch import advance_epoch, epoch_path
from exchange.feed import GOODBYE_TOPIC, HEARTBEAT_TOPIC, FeedState
from exchange.journal import TRADE_RECORD, Journal
from exchange.protocol import (
    CancelOrder,
    Logon,
    MassCancel,
    NewOrder,
    OpenOrdersRequest,
    ProtocolError,
    ReplaceOrder,
    ResendRequest,
    SnapshotRequest,
    TapeRequest,
    TradeReplayRequest,
    decode,
    decode_batch,
)
from exchange.protocol.codec import MAX_MESSAGE_SIZE
from exchange.reports import Reporter, reject_raw
from exchange.settings import ExchangeSettings

__all__ = ["Authenticator", "ExchangeServer", "RiskPlugin", "load_risk_plugin"]

log = structlog.get_logger("exchange")

Authenticator = Callable[[str, str], str | None]
"""(account, token) -> None to accept, or the reason to refuse."""


class RiskPlugin(Protocol):
    """Pre-trade risk and authentication from outside the exchange (the clearing house).

    Loaded by name (`ExchangeSettings.risk_plugin`) so that `exchange` imports nothing of ours.
    """

    def authenticate(self, account: str, token: str) -> str | None: ...

    def check(self, msg: Any, account: str) -> str | None:
        """Before a new order or replace reaches the engine: None, or the reject reason."""
        ...

    def on_events(self, events: list[tuple]) -> None:
        """Every engine event, live and on journal replay."""
        ...

    async def run(self, ctx: zmq.asyncio.Context, kill: Callable[[list[str]], None]) -> None:
        """A task for the plug-in's own sockets; `kill(accounts)` mass-cancels their orders."""
        ...


def load_risk_plugin(settings: ExchangeSettings, engine: Engine) -> RiskPlugin:
    module, _, name = settings.risk_plugin.partition(":")
    cls = getattr(importlib.import_module(module), name)
    return cls(
        settings.clearing, settings.resolve_clearing_token(), engine,
        heartbeat_s=settings.heartbeat_s,
    )  # fmt: skip

_CHUNK = 256  # messages per outgoing batch frame (well under the size and count limits)
# Execution reports are ~300 bytes (up to ~600 with long ids): 256 of them would pass the
# 64 KiB a client decodes, and the whole frame would be lost to it. 96 stay well under.
_PRIVATE_CHUNK = 96
_FLUSH_EVERY = 256  # requests handled before the journal is committed and replies go out
_FLUSH_EVERY_FSYNC = 2048  # the same when every commit is fsynced
_ARRAY_MARKERS = frozenset(range(0x90, 0xA0)) | {0xDC, 0xDD}  # msgpack array headers


def _accept_all(account: str, token: str) -> str | None:
    return None


class _Session:
    __slots__ = ("account", "last", "token", "tokens")

    def __init__(self, account: str, burst: float, now: float, token: str = "") -> None:
        self.account = account
        self.tokens = burst
        self.last = now
        self.token = token  # kept to re-check the session if the account's token changes


class _Metrics:
    """Counters kept as plain ints and dicts, turned into Prometheus metrics at scrape time.

    prometheus-client's own ``labels(...).inc()`` costs about a microsecond per call, which at
    several calls per order was a sixth of the exchange's per-message budget; a custom
    collector reads these at scrape time instead.
    """

    def __init__(self) -> None:
        self.messages: dict[str, int] = defaultdict(int)  # by request type
        self.rejects: dict[str, int] = defaultdict(int)  # by reason
        self.trades = 0
        self.sessions = 0
        self.open_orders = 0
        self.registry = CollectorRegistry()
        self.latency = Histogram(
            "agora_exchange_batch_seconds",
            "time from draining a batch of requests to the last reply sent",
            buckets=(1e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 1e-2, 5e-2, 0.1, 1.0),
            registry=self.registry,
        )
        self.registry.register(self)

    def collect(self) -> Iterator[Metric]:
        messages = CounterMetricFamily(
            "agora_exchange_messages", "requests received, by type", labels=["type"]
        )
        for kind, n in list(self.messages.items()):
            messages.add_metric([kind], n)
        yield messages
        rejects = CounterMetricFamily(
            "agora_exchange_rejects", "rejects sent, by reason", labels=["reason"]
        )
        for reason, n in list(self.rejects.items()):
            rejects.add_metric([reason], n)
        yield rejects
        yield CounterMetricFamily("agora_exchange_trades", "trades executed", value=self.trades)
        yield GaugeMetricFamily(
            "agora_exchange_sessions", "logged-on connections", value=self.sessions
        )
        yield GaugeMetricFamily(
            "agora_exchange_open_orders", "orders on the books", value=self.open_orders
        )


class ExchangeServer:
    """One exchange process. `await serve()` runs until `stop()` (or SIGINT/SIGTERM)."""

    def __init__(
        self,
        settings: ExchangeSettings | None = None,
        authenticate: Authenticator = _accept_all,
        clock: Callable[[], int] = time.time_ns,
    ) -> None:
        self.settings = s = settings or ExchangeSettings()
        self._wall = clock
        self._last_ts = 0
        self.engine = Engine(s.symbols, ts=0)
        self.risk: RiskPlugin | None = load_risk_plugin(s, self.engine) if s.clearing else None
        self.authenticate = self.risk.authenticate if self.risk is not None else authenticate
        self._replay_token = s.replay_token or (
            s.resolve_clearing_token() if s.clearing else ""
        )
        self.reporter = Reporter(resend_window=s.resend_window, tape_window=s.tape_window)
        self.feed = FeedState(self.engine, int(s.bar_interval_s * 1e9))
        self.journal = Journal(s.journal_path, fsync=s.fsync)
        self.metrics = _Metrics()
        self.sessions: dict[bytes, _Session] = {}
        self.by_account: dict[str, set[bytes]] = defaultdict(set)
        self.endpoints: dict[str, str] = {}
        self.replayed = 0
        self._stopping = asyncio.Event()
        self._symbols = [spec.symbol for spec in s.symbols]
        self._symbol_set = frozenset(self._symbols)
        self._rate = s.rate_limit
        self._burst = float(s.rate_burst)
        # Outgoing, gathered during one batch and sent after the journal commit.
        self._private: dict[bytes, list[dict]] = defaultdict(list)
        self._public: dict[str, list[dict]] = defaultdict(list)
        self._drop: list[dict] = []
        self._packer = msgpack.Packer(use_bin_type=True)
        self._replay_journal()
        self._start_epoch()

    def _start_epoch(self) -> None:
        """A new incarnation: claim the next epoch (durably, before any order is taken), so
        no trade id an earlier incarnation published can be issued again (`exchange.epoch`)."""
        engine = self.engine
        epoch = advance_epoch(
            epoch_path(self.journal.path), engine.epoch if self.journal.records else -1
        )
        engine.start_epoch(epoch)
        self.journal.append(["E", epoch])
        self.journal.commit()
        log.info("exchange_epoch", epoch=epoch, last_trade_id=self.journal.last_trade_id)

    # ------------------------------------------------------------------ recovery
    def _replay_journal(self) -> None:
        """Rebuild books, ids, reports' state and stream sequence numbers from the journal."""
        if self.journal.dropped_bytes:
            log.warning("journal_torn_tail_dropped", bytes=self.journal.dropped_bytes)
        engine, reporter, feed = self.engine, self.reporter, self.feed
        n = 0
        for record in self.journal.replay():
            kind = record[0]
            if kind == TRADE_RECORD:
                continue
            if kind == "E":  # an incarnation started here: its trade ids were of this epoch
                engine.start_epoch(record[1])
                continue
            if kind == "B":
                feed.restore_bar_seq(record[1], record[2])
                continue
            ts = record[1]
            self._last_ts = max(self._last_ts, ts)
            events = _run_record(engine, record)
            if self.risk is not None:
                self.risk.on_events(events)
            box = reporter.translate_raw(events)
            feed.publish(box.public, ts)
            n += 1
        self.replayed = n
        self.feed._bars.clear()  # bars restart with the next trade (a cut bar is not re-sent)
        if n:
            log.info(
                "journal_replayed", commands=n, trades=len(self.journal.trade_ids),
                open_orders=len(self.engine._orders),
            )  # fmt: skip

    # ------------------------------------------------------------------ the loop
    async def serve(self) -> None:
        s = self.settings
        ctx = zmq.asyncio.Context()
        gateway = ctx.socket(zmq.ROUTER)
        snapshot = ctx.socket(zmq.ROUTER)
        feed = ctx.socket(zmq.PUB)
        drop = ctx.socket(zmq.PUB)
        for sock in (gateway, snapshot, feed, drop):
            sock.setsockopt(zmq.LINGER, 1000)
        for sock in (gateway, snapshot):
            sock.setsockopt(zmq.ROUTER_HANDOVER, 1)  # a reconnecting client keeps its identity
            sock.setsockopt(zmq.RCVHWM, 100_000)
            sock.setsockopt(zmq.SNDHWM, 100_000)
        feed.setsockopt(zmq.SNDHWM, s.feed_hwm)
        if s.feed_sndbuf:
            feed.setsockopt(zmq.SNDBUF, s.feed_sndbuf)
        drop.setsockopt(zmq.SNDHWM, 1_000_000)
        try:
            for name, sock, addr in (
                ("gateway", gateway, s.gateway_bind),
                ("feed", feed, s.feed_bind),
                ("snapshot", snapshot, s.snapshot_bind),
                ("dropcopy", drop, s.dropcopy_bind),
            ):
                sock.bind(addr)
                self.endpoints[name] = sock.getsockopt_string(zmq.LAST_ENDPOINT)
            if s.metrics_port:
                start_http_server(s.metrics_port, s.metrics_host, registry=self.metrics.registry)
                self.endpoints["metrics"] = f"http://{s.metrics_host}:{s.metrics_port}/metrics"
            self._gw = zmq.Socket.shadow(gateway.underlying)
            self._snap = zmq.Socket.shadow(snapshot.underlying)
            self._feed = zmq.Socket.shadow(feed.underlying)
            self._dropsock = zmq.Socket.shadow(drop.underlying)
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                with contextlib.suppress(NotImplementedError, RuntimeError):
                    loop.add_signal_handler(sig, self.stop)
            # Long-lived state (books, the replayed journal) is moved out of the collector's
            # sight, and young collections are made rarer: full collections over a large heap
            # were the exchange's worst latency spikes (tens of ms).
            gc.collect()
            gc.freeze()
            gc.set_threshold(50_000, 50, 1000)
            if self.risk is not None:
                if hasattr(self.risk, "revalidate"):
                    self.risk.revalidate = self._revalidate
                self._risk_task = asyncio.create_task(self.risk.run(ctx, self._risk_kill))
            log.info("exchange_ready", symbols=self._symbols, **self.endpoints)
            print("AGORA_READY " + json.dumps(self.endpoints), flush=True)
            await self._loop(gateway, snapshot)
        finally:
            if self.risk is not None and hasattr(self, "_risk_task"):
                self._risk_task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await self._risk_task
            self._goodbye()
            self.journal.close()
            for sock in (gateway, snapshot, feed, drop):
                sock.close()
            ctx.term()
            log.info("exchange_stopped", last_trade_id=self.journal.last_trade_id)

    def clock(self) -> int:
        """Wall-clock nanoseconds, never going backwards (the engine's windows need that,
        and a restarted exchange must not time-stamp before its journal's last record)."""
        ts = self._wall()
        if ts <= self._last_ts:
            ts = self._last_ts + 1
        self._last_ts = ts
        return ts

    def stop(self) -> None:
        """Stop intake; `serve` then flushes the journal, says goodbye and returns."""
        self._stopping.set()

    async def _loop(self, gateway: zmq.asyncio.Socket, snapshot: zmq.asyncio.Socket) -> None:
        s = self.settings
        poller = zmq.asyncio.Poller()
        poller.register(gateway, zmq.POLLIN)
        poller.register(snapshot, zmq.POLLIN)
        now = time.monotonic()
        next_timer = now + s.timer_s
        next_beat = now + s.heartbeat_s
        while not self._stopping.is_set():
            timeout = max(0.0, min(next_timer, next_beat) - time.monotonic())
            ready = dict(await poller.poll(timeout * 1000))
            if gateway in ready:
                self._drain_gateway()
            if snapshot in ready:
                self._drain_snapshot()
            now = time.monotonic()
            if now >= next_timer:
                next_timer = now + s.timer_s
                self._on_timer()
            if now >= next_beat:
                next_beat = now + s.heartbeat_s
                self._heartbeat()

    # ------------------------------------------------------------------ order entry
    def _drain_gateway(self) -> None:
        sock = self._gw
        t0 = time.perf_counter()
        n = 0
        unflushed = 0  # requests handled since the last flush
        # with fsync on, each flush costs a disk sync: answer in larger steps
        flush_every = _FLUSH_EVERY_FSYNC if self.journal.fsync else _FLUSH_EVERY
        while n < 10_000:  # bounded, so timers and the snapshot service still get a turn
            try:
                frames = sock.recv_multipart(zmq.NOBLOCK, copy=True)
            except zmq.Again:
                break
            n += 1
            if len(frames) != 2:
                continue  # a ROUTER frame is [identity, payload]; anything else is not ours
            unflushed += self._on_frame(frames[0], frames[1])
            if unflushed >= flush_every:
                # Answer what is done before reading on: with batched entry a drain can hold
                # thousands of orders, and holding every reply until the socket is empty left
                # the clients idle, then the exchange idle waiting for their next frames.
                self._flush()
                unflushed = 0
        self._flush()
        if n:
            self.metrics.latency.observe(time.perf_counter() - t0)

    def _on_frame(self, identity: bytes, payload: bytes) -> int:
        """Handle one gateway frame (a message or a batch); returns how many requests."""
        ts = self.clock()
        try:
            if payload[:1] and payload[0] in _ARRAY_MARKERS:
                msgs = decode_batch(payload)
            else:
                msgs = [decode(payload)]
        except ProtocolError as exc:
            self._protocol_reject(identity, exc.reason, str(exc), exc.ref_type, ts)
            return 1
        for msg in msgs:
            self._on_request(identity, msg, ts)
        return len(msgs)

    def _on_request(self, identity: bytes, msg: Any, ts: int) -> None:
        metrics = self.metrics
        kind = msg.type
        metrics.messages[kind] += 1
        session = self.sessions.get(identity)
        if kind == "logon":
            self._logon(identity, msg, ts)
            return
        if session is None:
            self._protocol_reject(identity, "not_logged_on", "send a logon first", kind, ts)
            return
        # Token bucket per connection: a flood is refused, request by request, with a reason.
        now = time.monotonic()
        tokens = min(self._burst, session.tokens + (now - session.last) * self._rate)
        session.last = now
        if tokens < 1.0:
            session.tokens = tokens
            if kind == "open_orders_request" or kind == "resend_request":
                self._protocol_reject(identity, "rate_limited", "too many requests", kind, ts)
            else:
                self._reply(identity, reject_raw(msg, "rate_limited", session.account, ts))
            metrics.rejects["rate_limited"] += 1
            return
        session.tokens = tokens - 1.0
        account = session.account
        if self.risk is not None and (kind == "new_order" or kind == "replace_order"):
            # an unknown symbol is the reason, not whatever risk makes of it
            reason = (self.risk.check(msg, account) if msg.symbol in self._symbol_set
                      else "unknown_symbol")  # fmt: skip
            if reason is not None:
                metrics.rejects[reason] += 1
                self._reply(identity, reject_raw(msg, reason, account, ts))
                return
        if kind == "new_order" or kind == "cancel_order" or kind == "replace_order":
            self._command(msg, account, ts)
        elif kind == "mass_cancel":
            events = self._command(msg, account, ts)
            if events is not None:
                cancelled = sum(1 for ev in events if ev[0] == "cancelled")
                self._reply(identity, {
                    "type": "mass_cancel_report", "v": 1, "ts": ts,
                    "client_order_id": msg.client_order_id, "symbol": msg.symbol,
                    "cancelled": cancelled,
                })  # fmt: skip
        elif kind == "open_orders_request":
            self._reply(identity, self._open_orders(account, msg, ts))
        elif kind == "resend_request":
            self._resend(identity, account, msg, ts)
        else:
            self._protocol_reject(
                identity, "unexpected_message", f"{kind} is not an order-entry request", kind, ts
            )

    def _command(self, msg: Any, account: str, ts: int) -> list[tuple] | None:
        events, refused = self._apply(_record(msg, account, ts), msg, ts)
        if msg.type == "mass_cancel" and refused:
            return None  # the mass cancel itself was rejected: no report
        return events

    def _apply(self, record: list[Any], request: Any, ts: int) -> tuple[list[tuple], bool]:
        """Journal a record, run it, and route what it produced (live requests and timers).

        Returns the events and whether every private message was a reject.
        """
        self.journal.append(record)
        events = _run_record(self.engine, record)
        if self.risk is not None:
            self.risk.on_events(events)
        box = self.reporter.translate_raw(events, request)
        private, by_account = self._private, self.by_account
        refused = bool(box.private)
        for owner, report in box.private:
            reason = report.get("reject_reason")
            if reason is not None:
                self.metrics.rejects[reason] += 1
            else:
                refused = False
            for identity in by_account.get(owner, ()):
                private[identity].append(report)
        if box.drop_copy:
            self.metrics.trades += len(box.drop_copy)
            for capture in box.drop_copy:
                self.journal.append([TRADE_RECORD, capture["trade_id"], capture])
            self._drop.extend(box.drop_copy)
        public = self._public
        for topic, m in self.feed.publish(box.public, ts):
            public[topic].append(m)
        return events, refused

    def _logon(self, identity: bytes, msg: Logon, ts: int) -> None:
        reason = self.authenticate(msg.account, msg.token)
        old = self.sessions.get(identity)
        if old is not None:
            self.by_account[old.account].discard(identity)
        if reason is not None:
            self.sessions.pop(identity, None)
            self.metrics.rejects[reason] += 1
            self._reply(identity, {
                "type": "logon_reply", "v": 1, "ts": ts, "account": msg.account,
                "accepted": False, "reason": reason, "text": reason,
            })  # fmt: skip
            log.info("logon_refused", account=msg.account, reason=reason)
            return
        self.sessions[identity] = _Session(msg.account, self._burst, time.monotonic(), msg.token)
        self.by_account[msg.account].add(identity)
        self.metrics.sessions = len(self.sessions)
        self._reply(identity, {
            "type": "logon_reply", "v": 1, "ts": ts, "account": msg.account, "accepted": True,
            "symbols": self._symbols,
            "account_seq": self.reporter.account_seqs.get(msg.account, 0),
        })  # fmt: skip

    def _open_orders(self, account: str, msg: OpenOrdersRequest, ts: int) -> dict:
        try:
            orders = self.engine.open_orders(account, msg.symbol)
        except KeyError:
            orders = []
        infos = []
        for order in orders:
            state = self.reporter.order(order.order_id)
            if state is not None:
                infos.append(state.info(order.leaves))
        return {
            "type": "open_orders", "v": 1, "ts": ts, "request_id": msg.request_id,
            "orders": infos,
        }  # fmt: skip

    def _resend(self, identity: bytes, account: str, msg: ResendRequest, ts: int) -> None:
        """Send again the account's reports from `msg.from_seq` (what a reconnecting client
        missed), then where they ended; from the reporter's window (rebuilt on replay)."""
        reports, last, first = self.reporter.resend(account, msg.from_seq, msg.max_count)
        self._private[identity].extend(reports)
        nxt = reports[-1]["account_seq"] + 1 if reports else max(msg.from_seq, first, 1)
        self._reply(identity, {
            "type": "resend_reply", "v": 1, "ts": ts, "request_id": msg.request_id,
            "from_seq": msg.from_seq, "next_seq": nxt, "last_seq": last, "first_seq": first,
            "complete": first == 0 or msg.from_seq >= first,
        })  # fmt: skip

    def _protocol_reject(
        self, identity: bytes, reason: str, text: str, ref_type: str | None, ts: int
    ) -> None:
        self.metrics.rejects[reason] += 1
        self._reply(identity, _protocol_reject(reason, text, ref_type, ts))

    def _reply(self, identity: bytes, msg: dict) -> None:
        self._private[identity].append(msg)

    def _revalidate(self, accounts: list[str]) -> None:
        """These accounts' tokens changed: sessions logged on with an old token end now."""
        ts = self.clock()
        for account in accounts:
            for identity in list(self.by_account.get(account, ())):
                session = self.sessions.get(identity)
                if session is None or self.authenticate(account, session.token) is None:
                    continue
                del self.sessions[identity]
                self.by_account[account].discard(identity)
                self._protocol_reject(identity, "session_revoked",
                                      "the account's token was changed", None, ts)  # fmt: skip
                log.info("session_revoked", account=account)
        self.metrics.sessions = len(self.sessions)
        self._flush()

    def _risk_kill(self, accounts: list[str]) -> None:
        """Clearing says these accounts can no longer fund their open orders: cancel them."""
        ts = self.clock()
        for account in accounts:
            self._apply(["M", ts, account, "risk-kill", None], None, ts)
        self._flush()

    # ------------------------------------------------------------------ timers
    def _on_timer(self) -> None:
        ts = self.clock()
        engine = self.engine
        if any(ts >= m.wakeup for m in engine._markets.values()):
            self._apply(["A", ts], None, ts)
        if self.feed.bar_interval_ns:
            for topic, bar in self.feed.close_bars(ts):
                self.journal.append(["B", bar["symbol"], bar["seq"]])
                self._public[topic].append(bar)
        self.metrics.open_orders = len(engine._orders)
        self._flush()

    def _heartbeat(self) -> None:
        ts = self.clock()
        beat = msgpack.packb([{"type": "heartbeat", "v": 1, "ts": ts, "seq": 0}])
        _send(self._feed, [HEARTBEAT_TOPIC.encode(), beat])
        # Each stream also gets a heartbeat carrying its last sequence number, so a subscriber
        # that lost the *last* messages of a quiet stream notices (a gap shows only when a
        # later message arrives, and on a quiet stream none might).
        for topic, seq in self.feed.seqs.items():
            hb = msgpack.packb([{"type": "heartbeat", "v": 1, "ts": ts, "seq": seq}])
            _send(self._feed, [topic.encode(), hb])
        last_trade = self.journal.last_trade_id
        beat = msgpack.packb([{"type": "heartbeat", "v": 1, "ts": ts, "seq": last_trade}])
        _send(self._dropsock, [b"heartbeat", beat])

    def _goodbye(self) -> None:
        """Flush what is pending, then tell the feed and every session that we are going."""
        if not hasattr(self, "_gw"):
            return
        self._flush()
        bye = {"type": "goodbye", "v": 1, "ts": self.clock(), "reason": "exchange shutting down"}
        payload = msgpack.packb([bye])
        _send(self._feed, [GOODBYE_TOPIC.encode(), payload])
        _send(self._dropsock, [b"goodbye", payload])
        for identity in self.sessions:
            _send(self._gw, [identity, payload])

    # ------------------------------------------------------------------ snapshot service
    def _drain_snapshot(self) -> None:
        sock = self._snap
        for _ in range(1000):
            try:
                frames = sock.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            if len(frames) != 2:
                continue
            identity, payload = frames
            ts = self.clock()
            try:
                msg = decode(payload)
                reply = self._snapshot_reply(msg, ts)
            except ProtocolError as exc:
                reply = _protocol_reject(exc.reason, str(exc), exc.ref_type, ts)
            except Exception as exc:  # a request must never take the exchange down
                log.exception("snapshot_request_failed")
                reply = _protocol_reject("internal_error", type(exc).__name__, None, ts)
            _send(sock, [identity, msgpack.packb([reply])])

    def _snapshot_reply(self, msg: Any, ts: int) -> dict:
        if isinstance(msg, SnapshotRequest):
            if msg.symbol not in self._symbols:
                return _protocol_reject("unknown_symbol", f"no symbol {msg.symbol!r}", msg.type, ts)
            bids, asks = self.engine.depth(msg.symbol, msg.depth)
            return {
                "type": "book_snapshot", "v": 1, "ts": ts, "symbol": msg.symbol,
                "seq": self.feed.last_seq(msg.symbol, "book"), "bids": bids, "asks": asks,
            }  # fmt: skip
        if isinstance(msg, TradeReplayRequest):
            if self._replay_token and not hmac.compare_digest(
                msg.token.encode(), self._replay_token.encode()  # bytes: any text compares
            ):
                return _protocol_reject("not_authorised", "trade replay needs the clearing "
                                        "token", msg.type, ts)  # fmt: skip
            self.journal.commit()
            records = self.journal.trades_from(msg.from_trade_id, msg.max_count)
            trades, size = [], 0
            for record in records:
                size += 300
                if size > MAX_MESSAGE_SIZE - 4096:
                    break
                trades.append(record[2])
            return {
                "type": "trade_replay", "v": 1, "ts": ts, "trades": trades,
                "end_trade_id": self.journal.last_trade_id,
            }  # fmt: skip
        if isinstance(msg, TapeRequest):
            return self._tape_reply(msg, ts)
        return _protocol_reject(
            "unexpected_message", f"{msg.type} is not a snapshot-service request", msg.type, ts
        )

    def _tape_reply(self, msg: TapeRequest, ts: int) -> dict:
        """The public trade tape of one symbol from a stream seq: open to anyone (public
        fields only), so a subscriber fills a gap or the prints it lost across a restart."""
        if msg.symbol not in self._symbols:
            return _protocol_reject("unknown_symbol", f"no symbol {msg.symbol!r}", msg.type, ts)
        trades, last, first = self.reporter.tape(msg.symbol, msg.from_seq, msg.max_count)
        return {
            "type": "tape_replay", "v": 1, "ts": ts, "symbol": msg.symbol,
            "from_seq": msg.from_seq, "trades": trades, "last_seq": last, "first_seq": first,
            "complete": first == 0 or msg.from_seq >= first,
        }  # fmt: skip

    # ------------------------------------------------------------------ sending
    def _flush(self) -> None:
        """Commit the journal, then send every gathered reply and feed frame."""
        self.journal.commit()
        private, public, drop = self._private, self._public, self._drop
        packb = self._packer.pack
        if private:
            gw = self._gw
            for identity, msgs in private.items():
                for i in range(0, len(msgs), _PRIVATE_CHUNK):
                    _send(gw, [identity, packb(msgs[i : i + _PRIVATE_CHUNK])])
            private.clear()
        if public:
            feed = self._feed
            for topic, msgs in public.items():
                t = topic.encode()
                for i in range(0, len(msgs), _CHUNK):
                    _send(feed, [t, packb(msgs[i : i + _CHUNK])])
            public.clear()
        if drop:
            for i in range(0, len(drop), _CHUNK):
                _send(self._dropsock, [b"trades", packb(drop[i : i + _CHUNK])])
            drop.clear()


def _protocol_reject(reason: str, text: str, ref_type: str | None, ts: int) -> dict:
    """A ProtocolReject as a wire dict, cut to the model's field limits."""
    return {
        "type": "protocol_reject", "v": 1, "ts": ts, "reason": reason, "text": text[:1024],
        "ref_type": ref_type[:64] if ref_type else None,
    }  # fmt: skip


def _send(sock: zmq.Socket, frames: list[bytes]) -> None:
    """Non-blocking send: a full peer queue drops the frame rather than stall the market."""
    with contextlib.suppress(zmq.Again, zmq.ZMQError):
        sock.send_multipart(frames, zmq.NOBLOCK)


def _record(msg: Any, account: str, ts: int) -> list[Any]:
    """A request as a compact journal record (plain values, replayable without pydantic)."""
    if isinstance(msg, NewOrder):
        return ["N", ts, account, msg.client_order_id, msg.symbol, msg.side, msg.order_type,
                msg.qty, msg.price, msg.time_in_force, msg.post_only, msg.stp]  # fmt: skip
    if isinstance(msg, CancelOrder):
        return ["X", ts, account, msg.client_order_id, msg.symbol, msg.order_id,
                msg.orig_client_order_id]  # fmt: skip
    if isinstance(msg, ReplaceOrder):
        return ["R", ts, account, msg.client_order_id, msg.symbol, msg.order_id,
                msg.orig_client_order_id, msg.qty, msg.price]  # fmt: skip
    if isinstance(msg, MassCancel):
        return ["M", ts, account, msg.client_order_id, msg.symbol]
    raise TypeError(f"not a command: {type(msg).__name__}")


def _run_record(engine: Engine, r: list[Any]) -> list[tuple]:
    """Apply one journal record to the engine: the same call live and on replay."""
    kind = r[0]
    if kind == "N":
        return engine.submit(r[4], r[5], r[6], r[7], r[8], r[2], r[3], r[9], r[1], r[10], r[11])
    if kind == "X":
        return engine.cancel(r[2], r[5], r[6], r[1], r[4])
    if kind == "R":
        return engine.replace(r[2], r[7], r[8], r[5], r[6], r[1], r[4])
    if kind == "M":
        return engine.mass_cancel(r[2], r[4], r[1])
    if kind == "A":
        return engine.advance(r[1])
    raise ValueError(f"unknown journal record {kind!r}")
