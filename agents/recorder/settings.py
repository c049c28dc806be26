"""Typed settings of the recorder process, every one overridable by an environment variable.

Configured like every Agora process (compose, `agora up`, Kubernetes, the tests): through
``AGORA_RECORDER_*`` variables or keyword arguments, e.g.
``AGORA_RECORDER_FEED=tcp://exchange:5556 AGORA_RECORDER_SYMBOLS='["AGR"]'``.

The endpoints default to the exchange's own default bind addresses (`exchange.settings`), so a
recorder and an exchange started with no configuration on one machine find each other.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from agents.recorder.sink import SCHEMAS
from exchange.settings import Endpoint

__all__ = ["FEED_CHANNELS", "RecorderSettings"]

FEED_CHANNELS = ("trades", "book", "tob", "status", "bars")
"""The exchange's market-data channels (`exchange.feed.CHANNELS`); "snapshots" is our own."""


class RecorderSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="AGORA_RECORDER_", extra="ignore")

    feed: Endpoint = Field("tcp://127.0.0.1:5556", description="the exchange's market data (PUB)")
    snapshot: Endpoint = Field(
        "tcp://127.0.0.1:5557", description="the exchange's snapshot service (ROUTER)"
    )
    symbols: list[str] = Field(
        default_factory=list, description="symbols to record (JSON list); empty: every symbol"
    )
    channels: list[str] = Field(
        default_factory=lambda: [*FEED_CHANNELS, "snapshots"],
        description="channels to record; 'snapshots' = full books at start and after a gap",
    )
    out_dir: Path = Field(Path("var/recorder"), description="where the Parquet files go")
    rotate_s: float = Field(3600.0, gt=0, description="one file per channel per this period")
    flush_s: float = Field(
        5.0, ge=0,
        description="write what arrived at least this often (s), so a reader sees it while the "
        "recorder runs; 0 = only at rotation and shutdown",
    )  # fmt: skip
    rotate_rows: int = Field(
        0, ge=0, description="also write a channel's file when it holds this many rows; 0 = off"
    )
    compression: str = Field("zstd", description="Parquet compression (zstd, snappy, none...)")
    rcvhwm: int = Field(1_000_000, gt=0, description="SUB receive high-water mark (messages)")
    rcvbuf: int = Field(0, ge=0, description="kernel receive buffer; 0 = the OS default")
    snapshot_timeout_s: float = Field(5.0, gt=0, description="wait this long for a snapshot")
    exit_on_goodbye: bool = Field(
        False, description="flush and exit 0 when the exchange says goodbye (record one session)"
    )
    metrics_port: int = Field(0, ge=0, le=65535, description="Prometheus /metrics; 0 = off")
    metrics_host: str = "127.0.0.1"
    log_json: bool | None = Field(None, description="JSON logs; default: when not a terminal")
    log_level: str = "info"

    @field_validator("channels")
    @classmethod
    def _known_channels(cls, value: list[str]) -> list[str]:
        unknown = sorted(set(value) - set(SCHEMAS))
        if unknown:
            raise ValueError(f"unknown channels {unknown}; known: {sorted(SCHEMAS)}")
        return value

    @field_validator("symbols")
    @classmethod
    def _plain_symbols(cls, value: list[str]) -> list[str]:
        bad = [s for s in value if not s or "|" in s]
        if bad:
            raise ValueError(f"a symbol is non-empty and has no '|': {bad}")
        return value

    def topics(self) -> list[str]:
        """SUB prefixes: everything (one empty prefix), or each symbol's channels + ``*|``.

        ``*|`` carries the exchange-wide heartbeat and goodbye; per-stream heartbeats come on
        the stream's own topic.
        """
        if not self.symbols:
            return [""]
        feed = [c for c in self.channels if c in FEED_CHANNELS]
        if "snapshots" in self.channels and "book" not in feed:
            feed.append("book")  # a snapshot is taken when a book stream shows a gap
        return [f"{s}|{c}" for s in self.symbols for c in feed] + ["*|"]
