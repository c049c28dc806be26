"""The exchange's journal: an append-only file of length-prefixed, checksummed msgpack records.

Why a journal and not snapshots: the engine is deterministic, so the commands it accepted (with
the timestamps it saw) *are* its state. Replaying them rebuilds the books, the open orders, the
ids and every sequence number exactly. Trades are journalled too, as records of their own, so
the replay service can page through them without re-running the market.

Record layout: ``<u32 length><u32 crc32 of payload><payload>``, little-endian, payload msgpack.
A process killed mid-write leaves a torn last record (short, or failing its checksum); opening
the journal detects it, truncates the file to the last good record and says so. Nothing after a
torn record can have been acknowledged, because acknowledgements are sent only after the write.

Writes are grouped: `append` buffers, `commit` writes the buffer in one call (and fsyncs when
asked). The exchange commits after every few hundred requests it handles (a few thousand with
fsync) and at the end of each drain of its gateway, always before it sends the replies.
"""

from __future__ import annotations

import os
import struct
import zlib
from array import array
from bisect import bisect_left
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgpack

__all__ = ["Journal", "JournalCorrupt"]

_HEADER = struct.Struct("<II")
_MAX_RECORD = 16 * 1024 * 1024

TRADE_RECORD = "T"  # the record kind whose offsets are indexed for the replay service


class JournalCorrupt(RuntimeError):
    """A bad record that is not at the end of the file: refusing to guess."""


class Journal:
    """Append-only record file. Records are msgpack lists whose first item is a kind string."""

    def __init__(self, path: Path | str, fsync: bool = False) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.fsync = fsync
        self.dropped_bytes = 0  # size of a torn tail removed on open
        self.records = 0
        # Every trade record's id and file offset, in journal order (ids only increase, but
        # are not contiguous across exchange epochs): the replay service bisects and seeks.
        self.trade_ids = array("q")
        self.trade_offsets = array("q")
        self._valid_end = self._scan()
        self._file = open(self.path, "ab")  # noqa: SIM115 (lives as long as the journal)
        self._buffer = bytearray()
        self._packer = msgpack.Packer(use_bin_type=True)
        self._offset = self._valid_end

    # ------------------------------------------------------------------ reading
    def _scan(self) -> int:
        """Index the file and truncate a torn tail; returns the end of the last good record."""
        if not self.path.exists():
            self.path.touch()
            return 0
        end = 0
        for offset, _record, kind in self._iter_raw(0):
            end = offset
            self.records += 1
            if kind == TRADE_RECORD:
                self.trade_ids.append(_record[1])
                self.trade_offsets.append(offset)
        end = self._end_of_good
        size = self.path.stat().st_size
        if size > end:
            self.dropped_bytes = size - end
            with open(self.path, "r+b") as f:
                f.truncate(end)
        return end

    def _iter_raw(self, start: int) -> Iterator[tuple[int, list[Any], str]]:
        """(offset, record, kind) from `start`; stops at a torn or corrupt record."""
        self._end_of_good = start
        with open(self.path, "rb") as f:
            f.seek(start)
            data = f.read()
        pos = 0
        n = len(data)
        while pos + _HEADER.size <= n:
            length, crc = _HEADER.unpack_from(data, pos)
            body_start = pos + _HEADER.size
            body_end = body_start + length
            if length > _MAX_RECORD or body_end > n:
                break
            body = data[body_start:body_end]
            if zlib.crc32(body) != crc:
                if body_end < n and self._looks_valid_after(data, body_end):
                    raise JournalCorrupt(
                        f"{self.path}: checksum mismatch at offset {start + pos}, not at the end"
                    )
                break
            try:
                record = msgpack.unpackb(body, raw=False, strict_map_key=False)
            except Exception as exc:  # a checksummed record that will not parse: our bug
                raise JournalCorrupt(f"{self.path}: unreadable record at {start + pos}") from exc
            yield start + pos, record, record[0]
            pos = body_end
            self._end_of_good = start + pos

    @staticmethod
    def _looks_valid_after(data: bytes, pos: int) -> bool:
        if pos + _HEADER.size > len(data):
            return False
        length, crc = _HEADER.unpack_from(data, pos)
        body = data[pos + _HEADER.size : pos + _HEADER.size + length]
        return len(body) == length and zlib.crc32(body) == crc

    def replay(self) -> Iterator[list[Any]]:
        """Every good record, oldest first (call before appending)."""
        for _offset, record, _kind in self._iter_raw(0):
            yield record

    @property
    def last_trade_id(self) -> int:
        """The newest trade id journalled (0: none)."""
        return self.trade_ids[-1] if self.trade_ids else 0

    def trades_from(self, trade_id: int, max_count: int) -> list[list[Any]]:
        """Up to `max_count` trade records, the first with the smallest id >= `trade_id`.

        Nothing journalled between `trade_id` and the first record returned is left out, so a
        reader that asked from its last id + 1 may treat the first record as its successor.
        """
        index = bisect_left(self.trade_ids, trade_id)
        if index >= len(self.trade_ids):
            return []
        self.commit()
        out: list[list[Any]] = []
        with open(self.path, "rb") as f:
            f.seek(self.trade_offsets[index])
            unpacker_data = f.read(min(_MAX_RECORD, 512 * max_count + 4096))
        pos = 0
        while len(out) < max_count and pos + _HEADER.size <= len(unpacker_data):
            length, _crc = _HEADER.unpack_from(unpacker_data, pos)
            end = pos + _HEADER.size + length
            if end > len(unpacker_data):
                break
            record = msgpack.unpackb(unpacker_data[pos + _HEADER.size : end], raw=False)
            if record[0] == TRADE_RECORD:
                out.append(record)
            pos = end
        return out

    # ------------------------------------------------------------------ writing
    def append(self, record: list[Any]) -> None:
        """Buffer one record; it is durable once `commit` returns."""
        body = self._packer.pack(record)
        if record[0] == TRADE_RECORD:
            self.trade_ids.append(record[1])
            self.trade_offsets.append(self._offset + len(self._buffer))
        self._buffer += _HEADER.pack(len(body), zlib.crc32(body))
        self._buffer += body
        self.records += 1

    def commit(self) -> None:
        """Write what was appended (one write call), then fsync if configured."""
        if not self._buffer:
            return
        self._file.write(self._buffer)
        self._file.flush()
        if self.fsync:
            os.fsync(self._file.fileno())
        self._offset += len(self._buffer)
        self._buffer.clear()

    def close(self) -> None:
        self.commit()
        self._file.close()
