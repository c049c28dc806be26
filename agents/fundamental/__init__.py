"""The fundamental-value source: a seeded fair-value process F(t) and its ZeroMQ publisher.

`model` is the pure core (also used in simulated time); `server` is the thin live shell
(``python -m agents.fundamental``); `messages` is the wire format and a subscriber.
"""

from agents.fundamental.messages import (
    Fundamental,
    FundamentalFeed,
    MalformedFundamental,
    decode_fundamental,
    encode_fundamental,
)
from agents.fundamental.model import FundamentalConfig, FundamentalModel, JumpConfig

__all__ = [
    "Fundamental",
    "FundamentalConfig",
    "FundamentalFeed",
    "FundamentalModel",
    "JumpConfig",
    "MalformedFundamental",
    "decode_fundamental",
    "encode_fundamental",
]
