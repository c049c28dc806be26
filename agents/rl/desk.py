"""One learning market maker's books: actions to quotes, fills to inventory and cash, the
reward and its terms, the observation. Shared by the single-agent environments and the
multi-agent one, so every market maker is scored the same way.

Accounting is in ticks x lots: cash moves by price x qty on each fill, PnL is cash plus
inventory marked at the mid (the background's true mid at the end of the step).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from agents.rl.config import EnvConfig
from agents.rl.flowbook import (
    O_BUY,
    O_BUY_CASH,
    O_FILLS,
    O_SELL,
    O_SELL_CASH,
    O_TAKEN,
    R_MID,
    R_QASK,
    R_QBID,
    R_SNAP,
)
from agents.rl.observation import ObservationBuilder

__all__ = ["Desk", "decode_box", "quote_prices"]


def decode_box(action: np.ndarray, config: EnvConfig) -> tuple[float, float, int, int]:
    """A Box action in [-1, 1]^4 as (bid offset, ask offset, bid size, ask size).

    Offsets map linearly onto [min_offset_ticks, max_offset_ticks] (ticks from the mid; a
    negative offset crosses the mid), sizes onto 0..max_quote_size lots (0: no quote).
    """
    a = [-1.0 if x < -1.0 else 1.0 if x > 1.0 else x for x in np.asarray(action).tolist()]
    lo, hi = config.min_offset_ticks, config.max_offset_ticks
    off_b = lo + (a[0] + 1.0) * 0.5 * (hi - lo)
    off_a = lo + (a[1] + 1.0) * 0.5 * (hi - lo)
    top = config.max_quote_size
    return off_b, off_a, round((a[2] + 1.0) * 0.5 * top), round((a[3] + 1.0) * 0.5 * top)


def quote_prices(mid: float, off_b: float, off_a: float, bid_qty: int, ask_qty: int,
                 inventory: int, config: EnvConfig) -> tuple[int, int, int, int]:  # fmt: skip
    """(bid, bid qty, ask, ask qty) from offsets around `mid`: the bid rounds down and the ask
    up to a tick; the two never cross each other (the ask goes one tick above the bid); no
    quote adds to a position beyond max_inventory."""
    bid = math.floor(mid - off_b)
    ask = math.ceil(mid + off_a)
    if ask <= bid:
        ask = bid + 1
    cap = config.max_inventory
    if inventory >= cap:
        bid_qty = 0
    if inventory <= -cap:
        ask_qty = 0
    return bid, bid_qty, ask, ask_qty


class Desk:
    """Agent `index`'s account and scoring in a background market."""

    def __init__(self, config: EnvConfig, index: int = 0) -> None:
        self.config = config
        self.index = index
        self.builder = ObservationBuilder.from_config(config)
        r = config.reward
        self.l_inv, self.l_vol, self.l_imp, self.scale = r.inventory, r.volatility, r.impact, \
            r.scale
        self.reset_account()

    def reset_account(self) -> None:
        self.inventory = 0
        self.cash = 0.0
        self.pnl = 0.0
        self.mid = float("nan")
        self.last_obs: np.ndarray | None = None

    def start(self, market: Any) -> np.ndarray:
        """The first observation of an episode (the market has warmed up)."""
        self.reset_account()
        r = market.outcome(self.index)
        self.mid = r[R_MID]
        b = self.builder
        b.reset(b.mid_of(r[R_SNAP], r[R_SNAP + 2]), 0.0, market.now_ns)
        b.last_mid = float("nan")
        obs = b.build(market.now_ns, r[R_SNAP], r[R_SNAP + 1], r[R_SNAP + 2], r[R_SNAP + 3],
                      0, 0.0, 0, r[R_QBID], r[R_QASK])  # fmt: skip
        self.last_obs = obs
        return obs

    # ------------------------------------------------------------------ actions
    def quotes(self, off_b: float, off_a: float, bid_qty: int, ask_qty: int
               ) -> tuple[int, int, int, int]:  # fmt: skip
        """`quote_prices` around the mid the agent last saw (the true one before any)."""
        mid = self.builder.last_mid
        if mid != mid:
            mid = self.mid
        return quote_prices(mid, off_b, off_a, bid_qty, ask_qty, self.inventory, self.config)

    # ------------------------------------------------------------------ after a step
    def settle(self, market: Any) -> tuple[np.ndarray, float, dict[str, Any]]:
        """Book the step's fills; the observation, the reward and the info dict."""
        i = self.index
        r = market.outcome(i)
        fills = int(r[O_FILLS])
        if fills:
            self.inventory += int(r[O_BUY] - r[O_SELL])
            self.cash += r[O_SELL_CASH] - r[O_BUY_CASH]
        mid = r[R_MID]
        if mid == mid:
            self.mid = mid
        inv = self.inventory
        pnl = self.cash + inv * self.mid
        dpnl = pnl - self.pnl
        self.pnl = pnl
        ts_ns = market.now_ns
        b = self.builder
        obs = b.build(ts_ns, r[R_SNAP], r[R_SNAP + 1], r[R_SNAP + 2], r[R_SNAP + 3], inv, pnl,
                      fills, r[R_QBID], r[R_QASK])  # fmt: skip
        self.last_obs = obs
        sigma = b.sigma
        taken = r[O_TAKEN]
        cost = market_impact_cost(market, taken) if taken else 0.0
        inv_pen = self.l_inv * inv * inv
        vol_pen = self.l_vol * sigma * sigma
        imp_pen = self.l_imp * cost
        reward = (dpnl - inv_pen - vol_pen - imp_pen) / self.scale
        info: dict[str, Any] = {
            "delta_pnl": dpnl,
            "inventory_penalty": inv_pen,
            "volatility_penalty": vol_pen,
            "impact_penalty": imp_pen,
            "impact_cost": cost,
            "reward_scale": self.scale,
            "pnl": pnl,
            "cash": self.cash,
            "inventory": inv,
            "mid": self.mid,
            "sigma": sigma,
            "fills": fills,
            "taken": taken,
            "regime": market.regime,
            "ts_ns": ts_ns,
            # this step's fills: (ts ns, +1 buy / -1 sell, price, qty)
            "fill_records": _records(market, i) if fills else [],
        }
        return obs, reward, info


def market_impact_cost(market: Any, taken: float) -> float:
    """The impact model's cost of `taken` lots taken in one step (ticks x lots)."""
    return float(market.impact.cost(taken, market.sigma, market.step_s))


def _records(market: Any, i: int) -> list[tuple[int, int, int, int]]:
    return [(r[4], r[1], r[2], r[3]) for r in market.fills_log().tolist() if r[0] == i]
