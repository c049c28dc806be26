"""Small helpers shared by the strategies: symbol choice, reference prices, rolling windows.

Everything here is plain Python on floats and ints (no numpy, no pydantic per event): these
helpers sit on the hot path of strategies driven at 100k+ events per second in simulated time.
"""

from __future__ import annotations

import math
from collections import deque

from agents.agent import Context

__all__ = [
    "ExpiryQueue",
    "RollingWindow",
    "exp_interval",
    "market_price",
    "pending_signed",
    "reference_ticks",
    "resolve_symbol",
    "trade_toward",
]


def resolve_symbol(ctx: Context, symbol: str | None) -> str:
    """The symbol a single-symbol strategy trades: its parameter, else the host's first."""
    if symbol is not None:
        if symbol not in ctx.specs:
            raise ValueError(f"symbol {symbol!r} is not traded here (have {ctx.symbols})")
        return symbol
    if not ctx.symbols:
        raise ValueError("the host trades no symbol")
    return ctx.symbols[0]


def reference_ticks(ctx: Context, symbol: str, order: tuple[str, ...] = ("last", "mid")) -> float:
    """A price in ticks to anchor on: the sources in `order` first, then last, mid, F, spec.

    Sources: "last" (last trade), "mid" (top-of-book mid), "fundamental" (F(t) converted to
    ticks), "reference" (the spec's reference price, always available).
    """
    try:  # the sources to try, built once per `order` (a hot path of the crowd)
        chain = _CHAINS[order]
    except (KeyError, TypeError):  # new, or not hashable (a list)
        chain = (*order, "last", "mid", "fundamental")
        if isinstance(order, tuple):
            _CHAINS[order] = chain
    for source in chain:
        if source == "last":
            last = ctx.last_price(symbol)
            if last is not None:
                return float(last)
        elif source == "mid":
            q = ctx.quote(symbol)
            if q is not None and q.bid is not None and q.ask is not None:
                return (q.bid + q.ask) / 2
        elif source == "fundamental":
            f = ctx.fundamental(symbol)
            if f is not None and f > 0:
                return f / float(ctx.spec(symbol).tick_size)
        elif source == "reference":
            break
    return float(ctx.spec(symbol).reference_price)


_CHAINS: dict[tuple[str, ...], tuple[str, ...]] = {}


def market_price(ctx: Context, symbol: str, source: str = "last") -> float | None:
    """An observed market price in ticks: `source` ("last" or "mid") first, then the other."""
    last = ctx.last_price(symbol)
    q = ctx.quote(symbol)
    mid = None
    if q is not None and q.bid is not None and q.ask is not None:
        mid = (q.bid + q.ask) / 2
    if source == "mid":
        return mid if mid is not None else (None if last is None else float(last))
    return float(last) if last is not None else mid


def exp_interval(ctx: Context, mean_ns: float) -> int:
    """An exponential waiting time (a Poisson process step) in whole ns, at least 1."""
    return max(1, int(ctx.rng.exponential(mean_ns)))


def pending_signed(ctx: Context, symbol: str) -> int:
    """Signed open quantity of the agent's working orders (+ buys, - sells) on `symbol`."""
    total = 0
    for o in ctx.portfolio.orders.values():
        if o.symbol == symbol and not o.cancel_pending:
            total += o.leaves_qty if o.side == "buy" else -o.leaves_qty
    return total


class ExpiryQueue:
    """Client order ids with a time to live, oldest first, swept by one single-shot timer.

    All orders of one queue share a lifetime, so expiry times are in sending order and a FIFO
    suffices. `track` arms the timer when the queue was empty; the agent calls `sweep` when the
    timer fires, which cancels what is due and re-arms the timer for the next expiry.
    """

    __slots__ = ("_q", "timer")

    def __init__(self, timer: str) -> None:
        self.timer = timer
        self._q: deque[tuple[int, str]] = deque()

    def __len__(self) -> int:
        return len(self._q)

    def track(self, ctx: Context, clid: str, lifetime_ns: int) -> None:
        if lifetime_ns <= 0:
            return
        if not self._q:
            ctx.set_timer(self.timer, lifetime_ns, repeat=False)
        self._q.append((ctx.now() + lifetime_ns, clid))

    def pop_due(self, now: int) -> list[str]:
        """Remove and return every id whose time has come."""
        q = self._q
        out: list[str] = []
        while q and q[0][0] <= now:
            out.append(q.popleft()[1])
        return out

    def next_due(self) -> int | None:
        return self._q[0][0] if self._q else None

    def sweep(self, ctx: Context) -> int:
        """Cancel the due orders that are still open; returns how many were asked."""
        now = ctx.now()
        orders = ctx.portfolio.orders
        n = 0
        for clid in self.pop_due(now):
            if clid in orders and ctx.cancel(clid):
                n += 1
        nxt = self.next_due()
        if nxt is not None:
            ctx.set_timer(self.timer, max(1, nxt - now), repeat=False)
        return n


class RollingWindow:
    """Mean and standard deviation of the last `size` values in O(1) per update.

    Values are shifted by the first one seen before summing, so prices in the thousands of
    ticks with a variance of a few ticks² keep full precision.
    """

    __slots__ = ("_q", "_s", "_shift", "_ss", "size")

    def __init__(self, size: int) -> None:
        if size < 1:
            raise ValueError("window size must be >= 1")
        self.size = size
        self._q: deque[float] = deque()
        self._s = 0.0
        self._ss = 0.0
        self._shift: float | None = None

    def __len__(self) -> int:
        return len(self._q)

    @property
    def full(self) -> bool:
        return len(self._q) >= self.size

    def push(self, value: float) -> None:
        if self._shift is None:
            self._shift = value
        v = value - self._shift
        self._q.append(v)
        self._s += v
        self._ss += v * v
        if len(self._q) > self.size:
            old = self._q.popleft()
            self._s -= old
            self._ss -= old * old

    @property
    def mean(self) -> float:
        n = len(self._q)
        if n == 0:
            raise ValueError("empty window")
        return self._s / n + (self._shift or 0.0)

    @property
    def std(self) -> float:
        """Population standard deviation of the window (0 when fewer than two values)."""
        n = len(self._q)
        if n < 2:
            return 0.0
        m = self._s / n
        return math.sqrt(max(0.0, self._ss / n - m * m))


def trade_toward(
    ctx: Context,
    symbol: str,
    target: int,
    chunk: int,
    market: bool = True,
    aggressive_ticks: int = 0,
) -> str | None:
    """Send one order of at most `chunk` lots moving position + working orders toward `target`.

    Market orders, or IOC limit orders `aggressive_ticks` through the opposite best quote
    (skipped when that side of the book is empty). Returns the client order id, if any.
    """
    diff = target - ctx.position(symbol) - pending_signed(ctx, symbol)
    if diff == 0:
        return None
    qty = min(abs(diff), chunk)
    side = "buy" if diff > 0 else "sell"
    if market:
        return ctx.submit(symbol, side, qty)
    q = ctx.quote(symbol)
    if q is None:
        return None
    if side == "buy":
        if q.ask is None:
            return None
        price = q.ask + aggressive_ticks
    else:
        if q.bid is None:
            return None
        price = max(1, q.bid - aggressive_ticks)
    return ctx.submit(symbol, side, qty, price, tif="IOC")
