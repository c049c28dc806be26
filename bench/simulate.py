"""Simulated-time throughput: the reference market (~1,100 agents) on the virtual clock.

    python bench/simulate.py [--minutes 30] [--seed 1] [--profile] [--parquet DIR] [--record]
    python bench/simulate.py --market examples/fair_value.toml --minutes 25   # any market file

The reference market, when the strategy zoo (`agents.strategies.STRATEGIES`) is importable:
1,000 zero-intelligence traders, 100 fair-value traders (Gaussian fair value F(t), stepped
every 100 ms), 2 market makers (one fixed-spread, one Avellaneda-Stoikov) and 12 trend
followers, one symbol. Without the zoo, the same head counts of simple local random agents.

Printed: kernel events/s (heap pops), deliveries/s (the events a kernel with one message per
event would pop: each message at the engine, each report and public item at each agent, each
timer; ours pops fewer because one pop carries everything an agent sends or receives in one
instant, and one publication to all agents with the same latency), agent handler calls,
orders/s (messages that reached the engine: new, cancel, replace, mass cancel), trades,
simulated and wall time. Wall time is the
run only (building the market is not counted). `--record` turns on what a run directory records
beyond the trades (every order action, positions every 10 s), to measure what it costs.
`--profile` runs under cProfile and prints the top functions by own time.
"""

from __future__ import annotations

import argparse
import time

try:  # noqa: SIM105  (first: keeps bench/ off the import path, see _path.py)
    import _path  # noqa: F401
except ModuleNotFoundError:  # a multiprocessing child: the parent's path is clean already
    pass

from agents.agent import Agent
from agents.config import LatencyConfig, MarketConfig
from agents.sim import SimMarket

NS = 1_000_000_000


class _LocalRandom(Agent):
    """Fallback agent: a limit order around the mid every ~1 s, cancels the oldest beyond 5."""

    def on_start(self) -> None:
        self.ctx.set_timer("t", int(self.ctx.rng.integers(1, NS)), repeat=False)

    def on_timer(self, name: str) -> None:
        ctx = self.ctx
        r = ctx.rng
        q = ctx.quote("AGR")
        mid = q.mid if q is not None and q.mid is not None else 10_000
        side = "buy" if r.random() < 0.5 else "sell"
        offset = int(r.integers(-3, 20))
        px = round(mid - offset if side == "buy" else mid + offset)
        ctx.submit("AGR", side, int(r.integers(1, 10)), px)
        if len(ctx.portfolio.orders) > 5:
            ctx.cancel(next(iter(ctx.portfolio.orders)))
        ctx.set_timer("t", max(1, int(r.exponential(NS))), repeat=False)


def build(seed: int, record: bool = False) -> tuple[SimMarket, str]:
    try:
        from agents.strategies import STRATEGIES
    except ImportError:
        STRATEGIES = {}
    config = MarketConfig(
        seed=seed,
        fundamental={"scale": 0.0005, "step_s": 0.1},
        fundamental_interval_s=0.1,
    )
    if {"zi", "fair_value", "trend"} <= set(STRATEGIES) and (
        "fixed_spread_mm" in STRATEGIES or "avellaneda_stoikov" in STRATEGIES
    ):
        mms = [m for m in ("fixed_spread_mm", "avellaneda_stoikov") if m in STRATEGIES]
        if len(mms) == 1:
            mms = mms * 2
        config = config.model_copy(
            update={
                "populations": [
                    _pop("zi", "zi", 1000, LatencyConfig(kind="uniform", network_us=500)),
                    _pop("fv", "fair_value", 100, LatencyConfig(network_us=300)),
                    _pop("mm0", mms[0], 1, LatencyConfig(network_us=50, decision_us=5)),
                    _pop("mm1", mms[1], 1, LatencyConfig(network_us=80, decision_us=5)),
                    _pop("trend", "trend", 12, LatencyConfig(kind="exponential", network_us=200)),
                ]
            }
        )
        story = {"record_orders": True, "positions_interval_ns": 10 * NS} if record else {}
        return SimMarket.from_config(config, **story), "reference (agents.strategies)"
    market = SimMarket(config)
    for i in range(1114):
        market.add_agent(_LocalRandom(), f"rnd-{i}", latency=LatencyConfig(network_us=100))
    return market, "local random agents (agents.strategies not available)"


def _pop(name: str, strategy: str, count: int, latency: LatencyConfig):
    from agents.config import Population

    return Population(name=name, strategy=strategy, count=count, latency=latency)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=30.0, help="simulated minutes")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--profile", action="store_true", help="run under cProfile")
    ap.add_argument("--parquet", default=None, help="write the outputs to this directory")
    ap.add_argument("--record", action="store_true", help="record orders and positions too")
    ap.add_argument("--market", default=None,
                    help="a market file instead of the reference market (e.g. one file before "
                         "and after a change, run in turn)")  # fmt: skip
    args = ap.parse_args()

    if args.market:
        from agents.config import load_market

        cfg = load_market(args.market)
        market = SimMarket.from_config(cfg, seed=args.seed)
        kind = args.market
    else:
        market, kind = build(args.seed, args.record)
    duration = round(args.minutes * 60 * NS)
    print(f"market: {kind}, {len(market.agents)} agents, {args.minutes:g} simulated minutes"
          + (", recording orders and positions" if args.record else ""))  # fmt: skip
    print(f"cores:  {cores()}")
    calls_before = _handler_calls(market)
    if args.profile:
        import cProfile
        import pstats

        prof = cProfile.Profile()
        t0 = time.perf_counter()
        prof.enable()
        market.run(duration_ns=duration)
        market.finish()
        prof.disable()
        wall = time.perf_counter() - t0
        cpu = wall
    else:
        t0, c0 = time.perf_counter(), time.process_time()
        market.run(duration_ns=duration)
        market.finish()
        wall = time.perf_counter() - t0
        cpu = time.process_time() - c0
    events = market.kernel.events_processed
    orders = market.orders_in
    trades = len(market.trades["ts"])
    print(f"wall time      {wall:10.2f} s   (simulated {duration / NS:,.0f} s, "
          f"x{duration / NS / wall:,.1f} real time)")  # fmt: skip
    print(f"kernel events  {events:10,d}     {events / wall:12,.0f} events/s   (heap pops)")
    print(f"cpu time       {cpu:10.2f} s   {events / cpu:12,.0f} events/cpu-s   (steadier than "
          "wall time on a shared machine)")  # fmt: skip
    deliveries = market.deliveries
    print(
        f"deliveries     {deliveries:10,d}     {deliveries / wall:12,.0f} events/s   "
        "(one per message, report, public item per agent, timer: see SimMarket.deliveries)"
    )
    print(
        f"handler calls  {_handler_calls(market) - calls_before:10,d}     (incl. bucket deliveries)"
    )
    print(f"orders         {orders:10,d}     {orders / wall:12,.0f} orders/s")
    print(f"trades         {trades:10,d}     {trades / wall:12,.0f} trades/s")
    print(f"quotes         {sum(len(market.quotes(s)) for s in market.symbols):10,d}")
    if trades:
        print(f"last price     {market.trades['price'][-1]:10,d} ticks")
    if args.parquet:
        from agents.sim.output import write_parquet

        for name, path in write_parquet(market, args.parquet).items():
            print(f"wrote {name}: {path}")
    if args.profile:
        pstats.Stats(prof).sort_stats("tottime").print_stats(25)


def cores() -> str:
    """Which cores run compiled (`agora accel build`), for the record of a figure."""
    import accel

    active = accel.active()
    if not active:
        return "Python (no compiled cores: `agora accel build` compiles them)"
    return f"compiled ({len(active)} of {len(accel.MODULES)} modules: {', '.join(active)})"


def _handler_calls(market: SimMarket) -> int:
    return market.handler_calls


if __name__ == "__main__":
    main()
