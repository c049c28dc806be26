"""Market makers: Avellaneda-Stoikov inventory-aware quoting and a fixed-spread quoter."""

from __future__ import annotations

import math
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from agents.agent import Agent
from agents.events import OrderUpdate, Quote
from agents.strategies._common import reference_ticks, resolve_symbol

__all__ = [
    "AvellanedaStoikov",
    "FixedSpreadMarketMaker",
    "as_quotes",
    "optimal_spread",
    "reservation_price",
]

_TIMER = "mm.requote"


def reservation_price(mid: float, q: float, gamma: float, sigma2: float, tau: float) -> float:
    """Avellaneda-Stoikov indifference price r = s - q·gamma·sigma²·(T-t)."""
    return mid - q * gamma * sigma2 * tau


def optimal_spread(gamma: float, sigma2: float, tau: float, k: float) -> float:
    """Avellaneda-Stoikov optimal total spread gamma·sigma²(T-t) + (2/gamma)·ln(1 + gamma/k)."""
    return gamma * sigma2 * tau + (2.0 / gamma) * math.log1p(gamma / k)


def as_quotes(mid: float, q: float, gamma: float, sigma2: float, tau: float, k: float,
              min_spread: float = 0.0) -> tuple[float, float]:  # fmt: skip
    """Avellaneda-Stoikov (bid, ask): the optimal spread (at least `min_spread`) centred on the
    reservation price. Pure, so the live strategy and the RL baseline quote the same numbers."""
    r = reservation_price(mid, q, gamma, sigma2, tau)
    half = max(optimal_spread(gamma, sigma2, tau, k), min_spread) / 2
    return r - half, r + half


class _QuoterParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    symbol: str | None = Field(default=None, description="symbol to quote (None: the first)")
    size: int = Field(default=5, ge=1, description="lots on each side")
    max_inventory: int = Field(
        default=50, ge=0, description="never quote a side that would take |position| beyond this"
    )
    requote_interval_ns: int = Field(
        default=500_000_000, gt=0, description="requote timer period (ns)"
    )
    requote_on_book: bool = Field(
        default=False, description="also requote on every top-of-book change"
    )
    min_requote_ns: int = Field(
        default=0, ge=0, description="with requote_on_book: at most one requote per this (ns)"
    )
    use_replace: bool = Field(
        default=True, description="amend resting quotes with replace, else cancel and send new"
    )
    passive: bool = Field(
        default=True, description="never cross the opposite best quote (stay a maker)"
    )
    neutral: Literal["zero", "start"] = Field(
        default="zero",
        description="inventory is counted from a flat book (zero) or from the position held "
        "at start (start: a dealer handed a stock keeps it as its working inventory)",
    )


class _TwoSidedQuoter(Agent):
    """Quote bookkeeping shared by the market makers: one bid and one ask, amended in place.

    Subclasses implement `targets()`; the base applies the inventory limit (a side is quoted
    only for as many lots as keep |inventory| ≤ max_inventory if all of it filled), keeps the
    quotes passive, and amends (replace) or re-sends (cancel + new) only what changed.
    Inventory is the position less the neutral one (`neutral`: zero, or the position held at
    start), so a dealer that starts with a stock leans against departures from that stock
    rather than selling it off: that is what keeps it quoting both sides for hours.
    """

    Params = _QuoterParams

    def on_start(self) -> None:
        p = self.params
        self.symbol = resolve_symbol(self.ctx, p.symbol)
        self.bid_id: str | None = None
        self.ask_id: str | None = None
        self._want: dict[str, tuple[int, int] | None] = {"buy": None, "sell": None}
        self._last_requote = -(2**62)
        self.neutral: int | None = None if p.neutral == "start" else 0  # "start": at 1st quote
        self.withdrawn_until = -(2**62)
        self.ctx.set_timer(_TIMER, p.requote_interval_ns)

    def inventory(self) -> int:
        """The position less the neutral one (what the inventory control leans against)."""
        pos = self.ctx.position(self.symbol)
        if self.neutral is None:
            self.neutral = pos
        return pos - self.neutral

    def withdraw_quotes(self, until_ns: int) -> None:
        """Pull both quotes now and quote nothing before virtual or wall time `until_ns` (a
        dealer stepping away in a liquidity crisis); quoting resumes on the first requote
        after it."""
        self.withdrawn_until = until_ns
        self.bid_id = self._place("buy", self.bid_id, None, 0)
        self.ask_id = self._place("sell", self.ask_id, None, 0)

    def on_timer(self, name: str) -> None:
        if name == _TIMER:
            self.requote()

    def on_book(self, quote: Quote) -> None:
        p = self.params
        if (
            p.requote_on_book
            and quote.symbol == self.symbol
            and self.ctx.now() - self._last_requote >= p.min_requote_ns
        ):
            self.requote()

    def on_order(self, update: OrderUpdate) -> None:
        # A refused replace leaves the quote where it was: forget what was asked so that the
        # next requote asks again.
        if update.exec_type == "cancel_rejected":
            if update.client_order_id == self.bid_id:
                self._want["buy"] = None
            elif update.client_order_id == self.ask_id:
                self._want["sell"] = None

    def targets(self) -> tuple[float | None, float | None]:
        """Desired (bid, ask) prices in ticks, before limits (None: do not quote that side)."""
        raise NotImplementedError

    def requote(self) -> None:
        ctx = self.ctx
        p = self.params
        self._last_requote = ctx.now()
        if self._last_requote < self.withdrawn_until:
            return
        bid_f, ask_f = self.targets()
        bid = None if bid_f is None else math.floor(bid_f)
        ask = None if ask_f is None else math.ceil(ask_f)
        if bid is not None and ask is not None and ask <= bid:
            ask = bid + 1
        q = ctx.quote(self.symbol)
        if p.passive and q is not None:
            if bid is not None and q.ask is not None and bid >= q.ask:
                bid = q.ask - 1
            if ask is not None and q.bid is not None and ask <= q.bid:
                ask = q.bid + 1
        pos = self.inventory()
        bid_qty = min(p.size, p.max_inventory - pos)
        ask_qty = min(p.size, p.max_inventory + pos)
        if bid is None or bid < 1 or bid_qty <= 0:
            bid = None
        if ask is None or ask_qty <= 0:
            ask = None
        self.bid_id = self._place("buy", self.bid_id, bid, bid_qty)
        self.ask_id = self._place("sell", self.ask_id, ask, ask_qty)

    def _place(self, side: str, clid: str | None, price: int | None, qty: int) -> str | None:
        ctx = self.ctx
        order = ctx.portfolio.orders.get(clid) if clid is not None else None
        if price is None:
            if order is not None:
                ctx.cancel(order.client_order_id)
            self._want[side] = None
            return None
        want = (price, qty)
        if order is not None and not order.cancel_pending:
            if self._want[side] == want:
                return clid
            self._want[side] = want
            if self.params.use_replace:
                ctx.replace(order.client_order_id, qty=order.cum_qty + qty, price=price)
                return clid
            ctx.cancel(order.client_order_id)
        self._want[side] = want
        return ctx.submit(self.symbol, side, qty, price)


class AvellanedaStoikov(_TwoSidedQuoter):
    """Avellaneda-Stoikov optimal market making with inventory risk.

    With mid s, inventory q (lots), risk aversion gamma, mid variance rate sigma² and time left
    T-t, the dealer's reservation (indifference) price and optimal total spread are

        r = s - q·gamma·sigma²·(T-t),
        spread = gamma·sigma²·(T-t) + (2/gamma)·ln(1 + gamma/k),

    where k is the decay of the fill intensity λ(δ) = A·e^(-kδ) with the quote distance δ. It
    quotes bid = ⌊r - spread/2⌋ and ask = ⌈r + spread/2⌉ (at least `min_spread_ticks` apart):
    a long inventory shifts both quotes down (sell more eagerly), a short one up.

    Units: prices in ticks, q in lots, time in seconds, so gamma is per tick·lot, k per tick and
    sigma² in ticks²/s. sigma² is estimated on each requote from the mid changes as an EWMA of
    (Δs)²/Δt with weight `sigma_ewma` (starting at `sigma_init`²); `estimate_sigma` off keeps
    `sigma_init`. T-t: with `horizon_ns` 0, a constant `tau_s` (the stationary approximation);
    otherwise the time left to the end of the horizon, which restarts every `horizon_ns` when
    `rolling` is on (a trading day per horizon), else stays at 0 after it.

    Sources: M. Avellaneda and S. Stoikov, "High-frequency trading in a limit order book",
    Quantitative Finance 8(3), 2008; O. Guéant, C.-A. Lehalle and J. Fernandez-Tapia, "Dealing
    with the inventory risk", Mathematics and Financial Economics 7(4), 2013.
    """

    class Params(_QuoterParams):
        gamma: float = Field(default=0.1, gt=0.0, description="risk aversion gamma (per tick·lot)")
        k: float = Field(default=0.5, gt=0.0, description="fill-intensity decay k (per tick)")
        sigma_init: float = Field(
            default=1.0, ge=0.0, description="initial sigma of the mid (ticks per √s)"
        )
        estimate_sigma: bool = Field(default=True, description="estimate sigma from mid changes")
        sigma_ewma: float = Field(
            default=0.05, gt=0.0, le=1.0, description="EWMA weight of a new (Δs)²/Δt sample"
        )
        horizon_ns: int = Field(default=0, ge=0, description="trading horizon T (0: use tau_s)")
        rolling: bool = Field(default=True, description="restart the horizon when it ends")
        tau_s: float = Field(default=1.0, ge=0.0, description="constant T-t when horizon_ns=0")
        min_spread_ticks: int = Field(default=1, ge=1, description="smallest quoted spread")

    def on_start(self) -> None:
        super().on_start()
        self.sigma2 = self.params.sigma_init**2
        self._start = self.ctx.now()
        self._last_mid: float | None = None
        self._last_mid_ts = 0
        self.reservation: float | None = None
        self.spread: float | None = None

    def tau(self) -> float:
        """T - t in seconds."""
        p = self.params
        if not p.horizon_ns:
            return p.tau_s
        elapsed = self.ctx.now() - self._start
        if p.rolling:
            elapsed %= p.horizon_ns
        return max(0, p.horizon_ns - elapsed) / 1e9

    def _update_sigma(self, mid: float) -> None:
        now = self.ctx.now()
        if self._last_mid is not None and now > self._last_mid_ts:
            dt = (now - self._last_mid_ts) / 1e9
            d = mid - self._last_mid
            w = self.params.sigma_ewma
            self.sigma2 = (1.0 - w) * self.sigma2 + w * d * d / dt
        self._last_mid = mid
        self._last_mid_ts = now

    def targets(self) -> tuple[float | None, float | None]:
        p = self.params
        mid = reference_ticks(self.ctx, self.symbol, ("mid", "last"))
        if p.estimate_sigma:
            self._update_sigma(mid)
        tau = self.tau()
        q = self.inventory()
        bid, ask = as_quotes(mid, q, p.gamma, self.sigma2, tau, p.k, p.min_spread_ticks)
        self.reservation = (bid + ask) / 2
        self.spread = ask - bid
        return bid, ask


class FixedSpreadMarketMaker(_TwoSidedQuoter):
    """A constant-spread dealer, optionally skewing its quotes against its inventory.

    Around the anchor a (mid, last trade or F(t), with the usual fallbacks) it quotes

        bid = round(a - skew·q) - half_spread,   ask = round(a - skew·q) + half_spread

    for inventory q (lots, counted from the neutral position) and skew `skew_ticks_per_lot`.
    The inventory limit and the passive clipping of the base quoter apply. A zero skew is the
    textbook dealer earning the spread and bearing inventory risk; a positive one is the linear
    inventory control of Ho and Stoll.

    Sources: T. Ho and H. R. Stoll, "Optimal dealer pricing under transactions and return
    uncertainty", Journal of Financial Economics 9(1), 1981; A. Chakraborti, I. M. Toke,
    M. Patriarca and F. Abergel, "Econophysics review II: agent-based models", Quantitative
    Finance 11(7), 2011.
    """

    class Params(_QuoterParams):
        half_spread_ticks: int = Field(default=2, ge=1, description="distance of each quote")
        skew_ticks_per_lot: float = Field(
            default=0.0, ge=0.0, description="quotes move down this much per lot held long"
        )
        anchor: Literal["mid", "last", "fundamental"] = Field(
            default="mid", description="price quoted around"
        )

    def on_start(self) -> None:
        super().on_start()
        self._order = (self.params.anchor,)

    def targets(self) -> tuple[float | None, float | None]:
        p = self.params
        a = reference_ticks(self.ctx, self.symbol, self._order)
        centre = round(a - p.skew_ticks_per_lot * self.inventory())
        return centre - p.half_spread_ticks, centre + p.half_spread_ticks
