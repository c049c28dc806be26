"""Synthetic quotes from recorded depth: the price to trade a given size, not just the touch.

A market maker who quotes 50 lots cares less about a best bid for 2 lots than about what 50
lots would fetch. Where the recorder kept L2 (its ``book`` deltas on top of ``snapshots``),
`SyntheticSource` rebuilds each symbol's book as the tape runs and, after every change,
publishes a quote whose bid is the volume-weighted price of selling `size` lots into the bids
(rounded down to a tick) and whose ask that of buying `size` lots from the asks (rounded up),
each with the size available up to `size`. A side with less than `size` displayed is empty.
The replay, the fill rules and the Gymnasium environment take it in place of the recorded top
of book (``agora backtest --synthetic-size N``).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from agents.replay.tape import NO_ASK, NO_BID, QUOTE, Chunk

__all__ = ["DepthBook", "SyntheticSource", "vwap"]


def vwap(levels: list[tuple[int, int]], size: int) -> float | None:
    """The average price of trading `size` through `levels` ((price, qty), best first);
    None when they hold less than `size`."""
    if size <= 0:
        return None
    left, notional = size, 0
    for price, qty in levels:
        take = min(left, qty)
        notional += take * price
        left -= take
        if left == 0:
            return notional / size
    return None


class DepthBook:
    """One symbol's L2 book: price -> qty per side, rebuilt from a snapshot and deltas."""

    def __init__(self) -> None:
        self.bids: dict[int, int] = {}
        self.asks: dict[int, int] = {}

    def reset(self, bids: list[dict], asks: list[dict]) -> None:
        self.bids = {lv["price"]: lv["qty"] for lv in bids if lv["qty"] > 0}
        self.asks = {lv["price"]: lv["qty"] for lv in asks if lv["qty"] > 0}

    def apply(self, side: str, price: int, qty: int) -> None:
        book = self.bids if side == "buy" else self.asks
        if qty > 0:
            book[price] = qty
        else:
            book.pop(price, None)

    def levels(self, side: str) -> list[tuple[int, int]]:
        book = self.bids if side == "buy" else self.asks
        return sorted(book.items(), reverse=side == "buy")

    def synthetic(self, size: int) -> tuple[int, int, int, int]:
        """(bid, bid_qty, ask, ask_qty) of the synthetic quote for `size` lots."""
        b = vwap(self.levels("buy"), size)
        a = vwap(self.levels("sell"), size)
        bid = NO_BID if b is None else math.floor(b + 1e-9)
        ask = NO_ASK if a is None else math.ceil(a - 1e-9)
        return bid, 0 if b is None else size, ask, 0 if a is None else size


@dataclass
class SyntheticSource:
    """The quote stream of a recording's depth (see the module docstring)."""

    root: Path
    size: int
    kind: str = "quotes"

    @classmethod
    def of(cls, root: Path, size: int) -> SyntheticSource:
        from agents.recorder.read import files
        from agents.replay.layouts import TapeError

        if size <= 0:
            raise TapeError(f"synthetic size must be positive, not {size}")
        if not files(root, "book"):
            raise TapeError(f"{root}: no recorded depth (book/*.parquet) for synthetic quotes")
        return cls(root, size)

    def symbols(self, rows: int) -> list[str]:
        from agents.recorder.read import files

        seen: dict[str, None] = {}
        for path in files(self.root, "book"):
            for batch in pq.ParquetFile(path).iter_batches(batch_size=rows, columns=["symbol"]):
                for s in batch.column(0).unique().to_pylist():
                    seen.setdefault(s, None)
        return list(seen)

    def span(self, rows: int) -> tuple[int, int] | None:
        from agents.recorder.read import files

        first = last = None
        for path in files(self.root, "book"):
            for batch in pq.ParquetFile(path).iter_batches(batch_size=rows, columns=["ts"]):
                if batch.num_rows:
                    ts = batch.column(0)
                    first = ts[0].as_py() if first is None else first
                    last = ts[-1].as_py()
        return None if first is None else (first, last)

    def chunks(self, sym_index: dict[str, int], ticks_of: object, rows: int) -> Iterator[Chunk]:
        from agents.recorder.read import files, load

        snaps: dict[str, list[tuple[int, list, list]]] = {}
        if files(self.root, "snapshots"):
            t = load(self.root, "snapshots")
            for sym, seq, bids, asks in zip(*(t.column(c).to_pylist() for c in
                                              ("symbol", "seq", "bids", "asks")), strict=True):
                snaps.setdefault(sym, []).append((seq, bids, asks))
        for lst in snaps.values():
            lst.sort(key=lambda x: x[0])
        books: dict[str, DepthBook] = {}
        taken: dict[str, int] = {}
        cols = ["ts", "symbol", "seq", "side", "price", "qty"]
        for path in files(self.root, "book"):
            for batch in pq.ParquetFile(path).iter_batches(batch_size=rows, columns=cols):
                out: list[tuple[int, int, int, int, int, int]] = []
                for ts, sym, seq, side, price, qty in zip(
                        *(batch.column(c).to_pylist() for c in cols), strict=True):
                    book = books.setdefault(sym, DepthBook())
                    pending = snaps.get(sym, [])
                    k = taken.get(sym, 0)
                    while k < len(pending) and pending[k][0] < seq:
                        book.reset(pending[k][1], pending[k][2])
                        k += 1
                    taken[sym] = k
                    book.apply(side, price, qty)
                    out.append((ts, sym_index[sym], *book.synthetic(self.size)))
                if out:
                    arr = np.array(out, np.int64)
                    yield Chunk(arr[:, 0].copy(), np.full(len(arr), QUOTE, np.int8),
                                arr[:, 1].astype(np.int32), arr[:, 2].copy(), arr[:, 3].copy(),
                                arr[:, 4].copy(), arr[:, 5].copy())  # fmt: skip
