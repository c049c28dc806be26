"""Snapshots of the exchange's state, so that a restart replays only the journal's tail.

The journal stays the record of truth; a snapshot is "the state after the first N records":
every book with its open orders in priority order, phases, auction queues and breaker windows,
the id counters and client order id claims, what the reports need about open orders, every
stream's sequence number and last top of book, the reports' per-account sequence numbers with
their resend windows and the public trade tape's windows, and where in the journal it was taken
(with the trade index: trade ids carry the exchange's epoch, restored with the engine's trade
counter, so the epoch claimed at the next start is above every epoch in the snapshot and the
journal). Restoring
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
from array import array
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
FORMAT = 2  # 2: the reports' account sequence numbers, resend and tape windows; epoch trade ids


class SnapshotError(ValueError):
    """A snapshot file that cannot be used (the caller replays the whole journal)."""


# ---------------------------------------------------------------------------- capture
def _order_row(o: Order) -> list[Any]:
    return [o.order_id, o.client_order_id, o.account, o.symbol, o.side, o.order_type, o.price,
            o.qty, o.leaves, o.tif, o.post_only, o.stp, o.ts]  # fmt: skip


def _pairs(window: deque[tuple[int, int]]) -> bytes:
    """A breaker window's (ts, price) entries as packed int64s: a busy minute holds many."""
    return array("q", [x for pair in window for x in pair]).tobytes()


def _unpairs(data: bytes) -> deque[tuple[int, int]]:
    flat = array("q")
    flat.frombytes(data)
    it = iter(flat)
    return deque(zip(it, it, strict=False))


def capture_engine(engine: Engine, previous: dict[str, Any] | None = None) -> dict[str, Any]:
    """The engine's state; `previous` (the last snapshot's engine state) saves re-hashing the
    client order ids it already holds."""
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
            breaker = [br._anchor, br.last, _pairs(br._all), _pairs(br._min), _pairs(br._max),
                       br.expires, br.low, br.high]  # fmt: skip
        markets.append({
            "symbol": m.symbol, "spec": m.spec.model_dump(mode="json"), "phase": m.phase,
            "wakeup": m.wakeup, "halt_until": m.halt_until, "reference": m.reference,
            "seq": book.seq, "last_price": book.last_price, "last_qty": book.last_qty,
            "sides": sides, "breaker": breaker,
            "market_orders": [[o.order_id for o in m.market_orders[s] if o.leaves]
                              for s in ("buy", "sell")],
        })  # fmt: skip
    before = {}
    if previous is not None:
        before = {c[0]: c[1:] for c in previous["claims"] if len(c) == 4}
    claims = []
    for account, table in engine._clids.items():
        hashes, oids, note = pack_claims(table, before.get(account))
        claims.append([account, hashes, oids, note])
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


def capture_windows(reporter: Reporter) -> dict[str, Any]:
    """The reports' memory: each account's last ``account_seq`` and the public tape windows
    (the resend windows, bigger, are the chunked ``sent`` list)."""
    return {
        "account_seqs": dict(reporter.account_seqs),
        "tape": [[symbol, list(kept)] for symbol, kept in reporter._tape.items()],
    }


def capture_sent(reporter: Reporter) -> list[list[Any]]:
    """Each account's resend window: ``[account, [report, ...]]`` (oldest first)."""
    return [[account, list(kept)] for account, kept in reporter._sent.items()]


def capture_feed(feed: FeedState) -> dict[str, Any]:
    return {"seqs": dict(feed.seqs), "tob": {k: list(v) for k, v in feed._tob.items()}}


def capture(
    engine: Engine, reporter: Reporter, feed: FeedState, position: Position,
    extra: dict[str, Any] | None = None, previous: dict[str, Any] | None = None,
) -> dict[str, Any]:  # fmt: skip
    """Everything a restart needs, as plain msgpack-able values (`previous`: the last
    snapshot taken by this process, to reuse its work)."""
    return {
        "format": FORMAT,
        "journal": position.as_dict(),
        "engine": capture_engine(engine, previous["engine"] if previous else None),
        "reporter": capture_reporter(reporter),
        "windows": capture_windows(reporter),
        "sent": capture_sent(reporter),
        "feed": capture_feed(feed),
        "extra": extra or {},
    }


# ---------------------------------------------------------------------------- restore
def _interner() -> Any:
    """``one(x, x)``: one object per distinct account, symbol, side, price...: a snapshot decodes
    each row's values afresh, and a few hundred thousand open orders times several copies added
    up. (A dict's bound setdefault: no Python frame per call.)"""
    return {}.setdefault


def restore_engine(engine: Engine, state: dict[str, Any]) -> None:
    """Put `state` into a freshly built engine listing the same symbols."""
    orders: dict[int, Order] = {}
    one = _interner()
    for row in state["orders"]:
        (oid, clid, account, symbol, side, otype, price, qty, leaves, tif, post_only, stp,
         ts) = row  # fmt: skip
        o = Order(oid, clid, one(account, account), one(symbol, symbol), one(side, side),
                  one(otype, otype), one(price, price), qty, one(tif, tif), post_only,
                  one(stp, stp), ts)  # fmt: skip
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
            br._all, br._min, br._max = _unpairs(all_), _unpairs(lo), _unpairs(hi)
            br.expires, br.low, br.high = expires, low, high
    engine._next_order_id = state["next_order_id"]
    engine._trade_id = state["trade_id"]
    engine._clids = {
        account: RestoredClaims(OldClaims(hashes, oids))
        for account, hashes, oids, *_note in state["claims"]
    }


def restore_reporter(
    reporter: Reporter, rows: list[list[Any]], engine: Engine | None = None
) -> None:
    """The reports' open orders; with the restored `engine`, its order ids and client order ids
    are shared rather than decoded twice (as the live process shares them)."""
    table = reporter._orders
    table.clear()
    one = _interner()
    orders = engine._orders if engine is not None else {}
    for oid, clid, account, symbol, side, otype, price, qty, cum, notional in rows:
        o = orders.get(oid)
        if o is not None:
            oid = o.order_id
            if o.client_order_id == clid:
                clid = o.client_order_id
        s = _OrderState(oid, clid, one(account, account), one(symbol, symbol), one(side, side),
                        one(otype, otype), one(price, price), qty)  # fmt: skip
        s.cum, s.notional = cum, notional
        table[oid] = s


def restore_windows(reporter: Reporter, windows: dict[str, Any], sent: Any) -> None:
    """Account sequence numbers, resend windows and tape windows, cut to this reporter's
    window sizes (a smaller setting keeps the newest; a larger one starts with what the
    snapshot held, and a resend from before that is answered as incomplete, as it would be
    after a full replay with the old setting)."""
    reporter.account_seqs = dict(windows["account_seqs"])
    reporter._sent = {}
    if reporter.resend_window:
        for account, reports in sent:
            reporter._sent[account] = deque(reports, maxlen=reporter.resend_window)
    reporter._tape = {}
    if reporter.tape_window:
        for symbol, trades in windows["tape"]:
            reporter._tape[symbol] = deque(trades, maxlen=reporter.tape_window)


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
    restore_reporter(reporter, state["reporter"], engine)
    restore_windows(reporter, state["windows"], state["sent"])
    restore_feed(feed, state["feed"])


def position_of(state: dict[str, Any]) -> Position:
    return Position(**state["journal"])


# ---------------------------------------------------------------------------- files
# Big lists, streamed in chunks of this many rows (an account's claims can be megabytes: one
# account a chunk, so that neither writing nor reading ever buffers all of them at once).
_BIG = (
    (("engine", "orders"), 4096), (("reporter",), 4096), (("engine", "claims"), 1),
    (("sent",), 16),  # resend windows: up to a few hundred reports per account
)  # fmt: skip


def _section(state: dict[str, Any], keys: tuple[str, ...]) -> list[Any]:
    node: Any = state
    for k in keys:
        node = node[k]
    return node


def _header(state: dict[str, Any]) -> dict[str, Any]:
    """`state` without its big lists (each replaced by its chunk count)."""
    head = dict(state)
    head["engine"] = dict(state["engine"])
    for keys, per_chunk in _BIG:
        rows = _section(state, keys)
        chunks = -(-len(rows) // per_chunk)
        if len(keys) == 1:
            head[keys[0]] = {"chunks": chunks}
        else:
            head[keys[0]][keys[1]] = {"chunks": chunks}
    return head


class _Rows:
    """One big list of a snapshot file, read a chunk at a time when iterated: restoring never
    holds the whole snapshot as Python objects, only what it builds from it."""

    def __init__(self, path: Path, offset: int, chunks: int) -> None:
        self.path, self.offset, self.chunks = path, offset, chunks

    def __iter__(self) -> Any:
        with open(self.path, "rb") as f:
            f.seek(self.offset)
            unpacker = _unpacker(f)
            for _ in range(self.chunks):
                yield from unpacker.unpack()


def _unpacker(f: Any) -> msgpack.Unpacker:
    return msgpack.Unpacker(f, raw=False, strict_map_key=False, max_buffer_size=2**31 - 1)


def write(path: Path, state: dict[str, Any]) -> int:
    """Write atomically (temporary file, fsync, rename, fsync the directory); returns bytes.

    Body: the header (the state without its big lists), then each big list in chunks.
    """
    tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}")
    packer = msgpack.Packer(use_bin_type=True)
    crc = length = 0
    with open(tmp, "wb") as f:
        f.write(_HEAD.pack(MAGIC, 0, 0))  # (rewritten once the body's length and crc are known)

        def put(obj: Any) -> None:
            nonlocal crc, length
            data = packer.pack(obj)
            crc = zlib.crc32(data, crc)
            length += len(data)
            f.write(data)

        put(_header(state))
        for keys, per_chunk in _BIG:
            rows = _section(state, keys)
            for i in range(0, len(rows), per_chunk):
                put(rows[i : i + per_chunk])
        f.seek(0)
        f.write(_HEAD.pack(MAGIC, length, crc))
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    try:
        fd = os.open(path.parent, os.O_RDONLY)
    except OSError:
        return _HEAD.size + length
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    return _HEAD.size + length


def load(path: Path) -> dict[str, Any]:
    """The snapshot in `path` (its big lists read lazily); `SnapshotError` saying why it
    cannot be used. The whole file is checked against its checksum first."""
    for stale in path.parent.glob(f"{path.name}.tmp-*"):  # a write cut short by a crash
        stale.unlink(missing_ok=True)
    try:
        f = open(path, "rb")  # noqa: SIM115 (closed below)
    except FileNotFoundError:
        raise SnapshotError("no snapshot") from None
    with f:
        head = f.read(_HEAD.size)
        if len(head) < _HEAD.size:
            raise SnapshotError("the snapshot file is cut short")
        magic, length, crc = _HEAD.unpack(head)
        if magic != MAGIC:
            raise SnapshotError("not a snapshot file")
        got, seen = 0, 0
        while block := f.read(1 << 22):
            got = zlib.crc32(block, got)
            seen += len(block)
        if seen != length or got != crc:
            raise SnapshotError("the snapshot fails its checksum")
        f.seek(_HEAD.size)
        unpacker = _unpacker(f)
        try:
            state = unpacker.unpack()
            if not isinstance(state, dict) or state.get("format") != FORMAT:
                raise SnapshotError("the snapshot has an unknown format")
            for keys, _per_chunk in _BIG:
                chunks = _section(state, keys)["chunks"]
                rows = _Rows(path, _HEAD.size + unpacker.tell(), chunks)
                for _ in range(chunks):
                    unpacker.skip()
                if len(keys) == 1:
                    state[keys[0]] = rows
                else:
                    state[keys[0]][keys[1]] = rows
        except SnapshotError:
            raise
        except Exception as exc:
            raise SnapshotError(f"the snapshot does not decode ({type(exc).__name__})") from None
    return state
