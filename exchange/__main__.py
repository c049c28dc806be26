"""``python -m exchange``: run the exchange process (settings from ``AGORA_EXCHANGE_*``).

A corrupt journal is the operator's to look at, not a crash: one line on stderr naming the
file, the byte and the commands to run, and exit status 2.
"""

from __future__ import annotations

import sys

from exchange.journal import JournalCorrupt
from exchange.logs import configure_logging
from exchange.loop import run
from exchange.server import ExchangeServer
from exchange.settings import ExchangeSettings


def main(settings: ExchangeSettings | None = None) -> None:
    settings = settings or ExchangeSettings()
    configure_logging(settings.log_json, settings.log_level)
    try:
        server = ExchangeServer(settings)
    except JournalCorrupt as exc:
        print(f"agora exchange: {exc}", file=sys.stderr, flush=True)
        raise SystemExit(2) from None
    run(server.serve())


if __name__ == "__main__":
    main()
