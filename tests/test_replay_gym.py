"""The Gymnasium environment over a replay passes gymnasium's checker and trades the tape."""

from __future__ import annotations

from pathlib import Path

import pytest

gym = pytest.importorskip("gymnasium", reason="the rl extra: pip install -e '.[rl]'")


def _tape(d: Path) -> Path:
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(5)
    n = 4_000
    ts = 1_714_568_400_000_000_000 + np.cumsum(rng.integers(1, 20_000_000, n))
    mid = 10_000 + np.cumsum(rng.choice([-1, 0, 0, 1], n))
    d.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table({"ts": ts, "bid": (mid - 1) / 100, "ask": (mid + 1) / 100,
                             "bid_size": rng.integers(1, 9, n),
                             "ask_size": rng.integers(1, 9, n)}), d / "X.quotes.parquet")
    m = n // 2
    tts = np.sort(rng.choice(ts, m))
    pq.write_table(pa.table({"ts": tts, "price": (10_000 + rng.integers(-15, 16, m)) / 100,
                             "size": rng.integers(1, 5, m)}), d / "X.trades.parquet")
    return d


def test_replay_env_passes_check_env_and_fills_on_the_tape(tmp_path: Path) -> None:
    from gymnasium.utils.env_checker import check_env

    from agents.replay.gym_env import ReplayMarketMakingEnv

    data = _tape(tmp_path / "tape")
    env = ReplayMarketMakingEnv(data, fill_rule="trade-through", step_ns=50_000_000,
                                episode_steps=200, max_shift=2)  # fmt: skip
    check_env(env, skip_render_check=True)
    obs, info = env.reset(seed=3)
    assert env.observation_space.contains(obs) and env.action_space.n == 9
    rewards, steps = [], 0
    done = False
    while not done:
        obs, reward, term, trunc, info = env.step(0)  # join the best bid and ask
        rewards.append(reward)
        steps += 1
        done = term or trunc
    assert steps == 200 and trunc
    assert info["fills"] > 0 and any(r != 0 for r in rewards)
    # the same seed gives the same episode
    env.reset(seed=3)
    again = [env.step(0)[1] for _ in range(200)]
    assert again == rewards


def test_the_rl_package_registers_it_under_its_id(tmp_path: Path) -> None:
    pytest.importorskip("agents.rl", reason="agents.rl (rl extra) not on this branch")
    env = gym.make("Agora/ReplayMarketMaking-v0", data=str(_tape(tmp_path / "t")),
                   episode_steps=5)  # fmt: skip
    env.reset(seed=1)
    assert env.unwrapped.__class__.__name__ == "ReplayMarketMakingEnv"
    env.close()
