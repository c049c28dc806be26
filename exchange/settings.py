"""Typed settings of the exchange process, every one overridable by an environment variable.

Docker compose, `agora up` and the tests all configure the process the same way: through
``AGORA_EXCHANGE_*`` variables (or keyword arguments in-process). Symbols come as JSON, e.g.
``AGORA_EXCHANGE_SYMBOLS='[{"symbol": "AGR", "band_bps": 1000}]'``.

Bind addresses default to loopback: an exchange is reachable from other hosts only when asked.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import AfterValidator, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from exchange.symbols import SymbolSpec

__all__ = ["Endpoint", "ExchangeSettings", "OptionalEndpoint", "check_endpoint", "default_symbols"]

_SCHEMES = ("tcp", "ipc", "inproc", "ws", "wss", "pgm", "epgm", "udp", "tipc", "vmci")


def check_endpoint(value: str) -> str:
    """A ZeroMQ address, e.g. ``tcp://127.0.0.1:5555`` (or ``tcp://*:*`` for any free port).

    ZeroMQ itself takes a TCP port modulo 65536 (99999 binds 34463) and says nothing, so the
    port is checked here.
    """
    scheme, sep, rest = value.partition("://")
    if not sep or scheme not in _SCHEMES:
        raise ValueError(f"{value!r} is not an address; write tcp://HOST:PORT")
    if scheme == "tcp":
        host, colon, port = rest.rpartition(":")
        if not colon or not host:
            raise ValueError(f"{value!r} has no port; write tcp://HOST:PORT")
        if port not in ("*", "!") and not (port.isdigit() and int(port) <= 65535):
            raise ValueError(f"port {port} of {value!r} is not a port (0-65535)")
    return value


def _optional_endpoint(value: str) -> str:
    return check_endpoint(value) if value else value


Endpoint = Annotated[str, AfterValidator(check_endpoint)]
OptionalEndpoint = Annotated[str, AfterValidator(_optional_endpoint)]
"""An address that may be left empty (the feature is then off)."""


def default_symbols() -> list[SymbolSpec]:
    """One symbol, priced around 100.00 with a 10% band and a 5%-in-a-minute volatility halt."""
    return [SymbolSpec(symbol="AGR", reference_price=10_000, band_bps=1_000, halt_move_bps=500)]


class ExchangeSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="AGORA_EXCHANGE_", extra="ignore")

    gateway_bind: Endpoint = Field("tcp://127.0.0.1:5555", description="order entry (ROUTER)")
    feed_bind: Endpoint = Field("tcp://127.0.0.1:5556", description="market data (PUB)")
    snapshot_bind: Endpoint = Field(
        "tcp://127.0.0.1:5557", description="snapshots, replay (ROUTER)"
    )
    dropcopy_bind: Endpoint = Field("tcp://127.0.0.1:5558", description="trades to clearing (PUB)")
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
        2_000.0,
        gt=0,
        description="requests per second allowed per account, over all its connections "
        "(token bucket); well under what the exchange can match, so that one account cannot "
        "take it all",
    )
    rate_burst: int = Field(2_000, gt=0, description="token bucket depth")
    anonymous_rate_limit: float = Field(
        50.0,
        gt=0,
        description="frames per second per source address from connections not logged on "
        "(failed logons included; a successful logon is free)",
    )
    anonymous_burst: int = Field(500, gt=0, description="token bucket depth of the above")
    address_rate_limit: float = Field(
        50_000.0, gt=0,
        description="requests per second per source address over all its accounts (a ceiling "
        "for many accounts behind one address; an agent runner hosts hundreds)",
    )  # fmt: skip
    address_burst: int = Field(50_000, gt=0, description="token bucket depth of the above")
    logon_failure_rate: float = Field(
        1.0, gt=0, description="failed logons per second allowed per account (token bucket)"
    )
    logon_failure_burst: int = Field(20, gt=0, description="token bucket depth of the above")
    max_sessions_per_account: int = Field(
        8, gt=0, description="live sessions per account; a logon beyond it is refused"
    )
    peer_heartbeat_s: float = Field(
        5.0, ge=0, description="ZMTP heartbeat interval on the gateway; 0 = off"
    )
    peer_timeout_s: float = Field(
        15.0, gt=0, description="a peer silent this long is disconnected (its sessions end)"
    )
    heartbeat_s: float = Field(1.0, gt=0, description="feed heartbeat interval")
    timer_s: float = Field(0.05, gt=0, description="how often timed transitions are checked")
    bar_interval_s: float = Field(0.0, ge=0, description="OHLCV bars on the feed; 0 = off")
    feed_hwm: int = Field(100_000, gt=0, description="PUB send high-water mark per subscriber")
    feed_sndbuf: int = Field(0, ge=0, description="kernel send buffer per feed socket; 0 = OS")
    resend_window: int = Field(
        256, ge=0,
        description="execution reports kept per account for resend requests (packed, ~0.3 kB each; "
        "0: reports are not numbered and clients cannot recover missed ones)",
    )
    tape_window: int = Field(
        10_000, ge=0, description="public trades kept per symbol for tape requests (0: none)"
    )
    snapshot_rate_limit: float = Field(
        200.0, gt=0,
        description="snapshot-service requests (snapshots, tape pages) per second per source "
        "address; clearing's trade replay with its token is not counted. Far above what a "
        "recorder, a dashboard or a client filling a gap asks",
    )  # fmt: skip
    snapshot_burst: int = Field(
        1_000, gt=0,
        description="token bucket depth of the above (a fleet of agents behind one address "
        "each asking for a snapshot at start)",
    )  # fmt: skip
    snapshot_turn_frames: int = Field(
        200, gt=0, description="snapshot-service frames read per loop turn, at most"
    )
    snapshot_turn_s: float = Field(
        0.002, gt=0,
        description="time the snapshot service may take of one loop turn (at least one "
        "request is answered); order entry gets the rest",
    )  # fmt: skip
    clearing: OptionalEndpoint = Field(
        "",
        description="the clearing house's account API (e.g. tcp://127.0.0.1:5559); when set, "
        "logons need the account's token and every order passes pre-trade risk",
    )
    clearing_token: str = Field(
        "", description="clearing's admin token (trade replay's default token)"
    )
    clearing_token_file: Path = Field(
        Path("var/clearing/admin.token"), description="read the admin token here when not given"
    )
    clearing_link_secret: str = Field(
        "", description="the secret the risk link proves to clearing (not the admin token)"
    )
    clearing_link_secret_file: Path = Field(
        Path("var/clearing/link.secret"), description="read the link secret here when not given"
    )
    risk_plugin: str = Field(
        "clearing.link:ClearingLink", description="the class that talks to clearing (module:Class)"
    )
    replay_token: str = Field(
        "", description="trade replay needs this token (default: the clearing token, if any)"
    )
    admin_token: str = Field(
        "", description="halting and resuming a symbol need this token (default: the "
        "clearing token, if any; without either, nobody may)",
    )  # fmt: skip
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

    def resolve_link_secret(self) -> str:
        if self.clearing_link_secret:
            return self.clearing_link_secret
        if self.clearing_link_secret_file.exists():
            return self.clearing_link_secret_file.read_text().strip()
        raise ValueError(
            f"clearing is set but no link secret: set AGORA_EXCHANGE_CLEARING_LINK_SECRET or "
            f"create {self.clearing_link_secret_file}"
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
