"""Stress scenarios in simulated time: each has its effect, on short deterministic runs.

The market is `examples/stress.toml` (a thin market with a 5% price band and 3% volatility
halts), shortened; every comparison is a baseline and a stressed run on the same seed.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from typer.testing import CliRunner

from agents import stress
from agents.config import MarketConfig, load_market
from agents.fundamental.model import FundamentalConfig, FundamentalModel
from agents.sim import SimMarket
from agents.stress.figures import book_during, price_drawdown, recovery_s
from exchange.errors import UserError

ROOT = Path(__file__).resolve().parent.parent
STRESS = ROOT / "examples" / "stress.toml"
NS = 1_000_000_000


@pytest.fixture(scope="module")
def market() -> MarketConfig:
    return load_market(STRESS)


def _pair(market: MarketConfig, scenario, tmp: Path, until_s: float = 30.0) -> tuple[dict, dict]:
    r = stress.run(market, scenario, until_s=until_s, out_dir=tmp)
    return r["seeds"][0]["baseline"], r["seeds"][0]["scenario"]


# ---------------------------------------------------------------------------- the pieces
def test_fundamental_model_shock_is_a_permanent_jump() -> None:
    cfg = FundamentalConfig(symbols={"A": "100", "B": "50"}, scale=0.0, mean_reversion=0.5)
    model = FundamentalModel(cfg)
    after = model.shock(-10.0, "A")
    assert after["A"] == pytest.approx(90.0)
    assert after["B"] == pytest.approx(50.0)
    model.step(10.0)  # mean reversion pulls toward the new anchor, not back to 100
    assert model.values["A"] == pytest.approx(90.0)
    model.shock(25.0)
    assert model.values == pytest.approx({"A": 112.5, "B": 62.5})
    with pytest.raises(ValueError, match="unknown symbol"):
        model.shock(1.0, "C")
    with pytest.raises(ValueError, match="above -100"):
        model.shock(-100.0)


def test_figures_on_hand_made_series() -> None:
    trades = {"ts": [0, 1 * NS, 2 * NS, 3 * NS, 4 * NS, 5 * NS],
              "symbol": ["A"] * 6, "price": [100, 110, 99, 88, 105, 109]}  # fmt: skip
    dd = price_drawdown(trades, "A")
    assert dd["drawdown"] == pytest.approx(0.2)  # 110 -> 88
    assert dd["trough_s"] == 3.0
    # event at 2 s, pre-event price 110: out of 1% at 2 s, back within 1% at 5 s (109)
    assert recovery_s(trades, "A", 2 * NS) == pytest.approx(3.0)
    assert recovery_s(trades, "A", 5 * NS, target=200) is None
    assert recovery_s(trades, "A", 5 * NS, target=109.5) == 0.0
    top = {"ts": [0, 10], "symbol": ["A", "A"], "bid": [99, None], "ask": [101, 103],
           "bid_qty": [5, 0], "ask_qty": [5, 7]}  # fmt: skip
    b = book_during(top, "A", 0, 20)
    assert b["mean_spread"] == 2.0 and b["max_spread"] == 2.0
    assert b["one_sided"] == pytest.approx(0.5)
    assert b["mean_top_qty"] == pytest.approx((10 * 10 + 7 * 10) / 20)


def test_named_scenarios_and_tables_validate() -> None:
    comp = stress.named("flash-crash", {"at_s": 12.5})
    assert [p.kind for p in comp.parts] == ["sell_program", "liquidity_withdrawal"]
    assert all(p.at_s == 12.5 for p in comp.parts)
    with pytest.raises(ValueError, match="no parameter nope"):
        stress.named("flash-crash", {"nope": 1})
    with pytest.raises(ValueError, match="unknown scenario"):
        stress.named("meltdown")
    with pytest.raises(ValueError, match="pct"):
        stress.build([{"kind": "fundamental_shock", "pct": -150}])
    with pytest.raises(ValueError, match="needs a name"):
        stress.build([{"at_s": 3}])


def test_market_file_scenario_tables_are_validated(tmp_path: Path) -> None:
    text = STRESS.read_text() + '\n[[scenario]]\nkind = "sell_program"\nhorizon = 3\n'
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(UserError, match="horizon"):
        load_market(path)
    path.write_text(STRESS.read_text() + '\n[[scenario]]\nname = "fundamental-shock"\n'
                    "at_s = 2\npct = -3\n")  # fmt: skip
    assert load_market(path).scenario == [{"name": "fundamental-shock", "at_s": 2, "pct": -3}]


def test_market_file_scenario_runs_in_simulate(tmp_path: Path, market: MarketConfig) -> None:
    """`agora simulate` (run_history) applies the file's [[scenario]]: F falls 3% at 2 s."""
    from agents.sim.sweep import run_history

    cfg = market.model_copy(update={"scenario": [{"kind": "fundamental_shock", "at_s": 2.0,
                                                  "pct": -3.0}]})  # fmt: skip
    held: dict = {}
    run_history(cfg, until_s=4.0, prepare=lambda m: held.setdefault("m", m))
    from agents.sim.output import fundamental_table

    table = fundamental_table(held["m"])
    before = [v for t, v in zip(table["ts"], table["value"], strict=True) if t < 2 * NS][-1]
    # (the step published at 2 s may come before or after the shock in the tie order)
    after = next(v for t, v in zip(table["ts"], table["value"], strict=True) if t > 2 * NS)
    assert after / before == pytest.approx(0.97, abs=0.002)


# ---------------------------------------------------------------------------- effects
def test_runs_are_identical_until_the_scenario_strikes(tmp_path: Path, market) -> None:
    stress.run(market, "flash-crash", until_s=25.0, out_dir=tmp_path)
    import pyarrow.parquet as pq

    base = pq.read_table(tmp_path / "seed-1" / "baseline" / "trades.parquet").to_pydict()
    hit = pq.read_table(tmp_path / "seed-1" / "scenario" / "trades.parquet").to_pydict()
    cut = 20 * NS
    pre = [i for i, t in enumerate(base["ts"]) if t < cut]
    assert len(pre) > 100
    for col in ("ts", "price", "qty", "buy_account", "sell_account"):
        assert [base[col][i] for i in pre] == hit[col][: len(pre)]
    assert base["ts"] != hit["ts"]  # and then they differ
    assert json.loads((tmp_path / "stress.json").read_text())["scenario"] == "flash-crash"


def test_fundamental_shock_moves_F_and_the_price(tmp_path: Path, market) -> None:
    r = stress.run(market, [{"kind": "fundamental_shock", "at_s": 10.0, "pct": -3.0}],
                   until_s=30.0, out_dir=tmp_path)  # fmt: skip
    import pyarrow.parquet as pq

    def f_at(side: str, t: float) -> float:
        tab = pq.read_table(tmp_path / "seed-1" / side / "fundamental.parquet").to_pydict()
        return [v for ts, v in zip(tab["ts"], tab["value"], strict=True) if ts <= t * NS][-1]

    ratio = f_at("scenario", 10.15) / f_at("baseline", 10.15)
    assert ratio == pytest.approx(0.97, abs=1e-9)  # the same path, shifted by the jump
    base, hit = r["seeds"][0]["baseline"], r["seeds"][0]["scenario"]
    # the traded price follows F down: the stressed run ends at least 2% below the baseline
    assert hit["last_price"] <= 0.98 * base["last_price"]
    assert hit["recovery_target"] == "F(t)"
    assert hit["recovery_s"] is not None  # and reaches within 1% of the new F


def test_sell_program_moves_the_price_and_trips_the_halt(tmp_path: Path, market) -> None:
    """A program selling twice the volume so far in 5 s while the dealers step away (the
    flash crash) pushes the price past the 3% halt threshold: a halt the baseline lacks."""
    base, hit = _pair(market, "flash-crash", tmp_path)
    halt = market.symbols[0].halt_move_bps / 1e4
    low = hit["drawdown_trough"]
    assert low <= hit["pre_event_price"] * (1 - halt)
    assert hit["max_drawdown"] > base["max_drawdown"]
    assert base["halts"] == 0
    assert hit["halts"] >= 1
    assert hit["pnl"]["stress-seller"] < 0  # selling into a falling market costs the seller
    assert "stress-seller" not in base["pnl"]
    # per strategy class, from agents.metrics: the market makers' PnL fell further
    assert (hit["classes"]["FixedSpreadMarketMaker"]["max_drawdown"]
            > base["classes"]["FixedSpreadMarketMaker"]["max_drawdown"])
    assert hit["classes"]["TWAPExecutor"]["pnl"] < 0 and "TWAPExecutor" not in base["classes"]


def test_liquidity_withdrawal_widens_the_spread(tmp_path: Path, market) -> None:
    base, hit = _pair(market, [{"kind": "liquidity_withdrawal", "at_s": 15.0,
                                "duration_s": 10.0}], tmp_path)  # fmt: skip
    assert hit["mean_spread"] > 1.2 * base["mean_spread"]
    assert hit["mean_depth"] < base["mean_depth"]


def test_withdrawn_market_makers_quote_nothing_then_come_back(market) -> None:
    m = SimMarket.from_config(market)
    stress.install(m, [{"kind": "liquidity_withdrawal", "at_s": 5.0, "duration_s": 5.0}])
    m.run(until_ns=7 * NS)
    makers = m.population("mm")
    assert makers and all(not c.portfolio.orders for c in makers)
    m.run(until_ns=12 * NS)
    assert all(c.portfolio.orders for c in makers)


def test_fat_finger_trips_the_band_or_moves_the_price(tmp_path: Path, market) -> None:
    base, hit = _pair(market, [{"kind": "fat_finger", "at_s": 15.0, "qty": 200,
                                "price_pct": -20.0}], tmp_path)  # fmt: skip
    assert base["band_rejects"] == 0 and hit["band_rejects"] == 1  # 20% below: outside the 5% band
    base, hit = _pair(market, [{"kind": "fat_finger", "at_s": 15.0, "qty": 200,
                                "price_pct": -4.0}], tmp_path / "inside")  # fmt: skip
    # inside the band it trades through the bids: the price falls at least 0.5% below the
    # pre-event price within the event
    assert hit["drawdown_trough"] <= 0.995 * hit["pre_event_price"]
    assert hit["drawdown_trough"] < base["drawdown_trough"]


def test_herding_cascade_makes_trend_followers_trade(market) -> None:
    m = SimMarket.from_config(market)
    comp = stress.named("herding-cascade", {"at_s": 5.0})
    comp.install(stress.SimHost(m))
    m.run(until_ns=6 * NS)
    assert all(c.agent.params.threshold_ticks == 1.0 and c.agent.params.order_size == 10
               for c in m.population("trend"))  # fmt: skip
    dry = SimMarket.from_config(market)
    comp.install(stress.SimHost(dry), dry=True)
    dry.run(until_ns=30 * NS)
    m.run(until_ns=30 * NS)
    calm = [(c.orders_sent, c.portfolio.volume) for c in dry.population("trend")]
    herd = [(c.orders_sent, c.portfolio.volume) for c in m.population("trend")]
    # activity: the followers trade more (bigger orders, more signals: fewer orders may do it)
    assert sum(v for _, v in herd) > 1.2 * sum(v for _, v in calm)


def test_a_run_is_deterministic(tmp_path: Path, market) -> None:
    a = stress.run(market, "sell-program", until_s=25.0, out_dir=tmp_path / "a")
    b = stress.run(market, "sell-program", until_s=25.0, out_dir=tmp_path / "b")
    assert a["seeds"] == [
        {**row, "dirs": a["seeds"][0]["dirs"]} for row in b["seeds"]
    ]


# ---------------------------------------------------------------------------- the command
def test_agora_stress_prints_both_sides_and_writes_run_dirs(tmp_path: Path) -> None:
    from deploy.cli import app

    out = tmp_path / "out"
    args = ["stress", str(STRESS), "--scenario", "flash-crash", "--until", "25", "--out",
            str(out), "--no-progress"]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    assert "largest price drawdown" in res.output and "with scenario" in res.output
    assert "TWAP" in res.output  # the seller's class (TWAPExecutor), in the PnL table
    for side in ("baseline", "scenario"):
        d = out / "seed-1" / side
        assert (d / "trades.parquet").is_file() and (d / "summary.json").is_file()
    res = CliRunner().invoke(app, ["stress", str(STRESS), "--until", "25", "--json",
                                   "--seeds", "2", "--out", str(out / "j")])  # fmt: skip
    assert res.exit_code == 0, res.output
    data = json.loads(res.output)
    assert [r["seed"] for r in data["seeds"]] == [1, 2]
    assert math.isfinite(data["seeds"][1]["scenario"]["max_drawdown"])


def test_agora_stress_user_mistakes_are_one_line(tmp_path: Path) -> None:
    import subprocess
    import sys

    for args, needle in ((["--scenario", "meltdown"], "unknown scenario"),
                         (["--param", "nope=1"], "no parameter nope"),
                         (["--param", "at_s=500"], "after the run's end"),
                         (["--seeds", "x"], "--seeds")):  # fmt: skip
        p = subprocess.run([sys.executable, "-m", "deploy.cli", "stress", str(STRESS), *args,
                            "--out", str(tmp_path)], capture_output=True, text=True,
                           cwd=ROOT)  # fmt: skip
        assert p.returncode == 2, p.stderr
        assert needle in p.stderr and "Traceback" not in p.stderr


def test_a_scenario_the_market_cannot_run_is_refused_before_it_runs(tmp_path: Path) -> None:
    no_fair_value = MarketConfig()  # the default market: no [fundamental] table
    with pytest.raises(ValueError, match=r"needs a fair value"):
        stress.run(no_fair_value, "fundamental-shock", until_s=30.0, out_dir=tmp_path)
    with pytest.raises(ValueError, match="names symbol 'XYZ'"):
        stress.install(SimMarket(no_fair_value), [{"kind": "fat_finger", "symbol": "XYZ"}])
    path = tmp_path / "m.toml"
    path.write_text('[[symbols]]\nsymbol = "AGR"\n[[scenario]]\nname = "fundamental-shock"\n')
    with pytest.raises(UserError, match="needs a fair value"):
        load_market(path)
