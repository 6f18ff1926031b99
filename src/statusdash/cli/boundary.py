"""The CLI's one error boundary: every expected failure is one line on stderr and an exit code.

Every command group is a ``Boundary`` (``group()`` makes one), so a group invoked on its own, as
the tests do, fails the same way as the whole ``statusdash`` command. Anything not caught here
is a bug and keeps its traceback.
"""

from __future__ import annotations

from typing import Any, NoReturn

import typer
from typer._click import Context  # typer 0.29 vendors click: its groups take this Context
from typer.core import TyperGroup

from statusdash.errors import StatusdashError
from statusdash.safetext import one_line


class Failure(StatusdashError):
    """A command's own refusal, with its exit code (2: the command was called wrongly)."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


def fail(message: str, code: int = 1) -> NoReturn:
    """Stop the command with ``message`` on one line and exit ``code``."""
    raise Failure(message, code)


def os_message(exc: OSError) -> str:
    """An OS error as a line that names the file: ``/proc/x: Permission denied``."""
    reason = exc.strerror or str(exc)
    if exc.filename is None:
        return reason
    return f"{exc.filename}: {reason}"


class Boundary(TyperGroup):
    """A command group that turns expected failures into ``statusdash: <message>``."""

    def invoke(self, ctx: Context) -> Any:
        try:
            return super().invoke(ctx)
        except Failure as exc:
            _exit(str(exc), exc.code)
        except StatusdashError as exc:
            _exit(str(exc), 1)
        except OSError as exc:
            _exit(os_message(exc), 1)


def group(**kwargs: Any) -> typer.Typer:
    """A Typer command group behind the boundary, with plain help and no completion options.

    Plain (not Rich) help: drawing it with Rich costs about a third of ``--help``'s start-up.
    """
    kwargs.setdefault("no_args_is_help", True)
    return typer.Typer(cls=Boundary, add_completion=False, rich_markup_mode=None, **kwargs)


def _exit(message: str, code: int) -> NoReturn:
    typer.echo(f"statusdash: {one_line(message)}", err=True)  # it may quote the server's data
    raise typer.Exit(code)
