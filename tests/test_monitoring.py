"""Monitoring: every service's Prometheus metrics, and the compose `monitoring` profile.

No Docker engine runs here, so the configuration is checked structurally: the profile's
services against the compose specification, Prometheus' file is the generated one and scrapes
every service on the port it serves (and `promtool check config` accepts it where promtool is
installed: Debian's `prometheus` package), and Grafana's provisioned dashboard loads, its
queries parse (`promtool check rules`) and name only metrics that the real services, started
here by `agora up --metrics`, do export.
"""

from __future__ import annotations

import importlib.resources
import json
import re
import shutil
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from live_up import LiveUp
from prometheus_client.parser import text_string_to_metric_families

from deploy.markets import default_market
from deploy.monitoring import prometheus_config, render

ROOT = Path(__file__).resolve().parent.parent
MONITORING = ROOT / "deploy" / "monitoring"
PROMETHEUS = MONITORING / "prometheus.yml"
DASHBOARD = MONITORING / "grafana" / "dashboards" / "agora.json"
PROMTOOL = shutil.which("promtool")
NO_PROMTOOL = "promtool not installed (apt-get install -y --no-install-recommends prometheus)"


@pytest.fixture(scope="module")
def compose_doc() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def _queries() -> list[str]:
    dash = json.loads(DASHBOARD.read_text())
    return [t["expr"] for p in dash["panels"] for t in p["targets"]]


# ------------------------------------------------------------------ compose's profile
def test_the_monitoring_profile_follows_the_compose_specification(
    compose_doc: dict[str, Any],
) -> None:
    vendor = importlib.resources.files("check_jsonschema.builtin_schemas.vendor")
    schema = json.loads((vendor / "compose-spec.json").read_text())
    validator = jsonschema.validators.validator_for(schema)(schema)
    assert [e.message for e in validator.iter_errors(compose_doc)] == []
    profiled = {k: v for k, v in compose_doc["services"].items() if "profiles" in v}
    assert set(profiled) == {"prometheus", "grafana"}
    for name, svc in profiled.items():
        assert svc["profiles"] == ["monitoring"]
        assert ":" in svc["image"] and not svc["image"].endswith(":latest"), name  # pinned
        assert all(p.startswith("127.0.0.1:") for p in svc["ports"]), name
        for volume in svc["volumes"]:  # what it mounts is in the repository
            source = volume.split(":")[0]
            assert (ROOT / source).exists(), (name, source)
    grafana = profiled["grafana"]["environment"]
    assert grafana["GF_SECURITY_ADMIN_PASSWORD"].startswith("${AGORA_GRAFANA_PASSWORD:?")
    home = grafana["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert home == "/var/lib/grafana/dashboards/" + DASHBOARD.name
    # every Agora service serves metrics in compose, and the dashboard is published
    ours = {k: v for k, v in compose_doc["services"].items() if "profiles" not in v}
    assert all(any(k.endswith("METRICS_PORT") for k in v["environment"]) for v in ours.values())
    assert "127.0.0.1:8050:8050" in ours["dashboard"]["ports"]


# ------------------------------------------------------------------ Prometheus
def test_prometheus_scrapes_every_service_on_its_metrics_port(
    compose_doc: dict[str, Any],
) -> None:
    assert PROMETHEUS.read_text() == render(default_market()), (
        "deploy/monitoring/prometheus.yml is stale: python -m deploy.monitoring > it"
    )
    config = yaml.safe_load(PROMETHEUS.read_text())
    assert config == prometheus_config(default_market())
    targets: dict[str, tuple[str, int]] = {}
    for job in config["scrape_configs"]:
        if "static_configs" in job:
            (target,) = job["static_configs"][0]["targets"]
            host, port = target.rsplit(":", 1)
        else:
            dns = job["dns_sd_configs"][0]
            (host,), port = dns["names"], dns["port"]
            assert dns["type"] == "A"  # every replica of the population
        targets[job["job_name"]] = (host, int(port))
    ours = {k: v for k, v in compose_doc["services"].items() if "profiles" not in v}
    assert set(targets) == set(ours)
    for name, (host, port) in targets.items():
        env = ours[host]["environment"]
        served = [v for k, v in env.items() if k.endswith("METRICS_PORT")]
        assert served == [str(port)], name
        host_var = [v for k, v in env.items() if k.endswith("METRICS_HOST")]
        assert host_var == ["0.0.0.0"], name  # reachable from Prometheus' container


@pytest.mark.skipif(PROMTOOL is None, reason=NO_PROMTOOL)
def test_promtool_accepts_the_configuration_and_the_dashboards_queries(tmp_path: Path) -> None:
    assert PROMTOOL is not None
    ok = subprocess.run([PROMTOOL, "check", "config", str(PROMETHEUS)], capture_output=True,
                        text=True)  # fmt: skip
    assert ok.returncode == 0, ok.stdout + ok.stderr
    rules = {"groups": [{"name": "dashboard", "rules": [
        {"record": f"agora:panel_query_{i}", "expr": q} for i, q in enumerate(_queries())]}]}
    path = tmp_path / "rules.yml"
    path.write_text(yaml.safe_dump(rules))
    ok = subprocess.run([PROMTOOL, "check", "rules", str(path)], capture_output=True, text=True)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    path.write_text(yaml.safe_dump({"groups": [{"name": "bad", "rules": [
        {"record": "agora:bad", "expr": "sum(rate(agora_exchange_trades_total[1m])"}]}]}))
    bad = subprocess.run([PROMTOOL, "check", "rules", str(path)], capture_output=True, text=True)
    assert bad.returncode != 0  # (the check can fail)


# ------------------------------------------------------------------ Grafana
def test_grafana_is_provisioned_with_the_dashboard() -> None:
    provisioning = MONITORING / "grafana" / "provisioning"
    (source,) = yaml.safe_load((provisioning / "datasources" / "prometheus.yml").read_text())[
        "datasources"]  # fmt: skip
    assert (source["type"], source["url"]) == ("prometheus", "http://prometheus:9090")
    (provider,) = yaml.safe_load((provisioning / "dashboards" / "agora.yml").read_text())[
        "providers"]  # fmt: skip
    assert provider["options"]["path"] == "/var/lib/grafana/dashboards"
    dash = json.loads(DASHBOARD.read_text())
    titles = " ".join(p["title"].lower() for p in dash["panels"])
    for wanted in ("orders", "fills", "ack latency", "rejects", "feed lag", "settlement lag"):
        assert wanted in titles, wanted
    for panel in dash["panels"]:
        assert panel["datasource"]["uid"] == source["uid"]
        assert panel["targets"] and all(t["expr"] for t in panel["targets"])


# ------------------------------------------------------------------ real services
@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """Every metric name each service of `agora up --metrics` serves (a counter with no
    sample yet, such as rejects by reason before the first reject, counts by its name)."""
    up = LiveUp(tmp_path_factory.mktemp("monitoring"), "--metrics")
    try:
        urls: dict[str, str] = up.ready["metrics"]
        names: dict[str, Any] = {"values": {}, "urls": urls}

        for service, url in urls.items():  # each is up: agora up was ready
            text = urllib.request.urlopen(url, timeout=10).read().decode()
            found = names[service] = set()
            for family in text_string_to_metric_families(text):
                found |= {s.name for s in family.samples}
                names["values"] |= {(service, s.name): s.value for s in family.samples
                                    if not s.labels}  # fmt: skip
                if family.type == "counter":
                    found.add(family.name + "_total")
        yield names
    finally:
        up.stop()


def _gauge_reaches(url: str, name: str, at_least: float, deadline_s: float = 90.0) -> float:
    """The gauge `name` served at `url`, read until it is `at_least` or the deadline passes.

    `agora up` is ready when every service is up, not when every subscriber's connection has
    reached the exchange: on a busy machine the feed's subscriber count catches up later.
    """
    end = time.monotonic() + deadline_s
    while True:
        text = urllib.request.urlopen(url, timeout=10).read().decode()
        value = next((s.value for family in text_string_to_metric_families(text)
                      for s in family.samples if s.name == name and not s.labels), 0.0)  # fmt: skip
        if value >= at_least or time.monotonic() > end:
            return value
        time.sleep(0.2)  # polling interval while waiting for the count, not a synchronisation


def test_every_service_serves_its_metrics(exported: dict[str, Any]) -> None:
    values = exported.pop("values")
    urls = exported.pop("urls")
    assert set(exported) == {"exchange", "clearing", "fundamental", "recorder", "dashboard",
                             "agents-zi", "agents-fv"}  # fmt: skip
    # the recorder, the dashboard and both runners read the feed (agora up's panel too)
    assert _gauge_reaches(urls["exchange"], "agora_exchange_feed_subscribers", 4) >= 4
    assert values[("exchange", "agora_exchange_journal_bytes")] > 0
    assert values[("agents-zi", "agora_agents_agents")] == 8
    for service, names in exported.items():
        assert "process_start_time_seconds" in names, service  # uptime, everywhere
    assert {"agora_exchange_feed_subscribers", "agora_exchange_journal_bytes"} <= (
        exported["exchange"])  # fmt: skip
    assert "agora_agents_orders_total" in exported["agents-zi"]


def test_the_dashboards_queries_name_metrics_the_services_export(
    exported: dict[str, Any],
) -> None:
    served = set().union(*(v for k, v in exported.items() if k not in ("values", "urls")))
    named = {m for q in _queries() for m in re.findall(r"\b(agora_[a-z_]+)", q)}
    assert named, "no metric in the dashboard's queries"
    # a counter or histogram some service has not incremented yet is still exported by name
    missing = sorted(m for m in named if m not in served)
    assert missing == [], f"queried but exported by no service: {missing}"
