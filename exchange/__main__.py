"""``python -m exchange``: run the exchange process (settings from ``AGORA_EXCHANGE_*``)."""

from __future__ import annotations

from exchange.logs import configure_logging
from exchange.loop import run
from exchange.server import ExchangeServer
from exchange.settings import ExchangeSettings


def main(settings: ExchangeSettings | None = None) -> None:
    settings = settings or ExchangeSettings()
    configure_logging(settings.log_json, settings.log_level)
    run(ExchangeServer(settings).serve())


if __name__ == "__main__":
    main()
