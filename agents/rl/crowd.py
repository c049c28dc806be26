"""The `crowd` background: a market file's agent population in simulated time.

`CrowdMarket` runs `agents.sim.SimMarket.from_config` on the configured market file (default:
``examples/market.toml``, the default crowd) and adds each learning agent as an ordinary
`agents.Agent` (`Learner`) with the configured latency, so it is refused, delayed and filled
exactly as the crowd is, and sees what a live agent sees (``ctx.quote``: the top of book one
latency old). It drives the market only through SimMarket's public API (`schedule`, `run`,
`agent`, `engine`).

Each step the learner's new quotes are sent at the step's start (a quote at an unchanged
price whose size only goes down is amended, which keeps its place in the queue; anything
else is cancelled and sent anew), then the market runs one step. The volatility regime scales
the fair value's volatility (`scale` of the market file's `[fundamental]`) by the ratio of the
regime's sigma to the medium one's; "switching" draws a regime per episode (the crowd's
fair-value process is fixed for a run). The impact model prices the learner's liquidity
taking in the reward; the crowd reacts to its trades by itself.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from agents.agent import Agent
from agents.config import load_market
from agents.events import Fill
from agents.rl.config import REGIMES, EnvConfig
from agents.rl.flowbook import (
    N_RES,
    O_BUY,
    O_BUY_CASH,
    O_FILLS,
    O_SELL,
    O_SELL_CASH,
    O_TAKEN,
    O_TAKEN_CASH,
    R_MID,
    R_QASK,
    R_QBID,
    R_SNAP,
)
from agents.rl.live import requote

__all__ = ["DEFAULT_MARKET", "CrowdMarket", "Learner"]

DEFAULT_MARKET = Path(__file__).resolve().parents[2] / "examples" / "market.toml"
_WARMUP_S = 10.0


class Learner(Agent):
    """A learning agent's body in the simulated market: it keeps its fills; the environment
    decides its quotes."""

    def __init__(self) -> None:
        super().__init__()
        self.fills: list[Fill] = []
        self.orders: list[str | None] = [None, None]  # resting bid, ask (client order ids)

    def on_fill(self, fill: Fill) -> None:
        self.fills.append(fill)


class CrowdMarket:
    kind = "crowd"

    def __init__(self, config: EnvConfig, rng: np.random.Generator, agents: int,
                 regime: str) -> None:  # fmt: skip
        from agents.sim import SimMarket

        self.config = config
        self.rng = rng
        self.agents = agents
        self.step_s = config.step_ms / 1e3
        self.step_ns = config.step_ns
        self.impact = config.impact.build()
        self.regime = str(rng.choice(REGIMES)) if regime == "switching" else regime
        market = load_market(config.market or DEFAULT_MARKET)
        self.symbol = config.symbol or market.symbols[0].symbol
        spec = next((s for s in market.symbols if s.symbol == self.symbol), None)
        if spec is None:
            raise ValueError(f"the market file lists no symbol {self.symbol!r}")
        regimes = config.flow.regimes
        factor = regimes[self.regime].sigma / regimes["medium"].sigma
        fundamental = dict(market.fundamental)
        scale = float(fundamental.get("scale", 0.0005))
        fundamental["scale"] = scale * factor
        step = float(fundamental.get("step_s", market.fundamental_interval_s))
        # the fair value's volatility in ticks per √s, for the impact model
        self.sigma = fundamental["scale"] * spec.reference_price / math.sqrt(step)
        market = market.model_copy(update={"fundamental": fundamental})
        self.sim = SimMarket.from_config(market, seed=int(rng.integers(2**31)))
        self.learners: list[Learner] = []
        self.ctxs = []
        for i in range(agents):
            body = Learner()
            ctx = self.sim.add_agent(
                body, f"rl-{i}", latency=config.latency, cash=10**15,
                positions={self.symbol: 1_000 * (config.max_inventory + config.max_quote_size)},
            )  # fmt: skip
            self.learners.append(body)
            self.ctxs.append(ctx)
        self.sim.run(duration_ns=round(_WARMUP_S * 1e9))
        self._log: list[tuple[int, int, int, int, int]] = []
        self.rows = [self._row(i, []) for i in range(agents)]

    @property
    def now_ns(self) -> int:
        return self.sim.now

    # ------------------------------------------------------------------ acting
    def quote(self, i: int, bid: int, bid_qty: int, ask: int, ask_qty: int,
              ioc: bool = False) -> None:  # fmt: skip
        self.sim.schedule(self.sim.now, self._act, i, (bid, bid_qty, ask, ask_qty), ioc)

    def _act(self, i: int, quotes: tuple[int, int, int, int], ioc: bool) -> None:
        ctx = self.ctxs[i]
        ctx.refresh()
        requote(ctx, self.symbol, self.learners[i].orders, quotes, ioc)

    def step(self) -> None:
        self.sim.run(duration_ns=self.step_ns)
        self._log = []
        self.rows = []
        for i in range(self.agents):
            fills = self.learners[i].fills
            self.learners[i].fills = []
            self.rows.append(self._row(i, fills))

    def _row(self, i: int, fills: list[Fill]) -> list[float]:
        r = [0.0] * N_RES
        for f in fills:
            r[O_FILLS] += 1
            cash = f.price * f.qty
            if f.side == "buy":
                r[O_BUY] += f.qty
                r[O_BUY_CASH] += cash
            else:
                r[O_SELL] += f.qty
                r[O_SELL_CASH] += cash
            if f.liquidity == "taker":
                r[O_TAKEN] += f.qty if f.side == "buy" else -f.qty
                r[O_TAKEN_CASH] += cash
            self._log.append((i, 1 if f.side == "buy" else -1, f.price, f.qty, f.ts))
        ctx = self.ctxs[i]
        ctx.refresh()
        q = ctx.quote(self.symbol)
        nan = float("nan")
        if q is None:
            r[R_SNAP:R_SNAP + 4] = [nan, 0.0, nan, 0.0]
        else:
            r[R_SNAP:R_SNAP + 4] = [nan if q.bid is None else float(q.bid), float(q.bid_qty),
                                    nan if q.ask is None else float(q.ask), float(q.ask_qty)]
        r[R_QBID] = self._queue(i, 0)
        r[R_QASK] = self._queue(i, 1)
        mid = self.sim.engine.mid(self.symbol)
        r[R_MID] = nan if mid is None else float(mid)
        return r

    def _queue(self, i: int, side: int) -> float:
        clid = self.learners[i].orders[side]
        order = self.ctxs[i].portfolio.orders.get(clid) if clid else None
        if order is None or not order.order_id or order.price is None:
            return -1.0
        engine = self.sim.engine
        place = engine.queue_position(order.order_id)
        if place is None:
            return -1.0
        side_name = "buy" if side == 0 else "sell"
        level = sum(o.leaves for o in engine.level_orders(self.symbol, side_name, order.price))
        return place[1] / level if level else -1.0

    # ------------------------------------------------------------------ reading
    def view(self, i: int) -> tuple[float, float, float, float]:
        r = self.rows[i]
        return r[R_SNAP], r[R_SNAP + 1], r[R_SNAP + 2], r[R_SNAP + 3]

    def mid(self) -> float:
        return self.rows[0][R_MID]

    def outcome(self, i: int) -> list[float]:
        return self.rows[i]

    def queue(self, i: int, side: int) -> float:
        return self.rows[i][R_QBID + side]

    def fills_log(self) -> np.ndarray:
        return np.array(self._log, np.int64).reshape(-1, 5)

    def close(self) -> None:
        self.sim.finish()
