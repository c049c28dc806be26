"""``python -m agents.recorder``: record the market-data feed (settings: ``AGORA_RECORDER_*``)."""

from __future__ import annotations

from agents.recorder.server import RecorderServer
from agents.recorder.settings import RecorderSettings
from exchange.errors import guard, load_settings
from exchange.logs import configure_logging
from exchange.loop import run
from exchange.usage import parse_args


def main(settings: RecorderSettings | None = None) -> None:
    settings = settings or load_settings(RecorderSettings)
    configure_logging(settings.log_json, settings.log_level)
    run(RecorderServer(settings).serve())


if __name__ == "__main__":
    parse_args("python -m agents.recorder", __doc__, RecorderSettings)
    guard(main, "recorder")
