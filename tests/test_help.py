"""Every entry point answers ``--help`` with its usage and exit status 0, and starts nothing.

`python -m exchange --help` used to start an exchange. The processes configured only by
environment list their ``AGORA_*`` variables (from the settings classes, so the list is
complete); every `agora` sub-command, nested ones included, prints its usage.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from agents.fundamental.settings import FundamentalSettings
from agents.recorder.settings import RecorderSettings
from clearing.settings import ClearingSettings
from deploy.cli import app
from exchange.settings import ExchangeSettings

TIMEOUT_S = 60  # a safety net: a server started by mistake would run until killed

PROCESSES = {
    "exchange": ExchangeSettings,
    "clearing": ClearingSettings,
    "agents.fundamental": FundamentalSettings,
    "agents.recorder": RecorderSettings,
}


def _help(argv: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AGORA_")}
    return subprocess.run([*argv, "--help"], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=TIMEOUT_S)  # fmt: skip


@pytest.mark.parametrize("module", sorted(PROCESSES))
def test_a_process_answers_help_with_its_variables(module: str, tmp_path: Path) -> None:
    done = _help([sys.executable, "-m", module], tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.startswith(f"usage: python -m {module}"), done.stdout[:300]
    assert "AGORA_READY" not in done.stdout  # nothing was started
    settings = PROCESSES[module]
    prefix = settings.model_config["env_prefix"]
    for name in settings.model_fields:
        assert f"{prefix}{name}".upper() in done.stdout, name
    assert not any(tmp_path.iterdir())  # no journal, database or recording was created


def test_a_process_refuses_an_unknown_option(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "exchange", "--port", "1"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=TIMEOUT_S)  # fmt: skip
    assert done.returncode == 2 and "unrecognized arguments: --port" in done.stderr


@pytest.mark.parametrize("argv", [
    ["-m", "agents"], ["-m", "agents", "run"], ["-m", "agents", "attach"],
    ["-m", "agents", "list"], ["-m", "deploy.health"], ["-m", "deploy.cli"],
])  # fmt: skip
def test_the_other_entry_points_answer_help(argv: list[str], tmp_path: Path) -> None:
    done = _help([sys.executable, *argv], tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "usage" in done.stdout.lower(), done.stdout[:300]


def test_the_installed_agora_script_answers_help(tmp_path: Path) -> None:
    script = Path(sys.executable).parent / "agora"
    if not script.exists():
        pytest.skip("the agora script is not installed next to this Python")
    done = _help([str(script)], tmp_path)
    assert done.returncode == 0 and "Usage: agora" in done.stdout, done.stderr[-2000:]


def _commands(group: Any, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every command under a (typer or click) group, nested groups included."""
    out = []
    for name, command in sorted(group.commands.items()):
        out.append((*path, name))
        if hasattr(command, "commands"):
            out += _commands(command, (*path, name))
    return out


def test_every_agora_subcommand_answers_help() -> None:
    commands = _commands(typer.main.get_command(app))
    assert {("up",), ("exchange",), ("attach",), ("agents", "run"), ("simulate",)} <= set(
        commands
    ), commands
    runner = CliRunner()
    for path in commands:
        result = runner.invoke(app, [*path, "--help"])
        assert result.exit_code == 0, (path, result.output[-1000:], result.exception)
        assert "Usage:" in result.output, (path, result.output[:300])
