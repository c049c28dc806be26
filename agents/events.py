"""What an agent is told: small, immutable event records, the same live and in simulated time.

They are plain slotted dataclasses, not the wire models: the simulated-time kernel builds
millions of them and a pydantic model costs ten times more to create. The live runner converts
wire messages into these at its edge; strategies never see the wire.

Prices are integer ticks and quantities integer lots, as everywhere in Agora; `ctx.spec(symbol)`
converts to decimals for display or maths.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Fill", "OrderUpdate", "Quote", "TradeTick"]


@dataclass(slots=True, frozen=True)
class Quote:
    """Top of book of one symbol (None: that side is empty)."""

    symbol: str
    bid: int | None
    bid_qty: int
    ask: int | None
    ask_qty: int
    ts: int

    @property
    def mid(self) -> float | None:
        if self.bid is None or self.ask is None:
            return None
        return (self.bid + self.ask) / 2

    @property
    def spread(self) -> int | None:
        if self.bid is None or self.ask is None:
            return None
        return self.ask - self.bid

    @property
    def imbalance(self) -> float | None:
        """(bid_qty - ask_qty) / (bid_qty + ask_qty), in [-1, 1]; None when both are empty."""
        total = self.bid_qty + self.ask_qty
        return None if total == 0 else (self.bid_qty - self.ask_qty) / total


@dataclass(slots=True, frozen=True)
class TradeTick:
    """A public trade on the tape."""

    symbol: str
    price: int
    qty: int
    aggressor: str  # "buy" | "sell" | "none" (auction)
    trade_id: int
    ts: int


@dataclass(slots=True, frozen=True)
class OrderUpdate:
    """One of the agent's own execution reports (or a refused cancel/replace).

    `status` follows FIX OrdStatus in snake_case: pending_new, new, partially_filled, filled,
    canceled, replaced, rejected, expired. `reason` says why on a reject.
    """

    client_order_id: str
    order_id: int
    symbol: str
    side: str
    exec_type: str  # new | trade | canceled | replaced | rejected | expired | cancel_rejected
    status: str
    price: int | None
    qty: int
    cum_qty: int
    leaves_qty: int
    last_qty: int = 0
    last_price: int | None = None
    liquidity: str | None = None  # maker | taker | auction, on fills
    trade_id: int | None = None
    reason: str | None = None
    ts: int = 0


@dataclass(slots=True, frozen=True)
class Fill:
    """One fill of one of the agent's orders; `fee` is in cash units (negative: a rebate)."""

    client_order_id: str
    order_id: int
    symbol: str
    side: str
    price: int
    qty: int
    liquidity: str
    fee: int
    trade_id: int
    ts: int
