"""The fair-value market prices the fundamental when its traders know it (alpha near 1).

This is the model's basic sanity check (ARCHITECTURE.md, "The fair-value market model"): with
estimates alpha·F + (1-alpha)·L + noise and alpha ~ 1, trades happen where the crowd thinks
F is, so the traded log-price follows log F. Only the crowd trades here: no market maker,
no noise traders that could hold the price by themselves.
"""

from __future__ import annotations

import numpy as np

from agents.analysis.stylized import regular_closes
from agents.config import MarketConfig
from agents.sim import SimMarket
from agents.sim.output import fundamental_table

NS = 1_000_000_000


def informed_market(seed: int) -> MarketConfig:
    return MarketConfig.model_validate(
        {
            "seed": seed,
            "symbols": [{"symbol": "AGR", "reference_price": 10_000}],
            "fundamental": {"process": "gaussian", "scale": 0.001, "step_s": 0.1},
            "fundamental_interval_s": 0.1,
            "populations": [
                {
                    "name": "fv",
                    "strategy": "fair_value",
                    "count": 20,
                    "params": {
                        "rate_per_s": 0.5,
                        # alpha ~ Beta(50, 1): mean 0.98, high insight
                        "alpha_a": 50.0,
                        "alpha_b": 1.0,
                        # D ~ LogNormal(-3, 0.5) bars rounds to 0: fresh information
                        "d_mu": -3.0,
                        "d_sigma": 0.5,
                        # short-lived quotes: stale orders would print old fair values
                        "lifetime_ns": 2 * NS,
                    },
                }
            ],
        }
    )


def test_traded_log_price_tracks_log_fundamental() -> None:
    market = SimMarket.from_config(informed_market(seed=3))
    market.run(until_ns=900 * NS)
    market.finish()
    trades = market.trades
    assert len(trades["ts"]) > 1_000
    # last trade and last F of each 1 s bar, on the same grid (F is published from t = 0)
    closes = regular_closes(trades["ts"], trades["price"], NS)
    first_bar = trades["ts"][0] // NS
    f = fundamental_table(market)
    f_closes = regular_closes(f["ts"], f["value"], NS)[first_bar : first_bar + len(closes)]
    assert len(f_closes) == len(closes) > 800
    tick = float(market.specs["AGR"].tick_size)
    log_p = np.log(closes * tick)
    log_f = np.log(f_closes)
    assert np.std(log_f) > 0.005  # F moved enough for a correlation to mean something
    assert np.corrcoef(log_p, log_f)[0, 1] > 0.9
    # and the level is right, not just the direction: within a few fair-value steps
    assert abs(float(np.mean(log_p - log_f))) < 0.005
