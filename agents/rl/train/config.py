"""The training file: one TOML for the environment, the algorithm, the curriculum and the seed.

A run is reproducible from this file alone (plus the library versions saved beside it), so
everything that changes what is learnt lives here, with the reference values as defaults:

    seed = 1
    total_steps = 1_200_000
    env_id = "agents.rl:Agora/MarketMaking-v0"

    [env]                                 # the environment's config (agents.rl.config)
    background = "flow"
    step_ms = 100

    [algorithm]
    name = "ppo"                          # or "dqn" (discrete action sets)

    [vec]
    n_envs = 8
    kind = "dummy"                        # or "subproc"

    [[curriculum.phases]]
    start = 0
    regime = "low"

Unknown keys are refused with the nearest valid name (pydantic, `extra="forbid"`), so a typo
in a hyperparameter never trains silently with the default.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from exchange.errors import UserError, describe_validation

__all__ = [
    "DQNConfig",
    "PPOConfig",
    "Phase",
    "TrainConfig",
    "VecConfig",
    "load_config",
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PPOConfig(_Strict):
    """Proximal Policy Optimisation with the reference hyperparameters.

    The network is one shared trunk (`trunk`, ReLU) feeding a linear policy head (one output
    per action dimension, a Gaussian mean; the log-std is a free parameter) and a linear value
    head (one output). In Stable-Baselines3 terms: a features extractor that is the trunk,
    shared by actor and critic (`share_features_extractor=True`), and
    ``net_arch=dict(pi=[], vf=[])`` so that each head is a single linear layer on top of it.
    """

    name: Literal["ppo"] = "ppo"
    learning_rate: float = Field(default=3e-4, gt=0)
    lr_schedule: Literal["linear", "constant"] = Field(
        default="linear", description="linear: decays to 0 over total_steps"
    )
    n_steps: int = Field(default=256, ge=1, description="steps per env per rollout")
    batch_size: int = Field(default=256, ge=2)
    n_epochs: int = Field(default=10, ge=1)
    gamma: float = Field(default=0.99, gt=0, le=1)
    gae_lambda: float = Field(default=0.95, ge=0, le=1)
    clip_range: float = Field(default=0.2, gt=0)
    ent_coef: float = Field(default=0.01, ge=0)
    vf_coef: float = Field(default=0.5, ge=0)
    max_grad_norm: float = Field(default=0.5, gt=0)
    trunk: list[int] = Field(default=[256, 256, 128], description="shared ReLU layers")
    normalize_advantage: bool = True
    log_std_init: float = Field(
        default=0.0,
        description="initial log-std of the Gaussian actions (0: std 1, Stable-Baselines3's "
        "default, as wide as the whole [-1, 1] action range)",
    )


class DQNConfig(_Strict):
    """Deep Q-learning for the discrete action variants (the same trunk, then one Q per action)."""

    name: Literal["dqn"] = "dqn"
    learning_rate: float = Field(default=1e-4, gt=0)
    lr_schedule: Literal["linear", "constant"] = "constant"
    buffer_size: int = Field(default=100_000, ge=1)
    learning_starts: int = Field(default=1_000, ge=0)
    batch_size: int = Field(default=256, ge=1)
    gamma: float = Field(default=0.99, gt=0, le=1)
    train_freq: int = Field(default=4, ge=1)
    gradient_steps: int = Field(default=1, ge=1)
    target_update_interval: int = Field(default=1_000, ge=1)
    exploration_fraction: float = Field(default=0.1, ge=0, le=1)
    exploration_final_eps: float = Field(default=0.05, ge=0, le=1)
    trunk: list[int] = Field(default=[256, 256, 128], description="ReLU layers before the Qs")


class VecConfig(_Strict):
    n_envs: int = Field(default=8, ge=1, description="sub-environments (each its own seed)")
    kind: Literal["dummy", "subproc"] = Field(
        default="dummy",
        description="dummy: all in this process (fastest on 2 cores); subproc: one process each",
    )


class Phase(_Strict):
    start: int = Field(ge=0, description="first training step of the phase")
    regime: str = Field(description="the environment's volatility regime (set_regime)")


def _default_phases() -> list[Phase]:
    return [
        Phase(start=0, regime="low"),
        Phase(start=250_000, regime="medium"),
        Phase(start=500_000, regime="high"),
        Phase(start=1_000_000, regime="switching"),
    ]


class CurriculumConfig(_Strict):
    enabled: bool = True
    phases: list[Phase] = Field(default_factory=_default_phases)

    def regime_at(self, step: int) -> str | None:
        """The regime in force at training step `step` (None: no curriculum)."""
        if not self.enabled or not self.phases:
            return None
        current = None
        for phase in sorted(self.phases, key=lambda p: p.start):
            if phase.start <= step:
                current = phase.regime
        return current if current is not None else min(self.phases, key=lambda p: p.start).regime


class TrainConfig(_Strict):
    name: str = Field(default="run", description="run name (the run directory starts with it)")
    seed: int = Field(default=1, description="seeds torch, the algorithm and sub-env i (seed+i)")
    total_steps: int = Field(default=1_200_000, ge=1, description="environment steps, all envs")
    output: Path = Field(default=Path("runs"), description="where run directories go")
    env_id: str = Field(
        default="agents.rl:Agora/MarketMaking-v0", description="gymnasium id (module:Name-vN)"
    )
    env: dict[str, Any] = Field(
        default_factory=dict,
        description="the environment's config (its fields, agents.rl.config.EnvConfig); the "
        "curriculum sets its regime",
    )
    algorithm: Annotated[PPOConfig | DQNConfig, Field(discriminator="name")] = Field(
        default_factory=PPOConfig
    )
    vec: VecConfig = Field(default_factory=VecConfig)
    curriculum: CurriculumConfig = Field(default_factory=CurriculumConfig)
    tensorboard: bool = Field(default=True, description="write TensorBoard logs if installed")
    torch_threads: int = Field(default=1, ge=1, description="torch.set_num_threads")


def load_config(path: str | Path) -> TrainConfig:
    """Read and validate a training TOML; a mistake (bad TOML, unknown key, bad value, in the
    training part or in ``[env]``) is a `UserError` naming the file and the field."""
    with open(path, "rb") as fh:
        try:
            data = tomllib.load(fh)
        except tomllib.TOMLDecodeError as exc:
            raise UserError(f"{path}: not valid TOML: {exc}") from None
    try:
        cfg = TrainConfig.model_validate(data)
    except ValidationError as exc:
        raise UserError(f"{path}: {describe_validation(exc, TrainConfig)}") from None
    check_env_config(cfg.env, path)
    return cfg


def check_env_config(env: dict[str, Any], where: str | Path = "[env]") -> None:
    """Validate the ``[env]`` table against the environments' own config model, so a typo
    there is refused before training starts rather than by the first sub-environment."""
    try:
        from agents.rl.config import EnvConfig
    except ImportError:  # an environment package without a config model: it checks itself
        return
    try:
        EnvConfig.model_validate(env)
    except ValidationError as exc:
        raise UserError(f"{where}: [env] {describe_validation(exc, EnvConfig)}") from None
