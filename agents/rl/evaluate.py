"""`agora evaluate`: a trained policy and the baselines on held-out seeds, regime by regime.

Every policy plays the same episodes: for each regime and each held-out seed the environment
is reset with that seed, so the background market is the same for all of them until their own
orders change it. Each episode is recorded as plain series (the agent's fills with the mid at
the time, its PnL marked to the mid, its inventory, the quantity it posted) and measured by the
project's metrics package (`agents.metrics.compute`): nothing is computed twice here. Per
policy and regime the table shows the mean over episodes ± a 95% interval (normal
approximation, 1.96 standard errors; there are 20 or more episodes per cell by default).

The environment's ``info`` per step is what is recorded (see `EpisodeRecord.add_step`).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from agents.rl.policy import Policy, load_policy

__all__ = [
    "COLUMNS",
    "EpisodeRecord",
    "EvalResult",
    "EvalSpec",
    "episode_metrics",
    "markdown_table",
    "posted_quantity",
    "render_table",
    "run_episode",
    "run_evaluation",
    "summarise",
]

NS = 1_000_000_000

COLUMNS: dict[str, str] = {
    "total_pnl": "total PnL (ticks x lots)",
    "sharpe": "Sharpe (per episode)",
    "max_drawdown": "max drawdown",
    "inventory_std": "inventory std (lots)",
    "fill_ratio": "fill ratio",
    "spread_captured": "spread captured (ticks/lot)",
    "adverse_selection": "adverse selection (ticks/lot)",
}
"""What the table shows, in its order: metric key -> column title."""


@dataclass
class EvalSpec:
    regimes: list[str]
    seeds: list[int]
    baselines: list[str] = field(
        default_factory=lambda: ["avellaneda-stoikov", "fixed-spread", "do-nothing"]
    )
    episode_steps: int | None = None
    markout_steps: int = 10
    baseline_params: dict[str, dict[str, Any]] = field(default_factory=dict)


@dataclass
class EpisodeRecord:
    """One episode as plain series, ready for `agents.metrics.compute`."""

    policy: str
    regime: str
    seed: int
    ts: list[int] = field(default_factory=list)
    mid: list[float] = field(default_factory=list)
    pnl: list[float] = field(default_factory=list)
    inventory: list[float] = field(default_factory=list)
    reward: list[float] = field(default_factory=list)
    fill_ts: list[int] = field(default_factory=list)
    fill_side: list[int] = field(default_factory=list)
    fill_price: list[float] = field(default_factory=list)
    fill_qty: list[float] = field(default_factory=list)
    posted_qty: float = 0.0

    def add_step(self, info: dict[str, Any], reward: float, posted: float) -> None:
        """Record one step from the environment's ``info`` (``ts_ns``, ``mid`` in ticks,
        ``pnl`` so far marked to the mid in ticks x lots, ``inventory`` in lots, and
        ``fill_records``: the step's fills as ``(ts, side +1/-1, price, qty)``) and the
        quantity the agent quoted for the step (`posted`, lots)."""
        self.ts.append(int(info["ts_ns"]))
        self.mid.append(float(info["mid"]))
        self.pnl.append(float(info["pnl"]))
        self.inventory.append(float(info["inventory"]))
        self.reward.append(float(reward))
        self.posted_qty += posted
        for ts, side, price, qty in info.get("fill_records", ()):
            self.fill_ts.append(int(ts))
            self.fill_side.append(int(side))
            self.fill_price.append(float(price))
            self.fill_qty.append(float(qty))


def posted_quantity(env: Any, action: Any, inventory: float) -> float:
    """Lots the agent quotes for a step with `action` (both sides), as the environment places
    them: the Box decoding, or `quote_size` a side for the discrete variant, and no side that
    would add to a position at `max_inventory`."""
    from gymnasium import spaces

    from agents.rl.desk import decode_box

    cfg = env.unwrapped.config
    if isinstance(env.action_space, spaces.Discrete):
        qb = qa = cfg.quote_size
    else:
        _, _, qb, qa = decode_box(action, cfg)
    if inventory >= cfg.max_inventory:
        qb = 0
    if inventory <= -cfg.max_inventory:
        qa = 0
    return float(qb + qa)


def run_episode(env: Any, policy: Policy, seed: int, regime: str) -> EpisodeRecord:
    """Play one episode of `env` (reset with `seed`, in `regime`) with `policy`."""
    obs, info = env.reset(seed=seed, options={"regime": regime})
    policy.reset()
    rec = EpisodeRecord(policy.name, regime, seed)
    inventory = 0.0
    done = False
    while not done:
        action = policy.act(obs)
        posted = posted_quantity(env, action, inventory)
        obs, reward, terminated, truncated, info = env.step(action)
        rec.add_step(info, float(reward), posted)
        inventory = float(info["inventory"])
        done = terminated or truncated
    return rec


def episode_metrics(rec: EpisodeRecord, step_s: float, markout_steps: int) -> dict[str, float]:
    """The table's measures of one episode, through `agents.metrics.compute`.

    The PnL is sampled once per step and the Sharpe ratio is per episode: the mean step PnL
    over its standard deviation times the square root of the number of steps (the metrics
    package's Sharpe with one period per episode), so episodes of any length compare. Adverse
    selection is the markout `markout_steps` steps after each fill (ticks per lot, negative:
    the mid moved against the fill).
    """
    from agents.metrics import Fills, MarketContext, MetricsConfig, Series, compute

    ts = np.asarray(rec.ts, dtype=np.int64)
    horizon_s = markout_steps * step_s
    n = max(1, len(ts) - 1)
    cfg = MetricsConfig(sample_s=step_s, year_s=step_s * n, markout_s=(horizon_s,))
    market = MarketContext(mids=Series(ts, np.asarray(rec.mid)), trade_ts=[], trade_price=[],
                           trade_qty=[], config=cfg)  # fmt: skip
    fills = Fills.of(ts=rec.fill_ts, side=rec.fill_side, price=rec.fill_price, qty=rec.fill_qty)
    m = compute(fills, market, pnl=Series(ts, np.asarray(rec.pnl)),
                inventory=Series(ts, np.asarray(rec.inventory)), posted_qty=rec.posted_qty,
                mark=rec.mid[-1] if rec.mid else None, start_ns=int(ts[0]) if len(ts) else None,
                end_ns=int(ts[-1]) if len(ts) else None)  # fmt: skip
    return {
        "total_pnl": float(rec.pnl[-1]) if rec.pnl else math.nan,
        "sharpe": m.profitability.sharpe,
        "max_drawdown": m.risk.max_drawdown,
        "inventory_std": m.inventory.std,
        "fill_ratio": m.market_making.fill_ratio,
        "spread_captured": m.market_making.spread_captured,
        "adverse_selection": next(iter(m.market_making.markouts.values()), math.nan),
        "fills": float(len(rec.fill_ts)),
        "reward": float(np.sum(rec.reward)),
    }


def summarise(values: list[float]) -> dict[str, float | int]:
    """Mean ± 95% interval (1.96 standard errors) over the finite values, and their count."""
    x = np.asarray([v for v in values if v is not None and math.isfinite(v)], dtype=float)
    if len(x) == 0:
        return {"mean": math.nan, "ci95": math.nan, "n": 0}
    ci = 1.96 * float(np.std(x, ddof=1)) / math.sqrt(len(x)) if len(x) > 1 else math.nan
    return {"mean": float(np.mean(x)), "ci95": ci, "n": len(x)}


@dataclass
class EvalResult:
    spec: EvalSpec
    policies: list[str]
    episodes: list[dict[str, Any]]
    table: dict[str, dict[str, dict[str, dict[str, float | int]]]]  # regime, policy, metric
    out: Path | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        def clean(x: Any) -> Any:
            if isinstance(x, float) and not math.isfinite(x):
                return None
            if isinstance(x, dict):
                return {k: clean(v) for k, v in x.items()}
            if isinstance(x, list):
                return [clean(v) for v in x]
            return x

        return clean({
            "regimes": self.spec.regimes, "seeds": self.spec.seeds, "policies": self.policies,
            "columns": COLUMNS, "table": self.table, "episodes": self.episodes,
            "interval": "mean ± 1.96 standard errors over the episodes", **self.meta,
        })  # fmt: skip


def _env_setup(target: str, config: Path | None) -> tuple[list[tuple[Policy, str]], Any]:
    """The policies to evaluate with the env id each plays, and the training config."""
    from agents.rl.train.config import TrainConfig, load_config

    if target == "baselines":
        cfg = load_config(config) if config is not None else TrainConfig()
        return [], cfg
    policy, run = load_policy(target)
    return [(policy, run.config.env_id)], run.config


def run_evaluation(target: str, spec: EvalSpec, *, config: Path | None = None,
                   out: Path | None = None, plots: bool = True) -> EvalResult:  # fmt: skip
    """Evaluate the policy of run `target` (or only the baselines, `target` "baselines") and
    write eval.json (and plots) into `out` (default: the run's ``eval`` directory)."""
    import gymnasium as gym

    from agents.rl.baselines import BASELINES, make_baseline
    from agents.rl.config import REGIMES
    from exchange.errors import UserError

    known = (*REGIMES, "switching")
    bad = [r for r in spec.regimes if r not in known]
    if bad or not spec.regimes:
        raise UserError(f"regimes: {', '.join(bad) or 'none given'}; have {', '.join(known)}")
    bad = [b for b in spec.baselines if b not in BASELINES]
    if bad:
        raise UserError(f"no baseline {', '.join(bad)}: have {', '.join(BASELINES)}")
    if not spec.seeds:
        raise UserError("no held-out seeds (--seeds must be at least 1)")
    policies, cfg = _env_setup(target, config)
    env_cfg = dict(cfg.env)
    if spec.episode_steps is not None:
        env_cfg["episode_steps"] = spec.episode_steps
    # the baselines quote through the continuous action of the market-making task
    base_id = cfg.env_id.replace("MarketMakingDiscrete-v0", "MarketMaking-v0")
    for name in spec.baselines:
        policies.append((make_baseline(name, env_cfg, **spec.baseline_params.get(name, {})),
                         base_id))  # fmt: skip
    from agents.rl.config import EnvConfig

    step_s = EnvConfig.coerce(env_cfg).step_ms / 1000.0
    envs: dict[str, Any] = {}
    episodes: list[dict[str, Any]] = []
    records: dict[tuple[str, str], list[EpisodeRecord]] = {}
    try:
        for regime in spec.regimes:
            for policy, env_id in policies:
                if env_id not in envs:
                    envs[env_id] = gym.make(env_id, config=env_cfg)
                for seed in spec.seeds:
                    rec = run_episode(envs[env_id], policy, seed, regime)
                    m = episode_metrics(rec, step_s, spec.markout_steps)
                    episodes.append({"policy": policy.name, "regime": regime, "seed": seed, **m})
                    records.setdefault((regime, policy.name), []).append(rec)
    finally:
        for env in envs.values():
            env.close()
    names = [p.name for p, _ in policies]
    table = {
        regime: {
            name: {key: summarise([e[key] for e in episodes
                                   if e["regime"] == regime and e["policy"] == name])
                   for key in COLUMNS}
            for name in names
        }
        for regime in spec.regimes
    }  # fmt: skip
    if out is None:
        out = Path(target) / "eval" if target != "baselines" else Path("runs") / "eval-baselines"
    out.mkdir(parents=True, exist_ok=True)
    result = EvalResult(spec, names, episodes, table, out,
                        {"target": target, "env_id": cfg.env_id, "step_s": step_s})  # fmt: skip
    (out / "eval.json").write_text(json.dumps(result.to_json(), indent=2))
    if plots:
        from agents.rl.evaluate_plots import write_plots

        result.meta["plots"] = [str(p) for p in write_plots(result, records, out)]
    return result


def _cell(s: dict[str, float | int], digits: int = 2) -> str:
    mean, ci = s["mean"], s["ci95"]
    if not isinstance(mean, float) or not math.isfinite(mean):
        return "-"
    if not math.isfinite(float(ci)):
        return f"{mean:,.{digits}f}"
    return f"{mean:,.{digits}f} ± {ci:,.{digits}f}"


def render_table(result: EvalResult) -> Any:
    """The result as a rich table: a row per regime and policy, a column per measure."""
    from rich.table import Table

    n = len(result.spec.seeds)
    t = Table(title=f"held-out evaluation: {n} seeds per regime, mean ± 95% interval")
    t.add_column("regime")
    t.add_column("policy")
    for title in COLUMNS.values():
        t.add_column(title, justify="right")
    for regime, rows in result.table.items():
        for name, cells in rows.items():
            t.add_row(regime, name, *(_cell(cells[k], 3 if k in ("fill_ratio", "sharpe") else 2)
                                      for k in COLUMNS))  # fmt: skip
    return t


def markdown_table(result: EvalResult) -> str:
    """The same table in Markdown (for a README)."""
    head = ["regime", "policy", *COLUMNS.values()]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for regime, rows in result.table.items():
        for name, cells in rows.items():
            lines.append("| " + " | ".join([regime, name, *(
                _cell(cells[k], 3 if k in ("fill_ratio", "sharpe") else 2) for k in COLUMNS
            )]) + " |")  # fmt: skip
    return "\n".join(lines)
