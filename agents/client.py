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
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
from collections.abc import AsyncIterator
from typing import Any

import zmq
import zmq.asyncio

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
    SnapshotRequest,
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
    "SessionClosed",
]


class ClientError(RuntimeError):
    """Base of the SDK's errors."""


class LogonRefused(ClientError):
    def __init__(self, reason: str | None, text: str = "") -> None:
        super().__init__(f"logon refused: {reason} {text}".strip())
        self.reason = reason


class SessionClosed(ClientError):
    """The exchange said goodbye or the client was closed while a request was outstanding."""


_ids = itertools.count(1)


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
        self._pending: dict[tuple, asyncio.Future] = {}
        self._reports: asyncio.Queue[ExecutionReport] = asyncio.Queue()
        self._prefix = f"{self.account}-{os.getpid()}-{next(_ids)}"
        self._n = itertools.count(1)
        self.symbols: list[str] = []
        self.protocol_rejects: list[ProtocolReject] = []
        self.closed = False

    # ------------------------------------------------------------------ session
    async def connect(self) -> ExchangeClient:
        sock = self._ctx.socket(zmq.DEALER)
        sock.setsockopt(zmq.LINGER, 0)
        sock.connect(self.gateway)
        self._sock = sock
        self._reader = asyncio.create_task(self._read(), name=f"agora-client-{self.account}")
        fut = self._expect(("logon",))
        await sock.send(encode(Logon(account=self.account, token=self.token)))
        reply = await fut
        if not reply.accepted:
            await self.close()
            raise LogonRefused(reply.reason, reply.text)
        self.symbols = list(reply.symbols)
        return self

    async def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._reader
        self._fail_pending(SessionClosed("client closed"))
        if self._sock is not None:
            self._sock.close()

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
        fut = self._expect(("reject", request_id))
        key = (exec_type, "oid", oid) if oid is not None else (exec_type, "clid", clid)
        self._pending[key] = fut
        try:
            await self._send(encode(msg))
            return await fut
        finally:
            self._pending.pop(key, None)
            self._pending.pop(("reject", request_id), None)

    async def cancel_all(self, symbol: str | None = None) -> MassCancelReport | CancelReject:
        """The kill switch: cancel every open order of the account (in `symbol`, or all)."""
        request_id = self.next_client_order_id()
        fut = self._expect(("mass", request_id))
        self._pending[("reject", request_id)] = fut
        try:
            await self._send(encode(MassCancel(client_order_id=request_id, symbol=symbol)))
            return await fut
        finally:
            self._pending.pop(("reject", request_id), None)

    async def fetch_open_orders(self, symbol: str | None = None) -> list[OrderInfo]:
        request_id = self.next_client_order_id()
        fut = self._expect(("open", request_id))
        await self._send(encode(OpenOrdersRequest(request_id=request_id, symbol=symbol)))
        return list((await fut).orders)

    async def fetch_order_book(self, symbol: str, limit: int | None = None) -> BookSnapshot:
        """A one-off L2 snapshot from the snapshot service."""
        async with MarketDataClient(settings=self.settings, context=self._ctx) as md:
            return await md.fetch_order_book(symbol, limit)

    # ------------------------------------------------------------------ own reports
    async def reports(self) -> AsyncIterator[ExecutionReport]:
        """Every execution report of this session's account, as it arrives."""
        while not self.closed:
            yield await self._reports.get()

    watch_orders = reports

    # ------------------------------------------------------------------ plumbing
    def _expect(self, key: tuple) -> asyncio.Future:
        fut = asyncio.get_running_loop().create_future()
        self._pending[key] = fut
        return fut

    async def _send(self, payload: bytes) -> None:
        if self._sock is None or self.closed:
            raise SessionClosed("not connected")
        await self._sock.send(payload)

    def _resolve(self, key: tuple, msg: Any) -> bool:
        fut = self._pending.pop(key, None)
        if fut is not None and not fut.done():
            fut.set_result(msg)
            return True
        return False

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
            self._reports.put_nowait(msg)
            et = msg.exec_type
            if et == "new" or et == "rejected":
                self._resolve(("new", msg.client_order_id), msg)
            elif (et == "canceled" or et == "replaced") and not self._resolve(
                (et, "oid", msg.order_id), msg
            ):
                self._resolve((et, "clid", msg.client_order_id), msg)
        elif kind == "cancel_reject":
            self._resolve(("reject", msg.client_order_id), msg)
        elif kind == "mass_cancel_report":
            self._resolve(("mass", msg.client_order_id), msg)
        elif kind == "open_orders":
            self._resolve(("open", msg.request_id), msg)
        elif kind == "logon_reply":
            self._resolve(("logon",), msg)
        elif kind == "protocol_reject":
            self.protocol_rejects.append(msg)
            if msg.reason == "not_logged_on":
                self._fail_pending(SessionClosed("the exchange has no session for us"))
        elif kind == "goodbye":
            self._fail_pending(SessionClosed(f"exchange said goodbye: {msg.reason}"))

    def _fail_pending(self, exc: Exception) -> None:
        for fut in self._pending.values():
            if not fut.done():
                fut.set_exception(exc)
        self._pending.clear()


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

    async def fetch_order_book(self, symbol: str, limit: int | None = None) -> BookSnapshot:
        async with self._snap_lock:
            if self._snap is None:
                self._snap = self._ctx.socket(zmq.DEALER)
                self._snap.setsockopt(zmq.LINGER, 0)
                self._snap.connect(self.snapshot)
            await self._snap.send(encode(SnapshotRequest(symbol=symbol, depth=limit)))
            (reply,) = decode_batch(await self._snap.recv())
        if isinstance(reply, ProtocolReject):
            raise ClientError(f"snapshot refused: {reply.reason} {reply.text}")
        return reply

    def _subscribe(self, topic: str) -> zmq.asyncio.Socket:
        sock = self._ctx.socket(zmq.SUB)
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.RCVHWM, self._rcvhwm)
        if self._rcvbuf:
            sock.setsockopt(zmq.RCVBUF, self._rcvbuf)
        sock.setsockopt_string(zmq.SUBSCRIBE, topic)
        sock.connect(self.feed)
        self._subs.append(sock)
        return sock

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
            while True:
                _topic, payload = await sock.recv_multipart()
                changed = False
                for delta in decode_batch(payload):
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

    async def _watch(self, topic: str) -> AsyncIterator[Any]:
        sock = self._subscribe(topic)
        last: int | None = None
        try:
            while True:
                _topic, payload = await sock.recv_multipart()
                for msg in decode_batch(payload):
                    if last is not None and msg.seq > last + 1:
                        self.gaps += msg.seq - last - 1
                    if msg.type == "heartbeat":  # the stream's last seq, to reveal a lost tail
                        last = msg.seq if last is None else max(last, msg.seq)
                        continue
                    last = msg.seq
                    yield msg
        finally:
            self._unsubscribe(sock)

    async def watch_trades(self, symbol: str) -> AsyncIterator[Trade]:
        """Every public trade of `symbol` (lost ones are counted in `gaps`)."""
        async for msg in self._watch(f"{symbol}|trades"):
            yield msg

    async def watch_ticker(self, symbol: str) -> AsyncIterator[TopOfBook]:
        """Top of book of `symbol` whenever it changes."""
        async for msg in self._watch(f"{symbol}|tob"):
            yield msg


Feed = MarketDataClient
