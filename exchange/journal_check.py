"""Checking and repairing a journal file offline (``agora journal verify`` / ``repair``).

Separate from `exchange.journal` because it answers a different question: not "open this
journal and go on", but "what exactly is in this file, and what is wrong with it". It reads the
whole file, and past damage: after a bad record it searches for the next good one (the sync
marker of version 2; a byte-by-byte search in version 1), so one bad record does not hide the
rest. It never writes to the journal it checks; `repair` writes a new file beside it.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import msgpack

from exchange.engine import EPOCH_BITS
from exchange.journal import (
    _MAX_TORN,
    HEADER_SIZE,
    Journal,
    _Frames,
    _is_trade,
    journal_version,
    next_valid,
)

__all__ = ["Damage", "JournalReport", "repair", "verify"]


@dataclass
class Damage:
    """A stretch of the file that holds no good record: where, why, how long."""

    offset: int
    kind: str
    length: int


@dataclass
class JournalReport:
    path: str
    version: int
    size: int
    records: int = 0
    commands: int = 0
    trades: int = 0
    starts: int = 0  # exchange starts (``["E", epoch]`` records: each claims a new epoch)
    epoch: int = 0  # the last epoch started (0: none recorded, or epoch 0)
    last_trade_id: int = 0  # ``epoch << 32 | n`` (see `exchange.engine.EPOCH_BITS`)
    last_ts: int = 0  # the time stamp of the last command (ns since the epoch)
    torn_offset: int | None = None
    torn_bytes: int = 0
    torn_kind: str = ""
    corruption: list[Damage] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return not self.corruption

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["clean"] = self.clean
        out["first_corruption"] = asdict(self.corruption[0]) if self.corruption else None
        return out


def walk(path: Path, emit: Callable[[bytes], None] | None = None) -> JournalReport:
    """Read every good record of `path` (handing each payload to `emit`) and report."""
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(HEADER_SIZE)
        version = journal_version(head)
        report = JournalReport(str(path), version, size)
        start = HEADER_SIZE if version == 2 else 0
        last_trade = last_cmd = last_epoch = b""
        unpackb = msgpack.unpackb
        while True:
            reader = _Frames(f, start, version)
            for _offset, body in reader:
                report.records += 1
                if _is_trade(body):
                    report.trades += 1
                    last_trade = body
                elif body[1:3] == b"\xa1E":
                    report.starts += 1
                    last_epoch = body
                elif body[1:3] != b"\xa1B":
                    report.commands += 1
                    last_cmd = body
                if emit is not None:
                    emit(body)
            if reader.bad is None:
                break
            bad_at, kind = reader.bad
            resync = next_valid(f, bad_at, version, size)
            if resync is None and size - bad_at <= _MAX_TORN:
                report.torn_offset, report.torn_bytes, report.torn_kind = (
                    bad_at, size - bad_at, kind,
                )  # fmt: skip
                break
            end = resync if resync is not None else size
            report.corruption.append(Damage(bad_at, kind, end - bad_at))
            if resync is None:
                break
            start = resync
        if last_trade:
            report.last_trade_id = unpackb(last_trade, raw=False, strict_map_key=False)[1]
        if last_epoch:
            report.epoch = unpackb(last_epoch, raw=False, strict_map_key=False)[1]
        if last_cmd:
            record = unpackb(last_cmd, raw=False, strict_map_key=False)
            if len(record) > 1 and isinstance(record[1], int):
                report.last_ts = record[1]
    return report


def verify(path: Path) -> JournalReport:
    return walk(path)


def repair(path: Path, output: Path) -> JournalReport:
    """Copy every good record of `path` into a new version 2 journal at `output`.

    Refuses to overwrite anything; the original is only read. Records after a skipped stretch
    are kept, but a replay of the copy may differ from what the exchange acknowledged if a
    skipped stretch held commands: the report lists each one for the operator to judge.
    """
    if output.exists():
        raise FileExistsError(f"{output} exists; remove it or choose another --output")
    tmp = output.with_name(output.name + ".partial")
    tmp.unlink(missing_ok=True)
    out = Journal(tmp)
    packed = 0

    def emit(body: bytes) -> None:
        nonlocal packed
        out.append(msgpack.unpackb(body, raw=False, strict_map_key=False))
        packed += 1
        if packed % 10_000 == 0:
            out.commit()

    try:
        report = walk(path, emit)
        out.commit()
        os.fsync(out.fileno())
    finally:
        out.close()
    os.replace(tmp, output)
    return report


def _trade(trade_id: int) -> str:
    epoch, n = trade_id >> EPOCH_BITS, trade_id & ((1 << EPOCH_BITS) - 1)
    return f"{trade_id:,} (trade {n:,} of epoch {epoch:,})" if trade_id else "none"


def describe(report: JournalReport) -> list[str]:
    """The report as lines for a person."""
    from datetime import UTC, datetime

    lines = [
        f"journal {report.path} (format version {report.version}, {report.size:,} bytes)",
        f"  records       {report.records:,} ({report.commands:,} commands, "
        f"{report.trades:,} trades)",
        f"  last trade id {_trade(report.last_trade_id)}",
        f"  starts        {report.starts:,} (last epoch {report.epoch:,})",
    ]
    if report.last_ts:
        when = datetime.fromtimestamp(report.last_ts / 1e9, UTC)
        lines.append(f"  last command  {when:%Y-%m-%d %H:%M:%S.%f} UTC")
    if report.torn_offset is not None:
        lines.append(
            f"  torn tail     {report.torn_bytes:,} bytes at byte {report.torn_offset:,} "
            f"({report.torn_kind}); the exchange moves it to {report.path}.torn on start"
        )
    else:
        lines.append("  torn tail     none")
    if report.clean:
        lines.append("  corruption    none")
    for d in report.corruption:
        lines.append(
            f"  CORRUPT       at byte {d.offset:,}: {d.kind}; {d.length:,} bytes up to the next "
            f"good record"
        )
    return lines
