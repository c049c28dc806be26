"""``python -m exchange``: run the exchange process (settings from ``AGORA_EXCHANGE_*``)."""

from __future__ import annotations

import asyncio

from exchange.logs import configure_logging
from exchange.server import ExchangeServer
from exchange.settings import ExchangeSettings


def main(settings: ExchangeSettings | None = None) -> None:
    settings = settings or ExchangeSettings()
    configure_logging(settings.log_json, settings.log_level)
    try:
        import uvloop
    except ImportError:  # uvloop is not available on every platform
        runner = asyncio.run
    else:
        runner = uvloop.run
    server = ExchangeServer(settings)
    runner(server.serve())


if __name__ == "__main__":
    main()
