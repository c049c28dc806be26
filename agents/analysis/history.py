"""From a recorded history (a trades table, a trades Parquet file, a run directory) to prices.

Kept apart from `agents.analysis.stylized` so that module stays numpy only: reading Parquet
needs pyarrow, which the kernel itself does not.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from agents.analysis.stylized import regular_closes

__all__ = ["closes_from_trades", "read_trades", "trades_path"]

NS = 1_000_000_000


def trades_path(path: str | Path) -> Path:
    """The trades Parquet file of `path`: the file itself, or ``trades.parquet`` in a run
    directory (what `agora simulate` and every sweep run write)."""
    p = Path(path)
    if p.is_dir():
        p = p / "trades.parquet"
    if not p.is_file():
        raise FileNotFoundError(f"no trades file at {p}")
    return p


def read_trades(path: str | Path) -> dict[str, list]:
    """The trades table (columns ts, symbol, price, qty, ...) of a Parquet file or run dir."""
    import pyarrow.parquet as pq

    return pq.read_table(trades_path(path)).to_pydict()


def closes_from_trades(
    trades: dict[str, list], bar_ns: int = NS, symbol: str | None = None
) -> np.ndarray:
    """Last trade price (ticks) of each bar of `bar_ns` for `symbol` (default: the symbol of
    the first trade), on a regular grid with quiet bars carrying the previous close."""
    syms = trades.get("symbol", [])
    if not syms:
        return np.empty(0)
    symbol = syms[0] if symbol is None else symbol
    ts = np.asarray(trades["ts"], dtype=np.int64)
    px = np.asarray(trades["price"], dtype=float)
    mask = np.asarray([s == symbol for s in syms], dtype=bool)
    return regular_closes(ts[mask], px[mask], bar_ns)
