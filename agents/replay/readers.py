"""Find and read a tape: the recorder's Parquet, an `agora simulate` run, or external files.

`open_tape(path)` looks at the directory (or file) and returns a `Tape`: its symbols, and how
to stream it (`Tape.chunks`) as many times as needed (walk-forward replays it per window).

* a **recording** (``agora up``/``agora record``/docker compose: ``<dir>/tob/*.parquet`` and
  ``<dir>/trades/*.parquet``, see `agents.recorder`): prices already in ticks;
* an **`agora simulate` run** (``top_of_book.parquet`` and ``trades.parquet``): ticks too;
* **external** CSV or Parquet files in the layouts of `agents.replay.layouts`: decimals,
  converted with the tick size.

Every file is read in record batches (`pyarrow.parquet.ParquetFile.iter_batches`, the
streaming CSV reader `pyarrow.csv.open_csv`), so memory holds a few batches, never the tape.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from agents.replay.layouts import TapeError, aggressor_codes, numbers, resolve, timestamps
from agents.replay.tape import NO_ASK, NO_BID, QUOTE, TRADE, Chunk
from exchange.symbols import SymbolSpec

__all__ = ["DEFAULT_CHUNK_ROWS", "Source", "Tape", "open_tape"]

DEFAULT_CHUNK_ROWS = 1 << 20
_CSV_BLOCK = 8 << 20


def _block(rows: int) -> int:
    """CSV bytes per block for about `rows` rows (a row of a tape is some 40 to 60 bytes)."""
    return max(4096, min(_CSV_BLOCK, rows * 48))


@dataclass
class Source:
    """One stream of the tape (quotes or trades) over one or more files read in order.

    `mapping` is our column -> the file's; `ticks` says the prices are ticks already.
    """

    kind: str  # "quotes" | "trades"
    paths: list[Path]
    mapping: dict[str, str]
    ticks: bool
    symbol: str | None = None  # the files' symbol when they have no symbol column
    ts_unit: str = "auto"

    def batches(self, path: Path, rows: int, columns: list[str] | None = None
                ) -> Iterator[pa.RecordBatch]:  # fmt: skip
        name = path.name.lower()
        if name.endswith(".parquet"):
            f = pq.ParquetFile(path)
            yield from f.iter_batches(batch_size=rows, columns=columns)
            return
        convert = pacsv.ConvertOptions(include_columns=columns,
                                       strings_can_be_null=True)  # fmt: skip
        try:
            reader = pacsv.open_csv(path, read_options=pacsv.ReadOptions(block_size=_block(rows)),
                                    convert_options=convert)  # fmt: skip
            yield from reader
        except pa.ArrowInvalid as exc:  # a row of another width, a broken quote...
            raise TapeError.at(path, None, None, str(exc).splitlines()[0]) from None

    def symbols(self, rows: int) -> list[str]:
        """The symbols of this stream in order of first appearance (a streaming pass)."""
        col = self.mapping.get("symbol")
        if col is None:
            return [self.symbol or ""]
        seen: dict[str, None] = {}
        for path in self.paths:
            for batch in self.batches(path, rows, [col]):
                for s in pc.unique(batch.column(0)).to_pylist():
                    if s is not None:
                        seen.setdefault(str(s), None)
        return list(seen)

    def span(self, rows: int) -> tuple[int, int] | None:
        """The stream's first and last timestamps (None: no rows)."""
        first = last = None
        col = self.mapping["ts"]
        for path in self.paths:
            row0 = 0
            for batch in self.batches(path, rows, [col]):
                if batch.num_rows:
                    ts = timestamps(path, col, batch.column(0), self.ts_unit, row0)
                    first = int(ts[0]) if first is None else first
                    last = int(ts[-1])
                row0 += batch.num_rows
        return None if first is None else (first, last)

    def chunks(self, sym_index: dict[str, int], ticks_of: Callable[[str], Decimal],
               rows: int) -> Iterator[Chunk]:  # fmt: skip
        """The stream as chunks, each file's rows in order (checked)."""
        last_ts = None
        last_at = ""
        for path in self.paths:
            row0 = 0
            for batch in self.batches(path, rows):
                if batch.num_rows:
                    chunk = self._convert(path, batch, row0, sym_index, ticks_of)
                    ts = chunk.ts
                    back = np.flatnonzero(ts[1:] < ts[:-1])
                    if len(back):
                        r = int(back[0]) + 1
                        raise TapeError.at(path, row0 + r + 1, self.mapping["ts"],
                                           f"timestamp goes back in time ({ts[r]} ns after "
                                           f"{ts[r - 1]} ns); rows must be in time order")
                    if last_ts is not None and ts[0] < last_ts:
                        raise TapeError.at(path, row0 + 1, self.mapping["ts"],
                                           f"timestamp {ts[0]} ns is before the last one of "
                                           f"{last_at} ({last_ts} ns); files of one stream must "
                                           "follow each other in time")  # fmt: skip
                    last_ts, last_at = int(ts[-1]), str(path)
                    yield chunk
                row0 += batch.num_rows

    def _convert(self, path: Path, batch: pa.RecordBatch, row0: int, sym_index: dict[str, int],
                 ticks_of: Callable[[str], Decimal]) -> Chunk:  # fmt: skip
        m = self.mapping
        n = batch.num_rows
        ts = timestamps(path, m["ts"], batch.column(m["ts"]), self.ts_unit, row0)
        if "symbol" in m:
            col = batch.column(m["symbol"])
            names = pc.unique(col).to_pylist()
            if None in names:
                bad = int(np.flatnonzero(np.asarray(col.is_null()))[0])
                raise TapeError.at(path, row0 + bad + 1, m["symbol"], "empty symbol")
            table = pa.array([str(s) for s in names])
            idx = pc.index_in(pc.cast(col, pa.string()), value_set=table).to_numpy()
            sym = np.array([sym_index[str(s)] for s in names], np.int32)[idx]
            tick = {str(s): ticks_of(str(s)) for s in names}
            one_tick = len(set(tick.values())) == 1
            tick_arr = None if one_tick else np.array([float(tick[str(s)]) for s in names])[idx]
            tick_one = float(next(iter(tick.values())))
        else:
            sym = np.full(n, sym_index[self.symbol or ""], np.int32)
            tick_one = float(ticks_of(self.symbol or ""))
            tick_arr = None

        def price(name: str, nullable: bool, empty: int) -> np.ndarray:
            arr = numbers(path, m[name], batch.column(m[name]), row0, nullable=nullable)
            v = np.asarray(pc.fill_null(arr, np.nan))
            if not self.ticks:
                v = v / (tick_arr if tick_arr is not None else tick_one)
            out = np.where(np.isnan(v), empty, np.rint(np.nan_to_num(v)))
            return out.astype(np.int64)

        def size(name: str) -> np.ndarray:
            arr = numbers(path, m[name], batch.column(m[name]), row0, nullable=True)
            return np.rint(np.asarray(pc.fill_null(arr, 0.0))).astype(np.int64)

        if self.kind == "quotes":
            bid = price("bid", True, NO_BID)
            ask = price("ask", True, NO_ASK)
            crossed = np.flatnonzero((bid != NO_BID) & (ask != NO_ASK) & (bid > ask))
            if len(crossed):
                r = int(crossed[0])
                raise TapeError.at(path, row0 + r + 1, m["bid"], f"crossed quote: bid {bid[r]} "
                                   f"above ask {ask[r]} (ticks)")  # fmt: skip
            kind = np.full(n, QUOTE, np.int8)
            return Chunk(ts, kind, sym, bid, size("bid_size"), ask, size("ask_size"))
        px = price("price", False, 0)
        qty = size("size")
        aggr = (aggressor_codes(batch.column(m["side"])) if "side" in m
                else np.zeros(n, np.int64))  # fmt: skip
        tid = (np.asarray(pc.fill_null(pc.cast(batch.column(m["trade_id"]), pa.int64()), 0))
               if "trade_id" in m else np.zeros(n, np.int64))  # fmt: skip
        return Chunk(ts, np.full(n, TRADE, np.int8), sym, px, qty, aggr.astype(np.int64),
                     tid.astype(np.int64))  # fmt: skip


@dataclass
class Tape:
    """A tape on disk: what it holds and how to stream it (see `agents.replay.stream`)."""

    path: Path
    layout: str  # "recording" | "simulate" | "files"
    sources: list[Source]
    tick_size: Decimal = Decimal("0.01")
    chunk_rows: int = DEFAULT_CHUNK_ROWS
    symbols: list[str] = field(default_factory=list)
    specs: dict[str, SymbolSpec] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.symbols:
            seen: dict[str, None] = {}
            for src in self.sources:
                for s in src.symbols(self.chunk_rows):
                    seen.setdefault(s, None)
            self.symbols = list(seen)
        for s in self.symbols:
            self.specs.setdefault(s, SymbolSpec(symbol=s, tick_size=self.tick_size))

    def streams(self) -> list[Iterator[Chunk]]:
        index = {s: i for i, s in enumerate(self.symbols)}
        return [src.chunks(index, lambda s: self.specs[s].tick_size, self.chunk_rows)
                for src in self.sources]  # fmt: skip

    def span(self) -> tuple[int, int]:
        """The first and last timestamps of the tape (a pass over the time columns only)."""
        first, last = None, None
        for src in self.sources:
            ends = src.span(self.chunk_rows)
            if ends is None:
                continue
            first = ends[0] if first is None else min(first, ends[0])
            last = ends[1] if last is None else max(last, ends[1])
        if first is None or last is None:
            raise TapeError(f"{self.path}: the tape is empty")
        return first, last

    def chunks(self, start_ns: int | None = None, end_ns: int | None = None) -> Iterator[Chunk]:
        """The whole tape in replay order (optionally only ``start_ns <= ts < end_ns``)."""
        from agents.replay.stream import merge, window

        yield from window(merge(self.streams()), start_ns, end_ns)


def _recorder_source(root: Path, channel: str, kind: str) -> Source | None:
    from agents.recorder.read import files

    paths = files(root, channel)
    if not paths:
        return None
    if kind == "quotes":
        mapping = {"ts": "ts", "symbol": "symbol", "bid": "bid_price", "ask": "ask_price",
                   "bid_size": "bid_qty", "ask_size": "ask_qty"}  # fmt: skip
    else:
        mapping = {"ts": "ts", "symbol": "symbol", "price": "price", "size": "qty",
                   "side": "aggressor_side", "trade_id": "trade_id"}  # fmt: skip
    return Source(kind, paths, mapping, ticks=True, ts_unit="ns")


def _header(path: Path) -> list[str]:
    if path.name.lower().endswith(".parquet"):
        return list(pq.read_schema(path).names)
    try:
        reader = pacsv.open_csv(path, read_options=pacsv.ReadOptions(block_size=1 << 16))
    except pa.ArrowInvalid as exc:
        raise TapeError.at(path, None, None, str(exc).splitlines()[0]) from None
    return list(reader.schema.names)


_TAPE_SUFFIXES = (".csv", ".csv.gz", ".parquet")


def open_tape(
    path: Path | str,
    *,
    tick_size: Decimal | str | float = Decimal("0.01"),
    symbol: str | None = None,
    ts_unit: str = "auto",
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    synthetic_size: int | None = None,
) -> Tape:
    """The tape at `path` (see the module docstring for what is recognised).

    `synthetic_size`: replace the recorded top of book by synthetic quotes, the volume-weighted
    price to trade that many lots through the recorded depth (`agents.replay.depth`).
    """
    root = Path(path)
    tick = Decimal(str(tick_size))
    if tick <= 0:
        raise TapeError(f"tick size must be positive, not {tick_size}")
    if not root.exists():
        raise TapeError(f"{root}: no such file or directory")
    if root.is_dir() and ((root / "tob").is_dir() or (root / "trades").is_dir()):
        sources = [s for s in (_recorder_source(root, "tob", "quotes"),
                               _recorder_source(root, "trades", "trades")) if s]  # fmt: skip
        if synthetic_size is not None:
            from agents.replay.depth import SyntheticSource

            sources = [s for s in sources if s.kind != "quotes"]
            sources.insert(0, SyntheticSource.of(root, synthetic_size))  # type: ignore[arg-type]
        if not sources:
            raise TapeError(f"{root}: a recording with no finished tob or trades file yet")
        return Tape(root, "recording", sources, tick, chunk_rows)
    if synthetic_size is not None:
        raise TapeError(f"{root}: synthetic quotes need recorded depth (a recording with book "
                        "and snapshots channels)")  # fmt: skip
    if root.is_dir() and (root / "top_of_book.parquet").is_file():
        sources = []
        q = root / "top_of_book.parquet"
        sources.append(Source("quotes", [q], {"ts": "ts", "symbol": "symbol", "bid": "bid",
                              "ask": "ask", "bid_size": "bid_qty", "ask_size": "ask_qty"},
                              ticks=True, ts_unit="ns"))  # fmt: skip
        t = root / "trades.parquet"
        if t.is_file():
            sources.append(Source("trades", [t], {"ts": "ts", "symbol": "symbol",
                                  "price": "price", "size": "qty", "side": "aggressor",
                                  "trade_id": "trade_id"}, ticks=True, ts_unit="ns"))  # fmt: skip
        return Tape(root, "simulate", sources, tick, chunk_rows)
    files = [root] if root.is_file() else sorted(
        p for p in root.iterdir() if p.name.lower().endswith(_TAPE_SUFFIXES))  # fmt: skip
    if not files:
        raise TapeError(f"{root}: no tape here (a recording's tob/ and trades/, an agora "
                        "simulate run, or .csv/.parquet files in the documented layouts)")
    by_key: dict[tuple, Source] = {}
    for f in files:
        kind, mapping = resolve(f, _header(f))
        own = None if "symbol" in mapping else (symbol or f.name.split(".")[0])
        key = (kind, tuple(sorted(mapping.items())), own)
        if key in by_key:
            by_key[key].paths.append(f)  # more files of the same stream, in name order
        else:
            by_key[key] = Source(kind, [f], mapping, ticks=False, symbol=own, ts_unit=ts_unit)
    sources = sorted(by_key.values(), key=lambda s: s.kind != "quotes")
    return Tape(root, "files", sources, tick, chunk_rows)
