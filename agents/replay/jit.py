"""numba when it is installed (the `replay` extra), plain Python when it is not.

The replay's inner loop (`orders`, `rules`, `loop`, `compiled_loop`) is written in the subset
of Python that numba compiles, so the same functions run compiled or interpreted: the
Python-agent path works everywhere, and the compiled fast path (`agents.replay.fast`) needs
numba. Compiled functions are cached on disk, so only the first run on a machine pays for
compiling them.

They are compiled without numba's reference counting (``_nrt=False``): they allocate nothing,
only read and write the arrays the host passes in (and holds for the whole call), and the
counting is an atomic increment and decrement for every array argument of every call, in the
per-update path (a helper inlined by numba counts its arrays each time it runs). Measured on
the benchmark, the compiled path ran about a quarter faster without it (its due orders
inlined: `compiled_loop`). A compiled policy that allocates needs the counting, and cannot be
compiled into such a loop: the compiled path then runs the loop compiled with it
(`jit_counted`). ``_nrt`` is a private numba option: where a numba release no longer has it,
every function is compiled with the counting (`NO_REFCOUNT` is empty), slower and the same.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = ["HAVE_NUMBA", "INSTALL_HINT", "NO_REFCOUNT", "jit", "jit_counted", "jit_inline"]

try:
    import numba

    HAVE_NUMBA = True
except ImportError:  # pragma: no cover - depends on the environment
    numba = None
    HAVE_NUMBA = False


def _no_refcount() -> dict[str, bool]:
    """The options that turn the counting off, if this numba knows them."""
    if numba is None:
        return {}
    try:
        from numba.core import cpu

        return {"_nrt": False} if hasattr(cpu.CPUTargetOptions, "_nrt") else {}
    except Exception:  # a private API: any change means "not available"
        return {}


NO_REFCOUNT = _no_refcount()

INSTALL_HINT = "pip install -e '.[replay]' (numba)"


def jit(fn: Callable[..., Any]) -> Callable[..., Any]:
    """`numba.njit(cache=True)` without reference counting when numba is importable, else
    `fn` itself (a jitted function here must not allocate: see the module docstring)."""
    if numba is None:
        return fn
    return numba.njit(cache=True, nogil=True, **NO_REFCOUNT)(fn)


def jit_inline(fn: Callable[..., Any]) -> Callable[..., Any]:
    """`jit`, inlined by numba where it is called (small helpers of the per-update path)."""
    if numba is None:
        return fn
    return numba.njit(cache=True, nogil=True, inline="always", **NO_REFCOUNT)(fn)


def jit_counted(fn: Callable[..., Any]) -> Callable[..., Any]:
    """`numba.njit(cache=True)` with numba's reference counting: for a loop that calls code
    which allocates (a compiled policy's own arrays)."""
    if numba is None:
        return fn
    return numba.njit(cache=True, nogil=True)(fn)
