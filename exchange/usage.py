"""``--help`` for a process configured by environment variables.

A process such as ``python -m exchange`` takes no options: every setting is an ``AGORA_*``
variable. It still answers ``--help`` (and refuses anything else) instead of starting a
server, and its help lists the variables it reads, with their defaults, from the settings
class itself, so the list cannot go stale.
"""

from __future__ import annotations

import argparse
import json
import re
import textwrap
from collections.abc import Sequence

from pydantic import BaseModel
from pydantic_settings import BaseSettings

__all__ = ["parse_args", "settings_help"]

_MAX_DEFAULT = 60


def parse_args(
    prog: str, doc: str | None, settings: type[BaseSettings], argv: Sequence[str] | None = None
) -> argparse.Namespace:
    """Parse `argv` (default: sys.argv[1:]): ``--help`` prints usage and exits 0; anything
    else is a usage error (status 2)."""
    summary = re.sub(r"``?([^`]+)``?", r"\1", (doc or "").strip().split("\n\n")[0])
    parser = argparse.ArgumentParser(
        prog=prog,
        description=f"{summary}\n\nEvery setting is an environment variable; none is needed.",
        epilog=settings_help(settings),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    return parser.parse_args(argv)


def settings_help(settings: type[BaseSettings]) -> str:
    """The variables `settings` reads: name, what it is, default."""
    prefix = settings.model_config.get("env_prefix", "")
    lines = ["environment variables:"]
    for name, field in settings.model_fields.items():
        var = f"{prefix}{name}".upper()
        about = field.description or ""
        default = _default(field)
        text = about + (f" [default: {default}]" if default is not None else "")
        wrapped = textwrap.wrap(text, 74) or [""]
        lines.append(f"  {var}")
        lines += [f"      {w}" for w in wrapped]
    return "\n".join(lines)


def _default(field: object) -> str | None:
    factory = getattr(field, "default_factory", None)
    value = factory() if factory is not None else getattr(field, "default", None)
    if value is None or value == "":
        return None
    if isinstance(value, BaseModel):
        value = value.model_dump(mode="json")
    elif isinstance(value, list):
        value = [v.model_dump(mode="json", exclude_defaults=True) if isinstance(v, BaseModel)
                 else v for v in value]  # fmt: skip
    text = json.dumps(value, default=str) if isinstance(value, list | dict) else str(value)
    return text if len(text) <= _MAX_DEFAULT else text[: _MAX_DEFAULT - 3] + "..."
