"""The journal file on its own: round trip, fsync, torn tails and corruption."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from exchange.journal import TRADE_RECORD, Journal, JournalCorrupt


def _write(path: Path, records: list[list], fsync: bool = False) -> None:
    j = Journal(path, fsync=fsync)
    for r in records:
        j.append(r)
    j.commit()
    j.close()


RECORDS = [["N", 1, "alice", "c1", "AGR", "buy", "limit", 5, 100, "GTC", False, "cancel_newest"],
           [TRADE_RECORD, 1, "AGR", 100, 5], ["X", 2, "bob", "c2", "AGR", None, "c1"],
           [TRADE_RECORD, 2, "AGR", 101, 1]]  # fmt: skip


@pytest.mark.parametrize("fsync", [False, True])
def test_records_come_back_in_order_and_trades_are_indexed(tmp_path: Path, fsync: bool) -> None:
    path = tmp_path / "j.bin"
    _write(path, RECORDS, fsync=fsync)
    j = Journal(path)
    assert list(j.replay()) == RECORDS
    assert j.records == 4 and j.dropped_bytes == 0
    assert j.trades_from(1, 10) == [RECORDS[1], RECORDS[3]]
    assert j.trades_from(2, 10) == [RECORDS[3]]
    assert j.trades_from(3, 10) == []


def test_commit_fsyncs_only_when_asked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    real = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (calls.append(fd), real(fd)))
    _write(tmp_path / "a.bin", RECORDS, fsync=False)
    assert calls == []
    _write(tmp_path / "b.bin", RECORDS, fsync=True)
    assert len(calls) >= 1


def test_a_torn_tail_is_dropped_and_appending_goes_on(tmp_path: Path) -> None:
    path = tmp_path / "j.bin"
    _write(path, RECORDS)
    good = path.stat().st_size
    with open(path, "ab") as f:
        f.write(b"\x40\x00\x00\x00\x00\x00\x00\x00abc")  # a header promising 64 bytes, then 3
    j = Journal(path)
    assert j.dropped_bytes == 11
    assert path.stat().st_size == good
    j.append(["X", 3, "bob", "c3", "AGR", None, "c2"])
    j.commit()
    j.close()
    assert list(Journal(path).replay())[-1][3] == "c3"


def test_a_bad_record_before_good_ones_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "j.bin"
    _write(path, RECORDS)
    data = bytearray(path.read_bytes())
    data[12] ^= 0xFF  # inside the first record's payload: its checksum fails, later ones pass
    path.write_bytes(bytes(data))
    with pytest.raises(JournalCorrupt):
        Journal(path)
