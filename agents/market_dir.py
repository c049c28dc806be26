"""Where a client finds a running market: the data directory `agora up` keeps.

`agora up --data-dir DIR` (default ``var``) writes, besides the journal, database and
recordings:

* ``DIR/agora.env``: the market's addresses as shell ``export`` lines (``AGORA_GATEWAY``,
  ``AGORA_FEED``, ``AGORA_SNAPSHOT``, ``AGORA_CLEARING``, ``AGORA_FUNDAMENTAL``,
  ``AGORA_SYMBOLS``, ``AGORA_DATA_DIR`` and ``AGORA_ADMIN_TOKEN_FILE``, the token's *path*).
  No secret is in it: ``source var/agora.env`` in any terminal, or let a command read it.
* ``DIR/admin.token``: the admin token, readable by its owner only (0600).

Client commands (`agora attach`, `accounts`, `open-account`, `watch`, `agents run`) take
``--data-dir`` (or ``AGORA_DATA_DIR``) and find addresses and token there. What the
environment says explicitly wins over the file, so one variable can still point elsewhere.
"""

from __future__ import annotations

import json
import os
import shlex
from pathlib import Path

from agents.settings import ClientSettings

__all__ = [
    "ENV_FILE",
    "TOKEN_FILE",
    "MarketDirError",
    "admin_token",
    "client_settings",
    "read_env_file",
    "resolve",
    "write_env_file",
]

ENV_FILE = "agora.env"
TOKEN_FILE = "admin.token"
DEFAULT_DIR = "var"
_FIELDS = ("gateway", "feed", "snapshot", "clearing", "fundamental", "fundamental_control",
           "symbols")


class MarketDirError(ValueError):
    """A data directory that was asked for and is not there (one line for the user)."""


def resolve(option: str | Path | None = None) -> tuple[Path, bool]:
    """The data directory: `option`, else ``AGORA_DATA_DIR``, else ``./var``; and whether it
    was asked for (an asked-for directory must exist)."""
    chosen = option if option else os.environ.get("AGORA_DATA_DIR")
    path = Path(chosen) if chosen else Path(DEFAULT_DIR)
    if chosen and not path.is_dir():
        raise MarketDirError(
            f"no market data directory at {path} (`agora up --data-dir {path}` creates it)"
        )
    return path, bool(chosen)


def read_env_file(path: Path) -> dict[str, str]:
    """``export NAME=value`` (or ``NAME=value``) lines of an env file; comments skipped."""
    out: dict[str, str] = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        line = line.removeprefix("export ").strip()
        name, sep, value = line.partition("=")
        if sep:
            words = shlex.split(value)
            out[name.strip()] = words[0] if words else ""
    return out


def write_env_file(path: Path, values: dict[str, str], comment: str = "") -> None:
    """Write `values` as ``export`` lines (quoted for a shell), atomically."""
    lines = [f"# {line}" for line in comment.splitlines()]
    lines += [f"export {k}={shlex.quote(v)}" for k, v in values.items()]
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text("\n".join(lines) + "\n")
    os.replace(tmp, path)


def client_settings(option: str | Path | None = None) -> ClientSettings:
    """`ClientSettings` with the data directory's addresses where the environment has none,
    and the admin token found as `admin_token` describes."""
    data_dir, _ = resolve(option)
    env_file = data_dir / ENV_FILE
    overrides: dict[str, object] = {}
    if env_file.is_file():
        values = read_env_file(env_file)
        for name in _FIELDS:
            var = f"AGORA_{name.upper()}"
            if var in values and var not in os.environ:
                overrides[name] = json.loads(values[var]) if name == "symbols" else values[var]
    settings = ClientSettings(**overrides)  # type: ignore[arg-type]
    if not settings.admin_token:
        token = admin_token(data_dir)
        if token:
            settings = settings.model_copy(update={"admin_token": token})
    return settings


def admin_token(data_dir: Path) -> str:
    """``AGORA_ADMIN_TOKEN``, else the file ``AGORA_ADMIN_TOKEN_FILE`` names, else
    ``DIR/admin.token`` (agora up's), else ``DIR/clearing/admin.token`` (a standalone
    clearing's); empty if none."""
    if token := os.environ.get("AGORA_ADMIN_TOKEN", ""):
        return token
    candidates = [data_dir / TOKEN_FILE, data_dir / "clearing" / TOKEN_FILE]
    if named := os.environ.get("AGORA_ADMIN_TOKEN_FILE"):
        candidates.insert(0, Path(named))
    for path in candidates:
        if path.is_file():
            return path.read_text().strip()
    return ""
