"""Simulated time: the kernel's clock and tie rule, and a whole market on it (agents.sim).

Everything is measured in virtual time: no sleeps, no wall-clock thresholds.
"""

from __future__ import annotations

import pytest

from agents.agent import Agent
from agents.config import LatencyConfig, MarketConfig, Population
from agents.events import Quote
from agents.sim import Kernel, SimMarket
from agents.sim.output import HAVE_PYARROW, tables, write_parquet
from clearing.fees import FeeSchedule, fee_for
from exchange.symbols import SymbolSpec

US = 1_000
MS = 1_000_000
S = 1_000_000_000


# ---------------------------------------------------------------------------------- agents
class RandomTrader(Agent):
    """Limit orders around the mid at exponential intervals; cancels its oldest beyond 4."""

    def on_start(self) -> None:
        self.draws: list[float] = []
        self.ctx.set_timer("go", 1 + int(self.ctx.rng.integers(0, 50 * MS)), repeat=False)

    def on_timer(self, name: str) -> None:
        ctx = self.ctx
        r = ctx.rng
        u = float(r.random())
        self.draws.append(u)
        q = ctx.quote("AGR")
        mid = q.mid if q is not None and q.mid is not None else 10_000
        side = "buy" if u < 0.5 else "sell"
        offset = int(r.integers(-3, 10))
        price = round(mid - offset if side == "buy" else mid + offset)
        ctx.submit("AGR", side, int(r.integers(1, 6)), price)
        if len(ctx.open_orders()) > 4:
            ctx.cancel(ctx.open_orders()[0].client_order_id)
        ctx.set_timer("go", 1 + int(r.exponential(20 * MS)), repeat=False)


class Metronome(Agent):
    """Draws one number per tick of a fixed timer; posts a far-away order now and then."""

    def on_start(self) -> None:
        self.draws: list[float] = []
        self.ctx.set_timer("tick", 7 * MS)

    def on_timer(self, name: str) -> None:
        u = float(self.ctx.rng.random())
        self.draws.append(u)
        if u < 0.3:
            self.ctx.buy("AGR", 1, 9_500 + int(u * 100))


class BookWatcher(Agent):
    """Records when each top of book reaches it, and what its lazy view says."""

    def on_start(self) -> None:
        self.seen: list[tuple[int, Quote]] = []

    def on_book(self, quote: Quote) -> None:
        self.seen.append((self.ctx.now(), quote))


class OneShot(Agent):
    """Sends one limit order when its timer fires at `at_ns`."""

    def __init__(self, at_ns: int, side: str, price: int, qty: int = 1) -> None:
        super().__init__()
        self.at_ns, self.side, self.price, self.qty = at_ns, side, price, qty

    def on_start(self) -> None:
        self.updates = []
        self.ctx.set_timer("once", self.at_ns - self.ctx.now(), repeat=False)

    def on_timer(self, name: str) -> None:
        self.ctx.submit("AGR", self.side, self.qty, self.price)

    def on_order(self, update) -> None:
        self.updates.append((self.ctx.now(), update))


def random_market(seed: int, n: int = 20, extra: bool = False) -> SimMarket:
    sim = SimMarket(seed=seed)
    for i in range(n):
        kind = ("fixed", "uniform", "exponential")[i % 3]
        sim.add_agent(
            RandomTrader(), f"r{i}", latency=LatencyConfig(kind=kind, network_us=50 + 10 * i)
        )
    if extra:
        sim.add_agent(RandomTrader(), "extra", latency=LatencyConfig(network_us=30))
    return sim


# ---------------------------------------------------------------------------------- kernel
def test_kernel_runs_in_time_order_and_stops_where_told():
    k = Kernel(seed=1)
    seen = []
    for at in (30, 10, 20, 10):
        k.schedule(at, lambda at=at: seen.append((k.now, at)))
    assert k.run(until_ns=15) == 2
    assert [t for t, _ in seen] == [10, 10]
    assert k.now == 15  # the clock moves to the horizon when nothing is due before it
    assert k.run(max_events=1) == 1 and k.now == 20
    k.run()
    assert [t for t, _ in seen] == [10, 10, 20, 30]
    assert k.events_processed == 4
    with pytest.raises(ValueError):
        k.schedule(5, print)


def test_kernel_chained_events_and_stop():
    k = Kernel(seed=2)
    ticks = []

    def tick():
        ticks.append(k.now)
        if len(ticks) == 5:
            k.stop()
        k.schedule_in(100, tick)

    k.schedule(0, tick)
    k.run()
    assert ticks == [0, 100, 200, 300, 400]


def _tie_order(seed: int) -> list[str]:
    k = Kernel(seed=seed)
    order: list[str] = []
    for name in ("a", "b", "c"):  # scheduled in this order, for the same instant
        k.schedule(1_000, order.append, name)
    k.run()
    return order


def test_tie_rule_is_random_across_seeds_but_fixed_per_seed():
    orders = [tuple(_tie_order(seed)) for seed in range(40)]
    assert orders == [tuple(_tie_order(seed)) for seed in range(40)]  # reproducible
    assert len(set(orders)) > 1  # not insertion order every time
    firsts = {o[0] for o in orders}
    assert firsts == {"a", "b", "c"}  # everybody wins a tie for some seed


def test_tie_rule_between_agents_is_not_by_creation_order():
    """Two agents whose orders reach the engine in the same nanosecond: who is first varies
    with the seed (and only with it), not with the order they were added in."""
    winners = []
    for seed in range(16):
        sim = SimMarket(seed=seed, record_arrivals=True)
        sim.add_agent(OneShot(MS, "buy", 9_990), "first", latency=LatencyConfig(network_us=100))
        sim.add_agent(OneShot(MS, "buy", 9_991), "second", latency=LatencyConfig(network_us=100))
        sim.run(until_ns=2 * MS)
        assert [a[0] for a in sim.arrivals] == [MS + 100 * US] * 2
        winners.append(sim.arrivals[0][1])
    again = []
    for seed in range(16):
        sim = SimMarket(seed=seed, record_arrivals=True)
        sim.add_agent(OneShot(MS, "buy", 9_990), "first", latency=LatencyConfig(network_us=100))
        sim.add_agent(OneShot(MS, "buy", 9_991), "second", latency=LatencyConfig(network_us=100))
        sim.run(until_ns=2 * MS)
        again.append(sim.arrivals[0][1])
    assert winners == again
    assert set(winners) == {"first", "second"}


# ---------------------------------------------------------------------------------- timers
class Clock(Agent):
    def on_start(self) -> None:
        self.fired: list[tuple[str, int]] = []
        self.ctx.set_timer("every", MS)
        self.ctx.set_timer("once", 2_500 * US, repeat=False)
        self.ctx.set_timer("dropped", 500 * US, repeat=False)
        self.ctx.cancel_timer("dropped")
        self.ctx.set_timer("moved", 100 * US, repeat=False)
        self.ctx.set_timer("moved", 3_200 * US, repeat=False)  # replaces the first

    def on_timer(self, name: str) -> None:
        self.fired.append((name, self.ctx.now()))
        if name == "every" and self.ctx.now() == 4 * MS:
            self.ctx.cancel_timer("every")


def test_timers_fire_at_their_virtual_times():
    sim = SimMarket(seed=1)
    agent = Clock()
    sim.add_agent(agent, "clock")
    sim.run(until_ns=10 * MS)
    assert sorted(agent.fired, key=lambda x: (x[1], x[0])) == [
        ("every", 1 * MS),
        ("every", 2 * MS),
        ("once", 2_500 * US),
        ("every", 3 * MS),
        ("moved", 3_200 * US),
        ("every", 4 * MS),
    ]
    assert sim.now == 10 * MS


# ---------------------------------------------------------------------------------- determinism
def _trade_rows(sim: SimMarket) -> list[tuple]:
    t = sim.trades
    return list(zip(*(t[k] for k in t), strict=True))


def test_same_seed_same_run():
    a = random_market(5)
    a.run(until_ns=3 * S)
    b = random_market(5)
    b.run(until_ns=3 * S)
    rows = _trade_rows(a)
    assert len(rows) > 50
    assert rows == _trade_rows(b)
    assert a.top_of_book() == b.top_of_book()
    assert a.results() == b.results()
    assert a.kernel.events_processed == b.kernel.events_processed


@pytest.mark.skipif(not HAVE_PYARROW, reason="pyarrow not installed")
def test_same_seed_same_parquet_bytes(tmp_path):
    paths = []
    for run in ("one", "two"):
        sim = random_market(11)
        sim.run(until_ns=1 * S)
        sim.finish()
        paths.append(write_parquet(sim, tmp_path / run))
    for name in ("trades", "top_of_book", "agents"):
        assert paths[0][name].read_bytes() == paths[1][name].read_bytes()

    import pyarrow.parquet as pq

    trades = pq.read_table(paths[0]["trades"])
    assert trades.num_rows == len(sim.trades["ts"]) > 0
    assert trades.column_names == list(sim.trades)
    agents = pq.read_table(paths[0]["agents"]).to_pydict()
    assert agents["name"] == [c.name for c in sim.agents]


def test_different_seed_different_run():
    a = random_market(5)
    a.run(until_ns=2 * S)
    b = random_market(6)
    b.run(until_ns=2 * S)
    assert _trade_rows(a) != _trade_rows(b)


def test_adding_an_agent_changes_no_other_agents_draws():
    runs = []
    for extra in (False, True):
        sim = SimMarket(seed=9)
        for i in range(8):
            sim.add_agent(RandomTrader(), f"r{i}", latency=LatencyConfig(network_us=80))
        watched = Metronome()
        ctx = sim.add_agent(
            watched, "watched", latency=LatencyConfig(kind="exponential", network_us=120)
        )
        ctx.draw_log = []
        if extra:
            sim.add_agent(RandomTrader(), "newcomer", latency=LatencyConfig(network_us=10))
        sim.run(until_ns=2 * S)
        runs.append((watched.draws, ctx.draw_log, _trade_rows(sim)))
    (draws_a, lat_a, trades_a), (draws_b, lat_b, trades_b) = runs
    assert trades_a != trades_b  # the newcomer did change the market...
    assert len(draws_a) == len(draws_b) > 200
    assert draws_a == draws_b  # ...but not the watched agent's own stream
    n = min(len(lat_a), len(lat_b))
    assert n > 50
    assert lat_a[:n] == lat_b[:n]  # nor its latency stream (consumed as far as it went)


# ---------------------------------------------------------------------------------- latency
def test_latency_delays_what_an_agent_sees_and_what_it_sends():
    sim = SimMarket(seed=3, record_arrivals=True)
    fast, slow = BookWatcher(), BookWatcher()
    sim.add_agent(fast, "fast", latency=LatencyConfig(network_us=10))
    sim.add_agent(slow, "slow", latency=LatencyConfig(network_us=1_000, decision_us=20))
    poster = OneShot(5 * MS, "sell", 10_010, qty=3)
    sim.add_agent(poster, "poster", latency=LatencyConfig(network_us=200))
    sim.run(until_ns=20 * MS)

    published = sim.quotes("AGR")
    assert len(published) == 1
    quote = published[0]
    assert quote.ts == 5 * MS + 200 * US  # the order reached the engine after 200 us
    assert fast.seen == [(quote.ts + 10 * US, quote)]
    assert slow.seen == [(quote.ts + 1_000 * US, quote)]
    # the poster's own report arrives one network latency after the engine accepted it
    assert [(t, u.exec_type) for t, u in poster.updates] == [(quote.ts + 200 * US, "new")]

    # orders sent at the same instant arrive after decision + network latency
    sim2 = SimMarket(seed=3, record_arrivals=True)
    sim2.add_agent(OneShot(MS, "buy", 9_000), "quick", latency=LatencyConfig(network_us=10))
    sim2.add_agent(
        OneShot(MS, "buy", 9_001),
        "laggard",
        latency=LatencyConfig(network_us=1_000, decision_us=20),
    )
    sim2.run(until_ns=5 * MS)
    arrivals = {name: ts for ts, name, kind, _ in sim2.arrivals}
    assert arrivals == {"quick": MS + 10 * US, "laggard": MS + 1_020 * US}


class Peeker(Agent):
    """Does not override on_book: its view is refreshed lazily when its timer fires."""

    def on_start(self) -> None:
        self.views = []
        self.ctx.set_timer("peek", 100 * US)

    def on_timer(self, name: str) -> None:
        _bids, asks = self.ctx.book("AGR", 5)
        self.views.append((self.ctx.now(), self.ctx.quote("AGR"), asks))


def test_lazy_view_and_depth_lag_by_the_agents_latency():
    sim = SimMarket(seed=4)
    peek = Peeker()
    sim.add_agent(peek, "peek", latency=LatencyConfig(network_us=300))
    sim.add_agent(OneShot(MS, "sell", 10_005, qty=2), "poster", latency=LatencyConfig(network_us=0))
    sim.run(until_ns=2 * MS)
    assert peek.views
    for now, quote, asks in peek.views:
        if now < MS + 300 * US:
            assert quote is None and asks == []
        else:
            assert quote is not None and quote.ask == 10_005 and quote.ask_qty == 2
            assert asks == [(10_005, 2, 1)]


class ViewReader(Agent):
    """Reads its view at some timer firings only (every `every`-th), by accessor or dict."""

    def __init__(self, every: int, by_dict: bool) -> None:
        super().__init__()
        self.every, self.by_dict, self.n = every, by_dict, 0

    def on_start(self) -> None:
        self.views: dict[int, tuple] = {}
        self.ctx.set_timer("look", 700 * US)

    def on_timer(self, name: str) -> None:
        self.n += 1
        self.last_fire = self.ctx.now()
        if self.n % self.every:
            return
        ctx = self.ctx
        if self.by_dict:
            view = (ctx.quotes.get("AGR"), ctx.last_prices.get("AGR"),
                    ctx.fundamentals.get("AGR"))  # fmt: skip
        else:
            view = (ctx.quote("AGR"), ctx.last_price("AGR"), ctx.fundamental("AGR"))
        self.views[ctx.now()] = view


def test_a_view_read_late_is_what_the_reading_handler_should_see():
    """The view is brought up to date when read: whatever was skipped before, a read shows the
    last item of each stream published up to ``now - view latency`` of the reading handler."""
    sim = SimMarket(seed=11, fundamental=Walk(), fundamental_interval_ns=3 * MS)
    for i in range(12):
        kind = ("fixed", "uniform", "exponential")[i % 3]
        sim.add_agent(
            RandomTrader(), f"r{i}", latency=LatencyConfig(kind=kind, network_us=50 + 10 * i)
        )
    latency = LatencyConfig(network_us=300)
    readers = [ViewReader(1, False), ViewReader(3, False), ViewReader(5, True)]
    ctxs = [sim.add_agent(r, f"reader{i}", latency=latency) for i, r in enumerate(readers)]
    sim.run(until_ns=400 * MS)
    quotes, trades = sim.quotes("AGR"), sim.trades
    assert len(quotes) > 50 and len(trades["ts"]) > 20

    def expected(now: int) -> tuple:
        h = now - 300 * US
        q = [x for x in quotes if x.ts <= h]
        t = [p for ts, p in zip(trades["ts"], trades["price"], strict=True) if ts <= h]
        f = (h // (3 * MS)) if h >= 0 else None  # Walk's value published at k * 3 ms
        return (q[-1] if q else None, t[-1] if t else None,
                None if f is None else pytest.approx(100.0 + f * 0.003))  # fmt: skip

    for r in readers:
        assert len(r.views) > 100
        for now, view in r.views.items():
            assert view == expected(now), now
    # the sparse readers saw what the every-time reader saw at the same instants
    for r in readers[1:]:
        assert all(readers[0].views[now] == view for now, view in r.views.items())
    # read after the run: the view at the agent's last handler, by accessor and by dict
    for r, ctx in zip(readers, ctxs, strict=True):
        view = (ctx.quote("AGR"), ctx.last_price("AGR"), ctx.fundamental("AGR"))
        assert view == expected(r.last_fire)
        assert view == (ctx.quotes["AGR"], ctx.last_prices["AGR"], ctx.fundamentals["AGR"])


class Fifo(Agent):
    """Submits and at once cancels, with random latency: the cancel must never overtake."""

    def on_start(self) -> None:
        self.rejects = 0
        self.canceled = 0
        self.ctx.set_timer("go", 50 * US)

    def on_timer(self, name: str) -> None:
        clid = self.ctx.buy("AGR", 1, 9_000)
        self.ctx.cancel(clid)

    def on_order(self, update) -> None:
        if update.exec_type == "cancel_rejected":
            self.rejects += 1
        elif update.exec_type == "canceled":
            self.canceled += 1


def test_an_agents_messages_keep_their_order():
    sim = SimMarket(seed=8)
    agent = Fifo()
    sim.add_agent(agent, "fifo", latency=LatencyConfig(kind="exponential", network_us=200))
    sim.run(until_ns=100 * MS)
    assert agent.canceled > 1_000
    assert agent.rejects == 0


# ---------------------------------------------------------------------------------- trading
class Maker(Agent):
    def on_start(self) -> None:
        self.ctx.set_timer("quote", 10 * MS)

    def on_timer(self, name: str) -> None:
        self.ctx.cancel_all("AGR")
        self.ctx.sell("AGR", 4, 10_002)
        self.ctx.buy("AGR", 4, 9_998)


class Taker(Agent):
    def on_start(self) -> None:
        self.fills = []
        self.trades_seen = []
        self.ctx.set_timer("take", 7 * MS)

    def on_timer(self, name: str) -> None:
        side = "buy" if self.ctx.rng.random() < 0.5 else "sell"
        self.ctx.submit("AGR", side, int(self.ctx.rng.integers(1, 4)))

    def on_fill(self, fill) -> None:
        self.fills.append(fill)

    def on_trade(self, trade) -> None:
        self.trades_seen.append(trade)


def test_an_unmodified_agent_trades_and_its_portfolio_matches_the_engine():
    fees = FeeSchedule(maker_bps=-0.5, taker_bps=2.0)
    sim2 = SimMarket(seed=12, fees=fees, starting_cash=1_000_000, starting_positions={"AGR": 50})
    maker2, taker2 = Maker(), Taker()
    m2 = sim2.add_agent(maker2, "maker", latency=LatencyConfig(network_us=50))
    t2 = sim2.add_agent(taker2, "taker", latency=LatencyConfig(kind="uniform", network_us=150))
    sim2.run(until_ns=2 * S)
    # stop trading at a quiet instant and let everything in flight land, then compare
    m2.cancel_timer("quote")
    t2.cancel_timer("take")
    sim2.run(until_ns=sim2.now + 50 * MS)
    sim2.finish()
    rows = _trade_rows(sim2)
    for ctx, liquidity in ((m2, "maker"), (t2, "taker")):
        cash, pos = 1_000_000, 50
        fills = 0
        for _ts, _tid, _sym, price, qty, _aggr, buyer, seller in rows:
            if ctx.account not in (buyer, seller):
                continue
            fills += 1
            fee = fee_for(price * qty, fees.rate(liquidity))
            if buyer == ctx.account:
                cash -= price * qty + fee
                pos += qty
            else:
                cash += price * qty - fee
                pos -= qty
        assert fills == ctx.portfolio.fills > 50
        assert ctx.position("AGR") == pos
        assert ctx.cash == cash
    assert len(taker2.fills) == t2.portfolio.fills
    # the engine agrees on the open orders too
    engine_open = {o.client_order_id for o in sim2.engine.open_orders("maker")}
    assert engine_open == {o.client_order_id for o in m2.open_orders()}
    res = sim2.results()
    i = res["name"].index("taker")
    last = sim2.trades["price"][-1]
    assert res["pnl"][i] == t2.cash - 1_000_000 + (t2.position("AGR") - 50) * last


def test_rejected_order_reaches_the_agent():
    spec = SymbolSpec(symbol="AGR", reference_price=10_000, band_bps=100)
    sim = SimMarket(seed=1, symbols=[spec])
    agent = OneShot(MS, "sell", 20_000)  # outside the band
    ctx = sim.add_agent(agent, "bad", latency=LatencyConfig(network_us=10))
    sim.run(until_ns=2 * MS)
    [(_, update)] = agent.updates
    assert update.exec_type == "rejected" and update.reason == "price_outside_band"
    assert update.side == "sell" and update.price == 20_000
    assert ctx.open_orders() == []


# ---------------------------------------------------------------------------------- fundamentals
class Walk:
    """Any object with step(dt_seconds) -> {symbol: value} is a fundamental source."""

    def __init__(self) -> None:
        self.t = 0.0

    def step(self, dt: float) -> dict[str, float]:
        self.t += dt
        return {"AGR": 100.0 + self.t}


class Informed(Agent):
    def on_start(self) -> None:
        self.got = []

    def on_fundamental(self, symbol: str, value: float) -> None:
        self.got.append((self.ctx.now(), symbol, value, self.ctx.fundamental(symbol)))


def test_fundamental_values_arrive_after_latency():
    sim = SimMarket(seed=2, fundamental=Walk(), fundamental_interval_ns=100 * MS)
    informed = Informed()
    sim.add_agent(informed, "informed", latency=LatencyConfig(network_us=250))
    lazy = Peeker()
    lctx = sim.add_agent(lazy, "lazy", latency=LatencyConfig(network_us=250))
    sim.run(until_ns=350 * MS)
    assert [(t, v) for t, _, v, _ in informed.got] == [
        (250 * US, 100.0),
        (100 * MS + 250 * US, pytest.approx(100.1)),
        (200 * MS + 250 * US, pytest.approx(100.2)),
        (300 * MS + 250 * US, pytest.approx(100.3)),
    ]
    assert all(v == seen for _, _, v, seen in informed.got)
    lctx.refresh()
    assert lctx.fundamental("AGR") == pytest.approx(100.3)


# ---------------------------------------------------------------------------------- the zoo
def test_market_from_config_with_the_strategy_zoo():
    pytest.importorskip("agents.strategies")
    config = MarketConfig(
        seed=3,
        fundamental={"scale": 0.0005, "step_s": 0.1},
        populations=[
            Population(name="zi", strategy="zi", count=30),
            Population(name="fv", strategy="fair_value", count=5),
            Population(name="mm", strategy="fixed_spread_mm", count=1),
            Population(name="trend", strategy="trend", count=2),
        ],
    )
    a = SimMarket.from_config(config)
    a.run(duration_ns=20 * S)
    a.finish()
    b = SimMarket.from_config(config)
    b.run(duration_ns=20 * S)
    b.finish()
    assert len(a.agents) == 38
    assert len(a.trades["ts"]) > 0
    assert _trade_rows(a) == _trade_rows(b)
    out = tables(a)
    assert set(out) == {"trades", "top_of_book", "agents", "refusals"}  # no orders, positions
    assert len(out["agents"]["name"]) == 38


def test_batch_auctions_run_on_the_virtual_clock():
    spec = SymbolSpec(symbol="AGR", reference_price=10_000, batch_interval_ns=100 * MS)
    sim = SimMarket(seed=5, symbols=[spec])
    sim.add_agent(OneShot(30 * MS, "buy", 10_003, qty=5), "b", latency=LatencyConfig())
    sim.add_agent(OneShot(40 * MS, "sell", 9_998, qty=3), "s", latency=LatencyConfig())
    sim.add_agent(OneShot(150 * MS, "sell", 10_001, qty=2), "s2", latency=LatencyConfig())
    sim.run(until_ns=450 * MS)
    t = sim.trades
    assert list(zip(t["ts"], t["qty"], t["aggressor"], strict=True)) == [
        (100 * MS, 3, "none"),  # the first uncross, at the first batch time
        (200 * MS, 2, "none"),  # the next one, with no order arriving at that instant
    ]
    assert [ev[3] for ev in sim.status] == ["auction"] * len(sim.status)
    assert len(sim.status) == 4  # one STATUS per batch (100..400 ms), each a wake-up


class BuyThenCancel(Agent):
    def on_start(self) -> None:
        self.ctx.set_timer("go", MS, repeat=False)

    def on_timer(self, name: str) -> None:
        self.ctx.cancel(self.ctx.buy("AGR", 1, 9_000))


def test_deliveries_count_each_message_while_the_kernel_pops_batches():
    sim = SimMarket(seed=3)
    sim.add_agent(BuyThenCancel(), "bc", latency=LatencyConfig(network_us=100))
    sim.run(until_ns=10 * MS)
    # pops: on_start, the timer, the two messages' arrival (one packet), the two reports
    # (produced at the same instant: one packet back)
    assert sim.kernel.events_processed == 4
    # deliveries: on_start, the timer, 2 messages at the engine, 2 reports at the agent
    assert sim.deliveries == 6
    assert sim.orders_in == 2
