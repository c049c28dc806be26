"""The replay's in-memory tape: one chunk of updates as seven flat integer columns.

Every reader (`agents.replay.readers`) turns its files into `Chunk`s and the merge
(`agents.replay.stream`) interleaves them by time; the loop (`agents.replay.loop`, compiled
or not) reads the columns directly. Flat int64 columns keep a chunk cheap to build from Arrow
(no per-row objects) and let numba take it as is.

One row is one update, applied on its own (no grouping of rows with the same timestamp):

==========  ===========================  ===========================
column      a quote (kind QUOTE)         a trade (kind TRADE)
==========  ===========================  ===========================
ts          ns since the epoch (UTC)     ns since the epoch (UTC)
sym         symbol index                 symbol index
a           best bid (ticks; NO_BID)     price (ticks)
b           bid size (lots)              size (lots)
c           best ask (ticks; NO_ASK)     aggressor: BUY, SELL, UNKNOWN
d           ask size (lots)              trade id (0: none)
==========  ===========================  ===========================

An empty side is a sentinel far outside any price (`NO_BID`, `NO_ASK`), so the fill rules
compare without a branch for it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = [
    "BUY", "NO_ASK", "NO_BID", "QUOTE", "SELL", "TRADE", "UNKNOWN", "Chunk", "concat",
]  # fmt: skip

QUOTE = 0
TRADE = 1
NO_BID = -(2**62)
NO_ASK = 2**62
BUY = 1
SELL = -1
UNKNOWN = 0


@dataclass(slots=True)
class Chunk:
    """A run of updates in replay order (see the module docstring for the columns)."""

    ts: np.ndarray
    kind: np.ndarray
    sym: np.ndarray
    a: np.ndarray
    b: np.ndarray
    c: np.ndarray
    d: np.ndarray

    def __len__(self) -> int:
        return len(self.ts)

    @classmethod
    def empty(cls) -> Chunk:
        z = np.empty(0, np.int64)
        return cls(z, np.empty(0, np.int8), np.empty(0, np.int32), z, z, z, z)

    def take(self, idx: np.ndarray | slice) -> Chunk:
        return Chunk(self.ts[idx], self.kind[idx], self.sym[idx], self.a[idx], self.b[idx],
                     self.c[idx], self.d[idx])  # fmt: skip

    def columns(self) -> tuple[np.ndarray, ...]:
        return (self.ts, self.kind, self.sym, self.a, self.b, self.c, self.d)

    def contiguous(self) -> Chunk:
        return Chunk(*(np.ascontiguousarray(x) for x in self.columns()))


def concat(chunks: list[Chunk]) -> Chunk:
    """One chunk of `chunks` in order."""
    if not chunks:
        return Chunk.empty()
    if len(chunks) == 1:
        return chunks[0]
    cols = zip(*(c.columns() for c in chunks), strict=True)
    return Chunk(*(np.concatenate(col) for col in cols))
