"""Events out of the matching engine.

Every state change in the engine is an event, and every event is a *plain tuple*. That is a
deliberate speed choice: building a tuple costs ~40 ns, a slotted object or NamedTuple ~350 ns,
and the engine emits two to five events per message (issue 2 asks for >= 500k messages/s in
pure Python). Tuples are also what the journal and the wire want anyway.

Readability is recovered here: each layout is declared once as a NamedTuple whose fields name the
tuple's positions, so at any edge ``view(event)`` turns a raw tuple into a named one
(``view(ev).price``), and tests compare by field name. ``event[0]`` is always the kind and
``event[1]`` the per-symbol sequence number (0 for rejects, which change no state).

The per-symbol sequence number increases by exactly one per state-changing event of that symbol,
so a subscriber that sees every event of a symbol can detect a gap, and replaying the BOOK
events from a snapshot's sequence rebuilds the book level by level.
"""

from __future__ import annotations

from typing import Any, NamedTuple

__all__ = [
    "ACCEPTED",
    "BOOK",
    "CANCELLED",
    "REJECTED",
    "REPLACED",
    "STATUS",
    "TRADE",
    "Accepted",
    "BookChange",
    "Cancelled",
    "Rejected",
    "Replaced",
    "StatusChange",
    "TradeEvent",
    "view",
]

ACCEPTED = "accepted"
REJECTED = "rejected"
TRADE = "trade"
CANCELLED = "cancelled"
REPLACED = "replaced"
BOOK = "book"
STATUS = "status"


class Accepted(NamedTuple):
    """A new order passed validation and now exists (FIX ExecType=New)."""

    kind: str
    seq: int
    symbol: str
    order_id: int
    client_order_id: Any
    account: Any
    side: str
    order_type: str  # "limit" | "market"
    price: int | None  # ticks; None for market orders
    qty: int  # lots
    tif: str
    ts: int


class Rejected(NamedTuple):
    """A request was refused; nothing changed (seq is 0). `request` says which kind."""

    kind: str
    seq: int
    symbol: str
    order_id: int  # the target order for cancel/replace, 0 for a new order
    client_order_id: Any
    account: Any
    request: str  # "new" | "cancel" | "replace" | "mass_cancel"
    reason: str  # a RejectReason value
    ts: int


class TradeEvent(NamedTuple):
    """One fill between a buy order and a sell order at `price`.

    `aggressor` is the side that took liquidity, or "none" for an auction uncross. The remaining
    quantities let an edge produce both execution reports without asking the engine.
    """

    kind: str
    seq: int
    symbol: str
    trade_id: int  # engine-wide, strictly increasing: the clearing house's settlement key
    price: int
    qty: int
    aggressor: str  # "buy" | "sell" | "none"
    buy_order_id: int
    buy_account: Any
    buy_leaves: int
    sell_order_id: int
    sell_account: Any
    sell_leaves: int
    ts: int


class Cancelled(NamedTuple):
    """An order's remaining quantity was removed from the market (FIX Canceled / Expired)."""

    kind: str
    seq: int
    symbol: str
    order_id: int
    account: Any
    cancelled_qty: int
    reason: str  # a CancelReason value
    ts: int


class Replaced(NamedTuple):
    """An order was amended; `priority_kept` is True only for a pure quantity decrease."""

    kind: str
    seq: int
    symbol: str
    order_id: int
    account: Any
    price: int | None
    qty: int  # new total quantity (cum + leaves)
    leaves: int
    priority_kept: bool
    ts: int


class BookChange(NamedTuple):
    """A price level's new total; qty == 0 (and count == 0) means the level is gone."""

    kind: str
    seq: int
    symbol: str
    side: str
    price: int
    qty: int
    count: int


class StatusChange(NamedTuple):
    """The symbol's trading phase changed (continuous, auction, halted, closed)."""

    kind: str
    seq: int
    symbol: str
    phase: str
    reason: str
    band_low: int | None
    band_high: int | None
    halt_until: int | None
    ts: int


_VIEWS: dict[str, type[NamedTuple]] = {
    ACCEPTED: Accepted,
    REJECTED: Rejected,
    TRADE: TradeEvent,
    CANCELLED: Cancelled,
    REPLACED: Replaced,
    BOOK: BookChange,
    STATUS: StatusChange,
}


def view(event: tuple) -> Any:
    """The named view of a raw event tuple (for edges, logs and tests, not the hot path)."""
    return _VIEWS[event[0]]._make(event)
