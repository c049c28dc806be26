"""Compile `accel.MODULES` with Cython into the cache (see the package docstring for why).

Each module is compiled from a copy of its source taken once, and filed under the hash of
that copy: what is filed is exactly what was compiled, even if the source changes meanwhile.
Needs Cython (``pip install -e '.[accel]'``) and a C compiler with the Python headers.
"""

from __future__ import annotations

import importlib
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path

from accel import DIRECTIVES, EXT_SUFFIX, MODULES, cache_dir, compiled_path, source_of

# DIRECTIVES (in `accel`, as part of every build's name) keep plain Python semantics:
# annotations are not C types, functions stay introspectable.


class BuildError(RuntimeError):
    """Cython or the C compiler is missing, or a module did not compile."""


def find_source(name: str) -> Path:
    """The source file the normal import of `name` loads."""
    parent = name.rpartition(".")[0]
    path = importlib.import_module(parent).__path__ if parent else None
    source = source_of(name, path)
    if source is None:
        raise BuildError(f"{name}: no Python source found")
    return source


def build(
    modules: Iterable[str] = MODULES,
    jobs: int = 2,
    progress: Callable[[str], None] = lambda _msg: None,
) -> list[Path]:
    """Compile `modules`; returns the files written. Older builds of them are removed."""
    try:
        from Cython.Build import cythonize
        from setuptools import Distribution, Extension
        from setuptools.command.build_ext import build_ext
    except ImportError as exc:
        raise BuildError(
            f"Cython and setuptools are needed to build ({exc}); "
            "install the 'accel' extra: pip install 'agora-market[accel]' (from a clone: "
            "pip install -e '.[accel]')"
        ) from exc
    names = list(modules)
    unknown = [n for n in names if n not in MODULES]
    if unknown:
        raise BuildError(f"not compiled modules: {', '.join(unknown)} (see accel.MODULES)")
    out = cache_dir()
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    with tempfile.TemporaryDirectory(prefix="agora-accel-") as tmp:
        root = Path(tmp)
        sources: dict[str, bytes] = {}
        extensions = []
        for name in names:
            data = find_source(name).read_bytes()
            sources[name] = data
            copy = root / "src" / (name.replace(".", "/") + ".py")
            copy.parent.mkdir(parents=True, exist_ok=True)
            copy.write_bytes(data)
            extensions.append(Extension(name, [str(copy)]))
        progress(f"cythonizing {len(names)} modules")
        try:
            exts = cythonize(
                extensions,
                build_dir=str(root / "c"),
                compiler_directives=DIRECTIVES,
                nthreads=max(1, jobs),
                quiet=True,
                force=True,
            )
            dist = Distribution({"ext_modules": exts, "script_name": "accel", "script_args": []})
            cmd = build_ext(dist)
            cmd.build_lib = str(root / "lib")
            cmd.build_temp = str(root / "tmp")
            cmd.parallel = max(1, jobs)
            cmd.ensure_finalized()
            progress("compiling C (about 40 s on 2 cores)")
            cmd.run()
        except Exception as exc:  # Cython's and distutils' errors have no common base
            raise BuildError(f"build failed: {exc}") from exc
        for name in names:
            built = Path(cmd.get_ext_fullpath(name))
            target = compiled_path(name, sources[name])
            try:
                # a private temporary name, then an atomic rename: a concurrent build or a
                # process that loaded the old file never sees a half-written one
                fd, part = tempfile.mkstemp(dir=out, prefix=f".{name}.", suffix=".part")
                with os.fdopen(fd, "wb") as dst, built.open("rb") as src:
                    shutil.copyfileobj(src, dst)
                os.replace(part, target)
                for old in _builds_of(name, out):  # older builds of this module: not needed
                    if old != target:
                        old.unlink(missing_ok=True)
            except OSError as exc:
                raise BuildError(f"cannot write {target}: {exc}") from exc
            written.append(target)
            progress(f"built {name}")
    return written


def _builds_of(name: str, out: Path) -> list[Path]:
    pattern = re.compile(re.escape(name) + r"\.[0-9a-f]{20}" + re.escape(EXT_SUFFIX))
    return [p for p in out.iterdir() if pattern.fullmatch(p.name)]


def clean() -> int:
    """Remove every compiled module from the cache; returns how many."""
    out = cache_dir()
    if not out.is_dir():
        return 0
    n = 0
    for name in MODULES:
        for f in _builds_of(name, out):
            f.unlink(missing_ok=True)
            n += 1
    for f in out.glob(".*.part"):  # left by a build that was killed
        f.unlink(missing_ok=True)
    return n
