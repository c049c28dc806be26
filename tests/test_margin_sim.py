"""Short selling with margin in simulated time: agents keep trading both ways, and the gate
refuses the short sales that would over-extend them, counted by reason and population."""

from __future__ import annotations

from collections import Counter
from typing import Any

from agents.config import MarketConfig
from agents.sim import SimMarket
from agents.sim.output import refusal_counts, settings

S = 10**9


def market(short_margin: float) -> MarketConfig:
    return MarketConfig.model_validate({
        "seed": 3,
        "symbols": [{"symbol": "AGR", "reference_price": 10_000, "band_bps": 1_000,
                     "band_reference": "last"}],
        # 2,000.00 each and no shares: every sale is a short sale
        "clearing": {"starting_cash": 200_000, "starting_positions": {"AGR": 0},
                     "short_limit": 1_000_000, "short_margin": short_margin,
                     "maintenance_margin": short_margin * 0.6},
        "populations": [{"name": "zi", "strategy": "zi", "count": 30},
                        {"name": "fv", "strategy": "fair_value", "count": 10},
                        {"name": "noise", "strategy": "noise", "count": 5}],
    })  # fmt: skip


def run(short_margin: float) -> SimMarket:
    sim = SimMarket.from_config(market(short_margin))
    sim.run(duration_ns=20 * S)
    return sim


def test_agents_short_within_margin_keep_trading_and_over_extension_is_refused() -> None:
    sim = run(0.5)
    assert sim.ledger is not None and sim.ledger.violations == []
    trades: dict[str, Any] = sim.trades
    late = Counter(a for t, a in zip(trades["ts"], trades["aggressor"], strict=True)
                   if t > sim.start_ns + 10 * S)  # fmt: skip
    assert late["buy"] > 0 and late["sell"] > 0  # both ways, in the second half too
    shorts = [a for a in sim.ledger.accounts.values() if any(p.qty < 0 for p in
                                                             a.positions.values())]  # fmt: skip
    assert len(shorts) >= 5
    counts = refusal_counts(sim)
    assert counts["by_population"]["zi"].get("insufficient_margin", 0) > 0
    assert "insufficient_position" not in counts["by_reason"]  # shorts are allowed here
    assert settings(sim)["clearing"]["short_margin"] == 0.5
    assert settings(sim)["clearing"]["maintenance_margin"] == 0.3
    # the same seed, the same market: the same trades and refusals
    again = run(0.5)
    assert again.trades == sim.trades and again.refusal_log == sim.refusal_log


def test_without_margin_the_same_market_shorts_further_and_is_never_refused_for_margin() -> None:
    sim = run(0.0)
    assert "insufficient_margin" not in refusal_counts(sim)["by_reason"]
    deepest = min(p.qty for a in sim.ledger.accounts.values() for p in a.positions.values())
    with_margin = run(0.5).ledger
    assert with_margin is not None
    assert deepest < min(p.qty for a in with_margin.accounts.values()
                         for p in a.positions.values())  # fmt: skip
