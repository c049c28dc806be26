"""Typed settings of the fundamental-value process, every one overridable by an env variable.

Configured like every Agora process (compose, `agora up`, the tests): ``AGORA_FUNDAMENTAL_*``
variables or keyword arguments. The whole model comes as JSON in one variable, e.g.::

    AGORA_FUNDAMENTAL_MODEL='{"symbols": {"AGR": "100.00"}, "process": "levy",
                              "tail_exponent": 1.5, "scale": 0.0005, "step_s": 0.1}'

The bind address defaults to loopback: F(t) is a private signal for informed agents.

Without a model the process runs the built-in market's F (`deploy.markets.default_market`, the
market `agora up` and `agora simulate` run given no file): the same process, scale, step,
publication interval and seed, so a fundamental process started on its own (compose, a cluster,
``python -m agents.fundamental``) publishes the path the simulator computes for that market.
"""

from __future__ import annotations

from decimal import Decimal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from agents.fundamental.model import FundamentalConfig
from exchange.settings import Endpoint, OptionalEndpoint

__all__ = ["DEFAULT_INTERVAL_S", "FundamentalSettings", "default_model"]

DEFAULT_INTERVAL_S = 0.5
"""The built-in market's `fundamental_interval_s`: one step of F per publication."""


def default_model() -> FundamentalConfig:
    """The built-in market's F: AGR from 100.00 (the exchange's default symbol), a gentle
    Gaussian walk stepped every publication, seeded with the market's seed."""
    return FundamentalConfig(symbols={"AGR": Decimal("100.00")}, process="gaussian",
                             scale=0.0005, step_s=DEFAULT_INTERVAL_S, seed=1)  # fmt: skip


class FundamentalSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="AGORA_FUNDAMENTAL_", extra="ignore")

    bind: Endpoint = Field("tcp://127.0.0.1:5560", description="fair values (PUB)")
    interval_s: float = Field(
        DEFAULT_INTERVAL_S, gt=0,
        description="publication interval; the model advances this much each time",
    )  # fmt: skip
    model: FundamentalConfig = Field(default_factory=default_model)
    seed: int | None = Field(None, ge=0, description="overrides model.seed when set")
    control_bind: OptionalEndpoint = Field(
        "", description="admin requests for stress scenarios (ROUTER); empty: none"
    )
    admin_token: str = Field("", description="the admin token scenario requests must carry")
    pub_hwm: int = Field(10_000, gt=0, description="PUB send high-water mark per subscriber")
    metrics_port: int = Field(0, ge=0, le=65535, description="Prometheus /metrics; 0 = off")
    metrics_host: str = "127.0.0.1"
    log_json: bool | None = Field(None, description="JSON logs; default: when not a terminal")
    log_level: str = "info"

    def model_config_seeded(self) -> FundamentalConfig:
        """The model's config with the settings' seed applied (one place to vary a run)."""
        if self.seed is None:
            return self.model
        return self.model.model_copy(update={"seed": self.seed})
