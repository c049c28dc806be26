"""``python -m exchange``: run the exchange process (settings from ``AGORA_EXCHANGE_*``).

A corrupt journal is the operator's to look at, not a crash: one line on stderr naming the
file, the byte and the commands to run, and exit status 2.
"""

from __future__ import annotations

from exchange.errors import UserError, bind_errors, guard, load_settings
from exchange.journal import JournalCorrupt
from exchange.logs import configure_logging
from exchange.loop import run
from exchange.server import ExchangeServer
from exchange.settings import ExchangeSettings
from exchange.usage import parse_args


def main(settings: ExchangeSettings | None = None) -> None:
    settings = settings or load_settings(ExchangeSettings)
    if settings.clearing:
        try:
            settings.resolve_clearing_token()
        except ValueError as exc:
            raise UserError(str(exc)) from None
    configure_logging(settings.log_json, settings.log_level)
    with bind_errors("exchange", binds(settings)):
        try:
            server = ExchangeServer(settings)
        except JournalCorrupt as exc:  # the operator's to look at: one line, status 2
            raise UserError(str(exc)) from None
        run(server.serve())


def binds(s: ExchangeSettings) -> dict[str, tuple[str, str]]:
    """Every address the exchange listens on, with the variable that sets it."""
    out = {role: (getattr(s, f"{role}_bind"), f"AGORA_EXCHANGE_{role.upper()}_BIND")
           for role in ("gateway", "feed", "snapshot", "dropcopy")}  # fmt: skip
    if s.metrics_port:
        metrics = f"http://{s.metrics_host}:{s.metrics_port}"
        out["metrics"] = (metrics, "AGORA_EXCHANGE_METRICS_PORT")
    return out


if __name__ == "__main__":
    parse_args("python -m exchange", __doc__, ExchangeSettings)
    guard(main, "exchange")
