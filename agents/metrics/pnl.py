"""PnL from fills: the split into trading and inventory PnL (`agents.analysis.pnl`), realised
and unrealised PnL, fees and rebates, and the PnL curve over time.

Everything in cash units: ``ticks x lots x multiplier`` (the multiplier is cash units per tick x
lot, 1 for a 0.01 tick, 1-share lot and 0.01 cash unit).

* Trading and inventory PnL are `agents.analysis.pnl.split` (the same code as the leaderboard
  and the simulated market's results): trading is what the account's own trades made marked to
  the mark, minus fees; inventory the starting position times the price move since the start.
* Realised and unrealised PnL use the average-cost method, the starting position at the
  starting mark (the clearing house's cost basis for a handed-out allocation): a fill that
  adds to the position raises its cost, one that reduces it realises ``(p - average cost) x
  qty`` (signed), one that flips it realises the whole old position and opens the rest at p.
  ``unrealised = (mark - average cost) x position``, ``realised = gross PnL - unrealised``, both
  before fees, so ``realised + unrealised - fees = trading + inventory = total``.
* Fees are what the account paid (positive) and rebates what it was paid (negative fees),
  reported apart; `fees` in the breakdown is the net.

The average cost is a linear recurrence over the fills (``C_k = a_k C_{k-1} + b_k`` for the cost
``C = average cost x position``), solved with cumulative products, so an account with a
million fills costs no Python loop.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from agents.analysis.pnl import split
from agents.metrics.series import Fills, Series, as_of, cumulative_on_grid, dot, grid_slots

_add = np.add.reduce

__all__ = ["PnlBreakdown", "average_cost", "breakdown", "pnl_curve"]


@dataclass(frozen=True, slots=True)
class PnlBreakdown:
    """Total PnL and its parts (cash units): total = trading + inventory
    = realised + unrealised - fees; fees = fees_paid - rebates."""

    total: float
    trading: float
    inventory: float
    realised: float
    unrealised: float
    fees: float
    fees_paid: float
    rebates: float


def average_cost(
    signed_qty: np.ndarray, price: np.ndarray, start_position: float = 0.0,
    start_price: float = 0.0,
) -> tuple[float, float]:
    """(final position, its cost ``average cost x position``) after fills of `signed_qty` at
    `price`, from `start_position` held at `start_price` (average-cost method)."""
    dq = np.asarray(signed_qty, dtype=float)
    p = np.asarray(price, dtype=float)
    n = len(dq)
    pos = np.cumsum(dq)
    pos += start_position
    before = np.empty(n)
    before[:1] = start_position
    before[1:] = pos[:-1]
    # four scratch arrays for every pass (a long series allocates no more: fresh memory is
    # much of what a million fills cost); the same operations, so the same numbers
    scratch = np.multiply(before, pos)
    flips = scratch < 0
    # a fill reduces when it brings the position nearer 0 without crossing it (|before| > 0
    # follows); flips and reduces never overlap; whole-array passes (no per-fill selection)
    a = np.abs(before)
    reduces = np.abs(pos, out=scratch) < a
    reduces &= ~flips
    # the reducing fills by index: a fill reduces or not at random, and a masked pass that
    # branches on each element costs ten times one that gathers and scatters by index
    at = reduces.nonzero()[0]
    a.fill(1.0)
    a[at] = pos[at] / before[at]
    np.copyto(a, 0.0, where=flips)
    b = np.multiply(p, dq, out=scratch)
    b[at] = 0.0
    np.copyto(b, np.multiply(p, pos, out=before), where=flips)
    final = float(pos[-1]) if len(pos) else float(start_position)
    # C_n = C_0 prod(a) + sum_k b_k prod_{j>k} a_j; tail[i] = prod of the last i factors
    tail = np.empty(n + 1)
    tail[0] = 1.0
    np.cumprod(a[::-1], out=tail[1:])
    spread = float(_add(np.multiply(b, tail[n - 1 :: -1], out=pos))) if n else 0.0
    cost = start_price * start_position * tail[n] + spread
    return final, float(cost)


def breakdown(
    fills: Fills, mark: float, start_position: float = 0.0, start_mark: float | None = None,
    multiplier: float = 1.0, *, signed_qty: np.ndarray | None = None,
) -> PnlBreakdown:
    """The PnL of `fills` (plus a starting position valued at `start_mark`) marked to `mark`;
    `signed_qty` is ``fills.signed_qty`` when the caller has it already."""
    s0 = mark if start_mark is None else start_mark
    dq = fills.signed_qty if signed_qty is None else signed_qty
    position, cost = average_cost(dq, fills.price, start_position, s0)
    cash = -float(dot(fills.price, dq)) * multiplier
    charged = bool(fills.fee.any())
    if charged:
        fees_paid = float(fills.fee[fills.fee > 0].sum())
        rebates = 0.0 - float(fills.fee[fills.fee < 0].sum())
    else:  # what the sums of nothing give
        fees_paid, rebates = 0.0, 0.0
    fees = fees_paid - rebates
    gross = cash + (position * mark - start_position * s0) * multiplier
    unrealised = (mark * position - cost) * multiplier
    # fees that are all zero are whole numbers: not looked at again
    fee = (fills.fee,) if charged else ()
    if _integral(fills.price, dq, *fee, mark, s0, start_position, multiplier):
        parts = split(0, {"": int(start_position)}, round(cash - fees), {"": int(position)},
                      {"": int(s0)}, {"": int(mark)}, {"": int(multiplier)})  # fmt: skip
        trading, inventory = float(parts.trading), float(parts.inventory)
    else:  # the same formula in floats (a mid-priced mark, a fractional multiplier)
        inventory = start_position * (mark - s0) * multiplier
        trading = gross - fees - inventory
    return PnlBreakdown(trading + inventory, trading, inventory, gross - unrealised, unrealised,
                        fees, fees_paid, rebates)  # fmt: skip


def _integral(*xs: object) -> bool:
    for x in xs:
        if isinstance(x, np.ndarray):
            # x - floor(x) is 0 exactly for the whole numbers (NaN for NaN and infinities),
            # worked out in one scratch array
            if x.size:
                frac = np.floor(x)
                np.subtract(x, frac, out=frac)
                if frac.any():
                    return False
        elif not float(x).is_integer():  # type: ignore[arg-type]
            return False
    return True


def pnl_curve(
    fills: Fills, marks: Series, grid: np.ndarray, start_position: float = 0.0,
    start_mark: float | None = None, multiplier: float = 1.0,
    marks_on_grid: np.ndarray | None = None,
) -> np.ndarray:
    """Total PnL (cash units, net of fees as they are paid) at each time of `grid`: cash spent
    and received by then plus the position by then at the mark by then (`marks`, a step
    function such as the last trade price), minus the starting position at `start_mark`.
    Before the first mark the position is valued at `start_mark`. `marks_on_grid` (the marks
    already sampled at `grid`) saves sampling them again for every account of a market.

    With ``start_position = 0`` this is the trading PnL curve: what the account's own trades
    made, the drift of what it was handed left out."""
    g = np.asarray(grid, dtype=np.int64)
    m = as_of(marks, g) if marks_on_grid is None else marks_on_grid
    s0 = float(start_mark) if start_mark is not None else (
        float(marks.values[0]) if len(marks) else 0.0)  # fmt: skip
    m = np.where(np.isfinite(m), m, s0)
    dq = fills.signed_qty
    slots = grid_slots(fills.ts, g)
    pos = start_position + cumulative_on_grid(fills.ts, dq, g, slots)
    spent = cumulative_on_grid(fills.ts, fills.price * dq, g, slots)
    fees = cumulative_on_grid(fills.ts, fills.fee, g, slots) if fills.fee.any() else 0.0
    return (pos * m - start_position * s0 - spent) * multiplier - fees
