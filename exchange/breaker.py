"""Volatility circuit breaker: how far the price may move within a sliding time window.

Rule: a trade at price p is allowed only while p stays within ``move_bps`` of *every* price the
symbol had during the last ``window_ns``, that is of every trade in the window and of the price in
force when the window opened (the last trade before it, or the reference price). Equivalently
``max * (1 - X) <= p <= min * (1 + X)`` over that set. A trade outside trips the breaker: the
symbol halts and later reopens with an auction (see ``engine.py``).

The window's min and max are kept with two monotonic deques (the sliding-window-extremum
trick), so each recorded price costs O(1) amortised, plus a plain deque of all window trades to
know the price in force at the window's start. The band is cached in ``low``/``high`` and only
recomputed when a price is recorded or the oldest window entry expires, because the engine
reads it on every aggressive order.

A trade at the price already in force (``last``) is not recorded at all. The rule only looks at
the *set* of prices in force during the window, and the price-in-force timeline is a step
function that such a trade leaves unchanged: while the earlier entry at that price is in the
window the price is in the set through it, and once it expires it becomes the anchor, so the
price stays in the set exactly as long as the skipped entry would have kept it there. Most fills
repeat the last price, so this skips most of the work (and keeps the window short).
"""

from __future__ import annotations

from collections import deque

__all__ = ["VolatilityBreaker"]

_NEVER = 2**63


class VolatilityBreaker:
    __slots__ = (
        "_all",
        "_anchor",
        "_max",
        "_min",
        "expires",
        "high",
        "last",
        "low",
        "move_bps",
        "window_ns",
    )

    def __init__(self, move_bps: int, window_ns: int, reference: int) -> None:
        self.move_bps = move_bps
        self.window_ns = window_ns
        self.reset(reference)

    def reset(self, price: int) -> None:
        """Forget history; `price` is the price in force from now (after an auction, say)."""
        self._anchor = price  # the price in force when the window opened
        self.last = price  # the price in force now: the last recorded trade, or the reset price
        self._all: deque[tuple[int, int]] = deque()  # (ts, price) of every trade in the window
        self._min: deque[tuple[int, int]] = deque()  # increasing prices
        self._max: deque[tuple[int, int]] = deque()  # decreasing prices
        self._recompute()

    def band(self, now: int) -> tuple[int, int]:
        """Inclusive [low, high] of prices that may trade at time `now` without tripping."""
        if now >= self.expires:
            self._expire(now)
        return self.low, self.high

    def record(self, ts: int, price: int) -> None:
        """A trade happened at `price` (call once per price level traded, in time order).

        A price equal to ``last`` changes nothing (see the module docstring), so callers may skip
        the call in that case; the engine does.
        """
        if ts >= self.expires:
            self._expire(ts)
        if price == self.last:
            return
        self.last = price
        entry = (ts, price)
        self._all.append(entry)
        lo, hi = self._min, self._max
        while lo and lo[-1][1] >= price:
            lo.pop()
        lo.append(entry)
        while hi and hi[-1][1] <= price:
            hi.pop()
        hi.append(entry)
        # The band moves only if this price is a new window extreme (or the window was empty).
        if len(lo) == 1 or len(hi) == 1 or len(self._all) == 1:
            self._recompute()

    def _expire(self, now: int) -> None:
        cutoff = now - self.window_ns
        trades = self._all
        while trades and trades[0][0] <= cutoff:
            self._anchor = trades.popleft()[1]
        lo, hi = self._min, self._max
        while lo and lo[0][0] <= cutoff:
            lo.popleft()
        while hi and hi[0][0] <= cutoff:
            hi.popleft()
        self._recompute()

    def _recompute(self) -> None:
        anchor, bps = self._anchor, self.move_bps
        low_px = min(anchor, self._min[0][1]) if self._min else anchor
        high_px = max(anchor, self._max[0][1]) if self._max else anchor
        self.low = max(1, -((-high_px * (10_000 - bps)) // 10_000))  # ceil(max * (1 - X))
        self.high = (low_px * (10_000 + bps)) // 10_000  # floor(min * (1 + X))
        self.expires = self._all[0][0] + self.window_ns if self._all else _NEVER
