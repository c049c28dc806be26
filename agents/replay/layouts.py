"""The tape layouts a replay reads, and the checks that name the file, row and column.

External files (CSV or Parquet; any name ending in .csv, .csv.gz or .parquet in the data
directory) are one of two kinds, told apart by their header:

* **top of book**: ``ts``, ``bid``, ``ask``, ``bid_size``, ``ask_size`` (one row per change
  of the best bid or offer; an empty bid or ask is an empty side);
* **trades**: ``ts``, ``price``, ``size``, and optionally ``side`` (the aggressor: buy, sell,
  b, s, 1, -1; empty or anything else: unknown) and ``trade_id``.

Either may have a ``symbol`` column (many symbols in one file); without it the file's symbol
is ``--symbol`` or else the file name up to its first dot (``EURUSD.quotes.csv`` is EURUSD).
Accepted aliases: ``timestamp``/``time`` for ts, ``bid_qty``/``ask_qty`` for the sizes,
``qty`` for size, ``aggressor``/``aggressor_side`` for side. Prices are decimals, converted
to ticks of ``--tick-size`` (rounded to the nearest tick); sizes are in lots.

Timestamps: integers in ns, µs, ms or s since the epoch (``--ts-unit``; ``auto`` tells them
apart by magnitude), or ISO 8601 text (``2024-05-01T13:00:00.123456Z``; no zone means UTC).

Each file's rows must be in time order; a quote must not be crossed (bid above ask; a locked
quote, bid equal to ask, is accepted). Anything else stops the replay with one line naming
the file, the row (1 is the first data row) and the column.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from exchange.errors import UserError

__all__ = [
    "QUOTE_COLUMNS", "TRADE_COLUMNS", "TapeError", "aggressor_codes", "classify", "timestamps",
]  # fmt: skip

ALIASES = {
    "ts": ("ts", "timestamp", "time"),
    "bid": ("bid", "bid_price"),
    "ask": ("ask", "ask_price"),
    "bid_size": ("bid_size", "bid_qty"),
    "ask_size": ("ask_size", "ask_qty"),
    "price": ("price",),
    "size": ("size", "qty"),
    "side": ("side", "aggressor", "aggressor_side"),
    "trade_id": ("trade_id",),
    "symbol": ("symbol",),
}
QUOTE_COLUMNS = ("ts", "bid", "ask", "bid_size", "ask_size")
TRADE_COLUMNS = ("ts", "price", "size")
TS_UNITS = {"ns": 1, "us": 1_000, "ms": 1_000_000, "s": 1_000_000_000}


class TapeError(UserError):
    """A tape file the replay cannot use; the message names file, row and column."""

    @classmethod
    def at(cls, path: Path | str, row: int | None, column: str | None, what: str) -> TapeError:
        where = [str(path)]
        if row is not None:
            where.append(f"row {row}")
        if column is not None:
            where.append(f"column {column!r}")
        return cls(f"{', '.join(where)}: {what}")


def resolve(path: Path, names: list[str]) -> tuple[str, dict[str, str]]:
    """The file's kind ("quotes" or "trades") and our column -> its column name."""
    lower = {n.lower().strip(): n for n in names}
    found = {}
    for ours, aliases in ALIASES.items():
        for alias in aliases:
            if alias in lower:
                found[ours] = lower[alias]
                break
    if "bid" in found or "ask" in found:
        kind, need = "quotes", QUOTE_COLUMNS
    elif "price" in found:
        kind, need = "trades", TRADE_COLUMNS
    else:
        raise TapeError.at(path, None, None, "neither a top-of-book layout (ts, bid, ask, "
                           f"bid_size, ask_size) nor a trades layout (ts, price, size); "
                           f"columns: {', '.join(names)}")  # fmt: skip
    for col in need:
        if col not in found:
            raise TapeError.at(path, None, col, f"missing ({kind} layout needs "
                               f"{', '.join(need)}; the file has {', '.join(names)})")  # fmt: skip
    return kind, found


classify = resolve


def timestamps(path: Path, column: str, arr: pa.Array, unit: str, row0: int) -> np.ndarray:
    """A timestamp column as int64 ns since the epoch (see the module docstring)."""
    t = arr.type
    if pa.types.is_timestamp(t):
        return pc.cast(arr, pa.timestamp("ns", tz=t.tz)).cast(pa.int64()).to_numpy(
            zero_copy_only=False)  # fmt: skip
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        try:
            parsed = pc.cast(arr, pa.timestamp("ns", tz="UTC"))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            bad = _first_bad(arr, lambda v: pa.array([v]).cast(pa.timestamp("ns", tz="UTC")))
            raise TapeError.at(path, row0 + bad + 1, column,
                               f"not a timestamp: {arr[bad].as_py()!r}") from None  # fmt: skip
        out = parsed.cast(pa.int64())
    elif pa.types.is_integer(t) or pa.types.is_floating(t):
        out = arr
    else:
        raise TapeError.at(path, row0 + 1, column, f"timestamps of type {t} (want integers or "
                           "ISO 8601 text)")  # fmt: skip
    if out.null_count:
        bad = int(np.flatnonzero(np.asarray(out.is_null()))[0])
        raise TapeError.at(path, row0 + bad + 1, column, "empty timestamp")
    values = out.to_numpy(zero_copy_only=False)
    if pa.types.is_floating(t):
        values = np.round(values).astype(np.int64)
    if not (pa.types.is_string(t) or pa.types.is_large_string(t)):
        values = values.astype(np.int64, copy=False) * _scale(values, unit)
    return values.astype(np.int64, copy=False)


def _scale(values: np.ndarray, unit: str) -> int:
    if unit != "auto":
        return TS_UNITS[unit]
    if not len(values):
        return 1
    probe = abs(int(values[0]))
    if probe >= 10**17:
        return 1
    if probe >= 10**14:
        return 1_000
    if probe >= 10**11:
        return 1_000_000
    return 1_000_000_000 if probe >= 10**8 else 1


def _first_bad(arr: pa.Array, convert: object) -> int:
    for i, v in enumerate(arr.to_pylist()):
        if v is None:
            return i
        try:
            convert(v)  # type: ignore[operator]
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, ValueError, TypeError):
            return i
    return 0


def numbers(path: Path, column: str, arr: pa.Array, row0: int, *, nullable: bool) -> pa.Array:
    """A numeric column as float64 (text that is not a number is named, row and all)."""
    t = arr.type
    if not (pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_null(t)):
        try:
            arr = pc.cast(arr, pa.float64())
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            bad = _first_bad(arr, lambda v: float(v))
            raise TapeError.at(path, row0 + bad + 1, column,
                               f"not a number: {arr[bad].as_py()!r}") from None  # fmt: skip
    arr = pc.cast(arr, pa.float64())
    if not nullable and arr.null_count:
        bad = int(np.flatnonzero(np.asarray(arr.is_null()))[0])
        raise TapeError.at(path, row0 + bad + 1, column, "empty value")
    return arr


def aggressor_codes(arr: pa.Array) -> np.ndarray:
    """buy/b/1 -> 1, sell/s/-1 -> -1, anything else (or empty) -> 0 (unknown)."""
    if pa.types.is_integer(arr.type) or pa.types.is_floating(arr.type):
        v = np.asarray(pc.fill_null(pc.cast(arr, pa.float64()), 0.0))
        return np.sign(v).astype(np.int64)
    text = pc.utf8_lower(pc.utf8_trim_whitespace(pc.cast(arr, pa.string())))
    buy = pc.is_in(text, value_set=pa.array(["buy", "b", "1", "bid"]))
    sell = pc.is_in(text, value_set=pa.array(["sell", "s", "-1", "ask", "offer"]))
    out = np.asarray(pc.fill_null(buy, False)).astype(np.int64)
    return out - np.asarray(pc.fill_null(sell, False)).astype(np.int64)
