"""Compiled cores (accel): used only when built from today's source, off with AGORA_PURE, and
a compiled module runs a seeded market to the same trades as its Python source."""

from __future__ import annotations

import importlib
import importlib.machinery
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from conftest import COMPILED

import accel
import exchange

ROOT = Path(__file__).resolve().parents[1]

# A seeded market of the strategy zoo, run in a fresh interpreter: prints the compiled
# modules in use and a digest of every trade.
RUN = textwrap.dedent(
    """
    import hashlib, json
    import accel
    from agents.config import MarketConfig, Population
    from agents.sim import SimMarket
    config = MarketConfig(seed=5, fundamental={"scale": 0.0005, "step_s": 0.1}, populations=[
        Population(name="zi", strategy="zi", count=40),
        Population(name="fv", strategy="fair_value", count=5),
        Population(name="mm", strategy="fixed_spread_mm", count=1),
    ])
    sim = SimMarket.from_config(config)
    sim.run(duration_ns=20 * 10**9)
    sim.finish()
    rows = json.dumps({k: v for k, v in sim.trades.items()}, sort_keys=True)
    print(json.dumps({"active": accel.active(), "trades": len(sim.trades["ts"]),
                      "digest": hashlib.sha256(rows.encode()).hexdigest()}))
    """
)


def _env(**extra: str) -> dict[str, str]:
    """This environment without the suite's settings for compiled cores, plus `extra`."""
    drop = ("AGORA_PURE", "AGORA_ACCEL_DIR", "AGORA_TEST_COMPILED")
    return {**{k: v for k, v in os.environ.items() if k not in drop}, **extra}


def _python(code: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    return out


def _run(env_extra: dict[str, str]) -> dict:
    return json.loads(_python(RUN, _env(**env_extra)).stdout.strip().splitlines()[-1])


def test_the_finder_takes_only_a_build_of_the_source_on_disk(tmp_path, monkeypatch):
    monkeypatch.setenv("AGORA_ACCEL_DIR", str(tmp_path))
    finder = accel._Finder()
    path = exchange.__path__
    assert finder.find_spec("exchange.symbols", path) is None  # not one of the cores
    assert finder.find_spec("exchange.reports", path) is None  # nothing built
    source = accel.source_of("exchange.reports", path)
    assert source is not None and source.name == "reports.py"

    # a build of another version of the source is not taken (an edit makes builds stale)
    accel.compiled_path("exchange.reports", b"# older reports\n").write_bytes(b"")
    assert finder.find_spec("exchange.reports", path) is None

    # a build of exactly this source is
    current = accel.compiled_path("exchange.reports", source.read_bytes())
    current.write_bytes(b"")
    spec = finder.find_spec("exchange.reports", path)
    assert spec is not None and spec.origin == str(current)
    assert isinstance(spec.loader, importlib.machinery.ExtensionFileLoader)


def test_a_build_made_another_way_is_not_taken(tmp_path, monkeypatch):
    """The build's name covers how it was compiled (directives, format), not the source only."""
    monkeypatch.setenv("AGORA_ACCEL_DIR", str(tmp_path))
    source = accel.source_of("exchange.reports", exchange.__path__)
    assert source is not None
    accel.compiled_path("exchange.reports", source.read_bytes()).write_bytes(b"")
    assert accel._Finder().find_spec("exchange.reports", exchange.__path__) is not None
    monkeypatch.setattr(accel, "_BUILD_KEY", b"agora-accel:another format\n")
    assert accel._Finder().find_spec("exchange.reports", exchange.__path__) is None


def test_a_build_that_cannot_load_falls_back_to_the_source(tmp_path):
    source = accel.source_of("exchange.reports", exchange.__path__)
    assert source is not None
    bad = tmp_path / accel.compiled_path("exchange.reports", source.read_bytes()).name
    bad.write_bytes(b"not a shared object")
    code = (
        "import accel, exchange.reports as r;"
        "print(r.__file__, r.Reporter().translate_raw([]).private)"
    )
    out = _python(code, _env(AGORA_ACCEL_DIR=str(tmp_path), PYTHONWARNINGS="always"))
    assert out.stdout.split() == [str(source), "[]"]
    assert "accel: cannot load" in out.stderr and "agora accel clean" in out.stderr


def test_pure_turns_the_finder_off():
    code = "import sys, accel; print(any(isinstance(f, accel._Finder) for f in sys.meta_path))"
    on = _python(code, _env()).stdout.strip()
    off = [_python(code, _env(AGORA_PURE=v)).stdout.strip() for v in ("1", "yes")]
    assert (on, off) == ("True", ["False", "False"])


@pytest.mark.skipif(not COMPILED, reason="the compiled pass of scripts/test.sh only")
def test_the_compiled_pass_runs_every_core_compiled():
    for name in accel.MODULES:
        importlib.import_module(name)
    assert accel.active() == list(accel.MODULES)


def test_a_compiled_core_trades_exactly_as_its_source(tmp_path, monkeypatch):
    """Builds the kernel and the ZI strategy for real (Cython, C compiler), runs the same
    seeded market compiled and pure: same trades. The full list compiles the same way."""
    pytest.importorskip("Cython")
    from accel.build import build

    cache = tmp_path / "cache"
    env = {"AGORA_ACCEL_DIR": str(cache)}
    monkeypatch.setenv("AGORA_ACCEL_DIR", str(cache))
    written = build(["agents.sim.kernel", "agents.strategies.zero_intelligence"], jobs=2)
    assert len(written) == 2 and all(p.parent == cache for p in written)

    compiled = _run(env)
    pure = _run({**env, "AGORA_PURE": "1"})
    assert compiled["active"] == ["agents.sim.kernel", "agents.strategies.zero_intelligence"]
    assert pure["active"] == []
    assert compiled["trades"] > 100
    assert compiled["digest"] == pure["digest"]
