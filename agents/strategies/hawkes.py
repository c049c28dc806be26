"""A self-exciting (Hawkes) arrival intensity with a long-memory kernel, and exact thinning.

Order flow in real markets is self-exciting with a kernel that decays as a power law over
seconds to hours and a branching ratio close to 1 (S. Hardiman, N. Bercot and J.-P. Bouchaud,
"Critical reflexivity in financial markets: a Hawkes process analysis", EPJ B 86, 2013;
E. Bacry, I. Mastromatteo and J.-F. Muzy, "Hawkes processes in finance", Market
Microstructure and Liquidity 1(1), 2015). Busy spells and quiet spells follow one another on
every time scale, and since prices move with activity, volatility clusters (subordination:
P. K. Clark, "A subordinated stochastic process model with finite variance for speculative
prices", Econometrica 41, 1973).

The intensity is

    λ(t) = min(cap, μ + Σ_m a_m · S_m(t)),   S_m decays at rate β_m and jumps by w at an event,

a sum of exponentials that approximates a power-law kernel φ(t) ~ t^-(1+ε) between its
shortest and longest time scale (`power_law_kernel`). The kernel's integral n = Σ a_m / β_m is
the expected number of arrivals one unit-weight event triggers; the process is stationary for
n < 1 with mean rate μ / (1 - n), and the cap keeps it finite whatever n.

Arrivals are drawn by thinning (P. A. W. Lewis and G. S. Shedler, 1979; Y. Ogata, 1981):
between events λ never increases, so a bound λ̄ valid now stays valid until the next event; a
candidate is drawn at rate λ̄ and accepted with probability λ(t)/λ̄. When an event raises λ
by Δ, the bound becomes λ̄ + Δ: by memorylessness, the candidate already drawn at rate λ̄
and a fresh one at rate Δ, whichever comes first, is the next point of a rate-(λ̄ + Δ)
process, so the pending candidate is moved only when the fresh one is earlier. Plain Python
on floats: this runs for every slot of a crowd at every event it observes.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

__all__ = ["HawkesIntensity", "power_law_kernel"]


def power_law_kernel(
    norm: float, tau_min: float, tau_max: float, scales: int, exponent: float
) -> tuple[list[float], list[float]]:
    """(a_m, β_m) of `scales` exponentials approximating φ(t) ~ t^-(1+exponent).

    Time scales τ_m = 1/β_m are spaced geometrically from `tau_min` to `tau_max`; the mass
    a_m/β_m of scale m is proportional to τ_m^-exponent (the weight a power law puts on each
    ratio of scales), normalised so that Σ a_m/β_m = `norm`. exponent = 0 puts equal mass on
    every scale, the slowest decay (Hardiman et al. measure ε ≈ 0.1-0.2 for index futures).
    """
    if scales < 1 or tau_min <= 0 or tau_max < tau_min:
        raise ValueError("need scales >= 1 and 0 < tau_min <= tau_max")
    if scales == 1:
        taus = [tau_min]
    else:
        ratio = (tau_max / tau_min) ** (1.0 / (scales - 1))
        taus = [tau_min * ratio**m for m in range(scales)]
    masses = [tau**-exponent for tau in taus]
    total = sum(masses)
    betas = [1.0 / tau for tau in taus]
    alphas = [norm * mass / total * beta for mass, beta in zip(masses, betas, strict=True)]
    return alphas, betas


class HawkesIntensity:
    """λ(t) = min(cap, μ + Σ a_m S_m(t)) and its thinning bound, in seconds (floats).

    `decay_to(t)` brings the states to time t (t never goes back); `excite(t, w)` adds an
    event of weight w and answers the rise Δ of the thinning bound; `intensity(t)` is λ(t);
    `accept(t, u)` decides a candidate with a uniform draw u and resets the bound to λ(t).
    """

    __slots__ = ("alphas", "betas", "bound", "cap", "mu", "states", "t")

    def __init__(
        self, mu: float, alphas: Sequence[float], betas: Sequence[float], cap: float
    ) -> None:
        if mu <= 0 or cap < mu:
            raise ValueError("need 0 < mu <= cap")
        if len(alphas) != len(betas):
            raise ValueError("one alpha per beta")
        self.mu = mu
        self.alphas = list(alphas)
        self.betas = list(betas)
        self.cap = cap
        self.states = [0.0] * len(self.betas)
        self.t = 0.0
        self.bound = mu  # an upper bound of λ from now until the next event

    @property
    def branching(self) -> float:
        """n = Σ a_m/β_m: the arrivals one unit-weight event triggers, on average."""
        return sum(a / b for a, b in zip(self.alphas, self.betas, strict=True))

    def decay_to(self, t: float) -> None:
        dt = t - self.t
        if dt <= 0.0:
            return
        self.t = t
        states = self.states
        betas = self.betas
        for m in range(len(states)):
            states[m] *= math.exp(-betas[m] * dt)

    def intensity(self, t: float) -> float:
        self.decay_to(t)
        lam = self.mu
        for a, s in zip(self.alphas, self.states, strict=True):
            lam += a * s
        return min(self.cap, lam)

    def excite(self, t: float, weight: float = 1.0) -> float:
        """An event at t: every state jumps by `weight`. Answers how much the bound rose."""
        self.decay_to(t)
        states = self.states
        jump = 0.0
        for m, a in enumerate(self.alphas):
            states[m] += weight
            jump += a * weight
        old = self.bound
        self.bound = min(self.cap, old + jump)
        return self.bound - old

    def accept(self, t: float, u: float) -> bool:
        """Thin a candidate at t with u ~ U(0, 1); the bound restarts from λ(t)."""
        lam = self.intensity(t)
        ok = u * self.bound < lam
        self.bound = lam
        return ok
