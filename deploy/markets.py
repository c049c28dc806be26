"""The market `agora up` runs when given no file: several hundred agents on one symbol.

Kept in code (not a data file) so it ships with the package; `agora market-file` prints it
as TOML to start your own from.
"""

from __future__ import annotations

from agents.config import ClearingTerms, LatencyConfig, MarketConfig, Population
from clearing.fees import FeeSchedule
from exchange.symbols import SymbolSpec

__all__ = ["default_market", "to_toml"]


def default_market() -> MarketConfig:
    """AGR around 100.00; a fair-value crowd, noise, market makers, trend and mean-reversion."""
    slow = LatencyConfig(kind="exponential", network_us=2_000, decision_us=500)
    fast = LatencyConfig(kind="fixed", network_us=50, decision_us=20)
    return MarketConfig(
        name="agora-default",
        seed=1,
        symbols=[SymbolSpec(symbol="AGR", reference_price=10_000, band_bps=1_000,
                            band_reference="last", halt_move_bps=500)],
        fundamental={"process": "gaussian", "scale": 0.0005},
        fundamental_interval_s=0.5,
        clearing=ClearingTerms(
            fees=FeeSchedule(maker_bps=-0.5, taker_bps=1.0),
            starting_cash=100_000_000,  # 1,000,000.00
            starting_positions={"AGR": 5_000},
            short_limit=5_000,
        ),
        populations=[
            Population(name="zi", strategy="zi", count=200, latency=slow),
            Population(name="fv", strategy="fair_value", count=100, latency=slow,
                       params={"rate_per_s": 0.5}),
            Population(name="noise", strategy="noise", count=20, latency=slow),
            Population(name="trend", strategy="trend", count=12, latency=slow),
            Population(name="mr", strategy="mean_reversion", count=8, latency=slow),
            Population(name="mm", strategy="avellaneda_stoikov", count=2, latency=fast,
                       params={"neutral": "start"}),
            Population(name="hft", strategy="imbalance", count=3, latency=fast),
        ],
    )


def to_toml(market: MarketConfig) -> str:
    """A market as TOML (the format `load_market` reads)."""
    data = market.model_dump(mode="json", exclude_none=True)
    lines = [f"name = {_v(data['name'])}", f"seed = {data['seed']}"]
    if "duration_s" in data:
        lines.append(f"duration_s = {data['duration_s']}")
    lines.append(f"fundamental_interval_s = {data['fundamental_interval_s']}")
    lines.append(f"fundamental = {_v(data['fundamental'])}")
    for spec in data["symbols"]:
        lines += ["", "[[symbols]]", *(f"{k} = {_v(v)}" for k, v in spec.items())]
    lines += ["", "[clearing]", *(f"{k} = {_v(v)}" for k, v in data["clearing"].items())]
    for pop in data["populations"]:
        lines += ["", "[[populations]]", *(f"{k} = {_v(v)}" for k, v in pop.items())]
    return "\n".join(lines) + "\n"


def _v(value: object) -> str:
    """A TOML value: inline tables for maps, JSON-compatible scalars and arrays otherwise."""
    import json

    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{json.dumps(k)} = {_v(v)}" for k, v in value.items()) + " }"
    if isinstance(value, list):
        return "[" + ", ".join(_v(v) for v in value) + "]"
    return json.dumps(value)
