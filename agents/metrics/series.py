"""The plain inputs of every measure: fills and time series as numpy arrays.

Units are Agora's (ARCHITECTURE.md): times in integer nanoseconds, prices in ticks (floats are
fine: a mid is often half a tick), quantities in lots, cash and PnL in cash units. A series is a
step function: each value holds from its time stamp until the next one, which is how a price,
a position or a PnL marked to the last trade behaves between events.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = [
    "NS",
    "Fills",
    "GridRuns",
    "Series",
    "as_of",
    "cumulative_on_grid",
    "dot",
    "grid_slots",
    "on_grid",
    "selection",
    "time_weights",
]

NS = 1_000_000_000
"""Nanoseconds per second."""

_add = np.add.reduce  # what ndarray.sum calls, without its Python wrapper


def _arr(x: Sequence[float] | np.ndarray | None, dtype: type) -> np.ndarray:
    return np.asarray([] if x is None else x, dtype=dtype)


@dataclass(frozen=True, slots=True)
class Series:
    """A step function: `values[i]` from `ts[i]` (ns, ascending) until `ts[i + 1]`."""

    ts: np.ndarray
    values: np.ndarray

    @classmethod
    def of(cls, ts: Sequence[int] | np.ndarray, values: Sequence[float] | np.ndarray) -> Series:
        t, v = _arr(ts, np.int64), _arr(values, np.float64)
        if t.shape != v.shape or t.ndim != 1:
            raise ValueError(f"ts and values must be 1-d of one length ({t.shape}, {v.shape})")
        if len(t) > 1 and np.any(np.diff(t) < 0):
            raise ValueError("series time stamps must be ascending")
        return cls(t, v)

    def __len__(self) -> int:
        return len(self.ts)


@dataclass(frozen=True, slots=True)
class Fills:
    """One account's fills: time (ns), side (+1 bought, -1 sold), price (ticks), quantity
    (lots, > 0) and fee (cash units, negative for a rebate), in time order.

    `trade` (optional) is each fill's index among the market's trades as given to a
    `MarketContext`: with it the context looks up the mids around the fill once per trade for
    every account instead of searching the book's history again for each."""

    ts: np.ndarray
    side: np.ndarray
    price: np.ndarray
    qty: np.ndarray
    fee: np.ndarray
    trade: np.ndarray | None = None

    @classmethod
    def of(
        cls,
        ts: Sequence[int] | np.ndarray,
        side: Sequence[int] | np.ndarray,
        price: Sequence[float] | np.ndarray,
        qty: Sequence[float] | np.ndarray,
        fee: Sequence[float] | np.ndarray | None = None,
        trade: Sequence[int] | np.ndarray | None = None,
    ) -> Fills:
        t, s = _arr(ts, np.int64), _arr(side, np.int64)
        p, q = _arr(price, np.float64), _arr(qty, np.float64)
        f = np.zeros(len(t)) if fee is None else _arr(fee, np.float64)
        if not (len(t) == len(s) == len(p) == len(q) == len(f)):
            raise ValueError("fill columns differ in length")
        if len(s) and not np.all((s == 1) | (s == -1)):
            raise ValueError("side must be +1 (bought) or -1 (sold)")
        if len(q) and np.any(q <= 0):
            raise ValueError("fill quantities must be positive")
        if len(t) > 1 and np.any(np.diff(t) < 0):
            raise ValueError("fills must be in time order")
        idx = None if trade is None else _arr(trade, np.int64)
        if idx is not None and len(idx) != len(t):
            raise ValueError("fill columns differ in length")
        return cls(t, s, p, q, f, idx)

    @classmethod
    def empty(cls) -> Fills:
        return cls.of([], [], [], [])

    def __len__(self) -> int:
        return len(self.ts)

    @property
    def signed_qty(self) -> np.ndarray:
        """+qty bought, -qty sold (lots)."""
        return self.side * self.qty


def as_of(series: Series, ts: np.ndarray, strict: bool = False) -> np.ndarray:
    """The series' value at each of `ts`: the last value stamped at or before it (strictly
    before with `strict`, e.g. the mid a fill met, not the one it made); NaN before the first."""
    idx = np.searchsorted(series.ts, ts, side="left" if strict else "right") - 1
    if len(idx) and idx.min() >= 0:  # every time after the first stamp: no selection
        return series.values[idx].astype(float, copy=False)
    out = np.full(len(idx), np.nan)
    ok = idx >= 0
    out[ok] = series.values[idx[ok]]
    return out


def selection(ok: np.ndarray) -> slice | np.ndarray:
    """The boolean mask `ok` as an index: a slice when its true entries are one run (the
    same elements in the same order as the mask selects, without copying them; what a span
    cut by the start or the end of the watch gives), else the mask itself."""
    k = int(np.count_nonzero(ok))
    i = int(ok.argmax()) if k else 0
    if ok[i : i + k].all():  # k true entries within k places: all of them, in one run
        return slice(i, i + k)
    return ok


def on_grid(series: Series, start_ns: int, end_ns: int, step_ns: int) -> Series:
    """The series sampled every `step_ns` from `start_ns` to `end_ns` (both included when
    `end_ns - start_ns` is a multiple of the step), as-of each grid time."""
    if step_ns <= 0:
        raise ValueError(f"step must be positive, got {step_ns}")
    grid = np.arange(start_ns, end_ns + 1, step_ns, dtype=np.int64)
    return Series(grid, as_of(series, grid))


def time_weights(ts: np.ndarray, end_ns: int | None = None) -> np.ndarray:
    """How long each value of a step function holds (ns): until the next stamp, the last one
    until `end_ns` (0 without it)."""
    if len(ts) == 0:
        return np.empty(0)
    last = ts[-1] if end_ns is None else max(int(end_ns), int(ts[-1]))
    return np.diff(np.append(ts, last)).astype(np.float64)


def dot(a: np.ndarray, b: np.ndarray) -> float:
    """``sum(a x b)`` without BLAS: for the sizes here (one account's fills, a few thousand
    grid points) `np.dot` spends far longer waking BLAS threads than multiplying, most of all on
    a busy machine."""
    return float(_add(np.multiply(a, b)))


def grid_slots(ts: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """For each time of `ts`, the index of the first point of `grid` at or after it
    (``len(grid)`` past the end): by arithmetic on a regular grid, else by search."""
    n = len(grid)
    if n > 1:
        step = int(grid[1] - grid[0])
        if step > 0 and int(grid[-1] - grid[0]) == step * (n - 1):  # regular (an arange)
            slot = -((int(grid[0]) - ts) // step)  # ceil((ts - grid[0]) / step)
            return np.clip(slot, 0, n)
    return np.searchsorted(grid, ts, side="left")


@dataclass(frozen=True, slots=True)
class GridRuns:
    """Events' grid slots (`grid_slots`, ascending) as runs of one slot each, for a grid of
    `n` points much longer than the events: each event's `run` (counted from 1: run 0 is the
    stretch before the first event, whose running total is 0) and how many grid points each
    run's running total holds for (`lengths`, run 0's first; 0 for a run past the grid's end),
    adding up to `n`."""

    run: np.ndarray
    lengths: np.ndarray

    @classmethod
    def of(cls, slots: np.ndarray, n: int) -> GridRuns:
        new = np.empty(len(slots), dtype=bool)
        new[:1] = True
        np.not_equal(slots[1:], slots[:-1], out=new[1:])
        edges = np.empty(int(np.count_nonzero(new)) + 2, dtype=np.int64)
        edges[0], edges[-1] = 0, n
        np.minimum(slots[new], n, out=edges[1:-1])  # each run's slot, the grid's end at most
        return cls(np.cumsum(new), edges[1:] - edges[:-1])


def cumulative_on_grid(
    ts: np.ndarray, weights: np.ndarray, grid: np.ndarray, slots: np.ndarray | None = None,
    runs: GridRuns | None = None,
) -> np.ndarray:
    """``sum(weights[ts <= g])`` at each `g` of `grid` (both ascending): a running total (a
    position, cash spent) sampled on a grid, in O(len(ts) + len(grid)) with no search of the
    grid's points through the events. `slots` (`grid_slots`) saves finding them again.

    With `runs` (`GridRuns` of those slots) the running sum is taken over the slots that hold
    events only and then spread over the grid: the same additions in the same order (an
    empty slot adds 0.0, which changes no running sum: none is ever -0.0), for a running sum
    over a few events instead of over every grid point."""
    n = len(grid)
    if runs is not None:
        # run 0's bin holds no event: 0.0, and 0.0 + x is x, so the running sums are those of
        # the runs' bins alone; each spread over its grid points in one pass
        total = np.bincount(runs.run, weights=weights, minlength=len(runs.lengths)).cumsum()
        return total.repeat(runs.lengths)
    slot = grid_slots(ts, grid) if slots is None else slots
    return np.cumsum(np.bincount(slot, weights=weights, minlength=n + 1))[:n]
