"""The reinforcement-learning environments (agents.rl): API conformance, determinism, reward
terms, observation ranges, the flow book's queue model, the execution baselines, vector envs.

Needs the ``rl`` extra (gymnasium, pettingzoo, stable-baselines3, numba; torch installed
first as a CPU build): without it the module is skipped with the install command.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

_MISSING = [m for m in ("gymnasium", "pettingzoo", "stable_baselines3", "numba")
            if __import__("importlib").util.find_spec(m) is None]  # fmt: skip
if _MISSING:
    pytest.skip(f"the rl extra is not installed ({', '.join(_MISSING)} missing): "
                "pip install torch (a CPU build) then pip install -e '.[rl]'",
                allow_module_level=True)  # fmt: skip

import gymnasium as gym  # noqa: E402
from gymnasium.utils.env_checker import check_env as gym_check_env  # noqa: E402
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from agents.rl import flowbook as fb  # noqa: E402
from agents.rl.config import EnvConfig, load_env_config  # noqa: E402
from agents.rl.execution import ExecutionEnv  # noqa: E402
from agents.rl.flow import FlowMarket  # noqa: E402
from agents.rl.market_making import MarketMakingDiscreteEnv, MarketMakingEnv  # noqa: E402
from agents.rl.multi import MultiMarketMakingEnv  # noqa: E402
from agents.rl.observation import OBS_HIGH, OBS_LOW, ObservationBuilder, QueueTracker  # noqa: E402
from exchange.errors import UserError  # noqa: E402

SHORT = {"episode_steps": 200}
CROWD = {"background": "crowd", "episode_steps": 30}


def _rollout(env: gym.Env, seed: int, steps: int, action_seed: int = 0
             ) -> tuple[list[np.ndarray], list[float], list[dict]]:  # fmt: skip
    obs, _ = env.reset(seed=seed)
    env.action_space.seed(action_seed)
    observations, rewards, infos = [obs], [], []
    for _ in range(steps):
        obs, r, term, trunc, info = env.step(env.action_space.sample())
        observations.append(obs)
        rewards.append(r)
        infos.append(info)
        if term or trunc:
            obs, _ = env.reset()
            observations.append(obs)
    return observations, rewards, infos


# ------------------------------------------------------------------ registration and API
def test_import_registers_every_environment() -> None:
    for env_id in ("Agora/MarketMaking-v0", "Agora/MarketMakingDiscrete-v0",
                   "Agora/Execution-v0", "Agora/ReplayMarketMaking-v0"):  # fmt: skip
        assert env_id in gym.registry
    spec = gym.registry["Agora/ReplayMarketMaking-v0"]
    assert spec.entry_point == "agents.replay.gym_env:ReplayMarketMakingEnv"
    env = gym.make("agents.rl:Agora/MarketMaking-v0", config=SHORT)
    assert isinstance(env.unwrapped, MarketMakingEnv)
    assert env.observation_space.shape == (9,) and env.action_space.shape == (4,)
    env.close()


@pytest.mark.parametrize("cls", [MarketMakingEnv, MarketMakingDiscreteEnv, ExecutionEnv])
def test_gymnasium_check_env_flow(cls: type) -> None:
    gym_check_env(cls(SHORT), skip_render_check=True)


@pytest.mark.parametrize("cls", [MarketMakingEnv, MarketMakingDiscreteEnv, ExecutionEnv])
def test_sb3_check_env(cls: type) -> None:
    from stable_baselines3.common.env_checker import check_env

    check_env(cls(SHORT), warn=True)


def test_check_env_crowd() -> None:
    from stable_baselines3.common.env_checker import check_env

    gym_check_env(MarketMakingEnv(CROWD), skip_render_check=True)
    check_env(ExecutionEnv({**CROWD, "execution": {"quantity": 20}}), warn=True)


def test_pettingzoo_parallel_api() -> None:
    from pettingzoo.test import parallel_api_test

    env = MultiMarketMakingEnv({"agents": 3, "episode_steps": 120})
    parallel_api_test(env, num_cycles=200)
    obs, _ = env.reset(seed=4)
    assert sorted(obs) == ["mm_0", "mm_1", "mm_2"]
    steps = 0
    while env.agents:
        _, rewards, _, trunc, infos = env.step(
            {a: env.action_space(a).sample() for a in env.agents})
        steps += 1
        for a, info in infos.items():
            terms = (info["delta_pnl"] - info["inventory_penalty"] - info["volatility_penalty"]
                     - info["impact_penalty"]) / info["reward_scale"]  # fmt: skip
            assert rewards[a] == pytest.approx(terms)
    assert steps == 120 and all(trunc.values())


# ------------------------------------------------------------------ determinism
@pytest.mark.parametrize("cls", [MarketMakingEnv, MarketMakingDiscreteEnv, ExecutionEnv])
def test_same_seed_same_episode_different_seeds_differ(cls: type) -> None:
    cfg = {"episode_steps": 150, "regime": "switching"}
    o1, r1, _ = _rollout(cls(cfg), seed=11, steps=300)
    o2, r2, _ = _rollout(cls(cfg), seed=11, steps=300)
    o3, r3, _ = _rollout(cls(cfg), seed=12, steps=300)
    assert len(o1) == len(o2)
    assert all(np.array_equal(a, b) for a, b in zip(o1, o2, strict=True))
    assert r1 == r2  # bit for bit
    assert r1 != r3 or any(not np.array_equal(a, b) for a, b in zip(o1, o3, strict=False))


def test_same_seed_same_episode_crowd() -> None:
    o1, r1, _ = _rollout(MarketMakingEnv(CROWD), seed=3, steps=25)
    o2, r2, _ = _rollout(MarketMakingEnv(CROWD), seed=3, steps=25)
    _, r3, _i3 = _rollout(MarketMakingEnv(CROWD), seed=4, steps=25)
    assert all(np.array_equal(a, b) for a, b in zip(o1, o2, strict=True)) and r1 == r2
    assert r1 != r3


def test_multi_agent_same_seed_same_episode() -> None:
    def run(seed: int) -> list:
        env = MultiMarketMakingEnv({"agents": 2, "episode_steps": 80})
        env.reset(seed=seed)
        rng = np.random.default_rng(0)
        out = []
        while env.agents:
            obs, rew, *_ = env.step({a: rng.uniform(-1, 1, 4) for a in env.agents})
            out.append((obs["mm_0"].tobytes(), obs["mm_1"].tobytes(), rew["mm_0"], rew["mm_1"]))
        return out

    assert run(5) == run(5)
    assert run(5) != run(6)


def test_an_environment_is_not_disturbed_by_another_in_the_same_process() -> None:
    """Each env draws from its own streams: interleaving two does not change either."""
    alone, _, _ = _rollout(MarketMakingEnv(SHORT), seed=21, steps=120)
    a, b = MarketMakingEnv(SHORT), MarketMakingEnv(SHORT)
    oa, _ = a.reset(seed=21)
    b.reset(seed=99)
    a.action_space.seed(0)
    b.action_space.seed(5)
    got = [oa]
    for _ in range(120):
        got.append(a.step(a.action_space.sample())[0])
        b.step(b.action_space.sample())
    assert all(np.array_equal(x, y) for x, y in zip(alone[:121], got, strict=True))


def test_gymnasium_vector_envs_sync_and_subprocess_agree() -> None:
    def make() -> gym.Env:
        return gym.make("agents.rl:Agora/MarketMaking-v0", config={"episode_steps": 50})

    actions = np.random.default_rng(1).uniform(-1, 1, (60, 3, 4)).astype(np.float32)

    def run(vec: gym.vector.VectorEnv) -> tuple[np.ndarray, np.ndarray]:
        obs, _ = vec.reset(seed=100)
        first = obs.copy()
        rewards = np.stack([vec.step(a)[1] for a in actions])
        vec.close()
        return first, rewards

    s_first, s_rewards = run(gym.vector.SyncVectorEnv([make] * 3))
    a_first, a_rewards = run(gym.vector.AsyncVectorEnv([make] * 3, context="spawn"))
    assert np.array_equal(s_first, a_first) and np.array_equal(s_rewards, a_rewards)
    # each sub-environment has its own seed (100, 101, 102): their episodes differ
    assert not np.array_equal(s_rewards[:, 0], s_rewards[:, 1])


def test_sb3_subprocess_vec_env_and_regime_setting() -> None:
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.vec_env import SubprocVecEnv

    vec = make_vec_env(MarketMakingEnv, n_envs=2, seed=7, vec_env_cls=SubprocVecEnv,
                       vec_env_kwargs={"start_method": "spawn"},
                       env_kwargs={"config": {"episode_steps": 20}})  # fmt: skip
    try:
        vec.env_method("set_regime", "high")
        vec.reset()
        infos = None
        for _ in range(25):  # across an episode end: the new episode is in the new regime
            _, _, _, infos = vec.step(np.zeros((2, 4), np.float32))
        assert [i["regime"] for i in infos] == ["high", "high"]
    finally:
        vec.close()


# ------------------------------------------------------------------ reward and observations
def test_reward_terms_add_up_and_are_in_info() -> None:
    env = MarketMakingEnv({"episode_steps": 400, "reward": {"inventory": 0.01,
                          "volatility": 0.05, "impact": 2.0, "scale": 3.0}})  # fmt: skip
    _, rewards, infos = _rollout(env, seed=2, steps=400)
    took = 0
    for r, info in zip(rewards, infos, strict=True):
        assert info["inventory_penalty"] == pytest.approx(0.01 * info["inventory"] ** 2)
        assert info["volatility_penalty"] == pytest.approx(0.05 * info["sigma"] ** 2)
        assert info["impact_penalty"] == pytest.approx(2.0 * info["impact_cost"])
        total = (info["delta_pnl"] - info["inventory_penalty"] - info["volatility_penalty"]
                 - info["impact_penalty"]) / 3.0  # fmt: skip
        assert r == pytest.approx(total, abs=1e-9)
        took += info["taken"] != 0
    assert took > 0  # random quotes cross the spread sometimes: impact was priced
    assert sum(i["delta_pnl"] for i in infos) == pytest.approx(infos[-1]["pnl"])


@pytest.mark.parametrize("regime", ["low", "high", "switching"])
def test_observations_stay_in_their_documented_ranges(regime: str) -> None:
    env = MarketMakingEnv({"episode_steps": 2_500, "regime": regime})
    obs_list, _, infos = _rollout(env, seed=8, steps=5_000)
    obs = np.stack(obs_list)
    assert env.observation_space.contains(obs_list[-1])
    assert (obs >= OBS_LOW).all() and (obs <= OBS_HIGH).all()
    # the queue values are -1 (no order) or a share of the level in [0, 1)
    for col in (5, 6):
        q = obs[:, col]
        assert ((q == -1.0) | ((q >= 0.0) & (q < 1.0))).all()
        assert (q >= 0).any()
    # the scales are sensible: the spread, volatility and fill counts rarely hit their caps
    for col in (1, 3, 8):
        assert np.mean(obs[:, col] >= OBS_HIGH[col]) < 0.01
    assert sum(i["fills"] for i in infos) > 100
    if regime == "switching":
        assert len({i["regime"] for i in infos}) >= 2


def test_set_regime_applies_at_the_next_reset() -> None:
    env = MarketMakingEnv({"episode_steps": 10, "regime": "low"})
    _, info = env.reset(seed=1)
    assert info["regime"] == "low" and env.market.sigma == 0.5
    env.set_regime("high")
    assert env.market.regime == "low"  # not halfway through an episode
    _, info = env.reset()
    assert info["regime"] == "high" and env.market.sigma == 4.0
    _, info = env.reset(options={"regime": "medium"})
    assert info["regime"] == "medium"
    with pytest.raises(ValueError, match="unknown regime"):
        env.set_regime("wild")


def test_discrete_actions_move_the_quotes() -> None:
    env = MarketMakingDiscreteEnv({"episode_steps": 50})
    env.reset(seed=3)
    env.step(env.WIDEN)
    assert env.offsets == [2.0, 2.0]
    env.step(env.UP)
    assert env.offsets == [1.0, 3.0]
    env.step(env.NARROW)
    env.step(env.NARROW)
    assert env.offsets[0] + env.offsets[1] >= 1  # the quotes never touch
    with pytest.raises(ValueError):
        env.step(6)


# ------------------------------------------------------------------ the flow book
def _market(**flow: float) -> FlowMarket:
    cfg = EnvConfig(latency={"kind": "fixed", "network_us": 0.0}, flow=flow)
    return FlowMarket(cfg, np.random.default_rng(0), 2, "low")


def test_flow_book_queue_priority_and_fills_from_the_front() -> None:
    m = _market()
    s = m.state
    bq, aq, si, apx, aqty, abga, aseq = (s[k] for k in ("bq", "aq", "si", "apx", "aqty",
                                                         "abga", "aseq"))  # fmt: skip
    ba = si[fb.S_BASE] + si[fb.S_BA]
    level = int(aq[si[fb.S_BA]])
    assert level > 0
    # agent 0 joins the best ask behind the background, agent 1 behind agent 0
    for i, qty in ((0, 5), (1, 4)):
        s["npx"][i] = [ba - 50, ba]
        s["nqty"][i] = [0, qty]
        fb._apply(bq, aq, si, s["sf"], apx, aqty, abga, aseq, s["npx"], s["nqty"], s["ioc"],
                  s["out"], s["flog"], i)  # fmt: skip
    assert abga[0, 1] == level and abga[1, 1] == level
    assert fb._ahead(1, 1, apx, aqty, abga, aseq) == level + 5
    s["out"][:] = 0
    # a background buy of level + 2 fills agent 0 for 2, leaves agent 1 untouched
    got = fb._take(bq, aq, si, apx, aqty, abga, aseq, s["out"], s["flog"], 0.0, True,
                   level + 2, ba, -1)  # fmt: skip
    assert got == level + 2
    assert s["out"][0, fb.O_SELL] == 2 and s["out"][1, fb.O_SELL] == 0
    assert aqty[0, 1] == 3 and abga[0, 1] == 0 and abga[1, 1] == 0
    assert fb._ahead(1, 1, apx, aqty, abga, aseq) == 3
    # agent 1 sizes down at the same price: it keeps its place; agent 0 moves away
    s["nqty"][1] = [0, 2]
    fb._apply(bq, aq, si, s["sf"], apx, aqty, abga, aseq, s["npx"], s["nqty"], s["ioc"],
              s["out"], s["flog"], 1)  # fmt: skip
    assert aqty[1, 1] == 2 and fb._ahead(1, 1, apx, aqty, abga, aseq) == 3
    seq = aseq[1, 1]
    s["npx"][0] = [ba - 50, ba + 1]
    fb._apply(bq, aq, si, s["sf"], apx, aqty, abga, aseq, s["npx"], s["nqty"], s["ioc"],
              s["out"], s["flog"], 0)  # fmt: skip
    assert fb._ahead(1, 1, apx, aqty, abga, aseq) == 0  # agent 0 no longer ahead
    assert aseq[1, 1] == seq
    # sizing up at the same price goes to the back
    s["nqty"][1] = [0, 6]
    s["npx"][1] = [ba - 50, ba]
    fb._apply(bq, aq, si, s["sf"], apx, aqty, abga, aseq, s["npx"], s["nqty"], s["ioc"],
              s["out"], s["flog"], 1)  # fmt: skip
    assert aseq[1, 1] > seq


def test_flow_book_crossing_quote_takes_liquidity_and_moves_the_reference() -> None:
    """Two markets on the same seed, one with impact and one without: after the agent's
    marketable bid, their references differ by exactly the model's permanent part and their
    transients by its temporary part (every random draw is the same in both)."""

    def crossed(eta: float, gamma: float) -> FlowMarket:
        cfg = EnvConfig(latency={"kind": "fixed", "network_us": 0.0},
                        impact={"model": "almgren_chriss", "eta": eta, "gamma": gamma})
        m = FlowMarket(cfg, np.random.default_rng(0), 1, "medium")
        _, _, ask, _ = m.view(0)
        m.quote(0, int(ask) + 5, 30, int(ask) + 40, 0)  # a marketable bid
        m.step()
        return m

    plain, moved = crossed(0.0, 0.0), crossed(0.2, 0.05)
    taken = moved.outcome(0)[fb.O_TAKEN]
    assert taken > 0 and taken == plain.outcome(0)[fb.O_TAKEN]
    assert moved.outcome(0)[fb.O_BUY] >= taken
    sp, sm = plain.state["sf"], moved.state["sf"]
    perm = 0.05 * moved.sigma * taken  # gamma·sigma·v
    temp = 0.2 * moved.sigma * taken / math.sqrt(moved.step_s)  # η·sigma·|v|/√T
    assert sm[fb.F_REF] - sp[fb.F_REF] == pytest.approx(perm)
    assert sm[fb.F_TRANS] - sp[fb.F_TRANS] == pytest.approx(temp)
    log = moved.fills_log()
    assert (log[:, 0] == 0).all() and log[:, 3].sum() == moved.outcome(0)[fb.O_BUY]
    # the next step starts from the moved reference: the temporary part decays
    before = sm[fb.F_TRANS]
    moved.step()
    assert 0 < sm[fb.F_TRANS] < before


def test_flow_regimes_order_the_realised_volatility() -> None:
    realised = {}
    for regime in ("low", "medium", "high"):
        env = MarketMakingEnv({"regime": regime, "episode_steps": 3_000})
        env.reset(seed=5)
        mids = [env.step(np.zeros(4, np.float32))[4]["mid"] for _ in range(3_000)]
        realised[regime] = float(np.std(np.diff(mids)))
    assert realised["low"] < realised["medium"] < realised["high"]


def test_flow_book_stays_consistent_over_a_long_run() -> None:
    m = _market()
    rng = np.random.default_rng(3)
    for _ in range(3_000):
        bid, _, ask, _ = m.view(0)
        if bid == bid and ask == ask:
            m.quote(0, int(bid) - int(rng.integers(0, 3)), int(rng.integers(0, 6)),
                    int(ask) + int(rng.integers(0, 3)), int(rng.integers(0, 6)))  # fmt: skip
        m.step()
        s = m.state
        assert s["bq"].sum() == s["si"][fb.S_TOTB] and s["aq"].sum() == s["si"][fb.S_TOTA]
        assert (s["bq"] >= 0).all() and (s["aq"] >= 0).all() and (s["abga"] >= 0).all()
        bb, ba = fb.top(s["bq"], s["aq"], s["si"], s["apx"], s["aqty"])
        assert not bb >= ba  # never crossed (NaN compares False)


# ------------------------------------------------------------------ execution
def test_execution_baselines_follow_their_trajectories() -> None:
    cfg = {"episode_steps": 40, "regime": "low", "execution": {"quantity": 80,
                                                                 "risk_aversion": 0.01}}
    for name in ("twap", "almgren_chriss"):
        env = ExecutionEnv(cfg)
        env.reset(seed=9)
        schedule = env.baseline_schedule(name)
        assert sum(schedule) == 80 and len(schedule) == 40
        total, children = 0.0, []
        while True:
            _, r, term, trunc, info = env.step(env.baseline_action(name))
            total += r
            children.append(info["child_qty"])
            if term or trunc:
                break
        assert term and info["remaining"] == 0
        assert total == pytest.approx(-info["shortfall"] / 80)
        if name == "twap":
            assert children == schedule[: len(children)]
    twap = ExecutionEnv(cfg)
    twap.reset(seed=9)
    ac = twap.baseline_schedule("almgren_chriss")
    assert ac[0] > ac[-1]  # front-loaded with risk aversion


def test_execution_dumping_everything_at_once_ends_the_episode_early() -> None:
    env = ExecutionEnv({"episode_steps": 30, "execution": {"quantity": 10, "side": "buy"}})
    env.reset(seed=1)
    _, _r, term, _, info = env.step(np.array([1.0], np.float32))
    assert term and info["remaining"] == 0 and info["filled_qty"] == 10
    assert info["avg_price"] >= info["arrival"]  # a buy pays at least the mid


# ------------------------------------------------------------------ config and observation
def test_env_config_from_toml(tmp_path) -> None:
    path = tmp_path / "train.toml"
    path.write_text('[env]\nbackground = "flow"\nstep_ms = 50\nregime = "high"\n'
                    '[env.reward]\ninventory = 0.1\n[other]\nx = 1\n')  # fmt: skip
    cfg = load_env_config(path)
    assert cfg.step_ms == 50 and cfg.regime == "high" and cfg.reward.inventory == 0.1
    path.write_text('[env]\nregime = "wild"\n')
    with pytest.raises(UserError, match="regime"):
        load_env_config(path)


def test_observation_builder_reads_a_live_feed_the_same_way() -> None:
    """What `agora attach policy` feeds it: quotes, the account and the queue tracker."""
    b = ObservationBuilder(max_inventory=50)
    b.reset(10_000.0, 0.0, 0)
    q = QueueTracker()
    assert q.position == -1.0
    q.place(9_999, 5, level_qty=15)  # behind 15 lots
    assert q.position == pytest.approx(15 / 20)
    q.on_trade(9_999, 10)
    assert q.position == pytest.approx(5 / 10)
    q.on_level(9_999, 7)  # the level shrank to 7 with our 5 in it: at most 2 ahead
    assert q.position == pytest.approx(2 / 7)
    q.resize(3)
    assert q.ahead == 2
    obs = b.build(100_000_000, 9_999, 20, 10_001, 10, inventory=-25, pnl=12.0, fills=2,
                  bid_queue=q.position)  # fmt: skip
    assert obs.dtype == np.float32 and obs.shape == (9,)
    assert obs[0] == 0.0 and obs[1] == pytest.approx(0.2) and obs[2] == pytest.approx(-0.5)
    assert obs[4] == pytest.approx(10 / 30) and obs[5] == pytest.approx(q.position)
    assert obs[6] == -1.0 and obs[7] == pytest.approx(0.12) and obs[8] == pytest.approx(0.2)
    obs = b.build(200_000_000, None, 0, 10_003, 4, 0, 12.0, 0)  # an empty bid side
    assert obs[1] == 5.0 and obs[0] == 0.0
    obs = b.build(300_000_000, 10_010, 1, 10_012, 1, 0, 12.0, 0)
    assert obs[3] > 0 and math.isfinite(float(obs[3]))  # the mid moved: volatility seen


def test_inventory_scale_sets_the_observation_and_the_baselines_decode_it() -> None:
    """`inventory_scale_lots` divides the inventory in the observation (not the cap), and the
    baselines read the position back with the same scale."""
    from agents.rl.baselines import decode_observation

    cfg = EnvConfig(inventory_scale_lots=20.0)
    b = ObservationBuilder.from_config(cfg)
    b.reset(10_000.0, 0.0, 0)
    obs = b.build(100_000_000, 9_999, 5, 10_001, 5, inventory=-8, pnl=0.0, fills=0)
    assert obs[2] == pytest.approx(-0.4)
    assert decode_observation(obs, cfg).inventory == pytest.approx(-8)
    default = ObservationBuilder.from_config(EnvConfig())  # without it: max_inventory
    default.reset(10_000.0, 0.0, 0)
    obs = default.build(100_000_000, 9_999, 5, 10_001, 5, inventory=-8, pnl=0.0, fills=0)
    assert obs[2] == pytest.approx(-8 / EnvConfig().max_inventory)
    assert decode_observation(obs, EnvConfig()).inventory == pytest.approx(-8)


# ------------------------------------------------------------------ the live adapter
def test_live_quoting_inside_an_agent_observes_and_quotes_like_the_env() -> None:
    """`LiveQuoting` in an ordinary Agent (here in simulated time, the same code live): its
    observations are in range, its quotes reach the book, its inventory is its fills'."""
    from agents.agent import Agent
    from agents.config import LatencyConfig, MarketConfig, Population
    from agents.rl.live import LiveQuoting
    from agents.sim import SimMarket

    seen: list[np.ndarray] = []

    class PolicyAgent(Agent):
        def on_start(self) -> None:
            self.q = LiveQuoting({"max_quote_size": 4}, self.ctx.symbols[0])
            self.rng = np.random.default_rng(0)
            self.ctx.set_timer("step", self.q.config.step_ns)

        def on_order(self, update) -> None:
            self.q.on_order(self.ctx, update)

        def on_fill(self, fill) -> None:
            self.q.on_fill(fill)

        def on_trade(self, trade) -> None:
            self.q.on_trade(trade)

        def on_timer(self, name: str) -> None:
            seen.append(self.q.observe(self.ctx))
            self.q.act(self.ctx, self.rng.uniform(-1, 1, 4) * [0.3, 0.3, 1, 1] - [0.55, 0.55, 0, 0])

    zi = Population(name="zi", strategy="zi", count=40,
                    params={"mean_interval_ns": 300_000_000, "market_prob": 0.2,
                            "max_offset_ticks": 6, "lifetime_ns": 5_000_000_000})  # fmt: skip
    sim = SimMarket.from_config(MarketConfig(populations=[zi]), seed=3)
    agent = PolicyAgent()
    ctx = sim.add_agent(agent, "policy", latency=LatencyConfig(network_us=500))
    start = ctx.position("AGR")
    sim.run(duration_ns=30 * 10**9)
    obs = np.stack(seen)
    assert len(seen) >= 290
    assert (obs >= OBS_LOW).all() and (obs <= OBS_HIGH).all()
    assert agent.q.inventory == ctx.position("AGR") - start
    assert ctx.portfolio.fills > 0 and (obs[:, 8] > 0).any()
    assert (obs[:, 5] >= 0).any() or (obs[:, 6] >= 0).any()  # queue places were tracked
    live = [o for o in ctx.open_orders("AGR") if not o.cancel_pending]
    assert len(live) <= 2  # replaced or cancelled, never piled up


def test_flow_book_window_follows_a_far_moving_reference() -> None:
    m = _market()
    s = m.state
    base = int(s["si"][fb.S_BASE])
    for jump in (1_500.0, -3_000.0):
        s["sf"][fb.F_REF] += jump
        for _ in range(100):
            m.step()
        assert s["bq"].sum() == s["si"][fb.S_TOTB] and s["aq"].sum() == s["si"][fb.S_TOTA]
        mid = m.mid()
        assert abs(mid - s["sf"][fb.F_REF]) < 50  # the book rebuilt around the new price
        assert s["si"][fb.S_BASE] != base

_QUOTE = st.tuples(st.integers(-6, 6), st.integers(0, 8), st.integers(-6, 6), st.integers(0, 8))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32), plan=st.lists(st.tuples(_QUOTE, _QUOTE), min_size=1,
                                                 max_size=40))  # fmt: skip
def test_flow_book_invariants_under_any_quotes(seed: int, plan: list) -> None:
    """Whatever two agents quote (crossing each other and the book included): the book's
    totals agree with its levels, nothing is negative, no agent rests more than it asked for,
    every fill is logged and adds up to the step's outcome, queue places are in range."""
    cfg = EnvConfig(latency={"kind": "exponential", "network_us": 3_000.0}, regime="high")
    m = FlowMarket(cfg, np.random.default_rng(seed), 2, "high")
    s = m.state
    for quotes in plan:
        mid = m.mid()
        base = int(mid) if mid == mid else cfg.flow.reference_price
        asked = []
        for i, (db, qb, da, qa) in enumerate(quotes):
            bid, ask = base - db, base + max(da, -db + 1)  # each agent's own quotes never cross
            m.quote(i, bid, qb, ask, qa)
            asked.append((qb, qa))
        m.step()
        assert s["bq"].sum() == s["si"][fb.S_TOTB] and s["aq"].sum() == s["si"][fb.S_TOTA]
        assert (s["bq"] >= 0).all() and (s["aq"] >= 0).all()
        assert (s["abga"] >= 0).all() and (s["aqty"] >= 0).all()
        log = m.fills_log()
        for i in range(2):
            row = m.outcome(i)
            assert s["aqty"][i, 0] <= asked[i][0] and s["aqty"][i, 1] <= asked[i][1]
            mine = log[log[:, 0] == i]
            assert mine[mine[:, 1] == 1, 3].sum() == row[fb.O_BUY]
            assert mine[mine[:, 1] == -1, 3].sum() == row[fb.O_SELL]
            assert row[fb.O_FILLS] == len(mine)
            assert (mine[:, 3] > 0).all()
            for q in (row[fb.R_QBID], row[fb.R_QASK]):
                assert q == -1.0 or 0.0 <= q < 1.0
