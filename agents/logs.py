"""Logging for agent processes: the exchange's structlog set-up (JSON when not a terminal)."""

from __future__ import annotations

from exchange.logs import configure_logging

__all__ = ["configure"]


def configure(json: bool | None = None, level: str = "info") -> None:
    configure_logging(json, level)
