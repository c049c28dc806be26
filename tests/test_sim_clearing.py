"""The clearing cores in simulated time: the same gate refuses, the same ledger settles."""

from __future__ import annotations

from agents.agent import Agent
from agents.config import LatencyConfig, MarketConfig
from agents.sim import SimMarket
from agents.strategies import load_strategy
from clearing.fees import FeeSchedule

S = 10**9


class Greedy(Agent):
    """Tries to buy far more than it can pay for, and to sell shares it does not have."""

    def on_start(self) -> None:
        self.reasons: list[str | None] = []
        self.ctx.buy("AGR", 1_000_000, 10_000)
        self.ctx.sell("AGR", 5, 10_000)

    def on_order(self, update) -> None:
        self.reasons.append(update.reason)


def test_the_gate_refuses_in_simulated_time_with_the_live_reasons() -> None:
    sim = SimMarket(MarketConfig(), seed=1)
    ctx = sim.add_agent(Greedy(), "greedy", cash=10_000, positions={})
    sim.run(duration_ns=S)
    assert sorted(r for r in ctx.agent.reasons if r) == ["insufficient_funds",
                                                        "insufficient_position"]  # fmt: skip


def test_every_agents_own_view_equals_the_ledger_after_a_busy_run() -> None:
    config = MarketConfig.model_validate({
        "seed": 11,
        "clearing": {"fees": FeeSchedule(maker_bps=-1, taker_bps=3).model_dump(),
                     "starting_cash": 2_000_000, "starting_positions": {"AGR": 200}},
    })  # fmt: skip
    sim = SimMarket(config, seed=11)
    zi = load_strategy("zi")
    for i in range(30):
        sim.add_agent(zi({"mean_interval_ns": 50_000_000}), f"z{i}",
                      latency=LatencyConfig(kind="exponential", network_us=100))  # fmt: skip
    sim.run(duration_ns=20 * S)
    assert sim.ledger is not None and sim.ledger.settled_through > 100
    assert sim.ledger.violations == []
    for ctx in sim.agents:
        acct = sim.ledger.accounts[ctx.account]
        assert ctx.portfolio.cash == acct.cash, ctx.name
        own = {s: q for s, q in ctx.portfolio.positions.items() if q}
        assert own == {s: p.qty for s, p in acct.positions.items() if p.qty}, ctx.name
        assert acct.cash >= 0 and all(p.qty >= 0 for p in acct.positions.values())
    total = sum(p.qty for a in sim.ledger.accounts.values() for p in a.positions.values())
    assert total == 30 * 200


def test_an_agent_added_mid_run_leaves_the_gate_in_step_with_the_ledger() -> None:
    sim = SimMarket(MarketConfig(), seed=5)
    zi = load_strategy("zi")
    for i in range(20):
        sim.add_agent(zi({"mean_interval_ns": 20_000_000}), f"z{i}",
                      latency=LatencyConfig(network_us=100))  # fmt: skip
    sim.run(duration_ns=5 * S)
    assert sim.ledger is not None and sim.gate is not None
    assert sim.ledger.settled_through > 50
    sim.add_agent(zi(), "late", latency=LatencyConfig(network_us=100))
    for name, acct in sim.ledger.accounts.items():
        g = sim.gate.accounts.get(name)
        if g is None:
            continue  # the fee account
        assert g.cash + g.pending_cash == acct.cash, name
        for symbol, pos in acct.positions.items():
            assert g.position(symbol) == pos.qty, (name, symbol)
