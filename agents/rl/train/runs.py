"""Run directories: what a training run saves so that it can be reproduced and used.

    runs/NAME-YYYYmmdd-HHMMSS/
        config.toml      the training file as given (byte for byte)
        config.json      the same, validated, with every default filled in
        meta.json        seed, library versions, steps, wall time, steps/s, curriculum switches
        model.zip        the Stable-Baselines3 model (policy weights and hyperparameters)
        tb/              TensorBoard logs (when tensorboard is installed)

`load_run` accepts a run directory or a model.zip (its config is read from beside it).
"""

from __future__ import annotations

import json
import platform
import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from agents.rl.train.config import TrainConfig
from exchange.errors import UserError

__all__ = ["Run", "library_versions", "load_run", "new_run_dir"]

_LIBRARIES = ("agora-market", "numpy", "torch", "stable-baselines3", "gymnasium", "pettingzoo",
              "ray")  # fmt: skip


def library_versions() -> dict[str, str | None]:
    """Versions of Python and of the libraries that decide what a run learns."""
    out: dict[str, str | None] = {"python": platform.python_version()}
    for name in _LIBRARIES:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = None
    try:
        out["git"] = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=5,
            cwd=Path(__file__).resolve().parent, check=False,
        ).stdout.strip() or None  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        out["git"] = None
    return out


def new_run_dir(cfg: TrainConfig) -> Path:
    """A fresh directory under `cfg.output` named after the run and the UTC time."""
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    base = Path(cfg.output) / f"{cfg.name}-{stamp}"
    path, n = base, 1
    while path.exists():
        n += 1
        path = base.with_name(f"{base.name}-{n}")
    path.mkdir(parents=True)
    return path


@dataclass
class Run:
    """A saved run: its directory, validated config, metadata and (loaded on demand) model."""

    path: Path
    config: TrainConfig
    meta: dict[str, Any]
    model_path: Path

    def load_model(self) -> Any:
        """The trained SB3 model (PPO or DQN), on the CPU."""
        import torch

        from agents.rl.train.algorithms import ALGORITHMS

        torch.set_num_threads(self.config.torch_threads)
        cls = ALGORITHMS[self.config.algorithm.name]
        return cls.load(str(self.model_path), device="cpu")


def load_run(path: str | Path) -> Run:
    """The run at `path` (a run directory or its model.zip); a wrong path is the user's mistake."""
    p = Path(path)
    if p.is_dir():
        run_dir, model = p, p / "model.zip"
    elif p.suffix == ".zip" or p.with_suffix(".zip").exists():
        model = p if p.suffix == ".zip" else p.with_suffix(".zip")
        run_dir = model.parent
    else:
        raise UserError(f"{path}: no run directory or model.zip there (agora train writes one)")
    if not model.exists():
        raise UserError(f"{path}: no model.zip in it (did the training run finish?)")
    cfg_file = run_dir / "config.json"
    if not cfg_file.exists():
        raise UserError(f"{run_dir}: no config.json beside the model (not an agora train run)")
    config = TrainConfig.model_validate_json(cfg_file.read_text())
    meta_file = run_dir / "meta.json"
    meta = json.loads(meta_file.read_text()) if meta_file.exists() else {}
    return Run(run_dir, config, meta, model)
