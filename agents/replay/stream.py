"""Interleave the tape's streams by time, chunk by chunk, with bounded memory.

Each stream (one per layout file group or recorder channel) is already in time order; the
merge keeps at most a chunk or two of each in memory and emits, each round, every buffered
update stamped strictly before the earliest "last timestamp" of the streams still running.
Updates with equal timestamps keep a fixed order whatever the chunking: trades before quotes
(an exchange publishes a trade before the top of book it leaves), then stream order, then
file order. So a chunked replay is the same replay as one that loads everything at once.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from agents.replay.tape import QUOTE, Chunk, concat

__all__ = ["load_all", "merge", "window"]


def merge(streams: list[Iterator[Chunk]]) -> Iterator[Chunk]:
    """The streams' updates in replay order (see the module docstring)."""
    bufs: list[list[Chunk]] = [[] for _ in streams]
    live = list(range(len(streams)))

    def pull(k: int) -> bool:
        for chunk in streams[k]:
            if len(chunk):
                bufs[k].append(chunk)
                return True
        return False

    for k in list(live):
        if not pull(k):
            live.remove(k)
    while True:
        horizon = min(int(bufs[k][-1].ts[-1]) for k in live) if live else None
        parts, keys = [], []
        for k, buf in enumerate(bufs):
            if not buf:
                continue
            whole = concat(buf)
            cut = len(whole) if horizon is None else int(np.searchsorted(whole.ts, horizon, "left"))
            if cut:
                parts.append(whole.take(slice(0, cut)))
                keys.append(np.full(cut, k, np.int32))
            bufs[k] = [whole.take(slice(cut, None))] if cut < len(whole) else []
        if parts:
            out = concat(parts)
            if len(parts) > 1:
                src = np.concatenate(keys)
                order = np.lexsort((src, out.kind == QUOTE, out.ts))  # stable: file order kept
                out = out.take(order)
            yield out
        if horizon is None:
            return
        # the streams whose buffer ends at the horizon need more before anything at it goes
        for k in list(live):
            if (not bufs[k] or int(bufs[k][-1].ts[-1]) <= horizon) and not pull(k):
                live.remove(k)


def window(chunks: Iterator[Chunk], start_ns: int | None, end_ns: int | None) -> Iterator[Chunk]:
    """Only the updates with ``start_ns <= ts < end_ns`` (either bound may be None)."""
    for chunk in chunks:
        if start_ns is not None and len(chunk) and chunk.ts[-1] < start_ns:
            continue
        lo = 0 if start_ns is None else int(np.searchsorted(chunk.ts, start_ns, "left"))
        hi = len(chunk) if end_ns is None else int(np.searchsorted(chunk.ts, end_ns, "left"))
        if hi > lo:
            yield chunk.take(slice(lo, hi)) if (lo, hi) != (0, len(chunk)) else chunk
        if end_ns is not None and hi < len(chunk):
            return


def load_all(chunks: Iterator[Chunk]) -> Chunk:
    """Every update in one chunk (tests and small tapes)."""
    return concat(list(chunks))
