"""A user's mistake is one clear line on stderr and exit status 2, never a traceback.

Every entry point (`python -m exchange`, `clearing`, `agents`, `agents.fundamental`,
`agents.recorder` and the `agora` command) runs its main function through `guard`, so a
mistake reads the same everywhere: a bad market file, a malformed ``AGORA_*`` variable, a port
that is taken. What counts as the user's mistake:

* `UserError`, raised where a mistake is recognised (with what to do about it);
* a pydantic `ValidationError`: one line naming the field (and the ``AGORA_*`` variable it came
  from, when it came from one), with the nearest valid name for an unknown key;
* a settings variable that is not valid JSON (`pydantic_settings.SettingsError`);
* a file that is missing or cannot be opened.

Anything else is a bug and keeps its traceback. Ctrl-C ends quietly with status 130.

Lives in `exchange` (which imports nothing of ours) so that every process can use it.
"""

from __future__ import annotations

import difflib
import errno
import json
import os
import re
import socket
import sys
import types
import typing
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, TypeVar

import zmq
from pydantic import BaseModel, ValidationError

__all__ = [
    "EXIT_USAGE",
    "UserError",
    "bind_errors",
    "describe",
    "describe_validation",
    "guard",
    "load_settings",
]

EXIT_USAGE = 2
"""The exit status of a user's mistake (the status of a command-line usage error)."""

_SECRET = re.compile(r"token|secret|password", re.IGNORECASE)
_MAX_SHOWN = 60
S = TypeVar("S", bound=BaseModel)


class UserError(Exception):
    """A mistake the user can fix; its message is the whole story (one line, no traceback)."""


# --------------------------------------------------------------------------- the one handler
def guard(main: Callable[[], Any], service: str) -> Any:
    """Run `main`; a user's mistake ends the process with one line and status 2.

    `service` prefixes the line ("exchange: ...") so that, among several processes' output,
    the reader knows who refused to start.
    """
    try:
        return _call(main)
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as exc:
        line = describe(exc)
        if line is None:
            raise
        print(f"{service}: {line}", file=sys.stderr, flush=True)
        sys.exit(EXIT_USAGE)


def _call(main: Callable[[], Any]) -> Any:
    """Run `main`; a command-line app (typer) runs without click's own error handling, so that
    a usage mistake (a missing argument, an unknown option) becomes one of our lines too
    instead of click's boxed block."""
    if not hasattr(main, "registered_commands"):  # not a typer app
        return main()
    try:
        code = main(standalone_mode=False)  # type: ignore[call-arg]
    except Exception as exc:
        # click's exception classes (typer may carry its own copy of click: by name)
        names = {cls.__name__ for cls in type(exc).__mro__}
        if "Abort" in names:
            raise KeyboardInterrupt from None
        if "ClickException" not in names:
            raise
        message = exc.format_message()  # type: ignore[attr-defined]
        if not message:  # the group's help, shown for no command at all: already said
            sys.exit(exc.exit_code)  # type: ignore[attr-defined]
        ctx = getattr(exc, "ctx", None)
        hint = f" (see '{ctx.command_path} --help')" if ctx is not None else ""
        raise UserError(message + hint) from None
    if isinstance(code, int) and code:  # a command's typer.Exit(code)
        sys.exit(code)
    return code


def describe(exc: BaseException) -> str | None:
    """The one line for a user's mistake, or None when `exc` is not one (a bug)."""
    if isinstance(exc, UserError):
        return _one_line(str(exc))
    if isinstance(exc, ValidationError):
        return describe_validation(exc)
    settings_error = _settings_error(exc)
    if settings_error is not None:
        return settings_error
    if isinstance(exc, FileNotFoundError | PermissionError | IsADirectoryError |
                  NotADirectoryError) and exc.filename:  # fmt: skip
        return f"{exc.strerror}: {exc.filename}"
    return None


def _one_line(text: str) -> str:
    return " ".join(text.split())


# --------------------------------------------------------------------------- settings
def load_settings(cls: type[S], **overrides: Any) -> S:
    """`cls(**overrides)` (a pydantic-settings class); a refused value becomes a `UserError`
    naming the ``AGORA_*`` variable it came from."""
    try:
        return cls(**overrides)
    except ValidationError as exc:
        raise UserError(describe_validation(exc, cls)) from None
    except Exception as exc:
        line = _settings_error(exc, cls)
        if line is None:
            raise
        raise UserError(line) from None


def _env_prefix(cls: type[BaseModel] | None) -> str | None:
    if cls is None:
        return None
    config: Mapping[str, Any] = getattr(cls, "model_config", {})
    prefix = config.get("env_prefix")
    return prefix if isinstance(prefix, str) else None


def _env_var(cls: type[BaseModel] | None, field: object) -> str | None:
    """The environment variable a settings field was read from, if it was read from one."""
    prefix = _env_prefix(cls)
    if prefix is None or not isinstance(field, str):
        return None
    name = f"{prefix}{field}".upper()
    return name if any(k.upper() == name for k in os.environ) else None


def _settings_error(exc: BaseException, cls: type[BaseModel] | None = None) -> str | None:
    """pydantic-settings' "error parsing value for field ..." (a variable that is not JSON)."""
    from pydantic_settings import SettingsError

    if not isinstance(exc, SettingsError):
        return None
    match = re.search(r'field "([^"]+)"', str(exc))
    field = match.group(1) if match else None
    cause = exc.__cause__
    why = f"not valid JSON ({cause})" if isinstance(cause, json.JSONDecodeError) else str(cause
                                                                                         or exc)
    if field is None:
        return _one_line(str(exc))
    candidates = [_env_var(cls, field)] if cls is not None else []
    if not any(candidates):  # the class is unknown here: every AGORA_* variable for that field
        suffix = f"_{field}".upper()
        candidates = sorted(k for k in os.environ
                            if k.upper().startswith("AGORA_") and k.upper().endswith(suffix))
    names = ", ".join(c for c in candidates if c) or field
    return _one_line(f"{names}: {why}")


# --------------------------------------------------------------------------- validation errors
def describe_validation(exc: ValidationError, model: type[BaseModel] | None = None) -> str:
    """One line for a validation error: the first problem, its field path, and how many more.

    `model` is the validated class (default: found by the error's title); it gives the valid
    names to suggest for an unknown key and, for settings, the environment variable.
    """
    model = model or _model_named(exc.title)
    errors = exc.errors(include_url=False)
    first = errors[0]
    loc = first.get("loc", ())
    line = _describe_one(first, loc, model)
    more = len(errors) - 1
    if more:
        line += f" (and {more} more problem{'s' if more > 1 else ''})"
    return _one_line(line)


def _describe_one(err: Mapping[str, Any], loc: tuple, model: type[BaseModel] | None) -> str:
    path = _path(loc)
    var = _env_var(model, loc[0]) if loc else None
    where = f"{var} ({path})" if var and path != str(loc[0]) else (var or path)
    kind = err.get("type", "")
    if kind == "extra_forbidden" and loc:
        key = str(loc[-1])
        valid = _fields_at(model, loc[:-1])
        near = difflib.get_close_matches(key, valid, n=1, cutoff=0.6)
        parent = _path(loc[:-1])
        line = f"unknown key {key!r}" + (f" in {parent}" if parent else "")
        if near:
            return f"{line}; did you mean {near[0]!r}?"
        return f"{line}; valid keys: {', '.join(valid)}" if valid else line
    msg = str(err.get("msg", "invalid value"))
    msg = msg.removeprefix("Value error, ").removeprefix("Assertion failed, ")
    shown = _shown(err.get("input"), loc)
    if shown is not None and isinstance(err.get("input"), str) and shown in msg:
        shown = None  # the message already quotes it
    text = f"{where}: {msg}" if where else msg
    return f"{text} (got {shown})" if shown is not None else text


def _path(loc: tuple) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def _shown(value: Any, loc: tuple) -> str | None:
    """The offending value, when it is short, plain and not a secret."""
    if not loc or any(_SECRET.search(str(p)) for p in loc):
        return None
    if isinstance(value, bool | int | float | str) or type(value).__name__ == "Decimal":
        text = repr(value) if isinstance(value, str) else str(value)
        return text if len(text) <= _MAX_SHOWN else text[: _MAX_SHOWN - 3] + "..."
    return None


def _model_named(title: str) -> type[BaseModel] | None:
    """The model class a ValidationError's title names (its class name), if unique."""
    found: list[type[BaseModel]] = []
    stack = list(BaseModel.__subclasses__())
    seen: set[type] = set()
    while stack:
        cls = stack.pop()
        if cls in seen:
            continue
        seen.add(cls)
        if cls.__name__ == title:
            found.append(cls)
        stack.extend(cls.__subclasses__())
    return found[0] if len(found) == 1 else None


def _fields_at(model: type[BaseModel] | None, loc: tuple) -> list[str]:
    """The field names of the model found at `loc` inside `model` (for "did you mean")."""
    if model is None:
        return []
    current: Any = model
    for part in loc:
        current = _step(current, part)
        if current is None:
            return []
    return list(current.model_fields) if _is_model(current) else []


def _step(tp: Any, part: object) -> Any:
    """One step down a type: a model's field, a list's item, a dict's value."""
    for candidate in _unwrap(tp):
        if _is_model(candidate) and isinstance(part, str) and part in candidate.model_fields:
            return candidate.model_fields[part].annotation
        origin = typing.get_origin(candidate)
        args = typing.get_args(candidate)
        if origin in (list, tuple, set, frozenset) and args and isinstance(part, int):
            return args[0]
        if origin is dict and len(args) == 2 and not _is_model(candidate):
            return args[1]
    return None


def _unwrap(tp: Any) -> Iterator[Any]:
    """A type and, for `X | None` and `Annotated[X, ...]`, the types inside."""
    origin = typing.get_origin(tp)
    if origin is typing.Annotated:
        yield from _unwrap(typing.get_args(tp)[0])
    elif origin in (typing.Union, types.UnionType):
        for arg in typing.get_args(tp):
            yield from _unwrap(arg)
    else:
        yield tp


def _is_model(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, BaseModel)


# --------------------------------------------------------------------------- ports
@contextmanager
def bind_errors(service: str, binds: Mapping[str, tuple[str, str]]) -> Iterator[None]:
    """Turn "address already in use" (or an address that cannot be bound) into a `UserError`
    naming the port, the service and the variable that sets it.

    `binds` maps a role to (address, variable), e.g. ``{"gateway": ("tcp://127.0.0.1:5555",
    "AGORA_EXCHANGE_GATEWAY_BIND")}``. Each address is tried first (so that the service does
    not start, open its files and log, only to stop); a port taken in between is still caught
    when the service binds it, and found by trying each address again.
    """
    for role, (addr, var) in binds.items():
        error = _bind_fails(addr)
        if error is not None and error.errno == errno.EADDRINUSE:
            raise UserError(_in_use(service, role, addr, var))
    try:
        yield
    except (OSError, zmq.ZMQError) as exc:
        code = getattr(exc, "errno", None)
        if code not in (errno.EADDRINUSE, errno.EADDRNOTAVAIL, errno.EACCES):
            raise
        named = [(role, addr, var) for role, (addr, var) in binds.items()
                 if f"addr='{addr}'" in str(exc)]  # fmt: skip
        taken = named or [(role, addr, var) for role, (addr, var) in binds.items()
                          if _bind_fails(addr) is not None]  # fmt: skip
        if code == errno.EADDRINUSE:
            if not taken:
                ports = ", ".join(f"{a}" for a, _ in binds.values())
                raise UserError(f"a port of {service} is already in use ({ports}); is another "
                                f"{service} running?") from None  # fmt: skip
            raise UserError(_in_use(service, *taken[0])) from None
        role, addr, var = taken[0] if taken else ("", ", ".join(a for a, _ in binds.values()),
                                                   "its AGORA_* variable")  # fmt: skip
        why = getattr(exc, "strerror", None) or str(exc)
        raise UserError(f"cannot listen on {addr} ({why}); set {var} to an "
                        "address of this machine") from None  # fmt: skip


def _in_use(service: str, role: str, addr: str, var: str) -> str:
    return (f"port {addr.rsplit(':', 1)[-1]} ({role}, {addr}) is already in use: is another "
            f"{service} running? Stop it, or choose another port with {var}")  # fmt: skip


def _bind_fails(address: str) -> OSError | None:
    """None if a TCP listener could bind `address` now (as ZeroMQ would), else the error."""
    scheme, sep, rest = address.partition("://")
    if not sep:
        rest, scheme = address, "tcp"
    if scheme not in ("tcp", "http"):
        return None
    host, _, port = rest.rpartition(":")
    host = host.split(";")[-1].strip("[]")
    if not port.isdigit():
        return None  # an ephemeral port cannot be taken
    if host in ("*", "", "0.0.0.0"):
        host = "0.0.0.0"
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_STREAM) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((host, int(port)))
    except OSError as exc:
        return exc
    return None
