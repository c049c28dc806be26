"""Typed settings of the clearing process, each overridable by an ``AGORA_CLEARING_*`` variable.

The symbols must be the exchange's (same JSON as ``AGORA_EXCHANGE_SYMBOLS``): clearing needs
their tick and lot sizes to turn prices into cash. `agora up` and docker compose set both from
the one market file.
"""

from __future__ import annotations

import os
import secrets
from decimal import Decimal
from pathlib import Path

from pydantic import Field, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from clearing.fees import FeeSchedule
from clearing.ledger import Limits
from exchange.settings import Endpoint, default_symbols
from exchange.symbols import SymbolSpec

__all__ = ["ClearingSettings"]


class ClearingSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="AGORA_CLEARING_", extra="ignore")

    api_bind: Endpoint = Field("tcp://127.0.0.1:5559", description="account API (ROUTER)")
    exchange_dropcopy: Endpoint = Field(
        "tcp://127.0.0.1:5558", description="the exchange's trade stream (PUB) to consume"
    )
    exchange_snapshot: Endpoint = Field(
        "tcp://127.0.0.1:5557", description="the exchange's replay service (ROUTER)"
    )
    exchange_token: str = Field("", description="token for the exchange's trade replay")
    data_dir: Path = Field(Path("var/clearing"), description="SQLite database, admin token")
    database_url: str | None = Field(
        None, description="any SQLAlchemy URL (postgresql+psycopg://...); default: SQLite file"
    )
    admin_token: str = Field(
        "", description="admin secret; empty: read or create <data_dir>/admin.token"
    )
    link_secret: str = Field(
        "",
        description="the secret the exchange's risk link proves (risk state, withdrawal holds); "
        "not the admin token. Empty: read or create <data_dir>/link.secret",
    )
    auth_failure_rate: float = Field(
        1.0, gt=0,
        description="failed owner requests (unknown account or wrong token) per second per "
        "account; twenty times that per source address",
    )  # fmt: skip
    auth_failure_burst: int = Field(20, gt=0, description="token bucket depth of the above")
    api_rate_limit: float = Field(
        500.0, gt=0,
        description="account-API requests per second per source address (the exchange's "
        "risk link, proven by the link secret, is not counted); far above what owners, "
        "dashboards and an agent fleet behind one address ask",
    )  # fmt: skip
    api_burst: int = Field(2_000, gt=0, description="token bucket depth of the above")
    peer_heartbeat_s: float = Field(
        5.0, ge=0, description="ZMTP heartbeat interval on the account API; 0 = off"
    )
    peer_timeout_s: float = Field(
        15.0, gt=0, description="a peer silent this long is disconnected (its subscriptions end)"
    )
    symbols: list[SymbolSpec] = Field(default_factory=default_symbols)
    cash_unit: Decimal = Field(Decimal("0.01"), gt=0, description="the smallest unit of cash")
    fees: FeeSchedule = Field(default_factory=FeeSchedule)
    starting_cash: int = Field(0, ge=0, description="cash of a new account unless given")
    starting_positions: dict[str, int] = Field(default_factory=dict)
    default_limits: Limits = Field(default_factory=Limits)
    heartbeat_s: float = Field(1.0, gt=0, description="to subscribers; replay check interval")
    replay_timeout_s: float = Field(2.0, gt=0)
    hold_timeout_s: float = Field(
        5.0, gt=0, description="how long a withdrawal waits for the exchange's gate to hold it"
    )
    metrics_port: int = Field(0, ge=0, le=65535, description="Prometheus /metrics; 0 = off")
    metrics_host: str = "127.0.0.1"
    log_json: bool | None = None
    log_level: str = "info"

    @field_validator("starting_positions")
    @classmethod
    def _positions_in_listed_symbols(cls, value: dict[str, int], info: ValidationInfo
                                     ) -> dict[str, int]:  # fmt: skip
        if "symbols" not in info.data:
            return value  # the symbols were refused: that is the error to show
        listed = {s.symbol for s in info.data["symbols"]}
        unknown = sorted(set(value) - listed - {"*"})
        if unknown:
            raise ValueError(f"names {', '.join(unknown)}, not a symbol of this market "
                             f"(symbols: {', '.join(sorted(listed))})")  # fmt: skip
        return value

    @property
    def db_url(self) -> str:
        return self.database_url or str(self.data_dir / "clearing.sqlite")

    def resolve_admin_token(self) -> str:
        """The configured admin token, or the one kept in the data directory (created once)."""
        return self.admin_token or _kept_secret(self.data_dir / "admin.token")

    def resolve_link_secret(self) -> str:
        """The configured link secret, or the one kept in the data directory (created once)."""
        return self.link_secret or _kept_secret(self.data_dir / "link.secret")


def _kept_secret(path: Path) -> str:
    """The secret in `path`, created (owner-only) on first use."""
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    token = secrets.token_urlsafe(24)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(token + "\n")
    return token
