"""structlog set-up shared by every process: JSON in containers, readable in a terminal."""

from __future__ import annotations

import logging
import sys

import structlog

__all__ = ["configure_logging"]


class _Stderr:
    """Whatever `sys.stderr` is when a line is written, not when logging was set up: a host
    that swaps it (a test runner capturing output, a CLI invoked in-process) and closes its
    replacement must not leave every later log line writing to a closed file."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


def _stderr_logger(*_args: object) -> structlog.PrintLogger:
    return structlog.PrintLogger(file=_Stderr())  # type: ignore[arg-type]


def configure_logging(json: bool | None = None, level: str = "info") -> None:
    """Logs go to stderr (stdout is for a process's own output, e.g. its ready line).

    `json=None` picks JSON when stderr is not a terminal (docker, CI, files).
    """
    if json is None:
        json = not sys.stderr.isatty()
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer()
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping().get(level.upper(), logging.INFO)
        ),
        logger_factory=_stderr_logger,
        cache_logger_on_first_use=False,
    )
