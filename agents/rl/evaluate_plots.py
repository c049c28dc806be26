"""Plots of an evaluation (matplotlib, written as PNG files; skipped without matplotlib).

- ``metrics.png``: per regime, mean and 95% interval of total PnL, Sharpe, max drawdown and
  inventory std for each policy;
- ``equity_<regime>.png``: each policy's PnL over the first held-out episode of the regime,
  with its inventory below.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["write_plots"]

_PANELS = ("total_pnl", "sharpe", "max_drawdown", "inventory_std")


def write_plots(result: Any, records: dict[tuple[str, str], list[Any]], out: Path) -> list[Path]:
    """Write the plots into `out`; returns their paths (none without matplotlib)."""
    if importlib.util.find_spec("matplotlib") is None:
        return []
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from agents.rl.evaluate import COLUMNS

    written: list[Path] = []
    regimes = list(result.table)
    names = result.policies
    fig, axes = plt.subplots(1, len(_PANELS), figsize=(4.2 * len(_PANELS), 3.8))
    width = 0.8 / max(1, len(names))
    x = np.arange(len(regimes))
    for ax, key in zip(axes, _PANELS, strict=True):
        for i, name in enumerate(names):
            means = [result.table[r][name][key]["mean"] for r in regimes]
            cis = [result.table[r][name][key]["ci95"] for r in regimes]
            cis = [c if c is not None and np.isfinite(c) else 0.0 for c in cis]
            ax.bar(x + i * width - 0.4 + width / 2, means, width, yerr=cis, capsize=2, label=name)
        ax.set_xticks(x, regimes)
        ax.set_title(COLUMNS[key], fontsize=9)
        ax.axhline(0, color="black", linewidth=0.5)
    axes[0].legend(fontsize=7)
    fig.suptitle(f"held-out evaluation, {len(result.spec.seeds)} seeds per regime "
                 "(bars: mean, whiskers: 95% interval)", fontsize=10)  # fmt: skip
    fig.tight_layout()
    path = out / "metrics.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    written.append(path)
    for regime in regimes:
        fig, (top, bottom) = plt.subplots(2, 1, figsize=(9, 5), sharex=True)
        for name in names:
            recs = records.get((regime, name))
            if not recs:
                continue
            rec = recs[0]
            t = (np.asarray(rec.ts) - rec.ts[0]) / 1e9
            top.plot(t, rec.pnl, label=name, linewidth=1)
            bottom.plot(t, rec.inventory, label=name, linewidth=1)
        top.set_ylabel("PnL (ticks x lots)")
        bottom.set_ylabel("inventory (lots)")
        bottom.set_xlabel("simulated seconds")
        top.legend(fontsize=7)
        top.set_title(f"{regime} regime, seed {result.spec.seeds[0]}", fontsize=10)
        fig.tight_layout()
        path = out / f"equity_{regime}.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(path)
    return written
