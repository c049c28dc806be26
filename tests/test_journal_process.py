"""The journal at the process level: refusing a corrupt journal, the `agora journal` commands,
restarting from a snapshot, and group commit, on real processes on 127.0.0.1."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import zmq
from wire import SnapshotClient, WireClient

from deploy.launch import start_exchange
from exchange.journal import HEADER_SIZE, records_at
from exchange.protocol import NewOrder

SYM = "AGR"


@pytest.fixture
def ctx() -> Iterator[zmq.Context]:
    context = zmq.Context()
    yield context
    context.destroy(linger=0)


def limit(clid: str, side: str, qty: int, price: int) -> NewOrder:
    return NewOrder(client_order_id=clid, symbol=SYM, side=side, order_type="limit", qty=qty,
                    price=price)  # fmt: skip


def _trade_some(data: Path, ctx: zmq.Context, n: int = 6, **env: str) -> None:
    """A few resting orders and trades, then a clean stop."""
    proc = start_exchange(data, **env)
    try:
        c = WireClient(ctx, proc.ready["gateway"], "t")
        for i in range(n):
            c.send(limit(f"s{i}", "sell", 2, 10_000 + i))
            c.wait_for_order(f"s{i}", "new")
        for i in range(n // 2):
            c2 = WireClient(ctx, proc.ready["gateway"], f"b{i}")
            c2.send(limit(f"b{i}", "buy", 1, 10_010))
            c2.wait_for_order(f"b{i}", "trade")
    finally:
        proc.stop()
    assert proc.returncode == 0


def _record_starts(path: Path) -> list[int]:
    data = path.read_bytes()
    out, pos = [], HEADER_SIZE
    while pos < len(data):
        out.append(pos)
        pos += 12 + int.from_bytes(data[pos + 4 : pos + 8], "little")
    return out


def _env(data: Path) -> dict[str, str]:
    return {**os.environ, "AGORA_EXCHANGE_DATA_DIR": str(data), "AGORA_EXCHANGE_LOG_JSON": "1",
            "AGORA_EXCHANGE_GATEWAY_BIND": "tcp://127.0.0.1:*",
            "AGORA_EXCHANGE_FEED_BIND": "tcp://127.0.0.1:*",
            "AGORA_EXCHANGE_SNAPSHOT_BIND": "tcp://127.0.0.1:*",
            "AGORA_EXCHANGE_DROPCOPY_BIND": "tcp://127.0.0.1:*"}  # fmt: skip


@pytest.mark.parametrize("command", ["python -m exchange", "agora exchange"])
def test_a_corrupt_journal_stops_the_exchange_with_one_line(
    tmp_path: Path, ctx: zmq.Context, command: str
) -> None:
    data = tmp_path / "ex"
    _trade_some(data, ctx)
    journal = data / "exchange.journal"
    third = _record_starts(journal)[2]
    raw = bytearray(journal.read_bytes())
    raw[third + 4] ^= 0x40  # a bad length in the middle: the case once taken for a torn tail
    journal.write_bytes(bytes(raw))
    argv = ([sys.executable, "-m", "exchange"] if command == "python -m exchange"
            else [sys.executable, "-m", "deploy.cli", "exchange"])  # fmt: skip
    done = subprocess.run(argv, env=_env(data), capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, done.stderr
    assert str(journal) in lines[0] and f"byte {third:,}" in lines[0]
    assert "agora journal verify" in lines[0] and "agora journal repair" in lines[0]
    assert "Traceback" not in done.stderr and "AGORA_READY" not in done.stdout
    assert journal.read_bytes() == bytes(raw)  # nothing cut
    assert not list(data.glob("*.torn*"))


def test_a_torn_tail_is_moved_aside_and_logged_with_its_offset(
    tmp_path: Path, ctx: zmq.Context
) -> None:
    data = tmp_path / "ex"
    _trade_some(data, ctx)
    journal = data / "exchange.journal"
    size = journal.stat().st_size
    with open(journal, "ab") as f:
        f.write(b"\xa7\x1e\x5a\xc3\x40\x00\x00\x00\x12")  # a record cut by a kill
    again = start_exchange(data)
    try:
        line = again.wait_log(lambda s: "journal_torn_tail_dropped" in s)
        event = json.loads(line)
        assert (event["offset"], event["bytes"]) == (size, 9)
        assert event["kept_in"] == str(data / "exchange.journal.torn")
        # the torn bytes are gone: after the good records comes this start's epoch record
        offset, record = list(records_at(journal))[-1]
        assert offset == size and record[0] == "E"
        assert (data / "exchange.journal.torn").read_bytes().startswith(b"\xa7\x1e\x5a\xc3")
    finally:
        again.stop()


def _agora(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "deploy.cli", "journal", *args],
                          capture_output=True, text=True, timeout=120)  # fmt: skip


def test_agora_journal_verify_and_repair_on_a_corrupted_copy(
    tmp_path: Path, ctx: zmq.Context
) -> None:
    data = tmp_path / "ex"
    _trade_some(data, ctx, n=10)
    original = data / "exchange.journal"
    clean = _agora("verify", str(original), "--json")
    assert clean.returncode == 0, clean.stderr
    facts = json.loads(clean.stdout)
    assert facts["clean"] and facts["trades"] == 5 and facts["last_trade_id"] == 5
    assert facts["torn_bytes"] == 0 and facts["first_corruption"] is None

    copy = tmp_path / "copy.journal"
    shutil.copy(original, copy)
    starts = _record_starts(copy)
    raw = bytearray(copy.read_bytes())
    raw[starts[4] + 13] ^= 0xFF
    copy.write_bytes(bytes(raw))
    digest = hashlib.sha256(copy.read_bytes()).hexdigest()

    bad = _agora("verify", str(copy), "--json")
    assert bad.returncode == 1
    facts = json.loads(bad.stdout)
    assert facts["first_corruption"]["offset"] == starts[4]
    assert facts["first_corruption"]["kind"] == "checksum mismatch"
    assert facts["records"] == len(starts) - 1
    human = _agora("verify", str(copy))
    assert human.returncode == 1 and f"at byte {starts[4]:,}" in human.stdout

    fixed = _agora("repair", str(copy))
    assert fixed.returncode == 0, fixed.stderr
    assert f"{len(starts) - 1:,} records kept" in fixed.stdout
    assert hashlib.sha256(copy.read_bytes()).hexdigest() == digest  # never modified
    repaired = tmp_path / "copy.journal.repaired"
    assert _agora("verify", str(repaired)).returncode == 0
    again = _agora("repair", str(copy))
    assert again.returncode == 2 and "exists" in again.stderr  # never overwritten
    missing = _agora("verify", str(tmp_path / "nope"))
    assert missing.returncode == 2 and "Traceback" not in missing.stderr


def test_a_restart_from_a_snapshot_replays_only_the_tail(tmp_path: Path, ctx: zmq.Context) -> None:
    data = tmp_path / "ex"
    # a snapshot once the start's epoch record and the eight orders are in; the tail (two
    # records) stays below the cadence, so no second snapshot can cover it
    env = {"AGORA_EXCHANGE_SNAPSHOT_EVERY_RECORDS": "9", "AGORA_EXCHANGE_TIMER_S": "0.01"}
    proc = start_exchange(data, **env)
    try:
        c = WireClient(ctx, proc.ready["gateway"], "t")
        for i in range(8):
            c.send(limit(f"s{i}", "sell", 2, 10_000 + i))
            c.wait_for_order(f"s{i}", "new")
        proc.wait_log(lambda s: '"snapshot_written"' in s)
        u = WireClient(ctx, proc.ready["gateway"], "u")
        u.send(limit("last", "buy", 3, 10_001))  # after the snapshot: a trade in the tail
        u.wait_for_order("last", "trade")
        before = SnapshotClient(ctx, proc.ready["snapshot"]).snapshot(SYM)
    finally:
        proc.stop()
    assert (data / "exchange.snapshot").exists()
    again = start_exchange(data, **env)
    try:
        event = json.loads(again.wait_log(lambda s: '"journal_replayed"' in s))
        assert event["from_snapshot"] is True and 1 <= event["commands"] < 9
        after = SnapshotClient(ctx, again.ready["snapshot"]).snapshot(SYM)
        assert (after.bids, after.asks, after.seq) == (before.bids, before.asks, before.seq)
        c = WireClient(ctx, again.ready["gateway"], "t")
        c.send(limit("next", "sell", 1, 10_100))
        assert c.wait_for_order("next", "new").order_id == 10  # ids go on from the snapshot
    finally:
        again.stop()


def test_group_commit_acknowledges_and_restarts(tmp_path: Path, ctx: zmq.Context) -> None:
    data = tmp_path / "ex"
    env = {"AGORA_EXCHANGE_DURABILITY": "group", "AGORA_EXCHANGE_GROUP_COMMIT_MS": "5"}
    proc = start_exchange(data, **env)
    try:
        c = WireClient(ctx, proc.ready["gateway"], "t")
        for i in range(20):
            c.send(limit(f"s{i}", "sell", 1, 10_000 + i % 3))
        for i in range(20):
            c.wait_for_order(f"s{i}", "new")
        snap = SnapshotClient(ctx, proc.ready["snapshot"]).snapshot(SYM)
        assert sum(q for _, q, _ in snap.asks) == 20
    finally:
        proc.stop()
    again = start_exchange(data, **env)
    try:
        snap = SnapshotClient(ctx, again.ready["snapshot"]).snapshot(SYM)
        assert sum(q for _, q, _ in snap.asks) == 20
    finally:
        again.stop()


def test_agora_up_shows_the_exchange_s_one_line(tmp_path: Path) -> None:
    from exchange.journal import Journal

    journal = tmp_path / "var" / "exchange" / "exchange.journal"
    j = Journal(journal)
    for i in range(5):
        j.append(["A", i + 1])
    j.close()
    second = _record_starts(journal)[1]
    raw = bytearray(journal.read_bytes())
    raw[second + 4] ^= 0x20
    journal.write_bytes(bytes(raw))
    env = {k: v for k, v in os.environ.items() if not k.startswith("AGORA_")}
    done = subprocess.run(
        [sys.executable, "-m", "deploy.cli", "up", "--data-dir", str(tmp_path / "var"),
         "--free-ports", "--duration", "1"],
        env=env, capture_output=True, text=True, timeout=300, cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr[-3000:]
    assert f"corrupt at byte {second:,}" in done.stderr and str(journal) in done.stderr
    assert "Traceback" not in done.stderr
