"""What a stress scenario did to the market: figures from a run's tables (pure, no IO).

Every function reads the run-directory columns (prices in ticks, times in ns) so the same
figures come from a simulated market in memory or from its Parquet files:

* `price_drawdown`: the largest fall of the traded price from its running peak, as a fraction
  of the peak (0.12: 12% below the highest price before it), and when the trough was
  (`agents.metrics.max_drawdown` on the price);
* `recovery_s`: seconds from the event's start until the price is back within `tol` (1%) of
  its target, the last price before the event (or F(t) after a fundamental shock), having
  left that band; 0 when it never left, None when it never came back within the run;
* `book_during`: the spread (time-weighted mean and maximum, ticks) and the share of the
  time one side of the book was empty, from the top-of-book changes in a window;
* `halts`: the volatility halts (phase changes to ``halted``) in a window.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

__all__ = ["book_during", "halts", "price_before", "price_drawdown", "recovery_s"]

NS = 1_000_000_000


def _series(trades: Mapping[str, Sequence], symbol: str) -> tuple[np.ndarray, np.ndarray]:
    sym = np.asarray(trades["symbol"], dtype=object)
    mask = sym == symbol
    return (np.asarray(trades["ts"], dtype=np.int64)[mask],
            np.asarray(trades["price"], dtype=np.float64)[mask])  # fmt: skip


def price_before(trades: Mapping[str, Sequence], symbol: str, t_ns: int) -> float | None:
    """The last traded price strictly before `t_ns` (None: nothing traded yet)."""
    ts, px = _series(trades, symbol)
    i = int(np.searchsorted(ts, t_ns, side="left"))
    return float(px[i - 1]) if i > 0 else None


def price_drawdown(trades: Mapping[str, Sequence], symbol: str, start_ns: int = 0,
                   end_ns: int | None = None) -> dict[str, float | None]:  # fmt: skip
    """Largest peak-to-trough fall of the traded price in [start, end): ``{"drawdown": fraction
    of the peak, "peak": ticks, "trough": ticks, "trough_s": seconds}`` (drawdown 0 and the
    rest None when fewer than two trades)."""
    from agents.metrics import max_drawdown

    ts, px = _series(trades, symbol)
    keep = (ts >= start_ns) & (ts < (end_ns if end_ns is not None else 2**62))
    ts, px = ts[keep], px[keep]
    if len(px) < 2:
        return {"drawdown": 0.0, "peak": None, "trough": None, "trough_s": None}
    dd = max_drawdown(ts, px, relative=True)
    if dd.trough_ns is None:
        return {"drawdown": 0.0, "peak": None, "trough": None, "trough_s": None}
    i = int(np.searchsorted(ts, dd.trough_ns, side="left"))
    return {"drawdown": dd.relative, "peak": float(px[i]) + dd.depth, "trough": float(px[i]),
            "trough_s": dd.trough_ns / NS}  # fmt: skip


def _step_value(ts: np.ndarray, values: np.ndarray, at: np.ndarray) -> np.ndarray:
    """The value in force at each time of `at` (the last one at or before it; NaN before any)."""
    i = np.searchsorted(ts, at, side="right") - 1
    out = np.where(i >= 0, values[np.clip(i, 0, None)], np.nan)
    return out.astype(np.float64)


def recovery_s(trades: Mapping[str, Sequence], symbol: str, t0_ns: int, tol: float = 0.01,
               target: float | None = None,
               fundamental: Mapping[str, Sequence] | None = None,
               tick_size: float = 1.0) -> float | None:  # fmt: skip
    """Seconds from `t0_ns` until the traded price is back within `tol` of the target after
    having left that band (see the module docstring). The target is `fundamental`'s F(t) (a
    ``ts, symbol, value`` table in currency, divided by `tick_size`) when given, else `target`,
    else the last price before `t0_ns`."""
    ts, px = _series(trades, symbol)
    after = ts >= t0_ns
    ts, px = ts[after], px[after]
    if fundamental is not None:
        fsym = np.asarray(fundamental["symbol"], dtype=object) == symbol
        fts = np.asarray(fundamental["ts"], dtype=np.int64)[fsym]
        fval = np.asarray(fundamental["value"], dtype=np.float64)[fsym] / tick_size
        goal = _step_value(fts, fval, ts)
    else:
        if target is None:
            target = price_before(trades, symbol, t0_ns)
        if target is None:
            return None
        goal = np.full(len(px), float(target))
    if not len(px):
        return None
    inside = np.abs(px / goal - 1.0) <= tol
    if fundamental is None and inside.all():
        return 0.0
    out = np.flatnonzero(~inside)
    if fundamental is not None and not len(out):
        return 0.0
    # after a shock the price starts outside the band around the new F: the first time
    # inside counts; otherwise the first time back inside after the first exit
    first_out = int(out[0]) if len(out) else 0
    back = np.flatnonzero(inside[first_out:])
    if not len(back):
        return None
    return float(ts[first_out + int(back[0])] - t0_ns) / NS


def _ticks(values: np.ndarray) -> np.ndarray:
    """Prices with None (an empty side) as NaN."""
    return np.asarray([np.nan if v is None else v for v in values], dtype=np.float64)


def book_during(top: Mapping[str, Sequence], symbol: str, start_ns: int,
                end_ns: int) -> dict[str, float | None]:  # fmt: skip
    """Spread and one-sidedness of the book over [start, end) from top-of-book changes:
    ``mean_spread`` (ticks, time-weighted over the time both sides were quoted),
    ``max_spread`` (ticks), ``one_sided`` (share of the window with a side empty or the book
crossed, as in a halt's call phase) and
    ``mean_top_qty`` (lots at the best bid plus best ask, time-weighted)."""
    sym = np.asarray(top["symbol"], dtype=object) == symbol
    ts = np.asarray(top["ts"], dtype=np.int64)[sym]
    bid = _ticks(np.asarray(top["bid"], dtype=object)[sym])
    ask = _ticks(np.asarray(top["ask"], dtype=object)[sym])
    qty = (np.asarray(top["bid_qty"], dtype=np.float64)[sym]
           + np.asarray(top["ask_qty"], dtype=np.float64)[sym])  # fmt: skip
    if end_ns <= start_ns:
        return {"mean_spread": None, "max_spread": None, "one_sided": None, "mean_top_qty": None}
    # the state in force at start, then every change inside the window
    i0 = int(np.searchsorted(ts, start_ns, side="right")) - 1
    i1 = int(np.searchsorted(ts, end_ns, side="left"))
    idx = np.arange(max(i0, 0), i1)
    if not len(idx):
        return {"mean_spread": None, "max_spread": None, "one_sided": 1.0, "mean_top_qty": 0.0}
    begins = np.maximum(ts[idx], start_ns)
    ends = np.append(begins[1:], end_ns)
    dur = (ends - begins).astype(np.float64)
    # nothing quoted before the first change: one-sided until then
    lead = float(ts[idx[0]] - start_ns) if i0 < 0 else 0.0
    spread = ask[idx] - bid[idx]
    # two-sided and not crossed (a book crosses only in a halt's or auction's call phase)
    two = np.isfinite(spread) & (spread > 0)
    total = float(end_ns - start_ns)
    quoted = float(dur[two].sum())
    return {
        "mean_spread": float((spread[two] * dur[two]).sum() / quoted) if quoted > 0 else None,
        "max_spread": float(spread[two].max()) if two.any() else None,
        "one_sided": (float(dur[~two].sum()) + lead) / total,
        "mean_top_qty": float((qty[idx] * dur).sum() / total),
    }


def halts(status: Sequence[tuple], symbol: str, start_ns: int = 0,
          end_ns: int | None = None) -> int:  # fmt: skip
    """Volatility halts of `symbol` that began in [start, end): raw STATUS events
    ``(kind, seq, symbol, phase, reason, band_low, band_high, halt_until, ts)``."""
    end = end_ns if end_ns is not None else 2**62
    return sum(1 for ev in status
               if ev[2] == symbol and ev[3] == "halted" and start_ns <= ev[8] < end)  # fmt: skip


def finite(x: float | None) -> float | None:
    return x if x is not None and math.isfinite(x) else None
