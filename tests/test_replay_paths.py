"""The compiled fast path and the Python path fill the same orders the same way; the
project's market makers run on a replay unchanged; synthetic quotes from depth."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from agents.replay.config import ReplayConfig
from agents.replay.depth import DepthBook, vwap
from agents.replay.driver import Replay
from agents.replay.jit import HAVE_NUMBA
from agents.replay.tape import NO_ASK, NO_BID, Chunk

T0 = 1_714_568_400_000_000_000


def random_chunk(n: int, seed: int) -> Chunk:
    """A random one-symbol tape: a mid walking by a tick, quotes and trades around it."""
    rng = np.random.default_rng(seed)
    ts = T0 + np.cumsum(rng.integers(0, 400_000, n)).astype(np.int64)
    kind = (rng.random(n) < 0.3).astype(np.int8)
    mid = 10_000 + np.cumsum(rng.choice([-1, 0, 0, 0, 1], n))
    spread = rng.integers(1, 3, n)
    a = np.where(kind == 1, mid + rng.integers(-2, 3, n), mid - spread).astype(np.int64)
    b = rng.integers(1, 9, n).astype(np.int64)
    c = np.where(kind == 1, rng.choice([-1, 0, 1], n), mid + spread).astype(np.int64)
    d = np.where(kind == 1, 0, rng.integers(1, 9, n)).astype(np.int64)
    return Chunk(ts, kind, np.zeros(n, np.int32), a, b, c, d)


CONFIGS = [
    ReplayConfig(fill_rule=rule, queue=queue, size=size, latency_ns=lat, cancel_latency_ns=clat)
    for rule in ("quote-through", "trade-through")
    for queue in ("none", "displayed")
    for size, lat, clat in (("whole", 0, None), ("capped", 700_000, 300_000))
]


@pytest.mark.skipif(not HAVE_NUMBA, reason="the compiled path needs numba: pip install "
                    "-e '.[replay]'")  # fmt: skip
@pytest.mark.parametrize("cfg", CONFIGS, ids=lambda c: f"{c.fill_rule}-{c.queue}-{c.size}")
def test_compiled_and_python_paths_give_identical_fills(cfg: ReplayConfig) -> None:
    from agents.replay.fast import JoinQuoter, run_compiled

    chunk = random_chunk(6_000, 11)
    py = Replay(JoinQuoter({"size": 3, "max_inventory": 12}), ["X"], cfg).run([chunk])
    fast = run_compiled([chunk.take(slice(0, 2_500)), chunk.take(slice(2_500, None))], ["X"],
                        cfg, params=(0, 3, 12))  # fmt: skip
    cols = ("ts", "side", "price", "qty", "rule", "liquidity")
    got_py = list(zip(*(py.fills[c] for c in cols), strict=True))
    got_fast = list(zip(*(fast.fills[c] for c in cols), strict=True))
    assert len(got_py) > 20
    assert got_py == got_fast
    assert py.events == fast.events == len(chunk)
    assert py.positions["position"][-1] == fast.positions["position"][-1]


@pytest.fixture(scope="module")
def sim_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A short `agora simulate` run directory of the default market."""
    from agents.config import load_market
    from agents.sim.sweep import run_history

    out = tmp_path_factory.mktemp("sim") / "run"
    root = Path(__file__).resolve().parent.parent
    run_history(load_market(root / "examples" / "market.toml"), 3, 20.0, out)
    return out


@pytest.mark.parametrize("strategy", ["avellaneda_stoikov", "fixed_spread_mm"])
@pytest.mark.parametrize("rule", ["quote-through", "trade-through"])
def test_the_project_market_makers_run_on_a_replay_as_they_are(
    sim_run: Path, strategy: str, rule: str
) -> None:
    from agents.replay.backtest import run_agent
    from agents.replay.readers import open_tape
    from agents.strategies import STRATEGIES

    tape = open_tape(sim_run)
    assert tape.layout == "simulate" and tape.symbols == ["AGR"]
    cfg = ReplayConfig(fill_rule=rule, latency_ns=200_000, sample_ns=100_000_000)
    run = run_agent(STRATEGIES[strategy], {"requote_on_book": True}, tape, cfg)
    s = run.summary
    import pyarrow.parquet as pq

    rows = sum(pq.read_metadata(sim_run / f).num_rows
               for f in ("top_of_book.parquet", "trades.parquet"))  # fmt: skip
    assert s["events"] == rows > 500 and s["orders"] > 10
    if strategy == "fixed_spread_mm":  # quotes 2 ticks from the mid: the tape reaches it
        assert s["fills"] > 0
    assert set(s["fills_by_rule"]) <= {rule, "taker"}
    # the agent's own book-keeping (from its reports) equals the replay's
    rec = run.record
    signed = sum(q if side == "buy" else -q for side, q in
                 zip(rec.fills["side"], rec.fills["qty"], strict=True))  # fmt: skip
    assert rec.positions["position"][-1] == signed
    m = s["metrics"]["AGR"]
    assert m["market_making"]["fills"] == s["fills"]
    assert m["profitability"]["total"] is not None


def test_vwap_and_synthetic_quotes_from_depth() -> None:
    asks = [(101, 2), (102, 3), (105, 10)]
    assert vwap(asks, 2) == 101
    assert vwap(asks, 4) == (2 * 101 + 2 * 102) / 4
    assert vwap(asks, 16) is None
    book = DepthBook()
    book.reset([{"price": 99, "qty": 1, "count": 1}, {"price": 98, "qty": 5, "count": 2}],
               [{"price": 101, "qty": 2, "count": 1}])  # fmt: skip
    book.apply("sell", 102, 3)
    # selling 4: 1 at 99 and 3 at 98 -> 98.25, floored; buying 4: 2 at 101, 2 at 102 -> 101.5
    assert book.synthetic(4) == (98, 4, 102, 4)
    book.apply("sell", 102, 0)
    assert book.synthetic(4)[2] == NO_ASK  # only 2 lots offered now


def test_walk_forward_tunes_on_train_and_judges_on_test(sim_run: Path, tmp_path: Path) -> None:
    import json
    import subprocess
    import sys

    r = subprocess.run([sys.executable, "-m", "deploy.cli", "backtest", "fixed_spread_mm",
                        "--data", str(sim_run), "--fill-rule", "trade-through", "--rolling",
                        "8:4", "--grid", "half_spread_ticks=1,3", "--param",
                        "requote_on_book=true", "--out", str(tmp_path / "wf"), "--json"],
                       capture_output=True, text=True, timeout=600)  # fmt: skip
    assert r.returncode == 0, r.stderr[-3000:]
    report = json.loads(r.stdout.strip().splitlines()[-1])
    assert len(report) == 3  # 20 s of tape: train 8 s, test the next 4, moved on by 4
    for k, w in enumerate(report, 1):
        assert w["train"][1] == w["test"][0] and w["params"]["half_spread_ticks"] in (1, 3)
        train = json.loads((tmp_path / "wf" / f"train-{k}" / "summary.json").read_text())
        test = json.loads((tmp_path / "wf" / f"test-{k}" / "summary.json").read_text())
        for run in (train, test):
            assert {k: run["params"][k] for k in w["params"]} == w["params"]
        assert test["first_ts"] >= w["test"][0] and test["last_ts"] < w["test"][1]
        assert train["first_ts"] >= w["train"][0] and train["last_ts"] < w["train"][1]


@pytest.mark.skipif(not HAVE_NUMBA, reason="the compiled path needs numba: pip install "
                    "-e '.[replay]'")  # fmt: skip
def test_a_compiled_policy_that_allocates_runs_and_fills_the_same() -> None:
    """The loop runs without reference counting; a policy with its own arrays needs it and
    gets the counted loop, with the same fills as the same decisions made without arrays."""
    import numba

    from agents.replay.fast import run_compiled

    @numba.njit
    def join_with_scratch(ts, bid, bid_qty, ask, ask_qty, position, behind, size, max_inv):
        want = np.zeros(2, np.int64)
        if bid != NO_BID and position < max_inv:
            want[0] = bid - behind
        if ask != NO_ASK and position > -max_inv:
            want[1] = ask + behind
        return want[0], want[1], size

    chunk = random_chunk(4_000, 5)
    cfg = ReplayConfig(fill_rule="trade-through", latency_ns=300_000)
    plain = run_compiled([chunk], ["X"], cfg, params=(0, 2, 6))
    scratch = run_compiled([chunk], ["X"], cfg, policy=join_with_scratch, params=(0, 2, 6))
    assert len(plain.fills["ts"]) > 20
    assert scratch.fills == plain.fills
    assert scratch.events == plain.events == len(chunk)
