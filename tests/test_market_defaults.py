"""The built-in market's fair value is one process wherever it runs: `agora simulate`, the
services `agora up` starts, a fundamental process started with its defaults, the cluster."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from agents.fundamental.model import FundamentalConfig
from agents.fundamental.settings import FundamentalSettings
from agents.sim import SimMarket
from deploy.markets import default_market
from deploy.services import Plan, services
from exchange.symbols import SymbolSpec

K8S = Path(__file__).resolve().parent.parent / "deploy" / "k8s"


@pytest.fixture
def live_defaults(monkeypatch: pytest.MonkeyPatch) -> FundamentalSettings:
    """The fundamental process's settings with no AGORA_FUNDAMENTAL_* variable set."""
    import os

    for key in list(os.environ):
        if key.startswith("AGORA_FUNDAMENTAL_"):
            monkeypatch.delenv(key)
    return FundamentalSettings()


def simulated() -> tuple[FundamentalConfig, float]:
    sim = SimMarket.from_config(default_market())
    assert sim.fundamental is not None
    return sim.fundamental.config, sim.fundamental_interval_ns / 1e9


def started_by_agora_up() -> tuple[FundamentalConfig, float]:
    (svc,) = [s for s in services(default_market(), Plan()) if s.name == "fundamental"]
    env = svc.env
    settings = FundamentalSettings(model=json.loads(env["AGORA_FUNDAMENTAL_MODEL"]),
                                   interval_s=float(env["AGORA_FUNDAMENTAL_INTERVAL_S"]))
    return settings.model_config_seeded(), settings.interval_s


def test_simulate_and_up_run_the_same_fair_value_process(
    live_defaults: FundamentalSettings,
) -> None:
    sim = simulated()
    assert started_by_agora_up() == sim
    assert (live_defaults.model_config_seeded(), live_defaults.interval_s) == sim
    model, interval = sim
    assert model.step_s == interval  # F moves at every publication, not every other one


def test_the_same_process_gives_the_same_path() -> None:
    from agents.fundamental.model import FundamentalModel

    (sim_cfg, interval), (live_cfg, _) = simulated(), started_by_agora_up()
    a, b = FundamentalModel(sim_cfg), FundamentalModel(live_cfg)
    path_a = [a.step(interval) for _ in range(50)]
    assert path_a == [b.step(interval) for _ in range(50)]
    assert len({v["AGR"] for v in path_a}) == 50  # a new value at every publication


def test_the_cluster_runs_the_built_in_market_with_its_moving_band() -> None:
    docs = [d for d in yaml.safe_load_all((K8S / "market-config.yaml").read_text()) if d]
    (cm,) = docs
    symbols = [SymbolSpec.model_validate(s) for s in json.loads(cm["data"]["symbols.json"])]
    assert symbols == default_market().symbols
    assert all(s.band_reference == "last" for s in symbols)
    model = FundamentalConfig.model_validate(json.loads(cm["data"]["fundamental-model.json"]))
    env = {}
    for doc in yaml.safe_load_all((K8S / "fundamental.yaml").read_text()):
        if doc and doc["kind"] == "Deployment":
            (c,) = doc["spec"]["template"]["spec"]["containers"]
            env = {e["name"]: e.get("value") for e in c["env"]}
    interval = float(env["AGORA_FUNDAMENTAL_INTERVAL_S"])
    seeded = model.model_copy(update={"seed": int(env["AGORA_FUNDAMENTAL_SEED"])})
    assert (seeded, interval) == simulated()
