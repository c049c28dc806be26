"""`agora simulate` and `agora sweep` end to end on a tiny market (CliRunner); `agora facts`
is tests/test_facts_cli.py."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
from conftest import COMPILED
from typer.testing import CliRunner

import accel
from agents.config import load_market
from agents.sim.sweep import grid_points, parse_param, random_points, set_path, sweep_specs
from deploy.cli import app

pq = pytest.importorskip("pyarrow.parquet")

ROOT = Path(__file__).resolve().parent.parent

TINY = """
name = "tiny"
seed = 7
duration_s = 5
fundamental_interval_s = 0.1

[[symbols]]
symbol = "AGR"
reference_price = 10_000

[fundamental]
scale = 0.001
step_s = 0.1

[[populations]]
name = "fv"
strategy = "fair_value"
count = 6
[populations.params]
rate_per_s = 2.0
lifetime_ns = 3_000_000_000

[[populations]]
name = "zi"
strategy = "zi"
count = 4
[populations.params]
mean_interval_ns = 500_000_000
"""


@pytest.fixture
def tiny(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.toml"
    path.write_text(TINY)
    return path


def invoke(*args: str) -> str:
    result = CliRunner().invoke(app, [str(a) for a in args])
    assert result.exit_code == 0, result.output + repr(result.exception)
    return result.output


def test_simulate_writes_parquet_and_is_deterministic(tiny: Path, tmp_path: Path) -> None:
    out = invoke("simulate", tiny, "--until", "8", "--out", tmp_path / "a", "--no-progress")
    assert "trades" in out and "PnL by population" in out and "fv" in out
    invoke("simulate", tiny, "--until", "8", "--out", tmp_path / "b")
    a, b = tmp_path / "a", tmp_path / "b"
    expected = {
        "trades": ["ts", "trade_id", "symbol", "price", "qty", "aggressor", "buy_account",
                   "sell_account"],
        "top_of_book": ["ts", "symbol", "bid", "bid_qty", "ask", "ask_qty"],
        "bars": ["ts", "symbol", "open", "high", "low", "close", "volume", "count", "vwap"],
        "agents": ["name", "account", "strategy", "cash", "trading_pnl", "inventory_pnl", "pnl",
                   "fees", "volume", "fills", "orders_sent", "open_orders", "position_AGR"],
        "fundamental": ["ts", "symbol", "value"],
        "orders": ["ts", "account", "symbol", "action", "side", "price", "qty", "clid"],
        "positions": ["ts", "account", "symbol", "position", "cash"],
        "refusals": ["ts", "account", "population", "reason"],
    }  # fmt: skip
    for name, columns in expected.items():
        assert pq.read_table(a / f"{name}.parquet").column_names == columns, name
    trades = pq.read_table(a / "trades.parquet")
    summary = json.loads((a / "summary.json").read_text())
    assert trades.num_rows == summary["trades"] > 0
    # the speed is recorded with what it was measured on (Python here, compiled in that pass)
    assert summary["compiled_cores"] == (list(accel.MODULES) if COMPILED else [])
    assert max(trades.column("ts").to_pylist()) <= 8 * 10**9
    # same seed, same history, to the byte
    for name in expected:
        assert (a / f"{name}.parquet").read_bytes() == (b / f"{name}.parquet").read_bytes()
    assert json.loads((b / "summary.json").read_text())["trades"] == summary["trades"]
    bars = pq.read_table(a / "bars.parquet").to_pydict()
    assert sum(bars["count"]) == trades.num_rows
    assert sum(bars["volume"]) == sum(trades.column("qty").to_pylist())
    agents = pq.read_table(a / "agents.parquet").to_pydict()
    assert len(agents["name"]) == 10
    # PnL split: the parts add up, and summed per population they are the summary's
    for t, i, total in zip(agents["trading_pnl"], agents["inventory_pnl"], agents["pnl"],
                           strict=True):  # fmt: skip
        assert t + i == total
    for key in ("trading_pnl", "inventory_pnl", "pnl"):
        per: dict[str, float] = {}
        for name, v in zip(agents["name"], agents[key], strict=True):
            per[name.rsplit("-", 1)[0]] = per.get(name.rsplit("-", 1)[0], 0) + v
        assert per == summary[key], key
    assert "trading PnL" in out and "inventory PnL" in out


def test_simulate_seed_option_changes_the_history(tiny: Path, tmp_path: Path) -> None:
    invoke("simulate", tiny, "--until", "5", "--out", tmp_path / "s7")
    invoke("simulate", tiny, "--until", "5", "--seed", "8", "--out", tmp_path / "s8")
    t7 = pq.read_table(tmp_path / "s7" / "trades.parquet").to_pydict()
    t8 = pq.read_table(tmp_path / "s8" / "trades.parquet").to_pydict()
    assert (t7["ts"], t7["price"]) != (t8["ts"], t8["price"])
    assert json.loads((tmp_path / "s8" / "summary.json").read_text())["seed"] == 8


def test_simulate_default_output_directory(tiny: Path, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    invoke("simulate", tiny, "--until", "2")
    assert (tmp_path / "var" / "sim" / "tiny-7" / "trades.parquet").is_file()


def test_sweep_grid_times_seeds_in_parallel(tiny: Path, tmp_path: Path) -> None:
    out = tmp_path / "sweep"
    text = invoke(
        "sweep", tiny, "--param", "fundamental.scale=0.0005,0.002", "--seeds", "2",
        "--workers", "2", "--until", "4", "--out", out,
    )  # fmt: skip
    assert "4 run(s)" in text
    runs = sorted(p.name for p in out.iterdir() if p.is_dir())
    assert runs == ["run-0000", "run-0001", "run-0002", "run-0003"]
    rows = json.loads((out / "manifest.json").read_text())
    assert [(r["params"]["fundamental.scale"], r["seed"]) for r in rows] == [
        (0.0005, 7), (0.0005, 8), (0.002, 7), (0.002, 8)
    ]  # fmt: skip
    table = pq.read_table(out / "manifest.parquet").to_pydict()
    assert table["run"] == runs
    assert table["fundamental.scale"] == [0.0005, 0.0005, 0.002, 0.002]
    for key in ("trades", "facts.kurtosis", "facts.hill_upper", "facts.passed",
                "passed.clustering", "pnl.fv", "pnl.zi", "trading_pnl.zi", "inventory_pnl.fv"):
        assert key in table
    ranking = json.loads((out / "ranking.json").read_text())
    assert sorted(p["params"]["fundamental.scale"] for p in ranking["points"]) == [0.0005, 0.002]
    assert all(p["seeds"] == [7, 8] for p in ranking["points"])
    assert "ranked by stylized facts passed" in text
    for row, run in zip(rows, runs, strict=True):
        trades = pq.read_table(out / run / "trades.parquet")
        assert trades.num_rows == row["summary"]["trades"]
        own = json.loads((out / run / "manifest.json").read_text())
        assert own["params"] == row["params"] and own["seed"] == row["seed"]
    # same seed, another scale: another fair-value path
    f0 = pq.read_table(out / "run-0000" / "fundamental.parquet").column("value").to_pylist()
    f2 = pq.read_table(out / "run-0002" / "fundamental.parquet").column("value").to_pylist()
    assert f0 != f2


def test_sweep_run_reproduces_the_single_run(tiny: Path, tmp_path: Path) -> None:
    invoke("sweep", tiny, "--param", "fundamental.scale=0.001", "--until", "4",
           "--out", tmp_path / "sw")  # fmt: skip
    invoke("simulate", tiny, "--until", "4", "--out", tmp_path / "one")
    assert (tmp_path / "sw" / "run-0000" / "trades.parquet").read_bytes() == (
        tmp_path / "one" / "trades.parquet"
    ).read_bytes()


def test_sweep_random_points_and_bad_parameters(tiny: Path, tmp_path: Path) -> None:
    text = invoke(
        "sweep", tiny, "--param", "populations.0.params.alpha_a=1.0,5.0", "--random", "3",
        "--until", "2", "--out", tmp_path / "rnd",
    )  # fmt: skip
    rows = json.loads((tmp_path / "rnd" / "manifest.json").read_text())
    assert "3 point(s)" in text and len(rows) == 3
    assert all(1.0 <= r["params"]["populations.0.params.alpha_a"] <= 5.0 for r in rows)
    bad = CliRunner().invoke(app, ["sweep", str(tiny), "--param", "populations.0.params.nope=1"])
    assert bad.exit_code != 0 and "nope" in bad.output


@pytest.mark.skipif(importlib.util.find_spec("ray") is not None, reason="ray is installed")
def test_sweep_ray_without_ray_says_how_to_install(tiny: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app, ["sweep", str(tiny), "--ray", "auto", "--out", str(tmp_path / "r")]
    )
    assert result.exit_code == 2
    assert "pip install 'agora-market[ray]'" in result.output


def test_example_market_files_are_valid() -> None:
    for name in ("market.toml", "fair_value.toml"):
        config = load_market(ROOT / "examples" / name)
        assert any(p.strategy == "fair_value" for p in config.populations)
        sweep_specs(config, [{}], [1], "/nonexistent")  # validates every population's params


def test_parameter_helpers() -> None:
    assert parse_param("a.b=1,2.5,x,true") == ("a.b", [1, 2.5, "x", True])
    with pytest.raises(ValueError):
        parse_param("novalues=")
    data: dict = {"populations": [{"params": {}}], "fundamental": {}}
    set_path(data, "populations.0.params.alpha_a", 3.0)
    set_path(data, "fundamental.jumps.rate", 0.1)
    assert data == {"populations": [{"params": {"alpha_a": 3.0}}],
                    "fundamental": {"jumps": {"rate": 0.1}}}  # fmt: skip
    with pytest.raises(ValueError, match="index"):
        set_path(data, "populations.3.count", 1)
    points = grid_points([("a", [1, 2]), ("b", ["x", "y", "z"])])
    assert len(points) == 6 and points[0] == {"a": 1, "b": "x"} and points[-1] == {"a": 2, "b": "z"}
    draws = random_points([("n", [1, 3]), ("f", [0.0, 1.0])], 50, seed=1)
    assert draws == random_points([("n", [1, 3]), ("f", [0.0, 1.0])], 50, seed=1)
    assert {d["n"] for d in draws} == {1, 2, 3}
    assert all(0.0 <= d["f"] <= 1.0 for d in draws)
    with pytest.raises(ValueError):
        random_points([("a", [1, 2, 3])], 2, seed=1)
