"""``python -m clearing``: run the clearing process (settings from ``AGORA_CLEARING_*``)."""

from __future__ import annotations

from clearing.server import ClearingServer
from clearing.settings import ClearingSettings
from exchange.logs import configure_logging
from exchange.loop import run


def main(settings: ClearingSettings | None = None) -> None:
    settings = settings or ClearingSettings()
    configure_logging(settings.log_json, settings.log_level)
    run(ClearingServer(settings).serve())


if __name__ == "__main__":
    main()
