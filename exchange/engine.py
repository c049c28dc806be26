"""The matching engine: validation, price-time matching, auctions and circuit breakers.

Pure by design (ARCHITECTURE.md, "cores are pure"): no sockets, no clock, no randomness, no
logging. Every public command takes plain values plus the caller's timestamp ``ts`` (integer
nanoseconds) and returns the list of events it caused (``events.py``), in order. The same inputs
always give the same events, which is what makes journalling, replay and simulated time work.

Reading guide, following one order:

1. ``submit`` validates the order; a bad one gets a single REJECTED event with a reason.
2. A good one gets an id and an ACCEPTED event.
3. In continuous trading, if it crosses the opposite best price, ``_take`` walks the opposite
   side best price first and each level oldest order first, emitting a TRADE per fill at the
   *resting* order's price and one BOOK event per level it touched.
4. Whatever remains either rests (GTC/DAY limit: ``_rest`` adds it to its level, BOOK event) or
   is cancelled (IOC, FOK, market: CANCELLED event with the reason).

During an auction or a halt, step 3 is skipped and orders simply rest (crossed books allowed)
until ``uncross`` computes one price for all of them (``auction.py``).

Performance notes: this file is the hot path (issue 2 asks for >= 500k messages/s in pure
Python), hence plain tuples for events, locals bound in loops, and validation as a flat chain of
comparisons. Pydantic stays at the process edge.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator
from itertools import chain
from types import SimpleNamespace
from typing import Any

from exchange.auction import AuctionResult, clearing_price
from exchange.book import Book, Order
from exchange.breaker import VolatilityBreaker
from exchange.constants import (
    BUY,
    DAY,
    FOK,
    GTC,
    IOC,
    LIMIT,
    MARKET,
    NONE,
    SELL,
    STP_CANCEL_BOTH,
    STP_CANCEL_NEWEST,
    STP_CANCEL_OLDEST,
    CancelReason,
    Phase,
    RejectReason,
)
from exchange.events import ACCEPTED, BOOK, CANCELLED, REJECTED, REPLACED, STATUS, TRADE
from exchange.symbols import SymbolSpec

__all__ = ["EPOCH_BITS", "Engine", "Market", "trade_epoch"]

EPOCH_BITS = 32
"""Trade ids are ``epoch << EPOCH_BITS | n``: `n` counts from 1 within an incarnation of the
exchange (an epoch), so an exchange that restarts into a new epoch can never issue an id that
an earlier incarnation already published, even if its journal lost its tail. Epoch 0 (the
default, and the simulator's) gives the plain ids 1, 2, 3 ..."""
_MAX_EPOCH = 2**31 - 1  # ids stay within the signed 64-bit range of the wire


def trade_epoch(trade_id: int) -> int:
    """The epoch (exchange incarnation) a trade id was issued in."""
    return trade_id >> EPOCH_BITS

_NO_BAND = (1, 2**62)
_NEVER = 2**63  # a wake-up time that never comes
_NOBODY = object()  # stands in for account None: equal to no account, so no self-trade check

_TIFS = frozenset((GTC, DAY, IOC, FOK))
_STPS = frozenset((STP_CANCEL_NEWEST, STP_CANCEL_OLDEST, STP_CANCEL_BOTH))
_CONTINUOUS = Phase.CONTINUOUS.value
_AUCTION = Phase.AUCTION.value
_HALTED = Phase.HALTED.value
_CLOSED = Phase.CLOSED.value

# Plain-str views of the reason enums: R.PRICE_OFF_TICK == "price_off_tick", but an attribute of
# a namespace is cheaper than an enum member, and events carry exact str, not enum members.
R = SimpleNamespace(**{r.name: r.value for r in RejectReason})
C = SimpleNamespace(**{c.name: c.value for c in CancelReason})
_C_USER, _C_MASS, _C_IOC, _C_FOK = C.USER, C.MASS_CANCEL, C.IOC, C.FOK
_C_NOLIQ, _C_STP, _C_HALTED = C.NO_LIQUIDITY, C.SELF_TRADE, C.HALTED
_R_UNKNOWN_ORDER = R.UNKNOWN_ORDER
_new_object = object.__new__


class Market:
    """Engine-side state of one symbol: its book, spec, phase and breakers."""

    __slots__ = (
        "band",
        "band_high",
        "band_low",
        "book",
        "breaker",
        "follow_auction",
        "follow_last",
        "halt_until",
        "market_orders",
        "max_qty",
        "phase",
        "reference",
        "spec",
        "wakeup",
    )

    def __init__(self, spec: SymbolSpec, ts: int) -> None:
        self.spec = spec
        self.book = Book(spec.symbol)
        self.reference = spec.reference_price
        self.set_band(self.reference)
        # A moving band (spec.band_reference): its centre follows the last trade, or the last
        # auction price, so a market that drifts is followed; the breaker still halts a jump.
        mode = spec.band_reference
        self.follow_last = mode == "last" and bool(spec.band_bps)
        self.follow_auction = mode != "static" and bool(spec.band_bps)
        self.max_qty = spec.max_qty
        self.breaker = (
            VolatilityBreaker(spec.halt_move_bps, spec.halt_window_ns, self.reference)
            if spec.halt_move_bps
            else None
        )
        batch = spec.batch_interval_ns
        self.phase = _AUCTION if (spec.opening_auction or batch) else _CONTINUOUS
        self.wakeup = ts + batch if batch else _NEVER  # next timed transition
        self.halt_until: int | None = None
        # Market orders collected during an auction do not sit on a price level; they queue here,
        # ahead of every limit order, until the uncross.
        self.market_orders: dict[str, deque[Order]] = {BUY: deque(), SELL: deque()}

    @property
    def symbol(self) -> str:
        return self.spec.symbol

    def set_band(self, reference: int) -> None:
        self.band = self.spec.band(reference)  # inclusive, in ticks
        self.band_low, self.band_high = self.band

    def recentre(self, price: int) -> None:
        """Move a moving band's reference to `price` (a trade or an auction price)."""
        if price != self.reference:
            self.reference = price
            self.set_band(price)


class Engine:
    """A multi-symbol matching engine. See the module docstring for the life of an order."""

    def __init__(self, specs: Iterable[SymbolSpec] = (), ts: int = 0) -> None:
        self._markets: dict[str, Market] = {}
        # Every open order by id. Deliberately no per-account index: it would cost two dict
        # operations per order on the hot path, while the queries that want one (open orders,
        # the kill switch) are rare and a scan of the open orders is cheap enough for them.
        self._orders: dict[int, Order] = {}
        self._clids: dict[Any, dict[Any, int]] = {}  # client order id -> order id, per account
        self._next_order_id = 1
        self._trade_id = 0  # last trade id issued (engine-wide)
        for spec in specs:
            self.add_symbol(spec, ts)

    # ------------------------------------------------------------------ administration
    def add_symbol(self, spec: SymbolSpec, ts: int = 0) -> None:
        if spec.symbol in self._markets:
            raise ValueError(f"symbol {spec.symbol!r} already listed")
        self._markets[spec.symbol] = Market(spec, ts)

    @property
    def symbols(self) -> list[str]:
        return list(self._markets)

    @property
    def last_trade_id(self) -> int:
        return self._trade_id

    @property
    def epoch(self) -> int:
        return self._trade_id >> EPOCH_BITS

    def start_epoch(self, epoch: int) -> None:
        """Issue trade ids of `epoch` from now on (``epoch << EPOCH_BITS | 1`` next).

        Epochs only move forward: an earlier epoch's ids may already be published.
        """
        if epoch.__class__ is not int or not 0 <= epoch <= _MAX_EPOCH:
            raise ValueError(f"epoch must be an int in 0..{_MAX_EPOCH}, not {epoch!r}")
        if epoch < self.epoch or (epoch == self.epoch and self._trade_id & ((1 << EPOCH_BITS) - 1)):
            raise ValueError(f"epoch {epoch} is not after the current epoch {self.epoch}")
        self._trade_id = epoch << EPOCH_BITS

    def market(self, symbol: str) -> Market:
        return self._markets[symbol]

    def book(self, symbol: str) -> Book:
        return self._markets[symbol].book

    # ------------------------------------------------------------------ commands
    def submit(
        self,
        symbol: str,
        side: str,
        order_type: str,
        qty: int,
        price: int | None = None,
        account: Any = None,
        client_order_id: Any = None,
        tif: str = GTC,
        ts: int = 0,
        post_only: bool = False,
        stp: str = STP_CANCEL_NEWEST,
    ) -> list[tuple]:
        """A new order. Returns its events: REJECTED, or ACCEPTED then trades/book/cancel."""
        out: list[tuple] = []
        try:  # (try/except costs nothing when nothing is raised; .get() is a method call)
            m = self._markets[symbol]
        except (KeyError, TypeError):
            return self._reject(
                out, symbol, 0, client_order_id, account, "new", R.UNKNOWN_SYMBOL, ts
            )
        if ts >= m.wakeup:
            self._wake(m, ts, out)
        phase = m.phase
        book = m.book

        # -- validation: one expression admits the common case (a plain limit or market order
        # in continuous trading); anything else goes through _invalid, which names the reason.
        if not (
            (side == BUY or side == SELL)
            and qty.__class__ is int
            and 0 < qty <= m.max_qty
            and (tif == GTC or tif == IOC or tif == DAY or tif == FOK)
            and stp == STP_CANCEL_NEWEST
            and not post_only
            and phase == _CONTINUOUS
            and (
                (
                    order_type == LIMIT
                    and price.__class__ is int
                    and m.band_low <= price <= m.band_high
                )
                or (order_type == MARKET and price is None)
            )
        ):
            reason = self._invalid(m, side, order_type, qty, price, tif, post_only, stp)
            if reason is not None:
                return self._reject(out, symbol, 0, client_order_id, account, "new", reason, ts)
        oid = self._next_order_id
        if client_order_id is not None:
            try:
                clids = self._clids[account]
            except KeyError:
                clids = self._clids[account] = {}
            except TypeError:  # an unhashable account: refuse, never raise
                return self._reject(out, symbol, 0, None, None, "new", R.INVALID_ACCOUNT, ts)
            # Check and claim the client order id in one probe of the (large, cache-cold) dict:
            # nothing after this point can refuse the order, so claiming early is safe.
            try:
                known = clids.setdefault(client_order_id, oid)
            except TypeError:
                return self._reject(
                    out, symbol, 0, None, account, "new", R.INVALID_CLIENT_ORDER_ID, ts
                )
            if known is not oid:  # (ids are unique, so only a fresh claim returns this object)
                return self._reject(
                    out, symbol, 0, client_order_id, account, "new", R.DUPLICATE_CLIENT_ORDER_ID, ts
                )

        # -- accepted ----------------------------------------------------------------------
        self._next_order_id = oid + 1
        book.seq = seq = book.seq + 1
        out.append(
            (
                ACCEPTED,
                seq,
                symbol,
                oid,
                client_order_id,
                account,
                side,
                order_type,
                price,
                qty,
                tif,
                ts,
            )
        )

        # Match first: an Order object (~0.15 us) is built only if something is left of it, and
        # a marketable order usually fills in full.
        leaves = qty
        stopped = crosses = None
        if phase == _CONTINUOUS:
            if side == BUY:
                heap = book.asks.heap
                crosses = heap and (price is None or price >= heap[0])
            else:
                heap = book.bids.heap
                crosses = heap and (price is None or price <= -heap[0])
            if crosses and tif != FOK:
                leaves, stopped = self._take(m, side, price, qty, oid, account, stp, out, ts)
                if not leaves and stopped is None:
                    return out
        # Order(...) spelled out: object.__new__ plus slot stores skips type.__call__ and the
        # __init__ frame entered from C (~80 ns less per order on CPython 3.11). Keep the fields
        # in step with Order.__init__.
        order = _new_object(Order)
        order.order_id = oid
        order.client_order_id = client_order_id
        order.account = account
        order.symbol = symbol
        order.side = side
        order.order_type = order_type
        order.price = price
        order.qty = qty
        order.leaves = leaves
        order.tif = tif
        order.post_only = post_only
        order.stp = stp
        order.ts = ts
        if phase != _CONTINUOUS:  # collecting for an auction: no matching
            self._rest(m, order, out)
            return out

        if stopped is None and price is not None and (tif == GTC or tif == DAY):
            # The common case, inlined (_after_take then _rest): a limit order that did not
            # cross, or crossed and was not filled in full, joins the back of its level.
            self._orders[oid] = order
            half = book.bids if side == BUY else book.asks
            try:
                level = half.levels[price]
            except KeyError:
                level = half.level(price)
            level.orders.append(order)
            level.qty += leaves
            level.count += 1
            book.seq = seq = book.seq + 1  # (re-read: _take may have moved it)
            out.append((BOOK, seq, symbol, side, price, level.qty, level.count))
            return out

        if tif == FOK:
            if not self._fillable(m, order, ts):
                stopped = _C_FOK
            elif crosses:
                leaves, stopped = self._take(m, side, price, qty, oid, account, stp, out, ts)
            order.leaves = leaves
        self._after_take(m, order, stopped, out, ts, registered=False)
        return out

    def cancel(
        self,
        account: Any,
        order_id: int | None = None,
        client_order_id: Any = None,
        ts: int = 0,
        symbol: str | None = None,
    ) -> list[tuple]:
        """Cancel one open order by engine id or by the client order id it was entered with.

        With `symbol`, the order must be in that symbol: a cancel naming another symbol is
        refused (``symbol_mismatch``, told to the order's owner only) rather than cancelling
        an order the sender did not describe.
        """
        orders = self._orders
        try:
            if order_id is None and client_order_id is not None:
                order_id = self._clids[account].get(client_order_id)
            order = orders.get(order_id) if order_id is not None else None
        except KeyError:  # an account that never named an order: order_id is still None
            order = None
        except TypeError:  # an unhashable id or account: _lookup words the reject
            out: list[tuple] = []
            self._lookup(out, "cancel", account, order_id, client_order_id, ts)
            return out
        if order is None:  # unknown or already filled: two cancels in three in the bench
            return [
                (REJECTED, 0, "", order_id or 0, client_order_id, account, "cancel",
                 _R_UNKNOWN_ORDER, ts)
            ]  # fmt: skip
        out = []
        if order.account != account:
            self._lookup(out, "cancel", account, order_id, client_order_id, ts)  # as unknown
            return out
        if symbol is not None and symbol != order.symbol:
            return self._reject(
                out, order.symbol, order.order_id, order.client_order_id, account, "cancel",
                R.SYMBOL_MISMATCH, ts,
            )  # fmt: skip
        m = self._markets[order.symbol]
        if ts >= m.wakeup:
            self._wake(m, ts, out)
            if order.leaves == 0:  # the wake-up (an uncross) finished it
                return self._reject(
                    out, order.symbol, order.order_id, order.client_order_id, account, "cancel",
                    R.UNKNOWN_ORDER, ts,
                )  # fmt: skip
        price = order.price
        if price is None:  # a market order waiting for an auction
            self._unrest(m, order, _C_USER, out, ts)
            return out
        # Inlined _unrest/_pull: the second most common message.
        book = m.book
        symbol = book.symbol
        side = order.side
        left = order.leaves
        order.leaves = 0
        del orders[order_id]  # (the key the order was found by: equal to order.order_id)
        book.seq = seq = book.seq + 1
        out.append((CANCELLED, seq, symbol, order.order_id, account, left, _C_USER, ts))
        half = book.bids if side == BUY else book.asks
        level = half.levels[price]
        level.qty -= left
        level.count -= 1
        book.seq = seq = seq + 1
        out.append((BOOK, seq, symbol, side, price, level.qty, level.count))
        if level.count == 0:
            half.drop(price)
        elif len(level.orders) > 2 * level.count + 16:
            level.compact()
        return out

    def mass_cancel(self, account: Any, symbol: str | None = None, ts: int = 0) -> list[tuple]:
        """The kill switch: cancel every open order of `account` (in `symbol`, or everywhere)."""
        out: list[tuple] = []
        if symbol is not None and (not isinstance(symbol, str) or symbol not in self._markets):
            return self._reject(out, symbol, 0, None, account, "mass_cancel", R.UNKNOWN_SYMBOL, ts)
        for m in self._markets.values():  # a due halt end or batch auction comes first
            if ts >= m.wakeup and (symbol is None or m.symbol == symbol):
                self._wake(m, ts, out)
        for order in self.open_orders(account, symbol):
            self._unrest(self._markets[order.symbol], order, _C_MASS, out, ts)
        return out

    def replace(
        self,
        account: Any,
        qty: int,
        price: int | None = None,
        order_id: int | None = None,
        client_order_id: Any = None,
        ts: int = 0,
        symbol: str | None = None,
    ) -> list[tuple]:
        """Amend an open order's total quantity and/or price (None keeps the price).

        With `symbol`, the order must be in that symbol (else ``symbol_mismatch``).

        A pure quantity decrease keeps time priority; a price change or a quantity increase
        re-queues the order at the back of its (new) level, and a reprice that crosses the
        spread trades as an incoming order would.
        """
        out: list[tuple] = []
        order = self._lookup(out, "replace", account, order_id, client_order_id, ts)
        if order is None:
            return out
        if symbol is not None and symbol != order.symbol:
            return self._reject(
                out, order.symbol, order.order_id, order.client_order_id, account, "replace",
                R.SYMBOL_MISMATCH, ts,
            )  # fmt: skip
        m = self._markets[order.symbol]
        if ts >= m.wakeup:
            self._wake(m, ts, out)
        book = m.book
        new_price = order.price if price is None else price
        side = order.side
        reason = None
        if order.leaves == 0:
            reason = R.UNKNOWN_ORDER
        elif m.phase == _CLOSED:
            reason = R.MARKET_CLOSED  # a closed market takes cancels only
        elif qty.__class__ is not int:
            reason = R.QUANTITY_OFF_LOT if qty.__class__ is float else R.INVALID_QUANTITY
        elif qty <= 0:
            reason = R.INVALID_QUANTITY
        elif qty > m.spec.max_qty:
            reason = R.QUANTITY_TOO_LARGE
        elif qty <= order.cum:
            reason = R.REPLACE_BELOW_FILLED
        elif price is not None and order.price is None:
            reason = R.PRICE_ON_MARKET
        elif price is not None and price.__class__ is not int:
            reason = R.PRICE_OFF_TICK if price.__class__ is float else R.INVALID_PRICE
        elif price is not None and price <= 0:
            reason = R.INVALID_PRICE
        elif price is not None and not (m.band[0] <= price <= m.band[1]):
            reason = R.PRICE_OUTSIDE_BAND
        elif new_price == order.price and qty == order.qty:
            reason = R.REPLACE_CHANGES_NOTHING
        elif order.post_only and m.phase == _CONTINUOUS and new_price != order.price:
            best = book.asks.best if side == BUY else book.bids.best
            if best is not None and (new_price >= best if side == BUY else new_price <= best):
                reason = R.POST_ONLY_WOULD_TAKE
        if reason is not None:
            return self._reject(
                out, order.symbol, order.order_id, order.client_order_id, account, "replace",
                reason, ts,
            )  # fmt: skip

        symbol = order.symbol
        if new_price == order.price and qty < order.qty:
            # Quantity down, same price: amend in place, keep the place in the queue.
            cut = order.qty - qty
            order.qty = qty
            order.leaves -= cut
            book.seq = seq = book.seq + 1
            out.append(
                (
                    REPLACED,
                    seq,
                    symbol,
                    order.order_id,
                    account,
                    new_price,
                    qty,
                    order.leaves,
                    True,
                    ts,
                )
            )
            if new_price is None:
                return out  # a market order waiting for the auction: no level to update
            level = book.side(side).levels[new_price]
            level.qty -= cut
            book.seq = seq = seq + 1
            out.append((BOOK, seq, symbol, side, new_price, level.qty, level.count))
            return out

        # Anything else loses priority: take the order out, then enter its amended twin.
        filled = order.cum
        self._pull(m, order, out)
        twin = order.clone()
        order.leaves = 0  # the old queue entry is now dead; the twin replaces it
        twin.price = new_price
        twin.qty = qty
        twin.leaves = qty - filled
        twin.ts = ts
        self._orders[twin.order_id] = twin
        book.seq = seq = book.seq + 1
        out.append(
            (REPLACED, seq, symbol, twin.order_id, account, new_price, qty, twin.leaves, False, ts)
        )
        stopped = None
        if m.phase == _CONTINUOUS and new_price is not None:
            opp_best = book.asks.best if side == BUY else book.bids.best
            if opp_best is not None and (
                new_price >= opp_best if side == BUY else new_price <= opp_best
            ):
                twin.leaves, stopped = self._take(
                    m, side, new_price, twin.leaves, twin.order_id, account, twin.stp, out, ts
                )
            self._after_take(m, twin, stopped, out, ts, registered=True)
        else:
            self._rest(m, twin, out, registered=True)
        return out

    # ------------------------------------------------------------------ phases and time
    def advance(self, ts: int) -> list[tuple]:
        """Run timed transitions due by `ts` (halt ends, batch auctions) for every symbol."""
        out: list[tuple] = []
        for m in self._markets.values():
            if ts >= m.wakeup:
                self._wake(m, ts, out)
        return out

    def start_auction(self, symbol: str, ts: int = 0, reason: str = "call") -> list[tuple]:
        """Stop continuous matching and collect orders for a call auction."""
        out: list[tuple] = []
        m = self._markets[symbol]
        self._set_phase(m, _AUCTION, reason, out, ts)
        return out

    def uncross(
        self,
        symbol: str,
        ts: int = 0,
        then: str = _CONTINUOUS,
        clear_book: bool = False,
        reason: str = "uncross",
    ) -> list[tuple]:
        """Run the call auction now: one price for all crossing interest, then phase `then`.

        With ``clear_book`` every order left after the uncross is cancelled (the period-based
        market: an empty book each period).
        """
        out: list[tuple] = []
        self._uncross(self._markets[symbol], ts, then, clear_book, reason, out)
        return out

    def halt(
        self, symbol: str, ts: int = 0, until: int | None = None, reason: str = "manual"
    ) -> list[tuple]:
        """Halt a symbol: matching stops and orders are collected for the reopening auction.

        With `until`, the reopening auction runs by itself at that time (on the next command or
        ``advance``); without, it waits for ``uncross``.
        """
        out: list[tuple] = []
        m = self._markets[symbol]
        m.halt_until = until
        m.wakeup = _NEVER if until is None else until
        self._set_phase(m, _HALTED, reason, out, ts)
        return out

    def close(self, symbol: str, ts: int = 0, reason: str = "close") -> list[tuple]:
        """No new orders until reopened; open orders stay and may be cancelled."""
        out: list[tuple] = []
        self._set_phase(self._markets[symbol], _CLOSED, reason, out, ts)
        return out

    def reopen(self, symbol: str, ts: int = 0, auction: bool = True) -> list[tuple]:
        """Reopen a closed symbol into an opening auction, or straight into continuous trading
        (after an immediate uncross, so that a book closed mid-auction never trades crossed)."""
        out: list[tuple] = []
        m = self._markets[symbol]
        if auction:
            self._set_phase(m, _AUCTION, "open", out, ts)
        else:
            self._uncross(m, ts, _CONTINUOUS, False, "open", out)
        return out

    def end_of_day(self, ts: int = 0) -> list[tuple]:
        """Expire every DAY order and forget the client order ids of closed orders."""
        out = self.advance(ts)  # a due reopening auction trades before the day ends
        for order in [o for o in self._orders.values() if o.tif == DAY]:
            self._unrest(self._markets[order.symbol], order, C.EXPIRED, out, ts)
        self._clids = {}
        for order in self._orders.values():
            if order.client_order_id is not None:
                self._clids.setdefault(order.account, {})[order.client_order_id] = order.order_id
        return out

    def set_reference_price(self, symbol: str, price: int, ts: int = 0) -> list[tuple]:
        """Move the static band's centre (a daily roll, say). Announced with a STATUS event."""
        out: list[tuple] = []
        m = self._markets[symbol]
        m.reference = price
        m.set_band(price)
        if m.breaker is not None:
            m.breaker.reset(price)
        self._set_phase(m, m.phase, "reference_price", out, ts)
        return out

    # ------------------------------------------------------------------ queries
    def order(self, order_id: int) -> Order | None:
        return self._orders.get(order_id)

    def open_orders(self, account: Any, symbol: str | None = None) -> list[Order]:
        """Open orders of `account` (optionally in one symbol), oldest first."""
        return [
            o for o in self._orders.values()
            if o.account == account and (symbol is None or o.symbol == symbol)
        ]  # fmt: skip

    def order_id_for(self, account: Any, client_order_id: Any) -> int | None:
        return self._clids.get(account, {}).get(client_order_id)

    def best_bid(self, symbol: str) -> int | None:
        return self._markets[symbol].book.bids.best

    def best_ask(self, symbol: str) -> int | None:
        return self._markets[symbol].book.asks.best

    def depth(self, symbol: str, levels: int | None = None) -> tuple[list, list]:
        """L2: (bids, asks) as lists of (price, qty, count), best first."""
        return self._markets[symbol].book.depth(levels)

    def level_orders(self, symbol: str, side: str, price: int) -> list[Order]:
        """L3: the live orders at one price, in time priority."""
        return self._markets[symbol].book.level_orders(side, price)

    def queue_position(self, order_id: int) -> tuple[int, int] | None:
        """(orders ahead, quantity ahead) of an open order at its price level."""
        order = self._orders.get(order_id)
        if order is None or order.price is None:
            return None
        level = self._markets[order.symbol].book.side(order.side).levels[order.price]
        ahead = qty = 0
        for o in level.live():
            if o is order:
                return ahead, qty
            ahead += 1
            qty += o.leaves
        raise AssertionError("an open order is missing from its level")  # pragma: no cover

    def imbalance(self, symbol: str, levels: int = 1) -> float | None:
        return self._markets[symbol].book.imbalance(levels)

    def mid(self, symbol: str) -> float | None:
        return self._markets[symbol].book.mid

    def spread(self, symbol: str) -> int | None:
        return self._markets[symbol].book.spread

    def last_trade(self, symbol: str) -> tuple[int, int] | None:
        """(price, qty) of the symbol's last trade."""
        book = self._markets[symbol].book
        return None if book.last_price is None else (book.last_price, book.last_qty)

    def phase(self, symbol: str) -> str:
        return self._markets[symbol].phase

    def indicative_auction(self, symbol: str) -> AuctionResult | None:
        """The price and volume an uncross would give now (for the auction's market data)."""
        return self._auction_result(self._markets[symbol])

    def snapshot_seq(self, symbol: str) -> int:
        """The sequence number the book is at (an L2 snapshot taken now is valid at it)."""
        return self._markets[symbol].book.seq

    # ------------------------------------------------------------------ internals
    def _reject(
        self, out: list, symbol: str, order_id: int, clid: Any, account: Any, request: str,
        reason: str, ts: int,
    ) -> list[tuple]:  # fmt: skip
        out.append((REJECTED, 0, symbol, order_id, clid, account, request, reason, ts))
        return out

    def _invalid(
        self, m: Market, side: str, order_type: str, qty: Any, price: Any, tif: str,
        post_only: bool, stp: str,
    ) -> str | None:  # fmt: skip
        """Why a new order is refused, or None: the full rule chain, off the hot path."""
        if side != BUY and side != SELL:
            return R.INVALID_SIDE
        if qty.__class__ is not int:
            return R.QUANTITY_OFF_LOT if qty.__class__ is float else R.INVALID_QUANTITY
        if qty <= 0:
            return R.INVALID_QUANTITY
        if qty > m.max_qty:
            return R.QUANTITY_TOO_LARGE
        if not isinstance(tif, str) or tif not in _TIFS:
            return R.INVALID_TIF
        if not isinstance(stp, str) or stp not in _STPS:
            return R.INVALID_STP
        if order_type == LIMIT:
            if price is None:
                return R.MISSING_PRICE
            if price.__class__ is not int:
                return R.PRICE_OFF_TICK if price.__class__ is float else R.INVALID_PRICE
            if price <= 0:
                return R.INVALID_PRICE
            if price < m.band_low or price > m.band_high:
                return R.PRICE_OUTSIDE_BAND
        elif order_type == MARKET:
            if price is not None:
                return R.PRICE_ON_MARKET
            if post_only:
                return R.POST_ONLY_MARKET
        else:
            return R.INVALID_ORDER_TYPE
        if m.phase == _CLOSED:
            return R.MARKET_CLOSED
        if m.phase != _CONTINUOUS:
            return R.TIF_NOT_IN_AUCTION if tif == IOC or tif == FOK else None
        if post_only:
            best = m.book.asks.best if side == BUY else m.book.bids.best
            if best is not None and (price >= best if side == BUY else price <= best):
                return R.POST_ONLY_WOULD_TAKE
        return None

    def _lookup(
        self, out: list, request: str, account: Any, order_id: int | None, clid: Any, ts: int
    ) -> Order | None:
        """Resolve the target of a cancel/replace, rejecting unknown or foreign orders."""
        try:
            if order_id is None and clid is not None:
                clids = self._clids.get(account)
                if clids is not None:
                    order_id = clids.get(clid)
            order = self._orders.get(order_id) if order_id is not None else None
        except TypeError:  # an unhashable id or account names no order
            order = None
            order_id = order_id if isinstance(order_id, int) else None
        if order is None or order.account != account:
            # Another account's order is refused exactly as an unknown one: the answer must
            # not tell that the order exists.
            self._reject(out, "", order_id or 0, clid, account, request, R.UNKNOWN_ORDER, ts)
            return None
        return order

    def _rest(self, m: Market, order: Order, out: list, registered: bool = False) -> None:
        """Put an order's remainder on the book (or the auction's market-order queue)."""
        oid = order.order_id
        if not registered:
            self._orders[oid] = order
        price = order.price
        if price is None:
            m.market_orders[order.side].append(order)
            return
        book = m.book
        side = book.bids if order.side == BUY else book.asks
        level = side.levels.get(price)
        if level is None:
            level = side.level(price)
        level.orders.append(order)
        level.qty += order.leaves
        level.count += 1
        book.seq = seq = book.seq + 1
        out.append((BOOK, seq, book.symbol, order.side, price, level.qty, level.count))

    def _forget(self, order: Order) -> None:
        del self._orders[order.order_id]

    def _pull(self, m: Market, order: Order, out: list) -> int:
        """Take a resting order off its level (lazily) and emit the level change."""
        left = order.leaves
        price = order.price
        if price is None:
            return left  # an auction market order: its queue entry dies with leaves = 0
        book = m.book
        side = book.bids if order.side == BUY else book.asks
        level = side.levels[price]
        level.qty -= left
        level.count -= 1
        book.seq = seq = book.seq + 1
        out.append((BOOK, seq, book.symbol, order.side, price, level.qty, level.count))
        if level.count == 0:
            side.drop(price)
        elif len(level.orders) > 2 * level.count + 16:
            order.leaves = 0
            level.compact()
        return left

    def _unrest(self, m: Market, order: Order, reason: str, out: list, ts: int) -> None:
        """Cancel a resting order: CANCELLED, then the level change."""
        book = m.book
        book.seq = seq = book.seq + 1
        out.append(
            (CANCELLED, seq, book.symbol, order.order_id, order.account, order.leaves, reason, ts)
        )
        self._pull(m, order, out)
        order.leaves = 0
        self._forget(order)

    def _fillable(self, m: Market, order: Order, ts: int) -> bool:
        """Would a FOK order fill completely right now (band, limit and self-trade rules)?"""
        book = m.book
        buy = order.side == BUY
        opp = book.asks if buy else book.bids
        low, high = m.breaker.band(ts) if m.breaker is not None else _NO_BAND
        limit = order.price
        need = order.leaves
        acct = order.account if order.account is not None else _NOBODY
        for price in opp.prices():
            if limit is not None and (price > limit if buy else price < limit):
                return False
            if price < low or price > high:
                return False
            for maker in opp.levels[price].live():
                if maker.account == acct:
                    if order.stp != STP_CANCEL_OLDEST:
                        return False  # the FOK itself would be cancelled
                    continue  # the resting order would be cancelled, not traded
                need -= maker.leaves
                if need <= 0:
                    return True
        return False

    def _take(
        self, m: Market, side: str, limit: int | None, leaves: int, tid: int, tacct: Any,
        stp: str, out: list, ts: int,
    ) -> tuple[int, str | None]:  # fmt: skip
        """Match an incoming order (given by its fields: side, limit price or None, leaves, id,
        account, self-trade policy) against the opposite side. Returns its leaves and why it
        stopped early, if it did.

        The taker is passed by fields, not as an Order, so that one that fills in full never
        needs an Order object. The innermost loop runs once per fill; everything that can be
        done once per price level (the level's quantity, its BOOK event, the breaker) is kept
        out of it.
        """
        book = m.book
        buy = side == BUY
        opp = book.asks if buy else book.bids
        opp_side = SELL if buy else BUY
        levels, heap, sign = opp.levels, opp.heap, opp.sign
        breaker = m.breaker
        if breaker is None:
            low, high = _NO_BAND
        else:
            if ts >= breaker.expires:
                breaker.band(ts)
            low, high = breaker.low, breaker.high
        acct = tacct if tacct is not None else _NOBODY
        symbol = book.symbol
        seq = book.seq
        trade_id = self._trade_id
        orders = self._orders
        append = out.append
        aggressor = side
        stopped = None
        fill = 0  # the last fill's quantity
        while leaves and heap:
            px = heap[0] * sign
            if limit is not None and (px > limit if buy else px < limit):
                break
            if px < low or px > high:
                stopped = _C_HALTED
                break
            level = levels[px]
            q = level.orders
            taken = 0  # quantity removed from this level (fills and self-trade cancels)
            done = 0  # orders removed from this level
            cancelled = 0  # of which by self-trade prevention
            while q:
                maker = q[0]
                ml = maker.leaves
                if not ml:
                    q.popleft()  # a lazily-deleted entry
                    continue
                if maker.account == acct:  # self-trade prevention
                    if stp == STP_CANCEL_NEWEST:
                        stopped = _C_STP
                        break
                    q.popleft()
                    maker.leaves = 0
                    taken += ml
                    cancelled += ml
                    done += 1
                    seq += 1
                    append((CANCELLED, seq, symbol, maker.order_id, maker.account, ml, _C_STP, ts))
                    del orders[maker.order_id]
                    if stp == STP_CANCEL_BOTH:
                        stopped = _C_STP
                        break
                    continue
                if leaves < ml:
                    fill = leaves
                    ml -= fill
                    leaves = 0
                    maker.leaves = ml
                else:
                    fill = ml
                    leaves -= ml
                    ml = maker.leaves = 0
                    q.popleft()
                    done += 1
                    del orders[maker.order_id]
                taken += fill
                trade_id += 1
                seq += 1
                if buy:
                    append((TRADE, seq, symbol, trade_id, px, fill, aggressor, tid, tacct, leaves,
                            maker.order_id, maker.account, ml, ts))  # fmt: skip
                else:
                    append((TRADE, seq, symbol, trade_id, px, fill, aggressor, maker.order_id,
                            maker.account, ml, tid, tacct, leaves, ts))  # fmt: skip
                if not leaves:
                    break
            if taken:
                level.qty -= taken
                level.count -= done
                seq += 1
                append((BOOK, seq, symbol, opp_side, px, level.qty, level.count))
                if not level.count:
                    opp.drop(px)
                if taken > cancelled:
                    book.last_price = px
                    book.last_qty = fill
                    if m.follow_last and px != m.reference:
                        m.recentre(px)
                    if breaker is not None and px != breaker.last:  # else a no-op
                        breaker.record(ts, px)
                        low, high = breaker.low, breaker.high
            if stopped:
                break
        book.seq = seq
        self._trade_id = trade_id
        return leaves, stopped

    def _after_take(
        self, m: Market, order: Order, stopped: str | None, out: list, ts: int, registered: bool
    ) -> None:
        """Rest or cancel what is left of an incoming order; trip the breaker if it must."""
        if stopped == _C_HALTED:
            self._halt(m, ts, out)
        if not order.leaves:
            if registered:
                self._forget(order)
            return
        book = m.book
        if stopped == _C_STP or stopped == _C_FOK:
            reason = stopped
        elif order.price is None:
            reason = stopped or _C_NOLIQ  # a market order never rests in continuous trading
        elif order.tif == IOC or order.tif == FOK:
            reason = stopped or (_C_IOC if order.tif == IOC else _C_FOK)
        else:
            self._rest(m, order, out, registered)  # GTC/DAY: rests, even into a halt
            return
        book.seq = seq = book.seq + 1
        out.append(
            (CANCELLED, seq, book.symbol, order.order_id, order.account, order.leaves, reason, ts)
        )
        order.leaves = 0
        if registered:
            self._forget(order)

    def _halt(self, m: Market, ts: int, out: list) -> None:
        """The volatility breaker tripped: halt, and schedule the reopening auction."""
        m.halt_until = ts + m.spec.halt_duration_ns
        m.wakeup = min(m.wakeup, m.halt_until)
        self._set_phase(m, _HALTED, "volatility", out, ts)

    def _wake(self, m: Market, ts: int, out: list) -> None:
        """Timed transitions: the end of a halt, or the next batch auction."""
        spec = m.spec
        if m.phase == _HALTED and m.halt_until is not None and ts >= m.halt_until:
            m.halt_until = None
            m.wakeup = _NEVER
            then = _AUCTION if spec.batch_interval_ns else _CONTINUOUS
            self._uncross(m, ts, then, False, "reopening", out)
        if spec.batch_interval_ns and m.phase == _AUCTION and ts >= m.wakeup:
            interval = spec.batch_interval_ns
            self._uncross(m, ts, _AUCTION, spec.batch_clear_book, "batch", out)
            m.wakeup += ((ts - m.wakeup) // interval + 1) * interval
        elif spec.batch_interval_ns and m.phase == _AUCTION and m.wakeup == _NEVER:
            m.wakeup = ts + spec.batch_interval_ns

    def _set_phase(self, m: Market, phase: str, reason: str, out: list, ts: int) -> None:
        m.phase = phase
        book = m.book
        book.seq = seq = book.seq + 1
        band = None if m.band == _NO_BAND else m.band
        out.append((
            STATUS, seq, book.symbol, phase, reason,
            band[0] if band else None, band[1] if band else None,
            m.halt_until if phase == _HALTED else None, ts,
        ))  # fmt: skip

    def _auction_result(self, m: Market) -> AuctionResult | None:
        book = m.book
        bids = [(p, lv.qty) for p, lv in book.bids.levels.items()]
        asks = [(p, lv.qty) for p, lv in book.asks.levels.items()]
        mkt_buy = sum(o.leaves for o in m.market_orders[BUY])
        mkt_sell = sum(o.leaves for o in m.market_orders[SELL])
        reference = book.last_price if book.last_price is not None else m.reference
        return clearing_price(bids, asks, mkt_buy, mkt_sell, reference)

    def _uncross(
        self, m: Market, ts: int, then: str, clear_book: bool, reason: str, out: list
    ) -> None:
        book = m.book
        symbol = book.symbol
        result = self._auction_result(m)
        if result is not None:
            price, remaining = result.price, result.volume
            buys = self._auction_queue(m, BUY, price)
            sells = self._auction_queue(m, SELL, price)
            touched: dict[tuple[str, int], None] = {}
            buy, sell = next(buys), next(sells)
            while remaining:
                fill = min(buy.leaves, sell.leaves, remaining)
                remaining -= fill
                for o in (buy, sell):
                    o.leaves -= fill
                    if o.price is not None:
                        level = book.side(o.side).levels[o.price]
                        level.qty -= fill
                        level.count -= 0 if o.leaves else 1
                        touched[(o.side, o.price)] = None
                self._trade_id += 1
                book.seq += 1
                out.append((TRADE, book.seq, symbol, self._trade_id, price, fill, NONE,
                            buy.order_id, buy.account, buy.leaves,
                            sell.order_id, sell.account, sell.leaves, ts))  # fmt: skip
                book.last_qty = fill
                if not buy.leaves:
                    self._forget(buy)
                    buy = next(buys, None)  # type: ignore[assignment]
                if not sell.leaves:
                    self._forget(sell)
                    sell = next(sells, None)  # type: ignore[assignment]
            for side_name, px in touched:
                side = book.side(side_name)
                level = side.levels[px]
                book.seq += 1
                out.append((BOOK, book.seq, symbol, side_name, px, level.qty, level.count))
                if not level.count:
                    side.drop(px)
            book.last_price = price
            if m.breaker is not None:
                m.breaker.reset(price)
            if m.follow_auction:
                m.recentre(price)
        # Market orders never rest outside an auction; with clear_book nothing rests at all.
        for side_name in (BUY, SELL):
            queue = m.market_orders[side_name]
            while queue:
                o = queue.popleft()
                if o.leaves:
                    self._unrest(m, o, C.AUCTION_UNFILLED, out, ts)
        if clear_book:
            for side in (book.bids, book.asks):
                for o in list(side.orders()):
                    self._unrest(m, o, C.PERIOD_END, out, ts)
        self._set_phase(m, then, reason, out, ts)

    def _auction_queue(self, m: Market, side_name: str, price: int) -> Iterator[Order]:
        """Orders eligible at the auction price, in priority: market orders, then price, time."""
        book = m.book
        side = book.side(side_name)
        if side_name == BUY:
            prices = [p for p in side.prices() if p >= price]
        else:
            prices = [p for p in side.prices() if p <= price]
        market = (o for o in m.market_orders[side_name] if o.leaves)
        # Snapshot each level's live orders first: allocation mutates them as it goes.
        limits = [list(side.levels[p].live()) for p in prices]
        return chain(market, *limits)
