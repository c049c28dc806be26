"""numba when it is installed (the `replay` extra), plain Python when it is not.

The replay's inner loop (`book`, `orders`, `rules`, `loop`) is written in the subset of Python
that numba compiles, so the same functions run compiled or interpreted: the Python-agent path
works everywhere, and the compiled fast path (`agents.replay.fast`) needs numba. Compiled
functions are cached on disk, so only the first run on a machine pays for compiling them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = ["HAVE_NUMBA", "INSTALL_HINT", "jit", "jit_inline"]

try:
    import numba

    HAVE_NUMBA = True
except ImportError:  # pragma: no cover - depends on the environment
    numba = None
    HAVE_NUMBA = False

INSTALL_HINT = "pip install -e '.[replay]' (numba)"


def jit(fn: Callable[..., Any]) -> Callable[..., Any]:
    """`numba.njit(cache=True)` when numba is importable, else `fn` itself."""
    if numba is None:
        return fn
    return numba.njit(cache=True, nogil=True)(fn)



def jit_inline(fn: Callable[..., Any]) -> Callable[..., Any]:
    """`jit`, inlined by numba where it is called (small helpers of the per-update path)."""
    if numba is None:
        return fn
    return numba.njit(cache=True, nogil=True, inline="always")(fn)
