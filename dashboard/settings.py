"""Typed settings of the dashboard service, every one overridable by an environment variable.

Configured like every Agora process (``AGORA_DASHBOARD_*``; compose, `agora up`, the tests).
The market's addresses default to the exchange's and clearing's own defaults, so a dashboard
started with no configuration on the market's machine finds it.

The admin token is read here only to list the accounts for the leaderboard (clearing answers
that to the admin alone). It never authorises an action: halting a symbol needs the token
typed by the person in the page, checked by the exchange itself.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from agents.config import MarketConfig
from exchange.settings import Endpoint, OptionalEndpoint, default_symbols
from exchange.symbols import SymbolSpec

__all__ = ["DashboardSettings"]


class DashboardSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="AGORA_DASHBOARD_", extra="ignore")

    host: str = Field("127.0.0.1", description="the web server's interface (0.0.0.0: all)")
    port: int = Field(8050, ge=0, le=65535, description="the web server's port (0: any free)")
    feed: Endpoint = Field("tcp://127.0.0.1:5556", description="the exchange's market data")
    snapshot: Endpoint = Field(
        "tcp://127.0.0.1:5557", description="the exchange's snapshot service (books, halts)"
    )
    clearing: OptionalEndpoint = Field(
        "tcp://127.0.0.1:5559", description="the clearing house's account API ('' : none)"
    )
    fundamental: OptionalEndpoint = Field(
        "", description="the fair-value source F(t) (PUB); '' : none"
    )
    fundamental_control: OptionalEndpoint = Field(
        "", description="the fair-value process's control socket: live stress scenarios ('': none)"
    )
    symbols: list[SymbolSpec] = Field(
        default_factory=default_symbols, description="the symbols (JSON specs): what to show"
    )
    admin_token: str = Field("", description="lists the accounts for the leaderboard")
    admin_token_file: Path | None = Field(
        None, description="read the admin token here when not given"
    )
    market: MarketConfig | None = Field(
        None, description="the market (JSON): splits trading and inventory PnL on the "
        "leaderboard, names the strategies",
    )  # fmt: skip
    market_file: Path | None = Field(
        None, description="the market as a file instead (TOML, or agora up's market.json)"
    )
    service_metrics: dict[str, str] = Field(
        default_factory=dict,
        description="service name -> its Prometheus /metrics URL (JSON), for the services page",
    )
    update_hz: float = Field(
        4.0, gt=0, le=50, description="conflated updates per second sent to each browser"
    )
    depth_levels: int = Field(15, gt=0, le=200, description="levels in the ladder and depth chart")
    poll_s: float = Field(2.0, gt=0, description="how often accounts, books and metrics are read")
    metrics_port: int = Field(0, ge=0, le=65535, description="Prometheus /metrics; 0 = off")
    metrics_host: str = "127.0.0.1"
    log_json: bool | None = Field(None, description="JSON logs; default: when not a terminal")
    log_level: str = "info"

    def resolve_admin_token(self) -> str:
        if self.admin_token:
            return self.admin_token
        if self.admin_token_file is not None and self.admin_token_file.exists():
            return self.admin_token_file.read_text().strip()
        return ""
