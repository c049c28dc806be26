"""The `flow` background: the compiled flow book (`flowbook`) behind the environments' interface.

`FlowMarket` owns one book, its parameters for the current volatility regime, the regime
chain, the learning agents' latency draws and the impact of their own liquidity taking
(`agents.impact`, applied to the generator's reference price: the permanent part stays, the
temporary part decays). Every draw comes from the Generator it is given (the environment's).
"""

from __future__ import annotations

import math

import numpy as np

from agents.rl import flowbook as fb
from agents.rl.config import REGIMES, EnvConfig
from agents.rl.latency import LatencyDraws

__all__ = ["FlowMarket"]


class FlowMarket:
    """A `flow` market for `agents` learning agents, warmed up and ready for its first step."""

    kind = "flow"

    def __init__(self, config: EnvConfig, rng: np.random.Generator, agents: int,
                 regime: str) -> None:  # fmt: skip
        self.config = config
        self.rng = rng
        self.agents = agents
        self.step_s = config.step_ms / 1e3
        self.impact = config.impact.build()
        self.switching = regime == "switching"
        self.regime = str(rng.choice(REGIMES)) if self.switching else regime
        self._switch_p = 1.0 - math.exp(-config.flow.switch_rate * self.step_s)
        self.state = fb.new_state(config.flow.reference_price, agents,
                                  int(rng.integers(2**63)))
        self.p = self._params(self.regime)
        self.latency = LatencyDraws(config.latency, rng)
        f = config.flow
        fb.warm_up(self.state, self.p, f.initial_depth, f.initial_qty, f.warmup_s)
        s = self.state
        fb.step_all(s["rs"], s["book"], s["ag"], s["ai"], s["at"], s["res"], s["si"], s["sf"],
                    self.p, s["flog"], s["sf"][fb.F_T])  # fmt: skip
        self.rows: list[list[float]] = s["res"].tolist()
        self.now_ns = round(s["sf"][fb.F_T] * 1e9)  # the end of the last step
        self._res = self.state["res"]
        self._out = self.state["out"]
        self._si = self.state["si"]
        self._sf = self.state["sf"]
        self._pending = self.state["pending"]
        self._at = self.state["at"]

    def _params(self, regime: str) -> np.ndarray:
        f = self.config.flow
        r = f.regimes[regime]
        p = np.zeros(fb.N_PARAMS, np.float64)
        p[fb.P_LIMIT] = f.limit_rate * r.limit_rate_x
        p[fb.P_MARKET] = f.market_rate * r.market_rate_x
        p[fb.P_CANCEL] = f.cancel_rate
        p[fb.P_SIZE] = f.size_mean
        p[fb.P_MSIZE] = f.market_size_mean
        p[fb.P_HS] = f.half_spread * r.spread_x
        p[fb.P_DEPTH] = f.depth_mean * r.spread_x
        p[fb.P_PULL] = f.pull
        p[fb.P_SIGMA] = r.sigma
        p[fb.P_DECAY] = self.impact.decay_rate
        return p

    # ------------------------------------------------------------------ the interface
    @property
    def sigma(self) -> float:
        """The true volatility of the reference price now (ticks per √s)."""
        return float(self.p[fb.P_SIGMA])

    def quote(self, i: int, bid: int, bid_qty: int, ask: int, ask_qty: int,
              ioc: bool = False) -> None:  # fmt: skip
        """Agent i's new quotes (qty 0: none on that side); they reach the book after the
        agent's latency within the next step. `ioc`: what does not trade at once is
        cancelled (a marketable order)."""
        s = self.state
        s["npx"][i, 0] = bid
        s["nqty"][i, 0] = bid_qty
        s["npx"][i, 1] = ask
        s["nqty"][i, 1] = ask_qty
        s["ioc"][i] = 1 if ioc else 0
        s["pending"][i] = 1

    def step(self) -> None:
        """One step of simulated time."""
        sf = self._sf
        t0 = sf[fb.F_T]
        t1 = t0 + self.step_s
        lat = self.latency
        at = self._at
        fixed = lat.fixed
        for i in range(self.agents):
            if self._pending[i]:
                at[0, i] = min(t1, t0 + (fixed[0] if fixed else lat.outbound_s()))
            at[1, i] = max(t0, t1 - (fixed[1] if fixed else lat.inbound_s()))
        s = self.state
        fb.step_all(s["rs"], s["book"], s["ag"], s["ai"], at, self._res, self._si, sf, self.p,
                    s["flog"], t1)  # fmt: skip
        rows = self.rows = self._res.tolist()
        self.now_ns = round(t1 * 1e9)
        for i in range(self.agents):
            taken = rows[i][fb.O_TAKEN]
            if taken:
                sf[fb.F_REF] += self.impact.permanent(taken, self.sigma, self.step_s)
                sf[fb.F_TRANS] += self.impact.temporary(taken, self.sigma, self.step_s)
        if self.switching and self.rng.random() < self._switch_p:
            others = [r for r in REGIMES if r != self.regime]
            self.regime = others[int(self.rng.integers(len(others)))]
            self.p = self._params(self.regime)

    def view(self, i: int) -> tuple[float, float, float, float]:
        """(bid, bid qty, ask, ask qty) as agent i heard them at the end of the step (one
        inbound latency old); NaN for an empty side."""
        r = self.rows[i]
        k = fb.R_SNAP
        return r[k], r[k + 1], r[k + 2], r[k + 3]

    def mid(self) -> float:
        """The mid at the end of the step (NaN when a side is empty)."""
        return self.rows[0][fb.R_MID]

    def outcome(self, i: int) -> list[float]:
        """Agent i's step as one row (`flowbook`'s ``res`` columns): fills, bought, buy cash,
        sold, sell cash, taken (signed lots), taken cash (``O_*``); its view of the top of
        the book (``R_SNAP``..+3); its queue places (``R_QBID``, ``R_QASK``); the mid
        (``R_MID``)."""
        return self.rows[i]

    def queue(self, i: int, side: int) -> float:
        """Agent i's place in its queue (0 bid, 1 ask): `flowbook.queue_position`."""
        return self.rows[i][fb.R_QBID + side]

    def resting(self, i: int) -> tuple[int, int, int, int]:
        """Agent i's resting (bid, bid qty, ask, ask qty)."""
        s = self.state
        return (int(s["apx"][i, 0]), int(s["aqty"][i, 0]), int(s["apx"][i, 1]),
                int(s["aqty"][i, 1]))  # fmt: skip

    def fills_log(self) -> np.ndarray:
        """This step's fills: rows (agent, +1 buy / -1 sell, price, qty, ts ns)."""
        return self.state["flog"][: self._si[fb.S_LOGN]]

    @property
    def fills_unlogged(self) -> int:
        """Fills of this step beyond the log's capacity (counted in `outcome`, not listed)."""
        return int(self._si[fb.S_LOST])
