"""The fair value F(t) of each symbol: a pure, seeded stochastic process (no IO, no clock).

Informed agents trade on F(t) (ARCHITECTURE.md, "The fair-value market model"). The same
object runs behind the live ``python -m agents.fundamental`` publisher and inside the
simulated-time kernel, so it takes time as an argument and draws every random number from a
numpy ``Generator`` built from its seed alone: one seed, one path, in both modes.

The process, per symbol i, on x_i = log F_i - log F0_i and a fixed step of Δ = ``step_s``
seconds::

    x_i(t + Δ) = a · x_i(t) + d_i + J_i,        a = exp(-θ·Δ)   (a = 1 when θ = 0)

* ``d`` is the step of the walk, driven by one standard normal per symbol and step, made
  correlated across symbols as ``z = L·ε`` where ``L`` is the Cholesky factor of the
  correlation matrix (ε iid N(0, 1)):

  - ``process="gaussian"``: ``d = s·z``, so log-returns are N(0, s²) per step;
  - ``process="stable"`` (a true Lévy-stable walk): ``d = s · X`` with X symmetric
    μ-stable (index μ in (0, 2] (characteristic function ``exp(-|t|^μ)``)), drawn with the
    Chambers-Mallows-Stuck sampler (J. M. Chambers, C. L. Mallows and B. W. Stuck, "A method
    for simulating stable random variables", JASA 71(354), 1976; the symmetric case as in
    R. Weron, Statistics & Probability Letters 28, 1996)::

        X = sin(μV) / cos(V)^(1/μ) · (cos((1-μ)V) / E)^((1-μ)/μ)     (μ ≠ 1),   X = tan V (μ = 1)

    with V uniform on (-π/2, π/2) and E standard exponential. V is taken from the correlated
    normal z as ``V = π·(Φ(z) - 1/2)`` (a Gaussian copula again, so ``correlation`` shapes the
    rank dependence), E is drawn independently. Sums of n steps are again stable with scale
    ``s·n^(1/μ)``: the walk is self-similar, and for μ < 2 its tails ``P(|d| > l) ~ C·l^-μ``
    never become Gaussian under aggregation. μ = 2 is the Gaussian case with variance 2s².
  - ``process="pareto"`` (Pareto-step Lévy flights; ``"levy"`` is accepted as its old name):
    ``d = sign(z) · s · U^(-1/μ)`` with
    ``U = erfc(|z|/√2) = 2·(1 - Φ(|z|))``. For a standard normal z, U is uniform on (0, 1]
    and independent of sign(z), so |d| is Pareto (type I) with density
    ``p(l) = μ·s^μ · l^(-1-μ)`` for ``l ≥ s`` (every step is at least s; the tail exponent is μ)
    and the sign is a fair coin. This is a Gaussian copula: d is an increasing function of z,
    so the configured correlation shapes the *rank* dependence of the Lévy steps (Spearman's
    rho_S = (6/π)·arcsin(rho/2)); their linear correlation is undefined when μ < 2. With an
    identity correlation it reduces to the textbook sampler. ``levy_max_step`` optionally
    truncates |d| for both heavy-tailed processes (a truncated Lévy flight, R. Mantegna and
    H. E. Stanley, PRL 73, 1994: the cap makes sums Gaussian again at long horizons; without
    it, μ near 0 can overflow a float price). It is off unless set.

* ``J`` is the sum of the jumps in the step: a Poisson(λ·Δ) count per symbol and step
  (independent across symbols), each jump size iid ``normal(mean, scale)`` or
  ``laplace(mean, scale)`` in log units.
* ``a`` is the exact discretisation of an Ornstein-Uhlenbeck pull of log F toward log F0 at rate
  θ per second; with noise, the walk becomes a stationary AR(1) around log F0.

Random streams: ``SeedSequence(seed).spawn(4)`` gives separate generators for the diffusion
shocks, the jump counts, the jump sizes and the stable walk's exponentials. Each stream is
consumed in step order, so a path does not depend on how the caller chops time:
``step(1.0)`` once or ``step(0.1)`` ten times (with Δ = 0.1) produce the same values.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from decimal import Decimal
from typing import Annotated, Literal, Self

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

__all__ = ["FundamentalConfig", "FundamentalModel", "JumpConfig"]

Symbol = Annotated[str, Field(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9._:/-]+$")]
"""Same spelling rule as the exchange's `SymbolSpec.symbol`, so a symbol means one thing."""

_NS = 1_000_000_000
_CHUNK = 65_536  # steps drawn at once when only the final state is needed (bounds memory)
_SYMMETRY_TOL = 1e-9
_PSD_TOL = 1e-10
_erfc = np.frompyfunc(math.erfc, 1, 1)  # numpy has no erfc; the Lévy copula needs its tail


class JumpConfig(BaseModel):
    """Poisson jumps in log F: rare, large moves on top of the walk (news, earnings)."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    rate: float = Field(ge=0, description="expected jumps per second, per symbol")
    distribution: Literal["normal", "laplace"] = Field(
        "normal", description="jump size law in log units"
    )
    mean: float = Field(0.0, description="mean jump size (log units)")
    scale: float = Field(
        gt=0, description="normal: standard deviation; laplace: b (std = b·√2); log units"
    )


class FundamentalConfig(BaseModel):
    """Everything that defines a fair-value path; with the seed, it defines the path exactly.

    Symbol order (the JSON object's key order) is the row/column order of `correlation`.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    symbols: dict[Symbol, Annotated[Decimal, Field(gt=0, allow_inf_nan=False)]] = Field(
        min_length=1, description="initial (and anchor) price F0 per symbol"
    )
    process: Literal["gaussian", "stable", "pareto"] = Field(
        "gaussian",
        description='"gaussian" walk, "stable" Lévy-stable walk (Chambers-Mallows-Stuck), '
        '"pareto" Pareto-step Lévy flights ("levy" is its old name)',
    )
    scale: float = Field(
        0.001,
        ge=0,
        description="s: per-step scale of log F (gaussian std; stable scale; pareto minimum step)",
    )
    tail_exponent: float = Field(
        1.5, gt=0, le=2, description="μ in (0, 2]: tail P(|step| > l) ~ l^-μ; stable and pareto"
    )
    levy_max_step: float | None = Field(
        None, gt=0, description="optional cap on |step| (log units; stable, pareto); None: no cap"
    )
    mean_reversion: float = Field(
        0.0, ge=0, description="θ: OU pull of log F toward log F0, per second; 0 = off"
    )
    jumps: JumpConfig | None = None
    correlation: list[list[float]] | None = Field(
        None, description="correlation of the shocks across symbols; None = independent"
    )
    step_s: float = Field(1.0, gt=0, description="Δ: the fixed step of the process, seconds")
    seed: int = Field(0, ge=0)

    @field_validator("process", mode="before")
    @classmethod
    def _old_name(cls, value: object) -> object:
        return "pareto" if value == "levy" else value

    @model_validator(mode="after")
    def _check(self) -> Self:
        if round(self.step_s * _NS) < 1:
            raise ValueError(f"step_s must be at least 1 ns, got {self.step_s}")
        if self.correlation is not None:
            check_correlation(self.correlation, len(self.symbols))
        return self

    def correlation_matrix(self) -> np.ndarray:
        if self.correlation is None:
            return np.eye(len(self.symbols))
        return np.asarray(self.correlation, dtype=float)


def check_correlation(matrix: list[list[float]], n: int) -> None:
    """Raise ValueError unless `matrix` is an nxn symmetric, unit-diagonal, PSD matrix.

    Checked up front so a typo in a deployment's JSON fails at start with the reason, rather
    than as a NaN price or a LinAlgError deep inside the first step.
    """
    if len(matrix) != n or any(len(row) != n for row in matrix):
        shape = f"{len(matrix)}x{'/'.join(str(len(r)) for r in matrix) or 0}"
        raise ValueError(f"correlation must be {n}x{n} (one row per symbol), got {shape}")
    c = np.asarray(matrix, dtype=float)
    if not np.all(np.isfinite(c)):
        raise ValueError("correlation entries must be finite")
    if np.any(np.abs(c) > 1):
        raise ValueError("correlation entries must lie in [-1, 1]")
    if not np.allclose(np.diag(c), 1.0, rtol=0, atol=_SYMMETRY_TOL):
        raise ValueError(f"correlation diagonal must be all 1, got {np.diag(c).tolist()}")
    if not np.allclose(c, c.T, rtol=0, atol=_SYMMETRY_TOL):
        raise ValueError("correlation must be symmetric")
    smallest = float(np.linalg.eigvalsh(c).min())
    if smallest < -_PSD_TOL:
        raise ValueError(
            f"correlation must be positive semi-definite (smallest eigenvalue {smallest:.3g})"
        )


def _factor(c: np.ndarray) -> np.ndarray:
    """L with L·Lᵀ = C: Cholesky, or a symmetric square root when C is singular (|rho| = 1)."""
    try:
        return np.linalg.cholesky(c)
    except np.linalg.LinAlgError:
        w, v = np.linalg.eigh(c)
        return v * np.sqrt(np.clip(w, 0.0, None))


class FundamentalModel:
    """The seeded fair-value process. `step(dt)` advances by dt seconds of model time.

    Time advances in whole steps of Δ: `step` adds dt to a budget (integer nanoseconds, so a
    live publisher calling `step(0.1)` forever never drifts) and runs as many whole steps as
    the budget holds; the remainder carries over to the next call.
    """

    def __init__(self, config: FundamentalConfig, start: Mapping[str, float] | None = None) -> None:
        """`start` optionally sets the current price of some symbols away from their anchor F0
        (e.g. resuming from a last published value); mean reversion still pulls toward F0."""
        self.config = c = config
        self.symbols: tuple[str, ...] = tuple(c.symbols)
        self._log_f0 = np.log(np.array([float(p) for p in c.symbols.values()]))
        self._x = np.zeros(len(self.symbols))
        for symbol, price in (start or {}).items():
            if symbol not in c.symbols:
                raise ValueError(f"start: unknown symbol {symbol!r}")
            if not (math.isfinite(price) and price > 0):
                raise ValueError(f"start: {symbol} price must be positive and finite")
            i = self.symbols.index(symbol)
            self._x[i] = math.log(price) - self._log_f0[i]
        self._step_ns = round(c.step_s * _NS)
        self._budget_ns = 0
        self._steps = 0
        self._jump_counts = np.zeros(len(self.symbols), dtype=np.int64)
        self._factor_t = _factor(c.correlation_matrix()).T
        self._decay = math.exp(-c.mean_reversion * c.step_s)
        self._inv_mu = 1.0 / c.tail_exponent
        # spawn(4)[:3] are the same children spawn(3) gave, so adding the 4th stream (the
        # stable walk's exponentials) left every earlier path unchanged
        shocks, counts, sizes, exps = np.random.SeedSequence(c.seed).spawn(4)
        self._exps = np.random.Generator(np.random.PCG64(exps))
        self._shocks = np.random.Generator(np.random.PCG64(shocks))
        self._counts = np.random.Generator(np.random.PCG64(counts))
        self._sizes = np.random.Generator(np.random.PCG64(sizes))

    # ------------------------------------------------------------------ state
    @property
    def values(self) -> dict[str, float]:
        """Current F per symbol."""
        return dict(zip(self.symbols, np.exp(self._log_f0 + self._x).tolist(), strict=True))

    @property
    def steps(self) -> int:
        """Whole steps taken so far; model time is `steps · step_s`."""
        return self._steps

    @property
    def time_s(self) -> float:
        return self._steps * self._step_ns / _NS

    @property
    def jump_counts(self) -> dict[str, int]:
        """Jumps drawn so far per symbol (a jump of size ~0 still counts)."""
        return dict(zip(self.symbols, self._jump_counts.tolist(), strict=True))

    # ------------------------------------------------------------------ news
    def shock(self, pct: float, symbol: str | None = None) -> dict[str, float]:
        """Make F jump by `pct` percent now (news: -10 is a 10% fall) for `symbol` (None: every
        symbol); return the values after the jump.

        The jump is permanent: the anchor F0 that mean reversion pulls toward moves with it,
        so a shock is not reverted by the process. No random number is drawn, so the path
        after a shock is the same path shifted (a run with a shock differs from one without
        only by the jump).
        """
        if not (math.isfinite(pct) and pct > -100.0):
            raise ValueError(f"a shock must be a finite percentage above -100, got {pct}")
        if symbol is not None and symbol not in self.symbols:
            raise ValueError(f"shock: unknown symbol {symbol!r} (symbols: {list(self.symbols)})")
        jump = math.log1p(pct / 100.0)
        if symbol is None:
            self._log_f0 = self._log_f0 + jump
        else:
            self._log_f0 = self._log_f0.copy()
            self._log_f0[self.symbols.index(symbol)] += jump
        return self.values

    # ------------------------------------------------------------------ advancing
    def step(self, dt_seconds: float) -> dict[str, float]:
        """Advance by `dt_seconds` (whole steps of Δ, remainder carried) and return the values."""
        if not (math.isfinite(dt_seconds) and dt_seconds >= 0):
            raise ValueError(f"dt_seconds must be finite and >= 0, got {dt_seconds}")
        self._budget_ns += round(dt_seconds * _NS)
        n, self._budget_ns = divmod(self._budget_ns, self._step_ns)
        while n > 0:
            chunk = min(n, _CHUNK)
            path = self._advance(chunk)
            self._x = path[-1]
            n -= chunk
        return self.values

    def simulate(self, n_steps: int) -> np.ndarray:
        """Take `n_steps` whole steps; return the prices after each, shape (n_steps, symbols).

        Same random streams as `step`: `simulate(n)` then `values` equals n calls of
        `step(step_s)`. For the simulated-time kernel and for statistics over long paths.
        """
        if n_steps < 0:
            raise ValueError(f"n_steps must be >= 0, got {n_steps}")
        if n_steps == 0:
            return np.empty((0, len(self.symbols)))
        path = self._advance(n_steps)
        self._x = path[-1].copy()
        return np.exp(self._log_f0 + path)

    def _advance(self, n: int) -> np.ndarray:
        """Draw n steps; return x after each (n, symbols). Updates counters, not `_x`."""
        c = self.config
        k = len(self.symbols)
        z = self._shocks.standard_normal((n, k)) @ self._factor_t
        if c.process == "gaussian":
            d = c.scale * z
        elif c.process == "stable":
            d = c.scale * self._stable(z)
            if c.levy_max_step is not None:
                np.clip(d, -c.levy_max_step, c.levy_max_step, out=d)
        else:
            u = _erfc(np.abs(z) * (1 / math.sqrt(2))).astype(float)
            np.clip(u, np.finfo(float).tiny, 1.0, out=u)
            mag = c.scale * u**-self._inv_mu
            if c.levy_max_step is not None:
                np.minimum(mag, c.levy_max_step, out=mag)
            d = np.copysign(mag, z)
        if c.jumps is not None and c.jumps.rate > 0:
            d = d + self._jumps(n, k, c.jumps)
        self._steps += n
        if self._decay == 1.0:
            return self._x + np.cumsum(d, axis=0)
        out = np.empty_like(d)
        x = self._x
        a = self._decay
        for i in range(n):
            x = a * x + d[i]
            out[i] = x
        return out

    def _stable(self, z: np.ndarray) -> np.ndarray:
        """Standard symmetric μ-stable draws from the normals z (Chambers-Mallows-Stuck)."""
        mu = self.config.tail_exponent
        phi = 0.5 * _erfc(-z * (1 / math.sqrt(2))).astype(float)
        v = math.pi * (np.clip(phi, 1e-16, 1 - 1e-16) - 0.5)
        e = self._exps.standard_exponential(z.shape)
        np.maximum(e, np.finfo(float).tiny, out=e)
        if mu == 1.0:
            return np.tan(v)
        cos_v = np.cos(v)
        return (
            np.sin(mu * v) / cos_v ** (1.0 / mu) * (np.cos((1.0 - mu) * v) / e) ** ((1.0 - mu) / mu)
        )

    def _jumps(self, n: int, k: int, j: JumpConfig) -> np.ndarray:
        counts = self._counts.poisson(j.rate * self.config.step_s, (n, k))
        total = int(counts.sum())
        self._jump_counts += counts.sum(axis=0)
        if total == 0:
            return np.zeros((n, k))
        if j.distribution == "normal":
            sizes = self._sizes.normal(j.mean, j.scale, total)
        else:
            sizes = self._sizes.laplace(j.mean, j.scale, total)
        cell = np.repeat(np.arange(n * k), counts.ravel())
        return np.bincount(cell, weights=sizes, minlength=n * k).reshape(n, k)
