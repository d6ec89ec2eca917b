"""How a command fails: a pouw, chain or transport error becomes one line (``error: ...``)
with exit status 2, never a traceback."""

from __future__ import annotations

from typing import IO, Any

import click

from oracle.exceptions import PouwError


class Failed(click.ClickException):
    """A pouw error shown as one line (``error: ...``), exit code 2 (bad input)."""

    exit_code = 2

    def show(self, file: IO[Any] | None = None) -> None:
        click.echo(f"error: {self.format_message()}", err=True)


class PouwGroup(click.Group):
    """A group whose commands turn pouw, chain and transport errors into one-line errors."""

    def invoke(self, ctx: click.Context) -> Any:
        from requests import RequestException
        from web3.exceptions import Web3Exception

        try:
            return super().invoke(ctx)
        except PouwError as exc:
            raise Failed(str(exc)) from None
        except (Web3Exception, RequestException) as exc:
            raise Failed(f"chain: {type(exc).__name__}: {exc}") from None
