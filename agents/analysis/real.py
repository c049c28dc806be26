"""Real daily closes shipped with the package, to hold a simulated history against.

The files in ``agents/analysis/data`` are small ``date,close`` CSVs (daily closes: S&P 500 and
NASDAQ Composite 1999-2018, WTI crude 1986-2019), so `agora facts --real sp500` works from a
fresh clone with no download and no network. Any other ``date,close`` file reads the same way
(`load_closes_csv`).
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

__all__ = ["DATA_DIR", "REAL_SERIES", "load_closes_csv", "load_real"]

DATA_DIR = Path(__file__).resolve().parent / "data"
REAL_SERIES: dict[str, str] = {
    "sp500": "S&P 500 daily close",
    "nasdaq": "NASDAQ Composite daily close",
    "wti": "WTI crude oil daily close",
}


def load_real(name: str) -> tuple[list[str], np.ndarray]:
    """(dates, closes) of the packaged series `name` (one of `REAL_SERIES`), oldest first.

    Rows without a positive close are skipped (a missing quote is not a zero price).
    """
    if name not in REAL_SERIES:
        raise ValueError(f"unknown real series {name!r}: use one of {sorted(REAL_SERIES)}")
    return load_closes_csv(DATA_DIR / f"{name}.csv")


def load_closes_csv(path: str | Path) -> tuple[list[str], np.ndarray]:
    """(dates, closes) of a CSV with a header naming ``date`` and ``close`` columns, in file
    order; rows without a positive close are skipped. A file without those columns is a
    ValueError that names it."""
    dates: list[str] = []
    closes: list[float] = []
    with open(path, newline="") as fh:
        reader = csv.DictReader(fh)
        if not {"date", "close"} <= set(reader.fieldnames or ()):
            raise ValueError(f"{path}: needs a header with date and close columns")
        for row in reader:
            try:
                close = float(row["close"])
            except (TypeError, ValueError):
                continue
            if close > 0:
                dates.append(row["date"])
                closes.append(close)
    return dates, np.asarray(closes)
