"""Where a client finds the exchange, every address overridable by an ``AGORA_*`` variable.

A trader agent, a notebook and the tests all point the SDK at an exchange the same way the
exchange process itself is configured: through the environment (``AGORA_GATEWAY``,
``AGORA_FEED``, ...) or keyword arguments. The defaults are the exchange's own default bind
addresses (``exchange/settings.py``), so a client and an exchange started with no configuration
on one machine find each other.
"""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from exchange.settings import Endpoint, OptionalEndpoint
from exchange.symbols import SymbolSpec

__all__ = ["ClientSettings"]


class ClientSettings(BaseSettings):
    """The exchange's four endpoints and the credentials to log on with."""

    # extra="ignore": the AGORA_ prefix is shared with the exchange's AGORA_EXCHANGE_* variables
    # and a .env file may hold both; a client must not refuse to start over the exchange's keys.
    model_config = SettingsConfigDict(env_prefix="AGORA_", extra="ignore")

    gateway: Endpoint = Field("tcp://127.0.0.1:5555", description="order entry (exchange ROUTER)")
    feed: Endpoint = Field("tcp://127.0.0.1:5556", description="market data (exchange PUB)")
    snapshot: Endpoint = Field(
        "tcp://127.0.0.1:5557", description="book snapshots and trade replay (exchange ROUTER)"
    )
    dropcopy: Endpoint = Field(
        "tcp://127.0.0.1:5558", description="trades for clearing (exchange PUB)"
    )
    clearing: Endpoint = Field(
        "tcp://127.0.0.1:5559", description="the clearing house's account API"
    )
    fundamental: OptionalEndpoint = Field(
        "", description="the fair-value source (PUB, e.g. tcp://127.0.0.1:5560); empty: none"
    )
    fundamental_control: OptionalEndpoint = Field(
        "tcp://127.0.0.1:5561",
        description="the fair-value source's admin socket (stress scenarios, agora admin)",
    )
    account: str | None = Field(None, description="the account to log on as")
    token: str = Field("", description="the account's secret, where the exchange checks one")
    symbols: list[SymbolSpec] | None = Field(
        None, description="the market's symbol specs as JSON (tick sizes for agent maths)"
    )
    metrics_port: int = Field(
        0, ge=0, le=65535, description="an agent runner's Prometheus /metrics; 0 = off"
    )
    metrics_host: str = "127.0.0.1"
    admin_token: str = Field(
        "", description="clearing's admin token (admin commands; default: var/clearing/admin.token)"
    )
