"""The run directory tells the whole story: orders, sampled positions and refusals that agree
with the trades and the agents, settings and refusal counts in summary.json, and recording that
never changes the history. Also the sweep's ranking of parameter sets by facts passed."""

from __future__ import annotations

import json
import tomllib
from collections import Counter
from pathlib import Path

import pytest

from agents.config import MarketConfig
from agents.sim.market import SimMarket
from agents.sim.output import ORDERS_COLUMNS, POSITIONS_COLUMNS, REFUSALS_COLUMNS, tables
from agents.sim.sweep import fact_drivers, rank_points, run_history

pq = pytest.importorskip("pyarrow.parquet")

S = 1_000_000_000

# three crowds: one that trades, one that quotes far outside the band, one with nothing to
# trade with (no shares, no cash): every refusal reason the story must tell
STORY = """
name = "story"
seed = 3

[[symbols]]
symbol = "AGR"
reference_price = 10_000
band_bps = 100

[clearing]
starting_cash = 100_000_000
[clearing.starting_positions]
AGR = 500

[[populations]]
name = "core"
strategy = "zi"
count = 6
[populations.params]
mean_interval_ns = 200_000_000
lifetime_ns = 5_000_000_000

[[populations]]
name = "wide"
strategy = "zi"
count = 2
[populations.params]
mean_interval_ns = 1_000_000_000
max_offset_ticks = 400
anchor = "reference"
market_prob = 0.0

[[populations]]
name = "poor"
strategy = "zi"
count = 2
cash = 0
positions = { AGR = 0 }
[populations.params]
mean_interval_ns = 1_000_000_000
"""


def story() -> MarketConfig:
    return MarketConfig.model_validate(tomllib.loads(STORY))


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("story") / "run"
    summary = run_history(story(), until_s=60, out_dir=out, positions_s=5)
    return out, summary


def read(out: Path, name: str) -> dict[str, list]:
    return pq.read_table(out / f"{name}.parquet").to_pydict()


def test_orders_are_every_action_the_agents_sent(run: tuple[Path, dict]) -> None:
    out, _ = run
    orders, agents = read(out, "orders"), read(out, "agents")
    assert tuple(orders) == ORDERS_COLUMNS
    assert set(orders["action"]) == {"new", "cancel"}  # zi cancels, never replaces
    news = Counter(a for a, act in zip(orders["account"], orders["action"], strict=True)
                   if act == "new")  # fmt: skip
    assert news == dict(zip(agents["account"], agents["orders_sent"], strict=True))
    assert orders["ts"] == sorted(orders["ts"])
    sent: dict[str, tuple] = {}
    for _ts, acct, sym, act, side, px, qty, clid in zip(*orders.values(), strict=True):
        assert sym == "AGR" and side in ("buy", "sell")
        if act == "new":
            assert qty > 0 and clid.startswith(acct + ".")
            sent[clid] = (side, px)
        else:  # a cancel names an order the same account sent before, with its side and price
            assert sent[clid] == (side, px) and clid.startswith(acct + ".")


def test_positions_are_sampled_on_the_grid_and_agree_with_the_trades(
    run: tuple[Path, dict],
) -> None:
    out, summary = run
    pos, trades, agents = read(out, "positions"), read(out, "trades"), read(out, "agents")
    assert tuple(pos) == POSITIONS_COLUMNS
    accounts = agents["account"]
    grid = sorted(set(pos["ts"]))
    assert grid == [i * 5 * S for i in range(13)]  # 0, 5 s, ... 60 s
    assert len(pos["ts"]) == len(grid) * len(accounts)
    start = {"poor": 0}
    fills = list(zip(trades["ts"], trades["qty"], trades["buy_account"], trades["sell_account"],
                     strict=True))  # fmt: skip
    moved = 0
    for ts, acct, sym, position, cash in zip(*pos.values(), strict=True):
        assert sym == "AGR"
        first = held = start.get(acct.rsplit("-", 1)[0], 500)
        held += sum(q for t, q, b, _ in fills if t <= ts and b == acct)
        held -= sum(q for t, q, _, s in fills if t <= ts and s == acct)
        assert position == held, (ts, acct)
        if ts == 0:
            assert cash == (0 if acct.startswith("poor") else 100_000_000)
        moved += position != first
    assert moved > 0  # the market did trade, and the samples show it
    assert summary["settings"]["positions_interval_s"] == 5


def test_refusals_name_their_reason_and_population(run: tuple[Path, dict]) -> None:
    out, summary = run
    ref = read(out, "refusals")
    assert tuple(ref) == REFUSALS_COLUMNS
    by_pop = Counter(zip(ref["population"], ref["reason"], strict=True))
    assert by_pop[("wide", "price_outside_band")] > 0
    assert by_pop[("poor", "insufficient_position")] > 0
    assert by_pop[("poor", "insufficient_funds")] > 0
    assert not any(pop == "core" for pop, _ in by_pop)  # enough of everything, inside the band
    counts = summary["refusals"]
    assert counts["total"] == len(ref["ts"])
    assert counts["by_reason"] == dict(Counter(ref["reason"]))
    assert {p: sum(c.values()) for p, c in counts["by_population"].items()} == dict(
        Counter(ref["population"])
    )
    assert ref["ts"] == sorted(ref["ts"])
    saved = json.loads((out / "summary.json").read_text())
    assert saved["refusals"] == counts


def test_summary_holds_the_market_settings_and_the_verdict(run: tuple[Path, dict]) -> None:
    out, _ = run
    s = json.loads((out / "summary.json").read_text())
    (sym,) = s["settings"]["symbols"]
    assert (sym["symbol"], sym["tick_size"], sym["band_bps"], sym["band_ticks"]) == (
        "AGR", "0.01", 100, [9_900, 10_100]
    )  # fmt: skip
    clearing = s["settings"]["clearing"]
    assert clearing["starting_cash"] == 100_000_000
    assert clearing["starting_positions"] == {"AGR": 500} and clearing["short_limit"] == 0
    pops = {p["name"]: p for p in s["settings"]["populations"]}
    assert {n: p["count"] for n, p in pops.items()} == {"core": 6, "wide": 2, "poor": 2}
    assert pops["poor"]["starting_positions"] == {"AGR": 0}
    assert pops["poor"]["starting_cash"] == 0 and pops["wide"]["strategy"] == "zi"
    assert pops["wide"]["params"]["max_offset_ticks"] == 400
    assert s["verdict"]["total"] == 7 and set(s["verdict"]["facts"]) >= {"kurtosis", "clustering"}
    assert s["verdict"]["bar_s"] == 5.0


def _trade_rows(market: SimMarket) -> list[tuple]:
    return list(zip(*market.trades.values(), strict=True))


def test_recording_the_story_never_changes_the_history() -> None:
    plain = SimMarket.from_config(story())
    plain.run(until_ns=30 * S)
    told = SimMarket.from_config(story(), record_orders=True, positions_interval_ns=S // 3)
    for until in (7 * S, 7 * S + 1, 19 * S, 30 * S):  # chunks off the grid, too
        told.run(until_ns=until)
    assert len(plain.trades["ts"]) > 50
    assert _trade_rows(plain) == _trade_rows(told)
    assert plain.kernel.events_processed == told.kernel.events_processed
    assert plain.refusal_log == told.refusal_log
    grid = sorted({row[0] for row in told.position_log})
    assert grid == [i * (S // 3) for i in range(len(grid))] and grid[-1] <= 30 * S < grid[-1] + S
    out = tables(told)
    assert {"orders", "positions", "refusals"} <= set(out)
    assert set(tables(plain)) == {"trades", "top_of_book", "agents", "refusals"}


def test_sampling_respects_max_events_and_an_empty_queue() -> None:
    m = SimMarket.from_config(story(), positions_interval_ns=S)
    n = m.run(until_ns=10 * S, max_events=50)
    assert n == 50 and m.kernel.events_processed == 50
    stopped = SimMarket.from_config(story(), positions_interval_ns=S)
    stopped.schedule(2 * S, stopped.kernel.stop)  # a stop on the grid is a stop
    stopped.run(until_ns=10 * S)
    assert stopped.now == 2 * S and sorted({r[0] for r in stopped.position_log}) == [0, S, 2 * S]
    idle = SimMarket(positions_interval_ns=S)  # no agents, no fundamental: nothing to run
    assert idle.run() == 0 and idle.position_log == []
    with pytest.raises(ValueError):
        SimMarket(positions_interval_ns=0)


def _row(run: str, seed: int, params: dict, passed: dict[str, bool]) -> dict:
    facts = {k: {"passed": v} for k, v in passed.items()}
    return {"run": run, "seed": seed, "params": params,
            "summary": {"verdict": {"passed": sum(passed.values()), "total": len(passed),
                                    "facts": facts}}}  # fmt: skip


def test_sweep_ranks_parameter_sets_by_facts_passed_and_names_the_drivers() -> None:
    t, f = True, False
    rows = [
        _row("run-0000", 1, {"a": 1}, {"tails": f, "clustering": f, "memory": t}),
        _row("run-0001", 2, {"a": 1}, {"tails": f, "clustering": t, "memory": t}),
        _row("run-0002", 1, {"a": 2}, {"tails": t, "clustering": t, "memory": t}),
        _row("run-0003", 2, {"a": 2}, {"tails": t, "clustering": f, "memory": t}),
        _row("run-0004", 1, {"a": 3}, {"tails": t, "clustering": t, "memory": t}),
        _row("run-0005", 2, {"a": 3}, {"tails": t, "clustering": t, "memory": t}),
    ]
    ranks = rank_points(rows)
    assert [r.params["a"] for r in ranks] == [3, 2, 1]
    best = ranks[0]
    assert (best.passed_mean, best.passed_min, best.all_passed, best.seeds) == (3, 3, 2, (1, 2))
    assert ranks[2].per_fact == {"tails": 0, "clustering": 1, "memory": 2}
    drivers = fact_drivers(rows)
    assert drivers["tails"][0].param == "a" and drivers["tails"][0].spread == 1.0
    assert drivers["tails"][0].shares == {"1": 0.0, "2": 1.0, "3": 1.0}
    assert drivers["memory"][0].spread == 0.0  # passes everywhere: "a" does not drive it
    with pytest.raises(ValueError, match="no verdict"):
        rank_points([{"run": "old", "seed": 1, "params": {}, "summary": {}}])
