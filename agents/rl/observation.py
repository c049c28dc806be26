"""The market-making observation: nine numbers, built the same way from a simulated book and
from a live feed, so a policy trained in simulated time reads exactly what it will read live.

Pure (numpy and the standard library; no gymnasium): `ObservationBuilder.build` takes plain
numbers (top of book, inventory, PnL, fills, queue places) that the flow background, the crowd
background and a live agent (`agents.Agent` handlers: `ctx.quote`, fills, open orders) all
have. `QueueTracker` estimates a resting order's place in its queue from what a live agent
sees (the level's size when the order was acknowledged, then trades and level changes).

The observation (float32; each value clipped to its range):

=====  ==================  ==========================================================  ========
index  name                value                                                       range
=====  ==================  ==========================================================  ========
0      mid                 (mid - mid at reset) / price_scale_ticks                    [-10, 10]
1      spread              spread in ticks / spread_scale_ticks (an empty side: 5)     [0, 5]
2      inventory           position in lots / inventory scale                          [-2, 2]
3      volatility          sigma estimate (ticks per √s) / sigma_scale                 [0, 10]
4      imbalance           (bid qty - ask qty) / (bid qty + ask qty) at the best       [-1, 1]
5      bid queue           share of the level ahead of the agent's bid; -1: no bid     [-1, 1]
6      ask queue           the same for the ask                                        [-1, 1]
7      PnL change          PnL change since the last step (ticks x lots) / pnl_scale   [-10, 10]
8      fills               fills since the last step / fills_scale                     [0, 10]
=====  ==================  ==========================================================  ========

The inventory scale is `inventory_scale_lots` when the config sets it, else `max_inventory`:
a cap of 100 lots with positions of a few lots leaves the inventory a few hundredths, too
small a signal beside the imbalance's ±1 for a network to pick up quickly, so a task whose
positions stay small can set a smaller scale (a position beyond twice it reads as ±2).

The volatility is an exponentially weighted estimate of the mid's variance per second
(half-life `vol_halflife_steps` observations); it is also the sigma in the reward.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = [
    "OBS_HIGH",
    "OBS_LOW",
    "OBS_NAMES",
    "ObservationBuilder",
    "QueueTracker",
    "inventory_scale",
]

OBS_NAMES: tuple[str, ...] = (
    "mid", "spread", "inventory", "volatility", "imbalance", "bid_queue", "ask_queue",
    "pnl_change", "fills",
)  # fmt: skip
OBS_LOW = np.array([-10, 0, -2, 0, -1, -1, -1, -10, 0], np.float32)
OBS_HIGH = np.array([10, 5, 2, 10, 1, 1, 1, 10, 10], np.float32)
_EMPTY_SPREAD = 5.0


@dataclass
class ObservationBuilder:
    """Turns one step's market and account numbers into the nine-value observation."""

    price_scale_ticks: float = 100.0
    spread_scale_ticks: float = 10.0
    sigma_scale: float = 5.0
    pnl_scale: float = 100.0
    fills_scale: float = 10.0
    max_inventory: float = 100.0  # the inventory divisor (see `inventory_scale`)
    vol_halflife_steps: float = 20.0

    def __post_init__(self) -> None:
        self._alpha = 1.0 - 0.5 ** (1.0 / self.vol_halflife_steps)
        self.reset(float("nan"), 0.0, 0)

    @classmethod
    def from_config(cls, config: object) -> ObservationBuilder:
        """From an `agents.rl.config.EnvConfig` (or anything with the same attributes)."""
        return cls(
            price_scale_ticks=config.price_scale_ticks,  # type: ignore[attr-defined]
            spread_scale_ticks=config.spread_scale_ticks,  # type: ignore[attr-defined]
            sigma_scale=config.sigma_scale,  # type: ignore[attr-defined]
            pnl_scale=config.pnl_scale,  # type: ignore[attr-defined]
            fills_scale=config.fills_scale,  # type: ignore[attr-defined]
            max_inventory=inventory_scale(config),
            vol_halflife_steps=config.vol_halflife_steps,  # type: ignore[attr-defined]
        )

    def reset(self, mid: float, pnl: float, ts_ns: int) -> None:
        """Start an episode: `mid` is the reference the mid is measured from."""
        self.mid0 = mid
        self.last_mid = mid
        self.last_pnl = pnl
        self.last_ts = ts_ns
        self.var_per_s = 0.0

    @property
    def sigma(self) -> float:
        """The volatility estimate, ticks per √s."""
        return math.sqrt(self.var_per_s)

    def mid_of(self, bid: float | None, ask: float | None) -> float:
        """The mid, or the last one when a side is empty."""
        if bid is None or ask is None or bid != bid or ask != ask:  # None or NaN
            return self.last_mid
        return 0.5 * (bid + ask)

    def build(
        self,
        ts_ns: int,
        bid: float | None,
        bid_qty: float,
        ask: float | None,
        ask_qty: float,
        inventory: float,
        pnl: float,
        fills: int,
        bid_queue: float = -1.0,
        ask_queue: float = -1.0,
    ) -> np.ndarray:
        """One observation; updates the volatility estimate, the last mid and the last PnL."""
        mid = self.mid_of(bid, ask)
        if self.mid0 != self.mid0:  # first mid of the episode
            self.mid0 = mid
        last = self.last_mid
        dt = (ts_ns - self.last_ts) / 1e9
        if dt > 0 and last == last and mid == mid:
            d = mid - last
            self.var_per_s += self._alpha * (d * d / dt - self.var_per_s)
        self.last_mid = mid
        self.last_ts = ts_ns
        if mid != mid or bid is None or ask is None or bid != bid or ask != ask:
            spread = _EMPTY_SPREAD
            imb = 0.0 if mid != mid else _imbalance(bid_qty, ask_qty)
        else:
            spread = (ask - bid) / self.spread_scale_ticks
            imb = _imbalance(bid_qty, ask_qty)
        dpnl = pnl - self.last_pnl
        self.last_pnl = pnl
        rel = 0.0 if mid != mid else (mid - self.mid0) / self.price_scale_ticks
        sig = self.sigma / self.sigma_scale
        inv = inventory / self.max_inventory
        dp = dpnl / self.pnl_scale
        fl = fills / self.fills_scale
        # clipped to OBS_LOW..OBS_HIGH (spelled out: this runs every step)
        return np.array((
            -10.0 if rel < -10.0 else 10.0 if rel > 10.0 else rel,
            5.0 if spread > 5.0 else 0.0 if spread < 0.0 else spread,
            -2.0 if inv < -2.0 else 2.0 if inv > 2.0 else inv,
            10.0 if sig > 10.0 else sig,
            imb,
            1.0 if bid_queue > 1.0 else bid_queue,
            1.0 if ask_queue > 1.0 else ask_queue,
            -10.0 if dp < -10.0 else 10.0 if dp > 10.0 else dp,
            10.0 if fl > 10.0 else fl,
        ), np.float32)  # fmt: skip


def inventory_scale(config: object) -> float:
    """The observation's inventory divisor: `inventory_scale_lots`, or `max_inventory`."""
    scale = getattr(config, "inventory_scale_lots", None)
    return float(scale if scale is not None else config.max_inventory)  # type: ignore[attr-defined]


def _imbalance(bid_qty: float, ask_qty: float) -> float:
    total = bid_qty + ask_qty
    return 0.0 if total <= 0 else (bid_qty - ask_qty) / total


class QueueTracker:
    """A live estimate of one resting order's place in its price level's queue.

    On acknowledgement the order is behind the whole level as last seen (`place`); a trade at
    its price consumes the queue from the front (`on_trade`); when the level shrinks for any
    other reason (`on_level`), the part ahead of the order can be at most what is left.
    `position` is the observation's queue value: the share of the level ahead (0 = front),
    -1 without an order.
    """

    def __init__(self) -> None:
        self.price: int | None = None
        self.qty = 0
        self.ahead = 0.0
        self.level = 0.0

    def place(self, price: int, qty: int, level_qty: float) -> None:
        """The order rests at `price` behind `level_qty` lots (excluding itself)."""
        self.price, self.qty = price, qty
        self.ahead = max(0.0, float(level_qty))
        self.level = self.ahead + qty

    def resize(self, qty: int) -> None:
        """Same price, new size (a size-down keeps the place); 0 removes the order."""
        if qty <= 0:
            self.clear()
        else:
            self.level += qty - self.qty
            self.qty = qty

    def clear(self) -> None:
        self.price, self.qty, self.ahead, self.level = None, 0, 0.0, 0.0

    def on_trade(self, price: int, qty: int) -> None:
        if self.price is not None and price == self.price:
            self.ahead = max(0.0, self.ahead - qty)
            self.level = max(float(self.qty), self.level - qty)

    def on_level(self, price: int, level_qty: float) -> None:
        """The level at `price` now shows `level_qty` lots (the order included)."""
        if self.price is not None and price == self.price:
            self.ahead = min(self.ahead, max(0.0, level_qty - self.qty))
            self.level = max(float(level_qty), float(self.qty))

    @property
    def position(self) -> float:
        if self.price is None or self.qty <= 0:
            return -1.0
        return min(1.0, self.ahead / max(self.level, 1.0))
