"""The market-data recorder: Parquet schemas, buffering and rotation (pure), then a real process.

The process tests never sleep and never race the feed: the recorder is ready only once a feed
frame has reached it (so everything published afterwards is delivered in order), and the tests
end the recording on an event the recorder reports itself (the exchange's goodbye), not after
some amount of time.
"""

from __future__ import annotations

import json
import os
import re
import signal
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from agents.client import ExchangeClient
from agents.recorder import (
    SCHEMAS,
    GapTracker,
    NothingRecorded,
    ParquetSink,
    RecorderSettings,
    load,
)
from agents.recorder.read import files
from agents.recorder.sink import file_name
from deploy.launch import Proc, start_exchange, start_recorder

S = 1_000_000_000
T0 = 1_714_568_400 * S  # 2024-05-01T13:00:00Z, on an hour boundary
SAFETY_S = 60.0  # a hang becomes a failure after this; nothing waits for it to pass


def trade(i: int, **kw: Any) -> dict[str, Any]:
    msg = {
        "type": "trade", "v": 1, "ts": T0 + i, "symbol": "AGR", "seq": i, "trade_id": i,
        "price": 10_000 + i, "qty": 1 + i, "aggressor_side": "buy",
    }  # fmt: skip
    msg.update(kw)
    return msg


# ------------------------------------------------------------------------------ pure sink


def test_one_file_per_channel_per_period_with_the_channel_schema(tmp_path: Path) -> None:
    sink = ParquetSink(tmp_path, rotate_s=3600, now_ns=T0, clock=lambda: 0)
    for i in range(1, 4):
        assert sink.add("trades", trade(i), recv_ts=T0 + i * S) == []
    tob = {
        "type": "top_of_book", "ts": T0, "symbol": "AGR", "seq": 1, "bid_price": None,
        "bid_qty": 0, "ask_price": 10_010, "ask_qty": 5, "last_price": None,
    }  # fmt: skip
    assert sink.add("tob", tob, recv_ts=T0) == []
    assert sink.buffered("trades") == 3 and not list(tmp_path.iterdir())

    # The first message of the next hour closes the previous hour's files.
    written = sink.add("trades", trade(4), recv_ts=T0 + 3600 * S)
    assert sorted(p.relative_to(tmp_path).as_posix() for p in written) == [
        "tob/tob-20240501T130000Z-00000.parquet",
        "trades/trades-20240501T130000Z-00000.parquet",
    ]
    table = pq.read_table(tmp_path / "trades" / "trades-20240501T130000Z-00000.parquet")
    assert table.schema.equals(SCHEMAS["trades"], check_metadata=True)
    assert table.column("trade_id").to_pylist() == [1, 2, 3]
    assert table.column("price").to_pylist() == [10_001, 10_002, 10_003]
    assert table.column("recv_ts").to_pylist() == [T0 + S, T0 + 2 * S, T0 + 3 * S]
    row = pq.read_table(written[0] if "tob" in written[0].name else written[1]).to_pylist()
    assert row == [{**{k: v for k, v in tob.items() if k != "type"}, "recv_ts": T0}]

    # A quiet market still rotates on the timer; close writes what is left.
    assert [p.name for p in sink.tick(T0 + 2 * 3600 * S)] == [
        "trades-20240501T140000Z-00000.parquet"
    ]
    assert sink.tick(T0 + 2 * 3600 * S + 1) == [] and sink.close() == []
    assert sink.rows_written["trades"] == 4 and sink.files_written == 3


def test_row_limit_splits_a_period_and_load_concatenates_in_order(tmp_path: Path) -> None:
    sink = ParquetSink(tmp_path, rotate_s=60, rotate_rows=3, now_ns=T0)
    written = [p for i in range(1, 8) for p in sink.add("trades", trade(i), recv_ts=T0 + i)]
    assert [p.name for p in written] == [file_name("trades", T0, 0), file_name("trades", T0, 1)]
    assert sink.buffered("trades") == 1
    assert [p.name for p in sink.close()] == [file_name("trades", T0, 2)]
    assert [pq.read_metadata(p).num_rows for p in files(tmp_path, "trades")] == [3, 3, 1]
    table = load(tmp_path, "trades")
    assert table.schema.equals(SCHEMAS["trades"])
    assert table.column("trade_id").to_pylist() == list(range(1, 8))
    assert load(tmp_path, "trades", symbol="XYZ").num_rows == 0


def test_a_second_sink_in_the_same_period_never_overwrites(tmp_path: Path) -> None:
    for i in (1, 2):
        sink = ParquetSink(tmp_path, rotate_s=3600, now_ns=T0)
        sink.add("trades", trade(i), recv_ts=T0)
        sink.close()
    names = [p.name for p in files(tmp_path, "trades")]
    assert names == [file_name("trades", T0, 0), file_name("trades", T0, 1)]
    assert load(tmp_path, "trades").column("trade_id").to_pylist() == [1, 2]


@pytest.mark.parametrize(
    "bad",
    [
        {"price": None},  # required
        {"qty": True},  # a bool is not a quantity
        {"price": "10000"},  # no strings for integers
        {"aggressor_side": 1},
        {"seq": 2**63},  # does not fit int64
    ],
)
def test_malformed_messages_are_counted_not_written(tmp_path: Path, bad: dict) -> None:
    sink = ParquetSink(tmp_path, rotate_s=3600, now_ns=T0)
    sink.add("trades", trade(1, **bad), recv_ts=T0)
    sink.add("trades", trade(2), recv_ts=T0)
    assert (sink.malformed, sink.buffered("trades")) == (1, 1)
    sink.close()
    assert load(tmp_path, "trades").column("trade_id").to_pylist() == [2]


def test_every_channel_round_trips_and_empty_channels_load_empty(tmp_path: Path) -> None:
    base = {"ts": T0, "symbol": "AGR", "seq": 1}
    rows = {
        "trades": trade(1),
        "tob": {**base, "bid_price": 9_990, "bid_qty": 3, "ask_price": None, "ask_qty": 0,
                "last_price": 9_995},
        "book": {**base, "side": "sell", "price": 10_010, "qty": 0, "count": 0},
        "status": {**base, "phase": "halted", "band_low": 9_000, "band_high": 11_000,
                   "halt_until": T0 + S},  # "reason" is optional on the wire
        "bars": {**base, "start_ts": T0, "interval_ns": S, "open": 1, "high": 3, "low": 1,
                 "close": 2, "volume": 9, "trades": 4},
        "snapshots": {**base, "bids": [{"price": 9_990, "qty": 3, "count": 1}], "asks": []},
    }  # fmt: skip
    assert set(rows) == set(SCHEMAS)
    for channel in SCHEMAS:  # nothing recorded yet: said, not an empty table
        with pytest.raises(NothingRecorded, match=re.escape(str(tmp_path / channel))):
            load(tmp_path, channel)
    sink = ParquetSink(tmp_path, rotate_s=3600, now_ns=T0)
    for channel, msg in rows.items():
        sink.add(channel, msg, recv_ts=T0 + 5)
    assert sink.malformed == 0
    sink.close()
    for channel, msg in rows.items():
        table = load(tmp_path, channel)
        assert table.schema.equals(SCHEMAS[channel]), channel
        expected = {f.name: msg.get(f.name, "") for f in SCHEMAS[channel]}
        assert table.to_pylist() == [{**expected, "recv_ts": T0 + 5}], channel


def test_periodic_flush_writes_finished_files_a_reader_can_load(tmp_path: Path) -> None:
    sink = ParquetSink(tmp_path, rotate_s=3600, now_ns=T0, flush_s=5)
    assert sink.next_due == T0 + 5 * S
    sink.add("trades", trade(1), recv_ts=T0 + S)
    assert sink.tick(T0 + 4 * S) == []  # not due yet
    with pytest.raises(NothingRecorded, match="no 'trades' directory"):
        load(tmp_path, "trades")
    assert [p.name for p in sink.tick(T0 + 5 * S)] == [file_name("trades", T0, 0)]
    assert load(tmp_path, "trades").column("trade_id").to_pylist() == [1]
    assert sink.next_due == T0 + 10 * S and sink.tick(T0 + 10 * S) == []  # nothing new: no file
    sink.add("trades", trade(2), recv_ts=T0 + 11 * S)
    sink.add("trades", trade(3), recv_ts=T0 + 12 * S)
    # A write in progress has a hidden name: neither load() nor a directory reader sees it.
    (tmp_path / "trades" / f".{file_name('trades', T0, 9)}.tmp").write_bytes(b"PAR1 half")
    assert [p.name for p in sink.tick(T0 + 15 * S)] == [file_name("trades", T0, 1)]
    assert load(tmp_path, "trades").column("trade_id").to_pylist() == [1, 2, 3]
    assert pq.read_table(tmp_path / "trades").num_rows == 3
    # the end of the period still closes it, and the next period's names start over
    sink.add("trades", trade(4), recv_ts=T0 + 3599 * S)
    written = sink.tick(T0 + 3600 * S)
    assert [p.name for p in written] == [file_name("trades", T0, 2)]
    assert sink.next_due == T0 + 3605 * S
    with pytest.raises(NothingRecorded, match="no such directory"):
        load(tmp_path / "elsewhere", "trades")
    with pytest.raises(ValueError, match="flush_s"):
        ParquetSink(tmp_path, flush_s=-1)


def test_gap_tracker_counts_lost_messages_and_lost_tails() -> None:
    g = GapTracker()
    assert [g.observe("AGR|book", s) for s in (5, 6, 9, 10)] == [0, 0, 2, 0]  # joined at 5
    assert g.observe("AGR|book", 12, heartbeat=True) == 2  # the last two never came
    assert g.observe("AGR|book", 12, heartbeat=True) == 0
    assert g.observe("AGR|book", 13) == 0
    assert g.observe("AGR|trades", 1) == 0  # streams are independent
    assert g.observe("AGR|book", 1) == 0 and g.resets == 1  # a fresh exchange starts over
    assert (g.total, g.gaps) == (4, {"AGR|book": 4})


def test_settings_topics() -> None:
    assert RecorderSettings().topics() == [""]
    s = RecorderSettings(symbols=["AGR"], channels=["trades", "snapshots"])
    assert s.topics() == ["AGR|trades", "AGR|book", "*|"]
    with pytest.raises(ValueError, match="unknown channels"):
        RecorderSettings(channels=["trades", "orders"])


# ------------------------------------------------------------------------------ real process


class StderrLines:
    """Waits for one log event in a child's stderr (read by `Proc`'s own reader thread)."""

    def __init__(self, proc: Proc) -> None:
        self.proc = proc

    def wait_for(self, event: str) -> dict[str, Any]:
        def is_event(line: str) -> bool:
            return line.startswith("{") and json.loads(line).get("event") == event

        try:
            return json.loads(self.proc.wait_log(is_event, SAFETY_S))
        except LookupError:
            raise AssertionError(f"no {event} in:\n{self.rest()}") from None

    def rest(self) -> str:
        """Everything logged so far (all of it once the process has ended)."""
        return self.proc.stderr_text()


async def cross(gateway: str, n: int) -> list[tuple[int, int, int]]:
    """`n` trades, "b" buying what "a" offers: their (trade_id, price, qty) as reported."""
    fills: list[tuple[int, int, int]] = []
    async with ExchangeClient("a", gateway=gateway) as a, ExchangeClient("b", gateway=gateway) as b:
        reports = b.reports()
        for i in range(n):
            price, qty = 10_000 + i, 1 + i
            assert (await a.create_order("AGR", "sell", "limit", qty, price)).exec_type == "new"
            ack = await b.create_order("AGR", "buy", "limit", qty, price)
            assert ack.exec_type == "new"
            async for rep in reports:
                if rep.client_order_id == ack.client_order_id and rep.exec_type == "trade":
                    assert rep.trade_id is not None and rep.last_price is not None
                    fills.append((rep.trade_id, rep.last_price, rep.last_qty))
                    break
    return fills


@pytest.mark.parametrize("exit_on_goodbye", [False, True])
async def test_recorder_records_every_trade_published_after_ready(
    tmp_path: Path, exit_on_goodbye: bool
) -> None:
    # Fast heartbeats only make the recorder's first frame (its ready line) come sooner.
    exchange = start_exchange(tmp_path / "x", AGORA_EXCHANGE_HEARTBEAT_S="0.05")
    recorder: Proc | None = None
    try:
        out = tmp_path / "rec"
        recorder = start_recorder(
            exchange.ready["feed"], out, AGORA_RECORDER_SNAPSHOT=exchange.ready["snapshot"],
            AGORA_RECORDER_ROTATE_ROWS="3", AGORA_RECORDER_FLUSH_S="0",  # files by row count
            AGORA_RECORDER_EXIT_ON_GOODBYE="1" if exit_on_goodbye else "0",
        )  # fmt: skip
        assert recorder.ready == {"recorder": str(out.resolve())}
        logs = StderrLines(recorder)
        fills = await cross(exchange.ready["gateway"], 5)
        # The first sight of AGR asks for a book snapshot; let it be answered before the
        # exchange goes (an event the recorder logs, not a pause).
        assert logs.wait_for("book_snapshot")["symbol"] == "AGR"

        # The exchange publishes everything, then its goodbye, in order on one connection:
        # once the recorder logs the goodbye, it has received every trade before it.
        err = exchange.stop()
        assert exchange.returncode == 0, err[-3000:]
        logs.wait_for("feed_goodbye")
        if not exit_on_goodbye:
            recorder.popen.send_signal(signal.SIGTERM)
        assert recorder.popen.wait(timeout=SAFETY_S) == 0, logs.rest()[-3000:]
        stopped = json.loads(next(ln for ln in reversed(logs.rest().splitlines())
                                  if '"recorder_stopped"' in ln))  # fmt: skip
    finally:
        if recorder is not None and recorder.returncode is None:
            recorder.kill()
        if exchange.returncode is None:
            exchange.stop()

    assert stopped["gaps"] == 0 and stopped["malformed"] == 0
    trades = load(out, "trades")
    assert trades.schema.equals(SCHEMAS["trades"])
    got = list(zip(*(trades.column(c).to_pylist() for c in ("trade_id", "price", "qty")),
                   strict=True))  # fmt: skip
    assert got == fills
    assert [f[0] for f in fills] == list(range(1, 6))  # a fresh exchange: ids 1..5
    assert set(trades.column("aggressor_side").to_pylist()) == {"buy"}
    assert trades.column("seq").to_pylist() == list(range(1, 6))
    assert [pq.read_metadata(p).num_rows for p in files(out, "trades")] == [3, 2]

    # Book deltas, top of book and the starting snapshot are there, each in its schema.
    book, tob, snaps = load(out, "book"), load(out, "tob"), load(out, "snapshots")
    assert book.num_rows > 0 and tob.num_rows > 0 and snaps.num_rows == stopped["snapshots"] >= 1
    assert set(book.column("symbol").to_pylist()) == {"AGR"}
    assert book.column("seq").to_pylist() == list(range(1, book.num_rows + 1))
    assert tob.column("last_price").to_pylist()[-1] == fills[-1][1]
    assert snaps.column("symbol").to_pylist()[0] == "AGR"


async def test_a_running_recorder_is_readable_before_it_stops(tmp_path: Path) -> None:
    """The README's promise: read the recording while the market (and recorder) still run."""
    exchange = start_exchange(tmp_path / "x", AGORA_EXCHANGE_HEARTBEAT_S="0.05")
    recorder: Proc | None = None
    try:
        out = tmp_path / "var" / "recorder"  # where `agora up` records, as the README reads it
        recorder = start_recorder(
            exchange.ready["feed"], out, AGORA_RECORDER_SNAPSHOT=exchange.ready["snapshot"],
            AGORA_RECORDER_FLUSH_S="0.2", AGORA_RECORDER_LOG_LEVEL="debug",
        )  # fmt: skip
        logs = StderrLines(recorder)
        fills = await cross(exchange.ready["gateway"], 3)
        wanted = [f[0] for f in fills]
        seen: list[int] = []
        while seen != wanted:  # each pass waits for the recorder's next file, not for time
            line = logs.wait_for("recorder_file")
            if "/trades/" in line["path"]:
                seen = load(out, "trades").column("trade_id").to_pylist()
                assert seen == wanted[: len(seen)]
        assert recorder.returncode is None  # still recording
        assert line["why"] == "flush"
        prices = load(out, "trades").column("price").to_pylist()
        assert prices == [f[1] for f in fills]
        # the README's snippet (pandas, polars, load) reads the live recording as printed
        shown = _run_readme_reader(tmp_path)
        assert "100.02" in shown and "book changes" in shown
        assert recorder.returncode is None
    finally:
        if recorder is not None:
            recorder.stop()
        exchange.stop()


def _run_readme_reader(cwd: Path) -> str:
    """Run the README's `## Read the recorded data` snippet in `cwd`; its stdout."""
    import subprocess
    import sys

    pytest.importorskip("pandas")
    pytest.importorskip("polars")
    root = Path(__file__).resolve().parent.parent
    code = re.search(r"## Read the recorded data\n.*?```python\n(.*?)```",
                     (root / "README.md").read_text(), re.S)  # fmt: skip
    assert code, "README lost its recording example"
    (cwd / "read_recording.py").write_text(code.group(1))
    done = subprocess.run(
        [sys.executable, "read_recording.py"], cwd=cwd, capture_output=True, text=True,
        timeout=SAFETY_S, env={**os.environ, "PYTHONPATH": str(root)},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout
