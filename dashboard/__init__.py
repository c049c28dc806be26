"""The web dashboard: the live market, its participants and its services in a browser.

A service beside the recorder (`python -m dashboard`, started by `agora up` and compose) and
a client like any other: it reads the public feed, the snapshot service, clearing's account
API and the services' Prometheus pages; it has no access to any core. Starlette serves the
page and a WebSocket of conflated updates (`state`); the charts are TradingView's
Lightweight Charts, vendored under ``static/vendor`` with their licence.
"""
