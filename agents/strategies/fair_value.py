"""The heterogeneous fair-value population (ARCHITECTURE.md, "The fair-value market model")."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from agents.agent import Agent
from agents.strategies._common import ExpiryQueue, exp_interval, reference_ticks, resolve_symbol

__all__ = [
    "BarHistory",
    "FairValueDraw",
    "FairValueTrader",
    "draw_priors",
    "ema_close",
    "fair_estimate",
    "l_step",
    "order_size",
    "quote_prices",
]

_ARRIVE = "fv.arrive"
_EXPIRE = "fv.expire"
# L(t, k) is computed over the last EMA_SPAN * k bars: the weight left on the start value is
# ((k-1)/k)^(EMA_SPAN*k) <= e^-EMA_SPAN, about 3e-4.
EMA_SPAN = 8.0


# --------------------------------------------------------------------------- the pure maths
@dataclass(slots=True, frozen=True)
class FairValueDraw:
    """One arriving agent's type: (alpha, k, sigma, W, D, A, δ)."""

    alpha: float  # weight on the fundamental, in (0, 1)
    k: float  # EMA horizon of the chartist component, in bars, >= 1
    sigma: float  # std of the private noise on the log-price estimate, >= 0
    w: float  # wealth (lots), >= w_min
    d: float  # information lag, in bars, > 0
    a: float  # fraction of wealth put on each side, in (0, 1)
    delta: float  # half-spread in log-price, >= 0


def draw_priors(rng: np.random.Generator, p: FairValueTrader.Params) -> FairValueDraw:
    """Draw an agent type from the priors in `p`.

    alpha ~ Beta(alpha_a, alpha_b); k - 1 ~ Gamma(k_shape, k_scale); sigma ~ Gamma(sigma_shape,
    sigma_scale); W ~ Pareto(scale w_min, tail w_tail); D ~ LogNormal(d_mu, d_sigma);
    A/(1-A) ~ LogNormal(a_mu, a_sigma); δ ~ Gamma(delta_shape, delta_scale).
    """
    alpha = float(rng.beta(p.alpha_a, p.alpha_b))
    k = 1.0 + float(rng.gamma(p.k_shape, p.k_scale))
    sigma = float(rng.gamma(p.sigma_shape, p.sigma_scale)) if p.sigma_scale > 0 else 0.0
    w = p.w_min * (1.0 + float(rng.pareto(p.w_tail)))
    d = float(rng.lognormal(p.d_mu, p.d_sigma))
    odds = float(rng.lognormal(p.a_mu, p.a_sigma))
    a = odds / (1.0 + odds)
    delta = float(rng.gamma(p.delta_shape, p.delta_scale)) if p.delta_scale > 0 else 0.0
    return FairValueDraw(alpha, k, sigma, w, d, a, delta)


def l_step(prev: float, close: float, k: float) -> float:
    """One step of L(t, k) = close(t)/k + (k-1)/k · L(t-1, k)."""
    return close / k + (k - 1.0) / k * prev


def ema_close(closes: Sequence[float], k: float) -> float:
    """L(t, k) at the last close of `closes` (oldest first), started at L = closes[0]."""
    if not closes:
        raise ValueError("no closes")
    it = iter(closes)
    level = next(it)
    w_new = 1.0 / k
    w_old = 1.0 - w_new
    for c in it:
        level = c * w_new + w_old * level
    return level


def fair_estimate(alpha: float, f: float, level: float, sigma: float, z: float) -> float:
    """The fair log-price alpha·F + (1-alpha)·L + sigma·z (`level` is L, z standard normal)."""
    return alpha * f + (1.0 - alpha) * level + sigma * z


def quote_prices(estimate: float, delta: float) -> tuple[float, float]:
    """(bid, ask) decimal prices exp(estimate - δ), exp(estimate + δ)."""
    return math.exp(estimate - delta), math.exp(estimate + delta)


def order_size(w: float, a: float, cap: int) -> int:
    """max(1, round(W·A)), capped at `cap` lots."""
    return max(1, min(cap, round(w * a)))


class BarHistory:
    """The last value seen in each bar, bars without a value carrying the previous one forward.

    Holds at least `maxlen` bars; `at(bar)` of a bar older than the history answers the oldest
    value kept, of a bar after the last one the last value (what was known then).
    """

    __slots__ = ("last_bar", "maxlen", "values")

    def __init__(self, maxlen: int) -> None:
        self.maxlen = maxlen
        self.values: list[float] = []
        self.last_bar = -1

    def __len__(self) -> int:
        return len(self.values)

    def record(self, bar: int, value: float) -> None:
        values = self.values
        if not values:
            values.append(value)
            self.last_bar = bar
            return
        gap = bar - self.last_bar
        if gap <= 0:  # the same bar (or a late sample): the newest value is the close
            values[-1] = value
            return
        if gap > 1:
            values.extend([values[-1]] * min(gap - 1, self.maxlen))
        values.append(value)
        self.last_bar = bar
        if len(values) > 2 * self.maxlen:
            del values[: len(values) - self.maxlen]

    def at(self, bar: int) -> float:
        values = self.values
        idx = len(values) - 1 - (self.last_bar - bar)
        if idx >= len(values):
            idx = len(values) - 1
        return values[max(0, idx)]

    def window(self, bar: int, n: int) -> list[float]:
        """Up to `n` values ending at `bar` (clipped to the history), oldest first."""
        values = self.values
        end = len(values) - (self.last_bar - bar)
        end = max(1, min(len(values), end))
        return values[max(0, end - n) : end]


# --------------------------------------------------------------------------- the agent
class FairValueTrader(Agent):
    """One population slot of the heterogeneous fair-value crowd.

    The crowd's Poisson(λ) arrivals are modelled by slots: each slot is one agent instance whose
    arrivals are exponential with rate `rate_per_s`; at each arrival it plays a *fresh* agent
    drawn from the priors (`draw_priors`): weight alpha on the fundamental, chartist horizon k,
    noise sigma, wealth W, information lag D, fraction A of wealth offered, half-spread δ. It
    estimates the fair log-price

        est = alpha·F(t-D) + (1-alpha)·L(t-D, k) + N(0, sigma²),
        L(t, k) = close(t)/k + (k-1)/k·L(t-1, k)

    and posts a bid at exp(est - δ) (rounded down to a tick) and an ask at exp(est + δ)
    (rounded up), each of max(1, round(W·A)) lots. Its orders are cancelled `lifetime_ns` later.
    N slots of rate λ/N each make a Poisson(λ) crowd.

    Discretisation: model time t is counted in bars of `bar_ns`. F(t) is the log of the last
    fundamental seen in bar t, close(t) the log of the last trade price sampled in bar t (mid,
    F, then the spec's reference price stand in before the first trade). Both are sampled when
    a fundamental arrives and at each arrival, not on every trade (that keeps the per-trade
    cost of a large population at zero); bars without a sample carry the previous value
    forward. D is rounded to whole bars; lags beyond the kept history (`history_bars`) read the
    oldest value. Because k is drawn per arrival, L(t-D, k) is recomputed at each arrival by
    running the recursion over the last ⌈8k⌉ closes up to bar t-D, started at the first of them
    (the start value keeps a weight below e⁻⁸). k is drawn as 1 + Gamma so that L is a convex
    average. sigma and δ are in log-price units; W in lots.

    Source: the heterogeneous-agent fair-value model of ARCHITECTURE.md, after C. Chiarella and
    G. Iori, "A simulation analysis of the microstructure of double auction markets",
    Quantitative Finance 2(5), 2002 (fundamentalist/chartist/noise mixture with Gaussian noise
    and a lagged chartist average), and C. Chiarella, G. Iori and J. Perelló, "The impact of
    heterogeneous trading rules on the limit order book and order flows", JEDC 33(3), 2009.
    """

    class Params(BaseModel):
        model_config = ConfigDict(extra="forbid")

        symbol: str | None = Field(default=None, description="symbol to trade (None: the first)")
        rate_per_s: float = Field(
            default=1.0, gt=0.0, description="arrival rate λ of this slot (per second)"
        )
        bar_ns: int = Field(
            default=1_000_000_000, gt=0, description="length of one model time step t (ns)"
        )
        history_bars: int = Field(
            default=1_024, ge=2, description="bars of F and close history kept for lags"
        )
        lifetime_ns: int = Field(
            default=10_000_000_000, ge=0, description="cancel each order after this (0: never)"
        )
        max_size: int = Field(default=1_000, ge=1, description="cap on one order's size (lots)")
        alpha_a: float = Field(default=2.0, gt=0.0, description="alpha ~ Beta(alpha_a, alpha_b)")
        alpha_b: float = Field(default=2.0, gt=0.0, description="alpha ~ Beta(alpha_a, alpha_b)")
        k_shape: float = Field(default=2.0, gt=0.0, description="k - 1 ~ Gamma(shape, scale)")
        k_scale: float = Field(default=5.0, gt=0.0, description="k - 1 ~ Gamma(shape, scale)")
        sigma_shape: float = Field(default=2.0, gt=0.0, description="sigma ~ Gamma(shape, scale)")
        sigma_scale: float = Field(
            default=0.0005, ge=0.0, description="sigma ~ Gamma(shape, scale), log-price (0: none)"
        )
        w_min: float = Field(default=5.0, gt=0.0, description="W ~ Pareto: scale (lots)")
        w_tail: float = Field(default=1.5, gt=0.0, description="W ~ Pareto: tail exponent")
        d_mu: float = Field(default=0.0, description="D ~ LogNormal(d_mu, d_sigma), in bars")
        d_sigma: float = Field(default=1.0, ge=0.0, description="D ~ LogNormal(d_mu, d_sigma)")
        a_mu: float = Field(default=-1.0, description="A/(1-A) ~ LogNormal(a_mu, a_sigma)")
        a_sigma: float = Field(
            default=0.5, ge=0.0, description="A/(1-A) ~ LogNormal(a_mu, a_sigma)"
        )
        delta_shape: float = Field(default=2.0, gt=0.0, description="δ ~ Gamma(shape, scale)")
        delta_scale: float = Field(
            default=0.0005, ge=0.0, description="δ ~ Gamma(shape, scale), log-price (0: δ = 0)"
        )

    def on_start(self) -> None:
        p = self.params
        ctx = self.ctx
        self.symbol = resolve_symbol(ctx, p.symbol)
        self._tick = float(ctx.spec(self.symbol).tick_size)
        self._cap = min(p.max_size, ctx.spec(self.symbol).max_qty)
        self._mean_wait = 1e9 / p.rate_per_s
        self.f_history = BarHistory(p.history_bars)
        self.close_history = BarHistory(p.history_bars)
        self._expiry = ExpiryQueue(_EXPIRE)
        self.last_draw: FairValueDraw | None = None
        self.last_estimate: float | None = None
        ctx.set_timer(_ARRIVE, exp_interval(ctx, self._mean_wait), repeat=False)

    # ------------------------------------------------------------------ sampling
    def _sample(self, bar: int) -> None:
        ctx = self.ctx
        f = ctx.fundamental(self.symbol)
        if f is not None and f > 0:
            self.f_history.record(bar, math.log(f))
        close = reference_ticks(ctx, self.symbol, ("last", "mid", "fundamental"))
        self.close_history.record(bar, math.log(close * self._tick))

    def on_fundamental(self, symbol: str, value: float) -> None:
        if symbol == self.symbol:
            self._sample(self.ctx.now() // self.params.bar_ns)

    # ------------------------------------------------------------------ arrivals
    def on_timer(self, name: str) -> None:
        if name == _ARRIVE:
            self._arrive()
            self.ctx.set_timer(_ARRIVE, exp_interval(self.ctx, self._mean_wait), repeat=False)
        elif name == _EXPIRE:
            self._expiry.sweep(self.ctx)

    def estimate(self, draw: FairValueDraw, z: float) -> float:
        """The fair log-price of an agent of type `draw` now, with noise draw z ~ N(0, 1)."""
        bar = self.ctx.now() // self.params.bar_ns
        self._sample(bar)
        lag_bar = bar - round(draw.d)
        closes = self.close_history.window(lag_bar, math.ceil(EMA_SPAN * draw.k) + 1)
        l_lag = ema_close(closes, draw.k)
        # Before the first fundamental, F stands in as the lagged close (the doc's fallback).
        f_lag = self.f_history.at(lag_bar) if self.f_history else closes[-1]
        return fair_estimate(draw.alpha, f_lag, l_lag, draw.sigma, z)

    def _arrive(self) -> None:
        ctx = self.ctx
        rng = ctx.rng
        draw = draw_priors(rng, self.params)
        est = self.estimate(draw, float(rng.standard_normal()))
        self.last_draw = draw
        self.last_estimate = est
        bid_px, ask_px = quote_prices(est, draw.delta)
        tick = self._tick
        bid = max(1, math.floor(bid_px / tick + 1e-9))
        ask = max(bid + 1, math.ceil(ask_px / tick - 1e-9))
        size = order_size(draw.w, draw.a, self._cap)
        lifetime = self.params.lifetime_ns
        self._expiry.track(ctx, ctx.submit(self.symbol, "buy", size, bid), lifetime)
        self._expiry.track(ctx, ctx.submit(self.symbol, "sell", size, ask), lifetime)
