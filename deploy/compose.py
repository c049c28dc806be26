"""`docker-compose.yml`, generated from the same service list `agora up` starts.

    agora compose [MARKET.toml] > docker-compose.yml

The committed file is this module's output for the default market; a test regenerates it and
fails if the two differ, so the two launchers cannot drift apart. The admin token has no
default (compose refuses to start without `AGORA_ADMIN_TOKEN`), and published ports bind the
host's loopback only.

Inside containers services bind 0.0.0.0 and find each other by service name. The order-entry,
market-data, snapshot, clearing and fundamental ports are published on the host (so host
programs attach with the default AGORA_* addresses); the drop copy stays inside the compose
network (it carries every account's trades and has no authentication).

The web dashboard is published on 127.0.0.1:8050, and every service serves Prometheus metrics
inside the network (`deploy.services.METRICS_PORTS`). The ``monitoring`` profile
(``docker compose --profile monitoring up``) adds Prometheus, scraping every service
(`deploy/monitoring/prometheus.yml`, written by `deploy.monitoring`), and Grafana with a
provisioned dashboard, on 127.0.0.1:9090 and 127.0.0.1:3000.

Every Agora service runs the one image; only the first has a `build:` section, and the others
name the same image with `pull_policy: never`. Compose then builds the image once (several
services building one tag in parallel race each other) and never pulls an image of that name
from a registry. Journal and database are named volumes; recordings are bind-mounted on
`./recordings` and written as the host user (`AGORA_UID`/`AGORA_GID`, default 1000), so they
land where you can read them. Each health check asks the service a question it answers only
while serving (`deploy.health`).
"""

from __future__ import annotations

import json
from typing import Any

from agents.config import MarketConfig
from deploy.services import DEFAULT_PORTS, WEB_PORT, Plan, metrics_ports, services

__all__ = ["compose", "compose_plan", "monitoring_services", "to_yaml"]

PUBLISHED = ("gateway", "feed", "snapshot", "clearing", "fundamental", "fundamental_control",
             "dashboard")  # fmt: skip
PROMETHEUS_IMAGE = "prom/prometheus:v2.53.0"
GRAFANA_IMAGE = "grafana/grafana:11.1.0"
MONITORING = "./deploy/monitoring"  # Prometheus' configuration, Grafana's provisioning
IMAGE = "agora-market:latest"
RECORDINGS = "./recordings"  # on the host, next to docker-compose.yml
# service -> (deploy.health probe, the port role it asks on)
HEALTH = {
    "clearing": ("clearing", "clearing"), "exchange": ("exchange", "snapshot"),
    "fundamental": ("fundamental", "fundamental"),
}  # fmt: skip
# No default: `docker compose up` refuses to start until the user sets a secret of their own.
ADMIN_TOKEN = "${AGORA_ADMIN_TOKEN:?set AGORA_ADMIN_TOKEN to a secret of your own}"
LINK_SECRET = "${AGORA_LINK_SECRET:?set AGORA_LINK_SECRET to a secret of your own}"


def compose_plan(market: MarketConfig | None = None) -> Plan:
    metrics = metrics_ports(market) if market is not None else {}
    return Plan(
        ports=dict(DEFAULT_PORTS), bind="0.0.0.0", data_dir="/app/var", admin_token=ADMIN_TOKEN,
        link_secret=LINK_SECRET, web_port=WEB_PORT, metrics=metrics,
        hosts={name: name for name in ("exchange", "clearing", "fundamental", *metrics)},
    )  # fmt: skip


def monitoring_services() -> dict[str, Any]:
    """Prometheus and Grafana, in the ``monitoring`` profile only."""
    return {
        "prometheus": {
            "image": PROMETHEUS_IMAGE, "profiles": ["monitoring"], "restart": "unless-stopped",
            "volumes": [f"{MONITORING}/prometheus.yml:/etc/prometheus/prometheus.yml:ro"],
            "ports": ["127.0.0.1:9090:9090"],
            "depends_on": {"exchange": {"condition": "service_started"}},
        },
        "grafana": {
            "image": GRAFANA_IMAGE, "profiles": ["monitoring"], "restart": "unless-stopped",
            "environment": {
                "GF_SECURITY_ADMIN_PASSWORD":
                    "${AGORA_GRAFANA_PASSWORD:?set AGORA_GRAFANA_PASSWORD for Grafana's admin}",
                "GF_AUTH_ANONYMOUS_ENABLED": "true", "GF_AUTH_ANONYMOUS_ORG_ROLE": "Viewer",
                "GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH":
                    "/var/lib/grafana/dashboards/agora.json",
            },
            "volumes": [
                f"{MONITORING}/grafana/provisioning:/etc/grafana/provisioning:ro",
                f"{MONITORING}/grafana/dashboards:/var/lib/grafana/dashboards:ro",
            ],
            "ports": ["127.0.0.1:3000:3000"],
            "depends_on": {"prometheus": {"condition": "service_started"}},
        },
    }  # fmt: skip


def compose(market: MarketConfig) -> dict[str, Any]:
    plan = compose_plan(market)
    out: dict[str, Any] = {}
    volumes: dict[str, Any] = {}
    for i, svc in enumerate(services(market, plan)):
        entry: dict[str, Any] = {"image": IMAGE}
        if i == 0:  # one service builds the image; the others use it
            entry["build"] = {"context": ".", "dockerfile": "deploy/Dockerfile"}
        else:
            entry["pull_policy"] = "never"
        entry |= {"command": svc.argv, "environment": dict(svc.env), "restart": "unless-stopped"}
        if svc.module == "agents":
            # replicas of one population need distinct agent (account) names
            entry["environment"]["AGORA_INSTANCE"] = "hostname"
            entry["deploy"] = {"replicas": svc.replicas}
        # published on the host's loopback only: other hosts reach the market when you choose
        ports = [f"127.0.0.1:{port}:{port}" for role, port in svc.ports.items()
                 if role in PUBLISHED]  # fmt: skip
        if ports:
            entry["ports"] = ports
        if svc.name == "recorder" and svc.data:
            # files for the user to read: on the host, owned by the host user
            entry["user"] = "${AGORA_UID:-1000}:${AGORA_GID:-1000}"
            entry["volumes"] = [f"{RECORDINGS}:{svc.data}"]
        elif svc.data:
            volume = f"{svc.name}-data"
            volumes[volume] = {}
            entry["volumes"] = [f"{volume}:{svc.data}"]
        if svc.name in HEALTH:
            probe, role = HEALTH[svc.name]
            entry["environment"]["AGORA_HEALTH_ENDPOINT"] = f"tcp://127.0.0.1:{svc.ports[role]}"
            entry["healthcheck"] = {
                "test": ["CMD", "python", "-m", "deploy.health", probe],
                "interval": "5s", "timeout": "3s", "retries": 12, "start_period": "10s",
            }  # fmt: skip
        if svc.depends_on:
            entry["depends_on"] = {
                dep: {"condition": "service_healthy" if dep in ("clearing", "exchange")
                      else "service_started"} for dep in svc.depends_on
            }  # fmt: skip
        out[svc.name] = entry
    out |= monitoring_services()
    return {"name": "agora", "services": out, "volumes": volumes}


def to_yaml(data: Any, indent: int = 0) -> str:
    """A small YAML writer for compose's shapes (maps, lists, scalars); strings are quoted as
    JSON strings, which YAML reads as they are."""
    pad = "  " * indent
    lines: list[str] = []
    if isinstance(data, dict):
        if not data:
            return "{}"
        for key, value in data.items():
            if isinstance(value, dict | list) and value:
                lines.append(f"{pad}{key}:")
                lines.append(to_yaml(value, indent + 1))
            else:
                lines.append(f"{pad}{key}: {_scalar(value)}")
        return "\n".join(lines)
    if isinstance(data, list):
        for item in data:
            if isinstance(item, dict | list) and item:
                inner = to_yaml(item, indent + 1).lstrip()
                lines.append(f"{pad}- {inner}")
            else:
                lines.append(f"{pad}- {_scalar(item)}")
        return "\n".join(lines)
    return pad + _scalar(data)


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, dict):
        return "{}"
    if isinstance(value, list):
        return "[]"
    return json.dumps(str(value))


HEADER = """\
# Generated by `agora compose` from the default market (deploy/markets.py): do not edit by
# hand; change the market and regenerate. tests/test_compose.py checks the two agree.
#
#   mkdir -p recordings                    the recorder's Parquet files land here
#   AGORA_ADMIN_TOKEN=... AGORA_LINK_SECRET=... docker compose up
#                                          a full market (both are secrets of your own)
#   docker compose up --scale agents-zi=3  three runners of the zi population
#   docker compose build                   rebuild the one image every service runs
#   AGORA_GRAFANA_PASSWORD=... docker compose --profile monitoring up
#                                          also Prometheus (:9090) and Grafana (:3000)
#   The dashboard is at http://127.0.0.1:8050/
#   Recordings are written as uid:gid AGORA_UID:AGORA_GID (default 1000:1000); set them to
#   `id -u` and `id -g` if yours differ. Ports are published on 127.0.0.1; edit them to
#   expose the market to other hosts.
"""


def render(market: MarketConfig) -> str:
    return HEADER + to_yaml(compose(market)) + "\n"
