"""A Gymnasium environment over a replay: learn to quote on a recorded or external tape.

Registered by `agents.rl` as ``Agora/ReplayMarketMaking-v0``; the tape and the replay's
choices are constructor keywords::

    env = gymnasium.make("Agora/ReplayMarketMaking-v0", data="var/recorder",
                         fill_rule="trade-through", latency_ns=500_000)

Every step the agent picks a discrete action, a pair of shifts (bid ticks below the best
bid, ask ticks above the best ask, each 0..`max_shift`): ``action = bid_shift * (max_shift +
1) + ask_shift``, the DQN-friendly layout. Its quotes (`quote_size` lots a side; no bid at
+`max_inventory`, no ask at -`max_inventory`) then rest for `step_ns` of tape time under the
replay's fill rule, queue model and latency. The observation (float32) is:

0. the spread (ticks), 1. the mid's change over the last step (ticks), 2. the book imbalance
(bid size - ask size) / (bid size + ask size), 3. inventory / max_inventory, 4. the fraction
of the episode gone, 5. the lots bought minus sold in the last step / quote_size.

With ``synthetic_size`` the quotes (and so the observation and the fills) are the synthetic
ones, the VWAP price of that many lots through the recorded depth (`agents.replay.depth`).
The reward is the change of equity marked to the mid (ticks x lots) minus
``inventory_penalty`` x inventory². An episode is `episode_steps` steps from a start drawn on
`reset` (seeded) within the tape, or the tape's start with ``random_start=False``; it ends
early (terminated) when the tape does.

Gymnasium is imported here only: the rest of `agents.replay` needs none of it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from agents.agent import Agent
from agents.replay.config import ReplayConfig
from agents.replay.driver import Replay
from agents.replay.readers import open_tape
from agents.replay.tape import Chunk

__all__ = ["ReplayMarketMakingEnv"]


class _Hands(Agent):
    """The environment's hands in the replay: holds one bid and one ask where told."""

    def on_start(self) -> None:
        self.ids: dict[str, str | None] = {"buy": None, "sell": None}

    def quote(self, symbol: str, side: str, price: int | None, qty: int) -> None:
        ctx = self.ctx
        clid = self.ids[side]
        order = ctx.portfolio.orders.get(clid) if clid is not None else None
        live = order is not None and not order.cancel_pending
        if live and order is not None and order.price == price and price is not None:
            return
        if live and order is not None:
            ctx.cancel(order.client_order_id)
        self.ids[side] = ctx.submit(symbol, side, qty, price) if price else None


class ReplayMarketMakingEnv(gym.Env):
    """Market making on a replayed tape (see the module docstring)."""

    metadata = {"render_modes": []}

    def __init__(
        self,
        data: str | Path,
        symbol: str | None = None,
        fill_rule: str = "quote-through",
        queue: str = "none",
        size: str = "whole",
        latency_ns: int = 0,
        cancel_latency_ns: int | None = None,
        quote_size: int = 1,
        max_shift: int = 2,
        max_inventory: int = 10,
        step_ns: int = 100_000_000,
        episode_steps: int = 500,
        inventory_penalty: float = 0.0,
        synthetic_size: int | None = None,
        tick_size: str = "0.01",
        random_start: bool = True,
        chunk_rows: int = 1 << 16,
        render_mode: str | None = None,
    ) -> None:
        self.tape = open_tape(data, tick_size=tick_size, synthetic_size=synthetic_size,
                              chunk_rows=chunk_rows)  # fmt: skip
        self.symbol = symbol or self.tape.symbols[0]
        if self.symbol not in self.tape.symbols:
            raise ValueError(f"symbol {self.symbol!r} is not on the tape ({self.tape.symbols})")
        self.config = ReplayConfig(fill_rule=fill_rule, queue=queue, size=size,  # type: ignore[arg-type]
                                   latency_ns=latency_ns, cancel_latency_ns=cancel_latency_ns,
                                   sample_ns=1 << 62)  # fmt: skip
        self.quote_size = int(quote_size)
        self.max_shift = int(max_shift)
        self.max_inventory = int(max_inventory)
        self.step_ns = int(step_ns)
        self.episode_steps = int(episode_steps)
        self.inventory_penalty = float(inventory_penalty)
        self.random_start = random_start
        self.render_mode = render_mode
        self.first_ns, self.last_ns = self.tape.span()
        self.action_space = spaces.Discrete((self.max_shift + 1) ** 2)
        big = np.float32(1e6)
        self.observation_space = spaces.Box(-big, big, shape=(6,), dtype=np.float32)
        self._replay: Replay | None = None

    # ------------------------------------------------------------------ helpers
    def _mid(self) -> float | None:
        assert self._replay is not None
        q = self._replay.quote_of(self.symbol)
        if q is None or q.bid is None or q.ask is None:
            return None
        return (q.bid + q.ask) / 2

    def _equity(self) -> float:
        assert self._replay is not None
        p = self._replay.ctx.portfolio
        mid = self._mid()
        pos = p.position(self.symbol)
        return float(p.cash) + (pos * mid if mid is not None else 0.0)

    def _obs(self, dmid: float, traded: int) -> np.ndarray:
        assert self._replay is not None
        q = self._replay.quote_of(self.symbol)
        spread = imbalance = 0.0
        if q is not None and q.bid is not None and q.ask is not None:
            spread = float(q.ask - q.bid)
        if q is not None and q.imbalance is not None:
            imbalance = q.imbalance
        pos = self._replay.ctx.position(self.symbol)
        return np.array([spread, dmid, imbalance, pos / max(1, self.max_inventory),
                         self._steps / max(1, self.episode_steps),
                         traded / max(1, self.quote_size)], np.float32)  # fmt: skip

    def _advance(self, until: int) -> bool:
        """Run the replay to `until`; False when the tape ended first."""
        assert self._replay is not None
        while not self._replay.drive(until):
            chunk = next(self._chunks, None)
            if chunk is None:
                return False
            self._replay.load(chunk)
        return True

    # ------------------------------------------------------------------ the API
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None
              ) -> tuple[np.ndarray, dict[str, Any]]:  # fmt: skip
        super().reset(seed=seed)
        span = self.step_ns * (self.episode_steps + 1)
        start = self.first_ns
        room = self.last_ns - span - self.first_ns
        if self.random_start and room > 0:
            start = self.first_ns + int(self.np_random.integers(0, room))
        self._hands = _Hands()
        self._replay = Replay(self._hands, self.tape.symbols, self.config, self.tape.specs,
                              name="rl")  # fmt: skip
        self._chunks = iter(self.tape.chunks(start, None))
        first: Chunk | None = next(self._chunks, None)
        if first is None:
            raise ValueError("the tape has no update in the episode's span")
        self._replay.load(first)
        self._steps = 0
        # warm up one step so that there is a quote to observe
        self._done = not self._advance(self._replay.now + self.step_ns)
        self._last_mid = self._mid()
        self._last_eq = self._equity()
        self._last_pos = self._replay.ctx.position(self.symbol)
        return self._obs(0.0, 0), {"ts": self._replay.now}

    def step(self, action: int) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        assert self._replay is not None, "call reset() first"
        if not self.action_space.contains(action):
            raise ValueError(f"action {action!r} is not in {self.action_space}")
        bid_shift, ask_shift = divmod(int(action), self.max_shift + 1)
        q = self._replay.quote_of(self.symbol)
        pos = self._replay.ctx.position(self.symbol)
        bid = ask = None
        if q is not None and q.bid is not None and pos < self.max_inventory:
            bid = q.bid - bid_shift
        if q is not None and q.ask is not None and pos > -self.max_inventory:
            ask = q.ask + ask_shift
        self._hands.quote(self.symbol, "buy", bid if bid and bid > 0 else None, self.quote_size)
        self._hands.quote(self.symbol, "sell", ask, self.quote_size)
        alive = not self._done and self._advance(self._replay.now + self.step_ns)
        self._steps += 1
        mid = self._mid()
        dmid = 0.0 if mid is None or self._last_mid is None else mid - self._last_mid
        eq = self._equity()
        pos = self._replay.ctx.position(self.symbol)
        reward = (eq - self._last_eq) - self.inventory_penalty * pos * pos
        traded = pos - self._last_pos
        self._last_mid, self._last_eq, self._last_pos = mid, eq, pos
        terminated = not alive
        truncated = alive and self._steps >= self.episode_steps
        info = {"ts": self._replay.now, "position": pos, "equity": eq,
                "fills": len(self._replay.record.fills["ts"])}  # fmt: skip
        return self._obs(dmid, traded), float(reward), terminated, truncated, info
