"""The order book of one symbol: two sides of price levels with FIFO queues.

Shape (the classic price-time priority book, tuned for CPython):

* A side holds ``levels: dict[price, Level]`` and a binary heap of its prices (negated for bids,
  so ``heap[0]`` is always the best price on either side). The heap gives O(log n) insertion of a
  new price and O(1) access to the best one; the dict gives O(1) access to any level.
* A level holds a FIFO ``deque`` of orders plus its live quantity and order count.
* Removal is lazy. A cancelled order is only marked dead (``leaves = 0``) and stays in its deque
  until it reaches the front; an emptied level is dropped from the dict at once but its price
  stays in the heap until it surfaces. Invariant: ``heap[0]``, when present, is a live level, so
  best bid/ask is O(1); every other heap entry may be stale. A dead entry costs one ``popleft``
  later instead of an O(n) deque removal now.
* To keep stale entries bounded, a level's deque is compacted when dead orders dominate it, and a
  side's heap is rebuilt when stale prices outnumber live ones.

The book is only the data structure and its queries; the rules (matching, validation, auctions,
halts) live in ``engine.py``.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from heapq import heapify, heappop, heappush, nlargest, nsmallest
from typing import Any

from exchange.constants import BUY

__all__ = ["Book", "Level", "Order", "Side"]


class Order:
    """A live order. Mutable on purpose: fills and amendments update it in place."""

    __slots__ = (
        "account",
        "client_order_id",
        "leaves",
        "order_id",
        "order_type",
        "post_only",
        "price",
        "qty",
        "side",
        "stp",
        "symbol",
        "tif",
        "ts",
    )

    def __init__(
        self,
        order_id: int,
        client_order_id: Any,
        account: Any,
        symbol: str,
        side: str,
        order_type: str,
        price: int | None,
        qty: int,
        tif: str,
        post_only: bool,
        stp: str,
        ts: int,
    ) -> None:
        self.order_id = order_id
        self.client_order_id = client_order_id
        self.account = account
        self.symbol = symbol
        self.side = side
        self.order_type = order_type
        self.price = price
        self.qty = qty  # quantity in force: filled + leaves
        self.leaves = qty  # 0 means dead (filled, cancelled, or superseded by a replace)
        self.tif = tif
        self.post_only = post_only
        self.stp = stp
        self.ts = ts

    @property
    def cum(self) -> int:
        """Filled quantity. Derived, not stored: one attribute less to update per fill.

        (The average fill price is the gateway's to track from the trade events, for the same
        reason: the engine never needs it.)"""
        return self.qty - self.leaves

    def clone(self) -> Order:
        """A copy that takes this order's place (a replace that loses priority)."""
        twin = Order(
            self.order_id, self.client_order_id, self.account, self.symbol, self.side,
            self.order_type, self.price, self.qty, self.tif, self.post_only, self.stp, self.ts,
        )  # fmt: skip
        twin.leaves = self.leaves
        return twin

    def __repr__(self) -> str:
        return (
            f"Order(id={self.order_id}, {self.side} {self.leaves}/{self.qty} @ {self.price}, "
            f"acct={self.account!r}, tif={self.tif})"
        )


class Level:
    """All resting orders at one price, oldest first."""

    __slots__ = ("count", "orders", "price", "qty")

    def __init__(self, price: int) -> None:
        self.price = price
        self.orders: deque[Order] = deque()
        self.qty = 0  # live quantity
        self.count = 0  # live orders

    def live(self) -> Iterator[Order]:
        """Live orders in time priority (skips lazily-deleted entries)."""
        return (o for o in self.orders if o.leaves)

    def compact(self) -> None:
        """Drop dead entries, keeping order; called when they dominate the deque."""
        self.orders = deque(o for o in self.orders if o.leaves)


class Side:
    """One side of a book: price levels, a heap of their prices, lazily cleaned."""

    __slots__ = ("heap", "heaped", "is_bid", "levels", "sign")

    def __init__(self, is_bid: bool) -> None:
        self.is_bid = is_bid
        self.sign = -1 if is_bid else 1  # heap key = sign * price, so heap[0] is the best
        self.levels: dict[int, Level] = {}
        self.heap: list[int] = []
        self.heaped: set[int] = set()  # prices present in the heap (live or stale)

    def __len__(self) -> int:
        return len(self.levels)

    @property
    def best(self) -> int | None:
        heap = self.heap
        return heap[0] * self.sign if heap else None

    def level(self, price: int) -> Level:
        """The level at `price`, created (and its price heaped) if it does not exist."""
        level = self.levels.get(price)
        if level is None:
            level = self.levels[price] = Level(price)
            if price not in self.heaped:
                self.heaped.add(price)
                heappush(self.heap, self.sign * price)
        return level

    def drop(self, price: int) -> None:
        """Forget an emptied level; restore the invariant that heap[0] is live."""
        del self.levels[price]
        heap, levels, sign = self.heap, self.levels, self.sign
        if heap and heap[0] * sign == price:
            heaped = self.heaped
            while heap and heap[0] * sign not in levels:
                heaped.discard(heappop(heap) * sign)
        if len(heap) > 2 * len(levels) + 64:
            self.rebuild_heap()

    def rebuild_heap(self) -> None:
        """Drop stale prices. In place: the matching loop holds a reference to this list."""
        self.heap[:] = [self.sign * p for p in self.levels]
        heapify(self.heap)
        self.heaped.clear()
        self.heaped.update(self.levels)

    def prices(self) -> list[int]:
        """Live prices, best first."""
        return sorted(self.levels, reverse=self.is_bid)

    def depth(self, n: int | None = None) -> list[tuple[int, int, int]]:
        """(price, qty, count) of the best `n` levels (all when n is None), best first."""
        prices = self.prices() if n is None else _best_n(self.levels, n, self.is_bid)
        levels = self.levels
        return [(p, levels[p].qty, levels[p].count) for p in prices]

    def orders(self) -> Iterator[Order]:
        """Every live order in priority order (price, then time)."""
        for price in self.prices():
            yield from self.levels[price].live()


def _best_n(levels: dict[int, Level], n: int, is_bid: bool) -> list[int]:
    if n <= 0:
        return []
    return nlargest(n, levels) if is_bid else nsmallest(n, levels)


class Book:
    """Both sides of one symbol plus its sequence number and last trade."""

    __slots__ = ("asks", "bids", "last_price", "last_qty", "seq", "symbol")

    def __init__(self, symbol: str) -> None:
        self.symbol = symbol
        self.bids = Side(is_bid=True)
        self.asks = Side(is_bid=False)
        self.seq = 0  # per-symbol event sequence number (see events.py)
        self.last_price: int | None = None
        self.last_qty = 0

    def side(self, side: str) -> Side:
        return self.bids if side == BUY else self.asks

    @property
    def best_bid(self) -> int | None:
        return self.bids.best

    @property
    def best_ask(self) -> int | None:
        return self.asks.best

    @property
    def mid(self) -> float | None:
        bid, ask = self.bids.best, self.asks.best
        return None if bid is None or ask is None else (bid + ask) / 2

    @property
    def spread(self) -> int | None:
        bid, ask = self.bids.best, self.asks.best
        return None if bid is None or ask is None else ask - bid

    def imbalance(self, levels: int = 1) -> float | None:
        """(bid qty - ask qty) / (bid qty + ask qty) over the best `levels` levels, in [-1, 1]."""
        bq = sum(q for _, q, _ in self.bids.depth(levels))
        aq = sum(q for _, q, _ in self.asks.depth(levels))
        return None if bq + aq == 0 else (bq - aq) / (bq + aq)

    def depth(
        self, n: int | None = None
    ) -> tuple[list[tuple[int, int, int]], list[tuple[int, int, int]]]:
        """L2: (bids, asks), each a list of (price, qty, count), best first."""
        return self.bids.depth(n), self.asks.depth(n)

    def level_orders(self, side: str, price: int) -> list[Order]:
        """L3: live orders resting at `price` on `side`, in time priority."""
        level = self.side(side).levels.get(price)
        return [] if level is None else list(level.live())

    def is_crossed(self) -> bool:
        bid, ask = self.bids.best, self.asks.best
        return bid is not None and ask is not None and bid >= ask
