"""Compiled cores, optional: our own Python sources, compiled by Cython, used only when they
were compiled from exactly the source on disk.

Why: the hot path of a simulated run (the simulator, the agent API, the crowd's strategies,
the reports, the risk gate and the ledger) is plain Python, and stays plain Python: it is
what we read, test and change. Cython compiles that same source to C unchanged (no type
declarations, no second copy of any code): the interpreter's work per bytecode goes, the
objects and the arithmetic stay the same, so a seeded run gives the same trades to the bit,
about a fifth faster.

How: `agora accel build` compiles `MODULES` into a cache directory (`cache_dir`), one file
per module named by the SHA-256 of the source it was compiled from. `install` puts a finder
in front of the import system; for a module in `MODULES` it hashes the source the normal
import would load and uses the compiled file only if one with that hash exists. So an edited
source is used as Python at once, never shadowed by a stale build, and a checkout without a
build (CI, a fresh clone) runs pure Python. ``AGORA_PURE=1`` turns compiled modules off;
``AGORA_ACCEL_DIR`` moves the cache.

Importing this package installs the finder (`install`). `agents`, `clearing` and `deploy`
import it first thing in their ``__init__``, so it is in place before any core is imported
through them. `exchange` imports nothing of ours (ARCHITECTURE.md), so a process that
imports `exchange.reports` alone runs it as Python unless it imports `accel` first.
"""

from __future__ import annotations

import hashlib
import importlib.abc
import importlib.machinery
import importlib.util
import os
import sys
import sysconfig
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

__all__ = ["MODULES", "active", "cache_dir", "compiled_path", "install", "source_of"]

# The modules a simulated run spends its time in (py-spy of `bench/simulate.py`). Not the
# engine and its book: compiled, they ran no faster (`bench/engine.py`: 461,893 msgs/s against
# 455,063-478,776 as Python; their time is memory stalls on large tables, not bytecode), and
# the simulator ran no faster for them either.
MODULES: tuple[str, ...] = (
    "exchange.reports",
    "clearing.ledger",
    "clearing.risk",
    "agents.agent",
    "agents.portfolio",
    "agents.sim.kernel",
    "agents.sim.market",
    "agents.strategies._common",
    "agents.strategies.fair_value",
    "agents.strategies.zero_intelligence",
)

EXT_SUFFIX: str = sysconfig.get_config_var("EXT_SUFFIX") or ".so"


def cache_dir() -> Path:
    """Where compiled modules live: ``$AGORA_ACCEL_DIR``, else a per-interpreter directory
    under the user's cache (a build for one Python is never loaded by another)."""
    env = os.environ.get("AGORA_ACCEL_DIR")
    if env:
        return Path(env)
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "agora" / "accel" / EXT_SUFFIX.strip(".").rsplit(".", 1)[0]


def source_hash(source: bytes) -> str:
    return hashlib.sha256(source).hexdigest()[:20]


def compiled_path(name: str, source: bytes) -> Path:
    """The compiled twin of module `name` built from `source` (it may not exist)."""
    return cache_dir() / f"{name}.{source_hash(source)}{EXT_SUFFIX}"


def source_of(name: str, path: Sequence[str] | None = None) -> Path | None:
    """The ``.py`` file the normal import system would load for `name` (None: not a source)."""
    if path is None and "." in name:
        parent = sys.modules.get(name.rpartition(".")[0])
        path = getattr(parent, "__path__", None)
        if path is None:
            return None
    spec = importlib.machinery.PathFinder.find_spec(name, path)
    if spec is None or not spec.origin or not spec.origin.endswith(".py"):
        return None
    return Path(spec.origin)


class _Finder(importlib.abc.MetaPathFinder):
    """Finds the compiled twin of a module in `MODULES`, if it was built from today's source."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname not in MODULES:
            return None
        source = source_of(fullname, path)
        if source is None:
            return None
        try:
            compiled = compiled_path(fullname, source.read_bytes())
        except OSError:
            return None
        if not compiled.is_file():
            return None  # not built, or built from another version of the source
        loader = importlib.machinery.ExtensionFileLoader(fullname, str(compiled))
        return importlib.util.spec_from_file_location(fullname, compiled, loader=loader)


def install() -> None:
    """Put the finder in front of the import system (once; not with ``AGORA_PURE=1``)."""
    if os.environ.get("AGORA_PURE", "") not in ("", "0"):
        return
    if not any(isinstance(f, _Finder) for f in sys.meta_path):
        sys.meta_path.insert(0, _Finder())


def active() -> list[str]:
    """The modules of `MODULES` imported so far from compiled files."""
    return [
        name
        for name in MODULES
        if (mod := sys.modules.get(name)) is not None
        and str(getattr(mod, "__file__", "")).endswith(EXT_SUFFIX)
    ]


install()
