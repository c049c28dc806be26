"""Compiled cores, optional: our own Python sources, compiled by Cython, used only when they
were compiled from exactly the source on disk.

Why: the hot path of a simulated run (the simulator, the agent API, the crowd's strategies,
the reports, the risk gate and the ledger) is plain Python, and stays plain Python: it is
what we read, test and change. Cython compiles that same source to C unchanged (no type
declarations, no second copy of any code): the interpreter's work per bytecode goes, the
objects and the arithmetic stay the same, so a seeded run gives the same trades to the bit,
about a sixth faster.

How: `agora accel build` compiles `MODULES` into a cache directory (`cache_dir`), one file
per module, named by the SHA-256 of the source it was compiled from and of how it was
compiled (`build_key`). `install` puts a finder in front of the import system; for a module
in `MODULES` it hashes the source the normal import would load and uses the compiled file
only if one with that name exists. So an edited source is used as Python at once, never
shadowed by a stale build; a checkout without a build (CI, a fresh clone) runs pure Python;
a build that cannot be loaded is reported and the source runs instead. ``AGORA_PURE=1``
turns compiled modules off; ``AGORA_ACCEL_DIR`` moves the cache.

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
import warnings
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

__all__ = [
    "DIRECTIVES", "MODULES", "active", "build_key", "cache_dir", "compiled_path", "disabled",
    "install", "source_of",
]  # fmt: skip

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
    "agents.sim.context",
    "agents.sim.market",
    "agents.sim.orders",
    "agents.sim.publish",
    "agents.strategies._common",
    "agents.strategies.fair_value",
    "agents.strategies.zero_intelligence",
)

EXT_SUFFIX: str = sysconfig.get_config_var("EXT_SUFFIX") or ".so"


# How a module is compiled: part of every build's key, so a build made another way is not
# taken for today's. Bump BUILD_FORMAT whenever `accel.build` changes what it produces.
DIRECTIVES: dict[str, object] = {"language_level": 3, "binding": True, "annotation_typing": False}
BUILD_FORMAT = 1
_BUILD_KEY = f"agora-accel:{BUILD_FORMAT}:{sorted(DIRECTIVES.items())}\n".encode()


def cache_dir() -> Path:
    """Where compiled modules live: ``$AGORA_ACCEL_DIR``, else a per-interpreter directory
    under ``$XDG_CACHE_HOME`` or ``~/.cache`` (a build for one Python is never loaded by
    another)."""
    env = os.environ.get("AGORA_ACCEL_DIR")
    if env:
        return Path(env)
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "agora" / "accel" / EXT_SUFFIX.strip(".").rsplit(".", 1)[0]


def build_key(source: bytes) -> str:
    """The name a build of `source` is filed under: its hash, with how it is compiled."""
    return hashlib.sha256(_BUILD_KEY + source).hexdigest()[:20]


def compiled_path(name: str, source: bytes) -> Path:
    """The compiled twin of module `name` built from `source` (it may not exist)."""
    return cache_dir() / f"{name}.{build_key(source)}{EXT_SUFFIX}"


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


class _Loader(importlib.machinery.ExtensionFileLoader):
    """Loads the compiled file; if it cannot be loaded (truncated, built for another system),
    warns once and runs the module from its source instead: a bad build never breaks an
    import."""

    def __init__(self, name: str, path: str, source: Path) -> None:
        super().__init__(name, path)
        self.source = source
        self.fallback: importlib.machinery.SourceFileLoader | None = None

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        try:
            return super().create_module(spec)
        except ImportError as exc:
            warnings.warn(
                f"accel: cannot load {self.path} ({exc}); {spec.name} runs as Python "
                "(`agora accel clean` removes the builds, `agora accel build` makes new ones)",
                RuntimeWarning,
                stacklevel=2,
            )
            self.fallback = importlib.machinery.SourceFileLoader(spec.name, str(self.source))
            return None  # a plain module object, filled by the source below

    def exec_module(self, module: ModuleType) -> None:
        if self.fallback is None:
            super().exec_module(module)
            return
        module.__file__ = str(self.source)
        module.__cached__ = importlib.util.cache_from_source(str(self.source))
        self.fallback.exec_module(module)


class _Finder(importlib.abc.MetaPathFinder):
    """Finds the compiled twin of a module in `MODULES`, if it was built from today's source."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname not in MODULES:
            return None
        try:
            source = source_of(fullname, path)
            if source is None:
                return None
            compiled = compiled_path(fullname, source.read_bytes())
            if not compiled.is_file():
                return None  # not built, or built from another version of the source
        except Exception:  # no home directory, an unreadable cache...: Python, as without it
            return None
        loader = _Loader(fullname, str(compiled), source)
        return importlib.util.spec_from_file_location(fullname, compiled, loader=loader)


def disabled() -> bool:
    """``AGORA_PURE`` set to anything but "", "0", "false", "no" or "off"."""
    return os.environ.get("AGORA_PURE", "").strip().lower() not in ("", "0", "false", "no", "off")


def install() -> None:
    """Put the finder in front of the import system (once; not with ``AGORA_PURE=1``)."""
    if disabled():
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
