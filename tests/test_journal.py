"""The journal file on its own: round trip, fsync, torn tails, corruption, versions, resuming."""

from __future__ import annotations

import os
import struct
import zlib
from pathlib import Path

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from exchange.journal import (
    HEADER_SIZE,
    TRADE_RECORD,
    Journal,
    JournalCorrupt,
    TradeIndex,
    read_records,
)
from exchange.journal_check import repair, verify


def _write(path: Path, records: list[list], fsync: bool = False) -> None:
    j = Journal(path, fsync=fsync)
    for r in records:
        j.append(r)
    j.commit()
    j.close()


RECORDS = [["N", 1, "alice", "c1", "AGR", "buy", "limit", 5, 100, "GTC", False, "cancel_newest"],
           [TRADE_RECORD, 1, "AGR", 100, 5], ["X", 2, "bob", "c2", "AGR", None, "c1"],
           [TRADE_RECORD, 2, "AGR", 101, 1]]  # fmt: skip


def _starts(path: Path) -> list[int]:
    """Offsets of each record (version 2: 12-byte frame headers)."""
    data = path.read_bytes()
    out, pos = [], HEADER_SIZE
    while pos < len(data):
        out.append(pos)
        pos += 12 + struct.unpack_from("<I", data, pos + 4)[0]
    return out


@pytest.mark.parametrize("fsync", [False, True])
def test_records_come_back_in_order_and_trades_are_indexed(tmp_path: Path, fsync: bool) -> None:
    path = tmp_path / "j.bin"
    _write(path, RECORDS, fsync=fsync)
    j = Journal(path)
    assert list(j.replay()) == RECORDS
    assert j.records == 4 and j.dropped_bytes == 0 and j.version == 2
    assert j.trades_from(1, 10) == [RECORDS[1], RECORDS[3]]
    assert j.trades_from(2, 10) == [RECORDS[3]]
    assert j.trades_from(3, 10) == []


def test_commit_fsyncs_only_when_asked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    real = os.fsync
    for name, fsync in (("a.bin", False), ("b.bin", True)):
        j = Journal(tmp_path / name, fsync=fsync)  # (creating the file syncs its header)
        monkeypatch.setattr(os, "fsync", lambda fd: (calls.append(fd), real(fd)))
        for r in RECORDS:
            j.append(r)
        j.commit()
        assert (len(calls) >= 1) == fsync
        assert j.sync() is (not fsync)  # with fsync on, nothing is left to sync
        monkeypatch.setattr(os, "fsync", real)
        j.close()
        calls.clear()


def test_sync_fsyncs_what_was_committed_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    j = Journal(tmp_path / "j")
    calls: list[int] = []
    monkeypatch.setattr(os, "fsync", lambda fd: calls.append(fd))
    j.append(RECORDS[0])
    assert j.sync() is False  # appended, not committed: nothing written to sync
    j.commit()
    assert j.synced < j.committed
    assert j.sync() is True and j.synced == j.committed and len(calls) == 1
    assert j.sync() is False and len(calls) == 1


def test_a_torn_tail_is_moved_aside_not_destroyed(tmp_path: Path) -> None:
    path = tmp_path / "j.bin"
    _write(path, RECORDS)
    good = path.stat().st_size
    torn = b"\x40\x00\x00\x00\x00\x00\x00\x00abc"  # a header promising 64 bytes, then 3
    with open(path, "ab") as f:
        f.write(torn)
    j = Journal(path)
    assert (j.dropped_bytes, j.torn_offset) == (11, good)
    assert path.stat().st_size == good
    assert j.torn_path == tmp_path / "j.bin.torn" and j.torn_path.read_bytes() == torn
    j.append(["X", 3, "bob", "c3", "AGR", None, "c2"])
    j.commit()
    j.close()
    assert list(Journal(path).replay())[-1][3] == "c3"
    # A second torn tail never overwrites the first one's bytes.
    with open(path, "ab") as f:
        f.write(b"\xa7\x1e")
    assert Journal(path).torn_path == tmp_path / "j.bin.torn.1"
    assert (tmp_path / "j.bin.torn").read_bytes() == torn


def test_a_last_record_cut_inside_its_payload_is_a_torn_tail(tmp_path: Path) -> None:
    path = tmp_path / "j.bin"
    _write(path, RECORDS)
    last = _starts(path)[-1]
    data = path.read_bytes()
    path.write_bytes(data[:-3])  # the kill came three bytes before the end of the write
    j = Journal(path)
    assert j.records == 3 and j.torn_offset == last and j.dropped_bytes == len(data) - 3 - last


def test_zeros_after_the_last_record_are_a_torn_tail(tmp_path: Path) -> None:
    path = tmp_path / "j.bin"
    _write(path, RECORDS)
    with open(path, "ab") as f:
        f.write(bytes(4096))  # a file extended by a crash before its data reached the disk
    j = Journal(path)
    assert j.records == 4 and j.dropped_bytes == 4096


def test_a_bad_checksum_before_good_records_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "j.bin"
    _write(path, RECORDS)
    before = path.read_bytes()
    data = bytearray(before)
    data[HEADER_SIZE + 14] ^= 0xFF  # inside the first record's payload
    path.write_bytes(bytes(data))
    with pytest.raises(JournalCorrupt) as err:
        Journal(path)
    assert err.value.offset == HEADER_SIZE and "checksum" in err.value.kind
    assert str(path) in str(err.value) and "agora journal verify" in str(err.value)
    assert path.read_bytes() == bytes(data)  # nothing cut


def test_a_bad_length_in_the_middle_is_corruption_not_a_torn_tail(tmp_path: Path) -> None:
    path = tmp_path / "j.bin"
    records = [[TRADE_RECORD, i, "AGR", 100, 1] for i in range(1, 600)]
    _write(path, records)
    second = _starts(path)[1]
    data = bytearray(path.read_bytes())
    struct.pack_into("<I", data, second + 4, 9_999)  # a length pointing into later records
    path.write_bytes(bytes(data))
    with pytest.raises(JournalCorrupt) as err:
        Journal(path)
    assert err.value.offset == second
    assert path.read_bytes() == bytes(data)
    assert not (tmp_path / "j.bin.torn").exists()


def test_verify_and_repair_keep_every_good_record_past_the_damage(tmp_path: Path) -> None:
    path = tmp_path / "j.bin"
    records = [[TRADE_RECORD, i, "AGR", 100, 1] for i in range(1, 101)]
    _write(path, records)
    starts = _starts(path)
    data = bytearray(path.read_bytes())
    data[starts[10] + 13] ^= 0x01  # record 11 (trade 11) damaged
    data += b"\xa7\x1e\x5a\xc3\x20"  # and a torn tail
    path.write_bytes(bytes(data))
    report = verify(path)
    assert not report.clean and report.records == 99 and report.trades == 99
    assert report.corruption[0].offset == starts[10] and report.corruption[0].kind == (
        "checksum mismatch"
    )
    assert report.torn_bytes == 5 and report.last_trade_id == 100
    out = tmp_path / "j.bin.repaired"
    repair(path, out)
    assert path.read_bytes() == bytes(data)  # the original untouched
    fixed = Journal(out)
    assert [r[1] for r in fixed.replay()] == [i for i in range(1, 101) if i != 11]
    assert verify(out).clean and verify(out).torn_bytes == 0
    with pytest.raises(FileExistsError):
        repair(path, out)


def _v1(path: Path, records: list[list]) -> None:
    with open(path, "wb") as f:
        for r in records:
            body = msgpack.packb(r, use_bin_type=True)
            f.write(struct.pack("<II", len(body), zlib.crc32(body)) + body)


def test_version_1_journals_still_load_and_grow_in_their_own_format(tmp_path: Path) -> None:
    path = tmp_path / "old.bin"
    _v1(path, RECORDS)
    with open(path, "ab") as f:
        f.write(b"\x40\x00\x00\x00\x12\x34")  # torn
    j = Journal(path)
    assert j.version == 1 and list(j.replay()) == RECORDS and j.dropped_bytes == 6
    j.append(["X", 3, "bob", "c3", "AGR", None, "c2"])
    j.close()
    again = Journal(path)
    assert again.version == 1 and again.records == 5 and again.trades_from(2, 5) == [RECORDS[3]]
    assert verify(path).clean and verify(path).records == 5


def test_version_1_corruption_is_found_by_searching_byte_by_byte(tmp_path: Path) -> None:
    path = tmp_path / "old.bin"
    _v1(path, RECORDS)
    data = bytearray(path.read_bytes())
    data[0] = 0xEE  # the first record's length
    path.write_bytes(bytes(data))
    with pytest.raises(JournalCorrupt) as err:
        Journal(path)
    assert err.value.offset == 0
    assert verify(path).records == 3


def test_resuming_at_a_position_reads_only_what_follows(tmp_path: Path) -> None:
    path = tmp_path / "j.bin"
    _write(path, RECORDS[:2])
    j = Journal(path)
    pos = j.position()
    for r in RECORDS[2:]:
        j.append(r)
    j.close()
    resumed = Journal(path, resume=pos)
    assert resumed.resume_refused is None and resumed.start_records == 2
    assert list(resumed.replay()) == RECORDS[2:]
    assert resumed.records == 4 and resumed.trades_from(1, 5) == [RECORDS[1], RECORDS[3]]
    # Another journal (same contents, new identity) is not the one the position was taken in.
    other = tmp_path / "k.bin"
    _write(other, RECORDS)
    refused = Journal(other, resume=pos)
    assert refused.resume_refused is not None and list(refused.replay()) == RECORDS


@settings(max_examples=30, deadline=None)
@given(
    kinds=st.lists(st.booleans(), min_size=1, max_size=900),
    first=st.integers(1, 1000),
    count=st.integers(1, 400),
    cut=st.integers(0, 900),
)
def test_trade_pages_match_a_full_index(
    tmp_path_factory: pytest.TempPathFactory, kinds: list[bool], first: int, count: int, cut: int
) -> None:
    """The sparse index pages exactly like a list of every trade, across a resumed open."""
    TradeIndex.STRIDE = 16  # small strides: many blocks in a small test
    try:
        path = tmp_path_factory.mktemp("t") / "j.bin"
        j = Journal(path)
        trades: list[list] = []
        pos = None
        for i, is_trade in enumerate(kinds):
            if i == cut:
                pos = j.position()
            if is_trade:
                # ids only increase but jump at each new exchange epoch (epoch << 32)
                epoch = sum(1 for k in kinds[:i] if not k) // 7
                trades.append([TRADE_RECORD, (epoch << 32) + len(trades) + 1, {"n": i}])
                j.append(trades[-1])
            else:
                j.append(["A", i])
        j.close()
        again = Journal(path, resume=pos)
        assert len(again.trade_offsets) == len(trades)
        assert again.last_trade_id == (trades[-1][1] if trades else 0)
        # paged by id: from an id that was issued, and from just after one (the next issued)
        if trades:
            tid = trades[(first - 1) % len(trades)][1]
            at = [t[1] for t in trades].index(tid)
            assert again.trades_from(tid, count) == trades[at : at + count]
            assert again.trades_from(tid + 1, count) == trades[at + 1 : at + 1 + count]
        assert again.trades_from(again.last_trade_id + 1, count) == []
    finally:
        TradeIndex.STRIDE = 256


def test_epoch_records_count_as_starts_and_every_record_reads_back_read_only(
    tmp_path: Path,
) -> None:
    path = tmp_path / "j.bin"
    e1 = 1 << 32
    records = [
        ["E", 0], ["N", 5, "a", "c1", "AGR", "buy", "limit", 1, 100, "GTC", False, "cancel_newest"],
        [TRADE_RECORD, 1, {}], ["E", 1], [TRADE_RECORD, e1 + 1, {}], ["B", "AGR", 3],
    ]  # fmt: skip
    j = Journal(path)
    for r in records:
        j.append(r)
    pos = j.position()
    last = ["X", 9, "a", "c2", "AGR", None, "c1"]
    j.append(last)
    j.close()
    report = verify(path)
    assert (report.records, report.commands, report.trades) == (7, 2, 2)
    assert (report.starts, report.epoch, report.last_trade_id) == (2, 1, e1 + 1)
    assert report.last_ts == 9  # a command's time stamp, never an epoch record's number
    resumed = Journal(path, resume=pos)
    assert list(resumed.replay()) == [last] and resumed.last_trade_id == e1 + 1
    resumed.close()
    with open(path, "ab") as f:  # a record still being written
        f.write(b"\xa7\x1e\x5a\xc3\x40\x00")
    size = path.stat().st_size
    assert list(read_records(path)) == [*records, last]  # from the first, whatever snapshot
    assert path.stat().st_size == size and not path.with_name("j.bin.torn").exists()


def test_a_header_cut_short_is_moved_aside_and_the_journal_starts_afresh(tmp_path: Path) -> None:
    path = tmp_path / "j.bin"
    path.write_bytes(b"AGORAJ\x02")  # killed while creating the file
    j = Journal(path)
    assert j.version == 2 and j.records == 0 and j.dropped_bytes == 7
    assert (tmp_path / "j.bin.torn").read_bytes() == b"AGORAJ\x02"
    j.append(RECORDS[0])
    j.close()
    assert list(Journal(path).replay()) == [RECORDS[0]]
