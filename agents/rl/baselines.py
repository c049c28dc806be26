"""Baselines that act through the same observation and action as a trained policy.

`MarketMaking-v0` observes 9 normalised values and takes 4 in [-1, 1] (bid offset and ask
offset from the mid, bid size and ask size, scaled onto the config's ranges). The baselines
decode the observation with the environment's own config (`agents.rl.observation`), decide in
ticks and lots, and encode the action (the inverse of `agents.rl.desk.decode_box`), so
`agora evaluate` compares them with a policy on exactly the same footing:

- `AvellanedaStoikovPolicy`: δ± = the Avellaneda-Stoikov quotes around the reservation price
  (the same pure function as the live strategy, `agents.strategies.market_maker.as_quotes`),
  with sigma estimated online from the mid changes and k from the fills at each quote distance;
- `FixedSpreadPolicy`: the same offset and size on both sides, always;
- `DoNothingPolicy`: no quotes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from agents.rl.observation import OBS_NAMES, inventory_scale
from agents.strategies.market_maker import as_quotes

__all__ = [
    "BASELINES",
    "AvellanedaStoikovPolicy",
    "DoNothingPolicy",
    "FillIntensity",
    "FixedSpreadPolicy",
    "MarketState",
    "decode_observation",
    "make_baseline",
]

_I = {name: i for i, name in enumerate(OBS_NAMES)}


@dataclass(frozen=True, slots=True)
class MarketState:
    """What a rule-based market maker needs, in ticks and lots, decoded from an observation:
    the mid relative to the episode's first mid, the spread, the inventory, the environment's
    sigma estimate (ticks per √s) and the fills since the last step."""

    mid: float
    spread: float
    inventory: float
    sigma: float
    fills: float


def decode_observation(obs: np.ndarray, cfg: Any) -> MarketState:
    """Undo the observation's normalisation (`agents.rl.observation`) with the env config's
    scales. Exact inside the documented ranges; a clipped value decodes to its bound."""
    o = np.asarray(obs, dtype=float)
    return MarketState(
        mid=o[_I["mid"]] * cfg.price_scale_ticks,
        spread=o[_I["spread"]] * cfg.spread_scale_ticks,
        inventory=o[_I["inventory"]] * inventory_scale(cfg),
        sigma=o[_I["volatility"]] * cfg.sigma_scale,
        fills=o[_I["fills"]] * cfg.fills_scale,
    )


def _env_config(cfg: Any) -> Any:
    from agents.rl.config import EnvConfig

    return EnvConfig.coerce(cfg)


def _action(cfg: Any, bid_offset: float, ask_offset: float, bid_size: float,
            ask_size: float) -> np.ndarray:  # fmt: skip
    """Offsets (ticks) and sizes (lots) as the environment's Box action in [-1, 1]^4: the
    inverse of `agents.rl.desk.decode_box`, clipped to the action's range."""
    lo, hi = cfg.min_offset_ticks, cfg.max_offset_ticks
    top = float(cfg.max_quote_size)
    a = np.array([
        2.0 * (bid_offset - lo) / (hi - lo) - 1.0, 2.0 * (ask_offset - lo) / (hi - lo) - 1.0,
        2.0 * bid_size / top - 1.0, 2.0 * ask_size / top - 1.0,
    ])  # fmt: skip
    return np.clip(a, -1.0, 1.0).astype(np.float32)


class DoNothingPolicy:
    """Never quotes: zero PnL, the floor any market maker has to beat."""

    name = "do-nothing"

    def __init__(self, env_config: Any = None) -> None:
        self.cfg = _env_config(env_config)

    def reset(self) -> None:
        pass

    def act(self, obs: np.ndarray) -> np.ndarray:
        return _action(self.cfg, self.cfg.max_offset_ticks, self.cfg.max_offset_ticks, 0.0, 0.0)


class FixedSpreadPolicy:
    """Quotes `size` lots `half_spread` ticks either side of the mid, whatever happens (no
    inventory control beyond the environment's own limit)."""

    name = "fixed-spread"

    def __init__(self, env_config: Any = None, half_spread: float = 2.0, size: float = 5.0) -> None:
        self.cfg = _env_config(env_config)
        self.half_spread = half_spread
        self.size = size

    def reset(self) -> None:
        pass

    def act(self, obs: np.ndarray) -> np.ndarray:
        return _action(self.cfg, self.half_spread, self.half_spread, self.size, self.size)


@dataclass
class FillIntensity:
    """Online estimate of k in the fill intensity λ(δ) = A·e^(-kδ).

    Each step adds (δ, fills) for the distance δ the quotes rested at; per whole tick of δ an
    exponentially weighted mean of fills per step is kept, and k is minus the slope of a
    least-squares line through (δ, ln mean fills) over the buckets seen often enough. Until two
    buckets qualify (a policy that always quotes at one distance), the prior k stays.
    """

    prior: float = 1.5
    weight: float = 0.05
    min_samples: int = 20
    k_min: float = 0.05
    k_max: float = 20.0

    def __post_init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.mean: dict[int, float] = {}
        self.count: dict[int, int] = {}
        self.k = self.prior

    def add(self, delta: float, fills: float) -> None:
        b = max(0, round(delta))
        if b in self.mean:
            self.mean[b] += self.weight * (fills - self.mean[b])
        else:
            self.mean[b] = fills
        self.count[b] = self.count.get(b, 0) + 1
        pts = [(d, math.log(m)) for d, m in self.mean.items()
               if self.count[d] >= self.min_samples and m > 0]  # fmt: skip
        if len(pts) < 2:
            return
        x = np.array([p[0] for p in pts], dtype=float)
        y = np.array([p[1] for p in pts], dtype=float)
        if np.ptp(x) == 0:
            return
        slope = float(np.polyfit(x, y, 1)[0])
        self.k = min(max(-slope, self.k_min), self.k_max)


class AvellanedaStoikovPolicy:
    """Avellaneda-Stoikov quoting over the environment's observation.

    Offsets from the mid: bid δ⁻ = s - bid, ask δ⁺ = ask - s with (bid, ask) from `as_quotes`
    (reservation price r = s - q·gamma·σ²·(T-t), total spread gamma·σ²·(T-t) +
    (2/gamma)·ln(1 + gamma/k)).
    Units as the live strategy: ticks, lots, seconds; σ² in ticks²/s, an EWMA of (Δs)²/Δt of
    the observed mid over the steps (weight `sigma_ewma`, starting at `sigma_init`²); k from
    `FillIntensity`. T-t is the time left in the episode (`horizon="episode"`) or the constant
    `tau_s` (`horizon="constant"`, the stationary approximation). A side is not quoted when a
    full fill would take |inventory| beyond the environment's `max_inventory`.

    The defaults (gamma 0.05 per tick·lot, k prior 1.5 per tick, T-t = 1 s) were chosen on the
    `flow` background with seeds 20000-20003, apart from the held-out evaluation seeds.
    """

    name = "avellaneda-stoikov"

    def __init__(self, env_config: Any = None, gamma: float = 0.05, k: float = 1.5,
                 size: float = 5.0, sigma_init: float = 1.0, sigma_ewma: float = 0.05,
                 horizon: str = "constant", tau_s: float = 1.0, min_spread: float = 1.0,
                 estimate_k: bool = True) -> None:  # fmt: skip
        self.cfg = _env_config(env_config)
        self.gamma = gamma
        self.size = size
        self.sigma_init = sigma_init
        self.sigma_ewma = sigma_ewma
        self.horizon = horizon
        self.tau_s = tau_s
        self.min_spread = min_spread
        self.dt = self.cfg.step_ms / 1000.0
        self.k_estimator = FillIntensity(prior=k) if estimate_k else None
        self.k0 = k
        self.reset()

    @property
    def k(self) -> float:
        return self.k_estimator.k if self.k_estimator is not None else self.k0

    def reset(self) -> None:
        self.sigma2 = self.sigma_init**2
        self.steps = 0
        self._last_mid: float | None = None
        self._last_delta: float | None = None
        if self.k_estimator is not None:
            self.k_estimator.reset()

    def tau(self) -> float:
        if self.horizon == "episode":
            return max(0, self.cfg.episode_steps - self.steps) * self.dt
        return self.tau_s

    def observe(self, state: MarketState) -> None:
        """Update σ² from the mid change and k from the fills since the last step."""
        if self._last_mid is not None:
            d = state.mid - self._last_mid
            w = self.sigma_ewma
            self.sigma2 = (1.0 - w) * self.sigma2 + w * d * d / self.dt
        self._last_mid = state.mid
        if self.k_estimator is not None and self._last_delta is not None:
            self.k_estimator.add(self._last_delta, state.fills)

    def quotes(self, state: MarketState) -> tuple[float, float]:
        """(bid, ask) in ticks, as the formula gives them."""
        return as_quotes(state.mid, state.inventory, self.gamma, self.sigma2, self.tau(), self.k,
                         self.min_spread)  # fmt: skip

    def act(self, obs: np.ndarray) -> np.ndarray:
        state = decode_observation(obs, self.cfg)
        self.observe(state)
        bid, ask = self.quotes(state)
        self.steps += 1
        bid_off, ask_off = state.mid - bid, ask - state.mid
        self._last_delta = (bid_off + ask_off) / 2
        limit = self.cfg.max_inventory
        q = state.inventory
        bid_size = min(self.size, max(0.0, limit - q))
        ask_size = min(self.size, max(0.0, limit + q))
        return _action(self.cfg, bid_off, ask_off, bid_size, ask_size)


BASELINES: dict[str, type] = {
    "avellaneda-stoikov": AvellanedaStoikovPolicy,
    "fixed-spread": FixedSpreadPolicy,
    "do-nothing": DoNothingPolicy,
}


def make_baseline(name: str, env_config: Any = None, **params: Any) -> Any:
    """A baseline policy by name (`BASELINES`) for an environment config."""
    try:
        cls = BASELINES[name]
    except KeyError:
        raise ValueError(f"no baseline {name!r} (have {', '.join(BASELINES)})") from None
    return cls(env_config, **params)
