"""Snapshots of the exchange's state, so that a restart replays only the journal's tail.

The journal stays the record of truth; a snapshot is "the state after the first N records":
every book with its open orders in priority order, phases, auction queues and breaker windows,
the id counters and client order id claims, what the reports need about open orders, every
stream's sequence number and last top of book, and where in the journal it was taken. Restoring
it and replaying the records after it gives the same state as replaying everything (a property
test checks that, down to the events the next commands produce).

File: ``b"AGORASN1" | u64 length | u32 crc32 | msgpack body``, written to a temporary file,
fsynced, renamed over the previous snapshot and the directory fsynced: a crash at any step
leaves the old snapshot or the new one, never a half. A snapshot that is missing, unreadable,
for other symbols or for another journal is ignored with a log line and the whole journal is
replayed.

Client order id claims are stored as hashes (`exchange.claims`), which is what keeps a
restarted exchange's memory bounded.
"""

from __future__ import annotations

import os
import struct
import zlib
from collections import deque
from pathlib import Path
from typing import Any

import msgpack

from exchange.book import Order
from exchange.claims import OldClaims, RestoredClaims, pack_claims
from exchange.engine import Engine
from exchange.feed import FeedState
from exchange.journal import Position
from exchange.reports import Reporter, _OrderState

__all__ = ["SnapshotError", "capture", "load", "restore", "write"]

MAGIC = b"AGORASN1"
_HEAD = struct.Struct("<8sQI")
FORMAT = 1


class SnapshotError(ValueError):
    """A snapshot file that cannot be used (the caller replays the whole journal)."""


# ---------------------------------------------------------------------------- capture
def _order_row(o: Order) -> list[Any]:
    return [o.order_id, o.client_order_id, o.account, o.symbol, o.side, o.order_type, o.price,
            o.qty, o.leaves, o.tif, o.post_only, o.stp, o.ts]  # fmt: skip


def capture_engine(engine: Engine) -> dict[str, Any]:
    markets = []
    for m in engine._markets.values():
        book = m.book
        sides = []
        for side in (book.bids, book.asks):
            sides.append([
                [price, lv.qty, lv.count, [o.order_id for o in lv.orders if o.leaves]]
                for price, lv in side.levels.items()
            ])  # fmt: skip
        br = m.breaker
        breaker = None
        if br is not None:
            breaker = [br._anchor, br.last, list(br._all), list(br._min), list(br._max),
                       br.expires, br.low, br.high]  # fmt: skip
        markets.append({
            "symbol": m.symbol, "spec": m.spec.model_dump(mode="json"), "phase": m.phase,
            "wakeup": m.wakeup, "halt_until": m.halt_until, "reference": m.reference,
            "seq": book.seq, "last_price": book.last_price, "last_qty": book.last_qty,
            "sides": sides, "breaker": breaker,
            "market_orders": [[o.order_id for o in m.market_orders[s] if o.leaves]
                              for s in ("buy", "sell")],
        })  # fmt: skip
    claims = []
    for account, table in engine._clids.items():
        hashes, oids = pack_claims(table)
        claims.append([account, hashes, oids])
    return {
        "markets": markets,
        "orders": [_order_row(o) for o in engine._orders.values()],
        "next_order_id": engine._next_order_id,
        "trade_id": engine._trade_id,
        "claims": claims,
    }


def capture_reporter(reporter: Reporter) -> list[list[Any]]:
    return [[s.order_id, s.client_order_id, s.account, s.symbol, s.side, s.order_type, s.price,
             s.qty, s.cum, s.notional] for s in reporter._orders.values()]  # fmt: skip


def capture_feed(feed: FeedState) -> dict[str, Any]:
    return {"seqs": dict(feed.seqs), "tob": {k: list(v) for k, v in feed._tob.items()}}


def capture(
    engine: Engine, reporter: Reporter, feed: FeedState, position: Position,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:  # fmt: skip
    """Everything a restart needs, as plain msgpack-able values."""
    return {
        "format": FORMAT,
        "journal": position.as_dict(),
        "engine": capture_engine(engine),
        "reporter": capture_reporter(reporter),
        "feed": capture_feed(feed),
        "extra": extra or {},
    }


# ---------------------------------------------------------------------------- restore
def restore_engine(engine: Engine, state: dict[str, Any]) -> None:
    """Put `state` into a freshly built engine listing the same symbols."""
    orders: dict[int, Order] = {}
    for row in state["orders"]:
        (oid, clid, account, symbol, side, otype, price, qty, leaves, tif, post_only, stp,
         ts) = row  # fmt: skip
        o = Order(oid, clid, account, symbol, side, otype, price, qty, tif, post_only, stp, ts)
        o.leaves = leaves
        orders[oid] = o
    engine._orders = orders
    for ms in state["markets"]:
        m = engine._markets[ms["symbol"]]
        m.phase, m.wakeup, m.halt_until = ms["phase"], ms["wakeup"], ms["halt_until"]
        m.reference = ms["reference"]
        m.set_band(m.reference)
        book = m.book
        book.seq, book.last_price, book.last_qty = ms["seq"], ms["last_price"], ms["last_qty"]
        for side, levels in zip((book.bids, book.asks), ms["sides"], strict=True):
            side.levels.clear()
            for price, qty, count, ids in levels:
                lv = side.level(price)
                lv.qty, lv.count = qty, count
                lv.orders.extend(orders[i] for i in ids)
            side.rebuild_heap()
        for name, ids in zip(("buy", "sell"), ms["market_orders"], strict=True):
            m.market_orders[name] = deque(orders[i] for i in ids)
        if ms["breaker"] is not None and m.breaker is not None:
            br = m.breaker
            anchor, last, all_, lo, hi, expires, low, high = ms["breaker"]
            br._anchor, br.last = anchor, last
            br._all = deque(tuple(e) for e in all_)
            br._min = deque(tuple(e) for e in lo)
            br._max = deque(tuple(e) for e in hi)
            br.expires, br.low, br.high = expires, low, high
    engine._next_order_id = state["next_order_id"]
    engine._trade_id = state["trade_id"]
    engine._clids = {
        account: RestoredClaims(OldClaims(hashes, oids))
        for account, hashes, oids in state["claims"]
    }


def restore_reporter(reporter: Reporter, rows: list[list[Any]]) -> None:
    table = reporter._orders
    table.clear()
    for oid, clid, account, symbol, side, otype, price, qty, cum, notional in rows:
        s = _OrderState(oid, clid, account, symbol, side, otype, price, qty)
        s.cum, s.notional = cum, notional
        table[oid] = s


def restore_feed(feed: FeedState, state: dict[str, Any]) -> None:
    feed.seqs = dict(state["seqs"])
    feed._tob = {k: tuple(v) for k, v in state["tob"].items()}


def check_symbols(state: dict[str, Any], engine: Engine) -> str | None:
    """None if the snapshot lists the engine's symbols with the same specs, else why not."""
    theirs = {m["symbol"]: m["spec"] for m in state["engine"]["markets"]}
    ours = {m.symbol: m.spec.model_dump(mode="json") for m in engine._markets.values()}
    if theirs != ours:
        return "the snapshot was taken with other symbols or symbol settings"
    return None


def restore(engine: Engine, reporter: Reporter, feed: FeedState, state: dict[str, Any]) -> None:
    restore_engine(engine, state["engine"])
    restore_reporter(reporter, state["reporter"])
    restore_feed(feed, state["feed"])


def position_of(state: dict[str, Any]) -> Position:
    return Position(**state["journal"])


# ---------------------------------------------------------------------------- files
def write(path: Path, state: dict[str, Any]) -> int:
    """Write atomically (temporary file, fsync, rename, fsync the directory); returns bytes."""
    body = msgpack.packb(state, use_bin_type=True)
    tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}")
    with open(tmp, "wb") as f:
        f.write(_HEAD.pack(MAGIC, len(body), zlib.crc32(body)))
        f.write(body)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    try:
        fd = os.open(path.parent, os.O_RDONLY)
    except OSError:
        return _HEAD.size + len(body)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    return _HEAD.size + len(body)


def load(path: Path) -> dict[str, Any]:
    """The snapshot in `path`; `SnapshotError` saying why it cannot be used."""
    for stale in path.parent.glob(f"{path.name}.tmp-*"):  # a write cut short by a crash
        stale.unlink(missing_ok=True)
    try:
        with open(path, "rb") as f:
            head = f.read(_HEAD.size)
            if len(head) < _HEAD.size:
                raise SnapshotError("the snapshot file is cut short")
            magic, length, crc = _HEAD.unpack(head)
            if magic != MAGIC:
                raise SnapshotError("not a snapshot file")
            body = f.read(length + 1)
    except FileNotFoundError:
        raise SnapshotError("no snapshot") from None
    if len(body) != length or zlib.crc32(body) != crc:
        raise SnapshotError("the snapshot fails its checksum")
    try:
        state = msgpack.unpackb(body, raw=False, strict_map_key=False, use_list=True)
    except Exception as exc:
        raise SnapshotError(f"the snapshot does not decode ({type(exc).__name__})") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise SnapshotError("the snapshot has an unknown format")
    return state
