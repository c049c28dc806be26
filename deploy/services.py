"""One market, its services: the single source both launchers are derived from.

`agora up` starts these as local processes; `agora compose` writes them as
`docker-compose.yml`. Both call `services(market, plan)`; only the `Plan` differs (loopback
and free or default ports locally; service names, 0.0.0.0 binds and fixed ports in
containers). The tests check that the committed compose file is exactly what this module
generates, and that every variable it sets is a setting the process reads.

Start order is the list order: clearing (accounts, needed by the exchange's pre-trade gate),
the exchange, the fundamental-value source, the recorder, the web dashboard (`Plan.web_port`;
None: none), then one runner per agent population. With `Plan.metrics` every service serves
Prometheus metrics on its own port (`metrics_ports`), and the dashboard reads them too.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from agents.config import MarketConfig

__all__ = ["DEFAULT_PORTS", "METRICS_PORTS", "WEB_PORT", "Plan", "Service", "metrics_ports",
           "services"]  # fmt: skip

DEFAULT_PORTS = {
    "gateway": 5555, "feed": 5556, "snapshot": 5557, "dropcopy": 5558, "clearing": 5559,
    "fundamental": 5560, "fundamental_control": 5561,
}  # fmt: skip
WEB_PORT = 8050  # the dashboard
# Prometheus /metrics of each service; agent runners take AGENTS_METRICS_PORT, +1, +2, ...
METRICS_PORTS = {
    "exchange": 9101, "clearing": 9102, "fundamental": 9103, "recorder": 9104, "dashboard": 9105,
}  # fmt: skip
AGENTS_METRICS_PORT = 9110


def metrics_ports(market: MarketConfig) -> dict[str, int]:
    """The default metrics port of every service of `market` (agents-<population> too)."""
    out = dict(METRICS_PORTS)
    for i, pop in enumerate(market.populations):
        out[f"agents-{pop.name}"] = AGENTS_METRICS_PORT + i
    return out


@dataclass(frozen=True)
class Plan:
    """Where the services listen and keep their data.

    `hosts` maps a service to the name others reach it by (loopback locally, the compose
    service name in containers); `bind` is the interface services bind to.
    """

    ports: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_PORTS))
    bind: str = "127.0.0.1"
    hosts: dict[str, str] = field(default_factory=dict)  # service -> host; default: bind
    data_dir: str = "var"
    admin_token: str = "${AGORA_ADMIN_TOKEN}"
    link_secret: str = "${AGORA_LINK_SECRET}"  # the exchange's risk link to clearing
    log_json: bool = True
    web_port: int | None = None  # the dashboard's port; None: no dashboard
    metrics: dict[str, int] = field(default_factory=dict)  # service -> metrics port; {}: off
    metrics_bind: str = ""  # interface the metrics servers listen on; default: like `bind`

    def metrics_env(self, service: str, var: str) -> dict[str, str]:
        """`var` (and its ``_HOST`` twin) set to this service's metrics port, if on."""
        if service not in self.metrics:
            return {}
        return {var: str(self.metrics[service]),
                var.replace("_PORT", "_HOST"): self.metrics_bind or self.bind}  # fmt: skip

    def metrics_url(self, service: str) -> str:
        return f"http://{self.host(service)}:{self.metrics[service]}/metrics"

    def host(self, service: str) -> str:
        return self.hosts.get(service, "127.0.0.1" if self.bind == "0.0.0.0" else self.bind)

    def bind_at(self, role: str) -> str:
        return f"tcp://{self.bind}:{self.ports[role]}"

    def connect(self, service: str, role: str) -> str:
        return f"tcp://{self.host(service)}:{self.ports[role]}"


@dataclass(frozen=True)
class Service:
    name: str
    module: str  # run as `python -m <module> <args>`
    args: tuple[str, ...] = ()
    env: dict[str, str] = field(default_factory=dict)
    ports: dict[str, int] = field(default_factory=dict)  # role -> port this service binds
    depends_on: tuple[str, ...] = ()
    data: str | None = None  # its data directory (a volume in containers)
    replicas: int = 1
    health_port: int | None = None  # a TCP port that accepts connections once it is up
    metrics_port: int | None = None  # Prometheus /metrics, when switched on

    @property
    def argv(self) -> list[str]:
        return ["python", "-m", self.module, *self.args]


def _json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


def services(market: MarketConfig, plan: Plan) -> list[Service]:
    symbols = _json([s.model_dump(mode="json", exclude_defaults=True) for s in market.symbols])
    terms = market.clearing
    log = "true" if plan.log_json else "false"
    out = [
        Service(
            name="clearing",
            module="clearing",
            env={
                "AGORA_CLEARING_API_BIND": plan.bind_at("clearing"),
                "AGORA_CLEARING_EXCHANGE_DROPCOPY": plan.connect("exchange", "dropcopy"),
                "AGORA_CLEARING_EXCHANGE_SNAPSHOT": plan.connect("exchange", "snapshot"),
                "AGORA_CLEARING_DATA_DIR": f"{plan.data_dir}/clearing",
                "AGORA_CLEARING_ADMIN_TOKEN": plan.admin_token,
                "AGORA_CLEARING_LINK_SECRET": plan.link_secret,
                "AGORA_CLEARING_SYMBOLS": symbols,
                "AGORA_CLEARING_FEES": _json(terms.fees.model_dump()),
                "AGORA_CLEARING_STARTING_CASH": str(terms.starting_cash),
                "AGORA_CLEARING_STARTING_POSITIONS": _json(terms.starting_positions),
                "AGORA_CLEARING_DEFAULT_LIMITS": _json(
                    {"leverage": terms.leverage, "short_limit": terms.short_limit,
                     **terms.limits().model_dump(include={"short_margin", "maintenance_margin"},
                                                 exclude_defaults=True)}
                ),
                "AGORA_CLEARING_LOG_JSON": log,
                **plan.metrics_env("clearing", "AGORA_CLEARING_METRICS_PORT"),
            },
            ports={"clearing": plan.ports["clearing"]},
            metrics_port=plan.metrics.get("clearing"),
            data=f"{plan.data_dir}/clearing",
            health_port=plan.ports["clearing"],
        ),
        Service(
            name="exchange",
            module="exchange",
            env={
                "AGORA_EXCHANGE_GATEWAY_BIND": plan.bind_at("gateway"),
                "AGORA_EXCHANGE_FEED_BIND": plan.bind_at("feed"),
                "AGORA_EXCHANGE_SNAPSHOT_BIND": plan.bind_at("snapshot"),
                "AGORA_EXCHANGE_DROPCOPY_BIND": plan.bind_at("dropcopy"),
                "AGORA_EXCHANGE_DATA_DIR": f"{plan.data_dir}/exchange",
                "AGORA_EXCHANGE_SYMBOLS": symbols,
                "AGORA_EXCHANGE_CLEARING": plan.connect("clearing", "clearing"),
                "AGORA_EXCHANGE_CLEARING_TOKEN": plan.admin_token,
                "AGORA_EXCHANGE_CLEARING_LINK_SECRET": plan.link_secret,
                "AGORA_EXCHANGE_LOG_JSON": log,
                **plan.metrics_env("exchange", "AGORA_EXCHANGE_METRICS_PORT"),
            },
            ports={r: plan.ports[r] for r in ("gateway", "feed", "snapshot", "dropcopy")},
            metrics_port=plan.metrics.get("exchange"),
            depends_on=("clearing",),
            data=f"{plan.data_dir}/exchange",
            health_port=plan.ports["gateway"],
        ),
        Service(
            name="fundamental",
            module="agents.fundamental",
            env={
                "AGORA_FUNDAMENTAL_BIND": plan.bind_at("fundamental"),
                "AGORA_FUNDAMENTAL_INTERVAL_S": str(market.fundamental_interval_s),
                "AGORA_FUNDAMENTAL_MODEL": _json(market.fundamental_model()),
                "AGORA_FUNDAMENTAL_CONTROL_BIND": plan.bind_at("fundamental_control"),
                "AGORA_FUNDAMENTAL_ADMIN_TOKEN": plan.admin_token,
                "AGORA_FUNDAMENTAL_LOG_JSON": log,
                **plan.metrics_env("fundamental", "AGORA_FUNDAMENTAL_METRICS_PORT"),
            },
            ports={r: plan.ports[r] for r in ("fundamental", "fundamental_control")},
            metrics_port=plan.metrics.get("fundamental"),
            health_port=plan.ports["fundamental"],
        ),
        Service(
            name="recorder",
            module="agents.recorder",
            env={
                "AGORA_RECORDER_FEED": plan.connect("exchange", "feed"),
                "AGORA_RECORDER_SNAPSHOT": plan.connect("exchange", "snapshot"),
                "AGORA_RECORDER_OUT_DIR": f"{plan.data_dir}/recorder",
                "AGORA_RECORDER_LOG_JSON": log,
                **plan.metrics_env("recorder", "AGORA_RECORDER_METRICS_PORT"),
            },
            depends_on=("exchange",),
            data=f"{plan.data_dir}/recorder",
            metrics_port=plan.metrics.get("recorder"),
        ),
    ]
    if plan.web_port is not None:
        scraped = {name: plan.metrics_url(name) for name in plan.metrics if name != "dashboard"}
        out.append(Service(
            name="dashboard",
            module="dashboard",
            env={
                "AGORA_DASHBOARD_HOST": plan.bind,
                "AGORA_DASHBOARD_PORT": str(plan.web_port),
                "AGORA_DASHBOARD_FEED": plan.connect("exchange", "feed"),
                "AGORA_DASHBOARD_SNAPSHOT": plan.connect("exchange", "snapshot"),
                "AGORA_DASHBOARD_CLEARING": plan.connect("clearing", "clearing"),
                "AGORA_DASHBOARD_FUNDAMENTAL": plan.connect("fundamental", "fundamental"),
                "AGORA_DASHBOARD_FUNDAMENTAL_CONTROL": plan.connect("fundamental",
                                                                    "fundamental_control"),
                "AGORA_DASHBOARD_SYMBOLS": symbols,
                "AGORA_DASHBOARD_ADMIN_TOKEN": plan.admin_token,
                "AGORA_DASHBOARD_MARKET": market.model_dump_json(exclude_defaults=True),
                "AGORA_DASHBOARD_SERVICE_METRICS": _json(scraped),
                "AGORA_DASHBOARD_LOG_JSON": log,
                **plan.metrics_env("dashboard", "AGORA_DASHBOARD_METRICS_PORT"),
            },
            ports={"dashboard": plan.web_port},
            depends_on=("exchange", "clearing"),
            health_port=plan.web_port,
            metrics_port=plan.metrics.get("dashboard"),
        ))  # fmt: skip
    client_env = {
        "AGORA_GATEWAY": plan.connect("exchange", "gateway"),
        "AGORA_FEED": plan.connect("exchange", "feed"),
        "AGORA_SNAPSHOT": plan.connect("exchange", "snapshot"),
        "AGORA_CLEARING": plan.connect("clearing", "clearing"),
        "AGORA_FUNDAMENTAL": plan.connect("fundamental", "fundamental"),
        "AGORA_ADMIN_TOKEN": plan.admin_token,
        "AGORA_SYMBOLS": symbols,
    }
    for pop in market.populations:
        out.append(Service(
            name=f"agents-{pop.name}",
            module="agents",
            args=("run", "--seed", str(market.seed)) + (("--json-logs",) if plan.log_json else ()),
            env={**client_env, "AGORA_POPULATION": _json(pop.model_dump(mode="json")),
                 **plan.metrics_env(f"agents-{pop.name}", "AGORA_METRICS_PORT")},
            depends_on=("exchange", "clearing", "fundamental"),
            metrics_port=plan.metrics.get(f"agents-{pop.name}"),
        ))  # fmt: skip
    return out
