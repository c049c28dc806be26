"""The image's contents, tested without a Docker engine.

The Dockerfile builds the project's wheel with deploy/build-wheels.sh; this test reads that
command out of the Dockerfile, runs it on the build context as Docker would send it (the
checkout filtered by .dockerignore), installs the wheel in a scratch virtualenv and, from a
folder outside the checkout, runs every docker-compose.yml service's command with ``--help``
and imports every module the wheel holds. A package missing from the wheel (as `accel` once
was from the image) fails here, not in `docker compose up`.

The scratch environment takes the dependencies from this test's own environment (a .pth line,
not an install), so the test needs no network; the editable install of this checkout is not
visible there (its .pth file is not processed), only the wheel is.
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = ROOT / "deploy" / "Dockerfile"
TIMEOUT_S = 300


def _stages(text: str) -> list[list[tuple[str, str]]]:
    """The Dockerfile's stages, each a list of (instruction, arguments); continuations joined."""
    text = re.sub(r"\\\n", " ", text)
    stages: list[list[tuple[str, str]]] = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        instruction, _, args = line.partition(" ")
        if instruction.upper() == "FROM":
            stages.append([])
        if stages:
            stages[-1].append((instruction.upper(), args.strip()))
    return stages


def _project_wheel_command() -> list[str]:
    """The builder's RUN that builds the project wheel, checked to come after `COPY . .`."""
    builder = _stages(DOCKERFILE.read_text())[0]
    copied_all = False
    for instruction, args in builder:
        if instruction == "COPY" and args.split() == [".", "."]:
            copied_all = True
        if instruction == "RUN" and "build-wheels.sh project" in args:
            assert copied_all, "the project wheel is built before the whole context is copied"
            return shlex.split(args)
    raise AssertionError("the Dockerfile's builder no longer runs build-wheels.sh project")


def _ignored(rel: str, patterns: list[str]) -> bool:
    """Whether .dockerignore keeps `rel` (a path in the context) out of the build."""
    parts = rel.split("/")
    for pattern in patterns:
        if pattern.startswith("**/"):
            rest = pattern[3:]
            if any(fnmatch.fnmatchcase("/".join(parts[i:j]), rest)
                   for i in range(len(parts)) for j in range(i + 1, len(parts) + 1)):
                return True
        elif any(fnmatch.fnmatchcase("/".join(parts[:i]), pattern)
                 for i in range(1, len(parts) + 1)):
            return True
    return False


def _build_context(dest: Path) -> None:
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    patterns = [p.strip().rstrip("/") for p in lines if p.strip() and not p.startswith("#")]
    assert not any(p.startswith("!") for p in patterns), "exceptions (!) are not modelled here"
    for path in sorted(ROOT.rglob("*")):
        rel = path.relative_to(ROOT).as_posix()
        if path.is_file() and not _ignored(rel, patterns):
            target = dest / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, target)


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The wheel, built as the Dockerfile builds it, installed in a scratch virtualenv."""
    base = tmp_path_factory.mktemp("image")
    context, wheels, venv = base / "context", base / "wheels", base / "venv"
    _build_context(context)
    argv = _project_wheel_command()
    argv = [str(wheels) if a == "/wheels" else a for a in argv]
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    # offline: the build backend (setuptools, in the test extra) comes from this environment
    subprocess.run([*argv, "--no-build-isolation", "--quiet"], cwd=context, env=env, check=True,
                   timeout=TIMEOUT_S)  # fmt: skip
    (wheel,) = wheels.glob("agora_market-*.whl")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True,
                   timeout=TIMEOUT_S)  # fmt: skip
    python = venv / "bin" / "python"
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet",
                    "--no-deps", "--no-index", "--disable-pip-version-check", str(wheel)],
                   check=True, timeout=TIMEOUT_S)  # fmt: skip
    site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_path("
                           "'purelib'))"], capture_output=True, text=True, check=True
                          ).stdout.strip()  # fmt: skip
    (Path(site) / "_agora_test_deps.pth").write_text(sysconfig.get_path("purelib") + "\n")
    outside = base / "elsewhere"
    outside.mkdir()
    return {"python": python, "bin": venv / "bin", "wheel": wheel, "cwd": outside,
            "site": Path(site)}  # fmt: skip


def _run(image: dict[str, Path], argv: list[str]) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("AGORA_") and k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["PATH"] = f"{image['bin']}{os.pathsep}{env.get('PATH', '')}"
    return subprocess.run(argv, cwd=image["cwd"], env=env, capture_output=True, text=True,
                          timeout=TIMEOUT_S)  # fmt: skip


def test_every_compose_command_answers_help_from_the_wheel(image: dict[str, Path]) -> None:
    doc = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    commands: set[tuple[str, ...]] = set()
    for svc in doc["services"].values():
        if "profiles" in svc:
            continue  # the monitoring profile's own images (Prometheus, Grafana)
        commands.add(tuple(svc["command"]))
        if "healthcheck" in svc:
            commands.add(tuple(svc["healthcheck"]["test"][1:]))  # after "CMD"
    commands.add(("agora",))  # the image's default command
    assert len(commands) >= 6
    for command in sorted(commands):
        argv = [str(image["python"]) if command[0] == "python" else command[0], *command[1:],
                "--help"]  # fmt: skip
        done = _run(image, argv)
        assert done.returncode == 0, (command, done.stderr[-2000:])
        assert "usage" in done.stdout.lower(), (command, done.stdout[:500])


def test_every_module_of_the_wheel_imports_from_the_wheel(image: dict[str, Path]) -> None:
    with zipfile.ZipFile(image["wheel"]) as whl:
        names = [n for n in whl.namelist() if n.endswith(".py") and ".dist-info" not in n]
    modules = sorted(n[:-3].replace("/", ".").removesuffix(".__init__") for n in names)
    tops = {m.split(".")[0] for m in modules}
    assert {"exchange", "clearing", "agents", "deploy", "accel"} <= tops, tops
    # what pyproject.toml ships is what the services import: every package of the checkout
    shipped = {p.name for p in ROOT.iterdir() if (p / "__init__.py").exists()} - {"tests"}
    assert shipped <= tops, f"packages missing from the wheel: {sorted(shipped - tops)}"
    script = (
        "import importlib, json, sys\n"
        "out = {}\n"
        "for name in sys.argv[1:]:\n"
        "    if name.endswith('__main__'):\n"
        "        continue\n"
        "    out[name] = importlib.import_module(name).__file__\n"
        "print(json.dumps(out))\n"
    )
    done = _run(image, [str(image["python"]), "-c", script, *modules])
    assert done.returncode == 0, done.stderr[-3000:]
    files = json.loads(done.stdout)
    assert files, "no module imported"
    for name, file in files.items():
        assert Path(file).is_relative_to(image["site"]), (name, file)  # the wheel, not the checkout
