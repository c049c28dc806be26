"""``python -m agents.fundamental``: publish fair values (settings from ``AGORA_FUNDAMENTAL_*``)."""

from __future__ import annotations

from agents.fundamental.server import FundamentalServer
from agents.fundamental.settings import FundamentalSettings
from exchange.errors import bind_errors, guard, load_settings
from exchange.logs import configure_logging
from exchange.loop import run
from exchange.usage import parse_args


def main(settings: FundamentalSettings | None = None) -> None:
    settings = settings or load_settings(FundamentalSettings)
    configure_logging(settings.log_json, settings.log_level)
    with bind_errors("fundamental", {"fair values": (settings.bind, "AGORA_FUNDAMENTAL_BIND")}):
        run(FundamentalServer(settings).serve())


if __name__ == "__main__":
    parse_args("python -m agents.fundamental", __doc__, FundamentalSettings)
    guard(main, "fundamental")
