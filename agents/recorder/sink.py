"""Buffer market-data messages in memory and write them as Parquet part files (pure: no sockets).

The recorder process (`agents.recorder.server`) hands every feed message to a `ParquetSink`
together with the wall-clock time it arrived. Keeping the buffering, the schemas and the file
rotation here, away from ZeroMQ and asyncio, lets the tests check the on-disk format exactly,
with an injected clock, and lets a backtest or notebook reuse the same schemas.

Layout: ``out_dir/<channel>/<channel>-<UTC period start>-<n>.parquet``. A *period* is a window
of ``rotate_s`` seconds aligned to the Unix epoch (hourly files start on the hour), so files of
several recorders, or of one recorder restarted, line up. Within a period ``n`` counts files
(a flush every ``flush_s``, a buffer reaching ``rotate_rows``, a shutdown, a restart) and never
overwrites an existing file. The periodic flush is what makes a recording readable while it
runs: every file in the directory is a finished Parquet file, so ``pandas.read_parquet(dir)``
or a glob sees everything up to the last flush. A file is written to a hidden temporary name
(``.<name>.tmp``: pyarrow datasets skip dot files, and a ``*.parquet`` glob does not match it)
and renamed, so a reader never sees half a file.

Each channel has an explicit schema (`SCHEMAS`): integers stay integers (prices in ticks,
quantities in lots, timestamps in ns since the epoch, UTC), exactly as on the wire, so nothing
is lost to floats; ``ts`` is the exchange's time stamp and ``recv_ts`` the recorder's.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

__all__ = [
    "MESSAGE_TYPES",
    "SCHEMAS",
    "GapTracker",
    "ParquetSink",
    "file_name",
]

_I64 = pa.int64()
_STR = pa.string()
_I64_MIN, _I64_MAX = -(2**63), 2**63 - 1
_LEVEL = pa.struct([("price", _I64), ("qty", _I64), ("count", _I64)])


def _schema(channel: str, *fields: pa.Field) -> pa.Schema:
    base = [
        pa.field("ts", _I64, nullable=False),
        pa.field("recv_ts", _I64, nullable=False),
        pa.field("symbol", _STR, nullable=False),
        pa.field("seq", _I64, nullable=False),
    ]
    return pa.schema(
        base + list(fields),
        metadata={
            "agora.channel": channel,
            "agora.units": "prices in ticks, quantities in lots, times in ns since the epoch (UTC)",
        },
    )


def _req(name: str, type_: pa.DataType = _I64) -> pa.Field:
    return pa.field(name, type_, nullable=False)


def _opt(name: str, type_: pa.DataType = _I64) -> pa.Field:
    return pa.field(name, type_, nullable=True)


SCHEMAS: dict[str, pa.Schema] = {
    "trades": _schema(
        "trades", _req("trade_id"), _req("price"), _req("qty"), _req("aggressor_side", _STR)
    ),
    "tob": _schema(
        "tob",
        _opt("bid_price"),
        _req("bid_qty"),
        _opt("ask_price"),
        _req("ask_qty"),
        _opt("last_price"),
    ),
    "book": _schema("book", _req("side", _STR), _req("price"), _req("qty"), _req("count")),
    "status": _schema(
        "status",
        _req("phase", _STR),
        _req("reason", _STR),
        _opt("band_low"),
        _opt("band_high"),
        _opt("halt_until"),
    ),
    "bars": _schema(
        "bars",
        _req("start_ts"),
        _req("interval_ns"),
        _req("open"),
        _req("high"),
        _req("low"),
        _req("close"),
        _req("volume"),
        _req("trades"),
    ),
    # A full L2 book (taken at start and after a gap in `book`): deltas with a higher `seq`
    # apply on top of it, so an offline reader can rebuild the book at any point.
    "snapshots": _schema(
        "snapshots", _req("bids", pa.list_(_LEVEL)), _req("asks", pa.list_(_LEVEL))
    ),
}
"""Channel -> Arrow schema of its Parquet files."""

MESSAGE_TYPES: dict[str, str] = {
    "trades": "trade",
    "tob": "top_of_book",
    "book": "book_delta",
    "status": "market_status",
    "bars": "bar",
    "snapshots": "book_snapshot",
}
"""Channel -> the wire message ``type`` recorded on it (anything else, e.g. heartbeats, is not)."""

_DEFAULT_FIELD = {"reason": ""}  # optional on the wire, required (possibly empty) in the file


def file_name(channel: str, period_start_ns: int, n: int) -> str:
    """``trades-20240501T130000Z-00000.parquet``: sorts by period, then by file number."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(period_start_ns // 1_000_000_000))
    return f"{channel}-{stamp}-{n:05d}.parquet"


def _fits(v: Any, kind: type | None, nullable: bool) -> bool:
    """Whether `v` may go in a column of this kind (None: not checked here, e.g. a list)."""
    if v is None:
        return nullable
    if kind is None:
        return True
    if type(v) is not kind:  # exact: a bool is not an int here
        return False
    return kind is not int or _I64_MIN <= v <= _I64_MAX


class _Buffer:
    """Column lists of one channel: appending a row is a few list appends, no Arrow calls."""

    __slots__ = ("checks", "columns", "names", "rows", "schema")

    def __init__(self, schema: pa.Schema) -> None:
        self.schema = schema
        self.names = [f.name for f in schema if f.name != "recv_ts"]
        # Type checks per field: a malformed message is refused whole, not written half.
        self.checks: list[tuple[type | None, bool]] = []
        for f in schema:
            if f.name == "recv_ts":
                continue
            kind = int if pa.types.is_integer(f.type) else str if f.type == _STR else None
            self.checks.append((kind, f.nullable))
        self.columns: dict[str, list[Any]] = {f.name: [] for f in schema}
        self.rows = 0

    def append(self, msg: Mapping[str, Any], recv_ts: int) -> bool:
        values = []
        for name, (kind, nullable) in zip(self.names, self.checks, strict=True):
            v = msg.get(name, _DEFAULT_FIELD.get(name))
            if not _fits(v, kind, nullable):
                return False
            values.append(v)
        cols = self.columns
        for name, v in zip(self.names, values, strict=True):
            cols[name].append(v)
        cols["recv_ts"].append(recv_ts)
        self.rows += 1
        return True

    def take(self) -> pa.Table:
        table = pa.Table.from_pydict(self.columns, schema=self.schema)
        for col in self.columns.values():
            col.clear()
        self.rows = 0
        return table


class ParquetSink:
    """Per-channel buffers written as one Parquet file per channel per rotation period.

    `add` buffers one message; a buffer is written when its period ends (checked on every
    `add` and by `tick`, which the process calls on a timer so a quiet market still rotates),
    every `flush_s` seconds (checked by `tick`; 0: only at the end of a period), when it holds
    `rotate_rows` rows (0: no row limit), and on `close`. Every method that writes returns the
    paths it wrote.
    """

    def __init__(
        self,
        out_dir: Path,
        rotate_s: float = 3600.0,
        rotate_rows: int = 0,
        compression: str = "zstd",
        now_ns: int | None = None,
        clock: Callable[[], int] = time.time_ns,
        flush_s: float = 0.0,
    ) -> None:
        if rotate_s <= 0:
            raise ValueError("rotate_s must be positive")
        if flush_s < 0:
            raise ValueError("flush_s must be >= 0")
        if rotate_rows < 0:
            raise ValueError("rotate_rows must be >= 0")
        self.out_dir = Path(out_dir)
        self.rotate_ns = max(1, int(rotate_s * 1_000_000_000))
        self.rotate_rows = rotate_rows
        self.compression = compression
        self._clock = clock
        self._buffers = {ch: _Buffer(schema) for ch, schema in SCHEMAS.items()}
        start = clock() if now_ns is None else now_ns
        self.period_start = self._period_of(start)
        self.flush_ns = int(flush_s * 1_000_000_000)
        self.next_flush = start + self.flush_ns if self.flush_ns else None
        self._next_n: dict[tuple[str, int], int] = {}
        self.rows_written: dict[str, int] = dict.fromkeys(SCHEMAS, 0)
        self.files_written = 0
        self.malformed = 0  # messages refused: a field missing or of the wrong type

    def _period_of(self, ns: int) -> int:
        return ns - ns % self.rotate_ns

    @property
    def period_end(self) -> int:
        return self.period_start + self.rotate_ns

    @property
    def next_due(self) -> int:
        """When `tick` next has something to do: the end of the period or the next flush."""
        if self.next_flush is None:
            return self.period_end
        return min(self.period_end, self.next_flush)

    def buffered(self, channel: str) -> int:
        """Rows of `channel` waiting in memory."""
        return self._buffers[channel].rows

    def add(self, channel: str, msg: Mapping[str, Any], recv_ts: int) -> list[Path]:
        """Buffer `msg` (a decoded wire dict) on `channel`, received at `recv_ts` (ns).

        Returns the files this call wrote (a period ended, or the row limit was reached).
        A malformed message is counted in `malformed` and dropped.
        """
        written = self.tick(recv_ts) if recv_ts >= self.period_end else []
        buf = self._buffers.get(channel)
        if buf is None:
            raise KeyError(f"unknown channel {channel!r}; known: {sorted(SCHEMAS)}")
        if not buf.append(msg, recv_ts):
            self.malformed += 1
            return written
        if self.rotate_rows and buf.rows >= self.rotate_rows:
            written.append(self._write(channel))
        return written

    def tick(self, now_ns: int | None = None) -> list[Path]:
        """If the period is over, write every buffer and start the period `now_ns` is in;
        else, if a flush is due, write every non-empty buffer."""
        now = self._clock() if now_ns is None else now_ns
        if now >= self.period_end:
            written = self.flush()
            self.period_start = self._period_of(now)
        elif self.next_flush is not None and now >= self.next_flush:
            written = self.flush()
        else:
            return []
        if self.next_flush is not None:
            self.next_flush = now + self.flush_ns
        return written

    def flush(self) -> list[Path]:
        """Write every non-empty buffer now (in the current period's names)."""
        return [self._write(ch) for ch, buf in self._buffers.items() if buf.rows]

    close = flush

    def _write(self, channel: str) -> Path:
        table = self._buffers[channel].take()
        folder = self.out_dir / channel
        folder.mkdir(parents=True, exist_ok=True)
        key = (channel, self.period_start)
        n = self._next_n.get(key, 0)
        while (path := folder / file_name(channel, self.period_start, n)).exists():
            n += 1  # a restarted recorder never overwrites the previous one's files
        self._next_n[key] = n + 1
        tmp = path.with_name(f".{path.name}.tmp")  # hidden from readers until it is whole
        pq.write_table(table, tmp, compression=self.compression)
        os.replace(tmp, path)
        self.rows_written[channel] += table.num_rows
        self.files_written += 1
        return path


class GapTracker:
    """Per-stream sequence numbers: how many messages the recorder knows it lost.

    A stream's messages carry contiguous ``seq`` numbers (`exchange.feed`); a jump means lost
    messages (a full queue at the publisher or here). Heartbeats carry the stream's last
    ``seq``, so a lost *tail* on a quiet stream shows too. The first number seen on a stream
    only sets the baseline (the recorder joined mid-stream), and a number going backwards means
    the exchange started over from an empty journal: a new baseline, not a gap.
    """

    def __init__(self) -> None:
        self.last: dict[str, int] = {}
        self.gaps: dict[str, int] = {}
        self.resets = 0

    @property
    def total(self) -> int:
        return sum(self.gaps.values())

    def observe(self, topic: str, seq: int, heartbeat: bool = False) -> int:
        """Account for `seq` on `topic`; returns how many messages were lost just before it."""
        last = self.last.get(topic)
        if last is None:
            self.last[topic] = seq
            return 0
        if heartbeat:
            if seq < last:
                self.resets += 1
                self.last[topic] = seq
                return 0
            lost = seq - last
            self.last[topic] = seq
        else:
            if seq <= last:
                if seq < last:
                    self.resets += 1
                self.last[topic] = seq
                return 0
            lost = seq - last - 1
            self.last[topic] = seq
        if lost:
            self.gaps[topic] = self.gaps.get(topic, 0) + lost
        return lost
