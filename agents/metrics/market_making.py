"""A market maker's measures: spread captured, fill ratio, markouts, time quoted at the top.

For a fill of side ``s`` (+1 bought, -1 sold) at price ``p`` and time ``t``, with ``m(t)`` the mid
*just before* the fill (the mid it met, not the one it made):

* spread captured = ``s (m(t) - p)`` ticks per lot: half the spread for a passive fill at the
  touch, negative for an aggressive one. Averaged per lot (quantity-weighted) and summed in
  cash units (``x qty x multiplier``).
* markout at horizon h = ``s (m(t + h) - m(t))`` ticks per lot, quantity-weighted: how the mid
  moved for (positive) or against (negative) the fill h later. Negative markouts are adverse
  selection: the counterparty knew better. ``m(t + h)`` is the last mid at or before t + h;
  fills less than h before the end of the watch (by default the mid series' last stamp) do
  not count at that horizon.
  ``spread captured + markout(h)`` is the fill's PnL marked to the mid h later.
* fill ratio = filled quantity / posted quantity (lots): how much of what was offered traded.
* quote time at top = the fraction of time the account's quote was at the best bid or ask,
  from a 0/1 step function (built where the account's orders are known).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from agents.metrics.series import NS, Fills, Series, as_of, dot, selection, time_weights

__all__ = [
    "DEFAULT_MARKOUT_S",
    "SpreadCaptured",
    "fill_ratio",
    "markouts",
    "quote_time_at_top",
    "spread_captured",
    "time_at_level",
]

DEFAULT_MARKOUT_S: tuple[float, ...] = (1.0, 10.0, 60.0)
"""Markout horizons reported in the metrics table (seconds)."""


@dataclass(frozen=True, slots=True)
class SpreadCaptured:
    """`per_lot` ticks (quantity-weighted mean over fills with a mid), `total` cash units, and
    how many fills had a mid to compare with (`fills`)."""

    per_lot: float
    total: float
    fills: int


def spread_captured(
    fills: Fills, mid_before: np.ndarray, multiplier: float = 1.0, *,
    signed_qty: np.ndarray | None = None,
) -> SpreadCaptured:
    """Spread captured from `fills` and the mid just before each (NaN: no mid, left out).
    `signed_qty` is ``fills.signed_qty`` when the caller has it: ``(m - p) s q`` is
    ``s (m - p) q`` to the last bit (s is +1 or -1)."""
    ok = np.isfinite(mid_before)
    if not ok.any():
        return SpreadCaptured(math.nan, 0.0, 0)
    sq = fills.signed_qty if signed_qty is None else signed_qty
    if ok.all():  # every fill: the same sums, without selecting them
        edge, q = mid_before - fills.price, fills.qty
    else:
        sel = selection(ok)
        edge, q, sq = mid_before[sel] - fills.price[sel], fills.qty[sel], sq[sel]
    total_lots = float(np.add.reduce(q))
    gained = dot(edge, sq)
    return SpreadCaptured(float(gained / total_lots), float(gained) * multiplier, len(q))


def markouts(
    fills: Fills, mids: Series, horizons_s: Sequence[float] = DEFAULT_MARKOUT_S,
    mid_before: np.ndarray | None = None, mid_after: Mapping[float, np.ndarray] | None = None,
    end_ns: int | None = None, moves: Mapping[float, np.ndarray] | None = None,
    signed_qty: np.ndarray | None = None,
) -> dict[float, float]:
    """``{h: quantity-weighted mean of s (m(t + h) - m(t))}`` in ticks per lot (NaN where no fill
    has both mids). `mid_before` (the mid just before each fill) and `mid_after` (per horizon,
    the mid h later, NaN where unknown) are looked up when not given; the mids are known up to
    `end_ns` (default: the last mid's stamp). `moves` (per horizon, ``m(t + h) - m(t)`` for
    each fill, NaN where unknown; `MarketContext.mid_move`) saves both look-ups: a market's
    accounts share the per-trade moves. `signed_qty` is ``fills.signed_qty`` when the caller
    has it: ``s q d`` is ``s d q`` to the last bit (s is +1 or -1), one product fewer a horizon."""
    out: dict[float, float] = {}
    if len(fills) == 0 or len(mids) == 0:
        return {float(h): math.nan for h in horizons_s}
    sq = fills.signed_qty if signed_qty is None else signed_qty
    qty_all: float | None = None
    m0 = None
    for h in horizons_s:
        if moves is not None and float(h) in moves:
            d = moves[float(h)]
            ok = np.isfinite(d)
            if ok.all():  # the same sums as below, without selecting every fill
                qty_all = float(np.add.reduce(fills.qty)) if qty_all is None else qty_all
                out[float(h)] = float(dot(sq, d) / qty_all)
                continue
        else:
            if m0 is None:
                m0 = as_of(mids, fills.ts, strict=True) if mid_before is None else mid_before
            last = int(mids.ts[-1]) if end_ns is None else max(int(mids.ts[-1]), end_ns)
            if mid_after is not None and float(h) in mid_after:
                m1 = mid_after[float(h)]
                ok = np.isfinite(m0) & np.isfinite(m1)
            else:
                at = fills.ts + round(h * NS)
                m1 = as_of(mids, at)
                ok = np.isfinite(m0) & np.isfinite(m1) & (at <= last)
            d = m1 - m0
        if not ok.any():
            out[float(h)] = math.nan
            continue
        sel = selection(ok)
        q = fills.qty[sel]
        out[float(h)] = float(dot(sq[sel], d[sel]) / np.add.reduce(q))
    return out


def fill_ratio(filled_qty: float, posted_qty: float | None) -> float:
    """Filled / posted quantity; NaN when nothing (or an unknown quantity) was posted."""
    if posted_qty is None or not posted_qty > 0:
        return math.nan
    return filled_qty / posted_qty


def quote_time_at_top(at_top: Series, end_ns: int | None = None) -> float:
    """Time-weighted mean of a 0/1 step function (1: the account's quote was at the best bid
    or ask) from its first stamp to `end_ns`; NaN for an empty or instantaneous series."""
    if len(at_top) == 0:
        return math.nan
    w = time_weights(at_top.ts, end_ns)
    total = float(w.sum())
    return float(dot(w, at_top.values != 0) / total) if total > 0 else math.nan


def time_at_level(
    book_ts: np.ndarray, level: np.ndarray, end_ns: int, start: np.ndarray, end: np.ndarray,
    price: np.ndarray,
) -> np.ndarray:
    """For each resting interval ``[start, end)`` at `price`, how long (ns) the book's best
    price on that side (`level`, a step function over `book_ts`; NaN: the side was empty, the
    last value holding until `end_ns`) was that price.

    All intervals at once: the book's rows are grouped by price, in time order within a price,
    with the running total of the time each held; the time at `price` up to any instant is then
    one search into that price's rows, and an interval's is the difference at its two ends."""
    start = np.asarray(start, dtype=np.int64)
    end = np.asarray(end, dtype=np.int64)
    out = np.zeros(len(start))
    t = np.asarray(book_ts, dtype=np.int64)
    if len(t) == 0 or len(start) == 0:
        return out
    lv = np.asarray(level, dtype=float)
    dur = np.diff(np.append(t, max(int(end_ns), int(t[-1]))))
    rows = np.flatnonzero(np.isfinite(lv))
    if len(rows) == 0:
        return out
    key = lv[rows]
    lo, hi = float(key.min()), float(key.max())
    if hi - lo < 2**16 and np.array_equal(key, np.floor(key)):
        key = (key - lo).astype(np.uint16)  # whole ticks in a 16-bit range: a radix sort
    rows = rows[np.argsort(key, kind="stable")]  # by price, in time order within one
    g_lv, g_t, g_d = lv[rows], t[rows], dur[rows]
    cum = np.concatenate(([0], np.cumsum(g_d)))
    first = np.flatnonzero(np.concatenate(([True], g_lv[1:] != g_lv[:-1])))
    levels = g_lv[first]
    g = np.searchsorted(levels, price)
    known = g < len(levels)
    known[known] = levels[g[known]] == np.asarray(price, dtype=float)[known]
    g = np.where(known, g, 0)
    t0 = int(min(int(g_t.min()), int(start.min())))
    width = int(max(int(g_t.max()), int(end.max()), int(end_ns))) - t0 + 1
    group = np.repeat(np.arange(len(levels), dtype=np.int64), np.diff(np.append(first, len(g_t))))
    if (len(levels) + 1) * width >= 2**62:  # too long a span to key (price, time) in int64
        return _time_at_level_by_price(g_t, g_d, cum, levels, first, start, end, g, known)
    keys = group * width + (g_t - t0)
    # the intervals searched by price (a radix sort of the price's index), in the order they
    # come within one: a search that walks the book's rows forward hits the cache; the results
    # are the same in any order
    by_level = np.argsort(g.astype(np.uint16), kind="stable") if len(levels) < 2**16 else None

    def search(q: np.ndarray) -> np.ndarray:
        if by_level is None:
            return np.searchsorted(keys, q, side="right")
        k = np.empty(len(q), dtype=np.intp)
        k[by_level] = np.searchsorted(keys, q[by_level], side="right")
        return k

    def upto(x: np.ndarray) -> np.ndarray:
        k = search(g * width + (x - t0)) - 1
        inside = k >= first[g]
        kk = np.maximum(k, 0)
        return np.where(inside, cum[kk] + np.clip(x - g_t[kk], 0, g_d[kk]), cum[first[g]])

    return np.where(known, (upto(end) - upto(start)).astype(float), 0.0)


def _time_at_level_by_price(
    g_t: np.ndarray, g_d: np.ndarray, cum: np.ndarray, levels: np.ndarray, first: np.ndarray,
    start: np.ndarray, end: np.ndarray, g: np.ndarray, known: np.ndarray,
) -> np.ndarray:
    """`time_at_level` one price at a time (for spans too long to key in 64 bits)."""
    out = np.zeros(len(start))
    bounds = np.append(first, len(g_t))
    for i in np.unique(g[known]):
        lo, hi = int(bounds[i]), int(bounds[i + 1])
        sel = known & (g == i)
        tt, dd, cc = g_t[lo:hi], g_d[lo:hi], cum[lo:hi]

        def upto(x: np.ndarray, tt: np.ndarray = tt, dd: np.ndarray = dd,
                 cc: np.ndarray = cc) -> np.ndarray:  # fmt: skip
            k = np.searchsorted(tt, x, side="right") - 1
            kk = np.maximum(k, 0)
            return np.where(k >= 0, cc[kk] + np.clip(x - tt[kk], 0, dd[kk]), cc[0])

        out[sel] = upto(end[sel]) - upto(start[sel])
    return out
