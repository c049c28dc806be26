"""docker-compose.yml against the compose specification, and the health probes it runs.

The schema is the compose specification's own (compose-spec.json), as shipped and kept up to
date by the check-jsonschema package (its vendored copy, with the specification's licence);
`jsonschema` validates against it. The health probes are run against real services on
loopback: each must say "healthy" for the service it asks and "unhealthy" for a port that
merely accepts connections.
"""

from __future__ import annotations

import copy
import importlib.resources
import json
import socket
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from deploy import health
from deploy.launch import free_endpoint, start_fundamental, start_market

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    vendor = importlib.resources.files("check_jsonschema.builtin_schemas.vendor")
    return json.loads((vendor / "compose-spec.json").read_text())


@pytest.fixture(scope="module")
def doc() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def _errors(schema: dict[str, Any], doc: dict[str, Any]) -> list[str]:
    validator = jsonschema.validators.validator_for(schema)(schema)
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
            for e in validator.iter_errors(doc)]  # fmt: skip


def test_the_compose_file_follows_the_compose_specification(
    schema: dict[str, Any], doc: dict[str, Any]
) -> None:
    assert _errors(schema, doc) == []
    # the schema does refuse what compose would refuse (so the check above can fail)
    bad = copy.deepcopy(doc)
    bad["services"]["exchange"]["pull_policy"] = "sometimes"
    bad["services"]["clearing"]["helthcheck"] = {}
    errors = " ".join(_errors(schema, bad))
    assert "'helthcheck' was unexpected" in errors and "services/exchange/pull_policy" in errors


def test_one_service_builds_the_image_the_others_run(doc: dict[str, Any]) -> None:
    # (the `monitoring` profile's Prometheus and Grafana run their own pinned images)
    services = {k: v for k, v in doc["services"].items() if "profiles" not in v}
    builders = [name for name, svc in services.items() if "build" in svc]
    assert len(builders) == 1, builders  # several builds of one tag race each other
    images = {svc["image"] for svc in services.values()}
    assert len(images) == 1, images
    for name, svc in services.items():
        if name not in builders:
            assert svc["pull_policy"] == "never", name  # never a registry's image of that name
    assert services[builders[0]]["build"]["dockerfile"] == "deploy/Dockerfile"


def test_recordings_land_in_a_host_folder(doc: dict[str, Any]) -> None:
    recorder = doc["services"]["recorder"]
    out_dir = recorder["environment"]["AGORA_RECORDER_OUT_DIR"]
    assert recorder["volumes"] == [f"./recordings:{out_dir}"]
    assert recorder["user"].startswith("${AGORA_UID")  # files the host user can read
    header = (ROOT / "docker-compose.yml").read_text().split("\nname:")[0]
    assert "recordings" in header  # and the file says so


def test_each_health_check_asks_its_service(doc: dict[str, Any]) -> None:
    probes = {}
    for name, svc in doc["services"].items():
        if "healthcheck" in svc:
            test = svc["healthcheck"]["test"]
            assert test[:4] == ["CMD", "python", "-m", "deploy.health"], name
            probes[name] = test[4]
            port = svc["environment"]["AGORA_HEALTH_ENDPOINT"].rsplit(":", 1)[1]
            binds = [v for k, v in svc["environment"].items() if k.endswith("_BIND")]
            assert any(b.endswith(f":{port}") for b in binds), name
    assert probes == {"clearing": "clearing", "exchange": "exchange",
                      "fundamental": "fundamental"}  # fmt: skip
    exchange_env = doc["services"]["exchange"]["environment"]
    assert exchange_env["AGORA_HEALTH_ENDPOINT"].endswith(
        exchange_env["AGORA_EXCHANGE_SNAPSHOT_BIND"].rsplit(":", 1)[1]
    )  # the snapshot service answers requests without a logon


def _probe(probe: str, endpoint: str) -> int:
    return health.main({health.ENV_ENDPOINT: endpoint, health.ENV_TIMEOUT: "20"}, [probe])


def test_health_probes_ask_real_services(tmp_path: Path) -> None:
    market = start_market(tmp_path)
    fundamental = start_fundamental(AGORA_FUNDAMENTAL_INTERVAL_S="0.1")
    try:
        ep = market.endpoints
        assert _probe("exchange", ep["snapshot"]) == 0
        assert _probe("clearing", ep["clearing"]) == 0
        assert _probe("fundamental", fundamental.ready["fundamental"]) == 0
        # the wrong service on a port is not healthy, even though it accepts connections
        assert _probe("tcp", ep["clearing"]) == 0
        assert health.main({health.ENV_ENDPOINT: ep["gateway"], health.ENV_TIMEOUT: "1"},
                           ["clearing"]) == 1  # fmt: skip
    finally:
        fundamental.stop()
        market.stop()


def test_a_port_that_only_accepts_connections_is_not_a_healthy_service() -> None:
    with socket.socket() as listening:
        listening.bind(("127.0.0.1", 0))
        listening.listen()
        endpoint = f"tcp://127.0.0.1:{listening.getsockname()[1]}"
        env = {health.ENV_ENDPOINT: endpoint, health.ENV_TIMEOUT: "0.5"}
        assert health.main(env, ["tcp"]) == 0
        for probe in ("exchange", "clearing", "fundamental"):
            assert health.main(env, [probe]) == 1, probe


def test_kubernetes_readiness_asks_the_service_on_its_own_port() -> None:
    checked = 0
    for path in sorted((ROOT / "deploy" / "k8s").glob("*.yaml")):
        for manifest in yaml.safe_load_all(path.read_text()):
            if not manifest or manifest.get("kind") not in ("Deployment", "StatefulSet"):
                continue
            for c in manifest["spec"]["template"]["spec"]["containers"]:
                probe = c.get("readinessProbe", {}).get("exec")
                if probe is None:
                    continue
                python, flag, module, kind, endpoint = probe["command"]
                assert (python, flag, module) == ("python", "-m", "deploy.health"), path.name
                assert kind in health.PROBES and kind != "tcp", path.name
                port = int(endpoint.rsplit(":", 1)[1])
                assert port in {p["containerPort"] for p in c["ports"]}, path.name
                binds = [e["value"] for e in c["env"] if e["name"].endswith("_BIND")]
                assert any(b.endswith(f":{port}") for b in binds), path.name
                checked += 1
    assert checked == 3  # exchange, clearing, fundamental


def test_the_endpoint_may_be_given_on_the_command_line(tmp_path: Path) -> None:
    market = start_market(tmp_path)
    try:
        assert health.main({}, ["exchange", market.endpoints["snapshot"]]) == 0
        assert health.main({}, ["exchange", free_endpoint()]) == 1  # nobody there
    finally:
        market.stop()
