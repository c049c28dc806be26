"""``python -m agents.recorder``: record the market-data feed (settings: ``AGORA_RECORDER_*``)."""

from __future__ import annotations

from agents.recorder.server import RecorderServer
from agents.recorder.settings import RecorderSettings
from exchange.logs import configure_logging
from exchange.loop import run


def main(settings: RecorderSettings | None = None) -> None:
    settings = settings or RecorderSettings()
    configure_logging(settings.log_json, settings.log_level)
    run(RecorderServer(settings).serve())


if __name__ == "__main__":
    main()
