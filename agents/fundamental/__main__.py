"""``python -m agents.fundamental``: publish fair values (settings from ``AGORA_FUNDAMENTAL_*``)."""

from __future__ import annotations

from agents.fundamental.server import FundamentalServer
from agents.fundamental.settings import FundamentalSettings
from exchange.logs import configure_logging
from exchange.loop import run


def main(settings: FundamentalSettings | None = None) -> None:
    settings = settings or FundamentalSettings()
    configure_logging(settings.log_json, settings.log_level)
    run(FundamentalServer(settings).serve())


if __name__ == "__main__":
    main()
