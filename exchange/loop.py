"""Run a process's main coroutine on uvloop where it exists (every Agora process does this)."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

__all__ = ["run"]


def run(main: Coroutine[Any, Any, Any]) -> Any:
    try:
        import uvloop
    except ImportError:  # uvloop is not available on every platform
        return asyncio.run(main)
    return uvloop.run(main)
