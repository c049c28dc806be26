"""The exchange process: the matching engine behind ZeroMQ sockets.

A thin shell (ARCHITECTURE.md): it decodes, journals, calls the engine, and sends what the pure
translation (`exchange.reports`, `exchange.feed`) produced. Sockets (defaults in
`exchange.settings`):

* gateway, ROUTER: order entry. A client's DEALER logs on (`Logon`) and then sends requests, one
  message or a batch per frame. Replies are always batch frames. Fills of resting orders go to
  every connection logged on as the order's account. A session belongs to the TCP connection
  it logged on over (`exchange.protocol.peers`), never to a routing id, and ends with it;
  requests count against their account's budget over all its connections, traffic before
  logon against its source address's.
* feed, PUB: ``[topic, batch]`` frames, topic ``"{symbol}|{channel}"``; each message carries its
  stream's contiguous `seq` (see `exchange.feed`). Heartbeats on ``*|heartbeat``.
* snapshot, ROUTER: `SnapshotRequest` -> `BookSnapshot` (valid at the `book` stream's seq),
  `TradeReplayRequest` -> `TradeReplay` pages read from the journal (clearing's, with its
  token), `TapeRequest` -> `TapeReplay`, the public trade tape of a symbol by stream seq (open
  to anyone: no accounts, no order ids). Requests count against their source address's
  budget (a connection that proved the replay token is not limited), and the service takes
  a bounded share of each loop turn, so a flood of them cannot starve order entry.
* drop copy, PUB: ``[b"trades", batch of TradeCapture]`` for clearing; `trade_id` is contiguous
  within an epoch (every start of the process is a new one, `exchange.epoch`), heartbeats carry
  the last trade id so a subscriber notices a lost tail.

Every execution report carries its account's ``account_seq``; a client that logs on again asks
for what it missed with a `ResendRequest` (answered from the reporter's window, which a journal
replay rebuilds).

The loop drains each readable socket with non-blocking receives, runs the whole batch through
the engine, commits the journal once, then sends every reply and feed frame: one write and a
few sends per batch instead of per message. That ordering is the durability promise: nothing
is acknowledged or published before it is in the journal (and, with durability "always" or
"group", on disk: group commit holds the frames until the fsync that covers them). Periodic
snapshots (`exchange.snapshot`) let a restart replay only the journal's tail.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import hmac
import importlib
import json
import math
import os
import signal
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from typing import Any, Protocol

import msgpack
import structlog
import zmq
import zmq.asyncio
from prometheus_client import (
    CollectorRegistry,
    Histogram,
    Metric,
    ProcessCollector,
    start_http_server,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from exchange import snapshot
from exchange.constants import Phase
from exchange.engine import Engine
from exchange.epoch import advance_epoch, epoch_path
from exchange.events import REJECTED
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
    SymbolControl,
    TapeRequest,
    TradeReplayRequest,
    decode,
    decode_batch,
)
from exchange.protocol.codec import MAX_MESSAGE_SIZE
from exchange.protocol.peers import (
    AddressLimits,
    Connection,
    ConnectionTracker,
    TokenBucket,
    harden,
    require_srcfd,
)
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
        settings.clearing, settings.resolve_link_secret(), engine,
        heartbeat_s=settings.heartbeat_s,
    )  # fmt: skip


_CHUNK = 256  # messages per outgoing batch frame (well under the size and count limits)
# Execution reports are ~300 bytes (up to ~600 with long ids): 256 of them would pass the
# 64 KiB a client decodes, and the whole frame would be lost to it. 96 stay well under.
_PRIVATE_CHUNK = 96
_FLUSH_EVERY = 256  # requests handled before the journal is committed and replies go out
_FLUSH_EVERY_FSYNC = 2048  # the same when every commit is fsynced
_ARRAY_MARKERS = frozenset(range(0x90, 0xA0)) | {0xDC, 0xDD}  # msgpack array headers
_FLUSH_AFTER_S = 0.001  # ... or after this long, whichever comes first (without fsync)
_FLOOD_NOTICE_S = 0.1  # a flooding connection is told this often; its other frames are dropped
_GROUP = 64  # frames received before the connection events are applied and they are handled
_MAX_BUCKETS = 100_000  # per-name budgets kept before refilled ones are forgotten


def _accept_all(account: str, token: str) -> str | None:
    return None


FAILED_LOGON = "invalid_credentials"
"""The one answer to a logon with an unknown account or a wrong token: it must not tell which."""

_HIDDEN_LOGON_REASONS = frozenset({"unknown_account", "invalid_token", "not_authorised"})


class _Session:
    """One logged-on connection: the account it proved, and the connection it proved it on."""

    __slots__ = (
        "account", "address", "address_bucket", "bucket", "conn", "identity", "noticed", "since",
        "token",
    )  # fmt: skip

    def __init__(
        self, account: str, identity: bytes, conn: Connection, bucket: TokenBucket, token: str,
        address: str = "",
    ) -> None:  # fmt: skip
        self.account = account
        self.identity = identity
        self.conn = conn
        self.address = address  # the peer's, for per-address limits
        self.address_bucket = TokenBucket(1.0, 1.0, 0.0)  # set by the gateway
        self.bucket = bucket  # the account's, shared by all its sessions
        self.token = token  # kept to re-check the session if the account's token changes
        self.since = time.monotonic()
        self.noticed = 0.0  # when this connection was last told its frames go unread


class _Metrics:
    """Counters kept as plain ints and dicts, turned into Prometheus metrics at scrape time.

    prometheus-client's own ``labels(...).inc()`` costs about a microsecond per call, which at
    several calls per order was a sixth of the exchange's per-message budget; a custom
    collector reads these at scrape time instead.
    """

    def __init__(self) -> None:
        self.messages: dict[str, int] = defaultdict(int)  # by request type
        self.rejects: dict[str, int] = defaultdict(int)  # by reason
        self.dropped: dict[str, int] = defaultdict(int)  # frames not answered, by reason
        self.connections = 0
        self.trades = 0
        self.sessions = 0
        self.open_orders = 0
        self.feed_subscribers = 0  # connections to the market-data feed
        self.journal_bytes = 0
        self.registry = CollectorRegistry()
        ProcessCollector(registry=self.registry)  # process_start_time_seconds: uptime
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
        dropped = CounterMetricFamily(
            "agora_exchange_dropped", "frames dropped unanswered, by reason (snapshot_*: on "
            "the snapshot service; the others: on the gateway)",
            labels=["reason"],
        )  # fmt: skip
        for reason, n in list(self.dropped.items()):
            dropped.add_metric([reason], n)
        yield dropped
        yield GaugeMetricFamily(
            "agora_exchange_connections", "open gateway connections", value=self.connections
        )
        yield CounterMetricFamily("agora_exchange_trades", "trades executed", value=self.trades)
        yield GaugeMetricFamily(
            "agora_exchange_sessions", "logged-on connections", value=self.sessions
        )
        yield GaugeMetricFamily(
            "agora_exchange_open_orders", "orders on the books", value=self.open_orders
        )
        yield GaugeMetricFamily(
            "agora_exchange_feed_subscribers", "connections to the market-data feed",
            value=self.feed_subscribers,
        )  # fmt: skip
        yield GaugeMetricFamily(
            "agora_exchange_journal_bytes", "size of the journal file", value=self.journal_bytes
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
        self._replay_token = s.replay_token or (s.resolve_clearing_token() if s.clearing else "")
        self._admin_token = s.admin_token or (s.resolve_clearing_token() if s.clearing else "")
        self.reporter = Reporter(resend_window=s.resend_window, tape_window=s.tape_window)
        self.feed = FeedState(self.engine, int(s.bar_interval_s * 1e9))
        self._mono = time.monotonic  # (a test may drive group commit with its own clock)
        self.journal = self._open_journal()
        self.metrics = _Metrics()
        self.sessions: dict[bytes, _Session] = {}  # by routing id; valid on its connection only
        self.by_account: dict[str, set[bytes]] = defaultdict(set)
        self._accounts: dict[str, TokenBucket] = {}  # request budget per account
        self._anonymous: dict[str, TokenBucket] = {}  # not-logged-on budget per source address
        self._per_address: dict[str, TokenBucket] = {}  # logged-on budget per source address
        self._failures: dict[str, TokenBucket] = {}  # failed-logon budget per account
        self._told: set[Connection] = set()  # throttled connections already told so
        self._by_conn: dict[Connection, bytes] = {}  # the routing id of each session's connection
        self.endpoints: dict[str, str] = {}
        self.replayed = 0
        self._stopping = asyncio.Event()
        self._symbols = [spec.symbol for spec in s.symbols]
        self._symbol_set = frozenset(self._symbols)
        self._rate = s.rate_limit
        self._burst = float(s.rate_burst)
        self._gw_peers: ConnectionTracker | None = None
        self._feed_peers: ConnectionTracker | None = None
        self._decoded = False  # this group of frames held requests that were read
        self._init_snapshot_service()
        # Outgoing, gathered during one batch and sent after the journal commit.
        self._private: dict[bytes, list[dict | bytes]] = defaultdict(list)  # bytes: packed
        self._public: dict[str, list[dict]] = defaultdict(list)
        self._drop: list[dict] = []
        self._packer = msgpack.Packer(use_bin_type=True)
        # Group commit: frames wait here, in order, for the fsync that covers them.
        self._group_s = s.group_commit_ms / 1000 if s.fsync_policy == "group" else 0.0
        self._held: list[tuple[zmq.Socket, list[bytes]]] = []
        self._last_sync = float("-inf")
        self._release_due = float("inf")
        self._replay_journal()
        self._snap_records = self.journal.records if self.from_snapshot else 0
        self._snapshot_is_ours = self.from_snapshot
        self._snap_time = self._mono()
        self._snap_pid = 0
        self._snap_started = 0.0
        self.snapshot_pauses: list[float] = []  # seconds the market stood still per snapshot
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
    def _snapshots_possible(self) -> str | None:
        """None, or why this exchange cannot snapshot (a risk plug-in with state of its own)."""
        risk = self.risk
        if risk is not None and not (
            hasattr(risk, "snapshot_state") and hasattr(risk, "restore_state")
        ):
            return f"the risk plug-in {type(risk).__name__} cannot save its state"
        return None

    def _open_journal(self) -> Journal:
        """Open the journal, from the last usable snapshot's end if there is one.

        A bad journal raises `JournalCorrupt` (the process refuses to start); a bad snapshot
        only costs a full replay.
        """
        s = self.settings
        state: dict[str, Any] | None = None
        why_not = self._snapshots_possible()
        if why_not is not None:
            log.warning("snapshots_off", reason=why_not, then="restarts replay the whole journal")
        else:
            try:
                state = snapshot.load(s.snapshot_path)
            except snapshot.SnapshotError as exc:
                if s.snapshot_path.exists():
                    log.warning("snapshot_unusable", path=str(s.snapshot_path), reason=str(exc),
                                then="replaying the whole journal")  # fmt: skip
            if state is not None:
                why_not = snapshot.check_symbols(state, self.engine)
                if why_not is None and self.risk is not None and "risk" not in state["extra"]:
                    why_not = "the snapshot holds no risk plug-in state"
                if why_not is not None:
                    log.warning("snapshot_unusable", path=str(s.snapshot_path), reason=why_not,
                                then="replaying the whole journal")  # fmt: skip
                    state = None
        resume = snapshot.position_of(state) if state is not None else None
        journal = Journal(s.journal_path, fsync=s.fsync_policy == "always", resume=resume)
        if resume is not None and journal.resume_refused is not None:
            log.warning("snapshot_unusable", path=str(s.snapshot_path),
                        reason=journal.resume_refused,
                        then="replaying the whole journal")  # fmt: skip
            state = None
        self._snapshot_state = state
        return journal

    def _replay_journal(self) -> None:
        """Rebuild books, ids, reports' state and stream sequence numbers: from the snapshot,
        if there is one, then from the journal records after it."""
        journal = self.journal
        if journal.dropped_bytes:
            log.warning(
                "journal_torn_tail_dropped", path=str(journal.path), offset=journal.torn_offset,
                bytes=journal.dropped_bytes, kind=journal.torn_kind,
                kept_in=str(journal.torn_path),
                text=f"an incomplete last record ({journal.dropped_bytes:,} bytes at byte "
                f"{journal.torn_offset:,}) was moved to {journal.torn_path}; nothing in it had "
                "been acknowledged",
            )  # fmt: skip
        engine, reporter, feed = self.engine, self.reporter, self.feed
        state, self._snapshot_state = self._snapshot_state, None
        t0 = time.perf_counter()
        if state is not None:
            snapshot.restore(engine, reporter, feed, state)
            extra = state["extra"]
            self._last_ts = extra.get("last_ts", 0)
            if self.risk is not None:
                self.risk.restore_state(extra["risk"])  # type: ignore[attr-defined]
        self.from_snapshot = state is not None
        del state
        n = 0
        for record in journal.replay():
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
        if self.from_snapshot or n:
            log.info(
                "journal_replayed", from_snapshot=self.from_snapshot,
                snapshot_records=journal.start_records, commands=n,
                trades=len(journal.trade_offsets), open_orders=len(engine._orders),
                seconds=round(time.perf_counter() - t0, 3),
            )  # fmt: skip

    def take_snapshot(self, fork: bool | None = None) -> None:
        """Snapshot the state now (the journal committed up to here).

        Forked (the default): the child writes a copy-on-write image of the state while the
        market goes on; the pause is the fork. In-process: the pause is the whole write.
        """
        s = self.settings
        if self._snap_pid:
            return  # one at a time
        fork = s.snapshot_fork if fork is None else fork
        t0 = time.perf_counter()
        position = self.journal.position()
        extra: dict[str, Any] = {"last_ts": self._last_ts}
        if self.risk is not None:
            extra["risk"] = self.risk.snapshot_state()  # type: ignore[attr-defined]
        if fork and hasattr(os, "fork"):
            pid = os.fork()
            if pid == 0:  # the child: write, and leave without running any of the parent's
                code = 1  # clean-up (sockets, atexit); no collector either: a finaliser must
                gc.disable()  # never touch the parent's sockets from here
                try:
                    signal.set_wakeup_fd(-1)  # (the parent's loop listens on that one)
                    for sig in (signal.SIGINT, signal.SIGTERM):
                        signal.signal(sig, signal.SIG_DFL)
                    if self.journal.synced < position.offset:
                        os.fsync(self.journal.fileno())
                    state = snapshot.capture(self.engine, self.reporter, self.feed, position,
                                             extra, self._previous_snapshot())  # fmt: skip
                    snapshot.write(s.snapshot_path, state)
                    code = 0
                finally:
                    os._exit(code)
            self._snap_pid = pid
            self._snap_started = time.perf_counter()
        else:
            self.journal.sync()
            state = snapshot.capture(self.engine, self.reporter, self.feed, position, extra,
                                     self._previous_snapshot())  # fmt: skip
            size = snapshot.write(s.snapshot_path, state)
            self._snapshot_is_ours = True
        pause = time.perf_counter() - t0
        self.snapshot_pauses.append(pause)
        self._snap_records = position.records
        self._snap_time = self._mono()
        if self._snap_pid:
            log.info("snapshot_started", records=position.records,
                     pause_ms=round(pause * 1000, 2))  # fmt: skip
        else:
            log.info("snapshot_written", path=str(s.snapshot_path), records=position.records,
                     bytes=size, pause_ms=round(pause * 1000, 2))  # fmt: skip

    def _previous_snapshot(self) -> dict[str, Any] | None:
        """The snapshot on disk, if it describes this process's own state (restored from it,
        or written by it): the next one reuses its hashed client order ids."""
        if not self._snapshot_is_ours:
            return None
        try:
            return snapshot.load(self.settings.snapshot_path)
        except snapshot.SnapshotError:
            return None

    def _snapshot_tick(self, wait: bool = False) -> None:
        """Reap a finished snapshot child; start a snapshot when one is due."""
        if self._snap_pid:
            pid, status = os.waitpid(self._snap_pid, 0 if wait else os.WNOHANG)
            if not pid:
                return
            self._snap_pid = 0
            took = round(time.perf_counter() - self._snap_started, 3)
            if os.waitstatus_to_exitcode(status) == 0:
                self._snapshot_is_ours = True
                log.info("snapshot_written", path=str(self.settings.snapshot_path), seconds=took)
            else:
                log.error("snapshot_failed", path=str(self.settings.snapshot_path),
                          status=os.waitstatus_to_exitcode(status), seconds=took)  # fmt: skip
        if wait or self._snapshots_possible() is not None:
            return
        s = self.settings
        new = self.journal.records - self._snap_records
        if new <= 0:
            return
        if (s.snapshot_every_records and new >= s.snapshot_every_records) or (
            s.snapshot_every_s and self._mono() - self._snap_time >= s.snapshot_every_s
        ):
            self.take_snapshot()

    # ------------------------------------------------------------------ the loop
    async def serve(self) -> None:
        s = self.settings
        require_srcfd()
        ctx = zmq.asyncio.Context()
        gateway = ctx.socket(zmq.ROUTER)
        snapshot = ctx.socket(zmq.ROUTER)
        feed = ctx.socket(zmq.PUB)
        drop = ctx.socket(zmq.PUB)
        for sock in (gateway, snapshot, feed, drop):
            sock.setsockopt(zmq.LINGER, 1000)
        for sock in (gateway, snapshot):
            # Sessions belong to connections (exchange.protocol.peers): no handover of an id.
            harden(sock, s.peer_heartbeat_s, s.peer_timeout_s)
            sock.setsockopt(zmq.RCVHWM, 100_000)
            sock.setsockopt(zmq.SNDHWM, 100_000)
        feed.setsockopt(zmq.SNDHWM, s.feed_hwm)
        if s.feed_sndbuf:
            feed.setsockopt(zmq.SNDBUF, s.feed_sndbuf)
        drop.setsockopt(zmq.SNDHWM, 1_000_000)
        # Watch connections before any can be accepted.
        self._gw = zmq.Socket.shadow(gateway.underlying)
        self._gw_peers = ConnectionTracker(self._gw, ctx)
        self._snap = zmq.Socket.shadow(snapshot.underlying)
        self._snap_peers = ConnectionTracker(self._snap, ctx)
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
            self._feed = zmq.Socket.shadow(feed.underlying)
            if s.metrics_port:  # feed subscribers are counted for the metrics only
                self._feed_peers = ConnectionTracker(self._feed, ctx)
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
            self._snapshot_tick(wait=True)
            self.journal.close()
            for peers in (self._gw_peers, self._snap_peers):
                if peers is not None:
                    peers.close()
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
            due = min(next_timer, next_beat, self._release_due)
            # whole milliseconds, rounded up: a fraction would poll with 0 and spin until the
            # deadline (held replies wait for one: a spin took the clients' CPU)
            timeout_ms = math.ceil(max(0.0, due - time.monotonic()) * 1000)
            ready = dict(await poller.poll(timeout_ms))
            if gateway in ready:
                self._drain_gateway()
            if snapshot in ready:
                self._drain_snapshot()
            self._release_if_due()
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
        # Bounded, so timers and the snapshot service still get a turn. libzmq reads the
        # connections round-robin, and an over-budget account's frames are refused unread, so
        # a flooding peer costs the others a few microseconds per frame, not a decode.
        recv, more = sock.recv, sock.getsockopt
        flushed = t0
        flush_after = 1e9 if self.journal.fsync else _FLUSH_AFTER_S  # (a flush is a sync)
        while n < 10_000:
            # Receive a group of frames, apply the connection events once, then act on them.
            # A connection's accept is reported before any of its frames can arrive, so every
            # frame of the group is judged against a generation at least as new as its own
            # connection's (an older connection's late frame can only lose its session, as
            # it would anyway): as sound as a drain per frame, and the drain (a system call)
            # is paid once per group. The payload stays a Frame: it names its connection.
            group: list[list[Any]] = []
            while len(group) < _GROUP:
                try:
                    parts: list[Any] = [recv(zmq.NOBLOCK)]
                except zmq.Again:
                    break
                while more(zmq.RCVMORE):
                    parts.append(recv(zmq.NOBLOCK, copy=False))
                group.append(parts)
            if not group:
                break
            n += len(group)
            self._decoded = False
            self._sync_connections()
            for parts in group:
                if len(parts) == 2:
                    unflushed += self._on_frame(parts[0], parts[1])
                else:
                    unflushed += self._odd_frame(parts)
                if unflushed >= flush_every:
                    # Answer what is done before reading on: with batched entry a drain can
                    # hold thousands of orders, and holding every reply until the socket is
                    # empty left the clients idle, then the exchange idle waiting for their
                    # next frames.
                    self._flush()
                    unflushed = 0
                    flushed = time.perf_counter()
            if unflushed and (self._decoded or time.perf_counter() - flushed > flush_after):
                # Frames refused unread count one each: under a flood, answer by time too,
                # so a well-behaved client's reply does not wait for hundreds of them.
                self._flush()
                unflushed = 0
                flushed = time.perf_counter()
        self._flush()
        if n:
            self.metrics.latency.observe(time.perf_counter() - t0)

    # ------------------------------------------------------------------ sessions
    def _sync_connections(self) -> None:
        """Apply the gateway's connection events: a closed connection's session ends now."""
        peers = self._gw_peers
        if peers is None:
            return
        for conn in peers.drain():
            self._told.discard(conn)
            identity = self._by_conn.pop(conn, None)
            if identity is None:
                continue
            # Replies still queued for it would reach whoever takes the id next: drop them
            # (those gathered, and those group commit holds for the next fsync).
            self._private.pop(identity, None)
            if self._held:
                gw = self._gw
                self._held = [h for h in self._held if h[0] is not gw or h[1][0] != identity]
            session = self.sessions.get(identity)
            if session is not None and session.conn == conn:
                self._end_session(identity, session)
                log.info("session_ended", account=session.account, why="disconnected")
        self.metrics.connections = len(peers.live)

    def _end_session(self, identity: bytes, session: _Session) -> None:
        del self.sessions[identity]
        self._by_conn.pop(session.conn, None)
        ids = self.by_account.get(session.account)
        if ids is not None:
            ids.discard(identity)
            if not ids:
                del self.by_account[session.account]
        self.metrics.sessions = len(self.sessions)

    def _session_of(self, identity: bytes, conn: Connection) -> _Session | None:
        """The session this connection logged on, or None: a routing id proves nothing."""
        session = self.sessions.get(identity)
        if session is None or session.conn == conn:
            return session
        peers = self._gw_peers
        fd, gen = session.conn
        if peers is None or fd not in peers.live or peers.generation.get(fd) != gen:
            self._end_session(identity, session)  # its connection is gone
        return None

    def _odd_frame(self, frames: list[Any]) -> int:
        """A frame of an unexpected shape: one request is one frame after the routing id.

        `frames`: the routing id (bytes), then the parts (Frames)."""
        if len(frames) < 2 or self._gw_peers is None:
            self.metrics.dropped["no_payload"] += 1
            return 0
        identity = frames[0]
        conn = self._gw_peers.connection(frames[-1])
        ts = self.clock()
        if self._session_of(identity, conn) is None and not self._anonymous_budget(
            identity, conn, frames[-1], ts, time.monotonic()
        ):
            return 0
        self._protocol_reject(
            identity, "malformed", f"a request is one frame; got {len(frames) - 1} parts",
            None, ts,
        )  # fmt: skip
        return 1

    def _anonymous_budget(
        self, identity: bytes, conn: Connection, frame: zmq.Frame, ts: int, now: float
    ) -> bool:
        """Take one frame from the budget of this not-logged-on connection's address.

        Over budget, the connection is told once; later frames are dropped and counted.
        """
        assert self._gw_peers is not None
        bucket = self._address_bucket(self._gw_peers.address(conn, frame), now)
        if bucket.take(now):
            return True
        if conn in self._told:
            self.metrics.dropped["not_logged_on_rate"] += 1
        else:
            self._told.add(conn)
            self._protocol_reject(
                identity, "rate_limited", "not logged on, and this address is over its limit "
                "for traffic before logon: later frames are dropped until it recovers",
                "frame", ts,
            )  # fmt: skip
        return False

    def _address_bucket(self, addr: str, now: float) -> TokenBucket:
        bucket = self._anonymous.get(addr)
        if bucket is None:
            if len(self._anonymous) >= _MAX_BUCKETS:
                self._prune(self._anonymous, now)
            s = self.settings
            bucket = self._anonymous[addr] = TokenBucket(
                s.anonymous_rate_limit, s.anonymous_burst, now
            )
        return bucket

    # ------------------------------------------------------------------ order entry
    def _on_frame(self, identity: bytes, frame: zmq.Frame) -> int:
        """Handle one gateway frame (a message or a batch); returns how many requests."""
        assert self._gw_peers is not None
        conn = self._gw_peers.connection(frame)
        session = self._session_of(identity, conn)
        ts = self.clock()
        now = time.monotonic()
        if session is None and not self._anonymous_budget(identity, conn, frame, ts, now):
            return 0
        head = frame.buffer  # the header alone decides a flood frame's fate: no copy yet
        if not head:
            self._protocol_reject(identity, "malformed", "an empty frame", None, ts)
            return 1
        if session is not None:
            bucket = session.bucket
            n = _count(head)
            if bucket.refill(now) - min(n, bucket.burst) < -bucket.burst:
                # Flooding: the account is a whole burst in debt (each refused request adds
                # one), and this frame would only add more. Refused unread: decoding a flood
                # only to refuse it is what would cost the other clients their latency. So an
                # account costs at most its rate in decoded requests, accepted or refused.
                # The connection is told at most every `_FLOOD_NOTICE_S`; the frames between
                # are counted drops (``agora_exchange_dropped{reason="flooding"}``), so the
                # flood's answers cost the others no time either.
                if now - session.noticed < _FLOOD_NOTICE_S:
                    self.metrics.dropped["flooding"] += 1
                    return 0
                session.noticed = now
                self._protocol_reject(
                    identity, "rate_limited", f"the account is flooding: the frame's {n} "
                    "requests were not read (and its next frames are dropped unread until "
                    "it slows down)", "frame", ts,
                )  # fmt: skip
                return 1
            limit = session.address_bucket
            if limit.refill(now) < n:
                # Many accounts behind one address, together over its ceiling.
                self._protocol_reject(
                    identity, "rate_limited", f"this address is over its request rate: the "
                    f"frame's {n} requests were not read", "frame", ts,
                )  # fmt: skip
                return 1
            limit.tokens -= n
        payload = frame.bytes
        self._decoded = True  # a request was read: its answer goes out with this group
        try:
            msgs = decode_batch(payload) if payload[0] in _ARRAY_MARKERS else [decode(payload)]
        except ProtocolError as exc:
            self._protocol_reject(identity, exc.reason, str(exc), exc.ref_type, ts)
            return 1
        for msg in msgs:
            if session is None:
                session = self._before_logon(identity, conn, frame, msg, ts, now)
            else:
                self._on_request(identity, session, msg, ts, now)
                if msg.type == "logon":
                    session = self._session_of(identity, conn)
        return len(msgs)

    def _before_logon(
        self, identity: bytes, conn: Connection, frame: zmq.Frame, msg: Any, ts: int, now: float
    ) -> _Session | None:
        kind = msg.type
        self.metrics.messages[kind] += 1
        if kind != "logon":
            self._protocol_reject(identity, "not_logged_on", "send a logon first", kind, ts)
            return None
        assert self._gw_peers is not None
        if self._logon(identity, conn, self._gw_peers.address(conn, frame), msg, ts, now):
            self._anonymous[self._gw_peers.address(conn, frame)].tokens += 1.0  # free
        return self._session_of(identity, conn)

    def _on_request(
        self, identity: bytes, session: _Session, msg: Any, ts: int, now: float
    ) -> None:
        metrics = self.metrics
        kind = msg.type
        metrics.messages[kind] += 1
        if kind == "logon":  # a new logon on a logged-on connection replaces its session
            # (a failed one costs its address's budget, as before logon)
            if not self._logon(identity, session.conn, session.address, msg, ts, now):
                self._address_bucket(session.address, now).take(now)
            return
        # Token bucket per account, shared by all its connections: a flood is refused,
        # request by request, with a reason.
        bucket = session.bucket
        tokens = bucket.tokens + (now - bucket.last) * bucket.rate
        if tokens > bucket.burst:
            tokens = bucket.burst
        bucket.last = now
        if tokens < 1.0:
            # each refused request is a debt, down to a whole burst (see _on_frame)
            bucket.tokens = tokens - 1.0 if tokens - 1.0 > -bucket.burst else -bucket.burst
            if kind == "open_orders_request" or kind == "resend_request":
                self._protocol_reject(identity, "rate_limited", "too many requests", kind, ts)
            else:
                self._reply(identity, reject_raw(msg, "rate_limited", session.account, ts))
                metrics.rejects["rate_limited"] += 1
            return
        bucket.tokens = tokens - 1.0
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
        """Run a record, journal it if it changed anything, and route what it produced.

        A command the engine only rejected changed no state (`changes_state`), so it is not
        journalled: replay without it rebuilds the same market, and a flood of refused
        requests cannot fill the disk. Nothing is sent before the journal commit either way.

        Returns the events and whether every private message was a reject.
        """
        events = _run_record(self.engine, record)
        if changes_state(events):
            self.journal.append(record)
        if self.risk is not None:
            self.risk.on_events(events)
        box = self.reporter.translate_raw(events, request)
        private, by_account = self._private, self.by_account
        refused = bool(box.private)
        # With a resend window the reporter packed the reports (`RawOutbox.wire`): those bytes
        # are sent. Without, the flush packs the dicts.
        wire = box.wire
        for i, (owner, report) in enumerate(box.private):
            reason = report.get("reject_reason")
            if reason is not None:
                self.metrics.rejects[reason] += 1
            else:
                refused = False
            for identity in by_account.get(owner, ()):
                private[identity].append(wire[i] if wire else report)
        if box.drop_copy:
            self.metrics.trades += len(box.drop_copy)
            for capture in box.drop_copy:
                self.journal.append([TRADE_RECORD, capture["trade_id"], capture])
            self._drop.extend(box.drop_copy)
        public = self._public
        for topic, m in self.feed.publish(box.public, ts):
            public[topic].append(m)
        return events, refused

    def _logon(
        self, identity: bytes, conn: Connection, addr: str, msg: Logon, ts: int, now: float
    ) -> bool:
        """Log this connection on as `msg.account`; True if the logon should not count as a
        failure against the address (accepted, or refused for a reason that is not a guess)."""
        s = self.settings
        old = self.sessions.get(identity)
        if old is not None and old.conn == conn:
            self._end_session(identity, old)  # a connection has one session at a time
        account = msg.account
        failures = self._failures.get(account)
        if failures is not None and failures.refill(now) < 1.0:
            self._refuse_logon(
                identity,
                account,
                "logon_throttled",
                "too many failed logons for this account; try again later",
                ts,
            )
            return False
        reason = self.authenticate(account, msg.token)
        if reason is not None:
            guess = reason in _HIDDEN_LOGON_REASONS
            log.info("logon_refused", account=account, reason=reason, peer=addr or None)
            if guess:
                # The same answer for an unknown account and a wrong token, and the same
                # throttle: the answers must not tell which accounts exist.
                if failures is None:
                    if len(self._failures) >= _MAX_BUCKETS:
                        self._prune(self._failures, now)
                    failures = self._failures[account] = TokenBucket(
                        s.logon_failure_rate, s.logon_failure_burst, now
                    )
                failures.tokens -= 1.0
                self._refuse_logon(identity, account, FAILED_LOGON,
                                   "unknown account or wrong token", ts)  # fmt: skip
                return False
            self._refuse_logon(identity, account, reason, reason, ts)
            return True
        live = self.by_account.get(account)
        if live is not None and len(live) >= s.max_sessions_per_account:
            self._refuse_logon(
                identity, account, "too_many_sessions",
                f"{account} already has {len(live)} live sessions, the most allowed", ts,
            )  # fmt: skip
            return True
        bucket = self._accounts.get(account)
        if bucket is None:
            bucket = self._accounts[account] = TokenBucket(self._rate, self._burst, now)
        session = _Session(account, identity, conn, bucket, msg.token, addr)
        limit = self._per_address.get(addr)
        if limit is None:
            if len(self._per_address) >= _MAX_BUCKETS:
                self._prune(self._per_address, now)
            limit = self._per_address[addr] = TokenBucket(
                s.address_rate_limit, s.address_burst, now
            )
        session.address_bucket = limit
        self.sessions[identity] = session
        self._by_conn[conn] = identity
        self.by_account[account].add(identity)
        self.metrics.sessions = len(self.sessions)
        self._reply(identity, {
            "type": "logon_reply", "v": 1, "ts": ts, "account": account, "accepted": True,
            "symbols": self._symbols,
            "account_seq": self.reporter.account_seqs.get(msg.account, 0),
        })  # fmt: skip
        return True

    def _refuse_logon(self, identity: bytes, account: str, reason: str, text: str, ts: int) -> None:
        self.metrics.rejects[reason] += 1
        self._reply(identity, {
            "type": "logon_reply", "v": 1, "ts": ts, "account": account,
            "accepted": False, "reason": reason, "text": text,
        })  # fmt: skip

    @staticmethod
    def _prune(buckets: dict[str, TokenBucket], now: float) -> None:
        """Forget buckets that have refilled (they would start full again anyway)."""
        for key in [k for k, b in buckets.items() if b.refill(now) >= b.burst]:
            del buckets[key]

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
        reports, last, first = self.reporter.resend_wire(account, msg.from_seq, msg.max_count)
        self._private[identity].extend(reports)  # packed, as they were first sent
        # Numbers have no holes: the reports are from max(from_seq, first) on.
        nxt = max(msg.from_seq, first, 1) + len(reports)
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
                self._end_session(identity, session)
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
        self._snapshot_tick()

    def _heartbeat(self) -> None:
        self._settle()  # (a heartbeat's last trade id must not run ahead of the trades sent)
        if self._feed_peers is not None:
            self._feed_peers.drain()
            self.metrics.feed_subscribers = len(self._feed_peers.live)
            with contextlib.suppress(OSError):
                self.metrics.journal_bytes = self.journal.path.stat().st_size
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
        self._settle()
        bye = {"type": "goodbye", "v": 1, "ts": self.clock(), "reason": "exchange shutting down"}
        payload = msgpack.packb([bye])
        _send(self._feed, [GOODBYE_TOPIC.encode(), payload])
        _send(self._dropsock, [b"goodbye", payload])
        for identity in self.sessions:
            _send(self._gw, [identity, payload])

    # ------------------------------------------------------------------ snapshot service
    def _init_snapshot_service(self) -> None:
        s = self.settings
        self._snap_peers: ConnectionTracker | None = None
        self._snap_limits = AddressLimits(s.snapshot_rate_limit, s.snapshot_burst, _MAX_BUCKETS)
        self._snap_trusted: set[Connection] = set()  # proved the replay token: not limited
        self._snap_seen: set[Connection] = set()  # connections whose first frame was read

    def _drain_snapshot(self) -> None:
        """Answer snapshot-service requests, within a share of this loop turn.

        The service is open to anyone, and each answer (a book, a page of the tape) costs far
        more than an order: so it takes at most `snapshot_turn_frames` frames and about
        `snapshot_turn_s` of a turn (the rest waits in the socket for the next turn, after
        order entry has had its own), and each source address has a budget (`AddressLimits`):
        over it a request is refused with ``rate_limited``; a whole burst in debt, its frames
        are dropped unread and counted (``agora_exchange_dropped{reason="snapshot_rate"}``).
        A connection's first frame is always read, so clearing proves its replay token even
        from an address in debt; once proven, its connection is not limited at all.
        """
        self._settle()  # replies may show journalled state: only once it is on disk
        sock, peers, limits, s = self._snap, self._snap_peers, self._snap_limits, self.settings
        assert peers is not None
        metrics = self.metrics
        deadline = time.perf_counter() + s.snapshot_turn_s
        for i in range(s.snapshot_turn_frames):
            if i and time.perf_counter() > deadline:
                return
            try:
                parts = sock.recv_multipart(zmq.NOBLOCK, copy=False)
            except zmq.Again:
                return
            for conn in peers.drain():  # judge the frame by its own connection
                self._snap_trusted.discard(conn)
                self._snap_seen.discard(conn)
            if len(parts) != 2:
                metrics.dropped["snapshot_shape"] += 1  # not one request after the routing id
                continue
            identity, frame = parts[0].bytes, parts[1]
            conn = peers.connection(frame)
            trusted = conn in self._snap_trusted
            address = "" if trusted else peers.address(conn, frame)
            verdict = AddressLimits.SERVE if trusted else limits.judge(address, time.monotonic())
            debited = not trusted and verdict != AddressLimits.DROP
            if verdict == AddressLimits.DROP:
                if conn in self._snap_seen:
                    metrics.dropped["snapshot_rate"] += 1
                    continue
                verdict = AddressLimits.REFUSE
            self._snap_seen.add(conn)
            ts = self.clock()
            try:
                msg = decode(frame.bytes)
                if not trusted and self._proves_replay_token(msg):
                    self._snap_trusted.add(conn)
                    if debited:
                        limits.refund(address)
                    verdict = AddressLimits.SERVE
                if verdict == AddressLimits.SERVE:
                    reply = self._snapshot_reply(msg, ts)
                else:
                    metrics.rejects["rate_limited"] += 1
                    reply = _protocol_reject(
                        "rate_limited", "this address is over its snapshot-service request "
                        "rate; ask again later", msg.type, ts,
                    )  # fmt: skip
            except ProtocolError as exc:
                reply = _protocol_reject(exc.reason, str(exc), exc.ref_type, ts)
            except Exception as exc:  # a request must never take the exchange down
                log.exception("snapshot_request_failed")
                reply = _protocol_reject("internal_error", type(exc).__name__, None, ts)
            _send(sock, [identity, msgpack.packb([reply])])

    def _proves_replay_token(self, msg: Any) -> bool:
        """A trade replay request with the replay token: clearing's link (without a token
        configured, replay is open to all and proves nothing)."""
        return (
            isinstance(msg, TradeReplayRequest)
            and bool(self._replay_token)
            and hmac.compare_digest(msg.token.encode(), self._replay_token.encode())
        )

    def _snapshot_reply(self, msg: Any, ts: int) -> dict:
        if isinstance(msg, SnapshotRequest):
            if msg.symbol not in self._symbols:
                return _protocol_reject("unknown_symbol", f"no symbol {msg.symbol!r}", msg.type, ts)
            bids, asks = self.engine.depth(msg.symbol, msg.depth)
            m = self.engine.market(msg.symbol)
            return {
                "type": "book_snapshot", "v": 1, "ts": ts, "symbol": msg.symbol,
                "seq": self.feed.last_seq(msg.symbol, "book"), "bids": bids, "asks": asks,
                "phase": str(m.phase), "band_low": m.band_low if m.band_low > 0 else None,
                "band_high": m.band_high if m.band_high > 0 else None,
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
        if isinstance(msg, SymbolControl):
            return self._symbol_control(msg, ts)
        return _protocol_reject(
            "unexpected_message", f"{msg.type} is not a snapshot-service request", msg.type, ts
        )

    def _symbol_control(self, msg: SymbolControl, ts: int) -> dict:
        """Halt or resume a symbol for an operator holding the admin token.

        The change is a journal record like any command (``H``/``U``), so a restart comes back
        with the symbol in the phase it was left in; it is published on the feed and committed
        (and, under group commit, synced) before the answer, the new `MarketStatus`, goes out.
        """
        token = self._admin_token
        if not token or not hmac.compare_digest(msg.token.encode(), token.encode()):
            self.metrics.rejects["not_authorised"] += 1
            log.warning("symbol_control_refused", symbol=msg.symbol, action=msg.action,
                        reason="not_authorised")  # fmt: skip
            return _protocol_reject("not_authorised", f"to {msg.action} a symbol needs the "
                                    "exchange's admin token", msg.type, ts)  # fmt: skip
        if msg.symbol not in self._symbol_set:
            return _protocol_reject("unknown_symbol", f"no symbol {msg.symbol!r}", msg.type, ts)
        halted = self.engine.market(msg.symbol).phase == Phase.HALTED
        if halted == (msg.action == "halt"):
            reason = "already_halted" if halted else "not_halted"
            return _protocol_reject(reason, f"{msg.symbol} is {'already' if halted else 'not'} "
                                    "halted", msg.type, ts)  # fmt: skip
        why = msg.reason or ("operator" if msg.action == "halt" else "operator_resume")
        record = ["H" if msg.action == "halt" else "U", ts, msg.symbol, why]
        self._apply(record, None, ts)
        status = [m for m in self._public.get(f"{msg.symbol}|status", ())
                  if m.get("type") == "market_status"]  # fmt: skip
        self._flush()
        self._settle()
        log.info("symbol_control", symbol=msg.symbol, action=msg.action, reason=why)
        if not status:  # (the engine always announces a phase change)
            return _protocol_reject("internal_error", "no status change", msg.type, ts)
        return status[-1]

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
        """Commit the journal, then send every gathered reply and feed frame.

        With group commit the frames are held instead, in order, until the fsync that covers
        them (`_release`): at once if the last fsync is `group_commit_ms` old, else when it
        will be (the loop wakes for it even if no traffic comes).
        """
        self.journal.commit()
        self._sync_connections()  # replies only to connections still open
        if not self._group_s:
            for sock, frames in self._outgoing():
                _send(sock, frames)
            return
        self._held.extend(self._outgoing())
        if self._held:
            due = self._last_sync + self._group_s
            if self._mono() >= due:
                self._release()
            else:
                self._release_due = min(self._release_due, due)

    def _release_if_due(self) -> None:
        if self._held and self._mono() >= self._release_due:
            self._release()

    def _release(self) -> None:
        """fsync the journal, then send what waited for it (to connections still open)."""
        self.journal.sync()
        self._sync_connections()
        self._last_sync = self._mono()
        self._release_due = float("inf")
        held, self._held = self._held, []
        for sock, frames in held:
            _send(sock, frames)

    def _settle(self) -> None:
        """Under group commit, sync and release now (before anything that reads the state)."""
        if self._group_s and (self._held or self.journal.synced < self.journal.committed):
            self.journal.commit()
            self._release()

    def _outgoing(self) -> Iterator[tuple[zmq.Socket, list[bytes]]]:
        """The gathered replies and feed frames as (socket, frames), emptying the buffers."""
        private, public, drop = self._private, self._public, self._drop
        packb = self._packer.pack
        if private:
            gw = self._gw
            packed = self.reporter.resend_window > 0  # reports come packed (`RawOutbox.wire`)
            for identity, msgs in private.items():
                for i in range(0, len(msgs), _PRIVATE_CHUNK):
                    chunk = msgs[i : i + _PRIVATE_CHUNK]
                    yield gw, [identity, _pack_batch(packb, chunk) if packed else packb(chunk)]
            private.clear()
        if public:
            feed = self._feed
            for topic, msgs in public.items():
                t = topic.encode()
                for i in range(0, len(msgs), _CHUNK):
                    yield feed, [t, packb(msgs[i : i + _CHUNK])]
            public.clear()
        if drop:
            for i in range(0, len(drop), _CHUNK):
                yield self._dropsock, [b"trades", packb(drop[i : i + _CHUNK])]
            drop.clear()


def _pack_batch(packb: Callable[[Any], bytes], msgs: list[dict | bytes]) -> bytes:
    """A msgpack array of `msgs`, byte for byte what packing the list of dicts would give:
    dicts are packed here, bytes are messages packed already (`RawOutbox.wire`)."""
    n = len(msgs)
    head = bytes((0x90 | n,)) if n < 16 else b"\xdc" + n.to_bytes(2, "big")
    return head + b"".join([m if m.__class__ is bytes else packb(m) for m in msgs])


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


def _count(payload: bytes | memoryview) -> int:
    """How many requests a frame holds, from its msgpack header alone (1 unless a batch)."""
    head = payload[0]
    if 0x90 <= head <= 0x9F:
        return head & 0x0F
    if head == 0xDC and len(payload) >= 3:
        return int.from_bytes(payload[1:3], "big")
    if head == 0xDD and len(payload) >= 5:
        return int.from_bytes(payload[1:5], "big")
    return 1


def changes_state(events: list[tuple]) -> bool:
    """Did the engine call that produced `events` change the market?

    The engine refuses before it changes anything: a refused request's events are its one
    REJECTED (a due timed transition runs first and has events of its own, and a refused new
    order claims no client order id). So a command whose events are all rejects (or none)
    need not be journalled: replay without it rebuilds the same state.
    """
    if events and events[0][0] != REJECTED:
        return True  # the common case (accepted, cancelled, ...), without a generator
    return any(ev[0] != REJECTED for ev in events)


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
    if kind == "H":  # an operator's halt: until resumed
        return engine.halt(r[2], r[1], None, r[3])
    if kind == "U":  # an operator's resume: the reopening auction, then continuous trading
        return engine.uncross(r[2], r[1], reason=r[3])
    raise ValueError(f"unknown journal record {kind!r}")
