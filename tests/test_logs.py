"""Logging writes to the stderr of the moment, not the one it was set up with."""

from __future__ import annotations

import io
import sys

import structlog

from exchange.logs import configure_logging


def test_a_swapped_and_closed_stderr_does_not_break_later_log_lines(capsys) -> None:
    swapped = io.StringIO()
    real, sys.stderr = sys.stderr, swapped  # as a CLI runner or a capture does
    try:
        configure_logging(json=True)
        structlog.get_logger("t").info("while_swapped")
    finally:
        sys.stderr = real
        swapped.close()
    structlog.get_logger("t").info("after_close")  # used to raise: I/O on a closed file
    assert "after_close" in capsys.readouterr().err
