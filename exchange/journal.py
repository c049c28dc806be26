"""The exchange's journal: an append-only file of framed, checksummed msgpack records.

Why a journal: the engine is deterministic, so the commands it accepted (with the timestamps it
saw) *are* its state. Replaying them rebuilds the books, the open orders, the ids and every
sequence number exactly. Trades are journalled too, as records of their own, so the replay
service can page through them without re-running the market. Snapshots (`exchange.snapshot`)
only shorten the replay: they say "the state after the first N records", and the journal stays
the record of truth.

Format version 2 (every journal this code creates)::

    file header  b"AGORAJ\\x02\\n" + 8 random bytes (the journal's identity)
    record       SYNC (4 bytes) | u32 length | u32 crc32(payload, seeded with length) | payload

The sync marker is what lets a reader tell the two ways a record can be bad:

* a **torn tail**: a process killed mid-write leaves an incomplete last record and nothing valid
  after it. Nothing in it was ever acknowledged (acknowledgements follow the write), so it is
  dropped, but never silently and never destroyed: the bytes are moved to ``PATH.torn`` first.
* **corruption**: a record whose length or checksum is wrong with valid records after it (found
  by searching for the next sync marker). That is damage, not an interrupted write; the journal
  refuses to open (`JournalCorrupt`) and the operator runs ``agora journal verify`` / ``repair``.

Version 1 journals (no file header, records ``u32 length | u32 crc32(payload) | payload``) still
open and keep being appended in version 1; their resync is a byte-by-byte search, slower but
only ever run on damage. ``agora journal repair`` writes any journal out as version 2.

Writes are grouped: `append` buffers, `commit` writes the buffer in one call (and fsyncs when
the journal was opened with ``fsync=True``); `sync` fsyncs what was written (group commit).
"""

from __future__ import annotations

import os
import struct
import zlib
from array import array
from bisect import bisect_right
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import msgpack

__all__ = [
    "FILE_MAGIC",
    "Journal",
    "JournalCorrupt",
    "Position",
    "TradeIndex",
    "journal_version",
    "read_records",
    "records_at",
]

FILE_MAGIC = b"AGORAJ\x02\n"
HEADER_SIZE = 16  # magic + journal id
SYNC = b"\xa7\x1e\x5a\xc3"
_REC2 = struct.Struct("<4sII")  # sync, length, crc32(payload, length)
_REC1 = struct.Struct("<II")  # length, crc32(payload)
_MAX_RECORD = 16 * 1024 * 1024
_MAX_TORN = 64 * 1024 * 1024  # more unreadable bytes than one commit can write: not a torn write
_CHUNK = 4 * 1024 * 1024

TRADE_RECORD = "T"  # the record kind whose offsets are indexed for the replay service


class JournalCorrupt(RuntimeError):
    """A bad record that is not at the end of the file: refusing to guess."""

    def __init__(self, path: Path, offset: int, kind: str) -> None:
        self.path, self.offset, self.kind = path, offset, kind
        super().__init__(
            f"journal {path} is corrupt at byte {offset:,} ({kind}) with valid records after "
            f"it; run `agora journal verify {path}` and `agora journal repair {path}`"
        )


def journal_version(head: bytes) -> int:
    """2 for a file that starts with the version 2 header, else 1 (the headerless format)."""
    return 2 if head[:8] == FILE_MAGIC else 1


def _is_trade(body: bytes) -> bool:
    # ["T", trade_id, capture]: a fixarray header, then the fixstr "T"
    return body[1:3] == b"\xa1T"


_UINT = {0xCC: 1, 0xCD: 2, 0xCE: 4, 0xCF: 8}


def _trade_id(body: bytes) -> int:
    """The id of a trade record (`_is_trade`), read without unpacking the capture: a positive
    fixint or an unsigned msgpack integer (ids carry the epoch in their high bits)."""
    head = body[3]
    if head < 0x80:
        return head
    size = _UINT.get(head)
    if size is None:  # (never written by the engine; unpack rather than guess)
        return int(msgpack.unpackb(body, raw=False, strict_map_key=False)[1])
    return int.from_bytes(body[4 : 4 + size], "big")


class _Frames:
    """Records of one journal file from an offset, read in large chunks.

    Iterating yields ``(offset, payload)`` of each good record and stops at the end of the file
    or at the first bad record; then `bad` is ``(offset, what is wrong)`` or None, and `end` is
    the end of the last good record.
    """

    def __init__(
        self, f: BinaryIO, start: int, version: int, limit: int | None = None,
        verify: bool = True,
    ) -> None:  # fmt: skip
        self.f, self.version = f, version
        self.verify = verify  # False: records this process has already checked
        self.limit = limit  # read no further than this offset (committed data only)
        f.seek(start)
        self.base = start  # file offset of buf[0]
        self.buf = b""
        self.pos = 0
        self.end = start
        self.bad: tuple[int, str] | None = None
        self.crc = 0  # the stored checksum of the last record yielded

    def _fill(self, need: int) -> bool:
        if len(self.buf) - self.pos >= need:
            return True
        want = max(_CHUNK, need)
        if self.limit is not None:
            want = min(want, self.limit - self.base - len(self.buf))
        more = self.f.read(want) if want > 0 else b""
        self.base += self.pos
        self.buf = self.buf[self.pos :] + more
        self.pos = 0
        return len(self.buf) >= need

    def __iter__(self) -> Iterator[tuple[int, bytes]]:
        v2 = self.version == 2
        hs = _REC2.size if v2 else _REC1.size
        crc32 = zlib.crc32
        while True:
            if not self._fill(hs):
                if len(self.buf) > self.pos:
                    self.bad = (self.base + self.pos, "incomplete record header")
                return
            buf, pos = self.buf, self.pos
            if v2:
                sync, length, crc = _REC2.unpack_from(buf, pos)
                if sync != SYNC:
                    self.bad = (self.base + pos, "no record marker")
                    return
            else:
                length, crc = _REC1.unpack_from(buf, pos)
            if length == 0 or length > _MAX_RECORD:
                self.bad = (self.base + pos, f"impossible record length {length:,}")
                return
            if not self._fill(hs + length):
                self.bad = (self.base + self.pos, "record runs past the end of the file")
                return
            buf, pos = self.buf, self.pos
            body = buf[pos + hs : pos + hs + length]
            if self.verify and (crc32(body, length) if v2 else crc32(body)) != crc:
                self.bad = (self.base + pos, "checksum mismatch")
                return
            self.pos = pos + hs + length
            self.end = self.base + self.pos
            self.crc = crc
            yield self.base + pos, body


def next_valid(f: BinaryIO, offset: int, version: int, size: int) -> int | None:
    """The offset of the first good record after `offset` (a bad one), or None."""
    step = _CHUNK
    pos = offset + 1
    while pos < size:
        f.seek(pos)
        window = f.read(step + 16)
        if not window:
            return None
        if version == 2:
            i = window.find(SYNC)
            while i != -1 and i < step:
                if _good_at(f, pos + i, version, size):
                    return pos + i
                i = window.find(SYNC, i + 1)
        else:
            for i in range(min(step, len(window))):
                length = int.from_bytes(window[i : i + 4], "little")
                if (
                    0 < length <= _MAX_RECORD
                    and pos + i + 8 + length <= size
                    and _good_at(f, pos + i, version, size)
                ):
                    return pos + i
        pos += step
    return None


def _good_at(f: BinaryIO, offset: int, version: int, size: int) -> bool:
    reader = _Frames(f, offset, version, limit=size)
    for _off, body in reader:
        try:  # a record must also be a msgpack list starting with a kind string
            record = msgpack.unpackb(body, raw=False, strict_map_key=False)
        except Exception:
            return False
        return isinstance(record, list) and bool(record) and isinstance(record[0], str)
    return False


@dataclass(frozen=True)
class Position:
    """Where a snapshot left the journal: enough to resume reading and to check it is the same
    file (its identity, and the checksum of the record that ends at `offset`)."""

    offset: int
    records: int
    journal_id: bytes
    last_start: int  # offset of the last record covered (-1: none)
    last_crc: int
    trades: int
    trade_marks: bytes  # TradeIndex.marks as bytes
    trade_mark_ids: bytes  # TradeIndex.mark_ids as bytes
    last_trade_id: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "offset": self.offset, "records": self.records, "journal_id": self.journal_id,
            "last_start": self.last_start, "last_crc": self.last_crc, "trades": self.trades,
            "trade_marks": self.trade_marks, "trade_mark_ids": self.trade_mark_ids,
            "last_trade_id": self.last_trade_id,
        }  # fmt: skip


class TradeIndex:
    """Where trades are in the file: the id and offset of every `STRIDE`-th trade record.

    A full index (16 bytes per trade) grew without bound; a sparse one costs 16 bytes per
    `STRIDE` trades and a short forward scan per replay request. Trade ids only increase along
    the file but are not contiguous (each exchange epoch starts at ``epoch << 32``), so a page
    is found by bisecting the marks' ids, never by arithmetic on the id. `len()` is the trade
    count; `last_id` the newest id (0: none).
    """

    STRIDE = 256

    def __init__(
        self, count: int = 0, marks: bytes = b"", mark_ids: bytes = b"", last_id: int = 0
    ) -> None:
        self.count = count
        self.last_id = last_id
        self.marks = array("q")
        self.marks.frombytes(marks)
        self.mark_ids = array("q")
        self.mark_ids.frombytes(mark_ids)

    def __len__(self) -> int:
        return self.count

    def add(self, offset: int, trade_id: int) -> None:
        if self.count % self.STRIDE == 0:
            self.marks.append(offset)
            self.mark_ids.append(trade_id)
        self.count += 1
        self.last_id = trade_id

    def start(self, trade_id: int) -> int | None:
        """The offset of an indexed trade at or before the first trade whose id is >=
        `trade_id` (None: no such trade)."""
        if not self.count or trade_id > self.last_id:
            return None
        block = bisect_right(self.mark_ids, trade_id) - 1
        return self.marks[max(block, 0)]


@dataclass
class _Scan:
    records: int = 0
    end: int = 0
    last_start: int = -1
    last_crc: int = 0
    torn: int = 0
    trades: TradeIndex = field(default_factory=TradeIndex)


class Journal:
    """Append-only record file. Records are msgpack lists whose first item is a kind string.

    Opening reads the file from `resume` (a snapshot's `Position`, if it matches this file) or
    from the start, indexes the trades, and deals with the end: a torn tail is moved to
    ``PATH.torn`` and cut off (`dropped_bytes`, `torn_path`); corruption raises `JournalCorrupt`.
    `resume_refused` says why a given position was not used (then everything was read).
    """

    def __init__(
        self, path: Path | str, fsync: bool = False, resume: Position | None = None
    ) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.fsync = fsync
        self.dropped_bytes = 0  # size of a torn tail moved aside on open
        self.torn_offset = 0
        self.torn_path: Path | None = None
        self.torn_kind = ""
        self.resume_refused: str | None = None
        self._open_header()
        if resume is not None:
            self.resume_refused = self._check(resume)
            if self.resume_refused is not None:
                resume = None
        self.start = resume.offset if resume is not None else self._first
        self.start_records = resume.records if resume is not None else 0
        scan = _Scan(records=self.start_records, end=self.start)
        if resume is not None:
            scan.trades = TradeIndex(
                resume.trades, resume.trade_marks, resume.trade_mark_ids, resume.last_trade_id
            )
            scan.last_start, scan.last_crc = resume.last_start, resume.last_crc
        self._scan(scan)
        self.records = scan.records
        self.trade_offsets = scan.trades  # (the name the replay service knew it by)
        self._last_start, self._last_crc = scan.last_start, scan.last_crc
        self._file = open(self.path, "ab")  # noqa: SIM115 (lives as long as the journal)
        self._buffer = bytearray()
        self._packer = msgpack.Packer(use_bin_type=True)
        self._offset = scan.end  # end of what was written (committed)
        self.synced = scan.end  # end of what is known to be on disk (fsynced)

    # ------------------------------------------------------------------ opening
    def _open_header(self) -> None:
        """Version and identity; a new (or empty) file gets a version 2 header."""
        size = self.path.stat().st_size if self.path.exists() else 0
        head = b""
        if size:
            with open(self.path, "rb") as f:
                head = f.read(HEADER_SIZE + _REC2.size)
        if size == 0 or (size < HEADER_SIZE and FILE_MAGIC.startswith(head[: len(FILE_MAGIC)])):
            if size:  # a header cut short by a kill right after creation
                self._move_aside(0, head)
                self.dropped_bytes, self.torn_kind = size, "incomplete file header"
            with open(self.path, "wb") as f:
                f.write(FILE_MAGIC + os.urandom(8))
                f.flush()
                os.fsync(f.fileno())
            _fsync_dir(self.path.parent)
            with open(self.path, "rb") as f:
                head = f.read(HEADER_SIZE)
        self.version = journal_version(head)
        if self.version == 2:
            self.journal_id = head[8:HEADER_SIZE]
            self._first = HEADER_SIZE
        else:
            if head[HEADER_SIZE : HEADER_SIZE + 4] == SYNC:
                raise JournalCorrupt(self.path, 0, "damaged file header")
            self.journal_id = b""
            self._first = 0

    def _check(self, pos: Position) -> str | None:
        """None if `pos` describes this file, else why not."""
        if pos.journal_id != self.journal_id:
            return "the snapshot belongs to another journal"
        size = self.path.stat().st_size
        if pos.offset > size:
            return f"the journal ({size:,} bytes) is shorter than the snapshot ({pos.offset:,})"
        if pos.last_start < 0:
            return None if pos.offset == self._first else "the snapshot's last record is unknown"
        with open(self.path, "rb") as f:
            reader = _Frames(f, pos.last_start, self.version, limit=pos.offset)
            for _off, _body in reader:
                if reader.crc != pos.last_crc or reader.end != pos.offset:
                    break
                return None
        return "the journal's record at the snapshot's end differs"

    def _scan(self, scan: _Scan) -> None:
        size = self.path.stat().st_size
        trades = scan.trades
        with open(self.path, "rb") as f:
            reader = _Frames(f, scan.end, self.version)
            n = 0
            for offset, body in reader:
                n += 1
                if _is_trade(body):
                    trades.add(offset, _trade_id(body))
                scan.last_start = offset
            scan.records += n
            scan.end = reader.end
            if n:
                scan.last_crc = reader.crc
            if reader.bad is None:
                return
            bad_at, kind = reader.bad
            resync = next_valid(f, bad_at, self.version, size)
            if resync is not None or size - bad_at > _MAX_TORN:
                raise JournalCorrupt(self.path, bad_at, kind)
            f.seek(bad_at)
            torn = f.read()
        self._move_aside(bad_at, torn)
        with open(self.path, "r+b") as f:
            f.truncate(bad_at)
            os.fsync(f.fileno())
        self.dropped_bytes, self.torn_offset = len(torn), bad_at
        self.torn_kind = kind

    def _move_aside(self, offset: int, data: bytes) -> None:
        """Keep bytes about to be cut off the journal in ``PATH.torn`` (never overwritten)."""
        target = self.path.with_name(self.path.name + ".torn")
        i = 1
        while target.exists():
            target = self.path.with_name(f"{self.path.name}.torn.{i}")
            i += 1
        with open(target, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        _fsync_dir(self.path.parent)
        self.torn_path = target

    # ------------------------------------------------------------------ reading
    def replay(self) -> Iterator[list[Any]]:
        """Every record from where opening started (a snapshot's end, or the beginning)."""
        unpackb = msgpack.unpackb
        with open(self.path, "rb") as f:
            # (opening checked every record up to here: no second checksum pass)
            reader = _Frames(f, self.start, self.version, limit=self._offset, verify=False)
            for _offset, body in reader:
                yield unpackb(body, raw=False, strict_map_key=False)

    @property
    def last_trade_id(self) -> int:
        """The newest trade id journalled (0: none)."""
        return self.trade_offsets.last_id

    def position(self) -> Position:
        """Where the journal ends (after a commit): what a snapshot of the state now covers."""
        self.commit()
        return Position(
            self._offset, self.records, self.journal_id, self._last_start, self._last_crc,
            len(self.trade_offsets), self.trade_offsets.marks.tobytes(),
            self.trade_offsets.mark_ids.tobytes(), self.trade_offsets.last_id,
        )  # fmt: skip

    def trades_from(self, trade_id: int, max_count: int) -> list[list[Any]]:
        """Up to `max_count` trade records, the first with the smallest id >= `trade_id`.

        Nothing journalled between `trade_id` and the first record returned is left out, so a
        reader that asked from its last id + 1 may treat the first record as its successor.
        """
        if max_count <= 0:
            return []
        self.commit()
        offset = self.trade_offsets.start(trade_id)
        if offset is None:
            return []
        out: list[list[Any]] = []
        unpackb = msgpack.unpackb
        with open(self.path, "rb") as f:
            reader = _Frames(f, offset, self.version, limit=self._offset)
            for _off, body in reader:
                if not _is_trade(body) or _trade_id(body) < trade_id:
                    continue
                out.append(unpackb(body, raw=False, strict_map_key=False))
                if len(out) >= max_count:
                    break
        if reader.bad is not None and len(out) < max_count:
            # damage before the snapshot this journal was opened from (opening did not read
            # that far): say so rather than serve a short page forever
            raise JournalCorrupt(self.path, *reader.bad)
        return out

    # ------------------------------------------------------------------ writing
    def append(self, record: list[Any]) -> None:
        """Buffer one record; it is written by `commit` (and on disk after an fsync)."""
        body = self._packer.pack(record)
        start = self._offset + len(self._buffer)
        if record[0] == TRADE_RECORD:
            self.trade_offsets.add(start, int(record[1]))
        n = len(body)
        crc = zlib.crc32(body, n) if self.version == 2 else zlib.crc32(body)
        if self.version == 2:
            self._buffer += _REC2.pack(SYNC, n, crc)
        else:
            self._buffer += _REC1.pack(n, crc)
        self._buffer += body
        self._last_start = start
        self._last_crc = crc
        self.records += 1

    def commit(self) -> None:
        """Write what was appended (one write call), then fsync if configured."""
        if not self._buffer:
            return
        self._file.write(self._buffer)
        self._file.flush()
        self._offset += len(self._buffer)
        self._buffer.clear()
        if self.fsync:
            os.fsync(self._file.fileno())
            self.synced = self._offset

    def sync(self) -> bool:
        """fsync what was committed and not yet synced; whether there was anything."""
        if self.synced >= self._offset:
            return False
        os.fsync(self._file.fileno())
        self.synced = self._offset
        return True

    @property
    def committed(self) -> int:
        """End offset of what was written to the file (not necessarily synced)."""
        return self._offset

    def fileno(self) -> int:
        return self._file.fileno()

    def close(self) -> None:
        self.commit()
        self._file.close()


def read_records(path: Path | str) -> Iterator[list[Any]]:
    """Every good record of a journal file from its first, read only: whatever snapshot the
    exchange restarts from, and safe while the exchange is writing (a `Journal` would move a
    record still being written aside as a torn tail). Stops at the first bad record; ``agora
    journal verify`` is the tool that reads past damage."""
    for _offset, record in records_at(path):
        yield record


def records_at(path: Path | str) -> Iterator[tuple[int, list[Any]]]:
    """`read_records` with each record's file offset (where a cut would end the file)."""
    unpackb = msgpack.unpackb
    with open(path, "rb") as f:
        version = journal_version(f.read(HEADER_SIZE))
        for offset, body in _Frames(f, HEADER_SIZE if version == 2 else 0, version):
            yield offset, unpackb(body, raw=False, strict_map_key=False)


def _fsync_dir(path: Path) -> None:
    """Make a create/rename in `path` durable (a no-op where directories cannot be opened)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
