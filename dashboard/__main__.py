"""``python -m dashboard``: the web dashboard of a running market (settings: ``AGORA_DASHBOARD_*``).

Prints ``AGORA_READY {"dashboard": URL}`` once it serves; open the URL in a browser.
"""

from __future__ import annotations

import json
import socket
from typing import Any

from dashboard.settings import DashboardSettings
from exchange.errors import UserError, guard, load_settings
from exchange.logs import configure_logging
from exchange.loop import run
from exchange.usage import parse_args


def _market(settings: DashboardSettings) -> Any:
    """The market file (TOML, or agora up's market.json), for the PnL split; None: none."""
    from agents.config import MarketConfig, load_market

    path = settings.market_file
    if path is None:
        return settings.market
    if not path.exists():
        raise UserError(f"AGORA_DASHBOARD_MARKET_FILE: no file {path}")
    if path.suffix == ".json":
        try:
            return MarketConfig.model_validate_json(path.read_text())
        except ValueError as exc:
            raise UserError(f"{path}: not a market: {str(exc)[:300]}") from None
    return load_market(path)


async def serve(settings: DashboardSettings) -> None:
    import uvicorn
    from prometheus_client import start_http_server

    from dashboard.app import Dashboard, create_app

    dash = Dashboard(settings, _market(settings))
    sock = socket.socket(socket.AF_INET6 if ":" in settings.host else socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((settings.host, settings.port))
    except OSError as exc:
        raise UserError(f"dashboard: cannot listen on {settings.host}:{settings.port} "
                        f"({exc.strerror}); set AGORA_DASHBOARD_PORT") from None  # fmt: skip
    sock.listen(2048)  # before the ready line: connections queue until the server serves
    port = sock.getsockname()[1]
    shown = "127.0.0.1" if settings.host in ("0.0.0.0", "") else settings.host
    ready = {"dashboard": f"http://{shown}:{port}/"}
    if settings.metrics_port:
        start_http_server(settings.metrics_port, settings.metrics_host,
                          registry=dash.metrics.registry)  # fmt: skip
        ready["metrics"] = f"http://{settings.metrics_host}:{settings.metrics_port}/metrics"
    dash.on_ready = lambda: print("AGORA_READY " + json.dumps(ready), flush=True)
    config = uvicorn.Config(
        create_app(dash), log_config=None, access_log=False, lifespan="on",
        ws="websockets-sansio", timeout_graceful_shutdown=2,
    )  # fmt: skip
    await uvicorn.Server(config).serve(sockets=[sock])


def main(settings: DashboardSettings | None = None) -> None:
    settings = settings or load_settings(DashboardSettings)
    configure_logging(settings.log_json, settings.log_level)
    run(serve(settings))


if __name__ == "__main__":
    parse_args("python -m dashboard", __doc__, DashboardSettings)
    guard(main, "dashboard")
