"""Command-line help that reads cleanly, for every typer app of the project (`agora` and
`python -m agents`): option types as click names them, no Python type tags."""

from __future__ import annotations

from typing import Any

from typer.core import TyperGroup

__all__ = ["PlainHelpGroup", "plain_help"]

_METAVARS = {"str": "TEXT", "int": "INTEGER", "float": "FLOAT", "Path": "PATH", "bool": ""}


def plain_help(command: Any) -> Any:
    """Help that reads cleanly: ``--data-dir TEXT``, ``--json``, not ``<str>`` or ``<bool>``.

    Typer shows a Python type tag for every parameter without a metavar; a flag needs none and
    an option reads best with click's own type name. Applied to every command (and group) as
    it is looked up, so commands defined in other modules get it too.
    """
    if not getattr(command, "_plain_help", False):
        command._plain_help = True
        help_option = command.get_help_option

        def get_help_option(ctx: Any) -> Any:
            option = help_option(ctx)
            if option is not None:
                option.metavar = ""
            return option

        command.get_help_option = get_help_option
    for param in command.params:
        if param.param_type_name == "argument":
            # the name column already says what it is (CONFIG); no type tag beside it
            param.metavar = param.metavar or (param.name or "arg").upper()
            param.display_type_rich = lambda ctx: None
            continue
        if param.metavar is not None:
            continue
        if getattr(param, "is_flag", False) or getattr(param, "is_bool_flag", False):
            param.metavar = ""
        else:
            kind = param.bare_type() if hasattr(param, "bare_type") else "text"
            kind = kind.removeprefix("list[").removesuffix("]")
            param.metavar = _METAVARS.get(kind, kind.upper())
    if isinstance(getattr(command, "commands", None), dict):
        for sub in command.commands.values():
            plain_help(sub)
    return command


class PlainHelpGroup(TyperGroup):
    """A command group whose commands' help reads cleanly (`plain_help`)."""

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        command = super().get_command(ctx, cmd_name)
        return plain_help(command) if command is not None else None

    def format_help(self, ctx: Any, formatter: Any) -> None:
        plain_help(self)
        super().format_help(ctx, formatter)
