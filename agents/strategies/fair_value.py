"""The heterogeneous fair-value population (ARCHITECTURE.md, "The fair-value market model")."""

from __future__ import annotations

import math
from bisect import bisect_right
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from agents.agent import Agent
from agents.events import TradeTick
from agents.strategies._common import ExpiryQueue, exp_interval, reference_ticks, resolve_symbol
from agents.strategies.hawkes import HawkesIntensity, power_law_kernel

__all__ = [
    "BarHistory",
    "FairValueDraw",
    "FairValueTrader",
    "HawkesFairValueTrader",
    "TimedHistory",
    "draw_priors",
    "ema_close",
    "fair_estimate",
    "l_step",
    "mood_free_estimate",
    "mood_shift_estimate",
    "mood_step",
    "order_size",
    "quote_prices",
    "switching_share",
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


def draw_priors(
    rng: np.random.Generator, p: FairValueTrader.Params, fundamentalist_share: float = 0.5
) -> FairValueDraw:
    """Draw an agent type from the priors in `p`.

    alpha ~ Beta(alpha_a, alpha_b); k - 1 ~ Gamma(k_shape, k_scale); sigma ~ Gamma(sigma_shape,
    sigma_scale); W ~ Pareto(scale w_min, tail w_tail) (`w_prior="pareto"`, the default) or
    LogNormal(w_mu, w_sigma) (`"lognormal"`); D ~ LogNormal(d_mu, d_sigma);
    A/(1-A) ~ LogNormal(a_mu, a_sigma) (`a_prior="logit_lognormal"`, the default) or
    A ~ Beta(a_beta_a, a_beta_b) (`"beta"`); δ ~ Gamma(delta_shape, delta_scale).

    `fundamentalist_share` π tilts the Beta prior of alpha (see `switching_share`): alpha ~
    Beta(2π·alpha_a, 2(1-π)·alpha_b), which is the configured prior at π = 1/2 (the default, so
    without switching the draw is exactly the configured Beta).
    """
    if fundamentalist_share == 0.5:
        alpha = float(rng.beta(p.alpha_a, p.alpha_b))
    else:
        pi = fundamentalist_share
        alpha = float(rng.beta(2.0 * pi * p.alpha_a, 2.0 * (1.0 - pi) * p.alpha_b))
    k = 1.0 + float(rng.gamma(p.k_shape, p.k_scale))
    sigma = float(rng.gamma(p.sigma_shape, p.sigma_scale)) if p.sigma_scale > 0 else 0.0
    if p.w_prior == "pareto":
        w = p.w_min * (1.0 + float(rng.pareto(p.w_tail)))
    else:
        w = float(rng.lognormal(p.w_mu, p.w_sigma))
    d = float(rng.lognormal(p.d_mu, p.d_sigma))
    if p.a_prior == "logit_lognormal":
        odds = float(rng.lognormal(p.a_mu, p.a_sigma))
        a = odds / (1.0 + odds)
    else:
        a = float(rng.beta(p.a_beta_a, p.a_beta_b))
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


def mood_shift_estimate(
    alpha: float,
    f: float,
    closes: Sequence[float],
    moods: Sequence[float],
    k: float,
    mood: float,
    sigma: float,
    z: float,
) -> float:
    """The estimate with the mood shifting every view at once (`mood_form = "shift"`).

    alpha·(F + m) + (1-alpha)·L' + sigma·z with L' = L(mood-free closes) + m: the chartist level
    is the EMA of close - (the mood in effect at that close), `moods` aligned with `closes`,
    plus the mood now. It equals alpha·F + (1-alpha)·ema(close - mood) + m + sigma·z, so a change
    of m moves every estimate by exactly that change, whatever alpha and k.
    """
    free = [c - m for c, m in zip(closes, moods, strict=True)]
    return mood_free_estimate(alpha, f, free, k, mood, sigma, z)


def mood_free_estimate(
    alpha: float, f: float, free: Sequence[float], k: float, mood: float, sigma: float, z: float
) -> float:
    """`mood_shift_estimate` on closes the mood is already taken off (close - mood, oldest
    first): what the trader keeps per bar, so an estimate runs one EMA, not two."""
    return fair_estimate(alpha, f, ema_close(free, k), sigma, z) + mood


def quote_prices(estimate: float, delta: float) -> tuple[float, float]:
    """(bid, ask) decimal prices exp(estimate - δ), exp(estimate + δ)."""
    return math.exp(estimate - delta), math.exp(estimate + delta)


def switching_share(err_f: float, err_c: float, intensity: float, scale: float) -> float:
    """The share π of fundamentalist weight after a discrete choice on recent forecast errors.

    π = 1 / (1 + exp(-β·(err_c - err_f) / scale)), with err_f and err_c the recent mean
    squared errors of the pure fundamentalist forecast (F) and the pure chartist one (L),
    `scale` a squared volatility that makes the difference dimensionless, β = `intensity`.
    The better forecaster attracts weight: Brock and Hommes' adaptive belief system
    (W. A. Brock and C. H. Hommes, "Heterogeneous beliefs and routes to chaos in a simple asset
    pricing model", JEDC 22, 1998), the fundamentalist/chartist switching that drives
    volatility clustering in T. Lux and M. Marchesi, "Scaling and criticality in a stochastic
    multi-agent model of a financial market", Nature 397, 1999. Clipped to [0.05, 0.95] so the
    tilted Beta stays proper.
    """
    if scale <= 0.0:
        return 0.5
    x = max(-50.0, min(50.0, intensity * (err_c - err_f) / scale))
    return min(0.95, max(0.05, 1.0 / (1.0 + math.exp(-x))))


def mood_step(
    mood: float,
    news: float,
    dt_bars: float,
    ratio: float,
    gain: float,
    feedback: float,
    memory_bars: float,
) -> float:
    """The crowd's mood after `dt_bars` bars and one piece of news (a change of log F).

    m <- m·exp(-dt/τ) + c·ratio^g·news, with c = `gain`, g = `feedback`, τ = `memory_bars`
    (the trader's `mood_gain`, `mood_feedback`, `mood_memory_bars`) and `ratio` the recent
    volatility over its slow average: the crowd overreacts to news, more so when the market is
    turbulent, and the overreaction fades over τ. Zero news leaves only the decay; c = 0 keeps
    the mood at its decayed start.
    """
    return mood * math.exp(-dt_bars / memory_bars) + gain * ratio**feedback * news


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
        return self._window(self.values, bar, n)

    def _window(self, values: list[float], bar: int, n: int) -> list[float]:
        end = len(values) - (self.last_bar - bar)
        end = max(1, min(len(values), end))
        return values[max(0, end - n) : end]


class BarPair(BarHistory):
    """Two per-bar series sampled together (a close and its mood-free value): one bar count and
    one record a sample for both, aligned by construction. `record_pair` replaces `record`;
    `second` is the other series, read like a `BarHistory` (`window`)."""

    __slots__ = ("second", "seconds")

    def __init__(self, maxlen: int) -> None:
        super().__init__(maxlen)
        self.seconds: list[float] = []
        self.second = _SecondBars(self)

    def record(self, bar: int, value: float) -> None:
        raise TypeError("a BarPair records both series at once: record_pair")

    def record_pair(self, bar: int, value: float, second: float) -> None:
        values, seconds = self.values, self.seconds
        if not values:
            values.append(value)
            seconds.append(second)
            self.last_bar = bar
            return
        gap = bar - self.last_bar
        if gap <= 0:  # the same bar (or a late sample): the newest values close it
            values[-1] = value
            seconds[-1] = second
            return
        if gap > 1:
            n = min(gap - 1, self.maxlen)
            values.extend([values[-1]] * n)
            seconds.extend([seconds[-1]] * n)
        values.append(value)
        seconds.append(second)
        self.last_bar = bar
        if len(values) > 2 * self.maxlen:
            cut = len(values) - self.maxlen
            del values[:cut]
            del seconds[:cut]


class _SecondBars:
    """The second series of a `BarPair`, read like a `BarHistory`."""

    __slots__ = ("pair",)

    def __init__(self, pair: BarPair) -> None:
        self.pair = pair

    def __len__(self) -> int:
        return len(self.pair.seconds)

    @property
    def last_bar(self) -> int:
        return self.pair.last_bar

    def window(self, bar: int, n: int) -> list[float]:
        return self.pair._window(self.pair.seconds, bar, n)


class TimedHistory:
    """(time, value) samples in time order, for reading a value as it was at any past instant.

    `at(ts)` is the last value sampled at or before `ts` (the oldest kept when `ts` is older;
    None before the first sample). At most about `maxlen` samples are kept.
    """

    __slots__ = ("limit", "maxlen", "times", "values")

    def __init__(self, maxlen: int) -> None:
        self.maxlen = maxlen
        self.limit = 2 * maxlen  # trimmed back to maxlen past this (amortised O(1) records)
        self.times: list[int] = []
        self.values: list[float] = []

    def __len__(self) -> int:
        return len(self.values)

    def record(self, ts: int, value: float) -> None:
        times = self.times
        if times and ts <= times[-1]:
            self.values[-1] = value  # same instant (or late): the newest value wins
            return
        times.append(ts)
        self.values.append(value)
        if len(times) > self.limit:
            cut = len(times) - self.maxlen
            del times[:cut]
            del self.values[:cut]

    def at(self, ts: int) -> float | None:
        return self._at(self.values, ts)

    def _at(self, values: list[float], ts: int) -> float | None:
        if not values:
            return None
        return values[max(0, bisect_right(self.times, ts) - 1)]


class TimedPair(TimedHistory):
    """Two series sampled at the same instants (a close and its mood-free value): one list of
    times for both, so a sample costs one record and the two stay aligned by construction.
    `record_pair` replaces `record`; `second` reads the other series as `at` reads the first."""

    __slots__ = ("seconds",)

    def __init__(self, maxlen: int) -> None:
        super().__init__(maxlen)
        self.seconds: list[float] = []

    def record(self, ts: int, value: float) -> None:
        raise TypeError("a TimedPair records both series at once: record_pair")

    def record_pair(self, ts: int, value: float, second: float) -> None:
        times = self.times
        if times and ts <= times[-1]:
            self.values[-1] = value  # same instant (or late): the newest values win
            self.seconds[-1] = second
            return
        times.append(ts)
        self.values.append(value)
        self.seconds.append(second)
        if len(times) > self.limit:
            cut = len(times) - self.maxlen
            del times[:cut]
            del self.values[:cut]
            del self.seconds[:cut]

    def second(self, ts: int) -> float | None:
        return self._at(self.seconds, ts)


class _Second:
    """The second series of a `TimedPair`, read like a `TimedHistory` (``at``)."""

    __slots__ = ("at",)

    def __init__(self, pair: TimedPair) -> None:
        self.at = pair.second


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
    fundamental seen, close(t) the log of the last trade price sampled (mid, F, then the spec's
    reference price stand in before the first trade). Both are sampled when a fundamental
    arrives and at each arrival, not on every trade (that keeps the per-trade cost of a large
    population at zero). D is continuous (`lag="continuous"`, the default): F(t-D) is the last
    F sampled at or before t - D·bar_ns, and L(t-D, k) runs the recursion over the closes of
    the whole bars before t - D, then the close as it stood at t - D. `lag="bars"` rounds D to
    whole bars instead (the earlier discretisation, where most agents get no lag at all).
    Lags beyond the kept history (`history_bars`) read the oldest value. Because k is drawn
    per arrival, L is recomputed at each arrival over the last ⌈8k⌉ closes, started at the
    first of them (the start value keeps a weight below e⁻⁸). k is drawn as 1 + Gamma so that
    L is a convex average; a Gamma shape below 1 spreads k realistically (most agents look at
    the last few seconds, a few at minutes). sigma and δ are in log-price units; W in lots.

    Mechanics that keep the formula and make the price series look like a market (each off by
    default, so the plain model stays available):

    * `vol_feedback` g: each arriving agent measures the volatility v_k of the closes over its
      own horizon (`vol_horizon` x k bars: the root mean square one-bar return) and scales
      its noise and half-spread by (v_k/v̄)^g (v̄: a slow average of the same volatility, over
      `vol_ref_bars`), clipped to [1/`vol_clip`, `vol_clip`]. Agents
      who see a turbulent market disagree more; with horizons k spread over decades, the
      feedback has memory on every horizon, the heterogeneous-horizon mechanism behind the
      slowly decaying autocorrelation of |r| (U. A. Müller et al., "Volatilities of different
      time resolutions", J. Empirical Finance 4, 1997; B. LeBaron, "Evolution and time horizons
      in an agent-based stock market", Macroeconomic Dynamics 5, 2001).
    * `activity_feedback` η: the slot's arrival rate is scaled by the same ratio to the power η
      (clipped likewise): activity rises with recent volatility, a price-mediated self-exciting
      order flow (the empirical volume-volatility link of Hawkes-driven order flow, E. Bacry,
      I. Mastromatteo and J.-F. Muzy, "Hawkes processes in finance", Market Microstructure and
      Liquidity 1(1), 2015).
    * `switching` β: the Beta prior of alpha is tilted toward the fundamentalist or the
      chartist end by the recent forecast errors of each view (`switching_share`: Brock-Hommes
      discrete choice, Lux-Marchesi switching). Errors are mean squared, over about
      `switch_memory` arrivals, of the F(t-D) and L(t-D, k) forecasts of the current close.
    * `wealth_sizes`: W is multiplied by the slot's wealth (cash + position at the last
      price) over its starting wealth, so size follows the account's PnL; a slot whose wealth
      falls below `bankrupt_fraction` of its start is bankrupt and is replaced by a newly drawn
      trader: its wealth baseline restarts from the account as it is (the counter `bankruptcies`
      says how often). Off: W is in lots, as specified.
    * `mood_gain` c: the crowd's mood m, a common bias of its views: the fundamentalist
      reads F(t-D) + m and the chartist L(t-D, k) + θ·m (θ = `mood_chartists`), so
      est = alpha·F(t-D) + (1-alpha)·L(t-D, k) + noise, the noise alpha·m + (1-alpha)·θ·m +
      sigma·z. Each piece of news (a change of log F) moves m by c·(v_m/v̄)^g (`mood_step`;
      g = `mood_feedback`, v_m the volatility of the closes over the last `mood_vol_bars`
      bars, v̄ as for `vol_feedback`, the ratio clipped by `vol_clip`), and m fades with an
      e-folding time of `mood_memory_bars`. The crowd overreacts to news, the more so when
      the market is turbulent (overreaction: W. De Bondt and R. Thaler, "Does the stock
      market overreact?", Journal of Finance 40, 1985; a common sentiment of noise traders
      whose swings feed on price changes: Lux and Marchesi, 1999, above, and S. Alfarano, T.
      Lux and F. Wagner, "Estimation of agent-based models: the case of an asymmetric herding
      model", Computational Economics 26, 2005). The noise it adds is common and slow, so
      turbulence persists over τ without an independent draw per trade (which makes the last
      trade bounce between the sides). θ sets how the mood spreads over the crowd: with
      θ = 1 (the same bias on every estimate) the chartists' L, which already carries the
      mood once it is in the price, counts it twice, and estimates spread by about
      (alpha_i - alpha_j)·θ·m/alpha, a bounce that grows with the mood; with θ = 0 there is
      no such spread but the price takes the mood in only as fast as L follows it (returns
      trend). F itself is unchanged; every slot computes the mood from the news it receives
      (no state is shared between slots), so slots that see nearly the same closes hold
      nearly the same mood.
      That is `mood_form = "split"`, the default. `mood_form = "shift"` makes the mood shift
      every view at once without counting it twice: the chartist's level is taken on the
      mood-free closes (each close less the mood in effect when it was sampled, kept per bar
      beside the closes and read with the same lag D) and the current mood is added back,
      L' = ema_k(close - mood) + m, so est = alpha·(F(t-D) + m) + (1-alpha)·L' + sigma·z
      (`mood_shift_estimate`). With the price at F + m, every agent then estimates F + m
      whatever its alpha and k, and a change of m moves every estimate by that change at
      once: no spread of the estimates by alpha (no bounce from the mood) and no lag behind it
      (no trend from the mood); θ is not used. A trade meets resting quotes posted up to a
      lifetime earlier, so a close sampled just after a mood swing still carries the old
      mood: taken off as the new one, it makes the mood-free close dip and the chartists lag
      the swing (the price then takes the mood in over seconds and returns trend).
      `mood_book_ns` pairs each close with the mood that long before it (about half the
      order lifetime; 0: the mood now). The mood-free price still takes F in over the
      chartists' horizons (about 15 s at k ~ 1 + Gamma(2, 5)) while the mood jumps with each
      piece of news, so 5 s returns trend; `mood_fast_gain` adds a fast part to the mood, moved
      by each piece of news by that gain (no volatility scaling) and fading over
      `mood_fast_bars`: the crowd's first reaction overshoots and fades as the chartists catch
      up, which takes the news in at once rather than over the chartists' lag. The sentiment
      is a common shift of all expectations, as the optimistic/pessimistic opinion index of
      Lux and Marchesi (1999) moves the whole crowd, while the fundamentalist/chartist split
      of Chiarella and Iori (2002) is kept for the price itself. The mood's volatility ratio
      can be capped (`mood_ratio_cap`: a turbulent spell cannot make each piece of news move
      the mood without bound, so it ends sooner) and averaged over two windows (`mood_vol_bars` and
      `mood_vol_bars_long`, both at most `history_bars`): volatility components on two time
      scales, a short memory that lets turbulent spells end and a long one that makes
      clustering decay slowly (the multi-timescale volatility of L. E. Calvet and A. J.
      Fisher, "Multifractality in asset returns: theory and evidence", Review of Economics
      and Statistics 84, 2002, and of Müller et al. 1997, above).

    * `hawkes_weight` h: self-exciting arrivals (`agents.strategies.hawkes`). The slot's
      arrival intensity is λ(t) = min(cap, μ + Σ_m a_m S_m(t)), μ = `rate_per_s`, with a
      power-law kernel approximated by `hawkes_scales` exponentials from `hawkes_tau_min_s`
      to `hawkes_tau_max_s` (tail exponent `hawkes_exponent`), whose integral is h: each
      trade on the public tape (one per aggressing order: the ticks of one instant count
      once) triggers h arrivals of this slot on average. What excites is what every trader
      sees, so it works the same live; all slots watch one tape, so the crowd's activity
      moves together: busy spells and quiet ones on every scale from seconds to many minutes,
      the long-memory, near-critical order flow of Hardiman, Bercot and Bouchaud ("Critical
      reflexivity in financial markets", EPJ B 86, 2013) and Bacry, Mastromatteo and Muzy.
      The crowd's branching ratio is n = h x (slots) x (trades per crowd arrival); its mean
      rate μ/(1-n) per slot for n < 1. λ is capped at `hawkes_cap` x μ, so a supercritical
      setting saturates instead of exploding. `activity_feedback` scales μ.
      The simulator hands trades only to classes that override `on_trade`; so that a crowd
      without Hawkes arrivals pays nothing for the tape, `FairValueTrader(params)` with
      h > 0 builds a `HawkesFairValueTrader`, the subclass that listens to it.

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
        w_prior: Literal["pareto", "lognormal"] = Field(
            default="pareto",
            description="W's prior: Pareto(w_min, w_tail) or LogNormal(w_mu, w_sigma)",
        )
        w_min: float = Field(default=5.0, gt=0.0, description="W ~ Pareto: scale (lots)")
        w_tail: float = Field(default=1.5, gt=0.0, description="W ~ Pareto: tail exponent")
        w_mu: float = Field(default=2.0, description="W ~ LogNormal(w_mu, w_sigma), lots")
        w_sigma: float = Field(default=1.0, ge=0.0, description="W ~ LogNormal(w_mu, w_sigma)")
        d_mu: float = Field(default=0.0, description="D ~ LogNormal(d_mu, d_sigma), in bars")
        d_sigma: float = Field(default=1.0, ge=0.0, description="D ~ LogNormal(d_mu, d_sigma)")
        lag: Literal["continuous", "bars"] = Field(
            default="continuous", description="D as drawn, or rounded to whole bars"
        )
        a_prior: Literal["logit_lognormal", "beta"] = Field(
            default="logit_lognormal",
            description="A's prior: A/(1-A) ~ LogNormal(a_mu, a_sigma) or "
            "A ~ Beta(a_beta_a, a_beta_b)",
        )
        a_mu: float = Field(default=-1.0, description="A/(1-A) ~ LogNormal(a_mu, a_sigma)")
        a_sigma: float = Field(
            default=0.5, ge=0.0, description="A/(1-A) ~ LogNormal(a_mu, a_sigma)"
        )
        a_beta_a: float = Field(default=2.0, gt=0.0, description="A ~ Beta(a_beta_a, a_beta_b)")
        a_beta_b: float = Field(default=5.0, gt=0.0, description="A ~ Beta(a_beta_a, a_beta_b)")
        delta_shape: float = Field(default=2.0, gt=0.0, description="δ ~ Gamma(shape, scale)")
        delta_scale: float = Field(
            default=0.0005, ge=0.0, description="δ ~ Gamma(shape, scale), log-price (0: δ = 0)"
        )
        vol_feedback: float = Field(
            default=0.0, ge=0.0, description="g: sigma and δ scale as (v_k/v̄)^g (0: off)"
        )
        activity_feedback: float = Field(
            default=0.0, ge=0.0, description="η: arrival rate scales as (v_k/v̄)^η (0: off)"
        )
        vol_horizon: float = Field(
            default=1.0, gt=0.0, description="volatility is measured over vol_horizon x k bars"
        )
        vol_ref_bars: float = Field(
            default=600.0, ge=2.0, description="bars averaged in the reference volatility v̄"
        )
        vol_clip: float = Field(
            default=10.0, ge=1.0, description="the volatility ratio is clipped to [1/c, c]"
        )
        switching: float = Field(
            default=0.0, ge=0.0, description="β: intensity of fundamentalist/chartist switching"
        )
        switch_memory: float = Field(
            default=200.0, ge=1.0, description="arrivals averaged in the forecast errors"
        )
        wealth_sizes: bool = Field(
            default=False, description="scale W by the slot's wealth / its starting wealth"
        )
        bankrupt_fraction: float = Field(
            default=0.05, ge=0.0, lt=1.0, description="wealth share below which a slot is replaced"
        )
        # the crowd's mood (see the class docstring and `mood_step`)
        mood_gain: float = Field(
            default=0.0, ge=0.0, description="c: the mood moves c·(v_m/v̄)^g per unit of news"
        )
        mood_feedback: float = Field(
            default=1.0, ge=0.0, description="g: how the mood's reaction scales with volatility"
        )
        mood_vol_bars: int = Field(
            default=120, ge=1, description="bars (at most history_bars) over which v_m is measured"
        )
        mood_memory_bars: float = Field(
            default=3_000.0, gt=0.0, description="τ: the mood fades with this e-folding time"
        )
        mood_chartists: float = Field(
            default=0.0, ge=0.0, le=1.0, description="θ: share of the mood in the chartist view"
        )
        mood_form: Literal["split", "shift"] = Field(
            default="split",
            description="how the mood enters: F + m and L + θ·m (split), or every view "
            "shifted by m, L taken on the mood-free closes (shift)",
        )
        mood_ratio_cap: float = Field(
            default=0.0, ge=0.0, description="cap on the mood's volatility ratio (0: vol_clip)"
        )
        mood_book_ns: int = Field(
            default=0,
            ge=0,
            description="shift form: a close carries the mood of this long before it (0: now)",
        )
        mood_fast_gain: float = Field(
            default=0.0, ge=0.0, description="a fast part of the mood moves by this per news"
        )
        mood_fast_bars: float = Field(
            default=5.0, gt=0.0, description="the fast part fades with this e-folding time"
        )
        mood_vol_bars_long: int = Field(
            default=0,
            ge=0,
            description="second, longer window of v_m: the ratio is the mean of both (0: off)",
        )
        hawkes_weight: float = Field(
            default=0.0,
            ge=0.0,
            description="h: arrivals of this slot one trade on the tape triggers (0: Poisson)",
        )
        hawkes_tau_min_s: float = Field(
            default=1.0, gt=0.0, description="shortest time scale of the Hawkes kernel (s)"
        )
        hawkes_tau_max_s: float = Field(
            default=1_000.0, gt=0.0, description="longest time scale of the Hawkes kernel (s)"
        )
        hawkes_scales: int = Field(
            default=4, ge=1, le=16, description="exponentials approximating the power law"
        )
        hawkes_exponent: float = Field(
            default=0.15, ge=0.0, description="ε: the kernel decays as t^-(1+ε)"
        )
        hawkes_cap: float = Field(
            default=20.0, ge=1.0, description="the intensity is capped at hawkes_cap x rate_per_s"
        )

    def __new__(cls, params: object = None) -> FairValueTrader:
        if cls is FairValueTrader and params is not None:
            weight = (
                params.get("hawkes_weight", 0.0)
                if isinstance(params, Mapping)
                else getattr(params, "hawkes_weight", 0.0)
            )
            if weight:
                cls = HawkesFairValueTrader
        return super().__new__(cls)

    def on_start(self) -> None:
        p = self.params
        ctx = self.ctx
        self.arrivals = 0
        self.symbol = resolve_symbol(ctx, p.symbol)
        self._tick = float(ctx.spec(self.symbol).tick_size)
        self._cap = min(p.max_size, ctx.spec(self.symbol).max_qty)
        self._mean_wait = 1e9 / p.rate_per_s
        self.f_history = BarHistory(p.history_bars)
        # the shift form keeps each close with its mood-free value (the close less the mood it
        # carries), recorded together so the same lag picks aligned windows of both
        self._shift = p.mood_gain > 0 and p.mood_form == "shift"
        if self._shift:
            self.close_history = self._close_bars = BarPair(p.history_bars)
            self.free_history = self._close_bars.second
        else:
            self.close_history = BarHistory(p.history_bars)
        self._continuous = p.lag == "continuous"
        if self._continuous:
            # every fundamental is sampled: keep enough samples to cover the bar history
            self.f_timed = TimedHistory(p.history_bars * 16)
            if self._shift:
                self.close_timed = self._close_pair = TimedPair(p.history_bars * 16)
                self.free_timed = _Second(self._close_pair)
            else:
                self.close_timed = TimedHistory(p.history_bars * 16)
        self._book_ns = p.mood_book_ns
        self._log_moods = self._shift and p.mood_book_ns > 0
        if self._log_moods:
            # the mood's changes, read `mood_book_ns` behind the clock: a read never goes back
            # in time, so it drops the changes it has passed (O(1) a record and a read; the
            # log holds about the last lag's worth). The mood starts at 0.
            self._mood_times: deque[int] = deque([self.ctx.now()])
            self._mood_values: deque[float] = deque([0.0])
        # L on the raw closes: the estimate's chartist level, or only the switching's
        # forecast error in the shift form (which reads L on the mood-free closes)
        self._raw_level = not self._shift or p.switching > 0
        self._feedback = p.vol_feedback > 0 or p.activity_feedback > 0 or p.switching > 0
        self._feedback |= p.mood_gain > 0
        self._var_ref = 0.0  # EWMA of squared one-bar close returns (v̄²)
        self._var_norm = 0.0  # the EWMA's weight so far (corrects its start from zero)
        self._var_w = 1.0 / p.vol_ref_bars
        self._last_closed: float | None = None  # the close of the last finished bar
        self._cum_sq = [0.0]  # running sum of squared one-bar returns, one entry per bar
        self._ratio = 1.0  # the latest v_k / v̄
        self._err_f = 0.0
        self._err_c = 0.0
        self._err_w = 1.0 / p.switch_memory
        self.fundamentalist_share = 0.5
        self.bankruptcies = 0
        self._wealth0: float | None = None
        self._expiry = ExpiryQueue(_EXPIRE)
        self.last_draw: FairValueDraw | None = None
        self.last_estimate: float | None = None
        # the crowd's mood: its value, and the log F and time of the last news it took in
        self.mood = 0.0
        self._mood_slow = 0.0  # the part moved by c·ratio^g, fading over mood_memory_bars
        self._mood_fast = 0.0  # the part moved by mood_fast_gain, fading over mood_fast_bars
        # mood_step's factors, kept while what they depend on is unchanged: c·ratio^g until a
        # bar closes (the only time v̄ and the bar returns move), the decays while the time
        # between two pieces of news stays the same (the publication interval)
        self._vol_seen = 0  # bars closed so far (each changes the volatility ratio)
        self._mood_key = -1  # the _vol_seen that _mood_push was computed at
        self._mood_push = 0.0
        self._mood_dt = -1.0
        self._decay_slow = 1.0
        self._decay_fast = 1.0
        self._mood_f: float | None = None
        self._mood_ts = 0
        self._start_arrivals()

    def _start_arrivals(self) -> None:
        self.ctx.set_timer(_ARRIVE, exp_interval(self.ctx, self._mean_wait), repeat=False)

    # ------------------------------------------------------------------ sampling
    def _sample(self, bar: int) -> None:
        ctx = self.ctx
        f = ctx.fundamental(self.symbol)
        now = ctx.now()
        if f is not None and f > 0:
            logf = math.log(f)
            self.f_history.record(bar, logf)
            if self._continuous:
                self.f_timed.record(now, logf)
        close_ticks = reference_ticks(ctx, self.symbol, ("last", "mid", "fundamental"))
        close = math.log(close_ticks * self._tick)
        hist = self.close_history
        if self._feedback and hist.values and bar > hist.last_bar:
            # the bar hist.last_bar just closed: one more one-bar return for v̄
            closed = hist.values[-1]
            if self._last_closed is not None:
                w = self._var_w
                r = closed - self._last_closed
                decay = (1.0 - w) ** min(bar - hist.last_bar, 10_000)  # bars without news: r = 0
                self._var_ref = decay * ((1.0 - w) * self._var_ref + w * r * r) / (1.0 - w)
                self._var_norm = decay * ((1.0 - w) * self._var_norm + w) / (1.0 - w)
                cum = self._cum_sq
                total = cum[-1] + r * r
                cum.append(total)
                gap = min(bar - hist.last_bar - 1, self.params.history_bars)
                if gap > 0:
                    cum.extend([total] * gap)  # bars without a sample: zero returns
                if len(cum) > 2 * self.params.history_bars:
                    del cum[: len(cum) - self.params.history_bars]
                self._vol_seen += 1
            self._last_closed = closed
        if not self._shift:
            hist.record(bar, close)
            if self._continuous:
                self.close_timed.record(now, close)
        else:
            carried = self.mood
            if self._log_moods:
                # the mood `mood_book_ns` ago: the resting quotes the last trade met were
                # posted about then (the oldest mood kept when the log does not reach back)
                then = now - self._book_ns
                times, moods = self._mood_times, self._mood_values
                while len(times) > 1 and times[1] <= then:
                    times.popleft()
                    moods.popleft()
                carried = moods[0]
            free = close - carried
            self._close_bars.record_pair(bar, close, free)
            if self._continuous:
                self._close_pair.record_pair(now, close, free)

    def on_fundamental(self, symbol: str, value: float) -> None:
        if symbol == self.symbol:
            p = self.params
            now = self.ctx.now()
            self._sample(now // p.bar_ns)
            if p.mood_gain > 0 and value > 0:
                self._mood_news(math.log(value), now)

    # ------------------------------------------------------------------ arrivals
    def on_timer(self, name: str) -> None:
        if name == _ARRIVE:
            self._arrive()
            wait = self._mean_wait
            eta = self.params.activity_feedback
            if eta > 0:
                wait /= self._ratio**eta
            self.ctx.set_timer(_ARRIVE, exp_interval(self.ctx, wait), repeat=False)
        elif name == _EXPIRE:
            self._expiry.sweep(self.ctx)

    def _lagged(self, draw: FairValueDraw) -> tuple[float, list[float]]:
        """(F(t-D), the closes L(t-D, k) runs over, oldest first)."""
        p = self.params
        now = self.ctx.now()
        timed = self.close_timed if self._continuous else None
        closes = self._lagged_series(draw, self.close_history, timed)
        if not self._continuous:
            lag_bar = now // p.bar_ns - round(draw.d)
            f_lag = self.f_history.at(lag_bar) if self.f_history else closes[-1]
            return f_lag, closes
        f_lag = self.f_timed.at(now - round(draw.d * p.bar_ns))
        if f_lag is None:
            f_lag = closes[-1]  # before the first fundamental, F stands in as the lagged close
        return f_lag, closes

    def _lagged_series(
        self, draw: FairValueDraw, bars: BarHistory, timed: TimedHistory | None
    ) -> list[float]:
        """The values of a per-bar history that L(t-D, k) runs over, oldest first.

        `bars` and `timed` are recorded together with the closes (same instants), so the same
        lag picks aligned windows from the close history and from the mood history.
        """
        p = self.params
        now = self.ctx.now()
        span = math.ceil(EMA_SPAN * draw.k) + 1
        if timed is None:
            return bars.window(now // p.bar_ns - round(draw.d), span)
        lag_ts = now - round(draw.d * p.bar_ns)
        lag_bar = lag_ts // p.bar_ns
        value_now = timed.at(lag_ts)
        values = bars.window(lag_bar - 1, span - 1)
        if lag_bar - 1 < bars.last_bar - len(bars) + 1:
            values = []  # the lag reaches before the first whole bar: start at the lagged value
        if value_now is not None:
            values = [*values, value_now]
        return values

    def estimate(self, draw: FairValueDraw, z: float) -> float:
        """The fair log-price of an agent of type `draw` now, with noise draw z ~ N(0, 1)."""
        bar = self.ctx.now() // self.params.bar_ns
        self._sample(bar)
        f_lag, closes = self._lagged(draw)
        l_lag = ema_close(closes, draw.k) if self._raw_level else 0.0  # 0: read by nothing
        if self._feedback:
            self._update_feedback(draw, f_lag, l_lag)
        sigma = draw.sigma
        if self.params.vol_feedback > 0:
            sigma *= self._ratio**self.params.vol_feedback
        mood = self.mood
        if self._shift:
            # L on the mood-free closes, then every view shifted by the mood now
            free = self._lagged_series(
                draw, self.free_history, self.free_timed if self._continuous else None
            )
            return mood_free_estimate(draw.alpha, f_lag, free, draw.k, mood, sigma, z)
        theta = self.params.mood_chartists
        return fair_estimate(draw.alpha, f_lag + mood, l_lag + theta * mood, sigma, z)

    def _update_feedback(self, draw: FairValueDraw, f_lag: float, l_lag: float) -> None:
        """Volatility over the agent's horizon vs the slow reference; forecast errors."""
        p = self.params
        values = self.close_history.values
        now_close = values[-1]
        var_ref = self._var_ref / self._var_norm if self._var_norm > 0.0 else 0.0
        cum = self._cum_sq
        if var_ref > 0.0 and len(cum) > 1:
            # the mean squared one-bar return over the agent's horizon (prefix sums: O(1))
            n = max(1, min(len(cum) - 1, math.ceil(draw.k * p.vol_horizon)))
            var_k = (cum[-1] - cum[-1 - n]) / n
            c = p.vol_clip
            self._ratio = min(c, max(1.0 / c, math.sqrt(var_k / var_ref)))
        if p.switching > 0:
            w = self._err_w
            self._err_f += w * ((now_close - f_lag) ** 2 - self._err_f)
            self._err_c += w * ((now_close - l_lag) ** 2 - self._err_c)
            self.fundamentalist_share = switching_share(
                self._err_f, self._err_c, p.switching, var_ref * max(1.0, draw.d)
            )

    # ------------------------------------------------------------------ the crowd's mood
    def _mood_news(self, log_f: float, now: int) -> None:
        """Take in one piece of news at `now`: log F moved from the last value seen to `log_f`."""
        p = self.params
        prev, self._mood_f = self._mood_f, log_f
        if prev is None:
            self._mood_ts = now
            return
        if self._mood_key != self._vol_seen:
            self._mood_key = self._vol_seen
            ratio = 1.0
            var_ref = self._var_ref / self._var_norm if self._var_norm > 0.0 else 0.0
            if var_ref > 0.0 and len(self._cum_sq) > 1:
                ratio = self._mood_ratio(p.mood_vol_bars, var_ref)
                if p.mood_vol_bars_long > 0:
                    ratio = 0.5 * (ratio + self._mood_ratio(p.mood_vol_bars_long, var_ref))
                if p.mood_ratio_cap > 0:
                    ratio = min(ratio, p.mood_ratio_cap)
            self._mood_push = p.mood_gain * ratio**p.mood_feedback
        dt_bars = (now - self._mood_ts) / p.bar_ns
        self._mood_ts = now
        if dt_bars != self._mood_dt:
            self._mood_dt = dt_bars
            self._decay_slow = math.exp(-dt_bars / p.mood_memory_bars)
            self._decay_fast = math.exp(-dt_bars / p.mood_fast_bars)
        news = log_f - prev
        # mood_step, term for term: m·exp(-dt/τ) + c·ratio^g·news, with the factors above
        self._mood_slow = self._mood_slow * self._decay_slow + self._mood_push * news
        if p.mood_fast_gain > 0:
            # mood_step with ratio 1 and g 0: c_f·1^0 is c_f exactly
            self._mood_fast = self._mood_fast * self._decay_fast + p.mood_fast_gain * news
            self.mood = self._mood_slow + self._mood_fast
        else:
            self.mood = self._mood_slow
        if self._log_moods:
            if now > self._mood_times[-1]:
                self._mood_times.append(now)
                self._mood_values.append(self.mood)
            else:  # the same instant: the newest mood wins
                self._mood_values[-1] = self.mood

    def _mood_ratio(self, bars: int, var_ref: float) -> float:
        """The volatility of the last `bars` one-bar returns over v̄, clipped by `vol_clip`."""
        cum = self._cum_sq
        n = min(len(cum) - 1, bars)
        c = self.params.vol_clip
        return min(c, max(1.0 / c, math.sqrt((cum[-1] - cum[-1 - n]) / n / var_ref)))

    def _wealth(self) -> float:
        """Cash plus the position at the last price, in cash units."""
        ctx = self.ctx
        px = reference_ticks(ctx, self.symbol, ("last", "mid", "fundamental"))
        return ctx.portfolio.equity({self.symbol: px})

    def _arrive(self) -> None:
        ctx = self.ctx
        rng = ctx.rng
        p = self.params
        self.arrivals += 1
        draw = draw_priors(rng, p, self.fundamentalist_share)
        est = self.estimate(draw, float(rng.standard_normal()))
        self.last_draw = draw
        self.last_estimate = est
        delta = draw.delta
        if p.vol_feedback > 0:
            delta *= self._ratio**p.vol_feedback
        bid_px, ask_px = quote_prices(est, delta)
        tick = self._tick
        bid = max(1, math.floor(bid_px / tick + 1e-9))
        ask = max(bid + 1, math.ceil(ask_px / tick - 1e-9))
        w = draw.w
        if p.wealth_sizes:
            wealth = float(self._wealth())
            if self._wealth0 is None or wealth < p.bankrupt_fraction * self._wealth0:
                if self._wealth0 is not None:
                    self.bankruptcies += 1
                self._wealth0 = max(wealth, 1.0)  # a newly drawn trader: the wealth it has now
            w *= max(wealth, 0.0) / self._wealth0
        size = order_size(w, draw.a, self._cap)
        lifetime = p.lifetime_ns
        self._expiry.track(ctx, ctx.submit(self.symbol, "buy", size, bid), lifetime)
        self._expiry.track(ctx, ctx.submit(self.symbol, "sell", size, ask), lifetime)


class HawkesFairValueTrader(FairValueTrader):
    """A fair-value slot whose arrivals are self-exciting, driven by the public trade tape.

    Built by `FairValueTrader(params)` when `hawkes_weight` > 0 (see its docstring). Arrivals
    are drawn by exact thinning of `HawkesIntensity`: a candidate timer at the thinning bound's
    rate, accepted with probability λ/bound; a trade on the tape raises the bound and moves
    the candidate earlier when a fresh draw at the rise's rate says so.
    """

    def _start_arrivals(self) -> None:
        p = self.params
        alphas, betas = power_law_kernel(
            p.hawkes_weight, p.hawkes_tau_min_s, p.hawkes_tau_max_s, p.hawkes_scales,
            p.hawkes_exponent,
        )  # fmt: skip
        self.hawkes = HawkesIntensity(p.rate_per_s, alphas, betas, p.hawkes_cap * p.rate_per_s)
        self._event_ns = -1  # the instant of the last trade counted (one per aggressing order)
        self._schedule(self.ctx.now())

    def _schedule(self, now: int) -> None:
        wait = exp_interval(self.ctx, 1e9 / self.hawkes.bound)
        self._candidate_ns = now + wait
        self.ctx.set_timer(_ARRIVE, wait, repeat=False)

    def on_timer(self, name: str) -> None:
        if name != _ARRIVE:
            super().on_timer(name)
            return
        ctx = self.ctx
        now = ctx.now()
        hk = self.hawkes
        t = now * 1e-9
        if hk.accept(t, float(ctx.rng.random())):
            self._arrive()
            eta = self.params.activity_feedback
            if eta > 0:
                hk.mu = min(hk.cap, self.params.rate_per_s * self._ratio**eta)
                hk.bound = hk.intensity(t)
        self._schedule(now)

    def on_trade(self, trade: TradeTick) -> None:
        ctx = self.ctx
        now = ctx.now()
        if now == self._event_ns or trade.symbol != self.symbol:
            return
        self._event_ns = now
        rise = self.hawkes.excite(now * 1e-9)
        if rise <= 0.0:
            return
        wait = exp_interval(ctx, 1e9 / rise)
        if now + wait < self._candidate_ns:
            self._candidate_ns = now + wait
            ctx.set_timer(_ARRIVE, wait, repeat=False)
