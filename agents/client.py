"""The client SDK: trade on an Agora exchange and follow its market data from any asyncio program.

* `ExchangeClient`: order entry over the gateway (DEALER). Method names follow ccxt's unified
  API (`create_order`, `cancel_order`, `edit_order`, `fetch_open_orders`, `fetch_order_book`),
  so strategy code ports easily; prices are integer ticks and amounts integer lots.
* `MarketDataClient` (alias `Feed`): `watch_order_book` keeps a `LocalBook` in sync with the
  ZeroMQ guide's Clone pattern (subscribe, buffer, snapshot, apply the deltas after the
  snapshot's sequence number) and resynchronises by itself on a gap; `watch_trades` and
  `watch_ticker` stream trades and top of book.

Requests are pipelined: any number may be outstanding, each answered by its own future, matched
by client order id. A background task reads the socket and also feeds `reports()`, the stream
of every execution report of the account, including fills of resting orders.

Nothing missed: every execution report carries its account's sequence number
(``account_seq``). The client delivers each one once; after logging on again (a lost
connection, a restarted exchange) or on seeing a gap it asks for the missing ones
(`ResendRequest`, `recover`), so what an agent is told equals what the exchange journalled. The
public trade stream fills its gaps the same way, from the snapshot service's trade tape.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
from collections.abc import AsyncIterator, Callable
from typing import Any

import zmq
import zmq.asyncio
from zmq.utils.monitor import recv_monitor_message

from agents.settings import ClientSettings
from exchange.protocol import (
    BookDelta,
    BookSnapshot,
    CancelOrder,
    CancelReject,
    ExecutionReport,
    Logon,
    MassCancel,
    MassCancelReport,
    NewOrder,
    OpenOrdersRequest,
    OrderInfo,
    ProtocolError,
    ProtocolReject,
    ReplaceOrder,
    ResendRequest,
    SnapshotRequest,
    TapeReplay,
    TapeRequest,
    TopOfBook,
    Trade,
    decode_batch,
    encode,
    encode_batch,
)

__all__ = [
    "ClientError",
    "ExchangeClient",
    "Feed",
    "LocalBook",
    "LogonRefused",
    "MarketDataClient",
    "RequestRejected",
    "SessionClosed",
]


RETRYABLE_LOGON = frozenset({"clearing_unavailable"})
"""Logon refusals that mean "try again shortly", not "you may not"."""

PROPAGATING_LOGON = frozenset(
    {"invalid_credentials", "unknown_account", "invalid_token", "logon_throttled"}
)
"""Refusals retried for `PROPAGATION_S` only: an account opened (or a token issued) a moment
ago may not have reached the exchange's gate yet; after that they are final."""
PROPAGATION_S = 2.0


def _swallow(fut: asyncio.Future) -> None:
    if not fut.cancelled():
        fut.exception()  # retrieved, so asyncio does not warn about it


class ClientError(RuntimeError):
    """Base of the SDK's errors."""


class LogonRefused(ClientError):
    def __init__(self, reason: str | None, text: str = "") -> None:
        super().__init__(f"logon refused: {reason} {text}".strip())
        self.reason = reason


class SessionClosed(ClientError):
    """The exchange said goodbye or the client was closed while a request was outstanding."""


class RequestRejected(ClientError):
    """The exchange answered a request with a session-level ProtocolReject (e.g. rate_limited)."""

    def __init__(self, reason: str, text: str = "", ref_type: str | None = None) -> None:
        super().__init__(f"request rejected: {reason} {text}".strip())
        self.reason = reason
        self.ref_type = ref_type


GOODBYE_TOPIC = "*|goodbye"  # the feed topic of the exchange's goodbye (exchange.feed)
_END = object()  # ends reports(): put on the queue after goodbye or close


class ExchangeClient:
    """One order-entry session for one account.

    ``async with ExchangeClient("alice") as ex: await ex.create_order("AGR", "buy", "limit", 5,
    9_990)``. Rejects are returned, not raised: a reject is a normal answer in trading.
    """

    def __init__(
        self,
        account: str | None = None,
        token: str | None = None,
        gateway: str | None = None,
        settings: ClientSettings | None = None,
        context: zmq.asyncio.Context | None = None,
    ) -> None:
        s = settings or ClientSettings()
        self.account = account or s.account
        if not self.account:
            raise ValueError("an account is required (argument or AGORA_ACCOUNT)")
        self.token = token if token is not None else s.token
        self.gateway = gateway or s.gateway
        self.settings = s
        self._ctx = context or zmq.asyncio.Context.instance()
        self._sock: zmq.asyncio.Socket | None = None
        self._reader: asyncio.Task | None = None
        self._watcher: asyncio.Task | None = None
        self._monitor: zmq.asyncio.Socket | None = None
        # Waiters per key, oldest first: two requests may wait on the same key (two cancels
        # of one order), and each answer resolves the oldest waiter still outstanding.
        self._pending: dict[tuple, list[asyncio.Future]] = {}
        self._reports: asyncio.Queue[Any] = asyncio.Queue()
        # Short and random, so ids stay well under the 64-char limit for any legal account.
        self._prefix = os.urandom(4).hex()
        self._n = itertools.count(1)
        self.symbols: list[str] = []
        self.protocol_rejects: list[ProtocolReject] = []
        self.closed = False
        self._gone = False  # the exchange said goodbye
        # When set, every execution report, cancel reject and mass-cancel report goes here
        # instead of the `reports()` queue (the agent runner's path: no queue, no task).
        self.listener: Callable[[Any], None] | None = None
        # Called with a reason when the session is gone (goodbye, or an exchange that no longer
        # knows us after a restart): a host can log on again (`connect`).
        self.on_lost: Callable[[str], None] | None = None
        # Where the account's report sequence stands (ExecutionReport.account_seq): every
        # report up to `account_seq` was delivered; `_ahead` holds those delivered past a gap.
        self.account_seq = 0
        self._ahead: set[int] = set()
        self._synced = False  # `account_seq` was set by a logon
        self._fill_ids: set[int] = set()  # trade ids of the fills delivered
        self._recovering: asyncio.Task | None = None
        self.recovered = 0  # reports delivered by a resend (they had been missed)
        self.duplicates = 0  # reports dropped because they had been delivered already
        self.resend_incomplete = False  # the exchange no longer had some missed reports

    # ------------------------------------------------------------------ session
    async def connect(
        self, timeout: float | None = 10.0, retry: frozenset[str] | None = None
    ) -> ExchangeClient:
        """Log on. A refusal that says "not yet" (the exchange is waiting for its clearing
        house: ``clearing_unavailable``) is retried until `timeout`; ``unknown_account`` and
        ``invalid_token`` for `PROPAGATION_S` (a new account or token on its way to the
        exchange); any other raises at once. `retry` replaces the first set."""
        loop = asyncio.get_running_loop()
        started = loop.time()
        deadline = None if timeout is None else started + timeout
        delay = 0.05
        while True:
            left = None if deadline is None else max(0.0, deadline - loop.time())
            reply = await self._logon_once(left)
            if reply.accepted:
                self.symbols = list(reply.symbols)
                await self._resume(reply.account_seq)
                return self
            retryable = reply.reason in (retry if retry is not None else RETRYABLE_LOGON) or (
                reply.reason in PROPAGATING_LOGON and loop.time() - started < PROPAGATION_S
            )
            if not retryable or (deadline is not None and loop.time() + delay >= deadline):
                raise LogonRefused(reply.reason, reply.text)
            await asyncio.sleep(delay)  # back off, then a fresh session
            delay = min(delay * 2, 1.0)

    async def _logon_once(self, timeout: float | None) -> Any:
        self.closed = False
        self._gone = False
        sock = self._ctx.socket(zmq.DEALER)
        sock.setsockopt(zmq.LINGER, 0)
        # watched from before the first connection, so that its event is never missed
        self._monitor = monitor = sock.get_monitor_socket(
            zmq.EVENT_CONNECTED | zmq.EVENT_DISCONNECTED
        )
        sock.connect(self.gateway)
        self._sock = sock
        self._reader = asyncio.create_task(self._read(), name=f"agora-client-{self.account}")
        self._watcher = asyncio.create_task(
            self._watch(sock, monitor), name=f"agora-conn-{self.account}"
        )
        fut = self._expect(("logon",))
        await sock.send(encode(Logon(account=self.account, token=self.token)))
        try:
            reply = await asyncio.wait_for(fut, timeout)
        except TimeoutError:
            await self.close()
            raise ClientError(f"no logon reply from {self.gateway} within {timeout} s") from None
        except BaseException:
            await self.close()
            raise
        if not reply.accepted:
            await self.close()
            self._reports = asyncio.Queue()
        return reply

    # ------------------------------------------------------------------ missed reports
    async def _resume(self, last: int) -> None:
        """After a logon: the exchange's newest report of the account is number `last`."""
        if not self._synced:  # a new session: the account's past is not ours to replay
            self._synced = True
            self.account_seq = max(self.account_seq, last)
            self._ahead = {s for s in self._ahead if s > self.account_seq}
            return
        if last < self.account_seq:
            # The exchange restarted without the newest reports we had (its journal lost its
            # tail): its numbering continues from `last`; what we had of it stays delivered.
            self.account_seq = last
            self._ahead.clear()
            return
        if last > self.account_seq:
            with contextlib.suppress(ClientError, TimeoutError):
                await self.recover()

    async def recover(self, timeout: float = 10.0) -> int:
        """Ask the exchange for every report of the account after the last one delivered in
        sequence, until none is missing; each is delivered once, the usual way (`listener`
        or `reports()`). Returns how many were delivered. Called after a reconnection and on
        a gap; if the exchange no longer keeps some, `resend_incomplete` is set (reconcile
        with the clearing house's trade history then)."""
        if self._recovering is not None and not self._recovering.done():
            return await asyncio.shield(self._recovering)
        self._recovering = asyncio.ensure_future(self._recover(timeout))
        return await asyncio.shield(self._recovering)

    async def _recover(self, timeout: float) -> int:
        before = self.recovered
        from_seq = self.account_seq + 1
        for _ in range(100_000):  # pages of up to 100 reports
            request_id = self.next_client_order_id()
            fut = self._expect(("resend", request_id))
            try:
                await self._send(encode(ResendRequest(request_id=request_id, from_seq=from_seq)))
                reply = await asyncio.wait_for(fut, timeout)
            finally:
                self._forget(("resend", request_id), fut)
            if not reply.complete:
                # Reports before `first_seq` are gone from the exchange's window.
                self.resend_incomplete = True
                if reply.first_seq - 1 > self.account_seq:
                    self.account_seq = reply.first_seq - 1
                    self._advance()
            if reply.last_seq < self.account_seq:
                self.account_seq = reply.last_seq
                self._ahead = set()
            if reply.next_seq > reply.last_seq or reply.next_seq <= from_seq:
                break
            from_seq = reply.next_seq
        return self.recovered - before

    def _advance(self) -> None:
        ahead, seq = self._ahead, self.account_seq
        while seq + 1 in ahead:
            seq += 1
            ahead.discard(seq)
        self.account_seq = seq
        if ahead and min(ahead) <= seq:
            self._ahead = {s for s in ahead if s > seq}

    def _is_repeat(self, msg: ExecutionReport) -> bool:
        """Was this report delivered already? Tracks the sequence; a gap starts a recovery."""
        seq = msg.account_seq
        if seq:
            if seq <= self.account_seq or seq in self._ahead:
                return True
            recovering = self._recovering is not None and not self._recovering.done()
            if recovering:
                self.recovered += 1
            if seq == self.account_seq + 1:
                self.account_seq = seq
                if self._ahead:
                    self._advance()
            else:
                self._ahead.add(seq)
                if self._synced and not recovering and not self.closed:
                    # a report is missing (a dropped frame): fetch it in the background
                    self._recovering = asyncio.ensure_future(self._recover(10.0))
                    self._recovering.add_done_callback(_swallow)
        if msg.exec_type == "trade" and msg.trade_id is not None:
            if msg.trade_id in self._fill_ids:
                return True
            self._fill_ids.add(msg.trade_id)
        return False

    async def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        for task in (self._reader, self._watcher):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        self._fail_pending(SessionClosed("client closed"))
        self._reports.put_nowait(_END)
        if self._sock is not None:
            with contextlib.suppress(zmq.ZMQError):
                self._sock.disable_monitor()
            self._sock.close()
        if self._monitor is not None:
            self._monitor.close(linger=0)

    async def _watch(self, sock: zmq.asyncio.Socket, monitor: zmq.asyncio.Socket) -> None:
        """Follow the connection under the socket: the exchange binds a session to one TCP
        connection, so after ZeroMQ reconnects by itself the new connection is not logged on.

        A host that handles lost sessions (`on_lost`) is told, and logs on afresh (it also
        resyncs what it missed); otherwise the client logs on again on the same socket.
        Requests waiting when the connection dropped fail: their answers went with it.
        """
        connected = False
        while True:  # (the monitor is closed by `close`)
            event = await recv_monitor_message(monitor)
            if event["event"] == zmq.EVENT_DISCONNECTED:
                # (a logon still waits: it is sent again on the next connection)
                self._fail_pending(
                    SessionClosed("the connection to the exchange dropped"), keep=("logon",)
                )
            elif event["event"] == zmq.EVENT_CONNECTED:
                if connected:
                    if self.on_lost is not None and ("logon",) not in self._pending:
                        self.on_lost("reconnected")
                    else:
                        await sock.send(encode(Logon(account=self.account, token=self.token)))
                connected = True

    async def __aenter__(self) -> ExchangeClient:
        return await self.connect()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def next_client_order_id(self) -> str:
        return f"{self._prefix}-{next(self._n)}"

    # ------------------------------------------------------------------ orders
    def _new_order(
        self, symbol: str, side: str, type: str, amount: int, price: int | None,
        params: dict[str, Any] | None,
    ) -> NewOrder:  # fmt: skip
        p = dict(params or {})
        return NewOrder(
            client_order_id=p.pop("client_order_id", None) or self.next_client_order_id(),
            symbol=symbol, side=side, order_type=type, qty=amount, price=price,
            time_in_force=p.pop("time_in_force", "GTC"), post_only=p.pop("post_only", False),
            stp=p.pop("stp", "cancel_newest"), **p,
        )  # fmt: skip

    async def create_order(
        self,
        symbol: str,
        side: str,
        type: str,
        amount: int,
        price: int | None = None,
        params: dict[str, Any] | None = None,
    ) -> ExecutionReport:
        """Submit an order; returns its acknowledgement (exec_type "new" or "rejected").

        `params`: time_in_force (GTC, DAY, IOC, FOK), post_only, stp, client_order_id.
        """
        msg = self._new_order(symbol, side, type, amount, price, params)
        fut = self._expect(("new", msg.client_order_id))
        await self._send(encode(msg))
        return await fut

    async def create_orders(self, orders: list[dict[str, Any]]) -> list[ExecutionReport]:
        """Several orders in one frame (batched entry); each dict has create_order's arguments."""
        msgs = [
            self._new_order(
                o["symbol"],
                o["side"],
                o.get("type", "limit"),
                o["amount"],
                o.get("price"),
                o.get("params"),
            )
            for o in orders
        ]
        futs = [self._expect(("new", m.client_order_id)) for m in msgs]
        await self._send(encode_batch(msgs))
        return list(await asyncio.gather(*futs))

    async def cancel_order(
        self, id: int | None = None, symbol: str = "", client_order_id: str | None = None
    ) -> ExecutionReport | CancelReject:
        """Cancel by exchange order id or by the client order id the order was entered with.

        Returns the order's "canceled" report, or the CancelReject saying why not.
        """
        request_id = self.next_client_order_id()
        msg = CancelOrder(
            client_order_id=request_id, symbol=symbol, order_id=id,
            orig_client_order_id=client_order_id,
        )  # fmt: skip
        return await self._target_request(msg, request_id, "canceled", id, client_order_id)

    async def edit_order(
        self,
        id: int | None = None,
        symbol: str = "",
        amount: int | None = None,
        price: int | None = None,
        client_order_id: str | None = None,
    ) -> ExecutionReport | CancelReject:
        """Replace (amend): `amount` is the new total quantity, `price` None keeps the price."""
        if amount is None:
            raise ValueError("amount (the new total quantity) is required")
        request_id = self.next_client_order_id()
        msg = ReplaceOrder(
            client_order_id=request_id, symbol=symbol, order_id=id,
            orig_client_order_id=client_order_id, qty=amount, price=price,
        )  # fmt: skip
        return await self._target_request(msg, request_id, "replaced", id, client_order_id)

    replace_order = edit_order

    async def _target_request(
        self, msg: Any, request_id: str, exec_type: str, oid: int | None, clid: str | None
    ) -> Any:
        key = (exec_type, "oid", oid) if oid is not None else (exec_type, "clid", clid)
        fut = self._expect(("reject", request_id))
        self._pending.setdefault(key, []).append(fut)
        try:
            await self._send(encode(msg))
            return await fut
        finally:
            self._forget(key, fut)
            self._forget(("reject", request_id), fut)

    async def cancel_all(self, symbol: str | None = None) -> MassCancelReport | CancelReject:
        """The kill switch: cancel every open order of the account (in `symbol`, or all)."""
        request_id = self.next_client_order_id()
        fut = self._expect(("mass", request_id))
        self._pending.setdefault(("reject", request_id), []).append(fut)
        try:
            await self._send(encode(MassCancel(client_order_id=request_id, symbol=symbol)))
            return await fut
        finally:
            self._forget(("mass", request_id), fut)
            self._forget(("reject", request_id), fut)

    async def fetch_open_orders(self, symbol: str | None = None) -> list[OrderInfo]:
        request_id = self.next_client_order_id()
        """Open orders (in `symbol`, or all); raises RequestRejected if refused (rate_limited)."""
        request_id = self.next_client_order_id()
        fut = self._expect(("open", request_id))
        try:
            await self._send(encode(OpenOrdersRequest(request_id=request_id, symbol=symbol)))
            return list((await fut).orders)
        finally:
            self._forget(("open", request_id), fut)

    async def fetch_order_book(
        self, symbol: str, limit: int | None = None, timeout: float | None = 10.0
    ) -> BookSnapshot:
        """A one-off L2 snapshot from the snapshot service."""
        async with MarketDataClient(settings=self.settings, context=self._ctx) as md:
            return await md.fetch_order_book(symbol, limit, timeout=timeout)

    # ------------------------------------------------------------------ own reports
    async def reports(self) -> AsyncIterator[ExecutionReport]:
        """Every execution report of this session's account, as it arrives.

        Ends after the exchange says goodbye or the client is closed.
        """
        while True:
            item = await self._reports.get()
            if item is _END:
                self._reports.put_nowait(_END)  # so that every other reader ends too
                return
            yield item

    watch_orders = reports

    # ------------------------------------------------------------------ plumbing
    def _expect(self, key: tuple) -> asyncio.Future:
        fut = asyncio.get_running_loop().create_future()
        self._pending.setdefault(key, []).append(fut)
        return fut

    def _forget(self, key: tuple, fut: asyncio.Future) -> None:
        waiters = self._pending.get(key)
        if waiters is None:
            return
        with contextlib.suppress(ValueError):
            waiters.remove(fut)
        if not waiters:
            del self._pending[key]

    def send_nowait(self, msg: Any) -> None:
        """Send a request without waiting for its answer (answers go to `listener`/`reports`).

        For hosts that fire many orders from synchronous code (the agent runner).
        """
        if self._sock is None or self.closed:
            raise SessionClosed("not connected")
        if self._gone:
            raise SessionClosed("the exchange said goodbye")
        fut = self._sock.send(encode(msg))
        if isinstance(fut, asyncio.Future):
            fut.add_done_callback(_swallow)

    async def _send(self, payload: bytes) -> None:
        if self._sock is None or self.closed:
            raise SessionClosed("not connected")
        if self._gone:
            raise SessionClosed("the exchange said goodbye")
        await self._sock.send(payload)

    def _settle(self, key: tuple, msg: Any = None, exc: Exception | None = None) -> bool:
        """Resolve (or fail) the oldest waiter on `key` that is still outstanding."""
        waiters = self._pending.get(key)
        while waiters:
            fut = waiters.pop(0)
            if fut.done():
                continue
            if exc is not None:
                fut.set_exception(exc)
            else:
                fut.set_result(msg)
            if not waiters:
                del self._pending[key]
            return True
        self._pending.pop(key, None)
        return False

    def _resolve(self, key: tuple, msg: Any) -> bool:
        return self._settle(key, msg)

    async def _read(self) -> None:
        assert self._sock is not None
        while True:
            frame = await self._sock.recv()
            try:
                msgs = decode_batch(frame)
            except ProtocolError:
                continue  # not from a well-behaved exchange; nothing to correlate it with
            for msg in msgs:
                self._dispatch(msg)

    def _dispatch(self, msg: Any) -> None:
        kind = msg.type
        if kind == "execution_report":
            if self._is_repeat(msg):
                self.duplicates += 1
                return
            if self.listener is not None:
                self.listener(msg)
            else:
                self._reports.put_nowait(msg)
            et = msg.exec_type
            if et == "new" or et == "rejected":
                self._resolve(("new", msg.client_order_id), msg)
            elif (et == "canceled" or et == "replaced") and not self._resolve(
                (et, "oid", msg.order_id), msg
            ):
                self._resolve((et, "clid", msg.client_order_id), msg)
        elif kind == "cancel_reject":
            if self.listener is not None:
                self.listener(msg)
            self._resolve(("reject", msg.client_order_id), msg)
        elif kind == "mass_cancel_report":
            if self.listener is not None:
                self.listener(msg)
            self._resolve(("mass", msg.client_order_id), msg)
        elif kind == "open_orders":
            self._resolve(("open", msg.request_id), msg)
        elif kind == "resend_reply":
            self._resolve(("resend", msg.request_id), msg)
        elif kind == "logon_reply":
            # (unasked: the answer to a log-on again after a reconnect)
            if not self._resolve(("logon",), msg) and msg.accepted:
                self._gone = False  # logged on again after a reconnect
            elif not msg.accepted:
                self._fail_pending(SessionClosed(f"logon refused: {msg.reason}"))
                if self.on_lost is not None:
                    self.on_lost("logon_refused")
        elif kind == "protocol_reject":
            self.protocol_rejects.append(msg)
            if msg.reason == "not_logged_on":
                self._fail_pending(SessionClosed("the exchange has no session for us"))
                if self.on_lost is not None:
                    self.on_lost("not_logged_on")
            elif msg.ref_type == "resend_request":
                exc = RequestRejected(msg.reason, msg.text, msg.ref_type)
                for key in list(self._pending):
                    if key[0] == "resend" and self._settle(key, exc=exc):
                        break
            elif msg.ref_type == "open_orders_request" or (
                msg.reason == "rate_limited" and msg.ref_type is None
            ):
                # Only open-orders requests are refused this way; they are answered in order.
                exc = RequestRejected(msg.reason, msg.text, msg.ref_type)
                for key in list(self._pending):
                    if key[0] == "open" and self._settle(key, exc=exc):
                        break
        elif kind == "goodbye":
            self._gone = True
            self._fail_pending(SessionClosed(f"exchange said goodbye: {msg.reason}"))
            self._reports.put_nowait(_END)
            if self.on_lost is not None:
                self.on_lost("goodbye")

    def _fail_pending(self, exc: Exception, keep: tuple | None = None) -> None:
        for key, waiters in list(self._pending.items()):
            if key == keep:
                continue
            for fut in waiters:
                if not fut.done():
                    fut.set_exception(exc)
            del self._pending[key]


# ---------------------------------------------------------------------------------- market data


class LocalBook:
    """An L2 book rebuilt from a snapshot and sequenced deltas (pure: no sockets).

    `apply` returns False on a sequence gap: the caller must fetch a new snapshot. Deltas at or
    below the book's sequence number are stale (already in the snapshot) and ignored.
    """

    def __init__(self, symbol: str) -> None:
        self.symbol = symbol
        self.bids: dict[int, tuple[int, int]] = {}  # price -> (qty, count)
        self.asks: dict[int, tuple[int, int]] = {}
        self.seq = -1  # -1: no snapshot yet
        self.synced = False

    def apply_snapshot(self, snap: BookSnapshot) -> None:
        self.bids = {p: (q, c) for p, q, c in snap.bids}
        self.asks = {p: (q, c) for p, q, c in snap.asks}
        self.seq = snap.seq
        self.synced = True

    def apply(self, delta: BookDelta) -> bool:
        if not self.synced:
            return False
        if delta.seq <= self.seq:
            return True  # stale: the snapshot already holds it
        if delta.seq != self.seq + 1:
            self.synced = False
            return False
        side = self.bids if delta.side == "buy" else self.asks
        if delta.qty == 0:
            side.pop(delta.price, None)
        else:
            side[delta.price] = (delta.qty, delta.count)
        self.seq = delta.seq
        return True

    @property
    def best_bid(self) -> int | None:
        return max(self.bids) if self.bids else None

    @property
    def best_ask(self) -> int | None:
        return min(self.asks) if self.asks else None

    def levels(self, n: int | None = None) -> tuple[list[tuple], list[tuple]]:
        """(bids, asks) as (price, qty, count), best first."""
        bids = sorted(self.bids.items(), reverse=True)[:n]
        asks = sorted(self.asks.items())[:n]
        return [(p, q, c) for p, (q, c) in bids], [(p, q, c) for p, (q, c) in asks]


class MarketDataClient:
    """Feed subscriber plus snapshot requests. One instance can watch several symbols."""

    def __init__(
        self,
        feed: str | None = None,
        snapshot: str | None = None,
        settings: ClientSettings | None = None,
        context: zmq.asyncio.Context | None = None,
        rcvhwm: int = 100_000,
        rcvbuf: int = 0,
    ) -> None:
        s = settings or ClientSettings()
        self.feed = feed or s.feed
        self.snapshot = snapshot or s.snapshot
        self._ctx = context or zmq.asyncio.Context.instance()
        self._rcvhwm = rcvhwm
        self._rcvbuf = rcvbuf  # kernel receive buffer; 0 = the OS default
        self._snap: zmq.asyncio.Socket | None = None
        self._snap_lock = asyncio.Lock()
        self._subs: list[zmq.asyncio.Socket] = []
        self.resyncs = 0  # book resynchronisations after a gap
        self.gaps = 0  # messages known lost on trade/ticker streams
        self.filled = 0  # lost trades recovered from the trade tape

    async def __aenter__(self) -> MarketDataClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        for sock in self._subs:
            sock.close()
        self._subs.clear()
        if self._snap is not None:
            self._snap.close()
            self._snap = None

    def _reset_snapshot_socket(self) -> None:
        # An abandoned request may still be answered: a fresh socket never sees that reply.
        if self._snap is not None:
            self._snap.close()
            self._snap = None

    async def fetch_order_book(
        self, symbol: str, limit: int | None = None, timeout: float | None = 10.0
    ) -> BookSnapshot:
        """An L2 snapshot; raises ClientError if no valid reply comes within `timeout` s."""
        reply = await self._ask(SnapshotRequest(symbol=symbol, depth=limit), timeout, "snapshot")
        if not isinstance(reply, BookSnapshot):
            raise ClientError(f"unexpected snapshot reply: {reply!r:.200}")
        return reply

    async def fetch_trades(
        self, symbol: str, from_seq: int, to_seq: int | None = None,
        timeout: float | None = 10.0,
    ) -> list[Trade]:  # fmt: skip
        """Public prints of `symbol` from trades-stream seq `from_seq` to `to_seq` (default: the
        newest), from the snapshot service's trade tape (open to anyone). Prints the exchange
        no longer keeps are missing from the result (compare the seqs)."""
        out: list[Trade] = []
        while to_seq is None or from_seq <= to_seq:
            reply = await self._ask(TapeRequest(symbol=symbol, from_seq=from_seq), timeout, "tape")
            if not isinstance(reply, TapeReplay):
                raise ClientError(f"unexpected tape reply: {reply!r:.200}")
            page = [t for t in reply.trades if to_seq is None or t.seq <= to_seq]
            out.extend(page)
            if not reply.trades or reply.trades[-1].seq >= reply.last_seq:
                break
            from_seq = reply.trades[-1].seq + 1
        return out

    async def _ask(self, msg: Any, timeout: float | None, what: str) -> Any:
        """One request to the snapshot service, one reply (a ProtocolReject raises)."""
        async with self._snap_lock:
            if self._snap is None:
                self._snap = self._ctx.socket(zmq.DEALER)
                self._snap.setsockopt(zmq.LINGER, 0)
                self._snap.connect(self.snapshot)
            done = False
            try:
                await self._snap.send(encode(msg))
                frame = await asyncio.wait_for(self._snap.recv(), timeout)
                replies = decode_batch(frame)
                done = True
            except TimeoutError:
                raise ClientError(f"no {what} reply within {timeout} s") from None
            except ProtocolError as exc:
                raise ClientError(f"malformed {what} reply: {exc}") from None
            finally:
                if not done:
                    self._reset_snapshot_socket()
        reply = replies[0] if len(replies) == 1 else None
        if isinstance(reply, ProtocolReject):
            raise ClientError(f"{what} refused: {reply.reason} {reply.text}")
        if reply is None:
            raise ClientError(f"unexpected {what} reply: {replies!r:.200}")
        return reply

    def _subscribe(self, topic: str) -> zmq.asyncio.Socket:
        sock = self._ctx.socket(zmq.SUB)
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.RCVHWM, self._rcvhwm)
        if self._rcvbuf:
            sock.setsockopt(zmq.RCVBUF, self._rcvbuf)
        sock.setsockopt_string(zmq.SUBSCRIBE, topic)
        sock.setsockopt_string(zmq.SUBSCRIBE, GOODBYE_TOPIC)  # so that the watch can end
        sock.connect(self.feed)
        self._subs.append(sock)
        return sock

    @staticmethod
    async def _recv(sock: zmq.asyncio.Socket) -> list[Any] | None:
        """The messages of the next well-formed frame; None once the exchange says goodbye."""
        while True:
            parts = await sock.recv_multipart()
            if len(parts) != 2:
                continue  # malformed: skip
            try:
                msgs = decode_batch(parts[1])
            except ProtocolError:
                continue  # malformed: skip
            if parts[0] == GOODBYE_TOPIC.encode() or any(m.type == "goodbye" for m in msgs):
                return None
            return msgs

    def _unsubscribe(self, sock: zmq.asyncio.Socket) -> None:
        if sock in self._subs:
            self._subs.remove(sock)
        sock.close()

    async def watch_order_book(self, symbol: str) -> AsyncIterator[LocalBook]:
        """Yield the local book after every change, kept in sync by snapshot + deltas."""
        sock = self._subscribe(f"{symbol}|book")
        book = LocalBook(symbol)
        try:
            book.apply_snapshot(await self.fetch_order_book(symbol))
            yield book
            while (msgs := await self._recv(sock)) is not None:
                changed = False
                for delta in msgs:
                    if delta.type not in ("book_delta", "heartbeat"):
                        continue
                    if delta.type == "heartbeat":
                        # The stream's last seq: behind it means we lost its tail.
                        if delta.seq <= book.seq:
                            continue
                        book.synced = False
                    if not book.apply(delta):
                        # A gap: messages were lost (slow consumer, HWM). Take a fresh
                        # snapshot; deltas still queued at or below its seq are skipped.
                        self.resyncs += 1
                        book.apply_snapshot(await self.fetch_order_book(symbol))
                    changed = True
                if changed:
                    yield book
        finally:
            self._unsubscribe(sock)

    async def _watch(self, topic: str, tape: str | None = None) -> AsyncIterator[Any]:
        """Messages of one stream in seq order. With `tape` (a symbol), lost trades are fetched
        from the trade tape and delivered in their place; what cannot be is counted in `gaps`."""
        sock = self._subscribe(topic)
        last: int | None = None
        try:
            while (msgs := await self._recv(sock)) is not None:
                for msg in msgs:
                    seq = getattr(msg, "seq", None)
                    if not isinstance(seq, int):
                        continue
                    heartbeat = msg.type == "heartbeat"  # the stream's last seq: a lost tail
                    if last is not None and seq > last + (0 if heartbeat else 1):
                        upto = seq if heartbeat else seq - 1
                        found = await self._fill(tape, last + 1, upto) if tape else []
                        self.filled += len(found)
                        self.gaps += upto - last - len(found)
                        last = upto
                        for missed in found:
                            yield missed
                    if heartbeat:
                        last = seq if last is None else max(last, seq)
                        continue
                    if last is not None and seq <= last:
                        continue  # already delivered (from the tape)
                    last = seq
                    yield msg
        finally:
            self._unsubscribe(sock)

    async def _fill(self, symbol: str, first: int, upto: int) -> list[Trade]:
        try:
            trades = await self.fetch_trades(symbol, first, upto)
        except ClientError:
            return []
        out, want = [], first
        for t in trades:  # contiguous from `first` only: anything else is not a fill
            if t.seq != want:
                break
            out.append(t)
            want += 1
        return out

    async def watch_trades(self, symbol: str, replay: bool = True) -> AsyncIterator[Trade]:
        """Every public trade of `symbol`, in order. Prints lost on the way (a slow consumer,
        an exchange restart) are fetched from the exchange's trade tape (`replay`); those it no
        longer keeps are counted in `gaps`, those recovered in `filled`."""
        async for msg in self._watch(f"{symbol}|trades", symbol if replay else None):
            yield msg

    async def watch_ticker(self, symbol: str) -> AsyncIterator[TopOfBook]:
        """Top of book of `symbol` whenever it changes."""
        async for msg in self._watch(f"{symbol}|tob"):
            yield msg


Feed = MarketDataClient
