"""The Kubernetes manifests (deploy/k8s) against the code they deploy, and deploy.health.

A manifest is only checked by a cluster when it is applied; a mistyped variable name is not
even an error there, just a setting silently left at its default (a loopback bind, an empty
token). So every container's environment is checked here against the settings classes that
read it, and then actually parsed by them, with ConfigMap and Secret references resolved.
"""

from __future__ import annotations

import importlib.util
import json
import re
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic_settings import BaseSettings

from agents.fundamental.settings import FundamentalSettings
from agents.recorder.settings import RecorderSettings
from agents.settings import ClientSettings
from clearing.settings import ClearingSettings
from deploy import health
from exchange.settings import ExchangeSettings

yaml = pytest.importorskip("yaml")

K8S = Path(__file__).resolve().parent.parent / "deploy" / "k8s"
WORKLOADS = ("Deployment", "StatefulSet")

# The settings class each command module reads its environment with.
SETTINGS_OF: dict[str, type[BaseSettings]] = {
    "exchange": ExchangeSettings,
    "clearing": ClearingSettings,
    "agents.fundamental": FundamentalSettings,
    "agents.recorder": RecorderSettings,
    "agents": ClientSettings,
}


def env_names(cls: type[BaseSettings]) -> set[str]:
    prefix = cls.model_config.get("env_prefix", "")
    return {(prefix + name).upper() for name in cls.model_fields}


KNOWN_ENV = set().union(*(env_names(c) for c in SETTINGS_OF.values()))


def load_docs() -> list[dict[str, Any]]:
    docs = []
    for path in sorted(K8S.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc:
                doc["__file"] = path.name
                docs.append(doc)
    return docs


DOCS = load_docs()


def of_kind(*kinds: str) -> list[dict[str, Any]]:
    return [d for d in DOCS if d["kind"] in kinds]


def containers() -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    for w in of_kind(*WORKLOADS):
        for c in w["spec"]["template"]["spec"]["containers"]:
            yield w, c


def module_of(container: dict[str, Any]) -> str:
    cmd = container["command"]
    assert cmd[:2] == ["python", "-m"], f"{container['name']}: run as python -m MODULE"
    return cmd[2]


def resolve(item: dict[str, Any]) -> str | None:
    """An env item's value, following ConfigMap and Secret references (None: from the pod)."""
    if "value" in item:
        return str(item["value"])
    ref = item["valueFrom"]
    if "configMapKeyRef" in ref:
        key = ref["configMapKeyRef"]
        maps = [d for d in of_kind("ConfigMap") if d["metadata"]["name"] == key["name"]]
        assert maps, f"no ConfigMap {key['name']}"
        return maps[0]["data"][key["key"]]
    if "secretKeyRef" in ref:
        key = ref["secretKeyRef"]
        secrets = [d for d in of_kind("Secret") if d["metadata"]["name"] == key["name"]]
        assert secrets, f"no Secret {key['name']}"
        return secrets[0]["stringData"][key["key"]]
    assert "fieldRef" in ref, item
    return None


def test_the_market_is_all_there() -> None:
    kinds = sorted(d["kind"] for d in DOCS)
    for kind in ("Namespace", "ConfigMap", "Secret", "Service", "PersistentVolumeClaim"):
        assert kind in kinds
    names = {(d["kind"], d["metadata"]["name"]) for d in of_kind(*WORKLOADS)}
    assert {("StatefulSet", "exchange"), ("StatefulSet", "clearing")} <= names
    assert {("Deployment", "fundamental"), ("Deployment", "recorder")} <= names
    assert any(module_of(c) == "agents" for _, c in containers())
    kustomized = set(yaml.safe_load((K8S / "kustomization.yaml").read_text())["resources"])
    assert kustomized == {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}


def test_every_object_is_in_the_agora_namespace() -> None:
    for d in DOCS:
        if d["kind"] in ("Namespace", "Kustomization"):
            continue
        assert d["metadata"].get("namespace") == "agora", (d["__file"], d["metadata"]["name"])


@pytest.mark.parametrize("workload", of_kind(*WORKLOADS), ids=lambda w: w["metadata"]["name"])
def test_commands_exist_and_env_names_are_read_by_settings(workload: dict[str, Any]) -> None:
    for c in workload["spec"]["template"]["spec"]["containers"]:
        module = module_of(c)
        assert importlib.util.find_spec(module) is not None, module
        assert module in SETTINGS_OF, f"which settings does {module} read?"
        args = " ".join(c["command"] + c.get("args", []))
        for item in c.get("env", []):
            name = item["name"]
            # A variable only Kubernetes reads: substituted into the command as $(NAME).
            if f"$({name})" in args:
                continue
            elsewhere = " (another process reads it)" if name in KNOWN_ENV else ""
            assert name in env_names(SETTINGS_OF[module]), (
                f"{workload['metadata']['name']}: {SETTINGS_OF[module].__name__} does not read "
                f"{name}{elsewhere}"
            )
        for ref in re.findall(r"\$\((\w+)\)", args):
            assert ref in {e["name"] for e in c.get("env", [])}, f"$({ref}) is not defined"


@pytest.mark.parametrize("workload", of_kind(*WORKLOADS), ids=lambda w: w["metadata"]["name"])
def test_settings_accept_the_manifest_environment(
    workload: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    for c in workload["spec"]["template"]["spec"]["containers"]:
        for name in KNOWN_ENV:
            monkeypatch.delenv(name, raising=False)
        env = {e["name"]: resolve(e) for e in c.get("env", [])}
        for name, value in env.items():
            if value is not None:
                monkeypatch.setenv(name, value)
        settings = SETTINGS_OF[module_of(c)]()  # raises on a value it cannot parse
        # Inside a container a loopback bind is unreachable: every bind is on all interfaces.
        ports = {p["containerPort"] for p in c.get("ports", [])}
        for field, value in settings.model_dump().items():
            if field.endswith("bind") or field == "bind":
                assert value.startswith("tcp://0.0.0.0:"), (field, value)
                assert int(value.rsplit(":", 1)[1]) in ports, (field, value, ports)
        # Peers are found through their Services, never through loopback.
        for name, value in env.items():
            if value and value.startswith("tcp://") and not name.endswith("_BIND"):
                host = value.removeprefix("tcp://").rsplit(":", 1)[0]
                assert host in {s["metadata"]["name"] for s in of_kind("Service")}, (name, value)


def test_services_select_a_workload_and_target_its_container_ports() -> None:
    for svc in of_kind("Service"):
        selector = svc["spec"]["selector"]
        matching = [
            w for w in of_kind(*WORKLOADS)
            if selector.items() <= w["spec"]["template"]["metadata"]["labels"].items()
        ]  # fmt: skip
        assert len(matching) == 1, svc["metadata"]["name"]
        ports = [p for c in matching[0]["spec"]["template"]["spec"]["containers"]
                 for p in c.get("ports", [])]  # fmt: skip
        by_name = {p["name"]: p["containerPort"] for p in ports}
        for port in svc["spec"]["ports"]:
            target = port.get("targetPort", port["port"])
            number = by_name.get(target) if isinstance(target, str) else target
            assert number in by_name.values(), (svc["metadata"]["name"], port)
            assert port["port"] == number, "the Service keeps each documented port number"


def test_volumes_are_claimed_and_mounted() -> None:
    claims = {d["metadata"]["name"] for d in of_kind("PersistentVolumeClaim")}
    for w in of_kind(*WORKLOADS):
        spec = w["spec"]["template"]["spec"]
        volumes = {v["name"] for v in spec.get("volumes", [])}
        volumes |= {t["metadata"]["name"] for t in w["spec"].get("volumeClaimTemplates", [])}
        for v in spec.get("volumes", []):
            if "persistentVolumeClaim" in v:
                assert v["persistentVolumeClaim"]["claimName"] in claims
        for c in spec["containers"]:
            for m in c.get("volumeMounts", []):
                assert m["name"] in volumes, (w["metadata"]["name"], m)
    # The stateful ones keep their data on a volume, where their settings put it.
    for name, var in (("exchange", "AGORA_EXCHANGE_DATA_DIR"),
                      ("clearing", "AGORA_CLEARING_DATA_DIR"),
                      ("recorder", "AGORA_RECORDER_OUT_DIR")):  # fmt: skip
        (w,) = [w for w in of_kind(*WORKLOADS) if w["metadata"]["name"] == name]
        (c,) = w["spec"]["template"]["spec"]["containers"]
        data = next(e["value"] for e in c["env"] if e["name"] == var)
        assert data in {m["mountPath"] for m in c["volumeMounts"]}, name


def test_the_market_config_is_valid_for_every_reader() -> None:
    (cm,) = of_kind("ConfigMap")
    symbols = json.loads(cm["data"]["symbols.json"])
    for cls, var in ((ExchangeSettings, "symbols"), (ClearingSettings, "symbols")):
        assert [s.symbol for s in getattr(cls(**{var: symbols}), var)] == ["AGR"]
    model = FundamentalSettings(model=json.loads(cm["data"]["fundamental-model.json"])).model
    assert set(model.symbols) == {s["symbol"] for s in symbols}


# ------------------------------------------------------------------------------ deploy.health


def test_health_parses_endpoints() -> None:
    assert health.parse_endpoint("tcp://0.0.0.0:5555") == ("127.0.0.1", 5555)
    assert health.parse_endpoint("tcp://*:5556") == ("127.0.0.1", 5556)
    assert health.parse_endpoint("exchange:5557") == ("exchange", 5557)
    for bad in ("ipc:///tmp/x", "tcp://host", "tcp://host:http", "tcp://host:0"):
        with pytest.raises(ValueError):
            health.parse_endpoint(bad)


def test_health_checks_that_every_endpoint_accepts_a_connection() -> None:
    with socket.socket() as listening, socket.socket() as closed:
        listening.bind(("127.0.0.1", 0))
        listening.listen()
        closed.bind(("127.0.0.1", 0))  # bound, not listening: a connection is refused
        up = f"tcp://127.0.0.1:{listening.getsockname()[1]}"
        down = f"tcp://127.0.0.1:{closed.getsockname()[1]}"
        assert health.main({health.ENV_ENDPOINT: up}) == 0
        assert health.main({health.ENV_ENDPOINT: f"{up},{down}"}) == 1
        assert health.main({health.ENV_ENDPOINT: up, health.ENV_TIMEOUT: "x"}) == 1
    assert health.main({}) == 0  # nothing to check: a one-off command or an agent runner
