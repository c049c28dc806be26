"""Reinforcement learning over Agora's market: Gymnasium and PettingZoo environments.

The only package of Agora that imports gymnasium, pettingzoo or torch (the ``rl`` extra:
``pip install -e '.[rl]'``), so the default install stays light. Importing it registers:

* ``Agora/MarketMaking-v0`` (`agents.rl.market_making.MarketMakingEnv`): quote a bid and an ask
  (Box action), nine-value observation (`agents.rl.observation`);
* ``Agora/MarketMakingDiscrete-v0``: the same task with six discrete actions, for DQN;
* ``Agora/Execution-v0`` (`agents.rl.execution.ExecutionEnv`): sell or buy a quantity within
  the episode, rewarded by the implementation shortfall, TWAP and Almgren-Chriss baselines;
* ``Agora/ReplayMarketMaking-v0``: market making against a recorded tape
  (`agents.replay.gym_env`, registered here, imported only when made).

``gymnasium.make("agents.rl:Agora/MarketMaking-v0", config={...})`` imports and registers in
one call. The multi-agent variant is a PettingZoo ``ParallelEnv``:
`agents.rl.multi.MultiMarketMakingEnv`. Every environment takes one `agents.rl.config.EnvConfig`
(or a dict of its fields); the background market is `flow` (a fast compiled order-flow
generator) or `crowd` (a market file's agents in simulated time). `agents.rl.live.LiveQuoting`
gives any `agents.Agent` the same observation and quoting, live or in simulated time.
"""

from __future__ import annotations

try:
    from gymnasium.envs.registration import register, registry
except ModuleNotFoundError as exc:  # the default install leaves the rl extra out
    raise ModuleNotFoundError(
        f"agents.rl needs the rl extra ({exc.name} is missing): install a CPU build of torch, "
        "then pip install -e '.[rl]'"
    ) from exc

from agents.rl.config import EnvConfig, load_env_config

__all__ = ["ENV_IDS", "EnvConfig", "load_env_config"]

_ENTRY_POINTS = {
    "Agora/MarketMaking-v0": "agents.rl.market_making:MarketMakingEnv",
    "Agora/MarketMakingDiscrete-v0": "agents.rl.market_making:MarketMakingDiscreteEnv",
    "Agora/Execution-v0": "agents.rl.execution:ExecutionEnv",
    "Agora/ReplayMarketMaking-v0": "agents.replay.gym_env:ReplayMarketMakingEnv",
}
ENV_IDS: tuple[str, ...] = tuple(_ENTRY_POINTS)

for _id, _entry in _ENTRY_POINTS.items():
    if _id not in registry:
        # episode length is the config's (the environment truncates itself)
        register(id=_id, entry_point=_entry, disable_env_checker=False)
