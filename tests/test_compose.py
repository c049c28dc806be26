"""docker-compose.yml and `agora up` start the same services, configured the same way.

The compose file is generated (`agora compose`) from `deploy.services`, the list `agora up`
starts; these tests check the committed file is that output, that every command is a real
entry point of this package, that every variable is one the process reads (and validates),
and that ports and volumes agree with those settings.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic_settings import BaseSettings

from agents.fundamental.settings import FundamentalSettings
from agents.recorder.settings import RecorderSettings
from agents.settings import ClientSettings
from clearing.settings import ClearingSettings
from dashboard.settings import DashboardSettings
from deploy.compose import ADMIN_TOKEN, compose, render
from deploy.markets import default_market
from deploy.services import WEB_PORT, Plan, metrics_ports, services
from exchange.settings import ExchangeSettings

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = ROOT / "docker-compose.yml"

SETTINGS: dict[str, list[type[BaseSettings]]] = {
    "clearing": [ClearingSettings],
    "exchange": [ExchangeSettings],
    "agents.fundamental": [FundamentalSettings],
    "agents.recorder": [RecorderSettings],
    "agents": [ClientSettings],
    "dashboard": [DashboardSettings],
}
# read by typer options of `python -m agents run` (envvar=) and by deploy/health.py
EXTRA_VARS = {"agents": {"AGORA_POPULATION", "AGORA_INSTANCE"}}
HEALTH_VAR = "AGORA_HEALTH_ENDPOINT"


def _env_names(cls: type[BaseSettings]) -> set[str]:
    prefix = cls.model_config.get("env_prefix", "")
    return {f"{prefix}{name}".upper() for name in cls.model_fields}


@pytest.fixture(scope="module")
def doc() -> dict[str, Any]:
    """The compose file, less the `monitoring` profile's services (other images: checked in
    tests/test_monitoring.py)."""
    full = yaml.safe_load(COMPOSE.read_text())
    full["services"] = {k: v for k, v in full["services"].items() if "profiles" not in v}
    return full


def test_committed_compose_file_is_the_generated_one() -> None:
    assert COMPOSE.read_text() == render(default_market()), (
        "docker-compose.yml is stale: run `agora compose --out docker-compose.yml`"
    )


def test_the_yaml_reads_back_as_the_generated_structure() -> None:
    assert yaml.safe_load(COMPOSE.read_text()) == compose(default_market())


def test_every_command_is_an_entry_point_of_this_package(doc: dict[str, Any]) -> None:
    for name, svc in doc["services"].items():
        python, flag, module, *_ = svc["command"]
        assert (python, flag) == ("python", "-m"), name
        assert module in SETTINGS, f"{name}: unexpected module {module}"
        spec = importlib.util.find_spec(module)
        assert spec is not None, module
        if spec.submodule_search_locations:  # a package: runnable only with a __main__
            assert importlib.util.find_spec(f"{module}.__main__") is not None, module
        if "healthcheck" in svc:
            cmd, python, flag, health, *_ = svc["healthcheck"]["test"]
            assert (cmd, python, flag) == ("CMD", "python", "-m"), name
            assert importlib.util.find_spec(health) is not None


def test_every_variable_is_a_setting_the_process_reads_and_accepts(
    doc: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, svc in doc["services"].items():
        module = svc["command"][2]
        known = set().union(*(_env_names(c) for c in SETTINGS[module]))
        known |= EXTRA_VARS.get(module, set()) | {HEALTH_VAR}
        env = svc["environment"]
        unknown = set(env) - known
        assert not unknown, f"{name} sets variables nothing reads: {sorted(unknown)}"
        # and the process accepts the values (the admin token's interpolation aside)
        for key in list(os.environ):
            if key.startswith("AGORA_"):
                monkeypatch.delenv(key)
        for key, value in env.items():
            monkeypatch.setenv(key, value.replace(ADMIN_TOKEN, "t"))
        for cls in SETTINGS[module]:
            cls()  # raises on any value the settings refuse


def test_ports_and_volumes_agree_with_the_settings(
    doc: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    services_ = doc["services"]
    for name, svc in services_.items():
        env = svc["environment"]
        binds = {v for k, v in env.items() if k.endswith("_BIND")}
        bound_ports = {b.rsplit(":", 1)[1] for b in binds}
        bound_ports |= {v for k, v in env.items() if k.endswith("_PORT")}  # (HTTP servers)
        for mapping in svc.get("ports", []):
            ip, host, container = mapping.split(":")
            assert ip == "127.0.0.1", (name, mapping)  # the host's loopback unless edited
            assert host == container and container in bound_ports, (name, mapping)
        for volume in svc.get("volumes", []):
            vol_name, path = volume.split(":")
            assert vol_name in doc["volumes"] or vol_name.startswith("./")  # or a bind mount
            data_vars = [v for k, v in env.items() if k.endswith(("_DATA_DIR", "_OUT_DIR"))]
            assert data_vars == [path], (name, volume)
        for key, value in env.items():  # every address a service connects to is served
            if value.startswith("tcp://") and not key.endswith("_BIND") and key != HEALTH_VAR:
                host, port = value[len("tcp://") :].rsplit(":", 1)
                target = services_[host]["environment"]
                assert any(v.endswith(f":{port}") for k, v in target.items()
                           if k.endswith("_BIND")), (name, key, value)  # fmt: skip


def test_compose_matches_what_agora_up_starts(doc: dict[str, Any], tmp_path: Path) -> None:
    plan = Plan(data_dir=str(tmp_path), admin_token="t", link_secret="t", web_port=WEB_PORT,
                metrics=metrics_ports(default_market()))  # fmt: skip
    local = services(default_market(), plan)
    assert list(doc["services"]) == [s.name for s in local]
    for svc in local:
        entry = doc["services"][svc.name]
        assert entry["command"] == svc.argv
        extra = {"AGORA_INSTANCE", HEALTH_VAR}
        assert set(entry["environment"]) - extra == set(svc.env), svc.name
        for key, value in svc.env.items():  # only addresses, paths and the secrets may differ
            if key.endswith(("_HOST", "_SERVICE_METRICS")):
                continue  # interfaces, and the metrics' URLs (hosts by service name)
            if not (value.startswith("tcp://") or value.startswith(str(tmp_path)) or value == "t"):
                assert entry["environment"][key] == value, (svc.name, key)
