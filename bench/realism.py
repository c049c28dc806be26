"""Does the simulated market look like a market, and does it stay alive? Every figure vs its target.

    python bench/realism.py                      # everything (long: about an hour of CPU)
    python bench/realism.py --part facts         # fair-value facts, 3 seeds x (Gaussian, stable F)
    python bench/realism.py --part market        # default markets, 3 simulated hours, 2 seeds
    python bench/realism.py --part market --markets toml   # only examples/market.toml
    python bench/realism.py --part sweep         # which parameters drive which fact
    python bench/realism.py --seconds 3000 --seeds 1   # shorter runs while iterating
    python bench/realism.py --part facts --hawkes   # facts with self-exciting arrivals (HAWKES)

Part *facts*: `examples/fair_value.toml` for 15,000 simulated seconds, 5 s bars of the last
trade, with F a plain Gaussian random walk and again a Lévy-stable walk, judged by the
product's verdict (`agents.analysis.verdict.facts_verdict`, what `agora facts` prints: one set
of bands everywhere). A seed passes when every fact passes; the part passes when 2 of 3 seeds
do, per F variant. Facts: excess kurtosis >= 3; Hill tail index in [2, 5] on each tail
(standard Hill estimator, k = 5% of the returns, each tail on its own); |ACF(r, k)| inside
the 95% noise band 1.96/sqrt(n) at most lags 1..20 and never above 0.1; ACF(|r|, 10) >= 0.1;
ACF(|r|, 50) >= 0.05 and below ACF(|r|, 10); the kurtosis of 5, 10, 30, 60 and 100 s
returns positive at every scale and falling (ends below where it starts, downward trend).

Part *market*: `examples/market.toml` and the built-in market of `agora up`, 3 simulated
hours, seeds 1 and 2. Targets: trades per minute in the last hour >= 30% of the first hour's;
at least half of the fair-value and of the trend agents trade in the last hour; the median
|price - F| / F over the last hour's 5 s bars <= 2%; every market maker has a bid and an ask
resting at >= 99% of the once-a-minute checks.

The facts part also prints, as information, how bursty trading is: the variance/mean of the
trade count per 10 s (1 for a Poisson crowd) and its autocorrelation at 50 s. `--hawkes` runs
it with `HAWKES`, the self-exciting arrivals commented out in `examples/fair_value.toml`.

Part *sweep*: one-at-a-time changes of the shipped fair-value crowd's parameters (`SWEEP`;
with `--hawkes`, of the Hawkes set), and the facts each one moves: facts passed, their
figures, and the facts that fail.

Runs are CPU heavy: one process, meant to be started with `nice -n 10`.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

try:  # noqa: SIM105  (first: keeps bench/ off the import path, see _path.py)
    import _path  # noqa: F401
except ModuleNotFoundError:
    pass

import numpy as np

from agents.analysis.health import MarketHealth, health_verdict
from agents.analysis.stylized import acf, regular_closes
from agents.analysis.verdict import FactsVerdict, facts_verdict
from agents.config import MarketConfig, load_market
from agents.sim import SimMarket
from agents.sim.output import fundamental_table
from agents.strategies.market_maker import AvellanedaStoikov, FixedSpreadMarketMaker

NS = 1_000_000_000
ROOT = Path(__file__).resolve().parent.parent
FAIR_VALUE = ROOT / "examples" / "fair_value.toml"
MARKET = ROOT / "examples" / "market.toml"

GAUSSIAN_F = {"process": "gaussian", "scale": 0.0002, "step_s": 0.1}
"""The plain Gaussian random walk the facts are checked with (same per-step size as the
stable walk's scale, so the two variants differ only in the tails of F)."""


# --------------------------------------------------------------------------- the facts
def judge(closes: np.ndarray) -> FactsVerdict:
    """The product's verdict (`agora facts`) on the log returns of regular closes: the same
    bands and estimators here as in the CLI, the reports and the sweep."""
    return facts_verdict(np.diff(np.log(np.asarray(closes, dtype=float))))


def activity(ts: np.ndarray) -> dict[str, float]:
    """How bursty the trading is: trade counts per 10 s window (dispersion, memory)."""
    ts = np.asarray(ts, dtype=np.int64)
    if len(ts) < 2:
        return {"disp": float("nan"), "count_acf5": float("nan")}
    counts = np.bincount((ts - ts[0]) // (10 * NS)).astype(float)
    return {
        "disp": float(counts.var() / counts.mean()),  # 1 for Poisson arrivals
        "count_acf5": float(acf(counts, 5)[4]),  # the memory of activity at 50 s
    }


def fv_config(variant: str, seed: int, seconds: float, params: dict[str, Any] | None = None,
              path: Path = FAIR_VALUE) -> MarketConfig:  # fmt: skip
    cfg = load_market(path)
    data = cfg.model_dump(mode="python")
    data["seed"] = seed
    data["duration_s"] = seconds
    if variant == "gaussian":
        data["fundamental"] = {**GAUSSIAN_F}
    if params:
        for pop in data["populations"]:
            if pop["strategy"] == "fair_value":
                pop["params"].update(params)
    return MarketConfig.model_validate(data)


def simulate(cfg: MarketConfig, seconds: float) -> SimMarket:
    market = SimMarket.from_config(cfg, seed=cfg.seed)
    market.run(duration_ns=round(seconds * NS))
    return market


def closes_of(market: SimMarket, bar_ns: int) -> np.ndarray:
    t = market.trades
    return regular_closes(t["ts"], t["price"], bar_ns)


# --------------------------------------------------------------------------- printing
def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:8.3f}"
    return f"{v!s:>8}"


def part_facts(seeds: list[int], seconds: float, params: dict[str, Any] | None = None) -> bool:
    ok_all = True
    for variant in ("gaussian", "stable"):
        passed = 0
        print(f"\n== fair-value facts, F {variant}, {seconds:,.0f} s, 5 s bars ==")
        for seed in seeds:
            t0 = time.process_time()
            market = simulate(fv_config(variant, seed, seconds, params), seconds)
            v = judge(closes_of(market, 5 * NS))
            act = activity(market.trades["ts"])
            cpu = time.process_time() - t0
            passed += v.all_passed
            print(f"seed {seed}  ({cpu:,.0f} s CPU, {len(market.trades['ts']):,} trades, "
                  f"{v.n} returns, noise band +-{v.noise_band:.3f}): "
                  f"{v.passed}/{v.total} facts pass")
            for f in v.facts:
                print(f"  {f.title:<40}{_fmt(f.value):>10}  {f.band:<58}{f.mark}")
                print(f"      {f.detail}")
            print(f"  {'trades/10 s var/mean (info)':<40}{_fmt(act['disp']):>10}")
            print(f"  {'ACF(trades/10 s, 50 s) (info)':<40}{_fmt(act['count_acf5']):>10}")
            sys.stdout.flush()
        need = min(2, len(seeds))
        verdict = passed >= need
        ok_all &= verdict
        print(f"F {variant}: {passed}/{len(seeds)} seeds pass every fact "
              f"(need {need}): {'PASS' if verdict else 'FAIL'}")
    return ok_all


# --------------------------------------------------------------------------- market health
def health(cfg: MarketConfig, seconds: float, check_s: float = 60.0) -> dict[str, Any]:
    """Run `cfg` for `seconds`, checking the market makers' quotes every `check_s`."""
    market = SimMarket.from_config(cfg, seed=cfg.seed)
    pops = {p.name: p.strategy for p in cfg.populations}
    account_pop = {ctx.account: ctx.name.rsplit("-", 1)[0] for ctx in market.agents}
    mm_names = [ctx.name for ctx in market.agents
                if isinstance(ctx.agent, (AvellanedaStoikov, FixedSpreadMarketMaker))]  # fmt: skip
    checks = 0
    both = dict.fromkeys(mm_names, 0)
    symbol = cfg.symbols[0].symbol
    t = 0.0
    while t < seconds:
        t = min(seconds, t + check_s)
        market.run(until_ns=round(t * NS))
        checks += 1
        for name in mm_names:
            sides = {o.side for o in market.agent(name).open_orders(symbol)}
            both[name] += sides >= {"buy", "sell"}
    tr = market.trades
    ts = np.asarray(tr["ts"], dtype=np.int64)
    hour = 3600 * NS
    end = round(seconds * NS)
    first = ts < min(hour, end)
    last = ts >= end - hour
    per_min_first = first.sum() / (min(hour, end) / 60 / NS)
    per_min_last = last.sum() / (hour / 60 / NS) if end >= hour else float("nan")
    active_last: set[str] = set()
    for i in np.nonzero(last)[0]:
        active_last.add(tr["buy_account"][i])
        active_last.add(tr["sell_account"][i])
    share: dict[str, float] = {}
    for kind in ("fair_value", "trend"):
        members = [ctx.account for ctx in market.agents
                   if pops.get(account_pop[ctx.account]) == kind]  # fmt: skip
        if members:
            share[kind] = sum(a in active_last for a in members) / len(members)
    # |price - F| / F on the last hour's 5 s bars
    ft = fundamental_table(market)
    gap = float("nan")
    if ft["ts"] and len(ts):
        bar = 5 * NS
        px = regular_closes(ts, tr["price"], bar)
        start_bar = ts.min() // bar
        f_ts = np.asarray(ft["ts"], dtype=np.int64)
        f_val = np.asarray(ft["value"], dtype=float)
        grid = (start_bar + np.arange(len(px)) + 1) * bar - 1
        sel = grid >= end - hour
        idx = np.searchsorted(f_ts, grid[sel], side="right") - 1
        ok = idx >= 0
        tick = float(cfg.symbols[0].tick_size)
        f_now = f_val[idx[ok]]
        gap = float(np.median(np.abs(px[sel][ok] * tick - f_now) / f_now))
    return {
        "trades": len(ts),
        "per_min_first": float(per_min_first),
        "per_min_last": float(per_min_last),
        "ratio": float(per_min_last / per_min_first) if per_min_first else float("nan"),
        "share": share,
        "gap": gap,
        "mm_both": {n: both[n] / checks for n in mm_names},
        "last_price": market.last_price(symbol),
        "f_end": float(ft["value"][-1]) if ft["value"] else float("nan"),
    }


def health_verdicts(h: dict[str, Any]) -> list[tuple[str, str, str, bool]]:
    """The market part's rows, judged by the typed verdict (`agents.analysis.health`)."""
    verdict = health_verdict(MarketHealth(
        per_min_first=h["per_min_first"], per_min_last=h["per_min_last"],
        participation=h["share"], tracking_gap=h["gap"], two_sided=h["mm_both"],
    ))  # fmt: skip
    return [(r.title, r.shown, r.band, r.passed) for r in verdict.results]


def builtin_market() -> MarketConfig:
    from deploy.markets import default_market

    return default_market()


def part_market(seeds: list[int], seconds: float, which: str = "both") -> bool:
    ok_all = True
    markets = [("examples/market.toml", lambda: load_market(MARKET)),
               ("agora up built-in market", builtin_market)]  # fmt: skip
    if which != "both":
        markets = markets[:1] if which == "toml" else markets[1:]
    for label, make in markets:
        for seed in seeds:
            cfg = make()
            cfg = MarketConfig.model_validate({**cfg.model_dump(mode="python"), "seed": seed})
            t0 = time.process_time()
            h = health(cfg, seconds)
            cpu = time.process_time() - t0
            print(f"\n== {label}, seed {seed}, {seconds / 3600:.2f} simulated h "
                  f"({cpu:,.0f} s CPU, {h['trades']:,} trades, last price {h['last_price']}, "
                  f"F at end {h['f_end']:.2f}) ==")
            for name, value, target, ok in health_verdicts(h):
                ok_all &= ok
                print(f"  {name:<32}{value:>16}  {target:<8}{'PASS' if ok else 'FAIL'}")
            sys.stdout.flush()
    return ok_all


# --------------------------------------------------------------------------- sweep
HAWKES: dict[str, Any] = {
    "rate_per_s": 0.004, "hawkes_weight": 0.035, "hawkes_cap": 250.0, "hawkes_exponent": 0.15,
    "hawkes_tau_max_s": 3000.0, "activity_feedback": 0.0, "vol_feedback": 0.0,
    "alpha_a": 0.5, "alpha_b": 40.0, "k_shape": 1.0, "k_scale": 1.0, "sigma_scale": 0.0005,
    "delta_scale": 0.0001, "mood_gain": 0.0,
}  # fmt: skip
"""Self-exciting arrivals, as commented (off) in examples/fair_value.toml (without the mood)."""

SWEEP: list[tuple[str, dict[str, Any]]] = [
    ("as shipped", {}),
    ("no mood", {"mood_gain": 0.0, "mood_fast_gain": 0.0}),
    ("mood split, theta 0.3", {"mood_form": "split", "mood_chartists": 0.3}),
    ("no fast part", {"mood_fast_gain": 0.0}),
    ("fast part 0.5", {"mood_fast_gain": 0.5}),
    ("closes carry the mood now", {"mood_book_ns": 0}),
    ("one vol window (30 bars)", {"mood_vol_bars_long": 0}),
    ("no ratio cap", {"mood_ratio_cap": 0.0}),
    ("g = 1", {"mood_feedback": 1.0}),
    ("c = 1", {"mood_gain": 1.0}),
    ("mood memory 3000 bars", {"mood_memory_bars": 3000}),
    ("no vol feedback", {"vol_feedback": 0.0}),
    ("vol feedback 2", {"vol_feedback": 2.0}),
    ("no activity feedback", {"activity_feedback": 0.0}),
    ("orders live 10 s", {"lifetime_ns": 10 * NS}),
    ("D rounded to bars", {"lag": "bars"}),
]
"""One change at a time from the shipped crowd of examples/fair_value.toml."""

HAWKES_SWEEP: list[tuple[str, dict[str, Any]]] = [
    ("Hawkes (toml comment)", HAWKES),
    ("  same, Poisson 0.3/s/slot", {**HAWKES, "hawkes_weight": 0.0, "rate_per_s": 0.3}),
    ("  kernel 1..100 s", {**HAWKES, "hawkes_tau_max_s": 100.0}),
    ("  h 0.03", {**HAWKES, "hawkes_weight": 0.03}),
    ("  rate 0.008, h 0.03", {**HAWKES, "rate_per_s": 0.008, "hawkes_weight": 0.03}),
    ("  alpha ~ Beta(0.5, 20)", {**HAWKES, "alpha_b": 20.0}),
    ("  noise Gamma(2, 0.0003)", {**HAWKES, "sigma_scale": 0.0003}),
    ("  vol feedback 1", {**HAWKES, "vol_feedback": 1.0}),
]
"""The self-exciting crowd, then one change at a time of it (`--part sweep --hawkes`)."""


def part_sweep(seeds: list[int], seconds: float, sweep: list[tuple[str, dict[str, Any]]]) -> None:
    head = ("pass", "kurt", "hillL", "hillR", "acf1", "maxacf", "abs10", "abs50", "k100s",
            "tr/10s", "v/m")  # fmt: skip
    for seed in seeds:
        print(f"\n== sweep: one change at a time, F gaussian, seed {seed}, {seconds:,.0f} s ==")
        print(f"  {'variant':<28}" + "".join(f"{h:>8}" for h in head))
        for label, params in sweep:
            market = simulate(fv_config("gaussian", seed, seconds, params), seconds)
            v = judge(closes_of(market, 5 * NS))
            act = activity(market.trades["ts"])
            val = {f.key: float("nan") if f.value is None else f.value for f in v.facts}
            vals = (val["kurtosis"], val["hill_lower"], val["hill_upper"], v.acf_r[0],
                    val["no_linear_memory"], val["clustering"], val["slow_decay"],
                    val["aggregation"], len(market.trades["ts"]) / seconds * 10,
                    act["disp"])  # fmt: skip
            fails = ", ".join(f.key for f in v.facts if not f.passed)
            print(f"  {label:<28}{v.passed:>6}/{v.total}" + "".join(f"{x:8.3f}" for x in vals)
                  + (f"  fails: {fails}" if fails else ""))  # fmt: skip
            sys.stdout.flush()


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--part", choices=("facts", "market", "sweep", "all"), default="all")
    ap.add_argument("--seconds", type=float, default=None, help="override the run length")
    ap.add_argument("--seeds", type=int, default=None, help="how many seeds (1, 2, ...)")
    ap.add_argument("--markets", choices=("toml", "builtin", "both"), default="both",
                    help="market part: which default market(s)")
    ap.add_argument("--hawkes", action="store_true",
                    help="facts and sweep parts: the self-exciting crowd of HAWKES")  # fmt: skip
    args = ap.parse_args(argv)
    ok = True
    if args.part in ("facts", "all"):
        seeds = list(range(1, (args.seeds or 3) + 1))
        ok &= part_facts(seeds, args.seconds or 15_000, HAWKES if args.hawkes else None)
    if args.part in ("market", "all"):
        seeds = list(range(1, (args.seeds or 2) + 1))
        ok &= part_market(seeds, args.seconds or 3 * 3600, args.markets)
    if args.part in ("sweep", "all"):
        seeds = list(range(1, (args.seeds or 1) + 1))
        part_sweep(seeds, args.seconds or 5_000, HAWKES_SWEEP if args.hawkes else SWEEP)
    print(f"\noverall: {'PASS' if ok else 'FAIL'}")


if __name__ == "__main__":
    main()
