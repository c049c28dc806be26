"""The clearing process: the clearing house behind ZeroMQ sockets.

* consumes the exchange's drop copy (SUB, ``trades`` and ``heartbeat`` topics) and, whenever it
  is behind (at start, after a gap, or when a heartbeat names a later trade than it has),
  fetches the missing trades from the exchange's replay service (DEALER to its snapshot
  ROUTER) until it has settled everything: the Clone pattern, applied to trades;
* serves the account API on a ROUTER (`clearing.protocol`), and pushes `RiskState` updates to
  the exchange's gate and `AccountUpdate`s to subscribed owners after every committed change.

Subscriptions belong to the connection they were made on (`exchange.protocol.peers`): they end
when it closes, and a routing id proves nothing. The risk stream and withdrawal holds go only
to a connection that proved the link secret (`ClearingSettings.link_secret`, not the admin
token), and only that connection's hold replies count.

Requests count against their source address's budget (`AddressLimits`): over it they are
refused with ``rate_limited``, and a whole burst in debt dropped unread and counted (logged
as ``api_frames_dropped``). The risk link's connection is not limited.

Everything is settled and committed (`clearing.house`, `clearing.store`) before any update
leaves, and every trade is settled in id order exactly once, so a kill -9 at any point loses
nothing: on restart the process loads the database and catches up from the exchange's journal.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import itertools
import json
import secrets
import signal
import time
from collections import defaultdict
from collections.abc import Iterator
from typing import Any

import structlog
import zmq
import zmq.asyncio
from prometheus_client import CollectorRegistry, Histogram, ProcessCollector, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from clearing.house import ClearingHouse
from clearing.ledger import OutOfOrder
from clearing.protocol import (
    AccountUpdate,
    ClearingProtocolError,
    ClearingReject,
    HoldRequest,
    RiskState,
    decode,
    encode,
)
from clearing.settings import ClearingSettings
from clearing.store import Store
from exchange.protocol import ProtocolError, TradeReplayRequest, decode_batch
from exchange.protocol import encode as encode_exchange
from exchange.protocol.peers import (
    AddressLimits,
    Connection,
    ConnectionTracker,
    TokenBucket,
    harden,
    require_srcfd,
)

__all__ = ["ClearingServer"]

log = structlog.get_logger("clearing")

_MAX_SUBSCRIBERS = 10_000
_OWNER_REQUESTS = frozenset({"balance_request", "subscribe", "trade_history_request"})
_HIDDEN_REASONS = frozenset({"unknown_account", "invalid_token"})
FAILED_CREDENTIALS = "invalid_credentials"
"""The answer to an owner request naming an unknown account or a wrong token: not which."""


class _Metrics:
    """Prometheus figures: counts kept as plain ints (read at scrape time) and the settlement
    lag, from the exchange's trade time to its settlement here (one observation per batch)."""

    def __init__(self, server: ClearingServer) -> None:
        self.server = server
        self.settled = 0
        self.requests: dict[str, int] = defaultdict(int)
        self.registry = CollectorRegistry()
        ProcessCollector(registry=self.registry)
        self.settlement_lag = Histogram(
            "agora_clearing_settlement_lag_seconds",
            "time from a trade on the exchange to its settlement here (last trade of a batch)",
            buckets=(1e-3, 2.5e-3, 5e-3, 1e-2, 2.5e-2, 5e-2, 0.1, 0.25, 0.5, 1.0, 5.0, 30.0),
            registry=self.registry,
        )
        self.registry.register(self)

    def collect(self) -> Iterator[Any]:
        yield CounterMetricFamily("agora_clearing_settled_trades", "trades settled",
                                  value=self.settled)  # fmt: skip
        requests = CounterMetricFamily("agora_clearing_api_requests", "account API requests, "
                                       "by type", labels=["type"])  # fmt: skip
        for kind, n in list(self.requests.items()):
            requests.add_metric([kind], n)
        yield requests
        yield GaugeMetricFamily("agora_clearing_accounts", "accounts",
                                value=len(self.server.house.ledger.accounts) - 1)  # fmt: skip


class ClearingServer:
    def __init__(self, settings: ClearingSettings | None = None) -> None:
        self.settings = s = settings or ClearingSettings()
        self.metrics = _Metrics(self)
        self.admin_token = s.resolve_admin_token()
        self._link_hash = hashlib.sha256(s.resolve_link_secret().encode()).digest()
        self.store = Store(s.db_url)
        self.house = ClearingHouse(
            self.store, s.symbols, self.admin_token, fees=s.fees, cash_unit=s.cash_unit,
            starting_cash=s.starting_cash, starting_positions=s.starting_positions,
            default_limits=s.default_limits,
        )  # fmt: skip
        self.risk_subscribers: set[bytes] = set()
        self.gates: set[bytes] = set()  # risk subscribers that also answer withdrawal holds
        self._conn_of: dict[bytes, Connection] = {}  # each subscriber's connection
        self._by_conn: dict[Connection, bytes] = {}
        self._peers: ConnectionTracker | None = None
        self.dropped = 0  # frames of an unexpected shape that could not be answered
        self._limits = AddressLimits(s.api_rate_limit, s.api_burst, _MAX_SUBSCRIBERS * 10)
        self._seen: set[Connection] = set()  # connections whose first frame was read
        self.rate_dropped = 0  # frames dropped unread: their address was a burst in debt
        self.rate_refused = 0  # requests refused with rate_limited
        self._rate_logged = (0, 0)
        self._fail_accounts: dict[str, TokenBucket] = {}  # failed owner requests, by account
        self._fail_addresses: dict[str, TokenBucket] = {}  # ... and by source address
        self._holds: dict[str, dict[str, Any]] = {}  # withdrawals waiting for the gate
        self._hold_ids = itertools.count(1)
        self._risk_seq = 0  # RiskState messages sent; each carries its number
        self.owner_subscribers: dict[str, set[bytes]] = defaultdict(set)
        self.exchange_last = 0  # the newest trade id the exchange has told us about
        self.endpoints: dict[str, str] = {}
        self._stopping = asyncio.Event()

    def stop(self) -> None:
        self._stopping.set()

    async def serve(self) -> None:
        s = self.settings
        require_srcfd()
        ctx = zmq.asyncio.Context()
        api = ctx.socket(zmq.ROUTER)
        harden(api, s.peer_heartbeat_s, s.peer_timeout_s)  # sessions are connections
        api.setsockopt(zmq.SNDHWM, 1_000_000)  # risk states must not be dropped at the HWM
        sub = ctx.socket(zmq.SUB)
        sub.setsockopt(zmq.RCVHWM, 1_000_000)
        for topic in (b"trades", b"heartbeat", b"goodbye"):
            sub.setsockopt(zmq.SUBSCRIBE, topic)
        for sock in (api, sub):
            sock.setsockopt(zmq.LINGER, 1000)
        self._ctx = ctx
        self._replay = self._replay_socket()
        # Non-blocking drains and sends go through plain (shadow) sockets: an asyncio
        # socket's recv returns a future even with NOBLOCK.
        self._api = zmq.Socket.shadow(api.underlying)
        self._peers = ConnectionTracker(self._api, ctx)  # before any connection is accepted
        try:
            api.bind(s.api_bind)
            self.endpoints["api"] = api.getsockopt_string(zmq.LAST_ENDPOINT)
            if s.metrics_port:
                start_http_server(s.metrics_port, s.metrics_host, registry=self.metrics.registry)
                self.endpoints["metrics"] = f"http://{s.metrics_host}:{s.metrics_port}/metrics"
            sub.connect(s.exchange_dropcopy)
            self._sub = zmq.Socket.shadow(sub.underlying)
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                with contextlib.suppress(NotImplementedError, RuntimeError):
                    loop.add_signal_handler(sig, self.stop)
            log.info(
                "clearing_ready", settled_through=self.house.ledger.settled_through,
                trade_conflicts=self.house.conflicts,
                accounts=len(self.house.ledger.accounts) - 1, database=self.store.url.split("?")[0],
                **self.endpoints,
            )  # fmt: skip
            if self.house.conflicts:
                log.error("trade_conflicts_on_record", total=self.house.conflicts,
                          newest=self.store.conflicts(limit=5))  # fmt: skip
            print("AGORA_READY " + json.dumps(self.endpoints), flush=True)
            await self._loop(api, sub)
        finally:
            self._peers.close()
            for sock in (api, sub, self._replay):
                sock.close(linger=0)
            ctx.term()
            self.store.close()
            log.info("clearing_stopped", settled_through=self.house.ledger.settled_through)

    def _replay_socket(self) -> zmq.asyncio.Socket:
        sock = self._ctx.socket(zmq.DEALER)
        sock.setsockopt(zmq.LINGER, 0)
        sock.connect(self.settings.exchange_snapshot)
        return sock

    async def _loop(self, api: zmq.asyncio.Socket, sub: zmq.asyncio.Socket) -> None:
        poller = zmq.asyncio.Poller()
        poller.register(api, zmq.POLLIN)
        poller.register(sub, zmq.POLLIN)
        beat_s = self.settings.heartbeat_s
        next_beat = time.monotonic()  # at once: catch up with the exchange on start
        while not self._stopping.is_set():
            timeout = max(0.0, next_beat - time.monotonic())
            ready = dict(await poller.poll(timeout * 1000))
            if sub in ready:
                await self._drain_dropcopy(self._sub)
            if api in ready:
                self._drain_api(self._api)
            if self._holds:
                self._expire_holds()
            if time.monotonic() >= next_beat:
                next_beat = time.monotonic() + beat_s
                if self.exchange_last > self.house.ledger.settled_through or not self._caught_up:
                    self._start_catch_up()
                self._heartbeat()
        if self._catching_up is not None:
            self._catching_up.cancel()

    _caught_up = False
    _catching_up: asyncio.Task | None = None

    def _start_catch_up(self) -> None:
        """Catch up in the background: the account API keeps answering while the replay
        service is slow or gone (one catch-up at a time; a finished one may be restarted)."""
        if self._catching_up is None or self._catching_up.done():
            self._catching_up = asyncio.create_task(self._guarded_catch_up())

    async def _guarded_catch_up(self) -> None:
        try:
            await self._catch_up()
        except asyncio.CancelledError:
            raise
        except Exception:  # e.g. the store failed: the next heartbeat tries again
            log.exception("catch_up_failed")
            self._caught_up = False

    # ------------------------------------------------------------------ trades in
    async def _drain_dropcopy(self, sub: zmq.Socket) -> None:
        trades: list[dict[str, Any]] = []
        for _ in range(10_000):
            try:
                _topic, payload = sub.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                break
            except ValueError:
                continue  # not a two-frame message: not the exchange's
            try:
                msgs = decode_batch(payload)
            except ProtocolError as exc:
                log.warning("dropcopy_malformed", reason=exc.reason)
                continue
            for m in msgs:
                if m.type == "trade_capture":
                    trades.append(m.model_dump())
                    self.exchange_last = max(self.exchange_last, m.trade_id)
                elif m.type == "heartbeat":
                    self.exchange_last = max(self.exchange_last, m.seq)
                elif m.type == "goodbye":
                    log.info("exchange_goodbye")
        if trades:
            log.debug("dropcopy_trades", n=len(trades), first=trades[0]["trade_id"])
            await self._settle(trades)

    async def _settle(self, trades: list[dict[str, Any]]) -> None:
        if self._catching_up is not None and not self._catching_up.done():
            return  # the catch-up settles these in order from the journal
        before = self.house.ledger.settled_through
        try:
            touched = self.house.settle(trades)
        except OutOfOrder as exc:
            # A gap: these trades (and the missing ones) are in the exchange's journal; the
            # catch-up fetches them in order, without holding up the account API.
            log.warning("trade_gap", expected=exc.expected)
            self._caught_up = False
            self._start_catch_up()
            return
        finally:
            self._report_conflicts()
        self._settled(trades, before)
        self._publish(touched)

    def _settled(self, trades: list[dict[str, Any]], before: int) -> None:
        """Count what a batch settled (re-deliveries of settled ids are not counted)."""
        self.metrics.settled += sum(1 for t in trades if t["trade_id"] > before)
        ts = trades[-1].get("ts") if trades else None
        if isinstance(ts, int) and ts:
            self.metrics.settlement_lag.observe(max(0.0, (time.time_ns() - ts) / 1e9))

    def _report_conflicts(self) -> None:
        """Trades refused because their id already named another trade: loudly, every one."""
        house = self.house
        for c in house.new_conflicts:
            log.error("trade_id_conflict", trade_id=c["trade_id"], reason=c["reason"],
                      received=c["received"], settled=c["settled"], total=house.conflicts)
        house.new_conflicts.clear()

    async def _catch_up(self) -> None:
        """Fetch and settle trades from the exchange's journal until none is missing."""
        s = self.settings
        while True:
            start = self.house.ledger.settled_through + 1
            req = TradeReplayRequest(
                from_trade_id=start, max_count=1000, token=s.exchange_token or self.admin_token
            )
            await self._replay.send(encode_exchange(req))
            if not await self._replay.poll(s.replay_timeout_s * 1000):
                # The exchange is not answering (down or restarting): start afresh later, with
                # a new socket so a late answer cannot be mistaken for the next one.
                self._replay.close(linger=0)
                self._replay = self._replay_socket()
                return
            try:
                replies = decode_batch(await self._replay.recv())
                reply = replies[0]
            except (ProtocolError, IndexError) as exc:
                log.warning("replay_malformed", error=str(exc))
                return
            if reply.type != "trade_replay":
                log.warning("replay_refused", reply=reply.type, reason=getattr(reply, "reason", ""))
                return
            self.exchange_last = max(self.exchange_last, reply.end_trade_id)
            trades = [t.model_dump() for t in reply.trades]
            if trades:
                before = self.house.ledger.settled_through
                try:
                    touched = self.house.settle(trades, from_journal=True)
                finally:
                    self._report_conflicts()
                self._settled(trades, before)
                self._publish(touched)
                log.info("caught_up_page", through=self.house.ledger.settled_through,
                         end=reply.end_trade_id)  # fmt: skip
            self._caught_up = True
            if not trades or self.house.ledger.settled_through >= reply.end_trade_id:
                return

    # ------------------------------------------------------------------ account API
    def _sync_connections(self) -> None:
        """A closed connection's subscriptions (risk link, owner updates) end now."""
        if self._peers is None:
            return
        for conn in self._peers.drain():
            self._seen.discard(conn)
            identity = self._by_conn.pop(conn, None)
            if identity is None or self._conn_of.get(identity) != conn:
                continue
            del self._conn_of[identity]
            self.risk_subscribers.discard(identity)
            if identity in self.gates:
                self.gates.discard(identity)
                log.info("risk_link_closed")
            for subs in self.owner_subscribers.values():
                subs.discard(identity)

    def _bind(self, identity: bytes, conn: Connection) -> None:
        """A subscription made on this connection: it lives as long as the connection."""
        old = self._conn_of.get(identity)
        if old is not None and old != conn:
            self._forget(identity)
        self._conn_of[identity] = conn
        self._by_conn[conn] = identity

    def _forget(self, identity: bytes) -> None:
        conn = self._conn_of.pop(identity, None)
        if conn is not None:
            self._by_conn.pop(conn, None)
        self.risk_subscribers.discard(identity)
        self.gates.discard(identity)
        for subs in self.owner_subscribers.values():
            subs.discard(identity)

    def _throttled(self, account: str, address: str) -> str | None:
        """Why an owner request is refused unread: its account or address failed too often."""
        now = time.monotonic()
        for key, buckets, what in (
            (account, self._fail_accounts, "for this account"),
            (address, self._fail_addresses, "from this address"),
        ):
            bucket = buckets.get(key)
            if bucket is not None and bucket.refill(now) < 1.0:
                return what
        return None

    def _failed(self, account: str, address: str) -> None:
        s, now = self.settings, time.monotonic()
        for key, buckets, rate, burst in (
            (account, self._fail_accounts, s.auth_failure_rate, s.auth_failure_burst),
            (address, self._fail_addresses, s.auth_failure_rate * 20, s.auth_failure_burst * 10),
        ):
            bucket = buckets.get(key)
            if bucket is None:
                if len(buckets) >= _MAX_SUBSCRIBERS * 10:  # forget the ones that refilled
                    for k in [k for k, b in buckets.items() if b.refill(now) >= b.burst]:
                        del buckets[k]
                bucket = buckets[key] = TokenBucket(rate, burst, now)
            bucket.tokens -= 1.0

    def _is_link(self, identity: bytes, conn: Connection) -> bool:
        return identity in self.gates and self._conn_of.get(identity) == conn

    def _is_risk_link(self, identity: bytes, conn: Connection) -> bool:
        """This connection proved the link secret (a risk subscriber bound to it)."""
        return identity in self.risk_subscribers and self._conn_of.get(identity) == conn

    def _proves_link(self, msg: Any) -> bool:
        offered = hashlib.sha256(msg.admin_token.encode()).digest()
        return hmac.compare_digest(offered, self._link_hash)

    def _drain_api(self, api: zmq.Socket) -> None:
        peers = self._peers
        assert peers is not None
        for _ in range(1000):
            try:
                parts = api.recv_multipart(zmq.NOBLOCK, copy=False)
            except zmq.Again:
                return
            self._sync_connections()  # judge the frame by its own connection
            if len(parts) != 2:
                if len(parts) < 2:
                    self.dropped += 1
                    log.warning("api_frame_dropped", parts=len(parts))
                    continue
                self._send(parts[0].bytes, ClearingReject(
                    reason="malformed", text=f"a request is one frame; got {len(parts) - 1}",
                ))  # fmt: skip
                continue
            identity = parts[0].bytes
            conn = peers.connection(parts[1])
            if identity in self._conn_of and self._conn_of[identity] != conn:
                self._forget(identity)  # the id's earlier connection is gone; nothing carries
            link = self._is_risk_link(identity, conn)
            address = "" if link else peers.address(conn, parts[1])
            verdict = AddressLimits.SERVE if link else self._limits.judge(address, time.monotonic())
            debited = not link and verdict != AddressLimits.DROP
            if verdict == AddressLimits.DROP:
                if conn in self._seen:
                    self.rate_dropped += 1
                    continue
                # A connection's first frame is always read: the risk link proves its secret
                # with it, even from an address in debt.
                verdict = AddressLimits.REFUSE
            self._seen.add(conn)
            ts = time.time_ns()
            try:
                msg = decode(parts[1].bytes)
            except ClearingProtocolError as exc:
                reply: Any = ClearingReject(reason=exc.reason, text=str(exc)[:1024],
                                            ref_type=exc.ref_type)  # fmt: skip
                self._send(identity, reply)
                continue
            self.metrics.requests[msg.type] += 1
            if not link and msg.type == "risk_subscribe" and self._proves_link(msg):
                if debited:
                    self._limits.refund(address)  # the risk link is not counted
                verdict = AddressLimits.SERVE
            if verdict == AddressLimits.REFUSE:
                self.rate_refused += 1
                self._send(identity, ClearingReject(
                    request_id=getattr(msg, "request_id", None), ref_type=msg.type,
                    reason="rate_limited",
                    text="this address is over its request rate; ask again later",
                ))  # fmt: skip
                continue
            if msg.type == "hold_reply":
                if self._is_link(identity, conn):
                    self._on_hold_reply(identity, msg)
                else:
                    log.warning("hold_reply_ignored", why="not from the risk link's connection")
                continue
            if msg.type == "risk_subscribe":
                self._risk_subscribe(identity, conn, msg)
                continue
            if msg.type == "withdraw" and self.gates:
                self._start_hold(identity, msg)
                continue
            owner = msg.type in _OWNER_REQUESTS
            if owner:
                throttled = self._throttled(msg.account, peers.address(conn, parts[1]))
                if throttled is not None:
                    self._send(identity, ClearingReject(
                        request_id=msg.request_id, ref_type=msg.type, reason="throttled",
                        text=f"too many failed requests {throttled}; try again later",
                    ))  # fmt: skip
                    continue
            try:
                outcome = self.house.handle(msg, ts)
            except Exception as exc:  # a bug must not take the clearing house down
                log.exception("request_failed", type=msg.type)
                self._send(identity, ClearingReject(
                    request_id=getattr(msg, "request_id", None), ref_type=msg.type,
                    reason="internal_error", text=str(exc)[:1024],
                ))  # fmt: skip
                continue
            if outcome.subscribe is not None and outcome.subscribe != "risk":
                subs = self.owner_subscribers[outcome.subscribe]
                if len(subs) < _MAX_SUBSCRIBERS:
                    subs.add(identity)
                    self._bind(identity, conn)
            if outcome.revoked is not None:  # an old token's subscriptions end with it
                self.owner_subscribers.pop(outcome.revoked, None)
            reply = outcome.reply
            if owner and isinstance(reply, ClearingReject) and reply.reason in _HIDDEN_REASONS:
                # An unknown account and a wrong token get the same answer (it must not tell
                # which accounts exist), and the same throttle.
                self._failed(msg.account, peers.address(conn, parts[1]))
                reply = reply.model_copy(
                    update={"reason": FAILED_CREDENTIALS, "text": "unknown account or wrong token"}
                )
            if outcome.touched:  # the gate hears of a change before the requester does
                self._publish(outcome.touched)
            self._send(identity, reply)

    def _risk_subscribe(self, identity: bytes, conn: Connection, msg: Any) -> None:
        """The exchange's risk link: it must prove the link secret (not the admin token)."""
        if not self._proves_link(msg):
            log.warning("risk_subscribe_refused", why="wrong link secret")
            self._send(identity, ClearingReject(
                request_id=msg.request_id, ref_type=msg.type, reason="not_authorised",
                text="the risk stream needs the link secret",
            ))  # fmt: skip
            return
        if len(self.risk_subscribers) < _MAX_SUBSCRIBERS:
            self.risk_subscribers.add(identity)
            self._bind(identity, conn)
        if msg.gate:
            # one exchange per clearing house: the newest gate replaces the old ones
            for old in self.gates - {identity}:
                self._forget(old)
            self.gates = {identity}
            log.info("risk_link_up")
        reply = self.house.risk_state(None).model_copy(
            update={"seq": self._risk_seq, "holds": list(self._holds)}
        )  # the full state: where the stream starts
        self._send(identity, reply)

    # ------------------------------------------------------------------ withdrawals
    def _start_hold(self, identity: bytes, msg: Any) -> None:
        """A withdrawal waits until the exchange's gate has set the cash aside (`HoldRequest`)."""
        self._sync_connections()  # ask only a gate whose connection is still open
        refused = self.house.check_withdraw(msg)
        if refused is not None:
            self._send(identity, refused)
            return
        hold_id = f"w{next(self._hold_ids)}-{secrets.token_hex(8)}"  # not guessable
        self._holds[hold_id] = {
            "identity": identity, "msg": msg, "waiting": set(self.gates),
            "deadline": time.monotonic() + self.settings.hold_timeout_s,
        }  # fmt: skip
        request = HoldRequest(hold_id=hold_id, account=msg.account, amount=msg.amount)
        for gate in self.gates:
            self._send(gate, request)

    def _on_hold_reply(self, identity: bytes, reply: Any) -> None:
        hold = self._holds.get(reply.hold_id)
        if hold is None or identity not in hold["waiting"]:
            return  # expired already (and released), or not from a gate we asked
        if not reply.ok:
            self._end_hold(reply.hold_id, reply.reason or "refused_by_gate")
            return
        hold["waiting"].discard(identity)
        if not hold["waiting"]:
            self._end_hold(reply.hold_id, None)

    def _expire_holds(self) -> None:
        now = time.monotonic()
        for hold_id in [h for h, v in self._holds.items() if v["deadline"] < now]:
            self._end_hold(hold_id, "risk_unavailable")

    def _end_hold(self, hold_id: str, refused: str | None) -> None:
        hold = self._holds.pop(hold_id)
        msg, identity = hold["msg"], hold["identity"]
        if refused is not None:
            self._publish(set(), released=[hold_id])
            self._send(identity, ClearingReject(
                request_id=msg.request_id, ref_type=msg.type, reason=refused,
                text=f"the exchange's risk gate: {refused}",
            ))  # fmt: skip
            return
        try:
            outcome = self.house.handle(msg, time.time_ns())
        except Exception as exc:  # the store failed: refuse, release, stay up
            log.exception("withdrawal_failed", hold_id=hold_id)
            self._publish(set(), released=[hold_id])
            self._send(
                identity,
                ClearingReject(
                    request_id=msg.request_id,
                    ref_type=msg.type,
                    reason="internal_error",
                    text=str(exc)[:1024],
                ),
            )
            return
        self._send(identity, outcome.reply)
        self._publish(outcome.touched, released=[hold_id])

    def _send(self, identity: bytes, msg: Any) -> None:
        with contextlib.suppress(zmq.Again, zmq.ZMQError):
            self._api.send_multipart([identity, encode(msg)], zmq.NOBLOCK)

    def _publish(self, touched: set[str], released: list[str] | None = None) -> None:
        """Push the touched accounts' new state: to the gate, and to each subscribed owner."""
        if not touched and not released:
            return
        self._sync_connections()  # nothing to a connection that has closed
        if self.risk_subscribers:
            self._risk_seq += 1
            state = encode(self.house.risk_state(touched, released or ()).model_copy(
                update={"seq": self._risk_seq}
            ))  # fmt: skip
            for identity in self.risk_subscribers:
                with contextlib.suppress(zmq.Again, zmq.ZMQError):
                    self._api.send_multipart([identity, state], zmq.NOBLOCK)
        for name in touched:
            subs = self.owner_subscribers.get(name)
            acct = self.house.ledger.accounts.get(name)
            if subs and acct is not None:
                update = AccountUpdate(balance=self.house.balance(acct))
                for identity in subs:
                    self._send(identity, update)

    def _heartbeat(self) -> None:
        """An empty RiskState: the settled point moved (or not), and clearing is alive."""
        self._sync_connections()
        counts = (self.rate_refused, self.rate_dropped)
        if counts != self._rate_logged:  # a flood is never silent: totals, once a second
            self._rate_logged = counts
            log.warning("api_frames_dropped", reason="rate_limited", refused=counts[0],
                        dropped=counts[1])  # fmt: skip
        if self.risk_subscribers:
            self._risk_seq += 1
            beat = encode(RiskState(
                settled_through=self.house.ledger.settled_through, full=False, accounts=[],
                seq=self._risk_seq,
            ))  # fmt: skip
            for identity in self.risk_subscribers:
                with contextlib.suppress(zmq.Again, zmq.ZMQError):
                    self._api.send_multipart([identity, beat], zmq.NOBLOCK)
