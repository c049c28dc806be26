"""PNG charts of the stylized facts (needs matplotlib: the ``plots`` extra).

Built on `matplotlib.figure.Figure` directly, not pyplot: no global state, no GUI backend, so
it works headless (CI, a container, a worker process) and from threads.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from agents.analysis.stylized import acf, aggregate, kurtosis

if TYPE_CHECKING:
    from agents.analysis.verdict import FactBands

__all__ = ["HAVE_MATPLOTLIB", "INSTALL_HINT", "plot_facts"]

INSTALL_HINT = "pip install -e '.[plots]'"
"""How to get matplotlib from a checkout (the README's install); brackets and all, so print it
through `rich.markup.escape` where rich renders markup."""

try:
    from matplotlib.figure import Figure

    HAVE_MATPLOTLIB = True
except ImportError:  # pragma: no cover - depends on the environment
    Figure = None  # type: ignore[assignment,misc]
    HAVE_MATPLOTLIB = False

Series = tuple[str, np.ndarray]  # (label, log returns)


def _standardise(r: np.ndarray) -> np.ndarray:
    sd = float(np.std(r))
    return (r - r.mean()) / sd if sd > 0 else r - r.mean()


def plot_facts(
    series: Sequence[Series],
    out_dir: str | Path,
    scales: Sequence[int] = (1, 2, 5, 10, 20, 50),
    max_lag: int = 50,
    bands: FactBands | None = None,
) -> dict[str, Path]:
    """Write ``returns_hist.png`` (standardised returns vs the normal density, log scale: the
    tails), ``acf.png`` (ACF of returns and of |returns|: no memory vs volatility clustering)
    and ``kurtosis_scale.png`` (excess kurtosis vs aggregation scale: aggregational
    Gaussianity) for each (label, returns) of `series`; returns the paths.

    With the verdict's `bands`, the charts use its scales and lags and draw its bands: the
    noise band of each series' ACF of returns and the clustering floors of the ACF of |r|."""
    if bands is not None:
        scales, max_lag = bands.scales, max(bands.decay_lag, bands.acf_lags)
    if not HAVE_MATPLOTLIB:
        raise RuntimeError(f"plots need matplotlib: {INSTALL_HINT}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {}

    fig = Figure(figsize=(7, 4.5))
    ax = fig.add_subplot()
    grid = np.linspace(-8, 8, 400)
    for label, r in series:
        if len(r) < 2:
            continue
        z = _standardise(r)
        ax.hist(z, bins=80, range=(-8, 8), density=True, histtype="step", label=label)
    ax.plot(grid, np.exp(-(grid**2) / 2) / math.sqrt(2 * math.pi), "k--", label="normal")
    ax.set_yscale("log")
    ax.set_ylim(1e-5, 1.5)
    ax.set_xlabel("standardised log return")
    ax.set_ylabel("density")
    ax.set_title("returns vs normal")
    ax.legend()
    paths["returns_hist"] = out / "returns_hist.png"
    fig.savefig(paths["returns_hist"], dpi=100)

    fig = Figure(figsize=(10, 4))
    ax_r, ax_abs = fig.subplots(1, 2)
    lags = np.arange(1, max_lag + 1)
    for label, r in series:
        (line,) = ax_r.plot(lags, acf(r, max_lag), ".-", label=label)
        ax_abs.plot(lags, acf(np.abs(r), max_lag), ".-", label=label)
        if bands is not None and len(r):
            noise = bands.acf_z / math.sqrt(len(r))
            for y in (noise, -noise):
                ax_r.axhline(y, color=line.get_color(), ls=":", lw=0.8)
    if bands is not None:
        for y in (bands.acf_max, -bands.acf_max):
            ax_r.axhline(y, color="r", ls="--", lw=0.8)
        ax_abs.plot([bands.clustering_lag, bands.decay_lag],
                    [bands.min_clustering, bands.min_decay], "rv", label="floors")  # fmt: skip
    for ax, title in ((ax_r, "ACF of returns"), (ax_abs, "ACF of |returns|")):
        ax.axhline(0, color="k", lw=0.5)
        ax.set_xlabel("lag (bars)")
        ax.set_title(title)
        ax.legend()
    paths["acf"] = out / "acf.png"
    fig.savefig(paths["acf"], dpi=100)

    fig = Figure(figsize=(7, 4.5))
    ax = fig.add_subplot()
    for label, r in series:
        ks = [kurtosis(aggregate(r, s)) for s in scales]
        ax.plot(list(scales), ks, "o-", label=label)
    ax.axhline(0, color="k", lw=0.5)
    ax.set_xscale("log")
    ax.set_xlabel("aggregation scale (bars)")
    ax.set_ylabel("excess kurtosis")
    ax.set_title("aggregational Gaussianity")
    ax.legend()
    paths["kurtosis_scale"] = out / "kurtosis_scale.png"
    fig.savefig(paths["kurtosis_scale"], dpi=100)
    return paths
