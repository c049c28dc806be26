"""Typed settings of the exchange process, every one overridable by an environment variable.

Docker compose, `agora up` and the tests all configure the process the same way: through
``AGORA_EXCHANGE_*`` variables (or keyword arguments in-process). Symbols come as JSON, e.g.
``AGORA_EXCHANGE_SYMBOLS='[{"symbol": "AGR", "band_bps": 1000}]'``.

Bind addresses default to loopback: an exchange is reachable from other hosts only when asked.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from exchange.symbols import SymbolSpec

__all__ = ["ExchangeSettings", "default_symbols"]


def default_symbols() -> list[SymbolSpec]:
    """One symbol, priced around 100.00 with a 10% band and a 5%-in-a-minute volatility halt."""
    return [SymbolSpec(symbol="AGR", reference_price=10_000, band_bps=1_000, halt_move_bps=500)]


class ExchangeSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="AGORA_EXCHANGE_", extra="ignore")

    gateway_bind: str = Field("tcp://127.0.0.1:5555", description="order entry (ROUTER)")
    feed_bind: str = Field("tcp://127.0.0.1:5556", description="market data (PUB)")
    snapshot_bind: str = Field("tcp://127.0.0.1:5557", description="snapshots, replay (ROUTER)")
    dropcopy_bind: str = Field("tcp://127.0.0.1:5558", description="trades to clearing (PUB)")
    metrics_port: int = Field(0, ge=0, le=65535, description="Prometheus /metrics; 0 = off")
    metrics_host: str = "127.0.0.1"
    data_dir: Path = Field(Path("var/exchange"), description="where the journal lives")
    fsync: bool = Field(
        False,
        description="the older switch for durability='always' (kept: AGORA_EXCHANGE_FSYNC=1)",
    )
    durability: Literal["none", "always", "group"] = Field(
        "none",
        description="when the journal is fsynced: 'none' (the OS writes it back: survives a "
        "killed process, not a power loss), 'always' (every commit, before its replies), "
        "'group' (at most every group_commit_ms; replies and feed frames wait for the fsync "
        "that covers them)",
    )
    group_commit_ms: float = Field(
        2.0, gt=0, le=1000, description="durability='group': the longest a reply waits"
    )
    snapshot_every_records: int = Field(
        200_000, ge=0,
        description="snapshot after this many journal records (a restart replays at most "
        "these); 0 = never",
    )
    snapshot_every_s: float = Field(
        300.0, ge=0, description="snapshot at least this often when records came in; 0 = never"
    )
    snapshot_fork: bool = Field(
        True,
        description="write snapshots from a forked child (the market pauses only for the fork); "
        "off: write in-process (the market waits for the whole write)",
    )
    symbols: list[SymbolSpec] = Field(default_factory=default_symbols)
    rate_limit: float = Field(
        20_000.0, gt=0, description="requests per second allowed per connection (token bucket)"
    )
    rate_burst: int = Field(5_000, gt=0, description="token bucket depth")
    heartbeat_s: float = Field(1.0, gt=0, description="feed heartbeat interval")
    timer_s: float = Field(0.05, gt=0, description="how often timed transitions are checked")
    bar_interval_s: float = Field(0.0, ge=0, description="OHLCV bars on the feed; 0 = off")
    feed_hwm: int = Field(100_000, gt=0, description="PUB send high-water mark per subscriber")
    feed_sndbuf: int = Field(0, ge=0, description="kernel send buffer per feed socket; 0 = OS")
    clearing: str = Field(
        "",
        description="the clearing house's account API (e.g. tcp://127.0.0.1:5559); when set, "
        "logons need the account's token and every order passes pre-trade risk",
    )
    clearing_token: str = Field("", description="clearing's admin token (the risk feed)")
    clearing_token_file: Path = Field(
        Path("var/clearing/admin.token"), description="read the admin token here when not given"
    )
    risk_plugin: str = Field(
        "clearing.link:ClearingLink", description="the class that talks to clearing (module:Class)"
    )
    replay_token: str = Field(
        "", description="trade replay needs this token (default: the clearing token, if any)"
    )
    log_json: bool | None = Field(None, description="JSON logs; default: when not a terminal")
    log_level: str = "info"

    def resolve_clearing_token(self) -> str:
        if self.clearing_token:
            return self.clearing_token
        if self.clearing_token_file.exists():
            return self.clearing_token_file.read_text().strip()
        raise ValueError(
            f"clearing is set but no token: set AGORA_EXCHANGE_CLEARING_TOKEN or create "
            f"{self.clearing_token_file}"
        )

    @property
    def journal_path(self) -> Path:
        return self.data_dir / "exchange.journal"

    @property
    def snapshot_path(self) -> Path:
        return self.data_dir / "exchange.snapshot"

    @property
    def fsync_policy(self) -> str:
        """`durability`, with the older `fsync=True` meaning 'always'."""
        return "always" if self.fsync and self.durability == "none" else self.durability
