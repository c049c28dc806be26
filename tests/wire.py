"""A deliberately plain, synchronous wire client for integration tests.

It speaks the protocol with nothing but pyzmq and the codec, so the process tests do not depend
on the SDK they will also be used to check. Every wait has a generous timeout that only turns a
hang into a failure; nothing here sleeps to let something happen.
"""

from __future__ import annotations

from typing import Any

import msgpack
import zmq

from exchange.protocol import (
    BookSnapshot,
    Logon,
    SnapshotRequest,
    TradeReplayRequest,
    decode,
    decode_batch,
    encode,
)

TIMEOUT_MS = 20_000


class WireClient:
    """One order-entry connection (DEALER)."""

    def __init__(self, ctx: zmq.Context, endpoint: str, account: str | None = None) -> None:
        self.sock = ctx.socket(zmq.DEALER)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.connect(endpoint)
        self.inbox: list[Any] = []
        if account is not None:
            self.send(Logon(account=account))
            reply = self.wait(lambda m: m.type == "logon_reply")
            assert reply.accepted, reply

    def send(self, msg: Any) -> None:
        self.sock.send(encode(msg))

    def send_raw(self, payload: bytes) -> None:
        self.sock.send(payload)

    def send_batch(self, msgs: list[Any]) -> None:
        self.sock.send(msgpack.packb([m.model_dump() for m in msgs]))

    def recv_frame(self, timeout_ms: int = TIMEOUT_MS) -> list[Any]:
        if not self.sock.poll(timeout_ms, zmq.POLLIN):
            raise TimeoutError("no reply from the exchange")
        msgs = decode_batch(self.sock.recv())
        self.inbox.extend(msgs)
        return msgs

    def wait(self, pred: Any, timeout_ms: int = TIMEOUT_MS) -> Any:
        """The first message (already received or arriving) matching `pred`; consumes it."""
        while True:
            for i, m in enumerate(self.inbox):
                if pred(m):
                    return self.inbox.pop(i)
            self.recv_frame(timeout_ms)

    def wait_for_order(self, clid: str, exec_type: str) -> Any:
        return self.wait(
            lambda m: (
                m.type == "execution_report"
                and m.client_order_id == clid
                and m.exec_type == exec_type
            )
        )

    def close(self) -> None:
        self.sock.close()


class SnapshotClient:
    def __init__(self, ctx: zmq.Context, endpoint: str) -> None:
        self.sock = ctx.socket(zmq.DEALER)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.connect(endpoint)

    def request(self, msg: Any) -> Any:
        self.sock.send(encode(msg))
        if not self.sock.poll(TIMEOUT_MS, zmq.POLLIN):
            raise TimeoutError("no reply from the snapshot service")
        (reply,) = decode_batch(self.sock.recv())
        return reply

    def snapshot(self, symbol: str) -> BookSnapshot:
        return self.request(SnapshotRequest(symbol=symbol))

    def all_trades(self) -> list[Any]:
        trades: list[Any] = []
        nxt = 1
        while True:
            page = self.request(TradeReplayRequest(from_trade_id=nxt, max_count=500))
            trades.extend(page.trades)
            if not page.trades or page.trades[-1].trade_id >= page.end_trade_id:
                return trades
            nxt = page.trades[-1].trade_id + 1

    def close(self) -> None:
        self.sock.close()


class FeedSubscriber:
    """Subscribes to topics; `poll_until(pred)` reads frames until pred(self) holds."""

    def __init__(self, ctx: zmq.Context, endpoint: str, topics: list[str], hwm: int = 0) -> None:
        self.sock = ctx.socket(zmq.SUB)
        self.sock.setsockopt(zmq.LINGER, 0)
        if hwm:
            self.sock.setsockopt(zmq.RCVHWM, hwm)
        for t in topics:
            self.sock.setsockopt_string(zmq.SUBSCRIBE, t)
        self.sock.connect(endpoint)
        self.messages: list[tuple[str, Any]] = []

    def read(self, timeout_ms: int = TIMEOUT_MS) -> bool:
        if not self.sock.poll(timeout_ms, zmq.POLLIN):
            return False
        topic, payload = self.sock.recv_multipart()
        for m in decode_batch(payload):
            self.messages.append((topic.decode(), m))
        return True

    def poll_until(self, pred: Any, timeout_ms: int = TIMEOUT_MS) -> None:
        while not pred(self):
            if not self.read(timeout_ms):
                raise TimeoutError("the feed went quiet before the condition held")

    def close(self) -> None:
        self.sock.close()


def apply_deltas(snapshot: BookSnapshot, deltas: list[Any]) -> dict[str, dict[int, tuple]]:
    """A book (side -> price -> (qty, count)) from a snapshot and the deltas after it."""
    book: dict[str, dict[int, tuple]] = {
        "buy": {p: (q, c) for p, q, c in snapshot.bids},
        "sell": {p: (q, c) for p, q, c in snapshot.asks},
    }
    expected = snapshot.seq + 1
    for d in deltas:
        if d.seq <= snapshot.seq:
            continue
        assert d.seq == expected, f"gap: expected {expected}, got {d.seq}"
        expected += 1
        if d.qty == 0:
            book[d.side].pop(d.price, None)
        else:
            book[d.side][d.price] = (d.qty, d.count)
    return book


def book_of(snapshot: BookSnapshot) -> dict[str, dict[int, tuple]]:
    return apply_deltas(snapshot, [])


__all__ = ["FeedSubscriber", "SnapshotClient", "WireClient", "apply_deltas", "book_of", "decode"]
