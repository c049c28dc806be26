"""Tape readers: the documented layouts, one line naming file, row and column for a bad
file, and streaming in chunks giving exactly the replay of loading everything at once."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from agents.replay.config import ReplayConfig
from agents.replay.driver import Replay
from agents.replay.fast import JoinQuoter
from agents.replay.layouts import TapeError
from agents.replay.readers import open_tape
from agents.replay.stream import load_all
from agents.replay.tape import NO_BID, QUOTE, TRADE

QUOTES = """ts,bid,ask,bid_size,ask_size
2024-05-01T13:00:00.000Z,61.20,61.25,5,5
2024-05-01T13:00:00.001Z,61.21,61.26,5,6
2024-05-01T13:00:00.002Z,,61.26,0,6
"""
TRADES = """timestamp,price,qty,aggressor
2024-05-01T13:00:00.0015Z,61.26,2,buy
2024-05-01T13:00:00.002Z,61.21,1,S
2024-05-01T13:00:00.002Z,61.22,1,
"""
T0 = 1_714_568_400_000_000_000


def _write(d: Path, **files: str) -> Path:
    d.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (d / name.replace("_", ".", 1) if name.count("_") else d / name).write_text(text)
    return d


def test_csv_layouts_iso_times_decimal_prices_and_aggressors(tmp_path: Path) -> None:
    d = tmp_path / "t"
    d.mkdir()
    (d / "EURUSD.quotes.csv").write_text(QUOTES)
    (d / "EURUSD.trades.csv").write_text(TRADES)
    tape = open_tape(d)
    assert tape.symbols == ["EURUSD"] and tape.layout == "files"
    c = load_all(tape.chunks())
    assert (c.ts - T0).tolist() == [0, 1_000_000, 1_500_000, 2_000_000, 2_000_000, 2_000_000]
    # at 2 ms: the trades before the quote (equal stamps), each stream in file order
    assert c.kind.tolist() == [QUOTE, QUOTE, TRADE, TRADE, TRADE, QUOTE]
    assert c.a.tolist()[:3] == [6120, 6121, 6126] and c.a[5] == NO_BID
    assert c.c.tolist()[2:5] == [1, -1, 0]  # buy, S(ell), unknown
    assert c.d.tolist()[:2] == [5, 6]


@pytest.mark.parametrize("unit,scale", [("ns", 1), ("us", 1_000), ("ms", 1_000_000)])
def test_integer_timestamps_in_any_unit_and_many_symbols_in_one_file(
    tmp_path: Path, unit: str, scale: int
) -> None:
    base = T0 // scale
    text = "ts,symbol,bid,ask,bid_size,ask_size\n" + "".join(
        f"{base + i},{s},1.0{i},1.1{i},1,1\n" for i, s in enumerate(["A", "B", "A"]))
    d = tmp_path / unit
    d.mkdir()
    (d / "q.csv").write_text(text)
    for ts_unit in (unit, "auto"):
        c = load_all(open_tape(d, ts_unit=ts_unit).chunks())
        assert (c.ts - T0).tolist() == [0, scale, 2 * scale]
        assert c.sym.tolist() == [0, 1, 0]


def _bad(tmp_path: Path, name: str, text: str) -> str:
    d = tmp_path / name.replace(".", "_")
    d.mkdir()
    (d / name).write_text(text)
    with pytest.raises(TapeError) as err:
        load_all(open_tape(d, symbol="X").chunks())
    return str(err.value)


def test_bad_files_name_file_row_and_column(tmp_path: Path) -> None:
    msg = _bad(tmp_path, "q.csv", "ts,bid,ask,bid_size,ask_size\n3,1,2,1,1\n2,1,2,1,1\n")
    assert "q.csv" in msg and "row 2" in msg and "'ts'" in msg and "back in time" in msg
    msg = _bad(tmp_path, "c.csv", "ts,bid,ask,bid_size,ask_size\n1,1,2,1,1\n2,3.5,2,1,1\n")
    assert "c.csv" in msg and "row 2" in msg and "'bid'" in msg and "crossed" in msg
    msg = _bad(tmp_path, "m.csv", "ts,bid,bid_size,ask_size\n1,1,1,1\n")
    assert "m.csv" in msg and "'ask'" in msg and "missing" in msg
    msg = _bad(tmp_path, "n.csv", "ts,price,size\n1,1.5,1\n2,abc,1\n")
    assert "n.csv" in msg and "row 2" in msg and "'price'" in msg and "'abc'" in msg
    msg = _bad(tmp_path, "i.csv", "ts,price,size\n2024-05-01T13:00:00Z,1,1\nnoon,1,1\n")
    assert "i.csv" in msg and "row 2" in msg and "'ts'" in msg and "timestamp" in msg
    msg = _bad(tmp_path, "x.csv", "when,what\n1,2\n")
    assert "x.csv" in msg and "layout" in msg


def test_a_bad_file_is_one_line_and_status_2_on_the_command_line(tmp_path: Path) -> None:
    d = tmp_path / "bad"
    d.mkdir()
    (d / "q.csv").write_text("ts,bid,ask,bid_size,ask_size\n1,1,2,1,1\n2,3,2,1,1\n")
    r = subprocess.run([sys.executable, "-m", "deploy.cli", "backtest", "fixed_spread_mm",
                        "--data", str(d), "--out", str(tmp_path / "o")],
                       capture_output=True, text=True, timeout=300)  # fmt: skip
    assert r.returncode == 2, r.stderr
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "q.csv" in lines[0] and "row 2" in lines[0], r.stderr
    assert "Traceback" not in r.stderr


def _random_tape(d: Path, n: int, seed: int, fmt: str) -> None:
    rng = np.random.default_rng(seed)
    d.mkdir(parents=True, exist_ok=True)
    ts_q = T0 + np.cumsum(rng.integers(0, 3, n)) * 1_000_000  # repeated stamps on purpose
    mid = 10_000 + np.cumsum(rng.integers(-1, 2, n))
    quotes = pa.table({"ts": ts_q, "bid": (mid - 1) / 100, "ask": (mid + 1) / 100,
                       "bid_size": rng.integers(1, 9, n), "ask_size": rng.integers(1, 9, n)})
    m = n // 3
    ts_t = np.sort(rng.choice(ts_q, m))
    trades = pa.table({"ts": ts_t, "price": (10_000 + rng.integers(-20, 21, m)) / 100,
                       "size": rng.integers(1, 5, m),
                       "side": rng.choice(["buy", "sell"], m)})  # fmt: skip
    for name, table in (("X.quotes", quotes), ("X.trades", trades)):
        if fmt == "csv":
            import pyarrow.csv as pacsv

            pacsv.write_csv(table, d / f"{name}.csv")
        else:
            pq.write_table(table, d / f"{name}.parquet", row_group_size=97)


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_chunked_streaming_replays_exactly_as_loading_everything(tmp_path: Path,
                                                                 fmt: str) -> None:
    _random_tape(tmp_path / fmt, 3_000, 7, fmt)
    whole = open_tape(tmp_path / fmt, chunk_rows=1 << 20)
    small = open_tape(tmp_path / fmt, chunk_rows=37)
    a, b = load_all(whole.chunks()), load_all(small.chunks())
    assert len(a) == 4_000
    for x, y in zip(a.columns(), b.columns(), strict=True):
        assert np.array_equal(x, y)
    assert sum(1 for _ in small.chunks()) > 20  # it really came in many chunks
    cfg = ReplayConfig(fill_rule="trade-through", queue="displayed", latency_ns=1_000_000)
    runs = []
    for tape in (whole, small):
        rec = Replay(JoinQuoter({"size": 2}), tape.symbols, cfg).run(tape.chunks())
        runs.append((rec.fills, rec.orders))
    assert runs[0] == runs[1] and len(runs[0][0]["ts"]) > 10


def test_a_window_replays_only_its_span(tmp_path: Path) -> None:
    _random_tape(tmp_path / "w", 500, 3, "parquet")
    tape = open_tape(tmp_path / "w", chunk_rows=50)
    first, last = tape.span()
    mid = (first + last) // 2
    part = load_all(tape.chunks(first, mid))
    rest = load_all(tape.chunks(mid, None))
    assert len(part) + len(rest) == len(load_all(tape.chunks()))
    assert part.ts.max() < mid <= rest.ts.min()
