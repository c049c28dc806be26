"""Typed settings of the fundamental-value process, every one overridable by an env variable.

Configured like every Agora process (compose, `agora up`, the tests): ``AGORA_FUNDAMENTAL_*``
variables or keyword arguments. The whole model comes as JSON in one variable, e.g.::

    AGORA_FUNDAMENTAL_MODEL='{"symbols": {"AGR": "100.00"}, "process": "levy",
                              "tail_exponent": 1.5, "scale": 0.0005, "step_s": 0.1}'

The bind address defaults to loopback: F(t) is a private signal for informed agents.
"""

from __future__ import annotations

from decimal import Decimal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from agents.fundamental.model import FundamentalConfig
from exchange.settings import Endpoint, OptionalEndpoint

__all__ = ["FundamentalSettings", "default_model"]


def default_model() -> FundamentalConfig:
    """One symbol, AGR at 100.00 (the exchange's default symbol), a gentle Gaussian walk."""
    return FundamentalConfig(symbols={"AGR": Decimal("100.00")}, scale=0.001, step_s=1.0)


class FundamentalSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="AGORA_FUNDAMENTAL_", extra="ignore")

    bind: Endpoint = Field("tcp://127.0.0.1:5560", description="fair values (PUB)")
    interval_s: float = Field(
        1.0, gt=0, description="publication interval; the model advances this much each time"
    )
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
